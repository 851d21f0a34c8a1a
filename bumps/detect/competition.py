"""Competition between learned units for targets, and the norm-decay phase.

Input is an alignment tensor ``[T, units, targets]`` (toy model: learned vectors ×
target vectors; mod-add: neurons × Fourier frequencies). This is the *correlational*
test; the causal verdict in the toy model is the knockout test (:mod:`bumps.lowrank.knockout`).
A competition event is

1. a bump on (loser, target) — :func:`bumps.detect.find_bumps` on that curve; its
   half-prominence windows are local to the bump: the rise window [r, peak] starts at
   the last sample before the peak at or below peak − rise/2, the fall window
   [peak, f] ends at the first sample after it at or below peak − drop/2;
2. a winner unit ≠ loser that rose toward the same target in the rise window (gain
   ≥ ``min_gain`` · scale) and keeps rising in the fall window: gain ≥ max(``min_gain``
   · scale, ``min_gain_of_drop`` · the loser's fall in that window) — it catches up;
3. a new target ≠ target that the loser itself gains in the fall window, by the same
   amount. The loser's curves are always its own, even when ``partners`` are given.

``scale`` is the largest |alignment| in the tensor, so the rule is invariant to
positive rescaling. Among qualifying winners (and new targets) the one with the
larger gain in the fall window is reported, then the larger gain in the rise window,
then the larger final value — never the lower number; whether a bump is explained
does not depend on which is reported.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from bumps.detect.bumps import Bump, BumpParams, check_curves, find_bumps


@dataclass(frozen=True)
class CompetitionEvent:
    """One competition event: loser and winner compete for ``target``.

    The rule is in the module docstring (:mod:`bumps.detect.competition`). Positions
    are sample indices along time; gains are in alignment units. ``r`` and ``f`` below
    are the ends of the bump's half-prominence windows (:func:`half_windows`).

    Attributes
    ----------
    target : int
        Index of the contested target on the tensor's target axis.
    loser : int
        Index of the unit whose bump on ``target`` is explained.
    winner : int
        Index of the unit that catches up on ``target`` while the loser falls.
    new_target : int
        Index of the other target the loser gains during its fall.
    start : int
        The loser's trough before its rise (as in :class:`bumps.detect.bumps.Bump`).
    peak : int
        The loser's peak on ``target``.
    end : int
        The loser's trough after its fall.
    loser_rise : float
        The bump's rise, ``x[peak] − x[start]``.
    loser_drop : float
        The bump's drop, ``x[peak] − x[end]``.
    winner_gain_during_rise : float
        The winner's value at ``peak`` minus its minimum over the rise window ``[r, peak]``.
    winner_gain_during_fall : float
        The winner's value at ``f`` minus its value at ``peak``.
    new_target_gain : float
        The loser's value on ``new_target`` at ``f`` minus its value at ``peak``.
    """

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
        """The event as a JSON-ready dict.

        Parameters
        ----------
        step : numpy.ndarray, optional
            The tensor's steps, ``[T]``. If given, ``start_step``, ``peak_step`` and
            ``end_step`` are added, converted with ``int``. None: sample positions only.

        Returns
        -------
        dict
            Every field, plus the ``*_step`` keys if ``step`` is given.
        """
        out = asdict(self)
        if step is not None:
            for k in ("start", "peak", "end"):
                out[f"{k}_step"] = int(step[getattr(self, k)])
        return out


def half_windows(x: np.ndarray, bump: Bump) -> tuple[int, int]:
    """Ends of a bump's half-prominence windows (see :mod:`bumps.detect.competition`).

    Parameters
    ----------
    x : numpy.ndarray
        The curve ``[T]`` on which ``bump`` was found.
    bump : Bump
        A bump of ``x`` (its ``start``, ``peak``, ``end``, ``rise`` and ``drop`` are used).

    Returns
    -------
    r : int
        Last sample in ``[start, peak]`` at or below ``x[peak] − rise/2``: the rise
        window is ``[r, peak]``.
    f : int
        First sample in ``[peak, end]`` at or below ``x[peak] − drop/2``: the fall
        window is ``[peak, f]``.
    """
    p = bump.peak
    seg = x[bump.start : p + 1]
    r = bump.start + int(np.flatnonzero(seg <= x[p] - bump.rise / 2)[-1])
    seg = x[p : bump.end + 1]
    f = p + int(np.flatnonzero(seg <= x[p] - bump.drop / 2)[0])
    return r, f


def _best(gain_fall: np.ndarray, gain_rise: np.ndarray, last: np.ndarray, ok: np.ndarray) -> int | None:
    """Index of the qualifying entry with the largest (fall gain, rise gain, final value)."""
    idx = np.flatnonzero(ok)
    if len(idx) == 0:
        return None
    return int(idx[np.lexsort((last[idx], gain_rise[idx], gain_fall[idx]))[-1]])


def find_competition(
    alignment,
    step=None,
    params: BumpParams | None = None,
    min_gain: float = 0.05,
    bumps: list[Bump] | None = None,
    partners=None,
    min_gain_of_drop: float = 0.5,
) -> list[CompetitionEvent]:
    """Find the competition events that explain bumps of an alignment tensor.

    The rule is in the module docstring (:mod:`bumps.detect.competition`).

    Parameters
    ----------
    alignment : array_like
        Alignment ``[T, units, targets]``: time (samples) on axis 0, learned units on
        axis 1, targets on axis 2.
    step : array_like, optional
        The step of each sample, ``[T]``, strictly increasing; None means
        ``0, 1, ..., T − 1``. Used only to find the bumps (``params.min_duration``).
    params : BumpParams, optional
        Thresholds for finding the loser's bumps; None means ``BumpParams()``.
        Unused when ``bumps`` is given.
    min_gain : float, default 0.05
        A winner's gain in the rise window, and its and the new target's gain in the
        fall window, must each be at least this fraction of ``scale`` (the largest
        ``|alignment|`` in the tensor).
    bumps : list of Bump, optional
        Precomputed bumps of ``alignment`` (``index = (unit, target)``). None: found
        with :func:`bumps.detect.bumps.find_bumps` and ``params``.
    partners : array_like, optional
        Tensor of ``alignment``'s shape in which winners are read; None means
        ``alignment`` itself. An unrelated run's tensor, or a circular time shift,
        gives a null draw (the ``competition_null`` summary of
        :func:`bumps.detect.analysis.analyze`). The loser and its new target are
        always read from ``alignment``.
    min_gain_of_drop : float, default 0.5
        In the fall window, the winner's and the new target's gains must also be at
        least this fraction of the loser's fall in that window.

    Returns
    -------
    list of CompetitionEvent
        At most one per bump (the best winner and new target), in the order of
        ``bumps``.

    Raises
    ------
    BumpsError
        If ``alignment``, ``partners`` or ``step`` fail :func:`bumps.detect.bumps.check_curves`,
        or ``params`` is invalid.
    ValueError
        If ``alignment`` is not 3-D, or ``partners`` does not have its shape.
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
    units, targets = x.shape[1], x.shape[2]
    for b in bumps:
        loser, target = b.index
        curve = x[:, loser, target]
        r, f = half_windows(curve, b)
        p = b.peak
        need_after = max(need, min_gain_of_drop * float(curve[p] - curve[f]))
        yw = y[:, :, target]  # [T, units]
        up = yw[p] - yw[r : p + 1].min(0)
        on = yw[f] - yw[p]
        ok = (up >= need) & (on >= need_after) & (np.arange(units) != loser)
        w = _best(on, up, yw[-1], ok)
        if w is None:
            continue
        own = x[:, loser, :]  # the loser's own curves, never the partner's
        gain = own[f] - own[p]
        t = _best(gain, own[p] - own[r], own[-1], (gain >= need_after) & (np.arange(targets) != target))
        if t is None:
            continue
        events.append(
            CompetitionEvent(
                target=target,
                loser=loser,
                winner=w,
                new_target=t,
                start=b.start,
                peak=p,
                end=b.end,
                loser_rise=b.rise,
                loser_drop=b.drop,
                winner_gain_during_rise=float(up[w]),
                winner_gain_during_fall=float(on[w]),
                new_target_gain=float(gain[t]),
            )
        )
    return events


