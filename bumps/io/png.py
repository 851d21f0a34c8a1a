"""Figures as files: a blank panel grid and an atomic PNG writer (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

from bumps.io.runfile import atomic_write


def pyplot():
    """matplotlib.pyplot with the non-interactive Agg backend selected (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_grid(n_panels: int):
    """A figure with ``n_panels`` axes in at most two columns; returns (figure, list of axes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(n_panels, 2)
    rows = (n_panels + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 3.6 * rows), squeeze=False, constrained_layout=True)
    return fig, list(axes.flat)


def save_png(fig, path: str | Path) -> Path:
    """Save a figure atomically (temp file, then rename) and close it."""
    import matplotlib.pyplot as plt

    try:
        return atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=90, bbox_inches="tight"))
    finally:
        plt.close(fig)
