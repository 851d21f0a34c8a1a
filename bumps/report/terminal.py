"""Readable `bumps detect` output: a summary table per series and the largest bumps."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from bumps.io.schema import AXIS_OFFSET


def _fmt(x) -> str:
    if x is None:
        return "-"
    return f"{x:.3g}" if isinstance(x, float) else str(x)


def _table(title: str) -> Table:
    """Light borders and wrapping headers: the tables fit an 80-column terminal without '…'."""
    return Table(
        title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, show_edge=False, title_justify="left"
    )


def _column(table: Table, header: str, left: bool = False) -> None:
    # fold, never ellipsize: a too-long series name or number wraps instead of losing characters
    table.add_column(
        header, justify="left" if left else "right", overflow="fold", min_width=max(len(w) for w in header.split())
    )


def _index_label(bump: dict, summary: dict) -> str:
    """The bump's curve index as the plots label it: frequencies are 1-based (k), other axes count from 0."""
    axes = summary.get(bump["series"], {}).get("axes", [])
    return ",".join(str(i + AXIS_OFFSET.get(a, 0)) for i, a in zip(bump["index"], axes, strict=False))


def print_report(result: dict, path, rows: int = 15, plot=None, console: Console | None = None) -> None:
    """Summary table per series, the largest events of each kind, and one sentence per series.

    With ``result["events"]`` (``analyze(..., events=...)``) the tables list bumps, spikes and
    phase changes; without, the rise-and-fall bumps. The ``index`` column labels curves as the
    plots do (frequency k from 1); the JSON keeps 0-based indices.
    """
    console = console or Console()
    summary = result["summary"]
    kinds = "events" in result
    table = _table(f"events in {path}" if kinds else f"bumps in {path}")
    _column(table, "series", left=True)
    _column(table, "curves")
    if kinds:
        shown = [k for k in KIND_HEADERS if any(k in s.get("events", {}) for s in summary.values())]
        _column(table, "scale")
        for k in shown:
            _column(table, KIND_HEADERS[k])
    else:
        for c in ("with bumps", "bumps", "climb back", "median peak"):
            _column(table, c)
    competition = any("explained_by_competition" in s for s in summary.values())
    if competition:
        _column(table, "explained")
    for name, s in summary.items():
        cells = [name, _fmt(s["curves"])]
        if kinds:
            cells += [s.get("scale", "-")] + [_fmt(s.get("events", {}).get(k)) for k in shown]
        else:
            cells += [_fmt(s.get(c)) for c in ("curves_with_bumps", "bumps", "climb_back", "median_peak_height")]
        if competition:
            cells.append(_fmt(s.get("explained_by_competition")))
        table.add_row(*cells)
    console.print(table)
    if kinds:
        console.print(
            "(steps; sizes on each series' scale, decades for log; explained: rise-and-fall peaks explained "
            "by a competition event)",
            style="dim",
        )
        for kind in KIND_HEADERS:
            _event_table(console, [e for e in result["events"] if e["kind"] == kind], kind, summary, rows)
    else:
        console.print("(start/peak/end in steps; back: climbs back above the peak later)", style="dim")
        _event_table(console, result["bumps"], "rise-and-fall", summary, rows)
    for name, s in summary.items():
        console.print(_sentence(name, s))
    if plot is not None:
        console.print(f"plot written to {plot}")


KIND_HEADERS = {"bump": "bumps", "spike": "spikes", "phase_change": "phase changes"}
_COLUMNS = {  # per table: (header, how to read the row)
    "bump": [("start", "start_step"), ("peak", "peak_step"), ("end", "end_step"), ("rise", "size"), ("drop", "drop")],
    "rise-and-fall": [
        ("start", "start_step"),
        ("peak", "peak_step"),
        ("end", "end_step"),
        ("rise", "rise"),
        ("drop", "drop"),
        ("back", "climbs_back"),
    ],
    "spike": [("start", "start_step"), ("peak", "peak_step"), ("rise", "size"), ("f32 floor", "float32_floor")],
    "phase_change": [
        ("onset", "onset_step"),
        ("steepest", "steepest_step"),
        ("end", "end_step"),
        ("size", "size"),
        ("bump before", "bump_before"),
    ],
}


def _event_table(console: Console, events: list[dict], kind: str, summary: dict, rows: int) -> None:
    if not events:
        return
    by = "drop" if kind in ("bump", "rise-and-fall") else "size"
    top = sorted(events, key=lambda e: -abs(e[by]))[:rows]
    title = {"rise-and-fall": "bumps", "phase_change": "phase changes"}.get(kind, kind + "s")
    t = _table(f"largest {title} by {by} ({len(top)} of {len(events)})")
    _column(t, "series", left=True)
    _column(t, "index")
    for header, _ in _COLUMNS[kind]:
        _column(t, header)
    for e in top:
        cells = [e["series"], _index_label(e, summary)]
        for _, key in _COLUMNS[kind]:
            v = e.get(key)
            cells.append({True: "yes", False: "no"}.get(v, _fmt(v)) if isinstance(v, bool) or v is None else _fmt(v))
        t.add_row(*cells)
    console.print(t)


def _sentence(name: str, s: dict) -> str:
    if "events" in s:
        counts = ", ".join(f"{n} {KIND_HEADERS[k]}" for k, n in s["events"].items())
        line = f"{name}: {counts} on {s['curves']} curves ({s['scale']} scale"
        line += f", {s['smoothed_curves']} smoothed)" if s.get("smoothed_curves") else ")"
    else:
        line = f"{name}: {s['bumps']} bumps on {s['curves_with_bumps']} of {s['curves']} curves"
        if "seeds" in s:
            line += f" ({s['seeds_with_bumps']} of {s['seeds']} seeds)"
    if "competition_events" in s and s["bumps"]:
        line += (
            f"; {s['explained_by_competition']} of {s['bumps']} rise-and-fall peaks explained by competition "
            f"({100 * s['explained_by_competition'] / s['bumps']:.0f}%)"
        )
        if s.get("explained_by_chance_baseline") is not None:
            line += f", vs {s['explained_by_chance_baseline']} with partners from another seed (chance baseline)"
    if "started_in_norm_decay" in s:
        line += (
            f"; {s['started_in_norm_decay']} started and {s['peaked_in_norm_decay']} peaked inside the norm-decay phase"
        )
    return line
