"""End to end through `python cli.py`: run files, detection JSON, and one-line errors."""

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def bumps(*args, cwd=None):
    return subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        timeout=300,
    )


def assert_one_line_error(proc, match):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and match in lines[0], proc.stderr


@pytest.fixture(scope="module")
def run_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "r4.pt"
    proc = bumps("simulate", "--rank", 4, "--seeds", 8, "--steps", 1500, "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out


def test_simulate_writes_the_documented_run_file(run_file):
    run = torch.load(run_file, weights_only=True)
    assert (run["format"], run["version"], run["kind"]) == ("bumps.run", 1, "lowrank")
    t = len(run["step"])
    assert run["step"][0] == 0 and run["step"].dtype == torch.int64
    assert run["loss"].shape == (t, 8)
    assert run["inner_a"].shape == run["inner_b"].shape == (t, 8, 4, 4)
    assert run["norm_a"].shape == run["norm_b"].shape == (t, 8, 4)
    cfg = run["config"]
    assert cfg["rank"] == 4 and cfg["seed"] == 0 and cfg["versions"]["torch"]


def test_same_command_same_numbers(run_file, tmp_path):
    again = tmp_path / "again.pt"
    assert bumps("simulate", "--rank", 4, "--seeds", 8, "--steps", 1500, "--out", again).returncode == 0
    a, b = torch.load(run_file, weights_only=True), torch.load(again, weights_only=True)
    assert torch.equal(a["inner_a"], b["inner_a"]) and torch.equal(a["loss"], b["loss"])


def test_detect_json_on_a_run(run_file):
    proc = bumps("detect", run_file, "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) >= {"bumps", "competition", "summary"}
    for b in out["bumps"]:
        assert b["series"] in ("inner_a", "inner_b", "norm_a", "norm_b")
        assert b["start"] <= b["peak"] <= b["end"]
        assert b["peak_step"] == b["peak"] * 10  # recorded every 10 steps
        assert isinstance(b["explained_by_competition"], bool) or b["series"].startswith("norm")
    assert out["summary"]["inner_a"]["curves"] == 8 * 16


def test_detect_table_and_plot(run_file, tmp_path):
    png = tmp_path / "d.png"
    proc = bumps("detect", run_file, "--plot", png)
    assert proc.returncode == 0, proc.stderr
    assert "inner_a" in proc.stdout and png.stat().st_size > 1000


def test_detect_plain_arrays(tmp_path):
    x = np.linspace(0, 1, 200)
    curves = np.stack([np.exp(-(((x - 0.5) / 0.05) ** 2)), x], 1)
    np.save(tmp_path / "c.npy", curves)
    np.savez(tmp_path / "c.npz", curves=curves)
    torch.save(torch.from_numpy(curves), tmp_path / "c.pt")
    for name in ("c.npy", "c.npz", "c.pt"):
        out = json.loads(bumps("detect", tmp_path / name, "--json").stdout)
        assert [(b["index"], b["peak"], b["peak_step"]) for b in out["bumps"]] == [([0], 100, 100)]


def test_malicious_pt_is_refused_and_never_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "evil.pt"
    bad.write_bytes(pickle.dumps({"format": "bumps.run", "x": Evil()}))
    assert_one_line_error(bumps("detect", bad), "refusing to load")
    assert not marker.exists()


@pytest.mark.parametrize(
    "args,match",
    [
        (["simulate", "--rank", "0"], "--rank must be >= 1"),
        (["simulate", "--rank", "101"], "exceeds --dim"),
        (["simulate", "--lr", "nan"], "--lr"),
        (["simulate", "--lr", "inf"], "--lr"),
        (["simulate", "--steps", "-3"], "--steps"),
        (["simulate", "--out", "/proc/nope/run.pt"], "cannot"),
        (["detect", "missing.pt"], "no such file"),
        (["detect", "tests"], "is a directory"),
        (["detect", "pyproject.toml"], "pyproject.toml is a text file; bumps detect reads run files"),
        (["simulate", "--steps", "0"], "--steps must be >= 1"),
        (["simulate", "--seed", "-1"], "--seed must be >= 0"),
        (["grok", "--p", "11", "--epochs", "0"], "--epochs must be >= 1"),
        (["grok", "--p", "11", "--seeds", "-1", "--out", "runs/never_{seed}.pt"], "--seed must be >= 0"),
        (["grok", "--p", "11", "--data-seed", "-2"], "--data-seed must be >= 0"),
        (["grok", "--p", "32"], "prime"),
        (["grok", "--p", "2"], "prime"),
        (["grok", "--train-frac", "1.5"], "--train-frac"),
        (["grok", "--resume", "missing.pt", "--epochs", "1"], "no such file"),
        (["figures", "--only", "toy"], "--only"),
    ],
)
def test_bad_input_gets_one_clear_line(args, match):
    assert_one_line_error(bumps(*args), match)


def test_empty_array_is_refused(tmp_path):
    np.save(tmp_path / "e.npy", np.zeros((0, 4)))
    assert_one_line_error(bumps("detect", tmp_path / "e.npy"), "empty")


def test_files_are_told_apart_by_content_before_unpickling(tmp_path):
    (tmp_path / "zero.npy").write_bytes(b"")
    assert_one_line_error(bumps("detect", tmp_path / "zero.npy"), "zero.npy is empty")
    (tmp_path / "spec.toml").write_text('command = "grok"\n')
    assert_one_line_error(bumps("detect", tmp_path / "spec.toml"), "spec.toml is a text file")
    (tmp_path / "text.pt").write_text("not a torch file\n")
    assert_one_line_error(bumps("detect", tmp_path / "text.pt"), "text.pt is a text file")
    np.save(tmp_path / "a.npy", np.arange(5.0))
    proc = bumps("export", tmp_path / "a.npy", "--to", "csv", tmp_path / "a.csv")
    assert_one_line_error(proc, "a.npy is a numpy array file, not a torch file")
    assert not (tmp_path / "a.csv").exists()


def test_failed_run_does_not_touch_an_existing_file(tmp_path):
    out = tmp_path / "keep.pt"
    out.write_bytes(b"precious")
    assert_one_line_error(bumps("simulate", "--lr", "-1", "--out", out), "--lr")
    assert out.read_bytes() == b"precious"


def test_simulate_record_dtype_float32_is_opt_in(tmp_path):
    out = tmp_path / "f32.pt"
    proc = bumps("simulate", "--rank", 2, "--seeds", 2, "--steps", 50, "--record-dtype", "float32", "--out", out)
    assert proc.returncode == 0, proc.stderr
    run = torch.load(out, weights_only=True)
    assert run["inner_a"].dtype == torch.float32 and run["config"]["record_dtype"] == "float32"
    assert_one_line_error(bumps("simulate", "--record-dtype", "int8", "--out", tmp_path / "x.pt"), "--record-dtype")
    assert not (tmp_path / "x.pt").exists()


def test_library_parameter_names_become_flags():
    from bumps.cli import as_flags

    assert as_flags("`init_scale` must be positive; `p` too") == "--init-scale must be positive; --p too"
    assert as_flags("no parameter named here") == "no parameter named here"
    proc = bumps("simulate", "--init-scale", "0", "--steps", "1")
    assert proc.returncode == 2 and "--init-scale must be a finite positive number" in proc.stderr


def test_progress_is_plain_lines_in_a_log(tmp_path):
    """With stderr not a terminal (nohup, Slurm) long runs print periodic lines, not a bar at the end."""
    env = {**os.environ, "BUMPS_PROGRESS_EVERY": "0"}
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "cli.py"),
            "simulate",
            "--rank",
            "2",
            "--dim",
            "8",
            "--seeds",
            "2",
            "--steps",
            "50",
            "--out",
            str(tmp_path / "r.pt"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.startswith("simulate: ")]
    assert len(lines) >= 2 and "eta" in lines[-1] and "\x1b" not in proc.stderr
    assert lines[-1].startswith("simulate: 50/50 (100%)")


def test_diverged_simulation_keeps_the_finite_records_and_exits_1(tmp_path):
    out = tmp_path / "d.pt"
    proc = bumps("simulate", "--lr", "100", "--steps", "200", "--seeds", "3", "--out", out)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1].startswith("error: diverged at step")
    run = torch.load(out, weights_only=True)
    assert run["config"]["diverged_step"] > int(run["step"][-1])
    assert all(torch.isfinite(run[k]).all() for k in ("loss", "inner_a", "inner_b", "norm_a", "norm_b"))


