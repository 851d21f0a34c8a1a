"""What a run file holds, for `bumps info`: its kind, status, size, configuration and recorded series."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

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


def _status(run: dict) -> tuple[str, str]:
    cfg = run.get("config") or {}
    if cfg.get("diverged_step") is not None:
        return "diverged", f"at step {cfg['diverged_step']}"
    if cfg.get("stop_reason") == "diverged":
        return "diverged", f"at epoch {cfg.get('diverged_epoch')}"
    if cfg.get("final") is False or cfg.get("stop_reason") == "interrupted":
        return "interrupted", f"autosave at epoch {cfg.get('epochs_done')} of {cfg.get('epochs')}"
    if "stop_reason" in cfg:
        return "finished", f"stopped: {cfg['stop_reason']} at epoch {cfg.get('epochs_done')}"
    return "finished", f"{len(run['step'])} records to step {int(run['step'][-1]) if len(run['step']) else 0}"


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
    )
