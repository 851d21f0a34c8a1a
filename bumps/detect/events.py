"""Events of three kinds in curves of any origin: bumps, spikes and phase changes.

Each family of curves is analysed on one scale (:mod:`bumps.detect.scale`); noisy curves are
smoothed and judged against their local noise (:mod:`bumps.detect.noise`). Positions are
samples; ``y`` below is the curve on its scale, smoothed when noisy (``raw`` unsmoothed).

* **bump**: a peak of :func:`bumps.detect.bumps.find_bumps` on ``y`` (noise floor
  ``noise_factor × local sigma`` for noisy curves) that comes back near where it started: once
  the curve is back at ``y[start]`` (sample ``r``), it is still above ``y[start] − near · rise``
  at ``r + (peak − start)`` (or at ``end``, if sooner). A rise followed by a fall far below its
  start is not a bump: its fall is a phase change, which is then marked ``bump_before``; a bump
  on a slowly decaying curve is still a bump.
* **spike**: an abrupt rise that comes back: at some sample ``i`` the curve is at least the
  bump thresholds above the minimum of the ``spike_width`` samples before it (``rise ≥
  max(min_rise · range, min_height, noise floor)``), and it goes from 25 % to 75 % of its rise
  in at most ``spike_width`` samples; the episode runs from the trough the rise starts from
  (``start``, at least ``spike_width`` samples into the curve: the first records of a run move
  fast anyway) to the first sample back within 0.1 of the rise of that level (``end``, or the
  last sample), its ``peak`` is the episode's maximum, and its drop must pass the bump's drop
  thresholds. The fall may be slow: a float32 slingshot (``bumps grok --loss-dtype float32``)
  jumps up by 3–6 decades in 1–5 records and decays back over about a thousand epochs. Peaks
  inside a spike's episode are part of it, not bumps of their own; so are phase changes that
  overlap it and are no larger than its rise (its jump, its fall back). On noisy curves the noise floor of a spike is
  ``spike_factor × local sigma`` of the unsmoothed curve, because smoothing removes spikes and
  heavy-tailed noise has single outliers of 10 sigma and more. A spike is ``float32_floor`` when
  the ``floor_records`` linear values up to its start are all positive and at most
  ``floor_factor × 2⁻²³`` (1.19e-7, the float32 resolution of a log_softmax loss).
* **phase_change**: a sustained fall (or rise) between two plateaus. Its core is a sample ``c``
  where the slope magnitude ``|dy|`` (``numpy.gradient``) is the largest within
  ``max(min_plateau, smoothing width)`` samples and falls below ``0.1 · |dy[c]|`` on both sides
  before any steeper sample (slope prominence ≥ 0.9 of its height), at samples ``a < c < b``;
  the sign of ``dy[c]`` is its direction. With ``size = y[b] − y[a]`` it is kept when
  ``|size| ≥ max(min_size · range, noise_factor · sigma)``, ``a`` and ``b`` are not the curve's
  ends, and both flanks are plateaus: over ``d = max(b − a, min_plateau)`` samples before ``a``
  and after ``b`` (fewer at the ends of the curve, and never into the neighbouring core in the
  same direction) the curve moves on in the event's direction by at most ``flat · |size|``;
  the flank after does not move back by more than ``flat · |size|``; and the end of the flank
  after is beyond the lowest (for a rise; highest for a fall) level of the flank before by at
  least ``(1 − flat) · |size|``. A candidate whose steepest sample lies inside a bump (between
  its start and end) is that bump's rise or fall, not a phase change. The plateau levels are
  the means of ``y`` over the flanks; ``onset`` and ``end`` are where ``y`` has made 10 % and
  90 % of the change between them, the reported ``size``; ``steepest`` is ``c``. A *knee*
  (``knee=True``, the default) is a phase change whose flank after is not a plateau: the curve
  moves on in the event's direction there, by at least ``1 / flat`` times as much as over the
  flank before (flat before, still falling after: a plateau's end into a slower decline); every
  other condition still holds.
  ``bump_before``: a bump candidate (kept or not) peaked between the start of the flank before
  and ``c``. Phase changes are looked for on the curve with each spike episode bridged by a
  straight line (a slingshot is not a plateau's end), and of two overlapping ones in the same
  direction the larger is kept.

Every threshold that is a fraction is a fraction of the curve's range on its scale (decades
on the log scale); ``noise_factor`` is from :class:`bumps.detect.bumps.BumpParams`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import maximum_filter1d, minimum_filter1d
from scipy.signal import peak_prominences

from bumps.detect.bumps import BumpParams, check_curves, find_bumps, noise_sigma
from bumps.detect.noise import auto_window, local_sigma, noisy_columns, smooth, smoothed_sigma, white_ratio
from bumps.detect.scale import SCALES, choose_scale, to_scale
from bumps.errors import BumpsError

KINDS = ("bump", "spike", "phase_change")
FLOAT32_EPS = 2.0**-23  # 1.19e-7: the spacing of float32 numbers just below 1


@dataclass(frozen=True)
class EventParams:
    """Settings of :func:`find_events` beyond the bump thresholds.

    Attributes
    ----------
    bump : BumpParams, default BumpParams()
        The thresholds of bumps and spikes (and ``noise_factor`` for phase changes).
    scale : {"auto", "linear", "log"}, default "auto"
        The scale (:func:`bumps.detect.scale.choose_scale`), chosen once per family.
    smooth : int or None, default None
        Smoothing width in samples for noisy curves; None: :func:`bumps.detect.noise.auto_window`
        for curves that are noisy (:func:`bumps.detect.noise.noisy_columns`) and none for the
        others; 0 or 1: never smooth; ``> 1``: smooth every curve with this width.
    near : float, default 1.0
        How far below its start a bump may fall soon after coming back (module docstring), in
        units of its rise.
    spike_width : int, default 5
        A spike rises from 25 % to 75 % of its rise in at most this many samples, and its
        jump is measured over this many samples.
    spike_factor : float, default 30.0
        On noisy curves, a spike's rise and drop are at least this many local sigmas of the
        unsmoothed curve (heavy-tailed noise has single outliers of 10 sigma and more).
    floor_factor : float, default 10.0
        ``float32_floor`` needs the values before the spike ``≤ floor_factor × 2⁻²³``.
    floor_records : int, default 3
        How many records before the spike's rise are checked for ``float32_floor``.
    min_size : float, default 0.05
        A phase change moves at least this fraction of the curve's range.
    flat : float, default 0.25
        A plateau flank moves in the event's direction by at most this fraction of its size.
    min_plateau : int, default 5
        The flanks of a phase change are at least this many samples long.
    knee : bool, default True
        True: a phase change may end in a *knee* (module docstring): the flank after may go on
        moving in the event's direction, as a fall from a plateau into a slower decline that never
        levels off does (the per-digit losses of ``bumps digits``). False: both flanks are
        plateaus (the rule before knees were added; the digits claims registered with it).
    kinds : tuple of str, default ("bump", "spike", "phase_change")
        Which kinds to report.
    """

    bump: BumpParams = field(default_factory=BumpParams)
    scale: str = "auto"
    smooth: int | None = None
    near: float = 1.0
    spike_width: int = 5
    spike_factor: float = 30.0
    floor_factor: float = 10.0
    floor_records: int = 3
    min_size: float = 0.05
    flat: float = 0.25
    min_plateau: int = 5
    knee: bool = True
    kinds: tuple[str, ...] = KINDS

    def validate(self, n_samples: int | None = None) -> EventParams:
        """Check every setting.

        Parameters
        ----------
        n_samples : int, optional
            The curve length, to refuse a smoothing window longer than the curve.

        Returns
        -------
        EventParams
            ``self``, unchanged.

        Raises
        ------
        BumpsError
            If a setting is out of range, the scale or a kind is unknown, or ``smooth`` exceeds ``n_samples``.
        """
        self.bump.validate()
        if self.scale not in SCALES:
            raise BumpsError(f"`scale` must be one of {', '.join(SCALES)} (got {self.scale!r})")
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown or not self.kinds:
            raise BumpsError(f"unknown event kind(s) {', '.join(unknown) or '(none given)'}; kinds: {', '.join(KINDS)}")
        for name in ("near", "spike_factor", "floor_factor", "min_size", "flat"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise BumpsError(f"`{name}` must be finite and >= 0 (got {value})")
        for name in ("spike_width", "floor_records", "min_plateau"):
            if getattr(self, name) < 1:
                raise BumpsError(f"`{name}` must be >= 1 (got {getattr(self, name)})")
        if self.smooth is not None and self.smooth < 0:
            raise BumpsError(f"`smooth` must be >= 0 samples (got {self.smooth})")
        if self.smooth is not None and n_samples is not None and self.smooth > n_samples:
            raise BumpsError(f"`smooth` is {self.smooth} samples but the curve has {n_samples}; use a smaller window")
        return self


@dataclass(frozen=True)
class Event:
    """One event of :func:`find_events`; positions are sample indices along time.

    Attributes
    ----------
    kind : {"bump", "spike", "phase_change"}
        See :mod:`bumps.detect.events`.
    index : tuple of int
        The curve's index over the non-time axes (``()`` for one ``[T]`` curve).
    start, peak, end : int
        Bump and spike: the troughs and the peak (:class:`bumps.detect.bumps.Bump`).
        Phase change: onset, steepest sample and end.
    size : float
        Bump and spike: the rise; phase change: the signed change ``y[b] − y[a]`` (negative
        for a fall). On the family's scale (decades for ``"log"``).
    drop : float
        Bump and spike: ``y[peak] − y[end]``; phase change: ``|size|``.
    height : float
        ``y`` at ``peak`` (the steepest sample for a phase change), on the family's scale.
    scale : {"linear", "log"}
        The family's scale.
    smooth : int
        The smoothing width used on this curve (1: none).
    float32_floor : bool or None
        Spikes only: whether the curve sat at the float32 floor just before.
    bump_before : bool or None
        Phase changes only: whether a bump candidate peaked just before.
    """

    kind: str
    index: tuple[int, ...]
    start: int
    peak: int
    end: int
    size: float
    drop: float
    height: float
    scale: str
    smooth: int
    float32_floor: bool | None = None
    bump_before: bool | None = None

    def as_dict(self, step: np.ndarray | None = None) -> dict:
        """The event as a JSON-ready dict.

        Parameters
        ----------
        step : numpy.ndarray, optional
            The curve's steps ``[T]``. If given, ``start_step``, ``peak_step`` and ``end_step``
            are added (``int`` for integer steps, else ``float``), and for a phase change also
            ``onset_step`` (= ``start_step``) and ``steepest_step`` (= ``peak_step``).

        Returns
        -------
        dict
            Every field except the None ones, ``index`` as a list, plus ``direction``
            (``"down"`` / ``"up"``) for a phase change.
        """
        out = {k: _plain(v) for k, v in self.__dict__.items() if v is not None}
        out["index"] = list(self.index)
        if self.kind == "phase_change":
            out["direction"] = "down" if self.size < 0 else "up"
        if step is not None:
            integral = np.issubdtype(np.asarray(step).dtype, np.integer)
            for k in ("start", "peak", "end"):
                v = step[getattr(self, k)]
                out[f"{k}_step"] = int(v) if integral else float(v)
            if self.kind == "phase_change":
                out["onset_step"], out["steepest_step"] = out["start_step"], out["peak_step"]
        return out


def _plain(v):
    """A numpy scalar as the Python number JSON writes."""
    if isinstance(v, np.bool_ | bool):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


@dataclass
class _Prepared:
    """One family on its scale: raw ``[T, M]``, analysed ``y``, per-curve smoothing, and the noise.

    Clean curves have one noise sigma each (``sigma_curve``); the noisy ones (``cols``) also a local
    sigma per sample of the smoothed curve (``sigma_local``) and of the raw curve (``raw_local``).
    """

    raw: np.ndarray
    y: np.ndarray  # raw itself when no curve is smoothed
    sigma_curve: np.ndarray  # [M]
    width: np.ndarray  # [M] smoothing width per curve (1: none)
    noisy: np.ndarray  # [M] bool
    scale: str
    cols: np.ndarray  # [n] the noisy curves
    sigma_local: np.ndarray | None  # [T, n] noise of the smoothed noisy curves
    raw_local: np.ndarray | None  # [T, n] noise of the raw noisy curves
    slot: np.ndarray  # [M] position of each curve in cols (-1: clean)

    def sigma_full(self) -> np.ndarray | None:
        """The noise of ``y`` per sample ``[T, M]``, or None when every curve is clean (then per curve)."""
        if not len(self.cols):
            return None
        out = np.broadcast_to(self.sigma_curve, self.raw.shape).copy()
        out[:, self.cols] = self.sigma_local
        return out

    def sigma_row(self, j: int) -> np.ndarray:
        """The noise of ``y[:, j]`` per sample ``[T]``."""
        k = self.slot[j]
        return self.sigma_local[:, k] if k >= 0 else np.broadcast_to(self.sigma_curve[j], self.raw.shape[:1])


def smoothing(raw: np.ndarray, smooth_width: int | None, sigma: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Which curves :func:`find_events` smooths, and the width.

    Parameters
    ----------
    raw : numpy.ndarray
        Curves ``[T, M]`` on their scale.
    smooth_width : int or None
        :attr:`EventParams.smooth`.
    sigma : numpy.ndarray, optional
        ``noise_sigma(raw)`` ``[M]`` if already computed.

    Returns
    -------
    noisy : numpy.ndarray
        Bool ``[M]``: the curves that are smoothed.
    width : int
        The smoothing width (odd) for those curves.
    """
    t, m = raw.shape
    if smooth_width is None:
        return (noisy_columns(raw, sigma) if t >= 5 else np.zeros(m, bool)), auto_window(t)
    return np.full(m, smooth_width > 1), smooth_width | 1


