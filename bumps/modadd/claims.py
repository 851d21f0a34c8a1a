"""The mod-add half of `bumps claims`: per-seed table, bump classes and knockout verdicts.

Built from existing mod-add run files (one per seed; nothing is retrained) and, when given,
the knockout records of :func:`bumps.modadd.knockout.run_knockouts`. Every rule that turns a
statistic into a verdict is fixed here, before any run is read; CIs are percentile
bootstraps over seeds (or over knockout events, paired).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from bumps.errors import BumpsError
from bumps.io.runfile import load_run
from bumps.modadd.phases import INVARIANT, classify_bumps, key_bump_rates, seed_summary
from bumps.stats import STAT, Claim, ClaimSpec, Clause, Condition, Rule, above, below, boot, sign_flip_p

_KNOCKOUT_RULE = Rule(
    above(0),
    below(0, strict=False),
    note="events whose unintervened continuation loses the bump are left out",
)


def _knockout_claim(what: str) -> ClaimSpec:
    return ClaimSpec(
        f"Knocking out {what} at the peak removes the bump more often than a matched control (competition explains it)",
        _KNOCKOUT_RULE,
        "mean paired gap: control persists − competitor persists",
    )


# Every claim's statement, statistic and verdict rule, fixed before any run file is read.
MODADD_CLAIMS: dict[str, ClaimSpec] = {
    "M0": ClaimSpec(
        "The nanda preset groks at p = 113 (train and test accuracy >= 99%)",
        Rule(
            Condition((Clause(STAT, "value", "==", 1),), note="every seed groks"),
            Condition((Clause(STAT, "value", "<", 0.5),), note="fewer than half do"),
            names={STAT: "the fraction"},
        ),
        "fraction of seeds",
    ),
    "M1": ClaimSpec(
        "Bumps occur on key frequencies' frame-invariant norms (W_E or W_L frequency norm)",
        Rule(above(0.5), below(0.5)),
        "fraction of seeds with a key-frequency bump",
    ),
    "M2": ClaimSpec(
        "Most frequency-norm bumps are the trivial memorise-then-clean-up shape of non-key frequencies",
        Rule(above(0.5), below(0.5)),
        "mean fraction of W_E/W_L frequency-norm bumps that are trivial",
    ),
    "M3": ClaimSpec(
        "Key-frequency bumps are more common per neuron (per-unit) than in the frame-invariant norms",
        Rule(above(0), below(0)),
        "mean per seed of (key bumps per neuron-frequency curve − key bumps per W_E/W_L norm curve)",
    ),
    "M4": _knockout_claim("competitor neurons"),
    "M5": _knockout_claim("another key frequency (from W_E)"),
}


def _per_seed(rows: list[dict], n_keys: int, d_mlp: int) -> dict:
    inv = [r for r in rows if r["series"] in INVARIANT]
    neuron_rate, invariant_rate = key_bump_rates(rows, n_keys, d_mlp)
    return {
        "neuron_key_rate": neuron_rate,
        "invariant_key_rate": invariant_rate,
        "invariant_key_bumps": sum(r["key"] for r in inv),
        "invariant_bumps": len(inv),
        "trivial_fraction": (sum(r["trivial"] for r in inv) / len(inv)) if inv else float("nan"),
        "neuron_key_bumps": sum(r["key"] for r in rows if r["series"] == "neuron_freq"),
        "neuron_bumps": sum(r["series"] == "neuron_freq" for r in rows),
    }


def _paired_gap(records: list[dict]) -> tuple[list[float], list[float]]:
    """Per event: control persists − competitor persists, and competitor − control drop ratio.

    An event whose unintervened continuation (role ``none``, when run) loses the bump is left out:
    there is no bump left to explain."""
    by: dict[tuple, dict] = {}
    for r in records:
        key = (r["run"], r["series"], r["freq"], r["unit"], r["peak_step"])
        by.setdefault(key, {})[r["role"]] = r
    gaps, drops = [], []
    for ev in by.values():
        if "competitor" in ev and "control" in ev and ev.get("none", {}).get("persists", True):
            gaps.append(float(ev["control"]["persists"]) - float(ev["competitor"]["persists"]))
            drops.append(ev["competitor"]["drop_ratio"] - ev["control"]["drop_ratio"])
    return gaps, drops


def modadd_claims(run_paths: list[str | Path], knockouts: list[dict] | None = None) -> dict:
    """The mod-add section: ``seeds`` (one row per run), ``claims`` and the ``knockouts`` records."""
    if not run_paths:
        raise BumpsError("no mod-add run files given; train some with bumps grok --seeds 0,1,2,3,4")
    seeds, per = [], []
    for path in run_paths:
        run = load_run(path, kind="modadd")
        rows = classify_bumps(run)
        s = seed_summary(run)
        s["run"] = str(path)
        s.update(_per_seed(rows, len(s["key_freqs"]), int(run["neuron_freq"].shape[1])))
        seeds.append(s)
        per.append(s)
    n = len(per)
    has_key_bump = [float(s["invariant_key_bumps"] > 0) for s in per]
    trivial = [s["trivial_fraction"] for s in per]
    diff = [s["neuron_key_rate"] - s["invariant_key_rate"] for s in per]
    grokked = [float(s["grok_epoch"] >= 0) for s in per]
    # M0: the fraction of seeds that grok is 1 exactly when every seed does (min(grokked) == 1)
    claims: list[Claim] = [
        MODADD_CLAIMS[cid].judge(cid, boot(x), n)
        for cid, x in (("M0", grokked), ("M1", has_key_bump), ("M2", trivial), ("M3", diff))
    ]
    drop_gaps: dict[str, dict] = {}
    for series, cid in ((("neuron_freq",), "M4"), (INVARIANT, "M5")):
        recs = [r for r in knockouts or [] if r["series"] in series]
        gaps, drops = _paired_gap(recs)
        if not gaps:
            continue
        # reported beside the verdict, not part of its rule (chosen after the first runs)
        drop_gaps[cid] = {
            "per_event": drops,
            "mean": float(np.mean(drops)),
            "sign_flip_p": sign_flip_p(np.asarray(drops)),
        }
        claims.append(MODADD_CLAIMS[cid].judge(cid, boot(gaps), len(gaps)))
    return {
        "seeds": seeds,
        "claims": [asdict(c) for c in claims],
        "knockouts": knockouts or [],
        "drop_ratio_gaps": drop_gaps,
    }


def render_modadd(section: dict) -> list[str]:
    """Markdown lines of the mod-add section."""
    fmt = lambda x: "–" if x is None else f"{x:.3g}"  # noqa: E731
    lines = [
        "",
        "## Mod-add grokking (nanda preset, from run files)",
        "",
        "| claim | statement | statistic | value [95% CI] | n | rule | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in section["claims"]:
        lines.append(
            f"| {c['id']} | {c['statement']} | {c['statistic']} | {fmt(c['value'])} "
            f"[{fmt(c['ci_low'])}, {fmt(c['ci_high'])}] | {c['n_seeds']} | {c['rule']} | "
            f"**{c['verdict']}** |"
        )
    lines += [
        "",
        "Grok epoch −1: not grokked by the epoch it stopped at (stop reason in brackets: `epochs` = the "
        "budget, `interrupted` = an autosave of a run still in progress).",
        "",
        "| seed | grok epoch | test loss < 1e-6 | stopped at | key freqs (≥85% rule) | official rule "
        "| single-freq neurons | phases (mem. end / cleanup start / end) | W_E+W_L bumps (key, trivial) "
        "| neuron bumps (key) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in section["seeds"]:
        ph = s["phases"]
        lines.append(
            f"| {s['seed']} | {s['grok_epoch']} | {s['test_loss_below_1e6_epoch']} | {s['epochs_done']} "
            f"({s['stop_reason']}) | "
            f"{s['key_freqs']} | {s['key_freqs_official'] if not s['key_rules_agree'] else 'same'} | "
            f"{100 * s['single_freq_neuron_fraction']:.0f}% | {ph.get('memorisation_end', '–')} / "
            f"{ph.get('cleanup_start', '–')} / {ph.get('cleanup_end', '–')} | {s['invariant_bumps']} "
            f"({s['invariant_key_bumps']}, {round(s['trivial_fraction'] * s['invariant_bumps'])}) | "
            f"{s['neuron_bumps']} ({s['neuron_key_bumps']}) |"
        )
    for cid, d in section.get("drop_ratio_gaps", {}).items():
        lines += [
            "",
            f"{cid}, drop ratio competitor − control per event (not the verdict's statistic): "
            f"{', '.join(f'{x:.2f}' for x in d['per_event'])}; mean {d['mean']:.2f}, exact sign-flip "
            f"p = {d['sign_flip_p']:.3g}.",
        ]
    if section["knockouts"]:
        lines += [
            "",
            "| run | series | freq | unit | peak | role | removed | persists | drop ratio |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in section["knockouts"]:
            lines.append(
                f"| {Path(r['run']).stem} | {r['series']} | {r['freq']} | {r['unit']} | {r['peak_step']} | "
                f"{r['role']} | {r['neurons'] or r['freqs'] or '–'} | {r['persists']} | "
                f"{r['drop_ratio']:.2f} |"
            )
    return lines
