"""Seed 001's stencil ablation over seeds: grok epoch per variant, paired speedups with t-intervals, verdicts.

Every variant is the preset's configuration plus one change; seed index s trains model-init seed
``preset seed + s`` (so index 0 is the page's seed 999 for tl-demo) on the preset's fixed data split,
early-stopped at grok (``stop_after_grok=0, stop_on="grok"``), evaluated every 10 epochs. Grok = first evaluation with
train and test accuracy >= 99%; a run that never groks within ``epochs`` is *censored* (its grok epoch is
only known to exceed the budget) and is reported as such, never as a number.

Variants: ``baseline``; the stencils ``k0 km1 kp1 km1_k0 km1_kp1 k0_kp1 full`` ({0}, {-1}, {+1}, {-1,0},
{-1,+1}, {0,+1}, {-1,0,+1}) at lambda = ``probe_weight`` (0.1); the controls that separate "introspection"
from plain regularisation: ``frozen`` (the full stencil with the initial random probes, never trained),
``frozen-matched`` (the same frozen probes, penalty rescaled every epoch to a shadow trained probe's:
:mod:`bumps.modadd.probe`), ``hidden-l2`` (lambda * mean mlp_hidden^2 at lambda = ``probe_weight``) and
``hidden-l2-X`` (the same at lambda = X, e.g. ``hidden-l2-0.01``, ``hidden-l2-1``), ``wdX`` (the baseline
with weight decay X instead of 1.0, e.g. ``wd2``, ``wd1.5``).

Finished runs are kept in a ledger (:mod:`bumps.modadd.ledger`); a (variant, seed) whose config hash is
there is not trained again, and the tables are built from the ledger plus the run files of runs still
in progress.

Statistics (:func:`compare`): a speedup is the geometric mean over seeds of baseline_s / variant_s
(paired by seed, only seeds where both grokked) with a Student-t 95% interval on the log ratios
(:func:`bumps.stats.ratio_interval`) and an exact two-sided sign-flip p-value of "no speedup"
(:func:`bumps.stats.sign_flip_p`; with n pairs the smallest possible p is 2/2^n). Pairs with a censored or
unfinished member are counted, never used as numbers. Every page claim is decided by a rule fixed here
(:data:`CLAIMS`) before any run; a rule that the intervals cannot decide gives "inconclusive".
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from bumps.errors import BumpsError
from bumps.io.png import save_png
from bumps.io.provenance import settings_hash, stamp_markdown, stamp_png
from bumps.io.runfile import atomic_write, load_run
from bumps.modadd.ledger import (
    TRANSITION_FROM_ACC,
    TRANSITION_PAD,
    Ledger,
    RunRecord,
    SpikeCheck,
    record_from_run,
)
from bumps.modadd.model import PRESETS, ModAddConfig, shape_key
from bumps.modadd.train import step_elements, train_many
from bumps.stats import STAT, Clause, Condition, Rule, ratio_interval, sign_flip_p, t_interval
from bumps.threads import threads_for

STENCILS = {
    "k0": (0,),
    "km1": (-1,),
    "kp1": (1,),
    "km1_k0": (-1, 0),
    "km1_kp1": (-1, 1),
    "k0_kp1": (0, 1),
    "full": (-1, 0, 1),
}
CONTROLS = {
    "frozen": dict(probe_stencil=(-1, 0, 1), probe_kind="frozen"),
    "hidden-l2": dict(probe_kind="hidden-l2"),
    "wd2": dict(weight_decay=2.0),
}
# The study of issue 21: every page number and every control (hidden-l2 is lambda = probe_weight = 0.1).
DEFAULT_VARIANTS = (
    "baseline",
    *STENCILS,
    "frozen",
    "frozen-matched",
    "hidden-l2-0.01",
    "hidden-l2",
    "hidden-l2-1",
    "wd2",
    "wd1.5",
)
DEFAULT_SEEDS = (0, 1, 2)
# Seed 001's numbers (one seed, tl-demo, p = 113): baseline grok epoch and speedups over it.
PAGE_BASELINE_EPOCH = 5760
PAGE_SPEEDUP = {"full": 3.00, "k0": 2.55, "km1": 1.52, "km1_kp1": 3.08, "km1_k0": 2.88}
_NUMBER = r"(\d+(?:\.\d+)?(?:e-?\d+)?)"


def variant_overrides(name: str, probe_weight: float = 0.1) -> dict:
    """ModAddConfig overrides for one variant name.

    Parameters
    ----------
    name : str
        ``baseline``, a stencil (:data:`STENCILS`), ``frozen``, ``frozen-matched``, ``hidden-l2``,
        ``hidden-l2-X`` (lambda X) or ``wdX`` (weight decay X).
    probe_weight : float, default 0.1
        Lambda of the stencils, ``frozen``, ``frozen-matched`` and ``hidden-l2``.

    Returns
    -------
    dict
        The fields to set on the preset's config.

    Raises
    ------
    BumpsError
        For an unknown name.
    """
    if name == "baseline":
        return {}
    if name in STENCILS:
        return dict(probe_stencil=STENCILS[name], probe_weight=probe_weight)
    if name in ("frozen", "hidden-l2"):
        return {**CONTROLS[name], "probe_weight": probe_weight}
    if name == "frozen-matched":
        return dict(probe_stencil=(-1, 0, 1), probe_kind="frozen-matched", probe_weight=probe_weight)
    m = re.fullmatch(r"hidden-l2-" + _NUMBER, name)
    if m:
        return dict(probe_kind="hidden-l2", probe_weight=float(m.group(1)))
    m = re.fullmatch(r"wd" + _NUMBER, name)
    if m:
        return dict(weight_decay=float(m.group(1)))
    raise BumpsError(
        f"unknown variant {name!r}; choose from {', '.join(DEFAULT_VARIANTS)} (or wdX, hidden-l2-X, e.g. wd3)"
    )


def parse_list(text: str, what: str, cast=str) -> list:
    """A comma-separated CLI list.

    Parameters
    ----------
    text : str
        E.g. ``"0,1,2"``.
    what : str
        The flag's name, for messages.
    cast : callable, default str
        Applied to every item.

    Raises
    ------
    BumpsError
        For an empty list, an item ``cast`` refuses, or an item given twice.
    """
    items = [t.strip() for t in text.split(",") if t.strip()]
    try:
        items = [cast(t) for t in items]
    except ValueError:
        raise BumpsError(f"--{what} must be a comma-separated list (got {text!r}), e.g. --{what} 0,1,2") from None
    if not items:
        raise BumpsError(f"--{what} is empty; give e.g. --{what} 0,1,2")
    if len(set(items)) != len(items):
        raise BumpsError(f"--{what} lists an entry twice ({text}); give each once")
    return items


def ablation_configs(
    preset: str,
    p: int | None,
    variants: list[str],
    seeds: list[int],
    epochs: int | None = None,
    probe_weight: float = 0.1,
    **overrides,
) -> dict[tuple[str, int], ModAddConfig]:
    """The ModAddConfig of every (variant, seed index).

    Parameters
    ----------
    preset : str
        The base preset.
    p : int or None
        The modulus (None: the preset's).
    variants : list of str
        Variant names (:func:`variant_overrides`).
    seeds : list of int
        Seed indices (model seed = preset seed + index).
    epochs : int, optional
        The epoch budget (None: the preset's).
    probe_weight : float, default 0.1
        Lambda of the probe variants.
    **overrides
        Settings for every run (e.g. ``d_model``; None: not given).
    """

    if preset not in PRESETS:
        raise BumpsError(f"`preset` must be one of {', '.join(PRESETS)} (got {preset!r})")
    if any(s < 0 for s in seeds):
        raise BumpsError(f"`seeds` must be >= 0 (got {min(seeds)})")
    base_seed = PRESETS[preset]["seed"]
    out = {}
    for v in variants:
        vo = variant_overrides(v, probe_weight)
        for s in seeds:
            values = dict(
                p=p,
                epochs=epochs,
                eval_every=10,
                checkpoint_every=0,
                stop_after_grok=0,
                stop_on="grok",
                seed=base_seed + s,
                **overrides,
            )
            values.update(vo)
            cfg = ModAddConfig.from_preset(preset, **values)
            out[(v, s)] = cfg
    return out


def default_out_dir(preset: str, p: int, overrides: dict) -> Path:
    """Where the ablation's run files go unless told otherwise.

    Parameters
    ----------
    preset : str
        The base preset.
    p : int
        The modulus the runs use.
    overrides : dict
        Settings given for every run (epochs, train_frac, d_model, d_mlp, lr; None: not given).

    Returns
    -------
    pathlib.Path
        ``runs/probe_ablation/{preset}_p{p}``, with ``_{hash}`` (:func:`bumps.io.provenance.settings_hash` of
        the given overrides) when any is given, so that differently sized ablations never share run files.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    return Path("runs") / "probe_ablation" / (f"{preset}_p{p}" + (f"_{settings_hash(given)}" if given else ""))


def run_path(out_dir: str | Path, variant: str, seed: int) -> Path:
    """The run file of one (variant, seed index).

    Parameters
    ----------
    out_dir : str or Path
        The ablation's run folder.
    variant : str
        The variant name.
    seed : int
        The seed index.
    """
    return Path(out_dir) / f"{variant}_seed{seed}.pt"


def run_ablation(
    configs: dict,
    out_dir: str | Path,
    progress: Callable[[int, int], None] | None = None,
    max_members: int = 16,
    train: bool = True,
    threads: int | None = None,
    on_chunk: Callable[[dict], None] | None = None,
) -> dict[tuple[str, int], dict]:
    """Train every (variant, seed) of ``configs`` that is not finished yet, packed into ensembles.

    Parameters
    ----------
    configs : dict
        (variant, seed index) -> ModAddConfig; leave out what the ledger holds.
    out_dir : str or Path
        Run files (finished ones are reused, unfinished ones resumed).
    progress : callable, optional
        ``progress(done, total)`` in epochs summed over runs.
    max_members : int, default 16
        Ensemble size at most.
    train : bool, default True
        False: train nothing; return the run files that exist, finished or autosaved by a run still in
        progress.
    threads : int, optional
        Torch threads per ensemble (None or 0: :func:`bumps.threads.choose_threads`).
    on_chunk : callable, optional
        ``on_chunk(runs)`` with the run dicts of each ensemble as soon as it finishes (the ledger's hook).

    Returns
    -------
    dict
        (variant, seed index) -> run dict.
    """

    if not train:
        found = {k: run_path(out_dir, *k) for k in configs}
        runs = {k: load_run(f, kind="modadd") for k, f in found.items() if f.exists()}
        if not runs:
            raise BumpsError(f"no run files in {out_dir}; run without --no-train first")
        return runs
    keys = list(configs)
    groups: dict = {}
    for k in keys:
        groups.setdefault(shape_key(configs[k]), []).append(k)
    chunks = [g[i : i + max_members] for g in groups.values() for i in range(0, len(g), max_members)]
    total = sum(configs[k].epochs for k in keys)
    done_before = 0
    runs = {}
    for chunk in chunks:

        def report(done, _total, base=done_before, **_fields):
            if progress:
                progress(base + done, total)

        members = [configs[k] for k in chunk]
        with threads_for(step_elements(members), members[0].device, threads):
            results = train_many(members, [run_path(out_dir, *k) for k in chunk], resume="auto", progress=report)
        finished = dict(zip(chunk, results, strict=True))
        runs.update(finished)
        if on_chunk is not None:
            on_chunk(finished)
        done_before += sum(configs[k].epochs for k in chunk)
    return runs


# ---------------------------------------------------------------------------- the study: ledger + run files


def harvest(configs: dict, out_dir: str | Path, ledger: Ledger) -> tuple[list[RunRecord], dict[tuple[str, int], int]]:
    """Record finished run files the ledger lacks; return them and the epochs the unfinished ones reached.

    Parameters
    ----------
    configs : dict
        (variant, seed index) -> ModAddConfig.
    out_dir : str or Path
        The run folder.
    ledger : Ledger
        Records are appended to it (and its file) at once.

    Returns
    -------
    new : list of RunRecord
        The records added.
    unfinished : dict
        (variant, seed index) -> epochs done by an autosave (a run still in progress or interrupted).
    """
    new, unfinished = [], {}
    for key, cfg in configs.items():
        f = run_path(out_dir, *key)
        if ledger.find(cfg) is not None or not f.exists():
            continue
        run = load_run(f, kind="modadd")
        if run["config"].get("final", True):
            new.append(record_from_run(*key, cfg, run))
        else:
            unfinished[key] = int(run["config"]["epochs_done"])
        del run  # hundreds of MB at p = 113
    ledger.add(new)
    return new, unfinished


def train_study(
    configs: dict,
    out_dir: str | Path,
    ledger: Ledger,
    progress: Callable[[int, int], None] | None = None,
    threads: int | None = None,
    max_members: int = 16,
) -> list[RunRecord]:
    """Train what the ledger lacks; each finished ensemble's records go to the ledger at once.

    Parameters
    ----------
    configs : dict
        (variant, seed index) -> ModAddConfig.
    out_dir : str or Path
        Run files.
    ledger : Ledger
        Skips what it holds; receives the new records.
    progress : callable, optional
        As :func:`run_ablation`.
    threads : int, optional
        As :func:`run_ablation`.
    max_members : int, default 16
        As :func:`run_ablation`.

    Returns
    -------
    list of RunRecord
        The records added.
    """
    todo = {k: c for k, c in configs.items() if ledger.find(c) is None}
    added: list[RunRecord] = []

    def record(runs: dict) -> None:
        recs = [record_from_run(*k, configs[k], r) for k, r in runs.items() if r["config"].get("final", True)]
        added.extend(ledger.add(recs))

    if todo:
        run_ablation(todo, out_dir, progress=progress, max_members=max_members, threads=threads, on_chunk=record)
    return added


@dataclass
class Study:
    """The ablation's state: its table, its claims and the ledger records behind them.

    Parameters
    ----------
    cells : dict
        Variant -> SeedCell per seed index (:func:`study_cells`).
    rows : list of VariantRow
        The variant table.
    claims : list of ClaimResult
        The claims table.
    records : list of RunRecord
        The ledger's records of the table's (variant, seed)s.
    ledger : Ledger
        The ledger.
    """

    cells: dict
    rows: list
    claims: list
    records: list
    ledger: Ledger


def run_study(
    configs: dict[tuple[str, int], ModAddConfig],
    out_dir: str | Path,
    ledger_path: str | Path,
    *,
    train: bool = True,
    threads: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    import_reports: tuple = (),
    echo: Callable[[str], None] = print,
) -> Study:
    """Import old reports, record finished run files, train what the ledger lacks, build the tables.

    Parameters
    ----------
    configs : dict
        (variant, seed index) -> ModAddConfig, in table order.
    out_dir : str or Path
        Run files.
    ledger_path : str or Path
        The ledger file (:mod:`bumps.modadd.ledger`).
    train : bool, default True
        False: train nothing; runs in progress are censored at the epoch their autosave reached.
    threads : int, optional
        Torch threads per ensemble.
    progress : callable, optional
        As :func:`run_ablation`.
    import_reports : tuple of path, default ()
        Reports written before the ledger to seed it from (:func:`bumps.modadd.ledger.import_report`).
    echo : callable, default print
        Where one-line notes go (imports, refusals).

    Returns
    -------
    Study

    Raises
    ------
    BumpsError
        With ``train=False`` when there is nothing to report.
    """
    from bumps.modadd.ledger import import_report

    ledger = Ledger.load(ledger_path)
    for path in import_reports:
        recs, refused = import_report(path, configs)
        added = ledger.add(recs)
        echo(f"{path}: imported {len(added)} run(s) into {ledger.path} ({len(recs) - len(added)} there already)")
        for line in refused:
            echo(f"{path}: refused {line}")
    new, unfinished = harvest(configs, out_dir, ledger)
    if new:
        echo(f"recorded {len(new)} finished run file(s) of {out_dir} in {ledger.path}")
    if train:
        train_study(configs, out_dir, ledger, progress=progress, threads=threads)
    cells = study_cells(configs, ledger, unfinished)
    if not train and all(c.status == NOT_RUN for cs in cells.values() for c in cs):
        raise BumpsError(f"no run files in {out_dir} and no records in {ledger.path}; run without --no-train first")
    records = [r for r in (ledger.find(c) for c in configs.values()) if r is not None]
    return Study(cells, variant_rows(cells), judge_claims(cells), list({id(r): r for r in records}.values()), ledger)


def remaining_commands(base: str, todo: dict[str, list[int]], ledger: str | Path) -> list[str]:
    """Shell lines that train what is left in two one-thread processes, one run at a time, then wait.

    Each process trains its (variant, seed) runs one after another, each as its own invocation, so every
    run reaches the ledger when it finishes (one probe run fits a session; an ensemble of three may not,
    and an unfinished run's file does not survive a fresh checkout). The controls (every variant but the stencils) come
    first, since they decide the page's interpretation, then the stencils, each seed by seed; the runs
    alternate between the two processes in that order.

    Parameters
    ----------
    base : str
        ``bumps probe-ablation`` with the study's flags but ``--seeds``, ``--variants``, ``--report``.
    todo : dict
        Variant -> seeds left (:func:`remaining`).
    ledger : str or Path
        The ledger both processes append to.

    Notes
    -----
    Each invocation writes its own partial report, ``runs/probe_ablation/part/{variant}_{seed}``: a report
    records the settings it was made from, and one path shared by invocations of other variants or seeds
    would be refused as "made from other settings".
    """
    pairs = sorted(((v, s) for v, ss in todo.items() for s in ss), key=lambda vs: (vs[0] in STENCILS, vs[1], vs[0]))
    jobs = [f"{v}:{s}" for v, s in pairs]
    lines = []
    for i in range(2):
        mine = jobs[i::2]
        if not mine:
            continue
        lines.append(
            f"( for job in {' '.join(mine)}; do {base} --seeds ${{job#*:}} --variants ${{job%:*}} --threads 1 "
            f"--ledger {Path(ledger).as_posix()} --report runs/probe_ablation/part/${{job%:*}}_${{job#*:}}; done ) "
            f"> runs/probe_ablation/part{i + 1}.log 2>&1 &"
        )
    return ["mkdir -p runs/probe_ablation/part", *lines, "wait"]


# ---------------------------------------------------------------------------- tables


GROKKED, CENSORED, TRAINING, NOT_RUN = "grokked", "censored", "training", "not run"


@dataclass
class SeedCell:
    """One (variant, seed index) of the table.

    Parameters
    ----------
    seed : int
        The seed index.
    status : {"grokked", "censored", "training", "not run"}
        Finished and grokked, finished without grokking (censored at ``reached``), still training (an
        autosave: censored at the epoch ``reached``), or nothing yet.
    grok_epoch : int or None
        When grokked.
    reached : int or None
        The budget (censored) or the epoch reached (training).
    spike : SpikeCheck or None
        The ledger's loss-spike check.
    """

    seed: int
    status: str
    grok_epoch: int | None = None
    reached: int | None = None
    spike: SpikeCheck | None = None

    @property
    def finished(self) -> bool:
        """Grokked or censored at its budget."""
        return self.status in (GROKKED, CENSORED)

    def text(self) -> str:
        """``3040``, ``>25000``, ``>1200 (training)`` or ``–``."""
        if self.status == GROKKED:
            return str(self.grok_epoch)
        if self.status == CENSORED:
            return f">{self.reached}"
        if self.status == TRAINING:
            return f">{self.reached} (training)"
        return "–"


@dataclass
class Comparison:
    """A paired ratio of grok epochs, ``numerator / denominator`` per seed (e.g. baseline/variant = speedup).

    Parameters
    ----------
    ratio, low, high : float or None
        Geometric mean and its 95% t-interval (:func:`bumps.stats.ratio_interval`); the interval is None
        below 2 pairs, all three when no pair.
    n : int
        Pairs used (both grokked).
    censored : int
        Pairs with a censored or still-training member (counted, not used).
    p_value : float or None
        Exact two-sided sign-flip p of "ratio = 1".
    seeds, per_seed : list
        The seeds used and their ratios.
    """

    ratio: float | None
    low: float | None
    high: float | None
    n: int
    censored: int
    p_value: float | None
    seeds: list[int] = field(default_factory=list)
    per_seed: list[float] = field(default_factory=list)

    def triple(self) -> tuple[float | None, float | None, float | None]:
        """``(ratio, low, high)`` for :meth:`bumps.stats.Rule.decide`."""
        return (self.ratio, self.low, self.high)

    def text(self, unit: str = "×", digits: int = 2) -> str:
        """``3.52× [3.01, 4.12] (n = 3)``, with the pairs censored or still training; ``–`` without pairs.

        Parameters
        ----------
        unit : str, default "×"
            After each number.
        digits : int, default 2
            Decimals.
        """
        if self.ratio is None:
            out = "–"
        elif self.low is None:
            out = f"{self.ratio:.{digits}f}{unit} (n = 1, no interval)"
        else:
            out = f"{self.ratio:.{digits}f}{unit} [{self.low:.{digits}f}, {self.high:.{digits}f}] (n = {self.n})"
        return out + (f", {self.censored} censored or training" if self.censored else "")


def _clean(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def compare(numerator: list[SeedCell], denominator: list[SeedCell]) -> Comparison:
    """The paired ratio numerator/denominator of grok epochs over the seeds both have.

    Parameters
    ----------
    numerator, denominator : list of SeedCell
        One cell per seed of two variants.

    Returns
    -------
    Comparison
    """
    den = {c.seed: c for c in denominator}
    pairs = [(c, den[c.seed]) for c in numerator if c.seed in den]
    used = [(a, b) for a, b in pairs if a.status == GROKKED and b.status == GROKKED and b.grok_epoch > 0]
    censored = sum(
        1 for a, b in pairs if NOT_RUN not in (a.status, b.status) and (a.status != GROKKED or b.status != GROKKED)
    )
    if not used:
        return Comparison(None, None, None, 0, censored, None)
    num = np.array([a.grok_epoch for a, _ in used], dtype=float)
    dn = np.array([b.grok_epoch for _, b in used], dtype=float)
    logs = np.log(num) - np.log(dn)
    if len(used) >= 2:
        ratio, lo, hi = ratio_interval(num, dn)
    else:
        ratio, lo, hi = float(np.exp(logs[0])), None, None
    return Comparison(
        _clean(ratio),
        _clean(lo),
        _clean(hi),
        len(used),
        censored,
        float(sign_flip_p(logs)),
        [a.seed for a, _ in used],
        [float(x) for x in np.exp(logs)],
    )


def geometric_epochs(cells: list[SeedCell]) -> Comparison:
    """Geometric mean grok epoch with its t-interval on log epochs (the baseline's epoch claim).

    Parameters
    ----------
    cells : list of SeedCell
        One variant's cells.
    """
    used = [c for c in cells if c.status == GROKKED and c.grok_epoch > 0]
    censored = sum(1 for c in cells if c.status in (CENSORED, TRAINING))
    if not used:
        return Comparison(None, None, None, 0, censored, None)
    logs = np.log([c.grok_epoch for c in used])
    if len(used) >= 2:
        m, lo, hi = (math.exp(x) for x in t_interval(logs))
    else:
        m, lo, hi = math.exp(logs[0]), None, None
    return Comparison(_clean(m), _clean(lo), _clean(hi), len(used), censored, None, [c.seed for c in used])


@dataclass
class SpikeCount:
    """How many seeds of a variant spiked during the transition.

    Parameters
    ----------
    spiked, train, test : int
        Seeds whose train or test loss spiked (either; the train loss; the test loss).
    checked : int
        Seeds with a check (grokked, recorded from their run file).
    unchecked : int
        Grokked seeds without curves (seeded from a report) or not finished.
    """

    spiked: int = 0
    train: int = 0
    test: int = 0
    checked: int = 0
    unchecked: int = 0

    def text(self) -> str:
        """E.g. ``1 of 3 (train 1, test 0)``, ``–`` when none checked."""
        if not self.checked:
            return "–" if not self.unchecked else f"no curves ({self.unchecked})"
        out = f"{self.spiked} of {self.checked} (train {self.train}, test {self.test})"
        return out + (f"; {self.unchecked} without curves" if self.unchecked else "")


@dataclass
class VariantRow:
    """One row of the variant table.

    Parameters
    ----------
    variant, what : str
        The name and what it is.
    cells : list of SeedCell
        One per seed index.
    median : float or None
        Median grok epoch of the finished seeds (censored as +inf); None when censored or none finished.
    speedup : Comparison or None
        baseline/variant (None for the baseline or without a baseline in the table).
    page_speedup : float or None
        The page's number.
    spikes : SpikeCount
        The loss-spike counts.
    """

    variant: str
    what: str
    cells: list[SeedCell]
    median: float | None
    speedup: Comparison | None
    page_speedup: float | None
    spikes: SpikeCount


def _median(cells: list[SeedCell]) -> float | None:
    done = [c for c in cells if c.finished]
    if not done:
        return None
    med = float(np.median([c.grok_epoch if c.status == GROKKED else math.inf for c in done]))
    return med if math.isfinite(med) else None


def describe_variant(name: str) -> str:
    """What a variant is, in a few words.

    Parameters
    ----------
    name : str
        A variant name.
    """
    if name == "baseline":
        return "no probe"
    if name in STENCILS:
        return "stencil {" + ",".join(f"{k:+d}" if k else "0" for k in STENCILS[name]) + "}"
    if name == "frozen":
        return "frozen random probe, stencil {-1,0,+1}"
    if name == "frozen-matched":
        return "frozen random probe, penalty size-matched to a trained probe's, stencil {-1,0,+1}"
    vo = variant_overrides(name)
    if vo.get("probe_kind") == "hidden-l2":
        return "λ·mean(mlp_hidden²)" + ("" if name == "hidden-l2" else f", λ = {vo['probe_weight']:g}")
    return f"baseline, weight decay {vo['weight_decay']:g}"


def study_cells(
    configs: dict[tuple[str, int], ModAddConfig], ledger: Ledger, unfinished: dict | None = None
) -> dict[str, list[SeedCell]]:
    """Every (variant, seed index) as a cell, from the ledger and the unfinished runs' dicts.

    Parameters
    ----------
    configs : dict
        (variant, seed index) -> ModAddConfig, in table order.
    ledger : Ledger
        Finished runs (found by config hash).
    unfinished : dict, optional
        (variant, seed index) -> epochs done by a run still in progress.
    """
    unfinished = unfinished or {}
    cells: dict[str, list[SeedCell]] = {}
    for (v, s), cfg in configs.items():
        rec = ledger.find(cfg)
        if rec is not None:
            cell = SeedCell(
                s,
                CENSORED if rec.censored else GROKKED,
                rec.grok_epoch,
                rec.budget if rec.censored else None,
                rec.spike,
            )
        elif (v, s) in unfinished:
            cell = SeedCell(s, TRAINING, None, int(unfinished[(v, s)]))
        else:
            cell = SeedCell(s, NOT_RUN)
        cells.setdefault(v, []).append(cell)
    return cells


def variant_rows(cells: dict[str, list[SeedCell]]) -> list[VariantRow]:
    """The variant table.

    Parameters
    ----------
    cells : dict
        Variant -> its cells (:func:`study_cells`).
    """
    base = cells.get("baseline")
    rows = []
    for v, cs in cells.items():
        spikes = SpikeCount()
        for c in cs:
            if c.status == GROKKED and c.spike is not None:
                spikes.checked += 1
                spikes.spiked += c.spike.spiked
                spikes.train += c.spike.train_spiked
                spikes.test += c.spike.test_spiked
            elif c.status == GROKKED:
                spikes.unchecked += 1
        speedup = compare(base, cs) if base is not None and v != "baseline" else None
        rows.append(VariantRow(v, describe_variant(v), cs, _median(cs), speedup, PAGE_SPEEDUP.get(v), spikes))
    return rows


# ---------------------------------------------------------------------------- verdict rules (fixed before data)

PAGE_TOLERANCE = 1.25
"""A page number is "supported" when our 95% interval contains it and lies within [page/1.25, page·1.25]
(the data pin it to ±25%); "not supported" when the interval excludes it; else "inconclusive"."""
SAME_SPEEDUP_MARGIN = 1.10
"""Two grok epochs within a factor 1.10 count as "the same speedup" (the interpretation rows)."""
REGULARISERS = ("wd2", "wd1.5", "hidden-l2-0.01", "hidden-l2", "hidden-l2-1")


def page_number_rule(page: float) -> Rule:
    """The rule for one of the page's numbers (:data:`PAGE_TOLERANCE`).

    Parameters
    ----------
    page : float
        The page's value.
    """
    return Rule(
        Condition(
            (
                Clause(STAT, "low", "<=", page),
                Clause(STAT, "high", ">=", page),
                Clause(STAT, "low", ">=", round(page / PAGE_TOLERANCE, 4)),
                Clause(STAT, "high", "<=", round(page * PAGE_TOLERANCE, 4)),
            )
        ),
        Condition((Clause(STAT, "low", ">", page), Clause(STAT, "high", "<", page)), combine="any"),
    )


def _beats(names: tuple[str, ...], margin: float, note: str) -> Rule:
    """Supported if every ratio's CI low > margin; not supported if any ratio's CI high < margin."""
    return Rule(
        Condition(tuple(Clause(n, "low", ">", margin) for n in names)),
        Condition(tuple(Clause(n, "high", "<", margin) for n in names), combine="any"),
        names={n: n for n in names} if names != (STAT,) else {},
        note=note,
    )


@dataclass(frozen=True)
class PageClaim:
    """One claim of the page and how it is decided.

    Parameters
    ----------
    id : str
        Short id.
    statement : str
        The claim.
    page : str
        The page's number or wording.
    stats : dict
        Statistic name -> (numerator variant, denominator variant) of a paired grok-epoch ratio
        (:func:`compare`); denominator None: the numerator's geometric mean epoch (:func:`geometric_epochs`).
    rule : Rule
        Decides the verdict from the statistics' (value, low, high).
    context : bool, default False
        A row that informs the reading but is not a claim of the page.
    """

    id: str
    statement: str
    page: str
    stats: dict
    rule: Rule
    context: bool = False

    def variants(self) -> list[str]:
        """Every variant the claim needs."""
        return list(dict.fromkeys(v for pair in self.stats.values() for v in pair if v is not None))


CLAIMS: tuple[PageClaim, ...] = (
    PageClaim(
        "baseline-epoch",
        "the baseline groks at 5,760 epochs",
        f"{PAGE_BASELINE_EPOCH} epochs",
        {STAT: ("baseline", None)},
        page_number_rule(PAGE_BASELINE_EPOCH),
    ),
    *(
        PageClaim(
            f"speedup-{v}",
            f"{describe_variant(v)} groks {x:.2f}× sooner than the baseline",
            f"{x:.2f}×",
            {STAT: ("baseline", v)},
            page_number_rule(x),
        )
        for v, x in PAGE_SPEEDUP.items()
    ),
    PageClaim(
        "fastest-pair",
        "the fastest pair is {-1,+1}",
        "{-1,+1} 3.08× > {-1,0} 2.88×; {0,+1} not given",
        {"km1_k0 ÷ km1_kp1": ("km1_k0", "km1_kp1"), "k0_kp1 ÷ km1_kp1": ("k0_kp1", "km1_kp1")},
        _beats(("km1_k0 ÷ km1_kp1", "k0_kp1 ÷ km1_kp1"), 1.0, "grok-epoch ratio other pair ÷ {-1,+1}, paired"),
    ),
    PageClaim(
        "add-km1-to-k0",
        "adding k=-1 to k=0 speeds grokking up (2.55× → 2.88×)",
        "2.88 ÷ 2.55 = 1.13×",
        {STAT: ("k0", "km1_k0")},
        _beats((STAT,), 1.0, "grok-epoch ratio k0 ÷ km1_k0, paired"),
    ),
    PageClaim(
        "introspection",
        "the speedup needs a trained probe: a frozen random probe with a penalty of the same size is slower",
        "'not just regularization … geometrically consistent'",
        {STAT: ("frozen-matched", "full")},
        _beats(
            (STAT,),
            SAME_SPEEDUP_MARGIN,
            "grok-epoch ratio frozen-matched ÷ full, paired; within 1.1 counts as the same speedup",
        ),
    ),
    PageClaim(
        "not-regularisation",
        "the speedup is not plain regularisation: no stronger weight decay or activation penalty gives it",
        "'the constraint is not just regularization'",
        {r: (r, "full") for r in REGULARISERS},
        _beats(REGULARISERS, SAME_SPEEDUP_MARGIN, "grok-epoch ratio control ÷ full, paired; within 1.1 is the same"),
    ),
    PageClaim(
        "frozen-unmatched",
        "(context) a frozen random probe at the same λ, its penalty not matched, is slower than the trained one",
        "–",
        {STAT: ("frozen", "full")},
        _beats((STAT,), SAME_SPEEDUP_MARGIN, "grok-epoch ratio frozen ÷ full, paired; within 1.1 is the same"),
        context=True,
    ),
)


@dataclass
class ClaimResult:
    """One row of the claims table.

    Parameters
    ----------
    id, statement, page : str
        As :class:`PageClaim`.
    measured : dict
        Statistic name -> Comparison.
    rule : str
        The rule's prose.
    verdict : str
        "supported", "not supported", "inconclusive", or "not run yet" (no statistic has a value).
    waiting : list of str
        Variants of the claim with a seed not finished yet.
    context : bool
        Not a claim of the page.
    """

    id: str
    statement: str
    page: str
    measured: dict
    rule: str
    verdict: str
    waiting: list[str]
    context: bool = False


def judge_claims(cells: dict[str, list[SeedCell]], claims: tuple[PageClaim, ...] = CLAIMS) -> list[ClaimResult]:
    """Decide every claim whose variants are in the table.

    Parameters
    ----------
    cells : dict
        Variant -> cells (:func:`study_cells`).
    claims : tuple of PageClaim, default CLAIMS
        The claims.

    Returns
    -------
    list of ClaimResult
        A claim needing a variant that is not in the table is left out.
    """
    out = []
    for c in claims:
        if any(v not in cells for v in c.variants()):
            continue
        measured = {
            name: geometric_epochs(cells[a]) if b is None else compare(cells[a], cells[b])
            for name, (a, b) in c.stats.items()
        }
        verdict = c.rule.decide({name: m.triple() for name, m in measured.items()})
        waiting = [v for v in c.variants() if not all(x.finished for x in cells[v])]
        if verdict == "inconclusive" and all(m.ratio is None for m in measured.values()):
            verdict = "not run yet"
        out.append(ClaimResult(c.id, c.statement, c.page, measured, c.rule.describe(), verdict, waiting, c.context))
    return out


# ---------------------------------------------------------------------------- report


def t_factor(n: int) -> float:
    """The 97.5% Student-t quantile with n − 1 degrees of freedom (4.30 at n = 3).

    Parameters
    ----------
    n : int
        Pairs, at least 2.
    """
    from scipy.stats import t as student_t

    return float(student_t.ppf(0.975, n - 1))


def remaining(cells: dict[str, list[SeedCell]]) -> dict[str, list[int]]:
    """Variant -> seed indices not finished (training or not run).

    Parameters
    ----------
    cells : dict
        Variant -> cells.
    """
    out = {v: [c.seed for c in cs if not c.finished] for v, cs in cells.items()}
    return {v: s for v, s in out.items() if s}


def split_two(todo: dict[str, list[int]]) -> list[list[str]]:
    """Variants split over two processes, disjoint, balancing the number of runs (first fit by size).

    Parameters
    ----------
    todo : dict
        Variant -> seeds left (:func:`remaining`).
    """
    parts: list[list[str]] = [[], []]
    load = [0, 0]
    for v in sorted(todo, key=lambda v: -len(todo[v])):
        i = 0 if load[0] <= load[1] else 1
        parts[i].append(v)
        load[i] += len(todo[v])
    return [p for p in parts if p]


def _render_claims(claims: list[ClaimResult]) -> list[str]:
    lines = [
        "| claim | page | ours: grok-epoch ratio [95% t-interval] | rule | verdict |",
        "|---|---|---|---|---|",
    ]
    for c in claims:
        if list(c.measured) == [STAT]:
            epochs = c.id == "baseline-epoch"
            ours = c.measured[STAT].text(" epochs" if epochs else "×", 0 if epochs else 2)
        else:
            ours = "; ".join(f"{name}: {m.text()}" for name, m in c.measured.items())
        verdict = f"**{c.verdict}**" + (f" (waiting for {', '.join(c.waiting)})" if c.waiting else "")
        lines.append(f"| {c.statement} | {c.page} | {ours} | {c.rule} | {verdict} |")
    return lines


def render_markdown(rows: list[VariantRow], claims: list[ClaimResult], meta: dict) -> str:
    """The report's Markdown.

    Parameters
    ----------
    rows : list of VariantRow
        The variant table.
    claims : list of ClaimResult
        The claims table.
    meta : dict
        ``command``, ``preset``, ``p``, ``probe_weight``, ``epochs``, ``model_seeds``, ``data_seed``,
        ``ledger``, ``versions``, ``figure``, optional ``compute`` and ``remaining_commands``.
    """
    n = max((len(r.cells) for r in rows), default=0)
    page_setup = (meta["p"], meta["preset"]) == (113, "tl-demo")
    lines = [
        "# Seed 001 probe-stencil ablation",
        "",
        f"Generated by `{meta['command']}` (bumps.modadd.ablation) from the run ledger `{meta['ledger']}` and the "
        f"run files of runs still in progress. Preset {meta['preset']}, p = {meta['p']}, "
        f"λ = {meta['probe_weight']}, budget {meta['epochs']} epochs, evaluated every 10 epochs, early stop "
        f"at grok (first evaluation with train and test accuracy ≥ 99%). Seeds are model-init seeds "
        f"{meta['model_seeds']} (index 0 = the preset's seed); data split fixed (data_seed {meta['data_seed']}).",
        "",
        "Speedup = geometric mean over seeds of the baseline's grok epoch ÷ the variant's, paired by seed, with a "
        "Student-t 95% interval on the log ratios and an exact two-sided sign-flip p-value. "
        + (
            f"With n = {n} seeds the interval is the mean log ratio ± {t_factor(n):.2f} standard errors "
            f"(t with {n - 1} degrees of freedom), it assumes roughly normal log ratios, and the smallest "
            f"possible sign-flip p is 2^(1−n) = {2 / 2**n:.3g}: at n = {n} no comparison can be significant by "
            "that test, and a verdict the interval cannot decide is **inconclusive**. "
            if n >= 2
            else ""
        )
        + "`>N`: never grokked within the budget (censored; counted, never used as a number); "
        "`>N (training)`: still training at epoch N; `–`: not run yet.",
        *([] if page_setup else ["", "The page's numbers are for tl-demo at p = 113; here they are not comparable."]),
        "",
        "## The page's claims",
        "",
        f"Rules fixed in code before the runs: a page number is supported when our interval contains it and "
        f"lies within a factor {PAGE_TOLERANCE:g} of it, not supported when the interval excludes it; in the "
        f"interpretation rows two grok epochs within a factor {SAME_SPEEDUP_MARGIN:g} count as the same speedup.",
        "",
        *_render_claims([c for c in claims if not c.context]),
    ]
    context = [c for c in claims if c.context]
    if context:
        lines += ["", "Context (not a claim of the page):", "", *_render_claims(context)]
    lines += [
        "",
        "## Every variant",
        "",
        "| variant | what | grok epoch per seed | median | speedup [95% t-interval] | p | page | "
        "loss spike in the transition |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        per = ", ".join(c.text() for c in r.cells)
        if all(c.status == NOT_RUN for c in r.cells):
            per = "not run yet"
        med = "–" if r.median is None else f"{r.median:.0f}"
        if r.variant == "baseline":
            sp, p = "1", "–"
            page = f"grok at {PAGE_BASELINE_EPOCH}"
        else:
            sp = "–" if r.speedup is None else r.speedup.text()
            p = "–" if r.speedup is None or r.speedup.p_value is None else f"{r.speedup.p_value:.3f}"
            page = "–" if r.page_speedup is None else f"{r.page_speedup:.2f}×"
        lines.append(f"| {r.variant} | {r.what} | {per} | {med} | {sp} | {p} | {page} | {r.spikes.text()} |")
    lines += [
        "",
        "Loss spike: `bumps.detect.events.find_events` (spikes, default settings) on the train and test loss; a "
        f"spike counts when it peaks between {TRANSITION_PAD} epochs before the last evaluation below "
        f"{TRANSITION_FROM_ACC:.0%} test accuracy and grok (the epochs of every spike are in the ledger). The runs "
        "stop at grok, so nothing after it is seen; runs seeded from the reports made before the ledger kept "
        "no curves.",
    ]
    todo = meta.get("remaining", {})
    if todo:
        total = sum(len(s) for s in todo.values())
        lines += ["", f"**Remaining** ({total} runs): " + "; ".join(f"{v} seeds {s}" for v, s in todo.items()) + "."]
        if meta.get("remaining_commands"):
            lines += [
                "",
                "Two one-thread processes train them, one run per invocation, so each run reaches the ledger as it "
                "finishes:",
                "",
                "```bash",
            ]
            lines += [*meta["remaining_commands"], "```"]
    if meta.get("compute"):
        c = meta["compute"]
        lines += [
            "",
            f"Compute recorded in the ledger: {c['runs']} runs, {c['model_epochs']:,} model-epochs on "
            f"{', '.join(c['devices'])}, {c['wall_hours']:.1f} h of run wall time summed over runs (the members "
            "of one ensemble share theirs).",
        ]
    lines += [
        "",
        f"![grok epoch per variant]({meta['figure']})",
        "",
        f"Versions of this report: {', '.join(f'{k} {v}' for k, v in meta['versions'].items())} (each run's are in "
        "the ledger).",
        "",
    ]
    return "\n".join(lines)


def plot_rows(rows: list[VariantRow], path: str | Path, title: str, show_claims: bool = True) -> Path:
    """Grok epoch per variant, a dot per seed (censored or training: open triangle), page claim as ×.

    Parameters
    ----------
    rows : list of VariantRow
        The variant table.
    path : str or Path
        The PNG.
    title : str
        The figure's title.
    show_claims : bool, default True
        Mark the page's numbers.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(4.5, 1.0 + 0.7 * len(rows)), 4.2), constrained_layout=True)
    for x, r in enumerate(rows):
        n = len(r.cells)
        jitter = np.linspace(-0.15, 0.15, n) if n > 1 else [0.0]
        for j, c in zip(jitter, r.cells, strict=True):
            if c.status == GROKKED:
                ax.plot(x + j, c.grok_epoch, marker="o", color="C0", ls="none", alpha=0.8)
            elif c.status in (CENSORED, TRAINING):
                ax.plot(x + j, c.reached, marker="^", mfc="none", color="C3", ls="none")
        if r.median is not None:
            ax.plot([x - 0.25, x + 0.25], [r.median] * 2, color="k", lw=1.5)
        claim = (
            PAGE_BASELINE_EPOCH
            if r.variant == "baseline"
            else (PAGE_BASELINE_EPOCH / r.page_speedup if r.page_speedup else None)
        )
        if claim is not None and show_claims:
            ax.plot(x, claim, marker="x", color="C1", ms=9, ls="none")
    ax.set_xticks(range(len(rows)), [r.variant for r in rows], rotation=40, ha="right")
    ax.set_xlim(-0.5, len(rows) - 0.5)  # every variant has its place, run or not
    ax.set_ylabel("grok epoch (train & test acc ≥ 99%)")
    ax.set_title(title)
    ax.plot([], [], "o", color="C0", label="seed")
    ax.plot([], [], "-", color="k", label="median")
    ax.plot([], [], "^", mfc="none", color="C3", label="not grokked (budget or still training)")
    if show_claims:
        ax.plot([], [], "x", color="C1", label="seed 001 claim (p=113)")
    ax.legend(fontsize=7, loc="best")
    return save_png(fig, path)


def compute_of(records: list[RunRecord]) -> dict:
    """What the ledger's records of this table cost.

    Parameters
    ----------
    records : list of RunRecord
        The table's records.
    """
    return {
        "runs": len(records),
        "model_epochs": sum(r.epochs_trained for r in records),
        "wall_hours": sum(r.wall_seconds or 0.0 for r in records) / 3600,
        "devices": sorted({r.device for r in records}),
    }


def tables_payload(rows: list[VariantRow], claims: list[ClaimResult]) -> dict:
    """The report JSON's ``variants`` and ``claims`` (plain data).

    Parameters
    ----------
    rows : list of VariantRow
        The variant table.
    claims : list of ClaimResult
        The claims table.
    """
    return json.loads(json.dumps({"variants": [asdict(r) for r in rows], "claims": [asdict(c) for c in claims]}))


def write_report(
    rows: list[VariantRow], claims: list[ClaimResult], meta: dict, report: str | Path, settings: dict | None = None
) -> list[Path]:
    """Write REPORT.md, REPORT.json and REPORT.png (each atomically).

    Parameters
    ----------
    rows : list of VariantRow
        The variant table.
    claims : list of ClaimResult
        The claims table.
    meta : dict
        As :func:`render_markdown` (without ``figure``).
    report : str or Path
        The path without suffix.
    settings : dict, optional
        What the report was made from (:mod:`bumps.io.provenance`), recorded in all three files.

    Returns
    -------
    list of pathlib.Path
        The Markdown, JSON and PNG files.
    """

    report = Path(report)
    png, md, js = report.with_suffix(".png"), report.with_suffix(".md"), report.with_suffix(".json")
    meta = {**meta, "figure": png.name}
    plot_rows(
        rows,
        png,
        f"{meta['preset']} p={meta['p']}: grok epoch per variant",
        show_claims=meta["p"] == 113 and meta["preset"] == "tl-demo",
    )
    text = render_markdown(rows, claims, meta)
    if settings is not None:
        stamp_png(png, settings)
        text = stamp_markdown(text, settings)
    atomic_write(md, lambda fh: fh.write(text.encode()))
    payload = {"meta": meta, **tables_payload(rows, claims)}
    if settings is not None:
        payload["bumps_settings"] = settings
    atomic_write(js, lambda fh: fh.write((json.dumps(payload, indent=1) + "\n").encode()))
    return [md, js, png]
