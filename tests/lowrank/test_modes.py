"""bumps.lowrank.modes: the mode decomposition, projected-out modes, the independent-modes superposition."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bumps.lowrank.invariants import invariant_series
from bumps.lowrank.model import LowRankConfig, initial_state, simulate
from bumps.lowrank.modes import (
    fixed_mode_series,
    gap_configs,
    independent_modes,
    learned_modes,
    modes_study,
    simulate_mode_knockouts,
    summarize_modes,
    superposed_series,
)

CFG = LowRankConfig(rank=3, dim=20, seeds=4, steps=600, singular_values=[1.0, 2.0, 3.0])


def test_learned_modes_are_the_svd_of_uvt():
    g = torch.Generator().manual_seed(0)
    u, v = (
        torch.randn(5, 30, 4, generator=g, dtype=torch.float64),
        torch.randn(5, 30, 4, generator=g, dtype=torch.float64),
    )
    sigma, p, q = learned_modes(u, v)
    full = u @ v.transpose(-1, -2)
    assert torch.allclose(sigma, torch.linalg.svdvals(full)[:, :4], atol=1e-10)
    assert torch.allclose(p @ torch.diag_embed(sigma) @ q.transpose(-1, -2), full, atol=1e-10)
    eye = torch.eye(4, dtype=torch.float64).expand(5, 4, 4)
    assert torch.allclose(p.transpose(-1, -2) @ p, eye, atol=1e-12)
    assert torch.allclose(q.transpose(-1, -2) @ q, eye, atol=1e-12)


@pytest.mark.parametrize("side", [0, 1])
def test_unintervened_replay_matches_the_closed_recurrence(side):
    run = simulate(CFG)
    inv = invariant_series(run)
    n = CFG.seeds
    norm, _ = simulate_mode_knockouts(
        CFG, np.arange(n), -np.ones(n, int), np.full(n, 100), np.full(n, 2), np.full(n, side)
    )
    ref = inv["target_norm_b" if side else "target_norm_a"][:, :, 2]
    np.testing.assert_allclose(norm, ref, atol=1e-10)


def test_a_removed_mode_stays_out():
    n, k = CFG.seeds, CFG.n_learned
    knock = 200
    mode = np.arange(n) % k
    norm, strength = simulate_mode_knockouts(
        CFG, np.arange(n), mode, np.full(n, knock), np.zeros(n, int), np.zeros(n, int)
    )
    t = CFG.record_every
    after = knock // t
    removed = strength[after:, np.arange(n), mode]
    assert np.abs(removed).max() < 1e-12  # p_jᵀ UVᵀ q_j = 0 from the knockout on
    assert np.abs(strength[: after - 1]).max() == 0  # nothing recorded before the modes are taken
    none, _ = simulate_mode_knockouts(
        CFG, np.arange(n), -np.ones(n, int), np.full(n, knock), np.zeros(n, int), np.zeros(n, int)
    )
    np.testing.assert_array_equal(norm[:after], none[:after])  # identical up to the knockout
    assert np.abs(norm[-1] - none[-1]).max() > 1e-3  # and a real change after it


def test_superposition_of_one_target_is_the_run_itself():
    cfg = LowRankConfig(rank=1, dim=20, seeds=3, steps=300)
    run = simulate(cfg)
    sup = superposed_series(cfg)
    for name in ("inner_a", "inner_b"):
        np.testing.assert_allclose(sup[name], np.asarray(run[name]), atol=1e-12)


def test_superposition_differs_once_targets_interact():
    run = simulate(CFG)
    sup = superposed_series(CFG)
    assert np.abs(sup["inner_a"] - np.asarray(run["inner_a"])).max() > 1e-2


def test_independent_modes_counts_reproduced_bumps_per_seed():
    out = independent_modes(LowRankConfig(rank=4, dim=40, seeds=6, steps=1500))
    assert len(out["per_seed_bumps"]) == 6
    assert sum(out["per_seed_bumps"]) > 0  # rank 4 has per-unit bumps
    assert all(0 <= r <= b for r, b in zip(out["per_seed_reproduced"], out["per_seed_bumps"], strict=True))
    fm = out["fixed_modes"]
    assert fm["per_seed_bumps"] == out["per_seed_bumps"]  # the same real bumps, another model
    assert all(0 <= r <= b for r, b in zip(fm["per_seed_reproduced"], fm["per_seed_bumps"], strict=True))


def test_fixed_modes_are_exact_when_the_modes_do_not_move():
    # P(t) = X diag(f(t)) R and Q(t) = Y diag(f(t)) R (balanced factors share the units' rotation R) with
    # fixed orthogonal X, Y, R: the model is exact
    g = torch.Generator().manual_seed(1)
    orth = lambda: torch.linalg.qr(torch.randn(2, 3, 3, generator=g, dtype=torch.float64)).Q  # noqa: E731
    x, y, r_a = orth(), orth(), orth()
    r_b = r_a
    t = torch.linspace(0, 1, 50, dtype=torch.float64)
    f = torch.sigmoid((t[:, None] - torch.tensor([0.2, 0.5, 0.8], dtype=torch.float64)) * 20)  # [T, 3]
    f = f[:, None].expand(50, 2, 3) * torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)
    p = x @ (f[..., None] * r_a)
    q = y @ (f[..., None] * r_b)
    out = fixed_mode_series({"inner_a": p, "inner_b": q})
    np.testing.assert_allclose(out["inner_a"], p.numpy(), atol=1e-9)
    np.testing.assert_allclose(out["inner_b"], q.numpy(), atol=1e-9)
    np.testing.assert_allclose(out["inner_a"] @ np.swapaxes(out["inner_b"], -1, -2), (p @ q.mT).numpy(), atol=1e-9)


def test_fixed_modes_of_a_real_run_keep_its_final_matrix_close():
    run = simulate(LowRankConfig(rank=4, dim=40, seeds=4, steps=1500))
    out = fixed_mode_series(run)
    m = np.asarray(run["inner_a"]) @ np.swapaxes(np.asarray(run["inner_b"]), -1, -2)
    mf = out["inner_a"] @ np.swapaxes(out["inner_b"], -1, -2)
    assert np.abs(m[-1] - mf[-1]).max() < 0.2 * np.abs(m[-1]).max()


def test_gap_configs_keep_seeds_and_set_strengths():
    cfgs = gap_configs(CFG, (0.0, 0.5))
    assert cfgs[0.0].strengths() == [1.0, 1.0, 1.0]
    assert cfgs[0.5].strengths() == [1.0, 1.5, 2.0]
    a0, a1 = initial_state(cfgs[0.0])["a"], initial_state(cfgs[0.5])["a"]
    assert torch.equal(a0, a1)


def test_summary_pairs_rival_with_the_other_modes():
    def bump(seed, rival, drops, persist):
        modes = [{"drop_ratio": d, "persists": p} for d, p in zip(drops, persist, strict=True)]
        return {"seed": seed, "rival": rival, "modes": modes, "none": {"drop_ratio": 1.0, "persists": True}}

    row = lambda gap, bumps: {  # noqa: E731
        "gap": gap,
        "strengths": [1.0],
        "seeds": 4,
        "seeds_with_invariant_bumps": len(bumps),
        "invariant_bumps": len(bumps),
        "per_unit_bumps": 0,
        "bumps": bumps,
        "independent": {"per_seed_bumps": [2, 0], "per_seed_reproduced": [1, 0], "superposed_bumps": 3},
    }
    study = {
        "rows": [
            row(0.0, [bump(9, 0, [0.0, 1.0, 1.0], [False, True, True])]),  # g = 0: not in the knockout pool
            row(
                1.0, [bump(0, 1, [1.0, 0.2, 0.6], [True, False, True]), bump(1, 0, [0.5, 0.9, 0.7], [True, True, True])]
            ),
        ]
    }
    s = summarize_modes(study)
    ko = s["knockout"]
    assert ko["bumps"] == 2 and ko["seeds"] == 2
    # seed 0: median(1.0, 0.6) - 0.2 = 0.6, persistence 1 - 0 = 1; seed 1: median(0.9, 0.7) - 0.5 = 0.3, 0
    assert ko["drop_gap"][0] == pytest.approx(0.45)
    assert ko["persist_gap"][0] == pytest.approx(0.5)
    assert ko["drop_gap_positive"] == 2
    assert s["per_gap"][0]["independent_reproduced"] == 1


@pytest.mark.slow
def test_modes_study_runs_every_gap():
    study = modes_study(LowRankConfig(rank=4, dim=40, seeds=8, steps=1500), gaps=(0.0, 1.0))
    s = summarize_modes(study)
    assert [g["gap"] for g in s["per_gap"]] == [0.0, 1.0]
    for row in study["rows"]:
        for b in row["bumps"]:
            assert b["none"]["persists"] and abs(b["none"]["drop_ratio"] - 1) < 1e-6
