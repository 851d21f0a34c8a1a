"""Fresh-seed knockouts: the registered arms, the per-seed statistics, the ledger and the command."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bumps.errors import BumpsError
from bumps.io.runfile import load_run
from bumps.modadd import fresh
from bumps.modadd.fresh import FreshLedger, SeedResult, plan_frequency_arms, plan_neuron_arms, seed_values
from bumps.modadd.knockout import event, out_path
from bumps.stats import clopper_pearson, t_interval

STEPS = torch.tensor([0, 10, 20, 30, 40])


def _norm_run(keys, official):
    """Ten frequencies' W_E norms over five records; the bump is frequency 1, peak 20, end 40."""
    norm = torch.ones(5, 10)
    norm[:, 0] = torch.tensor([1.0, 2.0, 3.0, 2.0, 1.0])
    norm[2] = torch.tensor([3.0, 0.9, 0.5, 2.0, 1.2, 2.1, 0.6, 0.55, 1.3, 0.95])  # at the peak
    norm[4, 1] = 4.0  # frequency 2 gains 3.1
    norm[4, 3] = 3.0  # frequency 4 gains 1.0
    return {"step": STEPS, "freq_norm": norm, "key_freqs": torch.tensor(keys), "key_freqs_official": official}


def test_frequency_arms_rival_other_key_and_non_key_of_both_rules():
    run = _norm_run([1, 2, 4, 6], [1, 2, 4, 5])
    plans = plan_frequency_arms("r.pt", run, event("freq_norm", 1, None, 0, 20, 40))
    arms = {p.name: p.removed for p in plans}
    assert [p.role for p in plans] == ["none", "competitor", "control", "control"]
    assert list(arms) == ["none", "rival", "other-key", "non-key"]
    assert arms["rival"] == (2,)  # gains most over [peak, end]
    assert arms["other-key"] == (4,)  # keys 4 and 6: norms 2.0 and 2.1 at the peak; 2.0 is nearer the rival's 0.9
    # non-key under both rules: not 1, 2, 4, 6 (threshold) nor 5 (official); nearest 0.9 at the peak: 10 (0.95)
    assert arms["non-key"] == (10,)
    assert {p.event.group for p in plans} == {"r.pt"}


def test_frequency_arms_drop_the_other_key_without_a_third_key_and_everything_without_a_rival():
    two = plan_frequency_arms("r.pt", _norm_run([1, 2], []), event("freq_norm", 1, None, 0, 20, 40))
    assert [p.name for p in two] == ["none", "rival", "non-key"]
    assert plan_frequency_arms("r.pt", _norm_run([1], []), event("freq_norm", 1, None, 0, 20, 40)) == []


def test_other_key_is_the_nearest_norm_to_the_rivals_not_the_first_listed():
    run = _norm_run([1, 2, 6, 9], [])
    arms = {p.name: p.removed for p in plan_frequency_arms("r.pt", run, event("freq_norm", 1, None, 0, 20, 40))}
    assert arms["rival"] == (2,) and arms["other-key"] == (9,)  # |1.3 − 0.9| < |2.1 − 0.9|


def test_neuron_arms_share_one_unintervened_continuation():
    nf = torch.rand(5, 80, 4, generator=torch.Generator().manual_seed(0))
    run = {"step": STEPS, "neuron_freq": nf}
    plans = plan_neuron_arms("r.pt", run, event("neuron_freq", 2, 7, 0, 20, 40), ks=(3, 10))
    assert [p.name for p in plans] == ["none", "competitor-3", "control-3", "competitor-10", "control-10"]
    assert [p.role for p in plans] == ["none", "competitor", "control", "competitor", "control"]
    assert [len(p.removed) for p in plans] == [0, 3, 3, 10, 10]
    gains = (nf[4, :, 1] - nf[2, :, 1]).numpy()
    gains[7] = -np.inf
    assert set(plans[3].removed) == set(np.argsort(-gains, kind="stable")[:10].tolist())


def _outcome(series, freq, unit, peak, role, drop_ratio, persists=True):
    return dict(
        run="seed.pt",
        series=series,
        freq=freq,
        unit=unit,
        role=fresh.ROLE_OF.get(role, role),
        arm=role,
        neurons=[],
        freqs=[],
        from_epoch=0,
        start_step=0,
        peak_step=peak,
        end_step=peak + 10,
        persists=persists,
        drop_ratio=drop_ratio,
    )


