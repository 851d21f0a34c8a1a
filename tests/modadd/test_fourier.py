"""Fourier progress measures on constructed inputs."""

import math

import pytest
import torch

from bumps.modadd.fourier import (
    ce,
    component_norms,
    fourier_basis,
    freq_norms,
    gini,
    neuron_freq_fraction,
    restricted_excluded_logits,
    sum_directions,
)

P = 13


def test_basis_is_orthonormal_and_ordered_cos_then_sin():
    f = fourier_basis(P, dtype=torch.float64)
    assert torch.allclose(f @ f.T, torch.eye(P, dtype=torch.float64), atol=1e-12)
    x = torch.arange(P, dtype=torch.float64)
    assert torch.allclose(f[1], torch.cos(2 * math.pi * x / P) / math.sqrt(P / 2))
    assert torch.allclose(f[2], torch.sin(2 * math.pi * x / P) / math.sqrt(P / 2))


def test_freq_norms_find_the_embedded_frequency():
    f = fourier_basis(P, dtype=torch.float64)
    w = torch.stack([f[5], f[6]], 1) * 3  # cos 3 and sin 3 in two columns
    norms = freq_norms(w, f)
    assert norms.argmax() == 2 and norms[2] == pytest.approx(3 * math.sqrt(2))
    assert norms.sum() == pytest.approx(norms[2].item())


def test_gini_extremes():
    assert gini(torch.ones(10, dtype=torch.float64)).item() == pytest.approx(0.0, abs=1e-12)
    one_hot = torch.zeros(10, dtype=torch.float64)
    one_hot[3] = 2.0
    assert gini(one_hot).item() == pytest.approx(1 - 1 / 10)
    f = fourier_basis(P, dtype=torch.float64)
    assert gini(component_norms(f[3:4].T, f)).item() > 0.9


def test_single_frequency_neuron_is_fully_explained():
    x = torch.arange(P, dtype=torch.float64)
    a, b = x[:, None], x[None, :]
    k = 4
    acts = torch.stack(
        [torch.cos(2 * math.pi * k * (a + b) / P), torch.relu(torch.cos(2 * math.pi * k * (a + b) / P))], -1
    )
    frac = neuron_freq_fraction(acts, fourier_basis(P, dtype=torch.float64))
    assert frac[0, k - 1] == pytest.approx(1.0)
    assert frac[1].argmax() == k - 1 and frac[1, k - 1] > 0.5


def test_restricted_and_excluded_loss_on_constructed_logits():
    k = 2
    x = torch.arange(P, dtype=torch.float64)
    a = x.repeat_interleave(P)
    b = x.repeat(P)
    labels = ((a + b) % P).long()
    c = torch.arange(P, dtype=torch.float64)
    logits = 8 * torch.cos(2 * math.pi * k * ((a + b)[:, None] - c[None, :]) / P)  # the algorithm, one frequency
    dirs = sum_directions(P, [k])
    restricted, excluded = restricted_excluded_logits(logits, dirs)
    assert torch.allclose(restricted, logits, atol=1e-9)  # all of it lies in the key directions
    assert ce(excluded, labels).item() == pytest.approx(math.log(P), abs=1e-9)  # nothing left: uniform
    noise = torch.randn(P * P, P, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    r2, x2 = restricted_excluded_logits(logits + noise, dirs)
    assert ce(r2, labels) < ce(logits + noise, labels)  # restricting removes the noise
    assert torch.allclose(r2 - x2.mean(0) + x2, logits + noise)  # kept + removed = everything
