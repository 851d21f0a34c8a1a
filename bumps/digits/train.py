"""Train 5-digit addition transformers, an ensemble in one process, recording every step with the recorder.

:func:`train_digits` trains M models of equal shapes together on the stacked-ensemble core
(:mod:`bumps.ensemble`): every parameter carries a leading model axis, one forward
(:func:`bumps.digits.model.forward`) serves all of them and one stacked AdamW updates them, so model i follows
exactly the equations of its own single run (its own seed, data seed and batches). At every
``record_every``-th step each model's :class:`bumps.recorder.Recorder` records, from the forward of that
step's training batch (before its update):

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

from bumps import ensemble
from bumps.digits.data import answer_positions, random_operands, sequences, split_pairs, step_generator
from bumps.digits.model import SETUP_CHOICES, DigitsConfig, forward, init_params, per_digit_loss
from bumps.ensemble import Member, StackedTrainer

PARAM_ORDER = ("W_E", "W_pos", "W_Q", "W_K", "W_V", "W_O", "W_in", "b_in", "W_out", "b_out", "W_U")
SHAPE_FIELDS = ("n_digits", "batch_size", "d_model", "n_heads", "d_mlp", "dtype", "device", "betas", "eps")


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


def default_run_path(cfg: DigitsConfig) -> Path:
    """``runs/digits_seed{seed}.pt``, or ``runs/digits_{hash}_seed{seed}.pt`` when settings other than the seed
    differ from the defaults (:func:`bumps.ensemble.default_run_path`)."""
    return ensemble.default_run_path("digits", cfg, DigitsConfig())


def step_elements(configs: list[DigitsConfig]) -> int:
    """Elements of the largest tensors of one ensemble step (for :func:`bumps.threads.choose_threads`)."""
    c = configs[0]
    s = 3 * c.n_digits + 2
    return len(configs) * c.batch_size * max(s * c.d_model, (c.n_digits + 1) * c.d_mlp)


class _Member(Member):
    """One model of the ensemble: its config, data, recorder and resumable state."""

    noun = "a digits run"

    def __init__(self, cfg: DigitsConfig, out: Path, command: str | None):
        super().__init__(cfg, out, command, init_params(cfg), axes_of(cfg), SETUP_CHOICES)
        self.train_pairs = self.test_tokens = None
        if cfg.train_size is not None:
            train, test = split_pairs(cfg.n_digits, cfg.train_size, cfg.test_size, cfg.the_data_seed)
            self.train_pairs = train
            self.test_tokens = sequences(test[:, 0], test[:, 1], cfg.n_digits).to(cfg.device)

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


class _Trainer(StackedTrainer):
    def __init__(self, members: list[_Member], progress, autosave_every: int, stop_at: int | None):
        super().__init__(members, PARAM_ORDER, progress, autosave_every, stop_at)
        if self.active:
            self.qpos = answer_positions(self.cfg.n_digits).to(self.dev)

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
        with self._tracked():
            logits, pattern = forward(self.params, tokens, self.cfg.n_digits)
            per_digit = per_digit_loss(logits, tokens[..., self.qpos + 1], self.cfg.loss_dtype)  # [M, A]
            grads = self._grads(per_digit.mean(1).sum())
        if self.step % self.cfg.record_every == 0:
            with torch.no_grad():
                self._record(logits.detach(), pattern.detach(), tokens, per_digit.detach())
        self._adamw_step(grads)
        return float(per_digit[0].detach().mean())


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
        continued; :class:`bumps.ensemble.Interrupted` after saving, on Ctrl-C or at ``stop_at``.
    """
    outs = ensemble.prepare(configs, outs, resume, SHAPE_FIELDS, "train_digits")
    members = [_Member(c, o, command) for c, o in zip(configs, outs, strict=True)]
    ensemble.resume_members(members, resume)
    _Trainer(members, progress, autosave_every, stop_at).run()
    return [m.run for m in members]


def run_paths(configs: list[DigitsConfig], out: str | Path | None) -> list[Path]:
    """One run file per model: each model's :func:`default_run_path`, or ``out`` with ``{seed}`` replaced by
    each model's seed (:func:`bumps.ensemble.run_paths`)."""
    return ensemble.run_paths(configs, out, "digits", DigitsConfig())
