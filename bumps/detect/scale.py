"""The scale a curve is analysed on: linear, log10, or chosen per curve family.

Losses span decades: a training loss that falls from ~5 to 1e-7 and then spikes to 1e-3 has its
linear range set by the first few records, so a spike of four decades is 0.02 % of the range.
On ``log`` every threshold that is a fraction of the range is a fraction of the decades the
curve spans ("a rise of 0.1 of the range" is a rise of 0.1 × decades spanned).
"""

from __future__ import annotations

import numpy as np

from bumps.errors import BumpsError

SCALES = ("linear", "log", "auto")
AUTO_DECADES = 2.0  # auto picks log for strictly positive families spanning at least this many decades


def choose_scale(x: np.ndarray, scale: str) -> str:
    """The scale a family of curves is analysed on.

    Parameters
    ----------
    x : numpy.ndarray
        Curves ``[T, ...]`` (finite, see :func:`bumps.detect.bumps.check_curves`).
    scale : {"linear", "log", "auto"}
        ``"linear"`` and ``"log"`` are returned as given; ``"auto"`` gives ``"log"`` for a family
        shaped like a loss: every value strictly positive, ``max / min ≥ 10 ** AUTO_DECADES`` (at
        least two decades spanned, over the whole family), and ending lower than it starts (the
        median of the last sample over the curves below the median of the first); else
        ``"linear"``. A rising accuracy or alignment from near 0 stays linear.

    Returns
    -------
    str
        ``"linear"`` or ``"log"``.

    Raises
    ------
    BumpsError
        If ``scale`` is not one of :data:`SCALES`.
    """
    if scale not in SCALES:
        raise BumpsError(f"`scale` must be one of {', '.join(SCALES)} (got {scale!r})")
    if scale != "auto":
        return scale
    lo = float(x.min())
    falls = np.median(x[-1]) < np.median(x[0])
    return "log" if lo > 0 and float(x.max()) >= lo * 10**AUTO_DECADES and falls else "linear"


def to_scale(x: np.ndarray, scale: str, step: np.ndarray | None = None, name: str = "curves") -> np.ndarray:
    """The curves on a scale chosen by :func:`choose_scale`.

    Parameters
    ----------
    x : numpy.ndarray
        Curves ``[T, ...]``, float64.
    scale : {"linear", "log"}
        ``"log"`` returns ``log10(x)``; ``"linear"`` returns ``x`` itself (not a copy).
    step : numpy.ndarray, optional
        The steps ``[T]``, only to name the first bad step in the error.
    name : str, default "curves"
        What to call the curves in the error.

    Returns
    -------
    numpy.ndarray
        Same shape as ``x``.

    Raises
    ------
    BumpsError
        If ``scale`` is ``"log"`` and some value is ``<= 0``: the message names the curve family,
        the first such sample's step and its value.
    """
    if scale == "linear":
        return x
    bad = x <= 0
    if bad.any():
        where = np.argwhere(bad)[0]
        at = int(where[0]) if step is None else step[int(where[0])]
        raise BumpsError(
            f"log scale needs values > 0; {name} has {int(bad.sum())} values <= 0 "
            f"(first at step {at}: {x[tuple(where)]:.3g}); use --scale linear"
        )
    return np.log10(x)
