"""Diagonal linear networks at small initialisation: the positive control of the competition tests.

:mod:`bumps.dln.model` (problems and the vectorised flow), :mod:`bumps.dln.theory` (the saddle-to-saddle
recursion of Pesme & Flammarion 2023), :mod:`bumps.dln.knockout` (knockouts scored against the theory's
own continuation) and :mod:`bumps.dln.claims` (the checks and the report of ``bumps dln``).
"""
