"""The probe-stencil regulariser against an independent plain-PyTorch reference.

The reference (``RefMember``) is what the page describes, written the obvious way for one model: one
``nn.Sequential(Linear, ReLU, Linear)`` per offset with its own ``torch.optim.Adam``, phase 1 on a
no-grad forward, phase 2 on a second, real forward with ``F.mse_loss``. ProbeSet gets one forward per
epoch for several padded members at once; values, model gradients, probe weights and buffers must agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from bumps.errors import BumpsError
from bumps.modadd.model import ModAddConfig, all_pairs, forward_many, init_params, split_indices
from bumps.modadd.probe import PROBE_SEED_OFFSET, ProbeSet, check_probe_settings

D_MODEL, D_MLP, HIDDEN = 32, 48, 16


@dataclass
class ProbeCfg:  # the probe fields ModAddConfig carries (trainer_api.md)
    seed: int = 0
    probe_stencil: tuple = ()
    probe_weight: float = 0.0
    probe_hidden: int = HIDDEN
    probe_lr: float = 1e-3
    probe_kind: str = "learned"


def model_and_data(seed: int, n_rows: int):
    """A real (small, tl-demo) mod-add model and some of its training rows."""
    cfg = ModAddConfig.from_preset("tl-demo", p=23, d_model=D_MODEL, d_mlp=D_MLP, n_heads=4, seed=seed)
    params = {k: v.requires_grad_(True) for k, v in init_params(cfg).items()}
    tokens = all_pairs(cfg.p)[split_indices(cfg)[0][:n_rows]]
    return params, tokens


def mlp_acts(params, tokens):
    """mlp_in and post-ReLU mlp_hidden at the last position (the MLP path of the page), plain full forward."""
    x = params["W_E"][tokens] + params["W_pos"]  # [B, 3, d]
    q, k, v = (torch.einsum("bpd,hde->bhpe", x, params[w]) for w in ("W_Q", "W_K", "W_V"))
    scores = (q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])).masked_fill(torch.ones(3, 3).triu(1).bool(), -1e10)
    x = x + torch.einsum("bhpe,hef->bpf", scores.softmax(-1) @ v, params["W_O"])
    resid = x[:, -1]
    return resid, torch.relu(resid @ params["W_in"])


def test_trainer_forward_gives_the_page_mlp_path():
    """What the trainer hands to ProbeSet (forward_many's mlp_in, hidden) is the MLP path above."""
    params, tokens = model_and_data(0, 50)
    x, h = mlp_acts(params, tokens)
    out = forward_many({k: v[None] for k, v in params.items()}, tokens[None, :, 0], tokens[None, :, 1], mlp_in=True)
    assert torch.allclose(out["mlp_in"][0], x, atol=1e-5) and torch.allclose(out["hidden"][0], h, atol=1e-5)


class RefMember:
    """One model's probes, the page's two phases with two real forwards."""

    def __init__(self, cfg: ProbeCfg):
        self.cfg = cfg
        torch.manual_seed(cfg.seed + PROBE_SEED_OFFSET)  # nn.Linear default init from the global RNG
        all3 = {
            k: nn.Sequential(nn.Linear(D_MODEL, cfg.probe_hidden), nn.ReLU(), nn.Linear(cfg.probe_hidden, D_MLP))
            for k in (-1, 0, 1)
        }
        self.probes = {k: all3[k] for k in cfg.probe_stencil}
        self.opts = {k: torch.optim.Adam(m.parameters(), lr=cfg.probe_lr) for k, m in self.probes.items()}
        self.buffer = None

    def epoch(self, params, tokens) -> torch.Tensor:
        with torch.no_grad():
            x1, h1 = mlp_acts(params, tokens)  # phase 1: model frozen, activations detached
        usable = [k for k in self.cfg.probe_stencil if k == 0 or self.buffer is not None]
        if self.cfg.probe_kind == "learned":
            for k in usable:
                inp = self.buffer[0] if k == 1 else x1
                tgt = self.buffer[1] if k == -1 else h1
                self.opts[k].zero_grad()
                F.mse_loss(self.probes[k](inp), tgt).backward()
                self.opts[k].step()
        x2, h2 = mlp_acts(params, tokens)  # phase 2: a fresh forward with graph, probes frozen
        for m in self.probes.values():
            m.requires_grad_(False)
        if self.cfg.probe_kind == "hidden-l2":
            pen = (h2**2).mean()
        else:
            pen = sum(
                (
                    F.mse_loss(self.probes[k](self.buffer[0] if k == 1 else x2), self.buffer[1] if k == -1 else h2)
                    for k in usable
                ),
                torch.tensor(0.0),
            )
        for m in self.probes.values():
            m.requires_grad_(True)
        self.buffer = (x1, h1)
        return self.cfg.probe_weight * pen


def padded(acts: list[torch.Tensor], width: int) -> torch.Tensor:
    """Stack [B_i, d] into [M, width, d], padding with large garbage (which the mask must hide)."""
    out = []
    for a in acts:
        pad = 50 * torch.randn(width - len(a), a.shape[1], generator=torch.Generator().manual_seed(len(a)))
        out.append(torch.cat([a, pad]))
    return torch.stack(out)


def run_both(cfgs: list[ProbeCfg], rows: list[int], epochs: int, lr: float = 0.05):
    """Train each member's model with (a stand-in task loss +) the penalty, once per implementation."""
    results = []
    for impl in ("ref", "probeset"):
        models = [model_and_data(c.seed, n) for c, n in zip(cfgs, rows, strict=True)]
        opts = [torch.optim.SGD(list(p.values()), lr=lr) for p, _ in models]
        ref = [RefMember(c) for c in cfgs] if impl == "ref" else None
        ps = ProbeSet.create(cfgs, D_MODEL, D_MLP, "cpu") if impl == "probeset" else None
        mask = (torch.arange(max(rows))[None] < torch.tensor(rows)[:, None]).float()
        pens, grads = [], []
        for _ in range(epochs):
            if impl == "ref":
                pen = torch.stack([r.epoch(p, t) for r, (p, t) in zip(ref, models, strict=True)])
            else:
                acts = [mlp_acts(p, t) for p, t in models]  # ONE forward per epoch
                pen = ps.penalty(padded([a[0] for a in acts], max(rows)), padded([a[1] for a in acts], max(rows)), mask)
            task = sum(mlp_acts(p, t)[1].sum(-1).mean() for p, t in models)  # moves the activations
            for o in opts:
                o.zero_grad()
            (task + pen.sum()).backward()
            grads.append([{k: v.grad.clone() for k, v in p.items() if v.grad is not None} for p, _ in models])
            for o in opts:
                o.step()
            pens.append(pen.detach())
        results.append((pens, grads, ref, ps))
    return results


def assert_same(results, cfgs):
    (pr, gr, ref, _), (pp, gp, _, ps) = results
    for e, (a, b) in enumerate(zip(pr, pp, strict=True)):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-7), (e, a, b)
    for e, (ga, gb) in enumerate(zip(gr, gp, strict=True)):
        for i in range(len(cfgs)):
            for k in ga[i]:
                assert torch.allclose(ga[i][k], gb[i][k], rtol=1e-4, atol=1e-6), (e, i, k)
    for i, c in enumerate(cfgs):
        state = ps.member_state(i)
        if c.probe_kind != "hidden-l2" and not c.probe_stencil:
            assert state is None  # a baseline member carries no probe state
            continue
        if c.probe_kind == "hidden-l2":
            assert state["probes"] == {} and state["buffer"] is None
            continue
        for k, m in ref[i].probes.items():
            got = state["probes"][str(k)]
            assert torch.allclose(got["W1"], m[0].weight.T, atol=1e-6), (i, k)
            assert torch.allclose(got["b2"], m[2].bias, atol=1e-6), (i, k)
            assert got["step"] == (0 if c.probe_kind == "frozen" else ref[i].opts[k].state[m[0].weight]["step"])
        if any(k != 0 for k in c.probe_stencil):
            assert torch.allclose(state["buffer"]["mlp_in"], ref[i].buffer[0], rtol=1e-4, atol=1e-6)
            assert torch.allclose(state["buffer"]["mlp_hidden"], ref[i].buffer[1], rtol=1e-4, atol=1e-6)


