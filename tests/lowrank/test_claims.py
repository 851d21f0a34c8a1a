"""`bumps claims`: quick grid end to end, the report's structure, bad input."""

import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bumps.errors import BumpsError
from bumps.lowrank.claims import CLAIM_IDS, check_memory, toy_grid, toy_rules, vector_regression
from bumps.modadd.claims import MODADD_CLAIMS
from bumps.report.claims import run_claims
from bumps.stats import STAT, verdict

ROOT = Path(__file__).resolve().parents[2]


def test_grid_covers_every_listed_factor_value():
    g = toy_grid()
    assert {c.rank for c in g.values()} == {1, 2, 4, 10, 100}
    assert {c.optimizer for c in g.values()} == {"gd", "adam", "adamw"}
    assert any(c.n_learned == c.rank for c in g.values()) and any(c.n_learned == 2 * c.rank for c in g.values())
    assert {c.weight_decay > 0 for c in g.values()} == {True, False}
    assert {c.targets for c in g.values()} == {"random", "orthonormal"}
    assert any(len(set(c.strengths())) > 1 for c in g.values())
    assert all(c.seeds >= 128 for c in g.values() if c.rank < 100)


def test_vector_regression_has_no_plateau_and_claim_1s_rule_fails_a_plateau():
    v = vector_regression(8, 20, 1500, 0.01, 0.1)
    # an exponential: t10/t90 = ln(1/0.9)/ln(10) = 0.0458 whatever the rate (up to the step grid)
    assert np.allclose(v["plateau_fraction"], math.log(1 / 0.9) / math.log(10), atol=0.01)
    assert (v["log_r2"] > 0.999).all()  # the earlier statistic: 1 for any exponential, so it could not fail
    from bumps.lowrank.claims import _loss_times, log_linearity

    t = np.arange(3000)
    s_curve = 0.5 - 0.5 / (1 + np.exp(-(t - 1500) / 50.0))  # plateau, then a drop
    pf = _loss_times(s_curve[:, None], t, np.array([0.5]))["plateau_fraction"][0]
    assert pf > 0.8
    assert log_linearity(s_curve[:, None])[0] < 0.9  # control: a plateau is far from a line
    rule = toy_rules()["1"].rule
    assert rule.decide((pf, pf - 0.01, pf + 0.01)) == "not supported"  # the rule can fail
    assert rule.decide((0.046, 0.045, 0.047)) == "supported"


# The verdict expressions toy_claims used before its rules became data: the (statistic, index) entries
# they read (index 0 value, 1 CI low, 2 CI high), the thresholds they compare with, (supported, not supported).
OLD = {
    "1": ([("stat", 1), ("stat", 2)], [0.99, 0.9], lambda v: v["stat"][1] > 0.99, lambda v: v["stat"][2] < 0.9),
    "2": ([("stat", 1), ("stat", 2)], [0.5, 0.3], lambda v: v["stat"][1] > 0.5, lambda v: v["stat"][2] < 0.3),
    "3": ([("stat", 1), ("stat", 2)], [0.9, 0.5], lambda v: v["stat"][1] > 0.9, lambda v: v["stat"][2] < 0.5),
    "4": (
        [("stat", 1), ("stat", 2), ("full", 1), ("full", 2)],
        [0, 0.1, 0.3],
        lambda v: v["stat"][1] > 0 and v["full"][2] < 0.1,
        lambda v: v["stat"][2] < 0 or v["full"][1] > 0.3,
    ),
    "5": (
        [("stat", 0), ("gd_r2", 1), ("gd_r4", 1), ("gd_r10", 1)],
        [0],
        lambda v: v["stat"][0] == 0 and min(v[k][1] for k in ("gd_r2", "gd_r4", "gd_r10")) > 0,
        lambda v: v["stat"][0] > 0,
    ),
    "6": (
        [("stat", 1), ("stat", 2)],
        [0.15, 0.95],
        lambda v: v["stat"][1] >= 0.15 and v["stat"][2] <= 0.95,
        lambda v: v["stat"][2] < 0.15 or v["stat"][1] > 0.95,
    ),
    "7": ([("stat", 1), ("stat", 2)], [0.05, 0.2], lambda v: v["stat"][2] < 0.05, lambda v: v["stat"][1] > 0.2),
    "8": (
        [("stat", 1), ("stat", 2), ("competitor", 2), ("control", 1)],
        [0.3, 0.1],
        lambda v: v["stat"][1] > 0.3 and v["competitor"][2] < v["control"][1],
        lambda v: v["stat"][2] < 0.1,
    ),
    "9": ([("stat", 1), ("stat", 2)], [0.2, 0.05], lambda v: v["stat"][1] > 0.2, lambda v: v["stat"][2] < 0.05),
    "10": (
        [("stat", 1), ("stat", 2), ("stops", 0), ("bumps", 1), ("bumps", 2)],
        [0, 1, 0.5],
        lambda v: v["stat"][2] < 0 and v["stops"][0] == 1 and v["bumps"][1] <= 0 <= v["bumps"][2],
        lambda v: v["stat"][1] > 0 or v["stops"][0] < 0.5,
    ),
}


def _rule_of_the_old_expressions(cid: str):
    """The registry rule the old expressions wrote: the current one, or the earlier one it replaced (1, 8)."""
    entry = toy_rules()[cid]
    return entry.revisions[-1].rule if cid in ("1", "8") else entry.rule


