"""bumps.lowrank.rotation: GD is rotation-equivariant to float tolerance, and the study reads what varies."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bumps.lowrank.invariants import invariant_series
from bumps.lowrank.model import LowRankConfig, initial_state, simulate
from bumps.lowrank.rotation import (
    _per_unit_bumps,
    haar_orthogonal,
    rotated_state,
    rotation_study,
    summarize_rotations,
)

CFG = LowRankConfig(rank=3, dim=20, seeds=4, steps=600)


def test_haar_matrices_are_orthogonal_and_unbiased():
    q = haar_orthogonal(2000, 3, torch.Generator().manual_seed(0))
    eye = torch.eye(3, dtype=q.dtype)
    assert torch.allclose(q.transpose(-1, -2) @ q, eye.expand_as(q), atol=1e-12)
    assert abs(float(q.mean())) < 0.02  # Haar: every entry has mean 0 ...
    assert abs(float((q**2).mean()) - 1 / 3) < 0.01  # ... and variance 1/k
    assert (torch.linalg.det(q) < 0).any() and (torch.linalg.det(q) > 0).any()  # both components of O(k)


def test_gd_is_equivariant_a_rotated_start_rotates_the_units_and_nothing_else():
    rot = haar_orthogonal(CFG.seeds, CFG.n_learned, torch.Generator().manual_seed(1))
    plain = simulate(CFG)
    turned = simulate(CFG, state=rotated_state(initial_state(CFG), rot))
    assert torch.allclose(turned["loss"], plain["loss"], rtol=0, atol=1e-12)
    for key, x in invariant_series(plain).items():
        assert np.allclose(invariant_series(turned)[key], x, rtol=0, atol=1e-10), key
    # the per-unit inner products are the original ones mixed by R, at every record
    assert torch.allclose(turned["inner_a"], plain["inner_a"] @ rot[None], atol=1e-10)
    assert torch.allclose(turned["inner_a_final"], plain["inner_a_final"] @ rot, atol=1e-10)
    assert not torch.allclose(turned["inner_a"], plain["inner_a"], atol=1e-3)  # and they do change


def test_the_study_starts_from_the_seeds_own_basis_and_counts_what_varies():
    study = rotation_study(CFG, n_rotations=3, knockout_bumps=0)
    own, _ = _per_unit_bumps(simulate(CFG), None)
    assert study["bumps"][0] == own.tolist()  # rotation 0 is the identity
    assert study["invariant_max_diff"][0] == 0.0 and max(study["invariant_max_diff"]) < 1e-9
    s = summarize_rotations(study)
    assert s["rotations"] == 3 and s["seeds"] == CFG.seeds
    counts = np.asarray(study["bumps"])
    assert s["seeds_count_varies"] == int((counts.min(0) != counts.max(0)).sum())
    assert s["count_range"] == [[int(a), int(b)] for a, b in zip(counts.min(0), counts.max(0), strict=True)]
    assert 0 <= s["pairs_status_varies"] <= s["pairs"] <= CFG.seeds * CFG.rank


def test_adam_is_refused():
    with pytest.raises(ValueError, match="needs GD"):
        rotation_study(LowRankConfig(rank=2, dim=10, seeds=2, steps=50, optimizer="adam"), n_rotations=2)
