"""Which mod-add bumps are which: key vs non-key frequency, training phase, trivial shape.

Nanda et al.'s timeline already predicts one kind of bump: during memorisation every
frequency's embedding norm grows, and in cleanup weight decay removes the frequencies the
final circuit does not use, so each non-key frequency rises and then falls. That is the
*trivial* shape, and it is not the phenomenon in question. Here every bump that
:func:`bumps.detect.analysis.analyze` finds in a run's ``freq_norm`` (W_E), ``freq_norm_wl`` (W_L)
and ``neuron_freq`` (neuron × frequency) curves is labelled with

* ``freq``: its frequency (1-based) and ``key``: whether it is one of the run's final key
  frequencies (:func:`bumps.modadd.train.key_frequencies`);
* ``phase``: where it peaks, from :func:`bumps.lowrank.figures.phase_boundaries` —
  ``memorisation`` (≤ the test-loss peak), ``circuit`` (before cleanup starts), ``cleanup``
  (until cleanup ends) or ``after``;
* ``trivial``: a non-key frequency that peaks before cleanup starts and has fallen by its
  end at or after cleanup's start (the memorise-then-clean-up shape).

``freq_norm`` and ``freq_norm_wl`` do not change when the residual stream is rotated
(frame-invariant); ``neuron_freq`` is per unit, and ReLU makes neurons a privileged basis.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from bumps.detect.analysis import SERIES, Source, analyze
from bumps.detect.bumps import BumpParams
from bumps.io.schema import own_steps

FRAME = {"freq_norm": "frame-invariant", "freq_norm_wl": "frame-invariant", "neuron_freq": "per-unit"}
INVARIANT = ("freq_norm", "freq_norm_wl")  # the frame-invariant series: W_E's and W_L's per-frequency norms


def phase_boundaries(run: dict) -> dict[str, int]:
    """Memorisation / circuit formation / cleanup boundaries from the curves (the paper chose them by eye).

    * memorisation ends at the test-loss peak;
    * cleanup starts when the test loss first falls below half that peak;
    * cleanup ends when the sum of squared weights has completed 90% of its fall from
      the start of cleanup to the end of the run.
    """
    step = run["step"].numpy()
    test = run["test_loss"].numpy()
    ssw = run["sum_sq_weights"].numpy()
    i1 = int(test.argmax())
    after = np.flatnonzero((np.arange(len(test)) > i1) & (test < test[i1] / 2))
    out = {"memorisation_end": int(step[i1])}
    if len(after):
        i2 = int(after[0])
        out["cleanup_start"] = int(step[i2])
        target = ssw[i2] - 0.9 * (ssw[i2] - ssw[-1])
        done = np.flatnonzero((np.arange(len(ssw)) >= i2) & (ssw <= target))
        if len(done):
            out["cleanup_end"] = int(step[done[0]])
    return out


def phase_of(step: int, phases: dict[str, int]) -> str:
    """The phase a step falls in, given :func:`bumps.lowrank.figures.phase_boundaries`."""
    if step <= phases["memorisation_end"]:
        return "memorisation"
    if step < phases.get("cleanup_start", np.inf):
        return "circuit"
    if step <= phases.get("cleanup_end", np.inf):
        return "cleanup"
    return "after"


def classify_bumps(run: dict, params: BumpParams | None = None) -> list[dict]:
    """Every bump of a mod-add run's frequency and neuron curves, labelled (see the module docstring).

    Parameters
    ----------
    run : dict
        A mod-add run (:func:`bumps.io.runfile.load_run`).
    params : BumpParams, optional
        Detector settings (default: :class:`bumps.detect.bumps.BumpParams` at its defaults, each curve
        judged against its own range; ``BumpParams(reference="family")`` judges every curve of a series
        against the range of all of them).
    """
    specs = [s for s in SERIES["modadd"] if s.key in run]
    own = own_steps(run, specs)
    source = Source([(s, np.asarray(run[s.key], dtype=np.float64)) for s in specs], np.asarray(run["step"]), run, own)
    result = analyze(source, params)
    phases = phase_boundaries(run)
    keys = {int(k) for k in run["key_freqs"]}
    rows = []
    for b in result["bumps"]:
        spec = next(s for s in specs if s.key == b["series"])
        t_axis = spec.target_axis if spec.target_axis is not None else 0
        freq = int(b["index"][t_axis]) + 1
        key = freq in keys
        cleanup = phases.get("cleanup_start", np.inf)
        rows.append(
            {
                **b,
                "freq": freq,
                "key": key,
                "frame": FRAME[b["series"]],
                "unit": int(b["index"][spec.unit_axis]) if spec.unit_axis is not None else None,
                "phase": phase_of(b["peak_step"], phases),
                "trivial": (not key) and b["peak_step"] < cleanup <= b["end_step"],
            }
        )
    return rows


def key_bump_rates(rows: list[dict], n_keys: int, d_mlp: int) -> tuple[float, float]:
    """Key-frequency bumps per curve: per neuron-frequency curve, and per W_E/W_L norm curve.

    Parameters
    ----------
    rows : list of dict
        Labelled bumps of one run (:func:`classify_bumps`).
    n_keys : int
        The run's number of key frequencies: there are ``d_mlp * n_keys`` key neuron-frequency curves
        and ``2 * n_keys`` key norm curves (W_E, W_L).
    d_mlp : int
        The run's MLP width.

    Returns
    -------
    tuple of float
        ``(neuron_rate, invariant_rate)``; both 0 when ``n_keys`` is 0 (no curve, no bump).
    """
    neuron = sum(r["key"] for r in rows if r["series"] == "neuron_freq")
    invariant = sum(r["key"] for r in rows if r["series"] in INVARIANT)
    return neuron / max(1, d_mlp * n_keys), invariant / max(1, 2 * n_keys)


def seed_summary(run: dict) -> dict:
    """One row per seed: grok epochs, key frequencies by both rules, neuron fraction, phases, bump counts."""
    rows = classify_bumps(run)
    keys = [int(k) for k in run["key_freqs"]]
    official = [int(k) for k in run.get("key_freqs_official", [])]
    counts = Counter((r["series"], "key" if r["key"] else "non-key", r["phase"]) for r in rows)
    return {
        "seed": int(run["config"]["seed"]),
        "data_seed": int(run["config"]["data_seed"]),
        "grok_epoch": int(run["grok_epoch"]),
        "test_loss_below_1e6_epoch": int(run["test_loss_below_1e6_epoch"]),
        "epochs_done": int(run["config"]["epochs_done"]),
        "stop_reason": run["config"].get("stop_reason"),
        "key_freqs": keys,
        "key_freqs_official": official,
        "key_rules_agree": keys == official,
        "single_freq_neuron_fraction": float(run["single_freq_neuron_fraction"]),
        "phases": phase_boundaries(run),
        "bumps": {f"{s}|{k}|{p}": n for (s, k, p), n in sorted(counts.items())},
        "bumps_by_series": dict(Counter(r["series"] for r in rows)),
        "key_bumps_by_series": dict(Counter(r["series"] for r in rows if r["key"])),
        "trivial_bumps_by_series": dict(Counter(r["series"] for r in rows if r["trivial"])),
        "neurons_with_key_bumps": len({r["unit"] for r in rows if r["series"] == "neuron_freq" and r["key"]}),
    }
