"""Labelled curves shaped like the ones researchers log, for testing and benchmarking detectors.

Every family is seeded and states its events exactly (sample indices):

* ``staircase``: a minibatch-like loss on the log scale: 1–6 phase changes (logistic falls of
  0.5–1.5 decades, 10–90 % in 0.4–2 % of the run, at least 10 % of the run apart), slow drift on
  the plateaus, noise that is larger before a phase change than after it, of a chosen family;
* ``slingshot``: a float32 run: a fall from ~4.7 to a floor near ``2⁻²³`` (1.19e-7), then
  up to 12 slingshots: jumps of 3–6 decades within 1–3 records that decay back over 2–8 % of
  the run (the shape measured on ``bumps grok --loss-dtype float32``);
* ``noisy_bumps``: 1–3 transient bumps (Gaussian in time, 4.8–20 noise sigmas high and within a
  factor 0.6 of each other, 2–6 % of the run at half height) on a noisy, slowly decaying plateau;
* ``clean``: the detector's earlier benchmark: S-curves (one rising phase change), gentle
  decays (nothing), S-curves with a bump before their rise (labelled where the curve falls
  back by at least 0.2 of the bump's height and 0.1 of the curve's range), plus 1e-4 white noise;
* ``knee``: a per-answer-digit minibatch loss as a small transformer logs it (``bumps digits``): a
  plateau near ``ln 10`` for 5–60 % of the run, an abrupt fall of 0.3–1 decades (10–90 % in
  1–5 % of the run), then a slow decline that goes on for another 0.5–1.5 decades (the curve
  never reaches a second plateau), with log-scale noise that grows as the loss falls
  (Student-t, 3 dof: a minibatch with a few wrong answers); one phase change;
* ``noise``: pure noise (``gaussian``, ``lognormal`` per-sample loss, ``student_t`` with 3
  degrees of freedom, ``ar1``: correlated, coefficient 0.7), no events.

Staircase noise is added to ``log10`` of the loss (Gaussian there is a log-normal loss);
noisy-bump noise is added to the curve.

Phase-change labels: ``start`` and ``end`` where the logistic has made 10 % and 90 % of its
change, ``peak`` its steepest sample. Bump and spike labels: ``peak`` is the top,
``start``/``end`` bound the samples above half height.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

NOISE_FAMILIES = ("gaussian", "student_t", "ar1")  # the noise of staircases and noisy bumps
PURE_NOISE = ("gaussian", "lognormal", "student_t", "ar1")  # the pure-noise families
LOGIT_90 = np.log(9.0)  # a logistic of rate k goes from 10 % to 90 % in 2·ln 9 / k samples


@dataclass(frozen=True)
class Label:
    """One true event: its kind and samples (see :mod:`bumps.detect.synthetic`)."""

    kind: str
    start: int
    peak: int
    end: int


@dataclass(frozen=True)
class LabelledCurve:
    """A curve ``values [T]`` on steps ``0..T − 1``, its family and its true events."""

    family: str
    values: np.ndarray
    labels: tuple[Label, ...]


def _noise(rng: np.random.Generator, family: str, n: int) -> np.ndarray:
    """Unit-variance noise: white Gaussian, Student-t (3 dof), or AR(1) with coefficient 0.7 (not white)."""
    if family == "student_t":
        return rng.standard_t(3, n) / np.sqrt(3.0)
    e = rng.standard_normal(n)
    if family == "ar1":  # x[i] = 0.7 x[i-1] + sqrt(1 - 0.49) e[i]
        from scipy.signal import lfilter

        return lfilter([np.sqrt(1 - 0.49)], [1, -0.7], e)
    return e


def staircase(rng: np.random.Generator, n: int = 4000, noise: str = "gaussian") -> LabelledCurve:
    """A log-scale loss with 1–6 phase changes; values are ``10 ** log_loss`` (strictly positive)."""
    k = int(rng.integers(1, 7))
    t = np.arange(n, dtype=float)
    gap = 0.1 * n
    while True:  # centres at least 10 % of the run apart and from the ends
        centres = np.sort(rng.uniform(0.1 * n, 0.9 * n, k))
        if k == 1 or np.diff(centres).min() >= gap:
            break
    level = np.full(n, np.log10(4.7)) - 0.05 * np.log1p(t / n * 10)  # slow drift on the plateaus
    sigma = np.full(n, rng.uniform(0.02, 0.08))
    labels = []
    for c in centres:
        size = rng.uniform(0.5, 1.5)
        width = rng.uniform(0.004, 0.02) * n  # 10-90 % time
        rate = 2 * LOGIT_90 / width
        level = level - size * expit(rate * (t - c))
        sigma = sigma * np.where(t > c, 0.7, 1.0)  # quieter after each phase change
        half = LOGIT_90 / rate
        labels.append(Label("phase_change", int(round(c - half)), int(round(c)), int(round(c + half))))
    y = level + sigma * _noise(rng, noise, n)
    return LabelledCurve(f"staircase/{noise}", 10**y, tuple(labels))


def slingshot(rng: np.random.Generator, n: int = 4000) -> LabelledCurve:
    """A float32 loss shaped like a measured one: a fall to a floor near 1.19e-7, then 3–12 slingshots.

    As in ``bumps grok --loss-dtype float32`` (p = 113, per-epoch loss): the loss creeps up from the
    floor for a few records, jumps by 3–6 decades within 1–3 records, oscillates for a few records,
    and decays back to the floor log-linearly over 2–8 % of the run.
    """
    t = np.arange(n, dtype=float)
    floor_at = int(rng.uniform(0.15, 0.25) * n)
    floor = np.log10(2.0**-23 * rng.uniform(1.0, 5.0))
    y = np.where(t < floor_at, np.log10(4.7) + (floor - np.log10(4.7)) * t / floor_at, floor)
    y = y + 0.01 * rng.standard_normal(n)
    labels, at = [], floor_at + int(rng.uniform(0.02, 0.05) * n)
    for _ in range(int(rng.integers(3, 13))):
        decay = int(rng.uniform(0.02, 0.08) * n)
        if at + 12 + decay >= n - 5:
            break
        top = floor + rng.uniform(3.0, 6.0)
        creep = floor + np.array([0.05, 0.15, 0.35])  # creeps up before the jump
        rise = int(rng.integers(1, 4))
        jump = np.linspace(creep[-1], top, rise + 1)[1:]
        wobble = top - rng.uniform(0.0, 1.0, 4)
        back = np.linspace(wobble[-1], floor, decay)
        episode = np.concatenate([creep, jump, wobble, back])
        y[at : at + len(episode)] = episode + 0.01 * rng.standard_normal(len(episode))
        peak = at + int(np.argmax(y[at : at + len(episode)]))
        labels.append(Label("spike", at - 1, peak, at + len(episode) - 1))
        at += len(episode) + int(rng.uniform(0.01, 0.05) * n)
    return LabelledCurve("slingshot", 10**y, tuple(labels))


def noisy_bumps(rng: np.random.Generator, n: int = 4000, noise: str = "gaussian") -> LabelledCurve:
    """1–3 Gaussian bumps, 4.8–20 noise sigmas high, 2–6 % of the run wide (FWHM), on a noisy decaying plateau."""
    t = np.arange(n, dtype=float)
    k = int(rng.integers(1, 4))
    sigma = rng.uniform(0.01, 0.05)
    base = 1.0 + 0.2 * np.exp(-t / n * 2)
    labels, y = [], base.copy()
    centres = np.linspace(0.2, 0.8, k) * n + rng.uniform(-0.05, 0.05, k) * n
    biggest = rng.uniform(8, 20) * sigma
    for c in centres:
        fwhm = rng.uniform(0.02, 0.06) * n
        h = biggest * rng.uniform(0.6, 1.0)  # within a curve, every bump >= 0.1 of its range
        y = y + h * np.exp(-0.5 * ((t - c) / (fwhm / 2.3548)) ** 2)
        labels.append(Label("bump", int(round(c - fwhm / 2)), int(round(c)), int(round(c + fwhm / 2))))
    y = y + sigma * _noise(rng, noise, n)
    return LabelledCurve(f"noisy_bumps/{noise}", y, tuple(labels))


def knee(rng: np.random.Generator, n: int = 4000) -> LabelledCurve:
    """A plateau, an abrupt fall into a slow decline that never levels off, and level-dependent noise."""
    t = np.arange(n, dtype=float)
    c = rng.uniform(0.05, 0.6) * n + 0.01 * n
    size = rng.uniform(0.3, 1.0)
    width = rng.uniform(0.01, 0.05) * n  # 10-90 % time of the abrupt part
    rate = 2 * LOGIT_90 / width
    tau = rng.uniform(0.1, 0.4) * n
    slow = rng.uniform(0.5, 1.5) * np.log1p(np.maximum(t - c, 0) / tau) / np.log1p((n - c) / tau)
    fall = size * expit(rate * (t - c)) + slow
    early = 0.4 * np.exp(-t / (0.005 * n))  # the first records fall fast onto the plateau
    y = np.log10(np.log(10.0)) + early - fall
    sigma = 0.01 + 0.08 * fall
    y = y + sigma * _noise(rng, "student_t", n)
    half = LOGIT_90 / rate
    return LabelledCurve(
        "knee", 10**y, (Label("phase_change", int(round(c - half)), int(round(c)), int(round(c + half))),)
    )


def clean(rng: np.random.Generator, n: int = 2000) -> LabelledCurve:
    """One curve of the earlier benchmark: an S-curve, a gentle decay, or an S-curve with a bump; 1e-4 noise."""
    x = np.linspace(0, 1, n)
    centre, rate = rng.uniform(0.2, 0.8), rng.uniform(10, 60)
    kind = int(rng.integers(0, 3))
    if kind == 1:
        return LabelledCurve("clean/decay", np.exp(-rate / 10 * x) + 1e-4 * rng.standard_normal(n), ())
    s = expit(rate * (x - centre))
    half = LOGIT_90 / rate * (n - 1)
    c = centre * (n - 1)
    labels = [Label("phase_change", int(round(c - half)), int(round(c)), int(round(c + half)))]
    if kind == 2:
        h, w = rng.uniform(0.2, 1), 0.05
        s = s + h * np.exp(-0.5 * ((x - centre + 0.1) / w) ** 2)
        near = np.flatnonzero(np.abs(x - centre + 0.1) <= w)
        p = int(near[np.argmax(s[near])])
        after = s[p : p + int(4 * w * n)]
        if s[p] - after.min() >= max(0.2 * h, 0.1 * (s.max() - s.min())):  # labelled where it really falls back
            half = int(round(1.18 * w * n))
            labels.insert(0, Label("bump", p - half, p, p + half))
    family = "clean/s-curve" + ("+bump" if kind == 2 else "")
    return LabelledCurve(family, s + 1e-4 * rng.standard_normal(n), tuple(labels))


def pure_noise(rng: np.random.Generator, family: str, n: int = 10_000) -> LabelledCurve:
    """Noise around a constant: ``1 + 0.1·ε`` (Gaussian, Student-t) or ``exp(0.5·ε)`` (log-normal loss)."""
    if family == "lognormal":
        return LabelledCurve("noise/lognormal", np.exp(0.5 * rng.standard_normal(n)), ())
    if family not in PURE_NOISE:
        raise ValueError(f"unknown noise family {family!r}; known: {', '.join(PURE_NOISE)}")
    return LabelledCurve(f"noise/{family}", 1 + 0.1 * _noise(rng, family, n), ())


def single_bump(rng: np.random.Generator, height: float, fwhm: int, n: int = 4000) -> LabelledCurve:
    """One Gaussian bump ``height`` sigmas high, ``fwhm`` samples wide at half height, near mid-run, on white noise."""
    t = np.arange(n, dtype=float)
    c = n / 2 + rng.uniform(-0.1, 0.1) * n
    y = 1.0 + 0.01 * height * np.exp(-0.5 * ((t - c) / (fwhm / 2.3548)) ** 2) + 0.01 * rng.standard_normal(n)
    half = fwhm / 2
    return LabelledCurve("single_bump", y, (Label("bump", int(round(c - half)), int(round(c)), int(round(c + half))),))


def benchmark_set(seed: int = 0, scale: int = 1) -> list[LabelledCurve]:
    """The labelled benchmark: every family above, ``scale`` times the base counts.

    Parameters
    ----------
    seed : int, default 0
        Seed of the one generator that draws every curve in order.
    scale : int, default 1
        Multiplies the counts: 20 staircases per noise family, 30 slingshots, 20 noisy-bump
        curves per noise family, 60 clean curves, 20 knees.

    Returns
    -------
    list of LabelledCurve
        Staircases, slingshots, noisy bumps, clean curves, knees, in that order (no pure noise:
        :func:`pure_noise`); the knees come last, so the earlier families draw the same curves as
        before they were added.
    """
    rng = np.random.default_rng(seed)
    out = []
    for noise in NOISE_FAMILIES:
        out += [staircase(rng, noise=noise) for _ in range(20 * scale)]
    out += [slingshot(rng) for _ in range(30 * scale)]
    for noise in NOISE_FAMILIES:
        out += [noisy_bumps(rng, noise=noise) for _ in range(20 * scale)]
    out += [clean(rng) for _ in range(60 * scale)]
    out += [knee(rng) for _ in range(20 * scale)]
    return out
