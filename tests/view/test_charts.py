"""bumps.view.charts: every scalar series charted with recorded values only, log axes, zoomed spans."""

import json

import numpy as np
import pytest

from bumps.io.runfile import load_run
from bumps.io.schema import EXTRA_SERIES
from bumps.view.charts import chart, chart_window
from bumps.view.data import run_payload


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


def test_log_charts_leave_out_non_positive_values():
    c = chart("c", "c", True, [("k", "k", np.arange(4), np.array([1.0, 0.0, -1.0, 2.0]))], 10)
    assert c["series"][0]["y"] == [1.0, None, None, 2.0]


def test_chart_window_is_the_span_only_finer(view_runs):
    run = load_run(view_runs["modadd"])
    w = chart_window(run, "losses", 10, 30, buckets=1000)
    every = next(s for s in w["series"] if s["key"] == "train_loss_every_epoch")
    shown = [(x, y) for x, y in zip(w["x"], every["y"], strict=True) if y is not None]
    assert [x for x, _ in shown] == list(range(9, 32))  # every sample in the span, and one either side
    assert [y for _, y in shown] == np.asarray(run["train_loss_every_epoch"][9:32], dtype=np.float64).tolist()
    with pytest.raises(KeyError, match="no chart 'nope'"):
        chart_window(run, "nope", 0, 1)
