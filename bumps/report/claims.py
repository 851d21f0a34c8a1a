"""`bumps claims`: the report that joins each task's claims section (toy model, mod-add) into one file.

Each task measures its own section (:func:`bumps.lowrank.claims.run_toy_claims`,
:func:`bumps.modadd.claims.modadd_claims`); this module runs them, renders one Markdown report and writes
``claims.md``, ``claims.json`` and the knockout figure atomically.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from bumps.detect.bumps import BumpParams
from bumps.errors import BumpsError
from bumps.io.png import save_png
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
) -> dict:
    """The toy section (:func:`bumps.lowrank.claims.run_toy_claims`) and, with ``modadd_runs``, the mod-add one.

    ``modadd_runs`` adds the mod-add section from those run files, with ``modadd_knockouts`` knockout events
    per run (:mod:`bumps.modadd.knockout`, ``modadd_neurons`` competitor and control neurons each;
    continuations are cached in runs/modadd_knockouts/).
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
    return "\n".join(lines) + "\n"


def write_report(report: dict, out_dir: Path, figures_dir: Path | None = None) -> list[Path]:
    """reports/claims.md, reports/claims.json (and the figure) written atomically."""
    written = []
    figs = []
    if figures_dir is not None:
        figs.append(save_png(knockout_figure(report), Path(figures_dir) / "claims_knockouts.png"))
        written += figs
    md = render_markdown(report, [str(f) for f in figs])
    text = json.dumps(report, indent=1)
    written.append(atomic_write(Path(out_dir) / "claims.json", lambda fh: fh.write(text.encode())))
    written.append(atomic_write(Path(out_dir) / "claims.md", lambda fh: fh.write(md.encode())))
    return written
