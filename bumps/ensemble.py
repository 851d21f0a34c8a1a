"""Stacked ensembles of recorded runs: M models of equal shapes trained in one step, each with its own file.

The core of the step-based task trainers (:mod:`bumps.digits.train`, :mod:`bumps.induction.train`); it knows
no model. A task supplies

* a :class:`Member` subclass: one model's config, initial parameters, data and recorder axes;
* a :class:`StackedTrainer` subclass whose ``_update`` runs one forward and backward over the stacked
  parameters (every tensor carries a leading model axis) inside ``self._tracked()``, takes
  ``self._grads(loss)``, records, and calls ``self._adamw_step(grads)``. Two hooks are optional:
  ``_start()`` runs once before the first step (e.g. a checkpoint at step 0), and ``_select(index)`` keeps
  the rows ``index`` of a task's own stacked tensors (e.g. head masks) when finished members leave the
  stack (call ``super()._select(index)``).

The trainer keeps the unfinished members' parameters stacked (``[M, ...]``) with one stacked AdamW
(:mod:`bumps.adamw`), so model i follows exactly the equations of its own single run. Every
``autosave_every`` steps each unfinished member's run file is saved with its weights and AdamW state
(``resume``); on Ctrl-C (or at ``stop_at``) they are saved and :class:`Interrupted` is raised, and rerunning
continues from the last save. A member whose step reaches its ``cfg.steps`` is closed (its run file final)
and dropped from the stack. Members may differ in ``lr``, ``warmup``, ``weight_decay``, seeds and steps;
:func:`prepare` refuses those that differ in what the stacked step shares (:data:`TRAINER_FIELDS` and the
task's shapes).

A member's config needs ``seed``, ``steps``, ``lr``, ``warmup`` (steps of linear warm-up, 0: none),
``weight_decay``, ``betas``, ``eps``, ``record_every``, ``device``, ``validate()`` and ``as_dict()``; a
dataclass config gets ``as_dict``, ``from_dict``, ``the_data_seed`` and the size and optimizer checks from
:class:`StepConfig`.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, fields
from pathlib import Path

import torch

from bumps.adamw import AdamWState, adamw_step, member_rates
from bumps.errors import BumpsError
from bumps.io.provenance import settings_hash
from bumps.io.runfile import check_writable, is_run, safe_load
from bumps.recorder import KIND, Recorder
from bumps.stopflag import StopFlag

RESUMABLE = ("steps",)  # settings a continued run may change
TRAINER_FIELDS = ("betas", "eps", "record_every", "loss_dtype", "device")  # read from the first member only


class StepConfig:
    """Methods of a step-based task's dataclass config (a mixin: it adds no fields).

    The dataclass has the fields of the module docstring and ``data_seed`` (None: the model seed),
    ``loss_dtype`` and ``dtype``.
    """

    @property
    def the_data_seed(self) -> int:
        """The data seed in effect (``data_seed``, else ``seed``)."""
        return self.seed if self.data_seed is None else self.data_seed

    def as_dict(self) -> dict:
        """Every field as plain data (what a run records)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, stored: dict):
        """The config a run recorded (keys that are not fields dropped)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in stored.items() if k in names})

    def check_sizes(self, *names: str) -> None:
        """Check the named size fields, ``d_model``, ``n_heads``, ``train_size`` and the head width.

        The config needs the fields ``d_model``, ``n_heads`` and ``train_size`` (None: infinite data).

        Parameters
        ----------
        *names : str
            Further fields that must each be an int >= 1 (a bool is refused).

        Raises
        ------
        BumpsError
            Naming the first bad field: one of ``names``, ``d_model`` or ``n_heads`` not a positive int,
            ``train_size`` neither None nor a positive int, or ``d_model`` not divisible by ``n_heads``.
        """
        for name in (*dict.fromkeys((*names, "d_model", "n_heads")), "train_size"):
            v = getattr(self, name)
            if name == "train_size" and v is None:
                continue
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise BumpsError(f"`{name}` must be a positive integer (got {v!r})")
        if self.d_model % self.n_heads:
            raise BumpsError(f"`d_model` {self.d_model} must be divisible by `n_heads` {self.n_heads}")

    def check_training(self) -> None:
        """Check the optimizer's and the dtypes' fields.

        Raises
        ------
        BumpsError
            Naming the field: ``lr`` not a positive finite real number, a negative ``weight_decay``,
            ``warmup``, ``seed`` or ``data_seed``, a ``loss_dtype`` or ``dtype`` other than float64/float32.
        """
        lr = self.lr
        if isinstance(lr, bool) or not (isinstance(lr, numbers.Real) and lr > 0 and math.isfinite(lr)):
            raise BumpsError(f"`lr` must be a positive number (got {lr!r})")
        if self.weight_decay < 0 or self.warmup < 0 or self.seed < 0 or (self.data_seed or 0) < 0:
            raise BumpsError("`weight_decay`, `warmup`, `seed` and `data_seed` must be >= 0")
        if self.loss_dtype not in ("float64", "float32") or self.dtype not in ("float64", "float32"):
            raise BumpsError(
                f"`loss_dtype` and `dtype` must be float64 or float32 (got {self.loss_dtype}, {self.dtype})"
            )


class Interrupted(BumpsError):
    """Training was stopped (Ctrl-C, or ``stop_at``); every unfinished run file holds what it recorded and can
    be continued."""


def default_run_path(task: str, cfg, defaults) -> Path:
    """``runs/{task}_seed{seed}.pt``, or ``runs/{task}_{hash}_seed{seed}.pt`` when settings other than the seed
    differ from ``defaults`` (``hash``: :func:`bumps.io.provenance.settings_hash` of those), so that runs of
    different settings never share a file. ``steps`` and ``device`` do not count (a run may be extended).

    Parameters
    ----------
    task : str
        The file name's stem, e.g. ``"digits"``.
    cfg, defaults
        The run's config and the task's default config (``as_dict()`` and ``seed``).

    Returns
    -------
    pathlib.Path
        Relative to the working directory.
    """
    base, mine = defaults.as_dict(), cfg.as_dict()
    changed = {k: v for k, v in mine.items() if k not in ("seed", "steps", "device") and base[k] != v}
    tag = f"_{settings_hash(changed)}" if changed else ""
    return Path("runs") / f"{task}{tag}_seed{cfg.seed}.pt"


def run_paths(configs: Sequence, out: str | Path | None, task: str, defaults) -> list[Path]:
    """One run file per model.

    Parameters
    ----------
    configs : sequence of configs
        The models (``seed``).
    out : str, pathlib.Path or None
        None: each model's :func:`default_run_path`. A pattern: ``{seed}`` in it is replaced by each model's
        seed; it must contain ``{seed}`` when there is more than one model.
    task, defaults
        As in :func:`default_run_path`.

    Returns
    -------
    list of pathlib.Path
        In the order of ``configs``.

    Raises
    ------
    BumpsError
        If several models would share one file.
    """
    if out is None:
        return [default_run_path(task, c, defaults) for c in configs]
    pattern = str(out)
    if len(configs) > 1 and "{seed}" not in pattern:
        raise BumpsError(f"`out` {pattern} must contain {{seed}} for several seeds, e.g. runs/{task}_seed{{seed}}.pt")
    return [Path(pattern.replace("{seed}", str(c.seed))) for c in configs]


class Member:
    """One model of an ensemble: its config, run file, recorder and resumable state.

    Parameters
    ----------
    cfg
        The model's config (module docstring).
    out : pathlib.Path
        Its run file.
    command : str or None
        The command line recorded in the run (None: ``sys.argv``).
    params : dict of str to torch.Tensor
        Initial parameters (no model axis).
    axes : dict of str to tuple of str
        The recorded series and their axes after time (:class:`bumps.recorder.Recorder`).
    setup_choices : dict
        The task's pinned choices, recorded in the run config.
    """

    noun = "a run"  # in the refusal of a file this cannot continue, e.g. "a digits run"

    def __init__(self, cfg, out: Path, command: str | None, params: dict, axes: dict, setup_choices: dict):
        self.cfg, self.out, self.run = cfg, out, None
        self.params = params
        self.opt: dict | None = None
        self.step = 0
        self.state: Callable[[], dict] = lambda: {}
        self.recorder = Recorder(
            out,
            config={**cfg.as_dict(), "setup_choices": setup_choices},
            seed=cfg.seed,
            axes=axes,
            every=cfg.record_every,
            autosave_every=0,  # the trainer saves after whole steps, with the weights
            command=command,
            extras=lambda: self.state(),
        )

    def resume_from(self, run: dict) -> None:
        """Continue from a run file's last save (or keep it, when finished with at least ``cfg.steps``)."""
        if not is_run(run) or run.get("kind") != KIND or "resume" not in run:
            raise BumpsError(
                f"{self.out} exists and is not {self.noun} this can continue; use another `out` or `force`"
            )
        self.recorder.restore(run, ignore=RESUMABLE + ("setup_choices",))
        res = run["resume"]
        self.params = {k: v.to(self.cfg.device) for k, v in res["params"].items()}
        self.opt, self.step = res["optimizer"], int(res["step"])
        self.restore_extra(run)
        if run["config"].get("final") and self.step >= self.cfg.steps:
            self.run = run

    def restore_extra(self, run: dict) -> None:
        """Restore what :meth:`extra_state` saved (default: nothing)."""

    def extra_state(self) -> dict:
        """Run-file entries saved beside ``resume`` (default: none)."""
        return {}


