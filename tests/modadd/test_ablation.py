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
    CENSORED,
    CLAIMS,
    GROKKED,
    NOT_RUN,
    TRAINING,
    SeedCell,
    ablation_configs,
    compare,
    judge_claims,
    page_number_rule,
    parse_list,
    remaining,
    remaining_commands,
    split_two,
    tables_payload,
    variant_overrides,
    variant_rows,
    write_report,
)
from bumps.stats import paired_speedup, ratio_interval, sign_flip_p

epochs_st = st.lists(st.integers(100, 20000), min_size=2, max_size=6)


def cells(epochs, budget=25000):
    """SeedCells from grok epochs: -1 censored at the budget, None not run, ("t", N) training at N."""
    out = []
    for s, e in enumerate(epochs):
        if e is None:
            out.append(SeedCell(s, NOT_RUN))
        elif isinstance(e, tuple):
            out.append(SeedCell(s, TRAINING, None, e[1]))
        elif e < 0:
            out.append(SeedCell(s, CENSORED, None, budget))
        else:
            out.append(SeedCell(s, GROKKED, e))
    return out


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


def test_variants_and_lists():
    assert variant_overrides("full")["probe_stencil"] == (-1, 0, 1)
    assert variant_overrides("wd3.5") == {"weight_decay": 3.5}
    assert variant_overrides("frozen", 0.2) == {
        "probe_stencil": (-1, 0, 1),
        "probe_kind": "frozen",
        "probe_weight": 0.2,
    }
    assert variant_overrides("hidden-l2-0.01") == {"probe_kind": "hidden-l2", "probe_weight": 0.01}
    assert variant_overrides("hidden-l2-1") == {"probe_kind": "hidden-l2", "probe_weight": 1.0}
    assert variant_overrides("hidden-l2", 0.1) == {"probe_kind": "hidden-l2", "probe_weight": 0.1}
    assert variant_overrides("frozen-matched")["probe_kind"] == "frozen-matched"
    assert variant_overrides("wd1.5") == {"weight_decay": 1.5}
    for bad in ("k2", "hidden-l2-", "hidden-l2-x", "frozen-matched2"):
        with pytest.raises(BumpsError, match="unknown variant"):
            variant_overrides(bad)
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


def _row(data, variant):
    return next(r for r in data["variants"] if r["variant"] == variant)


