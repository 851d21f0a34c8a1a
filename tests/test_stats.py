"""bumps.stats: bootstrap CIs, intervals that fit the sample size (checked by coverage simulation), and verdict
rules as data (Rule writes the prose and decides the verdict)."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bumps.stats import (
    PERCENTILE_MIN_N,
    STAT,
    Claim,
    ClaimSpec,
    Clause,
    Condition,
    Rule,
    above,
    below,
    boot,
    boot_diff,
    diff_interval,
    judge,
    mean_interval,
    paired_interval,
    proportion_interval,
    t_interval,
    verdict,
)

NAN = math.nan
# thresholds and values on and around them, so boundaries are hit often
EDGES = [-1.0, -0.5, 0.0, 0.1, 0.3, 0.5, 0.9, 1.0, 2.0]
num = st.one_of(st.sampled_from(EDGES), st.floats(-3, 3, allow_nan=False))
num_or_nan = st.one_of(num, st.just(NAN))
triple = st.tuples(num_or_nan, num_or_nan, num_or_nan)


def test_bootstrap_cis():
    v, lo, hi = boot(np.r_[np.zeros(50), np.ones(50)])
    assert v == 0.5 and 0.35 < lo < 0.5 < hi < 0.65
    d, lo, hi = boot_diff(np.ones(30), np.zeros(30))
    assert d == lo == hi == 1


def test_bootstrap_of_nothing_is_nan():
    assert all(math.isnan(x) for x in boot([NAN, math.inf]))
    assert all(math.isnan(x) for x in boot_diff([], [1.0]))


# ---------------------------------------------------------------------------
# Rule: describe


def test_describe_simple_rule():
    assert Rule(above(0.5), below(0.5)).describe() == "supported if CI low > 0.5; not supported if CI high < 0.5"
    assert (
        Rule(above(0), below(0, strict=False), note="events left out").describe()
        == "supported if CI low > 0; not supported if CI high <= 0 (events left out)"
    )
    assert (
        Rule(above(0.99, note="a straight line"), below(0.9)).describe()
        == "supported if CI low > 0.99 (a straight line); not supported if CI high < 0.9"
    )


def test_describe_names_combinations_and_references():
    r = Rule(
        Condition((Clause(STAT, "low", ">", 0), Clause("full", "high", "<", 0.1)), note="no plateau"),
        Condition((Clause(STAT, "high", "<", 0), Clause("full", "low", ">", 0.3)), "any"),
        names={STAT: "the difference", "full": "full rank"},
    )
    assert r.describe() == (
        "supported if the difference's CI low > 0 and full rank's CI high < 0.1 (no plateau); "
        "not supported if the difference's CI high < 0 or full rank's CI low > 0.3"
    )
    assert r.stats() == {STAT, "full"}
    ref = Clause("a", "high", "<", ("b", "low"))
    assert ref.describe({"a": "the competitor"}) == "the competitor's CI high < b's CI low"
    assert Clause(STAT, "value", "==", 1).describe({STAT: "the fraction"}) == "the fraction == 1"
    assert Clause(STAT, "value", "==", 1).describe({}) == "value == 1"


def test_describe_merges_within_and_contains():
    within = Condition((Clause(STAT, "low", ">=", 0.15), Clause(STAT, "high", "<=", 0.95)))
    assert within.describe({}) == "CI within [0.15, 0.95]"
    contains = Condition((Clause("d", "low", "<=", 0), Clause("d", "high", ">=", 0)))
    assert contains.describe({"d": "the difference"}) == "the difference's CI contains 0"
    # not merged under "any", or when the pair does not state an interval
    assert (
        Condition((Clause(STAT, "low", ">=", 0.15), Clause(STAT, "high", "<=", 0.95)), "any").describe({})
        == "CI low >= 0.15 or CI high <= 0.95"
    )
    assert (
        Condition((Clause(STAT, "low", ">", 0.15), Clause(STAT, "high", "<=", 0.95))).describe({})
        == "CI low > 0.15 and CI high <= 0.95"
    )


# ---------------------------------------------------------------------------
# Rule: decide


def test_decide_three_outcomes():
    r = Rule(above(0.5), below(0.3))
    assert r.decide((0.7, 0.6, 0.8)) == "supported"
    assert r.decide({STAT: (0.2, 0.1, 0.25)}) == "not supported"
    assert r.decide((0.4, 0.2, 0.6)) == "inconclusive"


def test_boundaries_are_strict_unless_stated():
    r = Rule(above(0.5), below(0.3))
    assert r.decide((0.5, 0.5, 0.6)) == "inconclusive"  # CI low == 0.5 is not > 0.5
    assert r.decide((0.3, 0.2, 0.3)) == "inconclusive"  # CI high == 0.3 is not < 0.3
    r = Rule(above(0.5, strict=False), below(0.3, strict=False))
    assert r.decide((0.5, 0.5, 0.6)) == "supported"
    assert r.decide((0.3, 0.2, 0.3)) == "not supported"
    eq = Rule(Condition((Clause(STAT, "value", "==", 1),)), Condition((Clause(STAT, "value", "<", 0.5),)))
    assert [eq.decide((v, NAN, NAN)) for v in (1.0, 0.75, 0.5, 0.25)] == [
        "supported",
        "inconclusive",
        "inconclusive",
        "not supported",
    ]


def test_nan_and_none_fail_every_comparison():
    r = Rule(above(0.5), below(0.5))
    assert r.decide((NAN, NAN, NAN)) == "inconclusive"
    assert r.decide((None, None, None)) == "inconclusive"
    ref = Rule(Condition((Clause("a", "high", "<", ("b", "low")),)), below(0, stat="a"))
    assert ref.decide({"a": (1, 1, 2), "b": (NAN, NAN, NAN)}) == "inconclusive"


def test_reference_threshold_compares_two_statistics():
    r = Rule(Condition((Clause("a", "high", "<", ("b", "low")),)), Condition((Clause("a", "low", ">", ("b", "high")),)))
    assert r.decide({"a": (0.1, 0.0, 0.3), "b": (0.8, 0.6, 0.9)}) == "supported"
    assert r.decide({"a": (0.1, 0.0, 0.6), "b": (0.8, 0.6, 0.9)}) == "inconclusive"  # touching: not below
    assert r.decide({"a": (0.95, 0.91, 1.0), "b": (0.8, 0.6, 0.9)}) == "not supported"
    assert r.stats() == {"a", "b"}


def test_supported_wins_when_both_conditions_hold():
    r = Rule(above(0), above(0))
    assert r.decide((1, 1, 1)) == "supported" == verdict(True, True)


def test_missing_statistic_and_bad_clauses_are_refused():
    r = Rule(Condition((Clause(STAT, "low", ">", 0), Clause("full", "high", "<", 0.1))), below(0))
    with pytest.raises(KeyError, match="full"):
        r.decide((1, 1, 1))
    with pytest.raises(ValueError, match="bound"):
        Clause(STAT, "mid", ">", 0)
    with pytest.raises(ValueError, match="op"):
        Clause(STAT, "low", "!=", 0)
    with pytest.raises(ValueError, match="threshold"):
        Clause(STAT, "low", ">", "0.5")
    with pytest.raises(ValueError, match="reference"):
        Clause(STAT, "low", ">", ("b", "mid"))
    with pytest.raises(ValueError, match="at least one"):
        Condition(())
    with pytest.raises(ValueError, match="combine"):
        Condition((Clause(STAT, "low", ">", 0),), "most")


def test_rules_are_frozen_and_hashable():
    r = Rule(above(0.5), below(0.5), names={STAT: "x"})
    with pytest.raises(AttributeError):
        r.note = "changed"
    assert hash(r) == hash(Rule(above(0.5), below(0.5), names={STAT: "x"}))
    assert r == Rule(above(0.5), below(0.5), names={STAT: "x"})


@given(t=num, u=num, v=triple)
def test_above_below_match_the_explicit_comparisons(t, u, v):
    expect = "supported" if v[1] > t else ("not supported" if v[2] < u else "inconclusive")
    assert Rule(above(t), below(u)).decide(v) == expect
    expect = "supported" if v[1] >= t else ("not supported" if v[2] <= u else "inconclusive")
    assert Rule(above(t, strict=False), below(u, strict=False)).decide(v) == expect


@given(
    clauses=st.lists(
        st.tuples(
            st.sampled_from(["a", "b"]),
            st.sampled_from(["value", "low", "high"]),
            st.sampled_from([">", ">=", "<", "<=", "=="]),
            num,
        ),
        min_size=1,
        max_size=4,
    ),
    combine=st.sampled_from(["all", "any"]),
    a=triple,
    b=triple,
)
def test_condition_combines_its_clauses(clauses, combine, a, b):
    ops = {
        ">": lambda x, y: x > y,
        ">=": lambda x, y: x >= y,
        "<": lambda x, y: x < y,
        "<=": lambda x, y: x <= y,
        "==": lambda x, y: x == y,
    }
    values = {"a": a, "b": b}
    idx = {"value": 0, "low": 1, "high": 2}
    expect = [ops[op](values[s][idx[bound]], t) for s, bound, op, t in clauses]
    cond = Condition(tuple(Clause(*c) for c in clauses), combine)
    assert cond.holds(values) == (all(expect) if combine == "all" else any(expect))
    text = cond.describe({"a": "A", "b": "B"})
    assert text.count(" and " if combine == "all" else " or ") <= len(clauses) - 1
    assert ("A" in text) == any(c[0] == "a" for c in clauses)


def test_judge_rounds_the_row_and_takes_text_and_verdict_from_the_rule():
    rule = Rule(above(0.5), below(0.5))
    row = judge("X", "a claim", "a statistic", (0.123456, 0.51, NAN), 7, rule)
    assert row == Claim("X", "a claim", "a statistic", 0.1235, 0.51, None, 7, rule.describe(), "supported")
    spec = ClaimSpec("a claim", rule, "a statistic")
    assert spec.judge("X", (0.123456, 0.51, NAN), 7) == row
    assert spec.judge("X", {STAT: (0.5, 0.4, 0.45)}, 3, "other").statistic == "other"
    # the verdict uses the unrounded value: 0.50004 > 0.5 although it is stored as 0.5
    assert judge("X", "", "", (0.5, 0.50004, 0.6), 1, rule).verdict == "supported"


# ---------------------------------------------------------------------------
# Intervals that fit the sample size: coverage by simulation (fixed seeds, so deterministic)

NS = sorted({3, 5, 10, 50, PERCENTILE_MIN_N})  # always includes the first size that gets the bootstrap


def _reps(n: int) -> int:
    # t intervals are exact for normal data, so 1500 replicates (SE 0.6 %) test the 93 % bar with room;
    # the bootstrap's coverage sits nearer the bar (about 94 %), so it gets more (SE 0.4 %)
    return 1500 if n < PERCENTILE_MIN_N else 3000


def _coverage(intervals, truth: float) -> float:
    return float(np.mean([lo <= truth <= hi for _, lo, hi in intervals]))


@pytest.mark.parametrize("n", NS)
def test_mean_interval_covers_normal_means(n):
    x = np.random.default_rng(1000 + n).normal(1.5, 2.0, size=(_reps(n), n))
    cover = _coverage((mean_interval(row) for row in x), 1.5)
    assert cover >= 0.93, cover


def test_mean_interval_covers_an_exponential_mean_at_50():
    """Skewed values at n = 50 only (skewness 2; the t interval, as 50 < PERCENTILE_MIN_N): at small n
    the t interval assumes near-normal values and undercovers skewed ones (about 88 % for exponential
    values at n = 3 to 10), which is stated in mean_interval's docstring rather than tested away."""
    x = np.random.default_rng(2050).exponential(1.0, size=(6000, 50))  # cheap t calls: SE 0.3 %
    cover = _coverage((mean_interval(row) for row in x), 1.0)
    assert cover >= 0.93, cover


