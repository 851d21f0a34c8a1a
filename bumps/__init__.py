"""bumps: measure transient bumps and competition in training curves."""

__version__ = "0.1.0"
