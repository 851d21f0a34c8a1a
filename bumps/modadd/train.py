"""Train mod-add transformers to grokking and record Fourier progress measures.

One optimizer step per epoch (full batch). :func:`train_many` trains M models of equal
shapes (:func:`bumps.modadd.shape_key`) in one process: every parameter carries a leading
model axis, one forward (:func:`bumps.modadd.forward_many`) serves all of them and one
stacked AdamW (:mod:`bumps.adamw`) updates them, so model i follows exactly the equations of
its own single run. Models may differ in seed, data seed, lr, weight decay, warmup, train
fraction (each model's own split; padded rows are masked out of the loss), loss dtype,
epochs, early stop, probe settings and interventions.

Every ``eval_every`` epochs (and at epoch 0 and the last) one forward over all p² inputs
gives train/test loss and accuracy, the MLP activations for the per-neuron frequency
fractions, and the weight-based measures. Restricted and excluded loss need the *final* key
frequencies, so they are computed after training from the run's weight checkpoints.

Losses, to be precise: ``train_loss``/``test_loss`` (on the eval cadence) are cross-entropies
over the p classes 0..p−1, as the paper's analysis reports them; ``train_loss_every_epoch`` is
the loss actually trained on, over all ``d_vocab_out`` outputs (114 for the nanda preset,
whose unembed includes '=').
"""

from __future__ import annotations

import math
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from bumps.adamw import AdamWState, adamw_step, member_rates
from bumps.errors import BumpsError
from bumps.io.provenance import check_replace, settings_hash, settings_of_run
from bumps.io.runfile import (
    atomic_save,
    check_run,
    check_writable,
    checkpoint_dir,
    is_run,
    new_run,
    safe_load,
    versions,
)
from bumps.modadd.fourier import (
    ce,
    component_norms,
    fourier_basis,
    freq_norms,
    gini,
    neuron_freq_fraction,
    restricted_excluded_logits,
    sum_directions,
)
from bumps.modadd.model import (
    PRESETS,
    ModAddConfig,
    all_pairs,
    forward_last,
    forward_many,
    init_params,
    shape_key,
    split_indices,
)
from bumps.modadd.probe import CHOICES, ProbeSet
from bumps.runtime import release_freed_memory
from bumps.stopflag import StopFlag
from bumps.subnormals import flush_subnormals, flushed_throughout

SERIES_KEYS = (
    "train_loss",
    "test_loss",
    "train_acc",
    "test_acc",
    "freq_norm",
    "freq_norm_wl",
    "gini_embed",
    "gini_neuron_logit",
    "gini_freq_embed",
    "gini_freq_neuron_logit",
    "sum_sq_weights",
    "neuron_freq",
)
# Config fields that may differ between a run and its resumption.
RESUMABLE_CHANGES = {"epochs", "device", "stop_after_grok", "stop_on", "neuron_every", "neuron_dtype"}
# Series recorded at every evaluation; ``neuron_freq`` has its own cadence (``neuron_step``).
EVAL_KEYS = tuple(k for k in SERIES_KEYS if k != "neuron_freq")
PARAM_ORDER = ("W_E", "W_pos", "W_Q", "W_K", "W_V", "W_O", "W_in", "W_out", "W_U", "b_in", "b_out")


class Interrupted(BumpsError):
    """Training was stopped (Ctrl-C); resumable run files were written."""


@dataclass(frozen=True)
class Intervention:
    """Knock part of a model out from ``epoch`` on (applied before that epoch's step).

    ``neurons``: their W_in columns, b_in entries, W_out rows and AdamW moments are zeroed
    once; gradients through a ReLU at exactly 0 are 0, so they then stay exactly zero.
    ``freqs`` (1-based): the cos and sin components of these frequencies are projected out of
    W_E's number rows, and again after every step, so they stay removed.
    """

    epoch: int
    neurons: tuple[int, ...] = ()
    freqs: tuple[int, ...] = ()


# ---------------------------------------------------------------------------- measures


def neuron_logit_map(params, p: int) -> torch.Tensor:
    """W_L = (W_out W_U[:, :p])ᵀ: [p, d_mlp], the map from neurons to the logits of 0..p−1."""
    return (params["W_out"] @ params["W_U"][:, :p]).T


def cross_entropy_rows(logits: torch.Tensor, labels: torch.Tensor, dtype: str) -> torch.Tensor:
    """Per-row cross-entropy with log_softmax in ``dtype`` (float32 reproduces the rounding artefact)."""
    logp = logits.to(getattr(torch, dtype)).log_softmax(-1)
    return -logp.gather(-1, labels[..., None])[..., 0]


