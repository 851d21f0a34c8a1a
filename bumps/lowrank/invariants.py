"""Series that do not depend on the basis the learned units happen to be in.

Under GD the loss is unchanged by U → UR, V → VR for any orthogonal K×K matrix R,
and the dynamics are equivariant: a run started from (UR, VR) is the original run
times R. Per-unit inner products with truth (aᵀU, [.., r, K]) depend on that basis;
these series do not, and are computed from the recorded inner products alone:

* ``target_norm_a`` [T, N, r]: ‖Uᵀa_m‖ = the norm over learned units of a_m's inner
  products (``target_norm_b`` likewise for V, b);
* ``sv_a`` [T, N, min(r, K)]: the singular values of aᵀU, descending (``sv_b``);
* ``loss`` [T, N].

Under Adam (not rotation-equivariant) they are still basis-free descriptions of the
state, but a rotated start gives a different trajectory.
"""

from __future__ import annotations

import numpy as np
import torch

INVARIANT_SERIES = ("target_norm_a", "target_norm_b", "sv_a", "sv_b", "loss")
PER_UNIT_SERIES = ("inner_a", "inner_b")


def target_norms(inner: torch.Tensor) -> torch.Tensor:
    """‖Uᵀa_m‖ for every target m, from the inner products.

    Parameters
    ----------
    inner : torch.Tensor or array_like
        ``aᵀU``, ``[..., r, K]`` (targets on axis -2, learned units on axis -1).

    Returns
    -------
    torch.Tensor
        ``[..., r]``: the norm over learned units of each target's inner products.
    """
    return torch.linalg.vector_norm(torch.as_tensor(inner), dim=-1)


def singular_values(inner: torch.Tensor) -> torch.Tensor:
    """Singular values of the inner-product matrix aᵀU.

    Parameters
    ----------
    inner : torch.Tensor or array_like
        ``aᵀU``, ``[..., r, K]``.

    Returns
    -------
    torch.Tensor
        ``[..., min(r, K)]``, descending.
    """
    return torch.linalg.svdvals(torch.as_tensor(inner))


def invariant_series(run: dict) -> dict[str, np.ndarray]:
    """The frame-invariant series of a lowrank run (see :mod:`bumps.lowrank.invariants`).

    Parameters
    ----------
    run : dict
        A lowrank run with ``inner_a``, ``inner_b`` ``[T, N, r, K]`` and ``loss`` ``[T, N]``.

    Returns
    -------
    dict of str to numpy.ndarray
        float64 arrays: ``target_norm_a``, ``target_norm_b`` ``[T, N, r]``, ``sv_a``,
        ``sv_b`` ``[T, N, min(r, K)]`` and ``loss`` ``[T, N]``.
    """
    out = {}
    for side in ("a", "b"):
        inner = torch.as_tensor(run[f"inner_{side}"], dtype=torch.float64)
        out[f"target_norm_{side}"] = target_norms(inner).numpy()
        out[f"sv_{side}"] = singular_values(inner).numpy()
    out["loss"] = np.asarray(run["loss"], dtype=np.float64)
    return out
