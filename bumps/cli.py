"""`bumps` command line: a thin layer over the bumps Python API.

`python cli.py ...` from a checkout (a shim over this module), `python -m bumps ...` and the installed
`bumps ...` behave the same. Each command parses its flags, calls the library and prints; policy (thread
counts, default file names, validation) lives in the library. Commands import the library inside their
bodies on purpose: importing it (torch, scipy, matplotlib) takes ~3 s, so ``bumps --help`` and a mistyped
flag answer in ~0.2 s instead.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Find transient bumps and competition in training curves.",
)


class _LineProgress:
    """Progress as plain lines on stderr every ``every`` seconds, for logs (nohup, Slurm): no bar, no ANSI."""

    def __init__(self, total: int, label: str, every: float):
        self.total, self.label, self.every = total, label, every
        self.t0 = self.last = time.monotonic()
        self.done = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self) -> None:
        self.t0 = self.last = time.monotonic()

    def stop(self) -> None:
        if self.total and self.done:
            self._line()

    def _line(self) -> None:
        elapsed = time.monotonic() - self.t0
        eta = elapsed * (self.total - self.done) / self.done if self.done else float("nan")
        pct = 100 * self.done / self.total if self.total else 100.0
        print(
            f"{self.label}: {self.done}/{self.total} ({pct:.0f}%), {elapsed:.0f} s elapsed, eta {eta:.0f} s",
            file=sys.stderr,
            flush=True,
        )

    def advance(self, step: int, total: int | None = None, **_fields) -> None:
        self.done = step
        if total is not None:
            self.total = total
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self._line()


def _progress(total: int, label: str, extra: str | None = None, **fields):
    """Progress with an ETA; returns (context manager, advance-to(step, **fields) callback).

    A rich bar on a terminal; plain periodic lines on stderr when stderr is not a terminal (a log file),
    every ``BUMPS_PROGRESS_EVERY`` seconds (default 60).
    """
    if not sys.stderr.isatty():
        lines = _LineProgress(total, label, float(os.environ.get("BUMPS_PROGRESS_EVERY", "60")))
        return lines, lines.advance
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    ]
    if extra:
        columns.append(TextColumn(extra))
    bar = Progress(*columns, transient=True, disable=total == 0, console=Console(stderr=True))
    task = bar.add_task(label, total=total, **fields)

    def advance(step: int, total: int | None = None, **kw) -> None:
        bar.update(task, completed=step, **({"total": total} if total is not None else {}), **kw)

    return bar, advance


THREADS_HELP = (
    "CPU intra-op threads; 0: the thread policy (bumps.threads: one thread for small steps, else torch's "
    "default capped at the idle cores)."
)


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
        None, help="Comma-separated target strengths s_m, one per target (default all 1)."
    ),
    record_every: int = typer.Option(10, help="Steps between records."),
    seed: int = typer.Option(0, help="Base seed; run i uses (seed, i)."),
    out: Path | None = typer.Option(
        None,
        help="Run file (default runs/lowrank_r{rank}_d{dim}_{optimizer}_n{seeds}[_{hash}]_seed{seed}.pt; "
        "hash: of the other settings, when any differs from the defaults).",
    ),
    device: str = typer.Option("cpu", help="torch device, e.g. cpu or cuda."),
    dtype: str = typer.Option("float64", help="float64 | float32."),
    record_dtype: str = typer.Option(
        "float64", help="Storage of the recorded series: float64 (exact) | float32 (opt-in: half the file)."
    ),
    threads: int = typer.Option(0, help=THREADS_HELP),
    force: bool = typer.Option(
        False, "--force", help="Replace an --out made from other settings; run even if it looks too big for memory."
    ),
) -> None:
    """Simulate the toy low-rank factorization for many seeds at once; write a run file."""
    from bumps.errors import BumpsError
    from bumps.io.provenance import check_replace
    from bumps.io.runfile import atomic_save, check_writable
    from bumps.lowrank.model import (
        LowRankConfig,
        cast_records,
        default_run_path,
        estimate_memory,
        settings,
        step_elements,
        truncate_diverged,
    )
    from bumps.lowrank.model import simulate as run_simulation
    from bumps.memory import check_fits
    from bumps.threads import apply_threads

    try:
        sv = None if singular_values is None else [float(x) for x in singular_values.split(",")]
    except ValueError:
        raise BumpsError(f"--singular-values must be comma-separated numbers (got {singular_values!r})") from None
    cfg = LowRankConfig(
        rank=rank,
        dim=dim,
        learned=learned,
        seeds=seeds,
        steps=steps,
        lr=lr,
        init_scale=init_scale,
        optimizer=optimizer,
        weight_decay=weight_decay,
        targets=targets,
        singular_values=sv,
        record_every=record_every,
        seed=seed,
        device=device,
        dtype=dtype,
    ).validate()
    if record_dtype not in ("float64", "float32"):
        raise BumpsError(f"--record-dtype must be float64 or float32 (got {record_dtype!r})")
    out = out or default_run_path(cfg)
    check_writable(out)
    check_replace(out, settings(cfg), force=force, run=True)
    check_fits(estimate_memory(cfg), "this simulation", device, force, "reduce `seeds`, `steps` or `dim`")
    apply_threads(step_elements(cfg), device, threads)
    bar, advance = _progress(steps, "simulate")
    with bar:
        run = run_simulation(cfg, progress=advance)
    run, diverged = truncate_diverged(run)
    if record_dtype != "float64":
        run = cast_records(run, record_dtype)
    atomic_save(run, out)
    if diverged is not None:
        typer.echo(
            f"error: diverged at step {diverged} (a loss or inner product is not finite); wrote {out} with the "
            f"{len(run['step'])} records before it, marked diverged_step; try a smaller --lr or --init-scale",
            err=True,
        )
        raise typer.Exit(1)
    # the loss is evaluated from Gram matrices, so an exact 0 comes out as ±1e-16-ish rounding: print >= 0
    final = run["loss"][-1].clamp_min(0.0)
    typer.echo(
        f"wrote {out}: {seeds} seeds × {len(run['step'])} records; "
        f"final loss median {final.median():.3g} (max {final.max():.3g})"
    )


@app.command()
def info(
    path: Path = typer.Argument(..., help="A run file."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
    config: bool = typer.Option(True, help="--no-config: leave out the configuration."),
) -> None:
    """What a run file holds: kind, status (finished / interrupted / diverged), size, settings, series."""
    import dataclasses
    import json
    import shutil
    import textwrap

    from bumps.io.info import run_info

    r = run_info(path)
    if json_out:
        typer.echo(json.dumps(dataclasses.asdict(r), default=str))
        return
    width = min(100, shutil.get_terminal_size((80, 24)).columns)
    head = f"{r.path}: {r.kind} run, {r.status} ({r.detail}); {r.records} records, {r.size_bytes / 1e6:.2f} MB"
    typer.echo(textwrap.fill(head, width, subsequent_indent="  "))
    if r.partial:
        note = f"partial run: {r.partial}; analyses that need a finished run refuse it without --allow-partial"
        typer.echo(textwrap.fill(note, width, subsequent_indent="  "))
    if r.versions:
        made = "made with " + ", ".join(f"{k} {v}" for k, v in r.versions.items())
        typer.echo(textwrap.fill(made, width, subsequent_indent="  "))
    typer.echo("series:")
    for s in r.series:
        typer.echo(f"  {s.key:<28} {str(list(s.shape)):<24} {s.dtype}")
    if config:
        typer.echo("config:")
        for k, v in r.config.items():
            text = repr(v) if not isinstance(v, str) else v
            typer.echo(f"  {k:<28} {text if len(text) <= 48 else text[:45] + '...'}")


@app.command()
def detect(
    path: Path = typer.Argument(
        ...,
        help="Run file (any kind), array file (.npy, .npz with one array, .pt tensor), CSV of curves, "
        "or a folder of them.",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
    plot: Path | None = typer.Option(None, help="Draw curves with bumps and competition marked to this PNG."),
    series: str | None = typer.Option(None, help="Only these series, comma-separated (default: every series)."),
    kinds: str = typer.Option("bump,spike,phase_change", help="Event kinds to report, comma-separated."),
    scale: str = typer.Option("auto", help="linear | log (log10) | auto (log for losses spanning >= 2 decades)."),
    smooth: int | None = typer.Option(
        None, help="Smoothing width in samples (default: auto for noisy curves; 0: none)."
    ),
    near: float = typer.Option(1.0, help="Soon after coming back, a bump is at most near x its rise below its start."),
    spike_width: int = typer.Option(5, help="A spike rises (25% to 75%) within this many samples."),
    min_size: float = typer.Option(0.05, help="A phase change moves >= this fraction of the curve's range."),
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
    rows: int = typer.Option(15, help="Rows shown per event table."),
    step_column: str | None = typer.Option(
        None, help="CSV input: the step column (default: step, Step, epoch, _step, else the first column)."
    ),
) -> None:
    """Find bumps, spikes, phase changes and competition events in runs, arrays or CSV curves."""
    from bumps.detect.analysis import analyze, detect_paths, load_source
    from bumps.detect.bumps import BumpParams
    from bumps.detect.events import EventParams
    from bumps.errors import BumpsError

    params = BumpParams(
        min_rise=min_rise,
        min_drop=min_drop,
        min_drop_of_rise=min_drop_of_rise,
        min_height=min_height,
        noise_factor=noise_factor,
        min_duration=min_duration,
        reference=reference,
    ).validate()
    events = EventParams(
        bump=params,
        scale=scale,
        smooth=smooth,
        near=near,
        spike_width=spike_width,
        min_size=min_size,
        kinds=tuple(k.strip() for k in kinds.split(",") if k.strip()),
    ).validate()
    names = [n.strip() for n in series.split(",") if n.strip()] if series is not None else None
    paths = detect_paths(path)
    if plot is not None and len(paths) > 1:
        raise BumpsError(f"--plot draws one file; {path} is a folder of {len(paths)} files (give one of them)")
    results = {}
    for one in paths:
        source = load_source(one, competition_axes=competition, step_column=step_column, series=names)
        results[str(one)] = (source, analyze(source, params, sign=sign, min_gain=min_gain, events=events))
    if plot is not None:
        from bumps.detect.plots import plot_detection

        source, result = results[str(paths[0])]
        plot_detection(source, result, plot, sign=sign)
    if json_out:
        import json

        out = {k: r for k, (_, r) in results.items()}
        typer.echo(json.dumps(out[str(paths[0])] if not path.is_dir() else {"runs": out}))
        return
    from bumps.report.terminal import print_report

    for one, (_, result) in results.items():
        print_report(result, one, rows=rows, plot=plot)


def _int_list(text: str | None, flag: str) -> list[int] | None:
    from bumps.errors import BumpsError

    if text is None:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise BumpsError(f"{flag} must be comma-separated integers (got {text!r})") from None


def _seed_configs(config_cls: type, seeds: str, **given) -> list:
    """One validated ``config_cls`` per seed of ``--seeds``, with the options given (None: the default);
    refuses an empty list, duplicate or negative seeds."""
    from bumps.errors import BumpsError

    seed_list = _int_list(seeds, "--seeds")
    if not seed_list or len(set(seed_list)) != len(seed_list) or min(seed_list) < 0:
        raise BumpsError(f"--seeds must be distinct non-negative integers such as 0,1,2 (got {seeds!r})")
    given = {k: v for k, v in given.items() if v is not None}
    return [config_cls(seed=s, **given).validate() for s in seed_list]


def _train_groups(
    train: Callable[..., list[dict]], configs: list, outs: list[Path], stack: int, label: str, **options
) -> list[dict]:
    """Train ``configs`` ``stack`` at a time with ``train(group, outs, progress=..., command=..., **options)``
    under one progress bar; return the runs in input order."""
    bar, advance = _progress(sum(c.steps for c in configs), label, "loss {task.fields[loss]:.3f}", loss=float("nan"))
    runs, done = [], 0
    with bar:
        for i in range(0, len(configs), stack):
            group = configs[i : i + stack]
            runs += train(
                group,
                outs[i : i + stack],
                progress=lambda d, _total, offset=done, **kw: advance(offset + d, **kw),
                command=" ".join(["bumps", *sys.argv[1:]]),
                **options,
            )
            done += sum(c.steps for c in group)
    return runs


@app.command()
def grok(
    preset: str | None = typer.Option(
        None, help="nanda (paper's code; the default) | tl-demo (TransformerLens demo); with --resume: the stored one."
    ),
    p: int | None = typer.Option(None, "--p", help="Prime modulus (preset: 113)."),
    train_frac: float | None = typer.Option(None, help="Fraction of the p² pairs used for training (0.3)."),
    epochs: int | None = typer.Option(None, help="Full-batch steps (25000)."),
    lr: float | None = typer.Option(None, help="AdamW learning rate (1e-3)."),
    weight_decay: float | None = typer.Option(None, help="AdamW weight decay (1.0)."),
    d_model: int | None = typer.Option(None, help="Residual width (128)."),
    d_mlp: int | None = typer.Option(None, help="MLP width (512)."),
    n_heads: int | None = typer.Option(None, help="Attention heads (4)."),
    seed: int | None = typer.Option(None, help="Model-init seed (nanda 0, tl-demo 999)."),
    seeds: str | None = typer.Option(None, help="Train an ensemble, one model per seed: e.g. 0,1,2,3."),
    data_seed: int | None = typer.Option(None, help="Train/test split seed (nanda 0, tl-demo 598)."),
    data_seeds: str | None = typer.Option(None, help="Split seed per ensemble member (default: the preset's)."),
    loss_dtype: str | None = typer.Option(None, help="float64 (default) | float32 (log_softmax artefact)."),
    init: str | None = typer.Option(None, help="nanda | tl-demo (TL's exact draw) | tl-demo-v1 (earlier)."),
    biases: str | None = typer.Option(None, help="mlp (trained MLP biases) | frozen-zero (preset's)."),
    out_vocab: str | None = typer.Option(None, help="Unembed width: p+1 (includes '=') | p (preset's)."),
    warmup: int | None = typer.Option(None, help="Linear lr warmup epochs, lr·min(epoch/N, 1) (nanda 10, tl-demo 0)."),
    split: str | None = typer.Option(None, help="python-random (official) | torch-randperm (TL demo) (preset's)."),
    eval_every: int | None = typer.Option(None, help="Epochs between progress-measure records (100)."),
    neuron_every: int | None = typer.Option(
        None,
        help="Epochs between records of the per-neuron frequency table, the bulk of a run file (200; "
        "0: every evaluation). Always recorded at epoch 0 and the last epoch; its epochs are neuron_step.",
    ),
    neuron_dtype: str | None = typer.Option(None, help="Storage of the neuron table: float32 (default) | float16."),
    checkpoint_every: int | None = typer.Option(
        None, help="Weight+optimizer checkpoints every N epochs to OUT_ckpt/ (500; 0: none)."
    ),
    stop_after_grok: int | None = typer.Option(
        None, help="Stop N epochs after grokking (train and test acc >= 99%) and after test loss < 1e-6."
    ),
    stop_on: str | None = typer.Option(None, help="What --stop-after-grok waits for: grok+loss (default) | grok."),
    probe_stencil: str | None = typer.Option(None, help="Seed 001's probe offsets, e.g. -1,0,1 (default: no probe)."),
    probe_weight: float | None = typer.Option(None, help="Probe penalty weight lambda (0.1 when a stencil is given)."),
    probe_hidden: int | None = typer.Option(None, help="Probe hidden width (64)."),
    probe_lr: float | None = typer.Option(None, help="Probe Adam learning rate (1e-3)."),
    probe_kind: str | None = typer.Option(
        None,
        help="learned | frozen (random, untrained) | frozen-matched (frozen, penalty sized as a trained "
        "probe's) | hidden-l2 (control).",
    ),
    device: str | None = typer.Option(None, help="torch device, e.g. cpu or cuda."),
    threads: int = typer.Option(0, help=THREADS_HELP),
    out: Path | None = typer.Option(
        None,
        help="Run file (default runs/modadd_{preset}[_{hash}]_seed{seed}.pt, hash: of the settings that differ "
        "from the preset's; with --seeds, {seed} in the name is replaced per member).",
    ),
    resume: Path | None = typer.Option(
        None, help="Continue the run in this file with its stored settings (flags given must agree, except --epochs)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Replace a run file made from other settings; train even if it looks too big for memory."
    ),
) -> None:
    """Train the mod-add transformer (or an ensemble of them) to grokking, recording Fourier progress measures."""
    from bumps.errors import BumpsError
    from bumps.memory import check_fits
    from bumps.modadd.model import ModAddConfig
    from bumps.modadd.train import (
        check_outputs,
        ensemble_outputs,
        estimate_memory,
        resume_config,
        step_elements,
        train_many,
    )
    from bumps.threads import apply_threads, choose_threads

    choose_threads(0, requested=threads)  # a negative --threads fails before anything else
    seed_list = _int_list(seeds, "--seeds")
    data_list = _int_list(data_seeds, "--data-seeds")
    stencil = _int_list(probe_stencil, "--probe-stencil")
    if seed_list is not None and seed is not None:
        raise BumpsError("give --seed or --seeds, not both")
    if seed_list is not None and not seed_list:
        raise BumpsError("--seeds is empty; give comma-separated integers such as 0,1,2")
    if data_list is not None and data_seed is not None:
        raise BumpsError("give --data-seed or --data-seeds, not both")
    if data_list is not None and len(data_list) != len(seed_list or [seed]):
        raise BumpsError(f"--data-seeds needs one value per model ({len(seed_list or [seed])}), got {len(data_list)}")
    if seed_list is not None and resume is not None:
        raise BumpsError("--resume continues one run; rerun an ensemble with the same --seeds and --out to continue it")
    if stencil and probe_weight is None:
        probe_weight = 0.1
    common = dict(
        p=p,
        train_frac=train_frac,
        epochs=epochs,
        lr=lr,
        weight_decay=weight_decay,
        d_model=d_model,
        d_mlp=d_mlp,
        n_heads=n_heads,
        loss_dtype=loss_dtype,
        init=init,
        biases=biases,
        out_vocab=out_vocab,
        warmup=warmup,
        split=split,
        eval_every=eval_every,
        neuron_every=neuron_every,
        neuron_dtype=neuron_dtype,
        checkpoint_every=checkpoint_every,
        stop_after_grok=stop_after_grok,
        stop_on=stop_on,
        probe_stencil=tuple(stencil) if stencil is not None else None,
        probe_weight=probe_weight,
        probe_hidden=probe_hidden,
        probe_lr=probe_lr,
        probe_kind=probe_kind,
        device=device,
    )
    models = seed_list if seed_list is not None else [seed]
    if resume is not None:
        configs = [resume_config(resume, preset=preset, seed=seed, data_seed=data_seed, **common)]
    else:
        configs = [
            ModAddConfig.from_preset(
                preset or "nanda", seed=s, data_seed=(data_list[i] if data_list else data_seed), **common
            )
            for i, s in enumerate(models)
        ]
    outs = ensemble_outputs(configs, out or resume, configs[0].preset, ensemble=seed_list is not None)
    if resume is None or (out is not None and Path(out).resolve() != Path(resume).resolve()):
        check_outputs(configs, outs, resumable=seed_list is not None and not force, force=force)
    hint = "reduce `p`, `d_mlp`, `d_model` or the number of `seeds`"
    check_fits(estimate_memory(configs), "this training", configs[0].device, force, hint)
    apply_threads(step_elements(configs), configs[0].device, threads)
    total = sum(c.epochs for c in configs)
    bar, advance = _progress(
        total,
        "grok",
        "train {task.fields[train_loss]:.2e} test {task.fields[test_loss]:.2e}",
        train_loss=float("nan"),
        test_loss=float("nan"),
    )
    with bar:
        runs = train_many(
            configs,
            outs,
            resume=[resume] if resume is not None else ("auto" if seed_list is not None and not force else "never"),
            progress=lambda done, _total, **kw: advance(done, **kw),
        )
    diverged = []
    for run, path in zip(runs, outs, strict=True):
        if run["config"].get("stop_reason") == "diverged":
            diverged.append(f"{path} at epoch {run['config']['diverged_epoch']}")
            continue
        typer.echo(
            f"wrote {path}: grok epoch {run['grok_epoch']}, key frequencies {run['key_freqs'].tolist()}, "
            f"final train/test loss {run['train_loss'][-1]:.3g}/{run['test_loss'][-1]:.3g}, "
            f"{100 * run['single_freq_neuron_fraction']:.0f}% single-frequency neurons, "
            f"stopped: {run['config'].get('stop_reason')}, {run['config']['train_seconds']:.0f} s"
        )
    if diverged:
        typer.echo(
            f"error: diverged (training loss not finite): {'; '.join(diverged)}; the records before it are kept, "
            "marked stop_reason=diverged; try a smaller --lr",
            err=True,
        )
        raise typer.Exit(1)


# ---------------------------------------------------------------------------- bumps digits (issue 17)
@app.command()
def digits(
    seeds: str = typer.Option("0,1,2,3,4,5,6,7", help="Model seeds, comma-separated; trained together in one process."),
    steps: int | None = typer.Option(
        None, help="Optimizer steps (20000); a finished run is extended by asking for more."
    ),
    train_size: int | None = typer.Option(
        None, help="Finite training set of N pairs, with a held-out test set (default: a fresh batch every step)."
    ),
    test_size: int | None = typer.Option(None, help="Held-out test pairs with --train-size (1000)."),
    record_every: int | None = typer.Option(None, help="Steps between records (1)."),
    batch_size: int | None = typer.Option(None, help="Sequences per step (64)."),
    lr: float | None = typer.Option(None, help="AdamW learning rate (1e-4)."),
    weight_decay: float | None = typer.Option(None, help="AdamW weight decay (0.1)."),
    data_seed: int | None = typer.Option(None, help="Data seed of every model (default: each model's seed)."),
    autosave_every: int = typer.Option(500, help="Steps between autosaves with weights and optimizer state (0: none)."),
    threads: int = typer.Option(0, help=THREADS_HELP),
    out: Path | None = typer.Option(
        None, help="Run file pattern with {seed} (default runs/digits[_{hash}]_seed{seed}.pt)."
    ),
    force: bool = typer.Option(False, "--force", help="Start fresh, replacing run files (even of other settings)."),
) -> None:
    """Train seed 002's 5-digit addition transformer for several seeds, recording per-digit loss and attention."""
    from bumps.digits.model import DigitsConfig
    from bumps.digits.train import run_paths, step_elements, train_digits
    from bumps.threads import apply_threads, choose_threads

    choose_threads(0, requested=threads)
    configs = _seed_configs(
        DigitsConfig,
        seeds,
        steps=steps,
        train_size=train_size,
        test_size=test_size,
        record_every=record_every,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        data_seed=data_seed,
    )
    outs = run_paths(configs, out)
    apply_threads(step_elements(configs), configs[0].device, threads)
    runs = _train_groups(
        train_digits,
        configs,
        outs,
        len(configs),
        "digits",
        resume="never" if force else "auto",
        autosave_every=autosave_every,
    )
    for run, path in zip(runs, outs, strict=True):
        last = run["loss_per_digit"][-1].tolist()
        typer.echo(
            f"wrote {path}: {len(run['step'])} records, final loss per digit (carry first) "
            f"{' '.join(f'{v:.3f}' for v in last)}, {run['config']['train_seconds']:.0f} s"
        )


