"""The probe ablation's run ledger: one small record per finished (variant, seed index), kept across sessions.

Run files are large (hundreds of MB at p = 113) and do not survive a fresh checkout, so what a finished
run measured is kept in a committed JSON file (the study's: ``reports/probe_ablation_runs.json``). A
record holds the variant, the seed index and model seed, the run's full configuration (every
:class:`~bumps.modadd.model.ModAddConfig` field but ``device``) and its hash
(:func:`bumps.io.provenance.settings_hash`, 16 hex digits), the grok epoch or "censored at the budget",
the epochs trained, wall seconds, device, versions, and a loss-spike check (:class:`SpikeCheck`).

A configuration is *done* when the ledger holds a record of the same hash; ``bumps probe-ablation``
then neither trains nor loads it. A record stored before a field was added to ``ModAddConfig`` still
matches: a key missing from its stored config counts as that field's default (the rule resuming a run
file uses). Records are appended under a lock on the ledger's folder (two processes may share one
ledger) and written atomically (:func:`bumps.io.runfile.atomic_write`), so an interrupted session keeps
every record written before.

**Seeding** (:func:`import_report`): the reports written before the ledger existed hold every run's
config (``meta.configs``) and grok epoch; a record is taken from them only when the stored config's hash
equals the hash of today's config for that variant and seed, else it is refused with the differing keys.

**Spike check** (:func:`spike_check`): the page says to "expect a possible loss spike during
transition". :func:`bumps.detect.events.find_events` (spikes only, default settings) runs on the
train and test loss of the whole run (the eval cadence); a spike counts when its peak lies in the
*transition window*: from :data:`TRANSITION_PAD` epochs before the last evaluation before grok
with test accuracy below :data:`TRANSITION_FROM_ACC` to the grok epoch. The runs stop at grok, so the
window cannot look past it. A censored run has no transition (no check), and records seeded from
reports have no curves (no check).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from bumps.errors import BumpsError
from bumps.io.provenance import settings_hash, settings_of_run
from bumps.io.runfile import atomic_write
from bumps.modadd.model import ModAddConfig

LEDGER_FORMAT = 1
HASH_LENGTH = 16
TRANSITION_FROM_ACC = 0.10  # the transition starts at the last evaluation below this test accuracy
RECORDING_ONLY = frozenset({"neuron_every", "neuron_dtype"})
TRANSITION_PAD = 200  # epochs looked at before the transition starts
DESCRIPTION = (
    "bumps probe-ablation run ledger (bumps.modadd.ledger): one record per finished run; "
    "a config whose hash is here is not trained again. Written by bumps, not by hand."
)


def config_settings(cfg: ModAddConfig | dict) -> dict:
    """A run's settings as the ledger stores and hashes them: every config field but ``device`` and
    the recording-only :data:`RECORDING_ONLY` (how often and in what dtype the neuron table is stored:
    the training, hence the grok epoch, does not depend on them).

    Parameters
    ----------
    cfg : ModAddConfig or dict
        A configuration, or a stored config dict (outcome keys such as ``epochs_done`` are dropped).

    Returns
    -------
    dict
        Plain data (tuples as lists).
    """
    values = cfg.as_dict() if isinstance(cfg, ModAddConfig) else dict(cfg)
    names = set(ModAddConfig.__dataclass_fields__) - RECORDING_ONLY
    return {k: v for k, v in settings_of_run(values).items() if k in names}


def config_hash(cfg: ModAddConfig | dict) -> str:
    """:func:`bumps.io.provenance.settings_hash` of :func:`config_settings`, :data:`HASH_LENGTH` digits.

    Parameters
    ----------
    cfg : ModAddConfig or dict
        A configuration or a stored config dict.

    Returns
    -------
    str
        Lowercase hex digits.
    """
    return settings_hash(config_settings(cfg), length=HASH_LENGTH)


def _with_defaults(stored: dict) -> dict:
    """A stored config with today's defaults for the fields it lacks (added after it was written)."""
    default = config_settings(ModAddConfig())
    return {**default, **stored}


