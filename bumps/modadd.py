"""Nanda et al.'s one-layer transformer for (a + b) mod p, in plain PyTorch.

Shapes follow TransformerLens conventions:

    W_E [d_vocab, d_model]        W_pos [3, d_model]
    W_Q, W_K, W_V [H, d_model, d_head]    W_O [H, d_head, d_model]
    W_in [d_model, d_mlp]  b_in [d_mlp]   W_out [d_mlp, d_model]  b_out [d_model]
    W_U [d_model, d_vocab_out]

Inputs are ``[a, b, =]`` with '=' the token p. Only the last position is read
out, and with one layer its residual is ``x_2 + attn_2 + mlp_2``, where the
query comes from the fixed tokens ('=' at position 2) and keys and values from
(a, pos 0), (b, pos 1), (=, pos 2). :func:`forward_last` therefore builds small
per-token tables (scores and value·W_O for every token at every position) and
gathers from them: identical outputs and gradients to the full forward
(:func:`forward_full`, kept for tests) at the cost of the MLP and unembed on
one position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from bumps.errors import BumpsError

PRESETS: dict[str, dict] = {
    # The paper's official code (progress-measures-paper: transformers.py / helpers.py).
    "nanda": dict(init="nanda", biases="mlp", out_vocab="p+1", warmup=10, seed=0, data_seed=0,
                  split="python-random", epochs=25000),
    # The TransformerLens grokking demo (also seed 001's setup).
    "tl-demo": dict(init="tl-demo", biases="frozen-zero", out_vocab="p", warmup=0, seed=999,
                    data_seed=598, split="torch-randperm", epochs=25000),
}


@dataclass
class ModAddConfig:
    """Every parameter of a mod-add run (preset values first, then flag overrides)."""

    preset: str = "nanda"
    p: int = 113
    train_frac: float = 0.3
    epochs: int = 25000
    lr: float = 1e-3
    weight_decay: float = 1.0
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-8
    d_model: int = 128
    d_mlp: int = 512
    n_heads: int = 4
    seed: int = 0
    data_seed: int = 0
    loss_dtype: str = "float64"
    eval_every: int = 100
    checkpoint_every: int = 500
    init: str = "nanda"
    biases: str = "mlp"
    out_vocab: str = "p+1"
    warmup: int = 10
    split: str = "python-random"
    device: str = "cpu"

    @classmethod
    def from_preset(cls, preset: str = "nanda", **overrides) -> ModAddConfig:
        if preset not in PRESETS:
            raise BumpsError(f"--preset must be one of {', '.join(PRESETS)} (got {preset!r})")
        values = {**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
        return cls(preset=preset, **values).validate()

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def d_vocab_out(self) -> int:
        return self.p + 1 if self.out_vocab == "p+1" else self.p

    def validate(self) -> ModAddConfig:
        def bad(msg):
            raise BumpsError(msg)

        if self.p < 3 or any(self.p % q == 0 for q in range(2, math.isqrt(self.p) + 1)):
            bad(f"--p must be a prime >= 3 (got {self.p}); the Fourier analysis needs Z_p to be a field")
        if not (0 < self.train_frac < 1):
            bad(f"--train-frac must be strictly between 0 and 1 (got {self.train_frac})")
        if self.epochs < 0:
            bad(f"--epochs must be >= 0 (got {self.epochs})")
        for name in ("lr", "weight_decay"):
            v = getattr(self, name)
            if not math.isfinite(v) or v < 0 or (name == "lr" and v == 0):
                bad(f"--{name.replace('_', '-')} must be finite and {'> 0' if name == 'lr' else '>= 0'} (got {v})")
        for name in ("d_model", "d_mlp", "n_heads", "eval_every"):
            if getattr(self, name) <= 0:
                bad(f"--{name.replace('_', '-')} must be >= 1 (got {getattr(self, name)})")
        if self.d_model % self.n_heads:
            bad(f"--d-model {self.d_model} must be divisible by --n-heads {self.n_heads}")
        if self.checkpoint_every < 0:
            bad(f"--checkpoint-every must be >= 0 (got {self.checkpoint_every})")
        if self.loss_dtype not in ("float64", "float32"):
            bad(f"--loss-dtype must be float64 or float32 (got {self.loss_dtype!r})")
        n_train = int(self.train_frac * self.p * self.p)
        if n_train == 0 or n_train == self.p * self.p:
            bad(f"--train-frac {self.train_frac} leaves an empty train or test set at p={self.p}")
        try:
            torch.empty(0, device=self.device)
        except (RuntimeError, AssertionError) as exc:
            bad(f"--device {self.device!r} is not available here ({str(exc).splitlines()[0][:80]})")
        return self

    def as_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["betas"] = list(self.betas)
        return out


# ---------------------------------------------------------------------------- data


def all_pairs(p: int) -> torch.Tensor:
    """[p², 3] tokens [a, b, =] in the order a-major (row a·p + b)."""
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    return torch.stack([a, b, torch.full_like(a, p)], 1)


def split_indices(cfg: ModAddConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Train and test row indices into :func:`all_pairs`, as each reference code shuffles."""
    n = cfg.p * cfg.p
    if cfg.split == "python-random":  # official: random.seed(0); random.shuffle(pairs)
        import random

        order = list(range(n))
        random.Random(cfg.data_seed).shuffle(order)
        order = torch.tensor(order)
    else:  # TL demo: torch.manual_seed(598); torch.randperm(p*p)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.data_seed))
    cut = int(cfg.train_frac * n)
    return order[:cut], order[cut:]


