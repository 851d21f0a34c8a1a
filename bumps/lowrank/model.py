"""Toy multi-component model: learn a rank-r matrix with K learned outer products.

Target ``A = Σ_m s_m a_m b_mᵀ`` (d×d), model ``Ã = Σ_k ã_k b̃_kᵀ``, loss
``½‖A − Ã‖²_F``. Shapes follow one convention throughout:

    N seeds, d dimension, r target rank, K learned pairs
    a, b  [N, d, r]    target vectors (columns)
    U, V  [N, d, K]    learned vectors ã_k, b̃_k (columns)

Plain GD never needs the d×d residual: with ``P_a = aᵀU``, ``P_b = bᵀV`` (r×K) and
``G_U = UᵀU``, ``G_V = VᵀV`` (K×K), the update ``U' = U M_U + a N_U`` (with
``M_U = (1 − lr·wd) I − lr G_V`` and ``N_U = lr S P_b``) closes over those small
matrices, so a GD step costs O(N K²(r + K)) whatever d is. Adam is not
rotation-invariant, so its path keeps the d-dimensional vectors, but still uses
the factored gradient ``∂L/∂U = U G_V − a S P_b`` (O(N d K (r + K)) per step).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from bumps.errors import BumpsError
from bumps.io.provenance import settings_hash, settings_of_run
from bumps.io.runfile import new_run, versions
from bumps.threads import choose_threads

OPTIMIZERS = ("gd", "adam", "adamw")
TARGETS = ("random", "orthonormal")
DTYPES = {"float64": torch.float64, "float32": torch.float32}


@dataclass
class LowRankConfig:
    """Every parameter of a toy run. Defaults show the post's phenomena at rank 4 (docs/tasks/lowrank.md).

    Attributes
    ----------
    rank : int, default 4
        r, the target rank: the number of target pairs (a_m, b_m).
    dim : int, default 100
        d, the dimension of every vector (the target is d×d); at least ``rank``.
    learned : int or None, default None
        K, the number of learned pairs (ã_k, b̃_k); None means K = ``rank``.
    seeds : int, default 16
        N, the number of independent runs simulated together (axis 1 of every record).
    steps : int, default 3000
        Number of optimizer steps; records run from step 0 to step ``steps``.
    lr : float, default 0.01
        Learning rate.
    init_scale : float, default 0.1
        Standard deviation of each entry of the initial learned vectors.
    optimizer : {"gd", "adam", "adamw"}, default "gd"
        Full-batch gradient descent, Adam, or AdamW (as ``torch.optim``).
    weight_decay : float, default 0.0
        Weight decay: an L2 term in the gradient for ``"gd"`` and ``"adam"``,
        decoupled for ``"adamw"``.
    targets : {"random", "orthonormal"}, default "random"
        Target vectors: independent random unit vectors, or the columns of a random
        orthonormal matrix (for a and for b).
    singular_values : list of float or None, default None
        The strengths s_m of the ``rank`` target pairs, finite and positive; None
        means all 1.
    record_every : int, default 10
        Record period, in steps (see :func:`record_steps`).
    seed : int, default 0
        Base seed: seed i of the run draws its targets and initial vectors from a
        generator seeded by ``(seed, i)`` alone, so it is the same whatever ``seeds`` is.
    device : str, default "cpu"
        torch device of the simulation.
    dtype : {"float64", "float32"}, default "float64"
        dtype of the simulation and of its records.
    betas : tuple of (float, float), default (0.9, 0.999)
        Adam/AdamW (β1, β2); unused by ``"gd"``.
    eps : float, default 1e-8
        Adam/AdamW epsilon; unused by ``"gd"``.
    """

    rank: int = 4
    dim: int = 100
    learned: int | None = None  # K; None means K = rank
    seeds: int = 16
    steps: int = 3000
    lr: float = 0.01
    init_scale: float = 0.1
    optimizer: str = "gd"
    weight_decay: float = 0.0
    targets: str = "random"
    singular_values: list[float] | None = None  # None means all 1
    record_every: int = 10
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float64"
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8

    @property
    def n_learned(self) -> int:
        """K, the number of learned pairs (``learned``, or ``rank`` when it is None)."""
        return self.rank if self.learned is None else self.learned

    def strengths(self) -> list[float]:
        """The target strengths s_m.

        Returns
        -------
        list of float
            ``singular_values``, or ``rank`` ones when it is None.
        """
        return [1.0] * self.rank if self.singular_values is None else list(self.singular_values)

    def validate(self) -> LowRankConfig:
        """Check every field.

        Returns
        -------
        LowRankConfig
            ``self``, unchanged.

        Raises
        ------
        BumpsError
            With a one-line message naming the parameter, for any bad value
            (including a ``device`` that is not available).
        """

        def bad(msg: str) -> None:
            raise BumpsError(msg)

        if self.rank <= 0:
            bad(f"`rank` must be >= 1 (got {self.rank})")
        if self.dim <= 0:
            bad(f"`dim` must be >= 1 (got {self.dim})")
        if self.rank > self.dim:
            bad(f"`rank` {self.rank} exceeds `dim` {self.dim}; a d×d target has rank at most d")
        if self.n_learned <= 0:
            bad(f"`learned` must be >= 1 (got {self.n_learned})")
        if self.seeds <= 0:
            bad(f"`seeds` must be >= 1 (got {self.seeds})")
        if self.steps < 1:
            bad(f"`steps` must be >= 1 (got {self.steps}); a run that trains nothing is refused")
        if self.seed < 0:
            bad(f"`seed` must be >= 0 (got {self.seed})")
        if not math.isfinite(self.lr) or self.lr <= 0:
            bad(f"`lr` must be a finite positive number (got {self.lr})")
        if not math.isfinite(self.init_scale) or self.init_scale <= 0:
            bad(f"`init_scale` must be a finite positive number (got {self.init_scale})")
        if not math.isfinite(self.weight_decay) or self.weight_decay < 0:
            bad(f"`weight_decay` must be finite and >= 0 (got {self.weight_decay})")
        if self.optimizer not in OPTIMIZERS:
            bad(f"`optimizer` must be one of {', '.join(OPTIMIZERS)} (got {self.optimizer!r})")
        if self.targets not in TARGETS:
            bad(f"`targets` must be one of {', '.join(TARGETS)} (got {self.targets!r})")
        if self.record_every <= 0:
            bad(f"`record_every` must be >= 1 (got {self.record_every})")
        if self.dtype not in DTYPES:
            bad(f"`dtype` must be one of {', '.join(DTYPES)} (got {self.dtype!r})")
        sv = self.strengths()
        if len(sv) != self.rank:
            bad(f"`singular_values` needs {self.rank} values, one per target (got {len(sv)})")
        if not all(math.isfinite(x) and x > 0 for x in sv):
            bad(f"`singular_values` must be finite and positive (got {sv})")
        try:
            torch.empty(0, device=self.device)
        except (RuntimeError, AssertionError) as exc:
            bad(f"`device` {self.device!r} is not available here ({str(exc).splitlines()[0][:80]})")
        return self


# ---------------------------------------------------------------------------
# Initial conditions: one generator per seed, so seed i is the same whatever N is.


def _generator(seed: int, index: int) -> torch.Generator:
    state = np.random.SeedSequence([seed, index]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def _target_vectors(g: torch.Generator, d: int, r: int, kind: str) -> torch.Tensor:
    x = torch.randn(d, r, generator=g, dtype=torch.float64)
    if kind == "orthonormal":
        return torch.linalg.qr(x).Q
    return x / x.norm(dim=0, keepdim=True)


def initial_state(cfg: LowRankConfig) -> dict[str, torch.Tensor]:
    """Draw the targets and initial learned vectors of every seed.

    Parameters
    ----------
    cfg : LowRankConfig
        The run (not validated here).

    Returns
    -------
    dict of str to torch.Tensor
        ``a``, ``b`` ``[N, d, r]`` (target vectors as columns), ``s`` ``[r]``
        (strengths), ``U``, ``V`` ``[N, d, K]`` (learned vectors as columns), in
        ``cfg.dtype`` on ``cfg.device``. Seed i's draws come from a generator seeded by
        ``(cfg.seed, i)`` alone.
    """
    d, r, k = cfg.dim, cfg.rank, cfg.n_learned
    per_seed = []
    for i in range(cfg.seeds):  # drawing only; the simulation itself is vectorised
        g = _generator(cfg.seed, i)
        a = _target_vectors(g, d, r, cfg.targets)
        b = _target_vectors(g, d, r, cfg.targets)
        u = torch.randn(d, k, generator=g, dtype=torch.float64) * cfg.init_scale
        v = torch.randn(d, k, generator=g, dtype=torch.float64) * cfg.init_scale
        per_seed.append((a, b, u, v))
    dt, dev = DTYPES[cfg.dtype], cfg.device
    a, b, u, v = (torch.stack(x).to(dev, dt) for x in zip(*per_seed, strict=True))
    s = torch.tensor(cfg.strengths(), dtype=dt, device=dev)
    return {"a": a, "b": b, "s": s, "U": u, "V": v}


# ---------------------------------------------------------------------------
# Small-matrix views shared by every path.


def loss_from_grams(p_a, p_b, g_u, g_v, c_a, c_b, s) -> torch.Tensor:
    """The loss ½‖A − UVᵀ‖²_F from the small matrices alone.

    Parameters
    ----------
    p_a : torch.Tensor
        ``aᵀU``, ``[..., r, K]``.
    p_b : torch.Tensor
        ``bᵀV``, ``[..., r, K]``.
    g_u : torch.Tensor
        ``UᵀU``, ``[..., K, K]``.
    g_v : torch.Tensor
        ``VᵀV``, ``[..., K, K]``.
    c_a : torch.Tensor
        ``aᵀa``, ``[..., r, r]``.
    c_b : torch.Tensor
        ``bᵀb``, ``[..., r, r]``.
    s : torch.Tensor
        Strengths ``[r]``.

    Returns
    -------
    torch.Tensor
        The loss, ``[...]``.
    """
    sa = s[:, None] * c_a  # S C_a
    target = 0.5 * (sa * (s[:, None] * c_b).transpose(-1, -2)).sum((-1, -2))  # ½ tr(S Ca S Cb)
    cross = (s[:, None] * p_a * p_b).sum((-1, -2))  # tr(S P_a P_bᵀ)
    model = 0.5 * (g_u * g_v).sum((-1, -2))  # ½ tr(G_U G_V), both symmetric
    return target - cross + model


def record_steps(cfg: LowRankConfig) -> list[int]:
    """Steps at which a record is taken: 0, every ``record_every``, and the last step.

    Parameters
    ----------
    cfg : LowRankConfig
        The run.

    Returns
    -------
    list of int
        Increasing steps, ``T`` of them; ``cfg.steps`` is always the last.
    """
    steps = list(range(0, cfg.steps + 1, cfg.record_every))
    if steps[-1] != cfg.steps:
        steps.append(cfg.steps)
    return steps


class _Recorder:
    """Preallocated [T, N, ...] buffers filled at record steps."""

    def __init__(self, cfg: LowRankConfig, like: torch.Tensor):
        self.steps = record_steps(cfg)
        t, n, r, k = len(self.steps), cfg.seeds, cfg.rank, cfg.n_learned
        new = lambda *shape: torch.empty(shape, dtype=like.dtype, device=like.device)  # noqa: E731
        self.buf = {
            "loss": new(t, n),
            "inner_a": new(t, n, r, k),
            "inner_b": new(t, n, r, k),
            "norm_a": new(t, n, k),
            "norm_b": new(t, n, k),
        }
        self.i = 0

    def wants(self, step: int) -> bool:
        return self.i < len(self.steps) and self.steps[self.i] == step

    def take_batch_last(self, p: torch.Tensor, g: torch.Tensor) -> None:
        """Store raw batch-last P, G; loss and norms are derived once in finish_batch_last."""
        if not hasattr(self, "p_hist"):
            t = len(self.steps)
            self.p_hist = p.new_empty((t, *p.shape))
            self.g_hist = g.new_empty((t, *g.shape))
        self.p_hist[self.i] = p
        self.g_hist[self.i] = g
        self.i += 1

    def finish_batch_last(self, c: torch.Tensor, s: torch.Tensor) -> None:
        """Loss and norms for all records at once, reduced over contiguous axes."""
        p, g = self.p_hist, self.g_hist  # [T, r, K, 2, N], [T, K, K, 2, N]
        sc = s[:, None, None, None] * c  # [r, r, 2, N]: S C
        target = 0.5 * (sc[:, :, 0] * sc[:, :, 1].transpose(0, 1)).sum((0, 1))  # [N]
        cross = (s[:, None, None] * p[:, :, :, 0] * p[:, :, :, 1]).sum((1, 2))  # [T, N]
        model = 0.5 * (g[:, :, :, 0] * g[:, :, :, 1]).sum((1, 2))
        b = self.buf
        b["loss"] = target - cross + model
        std = p.permute(3, 0, 4, 1, 2)  # [2, T, N, r, K]
        b["inner_a"], b["inner_b"] = std[0], std[1]
        norms = g.diagonal(dim1=1, dim2=2).clamp_min(0).sqrt().transpose(0, 1)  # [2, T, N, K]
        b["norm_a"], b["norm_b"] = norms[0], norms[1]

    def take(self, p_a, p_b, g_u, g_v, c_a, c_b, s) -> None:
        b, i = self.buf, self.i
        b["loss"][i] = loss_from_grams(p_a, p_b, g_u, g_v, c_a, c_b, s)
        b["inner_a"][i] = p_a
        b["inner_b"][i] = p_b
        b["norm_a"][i] = g_u.diagonal(dim1=-2, dim2=-1).clamp_min(0).sqrt()
        b["norm_b"][i] = g_v.diagonal(dim1=-2, dim2=-1).clamp_min(0).sqrt()
        self.i += 1


# ---------------------------------------------------------------------------
# The two fast paths.


@dataclass(frozen=True)
class Knockouts:
    """One knockout per instance: learned unit ``unit[i]`` removed from step ``step[i]`` on.

    Removing a unit sets both of its vectors (and, for Adam/AdamW, its optimizer state)
    to zero before the record of that step is taken; the dynamics keep them zero.

    Attributes
    ----------
    unit : torch.Tensor
        ``[N]`` int64: the learned unit removed from instance i, in ``0..K − 1``, or
        -1 for no knockout.
    step : torch.Tensor
        ``[N]`` int64: the step from which it is removed, in ``0..steps``.
    """

    unit: torch.Tensor  # [N] int64
    step: torch.Tensor  # [N] int64

    def check(self, n: int, k: int, steps: int) -> Knockouts:
        """Validate the knockouts for a batch.

        Parameters
        ----------
        n : int
            Number of instances (seeds).
        k : int
            Number of learned units K.
        steps : int
            Number of steps of the run.

        Returns
        -------
        Knockouts
            A copy with int64 tensors.

        Raises
        ------
        BumpsError
            If ``unit`` or ``step`` is not ``[n]``, a unit is outside ``-1..k − 1`` or a
            step outside ``0..steps``.
        """
        unit, step = torch.as_tensor(self.unit).long(), torch.as_tensor(self.step).long()
        if unit.shape != (n,) or step.shape != (n,):
            raise BumpsError(
                f"knockouts need one unit and one step per instance ({n}); got shapes "
                f"{tuple(unit.shape)} and {tuple(step.shape)}"
            )
        if ((unit < -1) | (unit >= k)).any():
            raise BumpsError(f"knockout units must be in 0..{k - 1} (or -1 for none)")
        if ((step < 0) | (step > steps)).any():
            raise BumpsError(f"knockout steps must be in 0..{steps}")
        return Knockouts(unit, step)


def _knock_masks(knock: Knockouts | None, k: int, steps: int, like: torch.Tensor) -> dict[int, torch.Tensor]:
    """{step: keep [K, N]} with a 0 where an instance loses a unit at that step."""
    if knock is None:
        return {}
    knock = knock.check(knock.unit.shape[0], k, steps)
    masks = {}
    for t in torch.unique(knock.step[knock.unit >= 0]).tolist():
        hit = (knock.step == t) & (knock.unit >= 0)
        keep = torch.ones(k, len(hit), dtype=like.dtype, device=like.device)
        keep[knock.unit[hit].to(like.device), torch.nonzero(hit).flatten().to(like.device)] = 0
        masks[int(t)] = keep
    return masks


def _mm_batch_last(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Matrix product over axes (0, 1) with the batch on the trailing axes.

    Tiny batched matmuls (4×4) are dominated by per-matrix overhead in bmm; a
    broadcast multiply-and-sum is ~4x faster there. Large ones go through matmul.
    """
    if x.shape[1] <= 16 and x.shape[0] * y.shape[1] <= 256:
        return (x.unsqueeze(2) * y.unsqueeze(0)).sum(1)
    xb, yb = x.movedim((0, 1), (-2, -1)), y.movedim((0, 1), (-2, -1))
    return (xb @ yb).movedim((-2, -1), (0, 1))


