"""The knockout test: plan, batched replay and scoring against one-run-per-instance replays."""

import numpy as np
import pytest
import torch

from bumps.detect.bumps import Bump, find_bumps
from bumps.errors import BumpsError
from bumps.lowrank.knockout import _largest_fall, competitor, plan, run_plan, summarize
from bumps.lowrank.model import Knockouts, LowRankConfig, simulate

CFG = LowRankConfig(rank=3, learned=3, dim=30, seeds=6, steps=1200, lr=0.02, record_every=20)


@pytest.fixture(scope="module")
def scored():
    run = simulate(CFG)
    items = plan(run, max_bumps=6)
    return run, items, run_plan(CFG, np.asarray(run["step"]), items)


def test_largest_fall_matches_brute_force():
    rng = np.random.default_rng(0)
    y = rng.standard_normal((40, 5))
    lo, hi = np.array([0, 3, 10, 20, 39]), np.array([39, 20, 10, 25, 39])
    got = _largest_fall(y, lo[None], hi[None])
    for j in range(5):
        seg = y[lo[j] : hi[j] + 1, j]
        want = max(seg[a] - seg[b] for a in range(len(seg)) for b in range(a, len(seg)))
        assert got[j] == pytest.approx(want)


def test_competitor_is_the_unit_gaining_most_during_the_fall_whatever_its_number():
    t = np.linspace(0, 1, 100)
    x = np.zeros((100, 4))
    x[:, 0] = np.exp(-(((t - 0.4) / 0.1) ** 2))  # the loser's bump
    x[:, 2] = t  # gains 0.6 over the fall
    x[:, 3] = 0.5 * t  # gains less
    b = find_bumps(x[:, :1])[0]
    bump = Bump((0, 0), b.start, b.peak, b.end, b.height, b.rise, b.drop, b.climbs_back)
    assert competitor(x, bump) == 2
    perm = [0, 3, 1, 2]  # renumber units: the same curve must win
    assert competitor(x[:, np.argsort(perm)], bump) == perm[2]  # old unit i sits at perm[i]


def test_plan_covers_competitor_and_every_control_at_peak_and_start(scored):
    _, items, _ = scored
    assert items
    by_bump = {}
    for it in items:
        by_bump.setdefault((it.pair, it.at), []).append(it)
    for group in by_bump.values():
        roles = sorted(it.role for it in group)
        assert roles == ["competitor", "control"]  # K = 3: one competitor, one control
        assert {it.removed[0] for it in group} | {group[0].event.index[2]} == {0, 1, 2}


def test_batched_scores_equal_one_full_run_per_instance(scored):
    run, items, records = scored
    step = np.asarray(run["step"])
    for it, rec in list(zip(items, records, strict=True))[:8]:
        e = it.event
        seed, target, loser = e.index
        start, peak, end = (int(np.searchsorted(step, s)) for s in (e.start_step, e.peak_step, e.end_step))
        pos = start if it.at == "start" else peak
        unit = torch.full((CFG.seeds,), -1)
        unit[seed] = it.removed[0]
        full = simulate(CFG, knockouts=Knockouts(unit, torch.full((CFG.seeds,), int(step[pos]))))
        y = e.sign * full[e.series][:, seed, target, loser].numpy()
        peaks = [b.peak for b in find_bumps(y, step)]
        assert rec["persists"] == any(start <= p <= end for p in peaks)
        seg = y[pos : end + 1]
        fall = max(max(seg[a] - seg[a:].min() for a in range(len(seg))), 0.0)
        assert rec["drop_ratio"] == pytest.approx(fall / e.drop, abs=1e-9)
        assert rec["role"] == it.role and rec["step"] == int(step[pos])


def test_summary_pairs_by_bump_and_bootstraps_over_seeds():
    recs = []
    for bump in range(40):
        seed = bump // 4
        recs.append(
            {"bump": bump, "seed": seed, "at": "peak", "role": "competitor", "persists": False, "drop_ratio": 0.1}
        )
        for _ in range(2):
            recs.append(
                {"bump": bump, "seed": seed, "at": "peak", "role": "control", "persists": True, "drop_ratio": 1.0}
            )
    s = summarize(recs, n_boot=200)["peak"]
    assert s["bumps"] == 40 and s["seeds"] == 10
    assert s["competitor_persists"]["value"] == 0 and s["control_persists"]["value"] == 1
    assert s["persist_gap"]["ci_low"] == 1
    assert s["competitor_drop_ratio"]["value"] == pytest.approx(0.1)
    # control: mixed outcomes give a CI of positive width
    for r in recs:
        if r["role"] == "competitor":
            r["persists"] = bool(r["seed"] % 2)
    s = summarize(recs, n_boot=200)["peak"]
    assert s["competitor_persists"]["ci_low"] < 0.5 < s["competitor_persists"]["ci_high"]


def test_plans_and_outcomes_are_the_shared_core_types(scored):
    """The toy knockout speaks bumps.knockout's types, as mod-add's does (one plan/outcome type)."""
    from bumps.knockout import BumpEvent, KnockoutPlan
    from bumps.modadd.knockout import event

    _, items, _ = scored
    assert all(isinstance(it, KnockoutPlan) and isinstance(it.event, BumpEvent) for it in items)
    assert isinstance(event("freq_norm", 3, None, 0, 5, 9, 1.0, "r.pt"), BumpEvent)
    with pytest.raises(BumpsError, match="role"):
        KnockoutPlan(items[0].event, "winner", (0,), "peak", 0)
