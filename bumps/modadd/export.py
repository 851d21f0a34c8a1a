"""A mod-add run's weights as a TransformerLens model.

:func:`to_transformer_lens` turns a mod-add run's weights (final, or a checkpoint epoch) into
``{"cfg": HookedTransformerConfig kwargs, "state_dict": ...}`` for
``HookedTransformer(HookedTransformerConfig(**cfg)).load_state_dict(state_dict)``
(transformer-lens < 4; checked against 3.9). Parameter names and shapes already follow
TransformerLens; what bumps does not train is filled with zeros (attention biases, ``b_U``, and
the MLP biases of presets that freeze them at 0). transformer-lens is never imported here.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from bumps.errors import BumpsError
from bumps.io.runfile import checkpoint_dir, read_checkpoint, run_id_of

N_CTX = 3  # [a, b, =]


def modadd_params(run: dict, run_path: str | Path, epoch: int | None = None) -> tuple[int, dict[str, torch.Tensor]]:
    """The weights of a mod-add run: final, or at ``epoch`` from its checkpoint folder."""
    if run.get("kind") != "modadd":
        raise BumpsError(f"{run_path} is a '{run.get('kind')}' run; only modadd runs export to transformer-lens")
    done = int(run["config"].get("epochs_done", -1))
    if epoch is None:
        return done, run["final_params"]
    ckpt_dir = checkpoint_dir(Path(run_path))
    ckpt = ckpt_dir / f"epoch_{epoch:06d}.pt"
    if not ckpt.exists():
        if epoch == done:
            return done, run["final_params"]
        have = sorted(int(f.stem.split("_")[1]) for f in ckpt_dir.glob("epoch_*.pt")) if ckpt_dir.is_dir() else []
        listed = (
            (
                f"checkpoints at epochs {', '.join(map(str, have[:6]))}{', ...' if len(have) > 6 else ''} "
                f"and the final epoch {done}"
            )
            if have
            else f"no checkpoints in {ckpt_dir}; the final epoch is {done}"
        )
        raise BumpsError(f"`epoch` {epoch}: no checkpoint {ckpt} ({listed})")
    got, params, rid = read_checkpoint(ckpt)
    mine = run_id_of(run)
    if rid is not None and mine is not None and rid != mine:
        raise BumpsError(f"{ckpt} belongs to run {rid}, not to {run_path} (run {mine}); it is a stale checkpoint")
    if got != epoch:
        raise BumpsError(f"{ckpt} holds epoch {got}, not {epoch}")
    return got, params


def tl_config(cfg: dict, dtype: torch.dtype) -> dict:
    """HookedTransformerConfig keyword arguments for a bumps mod-add config dict."""
    p = int(cfg["p"])
    return {
        "n_layers": 1,
        "d_model": int(cfg["d_model"]),
        "d_head": int(cfg["d_model"]) // int(cfg["n_heads"]),
        "n_heads": int(cfg["n_heads"]),
        "d_mlp": int(cfg["d_mlp"]),
        "d_vocab": p + 1,
        "d_vocab_out": p + 1 if cfg["out_vocab"] == "p+1" else p,
        "n_ctx": N_CTX,
        "act_fn": "relu",
        "normalization_type": None,
        "attn_only": False,
        "positional_embedding_type": "standard",
        "default_prepend_bos": False,
        "dtype": dtype,
    }


def tl_state_dict(params: dict[str, torch.Tensor], cfg: dict, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """TransformerLens state dict: bumps' weights plus zeros for everything bumps does not train."""
    d, h, m = cfg["d_model"], cfg["n_heads"], cfg["d_mlp"]
    dh, v_out = d // h, params["W_U"].shape[1]
    w = {k: v.detach().cpu().to(dtype) for k, v in params.items()}
    z = lambda *shape: torch.zeros(shape, dtype=dtype)  # noqa: E731
    return {
        "embed.W_E": w["W_E"],  # [d_vocab, d_model]
        "pos_embed.W_pos": w["W_pos"],  # [n_ctx, d_model]
        "blocks.0.attn.W_Q": w["W_Q"],
        "blocks.0.attn.W_K": w["W_K"],
        "blocks.0.attn.W_V": w["W_V"],  # [H, d, dh]
        "blocks.0.attn.W_O": w["W_O"],  # [H, dh, d]
        "blocks.0.attn.b_Q": z(h, dh),
        "blocks.0.attn.b_K": z(h, dh),
        "blocks.0.attn.b_V": z(h, dh),
        "blocks.0.attn.b_O": z(d),
        # buffers in the 2.x layout (transformer-lens 3.x keeps its own mask when the shapes differ)
        "blocks.0.attn.mask": torch.tril(torch.ones(N_CTX, N_CTX, dtype=torch.bool)),
        "blocks.0.attn.IGNORE": torch.tensor(-torch.inf),
        "blocks.0.mlp.W_in": w["W_in"],
        "blocks.0.mlp.b_in": w.get("b_in", z(m)),  # [d, m], [m]
        "blocks.0.mlp.W_out": w["W_out"],
        "blocks.0.mlp.b_out": w.get("b_out", z(d)),  # [m, d], [d]
        "unembed.W_U": w["W_U"],
        "unembed.b_U": z(v_out),  # [d, d_vocab_out]
    }


def to_transformer_lens(run: dict, run_path: str | Path, epoch: int | None = None, dtype: str | None = None) -> dict:
    """{"cfg", "state_dict", "bumps"} for a mod-add run at ``epoch`` (default: final weights)."""
    got, params = modadd_params(run, run_path, epoch)
    if dtype is not None and dtype not in ("float32", "float64"):
        raise BumpsError(f"`dtype` must be float32 or float64 (got {dtype!r})")
    dt = getattr(torch, dtype) if dtype else params["W_E"].dtype
    cfg = run["config"]
    return {
        "cfg": tl_config(cfg, dt),
        "state_dict": tl_state_dict(params, cfg, dt),
        "bumps": {"run": os.fspath(run_path), "epoch": got, "config": cfg},
    }