STENCILS = [(0,), (-1,), (1,), (-1, 0), (-1, 1), (0, 1), (-1, 0, 1)]


def test_ensemble_matches_reference_with_padding_and_all_kinds():
    cfgs = [
        ProbeCfg(seed=0, probe_stencil=(-1, 0, 1), probe_weight=0.1),
        ProbeCfg(seed=1),  # baseline member: penalty exactly 0
        ProbeCfg(seed=2, probe_stencil=(-1, 1), probe_weight=0.3, probe_kind="frozen"),
        ProbeCfg(seed=3, probe_weight=0.2, probe_kind="hidden-l2"),
        ProbeCfg(seed=4, probe_stencil=(0,), probe_weight=0.1, probe_hidden=8),
    ]
    results = run_both(cfgs, rows=[40, 33, 40, 25, 38], epochs=3)
    assert_same(results, cfgs)
    pens = results[1][0]
    assert all(float(p[1]) == 0 for p in pens)
    assert float(pens[0][2]) == 0 and float(pens[1][2]) > 0  # +-1 offsets only from epoch 1


@settings(max_examples=8, deadline=None)
@given(st.sampled_from(STENCILS), st.integers(0, 50), st.floats(0.01, 1.0))
def test_any_stencil_matches_reference(stencil, seed, weight):
    cfgs = [ProbeCfg(seed=seed, probe_stencil=stencil, probe_weight=weight)]
    assert_same(run_both(cfgs, rows=[30], epochs=3), cfgs)


