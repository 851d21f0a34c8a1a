"""The series schema: which recorded arrays of a run kind are curve families, and their axes.

``SERIES`` lists, per run kind, the families the detector reads (:class:`SeriesSpec`: axis names after
time, gauge sign, unit and target axes for competition); ``EXTRA_SERIES`` the other recorded series that
export writes as tidy tables. These are plain data naming the keys each task records; nothing here
imports a task.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SeriesSpec:
    """A curve family of a run kind: key, axis names after time, gauge sign, unit/target axes.

    Attributes
    ----------
    key : str
        The run-file key holding the family ``[T, *axes]`` (for plain arrays
        ``"array"``, for CSV curves the column name).
    axes : tuple of str
        Names of the axes after time (e.g. ``("seed", "target", "learned")``).
    signed : bool, default False
        Whether the sign is a gauge (flipping ã and b̃ together flips every inner
        product with truth), so detection orients the curves first
        (:func:`bumps.detect.analysis.prepare`).
    unit_axis : int or None, default None
        Position within ``axes`` of the learned-unit axis, for competition; None: no
        competition.
    target_axis : int or None, default None
        Position within ``axes`` of the target axis, for competition.
    target_offset : int, default 0
        The label of target index i is ``i + target_offset`` (1 for frequencies,
        which start at 1).
    step_key : str, default "step"
        The run-file key of the family's steps, when it has its own cadence (``neuron_step`` for
        ``neuron_freq``); a run without that key records the family at ``step``
        (:func:`steps_of`).
    """

    key: str
    axes: tuple[str, ...]
    signed: bool = False
    unit_axis: int | None = None  # position within ``axes``
    target_axis: int | None = None  # position within ``axes``
    target_offset: int = 0  # label of target index i is i + target_offset
    step_key: str = "step"

    @property
    def lead_axes(self) -> list[int]:
        """Positions within ``axes`` that are neither the unit nor the target axis (e.g. seed), ascending."""
        return [i for i in range(len(self.axes)) if i not in (self.unit_axis, self.target_axis)]


SERIES: dict[str, list[SeriesSpec]] = {
    "lowrank": [
        SeriesSpec("inner_a", ("seed", "target", "learned"), True, unit_axis=2, target_axis=1),
        SeriesSpec("inner_b", ("seed", "target", "learned"), True, unit_axis=2, target_axis=1),
        SeriesSpec("norm_a", ("seed", "learned")),
        SeriesSpec("norm_b", ("seed", "learned")),
    ],
    "modadd": [
        SeriesSpec("freq_norm", ("frequency",)),
        SeriesSpec("freq_norm_wl", ("frequency",)),
        SeriesSpec(
            "neuron_freq", ("neuron", "frequency"), unit_axis=0, target_axis=1, target_offset=1, step_key="neuron_step"
        ),
    ],
}


# Series exported per run kind: key -> (axes after time, the run key holding its steps).
# Keys in SERIES take their axes from there; the rest are listed here.
EXTRA_SERIES: dict[str, dict[str, tuple[tuple[str, ...], str]]] = {
    "lowrank": {"loss": (("seed",), "step")},
    "modadd": {
        **{
            k: ((), "step")
            for k in (
                "train_loss",
                "test_loss",
                "train_acc",
                "test_acc",
                "gini_embed",
                "gini_neuron_logit",
                "gini_freq_embed",
                "gini_freq_neuron_logit",
                "sum_sq_weights",
            )
        },
        "restricted_loss": ((), "checkpoint_step"),
        "excluded_loss": ((), "checkpoint_step"),
        "train_loss_every_epoch": ((), "epoch"),  # value at index e: the loss after e updates
    },
}
AXIS_ORDER = ("seed", "target", "learned", "neuron", "frequency")
AXIS_OFFSET = {"frequency": 1}  # frequency index i is frequency k = i + 1


# Run kinds whose units shrink at the start of training (weight norms decaying from a random init): bumps get
# ``started_in_norm_decay`` / ``peaked_in_norm_decay`` flags relative to the end of that phase, found from
# these series (concatenated on their last axis) by :func:`bumps.detect.competition.norm_decay_end`.
NORM_DECAY_SERIES: dict[str, tuple[str, ...]] = {"lowrank": ("norm_a", "norm_b")}


RECORDED_KIND = "recorded"  # runs written by bumps.recorder.Recorder: each names its own series and axes


def recorded_specs(run: dict) -> list[SeriesSpec]:
    """The curve families of a self-describing ``"recorded"`` run, from its ``axes`` entry.

    Parameters
    ----------
    run : dict
        A loaded run of kind :data:`RECORDED_KIND`: ``axes`` maps each series key to its axis names after
        time; ``competition`` (optional) maps a key to its unit and target axis names; ``signed`` (optional)
        lists gauge-signed series.

    Returns
    -------
    list of SeriesSpec
        One per series in ``axes``, in its order.
    """
    competition, signed = run.get("competition") or {}, set(run.get("signed") or ())
    specs = []
    for key, names in (run.get("axes") or {}).items():
        names = tuple(names)
        pair = competition.get(key)
        unit, target = (names.index(pair[0]), names.index(pair[1])) if pair else (None, None)
        specs.append(SeriesSpec(key, names, key in signed, unit_axis=unit, target_axis=target))
    return specs


def steps_of(run: dict, key: str):
    """The steps of one recorded family of a run: its own steps if the run has them, else ``run["step"]``.

    Parameters
    ----------
    run : dict
        A run file's dict.
    key : str
        The family's key (e.g. ``neuron_freq``); its own steps are under the :class:`SeriesSpec`'s
        ``step_key`` of the run's kind.
    """
    for spec in SERIES.get(run.get("kind"), []):
        if spec.key == key and spec.step_key in run:
            return run[spec.step_key]
    return run["step"]


def own_steps(run: dict, specs) -> dict:
    """``{key: steps}`` of the families among ``specs`` recorded on their own steps in ``run``.

    The ``own_steps`` of a :class:`bumps.detect.analysis.Source`; a family whose step key the run lacks
    (an older file) uses ``run["step"]`` and is not listed.
    """
    import numpy as np

    return {s.key: np.asarray(run[s.step_key]) for s in specs if s.step_key != "step" and s.step_key in run}
