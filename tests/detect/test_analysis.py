"""The correlational competition test's null distribution (other seeds, time shifts) and p-value."""

import numpy as np

from bumps.detect.analysis import SERIES, Source, analyze
from bumps.stats import null_summary

T = np.linspace(0, 1, 300)


def sig(center, rate=25.0):
    return 1 / (1 + np.exp(-rate * (T - center)))


def seeds_with_story(n, delays):
    """[T, n, targets=2, units=3]: in seed i unit 0 bumps on target 0 around delays[i]."""
    x = np.zeros((T.size, n, 2, 3))
    for i, d in enumerate(delays):
        x[:, i, 0, 0] = 0.6 * sig(0.1 + d) * (1 - sig(0.3 + d))
        x[:, i, 0, 1] = sig(0.2 + d, 20)
        x[:, i, 1, 0] = sig(0.35 + d)
        x[:, i, 1, 2] = 0.05 * T
    return x


def _null(x):
    spec = SERIES["lowrank"][0]
    return analyze(Source([(spec, x)], np.arange(T.size), None))["summary"]["inner_a"]


def test_timed_competition_beats_both_nulls():
    delays = np.linspace(0, 0.5, 20)
    s = _null(seeds_with_story(20, delays))
    null = s["competition_null"]
    assert null["observed"] == 20
    assert null["other_seeds"]["draws"] == 19 and null["other_seeds"]["p_value"] <= 0.05
    assert null["time_shifts"]["p_value"] <= 1 / 17 + 1e-12
    assert null["other_seeds"]["mean"] < 10


def test_control_identical_seeds_are_not_significant_against_other_seeds():
    s = _null(seeds_with_story(20, np.zeros(20)))
    null = s["competition_null"]
    assert null["observed"] == 20
    assert null["other_seeds"]["p_value"] == 1.0  # every other seed "explains" it as well


def test_null_summary_p_value():
    assert null_summary(5, [1, 2, 5, 9])["p_value"] == (1 + 2) / 5
    assert null_summary(5, [])["p_value"] is None


def test_no_null_draws_gives_no_chance_baseline():
    from bumps.lowrank.model import LowRankConfig, simulate

    run = simulate(LowRankConfig(rank=2, dim=10, seeds=3, steps=200, record_every=5))
    source = Source([(SERIES["lowrank"][0], run["inner_a"].numpy())], run["step"].numpy(), None)
    summary = analyze(source, null_draws=0)["summary"]["inner_a"]
    assert summary["explained_by_chance_baseline"] is None
