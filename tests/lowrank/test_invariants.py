"""Frame-invariant series really are invariant under U → UR, V → VR; per-unit ones are not."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bumps.lowrank.invariants import invariant_series, singular_values, target_norms
from bumps.lowrank.model import LowRankConfig, initial_state


def _orthogonal(k, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.linalg.qr(torch.randn(k, k, generator=g, dtype=torch.float64)).Q


@settings(max_examples=30, deadline=None)
@given(r=st.integers(1, 5), k=st.integers(1, 6), seed=st.integers(0, 2**31 - 1))
def test_static_invariance_under_random_rotation(r, k, seed):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(7, 12, r, generator=g, dtype=torch.float64)
    u = torch.randn(7, 12, k, generator=g, dtype=torch.float64)
    rot = _orthogonal(k, seed + 1)
    inner, rotated = a.transpose(-1, -2) @ u, a.transpose(-1, -2) @ (u @ rot)
    assert torch.allclose(target_norms(inner), target_norms(rotated), atol=1e-12)
    assert torch.allclose(singular_values(inner), singular_values(rotated), atol=1e-12)
    # independent check of the definition: ‖Uᵀa_m‖ straight from the vectors
    direct = torch.linalg.vector_norm(u.transpose(-1, -2) @ a, dim=-2)
    assert torch.allclose(target_norms(inner), direct, atol=1e-12)
    if k > 1:  # control: per-unit inner products do change
        assert (inner - rotated).abs().max() > 1e-6


def _gd_autograd(a, b, s, u, v, steps, lr, optimizer):
    """Per-seed autograd reference run; returns aᵀU, bᵀV, loss at every step."""
    u, v = u.clone().requires_grad_(True), v.clone().requires_grad_(True)
    target = (a * s) @ b.T
    opt = torch.optim.SGD([u, v], lr=lr) if optimizer == "gd" else torch.optim.Adam([u, v], lr=lr)
    ia, ib, loss = [], [], []
    for _ in range(steps + 1):
        value = 0.5 * (target - u @ v.T).pow(2).sum()
        ia.append((a.T @ u).detach().clone())
        ib.append((b.T @ v).detach().clone())
        loss.append(value.detach().clone())
        opt.zero_grad()
        value.backward()
        opt.step()
    return {
        "inner_a": torch.stack(ia)[:, None],
        "inner_b": torch.stack(ib)[:, None],
        "loss": torch.stack(loss)[:, None],
    }


@pytest.mark.parametrize("optimizer", ["gd", "adam"])
def test_gd_dynamics_rotation_equivariant_adam_not(optimizer):
    cfg = LowRankConfig(rank=3, learned=3, dim=15, seeds=1, init_scale=0.3)
    st0 = initial_state(cfg)
    a, b, s, u, v = st0["a"][0], st0["b"][0], st0["s"], st0["U"][0], st0["V"][0]
    rot = _orthogonal(3, 5)
    plain = _gd_autograd(a, b, s, u, v, 150, 0.05, optimizer)
    turned = _gd_autograd(a, b, s, u @ rot, v @ rot, 150, 0.05, optimizer)
    inv_p, inv_t = invariant_series(plain), invariant_series(turned)
    diff = max(np.abs(inv_p[k] - inv_t[k]).max() for k in inv_p)
    per_unit = (plain["inner_a"] - turned["inner_a"]).abs().max().item()
    assert per_unit > 1e-2  # per-unit curves depend on the basis in both cases
    if optimizer == "gd":
        assert diff < 1e-10
    else:  # Adam is not rotation-equivariant: the invariant series differ too
        assert diff > 1e-3
