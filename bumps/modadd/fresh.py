"""The registered mod-add competition tests on fresh seeds: M4-8, M4-64, M5, M5n and M5p.

Rules and arms were registered (``bumps rules modadd``) before any of these runs. Per seed (model
and split seed s in :data:`SEEDS`, the nanda preset at p = 113, stopped 1000 epochs after grokking,
checkpoints every 500 epochs), from the seed's own run:

* **Neuron events** (M4-8, M4-64): the :data:`NEURON_EVENTS` ``neuron_freq`` bumps on key
  frequencies with the largest drop, one per curve, peaking after memorisation
  (:func:`bumps.modadd.knockout.clearest_events`). Arms: the unintervened continuation; for K in
  :data:`NEURON_KS`, the K neurons that gain most on the bump's frequency over [peak, end]
  (``competitor-K``) and K neurons matched to them one to one by their share of that frequency at
  the peak (``control-K``).
* **Frequency events** (M5, M5n, M5p): the :data:`FREQ_EVENTS` key-frequency W_E or W_L norm bumps
  with the largest drop over the value at the peak. Arms (:func:`plan_frequency_arms`): the
  unintervened continuation; the **rival** (the other key frequency gaining most in the same norm
  over [peak, end]); the **other key** (of the remaining key frequencies, the one whose norm at the
  peak is nearest the rival's: the compensation control; no third key frequency, no arm); the
  **non-key** frequency (non-key under the threshold and the official rule, norm at the peak nearest
  the rival's).

Every arm continues from the run's last checkpoint at or before the peak to the bump's end
(:func:`bumps.modadd.knockout.run_knockouts`); its outcome is ``persists`` and ``drop_ratio`` (the
curve's fall from the peak step to the end step over the original fall). Events whose unintervened
continuation loses the bump drop out of every statistic.

M3f (registered after these runs were trained, before it was computed on any): per seed, from its
run file alone (:func:`family_rate_difference`), key bumps per neuron-frequency curve minus key bumps
per W_E/W_L norm curve, the detector judging every curve against one reference range per series; the
mean over seeds with a Student-t interval.

Statistics (:func:`judge`): per seed, the mean over its kept events of a drop-ratio
difference (M4-K: control-K − competitor-K; M5: other key − rival; M5n: non-key − rival), then the
mean over seeds with a Student-t interval; M5p: per seed, its largest kept frequency event, whether
the rival's removal no longer shows the bump, as a fraction of seeds with a Clopper–Pearson
interval. Finished seeds go to a committed ledger (:class:`FreshLedger`), so the study resumes
across sessions without its run files.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from bumps.errors import BumpsError
from bumps.knockout import BumpEvent, KnockoutPlan
from bumps.modadd.knockout import clearest_events, freq_of, plan_neuron, run_knockouts
from bumps.modadd.model import ModAddConfig
from bumps.modadd.phases import INVARIANT, classify_bumps, key_bump_rates

SEEDS = tuple(range(5, 15))
NEURON_EVENTS = 3
FREQ_EVENTS = 2
NEURON_KS = (8, 64)
STOP_AFTER_GROK = 1000
# claim id -> (series family, arm subtracted, arm it is subtracted from): the drop-ratio differences
DIFFERENCES = {
    "M4-8": ("neuron", "competitor-8", "control-8"),
    "M4-64": ("neuron", "competitor-64", "control-64"),
    "M5": ("frequency", "rival", "other-key"),
    "M5n": ("frequency", "rival", "non-key"),
}
CLAIM_IDS = (*DIFFERENCES, "M5p", "M3f")


def fresh_config(seed: int, **overrides) -> ModAddConfig:
    """The registered run of seed ``seed``: nanda preset, model seed = split seed = ``seed``, stopped
    :data:`STOP_AFTER_GROK` epochs after grokking (``overrides``: small tests)."""
    if seed < 0:
        raise BumpsError(f"`seeds` must be >= 0 (got {seed})")
    return ModAddConfig.from_preset("nanda", seed=seed, data_seed=seed, stop_after_grok=STOP_AFTER_GROK, **overrides)


def config_digest(cfg: ModAddConfig) -> str:
    """The ledger's key of a seed's run (:func:`bumps.modadd.ledger.config_hash`)."""
    from bumps.modadd.ledger import config_hash

    return config_hash(cfg)


# ---------------------------------------------------------------------------------------- planning
ROLE_OF = {"none": "none", "rival": "competitor", "other-key": "control", "non-key": "control"}


def _plan(e: BumpEvent, arm: str, removed: tuple[int, ...] = ()) -> KnockoutPlan:
    pair = f"{e.group}:{e.series}:{e.index}:{e.peak_step}"
    return KnockoutPlan(e, ROLE_OF[arm], removed, "checkpoint", pair, arm=arm)


def _index(steps: np.ndarray, step: int) -> int:
    return int(np.searchsorted(steps, step))


def plan_frequency_arms(run_path: str, run: dict, event: BumpEvent) -> list[KnockoutPlan]:
    """The registered arms of a frequency-norm bump: ``none``, ``rival``, ``other-key``, ``non-key``.

    Parameters
    ----------
    run_path : str
        The run file (the plans' group).
    run : dict
        The loaded run (``key_freqs``, ``key_freqs_official``, the event's norm series).
    event : BumpEvent
        A ``freq_norm`` or ``freq_norm_wl`` bump of a key frequency.

    Returns
    -------
    list of KnockoutPlan
        Empty when the run has no other key frequency (no rival); without ``other-key`` when it has
        no third one. Ties go to the lower frequency.
    """
    from bumps.io.schema import steps_of

    event = replace(event, group=run_path)
    norm = np.asarray(run[event.series], dtype=np.float64)  # [T, n_freqs]
    steps = np.asarray(steps_of(run, event.series))
    mine = freq_of(event)
    keys = [int(k) for k in run["key_freqs"] if int(k) != mine]
    if not keys:
        return []
    p, e = _index(steps, event.peak_step), _index(steps, event.end_step)
    rival = max(keys, key=lambda k: (norm[e, k - 1] - norm[p, k - 1], -k))

    def nearest(cands: list[int]) -> int:
        return min(cands, key=lambda k: (abs(norm[p, k - 1] - norm[p, rival - 1]), k))

    official = {int(k) for k in run.get("key_freqs_official", [])}
    every_key = set(keys) | {mine} | official
    non_key = [k for k in range(1, norm.shape[1] + 1) if k not in every_key]
    plans = [_plan(event, "none"), _plan(event, "rival", (rival,))]
    others = [k for k in keys if k != rival]
    if others:
        plans.append(_plan(event, "other-key", (nearest(others),)))
    if non_key:
        plans.append(_plan(event, "non-key", (nearest(non_key),)))
    return plans


def plan_neuron_arms(run_path: str, run: dict, event: BumpEvent, ks: tuple[int, ...] = NEURON_KS) -> list[KnockoutPlan]:
    """``none``, then ``competitor-K`` and ``control-K`` for each K in ``ks`` (:func:`plan_neuron`)."""
    out: list[KnockoutPlan] = []
    for k in ks:
        none, comp, ctl = plan_neuron(run_path, run, event, k)
        if not out:
            out.append(none)
        out += [replace(comp, arm=f"competitor-{k}"), replace(ctl, arm=f"control-{k}")]
    return out


def plan_seed(run_path: str, run: dict) -> tuple[list[dict], list[KnockoutPlan]]:
    """The seed's registered events (as rows: family, rank, series, freq, unit, steps, drop) and plans."""
    rows = classify_bumps(run)
    events, plans = [], []
    for family, found in (
        ("neuron", clearest_events(rows, "neuron_freq", NEURON_EVENTS)),
        ("frequency", clearest_events(rows, INVARIANT, FREQ_EVENTS, relative=True)),
    ):
        for rank, ev in enumerate(found):
            arms = plan_neuron_arms(run_path, run, ev) if family == "neuron" else plan_frequency_arms(run_path, run, ev)
            events.append(
                dict(
                    family=family,
                    rank=rank,
                    series=ev.series,
                    freq=freq_of(ev),
                    unit=ev.index[0] if len(ev.index) == 2 else None,
                    start_step=ev.start_step,
                    peak_step=ev.peak_step,
                    end_step=ev.end_step,
                    drop=float(ev.drop),
                    arms=[a.name for a in arms],
                )
            )
            plans += arms
    return events, plans


# ---------------------------------------------------------------------------------------- records
@dataclass
class SeedResult:
    """One seed's run and knockout outcomes, as the ledger keeps them.

    Attributes
    ----------
    seed : int
        Model and split seed.
    config_hash : str
        :func:`config_digest` of the seed's run configuration.
    grok_epoch, epochs_done : int
        The run's grok epoch (-1: none) and its last epoch.
    key_freqs, key_freqs_official : list of int
        Key frequencies by the threshold rule and by the official rule, at the last evaluation.
    events : list of dict
        The registered events (:func:`plan_seed`), in rank order per family.
    outcomes : list of dict
        One :func:`bumps.modadd.knockout.outcome` record per arm.
    wall_seconds : float
        Training time of the run and its continuations.
    versions : dict
        Package versions of the process that trained them.
    m3f : float or None
        :func:`family_rate_difference` of the seed's run (None: not computed, a seed recorded before M3f;
        NaN: undefined, the run has no key frequency).
    """

    seed: int
    config_hash: str
    grok_epoch: int
    epochs_done: int
    key_freqs: list[int]
    key_freqs_official: list[int]
    events: list[dict]
    outcomes: list[dict]
    wall_seconds: float
    versions: dict = field(default_factory=dict)
    m3f: float | None = None

    def arms(self) -> dict[tuple, dict[str, dict]]:
        """Event key (series, freq, unit, peak_step) -> role -> outcome."""
        by: dict[tuple, dict[str, dict]] = {}
        for r in self.outcomes:
            by.setdefault((r["series"], r["freq"], r["unit"], r["peak_step"]), {})[r.get("arm") or r["role"]] = r
        return by

    def kept(self, family: str) -> list[tuple[dict, dict[str, dict]]]:
        """The family's events, in rank order, whose unintervened continuation keeps the bump."""
        arms = self.arms()
        out = []
        for ev in self.events:
            if ev["family"] != family:
                continue
            a = arms.get((ev["series"], ev["freq"], ev["unit"], ev["peak_step"]), {})
            if a.get("none", {}).get("persists"):
                out.append((ev, a))
        return out


def seed_result(seed: int, cfg: ModAddConfig, run: dict, events, outcomes, wall: float) -> SeedResult:
    """Assemble a :class:`SeedResult` from a finished run and its outcome records (M3f computed here)."""
    from bumps.io.runfile import versions

    return SeedResult(
        seed=seed,
        config_hash=config_digest(cfg),
        grok_epoch=int(run["grok_epoch"]),
        epochs_done=int(run["config"]["epochs_done"]),
        key_freqs=[int(k) for k in run["key_freqs"]],
        key_freqs_official=[int(k) for k in run.get("key_freqs_official", [])],
        events=events,
        outcomes=[
            {**o, "run": Path(o["run"]).name, "persists": bool(o["persists"]), "drop_ratio": float(o["drop_ratio"])}
            for o in outcomes
        ],
        wall_seconds=round(float(wall), 1),
        versions=versions(),
        m3f=family_rate_difference(run),
    )


def family_rate_difference(run: dict) -> float:
    """M3f's per-seed value: key bumps per neuron-frequency curve − key bumps per W_E/W_L norm curve.

    Bumps are :func:`bumps.modadd.phases.classify_bumps` with ``BumpParams(reference="family")``: each
    series' curves (all d_mlp x frequency ``neuron_freq`` curves; all frequencies of ``freq_norm``, of
    ``freq_norm_wl``) are judged against one reference range, the series' own, other thresholds at their
    defaults. There are d_mlp neuron curves and 2 norm curves (W_E, W_L) per key frequency.

    Parameters
    ----------
    run : dict
        A mod-add run (:func:`bumps.io.runfile.load_run`) with ``neuron_freq``, ``freq_norm`` and
        ``freq_norm_wl``.

    Returns
    -------
    float
        The difference of the two rates; NaN when the run has no key frequency (both rates 0/0), which
        the statistic leaves out.
    """
    from bumps.detect.bumps import BumpParams

    n_keys = len(run["key_freqs"])
    if n_keys == 0:
        return math.nan
    rows = classify_bumps(run, BumpParams(reference="family"))
    neuron_rate, invariant_rate = key_bump_rates(rows, n_keys, int(np.asarray(run["neuron_freq"]).shape[1]))
    return neuron_rate - invariant_rate


def fill_m3f(result: SeedResult, cfg: ModAddConfig, out_dir: Path, train: bool, bar=None) -> SeedResult | None:
    """A ledger seed recorded before M3f, with M3f computed from its run file.

    Parameters
    ----------
    result : SeedResult
        The ledger's record of the seed (its ``m3f`` None).
    cfg : ModAddConfig
        The seed's configuration (:func:`fresh_config`); ``config_digest(cfg)`` is ``result.config_hash``.
    out_dir : Path
        Where the seed's run file is, ``seed{seed}.pt``.
    train : bool
        Train the run when the file is missing (or resume it when unfinished); False: only read it.
    bar : callable, optional
        Progress, as in :func:`run_seed`.

    Returns
    -------
    SeedResult or None
        ``result`` with ``m3f`` set (NaN: the run has no key frequency); None when ``train`` is False and
        there is no run file or it is unfinished.

    Raises
    ------
    BumpsError
        If the run file is of another configuration, or (trained again) its grok epoch or last epoch is
        not the ledger's: training did not reproduce the recorded run, so M3f cannot be read from it.
    """

    from bumps.io.runfile import load_run
    from bumps.modadd.train import config_fields

    path = out_dir / f"seed{result.seed}.pt"
    if path.exists():
        stored = load_run(path, kind="modadd")["config"]
        theirs = config_fields(stored)
        if config_digest(ModAddConfig(**theirs)) != result.config_hash or any(
            theirs.get(k) != getattr(cfg, k) for k in ("neuron_every", "neuron_dtype")
        ):
            raise BumpsError(f"{path} is a run of other settings than seed {result.seed}'s; move it away and rerun")
        if not train and not stored.get("final"):
            return None  # still training (another process): nothing to read yet
    elif not train:
        return None
    run = _train_run(cfg, path, bar, f"seed {result.seed}: run (for M3f)") if train else load_run(path, kind="modadd")
    got = (int(run["grok_epoch"]), int(run["config"]["epochs_done"]))
    if got != (result.grok_epoch, result.epochs_done):
        raise BumpsError(
            f"{path} groks at {got[0]} and stops at {got[1]}, the ledger's seed {result.seed} at "
            f"{result.grok_epoch} and {result.epochs_done}: not the recorded run, so M3f is not read from it"
        )
    return replace(result, m3f=family_rate_difference(run))


class FreshLedger:
    """The committed record of finished seeds (JSON; one entry per seed and configuration)."""

    FORMAT = 1

    def __init__(self, path: str | Path, results: list[SeedResult] | None = None):
        self.path = Path(path)
        self.results = list(results or [])

    @classmethod
    def load(cls, path: str | Path) -> FreshLedger:
        """The ledger at ``path`` (empty when the file does not exist)."""
        path = Path(path)
        if not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text())
            results = [SeedResult(**r) for r in data["seeds"]]
        except (OSError, ValueError, KeyError, TypeError):
            raise BumpsError(f"{path} is not a fresh-knockout ledger; give another --ledger") from None
        return cls(path, results)

    def find(self, cfg: ModAddConfig) -> SeedResult | None:
        """The finished seed recorded for this configuration, if any."""
        digest = config_digest(cfg)
        return next((r for r in self.results if r.config_hash == digest), None)

    def add(self, result: SeedResult) -> None:
        """Record a finished seed (replacing one of the same configuration) and write the file atomically.

        The file is re-read under a folder lock first, so seeds another process recorded meanwhile stay."""
        from bumps.io.runfile import atomic_write
        from bumps.modadd.ledger import folder_lock

        with folder_lock(self.path.parent):  # re-read: keep what another process added meanwhile
            current = FreshLedger.load(self.path).results
            self.results = [r for r in current if r.config_hash != result.config_hash] + [result]
            self.results.sort(key=lambda r: (r.seed, r.config_hash))
            data = dict(
                format=self.FORMAT,
                description="Finished seeds of `bumps fresh-knockouts` (bumps.modadd.fresh): events, arms, outcomes.",
                seeds=[asdict(r) for r in self.results],
            )
            blob = (json.dumps(data, indent=1) + "\n").encode()
            atomic_write(self.path, lambda f: f.write(blob))


# ---------------------------------------------------------------------------------------- training
def _no_bar(total, label):
    from contextlib import nullcontext

    return nullcontext(), None


def _train_run(cfg: ModAddConfig, path: Path, bar, label: str) -> dict:
    """Train (or resume, or reuse when finished) one seed's run file alone; return the run."""
    from bumps.io.runfile import load_run
    from bumps.modadd.train import step_elements, train_many
    from bumps.threads import threads_for

    ctx, advance = (bar or _no_bar)(cfg.epochs, label)
    path.parent.mkdir(parents=True, exist_ok=True)
    with ctx, threads_for(step_elements([cfg]), cfg.device):
        train_many([cfg], [path], resume="auto", progress=advance)
    return load_run(path, kind="modadd")


def run_seed(seed: int, cfg: ModAddConfig, out_dir: Path, bar=None, members: int | None = 1) -> SeedResult:
    """Train (or resume) the seed's run, then every registered continuation; return its result.

    Parameters
    ----------
    seed : int
        The seed (its run file is ``out_dir/seed{seed}.pt``, continuations under ``seed{seed}_knockouts``).
    cfg : ModAddConfig
        The seed's configuration (:func:`fresh_config`).
    out_dir : Path
        Run files; a finished run or continuation there is reused, an interrupted one resumed.
    bar : callable, optional
        ``bar(total_epochs, label) -> (context manager, advance(done, total))`` for progress, per phase.
    members : int or None, default 1
        Continuations per ensemble (None: all in one, for a GPU; on CPU one at a time is fastest).
    """

    bar = bar or _no_bar
    path = out_dir / f"seed{seed}.pt"
    t0 = time.perf_counter()
    run = _train_run(cfg, path, bar, f"seed {seed}: run")
    events, plans = plan_seed(str(path), run)
    outcomes = []
    if plans:
        total = sum(p.event.end_step - p.event.start_step for p in plans)  # about the epochs to train
        ctx, advance = bar(total, f"seed {seed}: {len(plans)} continuations")
        with ctx:
            outcomes = run_knockouts(plans, out_dir / f"seed{seed}_knockouts", progress=advance, members=members)
    return seed_result(seed, cfg, run, events, outcomes, time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------- statistics
@dataclass(frozen=True)
class SeedValues:
    """One claim's per-seed values (seeds without a kept event with both arms are left out)."""

    claim: str
    seeds: list[int]
    values: list[float]
    events: list[int]  # kept events behind each seed's value

    @property
    def n(self) -> int:
        return len(self.seeds)


def seed_values(results: list[SeedResult], cid: str) -> SeedValues:
    """Per seed: the mean drop-ratio difference (``DIFFERENCES[cid]``) over its kept events; for
    ``M5p`` 1.0 when the rival's removal of its largest kept frequency event no longer shows the bump;
    for ``M3f`` the seed's :attr:`SeedResult.m3f` (no events: 0 in ``events``)."""
    seeds, values, counts = [], [], []
    for r in sorted(results, key=lambda r: r.seed):
        if cid == "M3f":
            if r.m3f is not None and math.isfinite(r.m3f):
                seeds.append(r.seed)
                values.append(float(r.m3f))
                counts.append(0)
            continue
        if cid == "M5p":
            kept = [(ev, a) for ev, a in r.kept("frequency") if "rival" in a]
            if kept:
                seeds.append(r.seed)
                values.append(0.0 if kept[0][1]["rival"]["persists"] else 1.0)
                counts.append(1)
            continue
        family, minus, plus = DIFFERENCES[cid]
        diffs = [a[plus]["drop_ratio"] - a[minus]["drop_ratio"] for _, a in r.kept(family) if minus in a and plus in a]
        diffs = [d for d in diffs if math.isfinite(d)]
        if diffs:
            seeds.append(r.seed)
            values.append(float(np.mean(diffs)))
            counts.append(len(diffs))
    return SeedValues(cid, seeds, values, counts)


def judge(results: list[SeedResult]) -> list[tuple]:
    """Each registered claim as (entry, SeedValues, Claim or None: under 2 seeds, or 1 for M5p)."""
    from bumps import registry
    from bumps.stats import clopper_pearson, t_interval

    entries = registry.load("modadd")
    out = []
    for cid in CLAIM_IDS:
        sv = seed_values(results, cid)
        entry = entries[cid]
        if cid == "M5p":
            claim = entry.judge(clopper_pearson(int(sum(sv.values)), sv.n), sv.n) if sv.n else None
        else:
            claim = entry.judge(t_interval(sv.values), sv.n) if sv.n >= 2 else None
        out.append((entry, sv, claim))
    return out


def exploratory_old(records: list[dict]) -> dict | None:
    """The five earlier seeds' frequency knockouts (chosen after looking; their control is the old one,
    non-key by the threshold rule only): control − competitor drop ratio, mean per seed, t over seeds."""
    from bumps.stats import t_interval

    by: dict[str, dict[tuple, dict[str, dict]]] = {}
    for r in records:
        if r["series"] in INVARIANT:
            key = (r["series"], r["freq"], r["unit"], r["peak_step"])
            by.setdefault(r["run"], {}).setdefault(key, {})[r["role"]] = r
    per = []
    for events in by.values():
        d = [
            a["control"]["drop_ratio"] - a["competitor"]["drop_ratio"]
            for a in events.values()
            if "control" in a and "competitor" in a and a.get("none", {}).get("persists", True)
        ]
        if d:
            per.append(float(np.mean(d)))
    if len(per) < 2:
        return None
    mean, lo, hi = t_interval(per)
    return dict(n=len(per), per_seed=per, mean=mean, ci_low=lo, ci_high=hi)
