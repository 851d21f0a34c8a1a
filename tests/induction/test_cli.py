"""bumps induction on the command line: bad input is one line and exit 2, before anything is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sub-len", "30"], "--sub-len 30 is longer than 1/3 of the context 85"),
        (["--n-ctx", "40", "--sub-len", "14"], "--sub-len 14 is longer than 1/3 of the context 40"),
        (["--steps", "0"], "--steps must be a positive integer"),
        (["--batch-size", "-1"], "--batch-size must be a positive integer"),
        (["--train-size", "0"], "--train-size must be a positive integer"),
        (["--seeds", "1,1"], "--seeds must be distinct"),
        (["--stack", "0"], "--stack must be a positive integer"),
        (["--stpes", "3"], "no such option --stpes; did you mean --steps"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(tmp_path, args, message):
    out = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "induction", *args, "--out", str(tmp_path / "r{seed}.pt")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and message in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_cli_trains_resumes_and_reports(tmp_path):
    base = [sys.executable, str(ROOT / "cli.py")]
    small = ["--n-ctx", "25", "--sub-len", "4", "--steps", "10", "--record-every", "1", "--seeds", "0,1"]
    pattern = str(tmp_path / "r{seed}.pt")
    first = subprocess.run([*base, "induction", *small, "--out", pattern], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    again = subprocess.run([*base, "induction", *small, "--out", pattern], capture_output=True, text=True)
    assert again.returncode == 0 and "10 records" in again.stdout
    runs = [str(tmp_path / f"r{s}.pt") for s in (0, 1)]
    rep = subprocess.run(
        [*base, "induction-claims", *runs, "--no-knockouts", "--out", str(tmp_path / "rep")],
        capture_output=True,
        text=True,
    )
    assert rep.returncode == 0, rep.stderr
    assert "| I-a |" in (tmp_path / "rep" / "induction_claims.md").read_text()
    missing = subprocess.run([*base, "induction-claims", str(tmp_path / "nope.pt")], capture_output=True, text=True)
    assert missing.returncode == 2 and "make the study's runs with bumps induction" in missing.stderr
