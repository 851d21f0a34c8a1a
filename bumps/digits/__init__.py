"""Seed 002's task: 5-digit addition with a one-layer transformer, where each answer digit has its own phase change.

``data.py`` the token layout and seeded batches; ``model.py`` the config and the stacked (ensemble) transformer;
``train.py`` the training loop that records every step with :class:`bumps.recorder.Recorder`.
"""
