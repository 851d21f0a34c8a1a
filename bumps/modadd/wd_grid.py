"""Seed 003's weight-decay claim: the grok epoch against AdamW weight decay, paired across seeds.

Seed 003 says higher weight decay makes grokking faster, while the appendix numbers it quotes
(λ 0.3 → ~3k epochs, 1 → 5–10k, 3 → ~20k) say the opposite. The grid measures it: the nanda preset
at p = 113, weight decay λ in :data:`WEIGHT_DECAYS` (0 is a no-grok control), model seed and split seed
both equal to the seed index, a 30k-epoch budget, each run stopped at its grok epoch (the first
evaluation, every 100 epochs, with train and test accuracy >= 99%). Those are exactly the runs of
``bumps grok --preset nanda --weight-decay λ --seeds 0,1,2 --data-seeds 0,1,2 --epochs 30000
--stop-after-grok 0 --stop-on grok --checkpoint-every 0`` (same configuration hash).

Finished runs go to a committed ledger (:mod:`bumps.modadd.ledger`, the study's:
``reports/wd_grid_runs.json``) so the grid resumes across sessions without its run files.

The statistic (registry family ``modadd``, claim ``WD``): per seed, ``log(grok at λ_high) −
log(grok at λ_low)``; a run censored at the budget enters at the budget, which makes that seed's
difference a bound (a lower bound when the high-λ run is censored, an upper bound when the low-λ run
is) and the report says so; the mean over seeds with its Student-t interval.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bumps.errors import BumpsError
from bumps.modadd.ablation import SeedCell
from bumps.modadd.model import ModAddConfig

WEIGHT_DECAYS = (3.0, 0.3, 1.0, 0.0)
SEEDS = (0, 1, 2)
BUDGET = 30_000
LOW, HIGH = 0.3, 3.0  # the two weight decays the claim compares


def variant_name(weight_decay: float) -> str:
    """``wd0.3``, ``wd1``, ``wd3``, ``wd0``: a grid cell's name in the ledger and the report."""
    return f"wd{weight_decay:g}"


def grid_configs(
    weight_decays: tuple[float, ...] | list[float],
    seeds: tuple[int, ...] | list[int],
    epochs: int = BUDGET,
    **overrides,
) -> dict[tuple[str, int], ModAddConfig]:
    """The ModAddConfig of every (weight decay, seed index) of the grid.

    Parameters
    ----------
    weight_decays : sequence of float
        AdamW weight decays, each >= 0, in table order.
    seeds : sequence of int
        Seed indices, each >= 0: model seed and split seed are both the index.
    epochs : int, default 30000
        The budget; each run stops at its grok epoch.
    **overrides
        Further ModAddConfig fields for every run (small tests: ``p``, ``d_model``, ...).

    Returns
    -------
    dict
        ``(variant_name(λ), seed) -> ModAddConfig`` (the nanda preset otherwise).
    """
    if not weight_decays or any(not math.isfinite(w) or w < 0 for w in weight_decays):
        raise BumpsError(f"`weight_decays` must be finite and >= 0 (got {list(weight_decays)})")
    if not seeds or any(s < 0 for s in seeds):
        raise BumpsError(f"`seeds` must be >= 0 (got {list(seeds)})")
    if epochs < 1:
        raise BumpsError(f"`epochs` must be >= 1 (got {epochs})")
    out = {}
    for w in weight_decays:
        for s in seeds:
            out[(variant_name(w), s)] = ModAddConfig.from_preset(
                "nanda",
                weight_decay=w,
                seed=s,
                data_seed=s,
                epochs=epochs,
                stop_after_grok=0,
                stop_on="grok",
                checkpoint_every=0,
                **overrides,
            )
    return out


