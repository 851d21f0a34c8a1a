"""bumps.induction.train: what a run records, ensembles, exact resume, and knockout semantics."""

from __future__ import annotations

import pytest
import torch

from bumps.adamw import AdamWState, adamw_step
from bumps.ensemble import Interrupted
from bumps.errors import BumpsError
from bumps.induction.model import HEAD_PARAMS, InductionConfig, forward, init_params, token_losses
from bumps.induction.train import run_paths, train_induction
from bumps.io.runfile import atomic_save, safe_load
from bumps.recorder import load_recorded

SMALL = dict(n_ctx=25, vocab=20, sub_len=4, d_model=16, n_heads=2, batch_size=8, lr=1e-2, warmup=0)


def _cfg(seed: int = 0, **kw) -> InductionConfig:
    return InductionConfig(**{**SMALL, "seed": seed, "steps": 12, "record_every": 1, "checkpoint_every": 4, **kw})


def test_records_every_series_with_named_axes(tmp_path):
    run = train_induction([_cfg(record_every=3)], [tmp_path / "r.pt"], autosave_every=0)[0]
    assert run["step"].tolist() == [0, 3, 6, 9]
    assert run["induction"].shape == (4, 2, 2) and run["layer_induction"].shape == (4, 2)
    assert run["axes"]["prev_token"] == ["layer", "head"] and run["axes"]["layer_prev_token"] == ["layer"]
    assert run["config"]["setup"] == "nanda-induction" and "command" in run
    assert sorted(run["checkpoints"], key=int) == ["0", "4", "8", "12"]
    assert load_recorded(tmp_path / "r.pt")["loss"].shape == (4,)


def test_ensemble_members_equal_their_single_runs(tmp_path):
    together = train_induction([_cfg(0), _cfg(1)], [tmp_path / "a0.pt", tmp_path / "a1.pt"], autosave_every=0)
    alone = train_induction([_cfg(1)], [tmp_path / "b1.pt"], autosave_every=0)[0]
    assert torch.allclose(together[1]["loss"], alone["loss"], atol=1e-5)
    assert not torch.allclose(together[0]["loss"], together[1]["loss"])


def test_interrupted_run_resumes_to_the_uninterrupted_one(tmp_path):
    full = train_induction([_cfg(0)], [tmp_path / "full.pt"], autosave_every=0)[0]
    with pytest.raises(Interrupted, match="interrupted at step 5; saved .*rerun the same command"):
        train_induction([_cfg(0)], [tmp_path / "cut.pt"], autosave_every=0, stop_at=5)
    part = safe_load(tmp_path / "cut.pt")
    assert part["config"]["final"] is False and part["step"].tolist() == [0, 1, 2, 3, 4]
    resumed = train_induction([_cfg(0)], [tmp_path / "cut.pt"], autosave_every=0)[0]
    assert torch.equal(resumed["step"], full["step"])
    for key in ("loss", "induction", "layer_prev_token"):
        assert torch.equal(resumed[key], full[key]), key
    assert all(torch.equal(resumed["resume"]["params"][k], full["resume"]["params"][k]) for k in HEAD_PARAMS)
    longer = train_induction([_cfg(0, steps=16)], [tmp_path / "cut.pt"], autosave_every=0)[0]
    assert len(longer["step"]) == 16 and torch.equal(longer["loss"][:12], full["loss"])


def test_finite_training_set_records_the_test_set(tmp_path):
    run = train_induction([_cfg(train_size=16, test_size=10)], [tmp_path / "r.pt"], autosave_every=0)[0]
    assert run["test_loss"].shape == (12,) and run["test_loss_pred"].shape == (12,)


def _continue(tmp_path, name, knockout=(), at="4"):
    base = safe_load(tmp_path / "base.pt")
    cfg = _cfg(0, knockout=knockout, origin=f"base.pt@{at}")
    return train_induction([cfg], [tmp_path / name], autosave_every=0, starts=[base["checkpoints"][at]])[0]


def test_knocked_out_head_stays_exactly_zero_and_the_plain_continuation_is_the_original(tmp_path):
    base = train_induction([_cfg(0)], [tmp_path / "base.pt"], autosave_every=0)[0]
    ko = _continue(tmp_path, "ko.pt", knockout=((1, 0),))
    final = ko["resume"]["params"]
    for name in HEAD_PARAMS:
        assert (final[name][1, 0] == 0).all(), name
        assert (ko["resume"]["optimizer"]["exp_avg"][name][1, 0] == 0).all()
        assert final[name][1, 1].abs().sum() > 0
    assert ko["step"].tolist() == list(range(4, 12)) and (ko["head_out_norm"][:, 1, 0] == 0).all()
    plain = _continue(tmp_path, "plain.pt")
    assert torch.equal(plain["loss"], base["loss"][4:]) and torch.equal(plain["induction"], base["induction"][4:])
    assert not torch.allclose(ko["loss"], base["loss"][4:])


def test_knockout_at_step_zero_is_the_model_without_that_head(tmp_path):
    cfg = _cfg(0, knockout=((0, 1),))
    run = train_induction([cfg], [tmp_path / "ko.pt"], autosave_every=0)[0]
    plain = _cfg(0)
    params = {k: v[None].clone() for k, v in init_params(plain).items()}
    mask = torch.ones(1, 2, 2)
    mask[0, 0, 1] = 0.0
    opt = AdamWState.zeros(params)
    losses = []
    from bumps.induction.train import _Member

    member = _Member(plain, tmp_path / "unused.pt", "test")
    for step in range(cfg.steps):
        tokens = member.batch(step)[0][None]
        for v in params.values():
            v.requires_grad_(True)
        logits, _ = forward(params, tokens, head_mask=mask)
        loss = token_losses(logits, tokens).mean()
        grads = dict(zip(params, torch.autograd.grad(loss, list(params.values())), strict=True))
        for v in params.values():
            v.requires_grad_(False)
        losses.append(float(loss.detach()))
        one = torch.ones(1, dtype=torch.float64)
        adamw_step(params, grads, opt, one * cfg.lr, one * cfg.weight_decay, cfg.betas, cfg.eps)
    assert torch.allclose(run["loss"].double(), torch.tensor(losses, dtype=torch.float64), atol=1e-6, rtol=0)


def test_bad_input(tmp_path):
    with pytest.raises(BumpsError, match="need equal d_model"):
        train_induction([_cfg(0), _cfg(1, d_model=8)], [tmp_path / "a.pt", tmp_path / "b.pt"])
    with pytest.raises(BumpsError, match="must contain \\{seed\\}"):
        run_paths([_cfg(0), _cfg(1)], tmp_path / "x.pt")
    with pytest.raises(BumpsError, match="knockout \\(2, 0\\) is not \\(layer, head\\)"):
        _cfg(0, knockout=((2, 0),)).validate()
    with pytest.raises(BumpsError, match="`steps` must be a positive integer"):
        _cfg(0, steps=0).validate()
    train_induction([_cfg(0)], [tmp_path / "r.pt"], autosave_every=0)
    with pytest.raises(BumpsError, match="other settings \\(lr\\)"):
        train_induction([_cfg(0, lr=1e-3)], [tmp_path / "r.pt"])
    atomic_save({"not": "a run"}, tmp_path / "other.pt")
    with pytest.raises(BumpsError, match="not an induction run"):
        train_induction([_cfg(0)], [tmp_path / "other.pt"])
