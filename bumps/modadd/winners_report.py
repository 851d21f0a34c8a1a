"""Claims W1, W2, W3 and RL from finished runs: initial phase alignment vs each neuron's final frequency, and the
restricted loss after grokking (no training: each run's config, final neuron table and final losses).

One row per run (:func:`bumps.modadd.winners.predict_winners`), kept in the report's JSON by the run's
configuration hash (:func:`bumps.modadd.ledger.config_hash`), so a later invocation on other run files
adds rows without the earlier files (run files do not survive a fresh checkout).

Verdicts read only the *registered* runs (registry family ``modadd``, rows W1, W2 and RL): the nanda preset at
p = 113 and its defaults, weight decay 1, model seed = split seed in 5..14, early stop 1000 epochs after
grok. Every other row (other seeds, other weight decays) is summarised with the same statistics in an
*exploratory* line, with no verdict.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bumps.modadd.ledger import config_hash
from bumps.modadd.model import ModAddConfig
from bumps.modadd.phases import classify_bumps
from bumps.modadd.train import config_fields
from bumps.modadd.winners import initial_maps, predict_winners, tie_auc, tie_margins

REGISTERED_SEEDS = range(5, 15)


@dataclass(frozen=True)
class WinnerRow:
    """One run's prediction and what it was trained with.

    Attributes
    ----------
    run : str
        The run file's name.
    config_hash : str
        The configuration's ledger hash (the row's key).
    seed, data_seed : int
        Model and split seed.
    weight_decay : float
        AdamW weight decay.
    registered : bool
        Whether the run is one of the registered set (module docstring).
    key_freqs : list of int
        Final key frequencies.
    neurons : int
        Neurons predicted (final frequency a key frequency).
    accuracy_alignment, accuracy_norm, chance : float
        As :class:`bumps.modadd.winners.WinnerPrediction`.
    chance_independent : float
        As :class:`bumps.modadd.winners.WinnerPrediction` (claim W1i; nan in rows written before it).
    restricted_loss, full_loss : float
        At the run's last epoch, over all p² pairs: the restricted loss (``run["restricted_loss"][-1]``) and
        the full loss ``(n_train·train_loss + n_test·test_loss) / p²`` (nan: not recorded).
    bumping_neurons : int
        Neurons with a key-frequency share bump (:func:`bumps.modadd.phases.classify_bumps`).
    tie_auc : float
        :func:`bumps.modadd.winners.tie_auc` of the tie margins against bumping (claim W3; nan: undefined).
    """

    run: str
    config_hash: str
    seed: int
    data_seed: int
    weight_decay: float
    registered: bool
    key_freqs: list[int]
    neurons: int
    accuracy_alignment: float
    accuracy_norm: float
    chance: float
    restricted_loss: float = math.nan
    full_loss: float = math.nan
    bumping_neurons: int = 0
    tie_auc: float = math.nan
    chance_independent: float = math.nan


def full_loss(run: dict, cfg: ModAddConfig) -> float:
    """The loss over all p² pairs at the last evaluation, from the recorded train and test loss."""
    n_train = int(cfg.train_frac * cfg.p * cfg.p)
    total = cfg.p * cfg.p
    return float((n_train * run["train_loss"][-1] + (total - n_train) * run["test_loss"][-1]) / total)


def is_registered(cfg: ModAddConfig) -> bool:
    """The registered set: nanda defaults at p = 113, weight decay 1, seed = split seed in 5..14, stop 1000."""
    want = ModAddConfig.from_preset("nanda", seed=cfg.seed, data_seed=cfg.seed, stop_after_grok=1000)
    same = config_hash(cfg) == config_hash(want)
    # the hash ignores the neuron table's cadence, but W3's bump detection reads it: the default's, as registered
    return same and cfg.seed in REGISTERED_SEEDS and cfg.neuron_every == want.neuron_every


def row_of(path: str | Path, run: dict) -> WinnerRow:
    """The row of one loaded mod-add run."""
    cfg = ModAddConfig(**config_fields(run["config"]))
    initial = initial_maps(run)  # the epoch-0 weights, regenerated once for both uses
    w = predict_winners(run, initial)
    bumping = np.zeros(cfg.d_mlp, dtype=bool)
    for b in classify_bumps(run):
        if b["series"] == "neuron_freq" and b["key"]:
            bumping[b["unit"]] = True
    return WinnerRow(
        Path(path).name,
        config_hash(cfg),
        int(cfg.seed),
        int(cfg.data_seed),
        float(cfg.weight_decay),
        is_registered(cfg),
        list(w.key_freqs),
        w.neurons,
        w.accuracy_alignment,
        w.accuracy_norm,
        w.chance,
        float(run["restricted_loss"][-1]) if "restricted_loss" in run and len(run["restricted_loss"]) else math.nan,
        full_loss(run, cfg),
        int(bumping.sum()),
        tie_auc(tie_margins(run, initial), bumping),
        w.chance_independent,
    )


def merge(old: list[WinnerRow], new: list[WinnerRow]) -> list[WinnerRow]:
    """``old`` with ``new`` added; a row of the same configuration hash is replaced. Sorted by seed, then λ."""
    rows = {r.config_hash: r for r in old}
    rows.update({r.config_hash: r for r in new})
    return sorted(rows.values(), key=lambda r: (not r.registered, r.seed, r.weight_decay))


def load_rows(path: Path) -> list[WinnerRow]:
    """The rows of an earlier report JSON (none if the file does not exist)."""
    if not path.exists():
        return []
    return [WinnerRow(**r) for r in json.loads(path.read_text())["rows"]]


def statistics(rows: list[WinnerRow]) -> dict:
    """Per-run differences and their t-intervals: ``W1`` accuracy − chance, ``W2`` alignment − norm accuracy,
    ``RL`` log(restricted) − log(full); each over the runs where it is defined (its ``n``)."""
    from bumps.stats import t_interval

    use = [r for r in rows if r.neurons > 0 and math.isfinite(r.accuracy_alignment)]
    losses = [r for r in rows if r.restricted_loss > 0 and r.full_loss > 0]
    ties = [r for r in rows if math.isfinite(r.tie_auc)]
    out = {}
    for cid, diffs in (
        ("W1", [r.accuracy_alignment - r.chance for r in use]),
        ("W1i", [r.accuracy_alignment - r.chance_independent for r in use if math.isfinite(r.chance_independent)]),
        ("W2", [r.accuracy_alignment - r.accuracy_norm for r in use]),
        ("RL", [math.log(r.restricted_loss) - math.log(r.full_loss) for r in losses]),
        ("W3", [r.tie_auc - 0.5 for r in ties]),
    ):
        out[cid] = dict(diffs=diffs, n=len(diffs), interval=list(t_interval(diffs)) if len(diffs) >= 2 else None)
    out["n"] = max(out[c]["n"] for c in ("W1", "W1i", "W2", "RL", "W3"))
    return out


def claims(rows: list[WinnerRow]) -> list:
    """Registry rows W1, W2, RL and W3 judged on the registered runs (None for a row under 2 runs)."""
    from bumps import registry

    entries = registry.load("modadd")
    stats = statistics([r for r in rows if r.registered])
    out = []
    for cid in ("W1", "W1i", "W2", "RL", "W3"):
        iv = stats[cid]["interval"]
        out.append((entries[cid], None if iv is None else entries[cid].judge(tuple(iv), stats[cid]["n"])))
    return out


def _iv(s: dict, cid: str) -> str:
    iv = s[cid]["interval"]
    return "–" if iv is None else f"{iv[0]:+.3f} [{iv[1]:+.3f}, {iv[2]:+.3f}]"


def report_text(rows: list[WinnerRow], command: str) -> str:
    """The Markdown report."""
    lines = [
        "# Which frequency each neuron wins (claims W1, W2), and the restricted loss after grokking (RL)",
        "",
        f"Made by `{command}`, rows kept by configuration hash across invocations. Prediction: the key "
        "frequency of best initial alignment cos(2φ_k − ψ_k) (`bumps.modadd.winners`); baseline: the key "
        "frequency of largest initial |C_k|; chance Σ_k share_k².",
        "",
        "| run | seed | weight decay | registered | key frequencies | neurons | alignment | norm | chance "
        "| independence baseline | restricted loss | full loss | bumping neurons | tie AUC |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.run} | {r.seed} | {r.weight_decay:g} | {'yes' if r.registered else 'no'} | "
            f"{', '.join(map(str, r.key_freqs))} | {r.neurons} | {r.accuracy_alignment:.3f} | "
            f"{r.accuracy_norm:.3f} | {r.chance:.3f} | {r.chance_independent:.3f} | "
            f"{r.restricted_loss:.3g} | {r.full_loss:.3g} | "
            f"{r.bumping_neurons} | {r.tie_auc:.3f} |"
        )
    lines += ["", "## Claims (registered runs only)", ""]
    for entry, c in claims(rows):
        if c is None:
            n = statistics([r for r in rows if r.registered])[entry.id]["n"]
            lines.append(f"* **{entry.id}** ({entry.statement}): not measured: {n} registered run(s), 2 needed.")
        else:
            lines.append(
                f"* **{entry.id}** ({entry.statement}): {c.value:+.3f} [{c.ci_low:+.3f}, {c.ci_high:+.3f}] over "
                f"n = {c.n_seeds} runs; rule: {c.rule}; **{c.verdict}**."
            )
        if entry.status != "registered":
            lines.append(f"  Rule {entry.status}: {entry.reason}.")
    other = statistics([r for r in rows if not r.registered])
    if other["n"]:
        lines += [
            "",
            f"**Exploratory** (the {other['n']} runs outside the registered set, no verdict): accuracy − chance "
            f"{_iv(other, 'W1')}; accuracy − independence baseline {_iv(other, 'W1i')}; "
            f"alignment − norm {_iv(other, 'W2')}; log(restricted) − log(full) "
            f"{_iv(other, 'RL')} (n = {other['RL']['n']}); tie AUC − 0.5 {_iv(other, 'W3')} (n = {other['W3']['n']}) "
            "(mean [95% t-interval] over runs).",
        ]
    return "\n".join(lines) + "\n"


def write_report(rows: list[WinnerRow], command: str, report: Path) -> list[Path]:
    """Write ``report``.md and .json atomically."""
    from bumps.io.runfile import write_report_files

    judged = [
        {"id": e.id, "registry_status": e.status, **(asdict(c) if c is not None else {"verdict": "not measured"})}
        for e, c in claims(rows)
    ]
    other = statistics([r for r in rows if not r.registered])
    data = {"command": command, "claims": judged, "exploratory": other, "rows": [asdict(r) for r in rows]}
    return write_report_files(report, report_text(rows, command), data)
