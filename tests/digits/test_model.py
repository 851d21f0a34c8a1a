"""bumps.digits.model: the stacked answer-position forward against an independent full causal forward."""

from __future__ import annotations

import math

import pytest
import torch

from bumps.digits.data import answer_positions, random_operands, sequences, step_generator
from bumps.digits.model import DigitsConfig, forward, init_params, per_digit_loss
from bumps.errors import BumpsError


def reference(params: dict, tokens: torch.Tensor) -> torch.Tensor:
    """Every position of one model, written out plainly: [B, S] tokens -> [B, S, 10] logits."""
    x = params["W_E"][tokens] + params["W_pos"][: tokens.shape[1]]
    heads = []
    for h in range(params["W_Q"].shape[0]):
        q, k, v = (x @ params[w][h] for w in ("W_Q", "W_K", "W_V"))
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        causal = torch.ones(tokens.shape[1], tokens.shape[1], dtype=torch.bool).tril()
        heads.append(scores.masked_fill(~causal, -1e30).softmax(-1) @ v @ params["W_O"][h])
    x = x + sum(heads)
    x = x + torch.relu(x @ params["W_in"] + params["b_in"]) @ params["W_out"] + params["b_out"]
    return x @ params["W_U"]


def _small(seed: int) -> DigitsConfig:
    return DigitsConfig(seed=seed, d_model=16, n_heads=2, d_mlp=24, dtype="float64")


def test_forward_equals_the_full_causal_forward_with_gradients():
    cfgs = [_small(0), _small(1)]
    singles = [init_params(c) for c in cfgs]
    stacked = {k: torch.stack([p[k] for p in singles]).requires_grad_(True) for k in singles[0]}
    tokens = torch.stack([sequences(*random_operands(8, 5, step_generator(s, 0)), 5) for s in range(2)])
    logits, pattern = forward(stacked, tokens, 5)
    assert logits.shape == (2, 8, 6, 10) and pattern.shape == (2, 8, 2, 6, 17)
    pos = answer_positions(5)
    for m, p in enumerate(singles):
        p = {k: v.clone().requires_grad_(True) for k, v in p.items()}
        ref = reference(p, tokens[m, :, :-1])[:, pos]
        assert torch.allclose(logits[m], ref, atol=1e-12)
        ref_loss = -ref.log_softmax(-1).gather(-1, tokens[m, :, pos + 1, None]).mean()
        ours = per_digit_loss(logits, tokens[..., pos + 1])[m].mean()
        g_ref = torch.autograd.grad(ref_loss, list(p.values()))
        g_ours = torch.autograd.grad(ours, list(stacked.values()), retain_graph=True)
        for a, b in zip(g_ours, g_ref, strict=True):
            assert torch.allclose(a[m], b, atol=1e-12)
    # causal: nothing after the query; rows sum to one
    assert pattern[..., 0, 12:].abs().max() == 0 and torch.allclose(pattern.sum(-1), torch.ones(()).double())


def test_init_is_seeded_and_pinned():
    a, b = init_params(DigitsConfig(seed=3)), init_params(DigitsConfig(seed=3))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert a["W_E"].shape == (12, 128) and a["W_pos"].shape == (18, 128) and a["W_U"].shape == (128, 10)
    assert a["W_in"].std().item() == pytest.approx(128**-0.5, rel=0.05)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": 0}, "`steps` must be a positive integer"),
        ({"d_model": 130}, "divisible by `n_heads`"),
        ({"train_size": 0}, "`train_size` must be a positive integer"),
        ({"train_size": 10**10}, "exceeds the 10000000000 distinct"),
        ({"lr": -1.0}, "`lr` must be a positive"),
        ({"setup": "other"}, "`setup` must be"),
    ],
)
def test_bad_settings(kwargs, message):
    with pytest.raises(BumpsError, match=message):
        DigitsConfig(**kwargs).validate()
