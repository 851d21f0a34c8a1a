"""The induction claims on constructed runs whose answers are known, and the knockout plumbing on a tiny run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import expit

from bumps.induction.claims import (
    clearest_head_bump,
    finite_times,
    head_only,
    induction_claims,
    report_markdown,
    seed_events,
    write_report,
)
from bumps.induction.knockout import choose_heads, drop_ratio

T = np.arange(0, 3000, 5)


def fake_run(centre: float, rng_seed: int = 0, head_bump: bool = False, finite: bool = False) -> dict:
    """Loss with one logistic drop at ``centre``; layer scores rising there; optionally head 0 of layer 2
    bumps (rises, then falls as head 1 takes over) while the layer's score just rises."""
    rng = np.random.default_rng(rng_seed)
    n = len(T)
    rise = expit((T - centre) / 25)
    loss = 4.8 - 1.7 * rise + 0.01 * rng.standard_normal(n)
    ind = np.full((n, 2, 4), 0.02) + 0.002 * rng.standard_normal((n, 2, 4))
    prev = np.full((n, 2, 4), 0.05) + 0.002 * rng.standard_normal((n, 2, 4))
    ind[:, 1, 1] += 0.8 * rise
    prev[:, 0, 2] += 0.8 * rise
    if head_bump:
        bump = 0.5 * np.exp(-0.5 * ((T - centre - 400) / 60) ** 2)
        ind[:, 1, 0] += bump
        ind[:, 1, 1] += 0.5 * expit((T - centre - 400) / 30) - 0.5 * bump  # its rival takes the job over
    layer_ind = np.stack([np.full(n, 0.02), 0.02 + 0.9 * rise], 1) + 0.002 * rng.standard_normal((n, 2))
    layer_prev = np.stack([0.05 + 0.8 * rise, np.full(n, 0.05)], 1) + 0.002 * rng.standard_normal((n, 2))
    run = {
        "step": torch.as_tensor(T),
        "loss": torch.as_tensor(loss),
        "induction": torch.as_tensor(ind),
        "prev_token": torch.as_tensor(prev),
        "head_out_norm": torch.as_tensor(np.tile([1.0, 2.0, 2.2, 5.0], (n, 2, 1))),
        "layer_induction": torch.as_tensor(layer_ind),
        "layer_prev_token": torch.as_tensor(layer_prev),
        "config": {"seed": rng_seed},
    }
    if finite:
        train = 4.8 * np.exp(-T / 200) + 0.05
        test = 4.8 + 8 * (1 - np.exp(-T / 200)) * (1 - expit((T - 2000) / 50)) - 3.0 * expit((T - 2000) / 50)
        run.update(loss=torch.as_tensor(train), test_loss=torch.as_tensor(test))
        run["test_loss_pred"] = torch.as_tensor(test - 1.5 * expit((T - 2000) / 50) + 0.0)
    return run


def test_one_phase_change_coinciding_with_the_layer_scores_supports_a_and_b():
    centres = [900, 1000, 1100, 950, 1050, 1200, 800, 1000]
    events = [seed_events(fake_run(c, s)) for s, c in enumerate(centres)]
    for ev, c in zip(events, centres, strict=True):
        assert len(ev["loss_pc"]) == 1 and abs(ev["loss_step"] - c) <= 15, ev
        assert abs(ev["ind_step"] - c) <= 30 and abs(ev["prev_step"] - c) <= 30
    rows, tables = induction_claims(events, [], None)
    by = {r.id: r for r in rows}
    assert by["I-a"].verdict == "supported" and by["I-b"].verdict == "supported"
    assert by["I-c"].n_seeds == 0 and by["I-c"].verdict == "inconclusive"
    assert by["I-d1"].verdict == "not supported" and tables["bumps"]["head_bumps"] == 0
    assert abs(tables["phase_change"]["mean"] - np.mean(centres)) < 20
    md = report_markdown(rows, tables, events, [], None, "test")
    assert "| I-a |" in md and "not run" in md


def test_a_head_bump_the_layer_score_lacks_is_head_only():
    events = [seed_events(fake_run(1000, s, head_bump=True)) for s in range(8)]
    for ev in events:
        bump = clearest_head_bump(ev)
        assert bump is not None and (bump["series"], bump["layer"], bump["head"]) == ("induction", 1, 0), ev
        assert abs(bump["peak_step"] - 1400) <= 40 and head_only(ev)
    rows, tables = induction_claims(events, [], [])
    assert rows[3].id == "I-d1" and rows[3].verdict == "supported"
    assert "nothing to knock out" in report_markdown(rows, tables, events, [], [], "t")


def test_competitor_is_the_head_that_gains_and_control_is_matched_on_output_norm():
    run = fake_run(1000, 0, head_bump=True)
    bump = clearest_head_bump(seed_events(run))
    competitor, control = choose_heads(run, bump, at=1300)
    assert competitor == 1 and control == 2  # head 2's norm (2.2) is nearest head 1's (2.0)
    step = np.asarray(run["step"])
    curve = np.asarray(run["induction"])[:, 1, 0]
    assert drop_ratio(step, curve, step, curve, bump) == pytest.approx(1.0)
    flat = curve.copy()
    flat[step >= bump["peak_step"]] = curve[step == bump["peak_step"]]
    assert drop_ratio(step, flat, step, curve, bump) < 0.2


