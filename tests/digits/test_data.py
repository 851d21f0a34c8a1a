"""bumps.digits.data: the token layout, seeded batches and the held-out split."""

from __future__ import annotations

import pytest
import torch

from bumps.digits.data import (
    EQUALS,
    PLUS,
    answer_positions,
    context,
    random_operands,
    sequences,
    split_pairs,
    step_generator,
)
from bumps.errors import BumpsError


def test_layout_of_one_sum():
    toks = sequences(torch.tensor([12345, 7]), torch.tensor([98765, 3]), 5)
    assert toks.shape == (2, 18) and context(5) == 18
    assert toks[0].tolist() == [1, 2, 3, 4, 5, PLUS, 9, 8, 7, 6, 5, EQUALS, 1, 1, 1, 1, 1, 0]
    assert toks[1].tolist() == [0, 0, 0, 0, 7, PLUS, 0, 0, 0, 0, 3, EQUALS, 0, 0, 0, 0, 1, 0]
    # the logits at answer_positions predict the next token: the 6 answer digits, carry digit first
    assert toks[0, answer_positions(5) + 1].tolist() == [1, 1, 1, 1, 1, 0]


def test_batches_are_functions_of_seed_and_step():
    a1, b1 = random_operands(64, 5, step_generator(3, 17))
    a2, b2 = random_operands(64, 5, step_generator(3, 17))
    a3, _ = random_operands(64, 5, step_generator(3, 18))
    assert torch.equal(a1, a2) and torch.equal(b1, b2) and not torch.equal(a1, a3)
    assert int(a1.min()) >= 0 and int(a1.max()) < 10**5


@pytest.mark.parametrize(("n_digits", "train", "test"), [(5, 750, 1000), (1, 60, 40)])
def test_split_is_disjoint_and_sized(n_digits, train, test):
    tr, te = split_pairs(n_digits, train, test, data_seed=0)
    assert tr.shape == (train, 2) and te.shape == (test, 2)
    codes = lambda p: set((p[:, 0] * 10**n_digits + p[:, 1]).tolist())  # noqa: E731
    assert len(codes(tr)) == train and len(codes(te)) == test and not codes(tr) & codes(te)
    assert torch.equal(split_pairs(n_digits, train, test, 0)[0], tr)


@pytest.mark.parametrize(("train", "test", "message"), [(0, 10, ">= 1"), (95, 10, "exceeds the 100 distinct")])
def test_bad_split(train, test, message):
    with pytest.raises(BumpsError, match=message):
        split_pairs(1, train, test, 0)