@dataclass(frozen=True)
class PairedDifference:
    """Per-seed ``log(grok at high λ) − log(grok at low λ)`` over the seeds where both runs finished.

    Attributes
    ----------
    seeds : list of int
        The contributing seed indices (both runs finished).
    diffs : list of float
        The differences, in seed order (censored runs entered at their budget).
    lower_bounds, upper_bounds : list of int
        Seeds whose difference is only a lower bound (the high-λ run censored) or an upper bound
        (the low-λ run censored).
    both_censored : list of int
        Seeds with both runs censored: entered as 0 (the registered statistic), which bounds the
        difference in neither direction; the report lists them.
    mean, ci_low, ci_high : float or None
        Mean over seeds and its 95% Student-t interval (None below 2 seeds).
    """

    seeds: list[int]
    diffs: list[float]
    lower_bounds: list[int]
    upper_bounds: list[int]
    both_censored: list[int]
    mean: float | None
    ci_low: float | None
    ci_high: float | None

    @property
    def n(self) -> int:
        """Independent units behind the mean: the contributing seeds."""
        return len(self.seeds)


def _epoch(c: SeedCell) -> int:
    return int(c.grok_epoch if c.status == "grokked" else c.reached)


def paired_difference(low: list[SeedCell], high: list[SeedCell]) -> PairedDifference:
    """The claim's statistic from the cells of the low-λ and the high-λ row (module docstring).

    Parameters
    ----------
    low, high : list of SeedCell
        The two rows (:func:`bumps.modadd.ablation.study_cells`); seeds are matched by index.
    """
    from bumps.stats import t_interval

    by_seed = {c.seed: c for c in high}
    seeds, diffs, lower, upper, both = [], [], [], [], []
    for a in low:
        b = by_seed.get(a.seed)
        if b is None or not (a.finished and b.finished):
            continue
        seeds.append(a.seed)
        diffs.append(math.log(_epoch(b)) - math.log(_epoch(a)))
        if b.status == "censored" and a.status != "censored":
            lower.append(a.seed)
        if a.status == "censored" and b.status != "censored":
            upper.append(a.seed)
        if a.status == b.status == "censored":
            both.append(a.seed)
    mean = lo = hi = None
    if len(diffs) >= 2:
        mean, lo, hi = t_interval(diffs)
    return PairedDifference(seeds, diffs, lower, upper, both, mean, lo, hi)


def row_summary(cells: list[SeedCell]) -> dict:
    """One weight decay's cells: per-seed text, grokked count, geometric mean of the grokked epochs."""
    grokked = [c.grok_epoch for c in cells if c.status == "grokked"]
    return dict(
        cells=[c.text() for c in cells],
        grokked=len(grokked),
        finished=sum(c.finished for c in cells),
        geo_mean=float(np.exp(np.mean(np.log(grokked)))) if grokked else None,
    )


def judge_wd(diff: PairedDifference):
    """The WD row of the registry judged on ``diff`` (None when under 2 seeds have both runs)."""
    from bumps import registry

    entry = registry.load("modadd")["WD"]
    if diff.mean is None:
        return entry, None
    return entry, entry.judge((diff.mean, diff.ci_low, diff.ci_high), diff.n)