@torch.no_grad()
def measure(params, cfg: ModAddConfig, tokens, labels, train_idx, test_idx, basis, neurons: bool = True) -> dict:
    """All per-eval progress measures of one model from one forward over every input.

    ``neurons``: also the per-neuron frequency table ``neuron_freq`` (else that key is absent).
    """
    p = cfg.p
    logits, acts = forward_last(params, tokens, return_acts=True)
    logits = logits[:, :p]  # the analysis drops the '=' class
    out = {}
    for name, idx in (("train", train_idx), ("test", test_idx)):
        out[f"{name}_loss"] = cross_entropy_rows(logits[idx], labels[idx], cfg.loss_dtype).mean().item()
        out[f"{name}_acc"] = (logits[idx].argmax(-1) == labels[idx]).float().mean().item()
    w_e, w_l = params["W_E"][:p], neuron_logit_map(params, p)
    out["freq_norm"] = freq_norms(w_e, basis)
    out["freq_norm_wl"] = freq_norms(w_l, basis)
    out["gini_embed"] = gini(component_norms(w_e, basis)).item()  # all p components, constant included
    out["gini_neuron_logit"] = gini(component_norms(w_l, basis)).item()
    out["gini_freq_embed"] = gini(out["freq_norm"]).item()  # the (p−1)/2 frequency norms only
    out["gini_freq_neuron_logit"] = gini(out["freq_norm_wl"]).item()
    out["sum_sq_weights"] = sum(t.pow(2).sum() for t in params.values()).item()
    if neurons:
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


def key_frequencies_official(neuron_freq: torch.Tensor) -> list[int]:
    """The official code's rule: the set of every neuron's best frequency, unthresholded (1-based)."""
    return sorted({int(k) + 1 for k in neuron_freq.argmax(1)})


@torch.no_grad()
def restricted_excluded(params, cfg, tokens, labels, train_idx, freqs) -> tuple[float, float]:
    """Restricted loss (all inputs) and excluded loss (train set) for the key frequencies."""
    logits = forward_last(params, tokens)[:, : cfg.p].double()
    dirs = sum_directions(cfg.p, freqs, device=logits.device)
    restricted, excluded = restricted_excluded_logits(logits, dirs)
    return ce(restricted, labels).item(), ce(excluded[train_idx], labels[train_idx]).item()


# ---------------------------------------------------------------------------- checkpoints


def load_checkpoints(out: str | Path, run_id: str) -> list[tuple[Path, dict]]:
    """The run's own checkpoints, loaded, by epoch (other runs' stale files in the folder are ignored)."""
    loaded = ((f, safe_load(f)) for f in sorted(checkpoint_dir(out).glob("epoch_*.pt")))
    return [(f, c) for f, c in loaded if c.get("run_id") == run_id]


def checkpoints(out: str | Path, run_id: str) -> list[Path]:
    """The run's own checkpoint files, by epoch."""
    return [f for f, _ in load_checkpoints(out, run_id)]


def _clear_stale_checkpoints(out: Path, run_id: str) -> None:
    """A fresh run at ``out`` replaces the old run file, so that run's checkpoints go with it."""
    for f in checkpoint_dir(out).glob("epoch_*.pt"):
        try:
            if safe_load(f).get("run_id") != run_id:
                f.unlink()
        except BumpsError:
            f.unlink()


# ---------------------------------------------------------------------------- one member


