"""Event kinds (bump, spike, phase change), scales and the noise model, on curves with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit

from bumps.detect import synthetic
from bumps.detect.events import FLOAT32_EPS, EventParams, find_events
from bumps.detect.noise import auto_window, local_sigma, noisy_columns, smooth, smoothed_sigma, white_ratio
from bumps.detect.scale import choose_scale, to_scale
from bumps.errors import BumpsError

T = np.arange(2000, dtype=float)


def kinds(events):
    return [e.kind for e in events]


def staircase(centres=(600, 1400), sizes=(1.0, 0.8), rate=0.05):
    return 2.0 - sum(s * expit(rate * (T - c)) for c, s in zip(centres, sizes, strict=True))


def test_staircase_gives_one_phase_change_per_step_at_the_right_steps():
    found = find_events(staircase(), params=EventParams(scale="linear"))
    assert kinds(found) == ["phase_change", "phase_change"]
    for e, c in zip(found, (600, 1400), strict=True):
        assert abs(e.peak - c) <= 1  # steepest sample
        half = np.log(9) / 0.05  # 10 % and 90 % of a logistic of rate 0.05
        assert abs(e.start - (c - half)) <= 2 and abs(e.end - (c + half)) <= 2
        assert e.size < 0 and e.as_dict()["direction"] == "down"


def test_transient_bump_is_a_bump_not_two_phase_changes():
    x = 1.0 + 0.5 * np.exp(-0.5 * ((T - 1000) / 60) ** 2)
    found = find_events(x)
    assert kinds(found) == ["bump"]
    assert abs(found[0].peak - 1000) <= 1


def test_rise_then_fall_far_below_the_start_is_a_phase_change_with_a_bump_before():
    x = 2.0 + 0.3 * np.exp(-0.5 * ((T - 900) / 40) ** 2) - 2.4 * expit((T - 1050) / 15)
    found = find_events(x)
    assert kinds(found) == ["phase_change"]
    assert found[0].bump_before is True
    # the same rise and fall, back near its start: a bump, and no phase change
    y = 2.0 + 0.3 * np.exp(-0.5 * ((T - 900) / 40) ** 2)
    assert kinds(find_events(y)) == ["bump"]


def test_near_sets_how_far_below_its_start_a_bump_may_end():
    x = 1.0 + np.exp(-0.5 * ((T - 700) / 50) ** 2) - 0.6 * expit((T - 800) / 20)  # ends 0.6 rise below its start
    assert "bump" in kinds(find_events(x, params=EventParams(near=1.0)))
    assert "bump" not in kinds(find_events(x, params=EventParams(near=0.5)))


def test_exponential_and_power_law_decays_have_no_event():
    assert find_events(np.exp(-T / 300)) == []
    assert find_events((1 + T) ** -0.5) == []
    assert find_events(np.linspace(3, -2, 2000)) == []


def test_float32_slingshot_spikes_are_spikes_flagged_at_the_floor():
    y = np.where(T < 400, np.log10(4.7) - 7.5 * T / 400, np.log10(1.2e-7))
    spikes = (700, 1100, 1500)
    for s in spikes:
        y[s], y[s + 1] = -2.0, -5.0
    found = find_events(10**y)
    assert [(e.kind, e.peak, e.float32_floor) for e in found] == [("spike", s, True) for s in spikes]
    assert found[0].scale == "log"
    # away from the floor the same spikes are not flagged
    lifted = find_events(10 ** (y + 3))
    assert [e.float32_floor for e in lifted] == [False] * 3


def test_spike_width_is_the_longest_rise_of_a_spike():
    x = np.zeros(2000)
    x[1000:1020] = np.linspace(0.05, 1, 20)  # 25 % to 75 % of the rise in 10 samples, then holds and falls
    x[1020:1060] = 1.0
    assert kinds(find_events(x, params=EventParams(spike_width=9))) == ["bump"]
    assert kinds(find_events(x, params=EventParams(spike_width=10))) == ["spike"]
    box = np.zeros(2000)
    box[1000:1005] = 1.0  # an abrupt rise is a spike whatever its width
    assert kinds(find_events(box)) == ["spike"]


def test_kinds_filters_and_unknown_kinds_are_refused():
    x = staircase() + 0.5 * np.exp(-0.5 * ((T - 1000) / 40) ** 2)
    assert set(kinds(find_events(x, params=EventParams(kinds=("phase_change",))))) == {"phase_change"}
    with pytest.raises(BumpsError, match="unknown event kind"):
        find_events(x, params=EventParams(kinds=("bumps",)))


def test_log_scale_refuses_non_positive_values_naming_the_step():
    x = np.ones(50)
    x[7] = 0.0
    with pytest.raises(BumpsError, match=r"loss has 1 values <= 0 \(first at step 70"):
        find_events(x, step=np.arange(50) * 10, params=EventParams(scale="log"), name="loss")


def test_smoothing_window_longer_than_the_curve_is_refused():
    with pytest.raises(BumpsError, match="`smooth` is 300 samples but the curve has 200"):
        find_events(np.ones(200), params=EventParams(smooth=300))


def test_auto_scale_is_log_only_for_falling_positive_curves_spanning_two_decades():
    assert choose_scale(np.exp(-T / 100)[:, None], "auto") == "log"
    assert choose_scale(np.exp(-T / 1000)[:, None], "auto") == "linear"  # 0.87 decades
    assert choose_scale(1e-4 + expit((T - 1000) / 50)[:, None], "auto") == "linear"  # rises
    assert choose_scale(np.linspace(1, -1, 9)[:, None], "auto") == "linear"
    assert np.allclose(to_scale(np.array([10.0, 0.01]), "log"), [1, -2])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-50, 50), min_size=9, max_size=300), st.integers(-6, 6), st.integers(-1000, 1000))
def test_same_events_after_shift_and_positive_scale_on_the_linear_scale(values, log2_scale, shift):
    x = np.array(values, dtype=float)
    key = lambda es: [(e.kind, e.start, e.peak, e.end) for e in es]  # noqa: E731
    p = EventParams(scale="linear", smooth=0)
    assert key(find_events(x, params=p)) == key(find_events(x * 2.0**log2_scale + shift, params=p))
    p = EventParams(scale="linear", smooth=9)  # smoothing too: exact under a power-of-two scale
    assert key(find_events(x, params=p)) == key(find_events(x * 2.0**log2_scale, params=p))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(-8, 8))
def test_log_scale_is_the_linear_analysis_of_log10_and_so_blind_to_a_positive_factor(seed, decades):
    """Multiplying by 10**k adds k to log10(x): the same events, up to the rounding of log10.

    Exactly: the log scale analyses log10(x) as the linear scale would, and the linear analysis of a
    dyadic curve shifted by an integer (exact in floating point) gives the same events.
    """
    curve = synthetic.staircase(np.random.default_rng(seed), n=1500)
    key = lambda es: [(e.kind, e.start, e.peak, e.end) for e in es]  # noqa: E731
    on_log = find_events(curve.values, params=EventParams(scale="log"))
    assert key(on_log) == key(find_events(np.log10(curve.values), params=EventParams(scale="linear")))
    y = np.round(np.log10(curve.values) * 2**20) / 2**20  # dyadic: adding an integer is exact
    linear = EventParams(scale="linear")
    assert key(find_events(y, params=linear)) == key(find_events(y + decades, params=linear))


def test_noisy_staircases_give_their_phase_changes_and_nothing_else():
    rng = np.random.default_rng(3)
    hits = misses = extra = 0
    for noise in synthetic.NOISE_FAMILIES:
        for _ in range(5):
            c = synthetic.staircase(rng, noise=noise)
            found = [e for e in find_events(c.values) if e.kind == "phase_change"]
            truth = [lab.peak for lab in c.labels]
            matched = [any(abs(e.peak - t) <= 0.02 * len(c.values) for e in found) for t in truth]
            hits += sum(matched)
            misses += len(truth) - sum(matched)
            extra += len(found) - sum(matched)
            assert all(e.smooth > 1 for e in found)  # judged as noisy and smoothed
    assert misses <= 0.05 * (hits + misses) and extra <= 1, (hits, misses, extra)


@pytest.mark.parametrize("family", synthetic.PURE_NOISE)
def test_pure_noise_gives_at_most_one_false_event_per_10k_samples(family):
    rng = np.random.default_rng(11)
    n = sum(len(find_events(synthetic.pure_noise(rng, family, 10_000).values)) for _ in range(5))
    assert n <= 5, f"{n} false events in 50k samples of {family} noise"


def test_noise_helpers_measure_what_they_say():
    rng = np.random.default_rng(0)
    e = rng.standard_normal((40_000, 1))
    assert abs(local_sigma(e)[5000:-5000].mean() - 1) < 0.1
    w = 21
    s = smooth(e, w)
    assert abs(smoothed_sigma(s, w)[0] / s[w:-w].std() - 1) < 0.15
    assert abs(white_ratio(w) - s[w:-w].std()) < 0.02
    assert auto_window(100) == 5 and auto_window(4000) == 41 and auto_window(10**6) == 201
    clean = np.sin(T / 200)[:, None]
    assert not noisy_columns(clean)[0] and noisy_columns(clean + 0.01 * rng.standard_normal((2000, 1)))[0]


def test_labelled_benchmark_set_is_seeded_and_labels_lie_on_the_curve():
    a, b = synthetic.benchmark_set(seed=5), synthetic.benchmark_set(seed=5)
    assert all(np.array_equal(x.values, y.values) and x.labels == y.labels for x, y in zip(a, b, strict=True))
    for c in a:
        n = len(c.values)
        assert all(0 <= lab.start <= lab.peak <= lab.end < n for lab in c.labels)
        if c.family == "slingshot":
            assert all(c.values[lab.start - 1] < 10 * FLOAT32_EPS for lab in c.labels)


def test_knees_raise_recall_on_curves_that_fall_into_a_slow_decline_without_false_events():
    from bumps.detect.synthetic import knee

    rng = np.random.default_rng(0)
    curves = [knee(rng) for _ in range(40)]
    hits = {}
    for flag in (False, True):
        found = [
            [e for e in find_events(c.values, params=EventParams(knee=flag)) if e.kind == "phase_change"]
            for c in curves
        ]
        hits[flag] = sum(
            any(abs(e.peak - c.labels[0].peak) <= 200 for e in f) for f, c in zip(found, curves, strict=True)
        )
    assert hits[True] >= 36 and hits[False] <= 32, hits  # measured: 36 and 31 of 40
    staircases = [synthetic.staircase(np.random.default_rng(s)) for s in range(10)]  # two-plateau curves: unchanged
    for c in staircases:
        same = [(e.kind, e.peak) for e in find_events(c.values, params=EventParams(knee=False))]
        assert [(e.kind, e.peak) for e in find_events(c.values)] == same
