"""`bumps claims`: the thread's claims about the toy model, each turned into a number with a CI and a verdict.

A *claim* row carries the statistic, its value with a seed-bootstrap 95% CI, the
number of seeds, the rule (fixed here, before any run) that turns it into a verdict,
and the verdict. Sections are built by functions (``toy_claims``) so other models can
add theirs; one renderer writes Markdown and JSON.

The grid is one-factor-at-a-time around the base configuration (GD, rank 4, K = r,
no weight decay, random unit targets, equal strengths): every listed factor value
appears, but not every combination (the full product — 5 ranks × 3 optimizers × 2 K
× 2 decays × 2 targets × 2 strengths at ≥ 128 seeds — is far over the 3-minute
budget; one Adam run at rank 100 with 128 seeds and 3000 steps alone is ~7 minutes
on one core). Rank 100 uses ``seeds_full_rank`` seeds and fewer steps (say so in
the report); everything else uses ``seeds``. Knockouts run on KNOCKOUT_CONFIGS with at
most ``max_knockout_bumps`` bumps (drawn uniformly) and 576 replays per configuration (each bump is
knocked out at its start, at its peak, and at its peak with the competitor chosen without look-ahead).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from bumps.detect.bumps import BumpParams, find_bumps, orient_by_peak
from bumps.detect.competition import norm_decay_end
from bumps.errors import BumpsError
from bumps.io.runfile import atomic_write, versions
from bumps.lowrank.invariants import INVARIANT_SERIES, PER_UNIT_SERIES, invariant_series
from bumps.lowrank.knockout import KNOCKOUT_TIMES, plan, run_plan, summarize
from bumps.lowrank.model import LowRankConfig, default_threads, simulate
from bumps.lowrank.modes import GAPS, modes_study, summarize_modes
from bumps.lowrank.rotation import rotation_study, summarize_rotations
from bumps.registry import file_hash as registry_file_hash
from bumps.registry import last_changed
from bumps.registry import load as load_rules
from bumps.stats import (
    PERCENTILE_MIN_N,
    STAT,
    Claim,
    diff_interval,
    mean_interval,
    proportion_interval,
)

# ---------------------------------------------------------------------------
# The grid


def toy_grid(seeds: int = 128, quick: bool = False, seeds_full_rank: int = 16) -> dict[str, LowRankConfig]:
    """Named configurations (one factor at a time around GD rank 4). ``quick``: small d and steps, for tests."""
    dim, steps = (20, 1500) if quick else (100, 3000)
    full = dim  # "full rank" is rank d
    base = LowRankConfig(rank=4, dim=dim, seeds=seeds, steps=steps)
    fr = dict(seeds=min(seeds, seeds_full_rank), steps=steps if quick else 600)
    g = {f"gd_r{r}": replace(base, rank=r) for r in (1, 2, 4, 10)}
    g["gd_full"] = replace(base, rank=full, **fr)
    g["adam_r1"] = replace(base, rank=1, optimizer="adam")
    g["adam_r4"] = replace(base, optimizer="adam")
    g["adam_r10"] = replace(base, rank=10, optimizer="adam")
    g["adam_full"] = replace(base, rank=full, optimizer="adam", **fr)
    g["adamw_r4_wd"] = replace(base, optimizer="adamw", weight_decay=0.1)
    g["gd_r2_k4"] = replace(base, rank=2, learned=4)
    g["gd_r4_k8"] = replace(base, learned=8)
    g["gd_r4_wd"] = replace(base, weight_decay=0.05)
    g["gd_r4_ortho"] = replace(base, targets="orthonormal")
    g["gd_r4_distinct"] = replace(base, singular_values=[1.0, 1.5, 2.0, 2.5])
    return g


KNOCKOUT_CONFIGS = ("gd_r4", "gd_r2_k4", "gd_r10", "adam_r4")
CLAIM_IDS = (
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
    "7s",
    "8",
    "8c",
    "9",
    "10",
    "R1",
    "R2",
    "R3",
    "MD1",
    "MD2",
    "MD3",
    "MD3b",
)  # registry rows
ROTATION_CONFIG = "gd_r4"  # the rotation test runs this configuration's first ROTATION_SEEDS seeds
ROTATION_SEEDS, ROTATIONS = 16, 16


def _bytes_estimate(cfg: LowRankConfig) -> int:
    """Rough peak memory of simulating and analysing one configuration (float64)."""
    t = cfg.steps // cfg.record_every + 2
    k = cfg.n_learned
    records = t * cfg.seeds * (2 * cfg.rank * k + 2 * k + 1) * 8
    state = cfg.seeds * cfg.dim * k * 8 * 8 if cfg.optimizer != "gd" else 0
    return 4 * records + state  # records, oriented copies, invariant series, detector work


def check_memory(grid: dict[str, LowRankConfig], available: int | None = None) -> int:
    """Raise BumpsError (before any work) if one configuration would not fit; returns the estimate."""
    need = max(_bytes_estimate(c) for c in grid.values())
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            available = 8 << 30
    if need > 0.8 * available:
        raise BumpsError(
            f"the grid needs about {need / 2**30:.1f} GiB for its largest configuration but only "
            f"{available / 2**30:.1f} GiB is free; use fewer --seeds"
        )
    return need


# ---------------------------------------------------------------------------
# Measuring one configuration


def _loss_times(loss: np.ndarray, step: np.ndarray, ref: np.ndarray) -> dict[str, np.ndarray]:
    """Per seed: first steps with loss ≤ 0.9 and ≤ 0.1 of ``ref``, and t10/t90 (nan if never).

    ``ref`` is the zero model's loss ½‖A‖²: the initial loss also holds the random
    start's own ½‖UVᵀ‖², which the norm-decay phase removes (about half of it at d = 100,
    σ = 0.1), so "10% of the loss gone" is measured from the plateau level.
    """
    rel = loss / ref
    out = {}
    for name, level in (("t10", 0.9), ("t90", 0.1)):
        below = rel <= level
        out[name] = np.where(below.any(0), step[below.argmax(0)], np.nan).astype(float)
    out["plateau_fraction"] = out["t10"] / out["t90"]
    return out


def _count(x: np.ndarray, step, params, n_seeds: int) -> dict:
    bumps = find_bumps(x, step, params)
    per_seed = np.bincount([b.index[0] for b in bumps], minlength=n_seeds)
    return {
        "bumps": len(bumps),
        "seeds_with_bumps": int((per_seed > 0).sum()),
        "per_seed": per_seed.tolist(),
        "_list": bumps,
    }


def measure(
    name: str,
    cfg: LowRankConfig,
    params: BumpParams,
    knockouts: bool,
    max_bumps: int,
    max_instances: int = 576,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Simulate one configuration and compute everything the claims need (JSON-ready)."""
    run = simulate(cfg)
    step = run["step"].numpy()
    loss = run["loss"].numpy()
    norms = np.concatenate([run["norm_a"].numpy(), run["norm_b"].numpy()], -1)
    decay_end = norm_decay_end(norms, step)
    decay_idx = np.searchsorted(step, decay_end)
    sv = run["singular_values"].numpy()
    ref = 0.5 * np.einsum("m,n,imn,imn->i", sv, sv, run["target_gram_a"].numpy(), run["target_gram_b"].numpy())
    out = {
        "config": _config_dict(cfg),
        "seeds": cfg.seeds,
        "log_r2": log_linearity(loss).tolist(),
        **{k: v.tolist() for k, v in _loss_times(loss, step, ref).items()},
        **{f"{k}_from_loss0": v.tolist() for k, v in _loss_times(loss, step, loss[0]).items()},
        "loss0": loss[0].tolist(),
        "final_loss": loss[-1].tolist(),
        "decay_end": decay_end.tolist(),
        "loss_at_decay_end": (loss[decay_idx, np.arange(cfg.seeds)] / loss[0]).tolist(),
        "series": {},
    }
    series = {k: orient_by_peak(run[k].numpy()) for k in PER_UNIT_SERIES}
    series.update(invariant_series(run))
    in_decay = {k: np.zeros(cfg.seeds, int) for k in ("peak", "start", "bumps")}  # per-unit bumps, per seed
    for key, x in series.items():
        c = _count(x, step, params, cfg.seeds)
        if key in PER_UNIT_SERIES:
            for b in c["_list"]:
                seed = b.index[0]
                in_decay["bumps"][seed] += 1
                in_decay["peak"][seed] += step[b.peak] < decay_end[seed]
                in_decay["start"][seed] += step[b.start] < decay_end[seed]
        del c["_list"]
        out["series"][key] = c
    out["per_unit_bumps_per_seed"] = (
        np.array(out["series"]["inner_a"]["per_seed"]) + np.array(out["series"]["inner_b"]["per_seed"])
    ).tolist()
    out["in_decay"] = {k: v.tolist() for k, v in in_decay.items()}
    out["peaked_in_decay"] = [int(in_decay["peak"].sum()), int(in_decay["bumps"].sum())]
    # the largest final alignment share: does each unit grow mainly toward one target?
    ia = run["inner_a"][-1].numpy() ** 2  # [N, r, K]
    share = ia.max(1) / np.maximum(ia.sum(1), 1e-300)  # [N, K]
    out["top_target_share"] = np.median(share, axis=1).tolist()
    early = int(np.searchsorted(step, cfg.steps // 30))  # step 100 of 3000: inside the norm-decay phase
    total = (norms**2).sum(-1)
    out["norm_ratio_early"] = (total[early] / total[0]).tolist()
    out["knockouts"] = []
    if knockouts and cfg.n_learned >= 3:
        # each bump costs 2·(K − 1) replays: cap the replays per configuration
        items = plan(run, params, max_bumps=min(max_bumps, max(1, max_instances // (3 * (cfg.n_learned - 1)))))
        if progress:
            progress(f"{name}: {len(items)} knockouts")
        cfgd = _config_dict(cfg)
        out["knockouts"] = [{"config": cfgd, **r} for r in run_plan(cfg, step, items, params)]
    return out


def _config_dict(cfg: LowRankConfig) -> dict:
    d = asdict(cfg)
    d["learned"] = cfg.n_learned
    d["singular_values"] = cfg.strengths()
    d["betas"] = list(cfg.betas)
    return d


def log_linearity(loss: np.ndarray) -> np.ndarray:
    """R² of a straight-line fit of log(loss) against step, per seed, over the steps until the loss
    first falls to 1% of its start: 1 for an exponential, lower with a plateau. loss [T, N]."""
    out = []
    for col in np.asarray(loss, float).T:
        stop = int(np.argmax(col <= 0.01 * col[0])) or len(col)
        y, t = np.log(col[:stop]), np.arange(stop)
        out.append(np.corrcoef(t, y)[0, 1] ** 2 if stop > 2 else np.nan)
    return np.array(out)


def vector_regression(seeds: int, dim: int, steps: int, lr: float, init_scale: float) -> dict[str, np.ndarray]:
    """Claim 1's model: GD on ½‖a − x‖² (x ∈ R^d) from x ~ N(0, σ²), per seed.

    Returns
    -------
    dict
        ``plateau_fraction``: t10/t90 measured from the loss's start (an exponential gives
        ln(1/0.9)/ln 10 = 0.046 whatever its rate); ``log_r2``: R² of log(loss) against step
        (:func:`log_linearity`, the earlier rule's statistic, 1 by algebra for any exponential).
    """
    g = torch.Generator().manual_seed(0)
    a = torch.randn(seeds, dim, generator=g, dtype=torch.float64)
    a = a / a.norm(dim=1, keepdim=True)
    x = torch.randn(seeds, dim, generator=g, dtype=torch.float64) * init_scale
    loss = []
    for _ in range(steps + 1):
        loss.append(0.5 * (a - x).pow(2).sum(1))
        x = x - lr * (x - a)
    loss = torch.stack(loss).numpy()
    pf = _loss_times(loss, np.arange(steps + 1), loss[0])["plateau_fraction"]
    return {"plateau_fraction": pf, "log_r2": log_linearity(loss)}


def every_step_plateau(cfg: LowRankConfig) -> dict[str, list[float]]:
    """t10/t90 per seed with the loss recorded every step, and on the records every ``cfg.record_every``.

    Claim 9's statistic: at the grid's cadence (every 10 steps) a full-rank run's t10 and t90 can be the
    first records after the start, so t10/t90 is a ratio of small integers; every step resolves it.

    Returns
    -------
    dict
        ``every_step`` and ``coarse`` (the same seeds' t10/t90 read only at multiples of
        ``cfg.record_every``), lists of floats.
    """
    run = simulate(replace(cfg, record_every=1))
    step, loss = run["step"].numpy(), run["loss"].numpy()
    sv = run["singular_values"].numpy()
    ref = 0.5 * np.einsum("m,n,imn,imn->i", sv, sv, run["target_gram_a"].numpy(), run["target_gram_b"].numpy())
    coarse = step % cfg.record_every == 0
    return {
        "every_step": _loss_times(loss, step, ref)["plateau_fraction"].tolist(),
        "coarse": _loss_times(loss[coarse], step[coarse], ref)["plateau_fraction"].tolist(),
    }


CLAIM_NEEDS = {
    "1": (),
    "2": ("gd_r1",),
    "3": ("gd_r1",),
    "4": ("gd_r1", "gd_r10", "gd_full"),
    "5": ("gd_r1", "gd_r2", "gd_r4", "gd_r10"),
    "6": ("gd_r2",),
    "7": ("gd_r4",),
    "7s": ("gd_r4",),
    "8": ("gd_r4",),
    "8c": ("gd_r4",),
    "9": ("adam_full", "gd_full", "adam_r10", "gd_r10"),
    "10": ("gd_r4_wd", "gd_r4"),
    "R1": ("gd_r4",),
    "R2": ("gd_r4",),
    "R3": ("gd_r4",),
    "MD1": ("gd_r4",),
    "MD2": ("gd_r4",),
    "MD3": ("gd_r4",),
    "MD3b": ("gd_r4",),
}


_NAN3 = (math.nan, math.nan, math.nan)

# Every claim's statement and verdict rule is data in the rule registry (bumps/rules.json, family "toy",
# bumps.registry), registered before the run that decides it. A rule reads the row's own statistic
# (STAT) and, for some claims, further named statistics that toy_claims measures beside it; an earlier
# rule replaced after data reads the statistics named in its ``reads`` map.
FAMILY = "toy"


def toy_rules() -> dict:
    """The registry's toy entries, by claim id (:func:`bumps.registry.load`)."""
    return load_rules(FAMILY)


def _cluster_fraction(num, den) -> tuple[float, float, float]:
    """Fraction sum(num)/sum(den) of events nested in seeds, with a seed-cluster percentile bootstrap CI
    (resampling seeds with replacement; seeds without events drop out). num, den: per seed."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    keep = den > 0
    num, den = num[keep], den[keep]
    if not len(den):
        return _NAN3
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(den), (2000, len(den)))
    draws = num[idx].sum(1) / den[idx].sum(1)
    return float(num.sum() / den.sum()), *map(float, np.percentile(draws, [2.5, 97.5]))


def _triple(d: dict) -> tuple[float, float, float]:
    return d["value"], d["ci_low"], d["ci_high"]


def toy_claims(
    m: dict[str, dict],
    vector: dict,
    every_step: dict | None = None,
    only: list[str] | None = None,
    rotation: dict | None = None,
    modes: dict | None = None,
) -> list[tuple[Claim, dict]]:
    """The toy-model source's claims from measured configurations, each with the statistics it was judged on.

    A claim is evaluated when it is in ``only`` (default: all) and every configuration it needs
    (CLAIM_NEEDS) was measured. Each row's rule text and verdict come from its registry entry
    (:func:`toy_rules`). Intervals fit the sample: exact binomial for fractions of seeds, t (Welch for
    differences) below :data:`bumps.stats.PERCENTILE_MIN_N` seeds and the percentile bootstrap above,
    seed-cluster bootstraps for events nested in seeds. ``n`` is the number of independent units (seeds)
    that contribute.

    Parameters
    ----------
    m : dict
        Configuration name -> :func:`measure` output.
    vector : dict
        :func:`vector_regression` output (claim 1).
    every_step : dict, optional
        Configuration name -> :func:`every_step_plateau` output, for ``gd_full`` and ``adam_full``
        (claim 9; without it claim 9 is left out).
    only : list of str, optional
        Claim ids to evaluate.
    rotation : dict, optional
        :func:`bumps.lowrank.rotation.summarize_rotations` of the rotation test (rows R1-R3; without it
        they are left out).

    Returns
    -------
    list of (Claim, dict)
        Each row and the statistics (name -> (value, low, high)) its rule and earlier rules read.
    """
    R = toy_rules()

    def want(cid: str, *needs: str) -> bool:
        return (only is None or cid in only) and all(k in m for k in needs)

    pf = lambda k: np.asarray(m[k]["plateau_fraction"], float)  # noqa: E731
    seeds_with = lambda k: (np.array(m[k]["per_unit_bumps_per_seed"]) > 0).astype(float)  # noqa: E731
    bps = lambda k: np.array(m[k]["per_unit_bumps_per_seed"], float)  # noqa: E731
    n = lambda *ks: min(m[k]["seeds"] for k in ks)  # noqa: E731
    rows: list[tuple[Claim, dict]] = []

    def add(cid: str, values: dict, units: int, statistic: str | None = None) -> None:
        rows.append((R[cid].judge(values, units, statistic), values))

    if want("1"):
        values = {STAT: mean_interval(vector["plateau_fraction"]), "log_r2": mean_interval(vector["log_r2"])}
        stat = R["1"].statistic
        if "gd_r1" in m:
            r1 = mean_interval(pf("gd_r1"))
            stat += (
                f" (GD rank 1, same σ and lr, a plateau: {r1[0]:.3f}, which this rule calls {R['1'].rule.decide(r1)})"
            )
        add("1", values, len(vector["plateau_fraction"]), stat)
    if want("2", "gd_r1"):
        values = {
            STAT: mean_interval(pf("gd_r1")),
            "plateau_from_loss0": mean_interval(m["gd_r1"]["plateau_fraction_from_loss0"]),
        }
        add("2", values, n("gd_r1"))
    if want("3", "gd_r1"):
        g = m["gd_r1"]
        end, at_end = np.asarray(g["decay_end"], float), np.asarray(g["loss_at_decay_end"], float)
        early = end < np.asarray(g["t10"], float)
        slight = (end < np.asarray(g["t10_from_loss0"], float)) & (at_end < 1) & (at_end > 0.9)
        drop = 1 - float(np.median(at_end))
        stat = (
            f"{R['3'].statistic} (the loss has then fallen by {drop:.0%} of its start, median: the start's own "
            "½‖UVᵀ‖² at σ = 0.1, d = 100 — not slight)"
        )
        add(
            "3",
            {STAT: proportion_interval(early), "slight_drop_fraction": proportion_interval(slight)},
            n("gd_r1"),
            stat,
        )
    if want("4", "gd_r1", "gd_r10", "gd_full"):
        d = diff_interval(pf("gd_r1"), pf("gd_r10"))
        full = mean_interval(pf("gd_full"))
        stat = f"t10/t90 rank 1 − rank 10 (full rank alone: {full[0]:.3f} [{full[1]:.3f}, {full[2]:.3f}])"
        add("4", {STAT: d, "full": full}, n("gd_r1", "gd_r10", "gd_full"), stat)
    if want("5", "gd_r1", "gd_r2", "gd_r4", "gd_r10"):
        values = {STAT: proportion_interval(seeds_with("gd_r1"))}
        values |= {k: proportion_interval(seeds_with(k)) for k in ("gd_r2", "gd_r4", "gd_r10")}
        stat = (
            "GD rank 1: fraction of seeds with a per-unit bump (ranks 2, 4, 10: CI lows "
            + ", ".join(f"{values[k][1]:.2f}" for k in ("gd_r2", "gd_r4", "gd_r10"))
            + ")"
        )
        add("5", values, n("gd_r1"), stat)
    if want("6", "gd_r2"):
        add("6", {STAT: proportion_interval(seeds_with("gd_r2"))}, n("gd_r2"))
    for cid, where in (("7", "peak"), ("7s", "start")):
        if want(cid, "gd_r4"):
            dec = m["gd_r4"]["in_decay"]
            frac = _cluster_fraction(dec[where], dec["bumps"])
            units = int((np.asarray(dec["bumps"]) > 0).sum())
            stat = f"{R[cid].statistic}: {int(np.sum(dec[where]))} of {int(np.sum(dec['bumps']))} bumps"
            add(cid, {STAT: frac}, units, stat)
    for cid, at in (("8", "peak"), ("8c", "peak_causal")):
        if not want(cid, "gd_r4"):
            continue
        ko = summarize(list(m["gd_r4"]["knockouts"])).get(at, {})
        if ko.get("bumps"):
            c_d, k_d = ko["competitor_drop_ratio"], ko["control_drop_ratio"]
            # the seeds are the independent units: intervals over each seed's mean gaps
            values = {
                STAT: mean_interval(ko["per_seed"]["drop_gap"]),
                "gap": mean_interval(ko["per_seed"]["persist_gap"]),
                "competitor": _triple(c_d),
                "control": _triple(k_d),
            }
            g = dict(zip(("value", "ci_low", "ci_high"), values["gap"], strict=True))
            stat = (
                f"{R[cid].statistic}: {ko['bumps']} bumps in {ko['seeds']} seeds, control − competitor > 0 in "
                f"{ko['drop_gap_positive']} of them; persistence gap "
                f"{g['value']:.2f} [{g['ci_low']:.2f}, {g['ci_high']:.2f}]; median drop ratio competitor "
                f"{c_d['value']:.2f} [{c_d['ci_low']:.2f}, {c_d['ci_high']:.2f}] vs control {k_d['value']:.2f} "
                f"[{k_d['ci_low']:.2f}, {k_d['ci_high']:.2f}]"
            )
            units = ko["seeds"]
        else:  # nothing measured: every comparison with nan fails, so the verdict is inconclusive
            values = {STAT: _NAN3, "gap": _NAN3, "competitor": _NAN3, "control": _NAN3}
            stat, units = "GD rank 4 knockouts: no bumps with controls", 0
        add(cid, values, units, stat)
    if want("9", "adam_full", "gd_full", "adam_r10", "gd_r10") and every_step:
        e_a, e_g = every_step["adam_full"], every_step["gd_full"]
        d100 = diff_interval(e_a["every_step"], e_g["every_step"])
        d10 = diff_interval(bps("adam_r10"), bps("gd_r10"))
        a, g = mean_interval(e_a["every_step"]), mean_interval(e_g["every_step"])
        stat = (
            f"{R['9'].statistic} (Adam {a[0]:.3f}, GD {g[0]:.3f}; rank 10 bumps per seed Adam − GD: {d10[0]:.1f} "
            f"[{d10[1]:.1f}, {d10[2]:.1f}])"
        )
        values = {STAT: d100, "plateau_diff_every10": diff_interval(e_a["coarse"], e_g["coarse"])}
        add("9", values, n("adam_full", "gd_full"), stat)
    if want("10", "gd_r4_wd", "gd_r4"):
        wd_final = np.asarray(m["gd_r4_wd"]["final_loss"]) / np.asarray(m["gd_r4_wd"]["loss0"])
        free_final = np.asarray(m["gd_r4"]["final_loss"]) / np.asarray(m["gd_r4"]["loss0"])
        dd = diff_interval(m["gd_r4_wd"]["norm_ratio_early"], m["gd_r4"]["norm_ratio_early"])
        db = diff_interval(bps("gd_r4_wd"), bps("gd_r4"))
        stops = proportion_interval(wd_final > 1e3 * np.maximum(free_final.max(), 1e-12))
        stat = (
            "GD rank 4, wd 0.05 vs 0: difference of Σ‖·‖² at step T/30 over its start (fraction of "
            f"wd seeds whose final loss is >1000x the worst wd-free one: {stops[0]:.2f}; "
            f"bumps per seed difference {db[0]:.2f} "
            f"[{db[1]:.2f}, {db[2]:.2f}])"
        )
        add("10", {STAT: dd, "stops": stops, "bumps": db}, n("gd_r4_wd", "gd_r4"), stat)
    if rotation and want("R1"):
        dev = max(rotation["invariant_max_diff"], rotation["loss_max_diff"])
        add("R1", {STAT: (dev, math.nan, math.nan)}, rotation["seeds"])
    if rotation and want("R2"):
        flags = np.r_[
            np.ones(rotation["seeds_count_varies"]), np.zeros(rotation["seeds"] - rotation["seeds_count_varies"])
        ]
        stat = f"{R['R2'].statistic} (mean sd of a seed's count across starts: {rotation['count_sd_mean']:.2f})"
        add("R2", {STAT: proportion_interval(flags)}, rotation["seeds"], stat)
    if rotation and want("R3"):
        k, n_pairs = rotation["pairs_status_varies"], rotation["pairs"]
        flags = np.r_[np.ones(k), np.zeros(n_pairs - k)]
        add("R3", {STAT: proportion_interval(flags)}, rotation["seeds"], f"{R['R3'].statistic}: {k} of {n_pairs}")
    if modes:
        rows += _mode_rows(R, modes, want)
    return rows


# ---------------------------------------------------------------------------
# The toy section of the report


def _mode_rows(R: dict, modes: dict, want: Callable[..., bool]) -> list[tuple[Claim, dict]]:
    """Rows MD1-MD3 from :func:`bumps.lowrank.modes.summarize_modes` (module :mod:`bumps.lowrank.modes`)."""
    rows = []
    per_gap = modes["per_gap"]
    frac = lambda g: proportion_interval(  # noqa: E731
        np.r_[np.ones(g["seeds_with_invariant_bumps"]), np.zeros(g["seeds"] - g["seeds_with_invariant_bumps"])]
    )
    equal = [g for g in per_gap if g["gap"] == 0]
    unequal = [g for g in per_gap if g["gap"] > 0]
    if want("MD1") and equal and unequal:
        top = max(unequal, key=lambda g: g["seeds_with_invariant_bumps"])
        counts = ", ".join(f"g = {g['gap']:g}: {g['seeds_with_invariant_bumps']}/{g['seeds']}" for g in per_gap)
        values = {STAT: frac(equal[0]), "largest": frac(top)}
        rows.append((R["MD1"].judge(values, equal[0]["seeds"], f"{R['MD1'].statistic} (seeds: {counts})"), values))
    ko = modes["knockout"]
    if want("MD2"):
        values = {STAT: tuple(ko["drop_gap"]), "gap": tuple(ko["persist_gap"])}
        stat = (
            f"{R['MD2'].statistic}: {ko['bumps']} bumps in {ko['seeds']} seeds, control − rival > 0 in "
            f"{ko['drop_gap_positive']}; persistence rival {ko['rival_persists']:.2f}, controls "
            f"{ko['control_persists']:.2f}"
        )
        rows.append((R["MD2"].judge(values, ko["seeds"], stat), values))
    if want("MD3") and equal:
        ind = modes["independent_equal"]
        values = {STAT: _cluster_fraction(ind["per_seed_reproduced"], ind["per_seed_bumps"])}
        stat = f"{R['MD3'].statistic}: {sum(ind['per_seed_reproduced'])} of {sum(ind['per_seed_bumps'])} bumps"
        units = int(sum(np.asarray(ind["per_seed_bumps"]) > 0))
        rows.append((R["MD3"].judge(values, units, stat), values))
    if want("MD3b") and equal and "fixed_modes" in modes["independent_equal"]:
        fm = modes["independent_equal"]["fixed_modes"]
        values = {STAT: _cluster_fraction(fm["per_seed_reproduced"], fm["per_seed_bumps"])}
        stat = f"{R['MD3b'].statistic}: {sum(fm['per_seed_reproduced'])} of {sum(fm['per_seed_bumps'])} bumps"
        units = int(sum(np.asarray(fm["per_seed_bumps"]) > 0))
        rows.append((R["MD3b"].judge(values, units, stat), values))
    return rows


def registry_row(row: dict, entry, values: dict) -> dict:
    """A claim row with its registration: status, the commit its rule last changed in, earlier verdicts."""
    earlier = entry.earlier_verdicts(values)
    return {
        **row,
        "registry": {
            "status": entry.status,
            "last_changed": last_changed(entry),
            "registered": entry.registered,
            "earlier_verdicts": earlier,
            "earlier_rules": [r.rule.describe() for r in entry.revisions if r.after_data],
            "earlier_reasons": [r.reason for r in entry.revisions if r.after_data],
            "reason": entry.reason,
            "command": entry.command,
        },
    }


def _cached(cache: Path | None, stem: str, key_parts: list, compute: Callable[[], dict]) -> dict:
    """``compute()``, or its JSON from ``cache/{stem}_{hash}.json`` (hash: sha256 of ``key_parts``, 16 hex
    digits), written there atomically when computed; no cache: always computed."""
    key = hashlib.sha256(json.dumps(key_parts, sort_keys=True).encode()).hexdigest()[:16]
    path = None if cache is None else Path(cache) / f"{stem}_{key}.json"
    if path is not None and path.exists():
        return json.loads(path.read_text())
    result = compute()
    if path is not None:
        text = json.dumps(result)
        atomic_write(path, lambda fh: fh.write(text.encode()))
    return result


def run_toy_claims(
    seeds: int = 128,
    quick: bool = False,
    configs: list[str] | None = None,
    claims: list[str] | None = None,
    max_knockout_bumps: int = 150,
    params: BumpParams | None = None,
    cache: Path | None = Path("runs/claims_cache"),
    progress: Callable[[int, int, str], None] | None = None,
    seeds_full_rank: int = 16,
) -> dict:
    """Measure the grid (resuming from ``cache``), evaluate the claims, return the JSON-ready toy section.

    ``configs`` restricts the grid to those names (claims whose configurations are
    missing are left out); ``claims`` restricts the reported claim ids.
    """
    if seeds <= 0:
        raise BumpsError(f"--seeds must be >= 1 (got {seeds})")
    grid = toy_grid(seeds, quick, seeds_full_rank)
    if configs:
        unknown = [c for c in configs if c not in grid]
        if unknown:
            raise BumpsError(f"unknown configuration {', '.join(unknown)}; known: {', '.join(grid)}")
    if claims:
        unknown = [c for c in claims if c not in CLAIM_IDS]
        if unknown:
            raise BumpsError(f"unknown claim {', '.join(unknown)}; known: {', '.join(CLAIM_IDS)}")
    if configs:
        grid = {k: v for k, v in grid.items() if k in configs}
    for c in grid.values():
        c.validate()
    check_memory(grid)
    params = (params or BumpParams()).validate()
    names = list(grid)
    measured: dict[str, dict] = {}
    threads = torch.get_num_threads()
    torch.set_flush_denormal(True)  # decaying entries turn subnormal and slow every op ~3x
    try:
        for i, name in enumerate(names):
            cfg = grid[name]
            torch.set_num_threads(default_threads(cfg))  # the thread policy (bumps.threads); 1 for these sizes
            ko = name in KNOCKOUT_CONFIGS
            if progress:
                progress(i, len(names), name)
            measured[name] = _cached(
                cache,
                name,
                [_config_dict(cfg), asdict(params), ko, max_knockout_bumps, 4],
                lambda cfg=cfg, name=name, ko=ko: measure(name, cfg, params, ko, max_knockout_bumps),
            )
        every_step = {
            name: _cached(
                cache, f"{name}_every_step", [_config_dict(grid[name]), 1], lambda n=name: every_step_plateau(grid[n])
            )
            for name in ("gd_full", "adam_full")
            if name in grid
        }
        rotation = None
        if ROTATION_CONFIG in grid and (claims is None or set(claims) & {"R1", "R2", "R3"}):
            rcfg = replace(grid[ROTATION_CONFIG], seeds=min(ROTATION_SEEDS, grid[ROTATION_CONFIG].seeds))
            study = _cached(
                cache,
                "rotation",
                [_config_dict(rcfg), asdict(params), ROTATIONS, 1],
                lambda: rotation_study(rcfg, ROTATIONS, params),
            )
            rotation = summarize_rotations(study)
        modes = None
        if "gd_r4" in grid and (claims is None or set(claims) & {"MD1", "MD2", "MD3", "MD3b"}):
            mstudy = _cached(
                cache,
                "modes",
                [_config_dict(grid["gd_r4"]), asdict(params), list(GAPS), 2],
                lambda: modes_study(grid["gd_r4"], params),
            )
            modes = summarize_modes(mstudy)
            equal = [r for r in mstudy["rows"] if r["gap"] == 0]
            modes["independent_equal"] = equal[0]["independent"] if equal else None
        if progress:
            progress(len(names), len(names), "claims")
    finally:
        torch.set_num_threads(threads)
        torch.set_flush_denormal(False)
    base = toy_grid(seeds, quick)["gd_r1"]
    vector = vector_regression(seeds, base.dim, base.steps, base.lr, base.init_scale)
    judged = toy_claims(measured, vector, every_step if len(every_step) == 2 else None, claims, rotation, modes)
    rules = toy_rules()
    knockouts = [r for name in names for r in measured[name]["knockouts"]]
    ko_summary = {name: summarize(measured[name]["knockouts"]) for name in names if measured[name]["knockouts"]}
    series_bumps = []
    for name in names:
        for key, c in measured[name]["series"].items():
            series_bumps.append(
                {
                    "config_name": name,
                    "config": measured[name]["config"],
                    "series": key,
                    "frame": "per-unit" if key in PER_UNIT_SERIES else "invariant",
                    "bumps": c["bumps"],
                    "seeds_with_bumps": c["seeds_with_bumps"],
                    "seeds": measured[name]["seeds"],
                }
            )
    return {
        "claims": [registry_row(asdict(row), rules[row.id], values) for row, values in judged],
        "registry": {"file": "bumps/rules.json", "family": FAMILY, "sha256": registry_file_hash()},
        "rotation": rotation,
        "modes": modes,
        "knockouts": knockouts,
        "knockout_summary": ko_summary,
        "series_bumps": series_bumps,
        "grid": {n: _config_dict(c) for n, c in grid.items()},
        "grid_design": "one factor at a time around GD rank 4 (see bumps.lowrank.claims)",
        "params": asdict(params),
        "seeds": seeds,
        "seeds_full_rank": min(seeds, seeds_full_rank),
        "quick": quick,
        "versions": versions(),
    }


def _modes_markdown(modes: dict | None) -> list[str]:
    """The "Modes, not units" section (rows MD1-MD3; :mod:`bumps.lowrank.modes`)."""
    if not modes:
        return []
    ko = modes["knockout"]
    ci = lambda t: f"{t[0]:.2f} [{t[1]:.2f}, {t[2]:.2f}]"  # noqa: E731
    lines = [
        "",
        "## Modes, not units: strength gap, mode knockouts, independent modes",
        "",
        "GD rank 4 with strengths 1 + g·m (m = 0..3), the same seeds (targets and start) at every gap "
        "(`bumps.lowrank.modes`). Invariant bumps: bumps of ‖Uᵀa_m‖, ‖Vᵀb_m‖. Reproduced: per-unit bumps whose "
        "curve in the superposition of the seed's rank-1 runs (each target learned alone from the same start; "
        "MD3), or in the fixed-modes model (the modes of M = aᵀUVᵀb with fixed singular vectors and their own "
        "strengths, in the final basis of the units; MD3b), has a bump peaking inside the original [start, end].",
        "",
        "| g | strengths | seeds with invariant bumps | invariant bumps | per-unit bumps | reproduced by "
        "independent targets (MD3) | bumps in that superposition | reproduced by fixed modes (MD3b) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for g in modes["per_gap"]:
        n_b, n_r = g["independent_bumps"], g["independent_reproduced"]
        share = lambda k, n=n_b: f"{k} ({k / n:.2f})" if n else "0"  # noqa: E731
        lines.append(
            f"| {g['gap']:g} | {', '.join(f'{s:g}' for s in g['strengths'])} | {g['seeds_with_invariant_bumps']}"
            f"/{g['seeds']} | {g['invariant_bumps']} | {n_b} | {share(n_r)} | {g['superposed_bumps']} | "
            f"{share(g['fixed_modes_reproduced'])} |"
        )
    if ko["bumps"]:
        lo, hi = ko["none_drop_ratio_range"]
        lines += [
            "",
            f"Mode knockouts at the peak, every invariant bump at g > 0 ({ko['bumps']} bumps, {ko['seeds']} seeds): "
            f"drop-ratio difference control − rival {ci(ko['drop_gap'])}, persistence gap {ci(ko['persist_gap'])} "
            f"(rival persists {ko['rival_persists']:.2f}, controls {ko['control_persists']:.2f}); the "
            f"unintervened continuation persists in {ko['none_persists']} of {ko['bumps']} with drop ratio "
            f"{lo:.3f}–{hi:.3f}.",
        ]
    return lines


def _fmt(x) -> str:
    return "–" if x is None else f"{x:.3g}"


def render_toy_markdown(report: dict, figures: list[str] | None = None) -> list[str]:
    """The Markdown report: claims table, knockout summary, per-unit vs frame-invariant bump counts."""
    lines = [
        "# Toy-model claims (`bumps claims`)",
        "",
        f"Generated by `bumps claims{' --quick' if report['quick'] else ''}` — {report['seeds']} seeds per "
        f"configuration ({report['seeds_full_rank']} at full rank), grid: {report['grid_design']}. "
        "Intervals (95%) fit the sample: exact binomial (Clopper–Pearson) for fractions of seeds, t intervals "
        f"(Welch for differences) below {PERCENTILE_MIN_N} seeds and percentile bootstraps from there on, "
        "seed-cluster bootstraps for bumps nested in seeds; n counts the independent units (seeds) that "
        "contribute.",
        "",
    ]
    reg = report.get("registry")
    if reg:
        lines += [
            f"Rules: the registry `{reg['file']}` (family `{reg['family']}`, sha256 `{reg['sha256']}`), "
            "each registered before the run that decides it; the last column gives the commit since which the "
            "row's rule has stood, and says when a rule was revised or a row added after its data was seen "
            "(the earlier rules and their verdicts are listed below the table).",
            "",
        ]
    lines += [
        "| claim | statement | statistic | value [95% CI] | n | rule | registration | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in report["claims"]:
        r = c.get("registry", {})
        status = r.get("status", "")
        mark = f"**{status}**" if status not in ("registered", "") else status
        at = r.get("last_changed", "")
        since = f" since `{at}`" if at not in ("", "unknown", "uncommitted") else (f" ({at})" if at else "")
        earlier = "; earlier: " + ", ".join(r["earlier_verdicts"]) if r.get("earlier_verdicts") else ""
        lines.append(
            f"| {c['id']} | {c['statement']} | {c['statistic']} | {_fmt(c['value'])} "
            f"[{_fmt(c['ci_low'])}, {_fmt(c['ci_high'])}] | {c['n_seeds']} | {c['rule']} | "
            f"{mark}{since}{earlier} | **{c['verdict']}** |"
        )
    revised = [c for c in report["claims"] if c.get("registry", {}).get("status", "registered") != "registered"]
    if revised:
        lines += ["", "### Rules revised or rows added after the data", ""]
        for c in revised:
            r = c["registry"]
            lines.append(f"* **{c['id']}** ({r['status']}).{' ' + r['reason'] if r.get('reason') else ''}")
            for rule, why, v in zip(r["earlier_rules"], r["earlier_reasons"], r["earlier_verdicts"], strict=True):
                lines.append(f"  * earlier rule: {rule} — verdict on this run: **{v}**. Replaced: {why}.")
    commands = sorted({c["registry"]["command"] for c in report["claims"] if c.get("registry", {}).get("command")})
    if commands:
        lines += ["", "Command that produces this section: " + ", ".join(f"`{x}`" for x in commands) + "."]
    if report.get("command"):
        lines += ["", f"This report was made by `{report['command']}`."]
    rot = report.get("rotation")
    if rot:
        lines += [
            "",
            "## Rotation test: the same seeds from rotated starts",
            "",
            f"Each of {rot['seeds']} GD rank-4 seeds started from {rot['rotations']} bases (U₀R, V₀R) of the same "
            "learned subspace (the first the seed's own; `bumps.lowrank.rotation`). The invariant series and the "
            f"loss differ by at most {rot['invariant_max_diff']:.1e} and {rot['loss_max_diff']:.1e} (round-off); "
            f"the per-unit bump count of a seed varies with the start (mean sd {rot['count_sd_mean']:.2f}). "
            "Knockouts at the peak, one row per start: persistence gap (control − competitor) "
            f"mean {rot['persist_gap']['mean']:.2f} (range {rot['persist_gap']['min']:.2f} to "
            f"{rot['persist_gap']['max']:.2f}); paired drop-ratio difference mean {rot['drop_gap']['mean']:.2f} "
            f"(range {rot['drop_gap']['min']:.2f} to {rot['drop_gap']['max']:.2f}).",
            "",
            "| seed | " + " | ".join(str(i) for i in range(rot["seeds"])) + " |",
            "|---" * (rot["seeds"] + 1) + "|",
            "| per-unit bumps, min–max over starts | "
            + " | ".join(f"{lo}–{hi}" for lo, hi in rot["count_range"])
            + " |",
        ]
    lines += _modes_markdown(report.get("modes"))
    lines += [
        "",
        "## Knockouts (competitor vs control, paired by bump)",
        "",
        "| config | at | bumps | seeds | competitor persists | control persists | gap (control − competitor) "
        "| competitor median drop ratio | control median drop ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    ci = lambda d: f"{d['value']:.2f} [{d['ci_low']:.2f}, {d['ci_high']:.2f}]"  # noqa: E731
    for name, s in report["knockout_summary"].items():
        for at in KNOCKOUT_TIMES:
            r = s.get(at, {})
            if not r.get("bumps"):
                continue
            lines.append(
                f"| {name} | {at} | {r['bumps']} | {r['seeds']} | {ci(r['competitor_persists'])} | "
                f"{ci(r['control_persists'])} | {ci(r['persist_gap'])} | {ci(r['competitor_drop_ratio'])} | "
                f"{ci(r['control_drop_ratio'])} |"
            )
    lines += [
        "",
        "## Bumps per series: per-unit vs frame-invariant",
        "",
        "Per-unit: inner products of each learned vector with each target (depend on the basis of the "
        "learned units). Invariant: ‖Uᵀa_m‖, ‖Vᵀb_m‖ (target_norm), singular values of aᵀU, bᵀV (sv), loss. "
        "Cells: bumps (seeds with bumps / seeds).",
        "",
    ]
    keys = list(PER_UNIT_SERIES) + list(INVARIANT_SERIES)
    lines += ["| config | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    by = {}
    for r in report["series_bumps"]:
        by.setdefault(r["config_name"], {})[r["series"]] = r
    for name, row in by.items():
        lines.append(
            f"| {name} | "
            + " | ".join(f"{row[k]['bumps']} ({row[k]['seeds_with_bumps']}/{row[k]['seeds']})" for k in keys)
            + " |"
        )
    if figures:
        lines += ["", "Figures: " + ", ".join(f"`{f}`" for f in figures)]
    return lines
