"""bumps.view.data: every scalar series charted with exact values, events by kind, records and seeds."""

import json

import numpy as np
import pytest

from bumps.io.runfile import load_run
from bumps.io.schema import EXTRA_SERIES
from bumps.lowrank.invariants import invariant_series
from bumps.view.data import (
    chart,
    chart_window,
    events_of,
    record_payload,
    run_events,
    run_payload,
    run_status,
    seed_payload,
)


def test_events_rows_are_drawn_as_they_come():
    result = {
        "bumps": [{"series": "x", "index": [0], "peak_step": 5, "start_step": 1, "end_step": 9}],
        "events": [
            {"kind": "spike", "series": "x", "index": [0], "start_step": 2, "peak_step": 3, "end_step": 4},
            {"kind": "phase_change", "series": "y", "index": [], "start_step": 10, "steepest_step": 12, "end_step": 20},
        ],
    }
    rows = events_of(result)
    assert [(r["kind"], r["at_step"]) for r in rows] == [("spike", 3), ("phase_change", 12)]


def test_bumps_rows_are_the_fallback_as_kind_bump():
    bump = {"series": "x", "index": [1], "peak_step": 5, "start_step": 1, "end_step": 9}
    assert events_of({"bumps": [bump]}) == [{**bump, "kind": "bump", "at_step": 5}]


def test_run_events_are_the_detectors(view_runs, monkeypatch):
    import bumps.view.data as data
    from bumps.detect.analysis import analyze, load_source

    monkeypatch.setattr(data, "_event_params", lambda: None)  # a detector that knows bumps only
    run = load_run(view_runs["modadd"])
    got = run_events(run)
    families = {"freq_norm", "freq_norm_wl", "neuron_freq"}
    want = events_of(analyze(load_source(view_runs["modadd"])))
    assert [e for e in got if e["series"] in families] == want and want, "the detector's rows, as it wrote them"
    scalars = {e["series"] for e in got} - families
    assert scalars <= set(EXTRA_SERIES["modadd"])  # the scalar series are searched too


def test_run_events_ask_for_every_kind_the_detector_knows(view_runs):
    import bumps.view.data as data

    if data._event_params() is None:
        pytest.skip("this detector finds bumps only")
    kinds = {e["kind"] for e in run_events(load_run(view_runs["modadd"]))}
    assert kinds <= {"bump", "spike", "phase_change"} and kinds - {"bump"}


def test_every_scalar_series_is_charted_with_recorded_values(view_runs):
    run = load_run(view_runs["modadd"])
    page = run_payload(run, "modadd.pt", buckets=4)
    json.dumps(page, allow_nan=False)
    charted = {s["key"]: (c, s) for c in page["charts"] for s in c["series"]}
    scalar = [k for k, (axes, _) in EXTRA_SERIES["modadd"].items() if k in run and not axes]
    assert sorted(charted) == sorted(scalar)
    for key, (c, s) in charted.items():
        assert c["log"] == ("loss" in key)
        values = np.asarray(run[key], dtype=np.float64)
        if key == "train_loss_every_epoch":
            steps = np.arange(len(values))  # its own epoch axis
        else:
            steps = np.asarray(run["step"])
        for x, y in zip(c["x"], s["y"], strict=True):
            if y is not None:  # every shown point is the recorded value at that step
                assert values[np.flatnonzero(steps == x)[0]] == y
        assert max(v for v in s["y"] if v is not None) == values.max()
    assert charted["train_loss_every_epoch"][0]["points"] < charted["train_loss_every_epoch"][0]["samples"]


def test_toy_loss_is_one_line_per_seed(view_runs):
    page = run_payload(load_run(view_runs["toy"]), "toy.pt")
    (losses,) = page["charts"]
    assert [s["label"] for s in losses["series"]] == ["loss seed 0", "loss seed 1"] and losses["log"]
    assert page["lowrank"]["seeds"] == 2 and page["lowrank"]["first"]["seed"] == 0


def test_log_charts_leave_out_non_positive_values():
    c = chart("c", "c", True, [("k", "k", np.arange(4), np.array([1.0, 0.0, -1.0, 2.0]))], 10)
    assert c["series"][0]["y"] == [1.0, None, None, 2.0]


def test_modadd_view_has_wavetable_key_frequencies_and_phases(view_runs):
    run = load_run(view_runs["modadd"])
    m = run_payload(run, "m", columns=5)["modadd"]
    wt = m["wavetable"]
    assert len(wt["records"]) == 5 and wt["records"][0] == 0 and wt["records"][-1] == len(run["step"]) - 1
    assert wt["freq_norm"][2] == np.asarray(run["freq_norm"][wt["records"][2]], dtype=np.float64).tolist()
    assert m["freqs"] == 5 and m["neurons"] == 32 and "memorisation_end" in m["phases"]
    assert m["key_freqs"] == run["key_freqs"].tolist()


def test_record_payload_is_one_record_exactly(view_runs):
    run = load_run(view_runs["modadd"])
    r = record_payload(run, 3)
    assert r["step"] == int(run["step"][3])
    assert r["neuron_freq"] == np.asarray(run["neuron_freq"][3], dtype=np.float64).tolist()
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


def test_chart_window_is_the_span_only_finer(view_runs):
    run = load_run(view_runs["modadd"])
    w = chart_window(run, "losses", 10, 30, buckets=1000)
    every = next(s for s in w["series"] if s["key"] == "train_loss_every_epoch")
    shown = [(x, y) for x, y in zip(w["x"], every["y"], strict=True) if y is not None]
    assert [x for x, _ in shown] == list(range(9, 32))  # every sample in the span, and one either side
    assert [y for _, y in shown] == np.asarray(run["train_loss_every_epoch"][9:32], dtype=np.float64).tolist()
    with pytest.raises(KeyError, match="no chart 'nope'"):
        chart_window(run, "nope", 0, 1)


def test_event_groups_split_the_unit_families_off(view_runs):
    run = load_run(view_runs["modadd"])
    curves, units = run_events(run, "curves"), run_events(run, "units")
    assert {e["series"] for e in units} <= {"neuron_freq"} and units
    assert "neuron_freq" not in {e["series"] for e in curves}
    assert sorted(map(str, curves + units)) == sorted(map(str, run_events(run)))
    with pytest.raises(ValueError, match="group must be one of"):
        run_events(run, "nope")
