"""Sweep wall time: a small grid run one `bumps` command after another vs `bumps sweep`.

Modes, all timed in this run on the same grid (whole processes, startup included):
  sequential   one `bumps simulate|grok` command per run, one after another (what a user does by hand);
               -1-thread: with OMP_NUM_THREADS=1
  inline       `bumps sweep --executor inline`: every run in one process, one after another
               (torch threads = cores; inline-1-thread: --cpus-per-job 1)
  local-jN     `bumps sweep --jobs N` (submitit LocalExecutor, N concurrent jobs, torch threads = cores / N,
               default packing: runs / N per job); -m1: --models-per-job 1 (one process per run)
Grok adds `local-j1-ensemble-1-thread`: all runs in one job, one `train_many` ensemble (--models-per-job = runs).
--one-thread-only skips the modes with torch's default thread count.

    .venv/bin/python benchmarks/bench_sweep.py                    # simulate grid (8 runs)
    .venv/bin/python benchmarks/bench_sweep.py --command grok     # grok grid (4 seeds, p = 31)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SIMULATE = {
    "base": {"rank": 4, "dim": 100, "seeds": 16, "steps": 500, "optimizer": "adam"},
    "grid": {"seed": list(range(8))},
}
GROK = {
    "base": {
        "p": 31,
        "d_model": 32,
        "d_mlp": 128,
        "n_heads": 4,
        "epochs": 1000,
        "eval_every": 100,
        "checkpoint_every": 0,
    },
    "grid": {"seed": [0, 1, 2, 3]},
}


def toml(command: str, spec: dict) -> str:
    lines = [f'command = "{command}"', "[base]"]
    lines += [f"{k} = {v!r}".replace("'", '"') for k, v in spec["base"].items()]
    lines += ["[grid]"] + [f"{k} = {v!r}" for k, v in spec["grid"].items()]
    return "\n".join(lines) + "\n"


def timed(cmd: list[str], env: dict | None = None) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--command", choices=("simulate", "grok"), default="simulate")
    ap.add_argument("--jobs", default="2", help="comma-separated --jobs values for the local executor")
    ap.add_argument(
        "--one-thread-only",
        action="store_true",
        help="skip the modes with torch's default threads (very slow on a busy 2-core machine)",
    )
    args = ap.parse_args()
    spec = SIMULATE if args.command == "simulate" else GROK
    ((axis, values),) = spec["grid"].items()
    n = len(values)
    cli = [sys.executable, str(ROOT / "cli.py")]
    load = os.getloadavg()[0]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "spec.toml").write_text(toml(args.command, spec))
        seq_modes = (("sequential", {}), ("sequential-1-thread", {"OMP_NUM_THREADS": "1"}))
        for mode, env in seq_modes[args.one_thread_only :]:
            t = 0.0
            for v in values:
                flags = [f"--{k.replace('_', '-')}={x}" for k, x in {**spec["base"], axis: v}.items()]
                t += timed([*cli, args.command, *flags, "--out", str(tmp / f"{mode}_{v}.pt")], env)
            results[mode] = t
        sweep = [*cli, "sweep", str(tmp / "spec.toml")]
        if not args.one_thread_only:
            results["inline"] = timed([*sweep, "--out", str(tmp / "inline"), "--executor", "inline"])
        results["inline-1-thread"] = timed(
            [*sweep, "--out", str(tmp / "inline1"), "--executor", "inline", "--cpus-per-job", "1"]
        )
        for j in map(int, args.jobs.split(",")):
            results[f"local-j{j}"] = timed([*sweep, "--out", str(tmp / f"j{j}"), "--jobs", str(j)])
            results[f"local-j{j}-m1"] = timed(
                [*sweep, "--out", str(tmp / f"j{j}m1"), "--jobs", str(j), "--models-per-job", "1"]
            )
        if args.command == "grok":
            results["local-j1-ensemble-1-thread"] = timed(
                [*sweep, "--out", str(tmp / "ens"), "--jobs", "1", "--models-per-job", str(n), "--cpus-per-job", "1"]
            )
    print(
        f"{args.command} grid: {n} runs, base {spec['base']}; {os.cpu_count()} cores; "
        f"load average before {load:.1f} (shared machine: compare ratios within one run)"
    )
    ref = "sequential" if "sequential" in results else "sequential-1-thread"
    print(f"{'mode':<27} {'wall s':>8} {'vs ' + ref:>24}")
    for mode, t in results.items():
        print(f"{mode:<27} {t:8.1f} {results[ref] / t:23.2f}x")


if __name__ == "__main__":
    main()
