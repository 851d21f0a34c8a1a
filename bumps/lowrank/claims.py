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
most ``max_knockout_bumps`` bumps (drawn uniformly) and 384 replays per configuration.
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
from bumps.lowrank.knockout import plan, run_plan, summarize
from bumps.lowrank.model import LowRankConfig, default_threads, simulate
from bumps.stats import STAT, Claim, ClaimSpec, Clause, Condition, Rule, above, below, boot, boot_diff

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
CLAIM_IDS = tuple(str(i) for i in range(1, 11))


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
    max_instances: int = 384,
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
        "loss0": loss[0].tolist(),
        "final_loss": loss[-1].tolist(),
        "decay_end": decay_end.tolist(),
        "loss_at_decay_end": (loss[decay_idx, np.arange(cfg.seeds)] / loss[0]).tolist(),
        "series": {},
    }
    series = {k: orient_by_peak(run[k].numpy()) for k in PER_UNIT_SERIES}
    series.update(invariant_series(run))
    peaked_in_decay, n_unit = 0, 0
    for key, x in series.items():
        c = _count(x, step, params, cfg.seeds)
        if key in PER_UNIT_SERIES:
            peaked_in_decay += sum(step[b.peak] < decay_end[b.index[0]] for b in c["_list"])
            n_unit += c["bumps"]
        del c["_list"]
        out["series"][key] = c
    out["per_unit_bumps_per_seed"] = (
        np.array(out["series"]["inner_a"]["per_seed"]) + np.array(out["series"]["inner_b"]["per_seed"])
    ).tolist()
    out["peaked_in_decay"] = [int(peaked_in_decay), int(n_unit)]
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
        items = plan(run, params, max_bumps=min(max_bumps, max(1, max_instances // (2 * (cfg.n_learned - 1)))))
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


def vector_regression_plateau(seeds: int, dim: int, steps: int, lr: float, init_scale: float) -> np.ndarray:
    """Claim 1's model: GD on ½‖a − x‖² (x ∈ R^d) from x ~ N(0, σ²); R² of log-loss vs step per seed."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(seeds, dim, generator=g, dtype=torch.float64)
    a = a / a.norm(dim=1, keepdim=True)
    x = torch.randn(seeds, dim, generator=g, dtype=torch.float64) * init_scale
    loss = []
    for _ in range(steps + 1):
        loss.append(0.5 * (a - x).pow(2).sum(1))
        x = x - lr * (x - a)
    return log_linearity(torch.stack(loss).numpy())


CLAIM_NEEDS = {
    "1": (),
    "2": ("gd_r1",),
    "3": ("gd_r1",),
    "4": ("gd_r1", "gd_r10", "gd_full"),
    "5": ("gd_r1", "gd_r2", "gd_r4", "gd_r10"),
    "6": ("gd_r2",),
    "7": ("gd_r4",),
    "8": ("gd_r4",),
    "9": ("adam_full", "gd_full", "adam_r10", "gd_r10"),
    "10": ("gd_r4_wd", "gd_r4"),
}


_NAN3 = (math.nan, math.nan, math.nan)

# Every claim's statement and verdict rule, fixed before any run. A rule reads the row's own statistic
# (STAT) and, for some claims, further named statistics that toy_claims measures beside it.
TOY_CLAIMS: dict[str, ClaimSpec] = {
    "1": ClaimSpec(
        "Scalar/vector regression converges exponentially: no plateau.",
        Rule(above(0.99, note="a straight line: exponential"), below(0.9)),
    ),
    "2": ClaimSpec(
        "Rank-1 factorization shows an S-curve: long plateau, then a sudden drop.",
        Rule(above(0.5, note="most of the time to 90% spent before the first 10%"), below(0.3)),
    ),
    "3": ClaimSpec(
        "Early on, components orthogonal to the target decay fast (slight loss drop), then a plateau, then the drop.",
        Rule(above(0.9), below(0.5)),
    ),
    "4": ClaimSpec(
        "Higher rank gives a shorter, less sudden plateau; full rank with GD: none.",
        Rule(
            Condition((Clause(STAT, "low", ">", 0), Clause("full", "high", "<", 0.1)), note="no plateau at full rank"),
            Condition((Clause(STAT, "high", "<", 0), Clause("full", "low", ">", 0.3)), "any"),
            names={STAT: "the difference", "full": "full rank"},
        ),
    ),
    "5": ClaimSpec(
        "Bumps in inner-product-with-truth curves occur only when rank > 1.",
        Rule(
            Condition(
                (
                    Clause(STAT, "value", "==", 0),
                    Clause("gd_r2", "low", ">", 0),
                    Clause("gd_r4", "low", ">", 0),
                    Clause("gd_r10", "low", ">", 0),
                ),
                note="no rank-1 seed has a bump",
            ),
            Condition((Clause(STAT, "value", ">", 0),), note="rank 1 has any"),
            names={STAT: "the rank-1 fraction", "gd_r2": "rank 2", "gd_r4": "rank 4", "gd_r10": "rank 10"},
        ),
    ),
    "6": ClaimSpec(
        "At rank 2 bumps are relatively common but not universal.",
        Rule(
            Condition((Clause(STAT, "low", ">=", 0.15), Clause(STAT, "high", "<=", 0.95))),
            Condition((Clause(STAT, "high", "<", 0.15), Clause(STAT, "low", ">", 0.95)), "any"),
        ),
    ),
    "7": ClaimSpec(
        "Bumps tend to peak at higher alignment; none occur in the initial norm-decay phase.",
        Rule(below(0.05), above(0.2)),
    ),
    "8": ClaimSpec(
        "Mechanism: two learned vectors grow toward one target; one realigns as the other catches up (competition).",
        Rule(
            Condition(
                (Clause(STAT, "low", ">", 0.3), Clause("competitor", "high", "<", ("control", "low"))),
                note="removing the competitor stops the bump far more often than removing a control",
            ),
            below(0.1),
            names={STAT: "the gap", "competitor": "the competitor drop ratio", "control": "the control drop ratio"},
        ),
    ),
    "9": ClaimSpec(
        "With Adam the full-rank case regains a plateau, and rank 10 may show more bumps than with GD.",
        Rule(
            above(0.2),
            below(0.05),
            names={STAT: "the plateau difference"},
            note="the bump part is reported, not required: 'may'",
        ),
    ),
    "10": ClaimSpec(
        "Weight decay makes the converged solution stop minimising the original loss, speeds "
        "up the initial decay, and changes nothing else.",
        Rule(
            Condition(
                (
                    Clause(STAT, "high", "<", 0),
                    Clause("stops", "value", "==", 1),
                    Clause("bumps", "low", "<=", 0),
                    Clause("bumps", "high", ">=", 0),
                ),
                note="faster decay, the original loss not minimised, bumps unchanged",
            ),
            Condition((Clause(STAT, "low", ">", 0), Clause("stops", "value", "<", 0.5)), "any"),
            names={
                STAT: "the early-norm difference",
                "stops": "the final-loss fraction",
                "bumps": "the bumps-per-seed difference",
            },
        ),
    ),
}
assert tuple(TOY_CLAIMS) == CLAIM_IDS


def toy_claims(m: dict[str, dict], vector_plateau: np.ndarray, only: list[str] | None = None) -> list[Claim]:
    """Claims 1-10 of the toy-model source (the post and its thread) from measured configurations.

    A claim is evaluated when it is in ``only`` (default: all) and every configuration it
    needs (CLAIM_NEEDS) was measured. Each row's rule text and verdict come from its
    ``TOY_CLAIMS`` rule, given the statistics measured here.
    """

    def want(cid: str, *needs: str) -> bool:
        return (only is None or cid in only) and all(k in m for k in needs)

    pf = lambda k: np.asarray(m[k]["plateau_fraction"], float)  # noqa: E731
    seeds_with = lambda k: (np.array(m[k]["per_unit_bumps_per_seed"]) > 0).astype(float)  # noqa: E731
    bps = lambda k: np.array(m[k]["per_unit_bumps_per_seed"], float)  # noqa: E731
    n = lambda *ks: min(m[k]["seeds"] for k in ks)  # noqa: E731
    T = TOY_CLAIMS
    rows = []
    if want("1"):
        v = boot(vector_plateau)
        stat = "vector regression: mean R² of log(loss) vs step until 1% of the start is left"
        if "gd_r1" in m:
            stat += f" (GD rank 1, same σ and lr: {boot(m['gd_r1']['log_r2'])[0]:.3f})"
        rows.append(T["1"].judge("1", v, len(vector_plateau), stat))
    if want("2", "gd_r1"):
        stat = "GD rank 1: mean t10/t90 (steps until the loss is 10% below ½‖A‖² over steps until 90% below)"
        rows.append(T["2"].judge("2", boot(pf("gd_r1")), n("gd_r1"), stat))
    if want("3", "gd_r1"):
        early = np.asarray(m["gd_r1"]["decay_end"], float) < np.asarray(m["gd_r1"]["t10"], float)
        drop = 1 - float(np.median(m["gd_r1"]["loss_at_decay_end"]))
        stat = (
            "GD rank 1: fraction of seeds whose norm-decay phase ends before "
            f"t10 (the loss has then fallen by {drop:.0%} of its start, median: the start's own "
            "½‖UVᵀ‖² at σ = 0.1, d = 100 — not slight)"
        )
        rows.append(T["3"].judge("3", boot(early.astype(float)), n("gd_r1"), stat))
    if want("4", "gd_r1", "gd_r10", "gd_full"):
        d = boot_diff(pf("gd_r1"), pf("gd_r10"))
        full = boot(pf("gd_full"))
        stat = f"t10/t90 rank 1 − rank 10 (full rank alone: {full[0]:.3f} [{full[1]:.3f}, {full[2]:.3f}])"
        rows.append(T["4"].judge("4", {STAT: d, "full": full}, n("gd_r1", "gd_r10", "gd_full"), stat))
    if want("5", "gd_r1", "gd_r2", "gd_r4", "gd_r10"):
        values = {STAT: boot(seeds_with("gd_r1"))} | {k: boot(seeds_with(k)) for k in ("gd_r2", "gd_r4", "gd_r10")}
        stat = (
            "GD rank 1: fraction of seeds with a per-unit bump (ranks 2, 4, 10: CI lows "
            + ", ".join(f"{values[k][1]:.2f}" for k in ("gd_r2", "gd_r4", "gd_r10"))
            + ")"
        )
        rows.append(T["5"].judge("5", values, n("gd_r1"), stat))
    if want("6", "gd_r2"):
        stat = "GD rank 2: fraction of seeds with a per-unit bump"
        rows.append(T["6"].judge("6", boot(seeds_with("gd_r2")), n("gd_r2"), stat))
    if want("7", "gd_r4"):
        pk, tot = m["gd_r4"]["peaked_in_decay"]
        frac = np.r_[np.ones(pk), np.zeros(tot - pk)]
        stat = (
            f"GD rank 4: fraction of the {tot} per-unit bumps peaking inside the norm-decay phase "
            "(bootstrap over bumps)"
        )
        rows.append(T["7"].judge("7", boot(frac) if tot else _NAN3, n("gd_r4"), stat))
    if want("8", "gd_r4"):
        ko = summarize([r for r in m["gd_r4"]["knockouts"]]).get("peak", {})
        if ko.get("bumps"):
            triple = lambda d: (d["value"], d["ci_low"], d["ci_high"])  # noqa: E731
            c_d, k_d = ko["competitor_drop_ratio"], ko["control_drop_ratio"]
            values = {
                STAT: triple(ko["persist_gap"]),
                "competitor": triple(c_d),
                "control": triple(k_d),
            }
            stat = (
                f"GD rank 4, knockout at the peak: control − competitor persistence over {ko['bumps']} bumps "
                f"(median drop ratio competitor {c_d['value']:.2f} [{c_d['ci_low']:.2f}, {c_d['ci_high']:.2f}] vs "
                f"control {k_d['value']:.2f} [{k_d['ci_low']:.2f}, {k_d['ci_high']:.2f}])"
            )
        else:  # nothing measured: every comparison with nan fails, so the verdict is inconclusive
            values = {STAT: _NAN3, "competitor": _NAN3, "control": _NAN3}
            stat = "GD rank 4 knockouts: no bumps with controls"
        rows.append(T["8"].judge("8", values, n("gd_r4"), stat))
    if want("9", "adam_full", "gd_full", "adam_r10", "gd_r10"):
        d100 = boot_diff(pf("adam_full"), pf("gd_full"))
        d10 = boot_diff(bps("adam_r10"), bps("gd_r10"))
        stat = (
            f"full rank: t10/t90 Adam − GD (rank 10 bumps per seed Adam − GD: {d10[0]:.1f} "
            f"[{d10[1]:.1f}, {d10[2]:.1f}])"
        )
        rows.append(T["9"].judge("9", d100, n("adam_full", "gd_full"), stat))
    if want("10", "gd_r4_wd", "gd_r4"):
        wd_final = np.asarray(m["gd_r4_wd"]["final_loss"]) / np.asarray(m["gd_r4_wd"]["loss0"])
        free_final = np.asarray(m["gd_r4"]["final_loss"]) / np.asarray(m["gd_r4"]["loss0"])
        dd = boot_diff(m["gd_r4_wd"]["norm_ratio_early"], m["gd_r4"]["norm_ratio_early"])
        db = boot_diff(bps("gd_r4_wd"), bps("gd_r4"))
        stops = boot((wd_final > 1e3 * np.maximum(free_final.max(), 1e-12)).astype(float))
        stat = (
            "GD rank 4, wd 0.05 vs 0: difference of Σ‖·‖² at step T/30 over its start (fraction of "
            f"wd seeds whose final loss is >1000x the worst wd-free one: {stops[0]:.2f}; "
            f"bumps per seed difference {db[0]:.2f} "
            f"[{db[1]:.2f}, {db[2]:.2f}])"
        )
        rows.append(T["10"].judge("10", {STAT: dd, "stops": stops, "bumps": db}, n("gd_r4_wd", "gd_r4"), stat))
    return rows


# ---------------------------------------------------------------------------
# The toy section of the report


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
            key = hashlib.sha256(
                json.dumps([_config_dict(cfg), asdict(params), ko, max_knockout_bumps, 3], sort_keys=True).encode()
            ).hexdigest()[:16]
            path = None if cache is None else Path(cache) / f"{name}_{key}.json"
            if progress:
                progress(i, len(names), name)
            if path is not None and path.exists():
                measured[name] = json.loads(path.read_text())
                continue
            measured[name] = measure(name, cfg, params, ko, max_knockout_bumps)
            if path is not None:
                text = json.dumps(measured[name])
                atomic_write(path, lambda fh, t=text: fh.write(t.encode()))
        if progress:
            progress(len(names), len(names), "claims")
    finally:
        torch.set_num_threads(threads)
        torch.set_flush_denormal(False)
    base = toy_grid(seeds, quick)["gd_r1"]
    vp = vector_regression_plateau(seeds, base.dim, base.steps, base.lr, base.init_scale)
    rows = toy_claims(measured, vp, claims)
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
        "claims": [asdict(r) for r in rows],
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


def _fmt(x) -> str:
    return "–" if x is None else f"{x:.3g}"


def render_toy_markdown(report: dict, figures: list[str] | None = None) -> list[str]:
    """The Markdown report: claims table, knockout summary, per-unit vs frame-invariant bump counts."""
    lines = [
        "# Toy-model claims (`bumps claims`)",
        "",
        f"Generated by `bumps claims{' --quick' if report['quick'] else ''}` — {report['seeds']} seeds per "
        f"configuration ({report['seeds_full_rank']} at full rank), grid: {report['grid_design']}. "
        "Values with seed-bootstrap 95% CIs; each rule is data in code (TOY_CLAIMS in bumps/lowrank/claims.py).",
        "",
        "| claim | statement | statistic | value [95% CI] | seeds | rule | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in report["claims"]:
        lines.append(
            f"| {c['id']} | {c['statement']} | {c['statistic']} | {_fmt(c['value'])} "
            f"[{_fmt(c['ci_low'])}, {_fmt(c['ci_high'])}] | {c['n_seeds']} | {c['rule']} | "
            f"**{c['verdict']}** |"
        )
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
        for at in ("peak", "start"):
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
