"""Which frequency each neuron ends up with, predicted from the initial weights (claims W1, W2).

He, Wang, Chen, Yang (2026) describe a neuron's final frequency as won, winner-take-all, by the frequency
whose initial phases line up best. The measure used here (registered in ``bumps/rules.json``, family
``modadd``):

* the neuron's **input map** ``c_n(x) = W_E[x] · W_in[:, n]`` over tokens ``x < p`` (a and b share the
  embedding) and its **output map** ``ξ_n(z) = (W_out W_U)[n, z]`` over outputs ``z < p``, both at epoch 0
  (regenerated from the run's config by :func:`bumps.modadd.model.init_params`);
* their Fourier coefficients at frequency ``k = 1..(p−1)/2``, ``C_k = Σ_x c_n(x) e^{−iω_k x}`` with
  ``ω_k = 2πk/p``, phases ``φ_k = arg C_k`` and ``ψ_k`` (of ξ_n);
* the **alignment** ``cos(2φ_k − ψ_k)``: a squared input ``(c(a) + c(b))²`` contains
  ``cos(ω_k(a + b) + 2φ_k)``, which reaches the correct output ``z = a + b`` through ``cos(ω_k z + ψ_k)``
  with mean weight ``½ cos(2φ_k − ψ_k)``.

A neuron's **final frequency** is the largest share in the last ``neuron_freq`` record. Only neurons whose
final frequency is a key frequency (:func:`bumps.modadd.train.key_frequencies`) are predicted, and the
prediction picks among the key frequencies: the best alignment, or (the baseline) the largest initial
``|C_k|``. Chance is ``Σ_k share_k²`` (a guess drawn from the final distribution over the key frequencies).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from bumps.modadd.model import ModAddConfig, init_params
from bumps.modadd.train import config_fields, key_frequencies, neuron_logit_map


def fourier_coefficients(x: torch.Tensor) -> torch.Tensor:
    """``C_k = Σ_t x[..., t] e^{−2πi k t / p}`` for ``k = 1..(p−1)/2`` along the last axis (length p).

    Parameters
    ----------
    x : torch.Tensor
        ``[..., p]`` real values at ``t = 0..p−1``.

    Returns
    -------
    torch.Tensor
        ``[..., (p−1)//2]`` complex128; column ``k − 1`` is frequency k. For ``x = A cos(ω_k t + φ)`` it is
        ``(A p / 2) e^{iφ}``.
    """
    p = x.shape[-1]
    k = torch.arange(1, (p - 1) // 2 + 1, dtype=torch.float64)
    t = torch.arange(p, dtype=torch.float64)
    phase = -2 * math.pi * torch.outer(t, k) / p  # [p, K]
    basis = torch.polar(torch.ones_like(phase), phase)
    return x.to(torch.float64).to(torch.complex128) @ basis


def initial_alignment(params: dict[str, torch.Tensor], p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per neuron and frequency: the phase alignment ``cos(2φ_k − ψ_k)`` and the input map's ``|C_k|``.

    Parameters
    ----------
    params : dict of str to torch.Tensor
        The model's weights (``W_E``, ``W_in``, ``W_out``, ``W_U``), normally at epoch 0.
    p : int
        The modulus.

    Returns
    -------
    alignment, input_norm : torch.Tensor
        ``[d_mlp, (p−1)//2]`` float64 each (column ``k − 1`` is frequency k).
    """
    c = (params["W_E"][:p].double() @ params["W_in"].double()).T  # [d_mlp, p]
    xi = neuron_logit_map({k: v.double() for k, v in params.items()}, p).T  # [d_mlp, p]
    cc, cx = fourier_coefficients(c), fourier_coefficients(xi)
    return torch.cos(2 * cc.angle() - cx.angle()), cc.abs()


@dataclass(frozen=True)
class WinnerPrediction:
    """One run's winner prediction (module docstring).

    Attributes
    ----------
    seed : int
        The model seed.
    key_freqs : tuple of int
        Key frequencies (1-based) at the last record.
    neurons : int
        Neurons whose final frequency is a key frequency (the ones predicted).
    accuracy_alignment, accuracy_norm : float
        Fraction of them whose final frequency is the best-aligned key frequency / the key frequency of
        largest initial ``|C_k|``.
    chance : float
        ``Σ_k share_k²`` over the key frequencies.
    chance_independent : float
        ``Σ_k q_k share_k``, ``q_k`` the fraction of the neurons the alignment assigns to k: the expected
        accuracy of the same predictions shuffled across neurons (claim W1i). It equals ``chance`` when
        the predictions are spread like the outcome, and can be lower otherwise (a uniform spread scores
        1/K ≤ ``chance``); an uninformative predictor scores this in expectation, whatever its spread.
    """

    seed: int
    key_freqs: tuple[int, ...]
    neurons: int
    accuracy_alignment: float
    accuracy_norm: float
    chance: float
    chance_independent: float = math.nan

    def as_dict(self) -> dict:
        return asdict(self)


def initial_maps(run: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`initial_alignment` of a run's epoch-0 weights, regenerated from its config."""
    cfg = ModAddConfig(**config_fields(run["config"]))
    return initial_alignment(init_params(replace(cfg, device="cpu")), cfg.p)


def predict_winners(run: dict, initial: tuple[torch.Tensor, torch.Tensor] | None = None) -> WinnerPrediction:
    """Predict each neuron's final frequency of a mod-add run from its initial weights (module docstring).

    Parameters
    ----------
    run : dict
        A mod-add run (``config`` and ``neuron_freq``, whose last record is the final one).
    initial : tuple of torch.Tensor, optional
        :func:`initial_maps` of the run, when already computed.

    Returns
    -------
    WinnerPrediction
    """
    cfg = ModAddConfig(**config_fields(run["config"]))
    final = torch.as_tensor(np.asarray(run["neuron_freq"][-1], dtype=np.float64))  # [d_mlp, n_freq]
    keys = key_frequencies(final)
    align, norm = initial if initial is not None else initial_maps(run)  # epoch-0 weights
    cols = torch.tensor([k - 1 for k in keys], dtype=torch.long)
    winner = final.argmax(1)  # 0-based column
    use = torch.isin(winner, cols)
    if not bool(use.any()):
        return WinnerPrediction(int(cfg.seed), tuple(keys), 0, math.nan, math.nan, math.nan, math.nan)
    truth = winner[use]
    by_align = cols[align[use][:, cols].argmax(1)]
    by_norm = cols[norm[use][:, cols].argmax(1)]
    share = torch.stack([(truth == c).double().mean() for c in cols])
    assigned = torch.stack([(by_align == c).double().mean() for c in cols])
    return WinnerPrediction(
        seed=int(cfg.seed),
        key_freqs=tuple(int(k) for k in keys),
        neurons=int(use.sum()),
        accuracy_alignment=float((by_align == truth).double().mean()),
        accuracy_norm=float((by_norm == truth).double().mean()),
        chance=float((share**2).sum()),
        chance_independent=float((assigned * share).sum()),
    )


def tie_margins(run: dict, initial: tuple[torch.Tensor, torch.Tensor] | None = None) -> np.ndarray:
    """Per neuron: the best minus the second-best initial alignment among the run's final key frequencies.

    Parameters
    ----------
    run : dict
        A mod-add run (``config`` and ``neuron_freq``, as :func:`predict_winners`).
    initial : tuple of torch.Tensor, optional
        :func:`initial_maps` of the run, when already computed.

    Returns
    -------
    numpy.ndarray
        ``[d_mlp]`` float64, >= 0; all nan when the run has fewer than 2 key frequencies.
    """
    cfg = ModAddConfig(**config_fields(run["config"]))
    final = torch.as_tensor(np.asarray(run["neuron_freq"][-1], dtype=np.float64))
    keys = key_frequencies(final)
    if len(keys) < 2:
        return np.full(cfg.d_mlp, math.nan)
    align, _ = initial if initial is not None else initial_maps(run)
    top = align[:, [k - 1 for k in keys]].sort(1, descending=True).values  # [d_mlp, K]
    return (top[:, 0] - top[:, 1]).numpy()


def tie_auc(margins: np.ndarray, bumping: np.ndarray) -> float:
    """P(margin of a bumping neuron < margin of a non-bumping one), ties counting half (Mann-Whitney).

    Parameters
    ----------
    margins : numpy.ndarray
        ``[N]`` tie margins (:func:`tie_margins`); nan entries are left out.
    bumping : numpy.ndarray
        ``[N]`` bool: the neuron has a key-frequency share bump.

    Returns
    -------
    float
        In [0, 1]; 0.5 when bumping does not depend on the margin; nan when either group is empty.
    """
    ok = np.isfinite(margins)
    a, b = margins[ok & bumping], margins[ok & ~bumping]
    if not a.size or not b.size:
        return math.nan
    less = (a[:, None] < b[None, :]).sum() + 0.5 * (a[:, None] == b[None, :]).sum()
    return float(less / (a.size * b.size))
