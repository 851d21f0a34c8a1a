"""One run as JSON for the page: its scalar series, its events, the wavetable, records and seeds on demand.

Everything here turns a loaded run dict into plain JSON-ready dicts; nothing reads files
(:mod:`bumps.view.files` does) or knows HTTP (:mod:`bumps.view.server`). Curves are cut to a
min/max envelope of real samples (:func:`bumps.view.downsample.envelope_indices`), so every value
the page shows is a recorded one.
"""

from __future__ import annotations

import math

import numpy as np

from bumps.detect.analysis import Source, analyze
from bumps.io.schema import EXTRA_SERIES, SERIES, SeriesSpec
from bumps.lowrank.invariants import invariant_series
from bumps.modadd.phases import phase_boundaries
from bumps.view.downsample import envelope_indices

BUCKETS = 600  # min/max buckets per curve: about one per pixel column of a chart
WAVETABLE_COLUMNS = 500  # records shown in the wavetable at most (evenly spaced, exact values)
EVENT_KINDS = ("bump", "spike", "phase_change")


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


def _clean(a: np.ndarray) -> list:
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


def run_status(run: dict) -> tuple[str, str]:
    """How a run ended, from its config: ``("finished" | "in progress" | "diverged", detail)``.

    Parameters
    ----------
    run : dict
        A loaded run.

    Returns
    -------
    status : str
        ``"diverged"`` if the config records a divergence, ``"in progress"`` for an autosave or an
        interrupted run (``final`` False), else ``"finished"``.
    detail : str
        The epoch or step reached, or the stop reason.
    """
    cfg = run.get("config") or {}
    if cfg.get("diverged_step") is not None or cfg.get("stop_reason") == "diverged":
        return "diverged", f"at {cfg.get('diverged_step', cfg.get('diverged_epoch'))}"
    if cfg.get("final") is False:
        return "in progress", f"epoch {cfg.get('epochs_done')} of {cfg.get('epochs')}"
    steps = np.asarray(run.get("step", []))
    last = int(steps[-1]) if len(steps) else 0
    return "finished", f"stopped: {cfg['stop_reason']}" if cfg.get("stop_reason") else f"to step {last}"


def _steps_of(run: dict, key: str, step_key: str, n: int) -> np.ndarray | None:
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
        series.append({"label": label, "key": key, "y": _clean(y)})
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
        steps = _steps_of(run, key, step_key, len(values))
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


def events_of(result: dict) -> list[dict]:
    """The detector's events, one kind per row: its ``events`` if present, else its ``bumps`` as kind "bump".

    Parameters
    ----------
    result : dict
        What :func:`bumps.detect.analysis.analyze` returns.

    Returns
    -------
    list of dict
        Each row as the detector wrote it, with ``kind`` (``"bump"`` where absent) and ``at_step``:
        ``peak_step`` for bumps and spikes, ``steepest_step`` for phase changes (else
        ``start_step``).
    """
    rows = result.get("events")
    if rows is None:
        rows = [{**b, "kind": "bump"} for b in result.get("bumps", [])]
    out = []
    for r in rows:
        at = r.get("peak_step", r.get("steepest_step", r.get("start_step")))
        out.append({**r, "kind": r.get("kind", "bump"), "at_step": at})
    return out


def _event_params():
    """The detector's settings for every event kind, where this bumps has them (else None: bumps only)."""
    try:
        from bumps.detect.events import EventParams
    except ImportError:
        return None
    return EventParams()


EVENT_GROUPS = ("curves", "units")