def _prepare(raw: np.ndarray, scale: str, p: EventParams) -> _Prepared:
    global_sigma = noise_sigma(raw)
    noisy, w = smoothing(raw, p.smooth, global_sigma)
    width = np.where(noisy, w, 1)
    cols = np.flatnonzero(noisy)
    slot = np.full(raw.shape[1], -1)
    slot[cols] = np.arange(len(cols))
    if not len(cols):
        return _Prepared(raw, raw, global_sigma, width, noisy, scale, cols, None, None, slot)
    y = raw.copy()
    y[:, cols] = smooth(raw[:, cols], w)
    raw_local = local_sigma(raw[:, cols])
    ratio = smoothed_sigma(y[:, cols], w) / np.maximum(global_sigma[cols], np.finfo(float).tiny)
    ratio = np.clip(ratio, white_ratio(w), 1.0)  # smoothing never adds noise
    return _Prepared(raw, y, global_sigma, width, noisy, scale, cols, raw_local * ratio, raw_local, slot)


def _at_float32_floor(lin: np.ndarray, onset: int, records: int, factor: float) -> bool:
    before = lin[max(onset - records, 0) : onset]
    return bool(len(before) and (before > 0).all() and (before <= factor * FLOAT32_EPS).all())


def _jumps(x_t: np.ndarray, need_t: np.ndarray, width: int) -> np.ndarray:
    """Where curves ``x_t [M, T]`` (one row per curve) jump: ``x[i] − min(x[i − width : i]) ≥ need[i]``.

    ``need_t`` is ``[M, T]`` or ``[M, 1]`` (one threshold per curve).
    """
    lo = minimum_filter1d(x_t, width, axis=1, origin=(width - 1) // 2, mode="nearest")  # min of x[i-width+1 .. i]
    jump = np.zeros(x_t.shape, bool)
    need = need_t[:, 1:] if need_t.shape[1] > 1 else need_t  # per sample, or one value per curve
    jump[:, 1:] = x_t[:, 1:] - lo[:, :-1] >= need  # min of x[i-width .. i-1]
    return jump


def _spike_episodes(x: np.ndarray, jumps: np.ndarray, width: int) -> list[tuple[int, int, int, int]]:
    """The episode each abrupt rise of one curve starts: ``(start, onset, peak, end)``.

    The episode runs from the jump ``onset`` to the first later sample back within 0.1 of the
    rise of the level before it (``base = x[start]``: from the minimum of the ``width`` samples
    before the jump, down to the trough the rise starts from), or to the curve's last sample;
    ``peak`` is its maximum. A rise that starts within the first ``width`` samples is not a
    spike. Jumps inside an episode belong to it.
    """
    out, until = [], -1
    for i in jumps:
        if i <= until:
            continue
        start = max(i - width, 0) + int(np.argmin(x[max(i - width, 0) : i]))
        while start > 0 and x[start - 1] < x[start]:
            start -= 1  # down to the trough the rise starts from
        if start < width:
            continue  # no level to jump from: the first records of a run move fast anyway
        base = x[start]
        back = np.flatnonzero(x[i:] <= base + 0.1 * (x[i] - base))
        end = i + int(back[0]) if len(back) else len(x) - 1
        peak = i + int(np.argmax(x[i : end + 1]))
        out.append((start, int(i), peak, end))
        until = end
    return out


def _falls_through(x: np.ndarray, b, near: float) -> bool:
    """Whether a rise-and-fall falls far below its start soon after coming back (module docstring)."""
    back = np.flatnonzero(x[b.peak : b.end + 1] <= x[b.start])
    if not len(back):
        return False
    r = b.peak + int(back[0])
    return bool(x[min(r + (b.peak - b.start), b.end)] < x[b.start] - near * b.rise)


def _spikes_and_bumps(prep: _Prepared, flat_lin: np.ndarray, step, p: EventParams, shape):
    """Bump and spike events, and every bump candidate's (curve, peak) for ``bump_before``."""
    candidates: dict[int, list[int]] = {}
    events: list[Event] = []
    span = prep.raw.max(0) - prep.raw.min(0)
    relative = np.maximum(p.bump.min_rise * span, p.bump.min_height)  # [M]
    floor_curve = p.bump.noise_factor * prep.sigma_curve  # [M]
    raw_t = np.ascontiguousarray(prep.raw.T)
    need_t = np.maximum(floor_curve, relative)[:, None]  # [M, 1]
    if len(prep.cols):  # spikes are smoothed away: judge them on the raw curve against its own noise
        need_t = np.broadcast_to(need_t, raw_t.shape).copy()
        need_t[prep.cols] = np.maximum(p.spike_factor * prep.raw_local.T, relative[prep.cols, None])
    jump = _jumps(raw_t, need_t, p.spike_width)
    del need_t

    def floor_at(j: int, i: int) -> float:
        k = prep.slot[j]
        return p.spike_factor * prep.raw_local[i, k] if k >= 0 else floor_curve[j]

    spans: dict[int, list[tuple[int, int]]] = {}
    for j in np.flatnonzero(jump.any(1) & (span > 0)):
        x = raw_t[j]
        index = tuple(int(i) for i in np.unravel_index(j, shape)) if shape else ()
        for start, _, peak, end in _spike_episodes(x, np.flatnonzero(jump[j]), p.spike_width):
            rise, drop = x[peak] - x[start], x[peak] - x[end]
            if drop < max(p.bump.min_drop * span[j], p.bump.min_drop_of_rise * rise, floor_at(j, peak)):
                continue  # not (yet) back down: a jump, not a transient
            seg = x[start : peak + 1] - x[start]
            if np.argmax(seg >= 0.75 * rise) - np.argmax(seg >= 0.25 * rise) > p.spike_width:
                continue  # rises too slowly for a spike: the bump search judges it
            f32 = _at_float32_floor(flat_lin[:, j], start + 1, p.floor_records, p.floor_factor)
            events.append(
                Event("spike", index, start, peak, end, rise, drop, x[peak], prep.scale, int(prep.width[j]), f32)
            )
            spans.setdefault(j, []).append((start, end))
    for b in find_bumps(prep.y, step, p.bump, noise=prep.sigma_full()):
        j = b.index[0]
        x = prep.y[:, j]
        candidates.setdefault(j, []).append(b.peak)
        if _falls_through(x, b, p.near):  # falls far below its start: a phase change's fall
            continue
        if any(lo <= b.peak <= hi for lo, hi in spans.get(j, [])):
            continue  # inside a spike's episode: part of that spike
        index = tuple(int(i) for i in np.unravel_index(j, shape)) if shape else ()
        events.append(
            Event("bump", index, b.start, b.peak, b.end, b.rise, b.drop, b.height, prep.scale, int(prep.width[j]))
        )
    return events, candidates


def _cores(g: np.ndarray, reach: int) -> tuple[np.ndarray, np.ndarray]:
    """Slope magnitudes and candidate cores of every curve, vectorised over curves (``g [M, T]``, the slopes).

    A candidate core is a sample with ``|g| > 0`` that is the steepest within ``± reach`` samples.
    """
    steep = np.abs(g)
    peak = (steep > 0) & (steep == maximum_filter1d(steep, 2 * reach + 1, axis=1, mode="constant"))
    peak[:, [0, -1]] = False
    return steep, peak


def _phase_changes_1d(y, g, steep, peak, sigma, need, p: EventParams):
    """(onset, steepest, end, size, flank start) of the phase changes of one curve, both directions."""
    t = len(y)
    cores = np.flatnonzero(peak)
    if len(cores) == 0:
        return []
    with warnings.catch_warnings():  # flat-topped slopes have zero prominence: dropped below anyway
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy's PeakPropertyWarning
        prom, left, right = peak_prominences(steep, cores)
    sign = np.sign(g[cores])
    rough = sign * (y[right] - y[left])  # an upper bound of the move across each core
    keep = (prom >= 0.9 * steep[cores]) & (rough >= np.maximum(need, p.bump.noise_factor * sigma[cores]))
    spans = {-1.0: [], 1.0: []}
    for c, lo, hi, sg in zip(cores[keep], left[keep], right[keep], sign[keep], strict=True):
        low = 0.1 * steep[c]
        below = np.flatnonzero(steep[lo:c] < low)
        a = lo + below[-1] if len(below) else lo
        above = np.flatnonzero(steep[c + 1 : hi + 1] < low)
        spans[float(sg)].append((int(c), int(a), int(c + 1 + above[0] if len(above) else hi)))
    out = []
    for sign, found in spans.items():
        for n, (c, a, b) in enumerate(found):
            step = _one_phase_change(
                y,
                c,
                a,
                b,
                sign,
                found[n - 1][2] if n else 0,
                found[n + 1][1] if n + 1 < len(found) else t - 1,
                sigma[c],
                need,
                p,
            )
            if step is not None:
                out.append(step)
    kept: list[tuple] = []  # two cores of one transition: keep the larger move
    for step in sorted(out, key=lambda e: -abs(e[3])):
        if not any(k[0] <= step[2] and step[0] <= k[2] and (k[3] > 0) == (step[3] > 0) for k in kept):
            kept.append(step)
    return sorted(kept)


def _one_phase_change(y, c, a, b, sign, prev_end, next_start, sigma, need, p: EventParams):
    """The phase change of one core (module docstring), or None; flanks stop at the neighbouring steps."""
    t = len(y)
    size = y[b] - y[a]
    if sign * size < max(need, p.bump.noise_factor * sigma) or a == 0 or b == t - 1:
        return None
    d = max(b - a, p.min_plateau)
    lo = min(max(a - d, prev_end, 0), a)
    hi = max(min(b + d, next_start, t - 1), b)
    first, last = y[lo], y[hi]
    pre, post = sign * (y[a] - first), sign * (y[b] - last)
    back = sign * y[b] - (sign * y[b : hi + 1]).min()  # how far the flank after returns towards the old level
    lowest = (sign * y[lo : a + 1]).min()  # the old level, below any bump before
    moves_on = -post
    if p.knee and pre <= p.flat * moves_on:
        moves_on = 0.0  # a knee: flat before, still moving on after, by at least 1 / flat times as much
    if max(pre, moves_on, back) > p.flat * abs(size) or sign * last - lowest < (1 - p.flat) * abs(size):
        return None  # a flank that keeps moving (no plateau), or a move undone nearby
    before, after = y[lo : a + 1].mean(), y[b : hi + 1].mean()
    if sign * (after - before) <= 0:
        return None
    frac = (y[a : b + 1] - before) / (after - before)
    onset = min(a + int(np.argmax(frac >= 0.1)), c)
    end = max(a + int(np.argmax(frac >= 0.9)), c)
    return int(onset), int(c), int(end), float(after - before), int(lo)


def find_events(curves, step=None, params: EventParams | None = None, name: str = "curves") -> list[Event]:
    """Find every bump, spike and phase change in a family of curves.

    The rules are in the module docstring (:mod:`bumps.detect.events`).

    Parameters
    ----------
    curves : array_like
        Curves ``[T, ...]``: time on axis 0 (validated by :func:`bumps.detect.bumps.check_curves`).
    step : array_like, optional
        The step of each sample, ``[T]``, strictly increasing; None: ``0 .. T − 1``.
    params : EventParams, optional
        None: ``EventParams()``.
    name : str, default "curves"
        What to call the curves in error messages.

    Returns
    -------
    list of Event
        Of the kinds in ``params.kinds``, sorted by curve (C order), then by ``peak``.

    Raises
    ------
    BumpsError
        If ``params`` is invalid, the curves are, or the log scale is asked for (or chosen) on
        values ``<= 0`` (:func:`bumps.detect.scale.to_scale`).
    """
    x, step = check_curves(curves, step, name)
    p = (params or EventParams()).validate(x.shape[0])
    shape = x.shape[1:]
    flat = x.reshape(x.shape[0], -1)
    scale = choose_scale(flat, p.scale)
    prep = _prepare(to_scale(flat, scale, step, name), scale, p)
    events, candidates = _spikes_and_bumps(prep, flat, step, p, shape)
    if "phase_change" in p.kinds and flat.shape[0] >= 5:
        span = prep.y.max(0) - prep.y.min(0)
        y_t = np.array(prep.y.T, order="C")  # [M, T]: one contiguous row per curve
        for e in events:  # phase changes are judged on the curve without its spikes: each episode bridged
            if e.kind == "spike":
                j = int(np.ravel_multi_index(e.index, shape)) if shape else 0
                y_t[j, e.start : e.end + 1] = np.linspace(y_t[j, e.start], y_t[j, e.end], e.end - e.start + 1)
        g = np.gradient(y_t, axis=1)
        spike_spans: dict[tuple, list[tuple[int, int, float]]] = {}
        bump_spans: dict[tuple, list[tuple[int, int]]] = {}
        for e in events:
            if e.kind == "spike":
                spike_spans.setdefault(e.index, []).append((e.start, e.end, e.size))
            else:
                bump_spans.setdefault(e.index, []).append((e.start, e.end))
        # a core is the steepest within its plateau length and the smoothing width
        steep, peak = _cores(g, max(p.min_plateau, int(prep.width.max())))
        for j in np.flatnonzero((span > 0) & peak.any(1)):
            index = tuple(int(i) for i in np.unravel_index(j, shape)) if shape else ()
            peaks = np.asarray(candidates.get(j, []), dtype=int)
            found = _phase_changes_1d(y_t[j], g[j], steep[j], peak[j], prep.sigma_row(j), p.min_size * span[j], p)
            spans = spike_spans.get(index, [])
            for onset, c, end, size, before in found:
                if any(lo <= end and onset <= hi and abs(size) <= rise for lo, hi, rise in spans):
                    continue  # overlaps a spike and is no larger: its jump or its fall back
                if any(lo <= c <= hi for lo, hi in bump_spans.get(index, [])):
                    continue  # the rise or the fall of a bump
                bump_before = bool(((peaks >= before) & (peaks <= c)).any())
                events.append(
                    Event(
                        "phase_change",
                        index,
                        onset,
                        c,
                        end,
                        size,
                        abs(size),
                        float(prep.y[c, j]),
                        scale,
                        int(prep.width[j]),
                        bump_before=bump_before,
                    )
                )
    kept = [e for e in events if e.kind in p.kinds]
    order = {idx: i for i, idx in enumerate(np.ndindex(shape))} if shape else {(): 0}
    return sorted(kept, key=lambda e: (order[e.index], e.peak, KINDS.index(e.kind)))