def _run_gd(cfg, st, rec: _Recorder, progress, knock: Knockouts | None = None) -> dict[str, torch.Tensor]:
    """Plain GD through the closed r×K / K×K recurrence.

    State is kept batch-last: P [r, K, 2, N] (side 0: P_a = aᵀU, side 1: P_b = bᵀV),
    G [K, K, 2, N] (G_U, G_V), C [r, r, 2, N] (aᵀa, bᵀb). A knockout of unit k at step t
    zeroes P[:, k], G[k, :] and G[:, k] of that instance before step t is recorded; the
    recurrence then keeps them exactly zero (M's column k is (1 − lr·wd) e_k, N's is 0).
    """
    a, b, s, u, v = st["a"], st["b"], st["s"], st["U"], st["V"]
    at = lambda x: x.transpose(-1, -2)  # noqa: E731
    last = lambda x, y: torch.stack([x, y]).permute(2, 3, 0, 1).contiguous()  # noqa: E731
    c = last(at(a) @ a, at(b) @ b)
    p = last(at(a) @ u, at(b) @ v)
    g = last(at(u) @ u, at(v) @ v)
    k = cfg.n_learned
    keep_eye = (1.0 - cfg.lr * cfg.weight_decay) * torch.eye(k, dtype=p.dtype, device=p.device)
    keep_eye = keep_eye[:, :, None, None]
    ls = (cfg.lr * s)[:, None, None, None]
    mm, tr = _mm_batch_last, lambda x: x.transpose(0, 1)
    masks = _knock_masks(knock, k, cfg.steps, p)
    for step in range(cfg.steps + 1):
        if step in masks:
            keep = masks[step]  # [K, N]
            p = p * keep[None, :, None, :]
            g = g * (keep[:, None] * keep[None, :])[:, :, None, :]
        if rec.wants(step):
            rec.take_batch_last(p, g)
            if progress:
                progress(step)
        if step == cfg.steps:
            break
        m = keep_eye - cfg.lr * g.flip(2)  # M_U uses G_V, M_V uses G_U
        n = ls * p.flip(2)  # N_U = lr S P_b, N_V = lr S P_a
        x = mm(p, m)  # aᵀU M
        y = mm(c, n)  # aᵀa N
        xn = mm(tr(x), n)
        g = mm(mm(m, g), m) + xn + tr(xn) + mm(tr(n), y)  # m is symmetric
        p = x + y
    rec.finish_batch_last(c, s)
    to_std = lambda x: x.permute(2, 3, 0, 1)  # noqa: E731
    p, g = to_std(p), to_std(g)
    return {"inner_a_final": p[0], "inner_b_final": p[1], "gram_a_final": g[0], "gram_b_final": g[1]}


