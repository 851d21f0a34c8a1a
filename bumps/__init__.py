"""bumps: measure transient bumps, phase changes and competition in training curves.

Layers, lowest first (a module imports only from its own layer or below; ``tests/test_layers.py`` checks it):

* core: :mod:`bumps.errors`, :mod:`bumps.stats`, :mod:`bumps.runtime`, :mod:`bumps.adamw`, :mod:`bumps.io`
  and :mod:`bumps.detect` — no module here knows any model;
* tasks, one subpackage each, beside one another: :mod:`bumps.lowrank` (the toy low-rank factorisation),
  :mod:`bumps.modadd` (Nanda et al.'s modular-addition transformer and seed 001's probe);
* applications over tasks: :mod:`bumps.report`, :mod:`bumps.export`, :mod:`bumps.sweep`, :mod:`bumps.cli`.
"""

__version__ = "0.1.0"
