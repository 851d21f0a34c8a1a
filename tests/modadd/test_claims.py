"""The mod-add section of `bumps claims` from planted run files and knockout records."""

import itertools
import math

import numpy as np
import pytest

from bumps.errors import BumpsError
from bumps.io.runfile import atomic_save
from bumps.modadd.claims import MODADD_CLAIMS, modadd_claims, render_modadd
from bumps.stats import STAT, boot, verdict
from tests.modadd.test_phases import planted_run


def _records(gap_persists: bool):
    out = []
    for i in range(4):
        base = {
            "run": f"r{i}.pt",
            "series": "neuron_freq",
            "freq": 3,
            "unit": 2,
            "peak_step": 2000,
            "neurons": [],
            "freqs": [],
            "from_epoch": 2000,
            "start_step": 0,
            "end_step": 4600,
        }
        out.append({**base, "role": "competitor", "persists": not gap_persists, "drop_ratio": 0.1})
        out.append({**base, "role": "control", "persists": True, "drop_ratio": 1.0})
    return out


@pytest.fixture
def run_files(tmp_path):
    paths = []
    for seed in range(3):
        run = planted_run()
        run["config"] = {**run["config"], "seed": seed}
        paths.append(atomic_save(run, tmp_path / f"seed{seed}.pt"))
    return paths


def test_section_rows_and_verdicts(run_files):
    section = modadd_claims(run_files, _records(gap_persists=True))
    claims = {c["id"]: c for c in section["claims"]}
    assert [s["seed"] for s in section["seeds"]] == [0, 1, 2]
    assert claims["M1"]["value"] == 1.0 and claims["M1"]["verdict"] == "supported"
    assert claims["M2"]["value"] == 0.5 and claims["M2"]["verdict"] == "inconclusive"  # 1 trivial of 2 per series
    assert claims["M4"]["value"] == 1.0 and claims["M4"]["verdict"] == "supported"
    # the control of the knockout claim: when competitor knockouts leave the bump, it is not supported
    flat = {c["id"]: c for c in modadd_claims(run_files, _records(gap_persists=False))["claims"]}
    assert flat["M4"]["value"] == 0.0 and flat["M4"]["verdict"] == "not supported"
    # frequency knockouts (W_E or W_L norm bumps) make M5; an event whose unintervened continuation
    # loses the bump is left out of the gap
    freq = [
        {**r, "series": "freq_norm_wl" if r["run"] != "r0.pt" else "freq_norm", "unit": None}
        for r in _records(gap_persists=True)
    ]
    freq.append({**freq[0], "role": "none", "persists": False, "drop_ratio": 0.0})
    m5 = {c["id"]: c for c in modadd_claims(run_files, freq)["claims"]}["M5"]
    assert m5["n_seeds"] == 3 and m5["value"] == 1.0 and m5["verdict"] == "supported"  # 4 events, r0 left out
    d = section["drop_ratio_gaps"]["M4"]  # competitor 0.1 vs control 1.0 in 4 events: p = 2/2⁴
    assert d["per_event"] == pytest.approx([-0.9] * 4) and d["sign_flip_p"] == pytest.approx(0.125)
    text = "\n".join(render_modadd(section))
    assert "| M4 |" in text and "| 0 | 3300 |" in text


def test_no_runs_is_a_clear_error():
    with pytest.raises(BumpsError, match="no mod-add run files"):
        modadd_claims([])


# The verdict expressions modadd_claims used before its rules became data, on (value, CI low, CI high).
OLD = {
    "M1": ([0.5], lambda v: v[1] > 0.5, lambda v: v[2] < 0.5),
    "M2": ([0.5], lambda v: v[1] > 0.5, lambda v: v[2] < 0.5),
    "M3": ([0.0], lambda v: v[1] > 0, lambda v: v[2] < 0),
    "M4": ([0.0], lambda v: v[1] > 0, lambda v: v[2] <= 0),
    "M5": ([0.0], lambda v: v[1] > 0, lambda v: v[2] <= 0),
}


@pytest.mark.parametrize("cid", sorted(OLD))
def test_each_rule_decides_as_the_old_expressions_did(cid):
    thresholds, yes, no = OLD[cid]
    pool = sorted({t + d for t in thresholds for d in (-0.01, 0.0, 0.01)}) + [-1.0, 2.0, math.nan]
    rule = MODADD_CLAIMS[cid].rule
    assert rule.stats() == {STAT}
    for v in itertools.product(pool, repeat=3):
        assert rule.decide(v) == verdict(yes(v), no(v)), v


def test_grok_rule_is_every_seed_and_fewer_than_half_as_before():
    rule = MODADD_CLAIMS["M0"].rule
    for n in range(1, 7):
        for grokked in itertools.product([0.0, 1.0], repeat=n):
            old = verdict(min(grokked) == 1, np.mean(grokked) < 0.5)
            assert rule.decide(boot(list(grokked), n_boot=20)) == old, grokked
