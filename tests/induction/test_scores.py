"""bumps.induction.scores against hand-built attention patterns."""

from __future__ import annotations

import torch

from bumps.induction.data import Layout, induction_queries, make_batch, step_generator
from bumps.induction.model import Cache
from bumps.induction.scores import layer_scores

S, DH, D = 84, 3, 5


def _inputs(batch: int = 4):
    tokens, starts = make_batch(batch, Layout(), step_generator(0, 1))
    query, source = induction_queries(starts, 16)
    return query[None], source[None]


def _pattern(query, source, heads: int) -> torch.Tensor:
    """Head 0: one-hot on the induction source at predictable queries, uniform elsewhere;
    head 1: one-hot on the previous token; others uniform over the causal past."""
    b = query.shape[1]
    uniform = torch.tril(torch.ones(S, S)) / torch.arange(1, S + 1)[:, None]
    p = uniform.expand(1, b, heads, S, S).clone()
    for i in range(b):
        p[0, i, 0, query[0, i]] = 0.0
        p[0, i, 0, query[0, i], source[0, i]] = 1.0
    prev = torch.zeros(S, S)
    prev[0, 0] = 1.0
    prev[torch.arange(1, S), torch.arange(S - 1)] = 1.0
    p[0, :, 1] = prev
    return p


def test_head_scores_read_the_hand_built_pattern():
    query, source = _inputs()
    p = _pattern(query, source, 3)
    g = torch.Generator().manual_seed(0)
    v = torch.randn(1, 4, 3, S, DH, generator=g)
    w_o = torch.randn(1, 3, DH, D, generator=g)
    sc = layer_scores(p, p @ v, v, w_o, query, source)
    ind, prev = sc["induction"][0], sc["prev_token"][0]
    assert torch.allclose(ind[0], torch.tensor(1.0)) and torch.allclose(prev[1], torch.tensor(1.0))
    # uniform head: attention to any one earlier position is 1 / (t + 1)
    expect_ind = (1.0 / (query[0] + 1).double()).mean()
    expect_prev = (1.0 / torch.arange(2, S + 1).double()).mean()
    assert torch.allclose(ind[2].double(), expect_ind, atol=1e-6)
    assert torch.allclose(prev[2].double(), expect_prev, atol=1e-6)
    assert torch.allclose(prev[0], prev[2], atol=0.05)  # head 0 is uniform off the queries
    norms = (p @ v).transpose(0, 1)  # head output norm: |z W_O| averaged
    assert sc["head_out_norm"].shape == (1, 3) and norms.shape[0] == 4


def test_layer_score_is_one_when_only_the_induction_head_writes():
    query, source = _inputs()
    p = _pattern(query, source, 2)
    v = torch.randn(1, 4, 2, S, DH, generator=torch.Generator().manual_seed(1))
    w_o = torch.randn(1, 2, DH, D, generator=torch.Generator().manual_seed(2))
    w_o[:, 1] = 0.0  # the previous-token head writes nothing
    sc = layer_scores(p, p @ v, v, w_o, query, source)
    assert torch.allclose(sc["layer_induction"], torch.ones(1), atol=1e-5)
    w_o = w_o.flip(1)  # now only the previous-token head writes
    sc = layer_scores(p, p @ v, v, w_o, query, source)
    assert torch.allclose(sc["layer_prev_token"], torch.ones(1), atol=1e-5)


def test_layer_score_does_not_depend_on_how_the_job_is_split_between_heads():
    query, source = _inputs()
    g = torch.Generator().manual_seed(3)
    p1 = _pattern(query, source, 2)
    v1 = torch.randn(1, 4, 2, S, DH, generator=g)
    w1 = torch.randn(1, 2, DH, D, generator=g)
    one = layer_scores(p1, p1 @ v1, v1, w1, query, source)
    # the induction head split into two copies writing half each (a third head, same pattern and values)
    p2 = torch.cat([p1[:, :, :1], p1[:, :, :1], p1[:, :, 1:]], 2)
    v2 = torch.cat([v1[:, :, :1], v1[:, :, :1], v1[:, :, 1:]], 2)
    w2 = torch.cat([w1[:, :1] / 2, w1[:, :1] / 2, w1[:, 1:]], 1)
    two = layer_scores(p2, p2 @ v2, v2, w2, query, source)
    for key in ("layer_induction", "layer_prev_token"):
        assert torch.allclose(one[key], two[key], atol=1e-5), key
    assert torch.allclose(two["induction"][0, :2], torch.ones(2)) and one["induction"][0, 0] == 1.0
    assert torch.allclose(two["head_out_norm"][0, 0] * 2, one["head_out_norm"][0, 0], atol=1e-5)


def test_cache_type_is_what_forward_returns():
    from bumps.induction.model import InductionConfig, forward, init_params

    cfg = InductionConfig()
    params = {k: v[None] for k, v in init_params(cfg).items()}
    tokens, _ = make_batch(2, cfg.layout, step_generator(0, 0))
    logits, cache = forward(params, tokens[None], keep=True)
    assert isinstance(cache, Cache) and logits.shape == (1, 2, 84, 128)
    assert cache.pattern[0].shape == (1, 2, 4, 84, 84)
    assert torch.allclose(cache.pattern[1].sum(-1), torch.ones(1, 2, 4, 84), atol=1e-5)
    assert torch.allclose(cache.pattern[0] @ cache.v[0], cache.z[0], atol=1e-5)  # sdpa's output = pattern @ v
