"""Tiny runs for the view tests (seconds each, one thread): a toy run, a mod-add run, a probe-ablation-style
folder and a sweep folder."""

from __future__ import annotations

from pathlib import Path

import torch

from bumps.io.runfile import atomic_save
from bumps.lowrank.model import LowRankConfig, simulate
from bumps.modadd.model import ModAddConfig
from bumps.modadd.train import train, train_many
from bumps.sweep import SweepOptions, run_sweep

TINY_MODADD = dict(p=11, epochs=60, eval_every=5, neuron_every=0, d_model=16, d_mlp=32, n_heads=2, checkpoint_every=0)
SWEEP_SPEC = 'command = "simulate"\n[base]\nrank = 2\ndim = 8\nseeds = 2\nsteps = 200\n[grid]\nlr = [0.01, 0.03]\n'


def toy_run(path: Path, seeds: int = 2, steps: int = 300) -> Path:
    """A rank-2 toy run with ``seeds`` seeds."""
    torch.set_num_threads(1)
    return atomic_save(simulate(LowRankConfig(rank=2, seeds=seeds, steps=steps, dim=20)), path)


def modadd_config(seed: int = 0, **overrides) -> ModAddConfig:
    return ModAddConfig.from_preset("nanda", seed=seed, **{**TINY_MODADD, **overrides})


def modadd_run(path: Path, seed: int = 0, **overrides) -> Path:
    """A p = 11 mod-add run of 60 epochs (it does not grok; every series is recorded)."""
    torch.set_num_threads(1)
    train(modadd_config(seed, **overrides), path)
    return Path(path)


def ablation_folder(folder: Path) -> Path:
    """A folder as `bumps probe-ablation` writes it: ``{variant}_seed{s}.pt`` for two variants and two seeds."""
    torch.set_num_threads(1)
    configs, outs = [], []
    for variant, extra in (("baseline", {}), ("k0", {"probe_stencil": (0,), "probe_weight": 0.1})):
        for s in (0, 1):
            configs.append(modadd_config(s, **extra))
            outs.append(folder / f"{variant}_seed{s}.pt")
    for c, o in zip(configs, outs, strict=True):
        train_many([c], [o])
    return folder


def sweep_folder(tmp: Path) -> Path:
    """A finished two-run `bumps sweep` of the toy model (inline executor)."""
    spec = tmp / "spec.toml"
    spec.write_text(SWEEP_SPEC)
    out = tmp / "sweep"
    run_sweep(spec, out, SweepOptions(executor="inline", jobs=1))
    return out


def truncated(run: dict, records: int) -> dict:
    """The run as an autosave after ``records`` records would hold it (series cut, marked unfinished)."""
    n = len(run["step"])
    out = {}
    for k, v in run.items():
        if isinstance(v, torch.Tensor) and v.ndim and len(v) == n:
            out[k] = v[:records].clone()
        else:
            out[k] = v
    last = int(run["step"][records - 1])
    out["config"] = {**run["config"], "final": False, "epochs_done": last, "stop_reason": "interrupted"}
    for key in ("restricted_loss", "excluded_loss", "checkpoint_step"):  # computed when a run finishes
        out.pop(key, None)
    if int(run.get("grok_epoch", -1)) > last:
        out["grok_epoch"] = -1
    if "train_loss_every_epoch" in run:
        out["train_loss_every_epoch"] = run["train_loss_every_epoch"][:last]
    return out
