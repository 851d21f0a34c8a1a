"""Seed 002's induction-head phase change: a 2-layer attention-only transformer on repeated random subsequences.

``data.py`` the sequences and seeded batches; ``model.py`` the config and the stacked transformer; ``scores.py``
the per-head and per-layer induction and previous-token scores; ``train.py`` the training loop with the recorder;
``knockout.py`` the head knockouts; ``claims.py`` and ``figures.py`` the study's report and figures.
"""
