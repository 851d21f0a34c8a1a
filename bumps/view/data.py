"""One run as JSON for the page: the header, the scalar charts, and each run kind's own view.

Everything here turns a loaded run dict into plain JSON-ready dicts; nothing reads files
(:mod:`bumps.view.files` does) or knows HTTP (:mod:`bumps.view.server`). Mod-add runs get the
wavetable and, one record at a time, the spectrum and the neuron table; toy runs get one seed at a
time, per-unit and frame-invariant. The scalar charts are :mod:`bumps.view.charts`, the events
:mod:`bumps.view.events`.
"""

from __future__ import annotations

import numpy as np

from bumps.io.schema import SERIES, steps_of
from bumps.lowrank.invariants import invariant_series
from bumps.modadd.phases import phase_boundaries
from bumps.view.charts import BUCKETS, as_json_list, chart, scalar_charts

WAVETABLE_COLUMNS = 500  # records shown in the wavetable at most (evenly spaced, exact values)


def run_status(run: dict) -> tuple[str, str]:
    """How a run ended, from its config: ``("finished" | "in progress" | "diverged", detail)``.

    Parameters
    ----------
    run : dict
        A loaded run.

    Returns
    -------
    status : str
        ``"diverged"`` if the config records a divergence, ``"in progress"`` for an autosave or an
        interrupted run (``final`` False), else ``"finished"``.
    detail : str
        The epoch or step reached, or the stop reason.
    """
    cfg = run.get("config") or {}
    if cfg.get("diverged_step") is not None or cfg.get("stop_reason") == "diverged":
        return "diverged", f"at {cfg.get('diverged_step', cfg.get('diverged_epoch'))}"
    if cfg.get("final") is False:
        return "in progress", f"epoch {cfg.get('epochs_done')} of {cfg.get('epochs')}"
    steps = np.asarray(run.get("step", []))
    last = int(steps[-1]) if len(steps) else 0
    return "finished", f"stopped: {cfg['stop_reason']}" if cfg.get("stop_reason") else f"to step {last}"


def _wavetable(run: dict, columns: int) -> dict:
    n = len(run["step"])
    cols = np.unique(np.linspace(0, n - 1, min(n, columns)).round().astype(np.int64)) if n else np.zeros(0, int)
    out = {"records": cols.tolist(), "steps": np.asarray(run["step"])[cols].tolist()}
    for key in ("freq_norm", "freq_norm_wl"):
        if key in run:
            out[key] = as_json_list(np.asarray(run[key], dtype=np.float64)[cols])  # [columns, F]
    return out


def _modadd(run: dict, columns: int) -> dict:
    cfg = run.get("config") or {}
    phases = {}
    if all(k in run and len(run[k]) for k in ("test_loss", "sum_sq_weights")):
        phases = phase_boundaries(run)
    nf = run.get("neuron_freq")
    return {
        "p": cfg.get("p"),
        "freqs": int(np.asarray(run["freq_norm"]).shape[1]) if "freq_norm" in run else 0,
        "neurons": int(nf.shape[1]) if nf is not None else 0,
        "records": len(run["step"]),
        "record_steps": np.asarray(run["step"]).tolist(),
        "key_freqs": [int(k) for k in run.get("key_freqs", [])],
        "key_freqs_official": [int(k) for k in run.get("key_freqs_official", [])],
        "grok_epoch": int(run.get("grok_epoch", -1)),
        "phases": phases,
        "wavetable": _wavetable(run, columns),
    }


def record_payload(run: dict, i: int) -> dict:
    """One mod-add record at full precision: the spectrum and the neuron × frequency table.

    Parameters
    ----------
    run : dict
        A loaded mod-add run.
    i : int
        The record (position along axis 0), ``0 <= i < T``; negative counts from the end.

    Returns
    -------
    dict
        ``record``, ``step``, ``freq_norm`` and ``freq_norm_wl`` ``[F]`` and ``neuron_freq``
        ``[d_mlp][F]`` (each present if recorded), values as recorded. The neuron table has its own
        cadence: the one given is the latest at or before ``step``, recorded at ``neuron_step``.

    Raises
    ------
    IndexError
        If ``i`` is out of range.
    """
    n = len(run["step"])
    if not -n <= i < n:
        raise IndexError(f"record {i} is out of range (the run has {n} records)")
    i = i % n
    out = {"record": i, "step": int(run["step"][i])}
    for key in ("freq_norm", "freq_norm_wl"):
        if key in run:
            out[key] = as_json_list(np.asarray(run[key][i], dtype=np.float64))
    if "neuron_freq" in run:  # its own cadence: the latest table at or before this record's step
        nstep = np.asarray(steps_of(run, "neuron_freq"))
        j = max(int(np.searchsorted(nstep, out["step"], side="right")) - 1, 0)
        out["neuron_step"] = int(nstep[j])
        out["neuron_freq"] = as_json_list(np.asarray(run["neuron_freq"][j], dtype=np.float64))
    return out