def run_events(run: dict, group: str | None = None) -> list[dict]:
    """Detect events in a loaded run's curve families and scalar series, and list them.

    The source handed to :func:`bumps.detect.analysis.analyze` is the run's curve families
    (:data:`bumps.io.schema.SERIES`) plus its scalar series (:data:`bumps.io.schema.EXTRA_SERIES`
    with no axis or a seed axis, each on its own steps), so the charts of losses and accuracies get
    their events too. Where the detector knows event kinds beyond bumps
    (``bumps.detect.events.EventParams``), all of them are asked for.

    Parameters
    ----------
    run : dict
        A loaded run; kinds without series have no events.
    group : {"curves", "units"} or None, default None
        ``"units"``: only the families with a learned-unit axis (``neuron_freq``, ``inner_a/b``: many
        curves, the slow part); ``"curves"``: every other series; None: all of them. The page asks
        for the curves first so their events show sooner.

    Returns
    -------
    list of dict
        :func:`events_of` of the detector's result.

    Raises
    ------
    ValueError
        If ``group`` is not one of :data:`EVENT_GROUPS` or None.
    """
    if group not in (None, *EVENT_GROUPS):
        raise ValueError(f"group must be one of {', '.join(EVENT_GROUPS)} (got {group!r})")
    kind = run.get("kind")
    step = np.asarray(run.get("step", []))
    specs = [s for s in SERIES.get(kind, []) if s.key in run]
    if group is not None:
        specs = [s for s in specs if (s.unit_axis is not None) == (group == "units")]
    series = [(s, np.asarray(run[s.key])) for s in specs]
    own = {}
    for key, (axes, step_key) in EXTRA_SERIES.get(kind, {}).items():
        if group == "units" or key not in run or len(axes) > 1 or key in {s.key for s, _ in series}:
            continue
        values = np.asarray(run[key], dtype=np.float64)
        steps = _steps_of(run, key, step_key, len(values))
        if steps is None or values.ndim != 1 + len(axes) or len(values) < 3:
            continue
        series.append((SeriesSpec(key, axes), values))
        if step_key != "step":
            own[key] = steps
    if not series or len(step) < 3:
        return []
    source = Source(series, step, run, own)
    params = _event_params()
    return events_of(analyze(source) if params is None else analyze(source, events=params))


def _wavetable(run: dict, columns: int) -> dict:
    n = len(run["step"])
    cols = np.unique(np.linspace(0, n - 1, min(n, columns)).round().astype(np.int64)) if n else np.zeros(0, int)
    out = {"records": cols.tolist(), "steps": np.asarray(run["step"])[cols].tolist()}
    for key in ("freq_norm", "freq_norm_wl"):
        if key in run:
            out[key] = _clean(np.asarray(run[key], dtype=np.float64)[cols])  # [columns, F]
    return out


def _modadd(run: dict, columns: int) -> dict:
    cfg = run.get("config") or {}
    phases = {}
    if all(k in run and len(run[k]) for k in ("test_loss", "sum_sq_weights")):
        phases = phase_boundaries(run)
    nf = run.get("neuron_freq")
    return {
        "p": cfg.get("p"),
        "freqs": int(np.asarray(run["freq_norm"]).shape[1]) if "freq_norm" in run else 0,
        "neurons": int(nf.shape[1]) if nf is not None else 0,
        "records": len(run["step"]),
        "record_steps": np.asarray(run["step"]).tolist(),
        "key_freqs": [int(k) for k in run.get("key_freqs", [])],
        "key_freqs_official": [int(k) for k in run.get("key_freqs_official", [])],
        "grok_epoch": int(run.get("grok_epoch", -1)),
        "phases": phases,
        "wavetable": _wavetable(run, columns),
    }


def record_payload(run: dict, i: int) -> dict:
    """One mod-add record at full precision: the spectrum and the neuron × frequency table.

    Parameters
    ----------
    run : dict
        A loaded mod-add run.
    i : int
        The record (position along axis 0), ``0 <= i < T``; negative counts from the end.

    Returns
    -------
    dict
        ``record``, ``step``, ``freq_norm`` and ``freq_norm_wl`` ``[F]`` and ``neuron_freq``
        ``[d_mlp][F]`` (each present if recorded), values as recorded.

    Raises
    ------
    IndexError
        If ``i`` is out of range.
    """
    n = len(run["step"])
    if not -n <= i < n:
        raise IndexError(f"record {i} is out of range (the run has {n} records)")
    i = i % n
    out = {"record": i, "step": int(run["step"][i])}
    for key in ("freq_norm", "freq_norm_wl", "neuron_freq"):
        if key in run:
            out[key] = _clean(np.asarray(run[key][i], dtype=np.float64))
    return out