# ---------------------------------------------------------------------------- end of bumps digits


@app.command()
def export(
    path: Path = typer.Argument(..., help="Run file (a sweep folder for csv/parquet: one table, one row set per run)."),
    out: Path = typer.Argument(..., help="Output file."),
    to: str = typer.Option(..., "--to", help="transformer-lens (mod-add runs) | csv | parquet (needs pyarrow)."),
    epoch: int | None = typer.Option(None, help="transformer-lens: weights of this checkpoint epoch (default: final)."),
    dtype: str | None = typer.Option(None, help="transformer-lens: float32 | float64 (default: as trained)."),
) -> None:
    """Export a mod-add model to TransformerLens, or every recorded series as a tidy CSV/parquet table."""
    from bumps.export import export as run_export

    written = run_export(
        path, to, out, epoch=epoch, dtype=dtype, progress_factory=lambda total: _progress(total, "export")
    )
    typer.echo(f"wrote {written}")
    if to == "transformer-lens" and epoch is None:  # flag a partial run (tables carry it in their status column)
        from bumps.io.info import partial_reason
        from bumps.io.runfile import load_run

        reason = partial_reason(load_run(path), need_grok=True)
        if reason:
            typer.echo(f"warning: {path} is a partial run ({reason}); these are the weights it reached", err=True)


