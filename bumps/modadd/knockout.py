"""Knockouts in the mod-add transformer: is a bump caused by what competes with it?

For a bump of neuron L on frequency k (``neuron_freq``) the *competitors* are the ``n``
neurons W ≠ L that gain most on k while L falls (peak → end); the *controls* are ``n`` other
neurons matched one to one to the competitors by their share of frequency k at the peak
(nearest value, each used once). For a bump of a key frequency's embedding norm
(``freq_norm`` for W_E or ``freq_norm_wl`` for W_L) the competitor is the other key frequency
that gains most in the same norm while it falls, and the control is the non-key frequency whose
norm at the peak is nearest to the competitor's; either is removed from W_E (its cos/sin
components, at every step from the checkpoint on), which takes the frequency out of the model.

Each intervention continues training from the run's last weight+optimizer checkpoint at or
before the peak (:class:`bumps.modadd.train.Intervention`, applied from that epoch on) to the bump's
end, all of them as one ensemble, next to an unintervened continuation from the same
checkpoint (``role="none"``), which must reproduce the bump. Outcomes, as in the toy model:
``persists`` (the detector, same thresholds, still finds a bump on the same curve peaking
inside the original [start, end]) and ``drop_ratio`` (the curve's fall from the original peak
step to the end step, over the original fall).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np

from bumps.detect.bumps import BumpParams, find_bumps
from bumps.errors import BumpsError
from bumps.io.runfile import load_run, safe_load
from bumps.io.schema import steps_of
from bumps.knockout import BumpEvent, KnockoutPlan, persists
from bumps.modadd.model import ModAddConfig
from bumps.modadd.train import Intervention, config_fields, load_checkpoints, step_elements, train_many
from bumps.threads import threads_for


def event(
    series: str,
    freq: int,
    unit: int | None,
    start_step: int,
    peak_step: int,
    end_step: int,
    drop: float = float("nan"),
    run: str = "",
) -> BumpEvent:
    """A key-frequency bump as a :class:`~bumps.knockout.BumpEvent`.

    Parameters
    ----------
    series : str
        ``neuron_freq`` (curve of neuron ``unit`` on frequency ``freq``), ``freq_norm`` (W_E) or
        ``freq_norm_wl`` (W_L) (curve of frequency ``freq``; ``unit`` None).
    freq : int
        The frequency k, 1-based.
    unit : int or None
        The neuron, for ``neuron_freq``.
    start_step, peak_step, end_step : int
        The bump's epochs.
    drop : float
        Its fall, peak to end, in the curve's units (nan when not known).
    run : str
        The run file it was found in (the event's group).
    """
    index = (unit, freq - 1) if unit is not None else (freq - 1,)
    return BumpEvent(series, index, start_step, peak_step, end_step, drop, run)


def freq_of(e: BumpEvent) -> int:
    """The event's 1-based frequency."""
    return e.index[-1] + 1


def unit_of(e: BumpEvent) -> int | None:
    """The event's neuron (None for a frequency-norm bump)."""
    return e.index[0] if len(e.index) == 2 else None


def _plan(e: BumpEvent, role: str, removed: tuple[int, ...] = ()) -> KnockoutPlan:
    return KnockoutPlan(e, role, removed, "checkpoint", f"{e.group}:{e.series}:{e.index}:{e.peak_step}")


def _curve(run: dict, event: BumpEvent) -> np.ndarray:
    x = np.asarray(run[event.series], dtype=np.float64)
    return x[(slice(None), *event.index)]


def _index(run: dict, step: int, series: str) -> int:
    return int(np.searchsorted(np.asarray(steps_of(run, series)), step))


def plan_neuron(run_path: str, run: dict, event: BumpEvent, n: int) -> list[KnockoutPlan]:
    """Baseline, competitor and matched-control knockouts for a neuron_freq bump."""
    event = replace(event, group=run_path)
    nf = np.asarray(run["neuron_freq"], dtype=np.float64)[:, :, freq_of(event) - 1]  # [T, d_mlp]
    p, e = _index(run, event.peak_step, "neuron_freq"), _index(run, event.end_step, "neuron_freq")
    gain = nf[e] - nf[p]
    gain[unit_of(event)] = -np.inf
    comp = [int(i) for i in np.argsort(-gain, kind="stable")[:n]]
    share = nf[p]
    free = set(range(nf.shape[1])) - set(comp) - {unit_of(event)}
    controls = []
    for c in comp:
        best = min(free, key=lambda w: (abs(share[w] - share[c]), w))
        controls.append(best)
        free.remove(best)
    return [
        _plan(event, "none"),
        _plan(event, "competitor", tuple(comp)),
        _plan(event, "control", tuple(sorted(controls))),
    ]


def plan_frequency(run_path: str, run: dict, event: BumpEvent) -> list[KnockoutPlan]:
    """Baseline, other-key-frequency and matched non-key-frequency knockouts for a frequency-norm bump."""
    event = replace(event, group=run_path)
    fn = np.asarray(run[event.series], dtype=np.float64)
    keys = [int(k) for k in run["key_freqs"] if int(k) != freq_of(event)]
    if not keys:
        return []
    p, e = _index(run, event.peak_step, event.series), _index(run, event.end_step, event.series)
    comp = max(keys, key=lambda k: (fn[e, k - 1] - fn[p, k - 1], -k))
    others = [k for k in range(1, fn.shape[1] + 1) if k not in keys and k != freq_of(event)]
    control = min(others, key=lambda k: (abs(fn[p, k - 1] - fn[p, comp - 1]), k))
    return [
        _plan(event, "none"),
        _plan(event, "competitor", (comp,)),
        _plan(event, "control", (control,)),
    ]


def clearest_events(
    rows: list[dict], series: str | tuple[str, ...], count: int, relative: bool = False
) -> list[BumpEvent]:
    """The ``count`` key-frequency bumps of ``series`` with the largest drop, one per curve, peaking
    after memorisation (:func:`bumps.modadd.phases.classify_bumps` rows). ``relative`` ranks by drop /
    value at the peak instead, so that curves of different scales (W_E and W_L norms) compare."""
    names = (series,) if isinstance(series, str) else tuple(series)

    def size(r: dict) -> float:
        return r["drop"] / max(abs(r["height"]), 1e-300) if relative else r["drop"]

    cands = sorted(
        (r for r in rows if r["series"] in names and r["key"] and r["phase"] != "memorisation"),
        key=lambda r: (-size(r), r["series"], tuple(r["index"])),
    )
    seen, out = set(), []
    for r in cands:
        curve = (r["series"], tuple(r["index"]))
        if curve in seen:
            continue
        seen.add(curve)
        out.append(event(r["series"], r["freq"], r["unit"], r["start_step"], r["peak_step"], r["end_step"], r["drop"]))
        if len(out) == count:
            break
    return out


def _start_checkpoint(run_path: str, saved: list[tuple[Path, int]], step: int) -> tuple[Path, int]:
    """The last of the run's checkpoints (path, epoch) at or before ``step``."""
    ckpts = [(f, e) for f, e in saved if e <= step]
    if not ckpts:
        raise BumpsError(f"{run_path} has no checkpoint at or before epoch {step}; train with --checkpoint-every")
    return ckpts[-1]


def _removed(k: KnockoutPlan) -> dict[str, tuple[int, ...]]:
    """The plan's removal as :class:`bumps.modadd.train.Intervention` fields: neurons or frequencies."""
    return {"neurons": k.removed} if k.event.series == "neuron_freq" else {"freqs": k.removed}


def out_path(out_dir: Path, k: KnockoutPlan) -> Path:
    """The continuation's run file (the name is stable: finished continuations are found again)."""
    e = k.event
    what = "-".join(map(str, k.removed)) or "none"
    name = f"{Path(e.group).stem}_{e.series}_f{freq_of(e)}_u{unit_of(e)}_p{e.peak_step}_{k.name}_{what}.pt"
    # a long name (many neurons) is cut and tagged with its sha1, the same in every process (``hash`` is not)
    return out_dir / (
        name if len(name) < 200 else name[:150] + "_" + hashlib.sha1(name.encode()).hexdigest()[:10] + ".pt"
    )


def run_knockouts(
    knockouts: list[KnockoutPlan],
    out_dir: str | Path,
    progress=None,
    train: bool = True,
    members: int | None = None,
) -> list[dict]:
    """Train every continuation and return one outcome record each.

    Rerunning skips continuations whose run file is finished and continues interrupted ones.
    ``train=False`` trains nothing and returns records for the finished continuations only.
    ``members``: continuations per ensemble, in plan order (None: all of them in one; on CPU small
    ensembles are faster per model, ``benchmarks/bench_grok.py --ensembles``).
    """
    if members is not None and members < 1:
        raise BumpsError(f"`members` must be >= 1 (got {members})")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = {k.event.group: load_run(k.event.group, kind="modadd") for k in knockouts}
    saved = {
        path: [(f, int(c["epoch"])) for f, c in load_checkpoints(path, run["config"]["run_id"])]
        for path, run in runs.items()
    }  # each run's checkpoints are read once
    configs, starts, outs, sources, ivs, todo = [], [], [], [], [], []
    for k in knockouts:
        run = runs[k.event.group]
        ckpt, start = _start_checkpoint(k.event.group, saved[k.event.group], k.event.peak_step)
        cfg = ModAddConfig(**{**config_fields(run["config"]), "epochs": k.event.end_step, "stop_after_grok": None})
        out = out_path(out_dir, k)
        if out.exists():
            state = safe_load(out)
            if state.get("config", {}).get("final"):
                continue
            source = out
        else:
            source = ckpt
        configs.append(cfg.validate())
        starts.append(start)
        outs.append(out)
        sources.append(source)
        ivs.append(Intervention(start, **_removed(k)) if k.role != "none" else None)
        todo.append(k)
    if configs and train:
        size = members or len(configs)
        to_train = [c.epochs - s for c, s in zip(configs, starts, strict=True)]  # from each checkpoint
        trained = 0
        for a in range(0, len(configs), size):
            part = slice(a, a + size)
            cfgs = configs[part]

            def report(done, _total, _before=trained, _start=sum(starts[part]), **fields):
                if progress is not None:  # epochs trained past the checkpoints, over every ensemble
                    progress(_before + done - _start, sum(to_train), **fields)

            with threads_for(step_elements(cfgs), cfgs[0].device):  # the policy every training command shares
                train_many(cfgs, outs[part], resume=sources[part], interventions=ivs[part], progress=report)
            trained += sum(to_train[part])
    unfinished = set(todo) if not train else set()
    return [
        outcome(runs[k.event.group], k, load_run(out_path(out_dir, k), kind="modadd"))
        for k in knockouts
        if k not in unfinished
    ]


def outcome(original: dict, k: KnockoutPlan, cont: dict, params: BumpParams | None = None) -> dict:
    """``persists`` and ``drop_ratio`` of the event's curve after the continuation ``cont``."""
    e = k.event
    step = np.asarray(steps_of(original, e.series))
    first = int(cont["config"]["first_epoch"])
    before = step < first
    cstep = np.asarray(steps_of(cont, e.series))
    curve = np.concatenate([_curve(original, e)[before], _curve(cont, e)])
    steps = np.concatenate([step[before], cstep])
    found = find_bumps(curve, steps, params)
    still = persists(steps[[b.peak for b in found]] if found else np.array([], int), e)
    orig = _curve(original, e)
    pi, ei = _index(original, e.peak_step, e.series), _index(original, e.end_step, e.series)
    ci, cei = int(np.searchsorted(steps, e.peak_step)), int(np.searchsorted(steps, e.end_step))
    orig_drop = orig[pi] - orig[ei]
    removed = _removed(k)
    return {
        "run": e.group,
        "series": e.series,
        "freq": freq_of(e),
        "unit": unit_of(e),
        "role": k.role,
        "arm": k.name,
        "neurons": list(removed.get("neurons", ())),
        "freqs": list(removed.get("freqs", ())),
        "from_epoch": first,
        "start_step": e.start_step,
        "peak_step": e.peak_step,
        "end_step": e.end_step,
        "persists": still,
        "drop_ratio": float((curve[ci] - curve[cei]) / orig_drop),
    }
