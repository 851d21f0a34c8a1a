"""From a run file or a plain array to bumps, competition events and a summary.

Each run kind names its curve families ("series"); each series says which of
its axes index units and targets (for competition) and whether its sign is a
gauge (flipping ã and b̃ together flips every inner product with truth). Gauge-
signed series are detected after :func:`bumps.detect.orient_by_peak` by default.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from bumps.detect.bumps import Bump, BumpParams, check_curves, find_bumps, orient_by_peak
from bumps.detect.competition import find_competition, norm_decay_end
from bumps.detect.events import EventParams, find_events, smoothing
from bumps.detect.scale import choose_scale, to_scale
from bumps.errors import did_you_mean
from bumps.io.runfile import KIND_WORDS, BumpsError, file_kind, is_run, safe_load
from bumps.io.schema import (
    EXTRA_SERIES,
    NORM_DECAY_SERIES,
    RECORDED_KIND,
    SERIES,
    SeriesSpec,
    own_steps,
    recorded_specs,
)
from bumps.stats import null_summary

SIGN_MODES = ("peak", "abs", "raw")


@dataclass
class Source:
    """What ``bumps detect`` reads: curve families, their steps, and the run they came from.

    Made by :func:`load_source`; read by :func:`analyze` and
    :func:`bumps.detect.plots.plot_detection`.

    Attributes
    ----------
    series : list of tuple of (SeriesSpec, numpy.ndarray)
        Each curve family: its :class:`bumps.io.schema.SeriesSpec` and its values
        ``[T, *spec.axes]`` (time on axis 0), as recorded (not yet oriented by sign).
    step : numpy.ndarray
        The steps ``[T]`` shared by every series without its own.
    run : dict or None
        The loaded run file; None for plain arrays and CSV files.
    own_steps : dict of str to numpy.ndarray, default {}
        Steps ``[T_key]`` for series that have their own (CSV curves with empty
        cells), by series key; every other series uses ``step``.
    """

    series: list[tuple[SeriesSpec, np.ndarray]]
    step: np.ndarray
    run: dict | None
    own_steps: dict[str, np.ndarray] = field(default_factory=dict)

    def step_for(self, key: str) -> np.ndarray:
        """The steps of one series.

        Parameters
        ----------
        key : str
            The series key (``SeriesSpec.key``).

        Returns
        -------
        numpy.ndarray
            ``own_steps[key]`` if present, else ``step``.
        """
        return self.own_steps.get(key, self.step)


def _as_array(obj, path) -> np.ndarray:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return obj
    raise BumpsError(f"{path} holds a {type(obj).__name__}, not a bumps run or a single array")


def load_source(
    path: str | Path,
    competition_axes: bool = False,
    step_column: str | None = None,
    series: list[str] | None = None,
) -> Source:
    """Load the curves of a run file, a plain array file or a CSV file.

    A run file (``.pt``, any kind in :data:`bumps.io.schema.SERIES`) gives every
    series of its kind that it records (:data:`bumps.io.schema.SERIES`, then the
    recorded :data:`bumps.io.schema.EXTRA_SERIES` such as the losses, each on its
    own steps). A plain array (``.npy``,
    ``.npz`` with exactly one array, or a ``.pt`` holding one tensor) is one series
    ``"array"`` with axes ``axis1, axis2, ...`` on steps ``0..T − 1``. A CSV gives one
    one-curve series per column, each on its own steps (:func:`bumps.io.curves_csv.read_curves_csv`).

    Parameters
    ----------
    path : str or pathlib.Path
        The file; ``.csv``, ``.npy`` and ``.npz`` are told by their suffix (any
        case), anything else is loaded as a torch file (:func:`bumps.io.runfile.safe_load`).
    competition_axes : bool, default False
        For a plain array: read it as ``[T, units, targets]`` (axes ``unit`` and
        ``target``) so that :func:`analyze` looks for competition events. Refused
        for CSV files; ignored for run files, whose kind says which series have
        unit and target axes.
    step_column : str, optional
        For a CSV: the column that holds the step. None: the first of ``step``,
        ``Step``, ``epoch``, ``_step`` present, else the first column.
    series : list of str, optional
        Keep only these series (run-file keys or CSV columns), in this order. None:
        every series.

    Returns
    -------
    Source
        The series, their steps and the run (None unless ``path`` is a run file).

    Raises
    ------
    BumpsError
        If ``path`` is missing or a directory, cannot be read, holds neither a bumps
        run of a known kind nor a single array, an ``.npz`` does not hold exactly one
        array, ``step_column`` is given for a non-CSV file, ``competition_axes`` is
        set for a CSV or a non-3-D array, a name in ``series`` is not a series of
        the file (the message lists them), or the curves are invalid
        (:func:`bumps.detect.bumps.check_curves`, :func:`bumps.io.curves_csv.read_curves_csv`).
    """
    source = _load(Path(path), competition_axes, step_column)
    return source if series is None else select_series(source, series, Path(path))


DETECT_SUFFIXES = (".pt", ".csv", ".npy", ".npz")


def detect_paths(path: str | Path) -> list[Path]:
    """The files ``bumps detect`` reads for a path: the file itself, or the runs in a folder.

    Parameters
    ----------
    path : str or pathlib.Path
        A file, or a folder: then every ``.pt``, ``.csv``, ``.npy`` and ``.npz`` file under it
        (recursively, sorted), except inside checkpoint folders (names ending in ``_ckpt``).

    Returns
    -------
    list of pathlib.Path
        At least one.

    Raises
    ------
    BumpsError
        If ``path`` does not exist, or is a folder with no such file.
    """
    path = Path(path)
    if not path.exists():
        raise BumpsError(f"no such file or folder: {path}")
    if not path.is_dir():
        return [path]
    found = sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and p.suffix.lower() in DETECT_SUFFIXES and not any(q.name.endswith("_ckpt") for q in p.parents)
    )
    if not found:
        raise BumpsError(f"{path} holds no run, array or CSV files (.pt, .csv, .npy, .npz)")
    return found


def select_series(source: Source, names: list[str], path: Path | str = "the input") -> Source:
    """The source with only the named series, in the order given.

    Parameters
    ----------
    source : Source
        What :func:`load_source` read.
    names : list of str
        Series keys (:attr:`bumps.io.schema.SeriesSpec.key`); at least one.

    Returns
    -------
    Source
        The same run and steps, with the chosen series.

    Raises
    ------
    BumpsError
        If ``names`` is empty or names a series the source does not hold (with a
        "did you mean" and the list of series).
    """
    have = {spec.key: (spec, v) for spec, v in source.series}
    if not names:
        raise BumpsError("`series` is empty; name at least one series")
    for n in names:
        if n not in have:
            raise BumpsError(
                f"{path} has no series {n!r}{did_you_mean(n, list(have))}; it has {', '.join(list(have)[:12])}"
            )
    return Source([have[n] for n in names], source.step, source.run, source.own_steps)


def _load(path: Path, competition_axes: bool, step_column: str | None) -> Source:
    if not path.exists():
        raise BumpsError(f"no such file: {path}")
    if path.is_dir():
        raise BumpsError(f"{path} is a directory; give a run file or an array file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_source(path, step_column, competition_axes)
    if step_column is not None:
        raise BumpsError(f"`step_column` applies to CSV input only; {path} is not a .csv file")
    if suffix in (".npy", ".npz"):
        if path.stat().st_size == 0:
            raise BumpsError(f"{path} is empty; give a saved numpy array (np.save) or a run file")
        try:
            obj = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise BumpsError(f"{path} is not a readable numpy file ({str(exc)[:80]})") from None
        if suffix == ".npz":
            names = list(obj.keys())
            if len(names) != 1:
                raise BumpsError(f"{path} holds {len(names)} arrays ({', '.join(names[:5])}); save exactly one")
            obj = obj[names[0]]
    else:
        kind = file_kind(path)
        if kind not in ("torch", "pickle"):
            raise BumpsError(
                f"{path} is {KIND_WORDS[kind]}; bumps detect reads run files and tensors (.pt), numpy arrays "
                "(.npy, .npz) and CSV curves (.csv)"
            )
        obj = safe_load(path)
    if is_run(obj) and obj.get("kind") == RECORDED_KIND:  # self-describing: bumps.recorder runs
        return Source(
            [(spec, _as_array(obj[spec.key], path)) for spec in recorded_specs(obj)], np.asarray(obj["step"]), obj
        )
    if is_run(obj):
        kind = obj.get("kind")
        if kind not in SERIES:
            raise BumpsError(f"{path} is a '{kind}' run; bumps detect knows {', '.join(SERIES)}")
        step = np.asarray(obj["step"])
        series = [(spec, _as_array(obj[spec.key], path)) for spec in SERIES[kind] if spec.key in obj]
        own = own_steps(obj, [spec for spec in SERIES[kind] if spec.key in obj])
        for key, (axes, step_key) in EXTRA_SERIES.get(kind, {}).items():
            if key not in obj or not len(obj[key]):
                continue
            # "epoch" steps are implicit: value i is the one after i updates
            steps = np.asarray(obj[step_key]) if step_key in obj else None
            if steps is None and step_key == "epoch":
                steps = np.arange(len(obj[key]))
            if steps is not None and len(steps) == len(obj[key]):
                series.append((SeriesSpec(key, axes), _as_array(obj[key], path)))
                if step_key != "step":
                    own[key] = steps
        return Source(series, step, obj, own)
    x = _as_array(obj, path)
    x, step = check_curves(x, None, path.name)
    axes = tuple(f"axis{i}" for i in range(1, x.ndim))
    spec = SeriesSpec("array", axes)
    if competition_axes:
        if x.ndim != 3:
            raise BumpsError(f"`competition` needs a [T, units, targets] array; {path} has shape {tuple(x.shape)}")
        spec = SeriesSpec("array", ("unit", "target"), unit_axis=0, target_axis=1)
    return Source([(spec, x)], step, None)


def _csv_source(path: Path, step_column: str | None, competition_axes: bool) -> Source:
    """Each CSV column is its own one-curve series, detected on the steps where it has values."""
    from bumps.io.curves_csv import read_curves_csv

    if competition_axes:
        raise BumpsError("`competition` needs a [T, units, targets] array; a CSV holds separate curves")
    table = read_curves_csv(path, step_column)
    series, own = [], {}
    for name, (steps, values) in table.curves.items():
        series.append((SeriesSpec(name, ()), values))
        own[name] = steps
    return Source(series, table.step, None, own)


def prepare(spec: SeriesSpec, values: np.ndarray, sign: str) -> np.ndarray:
    """Apply the sign convention to a gauge-signed series (others are left as they are).

    Parameters
    ----------
    spec : SeriesSpec
        The series' spec; only ``spec.signed`` is read.
    values : array_like
        The series ``[T, ...]``.
    sign : {"peak", "abs", "raw"}
        For a signed series: ``"peak"`` flips each curve so its largest-magnitude value
        is positive (:func:`bumps.detect.bumps.orient_by_peak`), ``"abs"`` takes
        ``|x|``, ``"raw"`` keeps the recorded sign.

    Returns
    -------
    numpy.ndarray
        float64, same shape as ``values``.

    Raises
    ------
    BumpsError
        If ``sign`` is not one of :data:`SIGN_MODES` (checked for every series).
    """
    if sign not in SIGN_MODES:
        raise BumpsError(f"`sign` must be one of {', '.join(SIGN_MODES)} (got {sign!r})")
    x = np.asarray(values, dtype=np.float64)
    if not spec.signed or sign == "raw":
        return x
    return np.abs(x) if sign == "abs" else orient_by_peak(x)


def _competition(
    spec: SeriesSpec,
    x: np.ndarray,
    step,
    bumps: list[Bump],
    params,
    min_gain,
    null_draws: int | None = None,
    shifts: int = 16,
):
    """Competition events for every leading index, and the null distribution of the count.

    Returns (events, null) where null is None for series without a seed axis, else a dict
    from :func:`null_summary` over two null families: winners read from every other seed
    (seed offsets 1..N−1, at most ``null_draws`` of them, evenly spaced) and from the
    run's own curves circularly shifted in time by ``shifts`` amounts evenly spaced in [T/4, 3T/4].
    """
    u, t = spec.unit_axis, spec.target_axis
    lead = spec.lead_axes
    moved = np.moveaxis(x, [1 + u, 1 + t], [-2, -1])  # [T, *lead, units, targets]
    lead_shape = moved.shape[1:-2]
    by_lead: dict[tuple, list[Bump]] = {}
    for b in bumps:
        key = tuple(b.index[i] for i in lead)
        by_lead.setdefault(key, []).append(
            Bump((b.index[u], b.index[t]), b.start, b.peak, b.end, b.height, b.rise, b.drop, b.climbs_back)
        )
    events = []
    for key, own_bumps in by_lead.items():
        own = moved[(slice(None), *key)]
        for ev in find_competition(own, step, params, min_gain, bumps=own_bumps):
            events.append((tuple(int(k) for k in key), ev))
    if not ("seed" in spec.axes and lead_shape and lead_shape[0] > 1):
        return events, None
    explained = len({(k, ev.loser, ev.target, ev.peak) for k, ev in events})
    n, n_t = lead_shape[0], moved.shape[0]
    offsets = np.arange(1, n)
    if null_draws is not None and len(offsets) > null_draws:
        offsets = offsets[np.linspace(0, len(offsets) - 1, null_draws).round().astype(int)]
    # shifts spread over [T/4, 3T/4]: a shift of a few samples keeps a smooth curve's timing
    shift_by = np.unique(np.linspace(n_t / 4, 3 * n_t / 4, shifts).round().astype(int))
    shift_by = shift_by[(shift_by > 0) & (shift_by < n_t)]

    def count(partner_of) -> int:
        total = 0
        for key, own_bumps in by_lead.items():
            own = moved[(slice(None), *key)]
            found = find_competition(own, step, params, min_gain, bumps=own_bumps, partners=partner_of(key))
            total += len({(ev.loser, ev.target, ev.peak) for ev in found})
        return total

    seed_null = [count(lambda k, o=o: moved[(slice(None), (k[0] + o) % n, *k[1:])]) for o in offsets]
    shift_null = [count(lambda k, s=s: np.roll(moved[(slice(None), *k)], s, axis=0)) for s in shift_by]
    return events, {
        "observed": explained,
        "other_seeds": null_summary(explained, seed_null),
        "time_shifts": null_summary(explained, shift_null),
    }


def analyze(
    source: Source,
    params: BumpParams | None = None,
    sign: str = "peak",
    min_gain: float = 0.05,
    null_draws: int | None = 63,
    events: EventParams | None = None,
) -> dict:
    """Find bumps and competition events in every series of a source, and summarise them.

    Each series is oriented with :func:`prepare`, then searched with
    :func:`bumps.detect.bumps.find_bumps`. Series with unit and target axes are also
    searched for competition (:func:`bumps.detect.competition.find_competition`, for
    every index of their other axes); those with a ``seed`` axis of more than one
    seed also get a null distribution of the number of explained bumps, with winners
    read from other seeds and from the loser's own run circularly shifted in time
    (16 shifts evenly spaced in ``[T/4, 3T/4]``). For run kinds in
    :data:`bumps.io.schema.NORM_DECAY_SERIES`, bumps of series with a ``seed`` axis
    are flagged relative to the end of their seed's norm-decay phase
    (:func:`bumps.detect.competition.norm_decay_end`).

    Parameters
    ----------
    source : Source
        What to analyse (:func:`load_source`).
    params : BumpParams, optional
        Bump thresholds; None means ``BumpParams()``.
    sign : {"peak", "abs", "raw"}, default "peak"
        Sign convention for gauge-signed series (:func:`prepare`).
    min_gain : float, default 0.05
        ``min_gain`` of :func:`bumps.detect.competition.find_competition`: a fraction
        of the largest ``|alignment|`` of each ``[T, units, targets]`` slice.
    null_draws : int or None, default 63
        At most this many other-seed offsets (evenly spaced among ``1..N − 1``) in the
        other-seeds null; None uses all ``N − 1``.
    events : EventParams, optional
        Also find events of every kind (:func:`bumps.detect.events.find_events`, with
        ``events.bump`` replaced by ``params``) on each oriented series. None: no events
        (the rise-and-fall ``bumps`` and competition only, as the task analyses use).

    Returns
    -------
    dict
        JSON-ready, with keys

        * ``events`` (only with ``events``): one row per event: ``series`` and the
          fields of :meth:`bumps.detect.events.Event.as_dict` with the series' steps;
        * ``bumps``: one row per rise-and-fall peak: ``series``, the fields of
          :meth:`bumps.detect.bumps.Bump.as_dict` with the series'
          steps, ``explained_by_competition`` for series with unit and target axes,
          and ``started_in_norm_decay`` / ``peaked_in_norm_decay`` where the
          norm-decay end is known;
        * ``competition``: one row per event: ``series``, ``index`` (the other axes'
          index, e.g. ``[seed]``) and the fields of
          :meth:`bumps.detect.competition.CompetitionEvent.as_dict`;
        * ``summary``: per series key, counts (curves, bumps, curves with bumps,
          climb-backs, competition events, explained bumps, per-seed counts, ...), the
          median peak height, and for series with a null ``competition_null``
          (``observed`` and :func:`bumps.stats.null_summary` of ``other_seeds`` and
          ``time_shifts``) and ``explained_by_chance_baseline`` (the other-seeds
          mean, rounded);
        * ``params``: the thresholds, ``sign`` and ``min_gain`` (and with ``events``, the
          event settings);
        * ``norm_decay_end_step``: per seed, only where the norm-decay end is known.

    Raises
    ------
    BumpsError
        If ``params`` or ``sign`` is invalid, or a series fails
        :func:`bumps.detect.bumps.check_curves`.
    """
    params = (params or BumpParams()).validate()
    if events is not None:
        events = replace(events, bump=params).validate()
    step = source.step
    decay_end = None
    decay_keys = NORM_DECAY_SERIES.get(source.run.get("kind")) if source.run is not None else None
    if decay_keys:
        norms = np.concatenate([np.asarray(source.run[k]) for k in decay_keys], -1)
        decay_end = norm_decay_end(norms, step)  # [N]
    out_bumps, out_events, out_kinds, per_series = [], [], [], {}
    for spec, values in source.series:
        step = source.step_for(spec.key)
        x = prepare(spec, values, sign)
        found = []
        if events is not None:
            found = [{"series": spec.key, **e.as_dict(step)} for e in find_events(x, step, events, name=spec.key)]
            out_kinds.extend(found)
        bumps = find_bumps(x, step, params, name=spec.key)
        contests, chance = [], None
        if spec.unit_axis is not None and spec.target_axis is not None:
            contests, chance = _competition(spec, x, step, bumps, params, min_gain, null_draws)
        lead = spec.lead_axes
        explained = {(k, ev.loser, ev.target, ev.peak) for k, ev in contests}
        rows = []
        for b in bumps:
            row = {"series": spec.key, **b.as_dict(step)}
            if spec.unit_axis is not None:
                key = tuple(b.index[i] for i in lead)
                row["explained_by_competition"] = (
                    key,
                    b.index[spec.unit_axis],
                    b.index[spec.target_axis],
                    b.peak,
                ) in explained
            if decay_end is not None and "seed" in spec.axes:
                end = int(decay_end[b.index[spec.axes.index("seed")]])
                row["started_in_norm_decay"] = row["start_step"] < end
                row["peaked_in_norm_decay"] = row["peak_step"] < end
            rows.append(row)
        for key, ev in contests:
            out_events.append({"series": spec.key, "index": list(key), **ev.as_dict(step)})
        out_bumps.extend(rows)
        per_series[spec.key] = _summarize(spec, x, rows, contests)
        if events is not None:
            per_series[spec.key]["scale"] = scale = choose_scale(x, events.scale)
            per_series[spec.key]["events"] = {k: sum(e["kind"] == k for e in found) for k in events.kinds}
            flat = x.reshape(x.shape[0], -1)
            per_series[spec.key]["smoothed_curves"] = int(smoothing(to_scale(flat, scale), events.smooth)[0].sum())
        if chance is not None:  # the null's mean over other seeds, and both null distributions
            mean = chance["other_seeds"]["mean"]  # None when there were no null draws
            per_series[spec.key]["explained_by_chance_baseline"] = None if mean is None else round(mean)
            per_series[spec.key]["competition_null"] = chance
    result = {
        "bumps": out_bumps,
        "competition": out_events,
        "summary": per_series,
        "params": {**params.__dict__, "sign": sign, "min_gain": min_gain},
    }
    if events is not None:
        result = {"events": out_kinds, **result}
        result["params"]["events"] = {k: v for k, v in events.__dict__.items() if k != "bump"}
        result["params"]["events"]["kinds"] = list(events.kinds)
    if decay_end is not None:
        result["norm_decay_end_step"] = [int(s) for s in decay_end]
    return result


def _summarize(spec: SeriesSpec, x: np.ndarray, rows: list[dict], events) -> dict:
    n_curves = int(np.prod(x.shape[1:])) if x.ndim > 1 else 1
    curves_with = {tuple(r["index"]) for r in rows}
    out = {
        "axes": list(spec.axes),
        "curves": n_curves,
        "bumps": len(rows),
        "curves_with_bumps": len(curves_with),
        "climb_back": sum(r["climbs_back"] for r in rows),
        "median_peak_height": float(np.median([r["height"] for r in rows])) if rows else None,
    }
    if spec.unit_axis is not None:
        out["competition_events"] = len(events)
        out["explained_by_competition"] = sum(r["explained_by_competition"] for r in rows)
    if rows and "started_in_norm_decay" in rows[0]:
        out["started_in_norm_decay"] = sum(r["started_in_norm_decay"] for r in rows)
        out["peaked_in_norm_decay"] = sum(r["peaked_in_norm_decay"] for r in rows)
    if "seed" in spec.axes:
        si = spec.axes.index("seed")
        per_seed = Counter(r["index"][si] for r in rows)
        out["seeds_with_bumps"] = len(per_seed)
        out["seeds"] = int(x.shape[1 + si])
    return out