def _run_adam(cfg, st, rec: _Recorder, progress, knock: Knockouts | None = None) -> dict[str, torch.Tensor]:
    """Adam / AdamW on the d-dimensional vectors, elementwise exactly as torch.optim does it.

    A knockout zeroes the unit's columns of U, V and of both moment estimates; its
    gradient is then exactly zero (U G_V and a S P_b have zero column k), so it stays zero.
    """
    a, b, s, u, v = st["a"], st["b"], st["s"], st["U"].clone(), st["V"].clone()
    at = lambda x: x.transpose(-1, -2)  # noqa: E731
    c_a, c_b = at(a) @ a, at(b) @ b
    (b1, b2), eps, lr, wd = cfg.betas, cfg.eps, cfg.lr, cfg.weight_decay
    m_u, m_v, v_u, v_v = (torch.zeros_like(u) for _ in range(4))
    sa, sb = a * s, b * s  # a S, b S
    masks = _knock_masks(knock, cfg.n_learned, cfg.steps, u)
    for step in range(cfg.steps + 1):
        if step in masks:
            keep = masks[step].T[:, None, :]  # [N, 1, K]
            for x in (u, v, m_u, m_v, v_u, v_v):
                x.mul_(keep)
        need = rec.wants(step)
        g_v, p_b = at(v) @ v, at(b) @ v
        g_u, p_a = at(u) @ u, at(a) @ u
        if need:
            rec.take(p_a, p_b, g_u, g_v, c_a, c_b, s)
            if progress:
                progress(step)
        if step == cfg.steps:
            break
        grad_u = u @ g_v - sa @ p_b
        grad_v = v @ g_u - sb @ p_a
        t = step + 1
        bc1, bc2 = 1 - b1**t, 1 - b2**t
        for param, grad, m, sq in ((u, grad_u, m_u, v_u), (v, grad_v, m_v, v_v)):
            if cfg.optimizer == "adamw":
                param.mul_(1 - lr * wd)
            elif wd:
                grad = grad + wd * param
            m.lerp_(grad, 1 - b1)
            sq.mul_(b2).addcmul_(grad, grad, value=1 - b2)
            denom = (sq.sqrt() / math.sqrt(bc2)).add_(eps)
            param.addcdiv_(m, denom, value=-lr / bc1)
    return {"U_final": u, "V_final": v}


