"""The digits claims on constructed runs whose answers are known."""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from bumps.detect.synthetic import knee
from bumps.digits.claims import (
    DIGITS,
    REGISTERED,
    REVISED,
    added_claims,
    digits_claims,
    knockout_row,
    measure,
    report_markdown,
    seed_events,
)

T = np.arange(4000)


def fake_run(centres, bump_of=None, rng_seed=0):
    """loss_per_digit with one logistic drop per digit at ``centres``; optionally digit j bumps at digit i's drop."""
    rng = np.random.default_rng(rng_seed)
    loss = np.empty((len(T), 6))
    for d, c in enumerate(centres):
        log_loss = 0.4 - 2.5 * expit((T - c) / 20)
        if bump_of is not None and d in bump_of:
            log_loss += 1.0 * np.exp(-0.5 * ((T - centres[bump_of[d]]) / 40) ** 2)
        loss[:, d] = 10 ** (log_loss + 0.01 * rng.standard_normal(len(T)))
    return {"step": T, "loss_per_digit": loss, "loss": loss.mean(1)}


def test_distinct_phase_changes_per_digit_support_claim_a_and_b():
    centres = [500, 1100, 1700, 2300, 2900, 3500]
    events = [seed_events(fake_run(centres, rng_seed=s)) for s in range(8)]
    for ev in events:  # each digit's drop, at its steepest step
        assert all(abs(t - c) <= 5 for t, c in zip(ev["digit_pc"], centres, strict=True)), ev["digit_pc"]
    rows, tables = digits_claims(events)
    by = {r.id: r for r in rows}
    assert by["D-a"].value == 1.0 and by["D-a"].verdict == "supported"  # 8/8: exact lower bound 0.688
    assert by["D-b"].verdict in ("supported", "inconclusive")
    assert tables["order"][0] == list(DIGITS)
    assert by["D-c"].verdict == "not supported"  # no digit bumps: nothing beyond the null


def test_digits_that_drop_together_are_not_their_own_phase_changes():
    events = [seed_events(fake_run([500, 510, 1700, 2300, 2900, 3500], rng_seed=s)) for s in range(8)]
    rows, _ = digits_claims(events)
    assert rows[0].value == 0.0 and rows[0].verdict == "not supported"


def test_a_bump_of_another_digit_at_each_phase_change_is_competition_beyond_the_null():
    centres = [500, 1100, 1700, 2300, 2900, 3500]
    bump_of = {1: 0, 2: 1, 3: 2, 4: 3, 5: 4, 0: 5}  # digit j bumps when digit bump_of[j] drops
    events = [seed_events(fake_run(centres, bump_of, rng_seed=s)) for s in range(8)]
    rows, tables = digits_claims(events)
    c = rows[2]
    assert tables["competition"]["observed"] > tables["competition"]["null_mean"]
    assert c.verdict == "supported", (c, tables["competition"])
    added, rise = added_claims(events)
    assert rise["observed"] > 0.5 > rise["null_mean"]  # the bumps are 1 decade high: the detector-free row sees them
    assert added[1].id == "D-c′" and added[1].verdict == "supported"
    assert knockout_row(rows).verdict == "not run"  # events exist but no digits knockout: never a made-up verdict


def test_without_bumps_the_detector_free_row_is_not_supported_and_the_knockout_not_testable():
    events = [seed_events(fake_run([500, 1100, 1700, 2300, 2900, 3500], rng_seed=s)) for s in range(8)]
    rows, _ = digits_claims(events)
    added, rise = added_claims(events)
    assert added[1].verdict == "not supported", rise
    assert added[0].verdict == "supported"  # (a′): the 5 non-carry digits drop apart in every seed
    assert knockout_row(rows).verdict == "not testable (no event)"


def knee_run(rng):
    """Six digits drawn from the detector benchmark's ``knee`` family (a plateau's end into a slow decline)."""
    curves = [knee(rng) for _ in range(6)]
    loss = np.stack([c.values for c in curves], 1)
    return {"step": np.arange(len(loss)), "loss_per_digit": loss, "loss": loss.mean(1)}, curves


def test_knees_are_found_by_the_revised_rule_and_the_report_shows_both_verdicts():
    rng = np.random.default_rng(3)
    runs, found = [], {"registered": 0, "revised": 0}
    for _ in range(4):
        run, curves = knee_run(rng)
        runs.append(run)
        for name, params in (("registered", REGISTERED), ("revised", REVISED)):
            times = seed_events(run, params)["digit_pc"]
            found[name] += sum(
                t is not None and abs(t - c.labels[0].peak) <= 200 for t, c in zip(times, curves, strict=True)
            )
    assert found["revised"] >= 22 and found["revised"] >= found["registered"], found  # of 24 knees
    md = report_markdown(measure(runs), "test")
    assert "revised after data; was" in md and "added after data" in md and "| D-d |" in md


def test_report_is_written_atomically_and_not_replaced_from_other_runs(tmp_path):
    import pytest
    import torch

    from bumps.digits.claims import write_report
    from bumps.io.runfile import OutputPathError

    paths = []
    for s in range(3):
        run = fake_run([500, 1100, 1700, 2300, 2900, 3500], rng_seed=s)
        path = tmp_path / f"seed{s}.pt"
        torch.save({k: torch.as_tensor(v) for k, v in run.items()}, path)
        paths.append(path)
    md, js = write_report(paths, tmp_path / "out", "bumps digits-claims ...")
    assert "| D-a |" in md.read_text() and '"claims"' in js.read_text()
    with pytest.raises(OutputPathError, match="other settings"):
        write_report(paths[:2], tmp_path / "out", "again")
    write_report(paths[:2], tmp_path / "out", "again", force=True)


def test_figures_are_drawn_from_the_runs_and_refuse_a_missing_one(tmp_path):
    import pytest
    import torch

    from bumps.digits.figures import DIGITS_FIGURES, make_digits_figures
    from bumps.errors import BumpsError

    paths = []
    for s in range(2):
        run = fake_run([500, 1100, 1700, 2300, 2900, 3500], rng_seed=s)
        paths.append(tmp_path / f"seed{s}.pt")
        torch.save({k: torch.as_tensor(v) for k, v in run.items()}, paths[-1])
    written = make_digits_figures(tmp_path / "figs", paths)
    assert [p.name for p in written] == list(DIGITS_FIGURES) and all(p.stat().st_size > 10_000 for p in written)
    with pytest.raises(BumpsError, match="make them with bumps digits"):
        make_digits_figures(tmp_path / "figs", [tmp_path / "missing.pt"])
