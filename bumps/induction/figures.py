"""Figures of the induction study (``bumps figures --only induction``): the loss with its phase change, the
per-head scores of one seed, and finite against infinite data. They read run files and never train."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bumps.errors import BumpsError
from bumps.induction.claims import seed_events
from bumps.io.png import pyplot, save_png
from bumps.io.runfile import safe_load

INDUCTION_FIGURES = ("induction_loss.png", "induction_heads.png", "induction_finite.png")


def induction_runs(paths: list[str | Path], what: str = "infinite-data") -> list[Path]:
    """The run files, checked to exist (the figures never train).

    Raises
    ------
    BumpsError
        If there is none, or one is missing (naming the command that makes them).
    """
    found = [Path(p) for p in paths]
    missing = [p for p in found if not p.exists()]
    if not found or missing:
        where = missing[0] if missing else f"no {what} run was given"
        raise BumpsError(f"{where}: the induction figures need the study's {what} runs; make them with bumps induction")
    return found


def make_induction_figures(out: str | Path, paths: list[str | Path], finite: list[str | Path]) -> list[Path]:
    """Draw :data:`INDUCTION_FIGURES` into the folder ``out`` (the first infinite-data run is the seed shown).

    Parameters
    ----------
    out : str or Path
        The folder for the PNGs.
    paths : list of str or Path
        Infinite-data run files, one per seed.
    finite : list of str or Path
        Finite-data run files, one per seed.

    Returns
    -------
    list of pathlib.Path
        The PNGs written.
    """
    out, paths, finite = Path(out), induction_runs(paths), induction_runs(finite, "finite-data")
    plt = pyplot()
    runs = [safe_load(p) for p in paths]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for s, run in enumerate(runs):
        c = colours[s % len(colours)]
        ax.plot(np.asarray(run["step"]), np.asarray(run["loss"]), lw=0.7, color=c, label=f"seed {s}")
        t = seed_events(run)["loss_step"]
        if t is not None:
            ax.axvline(t, color=c, ls="--", lw=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (all predictions)")
    ax.set_title("infinite data: loss; dashed: detected phase change (steepest step)", fontsize=9)
    ax.legend(ncol=4, fontsize=7)
    written = [save_png(fig, out / INDUCTION_FIGURES[0])]
    first = runs[0]
    step = np.asarray(first["step"])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), constrained_layout=True)
    for ax, (key, layer_key, layer, name) in zip(
        axes,
        (
            ("prev_token", "layer_prev_token", 0, "layer 1 previous-token"),
            ("induction", "layer_induction", 1, "layer 2 induction"),
        ),
        strict=True,
    ):
        heads = np.asarray(first[key], dtype=np.float64)[:, layer]
        for h in range(heads.shape[1]):
            ax.plot(step, heads[:, h], lw=0.7, label=f"head {h}")
        ax.plot(step, np.asarray(first[layer_key])[:, layer], "k--", lw=1, label="layer (invariant)")
        ax.set_title(f"{paths[0].name}: {name} score", fontsize=9)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    written.append(save_png(fig, out / INDUCTION_FIGURES[1]))
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for s, path in enumerate(finite):
        run = safe_load(path)
        c = colours[s % len(colours)]
        ax.plot(np.asarray(run["step"]), np.asarray(run["test_loss"]), lw=0.8, color=c, label=f"finite, seed {s}")
        ax.plot(np.asarray(run["step"]), np.asarray(run["loss"]), lw=0.5, color=c, ls=":")
    ax.plot(step, np.asarray(first["loss"]), "k", lw=0.8, label="infinite, seed 0")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("test loss (dotted: train)")
    ax.set_title("finite against infinite data", fontsize=9)
    ax.legend(ncol=3, fontsize=7)
    written.append(save_png(fig, out / INDUCTION_FIGURES[2]))
    return written
