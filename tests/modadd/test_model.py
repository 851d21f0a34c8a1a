"""The mod-add model: last-position forward = full forward, presets, data, bad input."""

import math

import pytest
import torch

from bumps.errors import BumpsError
from bumps.modadd.model import (
    ModAddConfig,
    all_pairs,
    cross_entropy,
    forward_full,
    forward_last,
    init_params,
    split_indices,
)


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


@pytest.mark.parametrize(
    "overrides,match",
    [
        (dict(p=32), "prime"),
        (dict(p=2), "prime"),
        (dict(p=1), "prime"),
        (dict(train_frac=0.0), "`train_frac`"),
        (dict(train_frac=1.0), "`train_frac`"),
        (dict(d_model=30, n_heads=4), "divisible"),
        (dict(loss_dtype="float16"), "`loss_dtype`"),
    ],
)
def test_bad_config_is_refused(overrides, match):
    with pytest.raises(BumpsError, match=match):
        ModAddConfig.from_preset("nanda", **overrides)
    with pytest.raises(BumpsError, match="`preset`"):
        ModAddConfig.from_preset("paper")


def test_tl_demo_v1_keeps_the_earlier_draw():
    # values printed by the pre-change init_params for preset tl-demo (seed 999) at commit 860ce63
    params = init_params(ModAddConfig.from_preset("tl-demo", init="tl-demo-v1"))
    assert params["W_E"][0, :3].tolist() == pytest.approx(
        [-0.01787557080388069, 0.09950501471757889, 0.020580314099788666], abs=0
    )
    assert params["W_U"][-1, -3:].tolist() == pytest.approx(
        [0.03350948914885521, -0.028721461072564125, 0.007112846709787846], abs=0
    )
    exact = init_params(ModAddConfig.from_preset("tl-demo"))
    assert torch.equal(params["W_Q"], exact["W_Q"])  # same stream, same first three draws...
    assert not torch.equal(params["W_K"], exact["W_K"])  # ...but TL draws W_O before W_K
    with pytest.raises(BumpsError, match="`init` must be one of"):
        init_params(ModAddConfig.from_preset("tl-demo", init="xavier"))


@pytest.mark.parametrize("seed,p", [(999, 113), (3, 23)])
def test_tl_demo_init_is_transformer_lens_weights(seed, p):
    tl = pytest.importorskip("transformer_lens")
    cfg = ModAddConfig.from_preset("tl-demo", p=p, seed=seed)
    torch.manual_seed(12345)  # whatever the global RNG holds before, TL reseeds with cfg.seed
    model = tl.HookedTransformer(
        tl.HookedTransformerConfig(
            n_layers=1,
            n_heads=cfg.n_heads,
            d_model=cfg.d_model,
            d_head=cfg.d_head,
            d_mlp=cfg.d_mlp,
            act_fn="relu",
            normalization_type=None,
            d_vocab=p + 1,
            d_vocab_out=p,
            n_ctx=3,
            init_weights=True,
            device="cpu",
            seed=seed,
        )
    )
    ours = init_params(cfg)
    theirs = {name.split(".")[-1]: t.detach() for name, t in model.named_parameters() if ".W_" in name}
    assert set(theirs) == set(ours)
    for k in ours:
        assert torch.equal(ours[k], theirs[k]), k
    for name, t in model.named_parameters():  # TL's biases are zero: the preset's frozen-zero biases
        assert ".W_" in name or not t.any(), name
    tokens = all_pairs(p)[:: max(1, p * p // 200)]
    with torch.no_grad():
        expected = model(tokens)[:, -1]
        assert torch.allclose(forward_last(ours, tokens), expected, atol=1e-5)
