"""Train induction-head transformers, recording with the recorder; stacked ensembles, resumable, with head knockouts.

:func:`train_induction` trains M models of equal shapes together on the stacked-ensemble core
(:mod:`bumps.ensemble`): every parameter carries a leading model axis, one forward
(:func:`bumps.induction.model.forward`) serves all of them and one stacked AdamW updates them, so model i
follows exactly the equations of its own single run. At every ``record_every``-th step each model's
:class:`bumps.recorder.Recorder` records, from the forward of that step's training batch (before its update):

* ``loss`` (all next-token predictions) and ``loss_pred`` (the predictable ones,
  :mod:`bumps.induction.data`); with infinite data the batch is fresh, so these are also test losses;
* ``induction``, ``prev_token``, ``head_out_norm`` ``[T, layer, head]`` and ``layer_induction``,
  ``layer_prev_token`` ``[T, layer]`` (:mod:`bumps.induction.scores`);
* ``weight_norm`` ``[T, param]`` over :data:`bumps.induction.model.PARAM_ORDER`;
* with a finite training set, ``test_loss`` and ``test_loss_pred`` on the held-out test set.

Runs autosave every ``autosave_every`` steps with the weights and AdamW state (``resume``): Ctrl-C or a
killed process loses at most that many steps, rerunning the same command continues, and asking a finished
run for more ``steps`` extends it. Every ``checkpoint_every`` steps the weights and AdamW state are also kept
in the run (``checkpoints``, step → state) for knockout continuations (:mod:`bumps.induction.knockout`).

A member may start from a given state (``start``: params, AdamW state, step) with heads knocked out
(``InductionConfig.knockout``): their W_Q, W_K, W_V, W_O slices and AdamW moments are zeroed at the start
and their gradients masked, so they stay exactly zero.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from bumps import ensemble
from bumps.ensemble import Member, StackedTrainer
from bumps.induction.data import fixed_sets, induction_queries, make_batch, step_generator
from bumps.induction.model import (
    HEAD_PARAMS,
    PARAM_ORDER,
    SETUP_CHOICES,
    InductionConfig,
    forward,
    init_params,
    predictable_mean,
    token_losses,
)
from bumps.induction.scores import scores

SHAPE_FIELDS = (
    "n_ctx",
    "vocab",
    "sub_len",
    "n_repeats",
    "batch_size",
    "d_model",
    "n_heads",
    "n_layers",
    "dtype",
    "device",
    "betas",
    "eps",
)
SCORE_KEYS = ("induction", "prev_token", "head_out_norm", "layer_induction", "layer_prev_token")


def axes_of(cfg: InductionConfig) -> dict[str, tuple[str, ...]]:
    """The recorded series of a run and their axes after time (module docstring)."""
    axes = {
        "loss": (),
        "loss_pred": (),
        "induction": ("layer", "head"),
        "prev_token": ("layer", "head"),
        "head_out_norm": ("layer", "head"),
        "layer_induction": ("layer",),
        "layer_prev_token": ("layer",),
        "weight_norm": ("param",),
    }
    if cfg.train_size is not None:
        axes.update(test_loss=(), test_loss_pred=())
    return axes


def default_run_path(cfg: InductionConfig) -> Path:
    """``runs/induction_seed{seed}.pt``, or ``runs/induction_{hash}_seed{seed}.pt`` when settings other than the
    seed differ from the defaults (:func:`bumps.ensemble.default_run_path`)."""
    return ensemble.default_run_path("induction", cfg, InductionConfig())


def run_paths(configs: list[InductionConfig], out: str | Path | None) -> list[Path]:
    """One run file per model: each model's :func:`default_run_path`, or ``out`` with ``{seed}`` replaced by
    each model's seed (:func:`bumps.ensemble.run_paths`)."""
    return ensemble.run_paths(configs, out, "induction", InductionConfig())


def alive_mask(cfg: InductionConfig) -> torch.Tensor:
    """``[n_layers, H]``: 0 for the heads ``cfg.knockout`` removes (validated by the config), else 1."""
    mask = torch.ones(cfg.n_layers, cfg.n_heads)
    for layer, head in cfg.knockout:
        mask[layer, head] = 0.0
    return mask


