"""Fourier progress measures for mod-p addition (Nanda et al. 2023).

Basis (pinned): ``F`` [p, p] with row 0 = 1/√p, then for k = 1..(p−1)/2 the rows
cos(2πkx/p) and sin(2πkx/p), each normalised — cos before sin, as in the
official code. Frequencies are numbered 1..(p−1)/2; arrays over frequencies are
indexed by k − 1.
"""

from __future__ import annotations

import math

import torch


def fourier_basis(p: int, dtype=torch.float32, device="cpu") -> torch.Tensor:
    """Orthonormal [p, p] basis: rows const, cos 1, sin 1, cos 2, sin 2, ..."""
    x = torch.arange(p, dtype=torch.float64)
    rows = [torch.ones(p, dtype=torch.float64)]
    for k in range(1, (p - 1) // 2 + 1):
        rows += [torch.cos(2 * math.pi * k * x / p), torch.sin(2 * math.pi * k * x / p)]
    basis = torch.stack(rows)
    return (basis / basis.norm(dim=1, keepdim=True)).to(dtype=dtype, device=device)


def component_norms(w: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Norm of each Fourier component of a [p, n] matrix (inputs on axis 0): [p]."""
    return (basis @ w).norm(dim=1)


def freq_norms(w: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Per-frequency norm (cos and sin combined) of a [p, n] matrix: [(p−1)/2]."""
    sq = (basis @ w).pow(2).sum(1)[1:]
    return (sq[0::2] + sq[1::2]).sqrt()


def gini(x: torch.Tensor) -> torch.Tensor:
    """Hurley & Rickard's Gini index of a non-negative vector: 0 dense … 1 one-hot."""
    c = x.abs().sort().values
    n = c.numel()
    k = torch.arange(1, n + 1, dtype=c.dtype, device=c.device)
    return 1 - 2 * ((c / c.sum()) * ((n - k + 0.5) / n)).sum()


def neuron_freq_fraction(acts: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Fraction of each neuron's variance explained by each frequency: [d_mlp, (p−1)/2].

    ``acts`` is [p, p, d_mlp] (post-ReLU, last position, input (a, b) at [a, b]).
    Centred per neuron, 2-D Fourier transformed; frequency k explains the terms
    that involve k alone: linear (const, k) and (k, const) and the four (k, k)
    cos/sin products.
    """
    p = acts.shape[0]
    centred = acts - acts.mean((0, 1), keepdim=True)
    coef = torch.einsum("ia,abn,jb->nij", basis, centred, basis)  # [d_mlp, p, p]
    sq = coef.pow(2)
    total = sq.sum((1, 2)).clamp_min(1e-30)
    ks = torch.arange(1, (p - 1) // 2 + 1, device=acts.device)
    c, s = 2 * ks - 1, 2 * ks  # row of cos k, sin k
    lin = sq[:, 0, c] + sq[:, 0, s] + sq[:, c, 0] + sq[:, s, 0]
    quad = sq[:, c, c] + sq[:, c, s] + sq[:, s, c] + sq[:, s, s]
    return (lin + quad) / total[:, None]


def sum_directions(p: int, freqs, dtype=torch.float64, device="cpu") -> torch.Tensor:
    """Unit vectors cos(w_k(a+b)), sin(w_k(a+b)) over the p² inputs (row a·p + b): [2·len(freqs), p²]."""
    a = torch.arange(p, dtype=torch.float64).repeat_interleave(p)
    b = torch.arange(p, dtype=torch.float64).repeat(p)
    rows = []
    for k in freqs:
        w = 2 * math.pi * k / p
        rows += [torch.cos(w * (a + b)), torch.sin(w * (a + b))]
    d = torch.stack(rows)
    return (d / d.norm(dim=1, keepdim=True)).to(dtype=dtype, device=device)


def restricted_excluded_logits(logits: torch.Tensor, directions: torch.Tensor):
    """Split all-input logits [p², C] along orthonormal input directions [m, p²].

    Restricted: only the components along ``directions``, plus the per-class mean
    of what was removed (bias correction). Excluded: those components removed.
    """
    kept = directions.T @ (directions @ logits)  # [p², C]
    removed = logits - kept
    return kept + removed.mean(0, keepdim=True), removed


def ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy in float64."""
    logp = logits.double().log_softmax(-1)
    return -logp.gather(-1, labels[:, None]).mean()
