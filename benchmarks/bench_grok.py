"""Per-epoch speed of `bumps grok` vs the TransformerLens demo's loop and vs our previous step.

Ours: `bumps.modadd.train.train` on the nanda preset at p = 113 (3,830 train pairs), full-batch
AdamW, with the default progress measures (every 100 epochs, amortised over the epochs
timed). Baselines, in the same process:

* the TL grokking demo's loop, when transformer-lens<4 is installed (HookedTransformer,
  frozen zero biases, one train step plus the test loss every epoch);
* our previous step ("per-input GEMM"): residual at the last position from the attention
  tables, then ``resid @ W_in``, ``acts @ W_out`` and the unembed for every input;
* a plain full-sequence forward (all three positions) with the test loss every epoch.

Also prints matmul FLOPs per epoch of both formulations, and ensemble throughput
(epochs × models per second) for M models trained together.

    .venv/bin/python benchmarks/bench_grok.py [--epochs 200] [--ensembles 1,4,8]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bumps.modadd.fourier import fourier_basis  # noqa: E402
from bumps.modadd.model import ModAddConfig, all_pairs, cross_entropy, forward_full, init_params, split_indices  # noqa: E402
from bumps.modadd.train import measure, train_many  # noqa: E402


def gemm_gflops() -> float:
    a, w = torch.randn(3830, 128), torch.randn(128, 512)
    for _ in range(5):
        a @ w
    t0, n = time.perf_counter(), 50
    for _ in range(n):
        a @ w
    return 2 * 3830 * 128 * 512 * n / (time.perf_counter() - t0) / 1e9


def flops_per_input_gemm(cfg: ModAddConfig, batch: int) -> float:
    """Matmul FLOPs of one step of the previous formulation (forward + backward ≈ 3 × forward)."""
    d, m, v = cfg.d_model, cfg.d_mlp, cfg.d_vocab_out
    per_input = 2 * (d * m + m * d + d * v)  # MLP in, MLP out, unembed
    tables = 2 * (cfg.p + 1) * 3 * (d * d + d * cfg.n_heads * d)  # scores and value·W_O tables
    return 3 * (batch * per_input + tables)


def flops_tables(cfg: ModAddConfig, batch: int) -> float:
    """Matmul FLOPs of one step of bumps.modadd.forward_many (forward + backward ≈ 3 × forward)."""
    d, m, v, h = cfg.d_model, cfg.d_mlp, cfg.d_vocab_out, cfg.n_heads
    rows = (2 * (cfg.p + 1) + 1) * h  # value·W_O table rows
    per_input = 2 * (3 * h * (m + v) + m * v)  # weighted sum of 3H table rows; hidden @ (W_out W_U)
    tables = 2 * (2 * (cfg.p + 1) * (d * h + d * d * h) + rows * d * (m + v) + m * d * v)
    return 3 * (batch * per_input + tables)


def forward_per_input_gemm(params, tokens):
    """The previous step: the last position's residual, then per-input MLP and unembed GEMMs."""
    a, b = tokens[:, 0], tokens[:, 1]
    e, pos = params["W_E"], params["W_pos"]
    dh = params["W_Q"].shape[-1]
    x_eq = e[-1] + pos[2]
    q = torch.einsum("d,hde->he", x_eq, params["W_Q"]) / math.sqrt(dh)
    w_qk = torch.einsum("hde,he->dh", params["W_K"], q)
    w_ov = torch.einsum("hde,hef->hdf", params["W_V"], params["W_O"])
    x0, x1 = e + pos[0], e + pos[1]
    s0, s1, s2 = (x0 @ w_qk).index_select(0, a), (x1 @ w_qk).index_select(0, b), x_eq @ w_qk
    w = torch.stack([s0, s1, s2.expand_as(s0)], 1).softmax(1)
    vo0 = torch.einsum("vd,hdf->vhf", x0, w_ov)
    vo1 = torch.einsum("vd,hdf->vhf", x1, w_ov)
    vo2 = torch.einsum("d,hdf->hf", x_eq, w_ov)
    resid = x_eq + (w[:, 0, :, None] * vo0.index_select(0, a)).sum(1)
    resid = resid + (w[:, 1, :, None] * vo1.index_select(0, b)).sum(1)
    resid = resid + w[:, 2] @ vo2
    pre = resid @ params["W_in"] + params.get("b_in", 0)
    out = torch.relu(pre) @ params["W_out"] + params.get("b_out", 0)
    return (resid + out) @ params["W_U"]


