"""Mod-add bump labels on a run with planted curves: key vs non-key, phase, trivial shape."""

import numpy as np
import torch

from bumps.modadd.phases import classify_bumps, key_bump_rates, phase_of, seed_summary


def planted_run() -> dict:
    """p = 11 (5 frequencies), 4 neurons; test-loss peak at 1000, cleanup from 3000 to ~5000.

    freq 1 (non-key): rises in memorisation, falls in cleanup -> trivial.
    freq 3 (key): overshoot peaking in circuit formation at 2500, settles -> not trivial.
    neuron 2 on freq 3: rises, peaks at 2000, falls -> a per-unit key bump.
    """
    step = np.arange(0, 8001, 100)
    t = step / 1000.0
    flat = np.ones_like(t)
    rise = lambda c, w: 1 / (1 + np.exp(-(t - c) / w))  # noqa: E731
    bump = lambda c, w, h: h * np.exp(-(((t - c) / w) ** 2))  # noqa: E731
    freq_norm = np.stack(
        [
            rise(0.5, 0.2) * (1 - rise(4.0, 0.3)) + 0.1,
            0.2 * flat,
            3 * rise(1.5, 0.3) + bump(2.5, 0.4, 1.5),
            0.2 * flat + 0.01 * t,
            0.3 * flat,
        ],
        1,
    )
    neuron = np.full((len(t), 4, 5), 0.05)
    neuron[:, 2, 2] += bump(2.0, 0.4, 0.8)
    neuron[:, 0, 2] += 0.9 * rise(3.0, 0.3)
    test_loss = (12 + 8 * np.exp(-(((t - 1.0) / 0.6) ** 2))) * (1 - rise(3.2, 0.1)) + 1e-7
    sum_sq = 100 - 80 * rise(4.0, 0.3)
    as_t = lambda x: torch.tensor(x, dtype=torch.float64)  # noqa: E731
    return {
        "kind": "modadd",
        "format": "bumps.run",
        "version": 1,
        "step": torch.tensor(step),
        "freq_norm": as_t(freq_norm),
        "freq_norm_wl": as_t(freq_norm[:, ::-1].copy()),
        "neuron_freq": as_t(neuron),
        "test_loss": as_t(test_loss),
        "sum_sq_weights": as_t(sum_sq),
        "key_freqs": torch.tensor([3]),
        "key_freqs_official": torch.tensor([1, 3]),
        "grok_epoch": 3300,
        "test_loss_below_1e6_epoch": 3500,
        "single_freq_neuron_fraction": 0.5,
        "config": {"seed": 7, "data_seed": 8, "epochs_done": 8000, "stop_reason": "epochs"},
    }


def test_labels_of_planted_bumps():
    run = planted_run()
    rows = classify_bumps(run)
    by = {(r["series"], r["freq"], r["unit"]): r for r in rows}
    trivial = by[("freq_norm", 1, None)]
    assert trivial["trivial"] and not trivial["key"] and trivial["phase"] in ("memorisation", "circuit")
    key = by[("freq_norm", 3, None)]
    assert key["key"] and not key["trivial"] and key["phase"] == "circuit" and key["frame"] == "frame-invariant"
    neuron = by[("neuron_freq", 3, 2)]
    assert neuron["key"] and neuron["frame"] == "per-unit" and neuron["phase"] == "circuit"
    # controls: flat, ramping and monotone curves give no bump
    assert ("freq_norm", 2, None) not in by and ("freq_norm", 4, None) not in by
    assert ("neuron_freq", 3, 0) not in by


def test_seed_summary_reports_both_key_rules_and_counts():
    s = seed_summary(planted_run())
    assert s["key_freqs"] == [3] and s["key_freqs_official"] == [1, 3] and not s["key_rules_agree"]
    assert s["key_bumps_by_series"]["freq_norm"] == 1 and s["trivial_bumps_by_series"]["freq_norm"] == 1
    assert s["neurons_with_key_bumps"] == 1 and s["phases"]["memorisation_end"] == 1000


def test_phase_of_boundaries():
    phases = {"memorisation_end": 10, "cleanup_start": 20, "cleanup_end": 30}
    assert [phase_of(s, phases) for s in (10, 11, 20, 30, 31)] == [
        "memorisation",
        "circuit",
        "cleanup",
        "cleanup",
        "after",
    ]
    assert phase_of(1000, {"memorisation_end": 10}) == "circuit"


def test_key_bump_rates_count_per_curve():
    rows = [
        {"series": "neuron_freq", "key": True},
        {"series": "neuron_freq", "key": True},
        {"series": "neuron_freq", "key": False},
        {"series": "freq_norm", "key": True},
        {"series": "freq_norm_wl", "key": False},
    ]
    # 2 key frequencies: 4 neurons x 2 = 8 key neuron curves, 2 x 2 = 4 key norm curves
    assert key_bump_rates(rows, n_keys=2, d_mlp=4) == (2 / 8, 1 / 4)
    assert key_bump_rates([], n_keys=0, d_mlp=4) == (0.0, 0.0)


def test_key_bump_rates_of_planted_run():
    run = planted_run()
    rows = classify_bumps(run)
    neuron_rate, invariant_rate = key_bump_rates(rows, len(run["key_freqs"]), run["neuron_freq"].shape[1])
    n_key_neuron = sum(r["key"] for r in rows if r["series"] == "neuron_freq")
    n_key_norm = sum(r["key"] for r in rows if r["series"] in ("freq_norm", "freq_norm_wl"))
    assert n_key_neuron > 0 and neuron_rate == n_key_neuron / (4 * len(run["key_freqs"]))
    assert n_key_norm > 0 and invariant_rate == n_key_norm / (2 * len(run["key_freqs"]))
