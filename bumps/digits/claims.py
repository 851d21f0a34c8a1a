"""Seed 002's claim about 5-digit addition, measured: a phase change per answer digit, and competition.

The rules below were written before the 8-seed study ran. They were not written before every
look at the data: the engineer who built the task had run seed 0 for 6,000 steps and seen the
carry digit fall from the start without a phase change (docs/tasks/digits.md). Every event comes
from :func:`bumps.detect.events.find_events` at its defaults, on each answer digit's loss
(``loss_per_digit [T, digit]``, digit 0 the carry) and on the total loss. ``WINDOW`` is the
coincidence window, a fraction of the run.

* **(a)** A seed has "a phase change for each digit" when all 6 answer digits have a falling
  phase change and their steepest steps (each digit's largest) are pairwise more than the window
  apart. Statistic: the fraction of seeds that do, with its exact (Clopper–Pearson) interval.
* **(b)** The total loss's drops coincide with digit phase changes: the fraction of the total
  loss's falling phase changes whose steepest step is within the window of some digit's.
* **(c)** Competition: when a digit's phase change happens, another digit's loss rises and falls
  back (a ``bump``) with its peak within the window, more often than at random times. Null: every
  digit's bump peaks circularly shifted in time, per seed, by a uniform shift in [T/4, 3T/4]
  (999 draws); one-sided p = (1 + #{null ≥ observed}) / (1 + draws).
* **(d)** The knockout test of one such event per seed is not built yet.
"""

from __future__ import annotations

import numpy as np

from bumps.detect.events import find_events
from bumps.stats import STAT, Claim, ClaimSpec, Clause, Condition, Rule, above, below, clopper_pearson

DIGITS = ("carry", "ten-thousands", "thousands", "hundreds", "tens", "units")  # answer positions, first to last
WINDOW = 0.02  # coincidence window, fraction of the run
NULL_DRAWS = 999

DIGITS_CLAIMS = {
    "D-a": ClaimSpec(
        "5-digit addition has a phase change for each digit (seed 002)",
        Rule(above(0.5), below(0.5), note="exact binomial interval over seeds"),
        "fraction of seeds where all 6 answer digits have their own falling phase change, pairwise "
        f"more than {WINDOW:.0%} of the run apart",
    ),
    "D-b": ClaimSpec(
        "the total loss's bumpy drops are the digits' phase changes",
        Rule(above(0.5), below(0.5), note="exact binomial interval over the total loss's phase changes"),
        f"fraction of the total loss's falling phase changes within {WINDOW:.0%} of the run of a digit's",
    ),
    "D-c": ClaimSpec(
        "when one digit's phase change happens, another digit's loss bumps (competition)",
        Rule(
            Condition((Clause("p", "value", "<=", 0.05), Clause(STAT, "value", ">", ("null", "value")))),
            Condition((Clause("p", "value", ">", 0.05),)),
            names={"p": "the time-shift null's p", "null": "the null mean"},
        ),
        f"fraction of digit phase changes with another digit's bump peaking within {WINDOW:.0%} of the run",
    ),
}


def seed_events(run: dict) -> dict:
    """The events one seed's claims read.

    Parameters
    ----------
    run : dict
        A ``bumps digits`` run (kind ``"recorded"`` with ``loss_per_digit [T, 6]`` and ``loss [T]``).

    Returns
    -------
    dict
        ``steps`` (the run's length in steps), ``digit_pc`` (per digit: the steepest step of its
        largest falling phase change, or None), ``digit_pc_all`` (per digit: every falling phase
        change's steepest step), ``digit_bumps`` (per digit: bump peak steps) and ``total_pc``
        (the total loss's falling phase changes' steepest steps).
    """
    step = np.asarray(run["step"])
    per_digit = np.asarray(run["loss_per_digit"], dtype=np.float64)
    events = find_events(per_digit, step, name="loss_per_digit")
    digit_pc, digit_pc_all, digit_bumps = [], [], []
    for d in range(per_digit.shape[1]):
        falls = [e for e in events if e.index == (d,) and e.kind == "phase_change" and e.size < 0]
        digit_pc_all.append([int(step[e.peak]) for e in falls])
        digit_pc.append(int(step[max(falls, key=lambda e: -e.size).peak]) if falls else None)
        digit_bumps.append([int(step[e.peak]) for e in events if e.index == (d,) and e.kind == "bump"])
    total = find_events(np.asarray(run["loss"], dtype=np.float64), step, name="loss")
    return {
        "steps": int(step[-1] - step[0]),
        "digit_pc": digit_pc,
        "digit_pc_all": digit_pc_all,
        "digit_bumps": digit_bumps,
        "total_pc": [int(step[e.peak]) for e in total if e.kind == "phase_change" and e.size < 0],
    }


