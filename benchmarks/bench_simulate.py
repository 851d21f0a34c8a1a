"""Simulator speed: `bumps simulate` (whole process) vs the obvious per-seed autograd loop.

Workload (issue 2): 256 seeds × 2000 GD steps, d = 100, r = K = 4, inner products
recorded every step. The baseline (bumps.lowrank.simulate_reference: autograd on
½‖A − UVᵀ‖², torch.optim.SGD, one seed at a time) is timed in this same run on
--baseline-seeds seeds and scaled to 256 (its cost is linear in seeds by
construction); pass --baseline-seeds 256 to time all of them. The baseline and the
in-process simulate() run with --threads intra-op threads (default 1: both are
fastest single-threaded on this workload, see README); `bumps simulate` chooses its
own (1 here). The CLI is also timed with torch's default threads (the behaviour
before it chose) and with the opt-in --record-dtype float32.

    .venv/bin/python benchmarks/bench_simulate.py
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bumps.lowrank.model import LowRankConfig, simulate, simulate_reference  # noqa: E402


def best_of(cmd: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=256)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--baseline-seeds", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads for the baseline and in-process runs")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-d-scan", action="store_true")
    args = ap.parse_args()
    default_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            str(ROOT / "cli.py"),
            "simulate",
            "--rank",
            "4",
            "--dim",
            "100",
            "--seeds",
            str(args.seeds),
            "--steps",
            str(args.steps),
            "--record-every",
            "1",
            "--out",
            str(Path(tmp) / "bench.pt"),
        ]
        cli = best_of(cmd, args.repeats)
        cli_f32 = best_of([*cmd, "--record-dtype", "float32"], args.repeats)
        cli_default_threads = best_of([*cmd, "--threads", str(default_threads)], args.repeats)

    cfg = LowRankConfig(rank=4, dim=100, seeds=args.seeds, steps=args.steps, record_every=1)
    t0 = time.perf_counter()
    simulate(cfg)
    in_process = time.perf_counter() - t0

    base_cfg = LowRankConfig(rank=4, dim=100, seeds=args.baseline_seeds, steps=args.steps, record_every=1)
    t0 = time.perf_counter()
    simulate_reference(base_cfg)
    baseline = (time.perf_counter() - t0) * args.seeds / args.baseline_seeds

    print(f"workload: {args.seeds} seeds x {args.steps} steps, d=100, r=K=4, record every step")
    print(
        f"baseline (per-seed autograd loop, {args.threads} thread(s), {args.baseline_seeds} seeds timed, scaled "
        f"to {args.seeds}): {baseline:.1f} s"
    )
    print(
        f"bumps simulate, whole process incl. start-up and writing the run file (best of {args.repeats}): "
        f"{cli:.2f} s   ratio {baseline / cli:.0f}x"
    )
    print(
        f"  same with --record-dtype float32 (opt-in, half the file): {cli_f32:.2f} s   ratio {baseline / cli_f32:.0f}x"
    )
    print(
        f"  same with --threads {default_threads} (torch's default; the behaviour before `simulate` chose): "
        f"{cli_default_threads:.2f} s   ratio {baseline / cli_default_threads:.0f}x"
    )
    print(f"simulate() in process ({args.threads} thread(s)): {in_process:.2f} s   ratio {baseline / in_process:.0f}x")
    if args.skip_d_scan:
        return
    print(
        "\ntime vs d (GD: closed r×K recurrence, cost independent of d except the initial draw; "
        "Adam: d-dimensional vectors)"
    )
    for opt in ("gd", "adam"):
        for d in (10, 100, 1000, 10000) if opt == "gd" else (10, 100, 1000):
            c = LowRankConfig(rank=4, dim=d, seeds=args.seeds, steps=args.steps, record_every=1, optimizer=opt)
            t0 = time.perf_counter()
            simulate(c)
            print(f"  {opt:5s} d={d:6d}: {time.perf_counter() - t0:6.2f} s")


if __name__ == "__main__":
    main()