def test_small_p_ablation_runs_records_resumes_and_reports_from_the_ledger(tmp_path):
    from bumps.io.runfile import load_run
    from bumps.modadd.ledger import Ledger, config_hash

    ledger = tmp_path / "ledger.json"
    args = SMALL + ["--out-dir", str(tmp_path / "runs"), "--report", str(tmp_path / "rep" / "probe_ablation")]
    res = _cli(args + ["--ledger", str(ledger)])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "rep" / "probe_ablation.json").read_text())
    book = Ledger.load(ledger)
    configs = ablation_configs(
        "tl-demo", 11, ["baseline", "k0"], [0, 1], 40, train_frac=0.7, d_model=16, d_mlp=32, lr=0.01
    )
    assert len(book.records) == 4
    for (v, s), cfg in configs.items():
        run = load_run(tmp_path / "runs" / f"{v}_seed{s}.pt")
        rec = book.find(cfg)
        assert rec.config_hash == config_hash(cfg) and rec.variant == v and rec.seed_index == s
        assert rec.model_seed == 999 + s and rec.epochs_trained == run["config"]["epochs_done"] <= 40
        assert rec.grok_epoch == (None if run["grok_epoch"] < 0 else run["grok_epoch"])
        assert rec.censored == (run["grok_epoch"] < 0) and rec.budget == 40 and rec.device == "cpu"
        assert rec.source == "trained" and rec.versions["torch"]
        assert (rec.spike is None) == rec.censored
        cell = _row(data, v)["cells"][s]
        assert cell["grok_epoch"] == rec.grok_epoch and cell["status"] == ("censored" if rec.censored else "grokked")
    assert data["meta"]["compute"]["model_epochs"] == sum(r.epochs_trained for r in book.records)
    text = (tmp_path / "rep" / "probe_ablation.md").read_text()
    assert "## The page's claims" in text and "t with 1 degrees of freedom" in text
    # a rerun trains nothing and does not touch the run files or the ledger
    before = {f.name: f.stat().st_mtime_ns for f in (tmp_path / "runs").glob("*.pt")}
    ledger_before = ledger.read_bytes()
    assert _cli(args + ["--ledger", str(ledger)]).exit_code == 0
    assert {f.name: f.stat().st_mtime_ns for f in (tmp_path / "runs").glob("*.pt")} == before
    assert ledger.read_bytes() == ledger_before
    # a new session: the run files are gone, the ledger alone gives the same table (--no-train)
    for f in (tmp_path / "runs").glob("*.pt"):
        f.unlink()
    again = tmp_path / "rep2" / "pa"
    res = _cli(args + ["--ledger", str(ledger), "--no-train", "--report", str(again)])
    assert res.exit_code == 0, res.output
    data2 = json.loads(again.with_suffix(".json").read_text())
    assert data2["variants"] == data["variants"] and data2["claims"] == data["claims"]
    # a variant list without baseline reports grok epochs only (how a table is split over processes)
    only_k0 = [("k0" if a == "baseline,k0" else a) for a in args]
    res = _cli(only_k0 + ["--ledger", str(ledger), "--no-train", "--report", str(tmp_path / "rep3" / "pa")])
    assert res.exit_code == 0, res.output
    k0 = json.loads((tmp_path / "rep3" / "pa.json").read_text())["variants"]
    assert [r["variant"] for r in k0] == ["k0"] and k0[0]["speedup"] is None
    assert k0[0]["cells"] == _row(data, "k0")["cells"]
    # the default ledger lives in the run folder; an unknown variant there is "not run yet"
    more = [("baseline,k0,kp1" if a == "baseline,k0" else a) for a in args]
    res = _cli(more + ["--ledger", str(ledger), "--no-train", "--report", str(tmp_path / "rep4" / "pa")])
    assert res.exit_code == 0, res.output
    assert "| kp1 | stencil {+1} | not run yet |" in (tmp_path / "rep4" / "pa.md").read_text()


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


# ---------------------------------------------------------------------------- statistics and verdicts


def test_compare_is_the_t_interval_on_log_ratios_with_censored_counted():
    base = cells([6000, 9000, 12000, 14000, 5000])
    var = cells([2000, 3100, -1, ("t", 900), None])
    c = compare(base, var)
    assert c.n == 2 and c.censored == 2 and c.seeds == [0, 1]  # not-run seeds are neither used nor counted
    assert (c.ratio, c.low, c.high) == pytest.approx(ratio_interval([6000, 9000], [2000, 3100]))
    assert c.per_seed == pytest.approx([3.0, 9000 / 3100]) and c.p_value == pytest.approx(0.5)
    one = compare(cells([6000]), cells([2000]))
    assert one.ratio == pytest.approx(3.0) and one.low is None and one.high is None and one.n == 1
    assert compare(cells([6000]), cells([-1])).ratio is None and compare(cells([6000]), cells([-1])).censored == 1
    same = compare(cells([6000, 9000, 12000]), cells([2000, 3000, 4000]))  # every seed exactly 3x
    assert (same.ratio, same.low, same.high) == pytest.approx((3.0, 3.0, 3.0)) and same.p_value == 0.25
    # at n = 3 the t-interval is wider than the min-max range of the ratios (the bootstrap's bound)
    wide = compare(cells([6000, 6000, 6000]), cells([2000, 2500, 1800]))
    assert wide.low < min(wide.per_seed) and wide.high > max(wide.per_seed)


def test_page_number_rule_decides_at_its_thresholds():
    rule = page_number_rule(3.0)
    assert rule.decide((3.1, 2.5, 3.6)) == "supported"  # contains 3 and within [2.4, 3.75]
    assert rule.decide((3.1, 2.0, 4.5)) == "inconclusive"  # contains 3 but too wide to confirm it
    assert rule.decide((3.5, 3.1, 3.9)) == "not supported" and rule.decide((2.0, 1.5, 2.9)) == "not supported"
    assert rule.decide((None, None, None)) == "inconclusive"


def _study(**epochs):
    return {v: cells(e) for v, e in epochs.items()}