def seed_payload(run: dict, seed: int, buckets: int = BUCKETS) -> dict:
    """One seed of a toy run: per-unit inner products with truth and the frame-invariant series.

    Parameters
    ----------
    run : dict
        A loaded lowrank run.
    seed : int
        The seed index, ``0 <= seed < N``.
    buckets : int, default BUCKETS
        Envelope buckets per line.

    Returns
    -------
    dict
        ``seed``, ``per_unit`` (charts of ``inner_a`` and ``inner_b``, one line per target m and
        learned unit k) and ``invariant`` (charts of ``target_norm_a/b``, ``sv_a/b`` and the loss,
        from :func:`bumps.lowrank.invariants.invariant_series`).

    Raises
    ------
    IndexError
        If ``seed`` is out of range.
    """
    n = np.asarray(run["loss"]).shape[1]
    if not 0 <= seed < n:
        raise IndexError(f"seed {seed} is out of range (the run has {n} seeds)")
    steps = np.asarray(run["step"])
    one = {k: np.asarray(run[k])[:, seed : seed + 1] for k in ("inner_a", "inner_b", "loss")}
    inv = {k: v[:, 0] for k, v in invariant_series(one).items()}
    per_unit = []
    for key in ("inner_a", "inner_b"):
        x = one[key][:, 0]  # [T, r, K]
        side = key[-1]
        pairs = [(m, k) for m in range(x.shape[1]) for k in range(x.shape[2])]
        members = [(key, f"{side}{m + 1}·unit {k + 1}", steps, x[:, m, k]) for m, k in pairs]
        per_unit.append(chart(key, f"{key}: target · learned unit (per unit)", False, members, buckets))
    invariant = []
    for key in ("target_norm_a", "target_norm_b", "sv_a", "sv_b"):
        x = inv[key]
        label = "target" if key.startswith("target") else "σ"
        members = [(key, f"{label} {j + 1}", steps, x[:, j]) for j in range(x.shape[1])]
        invariant.append(chart(key, f"{key} (frame-invariant)", False, members, buckets))
    invariant.append(chart("loss", "loss", True, [("loss", "loss", steps, inv["loss"])], buckets))
    return {"seed": seed, "per_unit": per_unit, "invariant": invariant}


def run_payload(run: dict, name: str, buckets: int = BUCKETS, columns: int = WAVETABLE_COLUMNS) -> dict:
    """The first payload of a run page: header, scalar charts and the kind's own view (no events yet).

    Parameters
    ----------
    run : dict
        A loaded run.
    name : str
        How the page names the run (its path relative to what is served).
    buckets : int, default BUCKETS
        Envelope buckets per line.
    columns : int, default WAVETABLE_COLUMNS
        Records shown in the wavetable at most.

    Returns
    -------
    dict
        ``view`` ("run"), ``name``, ``kind``, ``status``, ``detail``, ``records``, ``config``
        (its scalar settings), ``families`` (the detected curve families recorded), ``charts``
        (:func:`scalar_charts`), and ``modadd`` (wavetable, key frequencies, phases, record steps)
        or ``lowrank`` (seeds, rank, learned units and the first seed's :func:`seed_payload`).
        Events come separately (:func:`run_events`): detection takes longer than drawing.
    """
    status, detail = run_status(run)
    cfg = run.get("config") or {}
    kind = run.get("kind")
    out = {
        "view": "run",
        "name": name,
        "kind": kind,
        "status": status,
        "detail": detail,
        "records": len(run.get("step", [])),
        "config": {k: v for k, v in cfg.items() if isinstance(v, (int, float, str, bool)) or v is None},
        "families": [s.key for s in SERIES.get(kind, []) if s.key in run],
        "charts": scalar_charts(run, buckets),
    }
    if kind == "modadd" and "freq_norm" in run:
        out["modadd"] = _modadd(run, columns)
    if kind == "lowrank" and "inner_a" in run:
        shape = np.asarray(run["inner_a"]).shape
        first = seed_payload(run, 0, buckets)
        out["lowrank"] = {"seeds": shape[1], "rank": shape[2], "learned": shape[3], "first": first}
    return out
