"""Plots of detector output: curves with their bumps and one competition event."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bumps.detect.analysis import Source, prepare
from bumps.io.png import figure_grid, save_png


def clearest_event(events: list[dict]) -> dict:
    """The event where both units visibly rise, the loser visibly falls and the winner catches up.

    Parameters
    ----------
    events : list of dict
        Event rows with ``loser_rise``, ``loser_drop``, ``winner_gain_during_rise`` and
        ``winner_gain_during_fall`` (e.g. ``analyze(...)["competition"]``); not empty.

    Returns
    -------
    dict
        The event whose smallest of those four values is largest (the first such).
    """
    return max(
        events,
        key=lambda e: min(e["loser_rise"], e["loser_drop"], e["winner_gain_during_rise"], e["winner_gain_during_fall"]),
    )


def draw_event(
    ax,
    x: np.ndarray,
    step: np.ndarray,
    ev: dict,
    title: str = "",
    unit: str = "unit",
    target: str = "target",
    offset: int = 0,
) -> None:
    """Draw one competition event on a matplotlib axes.

    Plots the loser and the winner on the contested target and the loser on its new
    target, marks the loser's start (▲), peak (●) and end (▼), and shades its fall
    ``[peak, end]``.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Where to draw.
    x : numpy.ndarray
        Alignment ``[T, units, targets]`` the event was found in.
    step : numpy.ndarray
        The steps ``[T]`` of ``x``'s samples (the x axis).
    ev : dict
        The event: ``target``, ``loser``, ``winner``, ``new_target`` (indices into
        ``x``) and ``start``, ``peak``, ``end`` (samples), as in
        :meth:`bumps.detect.competition.CompetitionEvent.as_dict`.
    title : str, default ""
        Axes title; empty means ``"competition for target <target index>"``.
    unit : str, default "unit"
        Name of the unit axis in the legend.
    target : str, default "target"
        Name of the target axis in the legend.
    offset : int, default 0
        Added to target indices in the legend (1 for frequencies, which start at 1).
    """
    t, l, w, n = ev["target"], ev["loser"], ev["winner"], ev["new_target"]
    ax.plot(step, x[:, l, t], color="C0", lw=2, label=f"{unit} {l} (loser) · {target} {t + offset}")
    ax.plot(step, x[:, w, t], color="C1", lw=2, label=f"{unit} {w} (winner) · {target} {t + offset}")
    ax.plot(step, x[:, l, n], color="C0", ls="--", label=f"{unit} {l} (loser) · {target} {n + offset}")
    for k, mk in (("start", "^"), ("peak", "o"), ("end", "v")):
        i = ev[k]
        ax.plot(step[i], x[i, l, t], mk, color="k", ms=6)
    ax.axvspan(step[ev["peak"]], step[ev["end"]], color="0.9", zorder=0)
    ax.set_xlabel("step")
    ax.set_title(title or f"competition for target {t}", fontsize=10)
    ax.legend(fontsize=7)


def plot_detection(source: Source, result: dict, path: str | Path, sign: str = "peak", max_curves: int = 12) -> Path:
    """Plot a detection result as a PNG: one panel per series, plus the clearest event.

    Each series' panel shows up to ``max_curves`` curves, those with the largest
    bump drops first (the first curves if it has no bump), with peaks (●) and ends
    (▼) of their bumps marked. If there are competition events, a last panel draws
    :func:`clearest_event` with :func:`draw_event`.

    Parameters
    ----------
    source : Source
        What was analysed.
    result : dict
        ``analyze(source, ..., sign=sign)``'s output (its ``bumps`` and ``competition``
        rows are read).
    path : str or pathlib.Path
        The PNG file to write (atomically).
    sign : {"peak", "abs", "raw"}, default "peak"
        The sign convention used for ``result`` (:func:`bumps.detect.analysis.prepare`),
        so that the plotted curves are the ones searched.
    max_curves : int, default 12
        Most curves drawn per series.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    BumpsError
        If ``sign`` is invalid or ``path`` cannot be written.
    """
    step = source.step
    n_panels = len(source.series) + (1 if result["competition"] else 0)
    fig, axes = figure_grid(n_panels)
    for ax, (spec, values) in zip(axes, source.series, strict=False):
        step = source.step_for(spec.key)
        x = prepare(spec, values, sign)
        flat = x.reshape(x.shape[0], -1)
        shape = x.shape[1:]
        mine = sorted((b for b in result["bumps"] if b["series"] == spec.key), key=lambda b: -b["drop"])
        shown = []
        for b in mine:
            j = int(np.ravel_multi_index(b["index"], shape)) if shape else 0
            if j not in shown:
                shown.append(j)
            if len(shown) >= max_curves:
                break
        if not shown:  # no bumps: show a few curves so the panel says so
            shown = list(range(min(flat.shape[1], max_curves)))
        for c, j in enumerate(shown):
            ax.plot(step, flat[:, j], color=f"C{c % 10}", lw=1)
        for b in mine:
            j = int(np.ravel_multi_index(b["index"], shape)) if shape else 0
            if j in shown:
                ax.plot(step[b["peak"]], flat[b["peak"], j], "o", color="k", ms=4)
                ax.plot(step[b["end"]], flat[b["end"], j], "v", color="k", ms=4)
        what = f"largest {len(shown)} curves shown" if mine else f"first {len(shown)} curves shown"
        ax.set_title(f"{spec.key}: {len(mine)} bumps ({what})", fontsize=10)
        ax.set_xlabel("step")
    if result["competition"]:
        ev = clearest_event(result["competition"])
        spec, values = next((s, v) for s, v in source.series if s.key == ev["series"])
        step = source.step_for(spec.key)
        x = prepare(spec, values, sign)
        moved = np.moveaxis(x, [1 + spec.unit_axis, 1 + spec.target_axis], [-2, -1])
        sub = moved[(slice(None), *ev["index"])]
        draw_event(
            axes[len(source.series)],
            sub,
            step,
            ev,
            f"{ev['series']} {ev['index']}: clearest competition event",
            unit=spec.axes[spec.unit_axis],
            target=spec.axes[spec.target_axis],
            offset=spec.target_offset,
        )
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return save_png(fig, path)
