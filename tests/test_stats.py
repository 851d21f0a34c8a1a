"""bumps.stats: bootstrap CIs and verdict rules as data (Rule writes the prose and decides the verdict)."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bumps.stats import (
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
    judge,
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
