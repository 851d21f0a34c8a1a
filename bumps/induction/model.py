"""The induction-head run's settings and its 2-layer attention-only transformer, stacked over an ensemble.

No MLP, no LayerNorm, learned positions, residual stream throughout, causal attention with scores scaled by
``1/sqrt(d_head)``, no biases. Every parameter carries a leading model axis ``M``:

    W_E [M, vocab, d_model]   W_pos [M, n_ctx, d_model]
    W_Q, W_K, W_V [M, n_layers, H, d_model, d_head]   W_O [M, n_layers, H, d_head, d_model]
    W_U [M, d_model, vocab]

A sequence has ``n_ctx`` tokens; the logits at positions ``0 .. n_ctx − 2`` predict the next token, so the
last token is only ever a target (its own logits would predict nothing and are not computed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bumps.ensemble import StepConfig
from bumps.errors import BumpsError
from bumps.induction.data import Layout

SETUP = "nanda-induction"  # the setup seed 002 names; its pinned choices are SETUP_CHOICES
SETUP_CHOICES = {
    "model": "2 attention-only layers, 4 heads of 12, d_model 48, learned positions, no MLP/LayerNorm/biases",
    "data": "85 random tokens (vocab 128), a 16-token random subsequence 3 times back to back, uniform start",
    "loss": "mean over all 84 next-token predictions of the batch-mean cross-entropy, log_softmax in float64",
    "init": "randn/sqrt(d_model) for every weight, W_U randn/sqrt(vocab)",
    "attention": "causal, scores / sqrt(d_head)",
    "optimizer": "AdamW betas (0.9, 0.98), eps 1e-8; update after s steps uses lr * min(s / warmup, 1)",
    "records": "measured on the batch each step trains on, before its update; test sets every record",
}
PARAM_ORDER = ("W_E", "W_pos", "W_Q", "W_K", "W_V", "W_O", "W_U")
HEAD_PARAMS = ("W_Q", "W_K", "W_V", "W_O")  # [M, layer, head, ...]


@dataclass
class InductionConfig(StepConfig):
    """Every setting of an induction-head run.

    Attributes
    ----------
    setup : str, default "nanda-induction"
        Name of the pinned setup (:data:`SETUP_CHOICES` says what it fixes).
    n_ctx, vocab, sub_len, n_repeats : int, default 85, 128, 16, 3
        The sequences (:class:`bumps.induction.data.Layout`).
    placement : {"end", "consecutive", "gaps"}, default "consecutive"
        Where the repeats go (:mod:`bumps.induction.data`). Runs written before this field existed used
        ``"gaps"`` and load as such.
    steps : int, default 3000
        Optimizer steps (one batch each).
    batch_size : int, default 128
        Sequences per step.
    lr : float, default 1e-3
        AdamW learning rate after warmup.
    weight_decay : float, default 1.0
        AdamW decoupled weight decay.
    betas : tuple of (float, float), default (0.9, 0.98)
        AdamW (β1, β2).
    eps : float, default 1e-8
        AdamW epsilon.
    warmup : int, default 10
        The update after ``s`` steps uses ``lr · min(s / warmup, 1)``; 0: none.
    d_model, n_heads, n_layers : int, default 48, 4, 2
        Residual width (divisible by ``n_heads``), heads per layer, layers.
    seed : int, default 0
        Seed of the initialisation.
    data_seed : int or None, default None
        Seed of the data; None: ``seed``.
    train_size : int or None, default None
        None: infinite data, a fresh batch every step. N: a fixed training set of N sequences, batches drawn
        from it with replacement, and a held-out test set of ``test_size`` measured at every record.
    test_size : int, default 512
        Size of the held-out test set (with ``train_size``).
    record_every : int, default 5
        Steps between records.
    checkpoint_every : int, default 100
        Steps between the weight and AdamW checkpoints kept in the run (for knockouts); 0: none.
    knockout : tuple of (int, int), default ()
        ``(layer, head)`` pairs removed from the start (:mod:`bumps.induction.train`).
    origin : str, default ""
        For a continuation: the run and step it started from (recorded, not used).
    loss_dtype : {"float64", "float32"}, default "float64"
        dtype of the log_softmax.
    dtype : {"float32", "float64"}, default "float32"
        Parameter dtype.
    device : str, default "cpu"
        torch device.
    """

    setup: str = SETUP
    n_ctx: int = 85
    vocab: int = 128
    sub_len: int = 16
    n_repeats: int = 3
    placement: str = "consecutive"
    steps: int = 3000
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1.0
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-8
    warmup: int = 10
    d_model: int = 48
    n_heads: int = 4
    n_layers: int = 2
    seed: int = 0
    data_seed: int | None = None
    train_size: int | None = None
    test_size: int = 512
    record_every: int = 5
    checkpoint_every: int = 100
    knockout: tuple[tuple[int, int], ...] = ()
    origin: str = ""
    loss_dtype: str = "float64"
    dtype: str = "float32"
    device: str = "cpu"

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        self.knockout = tuple(tuple(int(i) for i in pair) for pair in self.knockout)

    @property
    def layout(self) -> Layout:
        """The sequence sizes."""
        return Layout(self.n_ctx, self.vocab, self.sub_len, self.n_repeats, self.placement)

    @property
    def d_head(self) -> int:
        """Width of each head."""
        return self.d_model // self.n_heads

    def validate(self) -> InductionConfig:
        """Check every field.

        Returns
        -------
        InductionConfig
            ``self``.

        Raises
        ------
        BumpsError
            Naming the first bad field.
        """
        if self.setup != SETUP:
            raise BumpsError(f"`setup` must be {SETUP!r} (got {self.setup!r})")
        self.layout.validate()
        self.check_sizes("steps", "batch_size", "d_model", "n_heads", "n_layers", "test_size", "record_every")
        if not isinstance(self.checkpoint_every, int) or self.checkpoint_every < 0:
            raise BumpsError(f"`checkpoint_every` must be an integer >= 0 (got {self.checkpoint_every!r})")
        for pair in self.knockout:
            if len(pair) != 2 or not (0 <= pair[0] < self.n_layers and 0 <= pair[1] < self.n_heads):
                raise BumpsError(
                    f"knockout {pair} is not (layer, head) with layer < {self.n_layers}, head < {self.n_heads}"
                )
        self.check_training()
        return self

    @classmethod
    def from_dict(cls, stored: dict) -> InductionConfig:
        """The config a run recorded (keys that are not fields dropped)."""
        return super().from_dict({"placement": "gaps", **stored})  # the only placement before the field existed


def init_params(cfg: InductionConfig) -> dict[str, torch.Tensor]:
    """One model's parameters (:data:`SETUP_CHOICES` ``init``), drawn from ``Generator().manual_seed(cfg.seed)``.

    Parameters
    ----------
    cfg : InductionConfig
        Reads the sizes, ``seed``, ``dtype`` and ``device``.

    Returns
    -------
    dict of str to torch.Tensor
        The shapes of the module docstring without the model axis.
    """
    g = torch.Generator().manual_seed(cfg.seed)
    d, h, dh, n_l, v = cfg.d_model, cfg.n_heads, cfg.d_head, cfg.n_layers, cfg.vocab
    shapes = {
        "W_E": (v, d),
        "W_pos": (cfg.n_ctx, d),
        "W_Q": (n_l, h, d, dh),
        "W_K": (n_l, h, d, dh),
        "W_V": (n_l, h, d, dh),
        "W_O": (n_l, h, dh, d),
        "W_U": (d, v),
    }
    std = {**dict.fromkeys(shapes, d**-0.5), "W_U": v**-0.5}
    params = {k: torch.randn(s, generator=g) * std[k] for k, s in shapes.items()}
    return {k: p.to(device=cfg.device, dtype=getattr(torch, cfg.dtype)) for k, p in params.items()}


@dataclass
class Cache:
    """What :func:`forward` keeps for the scores, per layer.

    Attributes
    ----------
    pattern : list of torch.Tensor
        ``[M, B, H, S, S]`` attention of each query (row) to each key (column), zero above the diagonal.
    z : list of torch.Tensor
        ``[M, B, H, S, d_head]`` each head's attention-weighted values (before ``W_O``).
    v : list of torch.Tensor
        ``[M, B, H, S, d_head]`` each head's values.
    """

    pattern: list[torch.Tensor]
    z: list[torch.Tensor]
    v: list[torch.Tensor]


def forward(
    params: dict[str, torch.Tensor],
    tokens: torch.Tensor,
    head_mask: torch.Tensor | None = None,
    keep: bool = False,
) -> tuple[torch.Tensor, Cache | None]:
    """Next-token logits of M stacked models, and optionally what the scores need.

    Attention runs through :func:`torch.nn.functional.scaled_dot_product_attention` (causal), which never
    forms the pattern; with ``keep`` the patterns are recomputed from the same queries and keys outside
    autograd, so recording does not change the training step's numbers.

    Parameters
    ----------
    params : dict of str to torch.Tensor
        Stacked parameters (module docstring), leading axis M.
    tokens : torch.Tensor
        ``[M, B, n_ctx]`` int64 sequences; the last token is never read.
    head_mask : torch.Tensor, optional
        ``[M, n_layers, H]``: multiplies each head's output (0: the model without that head).
    keep : bool, default False
        Return the :class:`Cache` (else None).

    Returns
    -------
    logits : torch.Tensor
        ``[M, B, S, vocab]`` with ``S = n_ctx − 1``: the logits at position t predict token t + 1.
    cache : Cache or None
        Per layer: patterns, ``z`` and values (detached).
    """
    seq = tokens[..., :-1]  # [M, B, S]
    n_models, batch, s = seq.shape
    vocab, d = params["W_E"].shape[1:]
    rows = torch.arange(n_models, device=seq.device)[:, None, None] * vocab
    x = params["W_E"].reshape(-1, d)[(seq + rows).reshape(-1)].view(n_models, batch, s, d)
    x = x + params["W_pos"][:, None, :s]  # [M, B, S, d]
    n_layers, heads, _, dh = params["W_Q"].shape[1:]
    cache = Cache([], [], []) if keep else None
    for layer in range(n_layers):
        # [M, B·S, d] @ [M, d, H·dh] -> [M·B, H, S, dh]
        def proj(name: str, layer: int = layer, x: torch.Tensor = x) -> torch.Tensor:
            w = params[name][:, layer].transpose(1, 2).reshape(n_models, d, heads * dh)
            y = x.reshape(n_models, batch * s, d) @ w
            return y.view(n_models * batch, s, heads, dh).transpose(1, 2)

        q, k, v = proj("W_Q"), proj("W_K"), proj("W_V")
        z = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # [M·B, H, S, dh]
        if head_mask is not None:
            z = z * head_mask[:, layer].to(z.dtype).repeat_interleave(batch, 0)[:, :, None, None]
        if cache is not None:
            with torch.no_grad():
                future = torch.ones(s, s, dtype=torch.bool, device=seq.device).triu(1)
                scores = (q / math.sqrt(dh)) @ k.transpose(-1, -2)
                pattern = scores.masked_fill(future, float("-inf")).softmax(-1)
            shape = (n_models, batch, heads, s, -1)
            cache.pattern.append(pattern.view(shape))
            cache.z.append(z.detach().view(shape))
            cache.v.append(v.detach().view(shape))
        w_o = params["W_O"][:, layer].reshape(n_models, heads * dh, d)
        z_flat = z.view(n_models, batch, heads, s, dh).transpose(2, 3).reshape(n_models, batch * s, heads * dh)
        x = x + (z_flat @ w_o).view(n_models, batch, s, d)
    return x @ params["W_U"][:, None], cache


def token_losses(logits: torch.Tensor, tokens: torch.Tensor, dtype: str = "float64") -> torch.Tensor:
    """Cross-entropy of every next-token prediction.

    Parameters
    ----------
    logits : torch.Tensor
        ``[M, B, S, vocab]``.
    tokens : torch.Tensor
        ``[M, B, S + 1]`` the sequences; targets are ``tokens[..., 1:]``.
    dtype : {"float64", "float32"}
        dtype of the log_softmax and the result.

    Returns
    -------
    torch.Tensor
        ``[M, B, S]``.
    """
    logp = logits.to(getattr(torch, dtype)).log_softmax(-1)
    return -logp.gather(-1, tokens[..., 1:, None])[..., 0]


def predictable_mean(losses: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """``[M]`` mean of ``losses [M, B, S]`` over the predictable predictions ``query [M, B, Q]``."""
    return losses.gather(-1, query).mean((1, 2))
