"""Seed 001's stencil ablation over seeds: grok epoch per variant, paired speedups with bootstrap CIs.

Every variant is the preset's configuration plus one change; seed index s trains model-init seed
``preset seed + s`` (so index 0 is the page's seed 999 for tl-demo) on the preset's fixed data split,
early-stopped at grok (``stop_after_grok=0, stop_on="grok"``), evaluated every 10 epochs. Grok = first evaluation with
train and test accuracy >= 99%; a run that never groks within ``epochs`` is *censored* (its grok epoch is
only known to exceed the budget) and is reported as such, never as a number.

Variants: ``baseline``; the stencils ``k0 km1 kp1 km1_k0 km1_kp1 k0_kp1 full`` ({0}, {-1}, {+1}, {-1,0},
{-1,+1}, {0,+1}, {-1,0,+1}) at lambda = ``probe_weight`` (0.1); controls that separate "introspection"
from plain regularisation at the same lambda: ``frozen`` (the full stencil with the initial random probes,
never trained), ``hidden-l2`` (lambda * mean mlp_hidden^2), and ``wd2`` (the baseline with weight decay 2.0
instead of 1.0: a stronger version of the regulariser the page says the probe beats; any ``wdX`` works).

Speedup of a variant = geometric mean over seeds of baseline_s / variant_s (paired by seed), with a
percentile bootstrap 95% CI over seeds (10,000 resamples, fixed RNG) and an exact sign-flip test of
"no speedup" (two-sided, on the mean log ratio; with n seeds the smallest possible p is 2/2^n).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bumps.errors import BumpsError
from bumps.io.png import save_png
from bumps.io.provenance import settings_hash, stamp_markdown, stamp_png
from bumps.io.runfile import atomic_write, load_run
from bumps.modadd.model import PRESETS, ModAddConfig, shape_key
from bumps.modadd.train import step_elements, train_many
from bumps.stats import paired_speedup
from bumps.threads import threads_for

STENCILS = {
    "k0": (0,),
    "km1": (-1,),
    "kp1": (1,),
    "km1_k0": (-1, 0),
    "km1_kp1": (-1, 1),
    "k0_kp1": (0, 1),
    "full": (-1, 0, 1),
}
CONTROLS = {
    "frozen": dict(probe_stencil=(-1, 0, 1), probe_kind="frozen"),
    "hidden-l2": dict(probe_kind="hidden-l2"),
    "wd2": dict(weight_decay=2.0),
}
DEFAULT_VARIANTS = ("baseline", *STENCILS, *CONTROLS)
# Seed 001's numbers (one seed, tl-demo, p = 113): baseline grok epoch and speedups over it.
PAGE_BASELINE_EPOCH = 5760
PAGE_SPEEDUP = {"full": 3.00, "k0": 2.55, "km1": 1.52, "km1_kp1": 3.08, "km1_k0": 2.88}
N_BOOT = 10_000


def variant_overrides(name: str, probe_weight: float = 0.1) -> dict:
    """ModAddConfig overrides for one variant name (BumpsError for an unknown one)."""
    if name == "baseline":
        return {}
    if name in STENCILS:
        return dict(probe_stencil=STENCILS[name], probe_weight=probe_weight)
    if name in ("frozen", "hidden-l2"):
        return {**CONTROLS[name], "probe_weight": probe_weight}
    m = re.fullmatch(r"wd(\d+(?:\.\d+)?)", name)
    if m:
        return dict(weight_decay=float(m.group(1)))
    raise BumpsError(f"unknown variant {name!r}; choose from {', '.join(DEFAULT_VARIANTS)} (or wdX, e.g. wd3)")


def parse_list(text: str, what: str, cast=str) -> list:
    items = [t.strip() for t in text.split(",") if t.strip()]
    try:
        items = [cast(t) for t in items]
    except ValueError:
        raise BumpsError(f"--{what} must be a comma-separated list (got {text!r}), e.g. --{what} 0,1,2") from None
    if not items:
        raise BumpsError(f"--{what} is empty; give e.g. --{what} 0,1,2")
    if len(set(items)) != len(items):
        raise BumpsError(f"--{what} lists an entry twice ({text}); give each once")
    return items


def ablation_configs(
    preset: str,
    p: int | None,
    variants: list[str],
    seeds: list[int],
    epochs: int | None = None,
    probe_weight: float = 0.1,
    **overrides,
) -> dict[tuple[str, int], object]:
    """The ModAddConfig of every (variant, seed index); ``overrides`` go to every run (e.g. d_model)."""

    if preset not in PRESETS:
        raise BumpsError(f"`preset` must be one of {', '.join(PRESETS)} (got {preset!r})")
    if any(s < 0 for s in seeds):
        raise BumpsError(f"`seeds` must be >= 0 (got {min(seeds)})")
    base_seed = PRESETS[preset]["seed"]
    out = {}
    for v in variants:
        vo = variant_overrides(v, probe_weight)
        for s in seeds:
            values = dict(
                p=p,
                epochs=epochs,
                eval_every=10,
                checkpoint_every=0,
                stop_after_grok=0,
                stop_on="grok",
                seed=base_seed + s,
                **overrides,
            )
            values.update(vo)
            cfg = ModAddConfig.from_preset(preset, **values)
            out[(v, s)] = cfg
    return out


def default_out_dir(preset: str, p: int, overrides: dict) -> Path:
    """Where the ablation's run files go unless told otherwise.

    Parameters
    ----------
    preset : str
        The base preset.
    p : int
        The modulus the runs use.
    overrides : dict
        Settings given for every run (epochs, train_frac, d_model, d_mlp, lr; None: not given).

    Returns
    -------
    pathlib.Path
        ``runs/probe_ablation/{preset}_p{p}``, with ``_{hash}`` (:func:`bumps.io.provenance.settings_hash` of
        the given overrides) when any is given, so that differently sized ablations never share run files.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    return Path("runs") / "probe_ablation" / (f"{preset}_p{p}" + (f"_{settings_hash(given)}" if given else ""))