def _own_phase_changes(ev: dict) -> bool:
    times = ev["digit_pc"]
    if any(t is None for t in times):
        return False
    w = WINDOW * ev["steps"]
    return all(abs(a - b) > w for i, a in enumerate(times) for b in times[i + 1 :])


def _competition_hits(ev: dict, shift: np.ndarray | None = None) -> tuple[int, int]:
    """(phase changes with another digit's bump within the window, phase changes); bumps shifted per digit."""
    w, n = WINDOW * ev["steps"], ev["steps"]
    hits = total = 0
    for d, times in enumerate(ev["digit_pc_all"]):
        for t in times:
            total += 1
            others = [
                (np.asarray(b) + (0 if shift is None else shift[j])) % max(n, 1)
                for j, b in enumerate(ev["digit_bumps"])
                if j != d
            ]
            hits += any(np.any(np.abs(o - t) <= w) for o in others if len(o))
    return hits, total


def digits_claims(events: list[dict], seed: int = 0) -> tuple[list[Claim], dict]:
    """The claim rows (a)–(c) and the tables behind them, from :func:`seed_events` of each seed.

    Parameters
    ----------
    events : list of dict
        One :func:`seed_events` per seed (independent models).
    seed : int, default 0
        Seeds the null's time shifts.

    Returns
    -------
    rows : list of Claim
        D-a, D-b, D-c.
    tables : dict
        ``per_digit_seeds`` (per digit: seeds with a falling phase change), ``order`` (per seed:
        digits sorted by their steepest step), ``null`` (the competition null's draws).
    """
    n = len(events)
    own = sum(_own_phase_changes(ev) for ev in events)
    a = DIGITS_CLAIMS["D-a"].judge("D-a", clopper_pearson(own, n), n)
    near = total_pc = 0
    for ev in events:
        w = WINDOW * ev["steps"]
        digit_times = [t for times in ev["digit_pc_all"] for t in times]
        for t in ev["total_pc"]:
            total_pc += 1
            near += any(abs(t - d) <= w for d in digit_times)
    b = DIGITS_CLAIMS["D-b"].judge("D-b", clopper_pearson(near, total_pc) if total_pc else (None, None, None), total_pc)
    hits, pcs = map(sum, zip(*(_competition_hits(ev) for ev in events), strict=True)) if events else (0, 0)
    rng = np.random.default_rng(seed)
    null = []
    for _ in range(NULL_DRAWS):
        h = 0
        for ev in events:
            shifts = rng.uniform(0.25, 0.75, len(ev["digit_bumps"])) * ev["steps"]
            h += _competition_hits(ev, shifts)[0]
        null.append(h / pcs if pcs else np.nan)
    observed = hits / pcs if pcs else None
    p = (1 + sum(x >= observed for x in null)) / (1 + NULL_DRAWS) if pcs else None
    values = {
        STAT: clopper_pearson(hits, pcs) if pcs else (None, None, None),
        "p": (p, p, p),
        "null": (float(np.mean(null)) if pcs else None,) * 3,
    }
    c = DIGITS_CLAIMS["D-c"].judge("D-c", values, pcs)
    tables = {
        "per_digit_seeds": {DIGITS[d]: sum(ev["digit_pc"][d] is not None for ev in events) for d in range(6)},
        "order": [
            [
                DIGITS[d]
                for d in sorted((d for d in range(6) if ev["digit_pc"][d] is not None), key=ev["digit_pc"].__getitem__)
            ]
            for ev in events
        ],
        "competition": {"observed": observed, "null_mean": values["null"][0], "p": p, "phase_changes": pcs},
    }
    return [a, b, c], tables


