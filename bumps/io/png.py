"""Figures as files: a blank panel grid and an atomic PNG writer (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

from bumps.io.runfile import atomic_write


def pyplot():
    """matplotlib.pyplot with the non-interactive Agg backend selected (no display needed).

    Returns
    -------
    module
        ``matplotlib.pyplot``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_grid(n_panels: int):
    """A figure with room for ``n_panels`` axes in at most two columns (Agg backend).

    Parameters
    ----------
    n_panels : int
        Number of panels, at least 1; each is 6.5 × 3.6 inches.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure (constrained layout).
    axes : list of matplotlib.axes.Axes
        Every axes of the grid, row by row: ``n_panels`` rounded up to the grid, so
        one more than ``n_panels`` when it is odd and above 1 (hide the extra).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(n_panels, 2)
    rows = (n_panels + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 3.6 * rows), squeeze=False, constrained_layout=True)
    return fig, list(axes.flat)


def save_png(fig, path: str | Path) -> Path:
    """Save a figure as a PNG atomically (temp file, then rename) and close it.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure; closed even if saving fails.
    path : str or pathlib.Path
        The PNG file (90 dpi, tight bounding box).

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    BumpsError
        If ``path`` cannot be written (:func:`bumps.io.runfile.atomic_write`).
    """
    import matplotlib.pyplot as plt

    try:
        return atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=90, bbox_inches="tight"))
    finally:
        plt.close(fig)
