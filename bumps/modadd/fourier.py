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
    """Orthonormal Fourier basis of functions on Z_p: rows const, cos 1, sin 1, cos 2, sin 2, ...

    Parameters
    ----------
    p : int
        The (odd) modulus.
    dtype : torch.dtype, default torch.float32
        dtype of the result (computed in float64).
    device : str or torch.device, default "cpu"
        Device of the result.

    Returns
    -------
    torch.Tensor
        ``[p, p]``: row 0 is 1/√p, rows ``2k − 1`` and ``2k`` are the normalised
        cos(2πkx/p) and sin(2πkx/p) for k = 1..(p−1)/2; columns are x = 0..p−1.
    """
    x = torch.arange(p, dtype=torch.float64)
    rows = [torch.ones(p, dtype=torch.float64)]
    for k in range(1, (p - 1) // 2 + 1):
        rows += [torch.cos(2 * math.pi * k * x / p), torch.sin(2 * math.pi * k * x / p)]
    basis = torch.stack(rows)
    return (basis / basis.norm(dim=1, keepdim=True)).to(dtype=dtype, device=device)


def component_norms(w: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Norm of each Fourier component of a matrix whose rows are indexed by inputs.

    Parameters
    ----------
    w : torch.Tensor
        ``[p, n]``, inputs on axis 0 (e.g. the token rows of ``W_E``).
    basis : torch.Tensor
        :func:`fourier_basis` ``[p, p]``.

    Returns
    -------
    torch.Tensor
        ``[p]``: the norm of ``(basis @ w)[i]`` for each basis row i.
    """
    return (basis @ w).norm(dim=1)


def freq_norms(w: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Per-frequency norm (cos and sin combined) of a matrix whose rows are indexed by inputs.

    Parameters
    ----------
    w : torch.Tensor
        ``[p, n]``, inputs on axis 0.
    basis : torch.Tensor
        :func:`fourier_basis` ``[p, p]``.

    Returns
    -------
    torch.Tensor
        ``[(p−1)/2]``: √(‖cos k component‖² + ‖sin k component‖²) at index k − 1; the
        constant component is left out.
    """
    sq = (basis @ w).pow(2).sum(1)[1:]
    return (sq[0::2] + sq[1::2]).sqrt()


def gini(x: torch.Tensor) -> torch.Tensor:
    """Hurley & Rickard's Gini index of a non-negative vector: 0 dense … 1 one-hot.

    Parameters
    ----------
    x : torch.Tensor
        A vector (any shape is flattened; absolute values are used); not all zero.

    Returns
    -------
    torch.Tensor
        0-d: the Gini index, 0 for equal entries, approaching 1 as one entry dominates
        (``1 − 1/n`` for a one-hot vector of n entries).
    """
    c = x.abs().sort().values
    n = c.numel()
    k = torch.arange(1, n + 1, dtype=c.dtype, device=c.device)
    return 1 - 2 * ((c / c.sum()) * ((n - k + 0.5) / n)).sum()


def neuron_freq_fraction(acts: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Fraction of each neuron's variance explained by each frequency.

    Each neuron is centred and 2-D Fourier transformed; frequency k explains the
    terms that involve k alone: linear (const, k) and (k, const) and the four (k, k)
    cos/sin products.

    Parameters
    ----------
    acts : torch.Tensor
        ``[p, p, d_mlp]``: post-ReLU MLP activations at the last position, input
        (a, b) at ``[a, b]``.
    basis : torch.Tensor
        :func:`fourier_basis` ``[p, p]``.

    Returns
    -------
    torch.Tensor
        ``[d_mlp, (p−1)/2]``, frequency k at index k − 1.
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
    """Unit vectors cos(w_k(a+b)), sin(w_k(a+b)) over the p² inputs, w_k = 2πk/p.

    Parameters
    ----------
    p : int
        The modulus.
    freqs : iterable of int
        Frequencies k (1-based, ``1..(p−1)/2``).
    dtype : torch.dtype, default torch.float64
        dtype of the result (computed in float64).
    device : str or torch.device, default "cpu"
        Device of the result.

    Returns
    -------
    torch.Tensor
        ``[2·len(freqs), p²]``: for each k in order its cos row then its sin row, each
        of unit norm; columns in :func:`bumps.modadd.model.all_pairs` order (a·p + b).
        Orthonormal for distinct frequencies.
    """
    a = torch.arange(p, dtype=torch.float64).repeat_interleave(p)
    b = torch.arange(p, dtype=torch.float64).repeat(p)
    rows = []
    for k in freqs:
        w = 2 * math.pi * k / p
        rows += [torch.cos(w * (a + b)), torch.sin(w * (a + b))]
    d = torch.stack(rows)
    return (d / d.norm(dim=1, keepdim=True)).to(dtype=dtype, device=device)


def restricted_excluded_logits(logits: torch.Tensor, directions: torch.Tensor):
    """Split all-input logits along orthonormal input directions.

    Parameters
    ----------
    logits : torch.Tensor
        ``[p², C]``: logits of every input (rows as :func:`bumps.modadd.model.all_pairs`).
    directions : torch.Tensor
        ``[m, p²]``, orthonormal rows (e.g. :func:`sum_directions`).

    Returns
    -------
    restricted : torch.Tensor
        ``[p², C]``: only the components along ``directions``, plus the per-class mean
        of what was removed (bias correction).
    excluded : torch.Tensor
        ``[p², C]``: those components removed.
    """
    kept = directions.T @ (directions @ logits)  # [p², C]
    removed = logits - kept
    return kept + removed.mean(0, keepdim=True), removed


def ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy in float64.

    Parameters
    ----------
    logits : torch.Tensor
        ``[B, C]``.
    labels : torch.Tensor
        ``[B]`` int64 classes in ``0..C − 1``.

    Returns
    -------
    torch.Tensor
        0-d float64: the mean over the batch.
    """
    logp = logits.double().log_softmax(-1)
    return -logp.gather(-1, labels[:, None]).mean()
