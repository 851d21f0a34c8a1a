"""Knockouts, the causal test every task shares: plan interventions against one bump, score what happened.

For one bump (its *event*) a task plans interventions of three roles:

* ``competitor``: remove what is suspected of causing the fall (the unit that gains while it falls);
* ``control``: remove something matched to the competitor that competition says should not matter;
* ``none``: continue unchanged, which must reproduce the bump (it checks the continuation itself).

Each continuation is scored by ``persists`` (the detector, same thresholds, still finds a bump on the same
curve peaking inside the original [start, end]) and ``drop_ratio`` (the curve's fall after the intervention
over the original fall; 1: unchanged, 0: no fall). Competition predicts low values for the competitor and
values near 1 for the controls. How a unit is removed, and which fall a task measures, belong to the task
(:mod:`bumps.lowrank.knockout`, :mod:`bumps.modadd.knockout`); the plan and outcome records are these.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bumps.errors import BumpsError

ROLES = ("competitor", "control", "none")


@dataclass(frozen=True)
class BumpEvent:
    """A bump a knockout intervenes on.

    Attributes
    ----------
    series : str
        Key of the recorded series the bump is on (e.g. ``inner_a``, ``neuron_freq``).
    index : tuple of int
        The curve within the series: its indices over the series' non-time axes.
    start_step, peak_step, end_step : int
        The bump's trough before, peak and trough after, in training steps (not samples).
    drop : float
        The original fall ``x[peak] - x[end]`` in the curve's units (after ``sign``).
    group : int or str
        The independent unit the event belongs to (a seed of a vectorised run, or a run file): the
        cluster that intervals resample.
    sign : float
        +1 or -1: the orientation the curve was detected in (gauge-signed series are flipped so the bump
        points up).
    """

    series: str
    index: tuple[int, ...]
    start_step: int
    peak_step: int
    end_step: int
    drop: float
    group: int | str
    sign: float = 1.0


@dataclass(frozen=True)
class KnockoutPlan:
    """One intervention against one event.

    Attributes
    ----------
    event : BumpEvent
        The bump intervened on.
    role : str
        ``competitor``, ``control`` or ``none`` (see the module docstring).
    removed : tuple of int
        What is removed, in the task's units (learned pairs, neurons, 1-based frequencies); empty for ``none``.
    at : str
        When the removal starts, by name: ``peak`` or ``start`` of the bump, or ``checkpoint`` (the last
        weight checkpoint at or before the peak).
    pair : int or str
        Identifies the event within its study, so that a competitor is compared with the controls and the
        unintervened continuation of the same bump.
    arm : str, default ""
        A finer name within the role, when a study has several competitors or controls per event (e.g.
        ``rival``, ``other-key``, ``control-8``); empty: the role alone names it.
    """

    event: BumpEvent
    role: str
    removed: tuple[int, ...]
    at: str
    pair: int | str
    arm: str = ""

    @property
    def name(self) -> str:
        """The arm's name: ``arm``, or the role when it has none."""
        return self.arm or self.role

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise BumpsError(f"knockout `role` must be one of {', '.join(ROLES)} (got {self.role!r})")


@dataclass(frozen=True)
class KnockoutOutcome:
    """What one intervention did.

    Attributes
    ----------
    plan : KnockoutPlan
        The intervention.
    at_step : int
        The step from which the removal applied.
    persists : bool
        A bump on the same curve still peaks inside the original [start_step, end_step].
    drop_ratio : float
        The fall after the intervention over ``plan.event.drop``.
    """

    plan: KnockoutPlan
    at_step: int
    persists: bool
    drop_ratio: float


def persists(peak_steps: np.ndarray, event: BumpEvent) -> bool:
    """Whether any bump found on the continued curve peaks inside the event's original window.

    Parameters
    ----------
    peak_steps : array of int
        Peak steps of the bumps the detector found on the curve after the intervention.
    event : BumpEvent
        The original bump.

    Returns
    -------
    bool
        True when some ``event.start_step <= peak <= event.end_step``.
    """
    p = np.asarray(peak_steps)
    return bool(((p >= event.start_step) & (p <= event.end_step)).any())