def test_offset_direction_matters():
    """Control for the reference comparison: k=-1 and k=+1 give different penalties (not interchangeable)."""
    pen = {}
    for k in (-1, 1):
        pens = run_both([ProbeCfg(seed=5, probe_stencil=(k,), probe_weight=1.0)], rows=[30], epochs=3)[1][0]
        pen[k] = float(pens[2][0])
    assert abs(pen[-1] - pen[1]) > 1e-4 * abs(pen[1])


def test_probe_init_is_nn_linear_default_and_shared_across_stencils():
    a = ProbeSet.create([ProbeCfg(seed=7, probe_stencil=(-1, 0, 1), probe_weight=0.1)], D_MODEL, D_MLP, "cpu")
    b = ProbeSet.create([ProbeCfg(seed=7, probe_stencil=(0,), probe_weight=0.1)], D_MODEL, D_MLP, "cpu")
    ref = RefMember(ProbeCfg(seed=7, probe_stencil=(-1, 0, 1)))
    for k in (-1, 0, 1):
        got = a.member_state(0)["probes"][str(k)]
        assert torch.equal(got["W1"], ref.probes[k][0].weight.T) and torch.equal(got["b1"], ref.probes[k][0].bias)
        assert torch.equal(got["W2"], ref.probes[k][2].weight.T) and torch.equal(got["b2"], ref.probes[k][2].bias)
    assert torch.equal(b.member_state(0)["probes"]["0"]["W1"], a.member_state(0)["probes"]["0"]["W1"])


def test_one_forward_equals_two_forwards_on_the_real_model():
    """The lead's shortcut: phase 2's fresh forward equals phase 1's because only probes changed in between."""
    cfg = ProbeCfg(seed=11, probe_stencil=(-1, 0, 1), probe_weight=0.1)
    ref, ps = RefMember(cfg), ProbeSet.create([cfg], D_MODEL, D_MLP, "cpu")
    params, tokens = model_and_data(11, 60)
    for _ in range(3):
        pen_ref = ref.epoch(params, tokens)
        g_ref = torch.autograd.grad(pen_ref, list(params.values()), allow_unused=True)
        x, h = mlp_acts(params, tokens)
        pen = ps.penalty(x[None], h[None], torch.ones(1, len(x)))[0]
        g = torch.autograd.grad(pen, list(params.values()), allow_unused=True)
        assert torch.allclose(pen, pen_ref, rtol=1e-5)
        for a, b in zip(g, g_ref, strict=True):
            assert (a is None and b is None) or torch.allclose(a, b, rtol=1e-4, atol=1e-7)
        with torch.no_grad():  # move the model so the buffer differs from now
            params["W_in"] += 0.01 * torch.randn_like(params["W_in"])


