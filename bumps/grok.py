"""Train the mod-add transformer to grokking and record Fourier progress measures.

One optimizer step per epoch (full batch). Every ``eval_every`` epochs (and at
epochs 0 and the last) one forward over all p² inputs gives train/test loss and
accuracy, the MLP activations for the per-neuron frequency fractions, and the
weight-based measures. Restricted and excluded loss need the *final* key
frequencies, so they are computed after training from the weight checkpoints
(``checkpoint_every``) and the final weights, on the checkpoint cadence.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch

from bumps.errors import BumpsError
from bumps.fourier import (
    ce,
    component_norms,
    fourier_basis,
    freq_norms,
    gini,
    neuron_freq_fraction,
    restricted_excluded_logits,
    sum_directions,
)
from bumps.modadd import ModAddConfig, all_pairs, cross_entropy, forward_last, init_params, split_indices
from bumps.runfile import atomic_save, check_writable, load_run, new_run, versions

SERIES_KEYS = ("train_loss", "test_loss", "train_acc", "test_acc", "freq_norm", "freq_norm_wl",
               "gini_embed", "gini_neuron_logit", "sum_sq_weights", "neuron_freq")
# Config fields that may differ between a run and its resumption.
RESUMABLE_CHANGES = {"epochs", "device"}


class Interrupted(BumpsError):
    """Training was stopped (Ctrl-C); a resumable run file was written."""


def neuron_logit_map(params, p: int) -> torch.Tensor:
    """W_L = (W_out W_U[:, :p])ᵀ: [p, d_mlp], the map from neurons to the logits of 0..p−1."""
    return (params["W_out"] @ params["W_U"][:, :p]).T


@torch.no_grad()
def measure(params, cfg: ModAddConfig, tokens, labels, train_idx, test_idx, basis) -> dict:
    """All per-eval progress measures from one forward over every input."""
    p = cfg.p
    logits, acts = forward_last(params, tokens, return_acts=True)
    logits = logits[:, :p]  # the analysis drops the '=' class
    out = {}
    for name, idx in (("train", train_idx), ("test", test_idx)):
        out[f"{name}_loss"] = cross_entropy(logits[idx], labels[idx], cfg.loss_dtype).item()
        out[f"{name}_acc"] = (logits[idx].argmax(-1) == labels[idx]).float().mean().item()
    w_e, w_l = params["W_E"][:p], neuron_logit_map(params, p)
    out["freq_norm"] = freq_norms(w_e, basis)
    out["freq_norm_wl"] = freq_norms(w_l, basis)
    out["gini_embed"] = gini(component_norms(w_e, basis)).item()
    out["gini_neuron_logit"] = gini(component_norms(w_l, basis)).item()
    out["sum_sq_weights"] = sum(t.pow(2).sum() for t in params.values()).item()
    out["neuron_freq"] = neuron_freq_fraction(acts.reshape(p, p, -1), basis)
    return out


def key_frequencies(neuron_freq: torch.Tensor, threshold: float = 0.85, min_share: float = 0.01) -> list[int]:
    """Frequencies (1-based) that at least ``min_share`` of all neurons are single-frequency neurons of.

    A neuron is single-frequency when one frequency explains >= ``threshold`` of its variance.
    """
    best, arg = neuron_freq.max(1)
    counts = torch.bincount(arg[best >= threshold], minlength=neuron_freq.shape[1])
    need = max(1, int(min_share * neuron_freq.shape[0]))
    return [int(k) + 1 for k in torch.nonzero(counts >= need).flatten()]


@torch.no_grad()
def restricted_excluded(params, cfg, tokens, labels, train_idx, freqs) -> tuple[float, float]:
    """Restricted loss (all inputs) and excluded loss (train set) for the key frequencies."""
    logits = forward_last(params, tokens)[:, : cfg.p].double()
    dirs = sum_directions(cfg.p, freqs, device=logits.device)
    restricted, excluded = restricted_excluded_logits(logits, dirs)
    return ce(restricted, labels).item(), ce(excluded[train_idx], labels[train_idx]).item()


def _ckpt_dir(out: Path) -> Path:
    return out.with_name(out.stem + "_ckpt")


def _check_resume(cfg: ModAddConfig, state: dict, path) -> None:
    stored = state["config"]
    diff = [k for k, v in cfg.as_dict().items() if k not in RESUMABLE_CHANGES and stored.get(k) != v]
    if diff:
        k = diff[0]
        raise BumpsError(f"--resume {path} was trained with {k}={stored.get(k)!r}, not {getattr(cfg, k)!r} "
                         f"({len(diff)} setting(s) differ); use the same settings or a new --out")
    if "resume" not in state:
        raise BumpsError(f"--resume {path} holds no training state to continue from")


def train(cfg: ModAddConfig, out: str | Path, resume: str | Path | None = None,
          progress: Callable[..., None] | None = None, autosave_every: int = 2000,
          stop_at: int | None = None) -> dict:
    """Train (or continue) a run and write it to ``out``; returns the run dict.

    ``progress(epoch, train_loss=..., test_loss=...)`` is called after every
    step. ``stop_at`` simulates an interruption after that epoch (for tests).
    A KeyboardInterrupt saves a resumable run and raises :class:`Interrupted`.
    """
    cfg.validate()
    out = check_writable(out)
    torch.manual_seed(cfg.seed)
    dev = cfg.device
    tokens = all_pairs(cfg.p).to(dev)
    labels = (tokens[:, 0] + tokens[:, 1]) % cfg.p
    train_idx, test_idx = (i.to(dev) for i in split_indices(cfg))
    train_tokens, train_labels = tokens[train_idx], labels[train_idx]
    basis = fourier_basis(cfg.p, device=dev)

    params = {k: v.requires_grad_(True) for k, v in init_params(cfg).items()}
    opt = torch.optim.AdamW(list(params.values()), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps,
                            weight_decay=cfg.weight_decay)
    records: dict[str, list] = {k: [] for k in ("step", *SERIES_KEYS)}
    epoch_loss: list[float] = []
    epoch, elapsed = 0, 0.0
    if resume is not None:
        state = load_run(resume, kind="modadd")
        _check_resume(cfg, state, resume)
        with torch.no_grad():
            for k, v in state["resume"]["params"].items():
                params[k].copy_(v)
        opt.load_state_dict(state["resume"]["optimizer"])
        epoch, elapsed = int(state["resume"]["epoch"]), float(state["config"].get("train_seconds", 0.0))
        records = {k: list(state["resume"]["records"][k]) for k in records}
        epoch_loss = state["train_loss_every_epoch"].tolist()

    def record(e: int) -> None:
        m = measure(params, cfg, tokens, labels, train_idx, test_idx, basis)
        records["step"].append(e)
        for k in SERIES_KEYS:
            records[k].append(m[k].cpu() if isinstance(m[k], torch.Tensor) else m[k])

    def snapshot() -> dict:
        return {k: v.detach().cpu().clone() for k, v in params.items()}

    def save(final: bool) -> dict:
        run = _assemble(cfg, records, epoch_loss, snapshot(), opt.state_dict(), epoch, elapsed, final,
                        tokens, labels, train_idx, out)
        atomic_save(run, out)
        return run

    if cfg.checkpoint_every:
        _ckpt_dir(out).mkdir(parents=True, exist_ok=True)
    if not records["step"]:
        record(0)
        if cfg.checkpoint_every:
            atomic_save({"epoch": 0, "params": snapshot()}, _ckpt_dir(out) / "epoch_000000.pt")
    t0 = time.perf_counter() - elapsed
    try:
        while epoch < cfg.epochs:
            if cfg.warmup:  # official LambdaLR: lr · min(step / warmup, 1), first step lr 0
                for group in opt.param_groups:
                    group["lr"] = cfg.lr * min(epoch / cfg.warmup, 1.0)
            loss = cross_entropy(forward_last(params, train_tokens)[:, : cfg.d_vocab_out], train_labels,
                                 cfg.loss_dtype)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            epoch += 1
            epoch_loss.append(loss.item())
            if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
                record(epoch)
            if cfg.checkpoint_every and epoch % cfg.checkpoint_every == 0:
                atomic_save({"epoch": epoch, "params": snapshot()}, _ckpt_dir(out) / f"epoch_{epoch:06d}.pt")
            elapsed = time.perf_counter() - t0
            if progress:
                progress(epoch, train_loss=epoch_loss[-1], test_loss=records["test_loss"][-1])
            if autosave_every and epoch % autosave_every == 0 and epoch < cfg.epochs:
                save(final=False)
            if stop_at is not None and epoch >= stop_at and epoch < cfg.epochs:
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        save(final=False)
        raise Interrupted(f"interrupted at epoch {epoch}; saved {out}; continue with --resume {out}") from None
    return save(final=True)


def _assemble(cfg, records, epoch_loss, params, opt_state, epoch, elapsed, final, tokens, labels,
              train_idx, out: Path) -> dict:
    """The run dict: series stacked on the time axis, summary numbers, final analysis."""
    stack = {k: (torch.stack(v) if isinstance(v[0], torch.Tensor) else torch.tensor(v, dtype=torch.float64))
             for k, v in records.items() if k != "step"}
    step = torch.tensor(records["step"], dtype=torch.int64)
    both = (stack["train_acc"] >= 0.99) & (stack["test_acc"] >= 0.99)
    below = stack["test_loss"] < 1e-6
    config = {**cfg.as_dict(), "versions": versions(), "train_seconds": elapsed, "epochs_done": epoch}
    run = new_run("modadd", config, step=step, **stack,
                  train_loss_every_epoch=torch.tensor(epoch_loss, dtype=torch.float64),
                  grok_epoch=int(step[both.float().argmax()]) if both.any() else -1,
                  test_loss_below_1e6_epoch=int(step[below.float().argmax()]) if below.any() else -1,
                  final_params=params,
                  resume={"params": params, "optimizer": opt_state, "epoch": epoch,
                          "records": {k: list(v) for k, v in records.items()}})
    final_nf = stack["neuron_freq"][-1]
    keys = key_frequencies(final_nf)
    run["key_freqs"] = torch.tensor(keys, dtype=torch.int64)
    run["single_freq_neuron_fraction"] = float((final_nf.max(1).values >= 0.85).float().mean())
    if final and keys:
        run.update(_restricted_excluded_series(cfg, params, epoch, keys, tokens, labels, train_idx, out))
    return run


def _restricted_excluded_series(cfg, final_params, epoch, keys, tokens, labels, train_idx, out: Path) -> dict:
    """Restricted/excluded loss on the checkpoint cadence, for the final key frequencies."""
    snaps = []
    ckpt = _ckpt_dir(out)
    if cfg.checkpoint_every and ckpt.is_dir():
        from bumps.runfile import safe_load

        for f in sorted(ckpt.glob("epoch_*.pt")):
            s = safe_load(f)
            if s["epoch"] < epoch:
                snaps.append((s["epoch"], s["params"]))
    snaps.append((epoch, final_params))
    steps, restricted, excluded = [], [], []
    for e, prm in snaps:
        prm = {k: v.to(cfg.device) for k, v in prm.items()}
        r, x = restricted_excluded(prm, cfg, tokens, labels, train_idx, keys)
        steps.append(e)
        restricted.append(r)
        excluded.append(x)
    return {"checkpoint_step": torch.tensor(steps, dtype=torch.int64),
            "restricted_loss": torch.tensor(restricted, dtype=torch.float64),
            "excluded_loss": torch.tensor(excluded, dtype=torch.float64)}