def test_mean_interval_bootstrap_on_skewed_values_sits_at_the_bar():
    """At PERCENTILE_MIN_N the bootstrap covers exponential means about 93 % of the time (12,000
    replicates: 93.0 %), on the bar itself, so this checks the documented "about 93 %" as >= 92 %; the
    normal-value check at the same n holds it to 93 %."""
    n = PERCENTILE_MIN_N
    x = np.random.default_rng(2000 + n).exponential(1.0, size=(_reps(n), n))
    cover = _coverage((mean_interval(row) for row in x), 1.0)
    assert cover >= 0.92, cover


@pytest.mark.parametrize("n", NS)
def test_paired_interval_covers_correlated_normal_pairs(n):
    rng = np.random.default_rng(3000 + n)
    unit = rng.normal(0.0, 3.0, size=(_reps(n), n))  # shared by both arms: corr(x, y) = 0.9
    x = unit + 0.7 + rng.standard_normal(unit.shape)
    y = unit + rng.standard_normal(unit.shape)
    cover = _coverage((paired_interval(a, b) for a, b in zip(x, y, strict=True)), 0.7)
    assert cover >= 0.93, cover


@pytest.mark.parametrize("nx, ny", [(n, n) for n in NS] + [(3, 10), (5, 50)])
def test_diff_interval_covers_differences_of_unequal_variance_normals(nx, ny):
    rng = np.random.default_rng(4000 + 100 * nx + ny)
    reps = _reps(min(nx, ny))
    x = rng.normal(1.0, 1.0, size=(reps, nx))
    y = rng.normal(0.0, 2.0, size=(reps, ny))
    cover = _coverage((diff_interval(a, b) for a, b in zip(x, y, strict=True)), 1.0)
    assert cover >= 0.93, cover


