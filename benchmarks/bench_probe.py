"""Per-epoch cost of seed 001's probe regulariser at p = 113 (tl-demo): baseline vs each stencil.

Times `bumps.modadd.train.train` for EPOCHS epochs (progress measures only at the start and end, no
checkpoints) for the baseline and the probe variants, and prints seconds per epoch and the ratio.
A variant may be listed more than once (interleave them on a shared machine); the ratio uses each
variant's fastest repeat, the least disturbed by other load.

    .venv/bin/python benchmarks/bench_probe.py [--epochs 30] [--variants baseline,full,k0,baseline,full]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bumps.modadd.ablation import variant_overrides  # noqa: E402
from bumps.modadd.model import ModAddConfig  # noqa: E402
from bumps.modadd.train import train  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--variants", default="baseline,full,k0,baseline,full")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    per: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, v in enumerate(args.variants.split(",")):
            cfg = ModAddConfig.from_preset(
                "tl-demo",
                epochs=args.epochs,
                eval_every=10**9,
                checkpoint_every=0,
                device=args.device,
                **variant_overrides(v),
            )
            t0 = time.perf_counter()
            train(cfg, Path(tmp) / f"{v}_{i}.pt", autosave_every=0)
            per.setdefault(v, []).append((time.perf_counter() - t0) / args.epochs)
            print(f"{v}: {per[v][-1] * 1e3:.1f} ms/epoch ({args.epochs} epochs, incl. 2 evals)", flush=True)
    for v, s in per.items():
        if v != "baseline" and "baseline" in per:
            print(
                f"{v}: fastest {min(s) * 1e3:.0f} ms/epoch = {min(s) / min(per['baseline']):.2f}x baseline "
                f"(fastest {min(per['baseline']) * 1e3:.0f} ms)"
            )


if __name__ == "__main__":
    main()