class StackedTrainer:
    """Trains the unfinished members of an ensemble together (module docstring).

    Parameters
    ----------
    members : list of Member
        The models; the unfinished ones must be at the same step.
    param_order : sequence of str
        The parameter names, in the order they are stacked.
    progress : callable or None
        ``progress(done, total, loss=...)`` after every step; steps summed over members.
    autosave_every : int
        Steps between autosaves; 0: none.
    stop_at : int or None
        Stop as Ctrl-C would after this step (tests).
    """

    def __init__(self, members: list[Member], param_order: Sequence[str], progress, autosave_every: int, stop_at):
        self.members, self.progress, self.autosave_every, self.stop_at = members, progress, autosave_every, stop_at
        self.active = [i for i, m in enumerate(members) if m.run is None]
        for i in self.active:
            self.members[i].state = lambda i=i: self._state(i)
        if not self.active:
            return
        steps = {members[i].step for i in self.active}
        if len(steps) > 1:
            raise BumpsError(f"the unfinished runs are at different steps {sorted(steps)}; continue them separately")
        self.step = steps.pop()
        cfg = members[self.active[0]].cfg
        self.cfg, self.dev = cfg, torch.device(cfg.device)
        self.params = {k: torch.stack([members[i].params[k] for i in self.active]) for k in param_order}
        zero = AdamWState.zeros(self.params)
        self.opt = AdamWState.stack(
            [members[i].opt if members[i].opt is not None else zero.member(j) for j, i in enumerate(self.active)],
            self.dev,
        )

    def _state(self, i: int) -> dict:
        """Member ``i``'s ``resume`` entry (weights, AdamW state, step) and :meth:`Member.extra_state`.

        Called by the member's recorder when it saves, which happens only while ``i`` is active (a member is
        closed before it leaves the stack)."""
        m = self.members[i]
        j = self.active.index(i)
        params = {k: v[j].detach().cpu().clone() for k, v in self.params.items()}
        return {"resume": {"params": params, "optimizer": self.opt.member(j), "step": m.step}, **m.extra_state()}

    def _update(self) -> float:
        """One step of every active member; returns a loss to show (the first member's)."""
        raise NotImplementedError

    @contextlib.contextmanager
    def _tracked(self) -> Iterator[None]:
        """Autograd tracks the stacked parameters inside the block (and not after it)."""
        for v in self.params.values():
            v.requires_grad_(True)
        try:
            yield
        finally:
            for v in self.params.values():
                v.requires_grad_(False)

    def _grads(self, loss: torch.Tensor) -> dict[str, torch.Tensor]:
        """Gradients of ``loss`` (summed over members) with respect to each stacked parameter, by name."""
        names = list(self.params)
        return dict(zip(names, torch.autograd.grad(loss, [self.params[k] for k in names]), strict=True))

    def _start(self) -> None:
        """Called once before the first step (default: nothing)."""

    def _select(self, index: torch.Tensor) -> None:
        """Keep the stacked rows ``index`` (the members still training); extend for a task's own stacks."""
        self.params = {k: v[index].clone() for k, v in self.params.items()}
        self.opt = self.opt.select(index)

    def _adamw_step(self, grads: dict[str, torch.Tensor]) -> None:
        """AdamW with each member's lr (after its linear warm-up) and weight decay; then ``step`` + 1."""
        members = [self.members[i] for i in self.active]
        lr, wd = member_rates([m.cfg for m in members], [self.step] * len(members), self.dev)
        adamw_step(self.params, grads, self.opt, lr, wd, self.cfg.betas, self.cfg.eps)
        self.step += 1
        for m in members:
            m.step = self.step

    def _drop_finished(self) -> None:
        done = [j for j, i in enumerate(self.active) if self.members[i].step >= self.members[i].cfg.steps]
        for j in done:
            m = self.members[self.active[j]]
            m.run = m.recorder.close("finished")
        if done:
            keep = [j for j in range(len(self.active)) if j not in done]
            self._select(torch.tensor(keep, dtype=torch.long, device=self.dev))
            self.active = [self.active[j] for j in keep]

    def run(self) -> None:
        """Train until every member reaches its steps (or raise :class:`Interrupted` after saving)."""
        if not self.active:
            return
        total = sum(m.cfg.steps for m in self.members)
        self._start()
        with StopFlag() as flag:
            while True:
                self._drop_finished()
                if not self.active:
                    return
                loss = self._update()
                if self.autosave_every and self.step % self.autosave_every == 0:
                    for i in self.active:
                        if self.members[i].step < self.members[i].cfg.steps:
                            self.members[i].recorder.save(final=False)
                if self.progress is not None:
                    done = sum(min(m.step, m.cfg.steps) for m in self.members)
                    self.progress(done, total, loss=loss)
                if flag.hit or (self.stop_at is not None and self.step >= self.stop_at):
                    unfinished = [i for i in self.active if self.members[i].step < self.members[i].cfg.steps]
                    for i in unfinished:
                        self.members[i].recorder.save(final=False)
                    self._drop_finished()
                    outs = ", ".join(str(self.members[i].out) for i in unfinished)
                    raise Interrupted(
                        f"interrupted at step {self.step}; saved {outs}; rerun the same command to continue"
                    )


