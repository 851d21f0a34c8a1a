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
        (["detect", "tests"], "tests holds no run, array or CSV files"),  # a folder: detect reads the runs in it
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


# ---------------------------------------------------------------------------- issue 23: safe defaults

GROK_TINY = ["--p", "11", "--train-frac", "0.6", "--d-model", "16", "--d-mlp", "32", "--threads", "1"]


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under ``folder`` with its size and content: what a refused command must leave alone."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A working folder with the files the bad-input table needs: runs of known settings, an interrupted run,
    a text file, an empty .npy, a folder, a spec with a typo."""
    from bumps.modadd.model import ModAddConfig
    from bumps.modadd.train import Interrupted, train

    d = tmp_path_factory.mktemp("work")
    assert bumps("simulate", "--rank", 4, "--seeds", 6, "--steps", 100, "--out", d / "r4_n6.pt", cwd=d).returncode == 0
    assert bumps("grok", *GROK_TINY, "--epochs", 20, "--out", d / "ref.pt", cwd=d).returncode == 0
    cfg = ModAddConfig.from_preset("nanda", p=11, train_frac=0.6, d_model=16, d_mlp=32, epochs=200, eval_every=10)
    with pytest.raises(Interrupted):
        train(cfg, d / "partial.pt", stop_at=30)
    (d / "spec.toml").write_text('command = "grok"\n[grid]\nlrr = [0.001]\n')
    (d / "notes.txt").write_text("plain text\n")
    np.save(d / "empty.npy", np.zeros((0, 4)))
    (d / "folder").mkdir()
    return d


BAD_INPUT = [
    # (case of issue 23, command, exit code, message fragment, files the command may write)
    (
        "clobber: another config's run",
        ["grok", *GROK_TINY, "--epochs", "10", "--out", "ref.pt"],
        2,
        "ref.pt was made from other settings (epochs 20 → 10); pass --force",
        (),
    ),
    (
        "clobber: a 6-seed file",
        ["simulate", "--rank", "4", "--seeds", "4", "--steps", "100", "--out", "r4_n6.pt"],
        2,
        "r4_n6.pt was made from other settings (seeds 6 → 4)",
        (),
    ),
    (
        "clobber: a file bumps did not make",
        ["simulate", "--steps", "10", "--out", "notes.txt"],
        2,
        "notes.txt exists and records no bumps settings",
        (),
    ),
    (
        "hidden work: figures without their run",
        ["figures"],
        2,
        "no such run file: runs/modadd_nanda_seed0.pt; the mod-add figures need one: make it with bumps grok",
        (),
    ),
    (
        "partial run: figures from an interrupted run",
        ["figures", "--only", "modadd", "--modadd-run", "partial.pt"],
        2,
        "partial.pt is a partial run: interrupted (autosave at epoch 30 of 200); continue it with: bumps grok --resume",
        (),
    ),
    (
        "partial run: claims with an interrupted mod-add run",
        ["claims", "--quick", "--modadd-runs", "partial.pt"],
        2,
        "partial.pt is a partial run: interrupted",
        (),
    ),
    (
        "size guard: simulate --seeds 10000000",
        ["simulate", "--seeds", "10000000"],
        2,
        "this simulation needs about",
        (),
    ),
    ("size guard: grok --p 100003", ["grok", "--p", "100003"], 2, "this training needs about", ()),
    ("size guard: grok --d-mlp 100000000", ["grok", "--d-mlp", "100000000"], 2, "this training needs about", ()),
    (
        "divergence: simulate --lr 100",
        ["simulate", "--lr", "100", "--steps", "200", "--out", "div.pt"],
        1,
        "error: diverged at step",
        ("div.pt",),
    ),
    (
        "divergence: simulate --dim 100000",
        ["simulate", "--dim", "100000", "--threads", "1", "--out", "wide.pt"],
        1,
        "error: diverged at step",
        ("wide.pt",),
    ),
    (
        "divergence: grok --lr 1e6",
        ["grok", *GROK_TINY, "--lr", "1e6", "--epochs", "20", "--out", "gdiv.pt"],
        1,
        "error: diverged (training loss not finite)",
        ("gdiv.pt",),
    ),
    ("untrained: --epochs 0", ["grok", "--p", "11", "--epochs", "0"], 2, "--epochs must be >= 1", ()),
    ("untrained: --steps 0", ["simulate", "--steps", "0"], 2, "--steps must be >= 1", ()),
    (
        "untrained: grok --seeds -1",
        ["grok", "--p", "11", "--seeds", "-1", "--out", "g_{seed}.pt"],
        2,
        "--seed must be >= 0",
        (),
    ),
    ("file type: empty .npy", ["detect", "empty.npy"], 2, "empty", ()),
    ("file type: a text file as a run", ["detect", "spec.toml"], 2, "spec.toml is a text file", ()),
    (
        "file type: export a .npy",
        ["export", "empty.npy", "--to", "csv", "e.csv"],
        2,
        "empty.npy is a numpy array file, not a torch file",
        (),
    ),
    (
        "flag named: a bad --plot path",
        ["detect", "r4_n6.pt", "--plot", "/proc/nope/d.png"],
        2,
        "choose another --plot",
        (),
    ),
    (
        "flag named: a bad --out path",
        ["simulate", "--steps", "10", "--out", "/proc/nope/r.pt"],
        2,
        "choose another --out",
        (),
    ),
    (
        "flag named: a folder as --out",
        ["simulate", "--steps", "10", "--out", "folder"],
        2,
        "output path folder is a directory; give --out a file name",
        (),
    ),
    (
        "did you mean: a spec typo",
        ["sweep", "spec.toml", "--out", "sw"],
        2,
        "unknown grok flag 'lrr'; did you mean 'lr'?",
        (),
    ),
    (
        "did you mean: an unknown flag",
        ["grok", "--epoch", "3"],
        2,
        "no such option --epoch; did you mean --epochs?",
        (),
    ),
    ("one line: a bad value", ["grok", "--p", "x"], 2, "Invalid value for '--p'", ()),
    ("threads: negative", ["grok", "--threads", "-1"], 2, "--threads must be >= 0", ()),
    ("preset: unknown", ["grok", "--preset", "tiny"], 2, "--preset must be one of nanda, tl-demo, small", ()),
]


@pytest.mark.parametrize("case,args,code,match,writes", BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input_table(workdir, case, args, code, match, writes):
    """Each bad input of issue 23: one line naming what is wrong, its exit code, and nothing written or lost."""
    before = snapshot(workdir)
    proc = bumps(*args, cwd=workdir)
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and match in errors[0], proc.stderr
    if code == 2:
        assert [line for line in proc.stderr.splitlines() if line.strip()] == errors  # nothing but the one line
    after = snapshot(workdir)
    for name in writes:
        after.pop(name, None)
        for key in [k for k in after if k.startswith(f"{Path(name).stem}_ckpt")]:
            after.pop(key)
    assert after == before  # nothing written, nothing changed or lost


def test_default_run_names_keep_runs_of_other_settings_apart(tmp_path):
    ref = tmp_path / "runs" / "modadd_nanda_seed0.pt"
    ref.parent.mkdir()
    ref.write_bytes(b"a 30-minute reference run")
    proc = bumps("grok", "--p", "11", "--epochs", "10", "--threads", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert ref.read_bytes() == b"a 30-minute reference run"
    made = [p.name for p in (tmp_path / "runs").glob("*.pt") if p != ref]
    assert len(made) == 1 and made[0].startswith("modadd_nanda_") and made[0].endswith("_seed0.pt"), made
    from bumps.modadd.model import ModAddConfig
    from bumps.modadd.train import default_run_path

    assert made[0] == default_run_path(ModAddConfig.from_preset("nanda", p=11, epochs=10)).name
    one = bumps("simulate", "--rank", 2, "--dim", 8, "--seeds", 4, "--steps", 20, cwd=tmp_path)
    two = bumps("simulate", "--rank", 2, "--dim", 8, "--seeds", 6, "--steps", 20, cwd=tmp_path)
    assert one.returncode == two.returncode == 0
    names = sorted(p.name for p in (tmp_path / "runs").glob("lowrank_*.pt"))
    assert len(names) == 2 and "_n4_" in names[0] and "_n6_" in names[1], names


def test_same_settings_replace_and_force_replaces_other_settings(workdir, tmp_path):
    out = tmp_path / "r.pt"
    args = ["simulate", "--rank", 2, "--dim", 8, "--seeds", 2, "--steps", 20, "--out", out]
    assert bumps(*args).returncode == 0
    assert bumps(*args).returncode == 0  # a rerun of the same settings replaces its own file
    proc = bumps(*args[:-2], "--lr", "0.02", "--out", out)
    assert proc.returncode == 2 and "lr 0.01 → 0.02" in proc.stderr
    assert bumps(*args[:-2], "--lr", "0.02", "--out", out, "--force").returncode == 0
    assert torch.load(out, weights_only=True)["config"]["lr"] == 0.02


def test_ensemble_rerun_with_other_settings_is_refused(tmp_path):
    pattern = str(tmp_path / "e_{seed}.pt")
    assert bumps("grok", *GROK_TINY, "--epochs", 10, "--seeds", "0,1", "--out", pattern).returncode == 0
    before = snapshot(tmp_path)
    proc = bumps("grok", *GROK_TINY[:-2], "--lr", "5e-3", "--epochs", 10, "--seeds", "0,1", "--out", pattern)
    assert_one_line_error(proc, "was made from other settings (lr 0.001 → 0.005)")
    assert snapshot(tmp_path) == before
    forced = bumps("grok", *GROK_TINY, "--lr", "5e-3", "--epochs", 10, "--seeds", "0,1", "--out", pattern, "--force")
    assert forced.returncode == 0, forced.stderr
    assert torch.load(tmp_path / "e_1.pt", weights_only=True)["config"]["lr"] == 5e-3


def test_info_flags_a_partial_run_and_its_table_fits_80_columns(workdir):
    env = {**os.environ, "COLUMNS": "80"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "info", "partial.pt"],
        capture_output=True,
        text=True,
        cwd=workdir,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "partial run: interrupted (autosave at epoch 30 of 200)" in proc.stdout
    assert max(len(line) for line in proc.stdout.splitlines()) <= 80


def test_figures_from_a_partial_run_only_when_asked_and_flagged(workdir, tmp_path):
    proc = bumps(
        "figures", "--only", "modadd", "--modadd-run", workdir / "partial.pt", "--allow-partial", "--out", tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert "partial run (interrupted" in proc.stderr
    from bumps.io.provenance import stored_settings

    settings = stored_settings(tmp_path / "modadd_losses.png")
    assert settings["partial"].startswith("interrupted") and settings["run"]["p"] == 11
    # the same figures again: same settings, replaced; figures of another run are refused
    assert (
        bumps(
            "figures", "--only", "modadd", "--modadd-run", workdir / "partial.pt", "--allow-partial", "--out", tmp_path
        ).returncode
        == 0
    )
    other = bumps(
        "figures", "--only", "modadd", "--modadd-run", workdir / "ref.pt", "--allow-partial", "--out", tmp_path
    )
    assert_one_line_error(other, "modadd_")
    assert "was made from other settings" in other.stderr


def test_sweep_status_fits_80_columns(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text(
        'command = "simulate"\n[base]\nrank = 2\ndim = 8\nseeds = 2\nsteps = 50\n'
        "[grid]\nlr = [0.01, -0.5]\ninit-scale = [0.1, 0.05]\n"
    )
    assert bumps("sweep", spec, "--out", tmp_path / "sw", "--executor", "inline").returncode == 1  # lr -0.5 fails
    env = {**os.environ, "COLUMNS": "80"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "sweep", str(tmp_path / "sw"), "--status"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "2 done, 0 running, 0 pending, 2 failed" in proc.stdout and "must be a finite positive" in proc.stdout
    assert max(len(line) for line in proc.stdout.splitlines()) <= 80


def test_allocator_failure_is_one_line(monkeypatch, capsys, tmp_path):
    """A torch allocator error (past the size guard, or with --force) is one line and exit 2, not a traceback."""
    import bumps.cli
    import bumps.lowrank.model

    def fail(*_a, **_k):
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: "
            "you tried to allocate 4000000000000 bytes.\nmore lines"
        )

    def leave(code):
        raise SystemExit(code)

    monkeypatch.setattr(bumps.lowrank.model, "simulate", fail)
    monkeypatch.setattr(bumps.cli, "_exit_now", leave)
    monkeypatch.setattr(sys, "argv", ["bumps", "simulate", "--steps", "5", "--force", "--out", str(tmp_path / "r.pt")])
    with pytest.raises(SystemExit) as exit_info:
        bumps.cli.main()
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert exit_info.value.code == 2
    assert err == [
        "error: out of memory ([enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough "
        "memory: you tried to allocate 4000000000000 bytes.); use smaller settings"
    ]
    assert not (tmp_path / "r.pt").exists()


def test_unknown_flag_suggestion_and_usage_stay_one_line():
    from bumps.cli import is_out_of_memory

    assert is_out_of_memory(MemoryError()) and is_out_of_memory(RuntimeError("CUDA out of memory. Tried"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    proc = bumps("simulate", "--sed", "3")
    assert_one_line_error(proc, "no such option --sed; did you mean --seed or --seeds?")
    assert proc.returncode == 2


def test_docs_default_paths_are_the_code_defaults():
    """The run names the getting-started page shows after '->' are what the code names those runs."""
    from bumps.lowrank.model import LowRankConfig
    from bumps.lowrank.model import default_run_path as lowrank_path
    from bumps.modadd.model import ModAddConfig
    from bumps.modadd.train import default_run_path as modadd_path

    text = (ROOT / "docs" / "getting-started.md").read_text()
    assert f"bumps simulate --rank 4 --seeds 64                 # -> {lowrank_path(LowRankConfig(seeds=64))}" in text
    assert f"-> {modadd_path(ModAddConfig.from_preset('small'))}" in text
    assert f"-> {modadd_path(ModAddConfig.from_preset('nanda'))}" in text


def test_claims_writes_under_runs_by_default_and_its_terminal_text_fits_80_columns(tmp_path):
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "claims.md").write_text("committed\n")
    args = ["claims", "--quick", "--seeds", "8", "--configs", "gd_r1,gd_r2", "--cache", "runs/cc"]
    env = {**os.environ, "COLUMNS": "80"}
    run = lambda *extra: subprocess.run(  # noqa: E731
        [sys.executable, str(ROOT / "cli.py"), *args, *extra], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    proc = run()
    assert proc.returncode == 0, proc.stderr
    assert max(len(line) for line in proc.stdout.splitlines()) <= 80
    assert "claim 1 — verdict: supported" in proc.stdout
    assert sorted(p.name for p in (tmp_path / "runs" / "claims").iterdir()) == [
        "claims.json",
        "claims.md",
        "claims_knockouts.png",
    ]
    assert (tmp_path / "reports" / "claims.md").read_text() == "committed\n"
    refused = run("--out", "reports")  # the committed report records no settings: --force to replace it
    assert_one_line_error(refused, "reports/claims.md exists and records no bumps settings (not made by bumps")
    other = run("--seeds", "6")
    assert_one_line_error(other, "runs/claims/claims.md was made from other settings (seeds 8 → 6)")
    assert run().returncode == 0  # the same settings again: replaced


def test_export_of_a_partial_run_is_flagged(workdir, tmp_path):
    proc = bumps("export", workdir / "partial.pt", "--to", "transformer-lens", tmp_path / "tl.pt")
    assert proc.returncode == 0, proc.stderr
    assert "is a partial run (interrupted (autosave at epoch 30 of 200)); these are the weights it reached" in (
        proc.stderr
    )
    done = bumps("export", workdir / "r4_n6.pt", "--to", "csv", tmp_path / "r.csv")
    assert done.returncode == 0 and "partial" not in done.stderr


@pytest.mark.parametrize("name", ["r4_n6.pt", "ref.pt"])
def test_detect_tables_fit_80_columns(workdir, name):
    env = {**os.environ, "COLUMNS": "80"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "detect", name], capture_output=True, text=True, cwd=workdir, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert max(len(line) for line in proc.stdout.splitlines()) <= 80