def simulate(
    cfg: LowRankConfig,
    progress: Callable[[int], None] | None = None,
    knockouts: Knockouts | None = None,
    state: dict[str, torch.Tensor] | None = None,
) -> dict:
    """Run all seeds of ``cfg`` together and return a run dict (kind ``"lowrank"``).

    Parameters
    ----------
    cfg : LowRankConfig
        The run; validated first.
    progress : callable, optional
        Called as ``progress(step)`` at every record step.
    knockouts : Knockouts, optional
        One per seed: removes a learned unit from a given step on. None: no knockout.
    state : dict of str to torch.Tensor, optional
        The starting state (:func:`initial_state`'s keys and shapes), e.g. a rotated start
        (:mod:`bumps.lowrank.rotation`); None: :func:`initial_state` of ``cfg``.

    Returns
    -------
    dict
        A run (:func:`bumps.io.runfile.new_run`) on the CPU, in ``cfg.dtype``, with
        ``step`` ``[T]`` (:func:`record_steps`), ``loss`` ``[T, N]``, ``inner_a`` /
        ``inner_b`` ``[T, N, r, K]`` (aᵀU, bᵀV), ``norm_a`` / ``norm_b`` ``[T, N, K]``
        (‖ã_k‖, ‖b̃_k‖), ``singular_values`` ``[r]``, ``target_gram_a`` /
        ``target_gram_b`` ``[N, r, r]`` (aᵀa, bᵀb), the final state (GD:
        ``inner_a_final``, ``inner_b_final`` ``[N, r, K]`` and ``gram_a_final``,
        ``gram_b_final`` ``[N, K, K]``; Adam/AdamW: ``U_final``, ``V_final``
        ``[N, d, K]``) and ``config`` (every field, the package versions and any
        knockouts).

    Raises
    ------
    BumpsError
        If ``cfg`` or ``knockouts`` is invalid.
    """
    cfg.validate()
    if knockouts is not None:
        knockouts = knockouts.check(cfg.seeds, cfg.n_learned, cfg.steps)
    st = initial_state(cfg) if state is None else dict(state)
    rec = _Recorder(cfg, st["U"])
    run_path = _run_gd if cfg.optimizer == "gd" else _run_adam
    with torch.no_grad():
        finals = run_path(cfg, st, rec, progress, knockouts)
    cpu = lambda x: x.detach().to("cpu")  # noqa: E731
    out = {k: cpu(x) for k, x in rec.buf.items()}
    out.update({k: cpu(x) for k, x in finals.items()})
    config = asdict(cfg)
    config["learned"] = cfg.n_learned
    config["singular_values"] = cfg.strengths()
    config["betas"] = list(cfg.betas)
    config["versions"] = versions()
    if knockouts is not None:
        config["knockout_unit"] = knockouts.unit.tolist()
        config["knockout_step"] = knockouts.step.tolist()
    return new_run(
        "lowrank",
        config,
        step=torch.tensor(rec.steps, dtype=torch.int64),
        singular_values=cpu(st["s"]),
        target_gram_a=cpu(st["a"].transpose(-1, -2) @ st["a"]),
        target_gram_b=cpu(st["b"].transpose(-1, -2) @ st["b"]),
        **out,
    )