def run_path(out_dir: str | Path, variant: str, seed: int) -> Path:
    return Path(out_dir) / f"{variant}_seed{seed}.pt"


def run_ablation(
    configs: dict,
    out_dir: str | Path,
    progress: Callable[[int, int], None] | None = None,
    max_members: int = 16,
    train: bool = True,
    threads: int | None = None,
) -> dict[tuple[str, int], dict]:
    """Train every (variant, seed) that is not finished yet, packed into ensembles; returns the run dicts.

    ``train=False`` trains nothing and returns the run files that exist, finished or autosaved by a
    run still in progress (a partial table while the runs go on). ``threads``: torch threads per ensemble
    (None or 0: the thread policy, :func:`bumps.threads.choose_threads`)."""

    if not train:
        found = {k: run_path(out_dir, *k) for k in configs}
        runs = {k: load_run(f, kind="modadd") for k, f in found.items() if f.exists()}
        if not runs:
            raise BumpsError(f"no run files in {out_dir}; run without --no-train first")
        return runs
    keys = list(configs)
    groups: dict = {}
    for k in keys:
        groups.setdefault(shape_key(configs[k]), []).append(k)
    chunks = [g[i : i + max_members] for g in groups.values() for i in range(0, len(g), max_members)]
    total = sum(configs[k].epochs for k in keys)
    done_before = 0
    runs = {}
    for chunk in chunks:

        def report(done, _total, base=done_before, **_fields):
            if progress:
                progress(base + done, total)

        members = [configs[k] for k in chunk]
        with threads_for(step_elements(members), members[0].device, threads):
            results = train_many(members, [run_path(out_dir, *k) for k in chunk], resume="auto", progress=report)
        runs.update(zip(chunk, results, strict=True))
        done_before += sum(configs[k].epochs for k in chunk)
    return runs


# ---------------------------------------------------------------------------- statistics


def _median(values: list[float], censored: list[bool]) -> float | None:
    """Median with censored values as +inf; None when the median itself is censored."""
    x = np.array([math.inf if c else v for v, c in zip(values, censored, strict=True)], dtype=float)
    med = float(np.median(x))
    return None if not math.isfinite(med) else med


