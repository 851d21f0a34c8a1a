"""The small-initialisation limit of a diagonal linear network: saddle to saddle (Pesme & Flammarion 2023).

Regression ``y ≈ X β`` with ``L(β) = ‖y − Xβ‖² / (2n)``, ``β = u² − v²``, gradient flow from
``u = v = α`` (every coordinate). Each coordinate obeys ``β_i(t) = 2α² sinh(4 r_i(t))`` with
``r_i(t) = −∫₀ᵗ ∇L(β)_i``, so it stays near zero until ``|r_i|`` reaches ``log(1/α) / 2``. In the rescaled
time ``τ = t / (log(1/α) / 2)`` and with ``s = r / (log(1/α) / 2)`` the limit α → 0 is the recursion of
Pesme & Flammarion's Algorithm 1 (their ``β = u ⊙ v`` from ``u = √2·α, v = 0`` has ``β_i = α² sinh(2 r_i)``
and the clock ``t / log(1/α)``: the same limit, twice as slow). Times here are in those units, written
"units of log(1/α)" (:func:`bumps.dln.model.time_unit`):

    τ = 0, β = 0, s = 0
    while ∇L(β) ≠ 0:
        D = {j : ∇L(β)_j ≠ 0}
        Δ = the smallest δ > 0 at which some s_i − δ ∇L(β)_i (i ∈ D) reaches ±1
        τ += Δ,  s −= Δ ∇L(β)
        β = argmin L subject to β_i ≥ 0 where s_i = +1, β_i ≤ 0 where s_i = −1, β_i = 0 where |s_i| < 1

``β`` is piecewise constant: a plateau (a saddle) on ``[τ_k, τ_{k+1})``, jumping at ``τ_k``. A
coordinate *switches on* at a jump where it leaves zero and *switches off* where it returns to zero;
the coordinates whose ``s`` reached ±1 at that jump (the ones that just switched on) are the
switch-off's *cause*: they took over the residual the coordinate explained. :func:`continue_path`
restarts the recursion from the limit state at any time with coordinates removed (held at zero), which is
the theory's prediction for a knockout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import lsq_linear

from bumps.errors import BumpsError

S_TOL = 1e-9  # |s_i| >= 1 − S_TOL counts as ±1
G_TOL = 1e-9  # |∇L_i| <= G_TOL · max|∇L(0)| counts as zero
B_TOL = 1e-10  # |β_i| <= B_TOL counts as zero


@dataclass(frozen=True)
class Path:
    """The limit trajectory: plateaus of β separated by jumps.

    Attributes
    ----------
    start : float
        τ at which the path starts (0, or the knockout time of a continuation).
    times : numpy.ndarray
        ``[K]`` jump times ``τ_1 < ... < τ_K`` in units of log(1/α).
    betas : numpy.ndarray
        ``[K + 1, d]``: ``betas[0]`` on ``[start, τ_1)``, ``betas[k]`` on ``[τ_k, τ_{k+1})``; the last is the
        limit as τ → ∞ (a minimiser of L over the coordinates not removed).
    s : numpy.ndarray
        ``[K + 1, d]``: ``s`` at the start of each plateau (after the jump).
    grads : numpy.ndarray
        ``[K + 1, d]``: ``∇L`` on each plateau, with entries that count as zero set to 0 (``s`` moves as
        ``s(τ) = s[k] − (τ − τ_k) grads[k]``).
    hits : tuple of tuple of int
        ``[K]``: the coordinates whose ``s`` reached ±1 at each jump.
    removed : tuple of int
        Coordinates held at zero throughout.
    """

    start: float
    times: np.ndarray
    betas: np.ndarray
    s: np.ndarray
    grads: np.ndarray
    hits: tuple[tuple[int, ...], ...]
    removed: tuple[int, ...] = ()


@dataclass(frozen=True)
class CoordEvent:
    """A coordinate leaving zero (``on``) or returning to zero (``off``) at a jump.

    Attributes
    ----------
    coord : int
        The coordinate.
    kind : {"on", "off"}
        Switch-on or switch-off.
    jump : int
        Index ``k`` of the jump (``times[k - 1]``; plateaus are numbered from 0).
    time : float
        ``τ_k`` in units of log(1/α).
    sign : float
        +1 or −1: the sign of the coordinate on the plateau it enters (``on``) or leaves (``off``).
    level : float
        ``|β_i|`` on that plateau.
    """

    coord: int
    kind: str
    jump: int
    time: float
    sign: float
    level: float


@dataclass(frozen=True)
class SwitchOff:
    """A coordinate that switches on and later off: the bump theory predicts.

    Attributes
    ----------
    coord : int
        The coordinate.
    t_on, t_off : float
        Times it switches on and off, in units of log(1/α).
    sign : float
        Its sign while on.
    level : float
        Its largest ``|β_i|`` while on.
    last_level : float
        ``|β_i|`` on the plateau just before it switches off.
    causes : tuple of int
        The coordinates that switched on at ``t_off`` (whose ``s`` reached ±1 there).
    """

    coord: int
    t_on: float
    t_off: float
    sign: float
    level: float
    last_level: float
    causes: tuple[int, ...]


def check_problem(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate one regression problem.

    Parameters
    ----------
    X : array_like
        ``[n, d]`` design, finite, no all-zero column.
    y : array_like
        ``[n]`` targets, finite.

    Returns
    -------
    X, y : numpy.ndarray
        float64 copies.

    Raises
    ------
    BumpsError
        On a wrong shape, non-finite values or a zero column.
    """
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or y.shape != (X.shape[0],) or X.shape[0] == 0 or X.shape[1] == 0:
        raise BumpsError(f"need X of shape [n, d] and y of shape [n] (got {X.shape} and {y.shape})")
    if not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise BumpsError("X and y must be finite; drop or fill NaN/inf values first")
    if (np.abs(X).sum(0) == 0).any():
        raise BumpsError(f"X has an all-zero column ({int(np.flatnonzero(np.abs(X).sum(0) == 0)[0])}); drop it")
    return X, y


