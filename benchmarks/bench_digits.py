"""Time `bumps digits` training against a plain PyTorch loop of the same model, and the ensemble per model.

    .venv/bin/python benchmarks/bench_digits.py [--steps 200] [--seeds 8]

Prints milliseconds per step of (1) a plain loop: an ``nn.Module`` with full causal attention over every
position, ``torch.optim.AdamW`` and the same data, seed and loss; (2) :func:`bumps.digits.train.train_digits`
for one model, recording every step (per-digit loss and accuracy, attention, norms); (3) the same for an
ensemble of ``--seeds`` models in one process, per model. The ratio (2)/(1) is the cost of the recorded,
resumable loop over the bare one. One thread (the project's policy for a shared 2-core machine).
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from bumps.digits.data import answer_positions, random_operands, sequences, step_generator
from bumps.digits.model import DigitsConfig, init_params
from bumps.digits.train import train_digits
from bumps.io.runfile import atomic_write


class Plain(nn.Module):
    """The model as one would write it: every position, a causal mask, nn.Parameters."""

    def __init__(self, cfg: DigitsConfig):
        super().__init__()
        self.p = nn.ParameterDict({k: nn.Parameter(v.clone()) for k, v in init_params(cfg).items()})

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        p, s = self.p, tokens.shape[1]
        x = p["W_E"][tokens] + p["W_pos"][:s]
        q, k, v = (torch.einsum("bsd,hde->bhse", x, p[w]) for w in ("W_Q", "W_K", "W_V"))
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        mask = torch.ones(s, s, dtype=torch.bool).triu(1)
        z = scores.masked_fill(mask, float("-inf")).softmax(-1) @ v
        x = x + torch.einsum("bhse,hef->bsf", z, p["W_O"])
        x = x + torch.relu(x @ p["W_in"] + p["b_in"]) @ p["W_out"] + p["b_out"]
        return x @ p["W_U"]


def plain_loop(cfg: DigitsConfig, steps: int) -> float:
    model = Plain(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=cfg.betas)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(s / cfg.warmup, 1.0))
    pos = answer_positions(cfg.n_digits)
    t0 = time.perf_counter()
    for step in range(steps):
        toks = sequences(*random_operands(cfg.batch_size, cfg.n_digits, step_generator(cfg.seed, step)), 5)
        logits = model(toks[:, :-1])[:, pos].double()
        loss = -logits.log_softmax(-1).gather(-1, toks[:, pos + 1, None]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return (time.perf_counter() - t0) / steps


def ours(seeds: int, steps: int, folder: Path) -> float:
    cfgs = [DigitsConfig(seed=s, steps=steps) for s in range(seeds)]
    t0 = time.perf_counter()
    train_digits(cfgs, [folder / f"s{s}.pt" for s in range(seeds)], resume="never", autosave_every=0)
    return (time.perf_counter() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument(
        "--out", type=Path, default=None, help="Write digits_benchmark.md into this folder (docs embed it)."
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = DigitsConfig(seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        plain_loop(cfg, 5), ours(1, 5, Path(tmp))  # warm up
        plain = plain_loop(cfg, args.steps)
        one = ours(1, args.steps, Path(tmp))
        many = ours(args.seeds, max(args.steps // args.seeds, 20), Path(tmp)) / args.seeds
    text = "\n".join(
        [
            "| loop | ms per model-step |",
            "|---|---|",
            f"| plain PyTorch loop (full causal forward, `torch.optim.AdamW`) | {1e3 * plain:.2f} |",
            f"| `bumps digits`, 1 model, recording every step | {1e3 * one:.2f} |",
            f"| `bumps digits`, {args.seeds} models in one process | {1e3 * many:.2f} |",
            "",
            f"Ratio `bumps digits` / plain loop: {one / plain:.2f}; ensemble per model / one model: "
            f"{many / one:.2f} (one thread, {args.steps} steps; made by "
            "`python benchmarks/bench_digits.py --out reports/`).",
        ]
    )
    print(text)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        atomic_write(args.out / "digits_benchmark.md", lambda fh: fh.write((text + "\n").encode()))


if __name__ == "__main__":
    main()