@app.command()
def sweep(
    target: Path = typer.Argument(..., help="Spec .toml (command, \\[base], \\[grid]); with --status: a sweep folder."),
    out: Path | None = typer.Option(None, help="Sweep folder (default runs/sweep_{spec name})."),
    status: bool = typer.Option(False, "--status", help="Print the run table of the sweep folder TARGET."),
    executor: str = typer.Option("local", help="local (this machine's cores) | slurm (job arrays) | inline."),
    jobs: int | None = typer.Option(None, help="Concurrent jobs (local; default: cores) or array parallelism."),
    models_per_job: int = typer.Option(0, help="Runs packed into one job (grok: one ensemble); 0: auto."),
    partition: str | None = typer.Option(None, help="Slurm partition."),
    gpus_per_job: int = typer.Option(0, help="GPUs per job (Slurm --gpus-per-node; local: visible GPUs)."),
    time: int | None = typer.Option(None, "--time", help="Per-job time limit in minutes (Slurm default 60)."),
    cpus_per_job: int | None = typer.Option(None, help="CPU threads per job (default: cores / jobs; Slurm 1)."),
    device: str | None = typer.Option(None, help="torch device for every run (overrides \\[base] device)."),
) -> None:
    """Run a grid of grok or simulate runs as jobs (local or Slurm); resumable; --status shows the table."""
    from bumps.sweep import SweepOptions, run_sweep, sweep_status

    if status:
        _print_sweep(target, sweep_status(target))
        return
    out = out or Path("runs") / f"sweep_{target.stem}"
    opts = SweepOptions(
        executor=executor,
        jobs=jobs,
        models_per_job=models_per_job,
        partition=partition,
        gpus_per_job=gpus_per_job,
        time_min=time,
        cpus_per_job=cpus_per_job,
        device=device,
    )
    bar, advance = None, None

    def progress(done, total, **counts):
        nonlocal bar, advance
        if bar is None:
            bar, advance = _progress(
                total,
                "sweep",
                "{task.fields[running]} running, {task.fields[pending]} pending, {task.fields[failed]} failed",
                running=0,
                pending=0,
                failed=0,
            )
            bar.start()
        advance(done, **counts)

    try:
        manifest = run_sweep(target, out, opts, progress=progress)
    finally:
        if bar is not None:
            bar.stop()
    c = manifest["counts"]
    typer.echo(
        f"sweep {out}: {c['done']} done, {c['failed']} failed, {c['pending'] + c['running']} not finished "
        f"of {len(manifest['runs'])} runs (manifest {out / 'manifest.json'})"
    )
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
    table = Table(title=f"{folder}: {manifest['command']} sweep", title_justify="left", padding=(0, 1), expand=False)
    for col in ("id", *axes, "status", "result / error"):  # every column folds, so the table fits the terminal
        table.add_column(col, overflow="fold", ratio=3 if col == "result / error" else 1)
    for e in runs:
        s = e.get("summary") or {}
        if e["status"] == "failed":
            info = e["error"]
        elif e["status"] == "running":
            info = f"{100 * float(e.get('progress') or 0):.0f}% (job {e.get('job')})"
        elif e["status"] == "done":
            info = ", ".join(
                f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in s.items() if v is not None
            )
        else:
            info = e.get("note", "")
        table.add_row(e["id"], *(str(e["grid"].get(a)) for a in axes), e["status"], info)
    Console().print(table)  # the terminal's width (COLUMNS; 80 when it is not a terminal)
    c = manifest["counts"]
    typer.echo(", ".join(f"{c[k]} {k}" for k in ("done", "running", "pending", "failed")))


