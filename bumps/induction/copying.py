"""The copying rule: the predictable-position loss of a one-token induction head that works perfectly.

From a query token, the rule looks at every earlier occurrence of the same token, takes the token after
each, and predicts their mixture (each occurrence weighted equally). On a predictable position
(:func:`bumps.induction.data.induction_queries`) the query token's occurrence in the preceding repeat is
always among them (repeats never overlap), so its cross-entropy is ``−log(hits / matches)``: ``matches``
earlier occurrences of the query token, ``hits`` of them followed by the target. It is 0 where the query
token occurs once per repeat and nowhere else before it, and larger where the token occurs again by
chance, in the filler or within the subsequence itself. It is a reference point for claim (c)'s
thresholds, not a bound: a circuit that also matches the token before, or uses position, can do better.
"""

from __future__ import annotations

import torch

from bumps.induction.data import Layout, fixed_sets, induction_queries

REFERENCE_SEED = 2_000_000_011  # data seed of the reference sequences: never a training or test seed
REFERENCE_SEQUENCES = 2048


def copying_losses(tokens: torch.Tensor, starts: torch.Tensor, sub_len: int) -> torch.Tensor:
    """Cross-entropy of the copying rule at every predictable prediction.

    Parameters
    ----------
    tokens : torch.Tensor
        ``[B, n_ctx]`` int64 sequences.
    starts : torch.Tensor
        ``[B, n_repeats]`` repeat starts (:mod:`bumps.induction.data`), non-overlapping and increasing (else
        a query may have no earlier occurrence followed by its target, and its loss is inf).
    sub_len : int
        Subsequence length.

    Returns
    -------
    torch.Tensor
        ``[B, (n_repeats − 1)·(sub_len − 1)]`` float64 losses in nats, in the order of
        :func:`bumps.induction.data.induction_queries`.
    """
    seq, nxt = tokens[:, :-1], tokens[:, 1:]  # position t and the token after it
    query, _ = induction_queries(starts, sub_len)  # [B, Q]
    keys = torch.arange(seq.shape[1], device=tokens.device)
    earlier = keys < query[..., None]  # [B, Q, key]
    match = (seq.gather(1, query)[..., None] == seq[:, None, :]) & earlier
    hit = match & (nxt.gather(1, query)[..., None] == nxt[:, None, :])
    return (match.sum(-1).double() / hit.sum(-1).double()).log()


def copying_reference(layout: Layout, n: int = REFERENCE_SEQUENCES) -> tuple[float, float]:
    """Mean copying-rule loss over the predictable positions of ``n`` fresh sequences, with its standard error.

    Parameters
    ----------
    layout : Layout
        The sequences (sizes and placement).
    n : int, default REFERENCE_SEQUENCES (2048)
        Sequences, drawn from the seed :data:`REFERENCE_SEED`.

    Returns
    -------
    tuple of float
        ``(mean, standard error)`` in nats, the error over sequences (each sequence's mean is one unit).
    """
    (tokens, starts), _ = fixed_sets(layout, n, 1, REFERENCE_SEED)
    per_sequence = copying_losses(tokens, starts, layout.sub_len).mean(1)
    return float(per_sequence.mean()), float(per_sequence.std() / n**0.5)