def summarize(grok: dict[tuple[str, int], int], epochs: dict[tuple[str, int], int]) -> dict:
    """Per-variant summary from grok epochs (-1 = never grokked) and each run's epoch budget."""
    variants = list(dict.fromkeys(v for v, _ in grok))
    base = {s: grok[(v, s)] for v, s in grok if v == "baseline"}
    out = {}
    for v in variants:
        seeds = sorted(s for w, s in grok if w == v)
        ep = [grok[(v, s)] for s in seeds]
        cens = [e < 0 for e in ep]
        vals = [epochs[(v, s)] if c else e for s, e, c in zip(seeds, ep, cens, strict=True)]
        row = {
            "seeds": seeds,
            "grok_epochs": [None if c else e for e, c in zip(ep, cens, strict=True)],
            "censored": cens,
            "budget": [epochs[(v, s)] for s in seeds],
            "median": _median(vals, cens),
        }
        if v != "baseline":
            # pairs where both grokked; a censored member only bounds the ratio, so it is counted, not used
            paired = [s for s, c in zip(seeds, cens, strict=True) if not c and s in base and base[s] > 0]
            row["paired_seeds"] = paired
            row["censored_pairs"] = sum(1 for s, c in zip(seeds, cens, strict=True) if s in base and (c or base[s] < 0))
            row.update(paired_speedup([base[s] for s in paired], [grok[(v, s)] for s in paired]))
            claim = PAGE_SPEEDUP.get(v)
            row["page_speedup"] = claim
            lo, hi = row["ci95"]
            row["page_claim_in_ci"] = None if claim is None or lo is None else bool(lo <= claim <= hi)
        else:
            row["page_grok_epoch"] = PAGE_BASELINE_EPOCH
        out[v] = row
    return out


def collect(runs: dict[tuple[str, int], dict]) -> tuple[dict, dict]:
    """Grok epochs (-1: never) and epoch budgets per (variant, seed) from run dicts."""
    grok = {k: int(r["grok_epoch"]) for k, r in runs.items()}
    # an unfinished run (autosave) is censored at the epoch it has reached, not at its budget
    budget = {
        k: int(r["config"]["epochs"] if r["config"].get("final", True) else r["config"]["epochs_done"])
        for k, r in runs.items()
    }
    return grok, budget


def compute_used(runs: dict[tuple[str, int], dict]) -> dict:
    """Model-epochs trained and each run's wall time (members of one ensemble share theirs)."""
    cfgs = {k: r["config"] for k, r in runs.items()}
    return {
        "model_epochs": sum(int(c["epochs_done"]) for c in cfgs.values()),
        "train_seconds": {f"{v}_seed{s}": round(float(c.get("train_seconds", 0.0)), 1) for (v, s), c in cfgs.items()},
        "devices": sorted({str(c["device"]) for c in cfgs.values()}),
    }


# ---------------------------------------------------------------------------- report


def _fmt(x, digits=2):
    return "–" if x is None else f"{x:.{digits}f}"


def describe_variant(name: str) -> str:
    if name == "baseline":
        return "no probe"
    if name in STENCILS:
        return "stencil {" + ",".join(f"{k:+d}" if k else "0" for k in STENCILS[name]) + "}"
    if name == "frozen":
        return "frozen random probe, stencil {-1,0,+1}"
    if name == "hidden-l2":
        return "λ·mean(mlp_hidden²)"
    return f"baseline, weight decay {variant_overrides(name)['weight_decay']:g}"