# ---------------------------------------------------------------------------- model


# Parameter order in which TransformerLens's HookedTransformer (1 layer, no LayerNorm) registers its weights, so
# the order in which ``init_weights`` draws them: embed, pos_embed, attn (W_Q, W_O, then W_K, W_V), mlp, unembed.
TL_WEIGHT_ORDER = ("W_E", "W_pos", "W_Q", "W_O", "W_K", "W_V", "W_in", "W_out", "W_U")
INITS = ("nanda", "tl-demo", "tl-demo-v1")


def init_params(cfg: ModAddConfig) -> dict[str, torch.Tensor]:
    """Parameters as the preset's reference code initialises them.

    ``init``:
      * ``nanda``: randn/√d_model for every weight, W_U randn/√d_vocab_out (drawn W_E, W_pos, W_Q, W_K, W_V,
        W_O, W_in, W_out, W_U from ``torch.Generator().manual_seed(seed)``).
      * ``tl-demo``: exactly HookedTransformer's weights on CPU for ``HookedTransformerConfig(seed=seed)``:
        ``init_weights`` calls ``torch.manual_seed(seed)`` and then ``nn.init.normal_(W, std=0.8/√d_model)``
        for every ``W_*`` parameter in registration order (:data:`TL_WEIGHT_ORDER`); biases are zero and
        consume no random numbers. A fresh generator with the same seed yields the same stream, so the
        global RNG is left alone. Tested equal to TransformerLens where it is installed.
      * ``tl-demo-v1``: this project's earlier tl-demo draw (same distribution, the ``nanda`` order and
        ``randn * std``), kept so runs made with it can be reproduced.
    """
    g = torch.Generator().manual_seed(cfg.seed)
    d, h, dh, m, v_in, v_out = cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp, cfg.p + 1, cfg.d_vocab_out
    shapes = {"W_E": (v_in, d), "W_pos": (3, d), "W_Q": (h, d, dh), "W_K": (h, d, dh), "W_V": (h, d, dh),
              "W_O": (h, dh, d), "W_in": (d, m), "W_out": (m, d), "W_U": (d, v_out)}
    if cfg.init == "nanda":
        std = {**dict.fromkeys(shapes, d**-0.5), "W_U": v_out**-0.5}
        params = {k: torch.randn(shape, generator=g) * std[k] for k, shape in shapes.items()}
    elif cfg.init == "tl-demo-v1":
        params = {k: torch.randn(shape, generator=g) * (0.8 / d**0.5) for k, shape in shapes.items()}
    elif cfg.init == "tl-demo":
        std = 0.8 / math.sqrt(d)  # HookedTransformerConfig's initializer_range for init_mode "gpt2"
        drawn = {k: torch.empty(shapes[k]).normal_(0.0, std, generator=g) for k in TL_WEIGHT_ORDER}
        params = {k: drawn[k] for k in shapes}
    else:
        raise BumpsError(f"init must be one of {', '.join(INITS)} (got {cfg.init!r})")
    if cfg.biases == "mlp":  # trained (and weight-decayed) MLP biases, zero at init
        params["b_in"] = torch.zeros(m)
        params["b_out"] = torch.zeros(d)
    return {k: t.to(cfg.device) for k, t in params.items()}


