"""Small-sample intervals: exact answers, and coverage by simulation at n = 3, 5, 10, 50."""

from __future__ import annotations

import numpy as np
import pytest

from bumps.stats import boot, clopper_pearson, ratio_interval, t_interval

NS = (3, 5, 10, 50)


def test_clopper_pearson_known_values():
    # 5 of 5: the lower bound is (alpha/2) ** (1/n) = 0.025 ** 0.2
    assert clopper_pearson(5, 5) == pytest.approx((1.0, 0.025**0.2, 1.0))
    assert clopper_pearson(0, 5)[1:] == pytest.approx((0.0, 1 - 0.025**0.2))
    value, lo, hi = clopper_pearson(3, 10)
    assert value == 0.3 and lo == pytest.approx(0.06673, abs=1e-4) and hi == pytest.approx(0.65245, abs=1e-4)


@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("p", (0.1, 0.5, 0.9))
def test_clopper_pearson_covers_at_least_nominal(n, p):
    k = np.random.default_rng(n).binomial(n, p, size=4000)
    covers = {x: clopper_pearson(x, n)[1] <= p <= clopper_pearson(x, n)[2] for x in range(n + 1)}  # per count
    cover = np.mean([covers[int(x)] for x in k])
    assert cover >= 0.93, cover


@pytest.mark.parametrize("n", NS)
def test_t_interval_on_log_ratios_covers_the_true_speedup(n):
    rng = np.random.default_rng(100 + n)
    true = 3.0  # log-normal per-seed ratios around a geometric-mean speedup of 3
    hits = 0
    for _ in range(1500):
        base = rng.lognormal(9.0, 0.2, n)
        var = base / (true * rng.lognormal(0.0, 0.25, n))
        _, lo, hi = ratio_interval(base, var)
        hits += lo <= true <= hi
    assert hits / 1500 >= 0.93, hits / 1500


def test_percentile_bootstrap_over_three_values_undercovers():
    """Why the t interval: the percentile bootstrap of 3 normal values covers the mean far below 95 %."""
    rng = np.random.default_rng(7)
    hits = sum(lo <= 0 <= hi for _, lo, hi in (boot(rng.standard_normal(3), n_boot=400, seed=s) for s in range(600)))
    assert hits / 600 < 0.85


def test_t_interval_matches_the_textbook_formula_and_refuses_too_few_values():
    x = np.array([1.0, 2.0, 4.0])
    mean, lo, hi = t_interval(x)
    half = 4.302652729911275 * x.std(ddof=1) / np.sqrt(3)  # t(0.975, 2)
    assert (mean, lo, hi) == pytest.approx((7 / 3, 7 / 3 - half, 7 / 3 + half))
    with pytest.raises(ValueError):
        t_interval([1.0])
    with pytest.raises(ValueError):
        ratio_interval([1.0, 2.0], [1.0, -2.0])
    with pytest.raises(ValueError):
        clopper_pearson(6, 5)