class _Member:
    """Bookkeeping of one model of an ensemble: config, output, records, epoch, stop state."""

    def __init__(self, cfg: ModAddConfig, out: Path, intervention: Intervention | None):
        self.cfg, self.out, self.intervention = cfg, out, intervention
        self.records: dict[str, list] = {k: [] for k in ("step", "neuron_step", *SERIES_KEYS)}
        self.epoch_loss: list[float] = []
        self.epoch, self.elapsed, self.run_id = 0, 0.0, uuid.uuid4().hex
        self.params: dict[str, torch.Tensor] = {}
        self.opt: dict | None = None
        self.probe_state: dict | None = None
        self.grok_at = self.below_at = -1
        self.first_epoch, self.started_from, self.knocked_out = 0, None, False
        self.stop_reason: str | None = None
        self.diverged_at = -1  # the epoch whose training loss was first non-finite
        self.run: dict | None = None  # set when finished

    def start_fresh(self) -> None:
        self.params = {k: v.to(getattr(torch, self.cfg.dtype)) for k, v in init_params(self.cfg).items()}
        if self.cfg.checkpoint_every:
            checkpoint_dir(self.out).mkdir(parents=True, exist_ok=True)
            _clear_stale_checkpoints(self.out, self.run_id)

    def start_from_run(self, path: Path, state: dict) -> None:
        _check_resume(self.cfg, state, path)
        res = state["resume"]
        self.params = {k: v.clone() for k, v in res["params"].items()}
        self.opt = _member_optimizer(res["optimizer"], self.params)
        self.epoch, self.elapsed = int(res["epoch"]), float(state["config"].get("train_seconds", 0.0))
        self.records = {k: list(res["records"].get(k, [])) for k in self.records}
        if len(self.records["gini_freq_embed"]) != len(self.records["step"]):
            raise BumpsError(f"`resume` {path} was written by an older bumps without every series; start a new run")
        if "neuron_freq" not in res["records"]:  # stored once, in the run's series (not again under resume)
            self.records["neuron_freq"] = list(state["neuron_freq"].unbind(0))
        if "neuron_step" not in res["records"]:  # written before the neuron table had its own cadence
            self.records["neuron_step"] = list(self.records["step"])
        self.epoch_loss = state["train_loss_every_epoch"].tolist()
        self.run_id = state["config"].get("run_id", self.run_id)
        self.probe_state = res.get("probe")
        self.first_epoch = int(state["config"].get("first_epoch", 0))
        self.started_from = state["config"].get("started_from")
        self.knocked_out = self.intervention is not None and self.epoch > self.intervention.epoch
        self._refresh_stop_state()
        if Path(path).resolve() != self.out.resolve() and self.cfg.checkpoint_every:
            dest = checkpoint_dir(self.out)
            dest.mkdir(parents=True, exist_ok=True)
            for f in checkpoints(path, self.run_id):  # the continued run keeps its history
                shutil.copy2(f, dest / f.name)

    def start_from_checkpoint(self, path: Path, ckpt: dict) -> None:
        """Continue from a weight+optimizer checkpoint with fresh records (interventions, what-ifs)."""
        if "optimizer" not in ckpt:
            raise BumpsError(f"{path} holds no optimizer state (written by an older bumps); cannot continue from it")
        self.params = {k: v.clone() for k, v in ckpt["params"].items()}
        self.opt = ckpt["optimizer"]
        self.epoch = self.first_epoch = int(ckpt["epoch"])
        self.started_from = {"checkpoint": str(path), "epoch": self.epoch, "run_id": ckpt.get("run_id")}
        if self.cfg.checkpoint_every:
            checkpoint_dir(self.out).mkdir(parents=True, exist_ok=True)
            _clear_stale_checkpoints(self.out, self.run_id)

    def _refresh_stop_state(self) -> None:
        r = self.records
        for i, e in enumerate(r["step"]):
            if self.grok_at < 0 and r["train_acc"][i] >= 0.99 and r["test_acc"][i] >= 0.99:
                self.grok_at = e
            if self.below_at < 0 and r["test_loss"][i] < 1e-6:
                self.below_at = e

    def record(self, m: dict, epoch: int) -> None:
        self.records["step"].append(epoch)
        for k in EVAL_KEYS:
            self.records[k].append(m[k].cpu() if isinstance(m[k], torch.Tensor) else m[k])
        if "neuron_freq" in m:
            self.record_neurons(m["neuron_freq"], epoch)
        self._refresh_stop_state()

    def record_neurons(self, table: torch.Tensor, epoch: int) -> None:
        self.records["neuron_step"].append(epoch)
        self.records["neuron_freq"].append(table.cpu())

    def neurons_due(self) -> bool:
        """Whether this epoch's evaluation records the neuron table (:attr:`ModAddConfig.neuron_every`)."""
        done, every = self.records["neuron_step"], self.cfg.neuron_every
        if not done or every == 0 or self.epoch == self.cfg.epochs:
            return True
        return self.epoch // every > done[-1] // every  # a grid of multiples: continuations share the original's

    def should_stop(self) -> str | None:
        if self.diverged_at >= 0:
            return "diverged"
        if self.epoch >= self.cfg.epochs:
            return "epochs"
        n = self.cfg.stop_after_grok
        if n is None or self.grok_at < 0:
            return None
        if self.cfg.stop_on == "grok":
            return "stop-after-grok" if self.epoch >= self.grok_at + n else None
        if self.below_at >= 0 and self.epoch >= max(self.grok_at, self.below_at) + n:
            return "stop-after-grok"
        return None


def _member_optimizer(opt: dict, params: dict) -> dict:
    """AdamW state of one model; also reads the torch.optim state_dict of runs from bumps <= 0.1."""
    if "exp_avg" in opt:
        return opt
    names = [k for k in PARAM_ORDER if k in params]
    state = opt["state"]
    return {
        "step": float(state[0]["step"]),
        "exp_avg": {k: state[i]["exp_avg"] for i, k in enumerate(names)},
        "exp_avg_sq": {k: state[i]["exp_avg_sq"] for i, k in enumerate(names)},
    }


def _check_resume(cfg: ModAddConfig, state: dict, path) -> None:
    stored = state["config"]
    mine, default = cfg.as_dict(), ModAddConfig().as_dict()
    # a key missing from an older run file had its default value then
    diff = [k for k, v in mine.items() if k not in RESUMABLE_CHANGES and stored.get(k, default[k]) != v]
    if diff:
        k = diff[0]
        raise BumpsError(
            f"`resume` {path} was trained with {k}={stored.get(k, default[k])!r}, not {mine[k]!r} "
            f"({len(diff)} setting(s) differ); use the same settings or a new `out`"
        )
    if "resume" not in state:
        raise BumpsError(f"`resume` {path} holds no training state to continue from")