def _mlp_unembed(params, resid: torch.Tensor, return_acts: bool = False):
    pre = resid @ params["W_in"]
    if "b_in" in params:
        pre = pre + params["b_in"]
    acts = torch.relu(pre)
    out = acts @ params["W_out"]
    if "b_out" in params:
        out = out + params["b_out"]
    logits = (resid + out) @ params["W_U"]
    return (logits, acts) if return_acts else logits


def attention_last(params, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Attention output at the last position, [B, d_model], from per-token tables.

    The query is fixed ('=' at position 2), so each head's score for (token, position)
    and each value·W_O row are tables over the vocabulary; inputs only gather rows.
    """
    e, pos = params["W_E"], params["W_pos"]
    dh = params["W_Q"].shape[-1]
    x_eq = e[-1] + pos[2]  # the '=' token at position 2
    q = torch.einsum("d,hde->he", x_eq, params["W_Q"]) / math.sqrt(dh)  # [H, dh]
    w_qk = torch.einsum("hde,he->dh", params["W_K"], q)  # [d, H]: x ↦ score per head
    w_ov = torch.einsum("hde,hef->hdf", params["W_V"], params["W_O"])  # [H, d, d]
    x0, x1 = e + pos[0], e + pos[1]  # [V, d]: every token at positions 0 and 1
    # index_select (not x[a]): its backward is a deterministic index_add, fancy indexing's is not
    s0, s1, s2 = (x0 @ w_qk).index_select(0, a), (x1 @ w_qk).index_select(0, b), x_eq @ w_qk  # [B, H], [H]
    m = torch.maximum(torch.maximum(s0, s1), s2).detach()
    e0, e1, e2 = (s0 - m).exp(), (s1 - m).exp(), (s2 - m).exp()
    z = e0 + e1 + e2
    vo0 = torch.einsum("vd,hdf->vhf", x0, w_ov)  # [V, H, d]
    vo1 = torch.einsum("vd,hdf->vhf", x1, w_ov)
    vo2 = torch.einsum("d,hdf->hf", x_eq, w_ov)  # [H, d]
    out = ((e0 / z)[:, :, None] * vo0.index_select(0, a)).sum(1)
    out = out + ((e1 / z)[:, :, None] * vo1.index_select(0, b)).sum(1)
    return out + (e2 / z) @ vo2


def forward_last(params, tokens: torch.Tensor, return_acts: bool = False):
    """Logits at the last position, [B, d_vocab_out] (and post-ReLU MLP acts if asked)."""
    a, b = tokens[:, 0], tokens[:, 1]
    resid = params["W_E"][-1] + params["W_pos"][2] + attention_last(params, a, b)
    return _mlp_unembed(params, resid, return_acts)


def forward_full(params, tokens: torch.Tensor) -> torch.Tensor:
    """The reference forward over all positions (causal attention); returns last-position logits."""
    x = params["W_E"][tokens] + params["W_pos"]  # [B, 3, d]
    q = torch.einsum("bpd,hde->bhpe", x, params["W_Q"])
    k = torch.einsum("bpd,hde->bhpe", x, params["W_K"])
    v = torch.einsum("bpd,hde->bhpe", x, params["W_V"])
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # [B, H, 3, 3]
    mask = torch.triu(torch.ones(3, 3, dtype=torch.bool, device=x.device), 1)
    pattern = scores.masked_fill(mask, -1e10).softmax(-1)
    z = pattern @ v  # [B, H, 3, dh]
    x = x + torch.einsum("bhpe,hef->bpf", z, params["W_O"])
    return _mlp_unembed(params, x)[:, -1]


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, dtype: str = "float64") -> torch.Tensor:
    """Mean cross-entropy with log_softmax in ``dtype`` (float32 reproduces the rounding artefact)."""
    logp = logits.to(getattr(torch, dtype)).log_softmax(-1)
    return -logp.gather(-1, labels[:, None]).mean()
