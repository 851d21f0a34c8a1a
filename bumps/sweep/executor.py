"""Where jobs run: submitit's LocalExecutor, Slurm job arrays, or inline in the driver, behind one interface.

Also the checks made before anything is submitted (Slurm reachable, the device usable) and what the
driver asks of a submitted job (still running? the last line of its log).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

import bumps
from bumps.errors import BumpsError
from bumps.sweep.options import SweepOptions
from bumps.sweep.status import _Liveness
from bumps.sweep.worker import _RunGroup, run_group


class _Executor:
    """submitit (local LocalExecutor, slurm SlurmExecutor job arrays) or inline, behind one interface."""

    def __init__(self, out: Path, opts: SweepOptions, n_jobs: int, threads: int, device: str):
        self.opts, self.kind, self.threads, self.device = opts, opts.executor, threads, device
        self.folder = out / "jobs"
        if self.kind == "inline":
            return
        # deferred: only the local and slurm executors need submitit (inline sweeps and --status never do)
        import submitit

        python = _python_command()
        if self.kind == "local":
            self.ex = submitit.LocalExecutor(folder=self.folder, python=python)
            self.ex.update_parameters(**_local_parameters(opts, device))
        else:
            self.ex = submitit.SlurmExecutor(folder=self.folder, python=python)
            self.ex.update_parameters(**_slurm_parameters(opts, n_jobs, threads))

    def submit(self, out: Path, command: str, groups: list[list[tuple[str, dict]]]) -> list:
        """Submit groups (one job each; Slurm: one array); returns job handles."""
        args = [(str(out), command, g, self.device, self.threads) for g in groups]
        if self.kind == "inline":
            return [("inline", a) for a in args]
        if self.kind == "slurm":
            with self.ex.batch():
                jobs = [self.ex.submit(_RunGroup(), *a) for a in args]
            return jobs
        return [self.ex.submit(run_group, *a) for a in args]


def _python_command() -> str:
    """The jobs' python: this interpreter, with this bumps first on PYTHONPATH (a checkout is not installed)."""
    root = str(Path(bumps.__file__).resolve().parents[1])
    path = root + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")
    return f"env PYTHONPATH={shlex.quote(path)} {shlex.quote(sys.executable)}"


def _local_parameters(opts: SweepOptions, device: str) -> dict[str, Any]:
    gpus = opts.gpus_per_job or (1 if device.startswith("cuda") else 0)
    params: dict[str, Any] = {"timeout_min": opts.time_min or 60 * 24 * 365}
    if gpus:  # LocalExecutor hides every GPU (CUDA_VISIBLE_DEVICES="") unless asked for some
        params["gpus_per_node"] = gpus
    return params


def _slurm_parameters(opts: SweepOptions, n_jobs: int, threads: int) -> dict[str, Any]:
    params: dict[str, Any] = {
        "time": opts.time_min or 60,
        "cpus_per_task": threads,
        "array_parallelism": n_jobs,
        "job_name": "bumps-sweep",
        "signal_delay_s": 60,
    }
    if opts.partition:
        params["partition"] = opts.partition
    if opts.gpus_per_job:
        params["gpus_per_node"] = opts.gpus_per_job
    return params


# ----------------------------------------------------------------------------- submitted jobs


def _job_running(job: Any, executor: str, alive: _Liveness) -> bool:
    """Is the submitted ``job`` still queued or running? (local: its process; Slurm: squeue lists it.)"""
    if executor == "local":
        return not job.done()
    return str(job.job_id) in alive.slurm_jobs()


def _job_log_tail(job: Any) -> str:
    """The last non-blank line of the job's stderr (at most 200 characters), or "" if there is none."""
    try:
        lines = [x for x in Path(job.paths.stderr).read_text(errors="replace").splitlines() if x.strip()]
    except (OSError, AttributeError):
        return ""
    return lines[-1][:200] if lines else ""


# ----------------------------------------------------------------------------- checks before submitting


def check_slurm(partition: str | None) -> None:
    """One line if Slurm cannot take jobs from here: no sbatch/srun/squeue, controller unreachable, no partition."""
    missing = [c for c in ("sbatch", "srun", "squeue", "sinfo") if shutil.which(c) is None]
    if missing:
        raise BumpsError(
            f"--executor slurm: no {missing[0]} on PATH, so there is no Slurm here; use --executor "
            "local, or start a single-node Slurm with scripts/slurm-local.sh start"
        )
    try:
        proc = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        raise BumpsError("--executor slurm: sinfo did not answer in 30 s; is slurmctld reachable?") from None
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or ["no answer"])[-1]
        raise BumpsError(f"--executor slurm: Slurm is not reachable ({why}); is slurmctld running?")
    partitions = [p.rstrip("*") for p in proc.stdout.split()]
    if partition is not None and partition not in partitions:
        raise BumpsError(f"--partition {partition!r} does not exist; this Slurm has: {', '.join(partitions) or 'none'}")


def _check_device(device: str) -> None:
    """One line if ``device`` cannot hold a tensor here (local and inline runs go where the driver is)."""
    try:
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as exc:
        raise BumpsError(f"--device {device!r} is not available here ({str(exc).splitlines()[0][:80]})") from None
