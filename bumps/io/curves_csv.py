"""Curves from a CSV file (a W&B or TensorBoard "export CSV", or any table with a header row).

Layout: one header row; one column holds the step (``--step-column``, else the first
of ``step``, ``Step``, ``epoch``, ``_step`` present, else the first column); every
other column is one curve. W&B leaves a cell empty where a metric was not logged at
that step (metrics logged at other cadences share the table), so empty cells are
handled **per curve**: each curve keeps only its own non-empty samples and is
detected on its own steps. W&B's ``<metric>__MIN`` / ``<metric>__MAX`` columns are
the min/max envelope of points it thinned out for the chart, not curves: skipped.

Refused with one line naming the column: no numeric curve column, a step column
that is missing, has empty or non-numeric cells, or does not strictly increase,
and a curve column with text or NaN/inf in it (detection never masks them).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bumps.errors import BumpsError

STEP_NAMES = ("step", "Step", "epoch", "_step")
ENVELOPE_SUFFIXES = ("__MIN", "__MAX")


@dataclass
class CsvCurves:
    """Curves read from a CSV by :func:`read_curves_csv`.

    Attributes
    ----------
    step_column : str
        Name of the column that holds the step.
    step : numpy.ndarray
        The step of every row, ``[rows]``, strictly increasing: int64 when every step
        is a whole number (below 2⁵³), else float64.
    curves : dict of str to tuple of (numpy.ndarray, numpy.ndarray)
        Column name → ``(steps [T_c], values [T_c])``: the curve's non-empty cells
        (values float64) and the steps of their rows, in column order.
    skipped : list of str
        Columns that are not curves: W&B ``__MIN`` / ``__MAX`` envelope columns, then
        columns with no value at all.
    """

    step_column: str
    step: np.ndarray  # [rows] strictly increasing
    curves: dict[str, tuple[np.ndarray, np.ndarray]]  # column -> (steps [T_c], values [T_c])
    skipped: list[str]  # envelope and all-empty columns


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _as_steps(values: list[float]) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    return x.astype(np.int64) if np.all(x == np.round(x)) and np.abs(x).max(initial=0) < 2**53 else x


def read_curves_csv(path: str | Path, step_column: str | None = None) -> CsvCurves:
    """Read and validate a CSV of curves (the layout and rules are in :mod:`bumps.io.curves_csv`).

    Parameters
    ----------
    path : str or pathlib.Path
        The CSV file (UTF-8, optionally with a byte-order mark); rows whose cells are all blank are ignored.
    step_column : str, optional
        The column that holds the step. None: the first of ``step``, ``Step``,
        ``epoch``, ``_step`` present, else the first column.

    Returns
    -------
    CsvCurves
        The step column and every curve on its own steps.

    Raises
    ------
    BumpsError
        If the file cannot be read or is empty, has a duplicate header, a row longer
        than the header, no rows, or no numeric curve column; if ``step_column`` is not
        a column; if the step column has an empty, non-numeric or non-finite cell or
        does not strictly increase; or if a curve column holds text or NaN/inf.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BumpsError(f"{path} is not a readable CSV file ({type(exc).__name__}: {str(exc)[:80]})") from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise BumpsError(f"{path} is empty; need a header row and one row per step")
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    dup = next((h for i, h in enumerate(header) if h in header[:i]), None)
    if dup is not None:
        raise BumpsError(f"{path}: column {dup!r} appears twice in the header; give every column its own name")
    for n, r in enumerate(body, start=2):
        if len(r) > len(header):
            raise BumpsError(f"{path}: line {n} has {len(r)} cells but the header has {len(header)} columns")
    cells = [[(r[j].strip() if j < len(r) else "") for r in body] for j in range(len(header))]  # by column

    if step_column is not None:
        if step_column not in header:
            raise BumpsError(
                f"`step_column` {step_column!r} is not a column of {path} "
                f"(columns: {', '.join(header[:8])}{', ...' if len(header) > 8 else ''})"
            )
        s = header.index(step_column)
    else:
        s = next((header.index(n) for n in STEP_NAMES if n in header), 0)
    name = header[s]

    curves_cols = [j for j in range(len(header)) if j != s]
    curve_j = [j for j in curves_cols if not header[j].endswith(ENVELOPE_SUFFIXES)]
    skipped = [header[j] for j in curves_cols if header[j].endswith(ENVELOPE_SUFFIXES)]
    numeric = [j for j in curve_j if any(_number(c) is not None for c in cells[j] if c)]
    if not numeric:
        raise BumpsError(
            f"{path} has no numeric curve column besides the step column {name!r} "
            f"(columns: {', '.join(header[:8])}); need one column per curve"
        )
    if not body:
        raise BumpsError(f"{path} has a header but no rows")

    steps = []
    for n, c in enumerate(cells[s], start=2):
        v = _number(c) if c else None
        if v is None or not math.isfinite(v):
            what = "is empty" if not c else f"holds {c[:20]!r}"
            raise BumpsError(
                f"step column {name!r} {what} at line {n}; every row needs a numeric step "
                "(choose another with --step-column)"
            )
        steps.append(v)
    if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
        n = next(i for i in range(1, len(steps)) if steps[i] <= steps[i - 1]) + 2
        raise BumpsError(
            f"step column {name!r} does not strictly increase (line {n}: {steps[n - 2]:g} after "
            f"{steps[n - 3]:g}); sort the rows, or choose the step with --step-column"
        )
    step = _as_steps(steps)

    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for j in curve_j:
        keep, vals = [], []
        for i, c in enumerate(cells[j]):
            if not c:
                continue  # not logged at this step: this curve uses its own steps
            v = _number(c)
            if v is None:
                raise BumpsError(
                    f"column {header[j]!r} holds text {c[:20]!r} at line {i + 2}; every curve "
                    "column must be numbers or empty"
                )
            if not math.isfinite(v):
                raise BumpsError(
                    f"column {header[j]!r} holds {c!r} at line {i + 2}; detection needs finite "
                    "values (drop or fill them)"
                )
            keep.append(i)
            vals.append(v)
        if keep:
            curves[header[j]] = (step[keep], np.asarray(vals, dtype=np.float64))
        else:
            skipped.append(header[j])
    return CsvCurves(name, step, curves, skipped)
