"""Diagonal linear networks ``β = u² − v²`` trained by gradient flow from small initialisation, many problems at once.

Every problem ``p`` has its own design ``X[p]`` ``[n, d]`` and targets ``y[p]`` ``[n]``; the flow on
``L(β) = ‖y − Xβ‖² / (2n)`` is

    u̇ = −2 u ⊙ ∇L(β),   v̇ = +2 v ⊙ ∇L(β),   ∇L(β) = G β − c,   G = XᵀX / n,   c = Xᵀy / n,

from ``u = v = α`` on every coordinate. It is integrated with steps of at most ``lr`` in t by the
exponential Euler rule ``u ← u·exp(−2η∇L)``, ``v ← v·exp(+2η∇L)`` (exact while ∇L is constant, so the
long plateaus of small α cost no accuracy; ``integrator="gd"`` takes the plain gradient step
``u ← u·(1 − 2η∇L)`` instead). Both keep a coordinate with ``u = v = 0`` at zero exactly, which is how a
knockout removes it. Records are on a grid of the rescaled time ``τ = t / (log(1/α) / 2)`` (the theory's
clock, :func:`time_unit`, :mod:`bumps.dln.theory`), the same for every α.

Problems are drawn so that the theory's path has a coordinate that switches on and later off: a
``support`` of coordinates explains ``y`` exactly, and ``decoys`` columns are correlated with ``y`` but not
in it, so they are learned early and dropped once the support takes over the residual.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from bumps.dln.theory import Path, saddle_path, switch_offs
from bumps.errors import BumpsError


@dataclass(frozen=True)
class DLNConfig:
    """Problems and training of the positive control.

    Parameters
    ----------
    problems : int, default 40
        Problems kept (the independent units of every statistic).
    seed : int, default 0
        Seed of the problem generator.
    d : int, default 5
        Coordinates.
    n : int, default 20
        Samples per problem (``n > d``: the minimiser of L is unique).
    support : int, default 3
        Coordinates with nonzero ``β*`` (``y = X β*``, no noise); each ``|β*_i|`` is uniform in [0.5, 1.5]
        with a random sign.
    decoys : int, default 1
        Columns built as ``ρ·ŷ + sqrt(1 − ρ²)·z`` (``ŷ`` the normalised targets, ``z`` fresh noise,
        ``ρ`` uniform in ``rho``), not in the support. The other coordinates are noise columns.
    rho : tuple of float, default (0.6, 0.95)
        Range of the decoys' correlation with ``y``.
    alphas : tuple of float, default (1e-2, 1e-4, 1e-8, 1e-16, 1e-32, 1e-64)
        Initialisation scales, decreasing.
    lr : float, default 0.005
        Largest step in t (the flow's own time, not τ).
    record_dt : float, default 0.005
        Record spacing in τ (units of log(1/α)).
    t_max : float, default 8.0
        Length of every run in τ.
    integrator : {"exp", "gd"}, default "exp"
        The step rule (module docstring).
    min_gap : float, default 0.15
        Keep a problem only if its theory jump times are at least this far apart (τ), so each jump can
        be told apart at the largest α.
    min_level : float, default 0.1
        Keep a problem only if every coordinate that switches off reached ``|β| >= min_level`` first.
    tail : float, default 1.5
        Keep a problem only if its last jump is at least this long (τ) before ``t_max``.
    max_draws : int, default 5000
        Give up after this many drawn problems.
    """

    problems: int = 40
    seed: int = 0
    d: int = 5
    n: int = 20
    support: int = 3
    decoys: int = 1
    rho: tuple[float, float] = (0.6, 0.95)
    alphas: tuple[float, ...] = (1e-2, 1e-4, 1e-8, 1e-16, 1e-32, 1e-64)
    lr: float = 0.005
    record_dt: float = 0.005
    t_max: float = 8.0
    integrator: str = "exp"
    min_gap: float = 0.15
    min_level: float = 0.1
    tail: float = 1.5
    max_draws: int = 5000

    def validate(self) -> DLNConfig:
        """Check every field; returns ``self``.

        Raises
        ------
        BumpsError
            One line naming the first bad field and what it needs.
        """
        if self.problems < 1 or self.d < 2 or self.n <= self.d:
            raise BumpsError(f"need problems >= 1, d >= 2 and n > d (got {self.problems}, {self.d}, {self.n})")
        if self.support < 1 or self.decoys < 1 or self.support + self.decoys > self.d:
            raise BumpsError(
                f"need support >= 1, decoys >= 1, support + decoys <= d (got {self.support}, {self.decoys})"
            )
        if not 0 < self.rho[0] <= self.rho[1] < 1:
            raise BumpsError(f"rho must be a range inside (0, 1) (got {self.rho})")
        a = np.asarray(self.alphas, dtype=float)
        if a.size < 1 or not ((a > 0) & (a < 1)).all() or (np.diff(a) >= 0).any():
            raise BumpsError(f"alphas must be decreasing values in (0, 1) (got {self.alphas})")
        for name in ("lr", "record_dt", "t_max", "min_gap", "tail"):
            if not getattr(self, name) > 0:
                raise BumpsError(f"{name} must be > 0 (got {getattr(self, name)})")
        if self.min_level < 0 or self.tail >= self.t_max:
            raise BumpsError(f"need min_level >= 0 and tail < t_max (got {self.min_level}, {self.tail})")
        if self.integrator not in ("exp", "gd"):
            raise BumpsError(f"integrator must be 'exp' or 'gd' (got {self.integrator!r})")
        return self

    @property
    def n_records(self) -> int:
        """Records per run: τ = 0, record_dt, ..., t_max."""
        return int(round(self.t_max / self.record_dt)) + 1

    @property
    def tau(self) -> np.ndarray:
        """``[T]`` the record times in τ."""
        return np.arange(self.n_records) * self.record_dt


@dataclass
class Problems:
    """The kept problems and their theory paths.

    Attributes
    ----------
    X : numpy.ndarray
        ``[P, n, d]`` designs (columns with ``‖x‖² / n = 1``).
    y : numpy.ndarray
        ``[P, n]`` targets, ``y = X β*``.
    beta_star : numpy.ndarray
        ``[P, d]``.
    paths : list of Path
        The theory path of each problem.
    draw : list of int
        ``[P]`` the index of each kept problem among all draws.
    rejected : dict of str to int
        Drawn problems rejected, by the first rule they failed.
    """

    X: np.ndarray
    y: np.ndarray
    beta_star: np.ndarray
    paths: list[Path]
    draw: list[int]
    rejected: dict[str, int] = field(default_factory=dict)

    @property
    def gram(self) -> np.ndarray:
        """``[P, d, d]``: ``XᵀX / n``."""
        return np.einsum("pni,pnj->pij", self.X, self.X) / self.X.shape[1]

    @property
    def corr(self) -> np.ndarray:
        """``[P, d]``: ``Xᵀy / n``."""
        return np.einsum("pni,pn->pi", self.X, self.y) / self.X.shape[1]


def draw_problem(cfg: DLNConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One problem: ``(X [n, d], y [n], β* [d])`` (see :class:`DLNConfig`)."""
    n, d = cfg.n, cfg.d
    z = rng.standard_normal((n, d))
    x = z / np.sqrt((z**2).mean(0))
    order = rng.permutation(d)
    support, decoys = order[: cfg.support], order[cfg.support : cfg.support + cfg.decoys]
    beta = np.zeros(d)
    beta[support] = rng.uniform(0.5, 1.5, cfg.support) * rng.choice([-1.0, 1.0], cfg.support)
    y = x @ beta
    yhat = y / np.sqrt((y**2).mean())
    for j in decoys:
        rho = rng.uniform(*cfg.rho)
        col = rho * yhat + math.sqrt(1 - rho**2) * rng.standard_normal(n)
        x[:, j] = col / np.sqrt((col**2).mean())
    return x, x @ beta, beta


def keep_reason(cfg: DLNConfig, path: Path) -> str | None:
    """None if the problem is kept, else the first rule it fails (rules in :class:`DLNConfig`)."""
    offs = switch_offs(path)
    if not offs:
        return "no switch-off"
    if len(path.times) > 1 and np.diff(path.times).min() < cfg.min_gap:
        return "jumps closer than min_gap"
    if path.times[0] < cfg.min_gap:
        return "jumps closer than min_gap"
    if min(o.level for o in offs) < cfg.min_level:
        return "switch-off below min_level"
    coords = [o.coord for o in offs]
    if len(set(coords)) < len(coords) or any((np.abs(path.betas[-1, o.coord]) > 0) for o in offs):
        return "a coordinate switches on twice"
    if path.times[-1] > cfg.t_max - cfg.tail:
        return "last jump too late"
    return None


def sample_problems(cfg: DLNConfig) -> Problems:
    """Draw problems from the seeded generator and keep those whose theory path passes :func:`keep_reason`.

    Parameters
    ----------
    cfg : DLNConfig
        ``problems``, ``seed``, the shape and the keep rules.

    Returns
    -------
    Problems
        Exactly ``cfg.problems`` problems, in draw order.

    Raises
    ------
    BumpsError
        When ``cfg.max_draws`` draws do not give enough problems.
    """
    cfg.validate()
    rng = np.random.default_rng(cfg.seed)
    xs, ys, bs, paths, draws, rejected = [], [], [], [], [], {}
    for i in range(cfg.max_draws):
        x, y, b = draw_problem(cfg, rng)
        path = saddle_path(x, y)
        why = keep_reason(cfg, path)
        if why is not None:
            rejected[why] = rejected.get(why, 0) + 1
            continue
        xs.append(x), ys.append(y), bs.append(b), paths.append(path), draws.append(i)
        if len(paths) == cfg.problems:
            return Problems(np.array(xs), np.array(ys), np.array(bs), paths, draws, rejected)
    raise BumpsError(
        f"only {len(paths)} of {cfg.problems} problems passed the keep rules in {cfg.max_draws} draws; "
        "raise max_draws or loosen min_gap / min_level"
    )


@dataclass
class Trajectory:
    """Records of one flow: ``u``, ``v`` and ``β = u² − v²`` on the τ grid.

    Attributes
    ----------
    alpha : float
        The initialisation scale.
    tau : numpy.ndarray
        ``[T]`` record times in units of log(1/α).
    u, v, beta : numpy.ndarray
        ``[T, B, d]``.
    lr : float
        The step in t actually used (at most ``cfg.lr``; a whole number of steps per record).
    """

    alpha: float
    tau: np.ndarray
    u: np.ndarray
    v: np.ndarray
    beta: np.ndarray
    lr: float


def time_unit(alpha: float) -> float:
    """The flow time ``t`` of one unit of the theory's τ for this parametrisation: ``log(1/α) / 2``.

    With ``β = u² − v²`` and ``u = v = α``, ``β_i = 2α² sinh(4 r_i)`` (``r_i = −∫∇L_i dt``), so a coordinate
    reaches O(1) when ``|r_i| ≈ log(1/α) / 2``: Algorithm 1's clock (``s = r / unit`` reaching ±1) runs in
    ``τ = t / (log(1/α) / 2)``. (The ``u ⊙ v`` parametrisation from ``u = √2·α, v = 0`` gives
    ``β_i = α² sinh(2 r_i)`` and the unit ``log(1/α)``: the same limit, twice as slow.)
    """
    return 0.5 * math.log(1 / alpha)


def steps_per_record(cfg: DLNConfig, alpha: float) -> tuple[int, float]:
    """``(steps, η)``: whole steps of ``η ≤ cfg.lr`` between records for ``alpha``."""
    span = cfg.record_dt * time_unit(alpha)
    k = max(1, math.ceil(span / cfg.lr - 1e-9))
    return k, span / k


def flow(
    cfg: DLNConfig,
    gram: np.ndarray,
    corr: np.ndarray,
    alpha: float,
    keep: np.ndarray | None = None,
    start: np.ndarray | None = None,
    ref: Trajectory | None = None,
) -> Trajectory:
    """Integrate the flow for a batch of problems, recording on the τ grid.

    Parameters
    ----------
    cfg : DLNConfig
        ``lr``, ``record_dt``, ``t_max``, ``integrator``.
    gram : numpy.ndarray
        ``[B, d, d]`` ``XᵀX / n`` of each batch element.
    corr : numpy.ndarray
        ``[B, d]`` ``Xᵀy / n``.
    alpha : float
        Initialisation ``u = v = alpha``.
    keep : numpy.ndarray, optional
        ``[B, d]`` bool; False entries are knocked out (``u = v = 0``) from each element's start on.
        None: nothing removed.
    start : numpy.ndarray, optional
        ``[B]`` record index from which each element continues from ``ref`` (a knockout replays the
        unintervened run up to there). None: every element starts at τ = 0 from ``u = v = alpha``.
    ref : Trajectory, optional
        ``[T, B, d]`` the states each element continues from, with ``start``.

    Returns
    -------
    Trajectory
        ``[T, B, d]``; records before an element's start are those of ``ref``.

    Raises
    ------
    BumpsError
        On mismatched shapes or ``start`` without ``ref``.
    """
    b, d = corr.shape
    if gram.shape != (b, d, d) or (keep is not None and keep.shape != (b, d)):
        raise BumpsError(f"gram must be [B, d, d] and keep [B, d] for corr [B, d] = {corr.shape}")
    if (start is None) != (ref is None):
        raise BumpsError("pass start and ref together (a continuation), or neither")
    k, eta = steps_per_record(cfg, alpha)
    t_rec = cfg.n_records
    mask = np.ones((b, d)) if keep is None else keep.astype(np.float64)
    u_rec, v_rec = np.empty((t_rec, b, d)), np.empty((t_rec, b, d))
    if start is None:
        start = np.zeros(b, dtype=int)
        u, v = np.full((b, d), float(alpha)), np.full((b, d), float(alpha))
        u, v = u * mask, v * mask
    else:
        start = np.asarray(start, dtype=int)
        u, v = ref.u[0].copy(), ref.v[0].copy()
    first = int(start.min())
    if ref is not None:
        u_rec[: first + 1], v_rec[: first + 1] = ref.u[: first + 1], ref.v[: first + 1]
        u, v = ref.u[first].copy(), ref.v[first].copy()
    for m in range(first, t_rec):
        if ref is not None:
            now = start == m
            if now.any():
                u[now], v[now] = ref.u[m, now] * mask[now], ref.v[m, now] * mask[now]
            later = start > m
            if later.any():
                u[later], v[later] = ref.u[m, later], ref.v[m, later]
        u_rec[m], v_rec[m] = u, v
        if m == t_rec - 1:
            break
        for _ in range(k):
            g = np.einsum("bij,bj->bi", gram, u * u - v * v) - corr
            if cfg.integrator == "exp":
                e = np.exp(-2 * eta * g)
                u, v = u * e, v / e
            else:
                u, v = u * (1 - 2 * eta * g), v * (1 + 2 * eta * g)
    return Trajectory(float(alpha), cfg.tau, u_rec, v_rec, u_rec**2 - v_rec**2, eta)
