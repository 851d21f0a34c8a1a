"""bumps sweep: spec checking, grid expansion and packing, manifest states, failure isolation,
resume after a kill, bad-input lines, and (slow) a real single-node Slurm."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bumps.errors import BumpsError
from bumps.lowrank.model import LowRankConfig, simulate
from bumps.sweep import (
    Spec,
    SweepOptions,
    _Liveness,
    _proc_start,
    coerce,
    entry_status,
    expand,
    load_spec,
    pack,
    parse_spec,
    run_sweep,
    sweep_status,
    write_status,
)

ROOT = Path(__file__).resolve().parents[1]
TINY = 'command = "simulate"\n[base]\nrank = 2\ndim = 8\nseeds = 2\nsteps = 200\n'
GROK = (
    'command = "grok"\n[base]\np = 7\nd-model = 16\nn_heads = 1\nepochs = 20\neval_every = 10\ncheckpoint_every = 0\n'
)


def bumps(*args, env=None, **kw):
    return subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env=env,
        **kw,
    )


def assert_one_line_error(proc, match, code=2):
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and match in lines[0], proc.stderr


def write_spec(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def digest(path: Path) -> tuple[int, str]:
    return path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- spec and grid


def test_grid_is_the_cartesian_product_in_order_with_stable_distinct_ids():
    spec = parse_spec(
        {
            "command": "simulate",
            "base": {"rank": 2, "dim": 8, "init-scale": 0.2},
            "grid": {"seed": [0, 1, 2], "lr": [0.01, 0.03]},
        }
    )
    runs = expand(spec)
    expected = [(s, lr) for s in (0, 1, 2) for lr in (0.01, 0.03)]  # first axis slowest
    assert [(r.grid["seed"], r.grid["lr"]) for r in runs] == expected
    assert len({r.id for r in runs}) == 6
    for r, (s, lr) in zip(runs, expected, strict=True):  # full resolved config: base, grid point and defaults
        assert (r.config["seed"], r.config["lr"], r.config["rank"], r.config["init_scale"]) == (s, lr, 2, 0.2)
        assert r.config["steps"] == LowRankConfig().steps and r.error is None
        assert r.run_file == f"runs/{r.id}.pt"
    again = expand(
        parse_spec(
            {
                "command": "simulate",
                "base": {"init_scale": 0.2, "dim": 8, "rank": 2},
                "grid": {"seed": [0, 1, 2], "lr": [0.01, 0.03]},
            }
        )
    )
    assert [r.id for r in again] == [r.id for r in runs]  # spelling and key order do not matter


def test_ids_follow_every_parameter_but_not_the_device():
    base = {"command": "simulate", "base": {"rank": 2, "dim": 8}, "grid": {"seed": [0]}}
    rid = expand(parse_spec(base))[0].id
    assert expand(parse_spec({**base, "base": {"rank": 2, "dim": 8, "device": "cuda"}}))[0].id == rid
    for change in ({"dim": 9}, {"steps": 10}, {"lr": 0.02}, {"optimizer": "adam"}):
        assert expand(parse_spec({**base, "base": {"rank": 2, "dim": 8, **change}}))[0].id != rid
    assert expand(parse_spec({**base, "base": {"rank": 2, "dim": 8, "steps": 3000}}))[0].id == rid  # = default
    # grid points that resolve to the same config are one run
    assert len(expand(parse_spec({**base, "grid": {"lr": [0.01, 1e-2]}}))) == 1


@settings(max_examples=60, deadline=None)
@given(keys=st.lists(st.integers(0, 3), max_size=40), m=st.integers(1, 7))
def test_pack_puts_equal_keys_in_groups_of_at_most_m(keys, m):
    groups = pack(keys, m)
    flat = sorted(i for g in groups for i in g)
    assert flat == list(range(len(keys)))  # every run exactly once
    for g in groups:
        assert 1 <= len(g) <= m and len({keys[i] for i in g}) == 1
    for k in set(keys):  # fewest groups per key, sizes balanced
        sizes = [len(g) for g in groups if keys[g[0]] == k]
        assert len(sizes) == -(-keys.count(k) // m) and max(sizes) - min(sizes) <= 1


def test_coerce_checks_types_against_the_config_annotations():
    assert coerce(3, float) == 3.0 and isinstance(coerce(3, float), float)
    assert coerce([1, 2], list[float] | None) == [1.0, 2.0]
    assert coerce([0.9, 0.99], tuple[float, float]) == (0.9, 0.99)
    assert coerce([-1, 0], tuple[int, ...]) == (-1, 0)
    for value, hint in (
        (True, int),
        (1.5, int),
        ("1", float),
        (3, str),
        ([1, 2, 3], tuple[float, float]),
        (["a"], list[float] | None),
        (1, list[float] | None),
    ):
        with pytest.raises(TypeError):
            coerce(value, hint)


@pytest.mark.parametrize(
    "data, match",
    [
        ({"command": "train", "grid": {"seed": [0]}}, "unknown command 'train'"),
        ({"grid": {"seed": [0]}}, "no command"),
        ({"command": "simulate", "base": {"rnak": 2}, "grid": {"seed": [0]}}, "unknown simulate flag 'rnak'"),
        ({"command": "grok", "grid": {"d-modle": [16]}}, "unknown grok flag 'd-modle'"),
        ({"command": "simulate", "base": {"rank": 2}}, "the [grid] is empty"),
        ({"command": "simulate", "grid": {}}, "the [grid] is empty"),
        ({"command": "simulate", "grid": {"seed": []}}, "seed = [] is empty"),
        ({"command": "simulate", "grid": {"seed": 3}}, "must be a list of values"),
        ({"command": "simulate", "grid": {"lr": [0.01, "fast"]}}, "[grid] lr: 'fast' is not a number"),
        ({"command": "simulate", "base": {"rank": 2.5}, "grid": {"seed": [0]}}, "[base] rank: 2.5 is not an integer"),
        ({"command": "grok", "base": {"p": 7}, "grid": {"p": [7, 11]}}, "also in [base]"),
        ({"command": "simulate", "grid": {"device": ["cpu"]}}, "device cannot be a grid axis"),
        ({"command": "simulate", "grid": {"seed": [0]}, "extra": 1}, "unknown key 'extra'"),
    ],
)
def test_bad_specs_give_one_line(data, match):
    with pytest.raises(BumpsError) as err:
        parse_spec(data, "s.toml")
    assert match in str(err.value) and "\n" not in str(err.value)


def test_invalid_values_fail_alone_at_expansion():
    runs = expand(parse_spec({"command": "simulate", "base": {"rank": 2, "dim": 8}, "grid": {"lr": [0.01, -1.0]}}))
    assert runs[0].error is None and runs[0].config is not None
    assert runs[1].config is None and runs[1].error.startswith("`lr` must be a finite positive number")


# ----------------------------------------------------------------------------- manifest states


def test_manifest_states_from_status_files(tmp_path):
    out = tmp_path
    (out / "runs").mkdir()
    alive = _Liveness()
    run = {"run_file": "runs/r.pt"}
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    me = {"host": os.uname().nodename, "executor": "local", "job": "1"}
    live = {**me, "pid": os.getpid(), "pid_start": _proc_start(os.getpid())}
    gone = {**me, "pid": dead.pid, "pid_start": "1"}
    assert entry_status(out, run, {}, alive)["status"] == "pending"
    assert entry_status(out, run, {"status": "queued", **live}, alive)["status"] == "pending"
    assert entry_status(out, run, {"status": "running", "progress": 0.5, **live}, alive) == {
        "status": "running",
        "note": "",
        "job": "1",
        "progress": 0.5,
    }
    e = entry_status(out, run, {"status": "running", **gone}, alive)
    assert e["status"] == "pending" and "interrupted" in e["note"]
    reused = {**live, "pid_start": "0"}  # same pid, other process: not our job
    assert entry_status(out, run, {"status": "running", **reused}, alive)["status"] == "pending"
    assert entry_status(out, run, {"status": "done"}, alive)["status"] == "pending"  # no run file
    (out / "runs" / "r.pt").write_bytes(b"x")
    assert entry_status(out, run, {"status": "done"}, alive)["status"] == "done"
    assert entry_status(out, run, {"status": "failed", "error": "boom"}, alive) == {"status": "failed", "error": "boom"}
    assert entry_status(out, run, {"status": "interrupted"}, alive)["status"] == "pending"
    write_status(out, "r", "failed", error="x")
    assert json.loads((out / "status" / "r.json").read_text())["status"] == "failed"


# ----------------------------------------------------------------------------- running sweeps


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    """A local-executor sweep through the CLI: 3 runs, one with an invalid value (lr < 0)."""
    d = tmp_path_factory.mktemp("sweep")
    spec = write_spec(d / "spec.toml", TINY + "[grid]\nlr = [0.01, 0.02, -0.5]\n")
    proc = bumps("sweep", spec, "--out", d / "out", "--jobs", 2, "--models-per-job", 1)
    return d, spec, d / "out", proc


def test_local_sweep_finishes_and_a_bad_run_fails_alone(local_sweep):
    d, spec, out, proc = local_sweep
    assert proc.returncode == 1, proc.stderr  # 1: a run failed (not bad input)
    assert "2 done, 1 failed" in proc.stdout and "Traceback" not in proc.stderr
    m = manifest(out)
    assert m["counts"] == {"pending": 0, "running": 0, "done": 2, "failed": 1}
    by_lr = {e["grid"]["lr"]: e for e in m["runs"]}
    assert by_lr[-0.5]["status"] == "failed" and by_lr[-0.5]["error"].startswith("`lr` must be a finite positive")
    for lr in (0.01, 0.02):  # same numbers as simulate run directly
        e = by_lr[lr]
        assert e["status"] == "done" and e["error"] == ""
        run = torch.load(out / e["run_file"], weights_only=True)
        ref = simulate(LowRankConfig(rank=2, dim=8, seeds=2, steps=200, lr=lr))
        assert torch.equal(run["loss"], ref["loss"]) and torch.equal(run["inner_a"], ref["inner_a"])
        assert run["config"]["lr"] == lr and run["config"]["versions"]["torch"]
    assert len({e["job"] for e in m["runs"] if e["status"] == "done"}) == 2  # --models-per-job 1: two jobs


def test_rerun_skips_done_runs_and_status_prints_the_table(local_sweep):
    d, spec, out, _ = local_sweep
    files = {p: digest(p) for p in (out / "runs").glob("*.pt")}
    jobs_before = sorted(p.name for p in (out / "jobs").iterdir())
    proc = bumps("sweep", spec, "--out", out)
    assert proc.returncode == 1 and "2 done, 1 failed" in proc.stdout
    assert {p: digest(p) for p in (out / "runs").glob("*.pt")} == files  # untouched
    assert sorted(p.name for p in (out / "jobs").iterdir()) == jobs_before  # nothing resubmitted
    table = bumps("sweep", out, "--status")
    assert table.returncode == 0, table.stderr
    assert table.stdout.count("done") >= 2 and "`lr` must be a finite positive" in table.stdout
    assert "2 done, 0 running, 0 pending, 1 failed" in table.stdout


def test_runtime_failure_is_isolated_and_retried_on_rerun(tmp_path, monkeypatch):
    import bumps.lowrank.model

    spec = write_spec(tmp_path / "s.toml", TINY + "[grid]\nseed = [0, 1, 2]\n")
    real = bumps.lowrank.simulate

    def flaky(cfg, progress=None):
        if cfg.seed == 1:
            raise RuntimeError("boom\nsecond line")
        return real(cfg, progress)

    monkeypatch.setattr(bumps.lowrank.model, "simulate", flaky)
    m = run_sweep(spec, tmp_path / "out", SweepOptions(executor="inline", models_per_job=3))
    assert [e["status"] for e in m["runs"]] == ["done", "failed", "done"]
    assert m["runs"][1]["error"] == "RuntimeError: boom"
    done = {e["run_file"]: digest(tmp_path / "out" / e["run_file"]) for e in m["runs"] if e["status"] == "done"}
    monkeypatch.setattr(bumps.lowrank.model, "simulate", real)
    m = run_sweep(spec, tmp_path / "out", SweepOptions(executor="inline"))
    assert [e["status"] for e in m["runs"]] == ["done"] * 3
    assert {f: digest(tmp_path / "out" / f) for f in done} == done


def _start_and_kill(spec, out, kill_group: bool):
    """Start a local sweep (one job running 3 runs in turn); SIGKILL it once the first run file exists:
    the whole process group (driver and job: a run dies mid-way), or the driver only (the job lives on)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "cli.py"),
            "sweep",
            str(spec),
            "--out",
            str(out),
            "--jobs",
            "1",
            "--models-per-job",
            "3",
            "--cpus-per-job",
            "1",
        ],
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not list(out.glob("runs/*.pt")):
        assert proc.poll() is None and time.monotonic() < deadline, "sweep ended before a run file appeared"
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL) if kill_group else proc.kill()
    proc.wait()
    return {p: digest(p) for p in out.glob("runs/*.pt")}


