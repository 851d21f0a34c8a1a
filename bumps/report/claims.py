"""`bumps claims`: the report that joins each task's claims section (toy model, mod-add) into one file.

Each task measures its own section (:func:`bumps.lowrank.claims.run_toy_claims`,
:func:`bumps.modadd.claims.modadd_claims`); this module runs them, renders one Markdown report and writes
``claims.md``, ``claims.json`` and the knockout figure atomically.
"""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

from bumps.detect.bumps import BumpParams
from bumps.errors import BumpsError
from bumps.io.png import save_png
from bumps.io.provenance import stamp_markdown, stamp_png
from bumps.io.runfile import atomic_write, load_run
from bumps.lowrank.claims import render_toy_markdown, run_toy_claims
from bumps.lowrank.figures import knockout_figure
from bumps.modadd.claims import modadd_claims, render_modadd
from bumps.modadd.knockout import clearest_events, plan_frequency, plan_neuron, run_knockouts
from bumps.modadd.phases import classify_bumps

MODADD_KINDS = ("neuron", "frequency")


def run_claims(
    seeds: int = 128,
    quick: bool = False,
    configs: list[str] | None = None,
    claims: list[str] | None = None,
    max_knockout_bumps: int = 150,
    params: BumpParams | None = None,
    cache: Path | None = Path("runs/claims_cache"),
    progress: Callable[[int, int, str], None] | None = None,
    seeds_full_rank: int = 16,
    modadd_runs: list[str] | None = None,
    modadd_knockouts: int = 0,
    modadd_neurons: int = 8,
    modadd_kinds: tuple[str, ...] = MODADD_KINDS,
    modadd_baseline: bool = True,
    modadd_train: bool = True,
    modadd_from: Path | None = None,
) -> dict:
    """The toy section (:func:`bumps.lowrank.claims.run_toy_claims`) and, with ``modadd_runs``, the mod-add one.

    ``modadd_runs`` adds the mod-add section from those run files, with ``modadd_knockouts`` knockout events
    per run (:mod:`bumps.modadd.knockout`, ``modadd_neurons`` competitor and control neurons each;
    continuations are cached in runs/modadd_knockouts/). Without ``modadd_runs``, ``modadd_from`` (an earlier
    claims.json) supplies the mod-add section unchanged, marked as carried over.
    """
    unknown = [k for k in modadd_kinds if k not in MODADD_KINDS]
    if modadd_runs and unknown:
        raise BumpsError(f"unknown mod-add knockout kind {', '.join(unknown)}; known: {', '.join(MODADD_KINDS)}")
    toy = run_toy_claims(seeds, quick, configs, claims, max_knockout_bumps, params, cache, progress, seeds_full_rank)
    modadd = None
    if modadd_runs:
        modadd = _modadd_section(
            modadd_runs, modadd_knockouts, modadd_neurons, tuple(modadd_kinds), modadd_baseline, modadd_train
        )
    elif modadd_from is not None:
        try:
            modadd = json.loads(Path(modadd_from).read_text())["modadd"]
        except (OSError, ValueError, KeyError, TypeError):
            raise BumpsError(f"--modadd-from {modadd_from} is not a claims.json with a mod-add section") from None
        if not modadd:
            raise BumpsError(f"--modadd-from {modadd_from} has no mod-add section")
        modadd = {**modadd, "carried_from": Path(modadd_from).as_posix()}
    return {"modadd": modadd, **toy}


def _modadd_section(
    paths: list[str],
    events: int,
    neurons: int,
    kinds: tuple[str, ...] = ("neuron", "frequency"),
    baseline: bool = True,
    train: bool = True,
) -> dict:
    """Mod-add claims from run files, with the clearest neuron and/or frequency bumps knocked out
    (``baseline``: also the unintervened continuation from the same checkpoint)."""
    records = None
    if events > 0:
        plans = []
        for path in paths:
            run = load_run(path, kind="modadd")
            rows = classify_bumps(run)
            if "neuron" in kinds:
                for ev in clearest_events(rows, "neuron_freq", events):
                    plans += plan_neuron(str(path), run, ev, neurons)
            if "frequency" in kinds:
                for ev in clearest_events(rows, ("freq_norm", "freq_norm_wl"), events, relative=True):
                    plans += plan_frequency(str(path), run, ev)
        plans = [p for p in plans if baseline or p.role != "none"]
        records = run_knockouts(plans, Path("runs/modadd_knockouts"), train=train) if plans else []
    return modadd_claims(paths, records)


