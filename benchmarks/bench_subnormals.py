"""Per-epoch cost of `bumps.modadd.train.train_many` with subnormal gradients, flushed (its default) vs not.

Late in a grokking run the float32 gradient of the logits holds wrong-class probabilities below
float32's smallest normal number (`bumps.subnormals`). This builds such a state without a long run:
the nanda model at p = 113, trained for a few epochs, then its unembedding scaled by SCALE so the logits
lie far apart. From that checkpoint it continues EPOCHS epochs (progress measures only at the start
and end) with flushing and with it turned off, interleaved REPEATS times, and prints the fraction of
subnormal logit-gradient entries, each setting's fastest seconds per epoch, their ratio, and whether
the final weights are bitwise equal. Flushing reaches the calling thread only (`bumps.subnormals`):
with --threads above 1 the flushed setting is only partly flushed.

    .venv/bin/python benchmarks/bench_subnormals.py [--epochs 20] [--repeats 2] [--scale 150] [--threads 1]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bumps.io.runfile import atomic_save  # noqa: E402
from bumps.modadd import train as modadd_train  # noqa: E402
from bumps.modadd.model import ModAddConfig, all_pairs, cross_entropy, forward_last, split_indices  # noqa: E402
from bumps.subnormals import flush_subnormals  # noqa: E402


def subnormal_fraction(cfg: ModAddConfig, params: dict) -> float:
    """Fraction of the logits' float32 gradient entries that are subnormal (nonzero, below 1.18e-38)."""
    tokens, (train_idx, _) = all_pairs(cfg.p), split_indices(cfg)
    logits = forward_last(params, tokens[train_idx]).detach().requires_grad_(True)
    cross_entropy(logits, ((tokens[:, 0] + tokens[:, 1]) % cfg.p)[train_idx]).backward()
    g = logits.grad
    return float(((g != 0) & (g.abs() < torch.finfo(g.dtype).tiny)).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--scale", type=float, default=150.0, help="Factor on W_U: larger, more subnormals.")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = ModAddConfig.from_preset("nanda", epochs=2, checkpoint_every=2, eval_every=10**9, neuron_every=10**9)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        modadd_train.train_many([cfg], [tmp / "warm.pt"])
        ckpt = torch.load(sorted((tmp / "warm_ckpt").glob("*.pt"))[-1], weights_only=True)
        ckpt["params"]["W_U"] = ckpt["params"]["W_U"] * args.scale
        atomic_save(ckpt, tmp / "start.pt")
        print(
            f"nanda p = {cfg.p}, W_U x {args.scale:g}: {subnormal_fraction(cfg, ckpt['params']):.1%} of the "
            "logit gradient is subnormal"
        )
        longer = dataclasses.replace(cfg, epochs=2 + args.epochs, checkpoint_every=0)
        flush = modadd_train.flush_subnormals
        settings = {"flushed": flush, "not flushed": lambda: contextlib.nullcontext()}
        best: dict[str, float] = {}
        final: dict[str, dict] = {}
        try:
            for r in range(args.repeats):
                for name, ctx in settings.items():
                    modadd_train.flush_subnormals = ctx
                    t0 = time.perf_counter()
                    out = [tmp / f"r{r}_{name[:3]}.pt"]
                    run = modadd_train.train_many([longer], out, resume=[tmp / "start.pt"])[0]
                    per = (time.perf_counter() - t0) / args.epochs
                    best[name] = min(best.get(name, float("inf")), per)
                    final[name] = run["final_params"]
        finally:
            modadd_train.flush_subnormals = flush
        assert flush is flush_subnormals
    for name, per in best.items():
        print(f"{name:12s} {per * 1e3:7.1f} ms / epoch (fastest of {args.repeats})")
    print(f"flushing is {best['not flushed'] / best['flushed']:.2f}x faster")
    same = all(torch.equal(final["flushed"][k], final["not flushed"][k]) for k in final["flushed"])
    print(f"final weights bitwise equal: {same}")


if __name__ == "__main__":
    main()
