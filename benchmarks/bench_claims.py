"""Wall time of the default `bumps claims` (goal: <= 3 minutes on 2 cores), from an empty cache.

Runs `python cli.py claims` as a user would (whole process: imports, every configuration,
knockouts, report and figure), with a fresh cache so nothing is reused, and prints the
wall time. By default it writes the real outputs (reports/claims.md|json,
figures/claims_knockouts.png); pass --out/--figures elsewhere to keep them.

    .venv/bin/python benchmarks/bench_claims.py [--out reports --figures figures]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="reports")
    ap.add_argument("--figures", default="figures")
    args, extra = ap.parse_known_args()
    with tempfile.TemporaryDirectory() as cache:
        t = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                str(ROOT / "cli.py"),
                "claims",
                "--out",
                args.out,
                "--figures",
                args.figures,
                "--cache",
                cache,
                *extra,
            ],
            cwd=ROOT,
        )
        wall = time.perf_counter() - t
    print(
        f"bumps claims (default grid, empty cache): {wall:.0f} s wall "
        f"({'within' if wall <= 180 else 'OVER'} the 3-minute goal), exit code {proc.returncode}"
    )


if __name__ == "__main__":
    main()
