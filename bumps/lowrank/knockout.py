"""The knockout test of every bump: does removing the competitor undo the bump?

For each bump on (loser L, target m) in ``inner_a`` or ``inner_b`` (detected on the
curves oriented by their peak, :func:`bumps.detect.orient_by_peak`):

* the **competitor** W ≠ L is the unit whose (oriented) curve on m gains most over
  the loser's fall [peak, end] (ties: the larger gain over the whole bump, then the
  larger final value — never the unit's number);
* the **controls** are every other unit C ∉ {L, W};
* each is knocked out (both vectors and optimizer state zeroed, :mod:`bumps.lowrank.model`)
  at the bump's peak step, and in a second row at its start step, replaying the same
  seed; only L's curve on m is recorded;
* a third row (``at = "peak_causal"``) knocks out at the peak with the competitor chosen
  without look-ahead: the unit ≠ L whose curve on m gains most over [start, peak], data the
  run had before the knockout (:func:`causal_competitor`); its controls are the other units.

Outcomes per intervention: ``persists`` — the bump detector, with the same thresholds,
still finds a bump on (L, m) whose peak lies inside the original [start, end]; and
``drop_ratio`` — the largest fall of L's curve on m between the intervention and the
original end, over the original drop (1: unchanged fall; 0: no fall). Competition
predicts that removing W (not a control) stops the fall: low persistence, low ratio.
"""

from __future__ import annotations

import numpy as np
import torch

from bumps.detect.bumps import Bump, BumpParams, find_bumps, orient_by_peak
from bumps.knockout import BumpEvent, KnockoutOutcome, KnockoutPlan, persists
from bumps.lowrank.model import LowRankConfig, initial_state, simulate_knockouts

SERIES_SIDE = {"inner_a": 0, "inner_b": 1}
KNOCKOUT_TIMES = ("peak", "start", "peak_causal")  # rows of the test (module docstring)


