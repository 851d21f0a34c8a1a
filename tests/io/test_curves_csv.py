"""Curves from CSV: W&B-shaped exports, empty cells per curve, one-line refusals."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bumps.detect.analysis import analyze, load_source
from bumps.errors import BumpsError
from bumps.io.curves_csv import read_curves_csv

ROOT = Path(__file__).resolve().parents[2]


def write(path, header, rows):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def bump_curve(steps, peak_at):
    """A decaying loss with one transient bump centred at ``peak_at``."""
    s = np.asarray(steps, dtype=float)
    return 2.0 * np.exp(-s / 300) + 0.8 * np.exp(-0.5 * ((s - peak_at) / 40) ** 2)


@pytest.fixture
def wandb_csv(tmp_path):
    """Shaped like W&B's chart "Export CSV": Step, '<run> - <metric>' plus __MIN/__MAX envelopes.

    run-a logs every 10 steps with a bump at 500; run-b logs every 20 steps (empty cells in
    between) with a bump at 1200; run-c is a plain decay (no bump).
    """
    steps = list(range(0, 2001, 10))
    a = bump_curve(steps, 500).tolist()
    b = bump_curve(steps, 1200).tolist()
    c = (2.0 * np.exp(-np.asarray(steps) / 300)).tolist()
    header = [
        "Step",
        "run-a - loss",
        "run-a - loss__MIN",
        "run-a - loss__MAX",
        "run-b - loss",
        "run-b - loss__MIN",
        "run-b - loss__MAX",
        "run-c - loss",
    ]
    rows = []
    for i, s in enumerate(steps):
        keep_b = s % 20 == 0
        rows.append(
            [
                s,
                repr(a[i]),
                repr(a[i] - 0.01),
                repr(a[i] + 0.01),
                repr(b[i]) if keep_b else "",
                repr(b[i] - 0.01) if keep_b else "",
                repr(b[i] + 0.01) if keep_b else "",
                repr(c[i]),
            ]
        )
    return write(tmp_path / "wandb_export.csv", header, rows), steps, b


def test_wandb_export_bumps_found_per_curve_on_its_own_steps(wandb_csv):
    path, steps, b = wandb_csv
    source = load_source(path)
    assert [spec.key for spec, _ in source.series] == ["run-a - loss", "run-b - loss", "run-c - loss"]
    assert np.array_equal(source.step_for("run-b - loss"), np.arange(0, 2001, 20))
    assert np.array_equal(source.step_for("run-a - loss"), np.arange(0, 2001, 10))
    result = analyze(source)
    by = {}
    for row in result["bumps"]:
        by.setdefault(row["series"], []).append(row)
    assert set(by) == {"run-a - loss", "run-b - loss"}  # run-c only decays: no bump
    (ra,), (rb,) = by["run-a - loss"], by["run-b - loss"]
    assert abs(ra["peak_step"] - 500) <= 30 and abs(rb["peak_step"] - 1200) <= 40
    # run-b's sample positions index its own 101 samples, not the table's 201 rows
    assert rb["peak_step"] == 20 * rb["peak"]
    b_own = np.asarray(b)[::2]
    assert rb["height"] == pytest.approx(b_own[rb["peak"]], rel=1e-15)
    assert result["summary"]["run-b - loss"]["curves"] == 1


def test_empty_cells_are_dropped_not_filled(tmp_path):
    """Control: filling the gap with the neighbours would hide this bump; dropping keeps its samples exact."""
    path = write(
        tmp_path / "c.csv", ["step", "x", "y"], [[0, 0, 1], [1, "", 2], [2, 5, 3], [3, 1, 4], [4, "", 5], [5, 0, 6]]
    )
    got = read_curves_csv(path)
    assert got.step_column == "step"
    steps, values = got.curves["x"]
    assert steps.tolist() == [0, 2, 3, 5] and values.tolist() == [0, 5, 1, 0]
    assert got.curves["y"][0].tolist() == [0, 1, 2, 3, 4, 5]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.floats(-1e6, 1e6, allow_nan=False), st.booleans()), min_size=1, max_size=30),
    st.lists(st.integers(1, 7), min_size=30, max_size=30),
)
def test_csv_round_trip_keeps_exactly_the_logged_samples(tmp_path_factory, cells, gaps):
    steps = np.cumsum(gaps[: len(cells)])
    if not any(keep for _, keep in cells):
        cells = [(cells[0][0], True), *cells[1:]]
    rows = [[int(s), repr(v) if keep else ""] for s, (v, keep) in zip(steps, cells, strict=True)]
    path = write(tmp_path_factory.mktemp("rt") / "r.csv", ["_step", "metric"], rows)
    got_steps, got_values = read_curves_csv(path).curves["metric"]
    want = [(int(s), v) for s, (v, keep) in zip(steps, cells, strict=True) if keep]
    assert list(zip(got_steps.tolist(), got_values.tolist(), strict=True)) == want


def test_step_column_choice(tmp_path):
    path = write(tmp_path / "a.csv", ["loss", "epoch"], [[3, 1], [2, 2], [1, 3]])
    assert read_curves_csv(path).step_column == "epoch"  # a known name wins over position
    path = write(tmp_path / "b.csv", ["iteration", "loss"], [[10, 3], [20, 2]])
    assert read_curves_csv(path).step_column == "iteration"  # else the first column
    got = read_curves_csv(path, step_column="iteration")
    assert got.curves["loss"][1].tolist() == [3, 2]
    with pytest.raises(BumpsError, match="step column 'loss' does not strictly increase"):
        read_curves_csv(path, step_column="loss")  # --step-column: a decreasing column is refused


@pytest.mark.parametrize(
    "header,rows,match",
    [
        (["step", "name"], [[0, "a"], [1, "b"]], "no numeric curve column"),
        (["step"], [[0], [1]], "no numeric curve column"),
        (["step", "loss"], [[0, 1], [2, 1], [1, 1]], "step column 'step' does not strictly increase (line 4"),
        (["step", "loss"], [[0, 1], [0, 1]], "does not strictly increase"),
        (["step", "loss", "acc"], [[0, 1, 0.5], [1, "oops", 0.6]], "column 'loss' holds text 'oops' at line 3"),
        (["step", "loss"], [[0, 1], ["", 2]], "step column 'step' is empty at line 3"),
        (["step", "loss"], [[0, 1], [1, "nan"]], "column 'loss' holds 'nan' at line 3"),
        (["step", "loss", "loss"], [[0, 1, 2]], "column 'loss' appears twice"),
    ],
)
def test_bad_csv_one_clear_error(tmp_path, header, rows, match):
    with pytest.raises(BumpsError) as info:
        read_curves_csv(write(tmp_path / "bad.csv", header, rows))
    assert match in str(info.value) and "\n" not in str(info.value)


def test_missing_step_column_option(tmp_path):
    path = write(tmp_path / "a.csv", ["step", "loss"], [[0, 1], [1, 2]])
    with pytest.raises(BumpsError, match="`step_column` 'Step' is not a column"):
        read_curves_csv(path, step_column="Step")


def _cli(*args, **env):
    import os

    return subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", **env},
    )


def test_cli_detect_reads_a_wandb_csv(wandb_csv):
    path, _, _ = wandb_csv
    proc = _cli("detect", path, "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert {b["series"] for b in out["bumps"]} == {"run-a - loss", "run-b - loss"}
    proc = _cli("detect", path, "--step-column", "run-c - loss")  # decreasing: refused, one line, exit 2
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "'run-c - loss' does not strictly increase" in proc.stderr
