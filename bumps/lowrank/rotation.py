"""The rotation test: how much of "which unit competes" is a property of the basis the units start in.

The toy loss ½‖A − UVᵀ‖² is unchanged by ``U → UR, V → VR`` for any orthogonal ``R`` (K × K), and gradient
descent is equivariant under it: started from ``(U₀R, V₀R)`` it follows ``(U_t R, V_t R)``. The learned
matrix, the loss and every frame-invariant series (:mod:`bumps.lowrank.invariants`) are the same for every
``R``; the per-unit inner products ``aᵀU``, ``bᵀV`` are mixed by ``R``. So counting per-unit bumps, and
knocking out "the competitor", on rotated starts of one seed measures how much of the per-unit story is a
property of the starting basis rather than of what is learned.

:func:`rotation_study` runs one configuration's seeds from ``n_rotations`` starts each: rotation 0 is the
identity (the seed's own start), the others are Haar-random orthogonal matrices drawn from a generator
seeded by ``(rng_seed, rotation)``, one per seed. Per rotation it records the per-unit bump count of every
seed, whether each (seed, target) pair has a per-unit bump, the largest deviation of the invariant series
and the loss from rotation 0 (equivariance: float round-off), and the knockout test's persistence gap
and paired drop-ratio difference (:mod:`bumps.lowrank.knockout`).
"""

from __future__ import annotations

import numpy as np
import torch

from bumps.detect.bumps import BumpParams, find_bumps, orient_by_peak
from bumps.lowrank.invariants import PER_UNIT_SERIES, invariant_series
from bumps.lowrank.knockout import plan, run_plan, summarize
from bumps.lowrank.model import LowRankConfig, initial_state, simulate


