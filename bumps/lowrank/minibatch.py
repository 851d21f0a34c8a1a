"""The toy factorization trained by minibatch SGD on noisy entries: a real noisy training curve.

Full-batch runs give clean curves. This trains the same kind of model, ``A Bᵀ ≈ M`` with
``M = Σ_k s_k u_k v_kᵀ`` (orthonormal ``u``, ``v``; distinct strengths, so the modes are learned
one after another from a small init), by SGD on ``batch`` entries drawn uniformly per step, each
observed with fresh Gaussian noise of sigma ``noise``. The per-step minibatch loss is the noisy,
heavy-tailed (a mean of few squared errors), plateau-then-drop curve researchers log, with an
irreducible floor ``noise²``; every ``eval_every`` steps the full loss against the clean target
is recorded too, on its own cadence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bumps.errors import BumpsError


@dataclass(frozen=True)
class MinibatchConfig:
    """Settings of :func:`train_minibatch`.

    Attributes
    ----------
    dim : int, default 20
        ``M`` is ``dim × dim``.
    strengths : tuple of float, default (8.0, 4.0, 2.0)
        The singular values ``s_k`` (one learned pair per value).
    init : float, default 1e-3
        Standard deviation of the initial entries of ``A`` and ``B``.
    lr : float, default 0.25
        SGD learning rate.
    batch : int, default 64
        Entries per step.
    noise : float, default 0.05
        Sigma of the Gaussian noise on every observed entry.
    steps : int, default 6000
        SGD steps.
    eval_every : int, default 50
        Steps between records of the full clean loss.
    seed : int, default 0
        Seeds the target, the init and the batches.
    """

    dim: int = 20
    strengths: tuple[float, ...] = (8.0, 4.0, 2.0)
    init: float = 1e-3
    lr: float = 0.25
    batch: int = 64
    noise: float = 0.05
    steps: int = 6000
    eval_every: int = 50
    seed: int = 0


@dataclass(frozen=True)
class MinibatchRun:
    """What :func:`train_minibatch` records: ``loss [steps]`` per step, ``eval_loss`` on ``eval_step``."""

    config: MinibatchConfig
    step: np.ndarray  # [steps], 1..steps
    loss: np.ndarray  # [steps] minibatch loss at each step (before its update)
    eval_step: np.ndarray  # [steps // eval_every]
    eval_loss: np.ndarray  # [steps // eval_every] full loss against the clean target


def train_minibatch(cfg: MinibatchConfig = MinibatchConfig()) -> MinibatchRun:
    """Train the factorization by minibatch SGD and record its losses.

    Parameters
    ----------
    cfg : MinibatchConfig
        The settings.

    Returns
    -------
    MinibatchRun
        The per-step minibatch losses and the full loss every ``cfg.eval_every`` steps.

    Raises
    ------
    BumpsError
        If a size or count is below 1, or ``noise``, ``init`` or ``lr`` is negative.
    """
    for name in ("dim", "batch", "steps", "eval_every"):
        if getattr(cfg, name) < 1:
            raise BumpsError(f"`{name}` must be >= 1 (got {getattr(cfg, name)})")
    if min(cfg.noise, cfg.init, cfg.lr) < 0 or not cfg.strengths:
        raise BumpsError("`noise`, `init` and `lr` must be >= 0 and `strengths` not empty")
    g = torch.Generator().manual_seed(cfg.seed)
    r = len(cfg.strengths)
    u, _ = torch.linalg.qr(torch.randn(cfg.dim, r, generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(cfg.dim, r, generator=g, dtype=torch.float64))
    target = (u * torch.tensor(cfg.strengths, dtype=torch.float64)) @ v.T  # [dim, dim]
    a = (cfg.init * torch.randn(cfg.dim, r, generator=g, dtype=torch.float64)).requires_grad_()
    b = (cfg.init * torch.randn(cfg.dim, r, generator=g, dtype=torch.float64)).requires_grad_()
    opt = torch.optim.SGD([a, b], lr=cfg.lr)
    losses, evals = np.empty(cfg.steps), []
    for step in range(cfg.steps):
        i = torch.randint(0, cfg.dim, (cfg.batch,), generator=g)
        j = torch.randint(0, cfg.dim, (cfg.batch,), generator=g)
        observed = target[i, j] + cfg.noise * torch.randn(cfg.batch, generator=g, dtype=torch.float64)
        loss = ((a[i] * b[j]).sum(1) - observed).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses[step] = loss.item()
        if (step + 1) % cfg.eval_every == 0:
            with torch.no_grad():
                evals.append(((a @ b.T - target).square().mean()).item())
    eval_step = np.arange(1, len(evals) + 1) * cfg.eval_every
    return MinibatchRun(cfg, np.arange(1, cfg.steps + 1), losses, eval_step, np.array(evals))