def config_fields(stored: dict) -> dict:
    """The :class:`ModAddConfig` fields of a run file's stored config (other recorded keys dropped)."""
    names = set(ModAddConfig.__dataclass_fields__)
    out = {k: v for k, v in stored.items() if k in names}
    out["betas"] = tuple(out.get("betas", (0.9, 0.98)))
    out["probe_stencil"] = tuple(out.get("probe_stencil", ()))
    out.setdefault("neuron_every", 0)  # written before the setting: the table at every evaluation
    return out


def resume_config(path: str | Path, **explicit) -> ModAddConfig:
    """The configuration to continue the run file at ``path`` with: its stored settings.

    Parameters
    ----------
    path : str or Path
        A run file (an autosave of an interrupted run, or a finished run).
    **explicit
        Settings the user gave (None: not given). Those in ``RESUMABLE_CHANGES`` (``epochs``, ``device``,
        ``stop_after_grok``, ``stop_on``) replace the stored value; every other one must equal it.

    Raises
    ------
    BumpsError
        Listing every explicit setting that differs from the stored one.
    """
    state = check_run(safe_load(path), path, kind="modadd")
    stored = config_fields(state["config"])
    default = ModAddConfig().as_dict()
    given = {k: v for k, v in explicit.items() if v is not None}
    diff = [
        f"`{k}`={v!r} (stored {stored.get(k, default.get(k))!r})"
        for k, v in given.items()
        if k not in RESUMABLE_CHANGES and stored.get(k, default.get(k)) != v
    ]
    if diff:
        raise BumpsError(
            f"`resume` {path} was trained with other settings: {'; '.join(diff)}; drop those flags to continue it "
            "as stored, or train a new `out`"
        )
    return ModAddConfig(**{**stored, **given}).validate()


def _is_finished(state: dict) -> bool:
    c = state["config"]
    return bool(c.get("final", c.get("epochs_done", -1) >= c.get("epochs", 0)))


# ---------------------------------------------------------------------------- training


def train(
    cfg: ModAddConfig,
    out: str | Path,
    resume: str | Path | None = None,
    progress: Callable[..., None] | None = None,
    autosave_every: int = 2000,
    stop_at: int | None = None,
    intervention: Intervention | None = None,
) -> dict:
    """Train (or continue the run in ``resume``) one model and write it to ``out``; returns the run dict."""
    return train_many(
        [cfg],
        [out],
        resume=[resume] if resume is not None else "never",
        progress=progress,
        autosave_every=autosave_every,
        stop_at=stop_at,
        interventions=[intervention] if intervention else None,
    )[0]


def train_many(
    configs: list[ModAddConfig],
    outs: list[str | Path],
    *,
    resume: str | list = "never",
    progress: Callable[..., None] | None = None,
    autosave_every: int = 2000,
    interventions: list[Intervention | None] | None = None,
    stop_at: int | None = None,
) -> list[dict]:
    """Train M models of equal :func:`shape_key` together; write one run file per model to ``outs[i]``.

    ``resume``: "never" (fresh runs; stale checkpoints at an ``out`` are removed), "auto" (a
    finished run at ``out`` is loaded and skipped, a resumable one continues, else fresh), or a
    list with, per model, a run file or a weight checkpoint to continue from (or None). From a
    checkpoint the records start at its epoch (``config["first_epoch"]``; index i of
    ``train_loss_every_epoch`` is then epoch first_epoch + i). ``progress(done, total, **fields)``
    is called after every step with epochs summed over models. ``stop_at`` simulates a Ctrl-C
    after that epoch (tests). Ctrl-C saves every unfinished model at a step boundary and raises
    :class:`Interrupted`. Returns the run dicts in input order.
    """
    if len(configs) != len(outs) or not configs:
        raise BumpsError(f"train_many needs one out per config (got {len(configs)} configs, {len(outs)} outs)")
    for c in configs:
        c.validate()
    key = shape_key(configs[0])
    for c in configs[1:]:
        if shape_key(c) != key:
            raise BumpsError(f"an ensemble needs equal shapes; {shape_key(c)} differs from {key}")
    outs = [check_writable(o) for o in outs]
    if len({o.resolve() for o in outs}) != len(outs):
        raise BumpsError("two ensemble members write the same `out`; give each its own file")
    ivs = list(interventions) if interventions is not None else [None] * len(configs)
    members = [_Member(c, o, iv) for c, o, iv in zip(configs, outs, ivs, strict=True)]
    for i, m in enumerate(members):
        source = resume[i] if isinstance(resume, list) else (m.out if resume == "auto" and m.out.exists() else None)
        if source is None:
            m.start_fresh()
            continue
        obj = safe_load(source)
        if not is_run(obj) and isinstance(obj, dict) and "params" in obj and "epoch" in obj:
            m.start_from_checkpoint(Path(source), obj)
            continue
        state = check_run(obj, source, kind="modadd")
        if resume == "auto" and _is_finished(state):
            m.run = state
            continue
        m.start_from_run(Path(source), state)
    with flush_subnormals():  # late in a run subnormal gradients slow each step several times (bumps.subnormals)
        _Trainer([m for m in members if m.run is None], progress, autosave_every, stop_at).run()
    return [m.run for m in members]


