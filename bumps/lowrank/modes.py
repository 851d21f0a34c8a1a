"""Modes, not units: the toy model's learned matrix UVᵀ seen through its singular modes.

Three measurements (claims MD1-MD3 of the toy report, rules in ``bumps/rules.json``):

* **Strength gap** (:func:`gap_configs`): targets of strengths ``1 + g·m`` (m = 0..r−1) for a sweep of
  gaps g; at every g, bumps of the frame-invariant target norms ‖Uᵀa_m‖, ‖Vᵀb_m‖ are counted.
* **Mode knockouts** (:func:`mode_knockouts`): for every target-norm bump, the learned matrix at the
  bump's peak is decomposed, ``UVᵀ = Σ_j σ_j p_j q_jᵀ`` (:func:`learned_modes`), and one mode j is
  removed: ``U ← (I − p_j p_jᵀ) U``, ``V ← (I − q_j q_jᵀ) V`` at the peak and after every later step
  (projected GD: the direction stays out). The **rival** is the mode whose strength ``p_jᵀ UVᵀ q_j``
  gains most over the bump's fall [peak, end] in the unintervened continuation; the **controls** are the
  other modes. Outcomes as the unit knockouts (:mod:`bumps.lowrank.knockout`): ``persists`` and
  ``drop_ratio`` of the target norm.
* **Independent modes** (:func:`independent_modes`), two models. (MD3) The superposition of a seed's rank-1 runs, each
  target learned alone from the same start (the other strengths 0), their changes from the target-free
  run (every strength 0) added to it, recorded in the same per-unit frame (aᵀU, bᵀV). A per-unit bump of
  the real run is *reproduced* when the superposed curve (same seed, side, target, unit, oriented as the
  real curve) has a bump peaking inside the real [start, end]. No mode interacts with another in the
  superposition, so a reproduced bump needs no competition between modes to exist. At equal strengths the
  targets are not the learned modes (A = a S bᵀ is unchanged by rotating the targets when S = I), so (MD3b)
  the audit's model uses the modes of M = aᵀUVᵀb instead: fixed singular vectors, each mode's own strength
  over time, in the units' fixed final basis (:func:`fixed_mode_series`).

The knockout continuations replay each seed from step 0 with plain GD on the d-dimensional vectors
(:func:`simulate_mode_knockouts`), the same update as :mod:`bumps.lowrank.model`'s closed recurrence (the
unintervened arm reproduces its target norms to round-off; tested).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from bumps.detect.bumps import BumpParams, find_bumps, orient_by_peak
from bumps.knockout import BumpEvent, persists
from bumps.lowrank.invariants import invariant_series
from bumps.lowrank.knockout import _largest_fall
from bumps.lowrank.model import LowRankConfig, initial_state, record_steps, simulate
from bumps.stats import mean_interval

GAPS = (0.0, 0.25, 0.5, 1.0, 2.0)  # strength gaps g of the sweep: strengths 1 + g·m
NORM_SERIES = {"target_norm_a": 0, "target_norm_b": 1}  # invariant series the knockouts act on -> side
PER_UNIT = ("inner_a", "inner_b")  # per-unit series (aᵀU, bᵀV) the independent-modes count reads


def gap_configs(base: LowRankConfig, gaps: tuple[float, ...] = GAPS) -> dict[float, LowRankConfig]:
    """``base`` with strengths ``1 + g·m`` (m = 0..rank−1) for each gap g (same seeds: same targets and start)."""
    return {float(g): replace(base, singular_values=[1.0 + g * m for m in range(base.rank)]) for g in gaps}


def learned_modes(u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Singular modes of UVᵀ without forming the d×d matrix.

    Parameters
    ----------
    u, v : torch.Tensor
        ``[..., d, K]`` learned vectors as columns (d ≥ K).

    Returns
    -------
    sigma : torch.Tensor
        ``[..., K]`` singular values of UVᵀ, descending.
    p, q : torch.Tensor
        ``[..., d, K]`` left and right singular vectors (column j is mode j), orthonormal.
    """
    qu, ru = torch.linalg.qr(u)
    qv, rv = torch.linalg.qr(v)
    w, sigma, zh = torch.linalg.svd(ru @ rv.transpose(-1, -2))
    return sigma, qu @ w, qv @ zh.transpose(-1, -2)


