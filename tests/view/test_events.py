"""bumps.view.events: the detector's rows as they come, every kind it knows, bumps as the fallback."""

import pytest

from bumps.io.runfile import load_run
from bumps.io.schema import EXTRA_SERIES
from bumps.view.events import events_of, run_events


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
    import bumps.view.events as events_mod
    from bumps.detect.analysis import analyze, load_source

    monkeypatch.setattr(events_mod, "_event_params", lambda: None)  # a detector that knows bumps only
    run = load_run(view_runs["modadd"])
    got = run_events(run)
    families = {"freq_norm", "freq_norm_wl", "neuron_freq"}
    want = events_of(analyze(load_source(view_runs["modadd"])))
    assert [e for e in got if e["series"] in families] == want and want, "the detector's rows, as it wrote them"
    scalars = {e["series"] for e in got} - families
    assert scalars <= set(EXTRA_SERIES["modadd"])  # the scalar series are searched too


def test_run_events_ask_for_every_kind_the_detector_knows(view_runs):
    import bumps.view.events as events_mod

    if events_mod._event_params() is None:
        pytest.skip("this detector finds bumps only")
    kinds = {e["kind"] for e in run_events(load_run(view_runs["modadd"]))}
    assert kinds <= {"bump", "spike", "phase_change"} and kinds - {"bump"}


def test_event_groups_split_the_unit_families_off(view_runs):
    run = load_run(view_runs["modadd"])
    curves, units = run_events(run, "curves"), run_events(run, "units")
    assert {e["series"] for e in units} <= {"neuron_freq"} and units
    assert "neuron_freq" not in {e["series"] for e in curves}
    assert sorted(map(str, curves + units)) == sorted(map(str, run_events(run)))
    with pytest.raises(ValueError, match="group must be one of"):
        run_events(run, "nope")
