"""The thread policy (bumps.threads) against fixed thread counts, with one core kept busy and on an idle machine.

Times one command (default: the `bumps grok` run of issue 23) with the default threads (the policy) and
with ``--threads 1`` and ``--threads 2``, each as a fresh process, in two conditions:

* ``busy``: a spinning subprocess that this script starts keeps one core busy for the whole measurement;
* ``idle``: nothing else started by this script (the machine is only idle if nothing else runs on it:
  the script prints the 1-minute load average before each condition so that a reader can tell).

For each condition it prints the wall time of every setting and the ratio default / best; the policy
meets its goal when that ratio is <= 1.2 in both conditions.

    .venv/bin/python benchmarks/bench_threads.py [--repeats 2] [--conditions busy,idle] [--epochs 300]
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
COMMAND = "grok --p 31 --train-frac 0.6 --d-model 64 --d-mlp 256 --lr 3e-3 --checkpoint-every 0"
SPIN = "import time\nwhile True:\n    pass\n"


def time_once(args: list[str], threads: int | None, out: Path) -> float:
    cmd = [sys.executable, str(ROOT / "cli.py"), *args, "--out", str(out)]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr}")
    return elapsed


def measure(args: list[str], repeats: int, folder: Path) -> dict[str, float]:
    best: dict[str, float] = {}
    for r in range(repeats):
        for name, threads in (("default", None), ("threads 1", 1), ("threads 2", 2)):
            t = time_once(args, threads, folder / f"{name.replace(' ', '')}_{r}.pt")
            best[name] = min(best.get(name, float("inf")), t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2, help="runs per setting; the fastest counts")
    ap.add_argument("--conditions", default="busy,idle", help="comma-separated: busy, idle")
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--command", default=COMMAND, help="bumps arguments to time (without --out and --threads)")
    a = ap.parse_args()
    args = [*a.command.split(), "--epochs", str(a.epochs)]
    print(f"command: bumps {' '.join(args)}; cores: {os.cpu_count()}; fastest of {a.repeats} runs per setting")
    with tempfile.TemporaryDirectory() as tmp:
        for condition in a.conditions.split(","):
            spinner = None
            if condition == "busy":
                spinner = subprocess.Popen([sys.executable, "-c", SPIN])
                time.sleep(1.0)
            elif condition != "idle":
                sys.exit(f"--conditions: unknown condition {condition!r}; use busy, idle")
            try:
                load = os.getloadavg()[0]
                times = measure(args, a.repeats, Path(tmp))
            finally:
                if spinner is not None:
                    spinner.kill()
                    spinner.wait()
            best = min(times.values())
            cells = ", ".join(f"{k} {v:.2f} s" for k, v in times.items())
            ratio = times["default"] / best
            verdict = "within 20% of the best" if ratio <= 1.2 else "MORE than 20% slower than the best"
            print(f"{condition} (load average {load:.2f} before): {cells}; default/best {ratio:.2f} ({verdict})")


if __name__ == "__main__":
    main()