def seed_payload(run: dict, seed: int, buckets: int = BUCKETS) -> dict:
    """One seed of a toy run: per-unit inner products with truth and the frame-invariant series.

    Parameters
    ----------
    run : dict
        A loaded lowrank run.
    seed : int
        The seed index, ``0 <= seed < N``.
    buckets : int, default BUCKETS
        Envelope buckets per line.

    Returns
    -------
    dict
        ``seed``, ``per_unit`` (charts of ``inner_a`` and ``inner_b``, one line per target m and
        learned unit k) and ``invariant`` (charts of ``target_norm_a/b``, ``sv_a/b`` and the loss,
        from :func:`bumps.lowrank.invariants.invariant_series`).

    Raises
    ------
    IndexError
        If ``seed`` is out of range.
    """
    n = np.asarray(run["loss"]).shape[1]
    if not 0 <= seed < n:
        raise IndexError(f"seed {seed} is out of range (the run has {n} seeds)")
    steps = np.asarray(run["step"])
    one = {k: np.asarray(run[k])[:, seed : seed + 1] for k in ("inner_a", "inner_b", "loss")}
    inv = {k: v[:, 0] for k, v in invariant_series(one).items()}
    per_unit = []
    for key in ("inner_a", "inner_b"):
        x = one[key][:, 0]  # [T, r, K]
        side = key[-1]
        pairs = [(m, k) for m in range(x.shape[1]) for k in range(x.shape[2])]
        members = [(key, f"{side}{m + 1}·unit {k + 1}", steps, x[:, m, k]) for m, k in pairs]
        per_unit.append(chart(key, f"{key}: target · learned unit (per unit)", False, members, buckets))
    invariant = []
    for key in ("target_norm_a", "target_norm_b", "sv_a", "sv_b"):
        x = inv[key]
        label = "target" if key.startswith("target") else "σ"
        members = [(key, f"{label} {j + 1}", steps, x[:, j]) for j in range(x.shape[1])]
        invariant.append(chart(key, f"{key} (frame-invariant)", False, members, buckets))
    invariant.append(chart("loss", "loss", True, [("loss", "loss", steps, inv["loss"])], buckets))
    return {"seed": seed, "per_unit": per_unit, "invariant": invariant}


def run_payload(run: dict, name: str, buckets: int = BUCKETS, columns: int = WAVETABLE_COLUMNS) -> dict:
    """The first payload of a run page: header, scalar charts and the kind's own view (no events yet).

    Parameters
    ----------
    run : dict
        A loaded run.
    name : str
        How the page names the run (its path relative to what is served).
    buckets : int, default BUCKETS
        Envelope buckets per line.
    columns : int, default WAVETABLE_COLUMNS
        Records shown in the wavetable at most.

    Returns
    -------
    dict
        ``view`` ("run"), ``name``, ``kind``, ``status``, ``detail``, ``records``, ``config``
        (its scalar settings), ``families`` (the detected curve families recorded), ``charts``
        (:func:`scalar_charts`), and ``modadd`` (wavetable, key frequencies, phases, record steps)
        or ``lowrank`` (seeds, rank, learned units and the first seed's :func:`seed_payload`).
        Events come separately (:func:`run_events`): detection takes longer than drawing.
    """
    status, detail = run_status(run)
    cfg = run.get("config") or {}
    kind = run.get("kind")
    out = {
        "view": "run",
        "name": name,
        "kind": kind,
        "status": status,
        "detail": detail,
        "records": len(run.get("step", [])),
        "config": {k: v for k, v in cfg.items() if isinstance(v, (int, float, str, bool)) or v is None},
        "families": [s.key for s in SERIES.get(kind, []) if s.key in run],
        "charts": scalar_charts(run, buckets),
    }
    if kind == "modadd" and "freq_norm" in run:
        out["modadd"] = _modadd(run, columns)
    if kind == "lowrank" and "inner_a" in run:
        shape = np.asarray(run["inner_a"]).shape
        first = seed_payload(run, 0, buckets)
        out["lowrank"] = {"seeds": shape[1], "rank": shape[2], "learned": shape[3], "first": first}
    return out