def test_k0_gradient_flows_through_both_sides_and_never_to_probes():
    cfg = ProbeCfg(seed=3, probe_stencil=(0,), probe_weight=1.0)
    ps = ProbeSet.create([cfg], D_MODEL, D_MLP, "cpu")
    x = torch.randn(1, 20, D_MODEL, requires_grad=True)
    h = torch.relu(torch.randn(1, 20, D_MLP)).requires_grad_(True)
    pen = ps.penalty(x, h, torch.ones(1, 20))
    gx, gh = torch.autograd.grad(pen.sum(), [x, h])
    assert gx.abs().sum() > 0 and gh.abs().sum() > 0
    assert all(not t.requires_grad for t in ps.p.values())
    # k=-1: only the input side; k=+1: only the hidden side (the buffer is a constant)
    for k, side in ((-1, 0), (1, 1)):
        ps = ProbeSet.create([ProbeCfg(seed=3, probe_stencil=(k,), probe_weight=1.0)], D_MODEL, D_MLP, "cpu")
        ps.penalty(x.detach(), h.detach(), torch.ones(1, 20))
        g = torch.autograd.grad(ps.penalty(x, h, torch.ones(1, 20)).sum(), [x, h], allow_unused=True)
        assert g[side] is not None and g[side].abs().sum() > 0
        assert g[1 - side] is None or not g[1 - side].any()


def test_weight_zero_gives_exact_zero_penalty_and_gradient():
    ps = ProbeSet.create([ProbeCfg(seed=0, probe_stencil=(-1, 0, 1), probe_weight=0.0)], D_MODEL, D_MLP, "cpu")
    x = torch.randn(1, 20, D_MODEL, requires_grad=True)
    h = torch.randn(1, 20, D_MLP, requires_grad=True)
    for _ in range(2):
        pen = ps.penalty(x, h, torch.ones(1, 20))
        gx, gh = torch.autograd.grad(pen.sum(), [x, h])
        assert float(pen.detach()) == 0 and not gx.any() and not gh.any()
    assert ProbeSet.create([ProbeCfg(seed=0)], D_MODEL, D_MLP, "cpu") is None


def test_state_round_trip_and_select_continue_exactly():
    cfgs = [
        ProbeCfg(seed=0, probe_stencil=(-1, 0, 1), probe_weight=0.1),
        ProbeCfg(seed=1, probe_stencil=(0, 1), probe_weight=0.2, probe_kind="frozen"),
        ProbeCfg(seed=2, probe_weight=0.1, probe_kind="hidden-l2"),
        ProbeCfg(seed=3, probe_stencil=(-1,), probe_weight=0.5),
    ]
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn(4, 30, D_MODEL, generator=g) for _ in range(5)]
    hs = [torch.relu(torch.randn(4, 30, D_MLP, generator=g)) for _ in range(5)]
    mask = torch.ones(4, 30)
    mask[1, 25:] = 0
    ps = ProbeSet.create(cfgs, D_MODEL, D_MLP, "cpu")
    for t in range(3):
        ps.penalty(xs[t], hs[t], mask)
    states = [ps.member_state(i) for i in range(4)]
    restored = ProbeSet.restore(cfgs, states, D_MODEL, D_MLP, "cpu")
    fresh = ProbeSet.create(cfgs, D_MODEL, D_MLP, "cpu")
    for t in (3, 4):
        a, b, c = (s.penalty(xs[t], hs[t], mask) for s in (ps, restored, fresh))
        assert torch.equal(a, b)
        assert not torch.allclose(a[[0, 3]], c[[0, 3]])  # control: the state matters
    # select keeps members 3 and 0 (in that order); they continue as before, member 1 and 2 are gone
    keep_states = [ps.member_state(i) for i in (3, 0)]
    ps.select(torch.tensor([3, 0]))
    for i, s in enumerate(keep_states):
        got = ps.member_state(i)
        for k, probe in s["probes"].items():
            assert torch.equal(got["probes"][k]["W1"], probe["W1"])
            assert torch.equal(got["probes"][k]["exp_avg_sq"]["W2"], probe["exp_avg_sq"]["W2"])
        assert torch.equal(got["buffer"]["mlp_in"], s["buffer"]["mlp_in"])
    full = ProbeSet.restore(cfgs, [ps_state for ps_state in [None] * 4], D_MODEL, D_MLP, "cpu")
    assert full is not None
    again = ProbeSet.restore([cfgs[3], cfgs[0]], keep_states, D_MODEL, D_MLP, "cpu")
    x5, h5 = torch.randn(2, 30, D_MODEL, generator=g), torch.relu(torch.randn(2, 30, D_MLP, generator=g))
    assert torch.equal(ps.penalty(x5, h5, mask[[3, 0]]), again.penalty(x5, h5, mask[[3, 0]]))