# ---------------------------------------------------------------------------
# Many knockout instances of a few seeds, recording one (target, unit) curve each.


class _WatchRecorder:
    """Records only P[target_i, unit_i] (both sides) of each instance i: [T, N, 2]."""

    def __init__(self, cfg: LowRankConfig, target: torch.Tensor, unit: torch.Tensor):
        self.steps = record_steps(cfg)
        self.target, self.unit, self.i = target, unit, 0
        self.out = None

    def wants(self, step: int) -> bool:
        return self.i < len(self.steps) and self.steps[self.i] == step

    def _store(self, x: torch.Tensor) -> None:
        if self.out is None:
            self.out = x.new_empty((len(self.steps), *x.shape))
        self.out[self.i] = x
        self.i += 1

    def take_batch_last(self, p: torch.Tensor, g: torch.Tensor) -> None:  # p [r, K, 2, N]
        n = torch.arange(p.shape[-1], device=p.device)
        self._store(p[self.target, self.unit, :, n])  # [N, 2]

    def finish_batch_last(self, c, s) -> None:
        pass

    def take(self, p_a, p_b, g_u, g_v, c_a, c_b, s) -> None:  # p_* [N, r, K]
        n = torch.arange(p_a.shape[0], device=p_a.device)
        self._store(torch.stack([p_a[n, self.target, self.unit], p_b[n, self.target, self.unit]], -1))