def simulate_mode_knockouts(
    cfg: LowRankConfig,
    seed: np.ndarray,
    mode: np.ndarray,
    step: np.ndarray,
    target: np.ndarray,
    side: np.ndarray,
    state: dict[str, torch.Tensor] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Replay seeds of ``cfg`` (plain GD, d-dimensional) with one singular mode projected out per instance.

    Parameters
    ----------
    cfg : LowRankConfig
        The run (``optimizer="gd"``).
    seed : array of int, [I]
        The seed (index into ``cfg``'s seeds) instance i replays.
    mode : array of int, [I]
        The mode of UVᵀ (index into :func:`learned_modes`' descending order at ``step[i]``) removed from
        ``step[i]`` on, or -1 for none (the unintervened continuation).
    step : array of int, [I]
        The step at which the modes are taken and the removal starts (before that step's record).
    target : array of int, [I]
        The target m whose norm is recorded.
    side : array of int, [I]
        0: record ‖Uᵀa_m‖; 1: record ‖Vᵀb_m‖.
    state : dict, optional
        The starting state (:func:`bumps.lowrank.model.initial_state`); default that of ``cfg``.

    Returns
    -------
    norm : numpy.ndarray
        ``[T, I]`` the recorded target norm at :func:`bumps.lowrank.model.record_steps`.
    strength : numpy.ndarray
        ``[T, I, K]`` ``p_jᵀ UVᵀ q_j`` of the K modes taken at ``step[i]`` (0 before it).
    """
    if cfg.optimizer != "gd":
        raise ValueError("mode knockouts replay plain GD only")
    st = initial_state(cfg) if state is None else state
    idx = torch.as_tensor(np.asarray(seed), dtype=torch.long)
    a, b = st["a"][idx].double(), st["b"][idx].double()  # [I, d, r]
    u, v = st["U"][idx].double().clone(), st["V"][idx].double().clone()  # [I, d, K]
    s = st["s"].double()
    n_inst, d, k = u.shape
    mode_t = torch.as_tensor(np.asarray(mode), dtype=torch.long)
    step_t = torch.as_tensor(np.asarray(step), dtype=torch.long)
    rows = torch.arange(n_inst)
    tgt = torch.as_tensor(np.asarray(target), dtype=torch.long)
    use_b = torch.as_tensor(np.asarray(side), dtype=torch.bool)
    a_m, b_m = a[rows, :, tgt], b[rows, :, tgt]  # [I, d]
    p_all = torch.zeros(n_inst, d, k, dtype=torch.float64)
    q_all = torch.zeros(n_inst, d, k, dtype=torch.float64)
    p_cut = torch.zeros(n_inst, d, dtype=torch.float64)  # removed directions (0: none)
    q_cut = torch.zeros(n_inst, d, dtype=torch.float64)
    keep = 1.0 - cfg.lr * cfg.weight_decay
    wanted = set(record_steps(cfg))
    norms, strengths = [], []

    def project(x, direction):  # x [I, d, K] minus direction (direction ᵀ x)
        return x - direction[:, :, None] * (direction[:, None, :] @ x)

    for t in range(cfg.steps + 1):
        now = step_t == t
        if bool(now.any()):
            _, p, q = learned_modes(u[now], v[now])
            p_all[now], q_all[now] = p, q
            cut = now & (mode_t >= 0)
            if bool(cut.any()):
                j = mode_t[cut]
                sel = torch.arange(int(cut.sum()))
                p_cut[cut] = p_all[cut][sel, :, j]
                q_cut[cut] = q_all[cut][sel, :, j]
        u, v = project(u, p_cut), project(v, q_cut)
        if t in wanted:
            norm_a = (a_m[:, None, :] @ u).squeeze(1).norm(dim=-1)
            norm_b = (b_m[:, None, :] @ v).squeeze(1).norm(dim=-1)
            norms.append(torch.where(use_b, norm_b, norm_a))
            pu = p_all.transpose(-1, -2) @ u  # [I, K(modes), K(units)]
            qv = q_all.transpose(-1, -2) @ v
            strengths.append((pu * qv).sum(-1))
        if t == cfg.steps:
            break
        bv, au = b.transpose(-1, -2) @ v, a.transpose(-1, -2) @ u  # [I, r, K]
        gu = u @ (v.transpose(-1, -2) @ v) - a @ (s[:, None] * bv)
        gv = v @ (u.transpose(-1, -2) @ u) - b @ (s[:, None] * au)
        u, v = keep * u - cfg.lr * gu, keep * v - cfg.lr * gv
    return torch.stack(norms).numpy(), torch.stack(strengths).numpy()


def target_norm_bumps(run: dict, params: BumpParams | None) -> list[tuple[str, object]]:
    """``(series, Bump)`` of every bump on ``target_norm_a`` / ``target_norm_b`` ``[T, N, r]`` of a run."""
    inv = invariant_series(run)
    step = np.asarray(run["step"])
    return [(name, b) for name in NORM_SERIES for b in find_bumps(inv[name], step, params, name=name)]


def mode_knockouts(cfg: LowRankConfig, params: BumpParams | None = None) -> dict:
    """Every target-norm bump of ``cfg``'s run, each mode removed at its peak (module docstring).

    Returns
    -------
    dict
        ``bumps``: one record per bump (seed, series, target, start/peak/end steps, drop, ``rival`` mode,
        and per arm ``persists`` / ``drop_ratio``: ``none`` and ``modes`` (a list over the K modes));
        ``per_unit_bumps``, ``invariant_bumps``, ``seeds_with_invariant_bumps``, ``seeds``.
    """
    run = simulate(cfg)
    step = np.asarray(run["step"])
    found = target_norm_bumps(run, params)
    k = cfg.n_learned
    per_unit = sum(len(find_bumps(orient_by_peak(np.asarray(run[s], float)), step, params)) for s in PER_UNIT)
    out = {
        "gap": None,
        "seeds": cfg.seeds,
        "per_unit_bumps": int(per_unit),
        "invariant_bumps": len(found),
        "seeds_with_invariant_bumps": len({b.index[0] for _, b in found}),
        "bumps": [],
    }
    if not found:
        return out
    events = [
        BumpEvent(name, tuple(b.index), int(step[b.start]), int(step[b.peak]), int(step[b.end]), b.drop, b.index[0])
        for name, b in found
    ]
    arms = [-1, *range(k)]
    inst = [(e, j) for e in events for j in arms]
    norm, strength = simulate_mode_knockouts(
        cfg,
        np.array([e.index[0] for e, _ in inst]),
        np.array([j for _, j in inst]),
        np.array([e.peak_step for e, _ in inst]),
        np.array([e.index[1] for e, _ in inst]),
        np.array([NORM_SERIES[e.series] for e, _ in inst]),
    )
    peaks: list[list[int]] = [[] for _ in inst]
    for b in find_bumps(norm, step, params, name="mode_knockout"):
        peaks[b.index[0]].append(int(step[b.peak]))
    pos = lambda s: int(np.searchsorted(step, s))  # noqa: E731
    knock = np.array([pos(e.peak_step) for e, _ in inst])
    end = np.array([pos(e.end_step) for e, _ in inst])
    fall = _largest_fall(norm, knock[None], end[None])
    for i, e in enumerate(events):
        cols = range(i * len(arms), (i + 1) * len(arms))
        outcome = [
            {"persists": persists(np.array(peaks[c], int), e), "drop_ratio": float(max(fall[c], 0.0) / e.drop)}
            for c in cols
        ]
        none = cols[0]
        gain = strength[end[none], none] - strength[knock[none], none]  # [K]: each mode's gain over the fall
        out["bumps"].append(
            {
                "seed": int(e.index[0]),
                "series": e.series,
                "target": int(e.index[1]),
                "start_step": e.start_step,
                "peak_step": e.peak_step,
                "end_step": e.end_step,
                "drop": float(e.drop),
                "rival": int(np.argmax(gain)),
                "mode_gain": [float(x) for x in gain],
                "none": outcome[0],
                "modes": outcome[1:],
            }
        )
    return out


def superposed_series(cfg: LowRankConfig, state: dict[str, torch.Tensor] | None = None) -> dict[str, np.ndarray]:
    """Per-unit series of the independent-modes superposition (module docstring).

    Parameters
    ----------
    cfg : LowRankConfig
        The run (GD or Adam; each target's run uses the same optimizer).
    state : dict, optional
        The starting state; default :func:`bumps.lowrank.model.initial_state` of ``cfg``.

    Returns
    -------
    dict of str to numpy.ndarray
        ``inner_a``, ``inner_b`` ``[T, N, r, K]``: ``null + Σ_m (alone_m − null)``, where ``null`` is the
        run with every strength 0 and ``alone_m`` the run with only target m's strength kept. With one
        target it is the run itself.
    """
    st = initial_state(cfg) if state is None else state
    s = st["s"]
    null = simulate(cfg, state={**st, "s": torch.zeros_like(s)})
    alone = [simulate(cfg, state={**st, "s": s * (torch.arange(len(s)) == m).to(s)}) for m in range(len(s))]
    out = {}
    for name in PER_UNIT:
        base = np.asarray(null[name], float)
        out[name] = base + sum(np.asarray(x[name], float) - base for x in alone)
    return out


def fixed_mode_series(run: dict) -> dict[str, np.ndarray]:
    """Per-unit series of the audit's fixed-modes model (claim MD3b), from a run's inner products.

    With P = aᵀU and Q = bᵀV (``[T, N, r, K]``), M(t) = P Qᵀ (``[T, N, r, r]``). The modes are fixed:
    ``X Σ Yᵀ`` is the SVD of Σ_t M(t); each mode's strength over time is ``λ_i(t) = x_iᵀ M(t) y_i``. The
    units' basis is fixed too: R_a is the orthogonal polar factor of ``Λ(T)^{-1/2} Xᵀ P(T)`` (R_b likewise
    from Q), so that ``aᵀU(T) ≈ X √Λ(T) R_a``.

    Returns
    -------
    dict of str to numpy.ndarray
        ``inner_a = X diag(sign(λ)·√|λ(t)|) R_a`` and ``inner_b = Y diag(√|λ(t)|) R_b``, ``[T, N, r, K]``.
    """
    p = torch.as_tensor(np.asarray(run["inner_a"], float))
    q = torch.as_tensor(np.asarray(run["inner_b"], float))
    m = p @ q.transpose(-1, -2)  # [T, N, r, r]
    x, _, yh = torch.linalg.svd(m.sum(0))
    y = yh.transpose(-1, -2)  # [N, r, r]
    lam = torch.einsum("nri,tnrs,nsi->tni", x, m, y)  # [T, N, r]
    root = lam.abs().sqrt()
    scale = root[-1].clamp_min(1e-12)

    def polar(z):  # orthogonal factor W Zᵀ of z = W S Zᵀ
        w, _, zh = torch.linalg.svd(z, full_matrices=False)
        return w @ zh

    r_a = polar((x.transpose(-1, -2) @ p[-1]) / scale[..., None])
    r_b = polar((y.transpose(-1, -2) @ q[-1]) / scale[..., None])
    inner_a = x @ ((torch.sign(lam) * root)[..., None] * r_a)
    inner_b = y @ (root[..., None] * r_b)
    return {"inner_a": inner_a.numpy(), "inner_b": inner_b.numpy()}


def _reproduced(run: dict, synthetic: dict[str, np.ndarray], params: BumpParams | None) -> dict:
    """Per seed: the real run's per-unit bumps and how many the synthetic curves reproduce (same seed, side,
    target and unit, oriented as the real curve, a bump peaking inside the real [start, end])."""
    step = np.asarray(run["step"])
    n = np.asarray(run["loss"]).shape[1]
    bumps, reproduced, total = np.zeros(n, int), np.zeros(n, int), 0
    for name in PER_UNIT:
        raw = np.asarray(run[name], float)  # [T, N, r, K]
        sign = np.sign(np.take_along_axis(raw, np.abs(raw).argmax(0)[None], 0)[0])
        sign = np.where(sign == 0, 1.0, sign)  # orient both as the real curve (its value of largest size > 0)
        synth = find_bumps(synthetic[name] * sign, step, params, name=name)
        total += len(synth)
        synth_peaks: dict[tuple, list[int]] = {}
        for b in synth:
            synth_peaks.setdefault(tuple(b.index), []).append(int(step[b.peak]))
        for b in find_bumps(raw * sign, step, params, name=name):
            e = BumpEvent(name, tuple(b.index), int(step[b.start]), int(step[b.peak]), int(step[b.end]), b.drop, 0)
            bumps[b.index[0]] += 1
            reproduced[b.index[0]] += persists(np.array(synth_peaks.get(tuple(b.index), []), int), e)
    return {
        "seeds": n,
        "per_seed_bumps": bumps.tolist(),
        "per_seed_reproduced": reproduced.tolist(),
        "superposed_bumps": int(total),
    }


def independent_modes(cfg: LowRankConfig, params: BumpParams | None = None) -> dict:
    """How many per-unit bumps the two mode models reproduce (module docstring; claims MD3, MD3b).

    Returns
    -------
    dict
        For the superposition of independently learned targets: ``per_seed_bumps`` and
        ``per_seed_reproduced`` (lists over seeds), ``superposed_bumps`` (bumps the superposition has in
        all), ``seeds``; ``fixed_modes``: the same for :func:`fixed_mode_series`.
    """
    st = initial_state(cfg)
    run = simulate(cfg, state=st)
    out = _reproduced(run, superposed_series(cfg, st), params)
    out["fixed_modes"] = _reproduced(run, fixed_mode_series(run), params)
    return out


def modes_study(base: LowRankConfig, params: BumpParams | None = None, gaps: tuple[float, ...] = GAPS) -> dict:
    """The strength-gap sweep with mode knockouts and the independent-modes count at every gap (JSON-ready)."""
    rows = []
    for g, cfg in gap_configs(base, gaps).items():
        row = mode_knockouts(cfg, params)
        row["gap"] = g
        row["strengths"] = cfg.strengths()
        row["independent"] = independent_modes(cfg, params)
        rows.append(row)
    return {"gaps": list(gaps), "rows": rows}


def summarize_modes(study: dict) -> dict:
    """The statistics the MD claims read, from :func:`modes_study`'s output.

    ``seed_fraction`` per gap: seeds with a target-norm bump (count, seeds). ``knockout``: over every bump
    at g > 0, per bump the drop-ratio difference control (median over the non-rival modes) − rival and the
    persistence gap (mean control persists − rival persists), averaged per seed index (pooled over g),
    with t-intervals over seeds; the unintervened arm's drop ratios and persistence. ``independent`` per
    gap: bumps, reproduced, fraction.
    """
    per_gap = []
    diffs: dict[int, list[tuple[float, float]]] = {}
    none_ratio, none_persist, rival_persist, control_persist = [], [], [], []
    for row in study["rows"]:
        ind = row["independent"]
        n_b, n_r = sum(ind["per_seed_bumps"]), sum(ind["per_seed_reproduced"])
        per_gap.append(
            {
                "gap": row["gap"],
                "strengths": row["strengths"],
                "seeds": row["seeds"],
                "seeds_with_invariant_bumps": row["seeds_with_invariant_bumps"],
                "invariant_bumps": row["invariant_bumps"],
                "per_unit_bumps": row["per_unit_bumps"],
                "independent_bumps": n_b,
                "independent_reproduced": n_r,
                "superposed_bumps": ind["superposed_bumps"],
                "fixed_modes_reproduced": sum(ind["fixed_modes"]["per_seed_reproduced"]) if "fixed_modes" in ind else 0,
            }
        )
        if row["gap"] == 0:
            continue
        for b in row["bumps"]:
            rival = b["modes"][b["rival"]]
            ctl = [m for j, m in enumerate(b["modes"]) if j != b["rival"]]
            d_gap = float(np.median([m["drop_ratio"] for m in ctl])) - rival["drop_ratio"]
            p_gap = float(np.mean([m["persists"] for m in ctl])) - float(rival["persists"])
            diffs.setdefault(b["seed"], []).append((d_gap, p_gap))
            none_ratio.append(b["none"]["drop_ratio"])
            none_persist.append(b["none"]["persists"])
            rival_persist.append(rival["persists"])
            control_persist.append(float(np.mean([m["persists"] for m in ctl])))
    seeds = sorted(diffs)
    drop = [float(np.mean([x for x, _ in diffs[s]])) for s in seeds]
    gap = [float(np.mean([y for _, y in diffs[s]])) for s in seeds]
    return {
        "per_gap": per_gap,
        "knockout": {
            "bumps": len(none_ratio),
            "seeds": len(seeds),
            "drop_gap": mean_interval(drop),
            "persist_gap": mean_interval(gap),
            "drop_gap_positive": int(sum(x > 0 for s in seeds for x, _ in diffs[s])),
            "rival_persists": float(np.mean(rival_persist)) if rival_persist else float("nan"),
            "control_persists": float(np.mean(control_persist)) if control_persist else float("nan"),
            "none_drop_ratio_range": [float(min(none_ratio)), float(max(none_ratio))] if none_ratio else None,
            "none_persists": int(sum(none_persist)),
        },
    }