def haar_orthogonal(n: int, k: int, generator: torch.Generator, dtype=torch.float64) -> torch.Tensor:
    """``[n, k, k]`` independent Haar-random orthogonal matrices (QR of a Gaussian, signs fixed by R's diagonal)."""
    z = torch.randn(n, k, k, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(z)
    return (q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[:, None, :]).to(dtype)


def rotated_state(state: dict[str, torch.Tensor], rotation: torch.Tensor) -> dict[str, torch.Tensor]:
    """The start ``(U R, V R)`` of every seed; targets unchanged. ``rotation`` ``[N, K, K]``."""
    r = rotation.to(state["U"].dtype)
    return {**state, "U": state["U"] @ r, "V": state["V"] @ r}


def _per_unit_bumps(run: dict, params: BumpParams | None) -> tuple[np.ndarray, np.ndarray]:
    """Per seed: the per-unit bump count ``[N]``, and which targets have one ``[N, r]`` (bool)."""
    step = run["step"].numpy()
    n, r = run["inner_a"].shape[1:3]
    count, has = np.zeros(n, int), np.zeros((n, r), bool)
    for key in PER_UNIT_SERIES:
        for b in find_bumps(orient_by_peak(run[key].numpy()), step, params):
            seed, target = b.index[0], b.index[1]
            count[seed] += 1
            has[seed, target] = True
    return count, has


def rotation_study(
    cfg: LowRankConfig,
    n_rotations: int = 16,
    params: BumpParams | None = None,
    knockout_bumps: int = 32,
    rng_seed: int = 0,
) -> dict:
    """Run every seed of ``cfg`` from ``n_rotations`` rotated starts (module docstring).

    Parameters
    ----------
    cfg : LowRankConfig
        A GD configuration with at least 2 learned units.
    n_rotations : int, default 16
        Starts per seed, the first the identity.
    params : BumpParams, optional
        Bump detector settings (default: its defaults).
    knockout_bumps : int, default 32
        Bumps drawn per rotation for the knockout test (0: none).
    rng_seed : int, default 0
        Seed of the rotations.

    Returns
    -------
    dict
        JSON-ready: ``seeds``, ``rotations``, ``bumps`` ``[rotations][seeds]`` per-unit bump counts,
        ``targets_bumped`` ``[rotations][seeds][r]``, ``invariant_max_diff`` and ``loss_max_diff``
        (per rotation, against rotation 0), and ``knockout`` (per rotation: bumps, persistence gap and
        drop-ratio difference at the peak, look-ahead competitor).
    """
    if cfg.optimizer != "gd":
        raise ValueError("the rotation test needs GD: Adam is not rotation-equivariant")
    base = initial_state(cfg)
    out = {"seeds": cfg.seeds, "rotations": n_rotations, "bumps": [], "targets_bumped": []}
    out.update(invariant_max_diff=[], loss_max_diff=[], knockout=[])
    ref_inv = ref_loss = None
    eye = torch.eye(cfg.n_learned, dtype=torch.float64).expand(cfg.seeds, -1, -1)
    for j in range(n_rotations):
        g = torch.Generator().manual_seed(rng_seed * 1_000_003 + j)
        rot = eye if j == 0 else haar_orthogonal(cfg.seeds, cfg.n_learned, g)
        state = rotated_state(base, rot)
        run = simulate(cfg, state=state)
        inv = {k: v for k, v in invariant_series(run).items() if k != "loss"}
        loss = run["loss"].numpy()
        if j == 0:
            ref_inv, ref_loss = inv, loss
        out["invariant_max_diff"].append(float(max(np.abs(inv[k] - ref_inv[k]).max() for k in inv)))
        out["loss_max_diff"].append(float(np.abs(loss - ref_loss).max()))
        count, has = _per_unit_bumps(run, params)
        out["bumps"].append(count.tolist())
        out["targets_bumped"].append(has.tolist())
        ko = {"bumps": 0}
        if knockout_bumps:
            items = plan(run, params, max_bumps=knockout_bumps, rng_seed=j)
            items = [it for it in items if it.at == "peak"]
            s = summarize(run_plan(cfg, run["step"].numpy(), items, params, state=state)).get("peak", {})
            if s.get("bumps"):
                ko = {
                    "bumps": s["bumps"],
                    "seeds": s["seeds"],
                    "persist_gap": s["persist_gap"]["value"],
                    "drop_gap": s["drop_gap"]["value"],
                }
        out["knockout"].append(ko)
    return out


def summarize_rotations(study: dict) -> dict:
    """What varies across the rotations of one seed.

    Returns
    -------
    dict
        ``seeds_count_varies`` (seeds whose per-unit bump count is not the same under every rotation),
        ``pairs_status_varies`` and ``pairs`` ((seed, target) pairs whose "has a per-unit bump" differs
        between rotations, of all pairs bumped under some rotation), ``count_sd_mean`` (the mean over seeds
        of the bump count's standard deviation across rotations), ``count_range`` (per seed: min, max),
        ``invariant_max_diff`` and ``loss_max_diff`` (largest over rotations), and the knockout gaps'
        mean, min and max over rotations.
    """
    counts = np.asarray(study["bumps"])  # [R, N]
    has = np.asarray(study["targets_bumped"], bool)  # [R, N, r]
    ever, always = has.any(0), has.all(0)
    kos = [k for k in study["knockout"] if k.get("bumps")]
    gaps = np.array([k["persist_gap"] for k in kos]) if kos else np.array([np.nan])
    drops = np.array([k["drop_gap"] for k in kos]) if kos else np.array([np.nan])
    return {
        "seeds": int(counts.shape[1]),
        "rotations": int(counts.shape[0]),
        "seeds_count_varies": int((counts.min(0) != counts.max(0)).sum()),
        "pairs": int(ever.sum()),
        "pairs_status_varies": int((ever & ~always).sum()),
        "count_sd_mean": float(counts.std(0, ddof=1).mean()) if counts.shape[0] > 1 else 0.0,
        "count_range": [[int(lo), int(hi)] for lo, hi in zip(counts.min(0), counts.max(0), strict=True)],
        "invariant_max_diff": float(max(study["invariant_max_diff"])),
        "loss_max_diff": float(max(study["loss_max_diff"])),
        "persist_gap": {"mean": float(np.mean(gaps)), "min": float(np.min(gaps)), "max": float(np.max(gaps))},
        "drop_gap": {"mean": float(np.mean(drops)), "min": float(np.min(drops)), "max": float(np.max(drops))},
    }
