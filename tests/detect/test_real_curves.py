"""`bumps detect` on curves from real training runs: a W&B-shaped CSV of a minibatch run, a folder, bad input."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bumps.lowrank.minibatch import MinibatchConfig, train_minibatch

ROOT = Path(__file__).resolve().parents[2]


def bumps(*args, cwd=None):
    return subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), *map(str, args)], capture_output=True, text=True, cwd=cwd or ROOT
    )


@pytest.fixture(scope="module")
def minibatch_run():
    return train_minibatch(MinibatchConfig())


@pytest.fixture(scope="module")
def wandb_csv(tmp_path_factory, minibatch_run):
    """A W&B "export CSV": Step, a per-step metric with its __MIN/__MAX envelope, an eval metric every 50 steps."""
    r = minibatch_run
    path = tmp_path_factory.mktemp("wandb") / "export.csv"
    evals = dict(zip(r.eval_step.tolist(), r.eval_loss.tolist(), strict=True))
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Step", "train/loss", "train/loss__MIN", "train/loss__MAX", "eval/loss"])
        for s, v in zip(r.step.tolist(), r.loss.tolist(), strict=True):
            w.writerow([s, f"{v:.6g}", f"{v * 0.9:.6g}", f"{v * 1.1:.6g}", f"{evals[s]:.6g}" if s in evals else ""])
    return path


def test_minibatch_run_is_noisy_and_learns_one_mode_after_another(minibatch_run):
    r = minibatch_run
    assert r.loss.shape == (6000,) and r.eval_loss.shape == (120,)
    rel = np.abs(np.diff(np.log10(r.loss[-1000:]))).mean()
    assert rel > 0.05  # minibatch noise: consecutive steps differ by more than 0.05 decades on average
    assert r.eval_loss[-1] < 1e-3 * r.eval_loss[0]


def test_wandb_csv_of_a_minibatch_run_gives_its_phase_changes_and_no_noise_events(wandb_csv, minibatch_run):
    proc = bumps("detect", wandb_csv, "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert set(result["summary"]) == {"train/loss", "eval/loss"}  # the __MIN/__MAX envelope is skipped
    events = result["events"]
    per_step = [e for e in events if e["series"] == "train/loss"]
    evals = [e for e in events if e["series"] == "eval/loss"]
    assert result["summary"]["train/loss"]["scale"] == "log" and result["summary"]["train/loss"]["smoothed_curves"]
    # the clean eval loss has one phase change per learned mode (strengths 8, 4, 2)
    assert [e["kind"] for e in evals] == ["phase_change"] * 3
    # the noisy per-step loss: phase changes only (no bump or spike from 6000 noisy samples), at the eval's first two
    assert {e["kind"] for e in per_step} == {"phase_change"}
    for e in evals[:2]:
        assert any(abs(f["steepest_step"] - e["steepest_step"]) <= 150 for f in per_step)


def test_terminal_table_groups_events_by_kind_and_fits_80_columns(wandb_csv):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "detect", str(wandb_csv)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**__import__("os").environ, "COLUMNS": "80"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "largest phase changes by size" in proc.stdout
    assert max(len(line) for line in proc.stdout.splitlines()) <= 80


def test_kinds_and_series_filter(wandb_csv):
    out = json.loads(bumps("detect", wandb_csv, "--json", "--kinds", "spike,bump", "--series", "eval/loss").stdout)
    assert list(out["summary"]) == ["eval/loss"] and out["events"] == []


def test_folder_of_runs_is_detected_file_by_file(tmp_path, wandb_csv):
    (tmp_path / "a.csv").write_text(wandb_csv.read_text())
    np.save(tmp_path / "b.npy", np.exp(-np.arange(300) / 50.0))
    (tmp_path / "x_ckpt").mkdir()
    torch.save({"not": "a run"}, tmp_path / "x_ckpt" / "ckpt.pt")  # inside a checkpoint folder: skipped
    out = json.loads(bumps("detect", tmp_path, "--json").stdout)
    assert sorted(Path(k).name for k in out["runs"]) == ["a.csv", "b.npy"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scale", "log"], "log scale needs values > 0; array has 1 values <= 0 (first at step 3"),
        (["--smooth", "500"], "--smooth is 500 samples but the curve has 100"),
        (["--kinds", "bump,spikes"], "unknown event kind(s) spikes"),
        (["--scale", "decibel"], "--scale must be one of linear, log, auto"),
        (["--series", "arry"], "has no series 'arry'; did you mean 'array'?"),
    ],
)
def test_bad_detect_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, message):
    x = np.linspace(1.0, 2.0, 100)
    x[3] = -1.0
    np.save(tmp_path / "c.npy", x)
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = bumps("detect", tmp_path / "c.npy", *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_folder_with_no_runs_and_plot_of_a_folder_are_refused(tmp_path, wandb_csv):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = bumps("detect", empty)
    assert proc.returncode == 2 and "holds no run, array or CSV files" in proc.stderr
    (tmp_path / "a.csv").write_text(wandb_csv.read_text())
    (tmp_path / "b.csv").write_text(wandb_csv.read_text())
    proc = bumps("detect", tmp_path, "--plot", tmp_path / "p.png")
    assert proc.returncode == 2 and "--plot draws one file" in proc.stderr
