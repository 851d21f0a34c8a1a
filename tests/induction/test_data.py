"""bumps.induction.data: every sequence has its repeats where it says, batches are seeded, sizes are checked."""

from __future__ import annotations

import pytest
import torch

from bumps.errors import BumpsError
from bumps.induction.data import Layout, fixed_sets, induction_queries, make_batch, repeat_starts, step_generator


@pytest.mark.parametrize("placement", ["consecutive", "end", "gaps"])
def test_every_sequence_has_its_repeats_where_starts_say(placement):
    lay = Layout(placement=placement)
    tokens, starts = make_batch(500, lay, step_generator(3, 7))
    assert tokens.shape == (500, 85) and starts.shape == (500, 3)
    assert tokens.min() >= 0 and tokens.max() < 128
    gaps = torch.diff(starts, dim=1)
    assert (gaps >= lay.sub_len).all() and (starts[:, 0] >= 0).all() and (starts[:, -1] <= 85 - 16).all()
    for b in range(500):
        rep = [tokens[b, s : s + 16] for s in starts[b].tolist()]
        assert torch.equal(rep[0], rep[1]) and torch.equal(rep[1], rep[2])
    # the repeats are not the filler: a random 16-token window elsewhere almost never repeats
    first = tokens[torch.arange(500), starts[:, 0]]
    assert (first == tokens[torch.arange(500), starts[:, 1]]).all()


def test_gap_split_is_uniform_over_compositions():
    # 2 filler tokens in 4 gaps: C(5, 3) = 10 splits
    lay = Layout(n_ctx=8, vocab=5, sub_len=2, n_repeats=3, placement="gaps")
    starts = repeat_starts(20000, lay, torch.Generator().manual_seed(0))
    counts = torch.unique(starts, dim=0, return_counts=True)[1]
    assert len(counts) == 10
    assert (counts.double() / 20000 - 0.1).abs().max() < 0.015
    assert (starts[:, 1] - starts[:, 0] >= 2).all() and (starts[:, 2] <= 6).all()


def test_consecutive_repeats_start_uniformly_and_end_repeats_never_move():
    lay = Layout(n_ctx=8, vocab=5, sub_len=2, n_repeats=3)  # 2 filler tokens: the first repeat starts at 0, 1 or 2
    starts = repeat_starts(30000, lay, torch.Generator().manual_seed(0))
    assert (torch.diff(starts, dim=1) == 2).all()
    counts = torch.bincount(starts[:, 0], minlength=3)
    assert len(counts) == 3 and (counts.double() / 30000 - 1 / 3).abs().max() < 0.015
    end = repeat_starts(5, Layout(placement="end"), torch.Generator().manual_seed(0))
    assert end.tolist() == [[37, 53, 69]] * 5


def test_induction_queries_point_at_the_token_after_the_previous_occurrence():
    tokens, starts = make_batch(64, Layout(), step_generator(0, 0))
    query, source = induction_queries(starts, 16)
    assert query.shape == (64, 30) and (source <= query).all()
    rows = torch.arange(64)[:, None]
    assert torch.equal(tokens[rows, query + 1], tokens[rows, source])  # the next token is the source token
    assert torch.equal(tokens[rows, query], tokens[rows, source - 1])  # the query token occurred just before
    assert query.max() <= 83


def test_batches_and_sets_are_functions_of_their_seeds():
    a, b = make_batch(4, Layout(), step_generator(1, 5)), make_batch(4, Layout(), step_generator(1, 5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], make_batch(4, Layout(), step_generator(1, 6))[0])
    (tr, _), (te, _) = fixed_sets(Layout(), 10, 6, 0)
    assert tr.shape == (10, 85) and te.shape == (6, 85) and not torch.equal(tr[:6], te)
    assert torch.equal(tr, fixed_sets(Layout(), 10, 6, 0)[0][0])


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        (Layout(sub_len=29), "longer than 1/3 of the context 85"),
        (Layout(n_ctx=0), "`n_ctx` must be a positive integer"),
        (Layout(vocab=-1), "`vocab` must be a positive integer"),
        (Layout(n_repeats=1), "must be >= 2"),
        (Layout(placement="random"), "`placement` must be one of end, consecutive, gaps"),
    ],
)
def test_bad_layouts_are_refused(layout, message):
    with pytest.raises(BumpsError, match=message):
        layout.validate()
    assert Layout(sub_len=28).validate().n_filler == 1


def test_bad_set_sizes_are_refused():
    with pytest.raises(BumpsError, match="must be positive integers"):
        fixed_sets(Layout(), 0, 5, 0)
