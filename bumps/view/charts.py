"""Scalar series as chart payloads: every recorded value kept exact, each line cut to a min/max envelope.

A chart payload is a shared x axis (steps) and one y list per line, aligned with it (None where a
line has no kept sample). Curves are cut to a min/max envelope of real samples
(:func:`bumps.view.downsample.envelope_indices`), so every value the page shows is a recorded one;
:func:`chart_window` cuts a chart to the span the page has zoomed to.
"""

from __future__ import annotations

import math

import numpy as np

from bumps.io.schema import EXTRA_SERIES
from bumps.view.downsample import envelope_indices

BUCKETS = 600  # min/max buckets per curve: about one per pixel column of a chart


def finite(obj):
    """``obj`` with every NaN or infinite float replaced by None (JSON has neither).

    Parameters
    ----------
    obj : Any
        Nested dicts, lists and tuples of JSON-ready values.

    Returns
    -------
    Any
        The same structure (tuples as lists), non-finite floats as None.
    """
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def as_json_list(a: np.ndarray) -> list:
    """A float array as nested lists, None where it is not finite (JSON has no NaN)."""
    out = a.tolist()
    if np.isfinite(a).all():
        return out
    mask = (~np.isfinite(a)).tolist()

    def fix(v, m):
        if isinstance(v, list):
            return [fix(x, y) for x, y in zip(v, m, strict=True)]
        return None if m else v

    return fix(out, mask)


def steps_of(run: dict, key: str, step_key: str, n: int) -> np.ndarray | None:
    """The steps of a recorded series of length ``n``: its step key's values, None if they do not fit.

    ``step_key`` is a key of the run holding steps, or ``"epoch"`` (``train_loss_every_epoch``:
    index i is epoch ``first_epoch + i``).
    """
    if step_key == "epoch":  # train_loss_every_epoch: index i is epoch first_epoch + i
        return np.arange(n, dtype=np.int64) + int((run.get("config") or {}).get("first_epoch") or 0)
    steps = run.get(step_key)
    if steps is None or len(steps) != n:
        return None
    return np.asarray(steps, dtype=np.int64)


def _group_of(key: str) -> tuple[str, str, bool]:
    """(chart id, title, log y) of a scalar series."""
    if "loss" in key:
        return "losses", "losses", True
    if key.endswith("_acc"):
        return "accuracy", "accuracy", False
    if key.startswith("gini"):
        return "gini", "Gini coefficients", False
    return key, key, False


def chart(cid: str, title: str, log: bool, members: list[tuple[str, str, np.ndarray, np.ndarray]], buckets: int):
    """A chart payload: members (key, label, steps [T], values [T]) on the union of their kept steps.

    Parameters
    ----------
    cid, title : str
        The chart's id and title.
    log : bool
        Whether its y axis is logarithmic (non-positive values are left out there).
    members : list of tuple
        ``(key, label, steps, values)`` per line; each line keeps its own min/max envelope.
    buckets : int
        Envelope buckets per line (:func:`bumps.view.downsample.envelope_indices`).

    Returns
    -------
    dict
        ``id``, ``title``, ``log``, ``keys`` (the series keys drawn), ``x`` (sorted steps) and
        ``series`` (``label``, ``key``, ``y`` aligned with ``x``, None where a line has no kept
        sample), plus ``points`` (samples kept) and ``samples`` (samples recorded).
    """
    kept = []
    for key, label, steps, values in members:
        v = np.asarray(values, dtype=np.float64)
        if log:
            v = np.where(v > 0, v, np.nan)
        idx = envelope_indices(v, buckets)
        kept.append((key, label, np.asarray(steps)[idx], v[idx]))
    x = np.unique(np.concatenate([s for _, _, s, _ in kept])) if kept else np.zeros(0, np.int64)
    series = []
    for key, label, s, v in kept:
        y = np.full(len(x), np.nan)
        y[np.searchsorted(x, s)] = v
        series.append({"label": label, "key": key, "y": as_json_list(y)})
    return {
        "id": cid,
        "title": title,
        "log": log,
        "keys": sorted({k for k, *_ in members}),
        "x": x.tolist(),
        "series": series,
        "points": int(sum(len(s) for _, _, s, _ in kept)),
        "samples": int(sum(len(m[2]) for m in members)),
    }


def scalar_members(run: dict) -> dict[str, tuple[str, bool, list]]:
    """The scalar series of a run (:data:`bumps.io.schema.EXTRA_SERIES`) grouped into charts, at full resolution.

    Losses share one log-scale chart, accuracies one chart, Gini coefficients one chart; every other
    series has its own. A series with a seed axis (the toy model's ``loss`` ``[T, N]``) is one line per
    seed. Series whose steps are missing or of another length are left out.

    Parameters
    ----------
    run : dict
        A loaded run.

    Returns
    -------
    dict
        Chart id -> ``(title, log, members)``, members as :func:`chart` takes them, in the order of
        their first series in ``EXTRA_SERIES``.
    """
    groups: dict[str, tuple[str, bool, list]] = {}
    for key, (axes, step_key) in EXTRA_SERIES.get(run.get("kind"), {}).items():
        if key not in run or len(axes) > 1:
            continue
        values = np.asarray(run[key], dtype=np.float64)
        if values.ndim != 1 + len(axes) or len(values) == 0:
            continue
        steps = steps_of(run, key, step_key, len(values))
        if steps is None:
            continue
        cid, title, log = _group_of(key)
        members = groups.setdefault(cid, (title, log, []))[2]
        if values.ndim == 1:
            members.append((key, key, steps, values))
        else:
            members += [(key, f"{key} seed {i}", steps, values[:, i]) for i in range(values.shape[1])]
    return groups


def scalar_charts(run: dict, buckets: int = BUCKETS) -> list[dict]:
    """Every scalar series of a run as :func:`chart` payloads (:func:`scalar_members`), each line an envelope.

    Parameters
    ----------
    run : dict
        A loaded run.
    buckets : int, default BUCKETS
        Envelope buckets per line.

    Returns
    -------
    list of dict
        One :func:`chart` payload per chart of :func:`scalar_members`.
    """
    return [chart(cid, title, log, members, buckets) for cid, (title, log, members) in scalar_members(run).items()]


def chart_window(run: dict, cid: str, lo: float, hi: float, buckets: int = BUCKETS) -> dict:
    """One scalar chart cut to the steps in ``[lo, hi]``, its envelope over that span only (the page's zoom).

    Parameters
    ----------
    run : dict
        A loaded run.
    cid : str
        A chart id of :func:`scalar_members`.
    lo, hi : float
        The step range shown (inclusive); one sample either side is kept so lines reach the edges.
    buckets : int, default BUCKETS
        Envelope buckets per line over the span.

    Returns
    -------
    dict
        A :func:`chart` payload; every sample in the span when a line has at most ``2 * buckets + 2``
        of them there.

    Raises
    ------
    KeyError
        If the run has no chart ``cid``.
    """
    groups = scalar_members(run)
    if cid not in groups:
        raise KeyError(f"no chart {cid!r} in this run; it has {', '.join(groups)}")
    title, log, members = groups[cid]
    cut = []
    for key, label, steps, values in members:
        inside = np.flatnonzero((steps >= lo) & (steps <= hi))
        a, b = (max(inside[0] - 1, 0), min(inside[-1] + 2, len(steps))) if len(inside) else (0, 0)
        cut.append((key, label, steps[a:b], values[a:b]))
    return chart(cid, title, log, cut, buckets)
