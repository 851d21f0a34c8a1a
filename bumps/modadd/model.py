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
import torch.nn.functional as F

from bumps.errors import BumpsError
from bumps.modadd.probe import check_probe_settings

INITS = ("nanda", "tl-demo", "tl-demo-v1")  # tl-demo-v1: the earlier tl-demo draw, see init_params
BIASES = ("mlp", "frozen-zero")
OUT_VOCABS = ("p+1", "p")
SPLITS = ("python-random", "torch-randperm")

PRESETS: dict[str, dict] = {
    # The paper's official code (progress-measures-paper: transformers.py / helpers.py).
    "nanda": dict(
        init="nanda", biases="mlp", out_vocab="p+1", warmup=10, seed=0, data_seed=0, split="python-random", epochs=25000
    ),
    # The TransformerLens grokking demo (also seed 001's setup).
    "tl-demo": dict(
        init="tl-demo",
        biases="frozen-zero",
        out_vocab="p",
        warmup=0,
        seed=999,
        data_seed=598,
        split="torch-randperm",
        epochs=25000,
    ),
    # A CPU-sized run of the paper's recipe: p = 53, half the pairs for training, half the widths, lr 3e-3.
    # It memorises first and groks well inside its 2000 epochs, in under a minute on one core
    # (tests/modadd/test_train.py::test_small_preset_groks_on_one_core checks both).
    "small": dict(
        init="nanda",
        biases="mlp",
        out_vocab="p+1",
        warmup=10,
        seed=0,
        data_seed=0,
        split="python-random",
        epochs=2000,
        p=53,
        train_frac=0.5,
        d_model=64,
        d_mlp=256,
        lr=3e-3,
        eval_every=50,
    ),
}


