"""The 5-digit addition run's settings and its one-layer transformer, stacked over an ensemble of models.

The model is the mod-add one of :mod:`bumps.modadd` in shape (one attention layer, then one ReLU MLP, learned
positions, no LayerNorm, residual stream throughout), written here for sequences of any length because the
two tasks may not import each other. Every parameter carries a leading model axis ``M``:

    W_E [M, 12, d_model]   W_pos [M, 18, d_model]
    W_Q, W_K, W_V [M, H, d_model, d_head]   W_O [M, H, d_head, d_model]
    W_in [M, d_model, d_mlp]  b_in [M, d_mlp]  W_out [M, d_mlp, d_model]  b_out [M, d_model]
    W_U [M, d_model, 10]

With one layer the logits at a position depend only on that position's residual, so :func:`forward` computes
queries, the MLP and the unembed only at the ``n_digits + 1`` positions that predict the answer
(causal attention over every earlier position), which gives the same logits as the full forward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from bumps.digits.data import VOCAB, answer_positions, context
from bumps.ensemble import StepConfig
from bumps.errors import BumpsError

SETUP = "nanda-5digit"  # the setup seed 002 names; its pinned choices are SETUP_CHOICES
SETUP_CHOICES = {
    "layout": "a (5 digits, most significant first) + b (5 digits) = c (6 digits, carry digit first)",
    "loss": "mean over the 6 answer positions of the batch-mean cross-entropy, log_softmax in float64",
    "init": "randn/sqrt(d_model) for every weight, W_U randn/sqrt(d_vocab_out), biases zero",
    "unembed": "10 outputs: the digits (answers are digits only)",
    "attention": "causal, scores / sqrt(d_head)",
    "warmup": "the update after s steps uses lr * min(s / warmup, 1)",
    "records": "measured on the batch each step trains on, before its update",
}
OUT_VOCAB = 10


@dataclass
class DigitsConfig(StepConfig):
    """Every setting of a 5-digit addition run.

    Attributes
    ----------
    setup : str, default "nanda-5digit"
        Name of the pinned setup (:data:`SETUP_CHOICES` says what it fixes).
    n_digits : int, default 5
        Digits per operand; the answer has ``n_digits + 1``, the context ``3·n_digits + 3``.
    steps : int, default 20000
        Optimizer steps (one batch each).
    batch_size : int, default 64
        Sequences per step.
    lr : float, default 1e-4
        AdamW learning rate after warmup.
    weight_decay : float, default 0.1
        AdamW decoupled weight decay.
    betas : tuple of (float, float), default (0.9, 0.98)
        AdamW (β1, β2).
    eps : float, default 1e-8
        AdamW epsilon.
    warmup : int, default 10
        The update after ``s`` steps uses ``lr · min(s / warmup, 1)``; 0: no warmup.
    d_model : int, default 128
        Residual width, divisible by ``n_heads``.
    n_heads : int, default 4
        Attention heads of width ``d_model // n_heads``.
    d_mlp : int, default 512
        MLP width.
    seed : int, default 0
        Seed of the initialisation.
    data_seed : int or None, default None
        Seed of the data; None: ``seed``.
    train_size : int or None, default None
        None: infinite data, a fresh batch every step. N: a fixed training set of N distinct pairs,
        batches drawn from it, and a held-out test set of ``test_size`` pairs measured at every record.
    test_size : int, default 1000
        Size of the held-out test set (with ``train_size``).
    record_every : int, default 1
        Steps between records.
    loss_dtype : {"float64", "float32"}, default "float64"
        dtype of the log_softmax.
    dtype : {"float32", "float64"}, default "float32"
        Parameter dtype.
    device : str, default "cpu"
        torch device.
    """

    setup: str = SETUP
    n_digits: int = 5
    steps: int = 20000
    batch_size: int = 64
    lr: float = 1e-4
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-8
    warmup: int = 10
    d_model: int = 128
    n_heads: int = 4
    d_mlp: int = 512
    seed: int = 0
    data_seed: int | None = None
    train_size: int | None = None
    test_size: int = 1000
    record_every: int = 1
    loss_dtype: str = "float64"
    dtype: str = "float32"
    device: str = "cpu"

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)

    @property
    def d_head(self) -> int:
        """Width of each head."""
        return self.d_model // self.n_heads

    def validate(self) -> DigitsConfig:
        """Check every field.

        Returns
        -------
        DigitsConfig
            ``self``.

        Raises
        ------
        BumpsError
            Naming the first bad field.
        """
        if self.setup != SETUP:
            raise BumpsError(f"`setup` must be {SETUP!r} (got {self.setup!r})")
        self.check_sizes("n_digits", "steps", "batch_size", "d_model", "n_heads", "d_mlp", "test_size", "record_every")
        if self.n_digits > 9:
            raise BumpsError(f"`n_digits` must be <= 9 so that sums fit the int64 pool (got {self.n_digits})")
        if self.train_size is not None and self.train_size + self.test_size > 10 ** (2 * self.n_digits):
            raise BumpsError(
                f"`train_size` {self.train_size} + `test_size` {self.test_size} exceeds the "
                f"{10 ** (2 * self.n_digits)} distinct operand pairs; the test set must be held out of them"
            )
        self.check_training()
        return self


def init_params(cfg: DigitsConfig) -> dict[str, torch.Tensor]:
    """One model's parameters (:data:`SETUP_CHOICES` ``init``), drawn from ``Generator().manual_seed(cfg.seed)``.

    Parameters
    ----------
    cfg : DigitsConfig
        Reads the widths, ``n_digits``, ``seed``, ``dtype`` and ``device``.

    Returns
    -------
    dict of str to torch.Tensor
        The shapes of the module docstring without the model axis.
    """
    g = torch.Generator().manual_seed(cfg.seed)
    d, h, dh, m = cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp
    shapes = {
        "W_E": (VOCAB, d),
        "W_pos": (context(cfg.n_digits), d),
        "W_Q": (h, d, dh),
        "W_K": (h, d, dh),
        "W_V": (h, d, dh),
        "W_O": (h, dh, d),
        "W_in": (d, m),
        "W_out": (m, d),
        "W_U": (d, OUT_VOCAB),
    }
    std = {**dict.fromkeys(shapes, d**-0.5), "W_U": OUT_VOCAB**-0.5}
    params = {k: torch.randn(s, generator=g) * std[k] for k, s in shapes.items()}
    params["b_in"], params["b_out"] = torch.zeros(m), torch.zeros(d)
    return {k: v.to(device=cfg.device, dtype=getattr(torch, cfg.dtype)) for k, v in params.items()}


def forward(params: dict[str, torch.Tensor], tokens: torch.Tensor, n_digits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Answer logits and attention patterns of M stacked models.

    Parameters
    ----------
    params : dict of str to torch.Tensor
        Stacked parameters (module docstring), leading axis M.
    tokens : torch.Tensor
        ``[M, B, context]`` int64 sequences (:func:`bumps.digits.data.sequences`); the last token is never
        read.
    n_digits : int
        Digits per operand.

    Returns
    -------
    logits : torch.Tensor
        ``[M, B, n_digits + 1, 10]``: the next-token logits at the answer-predicting positions, carry digit first.
    pattern : torch.Tensor
        ``[M, B, H, n_digits + 1, context − 1]``: attention of each answer-predicting query to every key
        position (zero after the query).
    """
    seq = tokens[..., :-1]  # [M, B, S]
    n_models, batch, s = seq.shape
    rows = torch.arange(n_models, device=seq.device)[:, None, None] * VOCAB
    x = params["W_E"].reshape(-1, params["W_E"].shape[-1])[(seq + rows).reshape(-1)].view(n_models, batch, s, -1)
    x = x + params["W_pos"][:, None, :s]  # [M, B, S, d]
    qpos = answer_positions(n_digits).to(seq.device)  # [A]
    n_q, d = len(qpos), x.shape[-1]
    heads, dh = params["W_Q"].shape[1], params["W_Q"].shape[-1]

    def per_head(w: torch.Tensor) -> torch.Tensor:  # [M, H, d, dh] -> [M, d, H·dh]: one GEMM per model
        return w.transpose(1, 2).reshape(n_models, d, heads * dh)

    def split(y: torch.Tensor, n: int) -> torch.Tensor:  # [M, B·n, H·dh] -> [M, B, H, n, dh]
        return y.view(n_models, batch, n, heads, dh).transpose(2, 3)

    xq = x[:, :, qpos]  # [M, B, A, d]
    flat = x.reshape(n_models, batch * s, d)
    q = split(xq.reshape(n_models, batch * n_q, d) @ per_head(params["W_Q"]), n_q)
    k = split(flat @ per_head(params["W_K"]), s)
    v = split(flat @ per_head(params["W_V"]), s)
    scores = q @ k.transpose(-1, -2) / math.sqrt(dh)  # [M, B, H, A, S]
    future = torch.arange(s, device=seq.device)[None, :] > qpos[:, None]  # [A, S]
    pattern = scores.masked_fill(future, float("-inf")).softmax(-1)
    z = (pattern @ v).transpose(2, 3).reshape(n_models, batch * n_q, heads * dh)  # [M, B·A, H·dh]
    resid = xq.reshape(n_models, batch * n_q, d) + z @ params["W_O"].reshape(n_models, heads * dh, d)
    hidden = torch.relu(resid @ params["W_in"] + params["b_in"][:, None])
    resid = resid + hidden @ params["W_out"] + params["b_out"][:, None]
    return (resid @ params["W_U"]).view(n_models, batch, n_q, -1), pattern


def per_digit_loss(logits: torch.Tensor, answers: torch.Tensor, dtype: str = "float64") -> torch.Tensor:
    """Batch-mean cross-entropy of each answer digit.

    Parameters
    ----------
    logits : torch.Tensor
        ``[M, B, A, 10]``.
    answers : torch.Tensor
        ``[M, B, A]`` int64 digits.
    dtype : {"float64", "float32"}
        dtype of the log_softmax and the result.

    Returns
    -------
    torch.Tensor
        ``[M, A]``; the training loss of model m is its mean over A.
    """
    logp = logits.to(getattr(torch, dtype)).log_softmax(-1)
    return -logp.gather(-1, answers[..., None])[..., 0].mean(1)
