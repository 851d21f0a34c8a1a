"""Train induction-head transformers, recording with the recorder; stacked ensembles, resumable, with head knockouts.

:func:`train_induction` trains M models of equal shapes together: every parameter carries a leading model
axis, one forward (:func:`bumps.induction.model.forward`) serves all of them and one stacked AdamW
(:mod:`bumps.adamw`) updates them, so model i follows exactly the equations of its own single run. At every
``record_every``-th step each model's :class:`bumps.recorder.Recorder` records, from the forward of that
step's training batch (before its update):

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

from bumps.adamw import AdamWState, adamw_step
from bumps.errors import BumpsError
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
from bumps.io.provenance import settings_hash
from bumps.io.runfile import check_writable, is_run, safe_load
from bumps.recorder import KIND, Recorder
from bumps.stopflag import StopFlag

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
RESUMABLE = ("steps",)  # settings a continued run may change
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


class Interrupted(BumpsError):
    """Training was stopped (Ctrl-C); every unfinished run file holds what it recorded and can be continued."""


def default_run_path(cfg: InductionConfig) -> Path:
    """``runs/induction_seed{seed}.pt``, or ``runs/induction_{hash}_seed{seed}.pt`` when settings other than the
    seed differ from the defaults (``hash``: :func:`bumps.io.provenance.settings_hash` of those), so that runs of
    different settings never share a file. ``steps`` and ``device`` do not count (a run may be extended)."""
    base, mine = InductionConfig().as_dict(), cfg.as_dict()
    changed = {k: v for k, v in mine.items() if k not in ("seed", "steps", "device") and base[k] != v}
    tag = f"_{settings_hash(changed)}" if changed else ""
    return Path("runs") / f"induction{tag}_seed{cfg.seed}.pt"


def run_paths(configs: list[InductionConfig], out: str | Path | None) -> list[Path]:
    """One run file per model.

    Parameters
    ----------
    configs : list of InductionConfig
        The models.
    out : str, pathlib.Path or None
        None: each model's :func:`default_run_path`. A pattern: ``{seed}`` in it is replaced by each model's
        seed; it must contain ``{seed}`` when there is more than one model.

    Returns
    -------
    list of pathlib.Path
        In the order of ``configs``.

    Raises
    ------
    BumpsError
        If several models would share one file.
    """
    if out is None:
        return [default_run_path(c) for c in configs]
    pattern = str(out)
    if len(configs) > 1 and "{seed}" not in pattern:
        raise BumpsError(
            f"`out` {pattern} must contain {{seed}} for several seeds, e.g. runs/induction_seed{{seed}}.pt"
        )
    return [Path(pattern.replace("{seed}", str(c.seed))) for c in configs]


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


class _Member:
    """One model of the ensemble: its config, data, recorder and resumable state."""

    def __init__(self, cfg: InductionConfig, out: Path, command: str | None, start: dict | None = None):
        self.cfg, self.out, self.run = cfg, out, None
        self.params = init_params(cfg)
        self.opt: dict | None = None
        self.step = 0
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
        self.state: Callable[[], dict] = lambda: {}
        self.recorder = Recorder(
            out,
            config={**cfg.as_dict(), "setup_choices": SETUP_CHOICES},
            seed=cfg.seed,
            axes=axes_of(cfg),
            every=cfg.record_every,
            autosave_every=0,  # the trainer saves after whole steps, with the weights
            command=command,
            extras=lambda: self.state(),
        )

    def resume_from(self, run: dict) -> None:
        if not is_run(run) or run.get("kind") != KIND or "resume" not in run:
            raise BumpsError(
                f"{self.out} exists and is not an induction run this can continue; use another `out` or `force`"
            )
        self.recorder.restore(run, ignore=RESUMABLE + ("setup_choices",))
        res = run["resume"]
        self.params = {k: v.to(self.cfg.device) for k, v in res["params"].items()}
        self.opt, self.step = res["optimizer"], int(res["step"])
        self.checkpoints = dict(run.get("checkpoints", {}))
        if run["config"].get("final") and self.step >= self.cfg.steps:
            self.run = run

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


class _Trainer:
    def __init__(self, members: list[_Member], progress, autosave_every: int, stop_at: int | None):
        self.members, self.progress, self.autosave_every, self.stop_at = members, progress, autosave_every, stop_at
        self.active = [i for i, m in enumerate(members) if m.run is None]
        for i in self.active:
            self.members[i].state = lambda i=i: self._state(i)
        if not self.active:
            return
        steps = {members[i].step for i in self.active}
        if len(steps) > 1:
            raise BumpsError(f"the unfinished runs are at different steps {sorted(steps)}; continue them separately")
        self.step = steps.pop()
        cfg = members[self.active[0]].cfg
        self.cfg, self.dev = cfg, torch.device(cfg.device)
        self.params = {k: torch.stack([members[i].params[k] for i in self.active]) for k in PARAM_ORDER}
        zero = AdamWState.zeros(self.params)
        self.opt = AdamWState.stack(
            [members[i].opt if members[i].opt is not None else zero.member(j) for j, i in enumerate(self.active)],
            self.dev,
        )
        self.mask = torch.stack([members[i].mask for i in self.active]).to(self.dev)  # [M, L, H]

    def _state(self, i: int) -> dict:
        if i not in self.active:
            return {"resume": self.members[i].run["resume"], "checkpoints": self.members[i].checkpoints}
        j = self.active.index(i)
        params = {k: v[j].detach().cpu().clone() for k, v in self.params.items()}
        resume = {"params": params, "optimizer": self.opt.member(j), "step": self.members[i].step}
        return {"resume": resume, "checkpoints": self.members[i].checkpoints}

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
        for v in self.params.values():
            v.requires_grad_(True)
        logits, _ = forward(self.params, tokens)
        losses = token_losses(logits, tokens, self.cfg.loss_dtype)  # [M, B, S]
        names = list(self.params)
        grad = torch.autograd.grad(losses.mean((1, 2)).sum(), [self.params[k] for k in names])
        grads = dict(zip(names, grad, strict=True))
        for v in self.params.values():
            v.requires_grad_(False)
        for name in HEAD_PARAMS:
            grads[name] = grads[name] * self.mask.to(grads[name].dtype)[..., None, None]
        if self.step % self.cfg.record_every == 0:
            self._record(tokens, starts, losses.detach())
        lr = torch.tensor(
            [m.cfg.lr * (min(self.step / m.cfg.warmup, 1.0) if m.cfg.warmup else 1.0) for m in members],
            dtype=torch.float64,
            device=self.dev,
        )
        wd = torch.tensor([m.cfg.weight_decay for m in members], dtype=torch.float64, device=self.dev)
        adamw_step(self.params, grads, self.opt, lr, wd, self.cfg.betas, self.cfg.eps)
        self.step += 1
        for m in members:
            m.step = self.step
        self._checkpoint()
        return float(losses[0].detach().mean())

    def _drop_finished(self) -> None:
        done = [j for j, i in enumerate(self.active) if self.members[i].step >= self.members[i].cfg.steps]
        for j in done:
            m = self.members[self.active[j]]
            m.run = m.recorder.close("finished")
        if done:
            keep = [j for j in range(len(self.active)) if j not in done]
            index = torch.tensor(keep, dtype=torch.long, device=self.dev)
            self.params = {k: v[index].clone() for k, v in self.params.items()}
            self.opt = self.opt.select(index)
            self.mask = self.mask[index]
            self.active = [self.active[j] for j in keep]

    def run(self) -> None:
        if not self.active:
            return
        total = sum(m.cfg.steps for m in self.members)
        if self.step == 0:
            self._checkpoint()
        with StopFlag() as flag:
            while True:
                self._drop_finished()
                if not self.active:
                    return
                loss = self._update()
                if self.autosave_every and self.step % self.autosave_every == 0:
                    for i in self.active:
                        if self.members[i].step < self.members[i].cfg.steps:
                            self.members[i].recorder.save(final=False)
                if self.progress is not None:
                    done = sum(min(m.step, m.cfg.steps) for m in self.members)
                    self.progress(done, total, loss=loss)
                if flag.hit or (self.stop_at is not None and self.step >= self.stop_at):
                    unfinished = [i for i in self.active if self.members[i].step < self.members[i].cfg.steps]
                    for i in unfinished:
                        self.members[i].recorder.save(final=False)
                    self._drop_finished()
                    outs = ", ".join(str(self.members[i].out) for i in unfinished)
                    raise Interrupted(
                        f"interrupted at step {self.step}; saved {outs}; rerun the same command to continue"
                    )


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
        continued; :class:`Interrupted` after saving, on Ctrl-C or at ``stop_at``.
    """
    if not configs or len(configs) != len(outs):
        raise BumpsError(f"train_induction needs one out per config (got {len(configs)} configs, {len(outs)} outs)")
    if resume not in ("auto", "never"):
        raise BumpsError(f"`resume` must be auto or never (got {resume!r})")
    for c in configs:
        c.validate()
        diff = [k for k in SHAPE_FIELDS if getattr(c, k) != getattr(configs[0], k)]
        if diff:
            raise BumpsError(f"models trained together need equal {', '.join(diff)}; train them separately")
    outs = [check_writable(o) for o in outs]
    if len({o.resolve() for o in outs}) != len(outs):
        raise BumpsError("two models write the same `out`; give each its own file (put {seed} in it)")
    starts = starts or [None] * len(configs)
    members = [_Member(c, o, command, s) for c, o, s in zip(configs, outs, starts, strict=True)]
    if resume == "auto":
        for m in members:
            if m.out.exists():
                m.resume_from(safe_load(m.out))
    _Trainer(members, progress, autosave_every, stop_at).run()
    return [m.run for m in members]
