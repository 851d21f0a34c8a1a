"""Any run's curves as tidy tables (CSV, parquet).

:func:`tidy_columns` lays every recorded series of one or many runs out in long
  form: one row per (run, step, series, index) with the index columns named by the
  series' axes (frequency is the 1-based frequency k; the others count from 0), then
  the run's status and settings as constant columns (``status``, ``cfg_lr``, ``cfg_p``, ...,
  :func:`settings_columns`), so that runs of a sweep can be grouped by what they were run with.

pandas is never imported, and pyarrow only by :func:`write_parquet`: CSV needs
nothing beyond torch and numpy, parquet needs only pyarrow (``pip install 'bumps[parquet]'``).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from bumps.errors import BumpsError
from bumps.io.info import partial_reason
from bumps.io.provenance import settings_of_run
from bumps.io.runfile import atomic_write, is_run, load_run, safe_load
from bumps.io.schema import AXIS_OFFSET, AXIS_ORDER, EXTRA_SERIES, RECORDED_KIND, SERIES, recorded_specs

SETTINGS_PREFIX = "cfg_"


def series_layout(kind: str, run: dict | None = None) -> dict[str, tuple[tuple[str, ...], str]]:
    """Every exported series of a run kind.

    Parameters
    ----------
    kind : str
        A run kind in :data:`bumps.io.schema.EXTRA_SERIES`, or ``"recorded"``
        (:data:`bumps.io.schema.RECORDED_KIND`), whose series are read from ``run``.
    run : dict, optional
        The run; needed for a ``"recorded"`` run, which names its own series and axes.

    Returns
    -------
    dict of str to tuple of (tuple of str, str)
        Series key → (axis names after time, the run key holding its steps). The
        steps key ``"epoch"`` means the steps are the sample indices ``0..T − 1``.
        Detected series (:data:`bumps.io.schema.SERIES`) come first.

    Raises
    ------
    BumpsError
        If ``kind`` is not exportable.
    """
    if kind == RECORDED_KIND and run is not None:
        return {spec.key: (spec.axes, "step") for spec in recorded_specs(run)}
    if kind not in EXTRA_SERIES:
        raise BumpsError(f"cannot export a '{kind}' run; bumps exports {', '.join(EXTRA_SERIES)} runs")
    # a family with its own steps (neuron_freq at neuron_step) uses them; older runs recorded it at step
    own = [s for s in SERIES[kind] if run is None or s.step_key in run]
    out = {spec.key: (spec.axes, spec.step_key if spec in own else "step") for spec in SERIES[kind]}
    out.update(EXTRA_SERIES[kind])
    return out


def _steps(run: dict, key: str, n: int) -> np.ndarray:
    if key == "epoch":
        return np.arange(n, dtype=np.int64)
    return np.asarray(run[key], dtype=np.int64)


def iter_series(run: dict) -> Iterator[tuple[str, tuple[str, ...], np.ndarray, np.ndarray]]:
    """Every exported series present in a run, with its steps.

    Series absent from ``run`` (or whose steps key is) are skipped.

    Parameters
    ----------
    run : dict
        A loaded run of an exportable kind (:func:`series_layout`).

    Yields
    ------
    key : str
        The series key.
    axes : tuple of str
        Axis names after time.
    steps : numpy.ndarray
        int64 steps ``[T]``.
    values : numpy.ndarray
        float64 values ``[T, *axes]``.

    Raises
    ------
    BumpsError
        If the kind is not exportable, or a series' shape does not match its axes and steps.
    """
    for key, (axes, step_key) in series_layout(run["kind"], run).items():
        if key not in run or (step_key != "epoch" and step_key not in run):
            continue
        values = torch.as_tensor(run[key]).detach().cpu().to(torch.float64).numpy()
        steps = _steps(run, step_key, values.shape[0])
        if values.ndim != 1 + len(axes) or values.shape[0] != len(steps):
            raise BumpsError(
                f"run series {key!r} has shape {tuple(values.shape)}; expected [T={len(steps)}"
                f"{''.join(', ' + a for a in axes)}]"
            )
        yield key, axes, steps, values


def tidy_chunk(
    run_name: str, key: str, axes: tuple[str, ...], steps: np.ndarray, values: np.ndarray, all_axes: tuple[str, ...]
) -> dict[str, np.ndarray | None]:
    """Long-form columns of one series: one row per (step, index), time-major.

    Parameters
    ----------
    run_name : str
        Value of the ``run`` column.
    key : str
        Value of the ``series`` column.
    axes : tuple of str
        The series' axis names after time.
    steps : numpy.ndarray
        The steps ``[T]``.
    values : numpy.ndarray
        The values ``[T, *axes]``.
    all_axes : tuple of str
        Every axis column of the table, in order; those not in ``axes`` get None.

    Returns
    -------
    dict of str to numpy.ndarray or None
        Columns ``run``, ``step``, ``series``, one per name in ``all_axes`` (int64
        indices, counting from 0 except ``frequency``, which is the 1-based frequency
        k; None for axes this series does not have) and ``value``, each of length
        ``T · prod(values.shape[1:])``.
    """
    t, shape = values.shape[0], values.shape[1:]
    per_step = int(np.prod(shape)) if shape else 1
    grid = np.indices(shape).reshape(len(shape), -1) if shape else np.zeros((0, 1), dtype=np.int64)
    cols: dict[str, np.ndarray | None] = {
        "run": np.full(t * per_step, run_name, dtype=object),
        "step": np.repeat(steps, per_step),
        "series": np.full(t * per_step, key, dtype=object),
    }
    for name in all_axes:
        if name in axes:
            cols[name] = np.tile(grid[axes.index(name)], t).astype(np.int64) + AXIS_OFFSET.get(name, 0)
        else:
            cols[name] = None
    cols["value"] = values.reshape(-1)
    return cols


def find_runs(path: str | Path) -> list[tuple[str, dict]]:
    """The runs of a run file, or of every run file in a sweep folder.

    Parameters
    ----------
    path : str or pathlib.Path
        A run file, or a folder searched recursively for ``*.pt`` run files (hidden
        files and anything inside ``*_ckpt`` folders skipped; ``.pt`` files that are
        not runs ignored).

    Returns
    -------
    list of tuple of (str, dict)
        ``(name, run)``: the file's stem for a single file, else its path relative
        to ``path`` without the suffix (``/``-separated), sorted by path.

    Raises
    ------
    BumpsError
        If ``path`` does not exist, a single file is not a valid run
        (:func:`bumps.io.runfile.load_run`), a ``.pt`` file in the folder cannot be
        loaded safely, or the folder holds no run.
    """
    path = Path(path)
    if not path.exists():
        raise BumpsError(f"no such file or folder: {path}")
    if not path.is_dir():
        return [(path.stem, load_run(path))]
    runs = []
    for f in sorted(path.rglob("*.pt")):
        rel = f.relative_to(path)
        if f.name.startswith(".") or any(part.endswith("_ckpt") for part in rel.parts[:-1]):
            continue
        obj = safe_load(f)
        if is_run(obj):
            runs.append((rel.with_suffix("").as_posix(), obj))
    if not runs:
        raise BumpsError(f"{path} holds no bumps run files (*.pt with format 'bumps.run')")
    return runs


def _setting_value(value):
    """A setting as one table cell: numbers, strings, booleans and None as they are, anything else as JSON."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def settings_columns(runs: list[tuple[str, dict]]) -> tuple[list[str], list[dict]]:
    """The status and settings columns of a table of ``runs``.

    Parameters
    ----------
    runs : list of tuple of (str, dict)
        ``(name, run)`` pairs.

    Returns
    -------
    names : list of str
        ``status``, then ``cfg_{key}`` for every settings key any run has
        (:func:`bumps.io.provenance.settings_of_run`: what a run was asked to be, not how it went), sorted.
    values : list of dict
        Per run, column name → value: ``status`` is ``finished``, or why the run is partial
        (:func:`bumps.io.info.partial_reason`, e.g. ``interrupted (autosave at epoch 300 of 25000)``);
        settings are numbers, strings, booleans, None (a key the run lacks), or JSON text for lists and dicts.
    """
    per_run = []
    for _, run in runs:
        settings = settings_of_run(run.get("config") or {})
        row = {"status": partial_reason(run) or "finished"}
        row.update({SETTINGS_PREFIX + k: _setting_value(v) for k, v in settings.items()})
        per_run.append(row)
    names = ["status", *sorted({k for row in per_run for k in row if k != "status"})]
    return names, [{k: row.get(k) for k in names} for row in per_run]