@pytest.mark.parametrize("n", (3, 5, 10, 50))
@pytest.mark.parametrize("p", (0.1, 0.5, 0.9))
def test_proportion_interval_covers_at_least_nominal(n, p):
    """Exact coverage (no simulation noise): the interval depends on the flags only through the count
    (tested below), so coverage is the binomial probability of the counts whose interval holds p."""
    from scipy.stats import binom

    hits = [
        (lambda v: v[1] <= p <= v[2])(proportion_interval(np.r_[np.ones(k), np.zeros(n - k)])) for k in range(n + 1)
    ]
    cover = float(binom.pmf(np.arange(n + 1), n, p) @ np.array(hits, dtype=float))
    assert cover >= 0.95, cover


def test_percentile_bootstrap_undercovers_at_three_values_where_mean_interval_does_not():
    """Why small samples get a t interval: boot's interval lies inside the three values' range."""
    x = np.random.default_rng(7).standard_normal((500, 3))
    assert _coverage((boot(row, n_boot=100, seed=i) for i, row in enumerate(x)), 0.0) < 0.85
    assert _coverage((mean_interval(row) for row in x), 0.0) >= 0.93


# ---------------------------------------------------------------------------
# Intervals that fit the sample size: which interval, exact values and edge cases


def test_mean_interval_is_t_below_the_threshold_and_boot_at_it():
    rng = np.random.default_rng(0)
    small, large = rng.standard_normal(PERCENTILE_MIN_N - 1), rng.standard_normal(PERCENTILE_MIN_N)
    assert mean_interval(small) == pytest.approx(t_interval(small))
    assert mean_interval(large) == pytest.approx(boot(large), rel=1e-12)
    assert mean_interval(large, seed=3) == pytest.approx(boot(large, seed=3), rel=1e-12)
    # the level reaches both branches: a 90 % interval lies inside the 95 % one
    for v in (small, large):
        _, lo95, hi95 = mean_interval(v)
        _, lo90, hi90 = mean_interval(v, 0.9)
        assert lo95 < lo90 < hi90 < hi95


