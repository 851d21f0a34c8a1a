"""`bumps export`: a run to TransformerLens, or one run or a folder of runs to a tidy CSV / parquet table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bumps.errors import BumpsError
from bumps.io.runfile import atomic_save, load_run
from bumps.io.tidy import find_runs, n_chunks, series_layout, tidy_columns, write_csv, write_parquet
from bumps.modadd.export import to_transformer_lens

FORMATS = ("transformer-lens", "csv", "parquet")


def export(
    path: str | Path,
    to: str,
    out: str | Path,
    epoch: int | None = None,
    dtype: str | None = None,
    progress_factory: Callable[[int], tuple] | None = None,
) -> Path:
    """`bumps export`: write ``path`` (run file, or sweep folder for tables) to ``out`` in format ``to``.

    ``progress_factory(total)`` returns (context manager, advance(i) callback) for long table writes.
    """
    if to not in FORMATS:
        raise BumpsError(f"`to` must be one of {', '.join(FORMATS)} (got {to!r})")
    path, out = Path(path), Path(out)
    if to == "transformer-lens":
        if path.is_dir():
            raise BumpsError(f"{path} is a folder; `to` transformer-lens exports one run file")
        if out.resolve() == path.resolve():
            raise BumpsError(f"output {out} is the run file itself; choose another OUT")
        return atomic_save(to_transformer_lens(load_run(path), path, epoch, dtype), out)
    if epoch is not None or dtype is not None:
        raise BumpsError(f"`epoch` and `dtype` apply to `to` transformer-lens only, not `to` {to}")
    runs = find_runs(path)
    inputs = {path / f"{name}.pt" for name, _ in runs} if path.is_dir() else {path}
    if out.resolve() in {p.resolve() for p in inputs}:
        raise BumpsError(f"output {out} would overwrite an input run; choose another OUT")
    for _, run in runs:
        series_layout(run["kind"], run)  # refuse unknown kinds before writing anything
    writer = write_csv if to == "csv" else write_parquet
    total = n_chunks(runs)
    if progress_factory is None:
        return writer(tidy_columns(runs), out)
    bar, advance = progress_factory(total)
    with bar:
        return writer(tidy_columns(runs), out, advance)