@pytest.mark.parametrize(
    "kill_group", [True, pytest.param(False, marks=pytest.mark.slow)], ids=["kill-everything", "kill-driver-only"]
)
def test_killed_sweep_finishes_on_rerun_and_keeps_finished_runs(tmp_path, kill_group):
    steps = 3000
    grid = "[grid]\nseed = [0, 1, 2]\n"
    spec = write_spec(tmp_path / "s.toml", TINY.replace("steps = 200", f"steps = {steps}") + grid)
    out = tmp_path / "out"
    finished = _start_and_kill(spec, out, kill_group)
    if kill_group:
        assert 1 <= len(finished) < 3, "kill came too late to test resuming"
        assert manifest(out)["counts"]["done"] < 3
    rerun = bumps("sweep", spec, "--out", out, "--cpus-per-job", 1)
    assert rerun.returncode == 0, rerun.stderr
    m = manifest(out)
    assert m["counts"]["done"] == 3
    for p, d in finished.items():
        assert digest(p) == d  # finished runs untouched
    for e in m["runs"]:
        run = torch.load(out / e["run_file"], weights_only=True)
        ref = simulate(LowRankConfig(rank=2, dim=8, seeds=2, steps=steps, seed=e["grid"]["seed"]))
        assert torch.equal(run["loss"], ref["loss"])
    for p in Path("/proc").glob("[0-9]*"):  # no job of this sweep left behind
        try:
            cmd = (p / "cmdline").read_bytes()
        except OSError:
            continue
        assert str(out).encode() not in cmd