def test_claims_fastest_pair_introspection_regularisation():
    full = [3000, 3200, 3400]
    base = [10000, 12000, 11000]
    claims = {c.id: c for c in judge_claims(_study(baseline=base, full=full, k0=[4000, 3300, 4100]))}
    assert set(claims) == {"baseline-epoch", "speedup-full", "speedup-k0"}  # claims needing absent variants left out
    assert claims["baseline-epoch"].verdict == "not supported"
    # {-1,+1} clearly faster than both other pairs; then one pair equally fast: inconclusive; then faster: refuted
    pairs = dict(baseline=base, km1_kp1=[3000, 3100, 3050], km1_k0=[4000, 4200, 4100], k0_kp1=[5000, 5100, 4900])
    assert {c.id: c for c in judge_claims(_study(**pairs))}["fastest-pair"].verdict == "supported"
    pairs["k0_kp1"] = [3000, 3150, 3000]
    assert {c.id: c for c in judge_claims(_study(**pairs))}["fastest-pair"].verdict == "inconclusive"
    pairs["k0_kp1"] = [2000, 2100, 2050]
    pairs["k0"] = [None, None, None]
    got = {c.id: c for c in judge_claims(_study(**pairs))}
    assert got["fastest-pair"].verdict == "not supported" and got["add-km1-to-k0"].verdict == "not run yet"
    # the size-matched frozen probe as fast as the trained one: the introspection reading fails
    intro = judge_claims(_study(full=full, **{"frozen-matched": [3010, 3190, 3420]}))
    assert [c.verdict for c in intro if c.id == "introspection"] == ["not supported"]
    intro = judge_claims(_study(full=full, **{"frozen-matched": [6000, 6600, 6500]}))
    assert [c.verdict for c in intro if c.id == "introspection"] == ["supported"]
    # one regulariser reaching the trained probe's grok epoch decides "not just regularisation" against it
    regs = {r: [9000, 9500, 9900] for r in ("wd2", "wd1.5", "hidden-l2-0.01", "hidden-l2", "hidden-l2-1")}
    ok = {c.id: c for c in judge_claims(_study(full=full, **regs))}["not-regularisation"]
    assert ok.verdict == "supported" and ok.waiting == []
    regs["wd2"] = [3000, 3100, 3300]
    regs["wd1.5"] = [None, None, None]
    bad = {c.id: c for c in judge_claims(_study(full=full, **regs))}["not-regularisation"]
    assert bad.verdict == "not supported" and bad.waiting == ["wd1.5"]


def test_every_claim_rule_is_fixed_in_code_and_names_its_variants():
    ids = [c.id for c in CLAIMS]
    assert len(ids) == len(set(ids))
    for c in CLAIMS:
        assert set(c.rule.stats()) == set(c.stats), c.id
        for v in c.variants():
            variant_overrides(v)  # every variant a claim needs is a known variant


def test_remaining_and_the_two_process_commands():
    study = _study(baseline=[1, 2, 3], k0=[None, 5, ("t", 7)], wd2=[None, None, None], full=[1, 1, 1])
    todo = remaining(study)
    assert todo == {"k0": [0, 2], "wd2": [0, 1, 2]}
    parts = split_two({"a": [0, 1, 2], "b": [0, 1, 2], "c": [0], "d": [1, 2]})
    assert sorted(sum(parts, [])) == ["a", "b", "c", "d"] and len(parts) == 2 and not set(parts[0]) & set(parts[1])
    lines = remaining_commands("bumps probe-ablation --p 113", todo, "reports/probe_ablation_runs.json")
    assert lines[0] == "mkdir -p runs/probe_ablation/part" and lines[-1] == "wait" and len(lines) == 4
    assert all("--threads 1 --ledger reports/probe_ablation_runs.json" in x for x in lines[1:3])
    # one run per invocation, every remaining (variant, seed) exactly once over the two processes
    jobs = [j for x in lines[1:3] for j in x.split("for job in ")[1].split("; do")[0].split()]
    assert sorted(jobs) == sorted(f"{v}:{s}" for v, ss in todo.items() for s in ss)
    assert all("--seeds ${job#*:} --variants ${job%:*}" in x for x in lines[1:3])
    # each invocation its own partial report: a shared one is refused as made from other settings
    assert all("--report runs/probe_ablation/part/${job%:*}_${job#*:};" in x for x in lines[1:3])


