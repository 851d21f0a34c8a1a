"""Run-file size of `bumps grok` at p = 113: the neuron table's own cadence and dtype vs every evaluation.

Trains the nanda preset at p = 113 for ``--epochs`` epochs (evaluations every 100) three times, with the
neuron table at every evaluation (``neuron_every=0``, the layout before the setting existed, now stored
once), every 200 epochs (the default) and every 200 in float16, and measures each file. Its size is
``fixed + per_eval · evaluations + per_table · tables + 8 · epochs`` (the per-epoch training loss);
``per_table`` is the table's bytes, ``per_eval`` the other eval-cadence series' (twice: stacked and in the
resume records), ``fixed`` (weights, optimizer, checkpoint-free analysis) the rest of the default file, and
the size of a 25k-epoch run at each setting is projected from those parts. Prints measured sizes, the projection
and the ratio of the default's projected size to the every-evaluation baseline's.

    .venv/bin/python benchmarks/bench_runfile.py [--epochs 400]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bumps.modadd.model import ModAddConfig  # noqa: E402
from bumps.modadd.train import EVAL_KEYS, train  # noqa: E402

TARGET_EPOCHS = 25_000
GOAL_MB = 30.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=400, help="epochs trained per setting (a multiple of 200)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    settings = {
        "every evaluation": dict(neuron_every=0),
        "default (200)": {},
        "200, float16": dict(neuron_dtype="float16"),
    }
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, extra in settings.items():
            cfg = ModAddConfig.from_preset("nanda", epochs=args.epochs, checkpoint_every=0, **extra)
            path = Path(tmp) / "run.pt"
            run = train(cfg, path)
            table = run["neuron_freq"][0]
            rows[name] = dict(
                bytes=path.stat().st_size,
                evals=len(run["step"]),
                tables=len(run["neuron_step"]),
                per_table=table.numel() * table.element_size(),
                cadence=cfg.neuron_every or cfg.eval_every,
                per_eval=2 * sum(run[k].numel() * run[k].element_size() for k in EVAL_KEYS) / len(run["step"]),
            )
    # per evaluation besides the table: the eval-cadence series, stacked and again in the resume records
    per_eval = rows["default (200)"]["per_eval"]
    b = rows["default (200)"]
    fixed = b["bytes"] - b["tables"] * b["per_table"] - per_eval * b["evals"] - 8 * args.epochs
    evals_25k = TARGET_EPOCHS // 100 + 1
    print(f"p = 113, nanda preset, {args.epochs} epochs, evaluations every 100 epochs")
    print(f"{'neuron table':<18} {'file MB':>8} {'tables':>7} {'table kB':>9} {'projected 25k MB':>17}")
    projected = {}
    for name, r in rows.items():
        tables_25k = TARGET_EPOCHS // r["cadence"] + 1
        size = fixed + per_eval * evals_25k + r["per_table"] * tables_25k + 8 * TARGET_EPOCHS
        projected[name] = size
        print(f"{name:<18} {r['bytes'] / 1e6:>8.2f} {r['tables']:>7} {r['per_table'] / 1e3:>9.1f} {size / 1e6:>17.1f}")
    print(f"fixed part {fixed / 1e6:.2f} MB, {per_eval / 1e3:.2f} kB per evaluation besides the table")
    ratio = projected["default (200)"] / projected["every evaluation"]
    ok = "meets" if projected["default (200)"] / 1e6 <= GOAL_MB else "misses"
    print(f"default / every-evaluation projected size: {ratio:.3f}x; the default {ok} the {GOAL_MB:.0f} MB goal")


if __name__ == "__main__":
    main()
