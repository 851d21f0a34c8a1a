"""`bumps detect` tables are readable in an 80-column terminal: nothing cut to '…', nothing past column 80."""

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from rich.console import Console

from bumps.detect.analysis import analyze, load_source
from bumps.io.runfile import atomic_save
from bumps.lowrank.model import LowRankConfig, simulate
from bumps.report.terminal import print_report

ROOT = Path(__file__).resolve().parents[2]
HEADERS = (  # the summary, the bump table and the phase-change table of a toy run
    "series",
    "curves",
    "scale",
    "bumps",
    "spikes",
    "phase",
    "changes",
    "explained",
    "index",
    "start",
    "peak",
    "end",
    "rise",
    "drop",
    "onset",
    "steepest",
    "size",
    "before",
)


def test_cli_detect_fits_80_columns_without_ellipsis(tmp_path):
    run = simulate(LowRankConfig(rank=4, seeds=8, steps=1500))  # every summary column (competition, decay)
    atomic_save(run, tmp_path / "r4.pt")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "detect", str(tmp_path / "r4.pt"), "--rows", "5"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env={**os.environ, "COLUMNS": "80", "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    words = set(out.split())
    assert set(HEADERS) <= words, set(HEADERS) - words
    assert "inner_a" in words and "explained by" in out


def test_long_curve_names_wrap_instead_of_being_cut(tmp_path):
    name = "a-very-long-wandb-run-name-with-a-sweep-id-x7f3k - train/loss"
    steps = np.arange(0, 1000, 10)
    y = np.exp(-steps / 200) + 0.5 * np.exp(-0.5 * ((steps - 400) / 30) ** 2)
    lines = ["step," + name] + [f"{s},{v!r}" for s, v in zip(steps.tolist(), y.tolist(), strict=True)]
    (tmp_path / "c.csv").write_text("\n".join(lines) + "\n")
    result = analyze(load_source(tmp_path / "c.csv"))
    assert result["summary"][name]["bumps"] == 1
    buf = io.StringIO()
    print_report(result, tmp_path / "c.csv", console=Console(file=buf, width=80, color_system=None))
    out = buf.getvalue()
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= 80
    assert "a-very-long-wandb-run-nam" in out.replace("\n", "")  # folded, every character kept


def test_no_events_column_and_frequencies_labelled_from_one():
    """The summary has no column repeating another; a mod-add frequency index shows as k (the plots' label)."""
    from io import StringIO

    from rich.console import Console

    result = {
        "summary": {
            "freq_norm": {
                "axes": ["frequency"],
                "curves": 56,
                "bumps": 1,
                "curves_with_bumps": 1,
                "climb_back": 0,
                "median_peak_height": 1.0,
                "competition_events": 1,
                "explained_by_competition": 1,
            }
        },
        "bumps": [
            {
                "series": "freq_norm",
                "index": [34],
                "start_step": 0,
                "peak_step": 5,
                "end_step": 9,
                "height": 1.0,
                "rise": 0.5,
                "drop": 0.5,
                "climbs_back": False,
            }
        ],
    }
    out = StringIO()
    print_report(result, "r.pt", console=Console(file=out, width=80))
    text = out.getvalue()
    assert "events" not in text.split("\n\n")[0] and " 35 " in text and " 34 " not in text