def time_ours(cfg, epochs: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = ModAddConfig.from_preset(cfg.preset, epochs=epochs, checkpoint_every=0)
        run = train_many([cfg], [Path(tmp) / "r.pt"])[0]
    return run["config"]["train_seconds"] / epochs


def time_ensemble(cfg, models: int, epochs: int) -> float:
    """Epochs × models per second for ``models`` nanda models (seeds 0..M-1) trained together."""
    with tempfile.TemporaryDirectory() as tmp:
        configs = [
            ModAddConfig.from_preset(cfg.preset, epochs=epochs, checkpoint_every=0, seed=s, data_seed=s)
            for s in range(models)
        ]
        t0 = time.perf_counter()
        train_many(configs, [Path(tmp) / f"r{s}.pt" for s in range(models)], autosave_every=0)
        return models * epochs / (time.perf_counter() - t0)


def time_per_input_gemm(cfg, epochs: int) -> float:
    tokens = all_pairs(cfg.p)
    labels = (tokens[:, 0] + tokens[:, 1]) % cfg.p
    tr, te = split_indices(cfg)
    basis = fourier_basis(cfg.p)
    params = {k: v.requires_grad_(True) for k, v in init_params(cfg).items()}
    opt = torch.optim.AdamW(list(params.values()), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    xt, yt = tokens[tr], labels[tr]
    t0 = time.perf_counter()
    for epoch in range(epochs):
        loss = cross_entropy(forward_per_input_gemm(params, xt)[:, : cfg.d_vocab_out], yt)
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
    tl_cfg = HookedTransformerConfig(
        n_layers=1,
        n_heads=cfg.n_heads,
        d_model=cfg.d_model,
        d_head=cfg.d_head,
        d_mlp=cfg.d_mlp,
        act_fn="relu",
        normalization_type=None,
        d_vocab=cfg.p + 1,
        d_vocab_out=cfg.p,
        n_ctx=3,
        init_weights=True,
        device="cpu",
        seed=999,
    )
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
    ap.add_argument("--ensembles", default="1,4,8", help="ensemble sizes M for the throughput table ('' to skip)")
    ap.add_argument("--ensemble-epochs", type=int, default=50)
    ap.add_argument("--threads", type=int, default=0, help="torch threads for every loop timed (0: default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = ModAddConfig.from_preset("nanda")
    peak = gemm_gflops()
    ours = time_ours(cfg, args.epochs)
    before = time_per_input_gemm(cfg, args.epochs)
    f_new, f_old = flops_tables(cfg, 3830), flops_per_input_gemm(cfg, 3830)
    print(f"machine: {torch.get_num_threads()} threads, GEMM 3830x128x512 at {peak:.0f} GFLOP/s")
    print(f"bumps grok (nanda, p=113): {1e3 * ours:.1f} ms/epoch incl. progress measures every {cfg.eval_every}")
    print(
        f"  training step: {f_new / 1e9:.2f} GFLOP/epoch (previous per-input GEMM step: {f_old / 1e9:.2f}, "
        f"{f_old / f_new:.2f}x more) -> {f_new / ours / 1e9:.0f} GFLOP/s"
    )
    print(
        f"previous per-input GEMM step, same loop and measures: {1e3 * before:.1f} ms/epoch; ratio {before / ours:.2f}x"
    )
    print(f"  25k epochs would take {ours * 25000 / 60:.1f} min")
    tl = time_transformer_lens(cfg, args.baseline_epochs)
    if tl is not None:
        print(f"TransformerLens demo loop (train step + test loss every epoch): {1e3 * tl:.1f} ms/epoch")
        print(f"ratio vs TransformerLens: {tl / ours:.1f}x (previous step: {tl / before:.1f}x)")
    else:
        print("transformer-lens<4 not installed: pip install 'transformer-lens<4' to time its loop")
    full = time_full_forward_baseline(cfg, args.baseline_epochs)
    print(f"plain full-sequence forward + test loss every epoch: {1e3 * full:.1f} ms/epoch; ratio {full / ours:.1f}x")
    sizes = [int(x) for x in args.ensembles.split(",") if x.strip()]
    if sizes:
        print(f"ensembles on {torch.device('cpu')} ({args.ensemble_epochs} epochs each, measures every 100):")
        print("   M   epochs·models/s")
        for m in sizes:
            print(f"{m:4d}   {time_ensemble(cfg, m, args.ensemble_epochs):8.1f}")


if __name__ == "__main__":
    main()
