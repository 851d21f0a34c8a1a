"""Per-head and per-layer induction and previous-token scores, from one forward's cache.

Per head (axes ``layer, head``), batch means:

* ``induction``: attention from each predictable query ``starts[r] + j`` to its induction source
  ``starts[r − 1] + j + 1`` (:func:`bumps.induction.data.induction_queries`), averaged over those queries;
* ``prev_token``: attention from position ``t`` to ``t − 1``, averaged over ``t = 1 .. S − 1``;
* ``head_out_norm``: the norm of the head's output ``z_h W_O^h`` (its write to the residual), averaged over
  positions.

Per layer (axis ``layer``), the frame-invariant counterparts: the layer writes
``out[t] = Σ_s Σ_h A_h[t, s] · v_h[s] W_O^h``, a sum over source positions ``s`` of contributions
``c_s[t] = Σ_h A_h[t, s] · v_h[s] W_O^h``. The share of source ``s`` is ``<c_s[t], out[t]> / |out[t]|²``; the
shares of all sources sum to 1 at every query. ``layer_induction`` is the mean share of the induction
source over the predictable queries, ``layer_prev_token`` the mean share of ``t − 1``. They depend only on
what the layer as a whole writes from where: one head doing the job or two heads doing half each (same
patterns, half the ``W_O``) give the same layer score, while the per-head scores differ.
"""

from __future__ import annotations

import torch

from bumps.induction.model import Cache

TINY = 1e-30


def layer_scores(
    pattern: torch.Tensor,
    z: torch.Tensor,
    v: torch.Tensor,
    w_o: torch.Tensor,
    query: torch.Tensor,
    source: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """The scores of one layer (module docstring).

    Parameters
    ----------
    pattern : torch.Tensor
        ``[M, B, H, S, S]`` attention.
    z : torch.Tensor
        ``[M, B, H, S, dh]`` attention-weighted values.
    v : torch.Tensor
        ``[M, B, H, S, dh]`` values.
    w_o : torch.Tensor
        ``[M, H, dh, d]`` the layer's output weights.
    query, source : torch.Tensor
        ``[M, B, Q]`` predictable queries and their induction sources.

    Returns
    -------
    dict of str to torch.Tensor
        ``induction``, ``prev_token``, ``head_out_norm`` ``[M, H]`` and ``layer_induction``,
        ``layer_prev_token`` ``[M]``.
    """
    m, b, h, s, _ = pattern.shape
    n_q = query.shape[-1]
    flat = (query * s + source)[:, :, None, :].expand(m, b, h, n_q)
    a_ind = pattern.flatten(-2).gather(-1, flat)  # [M, B, H, Q]
    a_prev = pattern.diagonal(offset=-1, dim1=-2, dim2=-1)  # [M, B, H, S − 1]: A[t + 1, t]
    head_out = torch.einsum("mbhsk,mhkd->mbhsd", z, w_o)  # [M, B, H, S, d]
    out = head_out.sum(2)  # [M, B, S, d]
    v_src = v.gather(3, source[:, :, None, :, None].expand(m, b, h, n_q, v.shape[-1]))  # [M, B, H, Q, dh]
    c_ind = torch.einsum("mbhq,mbhqk,mhkd->mbqd", a_ind, v_src, w_o)  # [M, B, Q, d]
    out_q = out.gather(2, query[..., None].expand(m, b, n_q, out.shape[-1]))  # [M, B, Q, d]
    c_prev = torch.einsum("mbht,mbhtk,mhkd->mbtd", a_prev, v[:, :, :, :-1], w_o)  # [M, B, S − 1, d]
    out_p = out[:, :, 1:]

    def share(c: torch.Tensor, o: torch.Tensor) -> torch.Tensor:  # [M, B, n, d] -> [M]
        return ((c * o).sum(-1) / (o * o).sum(-1).clamp_min(TINY)).mean((1, 2))

    return {
        "induction": a_ind.mean((1, 3)),
        "prev_token": a_prev.mean((1, 3)),
        "head_out_norm": head_out.norm(dim=-1).mean((1, 3)),
        "layer_induction": share(c_ind, out_q),
        "layer_prev_token": share(c_prev, out_p),
    }


def scores(cache: Cache, w_o: torch.Tensor, query: torch.Tensor, source: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every layer's scores, stacked on a layer axis.

    Parameters
    ----------
    cache : Cache
        From :func:`bumps.induction.model.forward`.
    w_o : torch.Tensor
        ``[M, n_layers, H, dh, d]``.
    query, source : torch.Tensor
        ``[M, B, Q]`` (:func:`bumps.induction.data.induction_queries`).

    Returns
    -------
    dict of str to torch.Tensor
        ``induction``, ``prev_token``, ``head_out_norm`` ``[M, n_layers, H]`` and ``layer_induction``,
        ``layer_prev_token`` ``[M, n_layers]``.
    """
    per = [
        layer_scores(p, z, v, w_o[:, i], query, source)
        for i, (p, z, v) in enumerate(zip(cache.pattern, cache.z, cache.v, strict=True))
    ]
    return {k: torch.stack([d[k] for d in per], 1) for k in per[0]}
