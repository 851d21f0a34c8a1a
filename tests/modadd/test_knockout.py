"""Mod-add knockouts: continuations from a checkpoint reproduce the run; knocked-out parts stay out."""

import numpy as np
import pytest
import torch

from bumps.modadd.knockout import clearest_events, event, freq_of, outcome, plan_frequency, plan_neuron, run_knockouts
from bumps.modadd.model import ModAddConfig
from bumps.modadd.train import train

TINY = dict(
    p=23,
    train_frac=0.5,
    d_model=32,
    d_mlp=64,
    n_heads=2,
    lr=3e-3,
    eval_every=10,
    checkpoint_every=50,
    dtype="float64",
    neuron_every=0,  # the neuron table at every evaluation (record indices below)
)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    path = tmp_path_factory.mktemp("ko") / "base.pt"
    run = train(ModAddConfig.from_preset("nanda", epochs=160, **TINY), path)
    run["key_freqs"] = torch.tensor([2, 5])  # planted: the tiny run need not have grokked
    return str(path), run


def test_neuron_plans_read_the_table_at_its_own_steps(tmp_path):
    """With a coarser neuron cadence the planner indexes neuron_step, not the evaluation steps."""
    path = tmp_path / "coarse.pt"
    run = train(ModAddConfig.from_preset("nanda", epochs=160, **{**TINY, "neuron_every": 50}), path)
    assert run["neuron_step"].tolist() == [0, 50, 100, 150, 160]
    _, comp, _ = plan_neuron(str(path), run, event("neuron_freq", 2, 7, 40, 100, 160), 4)
    nf = run["neuron_freq"][:, :, 1].numpy()
    gains = nf[4] - nf[2]  # neuron records of epochs 160 and 100
    gains[7] = -np.inf
    assert set(comp.removed) == set(np.argsort(-gains, kind="stable")[:4].tolist())


def test_plans_pick_competitors_and_matched_controls(base):
    path, run = base
    ev = event("neuron_freq", 2, 7, 40, 100, 160)
    none, comp, ctrl = plan_neuron(path, run, ev, 4)
    nf = run["neuron_freq"][:, :, 1].numpy()
    p, e = 10, 16  # record indices of steps 100 and 160
    gains = nf[e] - nf[p]
    assert none.role == "none" and 7 not in comp.removed and 7 not in ctrl.removed
    assert not set(comp.removed) & set(ctrl.removed) and len(ctrl.removed) == 4
    others = np.delete(gains, [7, *comp.removed])
    assert gains[list(comp.removed)].min() >= others.max()
    fnone, fcomp, fctrl = plan_frequency(path, run, event("freq_norm", 2, None, 40, 100, 160))
    assert fcomp.removed == (5,) and fctrl.removed[0] not in (2, 5)
    # a W_L bump is planned on the W_L norms: the control matches the competitor's W_L norm at the peak
    _, wcomp, wctrl = plan_frequency(path, run, event("freq_norm_wl", 2, None, 40, 100, 160))
    wl = run["freq_norm_wl"].numpy()
    others = [k for k in range(1, wl.shape[1] + 1) if k not in (2, 5)]
    assert wcomp.removed == (5,) and wctrl.removed == (min(others, key=lambda k: abs(wl[p, k - 1] - wl[p, 4])),)


def test_clearest_events_rank_by_drop_or_relative_drop():
    row = dict(key=True, phase="cleanup", start_step=0, end_step=9)
    rows = [
        {
            **row,
            "series": "freq_norm",
            "index": [3],
            "freq": 4,
            "unit": None,
            "peak_step": 5,
            "drop": 1.0,
            "height": 2.0,
        },
        {
            **row,
            "series": "freq_norm_wl",
            "index": [6],
            "freq": 7,
            "unit": None,
            "peak_step": 6,
            "drop": 3.0,
            "height": 30.0,
        },
        {
            **row,
            "series": "freq_norm",
            "index": [3],
            "freq": 4,
            "unit": None,
            "peak_step": 8,
            "drop": 0.5,
            "height": 1.0,
        },  # same curve again: one event per curve
        {
            **row,
            "series": "freq_norm",
            "index": [1],
            "freq": 2,
            "unit": None,
            "peak_step": 1,
            "drop": 9.0,
            "height": 9.0,
            "phase": "memorisation",
        },
    ]  # memorisation: never chosen
    both = ("freq_norm", "freq_norm_wl")
    assert [freq_of(e) for e in clearest_events(rows, both, 3)] == [7, 4]  # drop 3 > 1
    assert [freq_of(e) for e in clearest_events(rows, both, 3, relative=True)] == [4, 7]  # 0.5 > 0.1
    assert [e.series for e in clearest_events(rows, "freq_norm", 3)] == ["freq_norm"]


def test_continuations_reproduce_the_run_and_knockouts_hold(base, tmp_path):
    path, run = base
    ev = event("neuron_freq", 2, 7, 40, 120, 160)  # peak 120: continue from the checkpoint at 100
    plans = plan_neuron(path, run, ev, 3) + plan_frequency(path, run, event("freq_norm", 2, None, 40, 120, 160))
    results = run_knockouts(plans, tmp_path)
    assert [r["from_epoch"] for r in results] == [100] * 6
    baseline = results[0]
    assert baseline["role"] == "none" and baseline["drop_ratio"] == pytest.approx(1.0, abs=1e-9)
    files = sorted(tmp_path.glob("*neuron_freq*competitor*.pt"))
    comp = torch.load(files[0], weights_only=True)
    dead = list(plans[1].removed)
    assert (comp["neuron_freq"][1:, dead] == 0).all() and (comp["final_params"]["W_in"][:, dead] == 0).all()
    none = torch.load(sorted(tmp_path.glob("*neuron_freq*none*.pt"))[0], weights_only=True)
    torch.testing.assert_close(none["neuron_freq"], run["neuron_freq"][10:], rtol=1e-8, atol=1e-10)
    # rerunning trains nothing and gives the same outcomes
    assert run_knockouts(plans, tmp_path) == results
    assert run_knockouts(plans, tmp_path, train=False) == results
    assert outcome(run, plans[0], none) == baseline


def test_continuations_one_at_a_time_match_one_ensemble(base, tmp_path):
    """``members=1`` trains each continuation alone: the same outcomes, and progress counts every one."""
    path, run = base
    plans = plan_neuron(path, run, event("neuron_freq", 2, 7, 40, 120, 160), 3)
    together = run_knockouts(plans, tmp_path / "together")
    seen = []
    alone = run_knockouts(
        plans, tmp_path / "alone", progress=lambda done, total, **_: seen.append((done, total)), members=1
    )
    assert [r["role"] for r in alone] == [r["role"] for r in together]
    for a, b in zip(alone, together, strict=True):
        assert a["persists"] == b["persists"] and a["drop_ratio"] == pytest.approx(b["drop_ratio"], rel=1e-6, abs=1e-9)
    assert seen[-1] == (3 * 60, 3 * 60) and all(d <= t for d, t in seen)  # 60 epochs past the checkpoint at 100
    with pytest.raises(Exception, match="`members` must be >= 1"):
        run_knockouts(plans, tmp_path / "x", members=0)