ORPHAN = """
import fcntl, json, os, sys, time
from pathlib import Path
from bumps.sweep import _proc_start, write_status
out, rid = Path(sys.argv[1]), sys.argv[2]
with open(out / "status" / f"{rid}.lock", "a") as fh:
    fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
    write_status(out, rid, "running", executor="local", job="orphan", host=os.uname().nodename,
                 pid=os.getpid(), pid_start=_proc_start(os.getpid()))
    print("running", flush=True)
    time.sleep(1.5)
    (out / "runs" / f"{rid}.pt").write_bytes(b"written by the orphan")
    write_status(out, rid, "done", job="orphan")
"""


def test_rerun_waits_for_a_run_still_alive_in_an_old_job(tmp_path):
    """A job of a killed driver still runs one run: the new driver waits for it instead of running it twice."""
    spec = write_spec(tmp_path / "s.toml", TINY + "[grid]\nseed = [0, 1]\n")
    out = tmp_path / "out"
    first = run_sweep(spec, out, SweepOptions(executor="inline"))
    rid = first["runs"][1]["id"]
    (out / "runs" / f"{rid}.pt").unlink()
    (out / "status" / f"{rid}.json").unlink()
    orphan = subprocess.Popen(
        [sys.executable, "-c", ORPHAN, str(out), rid], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert orphan.stdout.readline().strip() == "running"
    m = run_sweep(spec, out, SweepOptions(executor="inline", poll=0.05))
    orphan.wait()
    assert [e["status"] for e in m["runs"]] == ["done", "done"]
    assert (out / "runs" / f"{rid}.pt").read_bytes() == b"written by the orphan"  # not run a second time
    assert m["runs"][1]["job"] == "orphan"


# ----------------------------------------------------------------------------- grok: ensembles


@pytest.fixture
def one_thread():
    """Tiny models: one intra-op thread is fastest (and two are very slow on a busy 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def grok_config(**kw):
    from bumps.modadd.model import ModAddConfig

    return ModAddConfig.from_preset(
        "nanda", p=7, d_model=16, n_heads=1, epochs=20, eval_every=10, checkpoint_every=0, **kw
    )


def test_grok_sweep_trains_equal_shapes_together_and_each_equals_its_single_run(tmp_path, one_thread):
    from bumps.modadd.train import train

    spec = write_spec(tmp_path / "g.toml", GROK + "[grid]\nseed = [0, 1, 2]\nd_mlp = [32, 48]\n")
    m = run_sweep(spec, tmp_path / "out", SweepOptions(executor="local", jobs=2, models_per_job=3, cpus_per_job=1))
    assert m["counts"]["done"] == 6
    job_of = {}
    for e in m["runs"]:
        job_of.setdefault(e["grid"]["d_mlp"], set()).add(e["job"])
    assert len(job_of[32]) == len(job_of[48]) == 1 and job_of[32] != job_of[48]  # one ensemble per shape
    for e in m["runs"][:2]:  # a member of each ensemble against its own single run
        run = torch.load(tmp_path / "out" / e["run_file"], weights_only=True)
        single = train(grok_config(**e["grid"]), tmp_path / "single.pt")
        assert run["config"]["seed"] == e["grid"]["seed"] and run["config"]["d_mlp"] == e["grid"]["d_mlp"]
        torch.testing.assert_close(
            run["train_loss_every_epoch"], single["train_loss_every_epoch"], rtol=1e-4, atol=1e-7
        )
        torch.testing.assert_close(run["test_loss"], single["test_loss"], rtol=1e-4, atol=1e-7)


def test_grok_ensemble_failure_is_isolated_to_its_member(tmp_path, monkeypatch, one_thread):
    import bumps.modadd.train

    real = bumps.modadd.train.train_many
    seen = []

    def train_many(configs, outs, **kw):
        seen.append(sorted(c.seed for c in configs))
        if any(c.seed == 1 for c in configs):
            raise FloatingPointError("loss is nan\ndetails")
        return real(configs, outs, **kw)

    monkeypatch.setattr(bumps.modadd.train, "train_many", train_many)
    spec = write_spec(tmp_path / "g.toml", GROK + "[grid]\nseed = [0, 1, 2]\n")
    m = run_sweep(spec, tmp_path / "out", SweepOptions(executor="inline", models_per_job=3, cpus_per_job=1))
    assert seen == [[0, 1, 2], [0], [1], [2]]  # the ensemble, then each member alone
    assert [e["status"] for e in m["runs"]] == ["done", "failed", "done"]
    assert m["runs"][1]["error"] == "FloatingPointError: loss is nan"


def test_interrupted_grok_runs_continue_from_their_autosave(tmp_path, monkeypatch, one_thread):
    import bumps.modadd.train
    from bumps.modadd.train import train
    from bumps.sweep import Interrupted

    real, started_from = bumps.modadd.train.train_many, []
    monkeypatch.setattr(bumps.modadd.train, "train_many", lambda c, o, **kw: real(c, o, **kw, stop_at=10))
    spec = write_spec(tmp_path / "g.toml", GROK + "d_mlp = 32\n[grid]\nseed = [0, 1]\n")
    out = tmp_path / "out"
    with pytest.raises(Interrupted, match="0 of 2 runs done"):
        run_sweep(spec, out, SweepOptions(executor="inline", models_per_job=2, cpus_per_job=1))
    m = json.loads((out / "manifest.json").read_text())
    assert [e["status"] for e in m["runs"]] == ["pending", "pending"]
    assert all(torch.load(out / e["run_file"], weights_only=True)["config"]["epochs_done"] == 10 for e in m["runs"])

    monkeypatch.setattr(bumps.modadd.train, "train_many", real)
    real_start = bumps.modadd.train._Member.start_from_run
    monkeypatch.setattr(
        bumps.modadd.train._Member,
        "start_from_run",
        lambda self, path, state: started_from.append(Path(path).name) or real_start(self, path, state),
    )
    m = run_sweep(spec, out, SweepOptions(executor="inline", models_per_job=2, cpus_per_job=1))
    assert [e["status"] for e in m["runs"]] == ["done", "done"]
    assert sorted(started_from) == sorted(Path(e["run_file"]).name for e in m["runs"])  # continued, not restarted
    for e in m["runs"]:
        run = torch.load(out / e["run_file"], weights_only=True)
        single = train(grok_config(d_mlp=32, **e["grid"]), tmp_path / "single.pt")
        assert run["config"]["epochs_done"] == 20
        torch.testing.assert_close(
            run["train_loss_every_epoch"], single["train_loss_every_epoch"], rtol=1e-4, atol=1e-7
        )


# ----------------------------------------------------------------------------- bad input through the CLI


def test_cli_bad_spec_is_one_line_exit_2(tmp_path):
    spec = write_spec(tmp_path / "s.toml", TINY + "[grid]\nlearning_rate = [0.1]\n")
    assert_one_line_error(bumps("sweep", spec, "--out", tmp_path / "o"), "unknown simulate flag 'learning_rate'")
    assert not (tmp_path / "o").exists()
    bad = write_spec(tmp_path / "b.toml", "command = simulate\n")
    with pytest.raises(BumpsError, match="is not valid TOML"):
        load_spec(bad)
    with pytest.raises(BumpsError, match="no such spec file"):
        load_spec(tmp_path / "missing.toml")


def test_out_holding_another_sweep_is_refused_and_kept(local_sweep, tmp_path):
    d, spec, out, _ = local_sweep
    before = {p: digest(p) for p in out.rglob("*") if p.is_file()}
    other = write_spec(tmp_path / "other.toml", TINY + "[grid]\nlr = [0.01, 0.03]\n")
    assert_one_line_error(bumps("sweep", other, "--out", out), "holds another sweep (its grid differs)")
    assert {p: digest(p) for p in out.rglob("*") if p.is_file()} == before
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep")
    with pytest.raises(BumpsError, match="not empty and holds no sweep"):
        run_sweep(other, tmp_path / "full", SweepOptions(executor="inline"))
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["mine.txt"]
    with pytest.raises(BumpsError, match="holds no sweep"):
        sweep_status(tmp_path / "full")


def test_slurm_where_there_is_none_is_one_line(tmp_path):
    spec = write_spec(tmp_path / "s.toml", TINY + "[grid]\nseed = [0]\n")
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty)}
    proc = bumps("sweep", spec, "--out", tmp_path / "o", "--executor", "slurm", env=env)
    assert_one_line_error(proc, "no sbatch on PATH")
    for name in ("sbatch", "srun", "squeue"):  # installed but the controller does not answer
        (empty / name).write_text("#!/bin/sh\nexit 0\n")
    (empty / "sinfo").write_text("#!/bin/sh\necho 'sinfo: error: Unable to contact slurm controller' >&2\nexit 1\n")
    for f in empty.iterdir():
        f.chmod(0o755)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", str(empty))
        with pytest.raises(BumpsError, match=r"Slurm is not reachable \(sinfo: error: Unable to contact slurm"):
            run_sweep(spec, tmp_path / "o", SweepOptions(executor="slurm"))
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_unavailable_device_is_one_line_before_anything_is_written(tmp_path):
    spec = write_spec(tmp_path / "s.toml", TINY + "[grid]\nseed = [0]\n")
    with pytest.raises(BumpsError, match="--device 'cuda' is not available here"):
        run_sweep(spec, tmp_path / "o", SweepOptions(executor="inline", device="cuda"))
    assert not (tmp_path / "o").exists()


def test_spec_and_sweep_types():
    spec = Spec("simulate", {"rank": 2}, {"seed": [0, 1]})
    assert spec.fingerprint() == Spec("simulate", {"rank": 2, "device": "cuda"}, {"seed": [0, 1]}).fingerprint()
    assert spec.fingerprint() != Spec("simulate", {"rank": 3}, {"seed": [0, 1]}).fingerprint()
    with pytest.raises(BumpsError, match="--executor must be one of"):
        SweepOptions(executor="kubernetes").validate()


# ----------------------------------------------------------------------------- Slurm (slow)


@pytest.mark.slow
def test_sweep_on_a_single_node_slurm(tmp_path):
    """Starts scripts/slurm-local.sh (installs slurm-wlm + munge with apt if missing: needs root)."""
    script = ROOT / "scripts" / "slurm-local.sh"
    if os.geteuid() != 0 and not shutil.which("sbatch"):
        pytest.skip("needs root (to install/start Slurm) or a running Slurm")
    was_up = "slurmctld: running" in subprocess.run([script, "status"], capture_output=True, text=True).stdout
    subprocess.run([script, "start"], check=True, timeout=900)
    try:
        spec = write_spec(tmp_path / "s.toml", TINY + "[grid]\nseed = [0, 1, 2]\nlr = [0.01, 0.02]\n")
        out = tmp_path / "out"
        proc = bumps(
            "sweep",
            spec,
            "--out",
            out,
            "--executor",
            "slurm",
            "--partition",
            "debug",
            "--jobs",
            2,
            "--models-per-job",
            2,
            "--time",
            10,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        m = manifest(out)
        assert m["counts"]["done"] == 6
        jobs = {e["job"] for e in m["runs"]}
        assert len(jobs) == 3 and all("_" in j for j in jobs)  # one Slurm array, 3 tasks of 2 runs
        for e in m["runs"]:
            run = torch.load(out / e["run_file"], weights_only=True)
            ref = simulate(LowRankConfig(rank=2, dim=8, seeds=2, steps=200, **e["grid"]))
            assert torch.equal(run["loss"], ref["loss"])
        assert_one_line_error(
            bumps("sweep", spec, "--out", out, "--executor", "slurm", "--partition", "nope"),
            "--partition 'nope' does not exist",
        )
        # the driver dies after submitting: its array keeps running; a rerun follows it, submits nothing new
        out2 = tmp_path / "out2"
        proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "cli.py"),
                "sweep",
                str(spec),
                "--out",
                str(out2),
                "--executor",
                "slurm",
                "--partition",
                "debug",
                "--jobs",
                "1",
                "--models-per-job",
                "2",
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while len(list(out2.glob("status/*.json"))) < 6:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        proc.kill()
        proc.wait()
        rerun = bumps("sweep", spec, "--out", out2, "--executor", "slurm", "--partition", "debug")
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        m = manifest(out2)
        assert m["counts"]["done"] == 6
        assert len({e["job"].split("_")[0] for e in m["runs"]}) == 1  # all from the first array
        assert len(list((out2 / "jobs").glob("*_submission.sh"))) == 1
    finally:
        if not was_up:
            subprocess.run([script, "stop"], check=True, timeout=120)


def test_spec_typos_get_a_suggestion():
    from bumps.errors import did_you_mean

    cases = [
        ({"command": "grok", "grid": {"lrr": [1e-3]}}, "unknown grok flag 'lrr'; did you mean 'lr'?"),
        ({"command": "simulate", "base": {"sed": 1}, "grid": {"rank": [1]}}, "did you mean 'seed' or 'seeds'?"),
        ({"commnd": "grok"}, "unknown key 'commnd'; did you mean 'command'?"),
        ({"command": "grk"}, "unknown command 'grk'; did you mean 'grok'?"),
    ]
    for data, match in cases:
        with pytest.raises(BumpsError) as err:
            parse_spec(data, "s.toml")
        assert match in str(err.value) and "\n" not in str(err.value)
    assert did_you_mean("zzzz", ["lr", "seed"]) == ""
