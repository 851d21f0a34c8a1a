"""Downsampling for display that keeps exact values: a min/max envelope of real samples per bucket.

A curve of T samples drawn in a chart a few hundred pixels wide needs at most two points per pixel
column: the lowest and the highest sample in it. :func:`envelope_indices` picks those samples
(their positions, not averages), so every point the page draws and every value its hover shows is
a recorded value, and every spike survives.
"""

from __future__ import annotations

import numpy as np


def envelope_indices(values: np.ndarray, buckets: int) -> np.ndarray:
    """Positions of the samples that keep each curve's min/max envelope over ``buckets`` equal spans.

    Parameters
    ----------
    values : numpy.ndarray
        ``[T]`` or ``[T, L]``: one curve, or L curves sharing their time axis (axis 0). NaNs are
        ignored within a bucket (a bucket that is all NaN keeps its first sample).
    buckets : int
        Number of equal spans of axis 0 (at least 1). Curves with ``T <= 2 * buckets + 2`` samples
        are kept whole.

    Returns
    -------
    numpy.ndarray
        Sorted unique int64 positions along axis 0: the first and the last sample, and in each
        bucket the position of the smallest and of the largest value of every curve (so at most
        ``2 * buckets * L + 2`` positions).

    Raises
    ------
    ValueError
        If ``buckets < 1`` or ``values`` is not 1-D or 2-D.
    """
    if buckets < 1:
        raise ValueError(f"buckets must be at least 1 (got {buckets})")
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"values must be [T] or [T, L] (got shape {x.shape})")
    n = x.shape[0]
    if n <= 2 * buckets + 2:
        return np.arange(n, dtype=np.int64)
    edges = np.linspace(0, n, buckets + 1).round().astype(np.int64)
    width = int(np.diff(edges).max())
    # [buckets, width] positions, padded by repeating each bucket's last position
    pos = np.minimum(edges[:-1, None] + np.arange(width)[None, :], edges[1:, None] - 1)
    blocks = x[pos]  # [buckets, width, L]
    safe = np.isnan(blocks)
    lo = np.where(safe, np.inf, blocks).argmin(1)  # [buckets, L]
    hi = np.where(safe, -np.inf, blocks).argmax(1)
    rows = np.arange(buckets)[:, None]
    picked = np.concatenate([pos[rows, lo].ravel(), pos[rows, hi].ravel(), [0, n - 1]])
    return np.unique(picked).astype(np.int64)