@app.command()
def figures(
    out: Path = typer.Option(
        Path("runs/figures"), help="Folder for the PNGs (the committed ones: --out figures, see the docs)."
    ),
    only: str = typer.Option(
        "all", help="all | lowrank | modadd | digits | induction (digits, induction: only when asked)."
    ),
    induction_runs: str = typer.Option(
        "runs/induction_seed{seed}.pt", help="--only induction: infinite-data runs, {seed} per seed (never trained)."
    ),
    induction_finite: str = typer.Option(
        "runs/induction_finite_seed{seed}.pt", help="--only induction: finite-data runs, {seed} for seeds 0-7."
    ),
    induction_seeds: int = typer.Option(8, help="--only induction: seeds 0 .. N-1 of both patterns."),
    digits_runs: str = typer.Option(
        "runs/digits_seed{seed}.pt", help="--only digits: the study's runs, {seed} for seeds 0-7 (never trained here)."
    ),
    modadd_run: Path | None = typer.Option(
        None, help="The mod-add run to draw (default runs/modadd_nanda_seed0.pt; it is never trained here)."
    ),
    allow_partial: bool = typer.Option(
        False, "--allow-partial", help="Draw from an interrupted or never-grokked run (the figures say so)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace figures made from other settings (another run)."),
) -> None:
    """Regenerate the post's and the paper's figures (into runs/figures/ unless --out says otherwise)."""
    from bumps.errors import BumpsError
    from bumps.io.provenance import check_replace, stamp_png

    if only not in ("all", "lowrank", "modadd", "digits", "induction"):
        raise BumpsError(f"--only must be all, lowrank, modadd, digits or induction (got {only!r})")
    plan = []  # (file names, settings, make): everything is checked before the first figure is drawn
    warning = None
    if only == "induction":
        from bumps.induction.figures import INDUCTION_FIGURES, make_induction_figures
        from bumps.induction.figures import induction_runs as found_runs

        ind = found_runs([induction_runs.format(seed=s) for s in range(induction_seeds)])
        fin = found_runs([induction_finite.format(seed=s) for s in range(induction_seeds)], "finite-data")
        settings = {"runs": [p.name for p in ind], "finite": [p.name for p in fin]}
        plan.append((INDUCTION_FIGURES, settings, lambda: make_induction_figures(out, ind, fin)))
    if only == "digits":
        from bumps.digits.figures import DIGITS_FIGURES, digit_runs, make_digits_figures

        paths = digit_runs([digits_runs.format(seed=s) for s in range(8)])
        settings = {"runs": [p.name for p in paths]}
        plan.append((DIGITS_FIGURES, settings, lambda: make_digits_figures(out, paths)))
    if only in ("all", "modadd"):
        from bumps.modadd.figures import MODADD_FIGURES, figure_settings, make_modadd_figures, modadd_figure_run

        path, run, partial = modadd_figure_run(modadd_run, allow_partial)
        warning = f"warning: {path} is a partial run ({partial}); its figures say so" if partial else None
        plan.append(
            (MODADD_FIGURES, figure_settings(path, run, partial), lambda: make_modadd_figures(out, path, allow_partial))
        )
    if only in ("all", "lowrank"):
        from bumps.lowrank.figures import LOWRANK_FIGURE_FILES, LOWRANK_SETTINGS, make_lowrank_figures

        plan.insert(0, (LOWRANK_FIGURE_FILES, LOWRANK_SETTINGS, lambda: make_lowrank_figures(out)))
    for names, settings, _ in plan:
        for name in names:
            check_replace(out / name, settings, force=force)
    if warning:
        typer.echo(warning, err=True)
    for _, settings, make in plan:
        for written in make():
            stamp_png(written, settings)
            typer.echo(f"wrote {written}")


