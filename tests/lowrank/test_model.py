"""The simulator: fast paths equal the obvious autograd loop; known dynamics hold."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bumps.errors import BumpsError
from bumps.lowrank.model import LowRankConfig, simulate, simulate_reference

KEYS = ("loss", "inner_a", "inner_b", "norm_a", "norm_b")


def _max_diff(cfg):
    fast, ref = simulate(cfg), simulate_reference(cfg)
    return {k: (fast[k] - ref[k]).abs().max().item() for k in KEYS}


@pytest.mark.parametrize(
    "rank,learned,wd,targets",
    [
        (1, 1, 0.0, "random"),
        (3, 3, 0.0, "orthonormal"),
        (2, 5, 0.05, "random"),
        (4, 2, 0.0, "random"),
    ],
)
def test_fast_gd_equals_autograd_gd(rank, learned, wd, targets):
    cfg = LowRankConfig(
        rank=rank,
        learned=learned,
        dim=24,
        seeds=3,
        steps=400,
        lr=0.03,
        init_scale=0.2,
        weight_decay=wd,
        targets=targets,
        record_every=9,
        singular_values=[1.0 + 0.5 * m for m in range(rank)],
    )
    assert max(_max_diff(cfg).values()) < 1e-10


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_adam_paths_equal_torch_optim(optimizer, wd):
    cfg = LowRankConfig(
        rank=3, dim=20, seeds=2, steps=300, lr=0.01, optimizer=optimizer, weight_decay=wd, record_every=5
    )
    assert max(_max_diff(cfg).values()) < 1e-9


def test_record_layout_and_shapes():
    cfg = LowRankConfig(rank=3, learned=5, dim=10, seeds=4, steps=25, record_every=10)
    run = simulate(cfg)
    assert run["step"].tolist() == [0, 10, 20, 25]
    assert run["step"].dtype == torch.int64
    t = 4
    assert run["loss"].shape == (t, 4)
    assert run["inner_a"].shape == run["inner_b"].shape == (t, 4, 3, 5)
    assert run["norm_a"].shape == run["norm_b"].shape == (t, 4, 5)
    assert run["config"]["learned"] == 5 and "torch" in run["config"]["versions"]


def test_seed_i_does_not_depend_on_how_many_seeds_run():
    small = simulate(LowRankConfig(rank=2, dim=12, seeds=2, steps=50, seed=7))
    big = simulate(LowRankConfig(rank=2, dim=12, seeds=5, steps=50, seed=7))
    assert torch.equal(small["inner_a"], big["inner_a"][:, :2])
    other = simulate(LowRankConfig(rank=2, dim=12, seeds=2, steps=50, seed=8))
    assert not torch.equal(small["inner_a"], other["inner_a"])


def test_same_config_same_numbers():
    cfg = LowRankConfig(rank=4, dim=30, seeds=3, steps=100)
    assert torch.equal(simulate(cfg)["loss"], simulate(cfg)["loss"])


def _balance_drift(lr, time=2.0):
    cfg = LowRankConfig(rank=3, dim=20, seeds=4, steps=round(time / lr), lr=lr, init_scale=0.3, record_every=1)
    out = simulate(cfg)
    g_u, g_v = out["gram_a_final"], out["gram_b_final"]
    from bumps.lowrank.model import initial_state

    st0 = initial_state(cfg)
    at = lambda x: x.transpose(-1, -2)  # noqa: E731
    d0 = at(st0["U"]) @ st0["U"] - at(st0["V"]) @ st0["V"]
    return (g_u - g_v - d0).abs().max().item()


def test_balancedness_conserved_to_order_lr_squared():
    # Each step changes UᵀU − VᵀV by O(lr²), so over a fixed time the drift is O(lr).
    coarse, fine = _balance_drift(0.02), _balance_drift(0.01)
    assert fine < 0.05
    assert 1.7 < coarse / fine < 2.3


def _half_loss_step(run) -> torch.Tensor:
    """First recorded step at which the loss is below half of ½‖A‖² (per seed)."""
    half = 0.25 * run["config"]["singular_values"][0] ** 2  # rank 1, unit vectors: ½‖A‖² = s²/2
    below = run["loss"] < half
    first = below.float().argmax(0)
    assert below.any(0).all(), "loss never fell below half its target value"
    return run["step"][first].double()


@pytest.mark.parametrize("s", [1.0, 2.0])
def test_saxe_timescale_init_scale_over_10_delays_by_ln10_over_lr_s(s):
    lr = 0.005
    base = dict(
        rank=1, dim=100, seeds=32, steps=round(12 / (lr * s)) + 2000, lr=lr, singular_values=[s], record_every=1
    )
    t1 = _half_loss_step(simulate(LowRankConfig(init_scale=1e-3, **base)))
    t2 = _half_loss_step(simulate(LowRankConfig(init_scale=1e-4, **base)))
    predicted = math.log(10) / (lr * s)
    measured = (t2 - t1).mean().item()
    assert abs(measured - predicted) / predicted < 0.03, (measured, predicted)


def test_weight_decay_stops_minimising_the_original_loss():
    free = simulate(LowRankConfig(rank=2, dim=20, seeds=2, steps=3000, lr=0.02))
    decayed = simulate(LowRankConfig(rank=2, dim=20, seeds=2, steps=3000, lr=0.02, weight_decay=0.05))
    assert free["loss"][-1].max() < 1e-8
    assert decayed["loss"][-1].min() > 1e-4


@settings(max_examples=15, deadline=None)
@given(rank=st.integers(-3, 0))
def test_bad_rank_is_refused(rank):
    with pytest.raises(BumpsError, match="`rank`"):
        LowRankConfig(rank=rank).validate()


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("lr", float("inf"), "`lr`"),
        ("lr", -1.0, "`lr`"),
        ("steps", -5, "`steps`"),
        ("rank", 101, "exceeds `dim`"),
        ("optimizer", "sgd", "`optimizer`"),
        ("singular_values", [1.0, 2.0], "`singular_values`"),
        ("init_scale", 0.0, "`init_scale`"),
    ],
)
def test_bad_values_are_refused_with_the_flag_named(field, value, match):
    with pytest.raises(BumpsError, match=match):
        LowRankConfig(**{field: value}).validate()


def test_thread_count_does_not_change_the_numbers():
    """`bumps simulate` picks its intra-op threads; the records must not depend on the choice."""
    cfg = LowRankConfig(rank=4, dim=30, seeds=512, steps=100, record_every=5)  # ops above torch's 32k grain
    before = torch.get_num_threads()
    try:
        runs = []
        for n in (1, 2):
            torch.set_num_threads(n)
            runs.append(simulate(cfg))
    finally:
        torch.set_num_threads(before)
    for k in KEYS:
        assert torch.equal(runs[0][k], runs[1][k]), k


def test_float32_records_are_the_float64_records_rounded():
    from bumps.lowrank.model import cast_records

    run = simulate(LowRankConfig(rank=2, dim=10, seeds=4, steps=100))
    small = cast_records(run, "float32")
    assert small["config"]["record_dtype"] == "float32" and "record_dtype" not in run["config"]
    for k in KEYS:
        assert small[k].dtype == torch.float32 and run[k].dtype == torch.float64
        assert torch.equal(small[k], run[k].float())
    assert small["inner_a_final"].dtype == torch.float64  # only the recorded series change
    with pytest.raises(BumpsError, match="`record_dtype`"):
        cast_records(run, "float16")


# ---------------------------------------------------------------------------
# Knockouts


def _autograd_run(a, b, s, u, v, steps, lr, optimizer="gd", wd=0.0):
    """Independent reference: one seed, autograd on ½‖A − UVᵀ‖², torch.optim; returns aᵀU per step."""
    u, v = u.clone().requires_grad_(True), v.clone().requires_grad_(True)
    target = (a * s) @ b.T
    opt = (
        torch.optim.SGD([u, v], lr=lr, weight_decay=wd)
        if optimizer == "gd"
        else torch.optim.Adam([u, v], lr=lr, weight_decay=wd)
    )
    rows = []
    for _ in range(steps + 1):
        rows.append((a.T @ u).detach().clone())
        opt.zero_grad()
        (0.5 * (target - u @ v.T).pow(2).sum()).backward()
        opt.step()
    return torch.stack(rows)


@pytest.mark.parametrize("optimizer", ["gd", "adam"])
def test_knockout_at_step_0_equals_a_run_with_k_minus_1_units(optimizer):
    from bumps.lowrank.model import Knockouts, initial_state

    cfg = LowRankConfig(
        rank=3, learned=4, dim=16, seeds=3, steps=120, lr=0.03, init_scale=0.3, record_every=1, optimizer=optimizer
    )
    knocked = simulate(cfg, knockouts=Knockouts(torch.tensor([1, 3, 0]), torch.tensor([0, 0, 0])))
    st0 = initial_state(cfg)
    for i, unit in enumerate([1, 3, 0]):
        keep = [k for k in range(4) if k != unit]
        ref = _autograd_run(
            st0["a"][i], st0["b"][i], st0["s"], st0["U"][i][:, keep], st0["V"][i][:, keep], cfg.steps, cfg.lr, optimizer
        )
        got = knocked["inner_a"][:, i]
        assert (got[:, :, keep] - ref).abs().max() < 1e-9
        assert got[:, :, unit].abs().max() == 0  # the removed unit stays exactly zero


@pytest.mark.parametrize("optimizer,wd", [("gd", 0.0), ("gd", 0.05), ("adam", 0.0), ("adamw", 0.1)])
def test_knockout_mid_run_equals_autograd_reference_with_the_same_knockout(optimizer, wd):
    from bumps.lowrank.model import Knockouts

    cfg = LowRankConfig(
        rank=3,
        learned=4,
        dim=12,
        seeds=4,
        steps=120,
        lr=0.05,
        init_scale=0.3,
        record_every=7,
        optimizer=optimizer,
        weight_decay=wd,
    )
    ko = Knockouts(torch.tensor([2, -1, 0, 3]), torch.tensor([56, 50, 7, 120]))
    fast, ref = simulate(cfg, knockouts=ko), simulate_reference(cfg, knockouts=ko)
    tol = 1e-10 if optimizer == "gd" else 1e-9
    for key in KEYS:
        assert (fast[key] - ref[key]).abs().max() < tol, key
    plain = simulate(cfg)
    # the knockout changes the dynamics after its step, not before (control)
    before = fast["step"] < 56
    assert torch.equal(fast["inner_a"][before, 0], plain["inner_a"][before, 0])
    assert (fast["inner_a"][-1, 0] - plain["inner_a"][-1, 0]).abs().max() > 1e-3
    assert torch.equal(fast["inner_a"][:, 1], plain["inner_a"][:, 1])  # unit -1: no knockout


@pytest.mark.parametrize("optimizer", ["gd", "adamw"])
def test_batched_knockout_instances_equal_one_seed_runs(optimizer):
    from bumps.lowrank.model import Knockouts, simulate_knockouts

    cfg = LowRankConfig(
        rank=2,
        learned=3,
        dim=12,
        seeds=3,
        steps=200,
        lr=0.03,
        init_scale=0.3,
        record_every=10,
        optimizer=optimizer,
        weight_decay=0.01,
    )
    seed, unit, step = torch.tensor([2, 0, 2, 1]), torch.tensor([0, 2, -1, 1]), torch.tensor([50, 0, 0, 200])
    wt, wu = torch.tensor([1, 0, 1, 0]), torch.tensor([2, 1, 0, 2])
    got = simulate_knockouts(cfg, seed, unit, step, wt, wu)
    assert got.shape == (21, 4, 2)
    for i in range(4):
        ko = Knockouts(torch.full((3,), int(unit[i])), torch.full((3,), int(step[i])))
        full = simulate(cfg, knockouts=ko)
        s = int(seed[i])
        assert torch.allclose(got[:, i, 0], full["inner_a"][:, s, wt[i], wu[i]], atol=1e-12)
        assert torch.allclose(got[:, i, 1], full["inner_b"][:, s, wt[i], wu[i]], atol=1e-12)


def test_bad_knockouts_are_refused():
    from bumps.lowrank.model import Knockouts

    cfg = LowRankConfig(rank=2, dim=8, seeds=2, steps=10)
    with pytest.raises(BumpsError, match="units must be in"):
        simulate(cfg, knockouts=Knockouts(torch.tensor([0, 5]), torch.tensor([0, 0])))
    with pytest.raises(BumpsError, match="steps must be in"):
        simulate(cfg, knockouts=Knockouts(torch.tensor([0, 1]), torch.tensor([0, 11])))
    with pytest.raises(BumpsError, match="one unit and one step per instance"):
        simulate(cfg, knockouts=Knockouts(torch.tensor([0]), torch.tensor([0])))


# ---------------------------------------------------------------------------- defaults of issue 23


def test_default_run_names_carry_seeds_and_a_hash_of_other_settings():
    from bumps.lowrank.model import default_run_path

    assert str(default_run_path(LowRankConfig(seeds=64))) == "runs/lowrank_r4_d100_gd_n64_seed0.pt"
    assert str(default_run_path(LowRankConfig(rank=2, dim=8, seed=3))) == "runs/lowrank_r2_d8_gd_n16_seed3.pt"
    a = default_run_path(LowRankConfig(lr=0.02))
    b = default_run_path(LowRankConfig(lr=0.03))
    c = default_run_path(LowRankConfig(learned=6))
    assert len({a, b, c, default_run_path(LowRankConfig())}) == 4
    assert a.name.startswith("lowrank_r4_d100_gd_n16_") and a.name.endswith("_seed0.pt")


def test_memory_estimate_is_linear_in_seeds_and_refuses_ten_million():
    from bumps.lowrank.model import estimate_memory
    from bumps.memory import check_fits

    one, two = estimate_memory(LowRankConfig(seeds=1000)), estimate_memory(LowRankConfig(seeds=2000))
    assert all(two[k] == 2 * one[k] for k in one)
    with pytest.raises(BumpsError, match="needs about"):
        check_fits(estimate_memory(LowRankConfig(seeds=10_000_000)), "this simulation")
