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


def judged(rows):
    return {e.id: c for e, c in claims(rows)}


def test_verdicts_read_registered_rows_only():
    beats = [row(s, True, 0.6 + 0.01 * s, 0.4) for s in range(5, 9)]
    below = [row(s, False, 0.1, 0.5, wd=3.0) for s in range(3)]
    got = judged(beats + below)
    assert list(got) == ["W1", "W1i", "W2", "RL", "W3"]
    assert got["W1"].verdict == got["W2"].verdict == "supported" and got["W1"].n_seeds == 4
    assert got["RL"].verdict == "supported" and got["RL"].value == pytest.approx(math.log(0.5), abs=1e-3)
    assert got["W3"] is None and got["W1i"] is None  # no tie AUC, no independence baseline in these rows
    assert all(c is None for c in judged(below).values())  # nothing registered: not measured
    assert judged([row(s, True, 0.2 + 0.01 * s, 0.4) for s in range(5, 9)])["W1"].verdict == "not supported"
    higher = [row(s, True, 0.5, 0.4, restricted=0.05 * (1 + 0.1 * s), full=0.01) for s in range(5, 9)]
    assert judged(higher)["RL"].verdict == "not supported"
    assert judged([row(s, True, 0.5, 0.4, restricted=math.nan) for s in range(5, 9)])["RL"] is None
    tied = [replace(row(s, True, 0.5, 0.4), tie_auc=0.7 + 0.01 * s) for s in range(5, 9)]
    assert judged(tied)["W3"].verdict == "supported" and judged(tied)["W3"].n_seeds == 4
    # W1's chance (Σ share²) beats an uninformative predictor; W1i's independence baseline does not
    shuffled = [replace(row(s, True, 0.25 + 0.001 * s, 0.3, chance=0.3), chance_independent=0.25) for s in range(5, 9)]
    assert judged(shuffled)["W1"].verdict == "not supported" and judged(shuffled)["W1i"].verdict != "not supported"


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


@pytest.mark.parametrize("cid", ["W1", "W2", "RL", "W3", "W1i"])
def test_the_rules_are_registered(cid):
    from bumps import registry

    want = "added after data" if cid == "W1i" else "registered"
    assert registry.load("modadd")[cid].status == want