def test_memorise_then_generalise_times_and_censoring():
    times = finite_times(fake_run(1000, 3, finite=True))
    assert times["seed"] == 3  # the run's own seed, not its position in a list
    assert times["memorised"] is not None and times["memorised"] < 600
    assert 1900 <= times["generalised"] <= 2300
    never = fake_run(1000, 0, finite=True)
    never["test_loss_pred"] = never["test_loss_pred"] * 0 + 6.0
    assert finite_times(never)["generalised"] is None
    rows, _ = induction_claims([seed_events(fake_run(1000, 0))] * 2, [times] * 8, None)
    assert rows[2].verdict == "supported"


def test_report_is_written_and_not_replaced_from_other_runs(tmp_path):
    from bumps.io.runfile import OutputPathError

    paths = []
    for s in range(3):
        paths.append(tmp_path / f"seed{s}.pt")
        torch.save(fake_run(1000 + 50 * s, s), paths[-1])
    fin = tmp_path / "fin0.pt"
    torch.save(fake_run(1000, 0, finite=True), fin)
    md, js = write_report(paths, [fin], tmp_path / "out", "bumps induction-claims ...", knockouts=False)
    assert "| I-a |" in md.read_text() and '"claims"' in js.read_text() and "Finite data" in md.read_text()
    with pytest.raises(OutputPathError, match="other settings"):
        write_report(paths[:2], [], tmp_path / "out", "again", knockouts=False)
    write_report(paths[:2], [], tmp_path / "out", "again", knockouts=False, force=True)


def test_knockout_continuations_on_a_tiny_run(tmp_path):
    from bumps.induction.knockout import knockout_seed
    from bumps.induction.model import InductionConfig
    from bumps.induction.train import train_induction

    small = dict(n_ctx=25, vocab=20, sub_len=4, d_model=16, n_heads=4, d_model_unused=None)
    small.pop("d_model_unused")
    cfg = InductionConfig(
        seed=0, steps=20, batch_size=8, lr=1e-2, warmup=0, record_every=1, checkpoint_every=5, **small
    )
    path = tmp_path / "run.pt"
    run = train_induction([cfg], [path], autosave_every=0)[0]
    bump = {"series": "induction", "layer": 1, "head": 0, "start_step": 4, "peak_step": 8, "end_step": 12, "drop": 0.1}
    result = knockout_seed(path, run, bump)
    assert result["at"] == 5 and result["none_max_diff"] == 0.0
    assert {result["competitor"], result["control"]} <= {1, 2, 3} and result["competitor"] != result["control"]
    ko = torch.load(tmp_path / "run_kocompetitor.pt", weights_only=True)
    assert (ko["head_out_norm"][:, 1, result["competitor"]] == 0).all() and ko["step"][0] == 5
    again = knockout_seed(path, run, bump)  # finished continuations are reused
    assert again["ratios"] == result["ratios"] or np.isnan(list(result["ratios"].values())).any()


def test_a_knockout_horizon_stops_the_continuations_and_scores_up_to_there(tmp_path):
    from bumps.induction.knockout import knockout_seed
    from bumps.induction.model import InductionConfig
    from bumps.induction.train import train_induction

    cfg = InductionConfig(
        seed=0, steps=20, batch_size=8, lr=1e-2, warmup=0, record_every=1, checkpoint_every=5,
        n_ctx=25, vocab=20, sub_len=4, d_model=16, n_heads=4,
    )  # fmt: skip
    path = tmp_path / "run.pt"
    run = train_induction([cfg], [path], autosave_every=0)[0]
    bump = {"series": "induction", "layer": 1, "head": 0, "start_step": 4, "peak_step": 8, "end_step": 14, "drop": 0.1}
    result = knockout_seed(path, run, bump, horizon=6)
    assert result["at"] == 5 and result["stop"] == 10  # continued steps 5..10: six steps past the checkpoint
    assert result["none_max_diff"] == 0.0  # the unintervened continuation is still the original
    ko = torch.load(tmp_path / "run_konone.pt", weights_only=True)
    assert int(ko["step"][-1]) == 10


def test_the_unintervened_continuation_has_drop_ratio_one_whatever_the_stop():
    from bumps.induction.knockout import drop_ratio

    step = np.arange(0, 200, 5)
    orig = np.exp(-(((step - 80) / 30.0) ** 2))  # a bump peaking at 80
    bump = {"peak_step": 80, "end_step": 190}
    assert drop_ratio(step, orig, step, orig, bump) == pytest.approx(1.0)
    cut = step <= 120  # a continuation that stopped at 120: smoothed over the same span as the original
    assert drop_ratio(step[cut], orig[cut], step, orig, bump, stop=120) == pytest.approx(1.0, abs=1e-12)
