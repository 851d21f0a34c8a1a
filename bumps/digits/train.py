"""Train 5-digit addition transformers, an ensemble in one process, recording every step with the recorder.

:func:`train_digits` trains M models of equal shapes together: every parameter carries a leading model axis,
one forward (:func:`bumps.digits.model.forward`) serves all of them and one stacked AdamW
(:mod:`bumps.adamw`) updates them, so model i follows exactly the equations of its own single run (its own
seed, data seed and batches). At every ``record_every``-th step each model's :class:`bumps.recorder.Recorder`
records, from the forward of that step's training batch (before its update):

* ``loss`` and ``loss_per_digit`` ``[T, digit]``, ``acc_per_digit`` ``[T, digit]`` (digit 0: the carry
  digit, :mod:`bumps.digits.data`);
* ``head_attn`` ``[T, digit, head, position]``: the batch-mean attention of the query predicting each answer
  digit to each input position (0-4: a's digits, 5: ``+``, 6-10: b's digits, 11: ``=``);
* ``head_norm`` ``[T, head]`` (the Frobenius norm of the head's W_Q, W_K, W_V and W_O together) and
  ``weight_norm`` ``[T, param]`` over :data:`PARAM_ORDER`;
* with a finite training set, ``test_loss``, ``test_loss_per_digit`` and ``test_acc_per_digit`` on the
  held-out test set.

Runs autosave (every ``autosave_every`` steps) with the weights and AdamW state, so that Ctrl-C, or a killed
process, loses at most that many steps: rerunning the same command continues every unfinished model
(``resume="auto"``), and a finished run is extended by asking for more ``steps``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from bumps.adamw import AdamWState, adamw_step
from bumps.digits.data import answer_positions, random_operands, sequences, split_pairs, step_generator
from bumps.digits.model import SETUP_CHOICES, DigitsConfig, forward, init_params, per_digit_loss
from bumps.errors import BumpsError
from bumps.io.provenance import settings_hash
from bumps.io.runfile import check_writable, is_run, safe_load
from bumps.recorder import KIND, Recorder
from bumps.stopflag import StopFlag

PARAM_ORDER = ("W_E", "W_pos", "W_Q", "W_K", "W_V", "W_O", "W_in", "b_in", "W_out", "b_out", "W_U")
SHAPE_FIELDS = ("n_digits", "batch_size", "d_model", "n_heads", "d_mlp", "dtype", "device", "betas", "eps")
RESUMABLE = ("steps",)  # settings a continued run may change


def axes_of(cfg: DigitsConfig) -> dict[str, tuple[str, ...]]:
    """The recorded series of a run and their axes after time (module docstring)."""
    axes = {
        "loss": (),
        "loss_per_digit": ("digit",),
        "acc_per_digit": ("digit",),
        "head_attn": ("digit", "head", "position"),
        "head_norm": ("head",),
        "weight_norm": ("param",),
    }
    if cfg.train_size is not None:
        axes.update(test_loss=(), test_loss_per_digit=("digit",), test_acc_per_digit=("digit",))
    return axes


class Interrupted(BumpsError):
    """Training was stopped (Ctrl-C); every unfinished run file holds what it recorded and can be continued."""


def default_run_path(cfg: DigitsConfig) -> Path:
    """``runs/digits_seed{seed}.pt``, or ``runs/digits_{hash}_seed{seed}.pt`` when settings other than the seed
    differ from the defaults (``hash``: :func:`bumps.io.provenance.settings_hash` of those), so that runs of
    different settings never share a file. ``steps`` and ``device`` do not count (a run may be extended)."""
    base, mine = DigitsConfig().as_dict(), cfg.as_dict()
    changed = {k: v for k, v in mine.items() if k not in ("seed", "steps", "device") and base[k] != v}
    tag = f"_{settings_hash(changed)}" if changed else ""
    return Path("runs") / f"digits{tag}_seed{cfg.seed}.pt"


def step_elements(configs: list[DigitsConfig]) -> int:
    """Elements of the largest tensors of one ensemble step (for :func:`bumps.threads.choose_threads`)."""
    c = configs[0]
    s = 3 * c.n_digits + 2
    return len(configs) * c.batch_size * max(s * c.d_model, (c.n_digits + 1) * c.d_mlp)


class _Member:
    """One model of the ensemble: its config, data, recorder and resumable state."""

    def __init__(self, cfg: DigitsConfig, out: Path, command: str | None):
        self.cfg, self.out, self.step, self.run = cfg, out, 0, None
        self.params = init_params(cfg)
        self.opt: dict | None = None
        self.train_pairs = self.test_tokens = None
        if cfg.train_size is not None:
            train, test = split_pairs(cfg.n_digits, cfg.train_size, cfg.test_size, cfg.the_data_seed)
            self.train_pairs = train
            self.test_tokens = sequences(test[:, 0], test[:, 1], cfg.n_digits).to(cfg.device)
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
                f"{self.out} exists and is not a digits run this can continue; use another `out` or `force`"
            )
        self.recorder.restore(run, ignore=RESUMABLE + ("setup_choices",))
        res = run["resume"]
        self.params = {k: v.to(self.cfg.device) for k, v in res["params"].items()}
        self.opt, self.step = res["optimizer"], int(res["step"])
        if run["config"].get("final") and self.step >= self.cfg.steps:
            self.run = run

    def batch(self, step: int) -> torch.Tensor:
        g = step_generator(self.cfg.the_data_seed, step)
        if self.train_pairs is None:
            a, b = random_operands(self.cfg.batch_size, self.cfg.n_digits, g)
        else:
            pick = torch.randint(0, len(self.train_pairs), (self.cfg.batch_size,), generator=g)
            a, b = self.train_pairs[pick, 0], self.train_pairs[pick, 1]
        return sequences(a, b, self.cfg.n_digits).to(self.cfg.device)


def _norms(params: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``[M, H]`` head norms and ``[M, len(PARAM_ORDER)]`` parameter norms."""
    heads = sum(params[k].pow(2).flatten(2).sum(-1) for k in ("W_Q", "W_K", "W_V", "W_O")).sqrt()
    weights = torch.stack([params[k].flatten(1).norm(dim=1) for k in PARAM_ORDER], 1)
    return heads, weights


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
        self.qpos = answer_positions(cfg.n_digits).to(self.dev)
        self.params = {k: torch.stack([members[i].params[k] for i in self.active]) for k in PARAM_ORDER}
        zero = AdamWState.zeros(self.params)
        self.opt = AdamWState.stack(
            [members[i].opt if members[i].opt is not None else zero.member(j) for j, i in enumerate(self.active)],
            self.dev,
        )

    def _state(self, i: int) -> dict:
        j = self.active.index(i)
        params = {k: v[j].detach().cpu().clone() for k, v in self.params.items()}
        return {"resume": {"params": params, "optimizer": self.opt.member(j), "step": self.members[i].step}}

    def _record(self, logits, pattern, tokens, per_digit) -> None:
        n_in = 2 * self.cfg.n_digits + 2
        answers = tokens[..., self.qpos + 1]
        acc = (logits.argmax(-1) == answers).double().mean(1)  # [M, A]
        attn = pattern[..., :n_in].mean(1).transpose(1, 2)  # [M, A, H, inputs]
        heads, weights = _norms(self.params)
        for j, i in enumerate(self.active):
            m = self.members[i]
            values = dict(
                loss=per_digit[j].mean(),
                loss_per_digit=per_digit[j],
                acc_per_digit=acc[j],
                head_attn=attn[j],
                head_norm=heads[j],
                weight_norm=weights[j],
            )
            if m.test_tokens is not None:
                one = {k: v[j : j + 1] for k, v in self.params.items()}
                t_logits, _ = forward(one, m.test_tokens[None], self.cfg.n_digits)
                t_answers = m.test_tokens[None][..., self.qpos + 1]
                t_loss = per_digit_loss(t_logits, t_answers, m.cfg.loss_dtype)[0]
                values.update(
                    test_loss=t_loss.mean(),
                    test_loss_per_digit=t_loss,
                    test_acc_per_digit=(t_logits.argmax(-1) == t_answers).double().mean(1)[0],
                )
            m.recorder.record(self.step, **values)

    def _update(self) -> float:
        members = [self.members[i] for i in self.active]
        tokens = torch.stack([m.batch(self.step) for m in members])  # [M, B, S]
        for v in self.params.values():
            v.requires_grad_(True)
        logits, pattern = forward(self.params, tokens, self.cfg.n_digits)
        per_digit = per_digit_loss(logits, tokens[..., self.qpos + 1], self.cfg.loss_dtype)  # [M, A]
        names = list(self.params)
        grad = torch.autograd.grad(per_digit.mean(1).sum(), [self.params[k] for k in names])
        grads = dict(zip(names, grad, strict=True))
        for v in self.params.values():
            v.requires_grad_(False)
        if self.step % self.cfg.record_every == 0:
            with torch.no_grad():
                self._record(logits.detach(), pattern.detach(), tokens, per_digit.detach())
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
        return float(per_digit[0].detach().mean())

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
            self.active = [self.active[j] for j in keep]

    def run(self) -> None:
        if not self.active:
            return
        total = sum(m.cfg.steps for m in self.members)
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


def train_digits(
    configs: list[DigitsConfig],
    outs: list[str | Path],
    *,
    resume: str = "auto",
    progress: Callable[..., None] | None = None,
    autosave_every: int = 500,
    stop_at: int | None = None,
    command: str | None = None,
) -> list[dict]:
    """Train M models of equal shapes together and write one recorded run file per model.

    Parameters
    ----------
    configs : list of DigitsConfig
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
        raise BumpsError(f"train_digits needs one out per config (got {len(configs)} configs, {len(outs)} outs)")
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
    members = [_Member(c, o, command) for c, o in zip(configs, outs, strict=True)]
    if resume == "auto":
        for m in members:
            if m.out.exists():
                m.resume_from(safe_load(m.out))
    _Trainer(members, progress, autosave_every, stop_at).run()
    return [m.run for m in members]


def run_paths(configs: list[DigitsConfig], out: str | Path | None) -> list[Path]:
    """One run file per model.

    Parameters
    ----------
    configs : list of DigitsConfig
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
        raise BumpsError(f"`out` {pattern} must contain {{seed}} for several seeds, e.g. runs/digits_seed{{seed}}.pt")
    return [Path(pattern.replace("{seed}", str(c.seed))) for c in configs]