def prepare(
    configs: Sequence, outs: Sequence[str | Path], resume: str, shape_fields: Sequence[str], who: str
) -> list[Path]:
    """Validate an ensemble's configs and outputs.

    Parameters
    ----------
    configs : sequence of configs
        The models (each validated here); equal in ``shape_fields``.
    outs : sequence of str or pathlib.Path
        One distinct, writable run file per model.
    resume : {"auto", "never"}
        Checked only.
    shape_fields : sequence of str
        Config fields that models trained together must share, besides :data:`TRAINER_FIELDS` (the stacked
        AdamW's ``betas`` and ``eps``, the record cadence, the loss dtype and the device, which the trainer
        takes from the first member), checked too where a config has them.
    who : str
        The trainer's name, for the error message.

    Returns
    -------
    list of pathlib.Path
        The output paths (:func:`bumps.io.runfile.check_writable`), in order.

    Raises
    ------
    BumpsError
        For bad settings, unequal shapes, duplicate or unwritable outputs.
    """
    if not configs or len(configs) != len(outs):
        raise BumpsError(f"{who} needs one out per config (got {len(configs)} configs, {len(outs)} outs)")
    if resume not in ("auto", "never"):
        raise BumpsError(f"`resume` must be auto or never (got {resume!r})")
    shared = list(dict.fromkeys([*shape_fields, *(k for k in TRAINER_FIELDS if hasattr(configs[0], k))]))
    for c in configs:
        c.validate()
        diff = [k for k in shared if getattr(c, k) != getattr(configs[0], k)]
        if diff:
            raise BumpsError(f"models trained together need equal {', '.join(diff)}; train them separately")
    paths = [check_writable(o) for o in outs]
    if len({o.resolve() for o in paths}) != len(paths):
        raise BumpsError("two models write the same `out`; give each its own file (put {seed} in it)")
    return paths


def resume_members(members: Sequence[Member], resume: str) -> None:
    """Continue every member whose run file exists (:meth:`Member.resume_from`).

    Parameters
    ----------
    members : sequence of Member
        The ensemble, before training.
    resume : {"auto", "never"}
        ``"never"``: do nothing (each member starts fresh and replaces its file when it saves).
    """
    if resume == "auto":
        for m in members:
            if m.out.exists():
                m.resume_from(safe_load(m.out))
