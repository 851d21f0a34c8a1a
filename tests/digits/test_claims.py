"""The digits claims on constructed runs whose answers are known."""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from bumps.digits.claims import DIGITS, digits_claims, report_markdown, seed_events

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
    assert "| D-c |" in report_markdown(rows, tables, events, "test")


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
