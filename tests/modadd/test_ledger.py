"""The probe ablation's run ledger: records, hashes, seeding from old reports, locking, spike checks."""

from __future__ import annotations

import json
import multiprocessing as mp
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bumps.errors import BumpsError
from bumps.modadd.ablation import ablation_configs, train_study
from bumps.modadd.ledger import (
    TRANSITION_PAD,
    Ledger,
    RunRecord,
    SpikeCheck,
    config_hash,
    import_report,
    spike_check,
)

ROOT = Path(__file__).resolve().parents[2]
TINY = dict(train_frac=0.7, d_model=16, d_mlp=32, lr=0.01)


def record(variant="k0", seed=0, digest=None, grok=300):
    cfg = ablation_configs("tl-demo", 11, [variant], [seed], 40, **TINY)[(variant, seed)]
    return RunRecord(
        variant,
        seed,
        cfg.seed,
        digest or config_hash(cfg),
        {},
        grok,
        grok is None,
        40,
        grok or 40,
        1.0,
        "cpu",
        {"torch": "x"},
        SpikeCheck([100, 300], [250, 50], []),
    )


def test_round_trip_dedup_and_a_missing_file_is_empty(tmp_path):
    path = tmp_path / "sub" / "ledger.json"
    assert Ledger.load(path).records == []
    book = Ledger(path)
    assert book.add([record(seed=0), record(seed=1)]) and book.add([record(seed=0)]) == []
    back = Ledger.load(path)
    assert back.records == book.records and len(back.records) == 2
    assert back.records[0].spike.spiked and back.records[0].spike.train_spiked and not back.records[0].spike.test_spiked
    assert back.records[0].spike.in_window([50, 250, 301]) == [250]
    assert not list(path.parent.glob(".*"))  # no temp or lock file left behind
    path.write_text('{"format": 99, "records": []}')
    with pytest.raises(BumpsError, match="not a probe-ablation ledger"):
        Ledger.load(path)


def _add_many(path: str, seed: int) -> None:
    book = Ledger(path)  # loaded before the other process wrote: add() must re-read under the lock
    for k in range(5):
        book.add([record(seed=seed, digest=f"{seed:02d}{k:014d}")])


def test_two_processes_appending_keep_every_record(tmp_path):
    path = str(tmp_path / "ledger.json")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_add_many, args=(path, s)) for s in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert len(Ledger.load(path).records) == 10


def test_a_record_written_before_a_config_field_existed_still_matches():
    cfg = ablation_configs("tl-demo", 113, ["full"], [0])[("full", 0)]
    book = Ledger.load(ROOT / "reports" / "probe_ablation_runs.json")
    rec = book.find(cfg)
    assert rec is not None and rec.grok_epoch is not None
    older = replace(rec, config={k: v for k, v in rec.config.items() if k != "probe_lr"}, config_hash="0" * 16)
    assert older.matches(config_hash(cfg))  # the missing key had its default value
    changed = replace(older, config={**older.config, "lr": 0.5})
    assert not changed.matches(config_hash(cfg))


def test_recording_only_settings_do_not_change_the_hash():
    cfg = ablation_configs("tl-demo", 113, ["full"], [0])[("full", 0)]
    assert config_hash(replace(cfg, neuron_every=0, neuron_dtype="float16")) == config_hash(cfg)
    assert config_hash(replace(cfg, eval_every=10 * cfg.eval_every)) != config_hash(cfg)


def test_import_report_takes_matching_configs_and_refuses_others(tmp_path):
    configs = ablation_configs("tl-demo", 113, ["baseline", "full", "k0", "frozen", "hidden-l2"], [0])
    data = json.loads((ROOT / "reports" / "probe_ablation_controls.json").read_text())
    data["meta"]["configs"]["k0_seed0"]["lr"] = 0.5  # a run trained with other settings
    data["meta"]["configs"]["wd7_seed0"] = data["meta"]["configs"]["baseline_seed0"]  # not in the study
    src = tmp_path / "old.json"
    src.write_text(json.dumps(data))
    recs, refused = import_report(src, configs)
    assert sorted(r.variant for r in recs) == ["baseline", "frozen", "full", "hidden-l2"]
    assert any(line.startswith("k0_seed0: its stored config differs") and "lr=0.5 stored" in line for line in refused)
    assert any(line.startswith("wd7_seed0: not in this study") for line in refused)
    full = next(r for r in recs if r.variant == "full")
    assert full.grok_epoch == 3040 and full.epochs_trained == 3040 and full.spike is None
    assert full.config_hash == config_hash(configs[("full", 0)]) and full.source.startswith(src.as_posix())
    with pytest.raises(BumpsError, match="cannot read"):
        import_report(tmp_path / "missing.json", configs)


def _curves(spike_at: int | None, grok: int = 3000, extra_spike: int | None = None) -> dict:
    step = np.arange(0, grok + 1, 10)
    acc = np.clip((step - 1500) / 1500, 0.01, 1.0)
    acc[-1] = 0.995
    train = np.full(len(step), 1e-4)
    test = np.linspace(8, 0.05, len(step))
    for at in (spike_at, extra_spike):
        if at is not None:
            i = int(np.searchsorted(step, at))
            train[i : i + 8] = 1e-4 * 10 ** np.linspace(2.5, 0.1, 8)
    return {"step": step, "train_loss": train, "test_loss": test, "test_acc": acc, "grok_epoch": grok}


def test_spike_check_finds_a_spike_in_the_transition_and_not_outside():
    check = spike_check(_curves(2200, extra_spike=400))
    assert check.window == [1640 - TRANSITION_PAD, 3000]  # last eval below 10% test accuracy: epoch 1640
    assert check.spiked and check.train_spiked and not check.test_spiked
    assert check.in_window(check.train_spikes) == [2200] and 400 in check.train_spikes
    quiet = spike_check(_curves(None))
    assert not quiet.spiked and quiet.train_spikes == []
    only_early = spike_check(_curves(400))
    assert not only_early.spiked and only_early.train_spikes == [400]
    assert spike_check({**_curves(None), "grok_epoch": -1}) is None  # censored: no transition


def test_interrupted_session_keeps_the_records_of_finished_ensembles(tmp_path, monkeypatch):
    import bumps.modadd.ablation as ab

    configs = ablation_configs("tl-demo", 11, ["baseline", "k0"], [0], 20, **TINY)
    real, calls = ab.train_many, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(ab, "train_many", flaky)
    book = Ledger(tmp_path / "ledger.json")
    with pytest.raises(KeyboardInterrupt):
        train_study(configs, tmp_path / "runs", book, threads=1, max_members=1)
    assert [r.variant for r in Ledger.load(tmp_path / "ledger.json").records] == ["baseline"]
    monkeypatch.setattr(ab, "train_many", real)
    added = train_study(configs, tmp_path / "runs", Ledger.load(tmp_path / "ledger.json"), threads=1)
    assert [r.variant for r in added] == ["k0"]  # the baseline is not trained again
