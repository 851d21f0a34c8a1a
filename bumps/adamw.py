"""AdamW over parameters stacked on a leading model axis, with per-model lr, weight decay and step.

Elementwise it is exactly ``torch.optim.AdamW`` (decoupled decay ``θ ← θ(1 − lr·wd)``, then the
bias-corrected Adam step), so the state of model i is just slice i of the stacked state. What
``torch.optim`` cannot do is give every model its own learning rate (warmup, sweeps), weight
decay and step count; here they are [M] tensors broadcast over each parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class AdamWState:
    """Optimizer state of M stacked models: each model's step count and every parameter's moments.

    Attributes
    ----------
    step : torch.Tensor
        ``[M]`` float64: the number of AdamW steps each model has taken.
    exp_avg : dict of str to torch.Tensor
        First-moment estimate of each parameter, ``[M, ...]`` like the parameter.
    exp_avg_sq : dict of str to torch.Tensor
        Second-moment estimate of each parameter, ``[M, ...]``.
    """

    step: torch.Tensor
    exp_avg: dict[str, torch.Tensor]
    exp_avg_sq: dict[str, torch.Tensor]

    @classmethod
    def zeros(cls, params: dict[str, torch.Tensor]) -> AdamWState:
        """The state before the first step.

        Parameters
        ----------
        params : dict of str to torch.Tensor
            Stacked parameters ``[M, ...]`` (not empty); M is read from the first one.

        Returns
        -------
        AdamWState
            Zero steps (on the first parameter's device) and zero moments shaped like
            each parameter.
        """
        first = next(iter(params.values()))
        return cls(
            torch.zeros(first.shape[0], dtype=torch.float64, device=first.device),
            {k: torch.zeros_like(v) for k, v in params.items()},
            {k: torch.zeros_like(v) for k, v in params.items()},
        )

    def member(self, i: int) -> dict:
        """Model i's state as plain tensors (for run files and checkpoints).

        Parameters
        ----------
        i : int
            Index on the model axis.

        Returns
        -------
        dict
            ``step`` (float) and ``exp_avg`` / ``exp_avg_sq`` (name → CPU tensor, a copy).
        """
        one = lambda d: {k: v[i].detach().cpu().clone() for k, v in d.items()}  # noqa: E731
        return {"step": float(self.step[i]), "exp_avg": one(self.exp_avg), "exp_avg_sq": one(self.exp_avg_sq)}

    @classmethod
    def stack(cls, members: list[dict], device) -> AdamWState:
        """Inverse of :meth:`member` for a list of models.

        Parameters
        ----------
        members : list of dict
            One :meth:`member` dict per model, all with the same parameter names and shapes.
        device : str or torch.device
            Where the stacked state lives.

        Returns
        -------
        AdamWState
            The models' states stacked on a leading model axis, in list order.
        """
        return cls(
            torch.tensor([m["step"] for m in members], dtype=torch.float64, device=device),
            {k: torch.stack([m["exp_avg"][k] for m in members]).to(device) for k in members[0]["exp_avg"]},
            {k: torch.stack([m["exp_avg_sq"][k] for m in members]).to(device) for k in members[0]["exp_avg_sq"]},
        )

    def select(self, keep: torch.Tensor) -> AdamWState:
        """Only the models at indices ``keep`` (early stop removes finished models).

        Parameters
        ----------
        keep : torch.Tensor
            Model indices (or a boolean mask ``[M]``), as for tensor indexing.

        Returns
        -------
        AdamWState
            A new state holding those models, in ``keep``'s order.
        """
        return AdamWState(
            self.step[keep],
            {k: v[keep] for k, v in self.exp_avg.items()},
            {k: v[keep] for k, v in self.exp_avg_sq.items()},
        )


def member_rates(configs: list, steps: list[int], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Each model's learning rate after its linear warm-up, and its weight decay, for :func:`adamw_step`.

    Parameters
    ----------
    configs : list
        One config per model, with ``lr``, ``warmup`` (steps of linear warm-up from 0; 0: none) and
        ``weight_decay``.
    steps : list of int
        Each model's step (or epoch) count before this update: its lr is ``lr * min(step / warmup, 1)``.
    device : torch.device or str
        Where the tensors go.

    Returns
    -------
    tuple of torch.Tensor
        ``lr`` and ``weight_decay``, each ``[M]`` float64.
    """
    lr = [c.lr * (min(t / c.warmup, 1.0) if c.warmup else 1.0) for c, t in zip(configs, steps, strict=True)]
    wd = [c.weight_decay for c in configs]
    return torch.tensor(lr, dtype=torch.float64, device=device), torch.tensor(wd, dtype=torch.float64, device=device)


def _per_model(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """[M] float64 → [M, 1, ..., 1] in ``like``'s dtype (computed in float64 as torch.optim does in Python)."""
    return x.to(like.dtype).view(-1, *([1] * (like.dim() - 1)))


@torch.no_grad()
def adamw_step(
    params: dict[str, torch.Tensor],
    grads: dict[str, torch.Tensor],
    state: AdamWState,
    lr: torch.Tensor,
    weight_decay: torch.Tensor,
    betas: tuple[float, float],
    eps: float,
) -> None:
    """One AdamW step of every model, in place.

    Decays each parameter by ``1 − lr·weight_decay``, updates the moments, then takes
    the bias-corrected Adam step, elementwise as ``torch.optim.AdamW``; ``state.step``
    is incremented first.

    Parameters
    ----------
    params : dict of str to torch.Tensor
        Stacked parameters ``[M, ...]``, updated in place.
    grads : dict of str to torch.Tensor
        Their gradients, same names and shapes.
    state : AdamWState
        The models' optimizer state, updated in place.
    lr : torch.Tensor
        ``[M]`` float64: each model's learning rate for this step.
    weight_decay : torch.Tensor
        ``[M]`` float64: each model's decoupled weight decay.
    betas : tuple of (float, float)
        Adam's (β1, β2), shared by all models.
    eps : float
        Added to the bias-corrected √(second moment), shared by all models.
    """
    beta1, beta2 = betas
    state.step += 1
    decay = 1 - lr * weight_decay
    step_size = lr / (1 - beta1**state.step)
    bc2_sqrt = (1 - beta2**state.step).sqrt()
    for name, param in params.items():
        grad, m, v = grads[name], state.exp_avg[name], state.exp_avg_sq[name]
        param.mul_(_per_model(decay, param))
        m.lerp_(grad, 1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (v.sqrt() / _per_model(bc2_sqrt, v)).add_(eps)
        param.sub_(_per_model(step_size, param) * m / denom)
