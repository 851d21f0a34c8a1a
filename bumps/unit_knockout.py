"""Knockouts for any ``nn.Module``: zero chosen units of a model from a given step on, and keep them dead.

A unit (a head, a neuron, an embedding direction) lives in slices of some parameters along one axis each
(a neuron ``n`` of ``Linear(d, h) → ReLU → Linear(h, d)`` is row ``n`` of the first weight and bias and
column ``n`` of the second weight), or in one axis of a module's output (a head's slot of a per-head
activation ``[batch, position, head, d_head]``). :class:`UnitKnockout` names both kinds:

* parameter slices (``params``) are set to zero once, their optimizer moments too (every tensor in the
  optimizer's per-parameter state shaped like the parameter: AdamW's ``exp_avg``, ``exp_avg_sq``, ...),
  and a gradient hook zeroes their gradient from then on. Decoupled weight decay keeps zero at zero and a
  zero gradient with zero moments gives a zero Adam step, so they stay *exactly* zero;
* module outputs (``outputs``) are zeroed by a forward hook at every call.

Runs continue from a checkpoint of weights and optimizer state (:func:`save_checkpoint`,
:func:`load_checkpoint`), with :class:`KnockoutSchedule` applying each knockout before the step it starts
at; :func:`score` turns the continued curve into a :class:`bumps.knockout.KnockoutOutcome`, the record
the toy and mod-add knockouts use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bumps.errors import BumpsError, did_you_mean
from bumps.io.runfile import atomic_save, safe_load
from bumps.knockout import KnockoutOutcome, KnockoutPlan, persists


@dataclass(frozen=True)
class UnitKnockout:
    """Which units to remove, where they live, and from which step.

    Attributes
    ----------
    units : tuple of int
        Indices of the removed units along each named axis (at least one).
    params : tuple of (str, int)
        ``(parameter name, axis)`` pairs as ``model.named_parameters()`` names them: the slices
        ``units`` of each along ``axis`` are zeroed and kept zero.
    outputs : tuple of (str, int)
        ``(module name, axis)`` pairs as ``model.named_modules()`` names them: the slices ``units`` of the
        module's output (its first element when it returns a tuple) along ``axis`` are zeroed at every call.
    from_step : int
        The first step whose forward pass runs without the units (the knockout is applied before it).
    """

    units: tuple[int, ...]
    params: tuple[tuple[str, int], ...] = ()
    outputs: tuple[tuple[str, int], ...] = ()
    from_step: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "units", tuple(int(u) for u in self.units))
        object.__setattr__(self, "params", tuple((str(n), int(a)) for n, a in self.params))
        object.__setattr__(self, "outputs", tuple((str(n), int(a)) for n, a in self.outputs))
        if not self.units:
            raise BumpsError("a knockout needs at least one unit in `units`")
        if not self.params and not self.outputs:
            raise BumpsError("a knockout needs `params` or `outputs`: where the units live")
        if self.from_step < 0:
            raise BumpsError(f"`from_step` must be >= 0 (got {self.from_step})")


def _unit_mask(shape: torch.Size, axis: int, units: tuple[int, ...], like: torch.Tensor, what: str) -> torch.Tensor:
    """1 everywhere except the ``units`` slices along ``axis`` (0 there), broadcastable to ``shape``."""
    if not -len(shape) <= axis < len(shape):
        raise BumpsError(f"{what} has shape {tuple(shape)}; axis {axis} is out of range")
    size = shape[axis]
    bad = [u for u in units if not -size <= u < size]
    if bad:
        raise BumpsError(f"{what} has {size} units along axis {axis}; unit(s) {bad} out of range")
    view = [1] * len(shape)
    view[axis] = size
    mask = torch.ones(size, dtype=like.dtype, device=like.device)
    mask[list(units)] = 0
    return mask.view(view)


def _zero_output(out, mask_for):
    if isinstance(out, torch.Tensor):
        return out * mask_for(out)
    if isinstance(out, tuple | list) and out and isinstance(out[0], torch.Tensor):
        return type(out)([out[0] * mask_for(out[0]), *out[1:]])
    raise BumpsError(f"cannot knock out units of a module output of type {type(out).__name__}; hook a tensor output")


class KnockoutHooks:
    """The hooks of applied knockouts; :meth:`remove` takes them all off (the zeroed weights stay zero)."""

    def __init__(self) -> None:
        self.handles: list = []

    def remove(self) -> None:
        """Remove every hook."""
        for h in self.handles:
            h.remove()
        self.handles.clear()


def apply_knockout(
    model: nn.Module,
    knockout: UnitKnockout,
    optimizer: torch.optim.Optimizer | None = None,
    hooks: KnockoutHooks | None = None,
) -> KnockoutHooks:
    """Remove ``knockout.units`` from ``model`` now: zero the slices and their moments, and hook them dead.

    Parameters
    ----------
    model : torch.nn.Module
        The model, changed in place.
    knockout : UnitKnockout
        What to remove (``from_step`` is not read here; see :class:`KnockoutSchedule`).
    optimizer : torch.optim.Optimizer, optional
        Its per-parameter state tensors shaped like a knocked-out parameter get the same slices zeroed.
    hooks : KnockoutHooks, optional
        Collect the new hooks here; None makes a new collection.

    Returns
    -------
    KnockoutHooks
        The hooks that keep the units dead.

    Raises
    ------
    BumpsError
        If a parameter or module name is unknown (with a did-you-mean), an axis or unit is out of range.
    """
    hooks = hooks if hooks is not None else KnockoutHooks()
    named_params, named_modules = dict(model.named_parameters()), dict(model.named_modules())
    masks = []
    for name, axis in knockout.params:
        if name not in named_params:
            raise BumpsError(f"the model has no parameter {name!r}{did_you_mean(name, list(named_params))}")
        p = named_params[name]
        masks.append((p, _unit_mask(p.shape, axis, knockout.units, p, f"parameter {name!r}")))
    for name, _axis in knockout.outputs:
        if name not in named_modules or name == "":
            raise BumpsError(f"the model has no submodule {name!r}{did_you_mean(name, list(named_modules)[1:])}")
    with torch.no_grad():
        for p, mask in masks:
            p.mul_(mask)
            state = optimizer.state.get(p, {}) if optimizer is not None else {}
            for t in state.values():
                if isinstance(t, torch.Tensor) and t.shape == p.shape:
                    t.mul_(mask.to(t.dtype))
            hooks.handles.append(p.register_hook(lambda g, mask=mask: g * mask))
    for name, axis in knockout.outputs:
        units, what = knockout.units, f"output of {name!r}"

        def hook(_module, _inputs, out, axis=axis, units=units, what=what):
            return _zero_output(out, lambda t: _unit_mask(t.shape, axis, units, t, what))

        hooks.handles.append(named_modules[name].register_forward_hook(hook))
    return hooks


@dataclass
class KnockoutSchedule:
    """Apply knockouts at their ``from_step`` in a training loop: call :meth:`before_step` before each step.

    Attributes
    ----------
    model : torch.nn.Module
        The model.
    knockouts : list of UnitKnockout
        The knockouts; each is applied once, at the first :meth:`before_step` with ``step >= from_step``.
    optimizer : torch.optim.Optimizer or None
        Whose moments of the removed slices are zeroed.
    """

    model: nn.Module
    knockouts: list[UnitKnockout]
    optimizer: torch.optim.Optimizer | None = None
    hooks: KnockoutHooks = field(default_factory=KnockoutHooks)
    applied: set[int] = field(default_factory=set)

    def before_step(self, step: int) -> None:
        """Apply every knockout due at ``step`` that is not applied yet.

        Parameters
        ----------
        step : int
            The step about to be taken (its forward pass runs after this call).
        """
        for i, ko in enumerate(self.knockouts):
            if i not in self.applied and step >= ko.from_step:
                apply_knockout(self.model, ko, self.optimizer, self.hooks)
                self.applied.add(i)

    def remove(self) -> None:
        """Remove every hook of the applied knockouts."""
        self.hooks.remove()


def save_checkpoint(path, model: nn.Module, optimizer: torch.optim.Optimizer, step: int, **extra) -> Path:
    """Write weights and optimizer state atomically, to continue training from ``step``.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint file.
    model : torch.nn.Module
        Its ``state_dict`` is stored (copied to the CPU).
    optimizer : torch.optim.Optimizer
        Its ``state_dict`` is stored.
    step : int
        The next step to take (the number of steps taken so far).
    **extra
        More plain data to store (tensors, numbers, strings, lists, dicts).

    Returns
    -------
    pathlib.Path
        The file written.
    """
    weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return atomic_save({"step": int(step), "model": weights, "optimizer": optimizer.state_dict(), **extra}, path)


def load_checkpoint(path, model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[int, dict]:
    """Load a :func:`save_checkpoint` file into ``model`` and ``optimizer`` (``weights_only=True``).

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint file.
    model : torch.nn.Module
        Receives the weights (shapes must match).
    optimizer : torch.optim.Optimizer
        Receives the optimizer state.

    Returns
    -------
    step : int
        The next step to take.
    extra : dict
        The other stored entries.

    Raises
    ------
    BumpsError
        If the file is not a checkpoint of this form or does not fit the model.
    """
    obj = safe_load(path)
    if not isinstance(obj, dict) or not {"step", "model", "optimizer"} <= set(obj):
        raise BumpsError(f"{path} is not a knockout checkpoint (needs keys step, model, optimizer)")
    try:
        model.load_state_dict(obj["model"])
        optimizer.load_state_dict(obj["optimizer"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise BumpsError(f"{path} does not fit this model/optimizer: {str(exc).splitlines()[0][:120]}") from None
    return int(obj["step"]), {k: v for k, v in obj.items() if k not in ("step", "model", "optimizer")}


def score(
    plan: KnockoutPlan, at_step: int, steps: np.ndarray, curve: np.ndarray, peak_steps: np.ndarray
) -> KnockoutOutcome:
    """The outcome of one continuation: does the bump persist, and how much of its fall is left.

    Parameters
    ----------
    plan : KnockoutPlan
        The intervention; ``plan.event`` is the original bump (its ``drop`` > 0 and ``sign``).
    at_step : int
        The step from which the removal applied.
    steps : numpy.ndarray
        ``[T]`` increasing steps of the continued curve (covering the event's peak and end steps).
    curve : numpy.ndarray
        ``[T]`` the continued curve, in its recorded orientation (``plan.event.sign`` is applied here).
    peak_steps : numpy.ndarray
        Peak steps of the bumps the detector found on the continued curve.

    Returns
    -------
    KnockoutOutcome
        ``persists`` (:func:`bumps.knockout.persists`) and ``drop_ratio``: the oriented curve's fall from
        the sample at the event's peak step to the sample at its end step (nearest at or before each),
        over ``plan.event.drop``.

    Raises
    ------
    BumpsError
        If the curve does not cover the event's peak and end, or the event's drop is not positive.
    """
    steps, x = np.asarray(steps), plan.event.sign * np.asarray(curve, dtype=np.float64)
    ev = plan.event
    if not ev.drop > 0:
        raise BumpsError(f"the event's drop must be > 0 to score a knockout (got {ev.drop})")
    if len(steps) != len(x) or not len(steps) or steps[0] > ev.peak_step or steps[-1] < ev.end_step:
        raise BumpsError(
            f"the continued curve covers steps {steps[0] if len(steps) else '-'}..{steps[-1] if len(steps) else '-'};"
            f" it must cover the event's peak {ev.peak_step} and end {ev.end_step}"
        )
    p = int(np.searchsorted(steps, ev.peak_step, side="right")) - 1
    e = int(np.searchsorted(steps, ev.end_step, side="right")) - 1
    return KnockoutOutcome(plan, int(at_step), persists(peak_steps, ev), float((x[p] - x[e]) / ev.drop))
