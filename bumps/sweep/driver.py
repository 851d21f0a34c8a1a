"""The sweep driver: check the spec and the folder, then submit the runs' groups and watch them until none is left.

Rerunning the same command skips done runs, waits for runs still alive in jobs of an earlier
(killed) driver, and resubmits the rest. One driver per sweep folder (``.driver.lock``).
"""

from __future__ import annotations

import dataclasses
import fcntl
import math
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bumps.errors import BumpsError
from bumps.sweep.executor import _check_device, _Executor, _job_log_tail, _job_running, check_slurm
from bumps.sweep.options import MAX_AUTO_MODELS, SweepOptions
from bumps.sweep.spec import Run, expand, load_spec, pack, shape_keys
from bumps.sweep.status import (
    _Liveness,
    _mark_queued,
    entry_status,
    prepare_dir,
    read_status,
    write_manifest,
    write_status,
)
from bumps.sweep.worker import _interrupted, run_group

Group = list[tuple[str, dict]]  # the runs of one job: (run id, config dict)


class Interrupted(BumpsError):
    """The sweep driver was stopped (Ctrl-C); finished runs are kept, a rerun continues."""


def run_sweep(
    spec_path: str | os.PathLike,
    out: str | os.PathLike,
    opts: SweepOptions | None = None,
    progress: Callable[..., None] | None = None,
) -> dict:
    """Run (or continue) the sweep of ``spec_path`` into ``out``; returns the final manifest.

    Parameters
    ----------
    spec_path : str or os.PathLike
        The spec ``.toml`` file (see :func:`bumps.sweep.spec.load_spec`).
    out : str or os.PathLike
        The sweep folder: new or empty, or one holding this same sweep (which is continued).
    opts : SweepOptions, optional
        Executor, jobs, packing and resources; default ``SweepOptions()`` (local executor).
    progress : callable, optional
        ``progress(done, total, running=, pending=, failed=)``, called while waiting; ``done``
        counts finished runs plus the fraction done of running ones.

    Returns
    -------
    dict
        The final manifest (as written to ``out/manifest.json``).

    Raises
    ------
    BumpsError
        One line for a bad spec, option, folder, device or Slurm setup.
    Interrupted
        If the driver was stopped (Ctrl-C); finished runs are kept and a rerun continues.
    """
    opts = (opts or SweepOptions()).validate()
    spec = load_spec(spec_path)
    out = Path(out)
    device = opts.device or spec.base.get("device") or "cpu"
    runs = expand(spec)
    if opts.executor == "slurm":
        check_slurm(opts.partition)
    else:
        _check_device(device)
    prepare_dir(out, spec)
    (out / "runs").mkdir(exist_ok=True)
    (out / "status").mkdir(exist_ok=True)
    with _driver_lock(out):
        return _Drive(out, spec.command, runs, opts, device, progress).run()


@contextmanager
def _driver_lock(out: Path) -> Iterator[None]:
    """Hold ``out/.driver.lock`` (naming this driver in it); a one-line error if another driver holds it."""
    path = out / ".driver.lock"
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            who = fh.read().strip() or "?"
            raise BumpsError(f"another bumps sweep is driving {out} ({who}); wait for it or stop it first") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()}")
        fh.flush()
        yield


# ----------------------------------------------------------------------------- planning


def _record(run: Run) -> dict:
    """The run as the manifest lists it (before its status fields)."""
    return dataclasses.asdict(run) | {"run_file": run.run_file}


def _triage(out: Path, runs: list[Run], alive: _Liveness) -> tuple[list[Run], set[str]]:
    """The runs to submit, and the ids of those still alive in jobs of an earlier driver (to wait for).

    Done runs and invalid ones (failed at expansion) are in neither.
    """
    st = {r.id: read_status(out, r.id) for r in runs if r.config is not None}
    todo, adopted = [], set()
    for r in runs:
        if r.config is None:
            continue
        if entry_status(out, _record(r), st[r.id], alive)["status"] == "done":
            continue
        if alive(st[r.id]):  # still running (or queued) in a job of an earlier driver: wait for it
            adopted.add(r.id)
        else:
            todo.append(r)
    return todo, adopted