def test_restore_refuses_mismatched_settings():
    cfg = ProbeCfg(seed=0, probe_stencil=(-1, 0), probe_weight=0.1)
    state = ProbeSet.create([cfg], D_MODEL, D_MLP, "cpu").member_state(0)
    with pytest.raises(BumpsError, match="stencil"):
        ProbeSet.restore([ProbeCfg(seed=0, probe_stencil=(0,), probe_weight=0.1)], [state], D_MODEL, D_MLP, "cpu")
    with pytest.raises(BumpsError, match="hidden"):
        ProbeSet.restore(
            [ProbeCfg(seed=0, probe_stencil=(-1, 0), probe_weight=0.1, probe_hidden=8)], [state], D_MODEL, D_MLP, "cpu"
        )


@pytest.mark.parametrize(
    "args,match",
    [
        (((2,), 0.1, 64, 1e-3, "learned"), "from -1, 0, 1"),
        (((0, 0), 0.1, 64, 1e-3, "learned"), "twice"),
        (((0,), -0.1, 64, 1e-3, "learned"), "`probe_weight`"),
        (((0,), 0.1, 0, 1e-3, "learned"), "`probe_hidden`"),
        (((0,), 0.1, -4, 1e-3, "learned"), "`probe_hidden`"),
        (((0,), 0.1, 64, 0.0, "learned"), "`probe_lr`"),
        (((0,), float("nan"), 64, 1e-3, "learned"), "`probe_weight`"),
        (((0,), 0.1, 64, 1e-3, "x"), "`probe_kind`"),
    ],
)
def test_bad_probe_settings_are_refused(args, match):
    with pytest.raises(BumpsError, match=match):
        check_probe_settings(*args)
    assert check_probe_settings((1, -1, 0), 0.1, 64, 1e-3, "learned") == (-1, 0, 1)


# ---------------------------------------------------------------------------- through the trainer

TINY = dict(p=11, train_frac=0.7, d_model=16, d_mlp=32, lr=0.01, epochs=12, eval_every=4, checkpoint_every=0)


@pytest.fixture(scope="module")
def weight_zero_runs(tmp_path_factory):
    from bumps.modadd.train import train

    tmp = tmp_path_factory.mktemp("w0")
    return [
        train(ModAddConfig.from_preset("tl-demo", **TINY, **extra), tmp / f"{i}.pt")
        for i, extra in enumerate(
            [{}, dict(probe_stencil=(-1, 0, 1), probe_weight=0.0), dict(probe_stencil=(-1, 0, 1), probe_weight=0.1)]
        )
    ]


def test_weight_zero_trajectory_is_bitwise_the_baseline(weight_zero_runs):
    base, zero, _ = weight_zero_runs
    for k, v in base["final_params"].items():
        assert torch.equal(v, zero["final_params"][k]), k


def test_weight_zero_trajectory_is_the_baseline(weight_zero_runs):
    base, zero, some = weight_zero_runs
    for k, v in base["final_params"].items():
        assert torch.allclose(v, zero["final_params"][k], rtol=0, atol=1e-6), k
    assert (base["final_params"]["W_in"] - some["final_params"]["W_in"]).abs().max() > 1e-4  # control
    assert zero["probe"]["probes"]["0"]["step"] == 12 and zero["probe"]["probes"]["1"]["step"] == 11
    assert zero["config"]["probe_choices"]["mse"].startswith("mean over real train rows")


def test_probe_run_interrupt_and_resume_equals_uninterrupted(tmp_path):
    from bumps.modadd.train import Interrupted, train

    cfg = ModAddConfig.from_preset("tl-demo", probe_stencil=(-1, 0, 1), probe_weight=0.1, **TINY)
    whole = train(cfg, tmp_path / "whole.pt")
    with pytest.raises(Interrupted):
        train(cfg, tmp_path / "part.pt", stop_at=5)
    resumed = train(cfg, tmp_path / "part.pt", resume=tmp_path / "part.pt")
    for k, v in whole["final_params"].items():
        assert torch.equal(v, resumed["final_params"][k]), k
    assert torch.equal(whole["probe"]["probes"]["-1"]["W2"], resumed["probe"]["probes"]["-1"]["W2"])


