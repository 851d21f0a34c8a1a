"""The copying rule: hand-computed sequences, and its loss against an independent loop."""

from __future__ import annotations

import math

import pytest
import torch

from bumps.induction.copying import copying_losses, copying_reference
from bumps.induction.data import Layout, induction_queries, make_batch


def test_hand_computed_sequences():
    # sub_len 3, two repeats [1, 2, 3] at 2 and 5; the filler's leading 1 is a chance match followed by 7
    tokens = torch.tensor([[1, 7, 1, 2, 3, 1, 2, 3, 9]])
    starts = torch.tensor([[2, 5]])
    got = copying_losses(tokens, starts, 3)  # queries 5 (token 1) and 6 (token 2)
    assert got.dtype == torch.float64
    assert got[0].tolist() == pytest.approx([math.log(2), 0.0])
    # without the chance match the rule is exact
    clean = copying_losses(torch.tensor([[8, 7, 1, 2, 3, 1, 2, 3, 9]]), starts, 3)
    assert clean[0].tolist() == [0.0, 0.0]
    # no filler token matches, but the subsequence [1, 2, 1, 3] holds 1 twice
    dup = torch.tensor([[40, 41, 42, 43, 1, 2, 1, 3, 1, 2, 1, 3]])
    got = copying_losses(dup, torch.tensor([[4, 8]]), 4)  # queries 8 (1), 9 (2), 10 (1)
    assert got[0].tolist() == pytest.approx([math.log(2), 0.0, math.log(3)])


def _loop(tokens: torch.Tensor, starts: torch.Tensor, sub_len: int) -> list[list[float]]:
    query, _ = induction_queries(starts, sub_len)
    out = []
    for t, qs in zip(tokens.tolist(), query.tolist(), strict=True):
        row = []
        for i in qs:
            after = [t[j + 1] for j in range(i) if t[j] == t[i]]
            row.append(-math.log(after.count(t[i + 1]) / len(after)))
        out.append(row)
    return out


@pytest.mark.parametrize("placement", ["consecutive", "gaps", "end"])
def test_matches_a_plain_loop_on_generated_sequences(placement):
    layout = Layout(40, 12, 5, 3, placement)  # a small vocabulary, so chance matches are common
    tokens, starts = make_batch(64, layout, torch.Generator().manual_seed(3))
    got = copying_losses(tokens, starts, layout.sub_len)
    assert got.shape == (64, layout.n_predictable)
    torch.testing.assert_close(got, torch.tensor(_loop(tokens, starts, layout.sub_len), dtype=torch.float64))
    assert bool((got > 0).any())


def test_reference_falls_with_the_vocabulary_and_is_reproducible():
    small, se = copying_reference(Layout(85, 32, 16, 3), n=256)
    large, _ = copying_reference(Layout(85, 4096, 16, 3), n=256)
    assert se > 0 and large < 0.05 < small  # chance repeats of the query token vanish with a large vocabulary
    assert copying_reference(Layout(85, 32, 16, 3), n=256) == (small, se)