@app.command()
def claims(
    seeds: int = typer.Option(128, help="Seeds per configuration (full rank: at most --seeds-full-rank)."),
    seeds_full_rank: int = typer.Option(16, help="Seeds for the rank-100 configurations (cost ~d³ per seed-step)."),
    quick: bool = typer.Option(False, help="Small grid (d = 20, 1500 steps) for tests."),
    only: str | None = typer.Option(None, help="Comma-separated claim ids to report (1-10; default all)."),
    configs: str | None = typer.Option(
        None, help="Comma-separated configuration names to run (default: the whole grid)."
    ),
    max_knockout_bumps: int = typer.Option(150, help="Bumps drawn per knockout configuration."),
    out: Path = typer.Option(
        Path("runs/claims"), help="Folder for claims.md and claims.json (the committed report: --out reports)."
    ),
    figures_dir: Path | None = typer.Option(
        None, "--figures", help="Folder for claims_knockouts.png (default: --out; committed: --figures figures)."
    ),
    cache: Path = typer.Option(Path("runs/claims_cache"), help="Per-configuration results (resume after Ctrl-C)."),
    modadd_runs: str | None = typer.Option(
        None, help="Mod-add run files for the mod-add section (a glob; default runs/modadd5/nanda_seed*.pt if any)."
    ),
    modadd_knockouts: int = typer.Option(
        0,
        help="Mod-add knockout events per run (clearest neuron and frequency "
        "bumps; continuations cached in runs/modadd_knockouts/).",
    ),
    modadd_neurons: int = typer.Option(8, help="Competitor (and matched control) neurons per neuron knockout."),
    modadd_knockout_kinds: str = typer.Option("neuron,frequency", help="Which mod-add knockouts: neuron, frequency."),
    modadd_baseline: bool = typer.Option(True, help="Also continue each event's checkpoint without intervention."),
    modadd_train: bool = typer.Option(
        True, help="Train unfinished knockout continuations (--no-modadd-train: report the finished ones only)."
    ),
    allow_partial: bool = typer.Option(
        False, "--allow-partial", help="Use interrupted or never-grokked mod-add runs (the report lists them)."
    ),
    modadd_from: Path | None = typer.Option(
        None, help="Without mod-add run files: carry the mod-add section of this earlier claims.json, marked so."
    ),
    force: bool = typer.Option(False, "--force", help="Replace a report or figure made from other settings."),
) -> None:
    """Run the thread's claims 1-10 over the toy grid, knockouts and frame-invariant counts; write claims.md/.json."""
    import glob
    import shlex

    from bumps.errors import BumpsError
    from bumps.io.info import check_finished
    from bumps.io.provenance import check_replace
    from bumps.io.runfile import check_writable, load_run
    from bumps.report.claims import render_terminal, run_claims, write_report

    figures_dir = figures_dir or out
    split = lambda x: None if x is None else [v.strip() for v in x.split(",") if v.strip()]  # noqa: E731
    pattern = modadd_runs or "runs/modadd5/nanda_seed*.pt"
    paths = sorted(glob.glob(pattern))
    if modadd_runs and not paths:
        raise BumpsError(f"--modadd-runs {modadd_runs} matches no file; train with bumps grok --seeds ...")
    partial = {}
    for path in paths:
        reason = check_finished(load_run(path, kind="modadd"), path, need_grok=True, allow_partial=allow_partial)
        if reason:
            partial[path] = reason
    settings = dict(
        command="claims",
        seeds=seeds,
        seeds_full_rank=seeds_full_rank,
        quick=quick,
        only=only,
        configs=configs,
        max_knockout_bumps=max_knockout_bumps,
        modadd_runs=paths,
        modadd_knockouts=modadd_knockouts,
        modadd_neurons=modadd_neurons,
        modadd_knockout_kinds=modadd_knockout_kinds,
        modadd_baseline=modadd_baseline,
        partial_runs=partial,
        modadd_from=None if paths or modadd_from is None else modadd_from.as_posix(),
    )
    for path, flag in ((out / "claims.md", "out"), (out / "claims.json", "out")):
        check_writable(path, flag)
        check_replace(path, settings, force=force, flag=flag)
    check_writable(figures_dir / "claims_knockouts.png", "figures")
    check_replace(figures_dir / "claims_knockouts.png", settings, force=force, flag="figures")
    bar, advance = _progress(1, "claims", "{task.fields[name]}", name="")
    with bar:

        def progress(i, n, name):
            advance(i, total=n, name=name)

        report = run_claims(
            seeds=seeds,
            quick=quick,
            configs=split(configs),
            claims=split(only),
            max_knockout_bumps=max_knockout_bumps,
            cache=cache,
            progress=progress,
            seeds_full_rank=seeds_full_rank,
            modadd_runs=paths,
            modadd_knockouts=modadd_knockouts,
            modadd_neurons=modadd_neurons,
            modadd_kinds=tuple(split(modadd_knockout_kinds)),
            modadd_baseline=modadd_baseline,
            modadd_train=modadd_train,
            modadd_from=None if paths else modadd_from,
        )
    report["command"] = "bumps " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    written = write_report(report, out, figures_dir, settings=settings)
    typer.echo(render_terminal(report))
    for path in written:
        typer.echo(f"wrote {path}")


@app.command()
def rules(
    family: str = typer.Argument("toy", help="Which report's rules (a top-level key of bumps/rules.json)."),
    register: str | None = typer.Option(
        None, help="Comma-separated claim ids whose current rule to register (records its hash in the file)."
    ),
) -> None:
    """List the registered claim rules of one report: status, last-changed commit, the rule; or register edits."""
    from bumps.registry import REGISTRY, last_changed, load
    from bumps.registry import register as register_rules

    if register is not None:
        ids = [i.strip() for i in register.split(",") if i.strip()]
        changed = register_rules(family, ids)
        typer.echo(f"registered {', '.join(changed) or 'nothing new'} in {REGISTRY.name}")
    for cid, e in load(family).items():
        typer.echo(f"{cid}: {e.status} (rule since {last_changed(e)}) — {e.rule.describe()}")


@app.command()
def values(
    files: list[Path] = typer.Argument(..., help="Markdown files or folders (searched for .md files)."),
    check: bool = typer.Option(False, help="Only list the marks that disagree with their report; exit 1 if any."),
) -> None:
    """Fill the value marks of Markdown files from the reports (<!-- value: FILE PATH [FORMAT] -->...)."""
    from bumps.io.runfile import atomic_write
    from bumps.report.values import fill, markdown_files, stale

    root = Path.cwd()
    bad = 0
    for f in markdown_files(files):
        text = f.read_text(encoding="utf-8")
        marks = stale(text, root, str(f))
        bad += len(marks)
        for s in marks:
            typer.echo(f"{s.file}:{s.line}: says {s.found!r}, {s.source} says {s.expected!r}")
        if marks and not check:
            new = fill(text, root)
            atomic_write(f, lambda fh, new=new: fh.write(new.encode("utf-8")))
            typer.echo(f"updated {f} ({len(marks)} marks)")
    if check and bad:
        raise typer.Exit(1)


@app.command("digits-claims")
def digits_claims(
    runs: list[Path] = typer.Argument(..., help="bumps digits run files, one per seed."),
    out: Path = typer.Option(Path("runs/digits_claims"), help="Folder for digits_claims.md and .json."),
    force: bool = typer.Option(False, help="Replace a report made from other runs."),
) -> None:
    """Measure seed 002's 5-digit-addition claims (a phase change per digit; competition) on bumps digits runs."""
    import shlex
    import sys

    from bumps.digits.claims import write_report

    command = "bumps " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    for path in write_report(runs, out, command, force=force):
        typer.echo(f"wrote {path}")


# ---------------------------------------------------------------------------- bumps induction (issue 18)
@app.command()
def induction(
    seeds: str = typer.Option("0,1,2,3,4,5,6,7", help="Model seeds, comma-separated."),
    steps: int | None = typer.Option(None, help="Optimizer steps (3000); asking a finished run for more extends it."),
    train_size: int | None = typer.Option(
        None, help="Finite training set of N sequences (512 in seed 002), with a held-out test set (default: infinite)."
    ),
    test_size: int | None = typer.Option(None, help="Held-out test sequences with --train-size (512)."),
    record_every: int | None = typer.Option(None, help="Steps between records (5)."),
    checkpoint_every: int | None = typer.Option(None, help="Steps between checkpoints kept for knockouts (100)."),
    batch_size: int | None = typer.Option(None, help="Sequences per step (128)."),
    lr: float | None = typer.Option(None, help="AdamW learning rate (1e-3)."),
    weight_decay: float | None = typer.Option(None, help="AdamW weight decay (1)."),
    sub_len: int | None = typer.Option(None, help="Repeated subsequence length (16), at most 1/3 of the context."),
    n_ctx: int | None = typer.Option(None, help="Tokens per sequence (85)."),
    placement: str | None = typer.Option(
        None, help="Where the repeats go: consecutive (back to back, random start), end (fixed, at the end), gaps."
    ),
    data_seed: int | None = typer.Option(None, help="Data seed of every model (default: each model's seed)."),
    stack: int = typer.Option(1, help="Seeds trained together in one stacked step (1: one after another)."),
    autosave_every: int = typer.Option(500, help="Steps between autosaves with weights and optimizer state (0: none)."),
    threads: int = typer.Option(0, help=THREADS_HELP),
    out: Path | None = typer.Option(
        None, help="Run file pattern with {seed} (default runs/induction[_{hash}]_seed{seed}.pt)."
    ),
    force: bool = typer.Option(False, "--force", help="Start fresh, replacing run files (even of other settings)."),
) -> None:
    """Train seed 002's induction-head transformer (2 attention-only layers) for several seeds."""
    from bumps.errors import BumpsError
    from bumps.induction.model import InductionConfig
    from bumps.induction.train import run_paths, step_elements, train_induction
    from bumps.threads import apply_threads, choose_threads

    choose_threads(0, requested=threads)
    if stack < 1:
        raise BumpsError(f"--stack must be a positive integer (got {stack})")
    configs = _seed_configs(
        InductionConfig,
        seeds,
        steps=steps,
        train_size=train_size,
        test_size=test_size,
        record_every=record_every,
        checkpoint_every=checkpoint_every,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        sub_len=sub_len,
        n_ctx=n_ctx,
        placement=placement,
        data_seed=data_seed,
    )
    outs = run_paths(configs, out)
    apply_threads(step_elements(configs[:stack]), configs[0].device, threads)
    runs = _train_groups(
        train_induction,
        configs,
        outs,
        stack,
        "induction",
        resume="never" if force else "auto",
        autosave_every=autosave_every,
    )
    for run, path in zip(runs, outs, strict=True):
        typer.echo(
            f"wrote {path}: {len(run['step'])} records, final loss {float(run['loss'][-1]):.3f} "
            f"(predictable {float(run['loss_pred'][-1]):.3f}), {run['config']['train_seconds']:.0f} s"
        )