def _event(family, rank, series, freq, unit, peak):
    return dict(
        family=family, rank=rank, series=series, freq=freq, unit=unit, start_step=0, peak_step=peak, end_step=peak + 10
    )


def _result(seed, arms_by_event, none_persists=(True, True)):
    """A seed with two frequency events; arms_by_event: per event {role: (drop_ratio, persists)}."""
    events, outcomes = [], []
    for rank, (arms, keep) in enumerate(zip(arms_by_event, none_persists, strict=True)):
        peak = 100 * (rank + 1)
        events.append(_event("frequency", rank, "freq_norm", 3 + rank, None, peak))
        outcomes.append(_outcome("freq_norm", 3 + rank, None, peak, "none", 1.0, keep))
        for role, (ratio, persists) in arms.items():
            outcomes.append(_outcome("freq_norm", 3 + rank, None, peak, role, ratio, persists))
    return SeedResult(seed, f"h{seed}", 100, 200, [3, 4], [3, 4], events, outcomes, 1.0)


def test_seed_values_average_each_seeds_kept_events_then_judge_over_seeds():
    a = _result(
        5, [{"rival": (0.2, False), "other-key": (0.9, True)}, {"rival": (0.4, True), "other-key": (0.5, True)}]
    )
    # seed 6: the second event's unintervened continuation loses the bump, so only the first counts
    b = _result(
        6,
        [{"rival": (0.1, True), "other-key": (0.3, True)}, {"rival": (9.0, True), "other-key": (-9.0, True)}],
        none_persists=(True, False),
    )
    sv = seed_values([b, a], "M5")
    assert sv.seeds == [5, 6] and sv.events == [2, 1]
    assert sv.values == pytest.approx([(0.7 + 0.1) / 2, 0.2])
    assert seed_values([a, b], "M5n").n == 0  # no non-key arm in these seeds
    p = seed_values([a, b], "M5p")  # largest kept event: seed 5's rival does not persist, seed 6's does
    assert p.seeds == [5, 6] and p.values == [1.0, 0.0]
    verdicts = {e.id: (sv, c) for e, sv, c in fresh.judge([a, b])}
    claim = verdicts["M5"][1]
    mean, lo, hi = t_interval([0.4, 0.2])
    assert (claim.value, claim.ci_low, claim.ci_high) == pytest.approx((mean, lo, hi), rel=1e-3)  # shown rounded
    assert claim.n_seeds == 2
    m5p = verdicts["M5p"][1]
    assert (m5p.value, m5p.ci_low, m5p.ci_high) == pytest.approx(clopper_pearson(1, 2), rel=2e-3)
    assert verdicts["M5n"][1] is None and verdicts["M4-8"][1] is None


def test_one_seed_gives_no_interval_and_the_verdict_waits():
    a = _result(5, [{"rival": (0.2, True), "other-key": (0.9, True)}, {"rival": (0.4, True), "other-key": (0.5, True)}])
    verdicts = {e.id: c for e, _, c in fresh.judge([a])}
    assert verdicts["M5"] is None and verdicts["M5p"] is not None


def test_ledger_round_trip_replaces_a_seed_of_the_same_configuration(tmp_path):
    path = tmp_path / "ledger.json"
    cfg = fresh.fresh_config(5, p=23, d_model=16, d_mlp=32)
    r = _result(5, [{"rival": (0.2, True)}, {"rival": (0.4, True)}])
    r.config_hash = fresh.config_digest(cfg)
    book = FreshLedger.load(path)
    assert book.find(cfg) is None
    book.add(r)
    book.add(r)
    again = FreshLedger.load(path)
    assert len(again.results) == 1 and again.find(cfg) == r
    assert again.find(fresh.fresh_config(6, p=23, d_model=16, d_mlp=32)) is None
    path.write_text("{not json")
    with pytest.raises(BumpsError, match="not a fresh-knockout ledger"):
        FreshLedger.load(path)