@pytest.mark.parametrize("cid", list(OLD))
def test_each_rule_decides_as_the_old_expressions_did(cid):
    """Every combination of the entries the old expressions read, each on, just below or just above one of
    the thresholds, or nan; the entries they did not read are nan (a rule reading them would differ)."""
    reads, thresholds, yes, no = OLD[cid]
    pool = sorted({t + d for t in thresholds for d in (-0.01, 0.0, 0.01)}) + [math.nan]
    rule = _rule_of_the_old_expressions(cid)
    assert rule.stats() == {k for k, _ in reads}
    for combo in itertools.product(pool, repeat=len(reads)):
        # claim 5's higher-rank fractions are bootstraps of 0/1 seed flags: never nan (min() is order-dependent)
        if cid == "5" and any(math.isnan(x) for x in combo[1:]):
            continue
        values = {k: [math.nan] * 3 for k, _ in reads}
        for (k, i), x in zip(reads, combo, strict=True):
            values[k][i] = x
        assert rule.decide(values) == verdict(yes(values), no(values)), values


def _stored(c: dict) -> tuple:
    nan = lambda x: math.nan if x is None else x  # noqa: E731  (the JSON stores non-finite values as null)
    return tuple(nan(c[k]) for k in ("value", "ci_low", "ci_high"))


def test_committed_report_verdicts_follow_the_rules():
    """Every stored verdict of reports/claims.json that depends only on stored fields is its rule's decision
    on the stored (4-decimal) value and CI; claims 4, 5, 8 and 10 also read statistics the JSON keeps only as
    rounded prose in ``statistic``."""
    report = json.loads((ROOT / "reports" / "claims.json").read_text())
    checked = []
    sections = [
        (report["claims"], toy_rules()),
        (report["modadd"]["claims"] if report.get("modadd") else [], MODADD_CLAIMS),
    ]
    for rows, table in sections:
        for c in rows:
            spec = table[c["id"]]
            assert c["statement"] == spec.statement
            if spec.rule.stats() == {STAT}:
                assert spec.rule.decide(_stored(c)) == c["verdict"], c["id"]
                checked.append(c["id"])
    assert {"1", "2", "3", "6", "7", "7s", "9"} <= set(checked)
    assert not {"4", "5", "8", "8c", "10"} & set(checked)


def test_multi_statistic_rules_read_their_extra_statistics():
    rules = toy_rules()
    assert rules["4"].rule.stats() == {STAT, "full"}
    assert rules["5"].rule.stats() == {STAT, "gd_r2", "gd_r4", "gd_r10"}
    assert rules["8"].rule.stats() == rules["8c"].rule.stats() == {STAT, "gap"}
    assert rules["8"].revisions[0].rule.stats() == {STAT, "competitor", "control"}
    assert rules["10"].rule.stats() == {STAT, "stops", "bumps"}
    assert "CI contains 0" in rules["10"].rule.describe()
    assert "CI high < the control drop ratio's CI low" in rules["8"].revisions[0].rule.describe()
    # the paired claim-8 rule: the drop-ratio difference and the persistence gap must both clear 0
    r = rules["8"].rule
    assert r.decide({STAT: (0.4, 0.2, 0.6), "gap": (0.2, 0.05, 0.3)}) == "supported"
    assert r.decide({STAT: (0.4, 0.2, 0.6), "gap": (0.1, -0.05, 0.2)}) == "inconclusive"
    assert r.decide({STAT: (0.0, -0.1, 0.05), "gap": (0.2, 0.05, 0.3)}) == "not supported"


def test_every_toy_rule_is_registered_and_the_revised_ones_say_why():
    rules = toy_rules()
    assert tuple(rules) == CLAIM_IDS
    assert all(e.status != "changed, not registered" for e in rules.values())
    assert {k for k, e in rules.items() if e.status == "revised after data"} == {"1", "2", "3", "8", "9"}
    assert {k for k, e in rules.items() if e.status == "added after data"} == {
        "7s",
        "8c",
        "R1",
        "R2",
        "R3",
        "MD1",
        "MD3b",
    }
    assert all(r.reason for e in rules.values() for r in e.revisions)


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
        assert set(c) == {
            "id",
            "statement",
            "statistic",
            "value",
            "ci_low",
            "ci_high",
            "n_seeds",
            "rule",
            "verdict",
            "registry",
        }
        assert c["registry"]["status"] in ("registered", "revised after data", "added after data")
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
    assert {k["at"] for k in report["knockouts"]} == {"peak", "start", "peak_causal"}
    for k in report["knockouts"]:
        assert k["step"] == (k["start_step"] if k["at"] == "start" else k["peak_step"])
        assert k["unit"] != k["loser"]
    series = {s["series"] for s in report["series_bumps"]}
    assert series == {"inner_a", "inner_b", "target_norm_a", "target_norm_b", "sv_a", "sv_b", "loss"}
    md = (out / "claims.md").read_text()
    assert md.count("\n| ") >= 10 and (out / "claims_knockouts.png").stat().st_size > 1000
    assert "claim 8 — verdict: " in proc.stdout and "| 8 |" in md  # the terminal shows blocks, the file a table


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