def norm_decay_end(norms, step=None) -> np.ndarray:
    """Step at which the initial norm-decay phase ends, per run.

    The phase is the initial stretch over which the total squared norm Σ_k |·|²
    falls; it ends at the first record where that total stops falling.

    Parameters
    ----------
    norms : array_like
        Norms ``[T, ..., K]``: time (records) on axis 0, the K learned vectors of a
        run on the last axis, any run axes (e.g. seeds) between.
    step : array_like, optional
        The step of each record, ``[T]``, strictly increasing; None means
        ``0, 1, ..., T − 1``.

    Returns
    -------
    numpy.ndarray
        Over the run axes (``norms.shape[1:-1]``), in ``step``'s dtype: the step of
        the first record whose next record's total is not smaller (``step[0]`` if
        it never fell, ``step[T − 1]`` if it falls to the end).

    Raises
    ------
    BumpsError
        If ``norms`` or ``step`` fail :func:`bumps.detect.bumps.check_curves`.
    """
    x, step = check_curves(norms, step, "norms")
    total = (x**2).sum(-1)  # [T, ...]
    falling = np.diff(total, axis=0) < 0  # [T-1, ...]
    # index of the first non-falling difference = the sample where the decay stops
    stops = np.where(falling.all(0), total.shape[0] - 1, (~falling).argmax(0))
    return step[stops]
