"""Set up a virtual environment and run the example or the checks (the README's two commands).

    python3 dev.py example   # simulate rank 4, detect bumps and competition, write a figure
    python3 dev.py test      # ruff check, ruff format --check, pytest [args], mkdocs build --strict (what CI runs)

Only needs Python >= 3.11. Installs .[test,docs] into .venv/ with torch pinned by constraints.txt.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def sh(*args: str) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run(args, cwd=ROOT, check=True)


def setup() -> None:
    if not PY.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    sh(
        str(PY),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "-c",
        "constraints.txt",
        "-e",
        ".[test,docs]",
    )


def example() -> None:
    bumps = [str(PY), "cli.py"]
    sh(*bumps, "simulate", "--rank", "4", "--seeds", "64", "--out", "runs/example_rank4.pt")
    sh(*bumps, "detect", "runs/example_rank4.pt", "--plot", "runs/example_rank4_detect.png", "--rows", "8")
    print("figure: runs/example_rank4_detect.png")


def test(extra: list[str]) -> None:
    sh(str(PY), "-m", "ruff", "check", ".")
    sh(str(PY), "-m", "ruff", "format", "--check", ".")
    sh(str(PY), "-m", "pytest", "-q", *extra)
    os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")  # silence Material's end-of-life banner
    with tempfile.TemporaryDirectory() as site:  # the built site is checked, not kept
        sh(str(PY), "-m", "mkdocs", "build", "--strict", "--site-dir", site)


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("example", "test"):
        sys.exit("usage: python3 dev.py example | test [pytest args]")
    try:
        setup()
        example() if sys.argv[1] == "example" else test(sys.argv[2:])
    except subprocess.CalledProcessError as exc:
        sys.exit(exc.returncode)
