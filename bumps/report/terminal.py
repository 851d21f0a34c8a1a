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
    """Summary table per series, the largest bumps, and one sentence per series (norm-decay counts there).

    The ``index`` column labels curves as the plots do (frequency k from 1); the JSON keeps 0-based indices.
    """
    console = console or Console()
    summary = result["summary"]
    table = _table(f"bumps in {path}")
    cols = [
        "series",
        "curves",
        "bumps",
        "curves_with_bumps",
        "climb_back",
        "median_peak_height",
        "explained_by_competition",  # every competition event explains one bump: an "events" column would repeat it
    ]
    cols = [c for c in cols if c == "series" or any(c in s for s in summary.values())]
    short = {
        "curves_with_bumps": "with bumps",
        "climb_back": "climb back",
        "median_peak_height": "median peak",
        "explained_by_competition": "explained",
    }
    for c in cols:
        _column(table, short.get(c, c), left=c == "series")
    for name, s in summary.items():
        table.add_row(name, *[_fmt(s.get(c)) for c in cols[1:]])
    console.print(table)

    console.print(
        "(start/peak/end in steps; back: climbs back above the peak later; "
        "competition: explained by a competition event)",
        style="dim",
    )
    bumps = sorted(result["bumps"], key=lambda b: -b["drop"])[:rows]
    if bumps:
        t = _table(f"largest bumps by drop ({len(bumps)} of {len(result['bumps'])})")
        for c in ("series", "index", "start", "peak", "end", "height", "rise", "drop", "back", "competition"):
            _column(t, c, left=c == "series")
        for b in bumps:
            t.add_row(
                b["series"],
                _index_label(b, summary),
                str(b["start_step"]),
                str(b["peak_step"]),
                str(b["end_step"]),
                _fmt(b["height"]),
                _fmt(b["rise"]),
                _fmt(b["drop"]),
                "yes" if b["climbs_back"] else "no",
                {True: "yes", False: "no"}.get(b.get("explained_by_competition"), "-"),
            )
        console.print(t)
    for name, s in summary.items():
        line = f"{name}: {s['bumps']} bumps on {s['curves_with_bumps']} of {s['curves']} curves"
        if "seeds" in s:
            line += f" ({s['seeds_with_bumps']} of {s['seeds']} seeds)"
        if "competition_events" in s and s["bumps"]:
            line += (
                f"; {s['explained_by_competition']} explained by competition "
                f"({100 * s['explained_by_competition'] / s['bumps']:.0f}%)"
            )
            if s.get("explained_by_chance_baseline") is not None:
                line += f", vs {s['explained_by_chance_baseline']} with partners from another seed (chance baseline)"
        if "started_in_norm_decay" in s:
            line += (
                f"; {s['started_in_norm_decay']} started and {s['peaked_in_norm_decay']} "
                "peaked inside the norm-decay phase"
            )
        console.print(line)
    if plot is not None:
        console.print(f"plot written to {plot}")