@dataclass
class SpikeCheck:
    """Whether the train or test loss spikes during the grok transition (module docstring).

    Parameters
    ----------
    window : list of int
        The transition window ``[first epoch, grok epoch]``.
    train_spikes, test_spikes : list of int
        Peak epochs of every spike :func:`bumps.detect.events.find_events` finds on the train or test
        loss, in the window or not.
    """

    window: list[int]
    train_spikes: list[int] = field(default_factory=list)
    test_spikes: list[int] = field(default_factory=list)

    def in_window(self, peaks: list[int]) -> list[int]:
        """The peaks inside :attr:`window`.

        Parameters
        ----------
        peaks : list of int
            Peak epochs.
        """
        lo, hi = self.window
        return [e for e in peaks if lo <= e <= hi]

    @property
    def train_spiked(self) -> bool:
        """A train-loss spike peaks in the window."""
        return bool(self.in_window(self.train_spikes))

    @property
    def test_spiked(self) -> bool:
        """A test-loss spike peaks in the window."""
        return bool(self.in_window(self.test_spikes))

    @property
    def spiked(self) -> bool:
        """The train or the test loss spikes in the window."""
        return self.train_spiked or self.test_spiked


@dataclass
class RunRecord:
    """One finished run of the ablation.

    Parameters
    ----------
    variant : str
        The variant name it was trained as (another name with the same config finds it by hash).
    seed_index : int
        Index s of ``--seeds``; the model seed is the preset's seed + s.
    model_seed : int
        The model-init seed.
    config_hash : str
        :func:`config_hash` of ``config``.
    config : dict
        :func:`config_settings` of the run's configuration.
    grok_epoch : int or None
        The first evaluation with train and test accuracy >= 99%; None when censored.
    censored : bool
        Never grokked within ``budget`` epochs (its grok epoch is only known to exceed it).
    budget : int
        The epoch budget (``epochs``).
    epochs_trained : int
        Epochs the run trained (early stop at grok: its grok epoch).
    wall_seconds : float or None
        The run's training wall time (members of one ensemble share theirs); None when unknown.
    device : str
        Where it trained.
    versions : dict
        Package versions of the training process.
    spike : SpikeCheck or None
        The loss-spike check; None when there is no transition (censored) or no curves (seeded).
    source : str
        ``"trained"`` (recorded from its run file) or the report it was seeded from.
    """

    variant: str
    seed_index: int
    model_seed: int
    config_hash: str
    config: dict
    grok_epoch: int | None
    censored: bool
    budget: int
    epochs_trained: int
    wall_seconds: float | None
    device: str
    versions: dict
    spike: SpikeCheck | None = None
    source: str = "trained"

    @classmethod
    def from_dict(cls, data: dict) -> RunRecord:
        """The record of one entry of a ledger file.

        Parameters
        ----------
        data : dict
            As :func:`dataclasses.asdict` wrote it.
        """
        values = dict(data)
        spike = values.get("spike")
        values["spike"] = SpikeCheck(**spike) if spike is not None else None
        return cls(**values)

    def matches(self, digest: str) -> bool:
        """Whether this record is the run of a config with hash ``digest`` (also across added fields).

        Parameters
        ----------
        digest : str
            :func:`config_hash` of today's config.
        """
        if self.config_hash == digest:
            return True
        return settings_hash(_with_defaults(self.config), length=HASH_LENGTH) == digest