@app.command("induction-search")
def induction_search(
    runs: list[Path] = typer.Argument(..., help="Finished `bumps induction` run files of the search."),
    report: Path = typer.Option(
        Path("runs/induction_search"),
        help="Writes REPORT.md and .json; rows already in REPORT.json are kept (the committed one: "
        "--report reports/induction_search).",
    ),
    seed_from: Path | None = typer.Option(
        None, help="When REPORT.json does not exist yet: start from this report's rows (an induction-claims json)."
    ),
) -> None:
    """Seed 002's memorise-then-generalise: a growing table of single runs at other settings."""
    from bumps.induction import search
    from bumps.io.info import check_finished
    from bumps.io.runfile import check_writable, load_run

    for path in (report.with_suffix(".md"), report.with_suffix(".json")):
        check_writable(path, "report")
    old = search.load_rows(report.with_suffix(".json"))
    if not old and seed_from is not None:
        old = search.load_rows(seed_from)
    loaded = [(p, load_run(p, kind="recorded")) for p in runs]
    for p, run in loaded:
        check_finished(run, p)  # an autosave's curves stop where it was interrupted
    new = [search.search_row(p.name, run) for p, run in loaded]
    rows = search.merge(old, new)
    for path in search.write_report(rows, f"bumps induction-search RUNS --report {report.as_posix()}", report):
        typer.echo(f"wrote {path}")
    for r in new:
        typer.echo(f"{r['run']}: memorised {r.get('memorised')}, generalised {r.get('generalised')}")


@app.command("induction-claims")
def induction_claims(
    runs: list[Path] = typer.Argument(..., help="bumps induction run files of the infinite-data study, one per seed."),
    finite: list[Path] = typer.Option([], help="Finite-data runs (--train-size), one per seed; repeat the flag."),
    probe: list[Path] = typer.Option([], help="Configuration-search runs, tabled in the report; repeat the flag."),
    knockouts: bool = typer.Option(True, help="Train the knockout continuations of claim (d) (--no-knockouts: skip)."),
    horizon: int | None = typer.Option(
        None,
        help="Knockout continuations run at most this many steps past their checkpoint (default: to the "
        "bump's end plus half its width).",
    ),
    out: Path = typer.Option(Path("runs/induction_claims"), help="Folder for induction_claims.md and .json."),
    force: bool = typer.Option(False, help="Replace a report made from other runs."),
) -> None:
    """Measure seed 002's induction-head claims (phase change, scores, memorise-then-generalise, head competition)."""
    import shlex

    from bumps.errors import BumpsError
    from bumps.induction.claims import write_report

    command = "bumps " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if horizon is not None and horizon < 1:
        raise BumpsError(f"--horizon must be a positive number of steps (got {horizon})")
    for path in write_report(
        runs, finite, out, command, knockouts=knockouts, force=force, probes=probe, horizon=horizon
    ):
        typer.echo(f"wrote {path}")


# ---------------------------------------------------------------------------- end of bumps induction


# ---------------------------------------------------------------------------- bumps dln (issue 19)
@app.command()
def dln(
    problems: int = typer.Option(40, help="Regression problems kept (the independent units)."),
    seed: int = typer.Option(0, help="Seed of the problem generator."),
    alphas: str = typer.Option(
        "1e-2,1e-4,1e-8,1e-16,1e-32,1e-64",
        help="Initialisation scales, decreasing, comma-separated (the rows read 1e-16; jump_times_limit the smallest).",
    ),
    out: Path = typer.Option(Path("reports"), help="Folder for dln_control.md and .json."),
    force: bool = typer.Option(False, help="Replace a report made from other settings."),
) -> None:
    """Positive control: diagonal linear networks at small init, checked against the saddle-to-saddle theory."""
    import shlex

    from bumps.dln.claims import write_report
    from bumps.dln.model import DLNConfig
    from bumps.errors import BumpsError

    try:
        alpha_list = tuple(float(a) for a in alphas.split(","))
    except ValueError:
        raise BumpsError(f"--alphas must be numbers such as 1e-2,1e-4 (got {alphas!r})") from None
    cfg = DLNConfig(problems=problems, seed=seed, alphas=alpha_list).validate()
    command = "bumps " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    for path in write_report(cfg, out, command, force=force, progress=lambda text: typer.echo(text, err=True)):
        typer.echo(f"wrote {path}")


# ---------------------------------------------------------------------------- end of bumps dln


@app.command("probe-ablation")
def probe_ablation(
    preset: str = typer.Option("tl-demo", help="Base configuration (tl-demo: seed 001's setup)."),
    p: int | None = typer.Option(None, "--p", help="Prime modulus (preset: 113)."),
    seeds: str = typer.Option("0,1,2", help="Seed indices; index s trains model seed (preset seed + s)."),
    variants: str = typer.Option(
        ",".join(
            (
                *("baseline", "k0", "km1", "kp1", "km1_k0", "km1_kp1", "k0_kp1", "full"),
                *("frozen", "frozen-matched", "hidden-l2-0.01", "hidden-l2", "hidden-l2-1", "wd2", "wd1.5"),
            )
        ),
        help="baseline, stencils k0 km1 kp1 km1_k0 km1_kp1 k0_kp1 full, controls frozen frozen-matched "
        "hidden-l2 (λ = --probe-weight) hidden-l2-X (λ = X) wdX (weight decay X). Speedups need baseline; "
        "without it the runs train and the report lists grok epochs only.",
    ),
    epochs: int | None = typer.Option(None, help="Epoch budget per run (preset: 25000); early stop at grok."),
    probe_weight: float = typer.Option(0.1, help="λ for the probe variants and hidden-l2."),
    train_frac: float | None = typer.Option(None, help="Override for every run (small tests)."),
    d_model: int | None = typer.Option(None, help="Override for every run (small tests)."),
    d_mlp: int | None = typer.Option(None, help="Override for every run (small tests)."),
    lr: float | None = typer.Option(None, help="Override for every run (small tests)."),
    device: str | None = typer.Option(None, help="torch device, e.g. cpu or cuda."),
    threads: int = typer.Option(
        0, help=THREADS_HELP[:-1] + "; two processes with --threads 1 and disjoint --variants share 2 cores well)."
    ),
    train: bool = typer.Option(
        True,
        help="--no-train: train nothing; report the ledger and the run files, runs still in "
        "progress censored at the epoch they have reached.",
    ),
    out_dir: Path | None = typer.Option(
        None,
        help="Run files (default runs/probe_ablation/{preset}_p{p}[_{hash} of the overrides]); "
        "finished runs there are reused, unfinished ones resumed.",
    ),
    report: Path | None = typer.Option(
        None,
        help="Writes REPORT.md, .json and .png (default OUT_DIR/probe_ablation; the committed report: "
        "--report reports/probe_ablation).",
    ),
    ledger: Path | None = typer.Option(
        None,
        help="Run ledger: one record per finished run, appended as each ensemble finishes; a run it holds is "
        "not trained again (default OUT_DIR/probe_ablation_runs.json; the committed study: "
        "--ledger reports/probe_ablation_runs.json). Finished run files in OUT_DIR are recorded in it.",
    ),
    import_report: list[Path] | None = typer.Option(
        None,
        help="Seed the ledger from a report JSON written before the ledger (its configs and grok epochs; "
        "a run whose config differs from today's is refused). Repeatable.",
    ),
    force: bool = typer.Option(False, "--force", help="Replace a report made from other settings."),
) -> None:
    """Seed 001's stencil ablation over seeds: grok epochs, paired speedups with t-intervals, claim verdicts."""
    import shlex

    from bumps.io.provenance import check_replace
    from bumps.io.runfile import check_writable, versions
    from bumps.modadd import ablation
    from bumps.threads import choose_threads

    choose_threads(0, requested=threads)  # a negative --threads fails before anything else
    seed_list = ablation.parse_list(seeds, "seeds", int)
    variant_list = ablation.parse_list(variants, "variants")
    configs = ablation.ablation_configs(
        preset,
        p,
        variant_list,
        seed_list,
        epochs,
        probe_weight,
        train_frac=train_frac,
        d_model=d_model,
        d_mlp=d_mlp,
        lr=lr,
        device=device,
    )
    first = next(iter(configs.values()))
    overrides = dict(epochs=epochs, train_frac=train_frac, d_model=d_model, d_mlp=d_mlp, lr=lr)
    out_dir = out_dir or ablation.default_out_dir(preset, first.p, overrides)
    report = report or out_dir / "probe_ablation"
    given = dict(
        preset=preset,
        p=p,
        seeds=seeds,
        variants=variants,
        epochs=epochs,
        probe_weight=probe_weight,
        train_frac=train_frac,
        d_model=d_model,
        d_mlp=d_mlp,
        lr=lr,
    )
    command = "bumps probe-ablation " + " ".join(
        f"--{k.replace('_', '-')} {shlex.quote(str(v))}" for k, v in given.items() if v is not None
    )
    settings = {"command": "probe-ablation", **given, "p": first.p}
    for suffix in (".md", ".json", ".png"):
        check_writable(report.with_suffix(suffix), "report")
        check_replace(report.with_suffix(suffix), settings, force=force, flag="report")
    check_writable(out_dir / "probe", "out_dir")
    from bumps.modadd.ledger import Ledger

    ledger = ledger or out_dir / "probe_ablation_runs.json"
    check_writable(ledger, "ledger")
    held = Ledger.load(ledger)
    todo = {k: c for k, c in configs.items() if held.find(c) is None}
    total = sum(c.epochs for c in todo.values()) if train else 0
    bar, advance = _progress(total, f"probe-ablation ({len(todo)} of {len(configs)} runs to train)")
    with bar:
        study = ablation.run_study(
            configs,
            out_dir,
            ledger,
            train=train,
            threads=threads,
            progress=lambda done, _total: advance(done),
            import_reports=tuple(import_report or ()),
            echo=typer.echo,
        )
    left = ablation.remaining(study.cells)
    base = "bumps probe-ablation " + " ".join(
        f"--{k.replace('_', '-')} {shlex.quote(str(v))}"
        for k, v in given.items()
        if v is not None and k not in ("seeds", "variants")
    )
    meta = dict(
        command=command,
        preset=preset,
        p=first.p,
        probe_weight=probe_weight,
        epochs=first.epochs,
        model_seeds=[configs[(variant_list[0], s)].seed for s in seed_list],
        data_seed=first.data_seed,
        ledger=ledger.as_posix(),
        versions=versions(),
        compute=ablation.compute_of(study.records),
        remaining=left,
        remaining_commands=ablation.remaining_commands(base, left, ledger) if left else [],
    )
    for path in ablation.write_report(study.rows, study.claims, meta, report, settings=settings):
        typer.echo(f"wrote {path}")
    for r in study.rows:
        sp = "" if r.speedup is None or r.speedup.ratio is None else f", speedup {r.speedup.text()}"
        typer.echo(f"{r.variant}: grok epochs {', '.join(c.text() for c in r.cells)}{sp}")
    for c in study.claims:
        typer.echo(f"claim {c.id}: {c.verdict}")


