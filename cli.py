"""`bumps` command line: a thin layer over the bumps Python API.

`python cli.py ...` from a checkout behaves exactly like the installed `bumps ...`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Find transient bumps and competition in training curves.",
)


def _progress(total: int, label: str):
    """A rich progress bar with ETA; returns (context manager, advance-to(step) callback)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("eta"), TimeRemainingColumn(), transient=True, disable=total == 0)
    task = bar.add_task(label, total=total)
    return bar, lambda step, **fields: bar.update(task, completed=step, **fields)


@app.callback()
def _root() -> None:
    """Find transient bumps and competition in training curves."""


@app.command()
def simulate(
    rank: int = typer.Option(4, help="Target rank r."),
    dim: int = typer.Option(100, help="Dimension d (the target is d×d)."),
    learned: int | None = typer.Option(None, help="Learned pairs K (default: K = rank)."),
    seeds: int = typer.Option(16, help="Independent runs simulated together (vectorised)."),
    steps: int = typer.Option(3000, help="Optimizer steps."),
    lr: float = typer.Option(0.01, help="Learning rate."),
    init_scale: float = typer.Option(0.1, help="σ: every learned-vector entry ~ N(0, σ²)."),
    optimizer: str = typer.Option("gd", help="gd | adam | adamw."),
    weight_decay: float = typer.Option(0.0, help="L2 (gd, adam) or decoupled (adamw) decay."),
    targets: str = typer.Option("random", help="random (independent unit vectors) | orthonormal."),
    singular_values: str | None = typer.Option(
        None, help="Comma-separated target strengths s_m, one per target (default all 1)."),
    record_every: int = typer.Option(10, help="Steps between records."),
    seed: int = typer.Option(0, help="Base seed; run i uses (seed, i)."),
    out: Path | None = typer.Option(None, help="Run file (default runs/lowrank_r{rank}_....pt)."),
    device: str = typer.Option("cpu", help="torch device, e.g. cpu or cuda."),
    dtype: str = typer.Option("float64", help="float64 | float32."),
) -> None:
    """Simulate the toy low-rank factorization for many seeds at once; write a run file."""
    from bumps.errors import BumpsError
    from bumps.lowrank import LowRankConfig
    from bumps.lowrank import simulate as run_simulation
    from bumps.runfile import atomic_save, check_writable

    try:
        sv = None if singular_values is None else [float(x) for x in singular_values.split(",")]
    except ValueError:
        raise BumpsError(f"--singular-values must be comma-separated numbers (got {singular_values!r})") from None
    cfg = LowRankConfig(rank=rank, dim=dim, learned=learned, seeds=seeds, steps=steps, lr=lr,
                        init_scale=init_scale, optimizer=optimizer, weight_decay=weight_decay,
                        targets=targets, singular_values=sv, record_every=record_every,
                        seed=seed, device=device, dtype=dtype).validate()
    out = out or Path("runs") / f"lowrank_r{rank}_d{dim}_{optimizer}_seed{seed}.pt"
    check_writable(out)
    bar, advance = _progress(steps, "simulate")
    with bar:
        run = run_simulation(cfg, progress=advance)
    atomic_save(run, out)
    final = run["loss"][-1]
    typer.echo(f"wrote {out}: {seeds} seeds × {len(run['step'])} records; "
               f"final loss median {final.median():.3g} (max {final.max():.3g})")


@app.command()
def detect(
    path: Path = typer.Argument(..., help="Run file (any kind) or array file (.npy, .npz with one array, .pt tensor)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
    plot: Path | None = typer.Option(None, help="Draw curves with bumps and competition marked to this PNG."),
    min_rise: float = typer.Option(0.1, help="Rise ≥ this fraction of the curve's range."),
    min_drop: float = typer.Option(0.1, help="Drop ≥ this fraction of the curve's range."),
    min_drop_of_rise: float = typer.Option(0.1, help="Drop ≥ this fraction of the bump's own rise."),
    min_height: float = typer.Option(0.0, help="Absolute floor for rise and drop (curve units)."),
    noise_factor: float = typer.Option(8.0, help="Rise and drop ≥ this many robust noise sigmas."),
    min_duration: float = typer.Option(0.0, help="Bump start-to-end ≥ this many steps."),
    reference: str = typer.Option("curve", help="Scale for the fractions: curve | family."),
    sign: str = typer.Option("peak", help="Gauge-signed series: peak (orient by largest |value|) | abs | raw."),
    min_gain: float = typer.Option(0.05, help="Competition: gains ≥ this fraction of max |alignment|."),
    competition: bool = typer.Option(False, help="Plain [T, units, targets] array: also find competition."),
    rows: int = typer.Option(15, help="Bump rows shown in the table."),
) -> None:
    """Find bumps and competition events in a run file or an array of curves."""
    from bumps.analysis import analyze, load_source
    from bumps.detect import BumpParams

    params = BumpParams(min_rise=min_rise, min_drop=min_drop, min_drop_of_rise=min_drop_of_rise,
                        min_height=min_height, noise_factor=noise_factor,
                        min_duration=min_duration, reference=reference).validate()
    source = load_source(path, competition_axes=competition)
    result = analyze(source, params, sign=sign, min_gain=min_gain)
    if plot is not None:
        from bumps.plots import plot_detection

        plot_detection(source, result, plot, sign=sign)
    if json_out:
        import json

        typer.echo(json.dumps(result))
        return
    from bumps.report import print_report

    print_report(result, path, rows=rows, plot=plot)


@app.command()
def figures(
    out: Path = typer.Option(Path("figures"), help="Folder for the PNGs."),
    only: str = typer.Option("all", help="all | lowrank | modadd."),
    modadd_run: Path | None = typer.Option(
        None, help="Reuse this mod-add run file instead of training (default runs/modadd_nanda.pt if present)."),
) -> None:
    """Regenerate the post's and the paper's figures into figures/."""
    from bumps.errors import BumpsError

    if only not in ("all", "lowrank", "modadd"):
        raise BumpsError(f"--only must be all, lowrank or modadd (got {only!r})")
    written = []
    if only in ("all", "lowrank"):
        from bumps.figures import make_lowrank_figures

        written += make_lowrank_figures(out)
    if only in ("all", "modadd"):
        from bumps.figures import make_modadd_figures

        written += make_modadd_figures(out, modadd_run)
    for path in written:
        typer.echo(f"wrote {path}")


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit code 2."""
    from bumps.errors import BumpsError

    try:
        app()
    except BumpsError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