def test_report_files(tmp_path):
    study = _study(baseline=[6000, 9000, 12000], k0=[5900, 9100, 11000], wd2=[None, None, None])
    rows = variant_rows(study)
    claims = judge_claims(study)
    meta = dict(
        command="bumps probe-ablation --p 113",
        preset="tl-demo",
        p=113,
        probe_weight=0.1,
        epochs=25000,
        model_seeds=[999, 1000, 1001],
        data_seed=598,
        ledger="reports/probe_ablation_runs.json",
        versions={"torch": "x"},
        compute=dict(runs=6, model_epochs=53000, wall_hours=1.5, devices=["cpu"]),
        remaining=remaining(study),
        remaining_commands=["wait"],
    )
    md, js, png = write_report(rows, claims, meta, tmp_path / "sub" / "probe_ablation")
    text = md.read_text()
    assert "| k0 | stencil {0} | 5900, 9100, 11000 | 9100 |" in text and "2.55×" in text
    assert "| wd2 | baseline, weight decay 2 | not run yet |" in text and "4.30 standard errors" in text
    assert "**not supported**" in text and "**Remaining** (3 runs)" in text
    data = json.loads(js.read_text())
    k0 = next(c for c in data["claims"] if c["id"] == "speedup-k0")
    assert k0["verdict"] == "not supported" and data["meta"]["figure"] == "probe_ablation.png"
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"


# ---------------------------------------------------------------------------- the committed study


ROOT = Path(__file__).resolve().parents[2]


def _study_configs():
    from bumps.modadd.ablation import DEFAULT_SEEDS, DEFAULT_VARIANTS

    return ablation_configs("tl-demo", 113, list(DEFAULT_VARIANTS), list(DEFAULT_SEEDS))


def test_committed_ledger_hashes_are_todays_configs():
    """Every committed record is the run today's code would train for its variant and seed (configs unchanged)."""
    from bumps.modadd.ledger import Ledger, config_hash

    book = Ledger.load(ROOT / "reports" / "probe_ablation_runs.json")
    assert len(book.records) >= 11
    for r in book.records:
        cfg = ablation_configs("tl-demo", 113, [r.variant], [r.seed_index])[(r.variant, r.seed_index)]
        assert r.config_hash == config_hash(cfg), (r.variant, r.seed_index)
    configs = _study_configs()
    assert configs[("hidden-l2", 0)].as_dict() == configs[("hidden-l2", 0)].as_dict()
    hl2 = ablation_configs("tl-demo", 113, ["hidden-l2", "hidden-l2-0.1"], [0])
    assert config_hash(hl2[("hidden-l2", 0)]) == config_hash(hl2[("hidden-l2-0.1", 0)])  # one run, two names


def test_committed_report_follows_from_the_committed_ledger():
    from bumps.modadd.ablation import study_cells
    from bumps.modadd.ledger import Ledger

    data = json.loads((ROOT / "reports" / "probe_ablation.json").read_text())
    # runs that were still training when it was written are not in the ledger: take their epoch from the report
    training = {
        (r["variant"], c["seed"]): c["reached"] for r in data["variants"] for c in r["cells"] if c["status"] == TRAINING
    }
    cells = study_cells(_study_configs(), Ledger.load(ROOT / "reports" / "probe_ablation_runs.json"), training)
    got = tables_payload(variant_rows(cells), judge_claims(cells))
    # to 12 significant digits: exp and log may differ in the last bit between CPUs (numpy's SIMD paths)
    assert _rounded(got["variants"]) == _rounded(data["variants"]) and _rounded(got["claims"]) == _rounded(
        data["claims"]
    )


def _rounded(x):
    """``x`` with every float rounded to 12 significant digits (containers walked)."""
    if isinstance(x, float):
        return float(f"{x:.12g}")
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_rounded(v) for v in x]
    return x


def test_remaining_commands_run_the_controls_first():
    todo = {"km1": [0, 1], "frozen-matched": [1, 2], "hidden-l2": [2]}
    lines = remaining_commands("bumps probe-ablation", todo, "ledger.json")
    first, second = (x.split("for job in ")[1].split("; do")[0].split() for x in lines[1:3])
    assert first == ["frozen-matched:1", "hidden-l2:2", "km1:1"] and second == ["frozen-matched:2", "km1:0"]
