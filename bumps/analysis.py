"""From a run file or a plain array to bumps, competition events and a summary.

Each run kind names its curve families ("series"); each series says which of
its axes index units and targets (for competition) and whether its sign is a
gauge (flipping ã and b̃ together flips every inner product with truth). Gauge-
signed series are detected after :func:`bumps.detect.orient_by_peak` by default.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from bumps.competition import find_competition, norm_decay_end
from bumps.detect import Bump, BumpParams, check_curves, find_bumps, orient_by_peak
from bumps.runfile import BumpsError, is_run, safe_load

SIGN_MODES = ("peak", "abs", "raw")


@dataclass(frozen=True)
class SeriesSpec:
    """A curve family of a run kind: key, axis names after time, gauge sign, unit/target axes."""

    key: str
    axes: tuple[str, ...]
    signed: bool = False
    unit_axis: int | None = None  # position within ``axes``
    target_axis: int | None = None
    target_offset: int = 0  # label of target index i is i + target_offset (frequencies start at 1)

    @property
    def lead_axes(self) -> list[int]:
        """Axes (within ``axes``) that are neither the unit nor the target axis, e.g. seed."""
        return [i for i in range(len(self.axes)) if i not in (self.unit_axis, self.target_axis)]


SERIES: dict[str, list[SeriesSpec]] = {
    "lowrank": [
        SeriesSpec("inner_a", ("seed", "target", "learned"), True, unit_axis=2, target_axis=1),
        SeriesSpec("inner_b", ("seed", "target", "learned"), True, unit_axis=2, target_axis=1),
        SeriesSpec("norm_a", ("seed", "learned")),
        SeriesSpec("norm_b", ("seed", "learned")),
    ],
    "modadd": [
        SeriesSpec("freq_norm", ("frequency",)),
        SeriesSpec("freq_norm_wl", ("frequency",)),
        SeriesSpec("neuron_freq", ("neuron", "frequency"), unit_axis=0, target_axis=1, target_offset=1),
    ],
}


@dataclass
class Source:
    """What `bumps detect` reads: series arrays, the steps, and the run (None for arrays).

    ``own_steps`` gives a series its own steps (CSV curves with empty cells); others use ``step``.
    """

    series: list[tuple[SeriesSpec, np.ndarray]]
    step: np.ndarray
    run: dict | None
    own_steps: dict[str, np.ndarray] = field(default_factory=dict)

    def step_for(self, key: str) -> np.ndarray:
        return self.own_steps.get(key, self.step)


def _as_array(obj, path) -> np.ndarray:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return obj
    raise BumpsError(f"{path} holds a {type(obj).__name__}, not a bumps run or a single array")


def load_source(path: str | Path, competition_axes: bool = False, step_column: str | None = None) -> Source:
    """Load a run file (any kind), a plain array file (.npy, .npz with one array, .pt tensor) or a CSV."""
    path = Path(path)
    if not path.exists():
        raise BumpsError(f"no such file: {path}")
    if path.is_dir():
        raise BumpsError(f"{path} is a directory; give a run file or an array file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_source(path, step_column, competition_axes)
    if step_column is not None:
        raise BumpsError(f"--step-column applies to CSV input only; {path} is not a .csv file")
    if suffix in (".npy", ".npz"):
        try:
            obj = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise BumpsError(f"{path} is not a readable numpy file ({str(exc)[:80]})") from None
        if suffix == ".npz":
            names = list(obj.keys())
            if len(names) != 1:
                raise BumpsError(f"{path} holds {len(names)} arrays ({', '.join(names[:5])}); "
                                 "save exactly one")
            obj = obj[names[0]]
    else:
        obj = safe_load(path)
    if is_run(obj):
        kind = obj.get("kind")
        if kind not in SERIES:
            raise BumpsError(f"{path} is a '{kind}' run; bumps detect knows {', '.join(SERIES)}")
        step = np.asarray(obj["step"])
        series = [(spec, _as_array(obj[spec.key], path)) for spec in SERIES[kind] if spec.key in obj]
        return Source(series, step, obj)
    x = _as_array(obj, path)
    x, step = check_curves(x, None, path.name)
    axes = tuple(f"axis{i}" for i in range(1, x.ndim))
    spec = SeriesSpec("array", axes)
    if competition_axes:
        if x.ndim != 3:
            raise BumpsError(f"--competition needs a [T, units, targets] array; {path} has shape "
                             f"{tuple(x.shape)}")
        spec = SeriesSpec("array", ("unit", "target"), unit_axis=0, target_axis=1)
    return Source([(spec, x)], step, None)


def _csv_source(path: Path, step_column: str | None, competition_axes: bool) -> Source:
    """Each CSV column is its own one-curve series, detected on the steps where it has values."""
    from bumps.curves_csv import read_curves_csv

    if competition_axes:
        raise BumpsError("--competition needs a [T, units, targets] array; a CSV holds separate curves")
    table = read_curves_csv(path, step_column)
    series, own = [], {}
    for name, (steps, values) in table.curves.items():
        series.append((SeriesSpec(name, ()), values))
        own[name] = steps
    return Source(series, table.step, None, own)


def prepare(spec: SeriesSpec, values: np.ndarray, sign: str) -> np.ndarray:
    """Apply the sign convention to a gauge-signed series (others are left as they are)."""
    if sign not in SIGN_MODES:
        raise BumpsError(f"--sign must be one of {', '.join(SIGN_MODES)} (got {sign!r})")
    x = np.asarray(values, dtype=np.float64)
    if not spec.signed or sign == "raw":
        return x
    return np.abs(x) if sign == "abs" else orient_by_peak(x)


def _competition(spec: SeriesSpec, x: np.ndarray, step, bumps: list[Bump], params, min_gain):
    """Competition events for every leading index of a series with unit and target axes."""
    u, t = spec.unit_axis, spec.target_axis
    lead = spec.lead_axes
    # [T, *lead, units, targets]
    moved = np.moveaxis(x, [1 + u, 1 + t], [-2, -1])
    lead_shape = moved.shape[1:-2]
    by_lead: dict[tuple, list[Bump]] = {}
    for b in bumps:
        key = tuple(b.index[i] for i in lead)
        by_lead.setdefault(key, []).append(
            Bump((b.index[u], b.index[t]), b.start, b.peak, b.end, b.height, b.rise, b.drop,
                 b.climbs_back))
    events, chance = [], 0
    # Chance baseline: partners taken from the next run along the seed axis.
    shuffle = "seed" in spec.axes and lead_shape and lead_shape[0] > 1
    for key in np.ndindex(*lead_shape) if lead_shape else [()]:
        if key not in by_lead:
            continue
        own = moved[(slice(None), *key)]
        for ev in find_competition(own, step, params, min_gain, bumps=by_lead[key]):
            events.append((tuple(int(k) for k in key), ev))
        if shuffle:
            other = ((key[0] + 1) % lead_shape[0], *key[1:])
            chance += len(find_competition(own, step, params, min_gain, bumps=by_lead[key],
                                           partners=moved[(slice(None), *other)]))
    return events, (chance if shuffle else None)


def analyze(source: Source, params: BumpParams | None = None, sign: str = "peak",
            min_gain: float = 0.05) -> dict:
    """Bumps, competition events and a summary, as one JSON-ready dict."""
    params = (params or BumpParams()).validate()
    step = source.step
    decay_end = None
    if source.run is not None and source.run.get("kind") == "lowrank":
        norms = np.concatenate([np.asarray(source.run["norm_a"]), np.asarray(source.run["norm_b"])], -1)
        decay_end = norm_decay_end(norms, step)  # [N]
    out_bumps, out_events, per_series = [], [], {}
    for spec, values in source.series:
        step = source.step_for(spec.key)
        x = prepare(spec, values, sign)
        bumps = find_bumps(x, step, params, name=spec.key)
        events, chance = [], None
        if spec.unit_axis is not None and spec.target_axis is not None:
            events, chance = _competition(spec, x, step, bumps, params, min_gain)
        lead = spec.lead_axes
        explained = {(k, ev.loser, ev.target, ev.peak) for k, ev in events}
        rows = []
        for b in bumps:
            row = {"series": spec.key, **b.as_dict(step)}
            if spec.unit_axis is not None:
                key = tuple(b.index[i] for i in lead)
                row["explained_by_competition"] = (
                    key, b.index[spec.unit_axis], b.index[spec.target_axis], b.peak) in explained
            if decay_end is not None and "seed" in spec.axes:
                end = int(decay_end[b.index[spec.axes.index("seed")]])
                row["started_in_norm_decay"] = row["start_step"] < end
                row["peaked_in_norm_decay"] = row["peak_step"] < end
            rows.append(row)
        for key, ev in events:
            out_events.append({"series": spec.key, "index": list(key), **ev.as_dict(step)})
        out_bumps.extend(rows)
        per_series[spec.key] = _summarize(spec, x, rows, events)
        if chance is not None:
            per_series[spec.key]["explained_by_chance_baseline"] = chance
    result = {"bumps": out_bumps, "competition": out_events, "summary": per_series,
              "params": {**params.__dict__, "sign": sign, "min_gain": min_gain}}
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