@app.command("wd-grid")
def wd_grid(
    weight_decays: str = typer.Option("3,0.3,1,0", help="AdamW weight decays, comma-separated, in training order."),
    seeds: str = typer.Option("0,1,2", help="Seed indices (model seed = split seed = index)."),
    epochs: int = typer.Option(30000, help="Epoch budget per run; each run stops at its grok epoch."),
    threads: int = typer.Option(0, help=THREADS_HELP),
    train: bool = typer.Option(True, help="--no-train: report the ledger only (unfinished runs: not run)."),
    out_dir: Path = typer.Option(
        Path("runs/wd_grid"), help="Run files (finished ones are recorded, unfinished resumed)."
    ),
    ledger: Path = typer.Option(
        Path("runs/wd_grid/wd_grid_runs.json"),
        help="Run ledger (the committed study: --ledger reports/wd_grid_runs.json); runs it holds are not retrained.",
    ),
    report: Path = typer.Option(
        Path("runs/wd_grid/wd_grid"), help="Writes REPORT.md and .json (the committed one: --report reports/wd_grid)."
    ),
) -> None:
    """Seed 003's weight-decay claim: grok epoch against weight decay at p = 113, paired across seeds."""
    from bumps.io.runfile import check_writable
    from bumps.modadd import ablation, wd_grid
    from bumps.threads import choose_threads

    choose_threads(0, requested=threads)
    wds = ablation.parse_list(weight_decays, "weight-decays", float)
    seed_list = ablation.parse_list(seeds, "seeds", int)
    configs = wd_grid.grid_configs(wds, seed_list, epochs)
    for path in (report.with_suffix(".md"), report.with_suffix(".json"), ledger, out_dir / "probe"):
        check_writable(path, "output")
    names = [wd_grid.variant_name(w) for w in (wd_grid.LOW, wd_grid.HIGH)]
    total = sum(c.epochs for c in configs.values()) if train else 0
    bar, advance = _progress(total, f"wd-grid ({len(configs)} runs, budget {epochs})")
    with bar:
        study = ablation.run_study(
            configs, out_dir, ledger, train=train, threads=threads, progress=lambda d, _t: advance(d), echo=typer.echo
        )
    cells = study.cells
    diff = wd_grid.paired_difference(cells.get(names[0], []), cells.get(names[1], []))
    entry, claim = wd_grid.judge_wd(diff)
    command = (
        f"bumps wd-grid --weight-decays {weight_decays} --seeds {seeds} --epochs {epochs} "
        f"--ledger {ledger.as_posix()} --report {report.as_posix()}"
    )
    left = [f"{v[2:]}:{c.seed}" for v, cs in cells.items() for c in cs if not c.finished]
    meta = dict(
        command=command,
        ledger=ledger.as_posix(),
        budget=epochs,
        remaining_command=wd_grid.remaining_command(left, epochs, ledger, report) if left else "",
    )
    for path in wd_grid.write_report(cells, diff, claim, entry, meta, report):
        typer.echo(f"wrote {path}")
    for v, cs in cells.items():
        typer.echo(f"{v}: grok epochs {', '.join(c.text() for c in cs)}")
    typer.echo("claim WD: " + ("not measured yet" if claim is None else claim.verdict))


@app.command("fresh-knockouts")
def fresh_knockouts(
    seeds: str = typer.Option("5,6,7,8,9,10,11,12,13,14", help="Seeds (model seed = split seed), trained in turn."),
    threads: int = typer.Option(0, help=THREADS_HELP),
    train: bool = typer.Option(True, help="--no-train: report the ledger only."),
    out_dir: Path = typer.Option(
        Path("runs/modadd_fresh"), help="Run files and continuations (finished ones reused, unfinished resumed)."
    ),
    ledger: Path = typer.Option(
        Path("runs/modadd_fresh/fresh_runs.json"),
        help="Seed ledger (the committed study: --ledger reports/modadd_fresh_runs.json); seeds it holds are not "
        "retrained (one recorded before M3f gets M3f from its run file in --out-dir, trained again if missing).",
    ),
    report: Path = typer.Option(
        Path("runs/modadd_fresh/fresh"),
        help="Writes REPORT.md and .json (the committed one: --report reports/modadd_fresh).",
    ),
    old_claims: Path = typer.Option(
        Path("reports/claims.json"), help="Earlier claims report whose knockouts make the exploratory row."
    ),
    winners_report: Path = typer.Option(
        Path("reports/winners.json"), help="Winners report quoted in the opening paragraph (missing: left out)."
    ),
    members: int = typer.Option(
        1, help="Continuations trained together as one ensemble; 0: all of a seed's (a GPU); on CPU 1 is fastest."
    ),
    p: int | None = typer.Option(None, help="Override for every run (small tests)."),
    d_model: int | None = typer.Option(None, help="Override for every run (small tests)."),
    d_mlp: int | None = typer.Option(None, help="Override for every run (small tests)."),
    epochs: int | None = typer.Option(None, help="Override for every run (small tests)."),
) -> None:
    """Registered claims M4-8, M4-64, M5, M5n, M5p (knockouts of each fresh seed's clearest bumps) and M3f."""
    import json

    from bumps.errors import BumpsError
    from bumps.io.runfile import check_writable
    from bumps.modadd import ablation, fresh, fresh_report
    from bumps.threads import choose_threads

    choose_threads(0, requested=threads)
    seed_list = ablation.parse_list(seeds, "seeds", int)
    if members < 0:
        raise BumpsError(f"--members must be >= 0 (got {members}); 0 trains a seed's continuations as one ensemble")
    overrides = {k: v for k, v in dict(p=p, d_model=d_model, d_mlp=d_mlp, epochs=epochs).items() if v is not None}
    configs = {s: fresh.fresh_config(s, **overrides) for s in seed_list}
    for path in (report.with_suffix(".md"), report.with_suffix(".json"), ledger, out_dir / "probe"):
        check_writable(path, "output")
    book = fresh.FreshLedger.load(ledger)

    def bar(total, label):
        ctx, advance = _progress(total, label)
        base: list[int] = []  # continuations start at their checkpoints' epochs: count from the first report

        def to(done, total_epochs, **_):
            base.append(base[0] if base else done - 1)
            advance(done - base[0], total_epochs - base[0])

        return ctx, to

    for s, cfg in configs.items():
        found = book.find(cfg)
        if found is not None and found.m3f is None:  # recorded before M3f: compute it from the seed's run
            filled = fresh.fill_m3f(found, cfg, out_dir, train, bar=bar)
            if filled is not None:
                book.add(filled)
                typer.echo(f"seed {s}: M3f {filled.m3f:+.4f}; recorded in {ledger}")
        if found is not None or not train:
            continue
        result = fresh.run_seed(s, cfg, out_dir, bar=bar, members=members or None)
        book.add(result)
        typer.echo(f"seed {s}: {len(result.events)} events, {len(result.outcomes)} arms; recorded in {ledger}")
    old = []
    if old_claims.exists():
        try:
            old = (json.loads(old_claims.read_text()).get("modadd") or {}).get("knockouts") or []
        except (OSError, ValueError, AttributeError):
            raise BumpsError(
                f"--old-claims {old_claims} is not a claims.json; give another or a missing path"
            ) from None
    # every seed of the ledger run at the registered configuration (with the overrides, for tests)
    results = [r for r in book.results if r.config_hash == fresh.config_digest(fresh.fresh_config(r.seed, **overrides))]
    meta = dict(
        command=f"bumps fresh-knockouts --no-train --ledger {ledger.as_posix()} --report {report.as_posix()}",
        ledger=ledger.as_posix(),
        report=report.as_posix(),
    )
    winners = None
    if winners_report.exists():
        try:
            winners = json.loads(winners_report.read_text())["claims"]
        except (OSError, ValueError, KeyError, TypeError):
            raise BumpsError(f"--winners-report {winners_report} is not a winners report.json") from None
    for path in fresh_report.write_report(results, old, meta, report, winners):
        typer.echo(f"wrote {path}")
    for entry, sv, claim in fresh.judge(results):
        typer.echo(
            f"claim {entry.id}: " + ("not measured yet" if claim is None else claim.verdict) + f" ({sv.n} seeds)"
        )