def _grok_cli(*args, cwd=None):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    return subprocess.run(
        [sys.executable, str(root / "cli.py"), "grok", *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


@pytest.mark.parametrize(
    "flags,match",
    [
        (["--probe-stencil", "2"], "from -1, 0, 1"),
        (["--probe-stencil", "-1,-1"], "lists an offset twice"),
        (["--probe-stencil", "0", "--probe-weight", "-1"], "--probe-weight"),
        (["--probe-stencil", "0", "--probe-hidden", "-2"], "--probe-hidden"),
    ],
)
def test_grok_probe_flags_bad_input(tmp_path, flags, match):
    res = _grok_cli("--p", "11", "--epochs", "2", "--out", str(tmp_path / "r.pt"), *flags)
    assert res.returncode == 2 and match in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "r.pt").exists()


def test_resume_probe_run_keeps_its_probe_and_refuses_other_probe_flags(tmp_path):
    out = tmp_path / "r.pt"
    small = [
        "--preset",
        "tl-demo",
        "--p",
        "11",
        "--train-frac",
        "0.7",
        "--d-model",
        "16",
        "--d-mlp",
        "32",
        "--checkpoint-every",
        "0",
    ]
    assert _grok_cli(*small, "--epochs", "3", "--probe-stencil", "-1,0,1", "--out", str(out)).returncode == 0
    before = out.read_bytes()
    res = _grok_cli(*small, "--epochs", "6", "--resume", str(out), "--probe-stencil", "0")
    assert res.returncode == 2 and "--probe-stencil=(0,) (stored (-1, 0, 1))" in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and out.read_bytes() == before
    # without probe flags the stored probe settings continue (issue: --resume FILE alone resumes as stored)
    res = _grok_cli(*small, "--epochs", "6", "--resume", str(out))
    assert res.returncode == 0, res.stderr
    run = torch.load(out, weights_only=True)
    assert list(run["config"]["probe_stencil"]) == [-1, 0, 1] and run["config"]["epochs_done"] == 6


# ---------------------------------------------------------------------------- the size-matched frozen probe


def _same_acts(n_members: int, epochs: int, rows: int = 30, seed: int = 0):
    """Per epoch, one set of activations given to every member (separate leaves, for per-member grads)."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        x = torch.randn(rows, D_MODEL, generator=g)
        h = torch.relu(torch.randn(rows, D_MLP, generator=g))
        yield (
            torch.stack([x] * n_members).requires_grad_(True),
            torch.stack([h] * n_members).requires_grad_(True),
        )


@pytest.mark.parametrize("stencil", [(-1, 0, 1), (-1, 1), (0,)])
def test_frozen_matched_value_is_the_trained_probes_and_gradient_the_frozen_probes_scaled(stencil):
    """Members see the same activations: the matched penalty equals the learned member's penalty (its
    shadow probe follows the learned probe exactly) and its gradient is the frozen member's times the ratio."""
    cfgs = [
        ProbeCfg(seed=4, probe_stencil=stencil, probe_weight=0.3),
        ProbeCfg(seed=4, probe_stencil=stencil, probe_weight=0.3, probe_kind="frozen"),
        ProbeCfg(seed=4, probe_stencil=stencil, probe_weight=0.3, probe_kind="frozen-matched"),
    ]
    ps = ProbeSet.create(cfgs, D_MODEL, D_MLP, "cpu")
    mask = torch.ones(3, 30)
    for epoch, (x, h) in enumerate(_same_acts(3, 5)):
        pen = ps.penalty(x, h, mask)
        gx, gh = torch.autograd.grad(pen.sum(), [x, h], allow_unused=True)
        learned, frozen, matched = (float(v) for v in pen.detach())
        assert matched == pytest.approx(learned, rel=1e-5, abs=1e-12), epoch
        assert matched == pytest.approx(0.3 * float(ps.last_shadow_mse[2]), rel=1e-6, abs=1e-12)
        assert float(ps.last_frozen_mse[2]) * 0.3 == pytest.approx(frozen, rel=1e-6)
        if frozen == 0:  # epoch 0 of a stencil without k = 0: no buffer, nothing to match
            assert epoch == 0 and matched == 0
            continue
        ratio = learned / frozen
        for g in (gx, gh):
            if g is not None:
                assert torch.allclose(g[2], g[1] * ratio, rtol=1e-4, atol=1e-9), epoch
        assert (epoch < 2) or abs(ratio - 1) > 1e-3  # control: the trained probe's penalty is not the frozen one's
    state = ps.member_state(2)
    assert set(state["probes"]) == {str(k) for k in stencil} | {f"shadow{k}" for k in stencil}
    learned_state = ps.member_state(0)
    for k in stencil:
        assert state["probes"][str(k)]["step"] == 0  # the frozen probe never moves
        assert state["probes"][f"shadow{k}"]["step"] == learned_state["probes"][str(k)]["step"] > 0
        assert torch.allclose(state["probes"][f"shadow{k}"]["W1"], learned_state["probes"][str(k)]["W1"], atol=1e-6)
        assert torch.equal(state["probes"][str(k)]["W1"], ps.member_state(1)["probes"][str(k)]["W1"])


