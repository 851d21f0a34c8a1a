"""Figures of the 5-digit addition study: one seed's per-digit losses with their phase changes, and the
phase-change times of every digit across seeds (``bumps figures --only digits``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bumps.digits.claims import DIGITS, seed_events
from bumps.errors import BumpsError
from bumps.io.png import pyplot, save_png
from bumps.io.runfile import safe_load

DIGITS_FIGURES = ("digits_phase_changes.png", "digits_onsets.png")


def digit_runs(paths: list[str | Path]) -> list[Path]:
    """The run files of the study, checked to exist (the figures never train).

    Raises
    ------
    BumpsError
        If there is none, or one is missing (naming the command that makes them).
    """
    found = [Path(p) for p in paths]
    missing = [p for p in found if not p.exists()]
    if not found or missing:
        what = missing[0] if missing else "no digits run was given"
        raise BumpsError(f"{what}: the digits figures need the study's runs; make them with bumps digits (seeds 0-7)")
    return found


def make_digits_figures(out: str | Path, paths: list[str | Path]) -> list[Path]:
    """Draw :data:`DIGITS_FIGURES` into the folder ``out`` from ``bumps digits`` runs (the first is the one seed shown).

    Parameters
    ----------
    out : str or Path
        The folder for the PNGs.
    paths : list of str or Path
        One run file per seed.

    Returns
    -------
    list of pathlib.Path
        The PNGs written.
    """
    out, paths = Path(out), digit_runs(paths)
    plt = pyplot()
    first = safe_load(paths[0])
    step = np.asarray(first["step"])
    loss = np.asarray(first["loss_per_digit"], dtype=np.float64)
    ev = seed_events(first)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for d, name in enumerate(DIGITS):
        ax.semilogy(step, loss[:, d], lw=0.6, alpha=0.8, color=colours[d % len(colours)], label=name)
        for t in ev["digit_pc_all"][d]:
            ax.axvline(t, color=colours[d % len(colours)], ls="--", lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss per answer digit (log)")
    ax.set_title(f"{paths[0].name}: per-digit loss; dashed: detected phase changes (steepest step)")
    ax.legend(ncol=3, fontsize=8)
    written = [save_png(fig, out / DIGITS_FIGURES[0])]
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(9, 3.8))
    for s, path in enumerate(paths):
        e = ev if s == 0 else seed_events(safe_load(path))
        for d in range(len(DIGITS)):
            times = e["digit_pc_all"][d]
            ax.scatter(times, [d + (s - len(paths) / 2) * 0.05] * len(times), s=14, color=colours[s % len(colours)])
    ax.set_yticks(range(len(DIGITS)), DIGITS)
    ax.set_xlabel("step of the steepest loss drop")
    ax.set_title(f"phase changes of each answer digit, {len(paths)} seeds (one colour per seed)")
    written.append(save_png(fig, out / DIGITS_FIGURES[1]))
    plt.close(fig)
    return written
