"""The knockout test on diagonal linear networks, scored against the theory's own prediction for each knockout.

For a bump of coordinate ``i`` (a detected bump matched to a theory switch-off,
:func:`bumps.dln.claims.detect`), from the record at its peak the flow continues

* unintervened (role ``none``),
* with the **competitor** removed: the coordinate whose switch-on the theory says caused the fall
  (:attr:`bumps.dln.theory.SwitchOff.causes`),
* with every other coordinate removed in turn (role ``control``); the *matched* control is the one whose
  final ``|β|`` in the unintervened run is closest to the competitor's (another coordinate the fit ends up
  using, not a coordinate that never moves).

A removal sets ``u_j = v_j = 0``, which the flow keeps at zero exactly. Each continuation is scored as the toy
model's (:mod:`bumps.lowrank.knockout`): ``persists`` (the detector, same thresholds, still finds a bump on
coordinate ``i`` peaking inside the original [start, end]) and ``drop_ratio`` (the largest fall of the
coordinate between the knockout and the original end, over the original drop). The test calls an arm
*competition* when the fall stopped on both counts: not ``persists`` and ``drop_ratio < 0.5``.

The theory's prediction for the same arm is the limit path restarted at the knockout time with the coordinate
removed (:func:`bumps.dln.theory.continue_path`): its ``theory_drop_ratio`` is the largest fall of
coordinate ``i`` after the knockout over that of the unintervened path, and theory says *competition* when
it is below 0.5 (removing the coordinate keeps at least half of ``i`` on).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bumps.detect.bumps import BumpParams, find_bumps
from bumps.dln.model import DLNConfig, Problems, Trajectory, flow
from bumps.dln.theory import B_TOL, beta_at, continue_path
from bumps.knockout import BumpEvent, KnockoutOutcome, KnockoutPlan, persists

STOP_RATIO = 0.5  # an arm stops the fall when the drop ratio is below this


@dataclass(frozen=True)
class Target:
    """A bump to knock out at: a detected bump matched to a theory switch-off.

    Attributes
    ----------
    event : BumpEvent
        ``series="beta"``, ``index=(problem, coord)``, steps are record indices, ``sign`` the orientation.
    t_on, t_off : float
        The theory's switch-on and switch-off times (τ).
    cause : int
        The theory's competitor (the first of the switch-off's causes).
    empirical : int
        The coordinate ≠ ``coord`` whose ``|β|`` gains most over the bump's [peak, end] (ties: larger final
        ``|β|``), as :func:`bumps.lowrank.knockout.competitor` picks it from the data alone.
    """

    event: BumpEvent
    t_on: float
    t_off: float
    cause: int
    empirical: int


def empirical_competitor(beta: np.ndarray, coord: int, peak: int, end: int) -> int:
    """The coordinate ≠ ``coord`` gaining most ``|β|`` over records [peak, end]; ``beta`` ``[T, d]``."""
    a = np.abs(beta)
    gain = a[end] - a[peak]
    order = sorted((j for j in range(a.shape[1]) if j != coord), key=lambda j: (gain[j], a[-1, j]), reverse=True)
    return order[0]


def plans(targets: list[Target], d: int, final_beta: np.ndarray) -> list[tuple[KnockoutPlan, bool]]:
    """Every arm of every target, with whether it is the matched control.

    Parameters
    ----------
    targets : list of Target
        The bumps.
    d : int
        Coordinates.
    final_beta : numpy.ndarray
        ``[P, d]`` β at the end of the unintervened run (to match the control).

    Returns
    -------
    list of (KnockoutPlan, bool)
        Per target: the ``none`` arm, the competitor, then each control (``pair`` is the target's index).
    """
    out = []
    for k, t in enumerate(targets):
        p, i = t.event.index
        others = [j for j in range(d) if j not in (i, t.cause)]
        fin = np.abs(final_beta[p])
        matched = min(others, key=lambda j: (abs(fin[j] - fin[t.cause]), j)) if others else None
        out.append((KnockoutPlan(t.event, "none", (), "peak", k), False))
        out.append((KnockoutPlan(t.event, "competitor", (t.cause,), "peak", k), False))
        out += [(KnockoutPlan(t.event, "control", (j,), "peak", k), j == matched) for j in others]
    return out


def largest_fall(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``max over lo ≤ t1 ≤ t2 ≤ hi of y[t1] − y[t2]`` per column of ``y`` ``[T, M]`` (``lo``, ``hi`` ``[M]``)."""
    t = np.arange(y.shape[0])[:, None]
    inside = (t >= lo[None]) & (t <= hi[None])
    run_max = np.maximum.accumulate(np.where(inside, y, -np.inf), axis=0)
    return np.where(inside, run_max - y, -np.inf).max(0)


def run_arms(
    cfg: DLNConfig,
    problems: Problems,
    ref: Trajectory,
    targets: list[Target],
    params: BumpParams | None = None,
) -> list[dict]:
    """Simulate and score every arm; one JSON-ready record per arm (see the module docstring).

    Parameters
    ----------
    cfg : DLNConfig
        The run settings (``ref`` was made with them).
    problems : Problems
        The problems ``ref`` trained on.
    ref : Trajectory
        ``[T, P, d]`` the unintervened run of every problem.
    targets : list of Target
        The bumps to knock out at.
    params : BumpParams, optional
        Detector thresholds (None: defaults), as used to find the bumps.

    Returns
    -------
    list of dict
        Keys: ``problem``, ``coord``, ``bump``, ``role``, ``removed``, ``matched``, ``empirical``,
        ``knock_record``, ``persists``, ``drop_ratio``, ``stops`` (the test's competition call),
        ``theory_drop_ratio``, ``theory_stops``, ``theory_final`` (|β_i| at the end of the theory path).
    """
    if not targets:
        return []
    d = problems.X.shape[2]
    arms = plans(targets, d, ref.beta[-1])
    prob = np.array([a.event.index[0] for a, _ in arms])
    keep = np.ones((len(arms), d), bool)
    for k, (a, _) in enumerate(arms):
        keep[k, list(a.removed)] = False
    start = np.array([a.event.peak_step for a, _ in arms])
    sub = Trajectory(ref.alpha, ref.tau, ref.u[:, prob], ref.v[:, prob], ref.beta[:, prob], ref.lr)
    cont = flow(cfg, problems.gram[prob], problems.corr[prob], ref.alpha, keep=keep, start=start, ref=sub)
    coord = np.array([a.event.index[1] for a, _ in arms])
    sign = np.array([a.event.sign for a, _ in arms])
    y = cont.beta[:, np.arange(len(arms)), coord] * sign  # [T, A]
    peaks: list[list[int]] = [[] for _ in arms]
    for b in find_bumps(y, None, params, name="knockout"):
        peaks[b.index[0]].append(b.peak)
    end = np.array([a.event.end_step for a, _ in arms])
    fall = largest_fall(y, start, end)
    tau = cfg.tau
    records = []
    for k, (a, matched) in enumerate(arms):
        e = a.event
        p, i = e.index
        t = targets[a.pair]
        outcome = KnockoutOutcome(
            a, int(start[k]), persists(np.array(peaks[k], int), e), float(max(fall[k], 0) / e.drop)
        )
        t_knock = float(np.clip(tau[start[k]], t.t_on, np.nextafter(t.t_off, -np.inf)))
        path = problems.paths[p]
        curve = sign[k] * beta_at(path, tau)[:, i]
        after = tau >= t_knock
        cont_path = continue_path(problems.X[p], problems.y[p], path, t_knock, a.removed) if a.removed else path
        arm_curve = np.where(after, sign[k] * beta_at(cont_path, tau)[:, i], curve)
        lo = np.array([int(np.argmax(after))])
        hi = np.array([len(tau) - 1])
        base = float(largest_fall(curve[:, None], lo, hi)[0])
        th_ratio = float(max(largest_fall(arm_curve[:, None], lo, hi)[0], 0) / base) if base > B_TOL else float("nan")
        records.append(
            {
                "problem": p,
                "coord": i,
                "bump": a.pair,
                "role": a.role,
                "removed": list(a.removed),
                "matched": matched,
                "empirical": t.empirical,
                "knock_record": outcome.at_step,
                "knock_tau": float(tau[outcome.at_step]),
                "persists": outcome.persists,
                "drop_ratio": outcome.drop_ratio,
                "stops": (not outcome.persists) and outcome.drop_ratio < STOP_RATIO,
                "theory_knock_tau": t_knock,
                "theory_drop_ratio": th_ratio,
                "theory_stops": bool(th_ratio < STOP_RATIO),
                "theory_final": float(abs(cont_path.betas[-1, i])),
            }
        )
    return records