def test_mean_interval_edges():
    assert all(math.isnan(v) for v in mean_interval([]))
    assert all(math.isnan(v) for v in mean_interval([NAN, math.inf]))
    value, lo, hi = mean_interval([2.5, NAN])  # one value left: no spread to measure
    assert value == 2.5 and math.isnan(lo) and math.isnan(hi)
    assert mean_interval([1.0, 2.0, NAN, 4.0]) == pytest.approx(t_interval([1.0, 2.0, 4.0]))
    assert mean_interval(np.full(PERCENTILE_MIN_N, 3.0)) == (3.0, 3.0, 3.0)
    with pytest.raises(ValueError, match="level"):
        mean_interval([1.0, 2.0], 1.0)


def test_proportion_interval_five_of_five_is_exact():
    value, lo, hi = proportion_interval([1, 1, 1, 1, 1])
    assert value == 1.0 and hi == 1.0
    assert round(lo, 3) == 0.478 and lo == pytest.approx(0.025 ** (1 / 5))


def test_proportion_interval_depends_on_the_count_only_and_refuses_non_flags():
    a = proportion_interval([1, 0, 0, 1, 0, 0, 0])
    assert proportion_interval([0, 0, 0, 0, 0, 1, 1]) == a
    assert proportion_interval(np.array([True, False, False, True, False, False, False])) == a
    assert proportion_interval([1, 0, NAN, 0, 1, 0, 0, 0]) == a  # nan: a unit not measured
    assert a[0] == 2 / 7 and a[1] < 2 / 7 < a[2]
    assert all(math.isnan(v) for v in proportion_interval([]))
    assert all(math.isnan(v) for v in proportion_interval([NAN]))
    with pytest.raises(ValueError, match="0 or 1"):
        proportion_interval([1, 0, 2])
    with pytest.raises(ValueError, match="level"):
        proportion_interval([1, 0], 0.0)


