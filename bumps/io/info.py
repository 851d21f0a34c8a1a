"""What a run file holds, for `bumps info`: its kind, status, size, configuration and recorded series."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from bumps.errors import BumpsError
from bumps.io.runfile import load_run

STATUSES = ("finished", "interrupted", "diverged")


@dataclass(frozen=True)
class SeriesInfo:
    """One recorded array of a run.

    Attributes
    ----------
    key : str
        Its key in the run file.
    shape : tuple of int
        Its shape (time first for series).
    dtype : str
        Its torch dtype, e.g. ``float64``.
    """

    key: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class RunInfo:
    """A summary of one run file.

    Attributes
    ----------
    path : str
        The file.
    kind : str
        The run kind (``lowrank``, ``modadd``, ...).
    status : str
        ``finished``; ``interrupted`` (an autosave of a run still training or stopped by Ctrl-C: resumable);
        or ``diverged`` (stopped at a non-finite loss; the records before it are kept).
    detail : str
        What the status rests on: the stop reason, the step reached, the diverged step.
    size_bytes : int
        Size of the file on disk.
    records : int
        Length of the run's ``step`` axis.
    config : dict
        The stored configuration (package versions moved to ``versions``).
    versions : dict
        Package versions the run was made with.
    series : list of SeriesInfo
        Every tensor the run holds, largest first.
    partial : str or None
        Why analyses that need a finished run refuse this one without ``--allow-partial``
        (:func:`partial_reason`, grokking required for mod-add runs); None for a finished run.
    """

    path: str
    kind: str
    status: str
    detail: str
    size_bytes: int
    records: int
    config: dict
    versions: dict
    series: list[SeriesInfo] = field(default_factory=list)
    partial: str | None = None


def _status(run: dict) -> tuple[str, str]:
    cfg = run.get("config") or {}
    if cfg.get("diverged_step") is not None:
        return "diverged", f"at step {cfg['diverged_step']}"
    if cfg.get("stop_reason") == "diverged":
        return "diverged", f"at epoch {cfg.get('diverged_epoch')}"
    if cfg.get("final") is False or cfg.get("stop_reason") == "interrupted":
        return "interrupted", f"autosave at epoch {cfg.get('epochs_done')} of {cfg.get('epochs')}"
    if "stop_reason" in cfg:
        grok = int(run.get("grok_epoch", -1)) if "grok_epoch" in run else None
        grokked = "" if grok is None else (f", grokked at epoch {grok}" if grok >= 0 else ", never grokked")
        return "finished", f"stopped: {cfg['stop_reason']} at epoch {cfg.get('epochs_done')}{grokked}"
    return "finished", f"{len(run['step'])} records to step {int(run['step'][-1]) if len(run['step']) else 0}"


def partial_reason(run: dict, need_grok: bool = False) -> str | None:
    """Why a run is not a finished one, or None when it is.

    Parameters
    ----------
    run : dict
        A loaded run.
    need_grok : bool
        True where the analysis needs a run that grokked (``grok_epoch >= 0``; mod-add runs).

    Returns
    -------
    str or None
        ``"interrupted (autosave at epoch 300 of 25000)"``, ``"diverged (at epoch 12)"`` or
        ``"never grokked (stopped: epochs at epoch 3000)"``; None for a finished run (that grokked, if needed).
    """
    status, detail = _status(run)
    if status != "finished":
        return f"{status} ({detail})"
    if need_grok and "grok_epoch" in run and int(run["grok_epoch"]) < 0:
        return f"never grokked ({detail.removesuffix(', never grokked')})"
    return None


def check_finished(run: dict, path: str | os.PathLike, need_grok: bool = False, allow_partial: bool = False):
    """Refuse a partial run (:func:`partial_reason`) unless ``allow_partial``; return the reason otherwise.

    Parameters
    ----------
    run : dict
        A loaded run.
    path : str or os.PathLike
        Its file, for the message.
    need_grok : bool
        As :func:`partial_reason`.
    allow_partial : bool
        True: never refuse (the caller flags the output with the returned reason).

    Returns
    -------
    str or None
        The reason the run is partial, or None.

    Raises
    ------
    BumpsError
        One line with the reason and the command that finishes the run, when it is partial and
        ``allow_partial`` is False.
    """
    reason = partial_reason(run, need_grok)
    if reason is None or allow_partial:
        return reason
    if run.get("kind") == "modadd" and not reason.startswith("diverged"):
        how = f"continue it with: bumps grok --resume {path}" + (" --epochs N" if "grokked" in reason else "")
    else:
        how = "make a finished one"
    raise BumpsError(f"{path} is a partial run: {reason}; {how}, or pass `allow_partial` to use it anyway")


def run_info(path: str | os.PathLike) -> RunInfo:
    """Summarise the run file at ``path`` (loaded with ``weights_only=True``).

    Parameters
    ----------
    path : str or os.PathLike
        A bumps run file.

    Returns
    -------
    RunInfo
        Kind, status, size, configuration and series.

    Raises
    ------
    BumpsError
        If ``path`` is not a readable bumps run file.
    """
    run = load_run(path)
    status, detail = _status(run)
    config = dict(run.get("config") or {})
    versions = config.pop("versions", {}) or {}
    series = [
        SeriesInfo(k, tuple(v.shape), str(v.dtype).removeprefix("torch."))
        for k, v in run.items()
        if isinstance(v, torch.Tensor)
    ]
    series.sort(key=lambda s: (-math.prod(s.shape), s.key))
    return RunInfo(
        str(path),
        str(run.get("kind")),
        status,
        detail,
        Path(path).stat().st_size,
        len(run["step"]),
        config,
        versions,
        series,
        partial_reason(run, need_grok=True),
    )
