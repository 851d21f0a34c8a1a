"""Per-epoch speed of `bumps grok` vs the TransformerLens demo's training loop.

Ours: the nanda preset at p = 113 (3,830 train pairs), full-batch AdamW, with the
default progress measures (every 100 epochs, amortised over the epochs timed).
Baseline, when transformer-lens<4 is installed: the TL grokking demo's loop
(HookedTransformer, frozen zero biases, one train step plus the test loss every
epoch), same sizes, same machine, same process. Without it, the baseline is this
repo's own full-sequence forward (all three positions, MLP and unembed everywhere)
with the test loss every epoch, so the script always prints a ratio.

Also prints FLOPs per epoch and the fraction of this machine's measured GEMM
throughput that the training step reaches.

    .venv/bin/python benchmarks/bench_grok.py [--epochs 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bumps.fourier import fourier_basis  # noqa: E402
from bumps.grok import measure  # noqa: E402
from bumps.modadd import ModAddConfig, all_pairs, cross_entropy, forward_full, forward_last, init_params, split_indices  # noqa: E402


def gemm_gflops() -> float:
    a, w = torch.randn(3830, 128), torch.randn(128, 512)
    for _ in range(5):
        a @ w
    t0, n = time.perf_counter(), 50
    for _ in range(n):
        a @ w
    return 2 * 3830 * 128 * 512 * n / (time.perf_counter() - t0) / 1e9


def train_flops(cfg: ModAddConfig, batch: int) -> float:
    """Matmul FLOPs of one training step (forward + backward ≈ 3 × forward) at the last position."""
    d, m, v = cfg.d_model, cfg.d_mlp, cfg.d_vocab_out
    per_input = 2 * (d * m + m * d + d * v)  # MLP in, MLP out, unembed
    tables = 2 * (cfg.p + 1) * 3 * (d * d + d * cfg.n_heads * d)  # scores and value·W_O tables (tiny)
    return 3 * (batch * per_input + tables)


def time_ours(cfg, epochs: int) -> float:
    tokens = all_pairs(cfg.p)
    labels = (tokens[:, 0] + tokens[:, 1]) % cfg.p
    tr, te = split_indices(cfg)
    basis = fourier_basis(cfg.p)
    params = {k: v.requires_grad_(True) for k, v in init_params(cfg).items()}
    opt = torch.optim.AdamW(list(params.values()), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    xt, yt = tokens[tr], labels[tr]
    t0 = time.perf_counter()
    for epoch in range(epochs):
        loss = cross_entropy(forward_last(params, xt)[:, : cfg.d_vocab_out], yt)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if epoch % cfg.eval_every == 0:
            measure(params, cfg, tokens, labels, tr, te, basis)
    return (time.perf_counter() - t0) / epochs


def time_full_forward_baseline(cfg, epochs: int) -> float:
    tokens = all_pairs(cfg.p)
    labels = (tokens[:, 0] + tokens[:, 1]) % cfg.p
    tr, te = split_indices(cfg)
    params = {k: v.requires_grad_(True) for k, v in init_params(cfg).items()}
    opt = torch.optim.AdamW(list(params.values()), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    t0 = time.perf_counter()
    for _ in range(epochs):
        loss = cross_entropy(forward_full(params, tokens[tr]), labels[tr])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            cross_entropy(forward_full(params, tokens[te]), labels[te])
    return (time.perf_counter() - t0) / epochs


def time_transformer_lens(cfg, epochs: int) -> float | None:
    try:
        from transformer_lens import HookedTransformer, HookedTransformerConfig
    except ImportError:
        return None
    tl_cfg = HookedTransformerConfig(n_layers=1, n_heads=cfg.n_heads, d_model=cfg.d_model, d_head=cfg.d_head,
                                     d_mlp=cfg.d_mlp, act_fn="relu", normalization_type=None, d_vocab=cfg.p + 1,
                                     d_vocab_out=cfg.p, n_ctx=3, init_weights=True, device="cpu", seed=999)
    model = HookedTransformer(tl_cfg)
    for name, param in model.named_parameters():
        if "b_" in name:
            param.requires_grad = False
    tokens = all_pairs(cfg.p)
    labels = (tokens[:, 0] + tokens[:, 1]) % cfg.p
    tr, te = split_indices(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=cfg.betas)

    def loss_fn(logits, y):
        logp = logits[:, -1].to(torch.float64).log_softmax(-1)
        return -logp.gather(-1, y[:, None]).mean()

    t0 = time.perf_counter()
    for _ in range(epochs):
        loss = loss_fn(model(tokens[tr]), labels[tr])
        loss.backward()
        opt.step()
        opt.zero_grad()
        with torch.inference_mode():
            loss_fn(model(tokens[te]), labels[te])
    return (time.perf_counter() - t0) / epochs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--baseline-epochs", type=int, default=30)
    args = ap.parse_args()
    cfg = ModAddConfig.from_preset("nanda")
    peak = gemm_gflops()
    ours = time_ours(cfg, args.epochs)
    flops = train_flops(cfg, 3830)
    print(f"machine: {torch.get_num_threads()} threads, GEMM 3830x128x512 at {peak:.0f} GFLOP/s")
    print(f"bumps grok (nanda, p=113): {1e3 * ours:.1f} ms/epoch incl. progress measures every {cfg.eval_every}")
    print(f"  training step: {flops / 1e9:.2f} GFLOP/epoch -> {flops / ours / 1e9:.0f} GFLOP/s "
          f"({100 * flops / ours / 1e9 / peak:.0f}% of measured GEMM throughput)")
    print(f"  25k epochs would take {ours * 25000 / 60:.1f} min")
    tl = time_transformer_lens(cfg, args.baseline_epochs)
    if tl is not None:
        print(f"TransformerLens demo loop (train step + test loss every epoch): {1e3 * tl:.1f} ms/epoch")
        print(f"ratio vs TransformerLens: {tl / ours:.1f}x")
    else:
        print("transformer-lens<4 not installed: pip install 'transformer-lens<4' to time its loop")
    full = time_full_forward_baseline(cfg, args.baseline_epochs)
    print(f"plain full-sequence forward + test loss every epoch: {1e3 * full:.1f} ms/epoch; "
          f"ratio {full / ours:.1f}x")


if __name__ == "__main__":
    main()
