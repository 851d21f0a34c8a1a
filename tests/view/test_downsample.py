"""bumps.view.downsample: the min/max envelope keeps real samples, every bucket's extremes, both ends."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bumps.view.downsample import envelope_indices


def test_short_curves_are_kept_whole():
    assert envelope_indices(np.arange(10.0), 4).tolist() == list(range(10))


@settings(max_examples=25, deadline=None)
@given(st.integers(30, 1500), st.integers(1, 30), st.integers(0, 2**31))
def test_every_bucket_keeps_its_min_and_max(n, buckets, seed):
    x = np.random.default_rng(seed).standard_normal((n, 2)).cumsum(0)
    idx = envelope_indices(x, buckets)
    assert idx[0] == 0 and idx[-1] == n - 1
    assert np.all(np.diff(idx) > 0)
    assert len(idx) <= 2 * buckets * 2 + 2 or n <= 2 * buckets + 2
    edges = np.linspace(0, n, buckets + 1).round().astype(int)
    if n > 2 * buckets + 2:
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            for j in range(2):
                seg = x[a:b, j]
                kept = x[idx[(idx >= a) & (idx < b)], j]
                assert seg.min() in kept and seg.max() in kept


def test_a_single_spike_survives():
    x = np.zeros(100_000)
    x[54_321] = 7.0
    idx = envelope_indices(x, 100)
    assert 54_321 in idx and len(idx) <= 202


def test_nan_is_ignored_within_a_bucket():
    x = np.arange(1000.0)
    x[::2] = np.nan
    idx = envelope_indices(x, 10)
    assert not np.isnan(x[idx[1:-1]]).any()


@pytest.mark.parametrize("bad", [0, -3])
def test_bad_buckets(bad):
    with pytest.raises(ValueError, match="buckets"):
        envelope_indices(np.arange(10.0), bad)


def test_bad_shape():
    with pytest.raises(ValueError, match=r"\[T\] or \[T, L\]"):
        envelope_indices(np.zeros((4, 2, 2)), 2)
