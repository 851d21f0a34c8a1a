"""A noise model for minibatch curves: robust smoothing and a local, heavy-tail-proof noise scale.

Minibatch losses are noisy with heavy tails (a bad batch), the noise is larger on plateaus than
after a phase change, and logged curves are often already averaged (not white). The model:

* a curve is *noisy* when its robust sample noise (:func:`bumps.detect.bumps.noise_sigma`) is at
  least :data:`NOISY` of its range; clean curves (full-batch runs) are analysed as recorded;
* a noisy curve is smoothed by a running median (robust to outliers) followed by a running mean,
  both ``w`` samples wide (:func:`smooth`);
* the noise of the raw curve is a robust estimate per block of :data:`LOCAL_WINDOW` samples,
  from fourth differences (blind to cubic trends), so it may change along the run
  (:func:`local_sigma`);
* the noise of the smoothed curve is that times one ratio per curve: the smoothed curve's noise
  (:func:`smoothed_sigma`, over the whole curve) over the raw curve's
  (:func:`bumps.detect.bumps.noise_sigma`), never less than for white Gaussian noise
  (:func:`white_ratio`, about ``1.2/√w``) and never more than 1. The ratio says how much smoothing helps for this
  curve's noise: less for correlated or heavy-tailed noise than for white.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.ndimage import median_filter, uniform_filter1d

from bumps.detect.bumps import noise_sigma

NOISY = 2e-4  # a curve is noisy when noise_sigma / range >= this (see noisy_columns)
LOCAL_WINDOW = 201  # samples per block of the local noise scale


def auto_window(n_samples: int) -> int:
    """The default smoothing width of a noisy curve.

    Parameters
    ----------
    n_samples : int
        Samples in the curve.

    Returns
    -------
    int
        The odd number nearest ``n_samples / 100``, at least 5 and at most 201.
    """
    w = int(round(n_samples / 100))
    return int(min(max(w | 1, 5), 201))


def noisy_columns(x: np.ndarray, sigma: np.ndarray | None = None) -> np.ndarray:
    """Which curves are noisy (see the module docstring).

    Parameters
    ----------
    x : numpy.ndarray
        Curves ``[T, M]``, one per column.
    sigma : numpy.ndarray, optional
        ``noise_sigma(x)`` ``[M]`` if already computed.

    Returns
    -------
    numpy.ndarray
        Bool ``[M]``: ``noise_sigma(x) >= NOISY · (max − min)``, and false for constant curves.
    """
    span = x.max(0) - x.min(0)
    return ((noise_sigma(x) if sigma is None else sigma) >= NOISY * span) & (span > 0)


def smooth(x: np.ndarray, width: int) -> np.ndarray:
    """A running median, then a running mean, along axis 0.

    Parameters
    ----------
    x : numpy.ndarray
        Curves ``[T, M]``.
    width : int
        Samples in each window (made odd by adding 1 if even); ``<= 1`` returns ``x`` unchanged.
        The ends are padded with the end values (``mode="nearest"``).

    Returns
    -------
    numpy.ndarray
        float64 ``[T, M]``.
    """
    if width <= 1:
        return x
    width |= 1
    m = median_filter(x, size=(width, 1), mode="nearest")
    return uniform_filter1d(m, width, axis=0, mode="nearest")


@lru_cache(maxsize=64)
def white_ratio(width: int) -> float:
    """How much :func:`smooth` shrinks white Gaussian noise: the sigma of ``smooth(ε, width)`` for unit ``ε``.

    Parameters
    ----------
    width : int
        The smoothing width (odd, ``> 1``).

    Returns
    -------
    float
        Measured once per width on 400·width seeded samples (about ``1.2 / √width``).
    """
    e = np.random.default_rng(0).standard_normal((400 * width, 1))
    return float(smooth(e, width)[width:-width].std())


def smoothed_sigma(y: np.ndarray, width: int) -> np.ndarray:
    """The noise sigma of curves smoothed with ``width``, from second differences at a lag of ``2·width``.

    Parameters
    ----------
    y : numpy.ndarray
        Smoothed curves ``[T, M]``.
    width : int
        Their smoothing width: points ``2·width`` apart share (almost) no noise when the raw noise
        is correlated over fewer than ``width`` samples.

    Returns
    -------
    numpy.ndarray
        ``[M]``: the lower quartile of ``|y[i] − 2y[i+L] + y[i+2L]|`` (``L = 2·width``) over all
        ``i``, divided by its value for Gaussian noise of unit sigma (``0.3186·√6``). The lower
        quartile, not the median, because a difference that straddles a phase change measures
        the signal; 0 when ``T ≤ 4·width``.
    """
    lag = 2 * width
    t = y.shape[0] - 2 * lag
    if t <= 0:
        return np.zeros(y.shape[1])
    d2 = np.abs(y[:t] - 2 * y[lag : lag + t] + y[2 * lag :])
    return np.quantile(d2, 0.25, axis=0) / (0.3186 * np.sqrt(6.0))


def _d4(x: np.ndarray, lag: int) -> np.ndarray:
    t = x.shape[0] - 4 * lag
    if t <= 0:
        return x[:0]
    w = (1.0, -4.0, 6.0, -4.0, 1.0)
    return np.abs(sum(c * x[k * lag : k * lag + t] for k, c in enumerate(w)))


def local_sigma(x: np.ndarray, window: int = LOCAL_WINDOW) -> np.ndarray:
    """The noise sigma of every sample: a robust estimate per block of samples, never below half the global one.

    Parameters
    ----------
    x : numpy.ndarray
        Curves ``[T, M]``.
    window : int, default LOCAL_WINDOW
        Samples per block (the last block takes the remainder; a curve shorter than two blocks
        is one block).

    Returns
    -------
    numpy.ndarray
        ``[T, M]``: ``max(1.4826 · median|Δ⁴ x| / √70`` over the block holding each sample (the
        differences centred on the block's samples), ``0.5 · noise_sigma(x))``, where
        :func:`bumps.detect.bumps.noise_sigma` is the same median over the whole curve; a block
        alone may underestimate the noise, and the floor keeps such places from passing noise as
        events. With fewer than 5 samples, zeros.
    """
    t = x.shape[0]
    if t < 5:
        return np.zeros_like(x)
    d4 = _d4(x, 1)
    d4 = np.concatenate([d4[:2], d4, d4[-2:]])  # one value per sample, centred
    blocks = max(t // window, 1)
    edges = np.linspace(0, t, blocks + 1).round().astype(int)
    out = np.empty_like(x)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        out[lo:hi] = 1.4826 * np.median(d4[lo:hi], axis=0) / np.sqrt(70.0)
    return np.maximum(out, 0.5 * noise_sigma(x))
