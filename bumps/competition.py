"""Competition between learned units for targets, and the norm-decay phase.

Input is an alignment tensor ``[T, units, targets]`` (toy model: learned vectors ×
target vectors; mod-add: neurons × Fourier frequencies). A competition event is

1. a bump on (loser, target) — :func:`bumps.detect.find_bumps` on that curve;
2. a winner unit ≠ loser that was rising toward the same target while the
   loser rose (gain over [start, peak] ≥ ``min_gain`` · scale) and keeps rising
   while the loser falls: gain over [peak, end] ≥ max(``min_gain`` · scale,
   ``min_gain_of_drop`` · the loser's drop) — it catches up;
3. a new target ≠ target that the loser gains over [peak, end], by at least
   max(``min_gain`` · scale, ``min_gain_of_drop`` · the loser's drop).

``scale`` is the largest |alignment| in the tensor, so the rule is invariant to
positive rescaling, and events do not depend on how units and targets are
numbered (ties between equally good winners are broken by the larger gain).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from bumps.detect import Bump, BumpParams, check_curves, find_bumps


@dataclass(frozen=True)
class CompetitionEvent:
    """Loser and winner compete for ``target``; positions are samples along time."""

    target: int
    loser: int
    winner: int
    new_target: int
    start: int  # the loser's trough before its rise
    peak: int  # the loser's peak on ``target``
    end: int  # the loser's trough after its fall
    loser_rise: float
    loser_drop: float
    winner_gain_during_rise: float
    winner_gain_during_fall: float
    new_target_gain: float

    def as_dict(self, step: np.ndarray | None = None) -> dict:
        out = asdict(self)
        if step is not None:
            for k in ("start", "peak", "end"):
                out[f"{k}_step"] = int(step[getattr(self, k)])
        return out


def _gain(curve: np.ndarray, a: int, b: int) -> float:
    """How much ``curve`` rose into sample b from its lowest point in [a, b]."""
    return float(curve[b] - curve[a:b + 1].min())


def find_competition(alignment, step=None, params: BumpParams | None = None,
                     min_gain: float = 0.05, bumps: list[Bump] | None = None,
                     partners=None, min_gain_of_drop: float = 0.5) -> list[CompetitionEvent]:
    """Competition events in ``alignment`` [T, units, targets].

    ``bumps`` may pass precomputed bumps of this tensor (index = (unit, target)).
    ``partners`` (same shape) is where winners and the loser's other targets are
    read; by default ``alignment`` itself. Passing an unrelated run's tensor gives
    the chance baseline: how often a bump "looks explained" by coincidence.
    """
    x, step = check_curves(alignment, step, "alignment")
    if x.ndim != 3:
        raise ValueError(f"alignment must be [T, units, targets], got shape {x.shape}")
    if bumps is None:
        bumps = find_bumps(x, step, params)
    y = x if partners is None else check_curves(partners, step, "partners")[0]
    if y.shape != x.shape:
        raise ValueError(f"partners must have the alignment's shape {x.shape}, got {y.shape}")
    scale = float(np.abs(x).max())
    need = min_gain * scale
    events = []
    for b in bumps:
        loser, target = b.index
        s, p, e = b.start, b.peak, b.end
        need_after = max(need, min_gain_of_drop * b.drop)
        best = None
        for w in range(x.shape[1]):
            if w == loser:
                continue
            up = _gain(y[:, w, target], s, p)
            on = float(y[e, w, target] - y[p, w, target])
            if up >= need and on >= need_after and (best is None or on > best[2]):
                best = (w, up, on)
        if best is None:
            continue
        gains = [(float(y[e, loser, t] - y[p, loser, t]), t) for t in range(x.shape[2]) if t != target]
        if not gains:
            continue
        new_gain, new_target = max(gains)
        if new_gain < need_after:
            continue
        events.append(CompetitionEvent(
            target=target, loser=loser, winner=best[0], new_target=new_target, start=s, peak=p,
            end=e, loser_rise=b.rise, loser_drop=b.drop, winner_gain_during_rise=best[1],
            winner_gain_during_fall=best[2], new_target_gain=new_gain,
        ))
    return events


def norm_decay_end(norms, step=None) -> np.ndarray:
    """Step at which the initial norm-decay phase ends, per run.

    ``norms`` is [T, ..., K] (the norms of a run's K learned vectors, any leading
    run axes). The phase is the initial stretch over which the total squared norm
    Σ_k |·|² falls; it ends at the first record where that total stops falling
    (step[0] if it never fell). Returns an int64 array over the run axes.
    """
    x, step = check_curves(norms, step, "norms")
    total = (x**2).sum(-1)  # [T, ...]
    falling = np.diff(total, axis=0) < 0  # [T-1, ...]
    # index of the first non-falling difference = the sample where the decay stops
    stops = np.where(falling.all(0), total.shape[0] - 1, (~falling).argmax(0))
    return step[stops]
