"""`bumps claims`: quick grid end to end, the report's structure, bad input."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bumps.errors import BumpsError
from bumps.lowrank.claims import CLAIM_IDS, check_memory, toy_grid, vector_regression_plateau
from bumps.report.claims import run_claims
from bumps.stats import boot, boot_diff

ROOT = Path(__file__).resolve().parents[1]


def test_grid_covers_every_listed_factor_value():
    g = toy_grid()
    assert {c.rank for c in g.values()} == {1, 2, 4, 10, 100}
    assert {c.optimizer for c in g.values()} == {"gd", "adam", "adamw"}
    assert any(c.n_learned == c.rank for c in g.values()) and any(c.n_learned == 2 * c.rank for c in g.values())
    assert {c.weight_decay > 0 for c in g.values()} == {True, False}
    assert {c.targets for c in g.values()} == {"random", "orthonormal"}
    assert any(len(set(c.strengths())) > 1 for c in g.values())
    assert all(c.seeds >= 128 for c in g.values() if c.rank < 100)


def test_vector_regression_has_no_plateau_but_the_rule_could_fail():
    assert (vector_regression_plateau(8, 20, 1500, 0.01, 0.1) > 0.999).all()  # log-loss is a straight line
    from bumps.lowrank.claims import _loss_times, log_linearity

    t = np.arange(3000)
    s_curve = 0.5 - 0.5 / (1 + np.exp(-(t - 1500) / 50.0))  # plateau, then a drop
    assert _loss_times(s_curve[:, None], t, np.array([0.5]))["plateau_fraction"][0] > 0.8
    assert log_linearity(s_curve[:, None])[0] < 0.9  # control: a plateau is far from a line


def test_bootstrap_cis():
    v, lo, hi = boot(np.r_[np.zeros(50), np.ones(50)])
    assert v == 0.5 and 0.35 < lo < 0.5 < hi < 0.65
    d, lo, hi = boot_diff(np.ones(30), np.zeros(30))
    assert d == lo == hi == 1


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("claims")
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "cli.py"),
            "claims",
            "--quick",
            "--seeds",
            "6",
            "--max-knockout-bumps",
            "4",
            "--out",
            str(out),
            "--figures",
            str(out),
            "--cache",
            str(out / "cache"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_quick_claims_writes_every_claim_and_the_specified_json(quick):
    out, proc = quick
    report = json.loads((out / "claims.json").read_text())
    assert [c["id"] for c in report["claims"]] == list(CLAIM_IDS)
    for c in report["claims"]:
        assert c["verdict"] in ("supported", "not supported", "inconclusive")
        assert set(c) == {"id", "statement", "statistic", "value", "ci_low", "ci_high", "n_seeds", "rule", "verdict"}
    keys = {
        "config",
        "seed",
        "series",
        "loser",
        "target",
        "unit",
        "role",
        "at",
        "step",
        "start_step",
        "peak_step",
        "end_step",
        "persists",
        "drop_ratio",
    }
    assert report["knockouts"] and all(keys <= set(k) for k in report["knockouts"])
    assert {k["role"] for k in report["knockouts"]} == {"competitor", "control"}
    assert {k["at"] for k in report["knockouts"]} == {"peak", "start"}
    for k in report["knockouts"]:
        assert k["step"] == (k["peak_step"] if k["at"] == "peak" else k["start_step"])
        assert k["unit"] != k["loser"]
    series = {s["series"] for s in report["series_bumps"]}
    assert series == {"inner_a", "inner_b", "target_norm_a", "target_norm_b", "sv_a", "sv_b", "loss"}
    md = (out / "claims.md").read_text()
    assert md.count("\n| ") >= 10 and (out / "claims_knockouts.png").stat().st_size > 1000
    assert "| 8 |" in proc.stdout


def test_rerun_resumes_from_the_cache(quick):
    out, _ = quick
    t = run_claims(seeds=6, quick=True, max_knockout_bumps=4, cache=out / "cache", claims=["5"])
    assert [c["id"] for c in t["claims"]] == ["5"]


@pytest.mark.parametrize(
    "args,match",
    [
        (["--seeds", "0"], "--seeds must be >= 1"),
        (["--only", "3,42"], "unknown claim 42"),
        (["--configs", "gd_r4,gd_r7"], "unknown configuration gd_r7"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, match, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "cli.py"),
            "claims",
            "--quick",
            "--out",
            str(tmp_path),
            "--figures",
            str(tmp_path),
            *args,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 2
    assert match in proc.stderr and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "claims.md").exists()


def test_grid_too_large_for_memory_is_refused_with_the_estimate():
    with pytest.raises(BumpsError, match=r"needs about .* GiB .* only 1\.0 GiB is free"):
        check_memory(toy_grid(seeds=100000), available=1 << 30)
    assert check_memory(toy_grid(seeds=4, quick=True), available=1 << 30) > 0