def test_long_continuation_names_are_the_same_in_every_process(tmp_path):
    """A plan removing 64 neurons has a cut name; its tag must not depend on Python's hash seed."""
    code = (
        "from pathlib import Path; from bumps.knockout import KnockoutPlan; "
        "from bumps.modadd.knockout import event, out_path; "
        "e = event('neuron_freq', 2, 7, 0, 20, 40, run='runs/seed5.pt'); "
        "k = KnockoutPlan(e, 'competitor', tuple(range(64)), 'checkpoint', 0, arm='competitor-64'); "
        "print(out_path(Path('o'), k))"
    )
    names = {
        subprocess.run(
            [sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": s}, capture_output=True, text=True
        ).stdout
        for s in ("1", "2")
    }
    assert len(names) == 1 and len(next(iter(names)).strip()) < 200


def test_out_path_keeps_short_names():
    from bumps.knockout import KnockoutPlan

    e = event("freq_norm", 2, None, 0, 20, 40, run="runs/seed5.pt")
    assert out_path(Path("o"), KnockoutPlan(e, "competitor", (4,), "checkpoint", 0, arm="rival")).name == (
        "seed5_freq_norm_f2_uNone_p20_rival_4.pt"
    )


def test_command_records_a_seed_and_does_not_train_it_again(tmp_path):
    from typer.testing import CliRunner

    from bumps.cli import app

    args = [
        "fresh-knockouts",
        "--seeds",
        "1",
        "--p",
        "13",
        "--d-model",
        "16",
        "--d-mlp",
        "32",
        "--epochs",
        "60",
        "--threads",
        "1",
        "--out-dir",
        str(tmp_path / "runs"),
        "--ledger",
        str(tmp_path / "ledger.json"),
        "--report",
        str(tmp_path / "rep"),
        "--old-claims",
        str(tmp_path / "none.json"),
    ]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    book = json.loads((tmp_path / "ledger.json").read_text())
    assert [s["seed"] for s in book["seeds"]] == [1] and book["seeds"][0]["epochs_done"] == 60
    (tmp_path / "runs" / "seed1.pt").rename(tmp_path / "runs" / "seed1.pt.kept")  # the ledger alone must keep
    # it from training again
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0 and "recorded in" not in second.output
    assert not (tmp_path / "runs" / "seed1.pt").exists()
    text = (tmp_path / "rep.md").read_text()
    assert "Seeds finished: 1 of 10" in text and "not measured yet" in text
    assert math.isfinite(book["seeds"][0]["wall_seconds"])
    m3f = book["seeds"][0]["m3f"]
    run = load_run(tmp_path / "runs" / "seed1.pt.kept", kind="modadd")
    assert isinstance(m3f, float) and m3f == pytest.approx(fresh.family_rate_difference(run), nan_ok=True)
    # this 60-epoch run has no key frequency: M3f is undefined (NaN), recorded, and left out of the statistic
    assert (len(run["key_freqs"]) == 0) == math.isnan(m3f) and seed_values([_as_result(book)], "M3f").n == 0

    # a seed recorded before M3f: --no-train has no run file to read, so it stays missing ...
    book["seeds"][0]["m3f"] = None
    (tmp_path / "ledger.json").write_text(json.dumps(book))
    third = CliRunner().invoke(app, [*args, "--no-train"])
    assert third.exit_code == 0 and json.loads((tmp_path / "ledger.json").read_text())["seeds"][0]["m3f"] is None
    assert "**M3f missing** for seeds 1" in (tmp_path / "rep.md").read_text()
    # ... and training gives the same run again (same seed), hence the same M3f, without its continuations
    fourth = CliRunner().invoke(app, args)
    assert fourth.exit_code == 0 and "M3f" in fourth.output, fourth.output
    again = json.loads((tmp_path / "ledger.json").read_text())["seeds"][0]
    assert again["m3f"] == pytest.approx(m3f, nan_ok=True) and again["outcomes"] == book["seeds"][0]["outcomes"]
    assert (tmp_path / "runs" / "seed1.pt").exists() and "| M3f |" in (tmp_path / "rep.md").read_text()

    # a run file of other settings is not read for the ledger's seed
    from bumps.io.runfile import atomic_save

    again_lr, run["config"]["lr"] = run["config"]["lr"], 0.5
    atomic_save(run, tmp_path / "runs" / "seed1.pt")
    (tmp_path / "ledger.json").write_text(json.dumps(book))  # m3f None again
    fifth = CliRunner().invoke(app, [*args, "--no-train"])
    assert fifth.exit_code != 0 and "other settings" in str(fifth.exception)
    # an unfinished run file (another process still training it) is left alone by --no-train
    run["config"]["lr"], run["config"]["final"] = again_lr, False
    atomic_save(run, tmp_path / "runs" / "seed1.pt")
    sixth = CliRunner().invoke(app, [*args, "--no-train"])
    assert sixth.exit_code == 0 and json.loads((tmp_path / "ledger.json").read_text())["seeds"][0]["m3f"] is None


def _as_result(book: dict) -> SeedResult:
    return SeedResult(**book["seeds"][0])


def test_family_rate_difference_counts_key_bumps_per_curve_with_one_reference_per_series(monkeypatch):
    seen = []

    def rows(run, params=None):
        seen.append(params.reference)
        key = [dict(series="neuron_freq", key=True)] * 6 + [dict(series="freq_norm", key=True)] * 3
        other = [dict(series="neuron_freq", key=False), dict(series="freq_norm_wl", key=False)]
        return key + [dict(series="freq_norm_wl", key=True)] + other

    monkeypatch.setattr(fresh, "classify_bumps", rows)
    run = {"key_freqs": torch.tensor([2, 5]), "neuron_freq": torch.zeros(3, 10, 6)}
    # 6 key neuron bumps over 10 neurons x 2 keys; 4 key norm bumps over 2 norms x 2 keys
    assert fresh.family_rate_difference(run) == pytest.approx(6 / 20 - 4 / 4)
    assert seen == ["family"]
    assert math.isnan(fresh.family_rate_difference({**run, "key_freqs": torch.tensor([], dtype=torch.int64)}))


def test_classify_bumps_passes_the_detector_settings_on(monkeypatch):
    from bumps.detect.bumps import BumpParams
    from bumps.modadd import phases

    got = []
    monkeypatch.setattr(phases, "analyze", lambda source, params=None: got.append(params) or {"bumps": []})
    monkeypatch.setattr(phases, "phase_boundaries", lambda run: {})
    run = {"step": STEPS, "freq_norm": torch.ones(5, 10), "key_freqs": torch.tensor([1])}
    assert phases.classify_bumps(run, BumpParams(reference="family")) == []
    assert phases.classify_bumps(run) == []
    assert [None if g is None else g.reference for g in got] == ["family", None]


def test_m3f_is_judged_over_the_seeds_that_have_it():
    rs = [_result(s, [{"rival": (0.2, True)}] * 2) for s in (5, 6, 7)]
    rs[0].m3f, rs[1].m3f = 0.1, 0.3  # seed 7 recorded before M3f
    sv = seed_values(rs, "M3f")
    assert sv.seeds == [5, 6] and sv.values == [0.1, 0.3]
    claim = {e.id: c for e, _, c in fresh.judge(rs)}["M3f"]
    assert claim.n_seeds == 2 and claim.value == pytest.approx(0.2, rel=1e-3)


def test_two_processes_adding_to_one_ledger_keep_both_seeds(tmp_path):
    path = tmp_path / "ledger.json"
    a, b = FreshLedger.load(path), FreshLedger.load(path)  # both loaded before either writes
    a.add(_result(5, [{"rival": (0.2, True)}] * 2))
    b.add(_result(6, [{"rival": (0.2, True)}] * 2))
    assert [r.seed for r in FreshLedger.load(path).results] == [5, 6]


def _m5_seed(seed, diff):
    return _result(
        seed,
        [
            {"rival": (0.1, False), "other-key": (0.1 + diff, True)},
            {"rival": (0.2, False), "other-key": (0.2 + diff, True)},
        ],
    )


@pytest.mark.parametrize(
    ("diffs", "reading"),
    [
        ((0.5, 0.52, 0.49), "competition, not compensation, explains"),
        ((0.0, 0.01, -0.01), "compensation explains the knockout effect as well as competition"),
        ((0.5, -0.4, 0.1), "the numbers do not decide competition against compensation"),
        ((), "not measured yet: the numbers do not decide it"),
    ],
)
def test_the_opening_paragraph_reads_the_m5_verdict(diffs, reading):
    from bumps.modadd.fresh_report import answer_paragraph

    results = [_m5_seed(5 + i, d) for i, d in enumerate(diffs)]
    verdicts = fresh.judge(results)
    winners = [dict(id="W1", value=-0.03, ci_low=-0.05, ci_high=-0.01, n_seeds=10, verdict="not supported")]
    text = answer_paragraph(verdicts, winners, len(results))
    assert reading in text and f"({len(results)} of 10 registered seeds finished)" in text
    assert "no better than chance (W1: -0.03 [-0.05, -0.01] over 10 seeds, not supported" in text