def spike_check(run: dict) -> SpikeCheck | None:
    """The loss-spike check of one finished run (module docstring).

    Parameters
    ----------
    run : dict
        A mod-add run dict (``step``, ``train_loss``, ``test_loss``, ``test_acc``, ``grok_epoch``).

    Returns
    -------
    SpikeCheck or None
        None for a run that never grokked (no transition) or too short for the detector.
    """
    from bumps.detect.events import EventParams, find_events

    grok = int(run["grok_epoch"])
    if grok < 0:
        return None
    step = np.asarray(run["step"], dtype=float)
    acc = np.asarray(run["test_acc"], dtype=float)
    before = np.flatnonzero((step <= grok) & (acc < TRANSITION_FROM_ACC))
    start = int(step[before[-1]]) if len(before) else 0
    start = max(0, start - TRANSITION_PAD)
    check = SpikeCheck(window=[start, grok])
    params = EventParams(kinds=("spike",))
    for name, out in (("train_loss", check.train_spikes), ("test_loss", check.test_spikes)):
        y = np.asarray(run[name], dtype=float)
        try:
            events = find_events(np.clip(y, 1e-300, None), step, params, name=name)
        except BumpsError:  # too few samples for the detector
            return None
        out.extend(int(step[e.peak]) for e in events)
    return check


def record_from_run(variant: str, seed_index: int, cfg: ModAddConfig, run: dict) -> RunRecord:
    """The ledger record of a finished run of ``cfg``.

    Parameters
    ----------
    variant : str
        The variant name.
    seed_index : int
        Its seed index.
    cfg : ModAddConfig
        The configuration it was asked to train (its hash must equal the run file's).
    run : dict
        The finished run dict.

    Returns
    -------
    RunRecord

    Raises
    ------
    BumpsError
        If the run is unfinished or was trained with other settings than ``cfg``.
    """
    stored = run["config"]
    if not stored.get("final", True):
        raise BumpsError(f"{variant} seed {seed_index} is still training; finish it before recording it")
    digest = config_hash(cfg)
    if settings_hash(_with_defaults(config_settings(stored)), length=HASH_LENGTH) != digest:
        diff = _diff(config_settings(stored), config_settings(cfg))
        raise BumpsError(
            f"the run file of {variant} seed {seed_index} was trained with other settings ({diff}); "
            "move it away or choose another `out_dir`"
        )
    grok = int(run["grok_epoch"])
    return RunRecord(
        variant=variant,
        seed_index=int(seed_index),
        model_seed=int(cfg.seed),
        config_hash=digest,
        config=config_settings(cfg),
        grok_epoch=grok if grok >= 0 else None,
        censored=grok < 0,
        budget=int(cfg.epochs),
        epochs_trained=int(stored.get("epochs_done", cfg.epochs)),
        wall_seconds=round(float(stored.get("train_seconds", 0.0)), 1),
        device=str(stored.get("device", cfg.device)),
        versions=dict(stored.get("versions", {})),
        spike=spike_check(run),
        source="trained",
    )


def _diff(stored: dict, today: dict) -> str:
    stored = _with_defaults(stored)
    keys = [k for k in sorted(set(stored) | set(today)) if stored.get(k) != today.get(k)]
    return ", ".join(f"{k}={stored.get(k)!r} stored, {today.get(k)!r} today" for k in keys[:3]) + (
        f" and {len(keys) - 3} more" if len(keys) > 3 else ""
    )