def _largest_fall(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """max over lo ≤ t1 ≤ t2 ≤ hi of y[t1] − y[t2], per column of y [T, M]."""
    t = np.arange(y.shape[0])[:, None]
    inside = (t >= lo) & (t <= hi)
    run_max = np.maximum.accumulate(np.where(inside, y, -np.inf), axis=0)
    return np.where(inside, run_max - y, -np.inf).max(0)


def competitor(x: np.ndarray, bump: Bump) -> int:
    """The unit ≠ loser that gains most on the bump's target over [peak, end]; x [T, K] (oriented)."""
    loser = bump.index[-1]
    gain_fall = x[bump.end] - x[bump.peak]
    gain_all = x[bump.end] - x[bump.start]
    order = sorted(
        (k for k in range(x.shape[1]) if k != loser), key=lambda k: (gain_fall[k], gain_all[k], x[-1, k]), reverse=True
    )
    return order[0]


def causal_competitor(x: np.ndarray, bump: Bump) -> int:
    """The unit ≠ loser that gains most on the bump's target over [start, peak] (no data after the peak);
    ties: the larger value at the peak, then the larger gain from step 0. x [T, K] (oriented)."""
    loser = bump.index[-1]
    gain_rise = x[bump.peak] - x[bump.start]
    gain_all = x[bump.peak] - x[0]
    order = sorted(
        (k for k in range(x.shape[1]) if k != loser),
        key=lambda k: (gain_rise[k], x[bump.peak, k], gain_all[k]),
        reverse=True,
    )
    return order[0]


def plan(
    run: dict,
    params: BumpParams | None = None,
    max_bumps: int | None = None,
    rng_seed: int = 0,
    series: tuple[str, ...] = ("inner_a", "inner_b"),
) -> list[KnockoutPlan]:
    """Every intervention of the knockout test for a lowrank run (needs K ≥ 2).

    ``max_bumps`` draws that many bumps uniformly (fixed ``rng_seed``) when there are more.
    """
    step = np.asarray(run["step"])
    out: list[KnockoutPlan] = []
    bumps_all = []
    oriented = {}
    for name in series:
        raw = np.asarray(run[name], dtype=np.float64)  # [T, N, r, K]
        x = orient_by_peak(raw)
        sign = np.sign(np.take_along_axis(raw, np.abs(raw).argmax(0)[None], 0)[0])
        oriented[name] = (x, np.where(sign == 0, 1.0, sign))
        bumps_all += [(name, b) for b in find_bumps(x, step, params, name=name)]
    if max_bumps is not None and len(bumps_all) > max_bumps:
        keep = np.sort(np.random.default_rng(rng_seed).choice(len(bumps_all), max_bumps, replace=False))
        bumps_all = [bumps_all[i] for i in keep]
    for i, (name, b) in enumerate(bumps_all):
        x, sign = oriented[name]
        n, m, loser = b.index
        k = x.shape[-1]
        if k < 2:
            continue
        chosen = {"peak": competitor(x[:, n, m, :], b), "peak_causal": causal_competitor(x[:, n, m, :], b)}
        chosen["start"] = chosen["peak"]
        s = float(sign[n, m, loser])
        event = BumpEvent(name, (n, m, loser), int(step[b.start]), int(step[b.peak]), int(step[b.end]), b.drop, n, s)
        for at in KNOCKOUT_TIMES:
            w = chosen[at]
            for unit in [w] + [c for c in range(k) if c not in (loser, w)]:
                out.append(KnockoutPlan(event, "competitor" if unit == w else "control", (unit,), at, i))
    return out


def as_record(outcome: KnockoutOutcome) -> dict:
    """The JSON record of one toy knockout (the claims report's ``knockouts`` rows)."""
    it, e = outcome.plan, outcome.plan.event
    seed, target, loser = e.index
    return {
        "series": e.series,
        "seed": seed,
        "loser": loser,
        "target": target,
        "unit": it.removed[0],
        "role": it.role,
        "at": it.at,
        "step": outcome.at_step,
        "start_step": e.start_step,
        "peak_step": e.peak_step,
        "end_step": e.end_step,
        "persists": outcome.persists,
        "drop_ratio": outcome.drop_ratio,
        "bump": it.pair,
    }


def run_plan(
    cfg: LowRankConfig,
    step: np.ndarray,
    items: list[KnockoutPlan],
    params: BumpParams | None = None,
    batch: int = 4096,
    progress=None,
    state: dict | None = None,
) -> list[dict]:
    """Simulate every intervention (batched) and score ``persists`` and ``drop_ratio``; ``state``: the run's
    starting state when it is not :func:`bumps.lowrank.model.initial_state` of ``cfg`` (a rotated start)."""
    if not items:
        return []
    state = initial_state(cfg) if state is None else state
    records = []
    for lo in range(0, len(items), batch):
        chunk = items[lo : lo + batch]
        events = [it.event for it in chunk]
        col = lambda f, c=chunk: torch.tensor([f(it) for it in c])  # noqa: E731
        at_step = np.array(
            [e.start_step if it.at == "start" else e.peak_step for it, e in zip(chunk, events, strict=True)]
        )
        knock_pos = np.searchsorted(step, at_step)
        end = np.searchsorted(step, [e.end_step for e in events])
        curves = simulate_knockouts(
            cfg,
            col(lambda it: it.event.index[0]),
            col(lambda it: it.removed[0]),
            torch.as_tensor(at_step),
            col(lambda it: it.event.index[1]),
            col(lambda it: it.event.index[2]),
            state=state,
        ).numpy()  # [T, I, 2]
        side = np.array([SERIES_SIDE[e.series] for e in events])
        y = curves[:, np.arange(len(chunk)), side] * np.array([e.sign for e in events])
        found = find_bumps(y, step, params, name="knockout")
        peaks: list[list[int]] = [[] for _ in chunk]
        for b in found:
            peaks[b.index[0]].append(int(step[b.peak]))
        fall = _largest_fall(y, knock_pos[None], end[None])
        for j, (it, e) in enumerate(zip(chunk, events, strict=True)):
            outcome = KnockoutOutcome(
                it, int(at_step[j]), persists(np.array(peaks[j], int), e), float(max(fall[j], 0.0) / e.drop)
            )
            records.append(as_record(outcome))
        if progress:
            progress(min(lo + batch, len(items)))
    return records


def summarize(records: list[dict], n_boot: int = 2000, rng_seed: int = 0) -> dict:
    """Competitor vs control per ``at``, paired by bump, with seed-bootstrap 95% CIs.

    Per bump: the competitor's persists / drop_ratio, and the mean persists / median
    drop_ratio over its controls. Statistics over bumps that have ≥ 1 control: the
    persistence rates, their difference (control − competitor), the median drop
    ratios, and ``drop_gap``, the mean over bumps of the paired difference control −
    competitor drop ratio (``drop_gap_positive``: bumps where it is > 0; ``per_seed``: the mean drop and
    persistence gaps of each seed's bumps, for intervals over seeds). CIs: percentile
    bootstrap resampling seeds (clusters) with replacement (the seeds are the independent
    units: ``seeds`` of them).
    """
    out = {}
    for at in KNOCKOUT_TIMES:
        rows: dict[int, dict] = {}
        for r in records:
            if r["at"] != at:
                continue
            d = rows.setdefault(r["bump"], {"seed": r["seed"], "ctl_p": [], "ctl_d": []})
            if r["role"] == "competitor":
                d["comp_p"], d["comp_d"] = r["persists"], r["drop_ratio"]
            else:
                d["ctl_p"].append(r["persists"])
                d["ctl_d"].append(r["drop_ratio"])
        use = [d for d in rows.values() if d["ctl_p"] and "comp_p" in d]
        if not use:
            out[at] = {"bumps": 0}
            continue
        seed = np.array([d["seed"] for d in use])
        cp = np.array([d["comp_p"] for d in use], float)
        kp = np.array([np.mean(d["ctl_p"]) for d in use])
        cd = np.array([d["comp_d"] for d in use])
        kd = np.array([np.median(d["ctl_d"]) for d in use])

        def stats(idx, cp=cp, kp=kp, cd=cd, kd=kd):
            return (
                cp[idx].mean(),
                kp[idx].mean(),
                kp[idx].mean() - cp[idx].mean(),
                np.median(cd[idx]),
                np.median(kd[idx]),
                (kd[idx] - cd[idx]).mean(),
            )

        names = (
            "competitor_persists",
            "control_persists",
            "persist_gap",
            "competitor_drop_ratio",
            "control_drop_ratio",
            "drop_gap",
        )
        point = stats(np.arange(len(use)))
        seeds = np.unique(seed)
        members = [np.flatnonzero(seed == s) for s in seeds]
        rng = np.random.default_rng(rng_seed)
        boot = np.array(
            [
                stats(np.concatenate([members[i] for i in rng.integers(0, len(seeds), len(seeds))]))
                for _ in range(n_boot)
            ]
        )
        lo, hi = np.percentile(boot, [2.5, 97.5], axis=0)
        per_seed = {
            "drop_gap": [float((kd - cd)[seed == s].mean()) for s in seeds],
            "persist_gap": [float((kp - cp)[seed == s].mean()) for s in seeds],
        }
        out[at] = {
            "bumps": len(use),
            "seeds": len(seeds),
            "drop_gap_positive": int((kd - cd > 0).sum()),
            "per_seed": per_seed,
            **{
                n: {"value": float(v), "ci_low": float(a), "ci_high": float(b)}
                for n, v, a, b in zip(names, point, lo, hi, strict=True)
            },
        }
    return out
