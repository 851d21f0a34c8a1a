"""The files of a sweep folder: ``sweep.json``, the per-run ``status/<id>.json`` and locks, ``manifest.json``.

Jobs run in other processes (or on other nodes), so no two of them ever write one file: each run's
status file is written atomically by whoever last touched the run, under the run's lock
``status/<id>.lock`` (held by the job while it trains). The manifest is assembled from the status
files, asking :class:`_Liveness` whether the process or Slurm job a record names is still alive.
Sweeps of earlier versions are resumed from these files: their layout must not change.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bumps.errors import BumpsError
from bumps.io.runfile import atomic_write, versions
from bumps.sweep.spec import Spec

FORMAT = "bumps.sweep"
VERSION = 1
STATUSES = ("pending", "running", "done", "failed")


# ----------------------------------------------------------------------------- per-run status files


def _status_path(out: Path, rid: str) -> Path:
    return out / "status" / f"{rid}.json"


def _lock_path(out: Path, rid: str) -> Path:
    """The run's lock: held by the job that trains it, tried (never waited for) by the driver."""
    return out / "status" / f"{rid}.lock"


def read_status(out: Path, rid: str) -> dict:
    """The run's status record; {} if it has none yet, a pending record if it is unreadable."""
    try:
        return json.loads(_status_path(out, rid).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return {"status": "pending", "note": "unreadable status file; will rerun"}


def write_status(out: Path, rid: str, status: str, **fields: Any) -> None:
    """Atomically replace the run's status file (only one process touches a run at a time)."""
    record = {"status": status, "time": time.time(), **fields}
    data = json.dumps(record).encode()
    atomic_write(_status_path(out, rid), lambda fh: fh.write(data))


def _mark_queued(out: Path, ids: list[str], executor: str, job: str, pid: int | None, since: float) -> None:
    """Record the job a run was submitted to (so a later driver can wait for it instead of resubmitting),
    unless the job already started it: under the run's lock, and only over a status older than ``since``."""
    ident: dict[str, Any] = {"executor": executor, "job": job, "host": socket.gethostname()}
    if pid is not None:
        ident.update(pid=pid, pid_start=_proc_start(pid))
    for rid in ids:
        with open(_lock_path(out, rid), "a") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # the job holds it: it is running and writes its own status
            if read_status(out, rid).get("time", 0.0) < since:
                write_status(out, rid, "queued", **ident)


# ----------------------------------------------------------------------------- liveness


def _proc_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (tells a live process from a reused pid), None if gone/zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        if sys.platform.startswith("linux"):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return "?"
    rest = stat.rsplit(")", 1)[1].split()
    return None if rest[0] in ("Z", "X") else rest[19]


class _Liveness:
    """Is the process/job named in a status record still alive? (Slurm: one cached squeue call.)"""

    def __init__(self, ttl: float = 3.0):
        self.ttl, self._slurm_at, self._slurm = ttl, -1e9, set()

    def refresh(self) -> None:
        """Forget the cached squeue answer (the next question asks Slurm again)."""
        self._slurm_at = -1e9

    def slurm_jobs(self) -> set[str]:
        """Ids of the Slurm jobs squeue lists (array tasks as ``<job>_<task>``), at most ``ttl`` seconds old."""
        if time.monotonic() - self._slurm_at > self.ttl:
            try:
                proc = subprocess.run(["squeue", "-h", "-r", "-o", "%i"], capture_output=True, text=True, timeout=30)
                if proc.returncode == 0:
                    self._slurm = set(proc.stdout.split())
            except (OSError, subprocess.TimeoutExpired):
                pass  # keep the last answer: do not declare jobs dead because squeue hiccuped
            self._slurm_at = time.monotonic()
        return self._slurm

    def __call__(self, st: dict) -> bool:
        if st.get("status") not in ("queued", "running"):
            return False
        if st.get("executor") == "slurm" and st.get("job") and shutil.which("squeue"):
            return str(st["job"]) in self.slurm_jobs()
        if st.get("host") == socket.gethostname() and st.get("pid"):
            start = _proc_start(int(st["pid"]))
            return start is not None and (st.get("pid_start") in (None, "?") or start == st.get("pid_start"))
        return st.get("host") not in (None, socket.gethostname())  # another machine: cannot tell, assume alive


# ----------------------------------------------------------------------------- manifest


def entry_status(out: Path, run: dict, st: dict, alive: Callable[[dict], bool]) -> dict:
    """A manifest entry's status fields from a run's status record (pending|running|done|failed)."""
    s = st.get("status")
    fields = {k: st[k] for k in ("job", "seconds", "summary", "progress") if k in st}
    if s == "done":
        if (out / run["run_file"]).exists():
            return {"status": "done", **fields}
        return {"status": "pending", "note": "marked done but the run file is missing; will rerun"}
    if s == "failed":
        return {"status": "failed", "error": st.get("error", "failed"), **fields}
    if s in ("queued", "running"):
        if alive(st):
            return {
                "status": "running" if s == "running" else "pending",
                "note": "" if s == "running" else f"queued as job {st.get('job')}",
                **fields,
            }
        return {"status": "pending", "note": f"interrupted (job {st.get('job')} is gone); rerun to continue"}
    if s == "interrupted":
        return {"status": "pending", "note": st.get("note", "interrupted; rerun to continue")}
    return {"status": "pending"}


def write_manifest(out: Path, command: str, runs: list[dict], alive: Callable[[dict], bool]) -> dict:
    """Assemble DIR/manifest.json from the per-run status files (atomically) and return it."""
    entries = []
    for run in runs:
        base = {k: run[k] for k in ("id", "grid", "config", "run_file")}
        base.update(status="pending", error="")
        if run.get("error"):  # invalid config: failed at expansion, never submitted
            base.update(status="failed", error=run["error"])
        else:
            base.update(entry_status(out, run, read_status(out, run["id"]), alive))
        entries.append(base)
    counts = {s: sum(e["status"] == s for e in entries) for s in STATUSES}
    manifest = {
        "format": f"{FORMAT}.manifest",
        "version": VERSION,
        "command": command,
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "counts": counts,
        "runs": entries,
    }
    data = json.dumps(manifest, indent=1).encode()
    atomic_write(out / "manifest.json", lambda fh: fh.write(data))
    return manifest


def sweep_status(out: str | os.PathLike) -> dict:
    """Refresh DIR/manifest.json from the status files and return it (for ``--status``).

    Parameters
    ----------
    out : str or os.PathLike
        The sweep folder (the ``--out`` of a ``bumps sweep``).

    Returns
    -------
    dict
        The refreshed manifest: ``counts`` per status and one entry per run.

    Raises
    ------
    BumpsError
        If ``out`` holds no sweep, or its manifest is missing or unreadable.
    """
    out = Path(out)
    if not (out / "sweep.json").exists():
        raise BumpsError(f"{out} holds no sweep (no sweep.json); give the --out folder of a bumps sweep")
    try:
        old = json.loads((out / "manifest.json").read_text())
        runs = old["runs"]
    except (OSError, ValueError, KeyError):
        raise BumpsError(f"{out}/manifest.json is missing or unreadable; rerun the sweep to rebuild it") from None
    runs = [{**r, "error": r["error"] if r.get("config") is None else ""} for r in runs]
    return write_manifest(out, old.get("command", "?"), runs, _Liveness())


# ----------------------------------------------------------------------------- the folder


def prepare_dir(out: Path, spec: Spec) -> None:
    """Create ``out`` for this spec, or accept it if it holds this same sweep; refuse anything else."""
    meta_path = out / "sweep.json"
    if out.exists() and not out.is_dir():
        raise BumpsError(f"--out {out} is a file; give a folder for the sweep")
    if meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            raise BumpsError(f"--out {out} has an unreadable sweep.json; choose another --out") from None
        if meta.get("fingerprint") != spec.fingerprint():
            old = meta.get("spec", {})
            diff = [k for k in ("command", "base", "grid") if _strip_device(old, k) != _strip_device(spec.as_dict(), k)]
            what = f"its {diff[0]} differs" if diff else "its spec differs"
            raise BumpsError(f"--out {out} holds another sweep ({what}); use a new --out, or the same spec to resume")
        return
    if out.exists() and any(out.iterdir()):
        raise BumpsError(f"--out {out} is not empty and holds no sweep; give a new or empty folder")
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "fingerprint": spec.fingerprint(),
        "spec": spec.as_dict(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": versions(),
    }
    data = json.dumps(meta, indent=1).encode()
    atomic_write(meta_path, lambda fh: fh.write(data))


def _strip_device(d: dict, key: str) -> Any:
    value = d.get(key)
    if key == "base" and isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "device"}
    return value
