"""bumps.alignment against closed forms and its invariances."""

from __future__ import annotations

import math

import pytest
import torch

from bumps.alignment import cosines, inner_products, projection_norms, singular_values, target_norms
from bumps.errors import BumpsError

D = torch.float64  # every tensor here is float64 (the global default is left alone)


def _orthogonal(n: int, seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q


def test_closed_forms_in_the_plane():
    theta = 0.3
    learned = torch.tensor([[math.cos(theta), math.sin(theta), 0.0]]) * 2.0  # one unit of norm 2
    targets = torch.eye(3)
    assert inner_products(learned, targets)[0].tolist() == pytest.approx([2 * math.cos(theta), 2 * math.sin(theta), 0])
    assert cosines(learned, targets)[0].tolist() == pytest.approx([math.cos(theta), math.sin(theta), 0])
    # projection of e_k onto the line: |cos| of the angle, whatever the unit's length
    assert projection_norms(learned, targets).tolist() == pytest.approx([math.cos(theta), math.sin(theta), 0])
    assert target_norms(learned, targets).tolist() == pytest.approx([2 * math.cos(theta), 2 * math.sin(theta), 0])
    # singular value of a rank-one 1x3 matrix: its norm
    assert singular_values(learned, targets).tolist() == pytest.approx([2.0])


def test_subspace_quantities_against_a_projector():
    g = torch.Generator().manual_seed(0)
    learned, targets = (
        torch.randn(2, 3, 5, 7, generator=g, dtype=D),
        torch.randn(2, 4, 7, generator=g, dtype=D)[:, None],
    )
    q, _ = torch.linalg.qr(learned.transpose(-1, -2))  # [2, 3, 7, 5]: orthonormal columns spanning the units
    proj = targets @ q @ q.transpose(-1, -2)
    assert torch.allclose(projection_norms(learned, targets), proj.norm(dim=-1), atol=1e-12)
    inner = learned @ targets.transpose(-1, -2)
    assert torch.allclose(target_norms(learned, targets), inner.norm(dim=-2), atol=1e-12)
    assert torch.allclose(singular_values(learned, targets), torch.linalg.svdvals(inner), atol=1e-12)


def test_invariances():
    g = torch.Generator().manual_seed(1)
    learned, targets = torch.randn(4, 9, generator=g, dtype=D), torch.randn(3, 9, generator=g, dtype=D)
    rotated = _orthogonal(4, 2) @ learned  # orthogonal mixing of the units
    mixed = torch.randn(4, 4, generator=g, dtype=D) @ learned  # any invertible mixing
    assert not torch.allclose(inner_products(rotated, targets), inner_products(learned, targets))
    assert torch.allclose(target_norms(rotated, targets), target_norms(learned, targets), atol=1e-12)
    assert torch.allclose(singular_values(rotated, targets), singular_values(learned, targets), atol=1e-12)
    assert torch.allclose(projection_norms(mixed, targets), projection_norms(learned, targets), atol=1e-10)
    assert not torch.allclose(target_norms(mixed, targets), target_norms(learned, targets))


def test_rank_deficient_and_zero_units():
    targets = torch.eye(3)
    learned = torch.tensor([[1.0, 0, 0], [2.0, 0, 0], [0, 0, 0]])  # spans only e_0
    assert projection_norms(learned, targets).tolist() == pytest.approx([1, 0, 0])
    assert projection_norms(torch.zeros(2, 3), targets).tolist() == [0, 0, 0]
    assert cosines(torch.zeros(1, 3), targets).tolist() == [[0, 0, 0]]
    span_all = torch.eye(3)[[2, 0, 1]] * torch.tensor([[3.0], [0.5], [1.0]])
    assert projection_norms(span_all, targets).tolist() == pytest.approx([1, 1, 1])


@pytest.mark.parametrize(("a", "b"), [((3,), (2, 3)), ((2, 3), (2, 4))])
def test_bad_shapes(a, b):
    with pytest.raises(BumpsError, match="same d"):
        inner_products(torch.zeros(a), torch.zeros(b))