def simulate_knockouts(
    cfg: LowRankConfig,
    seed: torch.Tensor,
    unit: torch.Tensor,
    step: torch.Tensor,
    watch_target: torch.Tensor,
    watch_unit: torch.Tensor,
    state: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Replay seeds of ``cfg`` with one unit knocked out, many instances in one batch.

    Instance i replays seed ``seed[i]`` (the same initial vectors and targets) with
    unit ``unit[i]`` removed from step ``step[i]`` on, and records only the inner
    products of learned unit ``watch_unit[i]`` with target ``watch_target[i]``.

    Parameters
    ----------
    cfg : LowRankConfig
        The run whose seeds are replayed; validated first.
    seed : torch.Tensor
        ``[n]``: indices into ``cfg``'s seeds, ``0..cfg.seeds − 1``; ``n ≥ 1``.
    unit : torch.Tensor
        ``[n]``: the unit knocked out, ``0..K − 1``, or -1 for none.
    step : torch.Tensor
        ``[n]``: the step it is knocked out from, ``0..cfg.steps``.
    watch_target : torch.Tensor
        ``[n]``: the target recorded, ``0..r − 1``.
    watch_unit : torch.Tensor
        ``[n]``: the learned unit recorded, ``0..K − 1``.
    state : dict of str to torch.Tensor, optional
        ``initial_state(cfg)``, to avoid redrawing it; None draws it.

    Returns
    -------
    torch.Tensor
        ``[T, n, 2]`` on the CPU at :func:`record_steps`: side 0 is
        ``a_{watch_target}ᵀ ã_{watch_unit}``, side 1 the same for b, b̃.

    Raises
    ------
    BumpsError
        If ``cfg`` is invalid, there is no instance, or any index is out of range or
        not ``[n]``.
    """
    cfg.validate()
    seed = torch.as_tensor(seed).long()
    n = int(seed.shape[0])
    if n == 0:
        raise BumpsError("simulate_knockouts needs at least one instance")
    if ((seed < 0) | (seed >= cfg.seeds)).any():
        raise BumpsError(f"knockout seeds must index the config's {cfg.seeds} seeds")
    st = initial_state(cfg) if state is None else state
    st = {k: (x if k == "s" else x[seed.to(x.device)]) for k, x in st.items()}
    icfg = replace(cfg, seeds=n)
    knock = Knockouts(torch.as_tensor(unit).long(), torch.as_tensor(step).long()).check(n, cfg.n_learned, cfg.steps)
    wt, wu = torch.as_tensor(watch_target).long(), torch.as_tensor(watch_unit).long()
    if (
        wt.shape != (n,)
        or wu.shape != (n,)
        or ((wt < 0) | (wt >= cfg.rank)).any()
        or ((wu < 0) | (wu >= cfg.n_learned)).any()
    ):
        raise BumpsError("watch_target/watch_unit need one valid target and unit per instance")
    dev = st["U"].device
    rec = _WatchRecorder(icfg, wt.to(dev), wu.to(dev))
    run_path = _run_gd if cfg.optimizer == "gd" else _run_adam
    with torch.no_grad():
        run_path(icfg, st, rec, None, knock)
    return rec.out.cpu()


# ---------------------------------------------------------------------------
# The obvious implementation: per-seed autograd on the full d×d loss.


def simulate_reference(cfg: LowRankConfig, knockouts: Knockouts | None = None) -> dict[str, torch.Tensor]:
    """Per-seed loop, autograd through ½‖A − UVᵀ‖², torch.optim updates.

    The baseline for benchmarks and the ground truth for tests. A knockout zeroes the
    unit's columns of U, V and of torch.optim's state (exp_avg, exp_avg_sq) before
    that step is recorded.

    Parameters
    ----------
    cfg : LowRankConfig
        The run; validated first.
    knockouts : Knockouts, optional
        One per seed, as for :func:`simulate`; None: no knockout.

    Returns
    -------
    dict of str to torch.Tensor
        The record arrays of :func:`simulate`: ``loss`` ``[T, N]``, ``inner_a`` /
        ``inner_b`` ``[T, N, r, K]``, ``norm_a`` / ``norm_b`` ``[T, N, K]``, on
        ``cfg.device`` in ``cfg.dtype``.

    Raises
    ------
    BumpsError
        If ``cfg`` or ``knockouts`` is invalid.
    """
    cfg.validate()
    if knockouts is not None:
        knockouts = knockouts.check(cfg.seeds, cfg.n_learned, cfg.steps)
    st = initial_state(cfg)
    steps = set(record_steps(cfg))
    per_seed = []
    for i in range(cfg.seeds):
        a, b = st["a"][i], st["b"][i]
        target = (a * st["s"]) @ b.T
        u = st["U"][i].clone().requires_grad_(True)
        v = st["V"][i].clone().requires_grad_(True)
        if cfg.optimizer == "gd":
            opt = torch.optim.SGD([u, v], lr=cfg.lr, weight_decay=cfg.weight_decay)
        else:
            cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
            opt = cls([u, v], lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay)
        rows = []
        for step in range(cfg.steps + 1):
            if knockouts is not None and knockouts.unit[i] >= 0 and step == knockouts.step[i]:
                k = int(knockouts.unit[i])
                with torch.no_grad():
                    for param in (u, v):
                        param[:, k] = 0
                        for buf in opt.state.get(param, {}).values():
                            if buf.ndim == 2:
                                buf[:, k] = 0
            loss = 0.5 * (target - u @ v.T).pow(2).sum()
            if step in steps:
                with torch.no_grad():
                    rows.append((loss.detach(), a.T @ u, b.T @ v, u.norm(dim=0), v.norm(dim=0)))
            if step == cfg.steps:
                break
            opt.zero_grad()
            loss.backward()
            opt.step()
        per_seed.append([torch.stack(col) for col in zip(*rows, strict=True)])
    names = ("loss", "inner_a", "inner_b", "norm_a", "norm_b")
    return {n: torch.stack(col, dim=1) for n, col in zip(names, zip(*per_seed, strict=True), strict=True)}


# ---------------------------------------------------------------------------
# Storage precision of the records (opt-in; the simulation itself runs in cfg.dtype).

RECORD_KEYS = ("loss", "inner_a", "inner_b", "norm_a", "norm_b")


def cast_records(run: dict, record_dtype: str) -> dict:
    """The run with its recorded series stored in ``record_dtype``.

    float32 halves the run file (about 7 significant digits kept; losses below ~1e-38 become 0);
    float64 stores exactly what a float64 simulation computed.

    Parameters
    ----------
    run : dict
        A lowrank run (:func:`simulate`).
    record_dtype : {"float64", "float32"}
        Storage dtype of :data:`RECORD_KEYS` (``loss``, ``inner_*``, ``norm_*``).

    Returns
    -------
    dict
        A shallow copy of ``run`` with those series cast and ``config["record_dtype"]`` set.

    Raises
    ------
    BumpsError
        If ``record_dtype`` is not one of the above.
    """
    if record_dtype not in DTYPES:
        raise BumpsError(f"`record_dtype` must be one of {', '.join(DTYPES)} (got {record_dtype!r})")
    dt = DTYPES[record_dtype]
    out = {**run, "config": {**run["config"], "record_dtype": record_dtype}}
    for k in RECORD_KEYS:
        out[k] = run[k].to(dt)
    return out


def step_elements(cfg: LowRankConfig) -> int:
    """Elements the largest operations of one step touch (for :func:`bumps.threads.choose_threads`).

    Parameters
    ----------
    cfg : LowRankConfig
        The run.

    Returns
    -------
    int
        seeds × K × max(r, K) × 2 × (K for GD's small-matrix recurrence, d for Adam's vectors).
    """
    k, r, n = cfg.n_learned, cfg.rank, cfg.seeds
    return n * k * max(r, k) * 2 * (k if cfg.optimizer == "gd" else cfg.dim)


def default_threads(cfg: LowRankConfig) -> int:
    """Intra-op threads for :func:`simulate` on ``cfg``.

    Parameters
    ----------
    cfg : LowRankConfig
        The run.

    Returns
    -------
    int
        :func:`bumps.threads.choose_threads` of :func:`step_elements` (the policy every training command
        shares).
    """
    return choose_threads(step_elements(cfg), cfg.device)


def estimate_memory(cfg: LowRankConfig) -> dict[str, int]:
    """Bytes :func:`simulate` will allocate for ``cfg``, by part, before anything is allocated.

    Parameters
    ----------
    cfg : LowRankConfig
        The run.

    Returns
    -------
    dict of str to int
        ``initial draws`` (targets and learned vectors of every seed, drawn in float64, then stacked and
        converted), ``state`` (what one step holds: GD's small matrices, or Adam's vectors, moments and
        gradients) and ``records`` (every recorded series, GD's raw history included, and the final copies).
    """
    d, r, k, n = cfg.dim, cfg.rank, cfg.n_learned, cfg.seeds
    size = DTYPES[cfg.dtype].itemsize
    t = len(range(0, cfg.steps + 1, cfg.record_every)) + 1
    vectors = n * d * (2 * r + 2 * k)
    if cfg.optimizer == "gd":
        state = 12 * n * 2 * (r * k + k * k + r * r) * size
        history = t * n * 2 * (r * k + k * k) * size
    else:
        state = 14 * n * d * k * size
        history = 0
    per_record = 1 + 2 * r * k + 2 * k
    return {
        "initial draws": 2 * vectors * 8 + vectors * size,
        "state": state,
        "records": history + 2 * t * n * per_record * size,
    }


def settings(cfg: LowRankConfig) -> dict:
    """What a run of ``cfg`` records as its settings (:func:`bumps.io.provenance.settings_of_run`).

    Parameters
    ----------
    cfg : LowRankConfig
        The run.

    Returns
    -------
    dict
        Every field but ``device``, with ``learned`` and ``singular_values`` resolved as :func:`simulate`
        stores them.
    """
    config = asdict(cfg)
    config["learned"] = cfg.n_learned
    config["singular_values"] = cfg.strengths()
    return settings_of_run(config)


def default_run_path(cfg: LowRankConfig) -> Path:
    """Where a simulated run is written unless told otherwise.

    Parameters
    ----------
    cfg : LowRankConfig
        The run.

    Returns
    -------
    pathlib.Path
        ``runs/lowrank_r{rank}_d{dim}_{optimizer}_n{seeds}_seed{seed}.pt``, relative to the working
        directory, with ``_{hash}`` before ``_seed`` when any other setting differs from
        :class:`LowRankConfig`'s defaults (the 8-digit :func:`bumps.io.provenance.settings_hash` of those
        settings), so that runs of different settings never share a file.
    """
    named = ("rank", "dim", "optimizer", "seeds", "seed", "learned", "singular_values")
    base = settings(LowRankConfig(rank=cfg.rank, dim=cfg.dim))
    mine = settings(cfg)
    changed = {k: v for k, v in mine.items() if k not in named and base.get(k) != v}
    if cfg.learned is not None and cfg.learned != cfg.rank:
        changed["learned"] = cfg.learned
    if cfg.singular_values is not None:
        changed["singular_values"] = mine["singular_values"]
    tag = f"_{settings_hash(changed)}" if changed else ""
    name = f"lowrank_r{cfg.rank}_d{cfg.dim}_{cfg.optimizer}_n{cfg.seeds}{tag}_seed{cfg.seed}.pt"
    return Path("runs") / name


def first_nonfinite_record(run: dict) -> int | None:
    """The first record at which any seed's loss or recorded series is not finite (None: the run stayed finite).

    Parameters
    ----------
    run : dict
        A lowrank run (:func:`simulate`).

    Returns
    -------
    int or None
        Record index (position in ``run["step"]``).
    """
    bad = torch.zeros(len(run["step"]), dtype=torch.bool)
    for k in RECORD_KEYS:
        x = run[k]
        bad |= ~torch.isfinite(x.reshape(x.shape[0], -1)).all(1)
    hit = torch.nonzero(bad)
    return int(hit[0]) if len(hit) else None


def truncate_diverged(run: dict) -> tuple[dict, int | None]:
    """The run cut before its first non-finite record, marked ``diverged_step`` in its config.

    Parameters
    ----------
    run : dict
        A lowrank run (:func:`simulate`).

    Returns
    -------
    (dict, int or None)
        The run (unchanged when finite) and the step at which it diverged (None when it did not). The kept
        records are exactly the ones before that step; the ``*_final`` vectors are dropped from a diverged run.
    """
    i = first_nonfinite_record(run)
    if i is None:
        return run, None
    step = int(run["step"][i])
    out = {k: v for k, v in run.items() if not k.endswith("_final")}
    out["step"] = run["step"][:i]
    for k in RECORD_KEYS:
        out[k] = run[k][:i]
    out["config"] = {**run["config"], "diverged_step": step}
    return out, step