def test_diff_interval_is_welch_below_the_threshold_and_bootstrap_at_it():
    from scipy.stats import ttest_ind

    rng = np.random.default_rng(1)
    x, y = rng.normal(1.0, 1.0, 8), rng.normal(0.0, 3.0, 5)
    ci = ttest_ind(x, y, equal_var=False).confidence_interval()
    assert diff_interval(x, y) == pytest.approx((x.mean() - y.mean(), ci.low, ci.high))
    # one sample under the threshold is enough for Welch
    big = rng.standard_normal(PERCENTILE_MIN_N + 10)
    ci = ttest_ind(big, y, equal_var=False).confidence_interval(0.9)
    assert diff_interval(big, y, 0.9) == pytest.approx((big.mean() - y.mean(), ci.low, ci.high))
    # both at the threshold: boot_diff's scheme, with other draws of the same resampling
    x, y = rng.normal(1.0, 1.0, PERCENTILE_MIN_N), rng.normal(0.0, 2.0, PERCENTILE_MIN_N)
    d, lo, hi = diff_interval(x, y)
    bd, blo, bhi = boot_diff(x, y)
    assert d == pytest.approx(bd) and lo == pytest.approx(blo, abs=0.05) and hi == pytest.approx(bhi, abs=0.05)
    assert lo != pytest.approx(ttest_ind(x, y, equal_var=False).confidence_interval().low, abs=1e-6)


def test_diff_interval_edges():
    assert all(math.isnan(v) for v in diff_interval([], [1.0, 2.0]))
    assert all(math.isnan(v) for v in diff_interval([1.0, 2.0], [NAN]))
    d, lo, hi = diff_interval([3.0], [1.0, 2.0])
    assert d == 1.5 and math.isnan(lo) and math.isnan(hi)
    assert diff_interval([2.0, 2.0, 2.0], [1.0, 1.0]) == (1.0, 1.0, 1.0)
    assert diff_interval(np.ones(PERCENTILE_MIN_N), np.zeros(PERCENTILE_MIN_N)) == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="level"):
        diff_interval([1.0, 2.0], [1.0, 2.0], 1.5)


def test_paired_interval_is_the_interval_of_the_differences():
    rng = np.random.default_rng(2)
    for n in (PERCENTILE_MIN_N - 1, PERCENTILE_MIN_N):
        x, y = rng.standard_normal(n), rng.standard_normal(n)
        assert paired_interval(x, y) == pytest.approx(mean_interval(x - y), rel=1e-12)
    x, y = rng.standard_normal(4), rng.standard_normal(4)
    assert paired_interval(x, y) == pytest.approx(t_interval(x - y))
    assert paired_interval(np.r_[x, NAN], np.r_[y, 1.0]) == pytest.approx(t_interval(x - y))  # pair dropped


@pytest.mark.parametrize("n", (5, PERCENTILE_MIN_N))
def test_paired_interval_keeps_the_pairing(n):
    """Resampling pairs together keeps their correlation: with a large shared unit effect the paired
    interval is far narrower than the interval that treats the arms as independent."""
    rng = np.random.default_rng(3)
    unit = rng.normal(0.0, 10.0, n)
    x, y = unit + 1.0 + 0.1 * rng.standard_normal(n), unit + 0.1 * rng.standard_normal(n)
    _, plo, phi = paired_interval(x, y)
    _, dlo, dhi = diff_interval(x, y)
    assert plo > 0.5 and phi < 1.5  # the true difference is 1; the arms' spread is 10
    assert (phi - plo) < 0.1 * (dhi - dlo)


def test_paired_interval_edges():
    assert all(math.isnan(v) for v in paired_interval([], []))
    d, lo, hi = paired_interval([3.0], [1.0])
    assert d == 2.0 and math.isnan(lo) and math.isnan(hi)
    with pytest.raises(ValueError, match="differ in length"):
        paired_interval([1.0, 2.0, 3.0], [1.0, 2.0])