def render_markdown(summary: dict, meta: dict) -> str:
    lines = [
        "# Seed 001 probe-stencil ablation",
        "",
        f"Generated by `{meta['command']}` (bumps.modadd.ablation). Preset {meta['preset']}, p = {meta['p']}, "
        f"λ = {meta['probe_weight']}, budget {meta['epochs']} epochs, evaluated every 10 epochs, early stop "
        f"at grok (first evaluation with train and test accuracy ≥ 99%). Seeds are model-init seeds "
        f"{meta['model_seeds']} (index 0 = the preset's seed); data split fixed (data_seed {meta['data_seed']}).",
        "",
        "Speedup = geometric mean over seeds of baseline/variant grok epoch (paired by seed), bootstrap "
        "95% CI over seeds, exact two-sided sign-flip p-value (with n seeds the smallest possible p is "
        "2/2ⁿ). `>N`: never grokked within the budget (censored; excluded from the speedup and counted).",
        *(
            []
            if (meta["p"], meta["preset"]) == (113, "tl-demo")
            else ["", "The page's numbers are for tl-demo at p = 113; at this configuration they are not comparable."]
        ),
        "",
        "| variant | what | grok epoch per seed | median | speedup [95% CI] | p | page claims | claim in CI |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for v, r in summary.items():
        per = ", ".join(
            f">{b}" if c else str(e) for e, c, b in zip(r["grok_epochs"], r["censored"], r["budget"], strict=True)
        )
        med = "not reached" if r["median"] is None else f"{r['median']:.0f}"
        if v == "baseline":
            lines.append(f"| baseline | no probe | {per} | {med} | 1 | – | grok at {r['page_grok_epoch']} | – |")
            continue
        sp = "–" if r["speedup"] is None else f"{r['speedup']:.2f}× [{_fmt(r['ci95'][0])}, {_fmt(r['ci95'][1])}]"
        if r["censored_pairs"]:
            sp += f" ({r['censored_pairs']} censored)"
        claim = "–" if r["page_speedup"] is None else f"{r['page_speedup']:.2f}×"
        inci = {None: "–", True: "yes", False: "no"}[r["page_claim_in_ci"]]
        lines.append(
            f"| {v} | {describe_variant(v)} | {per} | {med} | {sp} | {_fmt(r['p_value'], 3)} | {claim} | {inci} |"
        )
    if meta.get("unfinished"):
        lines += ["", f"**Still training** (censored at the epoch reached, `>N`): {', '.join(meta['unfinished'])}."]
    if "compute" in meta:
        c = meta["compute"]
        secs = list(c["train_seconds"].values())
        lines += [
            "",
            f"Compute: {c['model_epochs']:,} model-epochs on {', '.join(c['devices'])}; wall time per run "
            f"{min(secs) / 60:.0f}–{max(secs) / 60:.0f} min (the members of one ensemble share theirs; "
            "per run in the .json).",
        ]
    lines += [
        "",
        f"![grok epoch per variant]({meta['figure']})",
        "",
        f"Versions: {', '.join(f'{k} {v}' for k, v in meta['versions'].items())}.",
        "",
    ]
    return "\n".join(lines)


def plot_summary(summary: dict, path: str | Path, title: str, show_claims: bool = True) -> Path:
    """Grok epoch per variant, a dot per seed (censored: open triangle at the budget), page claim as ×."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(summary), 4.0), constrained_layout=True)
    for x, (v, r) in enumerate(summary.items()):
        n = len(r["seeds"])
        jitter = np.linspace(-0.15, 0.15, n) if n > 1 else [0.0]
        for j, e, c, b in zip(jitter, r["grok_epochs"], r["censored"], r["budget"], strict=True):
            if c:
                ax.plot(x + j, b, marker="^", mfc="none", color="C3", ls="none")
            else:
                ax.plot(x + j, e, marker="o", color="C0", ls="none", alpha=0.8)
        if r["median"] is not None:
            ax.plot([x - 0.25, x + 0.25], [r["median"]] * 2, color="k", lw=1.5)
        claim = (
            PAGE_BASELINE_EPOCH
            if v == "baseline"
            else (PAGE_BASELINE_EPOCH / PAGE_SPEEDUP[v] if v in PAGE_SPEEDUP else None)
        )
        if claim is not None and show_claims:
            ax.plot(x, claim, marker="x", color="C1", ms=9, ls="none")
    ax.set_xticks(range(len(summary)), list(summary), rotation=30)
    ax.set_ylabel("grok epoch (train & test acc ≥ 99%)")
    ax.set_title(title)
    ax.plot([], [], "o", color="C0", label="seed")
    ax.plot([], [], "-", color="k", label="median")
    ax.plot([], [], "^", mfc="none", color="C3", label="not grokked (budget)")
    if show_claims:
        ax.plot([], [], "x", color="C1", label="seed 001 claim (p=113)")
    ax.legend(fontsize=7, loc="best")
    return save_png(fig, path)


def write_report(summary: dict, meta: dict, report: str | Path, settings: dict | None = None) -> list[Path]:
    """Write REPORT.md, REPORT.json and REPORT.png (each atomically).

    Parameters
    ----------
    summary : dict
        As :func:`summarize` returns.
    meta : dict
        The command, preset, configs, versions and compute of the ablation.
    report : str or Path
        The path without suffix.
    settings : dict, optional
        What the report was made from (:mod:`bumps.io.provenance`), recorded in all three files.

    Returns
    -------
    list of pathlib.Path
        The Markdown, JSON and PNG files.
    """

    report = Path(report)
    png, md, js = report.with_suffix(".png"), report.with_suffix(".md"), report.with_suffix(".json")
    meta = {**meta, "figure": png.name}
    plot_summary(
        summary,
        png,
        f"{meta['preset']} p={meta['p']}: grok epoch per variant",
        show_claims=meta["p"] == 113 and meta["preset"] == "tl-demo",
    )
    text = render_markdown(summary, meta)
    if settings is not None:
        stamp_png(png, settings)
        text = stamp_markdown(text, settings)
    atomic_write(md, lambda fh: fh.write(text.encode()))
    payload = {"meta": meta, "variants": summary, **({"bumps_settings": settings} if settings is not None else {})}
    atomic_write(js, lambda fh: fh.write((json.dumps(payload, indent=1) + "\n").encode()))
    return [md, js, png]