def run_settings(cfg: ModAddConfig) -> dict:
    """What a run of ``cfg`` records as its settings (:func:`bumps.io.provenance.settings_of_run`).

    Parameters
    ----------
    cfg : ModAddConfig
        The run.

    Returns
    -------
    dict
        Every field but ``device``, as plain data.
    """
    return settings_of_run(cfg.as_dict())


def default_run_path(cfg: ModAddConfig) -> Path:
    """Where a run of ``cfg`` is written unless told otherwise.

    Parameters
    ----------
    cfg : ModAddConfig
        The run.

    Returns
    -------
    pathlib.Path
        ``runs/modadd_{preset}_seed{seed}.pt`` when every other setting is the preset's, else
        ``runs/modadd_{preset}_{hash}_seed{seed}.pt`` with ``hash`` the 8-digit
        :func:`bumps.io.provenance.settings_hash` of the settings that differ from the preset's (the data
        seed included), so that runs of different settings never share a file.
    """
    base = run_settings(ModAddConfig(**{**ModAddConfig().as_dict(), **PRESETS[cfg.preset], "preset": cfg.preset}))
    mine = run_settings(cfg)
    changed = {k: v for k, v in mine.items() if k != "seed" and base.get(k) != v}
    tag = f"_{settings_hash(changed)}" if changed else ""
    return Path("runs") / f"modadd_{cfg.preset}{tag}_seed{cfg.seed}.pt"


def ensemble_outputs(configs: list[ModAddConfig], out: str | Path | None, preset: str, ensemble: bool) -> list[Path]:
    """Run-file paths for ``configs``, one per model.

    Parameters
    ----------
    configs : list of ModAddConfig
        The models, in order.
    out : str, Path or None
        The requested output. A single model (``ensemble=False``) writes there; an ensemble needs a pattern
        containing ``{seed}``, replaced by each member's model seed. None: each member's
        :func:`default_run_path`.
    preset : str
        Preset name (kept for callers; the default names take each config's own).
    ensemble : bool
        True when ``configs`` were given as a list of seeds (even a list of one).
    """
    if out is None:
        return [default_run_path(c) for c in configs]
    if not ensemble:
        return [Path(out)]
    pattern = str(out)
    if "{seed}" not in pattern:
        raise BumpsError(f"`out` {pattern} must contain {{seed}} for an ensemble, e.g. runs/grok_seed{{seed}}.pt")
    return [Path(pattern.replace("{seed}", str(c.seed))) for c in configs]


def check_outputs(configs: list[ModAddConfig], outs: list[Path], resumable: bool, force: bool = False) -> None:
    """Refuse to replace an existing run file made from other settings (before anything is trained).

    Parameters
    ----------
    configs : list of ModAddConfig
        The models about to be trained.
    outs : list of pathlib.Path
        Their run files.
    resumable : bool
        True when an existing run of the same settings is continued or reused (an ensemble): settings that
        may change on resumption (``RESUMABLE_CHANGES``: epochs, device, early stop) are then not compared.
    force : bool
        Replace whatever is there.

    Raises
    ------
    BumpsError
        As :func:`bumps.io.provenance.check_replace`, for the first out that differs.
    """
    for cfg, out in zip(configs, outs, strict=True):
        settings = run_settings(cfg)
        if resumable:
            settings = {k: v for k, v in settings.items() if k not in RESUMABLE_CHANGES}
        check_replace(out, settings, force=force, run=True)


def step_elements(configs: list[ModAddConfig]) -> int:
    """Elements the largest operations of one training step touch (for :func:`bumps.threads.choose_threads`).

    Parameters
    ----------
    configs : list of ModAddConfig
        The models trained together (one ensemble).

    Returns
    -------
    int
        Models × the longest training split × the widest per-input activation (MLP, unembed or 3 × residual).
    """
    c = configs[0]
    rows = max(int(x.train_frac * x.p * x.p) for x in configs)
    return len(configs) * rows * max(c.d_mlp, c.d_vocab_out, 3 * c.d_model)


