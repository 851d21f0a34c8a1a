"""bumps.io.info and `bumps info`: kind, status, size and series of a run file."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bumps.errors import BumpsError
from bumps.io.info import run_info
from bumps.io.runfile import atomic_save
from bumps.lowrank.model import LowRankConfig, simulate, truncate_diverged

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lowrank(tmp_path_factory):
    path = tmp_path_factory.mktemp("info") / "r.pt"
    atomic_save(simulate(LowRankConfig(rank=2, dim=8, seeds=3, steps=40, record_every=10)), path)
    return path


def test_finished_lowrank_run(lowrank):
    r = run_info(lowrank)
    assert (r.kind, r.status, r.records) == ("lowrank", "finished", 5)
    assert r.size_bytes == lowrank.stat().st_size and r.config["rank"] == 2 and "torch" in r.versions
    shapes = {s.key: s.shape for s in r.series}
    assert shapes["inner_a"] == (5, 3, 2, 2) and shapes["loss"] == (5, 3)


def test_diverged_and_interrupted_runs_are_named(tmp_path):
    run, step = truncate_diverged(simulate(LowRankConfig(rank=2, dim=8, seeds=2, steps=100, lr=100.0)))
    atomic_save(run, tmp_path / "d.pt")
    r = run_info(tmp_path / "d.pt")
    assert r.status == "diverged" and r.detail == f"at step {step}"
    autosave = {
        **run,
        "config": {
            **run["config"],
            "diverged_step": None,
            "final": False,
            "epochs_done": 7,
            "epochs": 50,
            "stop_reason": "interrupted",
        },
    }
    atomic_save(autosave, tmp_path / "i.pt")
    assert run_info(tmp_path / "i.pt").status == "interrupted"


def test_not_a_run_is_one_line(tmp_path):
    torch.save(torch.zeros(3), tmp_path / "t.pt")
    with pytest.raises(BumpsError):
        run_info(tmp_path / "t.pt")


def test_cli_info_fits_80_columns(lowrank):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "info", str(lowrank)],
        capture_output=True,
        text=True,
        env={"COLUMNS": "80", "PATH": ""},
    )
    assert proc.returncode == 0, proc.stderr
    assert "lowrank run, finished" in proc.stdout and "inner_a" in proc.stdout
    assert max(len(line) for line in proc.stdout.splitlines()[1:]) <= 80  # the first line names the path


def test_partial_runs_are_named_and_refused_unless_allowed(tmp_path):
    from bumps.io.info import check_finished, partial_reason

    done = {"kind": "modadd", "step": [0], "grok_epoch": 700, "config": {"stop_reason": "epochs", "epochs_done": 900}}
    never = {**done, "grok_epoch": -1}
    cut = {**done, "config": {"final": False, "stop_reason": "interrupted", "epochs_done": 300, "epochs": 25000}}
    assert partial_reason(done, need_grok=True) is None
    assert partial_reason(never) is None  # grokking not needed: a finished run
    assert partial_reason(never, need_grok=True) == "never grokked (stopped: epochs at epoch 900)"
    assert partial_reason(cut) == "interrupted (autosave at epoch 300 of 25000)"
    with pytest.raises(BumpsError) as err:
        check_finished(cut, "runs/x.pt")
    assert str(err.value) == (
        "runs/x.pt is a partial run: interrupted (autosave at epoch 300 of 25000); continue it with: "
        "bumps grok --resume runs/x.pt, or pass `allow_partial` to use it anyway"
    )
    with pytest.raises(BumpsError, match="--epochs N"):
        check_finished(never, "runs/x.pt", need_grok=True)
    assert check_finished(cut, "runs/x.pt", allow_partial=True).startswith("interrupted")