@app.command()
def winners(
    runs: list[Path] = typer.Argument(..., help="Finished mod-add run files (their configs regenerate epoch 0)."),
    report: Path = typer.Option(
        Path("runs/winners"),
        help="Writes REPORT.md and .json; rows already in REPORT.json are kept (the committed "
        "one: --report reports/winners).",
    ),
) -> None:
    """Claims W1, W2: does each neuron's initial phase alignment predict the frequency it ends with?"""
    from bumps.io.runfile import check_writable, load_run
    from bumps.modadd import winners_report as wr

    for path in (report.with_suffix(".md"), report.with_suffix(".json")):
        check_writable(path, "report")
    from bumps.io.info import check_finished

    loaded = [(p, load_run(p, kind="modadd")) for p in runs]
    for p, run in loaded:
        check_finished(run, p)  # an autosave's last table is not the final one
    new = [wr.row_of(p, run) for p, run in loaded]
    rows = wr.merge(wr.load_rows(report.with_suffix(".json")), new)
    command = f"bumps winners RUNS --report {report.as_posix()}"
    for path in wr.write_report(rows, command, report):
        typer.echo(f"wrote {path}")
    for r in new:
        typer.echo(
            f"{r.run}: alignment {r.accuracy_alignment:.3f}, norm {r.accuracy_norm:.3f}, chance {r.chance:.3f} "
            f"({r.neurons} neurons{', registered' if r.registered else ''})"
        )


@app.command()
def view(
    path: Path = typer.Argument(..., help="A run file (also one in training) or a folder of runs."),
    port: int = typer.Option(0, help="Port on 127.0.0.1 (0: a free one)."),
    browser: bool = typer.Option(True, help="--no-browser: print the address only."),
    export: Path | None = typer.Option(None, help="Write one self-contained HTML file (data inlined); no server."),
) -> None:
    """A live page in the browser: every series, detected events, the wavetable, seeds, a folder's runs."""
    from bumps.view import Target, export_page, serve

    if export is not None:
        typer.echo(f"wrote {export_page(Target.open(path), export)}")
        return
    serve(path, port, open_browser=browser, announce=typer.echo)


def _exit_now(code: int) -> None:
    """Flush and leave without interpreter teardown.

    With torch loaded, Python's finalisation takes 0.5-1.2 s on this machine and does nothing a
    finished command needs: every output is written atomically and closed before a command returns.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def as_flags(message: str) -> str:
    """Library errors name parameters in backticks (`init_scale`); on the command line they are flags (--init-scale)."""
    return re.sub(r"`([a-z][a-z0-9_]*)`", lambda m: "--" + m.group(1).replace("_", "-"), message)


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit code 2.

    Ends the process (see :func:`_exit_now`): call it only as the program, never from other code.
    """
    from bumps.errors import BumpsError

    no_args, usage = _click_errors()
    try:
        result = app(standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except no_args as exc:  # `bumps` or `bumps sweep` alone: the help, as click prints it
        typer.echo(exc.format_message(), err=True)
        code = 2
    except usage as exc:  # unknown flag, bad value, missing argument: one line, exit 2
        typer.echo(usage_line(exc), err=True)
        code = 2
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        code = 1
    except BumpsError as exc:
        typer.echo(f"error: {name_output_flag(as_flags(str(exc)), exc, sys.argv[1:])}", err=True)
        code = 130 if type(exc).__name__ == "Interrupted" else 2
    except (MemoryError, RuntimeError) as exc:
        if not is_out_of_memory(exc):
            raise
        typer.echo(f"error: out of memory ({one_line(exc)}); use smaller settings", err=True)
        code = 2
    except SystemExit as exc:  # click ends every command this way
        if exc.code is not None and not isinstance(exc.code, int):
            raise
        code = exc.code or 0
    _exit_now(code)


def _click_errors() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """click's NoArgsIsHelpError and UsageError classes: typer >= 0.17 vendors click (typer._click), older uses it."""
    import click.exceptions

    modules = [click.exceptions]
    try:
        import typer._click.exceptions as vendored

        modules.append(vendored)
    except ImportError:
        pass
    no_args = tuple(m.NoArgsIsHelpError for m in modules if hasattr(m, "NoArgsIsHelpError"))
    return no_args, tuple(m.UsageError for m in modules)


def one_line(exc: BaseException, width: int = 160) -> str:
    """The first line of an exception's message, shortened to ``width`` characters."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return text if len(text) <= width else text[: width - 3] + "..."


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocator failure (Python's MemoryError or torch's CPU/CUDA out-of-memory error)."""
    if isinstance(exc, MemoryError):
        return True
    text = str(exc)
    return any(s in text for s in ("can't allocate memory", "out of memory", "Out of memory", "not enough memory"))


def usage_line(exc) -> str:
    """A click usage error as one line: the problem, a "did you mean" when click has one, where the flags are."""
    import difflib

    ctx = getattr(exc, "ctx", None)
    message = " ".join(exc.format_message().split()).rstrip(".")
    option = getattr(exc, "option_name", None)
    if option and ctx is not None:
        flags = [o for param in ctx.command.params for o in (*param.opts, *param.secondary_opts) if o.startswith("--")]
        close = difflib.get_close_matches(option, flags, n=2, cutoff=0.7)
        message = f"no such option {option}" + (f"; did you mean {' or '.join(close)}?" if close else "")
    where = f"; {ctx.command_path} --help lists every flag" if ctx is not None else ""
    return f"error: {message}{where}"


def name_output_flag(message: str, exc: BaseException, argv: list[str]) -> str:
    """Name the flag the user typed for an unwritable output path (e.g. ``--plot``), not a generic ``--out``.

    ``exc.path`` (set by :func:`bumps.io.runfile.check_writable`) is matched against the values of the
    flags in ``argv``; the first flag whose value is that path replaces ``--out`` in the message.
    """
    path = getattr(exc, "path", None)
    if path is None:
        return message
    target = os.path.abspath(str(path))
    for i, arg in enumerate(argv):
        flag, eq, value = arg.partition("=")
        if not flag.startswith("--"):
            continue
        if not eq:
            value = argv[i + 1] if i + 1 < len(argv) else ""
        if value and os.path.abspath(value) == target:
            return message.replace("--out", flag)
    return message


if __name__ == "__main__":
    main()