def render_markdown(report: dict, figures: list[str] | None = None) -> str:
    """The Markdown report: the toy section, then the mod-add section when the report has one."""
    lines = render_toy_markdown(report, figures)
    if report.get("modadd"):
        lines += render_modadd(report["modadd"])
        if report["modadd"].get("carried_from"):
            at = lines.index("## Mod-add grokking (nanda preset, from run files)") + 1
            lines[at:at] = [
                "",
                f"*Carried unchanged from `{report['modadd']['carried_from']}`: the run files were not given, so "
                "this section was not measured again and keeps the statistics of the run that wrote it.*",
            ]
    return "\n".join(lines) + "\n"


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _plain_text(text: str) -> str:
    return re.sub(r"\*\*(.*?)\*\*|`([^`]*)`", lambda m: m.group(1) or m.group(2) or "", text)


def markdown_for_terminal(text: str, width: int = 80) -> str:
    """Markdown as plain text wrapped to ``width`` columns: tables become one block per row.

    Parameters
    ----------
    text : str
        Markdown with headings, paragraphs, lists and pipe tables.
    width : int
        Columns; no output line is longer (except a single word longer than ``width``).

    Returns
    -------
    str
        Headings as their text, paragraphs and list items wrapped, and each table row as its first cell,
        its last cell after a dash, then one wrapped ``header: value`` line per other cell.
    """
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("|") and i + 1 < len(lines) and set(lines[i + 1].replace("|", "").strip()) <= set("-: "):
            header = [_plain_text(c) for c in _cells(line)]
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                cells = [_plain_text(c) for c in _cells(lines[i])]
                first = f"{header[0]} {cells[0]}" + (f" — {header[-1]}: {cells[-1]}" if len(cells) > 1 else "")
                out.append(textwrap.fill(first, width, subsequent_indent="    "))
                for name, value in zip(header[1:-1], cells[1:-1], strict=False):
                    out.append(textwrap.fill(f"{name}: {value}", width, initial_indent="  ", subsequent_indent="    "))
                i += 1
            continue
        if line.startswith("#"):
            out.append(_plain_text(line.lstrip("#").strip()))
        elif line.startswith(("* ", "- ")):
            out.append(textwrap.fill(_plain_text(line[2:]), width, initial_indent="* ", subsequent_indent="  "))
        elif line.strip():
            out.append(textwrap.fill(_plain_text(line), width))
        else:
            out.append("")
        i += 1
    return "\n".join(out)


def render_terminal(report: dict, width: int | None = None) -> str:
    """The report's toy claims section (up to its knockout tables) for a terminal of ``width`` columns.

    Parameters
    ----------
    report : dict
        As :func:`run_claims` returns.
    width : int, optional
        Columns; None: the terminal's (``COLUMNS`` if set, else 80 when unknown).

    Returns
    -------
    str
        :func:`markdown_for_terminal` of the section.
    """
    width = width or shutil.get_terminal_size((80, 24)).columns
    return markdown_for_terminal(render_markdown(report).split("\n## Knockouts")[0], width)


def write_report(
    report: dict, out_dir: Path, figures_dir: Path | None = None, settings: dict | None = None
) -> list[Path]:
    """``claims.md``, ``claims.json`` into ``out_dir`` (and the knockout figure into ``figures_dir``), atomically.

    Parameters
    ----------
    report : dict
        As :func:`run_claims` returns.
    out_dir : Path
        Folder of the Markdown and JSON reports.
    figures_dir : Path, optional
        Folder of ``claims_knockouts.png``; None: no figure.
    settings : dict, optional
        What the report was made from (:mod:`bumps.io.provenance`): recorded in all three files, so that a
        later run with other settings refuses to replace them without ``--force``.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    written = []
    figs = []
    if figures_dir is not None:
        figs.append(save_png(knockout_figure(report), Path(figures_dir) / "claims_knockouts.png"))
        if settings is not None:
            stamp_png(figs[-1], settings)
        written += figs
    md = render_markdown(report, [str(f) for f in figs])
    partial = (settings or {}).get("partial_runs") or {}
    if partial:  # used with --allow-partial: said at the top, where a reader starts
        note = "; ".join(f"{p}: {why}" for p, why in partial.items())
        title, _, rest = md.partition("\n")
        md = f"{title}\n\n**Partial mod-add runs used (`--allow-partial`):** {note}.\n{rest}"
    if settings is not None:
        md = stamp_markdown(md, settings)
    text = json.dumps(report if settings is None else {**report, "bumps_settings": settings}, indent=1)
    written.append(atomic_write(Path(out_dir) / "claims.json", lambda fh: fh.write(text.encode())))
    written.append(atomic_write(Path(out_dir) / "claims.md", lambda fh: fh.write(md.encode())))
    return written