def tidy_columns(runs: list[tuple[str, dict]]) -> Iterator[dict[str, np.ndarray | None]]:
    """Long-form column chunks, one per (run, series), all with the same column names.

    The axis columns are every axis any of the runs' kinds exports, in
    :data:`bumps.io.schema.AXIS_ORDER`, then the other axes of recorded runs in the order first seen;
    after ``value`` come the run's status and settings
    (:func:`settings_columns`), each a constant column: a zero-stride array that costs no memory.

    Parameters
    ----------
    runs : list of tuple of (str, dict)
        ``(name, run)`` pairs, e.g. from :func:`find_runs`.

    Yields
    ------
    dict of str to numpy.ndarray or None
        One :func:`tidy_chunk` per series present in each run.

    Raises
    ------
    BumpsError
        As :func:`iter_series`.
    """
    present = {a for _, run in runs for _, (axes, _) in series_layout(run["kind"], run).items() for a in axes}
    own = [a for _, run in runs for _, (axes, _) in series_layout(run["kind"], run).items() for a in axes]
    all_axes = tuple(a for a in AXIS_ORDER if a in present) + tuple(
        dict.fromkeys(a for a in own if a not in AXIS_ORDER)
    )
    _, settings = settings_columns(runs)
    for (name, run), constants in zip(runs, settings, strict=True):
        for key, axes, steps, values in iter_series(run):
            cols = tidy_chunk(name, key, axes, steps, values, all_axes)
            n = len(cols["value"])
            for col, v in constants.items():
                cols[col] = np.broadcast_to(np.array(v, dtype=object), (n,))
            yield cols


