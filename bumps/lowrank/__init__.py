"""Task: the toy low-rank factorisation (GD / Adam on ½‖UVᵀ − Σ sₖ aₖbₖᵀ‖²), its invariants, knockouts, claims.

::

    from bumps.lowrank import LowRankConfig, simulate
"""

from bumps.lowrank.model import LowRankConfig, simulate

__all__ = ["LowRankConfig", "simulate"]