@dataclass
class ModAddConfig:
    """Every parameter of a mod-add run (preset values first, then flag overrides).

    The defaults are the ``nanda`` preset; :meth:`from_preset` applies a preset's
    values (:data:`PRESETS`), constructing the class directly does not.

    Attributes
    ----------
    preset : {"nanda", "tl-demo", "small"}, default "nanda"
        Name of the preset the values started from (recorded with the run).
    p : int, default 113
        The prime modulus; inputs are pairs (a, b) in Z_p², the label is (a + b) mod p.
    train_frac : float, default 0.3
        Fraction of the p² pairs in the training set (the first ``int(train_frac·p²)``
        of the shuffled order, :func:`split_indices`); strictly between 0 and 1.
    epochs : int, default 25000
        Number of epochs, each one full-batch optimizer step.
    lr : float, default 1e-3
        AdamW learning rate (after warmup).
    weight_decay : float, default 1.0
        AdamW decoupled weight decay.
    betas : tuple of (float, float), default (0.9, 0.98)
        AdamW (β1, β2).
    eps : float, default 1e-8
        AdamW epsilon.
    d_model : int, default 128
        Residual width; divisible by ``n_heads``.
    d_mlp : int, default 512
        MLP hidden width (the neurons).
    n_heads : int, default 4
        Attention heads; each has width ``d_model // n_heads`` (:attr:`d_head`).
    seed : int, default 0
        Seed of the parameter initialisation (and of the probes').
    data_seed : int, default 0
        Seed of the train/test split.
    loss_dtype : {"float64", "float32"}, default "float64"
        dtype in which log_softmax is taken for the training and evaluated losses;
        float32 reproduces the rounding artefact.
    eval_every : int, default 100
        Epochs between evaluations (records), which are also taken at epoch 0 and at
        the last epoch.
    checkpoint_every : int, default 500
        Epochs between weight checkpoints; 0: none.
    neuron_every : int, default 200
        Epochs between records of the per-neuron frequency table ``neuron_freq`` ``[d_mlp, (p−1)/2]``,
        the bulk of a run file: it is recorded at epoch 0 (or a continuation's first epoch), at the
        first evaluation in each later multiple of ``neuron_every`` (``epoch // neuron_every`` has grown
        since the previous record, so continuations share the original's grid) and at the run's last
        epoch; its epochs are ``neuron_step``. 0: at every evaluation (what runs before this setting
        did, and what a run file without the setting is continued with).
    neuron_dtype : {"float32", "float16"}, default "float32"
        Storage dtype of ``neuron_freq`` in the run file (float16: half the size, shares to ~3 digits).
    init : {"nanda", "tl-demo", "tl-demo-v1"}, default "nanda"
        Initialisation scheme (:func:`init_params`).
    biases : {"mlp", "frozen-zero"}, default "mlp"
        ``"mlp"``: trained (and weight-decayed) MLP biases, zero at init;
        ``"frozen-zero"``: no biases.
    out_vocab : {"p+1", "p"}, default "p+1"
        Unembed outputs: ``"p+1"`` includes the '=' token as in the paper's code,
        ``"p"`` only the p residues (:attr:`d_vocab_out`).
    warmup : int, default 10
        Linear learning-rate warmup: the update after e epochs uses
        ``lr · min(e / warmup, 1)``; 0: none.
    split : {"python-random", "torch-randperm"}, default "python-random"
        How the pairs are shuffled before the split: Python's
        ``random.Random(data_seed).shuffle`` (the paper's code) or
        ``torch.randperm`` (the TransformerLens demo).
    device : str, default "cpu"
        torch device.
    dtype : {"float32", "float64"}, default "float32"
        Parameter dtype; float64 for exactness tests and precision studies.
    stop_after_grok : int or None, default None
        Stop this many epochs after grokking (see ``stop_on``) instead of running all
        ``epochs``; None: never stop early. Grokking is the first evaluation with
        train and test accuracy both ≥ 0.99.
    stop_on : {"grok+loss", "grok"}, default "grok+loss"
        What ``stop_after_grok`` counts from: ``"grok+loss"`` the later of grokking
        and the first evaluation with test loss < 1e-6, ``"grok"`` grokking alone.
    probe_stencil : tuple of int, default ()
        Seed 001's probe offsets, distinct values from {-1, 0, 1}
        (:mod:`bumps.modadd.probe`); ``()``: no probe. A list is turned into a tuple
        at construction.
    probe_weight : float, default 0.0
        λ, the weight of the probe (or ``hidden-l2``) penalty in the loss; ≥ 0.
    probe_hidden : int, default 64
        Hidden width of each probe.
    probe_lr : float, default 1e-3
        Learning rate of the probes' own Adam.
    probe_kind : {"learned", "frozen", "frozen-matched", "hidden-l2"}, default "learned"
        ``"learned"``: probes trained each epoch; ``"frozen"``: the initial random
        probe, never trained; ``"hidden-l2"``: penalty ``λ · mean(h²)`` of the MLP
        hidden state, no probe (the stencil is ignored).
    """

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
    neuron_every: int = 200
    neuron_dtype: str = "float32"
    init: str = "nanda"
    biases: str = "mlp"
    out_vocab: str = "p+1"
    warmup: int = 10
    split: str = "python-random"
    device: str = "cpu"
    dtype: str = "float32"  # parameter dtype; float64 for exactness tests and precision studies
    stop_after_grok: int | None = None  # stop N epochs after max(grok epoch, first test loss < 1e-6)
    stop_on: str = "grok+loss"  # what stop_after_grok waits for: grok+loss (both) | grok (accuracy only)
    probe_stencil: tuple[int, ...] = ()  # seed 001's probe offsets from {-1, 0, 1}; () = no probe
    probe_weight: float = 0.0  # lambda
    probe_hidden: int = 64
    probe_lr: float = 1e-3
    probe_kind: str = "learned"  # learned | frozen | frozen-matched (bumps.modadd.probe) | hidden-l2 (lambda·mean h²)

    @classmethod
    def from_preset(cls, preset: str = "nanda", **overrides) -> ModAddConfig:
        """A validated config from a preset's values and overrides.

        Parameters
        ----------
        preset : {"nanda", "tl-demo", "small"}, default "nanda"
            Key of :data:`PRESETS`.
        **overrides
            Field values that replace the preset's and the defaults; those that are
            None are ignored (an unset flag).

        Returns
        -------
        ModAddConfig
            The config, validated.

        Raises
        ------
        BumpsError
            If ``preset`` is unknown or a value is invalid (:meth:`validate`).
        """
        if preset not in PRESETS:
            raise BumpsError(f"`preset` must be one of {', '.join(PRESETS)} (got {preset!r})")
        values = {**PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}}
        return cls(preset=preset, **values).validate()

    @property
    def d_head(self) -> int:
        """Width of each attention head, ``d_model // n_heads``."""
        return self.d_model // self.n_heads

    @property
    def d_vocab_out(self) -> int:
        """Number of unembed outputs: p + 1 for ``out_vocab="p+1"``, else p."""
        return self.p + 1 if self.out_vocab == "p+1" else self.p

    def __post_init__(self) -> None:
        try:  # a list from a spec or the CLI becomes the tuple the run records; bad entries fail in validate
            self.probe_stencil = tuple(int(k) for k in self.probe_stencil)
        except (TypeError, ValueError):
            pass

    def validate(self) -> ModAddConfig:
        """Check every field.

        Returns
        -------
        ModAddConfig
            ``self``, unchanged.

        Raises
        ------
        BumpsError
            With a message naming the parameter, for any bad value (including probe
            settings, :func:`bumps.modadd.probe.check_probe_settings`, and a ``device``
            that is not available).
        """

        def bad(msg):
            raise BumpsError(msg)

        if self.p < 3 or any(self.p % q == 0 for q in range(2, math.isqrt(self.p) + 1)):
            bad(f"`p` must be a prime >= 3 (got {self.p}); the Fourier analysis needs Z_p to be a field")
        if not (0 < self.train_frac < 1):
            bad(f"`train_frac` must be strictly between 0 and 1 (got {self.train_frac})")
        if self.epochs < 1:
            bad(f"`epochs` must be >= 1 (got {self.epochs}); a run that trains nothing is refused")
        for name in ("seed", "data_seed"):
            if getattr(self, name) < 0:
                bad(f"`{name}` must be >= 0 (got {getattr(self, name)})")
        for name in ("lr", "weight_decay"):
            v = getattr(self, name)
            if not math.isfinite(v) or v < 0 or (name == "lr" and v == 0):
                bad(f"`{name}` must be finite and {'> 0' if name == 'lr' else '>= 0'} (got {v})")
        for name in ("d_model", "d_mlp", "n_heads", "eval_every"):
            if getattr(self, name) <= 0:
                bad(f"`{name}` must be >= 1 (got {getattr(self, name)})")
        if self.d_model % self.n_heads:
            bad(f"`d_model` {self.d_model} must be divisible by `n_heads` {self.n_heads}")
        if self.checkpoint_every < 0:
            bad(f"`checkpoint_every` must be >= 0 (got {self.checkpoint_every})")
        if self.neuron_every < 0:
            bad(f"`neuron_every` must be >= 0 (got {self.neuron_every}; 0: at every evaluation)")
        if self.neuron_dtype not in ("float32", "float16"):
            bad(f"`neuron_dtype` must be float32 or float16 (got {self.neuron_dtype!r})")
        if self.dtype not in ("float64", "float32"):
            bad(f"`dtype` must be float32 or float64 (got {self.dtype!r})")
        if self.loss_dtype not in ("float64", "float32"):
            bad(f"`loss_dtype` must be float64 or float32 (got {self.loss_dtype!r})")
        n_train = int(self.train_frac * self.p * self.p)
        if n_train == 0 or n_train == self.p * self.p:
            bad(f"`train_frac` {self.train_frac} leaves an empty train or test set at p={self.p}")
        for name, allowed in (
            ("init", INITS),
            ("biases", BIASES),
            ("out_vocab", OUT_VOCABS),
            ("split", SPLITS),
        ):
            if getattr(self, name) not in allowed:
                bad(f"`{name}` must be one of {', '.join(allowed)} (got {getattr(self, name)!r})")
        if self.warmup < 0:
            bad(f"`warmup` must be >= 0 (got {self.warmup})")
        if self.stop_on not in ("grok+loss", "grok"):
            bad(f"`stop_on` must be grok+loss or grok (got {self.stop_on!r})")
        if self.stop_after_grok is not None and self.stop_after_grok < 0:
            bad(f"`stop_after_grok` must be >= 0 (got {self.stop_after_grok})")
        check_probe_settings(self.probe_stencil, self.probe_weight, self.probe_hidden, self.probe_lr, self.probe_kind)
        try:
            torch.empty(0, device=self.device)
        except (RuntimeError, AssertionError) as exc:
            bad(f"`device` {self.device!r} is not available here ({str(exc).splitlines()[0][:80]})")
        return self

    @property
    def has_probe(self) -> bool:
        """Whether training adds a probe-stencil or hidden-activation penalty."""
        return bool(self.probe_stencil) or self.probe_kind == "hidden-l2"

    def as_dict(self) -> dict:
        """Every field as plain data (``betas`` and ``probe_stencil`` as lists), for run configs.

        Returns
        -------
        dict
            Field name → value.
        """
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["betas"] = list(self.betas)
        out["probe_stencil"] = list(self.probe_stencil)
        return out