def _is_constant(column: np.ndarray) -> bool:
    return column.ndim == 1 and column.strides == (0,) and len(column) > 0


def n_chunks(runs) -> int:
    """How many chunks :func:`tidy_columns` yields for ``runs`` (for a progress total).

    Parameters
    ----------
    runs : list of tuple of (str, dict)
        ``(name, run)`` pairs.

    Returns
    -------
    int
        The number of exported series keys present in the runs.
    """
    return sum(1 for _, run in runs for key in series_layout(run["kind"], run) if key in run)


def write_csv(chunks, out: str | Path, progress: Callable[[int], None] | None = None) -> Path:
    """Write long-form chunks to one CSV file, atomically.

    The header is the first chunk's column names; values are written as the shortest
    decimals that round-trip, and an axis column a series does not have is left empty.

    Parameters
    ----------
    chunks : iterable of dict
        Column chunks with the same names, e.g. :func:`tidy_columns`.
    out : str or pathlib.Path
        The CSV file.
    progress : callable, optional
        Called as ``progress(n)`` after each chunk, with the number of chunks written so far.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    BumpsError
        If ``out`` cannot be written (:func:`bumps.io.runfile.atomic_write`).
    """

    def write(fh) -> None:
        text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
        w = csv.writer(text, lineterminator="\n")
        header = None
        for i, cols in enumerate(chunks):
            if header is None:
                header = list(cols)
                w.writerow(header)
            n = len(cols["value"])
            values = []
            for c in header:
                v = cols[c]
                if v is None or (_is_constant(v) and v[0] is None):
                    values.append(itertools.repeat("", n))
                elif _is_constant(v):
                    values.append(itertools.repeat(v[0], n))
                else:
                    values.append(v.tolist())
            w.writerows(zip(*values, strict=False))
            if progress:
                progress(i + 1)
        text.flush()
        text.detach()

    return atomic_write(out, write)


def write_parquet(chunks, out: str | Path, progress: Callable[[int], None] | None = None) -> Path:
    """Write long-form chunks to one parquet file, atomically.

    Axis columns are nullable int64 (null: axis not used), ``run`` and ``series`` are
    dictionary-encoded strings. All chunks are held in memory until written.

    Parameters
    ----------
    chunks : iterable of dict
        Column chunks, e.g. :func:`tidy_columns`.
    out : str or pathlib.Path
        The parquet file.
    progress : callable, optional
        Called as ``progress(n)`` after each chunk is converted, with the number so far.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    BumpsError
        If pyarrow is not installed, or ``out`` cannot be written.
    """
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise BumpsError("writing parquet needs pyarrow: pip install 'bumps[parquet]' (or export `to` csv)") from None
    tables = []
    for i, cols in enumerate(chunks):
        arrays = {}
        n = len(cols["value"])
        for c, v in cols.items():
            if c in ("run", "series"):
                arrays[c] = pa.array(v.tolist(), pa.string()).dictionary_encode()
            elif v is None:
                arrays[c] = pa.nulls(n, pa.int64())
            elif _is_constant(v):  # a run's status or setting: one value, repeated without a Python list
                arrays[c] = pa.repeat(pa.scalar(v[0]), n) if v[0] is not None else pa.nulls(n)
            else:
                arrays[c] = pa.array(v)
        tables.append(pa.table(arrays))
        if progress:
            progress(i + 1)
    table = pa.concat_tables(tables, promote_options="permissive")
    return atomic_write(out, lambda fh: pq.write_table(table, fh))
