"""Random token sequences with one random subsequence repeated, and the positions the scores read.

A sequence has ``n_ctx`` tokens (85). One random subsequence of ``sub_len`` tokens (16) appears ``n_repeats``
times (3), without overlap; every other token is filler. Every token, of the subsequence and of the filler,
is drawn uniformly from the ``vocab`` tokens (128), independently (so a filler token may equal a
subsequence token by chance).

Where the repeats go (``Layout.placement``, :func:`repeat_starts`), with ``n_filler = n_ctx − n_repeats·sub_len``
filler tokens (37):

- ``"consecutive"`` (the pinned setup): back to back, the first at a uniformly random start in
  ``0 .. n_filler``.
- ``"end"``: back to back at the end of the sequence, at the same positions in every sequence: repeat
  ``r`` starts at ``n_filler + r·sub_len``.
- ``"gaps"``: the filler is split into ``n_repeats + 1`` gaps (before the first repeat, between repeats,
  after the last), uniformly over every split into non-negative gap lengths: the ``n_repeats`` bar
  positions are a uniformly random ``n_repeats``-subset of ``0 .. n_filler + n_repeats − 1`` (stars and
  bars), drawn as the first ``n_repeats`` entries of a random permutation, sorted. Gap 0 is ``bars[0]``
  tokens, gap ``r`` is ``bars[r] − bars[r−1] − 1`` tokens, so repeat ``r`` starts at
  ``bars[r] − r + r·sub_len``. Only here does the distance between repeats vary, so only here can no
  head that attends at a fixed offset do the job of an induction head.

The *predictable* predictions are those of the tokens at offsets ``1 .. sub_len − 1`` of the second and later
repeats: the logits at position ``starts[r] + j`` (offset ``j`` in ``0 .. sub_len − 2``, ``r >= 1``)
predict the token at offset ``j + 1``, which the context shows after the previous occurrence of the token
at offset ``j`` (``starts[r − 1] + j + 1``, the *induction source*). (Offset 0 of a repeat follows a filler
token, so its prediction is not counted.) :func:`induction_queries` gives these query and source positions.

Batches are pure functions of ``(data_seed, step)`` (:func:`step_generator`); a finite training set and
its held-out test set are pure functions of ``data_seed`` (:func:`fixed_sets`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bumps.errors import BumpsError

PLACEMENTS = ("end", "consecutive", "gaps")


@dataclass(frozen=True)
class Layout:
    """The shape of the sequences.

    Attributes
    ----------
    n_ctx : int
        Tokens per sequence.
    vocab : int
        Token values ``0 .. vocab − 1``.
    sub_len : int
        Length of the repeated subsequence.
    n_repeats : int
        Times it appears (>= 2).
    placement : {"end", "consecutive", "gaps"}
        Where the repeats go (module docstring).
    """

    n_ctx: int = 85
    vocab: int = 128
    sub_len: int = 16
    n_repeats: int = 3
    placement: str = "consecutive"

    @property
    def n_filler(self) -> int:
        """Tokens outside the repeats."""
        return self.n_ctx - self.n_repeats * self.sub_len

    @property
    def n_predictable(self) -> int:
        """Predictable predictions per sequence: ``(n_repeats − 1)·(sub_len − 1)``."""
        return (self.n_repeats - 1) * (self.sub_len - 1)

    def validate(self) -> Layout:
        """Check the sizes.

        Returns
        -------
        Layout
            ``self``.

        Raises
        ------
        BumpsError
            If a size is not a positive integer, there are fewer than 2 repeats or a subsequence of fewer
            than 2 tokens, or the repeats do not fit the context.
        """
        for name in ("n_ctx", "vocab", "sub_len", "n_repeats"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise BumpsError(f"`{name}` must be a positive integer (got {v!r})")
        if self.n_repeats < 2 or self.sub_len < 2:
            raise BumpsError(
                f"`n_repeats` and `sub_len` must be >= 2 for anything to be predictable "
                f"(got {self.n_repeats}, {self.sub_len})"
            )
        if self.placement not in PLACEMENTS:
            raise BumpsError(f"`placement` must be one of {', '.join(PLACEMENTS)} (got {self.placement!r})")
        if self.n_repeats * self.sub_len > self.n_ctx:
            raise BumpsError(
                f"`sub_len` {self.sub_len} is longer than 1/{self.n_repeats} of the context {self.n_ctx}: "
                f"{self.n_repeats} repeats do not fit; use a sub_len of at most {self.n_ctx // self.n_repeats}"
            )
        return self


def step_generator(data_seed: int, step: int) -> torch.Generator:
    """The generator of one step's batch: seeded by ``(data_seed, step)`` alone."""
    return torch.Generator().manual_seed(data_seed * 1_000_003 + step)


