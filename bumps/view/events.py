"""The detector's events of a run, for the page: every kind it knows, on the curve families and scalar series.

The events are what :func:`bumps.detect.analysis.analyze` returns, not a second detector: its
``events`` rows where it gives them (kinds bump, spike and phase change), else its ``bumps`` rows
as kind "bump".
"""

from __future__ import annotations

import numpy as np

from bumps.detect.analysis import Source, analyze
from bumps.io.schema import EXTRA_SERIES, SERIES, SeriesSpec, own_steps
from bumps.view.charts import steps_of


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
    series = [(s, np.asarray(run[s.key], dtype=np.float64)) for s in specs]
    own = own_steps(run, specs)
    for key, (axes, step_key) in EXTRA_SERIES.get(kind, {}).items():
        if group == "units" or key not in run or len(axes) > 1 or key in {s.key for s, _ in series}:
            continue
        values = np.asarray(run[key], dtype=np.float64)
        steps = steps_of(run, key, step_key, len(values))
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