def test_diverged_grok_run_is_marked_and_exits_1(tmp_path):
    out = tmp_path / "g.pt"
    proc = bumps(
        "grok",
        "--p",
        "11",
        "--train-frac",
        "0.6",
        "--d-model",
        "16",
        "--d-mlp",
        "32",
        "--lr",
        "1e6",
        "--epochs",
        "50",
        "--threads",
        "1",
        "--out",
        out,
    )
    assert proc.returncode == 1 and "error: diverged (training loss not finite)" in proc.stderr
    run = torch.load(out, weights_only=True)
    assert run["config"]["stop_reason"] == "diverged" and 0 <= run["config"]["diverged_epoch"] < 50
    assert run["config"]["epochs_done"] == run["config"]["diverged_epoch"] + 1  # stopped right there


def test_printed_final_loss_is_never_negative(tmp_path):
    # rank 2, d 20, lr 0.05: every seed converges; the raw final losses' median is -1.1e-15 (Gram rounding)
    args = ["--rank", "2", "--dim", "20", "--steps", "4000", "--lr", "0.05", "--seeds", "8"]
    proc = bumps("simulate", *args, "--out", tmp_path / "l.pt")
    assert proc.returncode == 0 and "median -" not in proc.stdout and "max -" not in proc.stdout, proc.stdout
    assert torch.load(tmp_path / "l.pt", weights_only=True)["loss"][-1].median() < 0  # the case is a real one