def repeat_starts(batch: int, layout: Layout, generator: torch.Generator) -> torch.Tensor:
    """Where each sequence's repeats start (module docstring, per ``layout.placement``).

    Parameters
    ----------
    batch : int
        Sequences.
    layout : Layout
        The sizes.
    generator : torch.Generator
        The draw.

    Returns
    -------
    torch.Tensor
        ``[batch, n_repeats]`` int64, increasing, each ``>= previous + sub_len``, the last ``<= n_ctx − sub_len``.
    """
    r = torch.arange(layout.n_repeats)
    if layout.placement == "end":
        return (layout.n_filler + r * layout.sub_len).expand(batch, -1).clone()
    if layout.placement == "consecutive":
        first = torch.randint(0, layout.n_filler + 1, (batch, 1), generator=generator)
        return first + r * layout.sub_len
    slots = layout.n_filler + layout.n_repeats
    bars = torch.rand(batch, slots, generator=generator).argsort(-1)[:, : layout.n_repeats].sort(-1).values
    # filler before repeat r = bars[r] − r (bars are slots, r of them taken by earlier repeats)
    return bars - r + r * layout.sub_len


def make_batch(batch: int, layout: Layout, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` sequences with their repeats.

    Parameters
    ----------
    batch : int
        Sequences.
    layout : Layout
        The sizes.
    generator : torch.Generator
        The draw (tokens, subsequence, then positions).

    Returns
    -------
    tokens : torch.Tensor
        ``[batch, n_ctx]`` int64.
    starts : torch.Tensor
        ``[batch, n_repeats]`` int64 first position of each repeat.
    """
    tokens = torch.randint(0, layout.vocab, (batch, layout.n_ctx), generator=generator)
    sub = torch.randint(0, layout.vocab, (batch, layout.sub_len), generator=generator)
    starts = repeat_starts(batch, layout, generator)
    pos = starts[:, :, None] + torch.arange(layout.sub_len)  # [B, R, L]
    tokens.scatter_(1, pos.reshape(batch, -1), sub.repeat(1, layout.n_repeats))
    return tokens, starts


def induction_queries(starts: torch.Tensor, sub_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Query positions of the predictable predictions and their induction sources.

    Parameters
    ----------
    starts : torch.Tensor
        ``[..., n_repeats]`` repeat starts.
    sub_len : int
        Subsequence length.

    Returns
    -------
    query : torch.Tensor
        ``[..., (n_repeats − 1)·(sub_len − 1)]``: positions ``starts[r] + j``, ``r >= 1``, ``j < sub_len − 1``;
        their logits predict the token at ``query + 1``.
    source : torch.Tensor
        Same shape: ``starts[r − 1] + j + 1``, the position after the previous occurrence of the query's token.
    """
    j = torch.arange(sub_len - 1, device=starts.device)
    query = (starts[..., 1:, None] + j).flatten(-2)
    source = (starts[..., :-1, None] + j + 1).flatten(-2)
    return query, source


def fixed_sets(layout: Layout, train_size: int, test_size: int, data_seed: int) -> tuple[tuple, tuple]:
    """A finite training set and a held-out test set.

    The training set is :func:`make_batch` of ``Generator().manual_seed(data_seed)``, the test set of
    ``manual_seed(data_seed + 10**9)``; with 128**85 possible sequences the two never share one.

    Parameters
    ----------
    layout : Layout
        The sizes.
    train_size, test_size : int
        Sequences in each (>= 1).
    data_seed : int
        Seed of the draw.

    Returns
    -------
    train, test : tuple of (torch.Tensor, torch.Tensor)
        ``(tokens [N, n_ctx], starts [N, n_repeats])`` each.

    Raises
    ------
    BumpsError
        If a size is below 1.
    """
    if train_size < 1 or test_size < 1:
        raise BumpsError(f"`train_size` and `test_size` must be positive integers (got {train_size}, {test_size})")
    train = make_batch(train_size, layout, torch.Generator().manual_seed(data_seed))
    test = make_batch(test_size, layout, torch.Generator().manual_seed(data_seed + 10**9))
    return train, test
