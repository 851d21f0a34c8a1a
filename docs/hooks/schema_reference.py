"""MkDocs hook: the table of recorded series per run kind, generated at build time from ``bumps.io.schema``.

A line ``<!-- series-schema -->`` in a page is replaced by one row per series that the detector reads
(``SERIES``) or that export writes (``EXTRA_SERIES``), with its axes after time.
"""

from __future__ import annotations

MARKER = "<!-- series-schema -->"


def render() -> str:
    from bumps.io.schema import EXTRA_SERIES, SERIES

    rows = [
        "| kind | key | axes after time | steps in | detected | gauge-signed | competition (units × targets) |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind in sorted(SERIES.keys() | EXTRA_SERIES.keys()):
        for spec in SERIES.get(kind, []):
            comp = f"{spec.axes[spec.unit_axis]} × {spec.axes[spec.target_axis]}" if spec.unit_axis is not None else ""
            signed = "yes" if spec.signed else ""
            rows.append(f"| {kind} | `{spec.key}` | {', '.join(spec.axes)} | `step` | yes | {signed} | {comp} |")
        for key, (axes, steps) in EXTRA_SERIES.get(kind, {}).items():
            rows.append(f"| {kind} | `{key}` | {', '.join(axes)} | `{steps}` | | | |")
    return "\n".join(rows)


def on_page_markdown(markdown, page, config, files):
    return markdown.replace(MARKER, render()) if MARKER in markdown else markdown
