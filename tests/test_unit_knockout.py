"""bumps.unit_knockout: knocked-out units stay exactly zero, a knockout at step 0 is the smaller model, and an
unintervened continuation from a checkpoint is the original run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from bumps.errors import BumpsError
from bumps.knockout import BumpEvent, KnockoutPlan
from bumps.unit_knockout import (
    KnockoutSchedule,
    UnitKnockout,
    apply_knockout,
    load_checkpoint,
    save_checkpoint,
    score,
)

NEURON = (("0.weight", 0), ("0.bias", 0), ("2.weight", 1))  # where hidden neuron n of the MLP lives


def _model(hidden: int = 8, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 3)).double()


def _batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1000 + step)  # data is a function of the step: continuations see the same
    x = torch.randn(32, 4, generator=g, dtype=torch.float64)
    return x, torch.stack([x[:, 0] * x[:, 1], x[:, 2].sin(), x[:, 3]], 1)


def _opt(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1, betas=(0.9, 0.98))


def _train(model, opt, start: int, stop: int, schedule: KnockoutSchedule | None = None) -> list[float]:
    losses = []
    for step in range(start, stop):
        if schedule is not None:
            schedule.before_step(step)
        x, y = _batch(step)
        loss = ((model(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_knocked_out_neuron_stays_exactly_zero():
    model = _model()
    opt = _opt(model)
    _train(model, opt, 0, 10)
    sched = KnockoutSchedule(model, [UnitKnockout((2, 5), params=NEURON, from_step=10)], opt)
    _train(model, opt, 10, 60, sched)
    w_in, b_in, w_out = model[0].weight, model[0].bias, model[2].weight
    assert w_in[[2, 5]].abs().max() == 0 and b_in[[2, 5]].abs().max() == 0 and w_out[:, [2, 5]].abs().max() == 0
    for p in (w_in, b_in):
        assert opt.state[p]["exp_avg"][[2, 5]].abs().max() == 0 and opt.state[p]["exp_avg_sq"][[2, 5]].abs().max() == 0
    hidden = model[1](model[0](_batch(0)[0]))
    assert hidden[:, [2, 5]].abs().max() == 0
    assert w_in[[0, 1, 3, 4, 6, 7]].abs().min() > 0  # the others trained on


def test_knockout_at_step_zero_equals_the_model_without_the_unit():
    big, small = _model(8), _model(7)
    keep = [0, 1, 2, 4, 5, 6, 7]  # neuron 3 removed
    with torch.no_grad():
        small[0].weight.copy_(big[0].weight[keep])
        small[0].bias.copy_(big[0].bias[keep])
        small[2].weight.copy_(big[2].weight[:, keep])
        small[2].bias.copy_(big[2].bias)
    opt_big, opt_small = _opt(big), _opt(small)
    sched = KnockoutSchedule(big, [UnitKnockout((3,), params=NEURON, from_step=0)], opt_big)
    loss_big = _train(big, opt_big, 0, 40, sched)
    loss_small = _train(small, opt_small, 0, 40)
    assert loss_big == pytest.approx(loss_small, rel=1e-12, abs=1e-14)
    assert torch.allclose(big[0].weight[keep], small[0].weight, atol=1e-12)
    assert torch.allclose(big[2].weight[:, keep], small[2].weight, atol=1e-12)
    assert torch.allclose(big[2].bias, small[2].bias, atol=1e-12)


def test_output_hook_knockout_equals_the_model_without_the_unit():
    big, small = _model(8), _model(7)
    keep = [0, 1, 2, 4, 5, 6, 7]
    with torch.no_grad():
        small[0].weight.copy_(big[0].weight[keep])
        small[0].bias.copy_(big[0].bias[keep])
        small[2].weight.copy_(big[2].weight[:, keep])
        small[2].bias.copy_(big[2].bias)
    opt_big = _opt(big)
    hooks = apply_knockout(big, UnitKnockout((3,), outputs=(("1", -1),)), opt_big)
    loss_big = _train(big, opt_big, 0, 20)
    assert loss_big == pytest.approx(_train(small, _opt(small), 0, 20), rel=1e-12, abs=1e-14)
    hooks.remove()
    assert big[1](big[0](_batch(0)[0]))[:, 3].abs().max() > 0  # the hook is gone; the unit's weights remain


def test_unintervened_continuation_equals_the_original_run(tmp_path):
    model = _model()
    opt = _opt(model)
    first = _train(model, opt, 0, 15)
    save_checkpoint(tmp_path / "ck.pt", model, opt, 15, note="test")
    rest = _train(model, opt, 15, 40)
    again = _model(seed=123)  # other weights: all of them must come from the checkpoint
    opt_again = _opt(again)
    step, extra = load_checkpoint(tmp_path / "ck.pt", again, opt_again)
    assert step == 15 and extra == {"note": "test"} and first
    cont = _train(again, opt_again, step, 40, KnockoutSchedule(again, [], opt_again))
    assert cont == rest
    for a, b in zip(model.parameters(), again.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("ko", "message"),
    [
        (UnitKnockout((1,), params=(("0.wieght", 0),)), "did you mean '0.weight'"),
        (UnitKnockout((9,), params=(("0.weight", 0),)), "unit\\(s\\) \\[9\\] out of range"),
        (UnitKnockout((1,), params=(("0.weight", 2),)), "axis 2 is out of range"),
        (UnitKnockout((1,), outputs=(("5", -1),)), "no submodule '5'"),
    ],
)
def test_bad_knockouts(ko, message):
    with pytest.raises(BumpsError, match=message):
        apply_knockout(_model(), ko)


def test_bad_specs_and_checkpoints(tmp_path):
    with pytest.raises(BumpsError, match="at least one unit"):
        UnitKnockout((), params=NEURON)
    with pytest.raises(BumpsError, match="where the units live"):
        UnitKnockout((1,))
    model = _model()
    save_checkpoint(tmp_path / "ck.pt", model, _opt(model), 0)
    other = _model(hidden=5)
    with pytest.raises(BumpsError, match="does not fit"):
        load_checkpoint(tmp_path / "ck.pt", other, _opt(other))


def test_score_reads_the_fall_between_peak_and_end():
    event = BumpEvent("loss_per_digit", (2,), 10, 20, 30, drop=2.0, group=0)
    plan = KnockoutPlan(event, "competitor", (1,), "peak", 0)
    steps = np.arange(0, 41, 5)
    curve = np.array([0, 1, 2, 3, 3.5, 3.2, 3.0, 3.0, 3.0])  # fall 3.5 -> 3.0 between steps 20 and 30
    out = score(plan, 20, steps, curve, np.array([20]))
    assert out.drop_ratio == pytest.approx(0.25) and out.persists and out.at_step == 20
    assert not score(plan, 20, steps, curve, np.array([35])).persists
    with pytest.raises(BumpsError, match="must cover"):
        score(plan, 20, steps[:4], curve[:4], np.array([]))