def test_frozen_matched_state_round_trip_and_select_continue_exactly():
    cfgs = [
        ProbeCfg(seed=0, probe_stencil=(-1, 0, 1), probe_weight=0.1),
        ProbeCfg(seed=1, probe_stencil=(-1, 0, 1), probe_weight=0.1, probe_kind="frozen-matched"),
        ProbeCfg(seed=2, probe_stencil=(0, 1), probe_weight=0.2, probe_kind="frozen-matched", probe_hidden=8),
    ]
    g = torch.Generator().manual_seed(3)
    xs = [torch.randn(3, 30, D_MODEL, generator=g) for _ in range(5)]
    hs = [torch.relu(torch.randn(3, 30, D_MLP, generator=g)) for _ in range(5)]
    mask = torch.ones(3, 30)
    mask[2, 20:] = 0
    ps = ProbeSet.create(cfgs, D_MODEL, D_MLP, "cpu")
    for t in range(3):
        ps.penalty(xs[t], hs[t], mask)
    restored = ProbeSet.restore(cfgs, [ps.member_state(i) for i in range(3)], D_MODEL, D_MLP, "cpu")
    fresh = ProbeSet.create(cfgs, D_MODEL, D_MLP, "cpu")
    keep = [ps.member_state(i) for i in (2, 1)]
    for t in (3, 4):
        a, b, c = (s.penalty(xs[t], hs[t], mask) for s in (ps, restored, fresh))
        assert torch.equal(a, b)
        assert not torch.allclose(a[1:], c[1:])  # control: the shadow state matters
    again = ProbeSet.restore([cfgs[2], cfgs[1]], keep, D_MODEL, D_MLP, "cpu")
    ps2 = ProbeSet.restore(cfgs, [None, None, None], D_MODEL, D_MLP, "cpu")
    for t in range(3):
        ps2.penalty(xs[t], hs[t], mask)
    ps2.select(torch.tensor([2, 1]))
    for t in (3, 4):
        assert torch.equal(
            ps2.penalty(xs[t][[2, 1]], hs[t][[2, 1]], mask[[2, 1]]),
            again.penalty(xs[t][[2, 1]], hs[t][[2, 1]], mask[[2, 1]]),
        )
    bad = dict(keep[1], probes={k: v for k, v in keep[1]["probes"].items() if not k.startswith("shadow")})
    with pytest.raises(BumpsError, match="no probe 'shadow-1'"):
        ProbeSet.restore([cfgs[1]], [bad], D_MODEL, D_MLP, "cpu")


def test_frozen_matched_run_interrupt_and_resume_equals_uninterrupted(tmp_path):
    from bumps.modadd.train import Interrupted, train

    cfg = ModAddConfig.from_preset(
        "tl-demo", probe_stencil=(-1, 0, 1), probe_weight=0.1, probe_kind="frozen-matched", **TINY
    )
    whole = train(cfg, tmp_path / "whole.pt")
    with pytest.raises(Interrupted):
        train(cfg, tmp_path / "part.pt", stop_at=5)
    resumed = train(cfg, tmp_path / "part.pt", resume=tmp_path / "part.pt")
    for k, v in whole["final_params"].items():
        assert torch.equal(v, resumed["final_params"][k]), k
    assert torch.equal(whole["probe"]["probes"]["shadow-1"]["W2"], resumed["probe"]["probes"]["shadow-1"]["W2"])
    assert whole["probe"]["probes"]["shadow0"]["step"] == 12 and whole["probe"]["probes"]["0"]["step"] == 0
    assert whole["config"]["probe_choices"]["frozen-matched"].startswith("frozen initial probe rescaled")
