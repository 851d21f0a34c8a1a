"""Alignment of learned vectors with target directions, and its frame-invariant counterparts.

Learned vectors ``learned [..., units, d]`` (rows of a weight matrix, neurons' input weights, heads' OV
directions) are compared with target directions ``targets [..., targets, d]``:

* :func:`inner_products` ``[..., units, targets]`` and :func:`cosines` (normalised) depend on the basis
  the units happen to be in: mixing the units (``learned → R learned``) changes them;
* :func:`target_norms` ``[..., targets]``, the norm over units of each target's inner products
  (‖L t_k‖ for L the ``[units, d]`` matrix), and :func:`singular_values` ``[..., min(units, targets)]``
  of the inner-product matrix are unchanged by any orthogonal mixing R of the units;
* :func:`projection_norms` ``[..., targets]``, the norm of each target's projection onto the span of the
  learned vectors, is unchanged by any invertible mixing: it depends only on the learned subspace.

The toy model's :mod:`bumps.lowrank.invariants` computes the first two invariants from its recorded
inner products; these functions take the vectors themselves, of any sizes. Leading axes broadcast.
"""

from __future__ import annotations

import torch

from bumps.errors import BumpsError


def _check(learned: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    learned, targets = torch.as_tensor(learned), torch.as_tensor(targets)
    if learned.dim() < 2 or targets.dim() < 2 or learned.shape[-1] != targets.shape[-1]:
        raise BumpsError(
            f"alignment needs learned [..., units, d] and targets [..., targets, d] with the same d "
            f"(got {tuple(learned.shape)} and {tuple(targets.shape)})"
        )
    dtype = torch.promote_types(learned.dtype, targets.dtype)
    if not dtype.is_floating_point:
        dtype = torch.float64
    return learned.to(dtype), targets.to(dtype)


def inner_products(learned: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Inner product of every learned vector with every target direction.

    Parameters
    ----------
    learned : torch.Tensor
        ``[..., units, d]``.
    targets : torch.Tensor
        ``[..., targets, d]`` (leading axes broadcast with ``learned``'s).

    Returns
    -------
    torch.Tensor
        ``[..., units, targets]``: ``learned[u] · targets[k]``.

    Raises
    ------
    BumpsError
        If either is not at least 2-D or their last axes differ.
    """
    learned, targets = _check(learned, targets)
    return learned @ targets.transpose(-1, -2)


def cosines(learned: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cosine of the angle between every learned vector and every target direction.

    Parameters
    ----------
    learned : torch.Tensor
        ``[..., units, d]``.
    targets : torch.Tensor
        ``[..., targets, d]``.

    Returns
    -------
    torch.Tensor
        ``[..., units, targets]`` in [-1, 1]; 0 where either vector is zero.

    Raises
    ------
    BumpsError
        As :func:`inner_products`.
    """
    learned, targets = _check(learned, targets)
    norm_l = torch.linalg.vector_norm(learned, dim=-1)[..., :, None]
    norm_t = torch.linalg.vector_norm(targets, dim=-1)[..., None, :]
    denom = norm_l * norm_t
    inner = learned @ targets.transpose(-1, -2)
    return torch.where(denom > 0, inner / denom.clamp_min(torch.finfo(denom.dtype).tiny), torch.zeros_like(inner))


def target_norms(learned: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Norm over units of each target's inner products, ‖(learned · t_k)_u‖ (invariant to orthogonal unit mixing).

    Parameters
    ----------
    learned : torch.Tensor
        ``[..., units, d]``.
    targets : torch.Tensor
        ``[..., targets, d]``.

    Returns
    -------
    torch.Tensor
        ``[..., targets]``. For orthonormal learned vectors it equals :func:`projection_norms`.

    Raises
    ------
    BumpsError
        As :func:`inner_products`.
    """
    return torch.linalg.vector_norm(inner_products(learned, targets), dim=-2)


def singular_values(learned: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Singular values of the inner-product matrix (invariant to orthogonal mixing of units or of targets).

    Parameters
    ----------
    learned : torch.Tensor
        ``[..., units, d]``.
    targets : torch.Tensor
        ``[..., targets, d]``.

    Returns
    -------
    torch.Tensor
        ``[..., min(units, targets)]``, descending.

    Raises
    ------
    BumpsError
        As :func:`inner_products`.
    """
    return torch.linalg.svdvals(inner_products(learned, targets))


def projection_norms(learned: torch.Tensor, targets: torch.Tensor, rtol: float = 1e-10) -> torch.Tensor:
    """Norm of each target's orthogonal projection onto the span of the learned vectors.

    Parameters
    ----------
    learned : torch.Tensor
        ``[..., units, d]``; their span is the learned subspace (of any rank).
    targets : torch.Tensor
        ``[..., targets, d]``.
    rtol : float, default 1e-10
        Directions of the learned vectors with singular value below ``rtol`` times the largest count as
        outside the span (so that a numerically rank-deficient set of vectors has the span it should).

    Returns
    -------
    torch.Tensor
        ``[..., targets]``: ‖P t_k‖, between 0 and ‖t_k‖; for a unit target, the cosine of its angle to
        the subspace. Zero for every target when all learned vectors are zero.

    Raises
    ------
    BumpsError
        As :func:`inner_products`, or if ``rtol`` is negative.
    """
    if rtol < 0:
        raise BumpsError(f"`rtol` must be >= 0 (got {rtol})")
    learned, targets = _check(learned, targets)
    _, s, vh = torch.linalg.svd(learned, full_matrices=False)  # rows of vh: orthonormal basis of the span
    keep = s > rtol * s.amax(-1, keepdim=True).clamp_min(torch.finfo(s.dtype).tiny)
    coords = (targets @ vh.transpose(-1, -2)) * keep[..., None, :]  # [..., targets, rank]
    return torch.linalg.vector_norm(coords, dim=-1)
