"""The mod-add model: last-position forward = full forward, presets, data, bad input."""

import math

import pytest
import torch

from bumps.errors import BumpsError
from bumps.modadd import ModAddConfig, all_pairs, cross_entropy, forward_full, forward_last, init_params, split_indices


@pytest.mark.parametrize("preset", ["nanda", "tl-demo"])
def test_last_position_forward_equals_full_forward_values_and_gradients(preset):
    cfg = ModAddConfig.from_preset(preset, p=23, d_model=32, d_mlp=64, n_heads=4)
    params = init_params(cfg)
    if "b_in" in params:
        params["b_in"] += 0.1 * torch.randn_like(params["b_in"])
        params["b_out"] += 0.1 * torch.randn_like(params["b_out"])
    params = {k: v.double().requires_grad_(True) for k, v in params.items()}
    tokens = all_pairs(cfg.p)
    labels = (tokens[:, 0] + tokens[:, 1]) % cfg.p
    grads = []
    for fwd in (forward_last, forward_full):
        logits = fwd(params, tokens)
        loss = cross_entropy(logits, labels)
        grads.append(torch.autograd.grad(loss, list(params.values())))
        if fwd is forward_last:
            first = logits
    assert torch.allclose(first, logits, atol=1e-12)
    for g1, g2 in zip(*grads, strict=True):
        assert torch.allclose(g1, g2, atol=1e-12)


@pytest.mark.parametrize("preset", ["nanda", "tl-demo"])
def test_initial_loss_is_about_ln_p(preset):
    cfg = ModAddConfig.from_preset(preset)
    tokens = all_pairs(cfg.p)
    labels = (tokens[:, 0] + tokens[:, 1]) % cfg.p
    with torch.no_grad():
        loss = cross_entropy(forward_last(init_params(cfg), tokens), labels).item()
    assert abs(loss - math.log(cfg.p)) < 0.25, loss


def test_presets_and_split_sizes():
    nanda, demo = ModAddConfig.from_preset("nanda"), ModAddConfig.from_preset("tl-demo")
    assert (nanda.d_vocab_out, demo.d_vocab_out) == (114, 113)
    assert "b_in" in init_params(nanda) and "b_in" not in init_params(demo)
    for cfg in (nanda, demo):
        train, test = split_indices(cfg)
        assert (len(train), len(test)) == (3830, 8939)
        assert len(set(train.tolist()) | set(test.tolist())) == 113 * 113
    assert ModAddConfig.from_preset("nanda", lr=3e-3).lr == 3e-3


@pytest.mark.parametrize("overrides,match", [
    (dict(p=32), "prime"), (dict(p=2), "prime"), (dict(p=1), "prime"),
    (dict(train_frac=0.0), "--train-frac"), (dict(train_frac=1.0), "--train-frac"),
    (dict(d_model=30, n_heads=4), "divisible"), (dict(loss_dtype="float16"), "--loss-dtype"),
])
def test_bad_config_is_refused(overrides, match):
    with pytest.raises(BumpsError, match=match):
        ModAddConfig.from_preset("nanda", **overrides)
    with pytest.raises(BumpsError, match="--preset"):
        ModAddConfig.from_preset("paper")
