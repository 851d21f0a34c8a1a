"""bumps.digits.train: what a run records, ensembles equal single runs, interrupted runs resume exactly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bumps.detect.analysis import load_source
from bumps.digits.model import DigitsConfig
from bumps.digits.train import run_paths, train_digits
from bumps.ensemble import Interrupted
from bumps.errors import BumpsError
from bumps.io.runfile import atomic_save, safe_load
from bumps.recorder import load_recorded

ROOT = Path(__file__).resolve().parents[2]


def _cfg(seed: int = 0, **kw) -> DigitsConfig:
    return DigitsConfig(seed=seed, d_model=16, n_heads=2, d_mlp=24, steps=12, lr=1e-2, **kw)


def test_records_every_series_with_named_axes(tmp_path):
    run = train_digits([_cfg(record_every=3)], [tmp_path / "r.pt"], autosave_every=0)[0]
    assert run["step"].tolist() == [0, 3, 6, 9]
    assert run["loss_per_digit"].shape == (4, 6) and run["acc_per_digit"].shape == (4, 6)
    assert run["head_attn"].shape == (4, 6, 2, 12) and run["head_norm"].shape == (4, 2)
    assert run["axes"]["head_attn"] == ["digit", "head", "position"]
    assert torch.allclose(run["loss"], run["loss_per_digit"].mean(1))
    # attention of the first answer query ('=' at position 11) over the 12 inputs sums to one
    assert torch.allclose(run["head_attn"][:, 0].sum(-1).double(), torch.ones(4, 2, dtype=torch.float64), atol=1e-5)
    assert run["config"]["setup"] == "nanda-5digit" and run["config"]["seed"] == 0 and "command" in run
    assert {s.key for s, _ in load_source(tmp_path / "r.pt").series} >= {"loss_per_digit", "head_attn"}
    assert load_recorded(tmp_path / "r.pt")["loss"][0] > run["loss"][-1]


def test_ensemble_members_equal_their_single_runs(tmp_path):
    together = train_digits([_cfg(0), _cfg(1)], [tmp_path / "a0.pt", tmp_path / "a1.pt"], autosave_every=0)
    alone = train_digits([_cfg(1)], [tmp_path / "b1.pt"], autosave_every=0)[0]
    assert torch.allclose(together[1]["loss_per_digit"], alone["loss_per_digit"], atol=1e-5)
    assert not torch.allclose(together[0]["loss"], together[1]["loss"])


def test_interrupted_run_resumes_to_the_uninterrupted_one(tmp_path):
    full = train_digits([_cfg(0)], [tmp_path / "full.pt"], autosave_every=0)[0]
    with pytest.raises(Interrupted, match="interrupted at step 5; saved .*rerun the same command"):
        train_digits([_cfg(0)], [tmp_path / "cut.pt"], autosave_every=0, stop_at=5)
    part = safe_load(tmp_path / "cut.pt")
    assert part["config"]["final"] is False and part["step"].tolist() == [0, 1, 2, 3, 4]
    resumed = train_digits([_cfg(0)], [tmp_path / "cut.pt"], autosave_every=0)[0]
    assert torch.equal(resumed["step"], full["step"])
    assert torch.equal(resumed["loss_per_digit"], full["loss_per_digit"])
    assert all(
        torch.equal(resumed["resume"]["params"][k], full["resume"]["params"][k]) for k in full["resume"]["params"]
    )
    longer = train_digits([_cfg(0, **{})], [tmp_path / "cut.pt"], autosave_every=0)[0]  # finished: reused as is
    assert len(longer["step"]) == 12


def test_finite_training_set_records_the_test_set(tmp_path):
    run = train_digits([_cfg(train_size=40, test_size=30)], [tmp_path / "r.pt"], autosave_every=0)[0]
    assert run["test_loss_per_digit"].shape == (12, 6) and run["test_acc_per_digit"].shape == (12, 6)


def test_bad_input(tmp_path):
    with pytest.raises(BumpsError, match="need equal d_model"):
        train_digits([_cfg(0), DigitsConfig(seed=1, steps=2)], [tmp_path / "a.pt", tmp_path / "b.pt"])
    with pytest.raises(BumpsError, match="must contain \\{seed\\}"):
        run_paths([_cfg(0), _cfg(1)], tmp_path / "x.pt")
    train_digits([_cfg(0)], [tmp_path / "r.pt"], autosave_every=0)
    with pytest.raises(BumpsError, match="other settings \\(lr\\)"):
        train_digits([DigitsConfig(seed=0, d_model=16, n_heads=2, d_mlp=24, steps=12)], [tmp_path / "r.pt"])
    atomic_save({"not": "a run"}, tmp_path / "other.pt")
    with pytest.raises(BumpsError, match="not a digits run"):
        train_digits([_cfg(0)], [tmp_path / "other.pt"])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--steps", "0"], "--steps must be a positive integer"),
        (["--seeds", "1,1"], "--seeds must be distinct"),
        (["--train-size", "-3"], "--train-size must be a positive integer"),
        (["--stpes", "3"], "no such option --stpes; did you mean --steps"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(tmp_path, args, message):
    out = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "digits", *args, "--out", str(tmp_path / "r{seed}.pt")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and message in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())