class Ledger:
    """The records of one ledger file, in memory; :meth:`add` writes them back.

    Parameters
    ----------
    path : str or Path
        The ledger file (need not exist yet).
    records : list of RunRecord, optional
        Its records.
    """

    def __init__(self, path: str | Path, records: list[RunRecord] | None = None):
        self.path = Path(path)
        self.records = list(records or [])

    @classmethod
    def load(cls, path: str | Path) -> Ledger:
        """Read a ledger file (a missing file is an empty ledger).

        Parameters
        ----------
        path : str or Path
            The ledger file.

        Raises
        ------
        BumpsError
            If the file is not a ledger this bumps can read.
        """
        path = Path(path)
        if not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text())
            if data.get("format") != LEDGER_FORMAT:
                raise ValueError(f"format {data.get('format')!r}")
            records = [RunRecord.from_dict(r) for r in data["records"]]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BumpsError(
                f"{path} is not a probe-ablation ledger ({exc}); give another `ledger` or move that file"
            ) from None
        return cls(path, records)

    def find(self, cfg: ModAddConfig) -> RunRecord | None:
        """The record of ``cfg``'s run (by config hash), or None.

        Parameters
        ----------
        cfg : ModAddConfig
            Today's configuration of a (variant, seed).
        """
        digest = config_hash(cfg)
        return next((r for r in self.records if r.matches(digest)), None)

    def add(self, records: list[RunRecord]) -> list[RunRecord]:
        """Append records whose hash the file does not hold yet, under the folder lock; write atomically.

        Re-reads the file first, so that records another process added meanwhile are kept.

        Parameters
        ----------
        records : list of RunRecord
            New records.

        Returns
        -------
        list of RunRecord
            The records that were new (the others were there already).
        """
        if not records:
            return []
        with folder_lock(self.path.parent):
            current = Ledger.load(self.path).records
            have = {r.config_hash for r in current}
            new = []
            for r in records:
                if r.config_hash not in have:
                    new.append(r)
                    have.add(r.config_hash)
            if new:
                merged = sorted(current + new, key=lambda r: (r.variant, r.seed_index, r.config_hash))
                payload = {
                    "description": DESCRIPTION,
                    "format": LEDGER_FORMAT,
                    "records": [asdict(r) for r in merged],
                }
                text = json.dumps(payload, indent=1) + "\n"
                atomic_write(self.path, lambda fh: fh.write(text.encode()))
            self.records = merged if new else current
        return new


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive ``flock`` on a folder (no lock file left behind); no lock where fcntl is missing."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: one process per ledger
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def import_report(path: str | Path, configs: dict[tuple[str, int], ModAddConfig]) -> tuple[list[RunRecord], list[str]]:
    """Records from a report JSON written before the ledger (``meta.configs`` and the grok epochs).

    Parameters
    ----------
    path : str or Path
        A ``bumps probe-ablation`` report JSON with ``meta.configs`` (``"{variant}_seed{s}"`` -> config)
        and per variant ``seeds``, ``grok_epochs``, ``censored``, ``budget``.
    configs : dict
        Today's configuration of every (variant, seed index) of the study; a stored run is taken only
        when its config hash equals today's for the same key.

    Returns
    -------
    records : list of RunRecord
        The runs taken (source: the report's path).
    refused : list of str
        One line per run refused, saying why.

    Raises
    ------
    BumpsError
        If the file cannot be read as such a report.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        stored_configs = data["meta"]["configs"]
        variants = data["variants"]
        versions = dict(data["meta"].get("versions", {}))
        seconds = dict(data["meta"].get("compute", {}).get("train_seconds", {}))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BumpsError(
            f"cannot read {path} as a probe-ablation report with meta.configs ({exc}); give a report JSON"
        ) from None
    records, refused = [], []
    for name, stored in stored_configs.items():
        variant, _, seed = name.rpartition("_seed")
        key = (variant, int(seed))
        if key not in configs:
            refused.append(f"{name}: not in this study's --variants/--seeds; not imported")
            continue
        cfg = configs[key]
        if settings_hash(_with_defaults(config_settings(stored)), length=HASH_LENGTH) != config_hash(cfg):
            diff = _diff(config_settings(stored), config_settings(cfg))
            refused.append(f"{name}: its stored config differs from today's ({diff}); not imported")
            continue
        row = variants.get(variant)
        if row is None or key[1] not in row["seeds"]:
            refused.append(f"{name}: the report has no grok epoch for it; not imported")
            continue
        i = row["seeds"].index(key[1])
        censored = bool(row["censored"][i])
        grok = None if censored else int(row["grok_epochs"][i])
        budget = int(row["budget"][i])
        records.append(
            RunRecord(
                variant=variant,
                seed_index=key[1],
                model_seed=int(cfg.seed),
                config_hash=config_hash(cfg),
                config=config_settings(cfg),
                grok_epoch=grok,
                censored=censored,
                budget=budget,
                # early stop at grok (stop_after_grok=0): a grokked run trained exactly to its grok epoch
                epochs_trained=budget if censored else grok,
                wall_seconds=seconds.get(name),
                device=str(stored.get("device", "unknown")),
                versions=versions,
                spike=None,
                source=f"{path.as_posix()} (a report written before the ledger)",
            )
        )
    return records, refused
