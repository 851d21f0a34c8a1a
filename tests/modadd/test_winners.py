"""bumps.modadd.winners: Fourier phases against numpy's FFT, the alignment on planted weights, a real run."""

import math

import numpy as np
import pytest
import torch

from bumps.modadd.model import ModAddConfig, init_params
from bumps.modadd.winners import fourier_coefficients, initial_alignment, predict_winners, tie_auc


def test_fourier_coefficients_match_numpy_fft():
    x = torch.randn(3, 4, 17, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = np.fft.fft(x.numpy(), axis=-1)[..., 1:9]
    np.testing.assert_allclose(fourier_coefficients(x).numpy(), ref, atol=1e-10)


def test_a_pure_cosine_has_its_amplitude_and_phase():
    p, k, amp, phi = 13, 4, 0.7, 1.1
    t = torch.arange(p, dtype=torch.float64)
    c = fourier_coefficients(amp * torch.cos(2 * math.pi * k * t / p + phi))
    assert abs(c[k - 1]) == pytest.approx(amp * p / 2)
    assert float(torch.angle(c[k - 1])) == pytest.approx(phi)
    assert torch.abs(torch.cat([c[: k - 1], c[k:]])).max() < 1e-10


def planted(p: int, phases_in: list[float], phases_out: list[float], k: int) -> dict[str, torch.Tensor]:
    """Weights whose neuron n has input map cos(ω_k x + phases_in[n]) and output map cos(ω_k z + phases_out[n])."""
    t = torch.arange(p, dtype=torch.float64)
    w = 2 * math.pi * k / p
    cin = torch.stack([torch.cos(w * t + a) for a in phases_in], 1)  # [p, d_mlp]
    cout = torch.stack([torch.cos(w * t + b) for b in phases_out], 0)  # [d_mlp, p]
    eye = torch.eye(p, dtype=torch.float64)
    return {
        "W_E": torch.cat([eye, torch.zeros(1, p, dtype=torch.float64)]),  # d_model = p, token x -> e_x
        "W_in": cin,
        "W_out": cout,
        "W_U": torch.cat([eye, torch.zeros(p, 1, dtype=torch.float64)], 1),
    }


def test_alignment_is_cos_of_twice_the_input_phase_minus_the_output_phase():
    p, k = 11, 3
    phi, psi = [0.3, 1.0, -2.0], [0.6, 0.5, 1.5]
    align, norm = initial_alignment(planted(p, phi, psi, k), p)
    expected = [math.cos(2 * a - b) for a, b in zip(phi, psi, strict=True)]
    np.testing.assert_allclose(align[:, k - 1].numpy(), expected, atol=1e-10)
    np.testing.assert_allclose(norm[:, k - 1].numpy(), p / 2, atol=1e-10)


def test_predict_winners_reads_the_runs_initial_weights():
    # a final table planted from the epoch-0 alignment: the alignment predictor must be exactly right
    cfg = ModAddConfig.from_preset("nanda", p=23, d_model=32, d_mlp=64, n_heads=2, seed=3)
    align, norm = initial_alignment(init_params(cfg), cfg.p)
    keys = torch.tensor([2, 5, 7])
    winner = keys[align[:, keys - 1].argmax(1)]
    table = torch.full((cfg.d_mlp, (cfg.p - 1) // 2), 0.1 / 10)
    table[torch.arange(cfg.d_mlp), winner - 1] = 0.9
    pred = predict_winners({"config": cfg.as_dict(), "neuron_freq": table[None].repeat(2, 1, 1)})
    assert pred.seed == 3 and pred.key_freqs == (2, 5, 7) and pred.neurons == cfg.d_mlp
    assert pred.accuracy_alignment == 1.0
    by_norm = keys[norm[:, keys - 1].argmax(1)]
    assert pred.accuracy_norm == pytest.approx(float((by_norm == winner).double().mean()))
    share = torch.stack([(winner == k).double().mean() for k in keys])
    assert pred.chance == pytest.approx(float((share**2).sum()))
    # the alignment picks every neuron's winner here, so its marginal is the outcome's: the baselines agree
    assert pred.chance_independent == pytest.approx(pred.chance)
    other = predict_winners({"config": {**cfg.as_dict(), "seed": 4}, "neuron_freq": table[None]})
    assert other.accuracy_alignment < 1.0  # another seed's initial weights do not fit this table


def test_tie_auc_is_the_mann_whitney_probability():
    margins = np.array([0.1, 0.2, 0.3, 0.4, np.nan])
    bumping = np.array([True, True, False, False, True])
    assert tie_auc(margins, bumping) == 1.0  # every bumping neuron (nan left out) is nearer a tie
    assert tie_auc(margins, ~bumping) == 0.0
    assert tie_auc(np.array([0.2, 0.2]), np.array([True, False])) == 0.5  # a tie counts half
    assert math.isnan(tie_auc(margins, np.zeros(5, bool)))
    rng = np.random.default_rng(0)
    m, b = rng.random(400), rng.random(400) < 0.3
    from scipy.stats import mannwhitneyu

    u = mannwhitneyu(m[b], m[~b]).statistic  # counts a > b: the complement of ours
    assert tie_auc(m, b) == pytest.approx(1 - u / (b.sum() * (~b).sum()))


def test_the_independence_baseline_is_the_shuffled_predictions_expected_accuracy():
    """Σ_k q_k share_k: what the same predictions score when shuffled across neurons (exact expectation)."""
    rng = np.random.default_rng(1)
    truth, pred = rng.integers(0, 3, 300), rng.integers(0, 3, 300)
    share = np.bincount(truth, minlength=3) / 300
    q = np.bincount(pred, minlength=3) / 300
    shuffles = [np.mean(rng.permutation(pred) == truth) for _ in range(4000)]
    assert np.mean(shuffles) == pytest.approx(float((q * share).sum()), abs=2e-3)
    assert float((q * share).sum()) <= float((share**2).sum()) + float((q**2).sum())  # Cauchy-Schwarz, loosely
