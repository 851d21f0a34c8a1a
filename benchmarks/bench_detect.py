"""Bump detection speed: 10,000 curves × 2,000 samples (goal: under 2 s), and what events cost.

Curves are a realistic mix: S-curves, decays, and S-curves with a bump (about a
third each), plus small noise. Baseline in the same run: scipy's find_peaks and
peak_prominences on every curve, without the vectorised pre-filter.

    .venv/bin/python benchmarks/bench_detect.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from scipy.signal import find_peaks, peak_prominences

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bumps.detect.bumps import find_bumps  # noqa: E402
from bumps.detect.events import EventParams, find_events  # noqa: E402


def curves(n: int = 10_000, t: int = 2_000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, t)[:, None]
    center, rate = rng.uniform(0.2, 0.8, n), rng.uniform(10, 60, n)
    s = 1 / (1 + np.exp(-rate * (x - center)))
    kind = rng.integers(0, 3, n)
    bump = rng.uniform(0.2, 1, n) * np.exp(-0.5 * ((x - center + 0.1) / 0.05) ** 2)
    out = np.where(kind == 0, s, np.where(kind == 1, np.exp(-rate / 10 * x), s + bump))
    return out + 1e-4 * rng.standard_normal((t, n))


def naive(x: np.ndarray) -> int:
    count = 0
    for j in range(x.shape[1]):
        peaks, _ = find_peaks(x[:, j])
        if len(peaks):
            peak_prominences(x[:, j], peaks)
            count += len(peaks)
    return count


def main() -> None:
    x = curves()
    t0 = time.perf_counter()
    found = find_bumps(x)
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    naive(x)
    base = time.perf_counter() - t0
    print(
        f"{x.shape[1]} curves x {x.shape[0]} samples: find_bumps {ours:.2f} s ({len(found)} bumps); "
        f"per-curve scipy loop {base:.2f} s; ratio {base / ours:.1f}x; "
        f"goal < 2 s: {'met' if ours < 2 else 'NOT met'}"
    )
    # what event kinds, the noise model and the log scale cost on the same workload, relative to find_bumps
    positive = x - x.min() + 1e-3  # strictly positive, for the log scale
    for name, curves_, params in (
        ("find_events, linear (all kinds)", x, EventParams(scale="linear")),
        ("find_events, linear, smoothed (--smooth 21)", x, EventParams(scale="linear", smooth=21)),
        ("find_events, log scale", positive, EventParams(scale="log")),
    ):
        t0 = time.perf_counter()
        n = len(find_events(curves_, params=params))
        took = time.perf_counter() - t0
        print(f"{name}: {took:.2f} s ({n} events), {took / ours:.1f}x find_bumps")


if __name__ == "__main__":
    main()