def report_markdown(rows: list[Claim], tables: dict, events: list[dict], command: str) -> str:
    """The claims as Markdown: the per-seed phase-change table, the digit order, the claim rows."""
    out = [
        "# 5-digit addition: a phase change per digit, and competition",
        "",
        f"Made by `{command}`. Events: `bumps.detect.find_events` at its defaults on `loss_per_digit` and `loss`.",
        "The rules were written before this study ran, after a 6,000-step look at seed 0 (see the module docstring",
        "of `bumps.digits.claims`). Claim (d), the knockout test, is not built yet.",
        "",
        "Steepest step of each answer digit's largest falling phase change (– none). The carry digit falls from",
        "the first steps, with no plateau before it, so it has no phase change by the detector's definition; on",
        "some seeds the detector also misses drops that the figure shows (e.g. the tens digit). So (a) is bounded",
        "by the detector's recall on per-digit minibatch losses, which no benchmark measures yet.",
        "",
        "| seed | " + " | ".join(DIGITS) + " | total-loss phase changes |",
        "|---|" + "---|" * (len(DIGITS) + 1),
    ]
    for s, ev in enumerate(events):
        cells = ["–" if t is None else str(t) for t in ev["digit_pc"]]
        out.append(f"| {s} | " + " | ".join(cells) + f" | {', '.join(map(str, ev['total_pc'])) or '–'} |")
    out += ["", "Digits in the order of their phase changes, per seed:", ""]
    out += [f"* seed {s}: {' → '.join(o) or '–'}" for s, o in enumerate(tables["order"])]
    comp = tables["competition"]
    out += [
        "",
        f"Competition null: observed {comp['observed']}, time-shift null mean {comp['null_mean']}, p = {comp['p']} "
        f"({comp['phase_changes']} digit phase changes).",
        "",
        "| claim | statement | statistic | value | 95% CI | n | rule | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ci = "–" if r.ci_low is None else f"[{r.ci_low}, {r.ci_high}]"
        out.append(
            f"| {r.id} | {r.statement} | {r.statistic} | {r.value} | {ci} | {r.n_seeds} | {r.rule} | {r.verdict} |"
        )
    return "\n".join(out) + "\n"


def write_report(run_paths: list, out_dir, command: str, force: bool = False) -> list:
    """Measure the claims on ``bumps digits`` runs and write ``digits_claims.md`` and ``.json`` into ``out_dir``.

    Parameters
    ----------
    run_paths : list of path
        One run file per seed (loaded with weights_only).
    out_dir : path
        The folder (made if missing); an existing report made from other runs is not replaced unless
        ``force`` (:func:`bumps.io.provenance.check_replace`).
    command : str
        The command line, recorded in the report.
    force : bool, default False
        Replace a report made from other settings.

    Returns
    -------
    list of pathlib.Path
        The two files written.
    """
    import json
    from dataclasses import asdict
    from pathlib import Path

    from bumps.io.provenance import check_replace, stamp_markdown
    from bumps.io.runfile import atomic_write, safe_load

    paths = [Path(p) for p in run_paths]
    settings = {"runs": [p.name for p in paths], "window": WINDOW, "null_draws": NULL_DRAWS}
    out = Path(out_dir)
    for name in ("digits_claims.md", "digits_claims.json"):
        check_replace(out / name, settings, force=force)
    events = [seed_events(safe_load(p)) for p in paths]
    rows, tables = digits_claims(events)
    md = stamp_markdown(report_markdown(rows, tables, events, command), settings)
    data = {"bumps_settings": settings, "command": command, "claims": [asdict(r) for r in rows], "tables": tables}
    data["seeds"] = events
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (("digits_claims.md", md), ("digits_claims.json", json.dumps(data, indent=1, default=str))):
        written.append(atomic_write(out / name, lambda fh, t=text: fh.write(t.encode())))
    return written
