"""Bump detection in families of curves.

A *bump* is a rise to a peak followed by a real fall. For a curve ``x`` and a
local maximum ``p`` (``scipy.signal.find_peaks``, no window so the result does
not depend on the sampling cadence):

* ``start`` is the lowest sample between ``p`` and the nearest earlier sample
  higher than ``x[p]`` (or the first sample): the trough before the rise;
* ``end`` is the lowest sample between ``p`` and the nearest later sample higher
  than ``x[p]`` (or the last sample): the trough after the fall, so a bump still
  falling when the run ends is kept, ending at the last sample;
* ``rise = x[p] − x[start]``, ``drop = x[p] − x[end]``; ``climbs_back`` says
  whether the curve later exceeds ``x[p]``.

``p`` is a bump when, with ``scale`` the range (max − min) of the curve (or of
the whole family, ``reference="family"``) and ``noise`` a robust estimate of
the curve's sample noise (1.4826·median|Δ⁴x|/√70, :func:`noise_sigma`):

    rise ≥ max(min_rise · scale, min_height, noise_factor · noise)
    drop ≥ max(min_drop · scale, min_drop_of_rise · rise, min_height, noise_factor · noise)
    step[end] − step[start] ≥ min_duration            (in steps, not samples)

Samples 0 and T−1 are never peaks, so a curve that only decays from its first
sample (the norm-decay phase) or only rises has no bump; dips (fall then rise)
and staircases have no peak with a fall. Every threshold is invariant to adding
a constant and to multiplying by a positive number.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.signal import find_peaks, peak_prominences

from bumps.errors import BumpsError


@dataclass(frozen=True)
class BumpParams:
    """Thresholds of :func:`find_bumps`.

    The exact rule is in the module docstring (:mod:`bumps.detect.bumps`). Every
    threshold is scale-free except ``min_height`` (curve units) and ``min_duration``
    (steps).

    Attributes
    ----------
    min_rise : float, default 0.1
        The rise must be at least this fraction of the reference scale (see ``reference``).
    min_drop : float, default 0.1
        The drop must be at least this fraction of the reference scale.
    min_drop_of_rise : float, default 0.1
        The drop must be at least this fraction of the bump's own rise.
    min_height : float, default 0.0
        Absolute floor for both rise and drop, in the curve's units.
    noise_factor : float, default 8.0
        Rise and drop must each be at least this many robust noise sigmas of the curve
        (:func:`noise_sigma`); white noise of 10²–10⁴ samples rarely rises and then
        falls by 8σ each.
    min_duration : float, default 0.0
        ``step[end] − step[start]`` must be at least this, in steps (not samples).
    reference : {"curve", "family"}, default "curve"
        The scale is each curve's own range (max − min) for ``"curve"``, the range
        of the whole family (all curves of the array together) for ``"family"``.
    """

    min_rise: float = 0.1
    min_drop: float = 0.1
    min_drop_of_rise: float = 0.1
    min_height: float = 0.0  # curve units
    noise_factor: float = 8.0
    min_duration: float = 0.0  # steps, not samples
    reference: str = "curve"

    def validate(self) -> BumpParams:
        """Check every threshold.

        Returns
        -------
        BumpParams
            ``self``, unchanged.

        Raises
        ------
        BumpsError
            If a numeric threshold is negative or not finite, or ``reference`` is not
            ``"curve"`` or ``"family"``.
        """
        for name in ("min_rise", "min_drop", "min_drop_of_rise", "min_height", "noise_factor", "min_duration"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise BumpsError(f"bump threshold {name} must be finite and >= 0 (got {value})")
        if self.reference not in ("curve", "family"):
            raise BumpsError(f"reference must be 'curve' or 'family' (got {self.reference!r})")
        return self


@dataclass(frozen=True)
class Bump:
    """One bump found by :func:`find_bumps`; positions are sample indices along time.

    Attributes
    ----------
    index : tuple of int
        The curve's index over the non-time axes of the input (``()`` for a single
        ``[T]`` curve): the curve is ``curves[(slice(None), *index)]``.
    start : int
        Sample of the trough before the rise (see :mod:`bumps.detect.bumps`).
    peak : int
        Sample of the peak.
    end : int
        Sample of the trough after the fall (the last sample if the curve is still
        falling when it ends).
    height : float
        ``x[peak]``, in the curve's units.
    rise : float
        ``x[peak] − x[start]``.
    drop : float
        ``x[peak] − x[end]``.
    climbs_back : bool
        Whether the curve later exceeds ``x[peak]`` (after ``end``).
    """

    index: tuple[int, ...]
    start: int
    peak: int
    end: int
    height: float  # x[peak]
    rise: float
    drop: float
    climbs_back: bool

    def as_dict(self, step: np.ndarray | None = None) -> dict:
        """The bump as a JSON-ready dict.

        Parameters
        ----------
        step : numpy.ndarray, optional
            The curve's steps, ``[T]``, one per sample. If given, ``start_step``,
            ``peak_step`` and ``end_step`` are added (``int`` for an integer ``step``
            array, else ``float``: CSV steps may be fractional epochs). None: sample
            positions only.

        Returns
        -------
        dict
            Every field, with ``index`` as a list, plus the ``*_step`` keys if
            ``step`` is given.
        """
        out = asdict(self)
        out["index"] = list(self.index)
        if step is not None:
            integral = np.issubdtype(np.asarray(step).dtype, np.integer)  # CSV steps may be fractional epochs
            for k in ("start", "peak", "end"):
                v = step[getattr(self, k)]
                out[f"{k}_step"] = int(v) if integral else float(v)
        return out


def check_curves(curves: np.ndarray, step: np.ndarray | None = None, name: str = "curves"):
    """Validate a family of curves and their steps.

    Parameters
    ----------
    curves : array_like
        Curves ``[T, ...]``: time (samples) on axis 0, any further axes index the
        curves. Real numbers, all finite, ``T ≥ 1``.
    step : array_like, optional
        The step of each sample, ``[T]``, strictly increasing. None means
        ``0, 1, ..., T − 1``.
    name : str, default "curves"
        What to call ``curves`` in error messages.

    Returns
    -------
    x : numpy.ndarray
        ``curves`` as float64, same shape.
    step : numpy.ndarray
        The steps ``[T]``: ``step`` as given (its dtype kept), or int64
        ``arange(T)`` when it was None.

    Raises
    ------
    BumpsError
        If ``curves`` is empty, not real-valued, or holds NaN/inf, or ``step`` does
        not have one strictly increasing value per sample.
    """
    x = np.asarray(curves)
    if x.ndim == 0 or x.shape[0] == 0 or x.size == 0:
        raise BumpsError(f"{name} is empty (shape {tuple(x.shape)}); need time on axis 0 and >= 1 curve")
    if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise BumpsError(f"{name} has dtype {x.dtype}; need real numbers")
    x = x.astype(np.float64, copy=False)
    bad = ~np.isfinite(x)
    if bad.any():
        where = np.argwhere(bad)[0].tolist()
        raise BumpsError(
            f"{name} has {int(bad.sum())} NaN/inf values (first at {where}); drop or fill them before detecting bumps"
        )
    if step is None:
        step = np.arange(x.shape[0], dtype=np.int64)
    step = np.asarray(step)
    if step.shape != (x.shape[0],) or (np.diff(step) <= 0).any():
        raise BumpsError(f"steps for {name} must be strictly increasing with one per sample")
    return x, step


def noise_sigma(x: np.ndarray) -> np.ndarray:
    """Robust per-curve sample-noise estimate from fourth differences.

    ``1.4826·median|Δ⁴x|/√70``: for white noise of σ per sample Δ⁴x has standard
    deviation √70·σ, so this estimates σ whatever the record spacing. Δ⁴ is exactly 0
    on any cubic, so a smooth curve contributes only through its local fourth
    derivative, h⁴·|d⁴x/dt⁴| for record spacing h (docs/detection.md: where this is
    not cadence-independent). The second difference used before (√6 instead of √70)
    measured curvature h²·|d²x/dt²|, so on smooth curves the floor grew with the
    square of the spacing.

    Parameters
    ----------
    x : numpy.ndarray
        Curves ``[T, M]``: time (samples) on axis 0, one column per curve.

    Returns
    -------
    numpy.ndarray
        ``[M]``: the noise sigma of each curve, in the curve's units; 0 for every
        curve when ``T < 5``.
    """
    if x.shape[0] < 5:
        return np.zeros(x.shape[1])
    d4 = np.abs(np.diff(x, n=4, axis=0))
    return 1.4826 * np.median(d4, axis=0) / np.sqrt(70.0)


def find_bumps(
    curves, step=None, params: BumpParams | None = None, name: str = "curves", noise: np.ndarray | None = None
) -> list[Bump]:
    """Find every bump in a family of curves.

    A bump is a peak with a real rise before it and a real fall after it; the rule
    and its thresholds are in the module docstring (:mod:`bumps.detect.bumps`).

    Parameters
    ----------
    curves : array_like
        Curves ``[T, ...]``: time (samples) on axis 0, any further axes index the
        curves (e.g. ``[T, seeds, units]``). Validated by :func:`check_curves`.
    step : array_like, optional
        The step of each sample, ``[T]``, strictly increasing; used only for
        ``params.min_duration`` (in steps). None means ``0, 1, ..., T − 1``.
    params : BumpParams, optional
        Thresholds; None means ``BumpParams()``.
    name : str, default "curves"
        What to call ``curves`` in error messages.
    noise : numpy.ndarray, optional
        The noise sigma of every sample, same shape as ``curves`` (e.g.
        :func:`bumps.detect.noise.local_sigma`): the noise floor of a peak is then
        ``params.noise_factor · noise[peak]``. None: the per-curve :func:`noise_sigma`.

    Returns
    -------
    list of Bump
        Sorted by curve (C order of the non-time index) then by peak sample.

    Raises
    ------
    BumpsError
        If ``params`` is invalid (:meth:`BumpParams.validate`) or ``curves`` / ``step``
        are (:func:`check_curves`).
    """
    p = (params or BumpParams()).validate()
    x, step = check_curves(curves, step, name)
    shape = x.shape[1:]
    flat = x.reshape(x.shape[0], -1)
    lo, hi = flat.min(0), flat.max(0)
    scale = hi - lo if p.reference == "curve" else np.full(flat.shape[1], hi.max() - lo.min())
    need_rise = np.maximum(p.min_rise * scale, p.min_height)
    need_drop = np.maximum(p.min_drop * scale, p.min_height)
    # Vectorised pre-filter: each sample's rise and drop are at most its height above the
    # minimum before / after it; curves where no interior sample passes both are skipped.
    bound = np.minimum.accumulate(flat, axis=0)
    np.subtract(flat, bound, out=bound)
    possible = bound >= need_rise
    bound = np.minimum.accumulate(flat[::-1], axis=0)[::-1]
    np.subtract(flat, bound, out=bound)
    possible &= bound >= need_drop
    del bound
    candidates = np.flatnonzero(possible[1:-1].any(0) & (scale > 0)) if flat.shape[0] > 2 else np.array([], dtype=int)
    if noise is None:  # the noise floor (a median over each curve) only for the curves that are left
        floor = p.noise_factor * noise_sigma(flat[:, candidates]) if len(candidates) else np.array([])
        need_rise[candidates] = np.maximum(need_rise[candidates], floor)
        need_drop[candidates] = np.maximum(need_drop[candidates], floor)
    else:
        if np.shape(noise) != x.shape:
            raise BumpsError(f"`noise` must have the shape of {name} {x.shape} (got {np.shape(noise)})")
        sigma = np.asarray(noise, dtype=np.float64).reshape(flat.shape)
    found: list[Bump] = []
    for j in candidates:
        xj = flat[:, j]
        peaks, _ = find_peaks(xj)
        if len(peaks) == 0:
            continue
        _, left, right = peak_prominences(xj, peaks)
        rise, drop = xj[peaks] - xj[left], xj[peaks] - xj[right]
        at_peak = 0.0 if noise is None else p.noise_factor * sigma[peaks, j]
        ok = (
            (rise >= np.maximum(need_rise[j], at_peak))
            & (drop >= np.maximum(need_drop[j], at_peak))
            & (drop >= p.min_drop_of_rise * rise)
            & (rise > 0)
            & (drop > 0)
            & (step[right] - step[left] >= p.min_duration)
        )
        index = np.unravel_index(j, shape) if shape else ()
        for k in np.flatnonzero(ok):
            pk = peaks[k]
            found.append(
                Bump(
                    index=tuple(int(i) for i in index),
                    start=int(left[k]),
                    peak=int(pk),
                    end=int(right[k]),
                    height=float(xj[pk]),
                    rise=float(rise[k]),
                    drop=float(drop[k]),
                    climbs_back=bool((xj[right[k] :] > xj[pk]).any()),
                )
            )
    return found


def orient_by_peak(curves: np.ndarray) -> np.ndarray:
    """Flip each curve so that its largest-magnitude value is positive.

    For gauge-signed curves (an inner product with truth changes sign when ã and b̃
    flip together) this makes detection independent of the gauge: a curve and its
    negative give the same oriented curve, and a rise-then-fall in alignment is a
    bump whichever sign it has. Unlike the sign of the final value, it does not
    depend on where a curve that decays back to ~0 happens to end.

    Parameters
    ----------
    curves : array_like
        Curves ``[T, ...]``, time on axis 0.

    Returns
    -------
    numpy.ndarray
        float64, same shape: each curve times the sign of its value at its largest
        ``|x|`` (first such sample); all-zero curves are left as they are.
    """
    x = np.asarray(curves, dtype=np.float64)
    at = np.abs(x).argmax(0)
    sign = np.sign(np.take_along_axis(x, at[None], 0)[0])
    return x * np.where(sign == 0, 1.0, sign)
