"""bumps.modadd.winners_report: the registered set, rows kept across invocations, verdicts only on registered runs."""

import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from bumps.modadd.model import ModAddConfig
from bumps.modadd.train import train
from bumps.modadd.winners_report import WinnerRow, claims, is_registered, load_rows, merge, write_report

ROOT = Path(__file__).resolve().parents[2]


def row(seed, registered, align, norm, chance=0.3, wd=1.0, restricted=0.01, full=0.02) -> WinnerRow:
    key = f"{seed:04d}{wd:g}{registered}"
    return WinnerRow(f"s{seed}.pt", key, seed, seed, wd, registered, [3, 7], 100, align, norm, chance, restricted, full)


def test_the_registered_set_is_the_registered_command():
    reg = ModAddConfig.from_preset("nanda", seed=7, data_seed=7, stop_after_grok=1000)
    assert is_registered(reg)
    assert not is_registered(replace(reg, seed=3, data_seed=3))  # seeds 5-14 only
    assert not is_registered(replace(reg, data_seed=8))  # split seed = model seed
    assert not is_registered(replace(reg, weight_decay=3.0))
    assert not is_registered(replace(reg, stop_after_grok=0))
    assert is_registered(replace(reg, neuron_dtype="float16"))  # storage does not matter
    assert not is_registered(replace(reg, neuron_every=0))  # the cadence does (W3 detects bumps on it)


def test_verdicts_read_registered_rows_only():
    beats = [row(s, True, 0.6 + 0.01 * s, 0.4) for s in range(5, 9)]
    below = [row(s, False, 0.1, 0.5, wd=3.0) for s in range(3)]
    (w1, c1), (w2, c2), (rl, c3), (w3, c4) = claims(beats + below)
    assert (w1.id, w2.id, rl.id, w3.id) == ("W1", "W2", "RL", "W3")
    assert c4 is None  # no tie AUC in these rows
    assert c1.verdict == c2.verdict == "supported" and c1.n_seeds == 4
    assert c3.verdict == "supported" and c3.value == pytest.approx(
        math.log(0.5), abs=1e-3
    )  # restricted 0.01 < full 0.02
    (_, c1), (_, c2), (_, c3), _ = claims(below)
    assert c1 is None and c2 is None and c3 is None  # nothing registered: not measured, whatever the others say
    (_, c1), _, _, _ = claims([row(s, True, 0.2 + 0.01 * s, 0.4) for s in range(5, 9)])
    assert c1.verdict == "not supported"
    higher = [row(s, True, 0.5, 0.4, restricted=0.05 * (1 + 0.1 * s), full=0.01) for s in range(5, 9)]
    assert claims(higher)[2][1].verdict == "not supported"
    no_losses = [row(s, True, 0.5, 0.4, restricted=math.nan) for s in range(5, 9)]
    assert claims(no_losses)[2][1] is None
    tied = [replace(row(s, True, 0.5, 0.4), tie_auc=0.7 + 0.01 * s) for s in range(5, 9)]
    assert claims(tied)[3][1].verdict == "supported" and claims(tied)[3][1].n_seeds == 4


def test_rows_are_kept_by_config_hash_across_invocations(tmp_path):
    a, b = row(5, True, 0.5, 0.4), row(6, True, 0.5, 0.4)
    write_report(merge([], [a]), "cmd", tmp_path / "w")
    rows = merge(load_rows(tmp_path / "w.json"), [b, replace(a, accuracy_alignment=0.7)])
    assert [r.seed for r in rows] == [5, 6] and rows[0].accuracy_alignment == 0.7
    assert load_rows(tmp_path / "missing.json") == []


def test_cli_on_a_real_run_writes_the_report(tmp_path):
    cfg = ModAddConfig.from_preset("small", epochs=200, checkpoint_every=0)
    train(cfg, tmp_path / "run.pt")
    out = tmp_path / "report" / "winners"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "winners", str(tmp_path / "run.pt"), "--report", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.with_suffix(".json").read_text())
    assert [r["run"] for r in data["rows"]] == ["run.pt"] and data["rows"][0]["registered"] is False
    assert "restricted_loss" in data["rows"][0] and data["rows"][0]["full_loss"] > 0  # no key freqs yet: nan
    assert "not measured" in out.with_suffix(".md").read_text()
    bad = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "winners", str(tmp_path / "nope.pt")], capture_output=True, text=True
    )
    assert bad.returncode != 0 and "Traceback" not in bad.stderr


@pytest.mark.parametrize("cid", ["W1", "W2", "RL", "W3"])
def test_the_rules_are_registered(cid):
    from bumps import registry

    assert registry.load("modadd")[cid].status == "registered"
