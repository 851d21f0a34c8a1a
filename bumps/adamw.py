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
    """Moments of every parameter [M, ...] and each model's step count [M] (float64)."""

    step: torch.Tensor
    exp_avg: dict[str, torch.Tensor]
    exp_avg_sq: dict[str, torch.Tensor]

    @classmethod
    def zeros(cls, params: dict[str, torch.Tensor]) -> AdamWState:
        first = next(iter(params.values()))
        return cls(
            torch.zeros(first.shape[0], dtype=torch.float64, device=first.device),
            {k: torch.zeros_like(v) for k, v in params.items()},
            {k: torch.zeros_like(v) for k, v in params.items()},
        )

    def member(self, i: int) -> dict:
        """Model i's state as plain tensors (for run files and checkpoints)."""
        one = lambda d: {k: v[i].detach().cpu().clone() for k, v in d.items()}  # noqa: E731
        return {"step": float(self.step[i]), "exp_avg": one(self.exp_avg), "exp_avg_sq": one(self.exp_avg_sq)}

    @classmethod
    def stack(cls, members: list[dict], device) -> AdamWState:
        """Inverse of :meth:`member` for a list of models."""
        return cls(
            torch.tensor([m["step"] for m in members], dtype=torch.float64, device=device),
            {k: torch.stack([m["exp_avg"][k] for m in members]).to(device) for k in members[0]["exp_avg"]},
            {k: torch.stack([m["exp_avg_sq"][k] for m in members]).to(device) for k in members[0]["exp_avg_sq"]},
        )

    def select(self, keep: torch.Tensor) -> AdamWState:
        """Only the models at indices ``keep`` (early stop removes finished models)."""
        return AdamWState(
            self.step[keep],
            {k: v[keep] for k, v in self.exp_avg.items()},
            {k: v[keep] for k, v in self.exp_avg_sq.items()},
        )


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
    """One AdamW step in place; ``lr`` and ``weight_decay`` are [M] float64 tensors."""
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
