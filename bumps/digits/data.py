"""5-digit addition as token sequences, and the seeded batches a run trains on.

A sequence is ``a₄ a₃ a₂ a₁ a₀ + b₄ b₃ b₂ b₁ b₀ = c₅ c₄ c₃ c₂ c₁ c₀`` for ``n_digits = 5``: both operands
most significant digit first, then the sum as ``n_digits + 1`` digits, its carry digit ``c₅`` first.
Tokens 0-9 are digits, :data:`PLUS` = 10, :data:`EQUALS` = 11 (vocabulary 12); the context is
``3·n_digits + 3`` = 18. Answer digit ``i`` (axis ``digit`` of the recorded series) is ``c_{n−i}``: index
0 is the carry digit, index ``n_digits`` the units digit. It is predicted at position ``2·n_digits + 1 + i``
(the ``=`` and the answer digits before it).

Batches are pure functions of ``(data_seed, step)`` (:func:`step_generator`), so a resumed or continued run
sees exactly the data an uninterrupted one would.
"""

from __future__ import annotations

import torch

from bumps.errors import BumpsError

PLUS, EQUALS, VOCAB = 10, 11, 12


def context(n_digits: int) -> int:
    """Sequence length: two operands, ``+``, ``=`` and the ``n_digits + 1`` answer digits."""
    return 3 * n_digits + 3


def answer_positions(n_digits: int) -> torch.Tensor:
    """``[n_digits + 1]`` positions whose next-token logits predict the answer digits, carry digit first."""
    start = 2 * n_digits + 1  # the '=' token
    return torch.arange(start, start + n_digits + 1)


def digits_of(x: torch.Tensor, n: int) -> torch.Tensor:
    """``[..., n]`` decimal digits of the int64 ``x``, most significant first."""
    powers = 10 ** torch.arange(n - 1, -1, -1, device=x.device)
    return (x[..., None] // powers) % 10


def sequences(a: torch.Tensor, b: torch.Tensor, n_digits: int) -> torch.Tensor:
    """Token sequences of ``a + b``.

    Parameters
    ----------
    a, b : torch.Tensor
        ``[...]`` int64 operands in ``0 .. 10**n_digits − 1``.
    n_digits : int
        Digits per operand.

    Returns
    -------
    torch.Tensor
        ``[..., context(n_digits)]`` int64 tokens (see the module docstring).
    """
    plus = torch.full((*a.shape, 1), PLUS, dtype=torch.int64, device=a.device)
    equals = torch.full_like(plus, EQUALS)
    return torch.cat([digits_of(a, n_digits), plus, digits_of(b, n_digits), equals, digits_of(a + b, n_digits + 1)], -1)


def step_generator(data_seed: int, step: int) -> torch.Generator:
    """The generator of one step's batch: seeded by ``(data_seed, step)`` alone."""
    return torch.Generator().manual_seed(data_seed * 1_000_003 + step)


def random_operands(batch: int, n_digits: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` uniform operand pairs ``[batch]`` int64 in ``0 .. 10**n_digits − 1``."""
    pairs = torch.randint(0, 10**n_digits, (2, batch), generator=generator)
    return pairs[0], pairs[1]


def split_pairs(n_digits: int, train_size: int, test_size: int, data_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A finite training set and a held-out test set of distinct operand pairs.

    Parameters
    ----------
    n_digits : int
        Digits per operand; the pool is all ``10**(2·n_digits)`` pairs.
    train_size, test_size : int
        Sizes of the two sets (>= 1 each, together at most the pool).
    data_seed : int
        Seed of the draw.

    Returns
    -------
    train, test : torch.Tensor
        ``[train_size, 2]`` and ``[test_size, 2]`` int64 pairs ``(a, b)``, disjoint.

    Raises
    ------
    BumpsError
        If a size is below 1 or both do not fit in the pool.
    """
    pool = 10 ** (2 * n_digits)
    if train_size < 1 or test_size < 1:
        raise BumpsError(f"`train_size` and `test_size` must be >= 1 (got {train_size}, {test_size})")
    if train_size + test_size > pool:
        raise BumpsError(
            f"`train_size` {train_size} + `test_size` {test_size} exceeds the {pool} distinct pairs of "
            f"{n_digits}-digit operands; the test set must be held out of them"
        )
    g = torch.Generator().manual_seed(data_seed)
    need = train_size + test_size
    if need > pool // 2:  # dense: a permutation of the whole pool
        codes = torch.randperm(pool, generator=g)[:need]
    else:
        codes = torch.empty(0, dtype=torch.int64)
        while len(codes) < need:
            draw = torch.randint(0, pool, (need + need // 8 + 16,), generator=g)
            codes = torch.unique(torch.cat([codes, draw]))
        codes = codes[torch.randperm(len(codes), generator=g)[:need]]
    pairs = torch.stack([codes // 10**n_digits, codes % 10**n_digits], 1)
    return pairs[:train_size], pairs[train_size:]