def shape_key(cfg: ModAddConfig) -> tuple:
    """Configs with equal keys can be trained together in one ensemble.

    Parameters
    ----------
    cfg : ModAddConfig
        A config.

    Returns
    -------
    tuple
        What determines the tensor shapes and the shared optimizer constants:
        ``(p, d_model, d_mlp, n_heads, biases, out_vocab, device, dtype, betas, eps)``.
        Everything else may differ per member.
    """
    return (
        cfg.p,
        cfg.d_model,
        cfg.d_mlp,
        cfg.n_heads,
        cfg.biases,
        cfg.out_vocab,
        cfg.device,
        cfg.dtype,
        tuple(cfg.betas),
        cfg.eps,
    )


# ---------------------------------------------------------------------------- data


def all_pairs(p: int) -> torch.Tensor:
    """Every input of the task as tokens.

    Parameters
    ----------
    p : int
        The modulus.

    Returns
    -------
    torch.Tensor
        ``[p², 3]`` int64 rows ``[a, b, p]`` (p is the '=' token), a-major: row
        ``a·p + b``.
    """
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    return torch.stack([a, b, torch.full_like(a, p)], 1)


def split_indices(cfg: ModAddConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Train and test row indices into :func:`all_pairs`, as each reference code shuffles.

    Parameters
    ----------
    cfg : ModAddConfig
        Reads ``p``, ``train_frac``, ``split`` and ``data_seed``.

    Returns
    -------
    train : torch.Tensor
        int64, the first ``int(train_frac·p²)`` rows of the shuffled order.
    test : torch.Tensor
        int64, the remaining rows.
    """
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

    Parameters
    ----------
    cfg : ModAddConfig
        Reads ``init``, ``seed``, ``biases``, the widths, ``p`` and ``out_vocab``.

    Returns
    -------
    dict of str to torch.Tensor
        ``W_E`` ``[p + 1, d_model]``, ``W_pos`` ``[3, d_model]``, ``W_Q``, ``W_K``,
        ``W_V`` ``[H, d_model, d_head]``, ``W_O`` ``[H, d_head, d_model]``, ``W_in``
        ``[d_model, d_mlp]``, ``W_out`` ``[d_mlp, d_model]``, ``W_U``
        ``[d_model, d_vocab_out]``, and for ``biases="mlp"`` zero ``b_in`` ``[d_mlp]``
        and ``b_out`` ``[d_model]``; float32 (torch's default dtype) on ``cfg.device``.

    Raises
    ------
    BumpsError
        If ``cfg.init`` is unknown.
    """
    g = torch.Generator().manual_seed(cfg.seed)
    d, h, dh, m, v_in, v_out = cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp, cfg.p + 1, cfg.d_vocab_out
    shapes = {
        "W_E": (v_in, d),
        "W_pos": (3, d),
        "W_Q": (h, d, dh),
        "W_K": (h, d, dh),
        "W_V": (h, d, dh),
        "W_O": (h, dh, d),
        "W_in": (d, m),
        "W_out": (m, d),
        "W_U": (d, v_out),
    }
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


def _mlp_unembed(params, resid: torch.Tensor) -> torch.Tensor:
    """MLP and unembed on residuals [..., d_model] (used by :func:`forward_full`)."""
    pre = resid @ params["W_in"]
    if "b_in" in params:
        pre = pre + params["b_in"]
    out = torch.relu(pre) @ params["W_out"]
    if "b_out" in params:
        out = out + params["b_out"]
    return (resid + out) @ params["W_U"]


class _WeightedRows(torch.autograd.Function):
    """``out[m, i] = Σ_j w[m, i, j] · table[m, row(i, j)]``: each input's softmax-weighted sum of
    3·H table rows (position 0: token a's H rows, position 1: token b's, position 2: '=''s).

    Forward is ``embedding_bag``. Its generic backward is slow on CPU, so the backward groups
    inputs by token: for each token the gradients are small dense matrix products
    ([H, n] @ [n, D] and [n, D] @ [D, H]), plus one product for the shared '=' rows.
    """

    @staticmethod
    def forward(ctx, w, table, a, b, vocab: int):
        n_models, batch, k = w.shape
        heads, n_rows, dim = k // 3, table.shape[1], table.shape[2]
        hh = torch.arange(heads, device=w.device)
        base = torch.arange(n_models, device=w.device)[:, None, None] * n_rows
        idx = torch.cat(
            [
                base + a[..., None] * heads + hh,
                base + (vocab + b[..., None]) * heads + hh,
                (base + 2 * vocab * heads + hh).expand(n_models, batch, heads),
            ],
            -1,
        )
        out = F.embedding_bag(
            idx.reshape(-1, k), table.reshape(-1, dim), per_sample_weights=w.reshape(-1, k), mode="sum"
        )
        ctx.save_for_backward(w, table, a, b)
        ctx.vocab = vocab
        return out.view(n_models, batch, dim)

    @staticmethod
    def backward(ctx, grad):
        w, table, a, b = ctx.saved_tensors
        vocab = ctx.vocab
        n_models, batch, k = w.shape
        heads, dim = k // 3, table.shape[-1]
        t = table.view(n_models, 2 * vocab + 1, heads, dim)
        grad_w, grad_t = torch.empty_like(w), torch.empty_like(t)
        flat_grad = grad.reshape(-1, dim)
        for pos, tok in ((0, a), (1, b)):
            where, slots = _token_layout(tok, vocab)
            cols = slice(pos * heads, (pos + 1) * heads)
            # padding slots read row 0: their weights are 0 and their outputs are dropped
            g = flat_grad.index_select(0, slots.clamp_max(n_models * batch - 1)).view(n_models * vocab, -1, dim)
            wp = torch.cat([w[..., cols].reshape(-1, heads), w.new_zeros(1, heads)])
            wp = wp.index_select(0, slots).view(n_models * vocab, -1, heads)  # [M·V, n, H]
            tp = t[:, pos * vocab : (pos + 1) * vocab].reshape(n_models * vocab, heads, dim)
            grad_t[:, pos * vocab : (pos + 1) * vocab] = torch.bmm(wp.transpose(1, 2), g).view(
                n_models, vocab, heads, dim
            )
            grad_w[..., cols] = (
                torch.bmm(g, tp.transpose(1, 2)).view(-1, heads).index_select(0, where).view(n_models, batch, heads)
            )
        grad_t[:, 2 * vocab] = w[..., 2 * heads :].transpose(1, 2) @ grad
        grad_w[..., 2 * heads :] = grad @ t[:, 2 * vocab].transpose(1, 2)
        return grad_w, grad_t.view_as(table), None, None, None


def _token_layout(tok: torch.Tensor, vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Group each model's inputs by token into a padded [M, V, n_max] layout.

    Returns ``where`` [M·B] (each input's slot in the layout) and ``slots`` [M·V·n_max] (the
    input in each slot, or M·B for padding).
    """
    n_models, batch = tok.shape
    order = torch.sort(tok, dim=1, stable=True).indices
    tok_sorted = tok.gather(1, order)
    counts = torch.zeros(n_models, vocab, dtype=torch.long, device=tok.device)
    counts.scatter_add_(1, tok, torch.ones_like(tok))
    n_max = int(counts.max())
    rank = torch.arange(batch, device=tok.device)[None] - (counts.cumsum(1) - counts).gather(1, tok_sorted)
    slot = torch.empty_like(tok).scatter_(1, order, tok_sorted * n_max + rank)
    where = (torch.arange(n_models, device=tok.device)[:, None] * vocab * n_max + slot).reshape(-1)
    slots = torch.full((n_models * vocab * n_max,), n_models * batch, dtype=torch.long, device=tok.device)
    slots[where] = torch.arange(n_models * batch, device=tok.device)
    return where, slots


def forward_many(params, a: torch.Tensor, b: torch.Tensor, mlp_in: bool = False) -> dict[str, torch.Tensor]:
    """Last-position forward of M stacked models: every parameter has a leading model axis.

    The '=' query is the same for every input, so attention at the last position is a
    softmax over three per-head scores read from token tables, and the attention output is
    a weighted sum of 3·H rows of value·W_O tables. Everything linear in that output (the
    MLP input projection ``W_in`` and the unembed) is applied to the tables once
    (vocabulary × heads rows) and gathered with ``embedding_bag`` — a weighted sum of
    table rows per input — instead of multiplying every input's residual. The only
    per-input matrix product left is ``hidden @ (W_out W_U)``.

    Parameters
    ----------
    params : dict of str to torch.Tensor
        The parameters of :func:`init_params`, each stacked ``[M, ...]``; ``b_in`` and
        ``b_out`` are optional.
    a : torch.Tensor
        ``[M, B]`` int64: each model's first input token, in ``0..p − 1``.
    b : torch.Tensor
        ``[M, B]`` int64: each model's second input token.
    mlp_in : bool, default False
        Also return the residual the MLP reads.

    Returns
    -------
    dict of str to torch.Tensor
        ``logits`` ``[M, B, d_vocab_out]``, ``hidden`` ``[M, B, d_mlp]`` (post-ReLU MLP
        activations) and, if asked, ``mlp_in`` ``[M, B, d_model]``.
    """
    e, pos = params["W_E"], params["W_pos"]  # [M, V, d], [M, 3, d]
    n_models, vocab, d = e.shape
    heads, dh = params["W_Q"].shape[1], params["W_Q"].shape[-1]
    x_eq = e[:, -1] + pos[:, 2]  # [M, d]: '=' at position 2, the query and the residual base
    q = torch.einsum("md,mhde->mhe", x_eq, params["W_Q"]) / math.sqrt(dh)
    w_qk = torch.einsum("mhde,mhe->mdh", params["W_K"], q)  # [M, d, H]: x -> score per head
    w_ov = torch.einsum("mhde,mhef->mhdf", params["W_V"], params["W_O"])  # [M, H, d, d]
    x01 = torch.cat([e + pos[:, 0:1], e + pos[:, 1:2]], 1)  # [M, 2V, d]: every token at positions 0, 1
    scores = x01 @ w_qk  # [M, 2V, H]
    s2 = (x_eq[:, None] @ w_qk)[:, 0]  # [M, H]
    rows = torch.arange(n_models, device=a.device)[:, None] * (2 * vocab)
    # index_select (not x[i]): its backward is a deterministic index_add
    s0 = scores.reshape(-1, heads).index_select(0, (rows + a).reshape(-1)).view(*a.shape, heads)
    s1 = scores.reshape(-1, heads).index_select(0, (rows + vocab + b).reshape(-1)).view(*a.shape, heads)
    s2 = s2[:, None].expand_as(s0)
    weights = torch.stack([s0, s1, s2], 2).softmax(2)  # [M, B, 3, H]
    # value·W_O rows: (pos 0, token v, head h), (pos 1, v, h), (pos 2 '=', h): R = (2V + 1)·H per model
    vo = torch.einsum("mvd,mhdf->mvhf", torch.cat([x01, x_eq[:, None]], 1), w_ov).reshape(n_models, -1, d)
    w_u = params["W_U"]
    table = torch.cat([vo @ params["W_in"], vo @ w_u], -1)  # [M, R, d_mlp + d_vocab_out]
    weights = weights.reshape(*a.shape, 3 * heads)
    mixed = _WeightedRows.apply(weights, table, a, b, vocab)
    d_mlp, d_out = params["W_in"].shape[-1], w_u.shape[-1]
    pre_const = x_eq[:, None] @ params["W_in"]  # [M, 1, d_mlp]
    out_const = x_eq[:, None] @ w_u  # [M, 1, d_out]
    if "b_in" in params:
        pre_const = pre_const + params["b_in"][:, None]
    if "b_out" in params:
        out_const = out_const + params["b_out"][:, None] @ w_u
    hidden = torch.relu(mixed[..., :d_mlp] + pre_const)
    logits = mixed[..., d_mlp : d_mlp + d_out] + out_const + hidden @ (params["W_out"] @ w_u)
    out = {"logits": logits, "hidden": hidden}
    if mlp_in:  # its own gather, so asking for it leaves the logits' numbers untouched
        out["mlp_in"] = _WeightedRows.apply(weights, vo, a, b, vocab) + x_eq[:, None]
    return out


def forward_last(params, tokens: torch.Tensor, return_acts: bool = False):
    """Logits at the last position of one model (:func:`forward_many` with M = 1).

    Parameters
    ----------
    params : dict of str to torch.Tensor
        One model's parameters (:func:`init_params`, no model axis).
    tokens : torch.Tensor
        ``[B, 3]`` int64 inputs ``[a, b, =]``; only columns 0 and 1 are read.
    return_acts : bool, default False
        Also return the post-ReLU MLP activations.

    Returns
    -------
    logits : torch.Tensor
        ``[B, d_vocab_out]``.
    hidden : torch.Tensor
        ``[B, d_mlp]``, only if ``return_acts`` (then a tuple ``(logits, hidden)``).
    """
    out = forward_many({k: v[None] for k, v in params.items()}, tokens[None, :, 0], tokens[None, :, 1])
    logits = out["logits"][0]
    return (logits, out["hidden"][0]) if return_acts else logits


def forward_full(params, tokens: torch.Tensor) -> torch.Tensor:
    """The reference forward over all positions (causal attention); returns last-position logits.

    Parameters
    ----------
    params : dict of str to torch.Tensor
        One model's parameters (:func:`init_params`, no model axis).
    tokens : torch.Tensor
        ``[B, 3]`` int64 inputs ``[a, b, =]``.

    Returns
    -------
    torch.Tensor
        ``[B, d_vocab_out]``.
    """
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
    """Mean cross-entropy with log_softmax in ``dtype`` (float32 reproduces the rounding artefact).

    Parameters
    ----------
    logits : torch.Tensor
        ``[B, C]``.
    labels : torch.Tensor
        ``[B]`` int64 classes in ``0..C − 1``.
    dtype : {"float64", "float32"}, default "float64"
        dtype of the log_softmax and the result.

    Returns
    -------
    torch.Tensor
        0-d: the mean over the batch.
    """
    logp = logits.to(getattr(torch, dtype)).log_softmax(-1)
    return -logp.gather(-1, labels[:, None]).mean()
