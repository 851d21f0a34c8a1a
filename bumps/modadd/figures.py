"""Mod-add figures from a run file: losses with phases, frequency norms, weight sparsity, bumps by class."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bumps.errors import BumpsError
from bumps.io.info import check_finished
from bumps.io.png import pyplot, save_png
from bumps.io.provenance import settings_of_run
from bumps.io.runfile import load_run
from bumps.io.schema import steps_of
from bumps.modadd.phases import classify_bumps, phase_boundaries


def _phases(ax, phases: dict[str, int]) -> None:
    for i, (name, epoch) in enumerate(phases.items()):
        ax.axvline(epoch, color="k", ls=":", lw=1)
        ax.text(
            epoch,
            0.98 - 0.1 * i,
            f" {name.replace('_', ' ')} {epoch}",
            transform=ax.get_xaxis_transform(),
            fontsize=7,
            va="top",
            backgroundcolor=(1, 1, 1, 0.7),
        )


def _flag(fig, note: str | None) -> None:
    """Mark a figure drawn from a partial run (``--allow-partial``) in red above its panels."""
    if note:
        fig.suptitle(f"PARTIAL RUN: {note}", color="C3", fontsize=10)


def fig_modadd_losses(run: dict, out: Path, note: str | None = None) -> Path:
    plt = pyplot()
    phases = phase_boundaries(run)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    step = run["step"].numpy()
    ax = axes[0]
    ax.semilogy(step, run["train_loss"], label="train loss")
    ax.semilogy(step, run["test_loss"], label="test loss")
    if "restricted_loss" in run:
        cs = run["checkpoint_step"].numpy()
        ax.semilogy(cs, run["restricted_loss"], "o-", ms=3, label="restricted loss (key freqs only)")
        ax.semilogy(cs, run["excluded_loss"], "s-", ms=3, label="excluded loss (key freqs removed, train)")
    _phases(ax, phases)
    ax.set_xlabel("epoch")
    ax.set_title(
        f"p={run['config']['p']}, preset {run['config']['preset']}: grok epoch {run['grok_epoch']}, "
        f"key freqs {run['key_freqs'].tolist()}",
        fontsize=9,
    )
    ax.legend(fontsize=7, loc="lower left")
    ax = axes[1]
    ax.plot(step, run["train_acc"], label="train accuracy")
    ax.plot(step, run["test_acc"], label="test accuracy")
    _phases(ax, phases)
    ax.set_xlabel("epoch")
    ax.legend(fontsize=7)
    _flag(fig, note)
    return save_png(fig, out / "modadd_losses.png")


def fig_modadd_freq_norms(run: dict, out: Path, note: str | None = None) -> Path:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [2, 1]})
    step, norms = run["step"].numpy(), run["freq_norm"].numpy()
    keys = set(run["key_freqs"].tolist())
    for k in range(norms.shape[1]):
        if k + 1 not in keys:
            axes[0].plot(step, norms[:, k], color="0.75", lw=0.6)
    for c, k in enumerate(sorted(keys)):
        axes[0].plot(step, norms[:, k - 1], color=f"C{c}", lw=2, label=f"frequency {k}")
    _phases(axes[0], phase_boundaries(run))
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("‖W_E‖ per frequency (cos+sin)")
    axes[0].set_title("embedding norm per frequency over training (key frequencies coloured)", fontsize=9)
    axes[0].legend(fontsize=7)
    axes[1].bar(
        np.arange(1, norms.shape[1] + 1),
        norms[-1],
        color=["C3" if k + 1 in keys else "0.6" for k in range(norms.shape[1])],
    )
    axes[1].set_xlabel("frequency k")
    axes[1].set_title(
        f"final W_E spectrum; {100 * run['single_freq_neuron_fraction']:.0f}% of neurons ≥85% one frequency", fontsize=9
    )
    _flag(fig, note)
    return save_png(fig, out / "modadd_freq_norms.png")


def fig_modadd_weights(run: dict, out: Path, note: str | None = None) -> Path:
    plt = pyplot()
    phases = phase_boundaries(run)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    step = run["step"].numpy()
    axes[0].plot(step, run["sum_sq_weights"])
    axes[0].set_title("sum of squared weights", fontsize=9)
    axes[1].plot(step, run["gini_embed"], label="Gini of W_E's Fourier component norms")
    axes[1].plot(step, run["gini_neuron_logit"], label="Gini of W_L's Fourier component norms")
    axes[1].legend(fontsize=7)
    for ax in axes:
        _phases(ax, phases)
        ax.set_xlabel("epoch")
    _flag(fig, note)
    return save_png(fig, out / "modadd_weights_gini.png")


def fig_modadd_bumps(path: Path, out: Path, note: str | None = None) -> Path:
    """The bumps that matter: key frequencies' W_E and W_L norms and the neurons' key-frequency shares.

    Left, middle: every key frequency's norm with its bumps marked, non-key frequencies in grey
    (their bumps are mostly the trivial memorise-then-clean-up shape, counted in the title).
    Right: the neurons with the largest key-frequency bumps (per-unit), each bump's peak marked.
    Classes from :func:`bumps.modadd.phases.classify_bumps`.
    """
    plt = pyplot()
    run = load_run(path, kind="modadd")
    rows = classify_bumps(run)
    step = run["step"].numpy()
    keys = sorted(int(k) for k in run["key_freqs"])
    phases = phase_boundaries(run)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6), constrained_layout=True)
    for ax, series, label in (
        (axes[0], "freq_norm", "‖W_E‖ per frequency"),
        (axes[1], "freq_norm_wl", "‖W_L‖ per frequency"),
    ):
        x = run[series].numpy()
        for k in range(x.shape[1]):
            if k + 1 not in keys:
                ax.plot(step, x[:, k], color="0.8", lw=0.5)
        for c, k in enumerate(keys):
            ax.plot(step, x[:, k - 1], color=f"C{c}", lw=2, label=f"k={k}")
        mine = [r for r in rows if r["series"] == series]
        for r in mine:
            if r["key"]:
                c = keys.index(r["freq"])
                ax.plot(r["peak_step"], x[r["peak"], r["freq"] - 1], "v", color=f"C{c}", ms=9, mec="k")
                ax.axvspan(r["start_step"], r["end_step"], color=f"C{c}", alpha=0.08)
        _phases(ax, phases)
        n_key = sum(r["key"] for r in mine)
        n_triv = sum(r["trivial"] for r in mine)
        ax.set_title(
            f"{label}: {n_key} key-frequency bumps (▼), {len(mine) - n_key} non-key "
            f"({n_triv} trivial memorise→clean-up)",
            fontsize=8,
        )
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    nf = run["neuron_freq"].float().numpy()
    nstep = np.asarray(steps_of(run, "neuron_freq"))
    neuron_rows = sorted((r for r in rows if r["series"] == "neuron_freq" and r["key"]), key=lambda r: -r["drop"])[:6]
    for c, r in enumerate(neuron_rows):
        axes[2].plot(
            nstep,
            nf[:, r["unit"], r["freq"] - 1],
            color=f"C{c}",
            lw=1.5,
            label=f"neuron {r['unit']}, k={r['freq']} ({r['phase']})",
        )
        axes[2].plot(r["peak_step"], nf[r["peak"], r["unit"], r["freq"] - 1], "v", color=f"C{c}", ms=8, mec="k")
    _phases(axes[2], phases)
    n_neuron = sum(r["series"] == "neuron_freq" and r["key"] for r in rows)
    axes[2].set_title(f"neurons' share of a key frequency: {n_neuron} bumps (largest 6 drawn)", fontsize=8)
    axes[2].set_xlabel("epoch")
    axes[2].set_ylabel("fraction of the neuron's variance")
    axes[2].legend(fontsize=6)
    fig.suptitle(f"{Path(path).name}: key frequencies {keys}", fontsize=9)
    if note:
        fig.suptitle(f"PARTIAL RUN: {note}; {Path(path).name}: key frequencies {keys}", fontsize=9, color="C3")
    return save_png(fig, out / "modadd_bumps.png")


MODADD_FIGURES = ("modadd_losses.png", "modadd_freq_norms.png", "modadd_weights_gini.png", "modadd_bumps.png")
DEFAULT_RUN = Path("runs/modadd_nanda_seed0.pt")


def modadd_figure_run(run_path: str | Path | None = None, allow_partial: bool = False) -> tuple[Path, dict, str | None]:
    """The run the mod-add figures are drawn from, checked before any figure is made.

    Parameters
    ----------
    run_path : str or Path, optional
        A mod-add run file; None: :data:`DEFAULT_RUN` (``runs/modadd_nanda_seed0.pt``).
    allow_partial : bool
        Draw from an interrupted, diverged or never-grokked run (the figures are then flagged).

    Returns
    -------
    path : pathlib.Path
        The run file.
    run : dict
        The loaded run.
    partial : str or None
        Why the run is partial (:func:`bumps.io.info.partial_reason`), or None.

    Raises
    ------
    BumpsError
        If the file is missing (naming the command that makes it), is not a mod-add run, or is partial
        without ``allow_partial``.
    """
    path = Path(run_path or DEFAULT_RUN)
    if not path.exists():
        make = "bumps grok --preset nanda" + ("" if path == DEFAULT_RUN else f" --out {path}")
        raise BumpsError(f"no such run file: {path}; the mod-add figures need one: make it with {make} (~30 min)")
    run = load_run(path, kind="modadd")
    return path, run, check_finished(run, path, need_grok=True, allow_partial=allow_partial)


def figure_settings(path: Path, run: dict, partial: str | None) -> dict:
    """The settings the mod-add figures record: the run's, its partial status and how far it got."""
    return {
        "figures": "modadd",
        "run": settings_of_run(run["config"]),
        "epochs_done": run["config"].get("epochs_done"),
        "partial": partial,
    }


def make_modadd_figures(
    out: str | Path = "runs/figures", run_path: str | Path | None = None, allow_partial: bool = False
) -> list[Path]:
    """The four mod-add figures from an existing run (:func:`modadd_figure_run`) into ``out``.

    Parameters
    ----------
    out : str or Path
        The folder for the PNGs.
    run_path : str or Path, optional
        As :func:`modadd_figure_run`.
    allow_partial : bool
        As :func:`modadd_figure_run`; a partial run's figures say so above their panels.

    Returns
    -------
    list of pathlib.Path
        The PNGs written.

    Raises
    ------
    BumpsError
        As :func:`modadd_figure_run`.
    """
    out = Path(out)
    path, run, partial = modadd_figure_run(run_path, allow_partial)
    return [
        fig_modadd_losses(run, out, partial),
        fig_modadd_freq_norms(run, out, partial),
        fig_modadd_weights(run, out, partial),
        fig_modadd_bumps(path, out, partial),
    ]
