"""Stacked AdamW equals torch.optim.AdamW model by model, with per-model lr, weight decay and step."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bumps.adamw import AdamWState, adamw_step


@settings(max_examples=20, deadline=None)
@given(lrs=st.lists(st.floats(1e-4, 1e-1), min_size=1, max_size=4), wd=st.floats(0, 2), steps=st.integers(1, 6))
def test_each_model_follows_torch_adamw(lrs, wd, steps):
    g = torch.Generator().manual_seed(len(lrs) * 7 + steps)
    m = len(lrs)
    stacked = {
        "w": torch.randn(m, 3, 5, generator=g, dtype=torch.float64),
        "b": torch.randn(m, 5, generator=g, dtype=torch.float64),
    }
    singles = [{k: v[i].clone().requires_grad_(True) for k, v in stacked.items()} for i in range(m)]
    opts = [
        torch.optim.AdamW(list(s.values()), lr=lr, weight_decay=wd * (i + 1), betas=(0.9, 0.98), eps=1e-8)
        for i, (s, lr) in enumerate(zip(singles, lrs, strict=True))
    ]
    state = AdamWState.zeros(stacked)
    lr_t = torch.tensor(lrs, dtype=torch.float64)
    wd_t = torch.tensor([wd * (i + 1) for i in range(m)], dtype=torch.float64)
    for _ in range(steps):
        grads = {k: torch.randn(v.shape, generator=g, dtype=torch.float64) for k, v in stacked.items()}
        for i, (s, opt) in enumerate(zip(singles, opts, strict=True)):
            for k, p in s.items():
                p.grad = grads[k][i].clone()
            opt.step()
        adamw_step(stacked, grads, state, lr_t, wd_t, (0.9, 0.98), 1e-8)
    for i, s in enumerate(singles):
        for k, p in s.items():
            torch.testing.assert_close(stacked[k][i], p.detach(), rtol=1e-12, atol=1e-14)


def test_member_state_round_trip_and_select():
    params = {"w": torch.randn(3, 4)}
    state = AdamWState.zeros(params)
    adamw_step(
        params,
        {"w": torch.randn(3, 4)},
        state,
        torch.full((3,), 0.01, dtype=torch.float64),
        torch.zeros(3, dtype=torch.float64),
        (0.9, 0.98),
        1e-8,
    )
    back = AdamWState.stack([state.member(i) for i in (2, 0)], "cpu")
    sel = state.select(torch.tensor([2, 0]))
    assert torch.equal(back.exp_avg["w"], sel.exp_avg["w"]) and torch.equal(back.step, sel.step)
    assert not torch.equal(sel.exp_avg["w"][0], sel.exp_avg["w"][1])