def _plan(command: str, todo: list[Run], opts: SweepOptions) -> tuple[list[Group], int, int]:
    """Pack ``todo`` into job groups; returns the groups, concurrent jobs and torch threads per job."""
    cores = os.cpu_count() or 1
    jobs = opts.jobs or (cores if opts.executor == "local" else max(1, len(todo)))
    if opts.executor == "inline":
        jobs = 1
    keys = shape_keys(command, todo)
    if opts.models_per_job:
        m = opts.models_per_job
    else:
        per_key = max((keys.count(k) for k in set(keys)), default=1)
        m = max(1, min(MAX_AUTO_MODELS, math.ceil(per_key / jobs)))
    groups = [[(todo[i].id, todo[i].config) for i in g] for g in pack(keys, m)] if todo else []
    n_jobs = min(jobs, len(groups)) or 1
    threads = opts.cpus_per_job or (max(1, cores // n_jobs) if opts.executor != "slurm" else 1)
    return groups, n_jobs, threads


# ----------------------------------------------------------------------------- driving


class _Drive:
    """One driver's pass over a sweep: submit the groups, watch the jobs and the runs of earlier drivers'
    jobs, and rewrite the manifest, until no run is left."""

    def __init__(
        self,
        out: Path,
        command: str,
        runs: list[Run],
        opts: SweepOptions,
        device: str,
        progress: Callable[..., None] | None,
    ):
        self.out, self.command, self.opts, self.progress = out, command, opts, progress
        self.records = [_record(r) for r in runs]
        self.configs = {r.id: r.config for r in runs}
        self.alive = _Liveness()
        todo, self.adopted = _triage(out, runs, self.alive)
        groups, self.n_jobs, threads = _plan(command, todo, opts)
        self.executor = _Executor(out, opts, self.n_jobs, threads, device)
        self.queue: list[Group] = list(groups)
        self.in_flight: list[tuple[Any, list[str]]] = []  # (job handle, its run ids)
        self.manifest = write_manifest(out, command, self.records, self.alive)
        self.last_write = time.monotonic()

    def run(self) -> dict:
        """Drive until every run is done or failed; returns the final manifest (Interrupted on Ctrl-C)."""
        try:
            if self.opts.executor == "slurm" and self.queue:
                self._submit_array()
            while self._busy():
                self._submit_next()
                self._reap()
                self._check_adopted()
                self.report()
                if self._busy():
                    time.sleep(self.opts.poll)
        except BaseException as exc:  # Ctrl-C here, or (inline) the trainer's Interrupted
            if not _interrupted(exc):
                raise
            raise self._stop() from None
        return self.report(force=True)

    def _busy(self) -> bool:
        return bool(self.queue or self.in_flight or self.adopted)

    def report(self, force: bool = False) -> dict:
        """Rewrite the manifest (at most once a second unless ``force``), tell ``progress``, return it."""
        if force or time.monotonic() - self.last_write > 1.0:
            self.manifest = write_manifest(self.out, self.command, self.records, self.alive)
            self.last_write = time.monotonic()
        if self.progress:
            es = self.manifest["runs"]
            done = sum(e["status"] in ("done", "failed") for e in es)
            done += sum(float(e.get("progress") or 0.0) for e in es if e["status"] == "running")
            c = self.manifest["counts"]
            self.progress(done, len(self.records), running=c["running"], pending=c["pending"], failed=c["failed"])
        return self.manifest

    def _submit_array(self) -> None:
        """Slurm: every queued group at once, as one job array."""
        since = time.time()
        jobs = self.executor.submit(self.out, self.command, self.queue)
        for job, group in zip(jobs, self.queue, strict=True):
            ids = [rid for rid, _ in group]
            _mark_queued(self.out, ids, "slurm", str(job.job_id), None, since)
            self.in_flight.append((job, ids))
        self.queue = []
        self.alive.refresh()  # the next squeue must see the new jobs

    def _submit_next(self) -> None:
        """Submit queued groups while fewer than ``n_jobs`` are in flight (inline: run them here, now)."""
        while self.queue and len(self.in_flight) < self.n_jobs:
            group = self.queue.pop(0)
            if self.opts.executor == "inline":
                self.report(force=True)
                _, args = self.executor.submit(self.out, self.command, [group])[0]
                run_group(*args)
                continue
            since = time.time()
            job = self.executor.submit(self.out, self.command, [group])[0]
            pid = int(job.job_id) if self.opts.executor == "local" else None
            ids = [rid for rid, _ in group]
            _mark_queued(self.out, ids, self.opts.executor, str(job.job_id), pid, since)
            self.in_flight.append((job, ids))
            self.alive.refresh()

    def _reap(self) -> None:
        """Drop the jobs that ended; any run such a job did not finish crashed with it."""
        still = []
        for job, ids in self.in_flight:
            if _job_running(job, self.opts.executor, self.alive):
                still.append((job, ids))
            else:
                _mark_crashed(self.out, job, ids)
        self.in_flight = still

    def _check_adopted(self) -> None:
        """Stop waiting for runs of earlier drivers' jobs that ended; queue those their job left unfinished."""
        for rid in list(self.adopted):
            s = read_status(self.out, rid)
            if s.get("status") in ("done", "failed") or not self.alive(s):
                self.adopted.discard(rid)
                if s.get("status") not in ("done", "failed"):  # its old job died: run it ourselves
                    self.queue.append([(rid, self.configs[rid])])

    def _stop(self) -> Interrupted:
        """After Ctrl-C: cancel local jobs (Slurm jobs keep running), write the manifest; the error to raise."""
        if self.opts.executor == "local":
            for job, _ in self.in_flight:
                job.cancel(check=False)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and any(_job_running(j, "local", self.alive) for j, _ in self.in_flight):
                time.sleep(0.2)
        c = self.report(force=True)["counts"]
        left = "; its Slurm jobs keep running" if self.opts.executor == "slurm" and self.in_flight else ""
        return Interrupted(
            f"interrupted: {c['done']} of {len(self.records)} runs done{left}; finished runs are kept, "
            "rerun the same command to continue"
        )


def _mark_crashed(out: Path, job: Any, ids: list[str]) -> None:
    """Fail the runs of an ended ``job`` that it did not finish, naming the last line of its log."""
    for rid in ids:
        if read_status(out, rid).get("status") not in ("done", "failed", "interrupted"):
            tail = _job_log_tail(job)
            write_status(
                out,
                rid,
                "failed",
                job=str(job.job_id),
                error=f"job {job.job_id} ended before finishing the run"
                + (f": {tail}" if tail else f" (see {job.paths.stderr})"),
            )
