"""Probe ablation: statistics on fabricated grok epochs, the report, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bumps.errors import BumpsError
from bumps.modadd.ablation import (
    PAGE_SPEEDUP,
    collect,
    parse_list,
    summarize,
    variant_overrides,
    write_report,
)
from bumps.stats import paired_speedup, sign_flip_p

epochs_st = st.lists(st.integers(100, 20000), min_size=2, max_size=6)


def fabricated(base, var, name="full", budget=25000):
    grok = {("baseline", s): e for s, e in enumerate(base)}
    grok.update({(name, s): e for s, e in enumerate(var)})
    return grok, dict.fromkeys(grok, budget)


def test_speedup_geometric_mean_ci_and_p_value_on_known_inputs():
    base, var = [6000, 9000, 12000], [2000, 3000, 4000]  # every seed exactly 3x faster
    r = paired_speedup(base, var)
    assert r["speedup"] == pytest.approx(3.0) and r["ci95"] == pytest.approx([3.0, 3.0])
    assert r["p_value"] == pytest.approx(2 / 8)  # all same sign: the most extreme of 2^3 sign patterns, two-sided
    r = paired_speedup([6000, 6000, 6000], [2000, 6000, 12000])  # ratios 3, 1, 0.5
    assert r["speedup"] == pytest.approx((3 * 1 * 0.5) ** (1 / 3))
    assert r["ci95"][0] == pytest.approx(0.5) and r["ci95"][1] == pytest.approx(3.0)  # all-one-seed resamples
    assert r["p_value"] > 0.5
    assert r["per_seed"] == pytest.approx([3, 1, 0.5])


@settings(max_examples=40, deadline=None)
@given(epochs_st, st.data())
def test_speedup_properties(base, data):
    var = data.draw(st.lists(st.integers(100, 20000), min_size=len(base), max_size=len(base)))
    r = paired_speedup(base, var)
    lo, hi = r["ci95"]
    ratios = np.array(base) / np.array(var)
    assert ratios.min() * (1 - 1e-9) <= lo <= r["speedup"] * (1 + 1e-9) and r["speedup"] <= hi * (1 + 1e-9)
    assert hi <= ratios.max() * (1 + 1e-9)
    # swapping roles inverts the speedup; scaling all epochs changes nothing
    inv = paired_speedup(var, base)
    assert inv["speedup"] == pytest.approx(1 / r["speedup"]) and inv["p_value"] == pytest.approx(r["p_value"])
    scaled = paired_speedup([7 * b for b in base], [7 * v for v in var])
    assert scaled["speedup"] == pytest.approx(r["speedup"]) and scaled["ci95"] == pytest.approx(r["ci95"])


def test_sign_flip_null_distribution_is_calibrated():
    """Under the null (symmetric log ratios) p is uniform-ish: P(p <= 0.25) at n=5 is <= 0.25 (exactly 0.25)."""
    rng = np.random.default_rng(1)
    ps = np.array([sign_flip_p(rng.normal(size=5)) for _ in range(2000)])
    assert abs((ps <= 0.25).mean() - 0.25) < 0.04
    shifted = np.array([sign_flip_p(rng.normal(loc=3, size=5)) for _ in range(200)])
    assert (shifted <= 2 / 32 + 1e-12).mean() > 0.9  # control: a real effect gives the smallest p


def test_summarize_censoring_and_page_claims():
    grok, budget = fabricated([6000, 9000, -1, 14000, 5000], [2000, -1, 3000, 4000, 2000])
    s = summarize(grok, budget)
    b, f = s["baseline"], s["full"]
    assert b["grok_epochs"] == [6000, 9000, None, 14000, 5000] and b["censored"] == [False, False, True, False, False]
    assert b["median"] == 9000  # censored seed counts as > 25000: median of 5000, 6000, 9000, 14000, >25000
    assert f["paired_seeds"] == [0, 3, 4] and f["censored_pairs"] == 2
    assert f["speedup"] == pytest.approx((3 * 3.5 * 2.5) ** (1 / 3))
    assert f["page_speedup"] == PAGE_SPEEDUP["full"] and f["page_claim_in_ci"] is True
    grok, budget = fabricated([6000, -1, -1], [2000, -1, -1])
    assert summarize(grok, budget)["baseline"]["median"] is None  # more than half censored: no median


def test_report_files(tmp_path):
    grok, budget = fabricated([6000, 9000, 12000], [5900, 9100, 11000], name="k0")
    s = summarize(grok, budget)
    meta = dict(
        command="bumps probe-ablation --p 113",
        preset="tl-demo",
        p=113,
        probe_weight=0.1,
        epochs=25000,
        model_seeds=[999, 1000, 1001],
        data_seed=598,
        versions={"torch": "x"},
    )
    md, js, png = write_report(s, meta, tmp_path / "sub" / "probe_ablation")
    text = md.read_text()
    assert "| k0 | stencil {0} | 5900, 9100, 11000 | 9100 |" in text and "2.55×" in text and "| no |" in text
    data = json.loads(js.read_text())
    assert data["variants"]["k0"]["page_claim_in_ci"] is False and data["meta"]["figure"] == "probe_ablation.png"
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"


def test_variants_and_lists():
    assert variant_overrides("full")["probe_stencil"] == (-1, 0, 1)
    assert variant_overrides("wd3.5") == {"weight_decay": 3.5}
    assert variant_overrides("frozen", 0.2) == {
        "probe_stencil": (-1, 0, 1),
        "probe_kind": "frozen",
        "probe_weight": 0.2,
    }
    with pytest.raises(BumpsError, match="unknown variant"):
        variant_overrides("k2")
    assert parse_list("0, 1,2", "seeds", int) == [0, 1, 2]
    for bad in ("0,x", "", "1,1"):
        with pytest.raises(BumpsError, match="--seeds"):
            parse_list(bad, "seeds", int)
    assert math.isnan(sign_flip_p(np.array([])))


SMALL = [
    "--preset",
    "tl-demo",
    "--p",
    "11",
    "--train-frac",
    "0.7",
    "--d-model",
    "16",
    "--d-mlp",
    "32",
    "--lr",
    "0.01",
    "--epochs",
    "40",
    "--seeds",
    "0,1",
    "--variants",
    "baseline,k0",
]


def _cli(args):
    from typer.testing import CliRunner

    import cli

    return CliRunner().invoke(cli.app, ["probe-ablation", *args])


def test_small_p_ablation_runs_resumes_and_reports(tmp_path):
    from bumps.io.runfile import load_run

    args = SMALL + ["--out-dir", str(tmp_path / "runs"), "--report", str(tmp_path / "rep" / "probe_ablation")]
    res = _cli(args)
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "rep" / "probe_ablation.json").read_text())
    for v in ("baseline", "k0"):
        for s, e in zip(data["variants"][v]["seeds"], data["variants"][v]["grok_epochs"], strict=True):
            run = load_run(tmp_path / "runs" / f"{v}_seed{s}.pt")
            assert e == (None if run["grok_epoch"] < 0 else run["grok_epoch"])
            assert run["config"]["seed"] == 999 + s and run["config"]["eval_every"] == 10
            assert tuple(run["config"]["probe_stencil"]) == ((0,) if v == "k0" else ())
            assert run["config"]["stop_reason"] in ("epochs", "stop-after-grok")
            assert run["config"]["stop_after_grok"] == 0 and run["config"]["epochs_done"] <= 40
            assert ("probe_choices" in run["config"]) == (v == "k0") and ("probe" in run) == (v == "k0")
    done = [load_run(f)["config"]["epochs_done"] for f in (tmp_path / "runs").glob("*.pt")]
    assert data["meta"]["compute"]["model_epochs"] == sum(done) and data["meta"]["compute"]["devices"] == ["cpu"]
    assert "model-epochs on cpu" in (tmp_path / "rep" / "probe_ablation.md").read_text()
    # --no-train reports the same table from the files alone
    assert _cli(args + ["--no-train", "--report", str(tmp_path / "rep2" / "pa")]).exit_code == 0
    assert json.loads((tmp_path / "rep2" / "pa.json").read_text())["variants"] == data["variants"]
    # a variant list without baseline reports grok epochs only (how a table is split over processes)
    only_k0 = [("k0" if a == "baseline,k0" else a) for a in args]
    assert _cli(only_k0 + ["--no-train", "--report", str(tmp_path / "rep3" / "pa")]).exit_code == 0
    k0 = json.loads((tmp_path / "rep3" / "pa.json").read_text())["variants"]
    assert (
        list(k0) == ["k0"]
        and k0["k0"]["speedup"] is None
        and k0["k0"]["grok_epochs"] == data["variants"]["k0"]["grok_epochs"]
    )
    # rerun: finished runs are reused, not retrained; the report is the same
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*.pt")}
    assert _cli(args).exit_code == 0
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*.pt")} == before
    assert json.loads((tmp_path / "rep" / "probe_ablation.json").read_text())["variants"] == data["variants"]


@pytest.mark.parametrize(
    "extra,match",
    [
        (["--variants", "baseline,k2"], "unknown variant"),
        (["--seeds", "0,0"], "twice"),
        (["--seeds", "-1"], ">= 0"),
        (["--probe-weight", "-1"], "--probe-weight"),
        (["--threads", "-1"], "--threads"),
        (["--no-train"], "no run files"),
    ],
)
def test_ablation_bad_input_is_one_line_exit_2(tmp_path, extra, match):
    import subprocess
    import sys

    res = subprocess.run(
        [
            sys.executable,
            "cli.py",
            "probe-ablation",
            *SMALL,
            *extra,
            "--out-dir",
            str(tmp_path),
            "--report",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2, res.stderr
    assert match in res.stderr and len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    assert not list(tmp_path.iterdir())


def test_unfinished_runs_are_censored_at_the_epoch_reached():
    runs = {
        ("baseline", 0): {"grok_epoch": 900, "config": {"epochs": 5000, "epochs_done": 900, "final": True}},
        ("k0", 0): {"grok_epoch": -1, "config": {"epochs": 5000, "epochs_done": 1200, "final": False}},
        ("k0", 1): {"grok_epoch": -1, "config": {"epochs": 5000, "epochs_done": 5000, "final": True}},
    }
    grok, budget = collect(runs)
    assert budget == {("baseline", 0): 5000, ("k0", 0): 1200, ("k0", 1): 5000}
    row = summarize(grok, budget)["k0"]
    assert row["censored"] == [True, True] and row["budget"] == [1200, 5000] and row["speedup"] is None


@pytest.mark.parametrize("name", ["probe_ablation", "probe_ablation_controls"])
def test_committed_reports_recompute_from_their_grok_epochs(name):
    """The committed table's speedups, intervals and p-values follow from its grok epochs by today's code."""
    data = json.loads((Path(__file__).resolve().parents[2] / "reports" / f"{name}.json").read_text())
    grok, epochs = {}, {}
    for v, row in data["variants"].items():
        for s, e, c, b in zip(row["seeds"], row["grok_epochs"], row["censored"], row["budget"], strict=True):
            grok[(v, s)], epochs[(v, s)] = (-1 if c else e), b
    assert json.loads(json.dumps(summarize(grok, epochs))) == data["variants"]
