"""Head knockouts against one head bump: competitor, matched control and the unintervened continuation.

For a bump of head ``h`` of layer ``l`` on score ``series`` (``induction`` or ``prev_token``):

* ``competitor``: the other head of layer ``l`` whose same score gains most from the bump's peak step to its
  end step (5-record moving means);
* ``control``: of the remaining heads of layer ``l``, the one whose ``head_out_norm`` at the knockout step
  is closest to the competitor's;
* ``none``: no knockout.

All three continue from the last checkpoint of the run at or before the peak (the run keeps weights and
AdamW state every ``checkpoint_every`` steps; the data of every step is a function of the data seed and the
step, so the continuation sees exactly the batches the original saw) until the bump's end step plus half
its width (at most the run's last step), trained together as one stack. Scores: ``persists``
(:func:`bumps.knockout.persists` on the original curve before the knockout step joined to the
continuation's) and the drop ratio (fall from the peak step to the end step on the continuation over the
original's, 5-record moving means). Continuations are run files next to the run
(``{run}_ko{role}.pt``), reused when finished.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.ndimage import uniform_filter1d

from bumps.detect.events import find_events
from bumps.errors import BumpsError
from bumps.induction.model import InductionConfig
from bumps.knockout import BumpEvent, persists

ROLES = ("competitor", "control", "none")
SMOOTH = 5  # records of the moving mean the drop ratio reads


def _at(step: np.ndarray, value: int) -> int:
    """Index of the record at or just before ``value``."""
    return int(max(np.searchsorted(step, value, side="right") - 1, 0))


def choose_heads(run: dict, bump: dict, at: int) -> tuple[int, int]:
    """``(competitor, control)`` heads of the bump's layer (module docstring).

    Raises
    ------
    BumpsError
        If the layer has fewer than 3 heads (no control is left).
    """
    step = np.asarray(run["step"])
    layer, head = bump["layer"], bump["head"]
    curve = uniform_filter1d(np.asarray(run[bump["series"]], dtype=np.float64)[:, layer], SMOOTH, axis=0)
    gain = curve[_at(step, bump["end_step"])] - curve[_at(step, bump["peak_step"])]  # [H]
    others = [h for h in range(curve.shape[1]) if h != head]
    if len(others) < 2:
        raise BumpsError(f"layer {layer} has {len(others) + 1} heads; a knockout needs a competitor and a control")
    competitor = max(others, key=lambda h: gain[h])
    norm = np.asarray(run["head_out_norm"], dtype=np.float64)[_at(step, at), layer]
    control = min((h for h in others if h != competitor), key=lambda h: abs(norm[h] - norm[competitor]))
    return int(competitor), int(control)


def drop_ratio(
    step: np.ndarray, curve: np.ndarray, orig_step: np.ndarray, orig: np.ndarray, bump: dict, stop: int | None = None
) -> float:
    """The fall from the bump's peak step to its end step (or ``stop``, if earlier) on ``curve`` over the same
    on ``orig`` (moving means)."""
    end = bump["end_step"] if stop is None else min(bump["end_step"], stop)
    if stop is not None:  # smooth both over the same span, so the edge of the moving mean is the same
        orig, orig_step = orig[orig_step <= stop], orig_step[orig_step <= stop]
        curve, step = curve[step <= stop], step[step <= stop]
    c, o = uniform_filter1d(curve, SMOOTH), uniform_filter1d(orig, SMOOTH)
    fall = c[_at(step, bump["peak_step"])] - c[_at(step, end)]
    base = o[_at(orig_step, bump["peak_step"])] - o[_at(orig_step, end)]
    return float(fall / base) if base > 0 else float("nan")


def knockout_seed(path: Path, run: dict, bump: dict, progress=None, horizon: int | None = None) -> dict:
    """Run (or reuse) the three continuations against one head bump and score them.

    Parameters
    ----------
    path : pathlib.Path
        The run's file (the continuations are written next to it).
    run : dict
        The loaded run, with ``checkpoints``.
    bump : dict
        A head bump of :func:`bumps.induction.claims.seed_events`.
    progress : callable, optional
        Passed to :func:`bumps.induction.train.train_induction`.
    horizon : int, optional
        Continue at most this many steps past the knockout checkpoint (None: to the bump's end plus half
        its width). A continuation that stops before the bump's end scores both drop ratios up to its
        last step, and judges persistence on the original cut at the same step (``persists`` is None for
        every role when the cut original itself no longer shows the bump).

    Returns
    -------
    dict
        ``bump``, ``at`` (the knockout step), ``stop`` (the continuations' last step), ``competitor``,
        ``control``, ``ratios`` and ``persists`` (role → value), ``none_max_diff`` (largest difference
        between the unintervened continuation's curve and the original's over the same records).

    Raises
    ------
    BumpsError
        If the run kept no checkpoint at or before the peak.
    """
    from bumps.induction.train import train_induction

    checkpoints = run.get("checkpoints", {})
    before = [int(s) for s in checkpoints if int(s) <= bump["peak_step"]]
    if not before:
        raise BumpsError(
            f"{path} kept no checkpoint at or before step {bump['peak_step']}; rerun with --checkpoint-every"
        )
    at = max(before)
    competitor, control = choose_heads(run, bump, at)
    step = np.asarray(run["step"])
    cfg = InductionConfig.from_dict(run["config"])
    width = bump["end_step"] - bump["start_step"]
    until = min(int(bump["end_step"] + width // 2 + cfg.record_every), int(step[-1]) + 1)
    if horizon is not None:
        until = min(until, at + int(horizon))
    layer = bump["layer"]
    removed = {"competitor": ((layer, competitor),), "control": ((layer, control),), "none": ()}
    configs = [
        InductionConfig.from_dict(
            {
                **cfg.as_dict(),
                "steps": until,
                "knockout": removed[r],
                "origin": f"{path.name}@{at}",
                "checkpoint_every": 0,
            }
        )
        for r in ROLES
    ]
    outs = [path.with_name(f"{path.stem}_ko{r}.pt") for r in ROLES]
    state = checkpoints[str(at)]
    conts = train_induction(configs, outs, starts=[state] * 3, autosave_every=500, progress=progress)
    orig = np.asarray(run[bump["series"]], dtype=np.float64)[:, layer, bump["head"]]
    event = BumpEvent(
        bump["series"], (layer, bump["head"]), bump["start_step"], bump["peak_step"], bump["end_step"], bump["drop"], 0
    )
    ratios, kept = {}, {}
    none_diff = None
    stop = int(np.asarray(conts[0]["step"])[-1])
    cut = step <= stop
    peaks0 = [int(step[cut][e.peak]) for e in find_events(orig[cut], step[cut]) if e.kind == "bump"]
    judged = stop >= bump["end_step"] or persists(np.asarray(peaks0, dtype=int), event)
    for role, cont in zip(ROLES, conts, strict=True):
        c_step = np.asarray(cont["step"])
        curve = np.asarray(cont[bump["series"]], dtype=np.float64)[:, layer, bump["head"]]
        keep = step < c_step[0]
        joined_step = np.concatenate([step[keep], c_step])
        joined = np.concatenate([orig[keep], curve])
        peaks = [int(joined_step[e.peak]) for e in find_events(joined, joined_step) if e.kind == "bump"]
        kept[role] = persists(np.asarray(peaks, dtype=int), event) if judged else None
        ratios[role] = drop_ratio(joined_step, joined, step, orig, bump, stop)
        if role == "none":
            same = np.isin(step, c_step)
            none_diff = float(np.abs(orig[same] - curve[: same.sum()]).max())
    return {
        "bump": bump,
        "at": at,
        "stop": stop,
        "competitor": competitor,
        "control": control,
        "ratios": ratios,
        "persists": kept,
        "none_max_diff": none_diff,
    }
