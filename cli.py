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


def _progress(total: int, label: str, extra: str | None = None, **fields):
    """A rich progress bar with ETA; returns (context manager, advance-to(step, **fields) callback)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn()]
    if extra:
        columns.append(TextColumn(extra))
    bar = Progress(*columns, transient=True, disable=total == 0)
    task = bar.add_task(label, total=total, **fields)
    return bar, lambda step, **kw: bar.update(task, completed=step, **kw)


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
def grok(
    preset: str = typer.Option("nanda", help="nanda (paper's code) | tl-demo (TransformerLens demo)."),
    p: int | None = typer.Option(None, "--p", help="Prime modulus (preset: 113)."),
    train_frac: float | None = typer.Option(None, help="Fraction of the p² pairs used for training (0.3)."),
    epochs: int | None = typer.Option(None, help="Full-batch steps (25000)."),
    lr: float | None = typer.Option(None, help="AdamW learning rate (1e-3)."),
    weight_decay: float | None = typer.Option(None, help="AdamW weight decay (1.0)."),
    d_model: int | None = typer.Option(None, help="Residual width (128)."),
    d_mlp: int | None = typer.Option(None, help="MLP width (512)."),
    n_heads: int | None = typer.Option(None, help="Attention heads (4)."),
    seed: int | None = typer.Option(None, help="Model-init seed (nanda 0, tl-demo 999)."),
    data_seed: int | None = typer.Option(None, help="Train/test split seed (nanda 0, tl-demo 598)."),
    loss_dtype: str | None = typer.Option(None, help="float64 (default) | float32 (log_softmax artefact)."),
    eval_every: int | None = typer.Option(None, help="Epochs between progress-measure records (100)."),
    checkpoint_every: int | None = typer.Option(
        None, help="Weight checkpoints every N epochs to OUT_ckpt/ (500; 0: none); for restricted/excluded loss."),
    device: str | None = typer.Option(None, help="torch device, e.g. cpu or cuda."),
    out: Path | None = typer.Option(None, help="Run file (default runs/modadd_{preset}.pt)."),
    resume: Path | None = typer.Option(None, help="Continue the run in this file (same settings)."),
) -> None:
    """Train the mod-add transformer to grokking, recording Fourier progress measures."""
    import torch

    from bumps.grok import train
    from bumps.modadd import ModAddConfig

    cfg = ModAddConfig.from_preset(
        preset, p=p, train_frac=train_frac, epochs=epochs, lr=lr, weight_decay=weight_decay, d_model=d_model,
        d_mlp=d_mlp, n_heads=n_heads, seed=seed, data_seed=data_seed, loss_dtype=loss_dtype,
        eval_every=eval_every, checkpoint_every=checkpoint_every, device=device)
    out = out or resume or Path("runs") / f"modadd_{preset}.pt"
    torch.set_num_threads(torch.get_num_threads())
    bar, advance = _progress(cfg.epochs, "grok", "train {task.fields[train_loss]:.2e} test "
                             "{task.fields[test_loss]:.2e}", train_loss=float("nan"), test_loss=float("nan"))
    with bar:
        run = train(cfg, out, resume=resume, progress=advance)
    typer.echo(f"wrote {out}: grok epoch {run['grok_epoch']}, key frequencies {run['key_freqs'].tolist()}, "
               f"final train/test loss {run['train_loss'][-1]:.3g}/{run['test_loss'][-1]:.3g}, "
               f"{100 * run['single_freq_neuron_fraction']:.0f}% single-frequency neurons, "
               f"{run['config']['train_seconds']:.0f} s")


@app.command()
def sweep(
    target: Path = typer.Argument(..., help="Spec .toml (command, [base], [grid]); with --status: a sweep folder."),
    out: Path | None = typer.Option(None, help="Sweep folder (default runs/sweep_{spec name})."),
    status: bool = typer.Option(False, "--status", help="Print the run table of the sweep folder TARGET."),
    executor: str = typer.Option("local", help="local (this machine's cores) | slurm (job arrays) | inline."),
    jobs: int | None = typer.Option(None, help="Concurrent jobs (local; default: cores) or array parallelism."),
    models_per_job: int = typer.Option(0, help="Runs packed into one job (grok: one ensemble); 0: auto."),
    partition: str | None = typer.Option(None, help="Slurm partition."),
    gpus_per_job: int = typer.Option(0, help="GPUs per job (Slurm --gpus-per-node; local: visible GPUs)."),
    time: int | None = typer.Option(None, "--time", help="Per-job time limit in minutes (Slurm default 60)."),
    cpus_per_job: int | None = typer.Option(None, help="CPU threads per job (default: cores / jobs; Slurm 1)."),
    device: str | None = typer.Option(None, help="torch device for every run (overrides [base] device)."),
) -> None:
    """Run a grid of grok or simulate runs as jobs (local or Slurm); resumable; --status shows the table."""
    from bumps.sweep import SweepOptions, run_sweep, sweep_status

    if status:
        _print_sweep(target, sweep_status(target))
        return
    out = out or Path("runs") / f"sweep_{target.stem}"
    opts = SweepOptions(executor=executor, jobs=jobs, models_per_job=models_per_job, partition=partition,
                        gpus_per_job=gpus_per_job, time_min=time, cpus_per_job=cpus_per_job, device=device)
    bar, advance = None, None

    def progress(done, total, **counts):
        nonlocal bar, advance
        if bar is None:
            bar, advance = _progress(total, "sweep", "{task.fields[running]} running, {task.fields[pending]} "
                                     "pending, {task.fields[failed]} failed", running=0, pending=0, failed=0)
            bar.start()
        advance(done, **counts)

    try:
        manifest = run_sweep(target, out, opts, progress=progress)
    finally:
        if bar is not None:
            bar.stop()
    c = manifest["counts"]
    typer.echo(f"sweep {out}: {c['done']} done, {c['failed']} failed, {c['pending'] + c['running']} not finished "
               f"of {len(manifest['runs'])} runs (manifest {out / 'manifest.json'})")
    for e in manifest["runs"]:
        if e["status"] == "failed":
            typer.echo(f"  failed {e['id']} {e['grid']}: {e['error']}", err=True)
    if c["failed"] or c["pending"] or c["running"]:
        raise typer.Exit(1)


def _print_sweep(folder: Path, manifest: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    runs = manifest["runs"]
    axes = list(runs[0]["grid"]) if runs else []
    table = Table(title=f"{folder}: {manifest['command']} sweep", title_justify="left")
    for col in ("id", *axes, "status", "result / error"):
        table.add_column(col, overflow="fold")
    for e in runs:
        s = e.get("summary") or {}
        if e["status"] == "failed":
            info = e["error"]
        elif e["status"] == "running":
            info = f"{100 * float(e.get('progress') or 0):.0f}% (job {e.get('job')})"
        elif e["status"] == "done":
            info = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in s.items()
                             if v is not None)
        else:
            info = e.get("note", "")
        table.add_row(e["id"], *(str(e["grid"].get(a)) for a in axes), e["status"], info)
    Console(width=max(120, Console().width)).print(table)
    c = manifest["counts"]
    typer.echo(", ".join(f"{c[k]} {k}" for k in ("done", "running", "pending", "failed")))


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
        sys.exit(130 if type(exc).__name__ == "Interrupted" else 2)


if __name__ == "__main__":
    main()