def knock_out(params: dict[str, torch.Tensor], opt: dict, mask: torch.Tensor) -> None:
    """Zero, in place, the knocked-out heads' weight slices and AdamW moments of one model.

    Parameters
    ----------
    params : dict of str to torch.Tensor
        One model's parameters (no model axis).
    opt : dict or None
        Its :meth:`bumps.adamw.AdamWState.member` state (None: not started yet).
    mask : torch.Tensor
        ``[n_layers, H]`` (:func:`alive_mask`).
    """
    for name in HEAD_PARAMS:
        m = mask.to(params[name].dtype).view(*mask.shape, 1, 1)
        params[name].mul_(m)
        if opt is not None:
            opt["exp_avg"][name].mul_(m)
            opt["exp_avg_sq"][name].mul_(m)


def step_elements(configs: list[InductionConfig]) -> int:
    """Elements of the largest tensors of one ensemble step (for :func:`bumps.threads.choose_threads`)."""
    c = configs[0]
    return len(configs) * c.batch_size * (c.n_ctx - 1) * max(c.vocab, c.n_heads * (c.n_ctx - 1))


class _Member(Member):
    """One model of the ensemble: its config, data, head mask, checkpoints, recorder and resumable state."""

    noun = "an induction run"

    def __init__(self, cfg: InductionConfig, out: Path, command: str | None, start: dict | None = None):
        super().__init__(cfg, out, command, init_params(cfg), axes_of(cfg), SETUP_CHOICES)
        self.mask = alive_mask(cfg)
        if start is not None:
            self.params = {k: v.clone().to(cfg.device) for k, v in start["params"].items()}
            self.opt = {
                "step": start["optimizer"]["step"],
                **{k: {n: t.clone() for n, t in start["optimizer"][k].items()} for k in ("exp_avg", "exp_avg_sq")},
            }
            self.step = int(start["step"])
        knock_out(self.params, self.opt, self.mask)
        self.checkpoints: dict[str, dict] = {}
        self.train = self.test = None
        if cfg.train_size is not None:
            self.train, self.test = fixed_sets(cfg.layout, cfg.train_size, cfg.test_size, cfg.the_data_seed)

    def restore_extra(self, run: dict) -> None:
        self.checkpoints = dict(run.get("checkpoints", {}))

    def extra_state(self) -> dict:
        return {"checkpoints": self.checkpoints}

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(tokens [B, n_ctx], starts [B, n_repeats])`` of ``step``."""
        g = step_generator(self.cfg.the_data_seed, step)
        if self.train is None:
            tokens, starts = make_batch(self.cfg.batch_size, self.cfg.layout, g)
        else:
            pick = torch.randint(0, len(self.train[0]), (self.cfg.batch_size,), generator=g)
            tokens, starts = self.train[0][pick], self.train[1][pick]
        return tokens.to(self.cfg.device), starts.to(self.cfg.device)


def _weight_norms(params: dict[str, torch.Tensor]) -> torch.Tensor:
    """``[M, len(PARAM_ORDER)]`` parameter norms."""
    return torch.stack([params[k].flatten(1).norm(dim=1) for k in PARAM_ORDER], 1)


def test_losses(params: dict[str, torch.Tensor], tokens: torch.Tensor, starts: torch.Tensor, cfg, chunk: int = 128):
    """``(loss, loss_pred)`` of one model on a fixed set, in chunks.

    Parameters
    ----------
    params : dict of str to torch.Tensor
        One model's parameters with a model axis of 1.
    tokens, starts : torch.Tensor
        ``[N, n_ctx]``, ``[N, n_repeats]``.
    cfg : InductionConfig
        Reads ``sub_len`` and ``loss_dtype``.
    chunk : int, default 128
        Sequences per forward.

    Returns
    -------
    tuple of float
        Mean loss over every prediction, and over the predictable ones.
    """
    total = pred = 0.0
    for i in range(0, len(tokens), chunk):
        t, s = tokens[None, i : i + chunk], starts[None, i : i + chunk]
        logits, _ = forward(params, t)
        losses = token_losses(logits, t, cfg.loss_dtype)
        q, _ = induction_queries(s, cfg.sub_len)
        total += float(losses.mean()) * t.shape[1]
        pred += float(predictable_mean(losses, q)[0]) * t.shape[1]
    return total / len(tokens), pred / len(tokens)


class _Trainer(StackedTrainer):
    def __init__(self, members: list[_Member], progress, autosave_every: int, stop_at: int | None):
        super().__init__(members, PARAM_ORDER, progress, autosave_every, stop_at)
        if self.active:
            self.mask = torch.stack([members[i].mask for i in self.active]).to(self.dev)  # [M, L, H]

    def _start(self) -> None:
        if self.step == 0:
            self._checkpoint()

    def _select(self, index: torch.Tensor) -> None:
        super()._select(index)
        self.mask = self.mask[index]

    def _checkpoint(self) -> None:
        for j, i in enumerate(self.active):
            m = self.members[i]
            if m.cfg.checkpoint_every and self.step % m.cfg.checkpoint_every == 0:
                params = {k: v[j].detach().cpu().clone() for k, v in self.params.items()}
                m.checkpoints[str(self.step)] = {"params": params, "optimizer": self.opt.member(j), "step": self.step}

    def _record(self, tokens, starts, losses) -> None:
        with torch.no_grad():
            _, cache = forward(self.params, tokens, keep=True)
            query, source = induction_queries(starts, self.cfg.sub_len)
            sc = scores(cache, self.params["W_O"], query, source)
            pred = predictable_mean(losses, query)
            weights = _weight_norms(self.params)
            for j, i in enumerate(self.active):
                m = self.members[i]
                values = {"loss": losses[j].mean(), "loss_pred": pred[j], "weight_norm": weights[j]}
                values.update({k: sc[k][j] for k in SCORE_KEYS})
                if m.test is not None:
                    one = {k: v[j : j + 1] for k, v in self.params.items()}
                    values["test_loss"], values["test_loss_pred"] = test_losses(one, *m.test, m.cfg)
                m.recorder.record(self.step, **values)

    def _update(self) -> float:
        members = [self.members[i] for i in self.active]
        batches = [m.batch(self.step) for m in members]
        tokens = torch.stack([b[0] for b in batches])  # [M, B, n_ctx]
        starts = torch.stack([b[1] for b in batches])  # [M, B, R]
        with self._tracked():
            logits, _ = forward(self.params, tokens)
            losses = token_losses(logits, tokens, self.cfg.loss_dtype)  # [M, B, S]
            grads = self._grads(losses.mean((1, 2)).sum())
        for name in HEAD_PARAMS:
            grads[name] = grads[name] * self.mask.to(grads[name].dtype)[..., None, None]
        if self.step % self.cfg.record_every == 0:
            self._record(tokens, starts, losses.detach())
        self._adamw_step(grads)
        self._checkpoint()
        return float(losses[0].detach().mean())


def train_induction(
    configs: list[InductionConfig],
    outs: list[str | Path],
    *,
    resume: str = "auto",
    progress: Callable[..., None] | None = None,
    autosave_every: int = 500,
    stop_at: int | None = None,
    command: str | None = None,
    starts: list[dict | None] | None = None,
) -> list[dict]:
    """Train M models of equal shapes together and write one recorded run file per model.

    Parameters
    ----------
    configs : list of InductionConfig
        The models (validated here); equal in :data:`SHAPE_FIELDS`.
    outs : list of str or pathlib.Path
        One distinct run file per model.
    resume : {"auto", "never"}, default "auto"
        ``"auto"``: a run file at ``out`` with the same settings (``steps`` aside) is continued from its last
        autosave, or reused when it is finished with at least ``steps`` steps, and one with other settings is
        refused; ``"never"``: start fresh, replacing what is there.
    progress : callable, optional
        ``progress(done, total, loss=...)`` after every step; steps summed over models.
    autosave_every : int, default 500
        Steps between autosaves (with weights and AdamW state); 0: none.
    stop_at : int, optional
        Stop as Ctrl-C would after this step (tests).
    command : str, optional
        The command line recorded in each run; None: ``sys.argv``.
    starts : list of (dict or None), optional
        Per model, a state to start from instead of the initialisation: ``params`` (name → tensor),
        ``optimizer`` (:meth:`bumps.adamw.AdamWState.member`) and ``step`` (a checkpoint of another run).

    Returns
    -------
    list of dict
        The runs, in input order.

    Raises
    ------
    BumpsError
        For bad settings, unequal shapes, duplicate or unwritable outputs, a run file that cannot be
        continued; :class:`bumps.ensemble.Interrupted` after saving, on Ctrl-C or at ``stop_at``.
    """
    outs = ensemble.prepare(configs, outs, resume, SHAPE_FIELDS, "train_induction")
    starts = starts or [None] * len(configs)
    members = [_Member(c, o, command, s) for c, o, s in zip(configs, outs, starts, strict=True)]
    ensemble.resume_members(members, resume)
    _Trainer(members, progress, autosave_every, stop_at).run()
    return [m.run for m in members]
