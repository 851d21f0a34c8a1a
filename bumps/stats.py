"""Statistics shared by every task: bootstrap CIs, exact sign-flip p-values, null summaries, claim verdicts.

Functions take plain arrays of per-unit values (one value per seed, bump or event) and return floats or
JSON-ready dicts; none knows which model produced the values.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np


@dataclass
class Claim:
    """One row of the report."""

    id: str
    statement: str
    statistic: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n_seeds: int
    rule: str
    verdict: str  # "supported" | "not supported" | "inconclusive"


def boot(values, stat=np.mean, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Statistic and percentile-bootstrap 95% CI over seeds (nan entries dropped)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (math.nan, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    draws = np.array([stat(v[rng.integers(0, v.size, v.size)]) for _ in range(n_boot)])
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return float(stat(v)), float(lo), float(hi)


def boot_diff(x, y, stat=np.mean, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """stat(x) − stat(y) for independent seed samples, with a percentile-bootstrap 95% CI."""
    x, y = (np.asarray(v, dtype=float) for v in (x, y))
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if x.size == 0 or y.size == 0:
        return (math.nan, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    draws = [stat(x[rng.integers(0, x.size, x.size)]) - stat(y[rng.integers(0, y.size, y.size)]) for _ in range(n_boot)]
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return float(stat(x) - stat(y)), float(lo), float(hi)


def verdict(yes: bool, no: bool) -> str:
    return "supported" if yes else ("not supported" if no else "inconclusive")


def claim(id, statement, statistic, vci, n, rule, yes, no) -> Claim:
    v, lo, hi = vci
    clean = lambda x: None if x is None or not math.isfinite(x) else round(x, 4)  # noqa: E731
    return Claim(id, statement, statistic, clean(v), clean(lo), clean(hi), int(n), rule, verdict(bool(yes), bool(no)))


def sign_flip_p(log_ratios: np.ndarray) -> float:
    """Exact two-sided sign-flip test of mean log ratio = 0 (paired, symmetric null)."""
    n = len(log_ratios)
    if n == 0:
        return float("nan")
    obs = abs(log_ratios.mean())
    if n <= 16:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    else:  # Monte Carlo beyond 65,536 sign patterns
        signs = np.random.default_rng(0).choice([1.0, -1.0], size=(100_000, n))
    stats = np.abs((signs * log_ratios).mean(1))
    return float((stats >= obs - 1e-12).mean())


def paired_speedup(base: list[float], var: list[float], n_boot: int = 10_000, seed: int = 0) -> dict:
    """Geometric-mean speedup base/var over paired seeds, percentile bootstrap 95% CI, sign-flip p."""
    logr = np.log(np.asarray(base, float)) - np.log(np.asarray(var, float))
    if len(logr) == 0:
        return {"speedup": None, "ci95": [None, None], "p_value": None, "per_seed": []}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(logr), size=(n_boot, len(logr)))
    boot = np.exp(logr[idx].mean(1))
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {
        "speedup": float(np.exp(logr.mean())),
        "ci95": [float(lo), float(hi)],
        "p_value": sign_flip_p(logr),
        "per_seed": [float(r) for r in np.exp(logr)],
    }


def null_summary(observed: float, draws) -> dict:
    """Null distribution summary with the one-sided p-value (1 + #{null ≥ observed}) / (1 + draws)."""
    d = np.asarray(draws, dtype=float)
    if d.size == 0:
        return {"draws": 0, "mean": None, "q05": None, "q95": None, "p_value": None}
    return {
        "draws": int(d.size),
        "mean": float(d.mean()),
        "q05": float(np.quantile(d, 0.05)),
        "q95": float(np.quantile(d, 0.95)),
        "p_value": float((1 + (d >= observed).sum()) / (1 + d.size)),
    }