def _argmin(X: np.ndarray, y: np.ndarray, s: np.ndarray, removed: tuple[int, ...]) -> np.ndarray:
    """β minimising L subject to the sign constraints of ``s`` (zero where |s| < 1 or removed)."""
    d = X.shape[1]
    beta = np.zeros(d)
    free = [i for i in range(d) if abs(s[i]) >= 1 - S_TOL and i not in removed]
    if not free:
        return beta
    lb = np.array([0.0 if s[i] > 0 else -np.inf for i in free])
    ub = np.array([np.inf if s[i] > 0 else 0.0 for i in free])
    sol = lsq_linear(X[:, free], y, bounds=(lb, ub), method="bvls", tol=1e-13)
    beta[free] = np.where(np.abs(sol.x) <= B_TOL, 0.0, sol.x)
    return beta


def saddle_path(
    X,
    y,
    start: float = 0.0,
    s0: np.ndarray | None = None,
    removed: tuple[int, ...] = (),
    max_jumps: int = 200,
) -> Path:
    """The limit path (Algorithm 1), from β = 0, s = 0 or from a given state.

    Parameters
    ----------
    X : array_like
        ``[n, d]`` design (:func:`check_problem`).
    y : array_like
        ``[n]`` targets.
    start : float, default 0.0
        τ of the starting state, in units of log(1/α).
    s0 : numpy.ndarray, optional
        ``[d]`` the state ``s`` at ``start``, entries in [−1, 1]; None: zeros. The first plateau is the
        constrained minimiser for ``s0`` (β = 0 for zeros), so a continuation after a knockout starts with
        the jump the removal causes.
    removed : tuple of int, default ()
        Coordinates held at zero (never in the constraint set, never hitting).
    max_jumps : int, default 200
        Refuse paths with more jumps than this.

    Returns
    -------
    Path
        The plateaus and jumps until ``∇L = 0`` on every coordinate not removed.

    Raises
    ------
    BumpsError
        On bad input, or when the path needs more than ``max_jumps`` jumps.
    """
    X, y = check_problem(X, y)
    n, d = X.shape
    removed = tuple(sorted({int(i) for i in removed}))
    if any(not 0 <= i < d for i in removed):
        raise BumpsError(f"removed coordinates must lie in 0..{d - 1} (got {removed})")
    s = np.zeros(d) if s0 is None else np.clip(np.asarray(s0, dtype=np.float64), -1.0, 1.0).copy()
    if s.shape != (d,):
        raise BumpsError(f"s0 must have shape [{d}] (got {s.shape})")
    gram, corr = X.T @ X / n, X.T @ y / n
    gscale = max(float(np.abs(corr).max()), 1e-300)
    keep = np.ones(d, bool)
    keep[list(removed)] = False

    def grad(beta: np.ndarray) -> np.ndarray:
        g = gram @ beta - corr
        return np.where((np.abs(g) > G_TOL * gscale) & keep, g, 0.0)

    tau = float(start)
    beta = _argmin(X, y, s, removed)
    times, betas, ss, grads, hits = [], [beta], [s.copy()], [grad(beta)], []
    while np.any(grads[-1] != 0):
        if len(times) >= max_jumps:
            raise BumpsError(f"the saddle path needs more than {max_jumps} jumps; pass a larger max_jumps")
        g = grads[-1]
        active = g != 0
        with np.errstate(divide="ignore", invalid="ignore"):
            delta = np.where(g < 0, (1 - s) / -g, (s + 1) / g)
        delta = np.where(active & (delta > 0), delta, np.inf)
        dmin = float(delta.min())
        if not np.isfinite(dmin):
            break
        hit = tuple(int(i) for i in np.flatnonzero(delta <= dmin * (1 + 1e-9)))
        tau += dmin
        s = np.clip(s - dmin * g, -1.0, 1.0)
        for i in hit:
            s[i] = -np.sign(g[i])
        beta = _argmin(X, y, s, removed)
        times.append(tau)
        betas.append(beta)
        ss.append(s.copy())
        grads.append(grad(beta))
        hits.append(hit)
    return Path(float(start), np.array(times), np.array(betas), np.array(ss), np.array(grads), tuple(hits), removed)


