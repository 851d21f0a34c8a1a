"""The body of one job (it runs inside a submitit job, or in the driver for ``--executor inline``).

Queued submitit jobs pickled by earlier versions name ``bumps.sweep.run_group`` and
``bumps.sweep._RunGroup``; the package re-exports both under those names.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import torch

from bumps.errors import BumpsError
from bumps.io.runfile import atomic_save, load_run

# modules, not their functions: simulate and train_many are looked up when a run starts (tests patch them)
from bumps.lowrank import model as lowrank_model
from bumps.modadd import train as modadd_train
from bumps.sweep.spec import config_from_dict
from bumps.sweep.status import _lock_path, _proc_start, read_status, write_status


def run_group(
    sweep_dir: str, command: str, items: list[tuple[str, dict]], device: str = "cpu", threads: int | None = None
) -> dict[str, str]:
    """The body of one job: run ``items`` [(run id, config dict)], writing each run's status.

    Grok: one ``train_many`` ensemble (resume="auto"); if it fails, each member is retried alone
    so only the bad one fails. Simulate: the runs one after another. Every failure is recorded as
    one line in that run's status; nothing but an interruption (Ctrl-C, SIGTERM) stops the job.

    Parameters
    ----------
    sweep_dir : str
        The sweep folder.
    command : str
        ``"grok"`` or ``"simulate"``.
    items : list of (str, dict)
        The runs of this job: run id and config dict (as :func:`bumps.sweep.spec.config_dict` makes it).
    device : str, optional
        The torch device to run on (checked here, where the job runs).
    threads : int, optional
        torch CPU threads for this job; None leaves torch's default.

    Returns
    -------
    dict of str to str
        Run id -> final status (``done``, ``failed``).
    """
    out = Path(sweep_dir)
    if threads:  # the driver's share of the cores; without one, the runners apply the thread policy
        torch.set_num_threads(threads)
    ids = [rid for rid, _ in items]
    ident = _worker_identity()
    result: dict[str, str] = {}
    with _locked([_lock_path(out, rid) for rid in ids]):
        todo = []
        for rid, cfg in items:  # an earlier job may have finished it while we waited for the lock
            if read_status(out, rid).get("status") == "done" and (out / "runs" / f"{rid}.pt").exists():
                result[rid] = "done"
            else:
                todo.append((rid, cfg))
        runner = _run_grok if command == "grok" else _run_simulate
        result.update(runner(out, todo, device, ident))
    return result


class _RunGroup:
    """run_group as a submitit Checkpointable: a Slurm job that hits its time limit is requeued and continues."""

    def __call__(self, *args):
        return run_group(*args)

    def checkpoint(self, *args):
        # deferred: submitit is only needed by jobs that are requeued, never by inline sweeps or --status
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(_RunGroup(), *args)


# ----------------------------------------------------------------------------- the job's bookkeeping


def _worker_identity() -> dict:
    """Who runs the runs (job, executor, host, pid and its start time), for the status records."""
    env = os.environ
    if "SLURM_JOB_ID" in env:
        job = (
            f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
            if "SLURM_ARRAY_JOB_ID" in env
            else env["SLURM_JOB_ID"]
        )
        executor = "slurm"
    else:
        job, executor = env.get("SUBMITIT_LOCAL_JOB_ID", f"pid{os.getpid()}"), env.get("SUBMITIT_EXECUTOR", "inline")
    return {
        "job": job,
        "executor": executor,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "pid_start": _proc_start(os.getpid()),
    }


@contextmanager
def _locked(paths: list[Path]) -> Iterator[None]:
    """Exclusive flocks on ``paths`` (sorted: no deadlock); released when the process dies, too."""
    with ExitStack() as stack:
        for path in sorted(paths):
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = stack.enter_context(open(path, "a"))
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        yield


class _StatusProgress:
    """progress(done, total) callback that rewrites the running status at most every ``every`` seconds."""

    def __init__(self, out: Path, ids: list[str], ident: dict, every: float = 2.0):
        self.out, self.ids, self.ident, self.every, self.last = out, ids, ident, every, time.monotonic()

    def __call__(self, done, total=None, **_) -> None:
        if time.monotonic() - self.last < self.every or not total:
            return
        self.last = time.monotonic()
        for rid in self.ids:
            write_status(self.out, rid, "running", progress=round(min(1.0, done / total), 4), **self.ident)


def _interrupted(exc: BaseException) -> bool:
    """Ctrl-C, the trainer's Interrupted, or submitit's requeue/timeout exit (SystemExit, UncompletedJobError)."""
    return isinstance(exc, KeyboardInterrupt | SystemExit) or type(exc).__name__ in (
        "Interrupted",
        "UncompletedJobError",
    )


def _error_line(exc: BaseException) -> str:
    """The failure as one line of at most 300 characters (a BumpsError as it is, else type: first line)."""
    if isinstance(exc, BumpsError):
        line = str(exc)
    else:
        first = (str(exc).strip().splitlines() or [""])[0]
        line = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return line if len(line) <= 300 else line[:297] + "..."


def _finish(out: Path, rid: str, ident: dict, t0: float, summary: dict) -> str:
    write_status(out, rid, "done", seconds=round(time.perf_counter() - t0, 3), summary=summary, **ident)
    return "done"


def _fail(out: Path, rid: str, ident: dict, t0: float, exc: BaseException) -> str:
    write_status(out, rid, "failed", error=_error_line(exc), seconds=round(time.perf_counter() - t0, 3), **ident)
    return "failed"


# ----------------------------------------------------------------------------- the runners


def _run_simulate(out: Path, items: list[tuple[str, dict]], device: str, ident: dict) -> dict[str, str]:
    """Simulate runs one after another; a failure fails its run only, an interruption stops the job."""
    result = {}
    for rid, d in items:
        t0 = time.perf_counter()
        path = out / "runs" / f"{rid}.pt"
        write_status(out, rid, "running", progress=0.0, **ident)
        try:
            if path.exists():  # written by a job killed before it could say so
                run = load_run(path, kind="lowrank")
            else:
                cfg = config_from_dict("simulate", d, device).validate()  # the device, here
                report = _StatusProgress(out, [rid], ident)
                run = lowrank_model.simulate(cfg, progress=lambda step, cfg=cfg, report=report: report(step, cfg.steps))
                atomic_save(run, path)
            loss = run["loss"][-1]
            result[rid] = _finish(out, rid, ident, t0, {"final_loss_median": float(loss.median())})
        except BaseException as exc:
            if _interrupted(exc):
                write_status(out, rid, "interrupted", note="interrupted; rerun to continue", **ident)
                raise
            result[rid] = _fail(out, rid, ident, t0, exc)
    return result


def _grok_summary(run: dict) -> dict:
    cfg = run.get("config", {})
    return {
        "grok_epoch": int(run.get("grok_epoch", -1)),
        "epochs_done": cfg.get("epochs_done"),
        "stop_reason": cfg.get("stop_reason"),
        "train_seconds": cfg.get("train_seconds"),
    }


def _run_grok(out: Path, items: list[tuple[str, dict]], device: str, ident: dict) -> dict[str, str]:
    """Grok runs as one ensemble; if it fails, each member alone (continuing from what the ensemble saved)."""
    if not items:
        return {}
    ids = [rid for rid, _ in items]
    t0 = time.perf_counter()
    for rid in ids:
        write_status(out, rid, "running", progress=0.0, **ident)
    try:
        cfgs = [config_from_dict("grok", d, device).validate() for _, d in items]  # the device, here
        runs = modadd_train.train_many(
            cfgs, [out / "runs" / f"{rid}.pt" for rid in ids], resume="auto", progress=_StatusProgress(out, ids, ident)
        )
    except BaseException as exc:
        if _interrupted(exc):
            for rid in ids:
                write_status(out, rid, "interrupted", note="interrupted; continues from its autosave", **ident)
            raise
        if len(items) == 1:
            return {ids[0]: _fail(out, ids[0], ident, t0, exc)}
        result = {}  # find the culprit(s): each member alone, continuing from what the ensemble saved
        for item in items:
            result.update(_run_grok(out, [item], device, ident))
        return result
    return {rid: _finish(out, rid, ident, t0, _grok_summary(run)) for rid, run in zip(ids, runs, strict=True)}
