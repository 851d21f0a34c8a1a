"""bumps.view.data: a run's first payload, the mod-add wavetable and records, toy seeds, run status."""

import numpy as np
import pytest

from bumps.io.runfile import load_run
from bumps.lowrank.invariants import invariant_series
from bumps.view.data import record_payload, run_payload, run_status, seed_payload


def test_toy_loss_is_one_line_per_seed(view_runs):
    page = run_payload(load_run(view_runs["toy"]), "toy.pt")
    (losses,) = page["charts"]
    assert [s["label"] for s in losses["series"]] == ["loss seed 0", "loss seed 1"] and losses["log"]
    assert page["lowrank"]["seeds"] == 2 and page["lowrank"]["first"]["seed"] == 0


def test_modadd_view_has_wavetable_key_frequencies_and_phases(view_runs):
    run = load_run(view_runs["modadd"])
    m = run_payload(run, "m", columns=5)["modadd"]
    wt = m["wavetable"]
    assert len(wt["records"]) == 5 and wt["records"][0] == 0 and wt["records"][-1] == len(run["step"]) - 1
    assert wt["freq_norm"][2] == np.asarray(run["freq_norm"][wt["records"][2]], dtype=np.float64).tolist()
    assert m["freqs"] == 5 and m["neurons"] == 32 and "memorisation_end" in m["phases"]
    assert m["key_freqs"] == run["key_freqs"].tolist()


def test_record_payload_is_one_record_exactly(tmp_path):
    from tests.view.fixtures import modadd_run

    run = load_run(modadd_run(tmp_path / "coarse.pt", neuron_every=10))
    r = record_payload(run, 3)
    assert r["step"] == int(run["step"][3]) == 15
    # the neuron table has its own cadence (every 10 epochs here): the latest at or before epoch 15
    assert r["neuron_step"] == 10 == int(run["neuron_step"][1])
    assert r["neuron_freq"] == np.asarray(run["neuron_freq"][1], dtype=np.float64).tolist()
    assert record_payload(run, 4)["neuron_step"] == 20
    assert record_payload(run, -1)["record"] == len(run["step"]) - 1
    with pytest.raises(IndexError, match="out of range"):
        record_payload(run, len(run["step"]))


def test_seed_payload_per_unit_and_invariant(view_runs):
    run = load_run(view_runs["toy"])
    d = seed_payload(run, 1, buckets=1000)
    inner = next(c for c in d["per_unit"] if c["id"] == "inner_a")
    assert len(inner["series"]) == 4  # rank 2 × 2 learned units
    assert inner["series"][1]["y"] == np.asarray(run["inner_a"][:, 1, 0, 1], dtype=np.float64).tolist()
    sv = next(c for c in d["invariant"] if c["id"] == "sv_a")
    want = invariant_series(run)["sv_a"][:, 1, 0]
    assert np.allclose([v for v in sv["series"][0]["y"]], want)
    with pytest.raises(IndexError, match="seed 2"):
        seed_payload(run, 2)


def test_run_status():
    autosave = {"config": {"final": False, "epochs_done": 40, "epochs": 100}}
    assert run_status(autosave) == ("in progress", "epoch 40 of 100")
    assert run_status({"config": {"stop_reason": "diverged", "diverged_epoch": 7}})[0] == "diverged"
    assert run_status({"config": {"stop_reason": "epochs"}, "step": [0, 1]}) == ("finished", "stopped: epochs")