def report_text(cells: dict[str, list[SeedCell]], diff: PairedDifference, claim, entry, meta: dict) -> str:
    """The Markdown report."""
    lines = [
        "# Seed 003's weight-decay claim: grok epoch against weight decay",
        "",
        f"Generated by `{meta['command']}` (ledger `{meta['ledger']}`). Nanda preset, p = 113, model and "
        f"split seed = seed index, budget {meta['budget']} epochs, grok = first evaluation (every 100 epochs) "
        "with train and test accuracy >= 99%; `>N`: censored at N (`(training)`: still running).",
        "",
        "| weight decay | " + " | ".join(f"seed {c.seed}" for c in next(iter(cells.values()))) + " | geometric mean |",
        "|---|" + "---|" * (len(next(iter(cells.values()))) + 1),
    ]
    for v, cs in cells.items():
        s = row_summary(cs)
        gm = "–" if s["geo_mean"] is None else f"{s['geo_mean']:.0f} ({s['grokked']} grokked)"
        lines.append(f"| {v[2:]} | " + " | ".join(s["cells"]) + f" | {gm} |")
    lines += ["", f"**Claim WD** ({entry.statement}) — rule {entry.status}: {entry.statistic}.", ""]
    if claim is None:
        lines.append(f"Not measured yet: {diff.n} seed(s) have both runs finished (2 needed).")
    else:
        per = ", ".join(f"seed {s}: {d:+.3f}" for s, d in zip(diff.seeds, diff.diffs, strict=True))
        lines.append(
            f"log(grok at {HIGH:g}) − log(grok at {LOW:g}) = {claim.value:+.3f} [{claim.ci_low:+.3f}, "
            f"{claim.ci_high:+.3f}] over n = {claim.n_seeds} seeds ({per}); as a ratio of grok epochs "
            f"{math.exp(claim.value):.3g}x [{math.exp(claim.ci_low):.3g}, {math.exp(claim.ci_high):.3g}]. "
            f"Rule: {claim.rule}. **Verdict: {claim.verdict}.**"
        )
        if diff.lower_bounds:
            lines.append(
                f"Seeds {diff.lower_bounds}: the λ = {HIGH:g} run is censored, so the difference is a lower bound."
            )
        if diff.upper_bounds:
            lines.append(
                f"Seeds {diff.upper_bounds}: the λ = {LOW:g} run is censored, so the difference is an upper bound."
            )
        if diff.both_censored:
            lines.append(f"Seeds {diff.both_censored}: both runs censored, entered as 0, a bound in neither direction.")
        if diff.lower_bounds and diff.upper_bounds:
            lines.append("Bounds point both ways: the mean mixes them; read the verdict with the seeds above.")
        lines += ["", sources_line(claim)]
    if meta.get("remaining_command"):
        lines += ["", f"Not finished: continue with `{meta['remaining_command']}`."]
    return "\n".join(lines) + "\n"


def remaining_command(jobs: list[str], epochs: int, ledger: Path, report: Path) -> str:
    """One shell loop training the unfinished ``λ:seed`` jobs one run per invocation (each reaches the ledger
    when it finishes), then rewriting the report; two such loops over halves of ``jobs`` share 2 cores."""
    return (
        f"for job in {' '.join(jobs)}; do bumps wd-grid --weight-decays ${{job%:*}} --seeds ${{job#*:}} "
        f"--epochs {epochs} --threads 1 --ledger {ledger.as_posix()} --report runs/wd_grid/part; done; "
        f"bumps wd-grid --no-train --ledger {ledger.as_posix()} --report {report.as_posix()}"
    )


def sources_line(claim) -> str:
    """Which of seed 003's two statements the measured direction supports."""
    if claim.verdict == "supported":
        return "The numbers support seed 003's text (higher weight decay groks sooner), not its appendix numbers."
    if claim.verdict == "not supported":
        return "The numbers support seed 003's appendix numbers (higher weight decay groks later), not its text."
    return "The interval includes 0 (no difference): the numbers decide neither of seed 003's statements."


def write_report(cells, diff, claim, entry, meta: dict, report: Path) -> list[Path]:
    """Write ``report``.md and .json atomically; returns the paths."""
    from bumps.io.runfile import write_report_files

    data = dict(
        meta=meta,
        rows=[
            dict(variant=v, weight_decay=float(v[2:]), **row_summary(cs), seeds=[asdict(c) for c in cs])
            for v, cs in cells.items()
        ],
        paired=asdict(diff) | {"n": diff.n},
        claim=None if claim is None else asdict(claim) | {"registry_status": entry.status},
        reading="" if claim is None else sources_line(claim),
    )
    return write_report_files(report, report_text(cells, diff, claim, entry, meta), data)