def beta_at(path: Path, tau: np.ndarray) -> np.ndarray:
    """The limit β on a time grid: ``[T, d]`` for ``tau`` ``[T]`` (τ before ``path.start``: the first plateau)."""
    k = np.searchsorted(path.times, np.asarray(tau, dtype=np.float64), side="right")
    return path.betas[k]


def s_at(path: Path, tau: float) -> np.ndarray:
    """The state ``s`` at time ``tau`` (≥ ``path.start``): ``[d]``."""
    k = int(np.searchsorted(path.times, tau, side="right"))
    t0 = path.start if k == 0 else float(path.times[k - 1])
    return np.clip(path.s[k] - (tau - t0) * path.grads[k], -1.0, 1.0)


def continue_path(X, y, path: Path, tau: float, removed: tuple[int, ...]) -> Path:
    """The theory's knockout: the limit path from the state of ``path`` at ``tau`` with ``removed`` held at zero.

    Parameters
    ----------
    X, y : array_like
        The problem ``path`` was computed on.
    path : Path
        The unintervened path.
    tau : float
        Knockout time, in units of log(1/α).
    removed : tuple of int
        Coordinates removed from ``tau`` on (added to those ``path`` already holds at zero).

    Returns
    -------
    Path
        Starting at ``tau``; its first plateau is the minimiser the removal jumps to.
    """
    return saddle_path(X, y, start=tau, s0=s_at(path, tau), removed=tuple(path.removed) + tuple(removed))


def coordinate_events(path: Path) -> list[CoordEvent]:
    """Every switch-on and switch-off of ``path``, in time order (then by coordinate)."""
    out = []
    nz = np.abs(path.betas) > B_TOL
    for k in range(1, len(path.betas)):
        t = float(path.times[k - 1])
        for i in np.flatnonzero(nz[k] & ~nz[k - 1]):
            out.append(CoordEvent(int(i), "on", k, t, float(np.sign(path.betas[k, i])), float(abs(path.betas[k, i]))))
        for i in np.flatnonzero(~nz[k] & nz[k - 1]):
            b = path.betas[k - 1, i]
            out.append(CoordEvent(int(i), "off", k, t, float(np.sign(b)), float(abs(b))))
    return sorted(out, key=lambda e: (e.time, e.coord))


def switch_offs(path: Path) -> list[SwitchOff]:
    """Every episode where a coordinate switches on and later off, with the coordinates that caused the fall.

    Parameters
    ----------
    path : Path
        A path from :func:`saddle_path`.

    Returns
    -------
    list of SwitchOff
        In order of ``t_off``. A coordinate on at ``path.start`` (a continuation) has ``t_on = path.start``.
    """
    out = []
    nz = np.abs(path.betas) > B_TOL
    t = np.concatenate([[path.start], path.times])
    for i in range(path.betas.shape[1]):
        k = 0
        while k < len(nz):
            if not nz[k, i]:
                k += 1
                continue
            j = k
            while j < len(nz) and nz[j, i]:
                j += 1
            if j < len(nz):  # on over plateaus k..j−1, off at jump j
                vals = path.betas[k:j, i]
                out.append(
                    SwitchOff(
                        i,
                        float(t[k]),
                        float(t[j]),
                        float(np.sign(vals[0])),
                        float(np.abs(vals).max()),
                        float(abs(vals[-1])),
                        path.hits[j - 1],
                    )
                )
            k = j
    return sorted(out, key=lambda e: (e.t_off, e.coord))