def estimate_memory(configs: list[ModAddConfig]) -> dict[str, int]:
    """Bytes an ensemble's training will allocate, by part, before anything is allocated.

    Parameters
    ----------
    configs : list of ModAddConfig
        The models trained together.

    Returns
    -------
    dict of str to int
        ``inputs`` (all p² pairs, labels, splits, the Fourier basis), ``weights`` (parameters, gradients,
        AdamW moments and snapshots), ``training step`` (one full-batch forward and backward),
        ``evaluation`` (one forward over every input with the per-neuron Fourier fractions) and
        ``records`` (the progress measures of every evaluation, stacked again when the run is saved).
    """
    c, m = configs[0], len(configs)
    size = 8 if c.dtype == "float64" else 4
    p, d, mlp, v = c.p, c.d_model, c.d_mlp, c.d_vocab_out
    pairs = p * p
    n_params = (p + 1) * d + 3 * d + 4 * d * d + 2 * d * mlp + d * v + mlp + d
    rows = max(int(x.train_frac * pairs) for x in configs)
    evals = max(x.epochs // x.eval_every + 2 for x in configs)
    tables = max(x.epochs // max(x.neuron_every, x.eval_every) + 3 for x in configs)
    record_values = mlp * ((p - 1) // 2) * tables + (2 * ((p - 1) // 2) + 16) * evals  # neuron tables + the rest
    return {
        "inputs": 24 * pairs + 8 * m * pairs + size * pairs,
        "weights": 6 * m * n_params * size,
        "training step": m * rows * (6 * mlp + 4 * v + 12 * d) * size,
        "evaluation": pairs * (3 * mlp + 2 * v + 4 * d) * size,
        "records": 2 * m * record_values * size + 32 * m * max(x.epochs for x in configs),
    }


class _Trainer:
    """The stacked training loop over the unfinished members."""

    def __init__(self, members: list[_Member], progress, autosave_every: int, stop_at: int | None):
        self.members, self.progress, self.autosave_every, self.stop_at = members, progress, autosave_every, stop_at
        if not members:
            return
        cfg = members[0].cfg
        self.cfg0, self.dev = cfg, torch.device(cfg.device)
        self.tokens = all_pairs(cfg.p).to(self.dev)
        self.labels = (self.tokens[:, 0] + self.tokens[:, 1]) % cfg.p
        self.basis = fourier_basis(cfg.p, dtype=getattr(torch, cfg.dtype), device=self.dev)
        self.splits = [tuple(i.to(self.dev) for i in split_indices(m.cfg)) for m in members]
        self.params = {k: torch.stack([m.params[k] for m in members]).to(self.dev) for k in members[0].params}
        fresh = [m.opt is None for m in members]
        zero = AdamWState.zeros(self.params)
        self.opt = AdamWState.stack(
            [zero.member(i) if f else m.opt for i, (m, f) in enumerate(zip(members, fresh, strict=True))], self.dev
        )
        self.active = list(range(len(members)))  # member indices, in stack order
        self._build_batch()
        self.probes = None
        if any(m.cfg.has_probe for m in members):
            d_model, d_mlp = cfg.d_model, cfg.d_mlp
            self.probes = ProbeSet.restore(
                [m.cfg for m in members], [m.probe_state for m in members], d_model, d_mlp, self.dev
            )

    def _build_batch(self) -> None:
        """Each active model's training rows, padded to the longest split and masked."""
        rows = [self.splits[i][0] for i in self.active]
        width = max(len(r) for r in rows)
        idx = torch.stack([torch.cat([r, r.new_zeros(width - len(r))]) for r in rows])  # [M, B]
        self.mask = torch.stack([torch.arange(width, device=self.dev) < len(r) for r in rows]).float()
        self.n_rows = self.mask.sum(1).double()
        self.a, self.b = self.tokens[idx, 0], self.tokens[idx, 1]
        self.y = self.labels[idx]
        self.dtype_groups: dict[str, torch.Tensor] = {}
        for j, i in enumerate(self.active):
            self.dtype_groups.setdefault(self.members[i].cfg.loss_dtype, []).append(j)
        self.dtype_groups = {k: torch.tensor(v, device=self.dev) for k, v in self.dtype_groups.items()}

    # -- per-member helpers
    def _member_params(self, j: int) -> dict[str, torch.Tensor]:
        return {k: v[j].detach() for k, v in self.params.items()}

    def _evaluate(self, j: int) -> None:
        m = self.members[self.active[j]]
        train_idx, test_idx = self.splits[self.active[j]]
        params = self._member_params(j)
        m.record(
            measure(params, m.cfg, self.tokens, self.labels, train_idx, test_idx, self.basis, m.neurons_due()), m.epoch
        )

    @torch.no_grad()
    def _final_neurons(self, j: int) -> None:
        """The neuron table at the member's last epoch (key frequencies and winners read it)."""
        m = self.members[self.active[j]]
        if m.stop_reason == "diverged" or (m.records["neuron_step"] and m.records["neuron_step"][-1] == m.epoch):
            return  # diverged weights hold NaN: the last finite table stays the final one
        _, acts = forward_last(self._member_params(j), self.tokens, return_acts=True)
        m.record_neurons(neuron_freq_fraction(acts.reshape(m.cfg.p, m.cfg.p, -1), self.basis), m.epoch)

    def _checkpoint(self, j: int) -> None:
        m = self.members[self.active[j]]
        if m.cfg.checkpoint_every and m.epoch % m.cfg.checkpoint_every == 0:
            snap = {"epoch": m.epoch, "run_id": m.run_id, "params": self._snapshot(j), "optimizer": self.opt.member(j)}
            atomic_save(snap, checkpoint_dir(m.out) / f"epoch_{m.epoch:06d}.pt")

    def _snapshot(self, j: int) -> dict[str, torch.Tensor]:
        return {k: v[j].detach().cpu().clone() for k, v in self.params.items()}

    def _save(self, j: int, final: bool) -> dict:
        m = self.members[self.active[j]]
        run = _assemble(
            m,
            self._snapshot(j),
            self.opt.member(j),
            final,
            self.probes.member_state(j) if self.probes is not None else None,
            self.tokens,
            self.labels,
            self.splits[self.active[j]][0],
        )
        atomic_save(run, m.out)
        return run

    # -- interventions
    def _intervene(self, j: int, m: _Member) -> None:
        iv = m.intervention
        if iv is None or m.epoch < iv.epoch:
            return
        with torch.no_grad():
            if iv.neurons and not m.knocked_out:
                m.knocked_out = True
                n = torch.tensor(iv.neurons, device=self.dev)
                for store in (self.params, self.opt.exp_avg, self.opt.exp_avg_sq):
                    store["W_in"][j][:, n] = 0
                    store["W_out"][j][n] = 0
                    if "b_in" in store:
                        store["b_in"][j][n] = 0
            if iv.freqs:
                rows = torch.tensor([r for k in iv.freqs for r in (2 * k - 1, 2 * k)], device=self.dev)
                f = self.basis[rows]  # [2k, p], orthonormal rows
                w = self.params["W_E"][j][: m.cfg.p]
                w -= f.T @ (f @ w)

    def _select(self, keep_positions: list[int]) -> None:
        keep = torch.tensor(keep_positions, device=self.dev, dtype=torch.long)
        self.params = {k: v.detach()[keep].clone() for k, v in self.params.items()}
        self.opt = self.opt.select(keep)
        if self.probes is not None:
            self.probes.select(keep)
        self.active = [self.active[j] for j in keep_positions]
        if self.active:
            self._build_batch()

    # -- the loop
    def run(self) -> None:
        if not self.members:
            return
        for j, i in enumerate(self.active):
            m = self.members[i]
            if not m.records["step"]:
                self._evaluate(j)
                self._checkpoint(j)
        total = sum(m.cfg.epochs for m in self.members)
        t0 = {i: time.perf_counter() - self.members[i].elapsed for i in self.active}
        with StopFlag() as flag:
            while True:
                finished = [j for j, i in enumerate(self.active) if self.members[i].should_stop()]
                for j in finished:
                    m = self.members[self.active[j]]
                    m.stop_reason = m.should_stop()
                    self._final_neurons(j)
                    m.run = self._save(j, final=True)
                if finished:
                    self._select([j for j in range(len(self.active)) if j not in finished])
                if not self.active:
                    return
                self._step()
                evaluated = False
                for j, i in enumerate(self.active):
                    m = self.members[i]
                    m.elapsed = time.perf_counter() - t0[i]
                    if m.epoch % m.cfg.eval_every == 0 or m.epoch == m.cfg.epochs:
                        self._evaluate(j)
                        evaluated = True
                    self._checkpoint(j)
                    if self.autosave_every and m.epoch % self.autosave_every == 0 and not m.should_stop():
                        self._save(j, final=False)
                if evaluated:
                    release_freed_memory()  # else the heap fragments: GBs over a long run (bumps.runtime)
                if self.progress:
                    done = sum(m.cfg.epochs if m.run is not None else m.epoch for m in self.members)
                    first = self.members[self.active[0]]
                    self.progress(
                        done, total, train_loss=first.epoch_loss[-1], test_loss=first.records["test_loss"][-1]
                    )
                stop_now = self.stop_at is not None and any(self.members[i].epoch >= self.stop_at for i in self.active)
                if flag.hit or stop_now:
                    epochs = sorted({self.members[i].epoch for i in self.active})
                    for j in range(len(self.active)):
                        if not self.members[self.active[j]].should_stop():
                            self._save(j, final=False)
                    outs = [str(self.members[i].out) for i in self.active]
                    how = (
                        f"continue with --resume {outs[0]}"
                        if len(outs) == 1
                        else "rerun the same command (or train_many(..., resume='auto')) to continue them"
                    )
                    raise Interrupted(f"interrupted at epoch {epochs[-1]}; saved {', '.join(outs)}; {how}")

    def _step(self) -> None:
        members = [self.members[i] for i in self.active]
        for j, m in enumerate(members):
            self._intervene(j, m)
        for v in self.params.values():
            v.requires_grad_(True)
        fwd = forward_many(self.params, self.a, self.b, mlp_in=self.probes is not None)
        logits = fwd["logits"]
        losses = torch.empty(len(members), dtype=torch.float64, device=self.dev)
        for dtype, group in self.dtype_groups.items():
            whole = len(group) == len(members)
            lg, y, mask = (logits, self.y, self.mask) if whole else (logits[group], self.y[group], self.mask[group])
            nll = cross_entropy_rows(lg, y, dtype)
            losses[group] = ((nll * mask).sum(1) / self.n_rows[group]).double()
        total = losses.sum()
        if self.probes is not None:
            total = total + self.probes.penalty(fwd["mlp_in"], fwd["hidden"], self.mask).sum()
        names = list(self.params)
        grads = dict(zip(names, torch.autograd.grad(total, [self.params[k] for k in names]), strict=True))
        for v in self.params.values():
            v.requires_grad_(False)
        lr, wd = member_rates([m.cfg for m in members], [m.epoch for m in members], self.dev)
        adamw_step(self.params, grads, self.opt, lr, wd, self.cfg0.betas, self.cfg0.eps)
        step_losses = losses.tolist()
        for j, m in enumerate(members):
            m.epoch += 1
            m.epoch_loss.append(step_losses[j])
            if not math.isfinite(step_losses[j]) and m.diverged_at < 0:
                m.diverged_at = m.epoch - 1  # the loss of the update from epoch - 1
            if m.intervention is not None and m.intervention.freqs and m.epoch > m.intervention.epoch:
                self._intervene(j, m)


# ---------------------------------------------------------------------------- the run file


def _assemble(m: _Member, params, opt_state, final: bool, probe_state, tokens, labels, train_idx) -> dict:
    """The run dict: series stacked on the time axis, summary numbers, final analysis."""
    cfg, records = m.cfg, m.records
    stack = {
        k: (torch.stack(v) if isinstance(v[0], torch.Tensor) else torch.tensor(v, dtype=torch.float64))
        for k, v in records.items()
        if k not in ("step", "neuron_step", "neuron_freq")
    }
    stack["neuron_freq"] = torch.stack([t.to(getattr(torch, cfg.neuron_dtype)) for t in records["neuron_freq"]])
    step = torch.tensor(records["step"], dtype=torch.int64)
    neuron_step = torch.tensor(records["neuron_step"], dtype=torch.int64)
    config = {
        **cfg.as_dict(),
        "versions": versions(),
        # bumps.subnormals: on every CPU op (one thread), not on a GPU
        "subnormals_flushed": flushed_throughout() and torch.device(cfg.device).type == "cpu",
        "train_seconds": m.elapsed,
        "epochs_done": m.epoch,
        "first_epoch": m.first_epoch,
        "started_from": m.started_from,
        "run_id": m.run_id,
        "final": final,
        "stop_reason": m.stop_reason if final else "interrupted",
        "diverged_epoch": m.diverged_at if m.diverged_at >= 0 else None,
        "intervention": None
        if m.intervention is None
        else {
            "epoch": m.intervention.epoch,
            "neurons": list(m.intervention.neurons),
            "freqs": list(m.intervention.freqs),
        },
        "losses": "train_loss/test_loss: over classes 0..p-1 on the eval cadence; "
        "train_loss_every_epoch: the trained loss over all d_vocab_out outputs",
    }
    resume = {
        "params": params,
        "optimizer": opt_state,
        "epoch": m.epoch,
        "records": {k: list(v) for k, v in records.items() if k != "neuron_freq"},  # the table: once, above
    }
    if cfg.has_probe:
        config["probe_choices"] = CHOICES  # what seed 001 leaves open, as bumps.modadd.probe pins it
    if probe_state is not None:
        resume["probe"] = probe_state
    run = new_run(
        "modadd",
        config,
        step=step,
        neuron_step=neuron_step,
        **stack,
        train_loss_every_epoch=torch.tensor(m.epoch_loss, dtype=torch.float64),
        grok_epoch=m.grok_at,
        test_loss_below_1e6_epoch=m.below_at,
        final_params=params,
        resume=resume,
    )
    if probe_state is not None:
        run["probe"] = probe_state
    final_nf = records["neuron_freq"][-1].float()  # full precision: key frequencies do not depend on neuron_dtype
    keys = key_frequencies(final_nf)
    run["key_freqs"] = torch.tensor(keys, dtype=torch.int64)
    run["key_freqs_official"] = torch.tensor(key_frequencies_official(final_nf), dtype=torch.int64)
    run["single_freq_neuron_fraction"] = float((final_nf.max(1).values >= 0.85).float().mean())
    if final and keys:
        run.update(_restricted_excluded_series(m, params, keys, tokens, labels, train_idx))
    return run


def _restricted_excluded_series(m: _Member, final_params, keys, tokens, labels, train_idx) -> dict:
    """Restricted/excluded loss on the checkpoint cadence, for the final key frequencies."""
    cfg, snaps = m.cfg, []
    if cfg.checkpoint_every:
        for _, s in load_checkpoints(m.out, m.run_id):
            if s["epoch"] < m.epoch:
                snaps.append((s["epoch"], s["params"]))
    snaps.append((m.epoch, final_params))
    steps, restricted, excluded = [], [], []
    for e, prm in snaps:
        prm = {k: v.to(cfg.device) for k, v in prm.items()}
        r, x = restricted_excluded(prm, cfg, tokens, labels, train_idx, keys)
        steps.append(e)
        restricted.append(r)
        excluded.append(x)
    return {
        "checkpoint_step": torch.tensor(steps, dtype=torch.int64),
        "restricted_loss": torch.tensor(restricted, dtype=torch.float64),
        "excluded_loss": torch.tensor(excluded, dtype=torch.float64),
    }
