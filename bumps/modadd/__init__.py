"""Task: Nanda et al.'s one-layer modular-addition transformer, seed 001's probe, phases, knockouts, claims.

::

    from bumps.modadd import ModAddConfig
    from bumps.modadd.train import train, train_many
"""

from bumps.modadd.model import PRESETS, ModAddConfig

__all__ = ["PRESETS", "ModAddConfig"]
