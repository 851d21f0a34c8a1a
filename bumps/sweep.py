"""Sweeps: a TOML grid over `grok` or `simulate` flags, run as submitit jobs (local or Slurm).

A spec names a command, the flags every run shares (``[base]``) and the flags to vary
(``[grid]``, their cartesian product)::

    command = "grok"
    [base]
    p = 31
    epochs = 300
    [grid]
    seed = [0, 1]
    lr = [0.001, 0.003]

Each run gets a stable id (a hash of its full resolved config, device excluded) and the run
file ``DIR/runs/<id>.pt``. Grok runs with equal :func:`bumps.modadd.shape_key` are packed into
groups of at most M and trained as one ensemble (``train_many``) inside one job; a simulate job
runs its group one after another. Jobs run in other processes (or on other nodes), so no two of
them ever write one file: each run has its own status file ``DIR/status/<id>.json`` (written
atomically by whoever last touched the run) and a lock ``DIR/status/<id>.lock`` held while it
trains; ``DIR/manifest.json`` is assembled from them by the driver and by ``--status``.

Rerunning the same command skips done runs, waits for runs still alive in jobs of an earlier
(killed) driver, and resubmits the rest; an interrupted grok run continues from its autosave.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import itertools
import json
import math
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
import types
import typing
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from bumps.errors import BumpsError
from bumps.io.runfile import atomic_write

FORMAT = "bumps.sweep"
VERSION = 1
COMMANDS = ("grok", "simulate")
EXECUTORS = ("local", "slurm", "inline")
STATUSES = ("pending", "running", "done", "failed")
MAX_AUTO_MODELS = 32  # auto --models-per-job never packs more than this many runs into one job


class Interrupted(BumpsError):
    """The sweep driver was stopped (Ctrl-C); finished runs are kept, a rerun continues."""


# ----------------------------------------------------------------------------- spec


def config_class(command: str) -> type:
    if command == "grok":
        from bumps.modadd.model import ModAddConfig

        return ModAddConfig
    from bumps.lowrank.model import LowRankConfig

    return LowRankConfig


def config_fields(command: str) -> dict[str, Any]:
    """Field name -> resolved type hint of the command's config dataclass."""
    cls = config_class(command)
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_describe(a) for a in args if a is not type(None))
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return f"a list of {_describe(args[0]).removeprefix('an ').removeprefix('a ')}s"
    if origin is tuple:
        return f"a list of {len(args)} {_describe(args[0]).removeprefix('an ').removeprefix('a ')}s"
    if origin is list:
        return f"a list of {_describe(args[0]).removeprefix('an ').removeprefix('a ')}s"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(hint, str(hint))


def coerce(value: Any, hint: Any) -> Any:
    """``value`` (from TOML or JSON) as the config field type ``hint``; TypeError if it is not one."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        for arg in args:
            if arg is type(None):
                if value is None:
                    return None
                continue
            try:
                return coerce(value, arg)
            except TypeError:
                pass
    elif origin in (tuple, list):
        if isinstance(value, list | tuple):
            if origin is list:
                return [coerce(v, args[0]) for v in value]
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(coerce(v, args[0]) for v in value)
            if len(value) == len(args):
                return tuple(coerce(v, a) for v, a in zip(value, args, strict=True))
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    raise TypeError(_describe(hint))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


@dataclasses.dataclass(frozen=True)
class Spec:
    """A parsed, type-checked sweep spec (config field names, values of the field types)."""

    command: str
    base: dict[str, Any]
    grid: dict[str, list]

    def as_dict(self) -> dict:
        return _jsonable({"command": self.command, "base": self.base, "grid": self.grid})

    def fingerprint(self) -> str:
        """Hash of what the runs are (the device is where they run, not what they are)."""
        d = self.as_dict()
        d["base"].pop("device", None)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def load_spec(path: str | os.PathLike) -> Spec:
    """Read and check a TOML spec file (one-line BumpsError for anything wrong)."""
    import tomllib

    path = Path(path)
    if path.is_dir():
        raise BumpsError(f"{path} is a directory; give a spec .toml file (or --status to show a sweep folder)")
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise BumpsError(f"no such spec file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BumpsError(f"cannot read spec {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BumpsError(f"{path} is not valid TOML: {exc}") from None
    return parse_spec(data, str(path))


def parse_spec(data: dict, where: str = "spec") -> Spec:
    """Check a spec dict: known command, known flags of that command, values of the right type, a grid."""
    extra = sorted(set(data) - {"command", "base", "grid"})
    if extra:
        raise BumpsError(f"{where}: unknown key {extra[0]!r}; a spec has command = ..., [base] and [grid]")
    command = data.get("command")
    if command is None:
        raise BumpsError(f'{where}: no command; add command = "grok" or command = "simulate"')
    if command not in COMMANDS:
        raise BumpsError(f'{where}: unknown command {command!r}; use "grok" or "simulate"')
    fields = config_fields(command)
    known = ", ".join(sorted(k.replace("_", "-") for k in fields))

    def table(name: str) -> dict:
        value = data.get(name, {})
        if not isinstance(value, dict):
            raise BumpsError(f"{where}: {name} must be a table ([{name}] followed by flag = value lines)")
        return value

    def field(key: str, section: str) -> str:
        name = key.replace("-", "_")
        if name not in fields:
            raise BumpsError(f"{where} [{section}]: unknown {command} flag {key!r}; known flags: {known}")
        return name

    def check(name: str, key: str, section: str, value: Any) -> Any:
        try:
            return coerce(value, fields[name])
        except TypeError:
            raise BumpsError(f"{where} [{section}] {key}: {value!r} is not {_describe(fields[name])}") from None

    base: dict[str, Any] = {}
    for key, value in table("base").items():
        name = field(key, "base")
        if name in base:
            raise BumpsError(f"{where} [base]: {key!r} is given twice (as - and _ spellings)")
        base[name] = check(name, key, "base", value)
    grid_table = table("grid")
    if not grid_table:
        raise BumpsError(
            f"{where}: the [grid] is empty, so there is nothing to sweep; "
            "add at least one flag with a list of values, e.g. seed = [0, 1]"
        )
    grid: dict[str, list] = {}
    for key, values in grid_table.items():
        name = field(key, "grid")
        if name in base or name in grid:
            raise BumpsError(f"{where} [grid]: {key!r} is also in [base] (or given twice); give it once")
        if name == "device":
            raise BumpsError(
                f"{where} [grid]: device cannot be a grid axis (it is where runs go, not what they "
                "are); set it in [base] or with --device"
            )
        if not isinstance(values, list):
            raise BumpsError(
                f"{where} [grid] {key} must be a list of values (got {values!r}); put a single value in [base]"
            )
        if not values:
            raise BumpsError(f"{where} [grid] {key} = [] is empty, so the grid has no runs; give it values")
        grid[name] = [check(name, key, "grid", v) for v in values]
    return Spec(command, base, grid)


# ----------------------------------------------------------------------------- runs


@dataclasses.dataclass
class Run:
    """One grid point: its id, grid values, full resolved config (None if invalid) or its error line."""

    id: str
    grid: dict[str, Any]
    config: dict | None
    error: str | None = None

    @property
    def run_file(self) -> str:
        return f"runs/{self.id}.pt"


def make_config(command: str, params: dict[str, Any]):
    """The validated config object for ``params`` (field names). Validated on cpu: see :func:`expand`."""
    params = {**params, "device": "cpu"}
    if command == "grok":
        from bumps.modadd.model import ModAddConfig

        preset = params.pop("preset", "nanda")
        return ModAddConfig.from_preset(preset, **params)
    from bumps.lowrank.model import LowRankConfig

    return LowRankConfig(**params).validate()


def config_dict(command: str, cfg) -> dict:
    d = cfg.as_dict() if hasattr(cfg, "as_dict") else dataclasses.asdict(cfg)
    d = _jsonable(d)
    d.pop("device", None)
    return d


def config_from_dict(command: str, d: dict, device: str = "cpu"):
    """Rebuild a config object from its :func:`config_dict` (no validation; that happened at expansion)."""
    fields = config_fields(command)
    values = {k: coerce(v, fields[k]) for k, v in d.items() if k in fields}
    return config_class(command)(**{**values, "device": device})


def run_id(command: str, what: dict) -> str:
    blob = json.dumps({"command": command, **what}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def expand(spec: Spec) -> list[Run]:
    """The grid's runs in grid order (first axis slowest); identical configs are one run.

    A grid point whose values are invalid (e.g. p = 8, not prime) becomes a run with its error
    line: it fails alone, the others go on. Configs are validated on cpu; the device is checked
    where the runs go (driver for local runs, the job for Slurm, whose login node may have no GPU).
    """
    keys = list(spec.grid)
    runs: list[Run] = []
    seen: set[str] = set()
    base = {k: v for k, v in spec.base.items() if k != "device"}
    for values in itertools.product(*(spec.grid[k] for k in keys)):
        point = dict(zip(keys, values, strict=True))
        try:
            cfg = make_config(spec.command, {**base, **point})
        except BumpsError as exc:
            rid = run_id(spec.command, {"params": _jsonable({**base, **point})})
            run = Run(rid, _jsonable(point), None, str(exc))
        else:
            config = config_dict(spec.command, cfg)
            run = Run(run_id(spec.command, {"config": config}), _jsonable(point), config)
        if run.id not in seen:
            seen.add(run.id)
            runs.append(run)
    return runs


def pack(keys: list, max_per_group: int) -> list[list[int]]:
    """Indices grouped by equal key (first-seen order), each group split into near-equal chunks of <= M."""
    if max_per_group < 1:
        raise BumpsError(f"--models-per-job must be >= 1 (got {max_per_group})")
    by_key: dict[Any, list[int]] = {}
    for i, key in enumerate(keys):
        by_key.setdefault(key, []).append(i)
    groups = []
    for members in by_key.values():
        n_chunks = math.ceil(len(members) / max_per_group)
        sizes = [len(members) // n_chunks + (i < len(members) % n_chunks) for i in range(n_chunks)]
        starts = list(itertools.accumulate(sizes, initial=0))
        groups += [members[a:b] for a, b in zip(starts, starts[1:], strict=False)]
    return groups


def shape_keys(command: str, runs: list[Run]) -> list:
    """Packing keys: grok runs share a job only with equal shape_key; simulate runs with any."""
    if command != "grok":
        return [None] * len(runs)
    from bumps.modadd.model import shape_key

    return [shape_key(config_from_dict(command, r.config)) for r in runs]


# ----------------------------------------------------------------------------- status files


def _status_path(out: Path, rid: str) -> Path:
    return out / "status" / f"{rid}.json"


def read_status(out: Path, rid: str) -> dict:
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


def _worker_identity() -> dict:
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


class _Liveness:
    """Is the process/job named in a status record still alive? (Slurm: one cached squeue call.)"""

    def __init__(self, ttl: float = 3.0):
        self.ttl, self._slurm_at, self._slurm = ttl, -1e9, set()

    def refresh(self) -> None:
        self._slurm_at = -1e9

    def slurm_jobs(self) -> set[str]:
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


# ----------------------------------------------------------------------------- worker (runs inside a job)


def _error_line(exc: BaseException) -> str:
    if isinstance(exc, BumpsError):
        line = str(exc)
    else:
        first = (str(exc).strip().splitlines() or [""])[0]
        line = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return line if len(line) <= 300 else line[:297] + "..."


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


def run_group(
    sweep_dir: str, command: str, items: list[tuple[str, dict]], device: str = "cpu", threads: int | None = None
) -> dict[str, str]:
    """The body of one job: run ``items`` [(run id, config dict)], writing each run's status.

    Grok: one ``train_many`` ensemble (resume="auto"); if it fails, each member is retried alone
    so only the bad one fails. Simulate: the runs one after another. Every failure is recorded as
    one line in that run's status; nothing but an interruption (Ctrl-C, SIGTERM) stops the job.
    Returns {run id: final status}.
    """
    import torch

    out = Path(sweep_dir)
    if threads:
        torch.set_num_threads(threads)
    ids = [rid for rid, _ in items]
    ident = _worker_identity()
    result: dict[str, str] = {}
    with _locked([out / "status" / f"{rid}.lock" for rid in ids]):
        todo = []
        for rid, cfg in items:  # an earlier job may have finished it while we waited for the lock
            if read_status(out, rid).get("status") == "done" and (out / "runs" / f"{rid}.pt").exists():
                result[rid] = "done"
            else:
                todo.append((rid, cfg))
        runner = _run_grok if command == "grok" else _run_simulate
        result.update(runner(out, todo, device, ident))
    return result


def _interrupted(exc: BaseException) -> bool:
    """Ctrl-C, the trainer's Interrupted, or submitit's requeue/timeout exit (SystemExit, UncompletedJobError)."""
    return isinstance(exc, KeyboardInterrupt | SystemExit) or type(exc).__name__ in (
        "Interrupted",
        "UncompletedJobError",
    )


def _finish(out: Path, rid: str, ident: dict, t0: float, summary: dict) -> str:
    write_status(out, rid, "done", seconds=round(time.perf_counter() - t0, 3), summary=summary, **ident)
    return "done"


def _fail(out: Path, rid: str, ident: dict, t0: float, exc: BaseException) -> str:
    write_status(out, rid, "failed", error=_error_line(exc), seconds=round(time.perf_counter() - t0, 3), **ident)
    return "failed"


def _run_simulate(out: Path, items, device: str, ident: dict) -> dict[str, str]:
    from bumps.io.runfile import atomic_save, load_run
    from bumps.lowrank.model import simulate

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
                run = simulate(cfg, progress=lambda step, cfg=cfg, report=report: report(step, cfg.steps))
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


def _run_grok(out: Path, items, device: str, ident: dict) -> dict[str, str]:
    if not items:
        return {}
    from bumps.modadd.train import train_many

    ids = [rid for rid, _ in items]
    t0 = time.perf_counter()
    for rid in ids:
        write_status(out, rid, "running", progress=0.0, **ident)
    try:
        cfgs = [config_from_dict("grok", d, device).validate() for _, d in items]  # the device, here
        runs = train_many(
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


# ----------------------------------------------------------------------------- driver


@dataclasses.dataclass
class SweepOptions:
    executor: str = "local"  # local (submitit LocalExecutor) | slurm (job arrays) | inline (this process)
    jobs: int | None = None  # concurrent jobs (local) / array parallelism (slurm); default: cores / all
    models_per_job: int = 0  # 0: auto, ceil(runs of a shape / jobs), at most MAX_AUTO_MODELS
    partition: str | None = None
    gpus_per_job: int = 0
    time_min: int | None = None  # per-job time limit (slurm default 60; local: none)
    cpus_per_job: int | None = None
    device: str | None = None  # overrides [base] device
    poll: float = 0.5

    def validate(self) -> SweepOptions:
        if self.executor not in EXECUTORS:
            raise BumpsError(f"--executor must be one of {', '.join(EXECUTORS)} (got {self.executor!r})")
        for name in ("jobs", "cpus_per_job", "time_min"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise BumpsError(f"--{name.replace('_min', '').replace('_', '-')} must be >= 1 (got {v})")
        if self.models_per_job < 0:
            raise BumpsError(f"--models-per-job must be >= 1, or 0 for auto (got {self.models_per_job})")
        if self.gpus_per_job < 0:
            raise BumpsError(f"--gpus-per-job must be >= 0 (got {self.gpus_per_job})")
        return self


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
    import torch

    try:
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as exc:
        raise BumpsError(f"--device {device!r} is not available here ({str(exc).splitlines()[0][:80]})") from None


@contextmanager
def _driver_lock(out: Path) -> Iterator[None]:
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
    from bumps.io.runfile import versions

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


def _strip_device(d: dict, key: str):
    value = d.get(key)
    if key == "base" and isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "device"}
    return value


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
    """Refresh DIR/manifest.json from the status files and return it (for ``--status``)."""
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


class _Executor:
    """submitit (local LocalExecutor, slurm SlurmExecutor job arrays) or inline, behind one interface."""

    def __init__(self, out: Path, opts: SweepOptions, n_jobs: int, threads: int, device: str):
        self.opts, self.kind, self.threads, self.device = opts, opts.executor, threads, device
        self.folder = out / "jobs"
        if self.kind == "inline":
            return
        import submitit

        # the job must import this same bumps (a checkout is not installed): PYTHONPATH via the python command
        import bumps

        root = str(Path(bumps.__file__).resolve().parents[1])
        path = root + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")
        python = f"env PYTHONPATH={shlex.quote(path)} {shlex.quote(sys.executable)}"
        if self.kind == "local":
            self.ex = submitit.LocalExecutor(folder=self.folder, python=python)
            gpus = opts.gpus_per_job or (1 if device.startswith("cuda") else 0)
            params: dict[str, Any] = {"timeout_min": opts.time_min or 60 * 24 * 365}
            if gpus:  # LocalExecutor hides every GPU (CUDA_VISIBLE_DEVICES="") unless asked for some
                params["gpus_per_node"] = gpus
            self.ex.update_parameters(**params)
        else:
            self.ex = submitit.SlurmExecutor(folder=self.folder, python=python)
            params = {
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
            self.ex.update_parameters(**params)

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


class _RunGroup:
    """run_group as a submitit Checkpointable: a Slurm job that hits its time limit is requeued and continues."""

    def __call__(self, *args):
        return run_group(*args)

    def checkpoint(self, *args):
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(_RunGroup(), *args)


def _job_log_tail(job) -> str:
    try:
        lines = [x for x in Path(job.paths.stderr).read_text(errors="replace").splitlines() if x.strip()]
    except (OSError, AttributeError):
        return ""
    return lines[-1][:200] if lines else ""


def run_sweep(
    spec_path: str | os.PathLike,
    out: str | os.PathLike,
    opts: SweepOptions | None = None,
    progress: Callable[..., None] | None = None,
) -> dict:
    """Run (or continue) the sweep of ``spec_path`` into ``out``; returns the final manifest.

    ``progress(done, total, running=, pending=, failed=)`` is called while waiting; ``done``
    counts finished runs plus the fraction done of running ones.
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
        return _drive(out, spec, runs, opts, device, progress)


def _drive(out: Path, spec: Spec, runs: list[Run], opts: SweepOptions, device: str, progress) -> dict:
    command = spec.command
    records = [dataclasses.asdict(r) | {"run_file": r.run_file} for r in runs]
    alive = _Liveness()
    by_id = {r.id: r for r in runs}

    st = {r.id: read_status(out, r.id) for r in runs if r.config is not None}
    todo, adopted = [], set()
    for r in runs:
        if r.config is None:
            continue
        e = entry_status(out, dataclasses.asdict(r) | {"run_file": r.run_file}, st[r.id], alive)
        if e["status"] == "done":
            continue
        if alive(st[r.id]):  # still running (or queued) in a job of an earlier driver: wait for it
            adopted.add(r.id)
        else:
            todo.append(r)

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
    executor = _Executor(out, opts, n_jobs, threads, device)

    manifest = write_manifest(out, command, records, alive)
    total = len(runs)
    last_write = time.monotonic()

    def report(force: bool = False) -> dict:
        nonlocal last_write, manifest
        if force or time.monotonic() - last_write > 1.0:
            manifest = write_manifest(out, command, records, alive)
            last_write = time.monotonic()
        if progress:
            es = manifest["runs"]
            done = sum(e["status"] in ("done", "failed") for e in es)
            done += sum(float(e.get("progress") or 0.0) for e in es if e["status"] == "running")
            c = manifest["counts"]
            progress(done, total, running=c["running"], pending=c["pending"], failed=c["failed"])
        return manifest

    queue = list(groups)
    in_flight: list[tuple[Any, list[str]]] = []
    try:
        if opts.executor == "slurm" and queue:
            since = time.time()
            jobs_ = executor.submit(out, command, queue)
            for job, g in zip(jobs_, queue, strict=True):
                _mark_queued(out, [rid for rid, _ in g], "slurm", str(job.job_id), None, since)
                in_flight.append((job, [rid for rid, _ in g]))
            queue = []
            alive.refresh()  # the next squeue must see the new jobs
        while queue or in_flight or adopted:
            while queue and len(in_flight) < n_jobs:
                g = queue.pop(0)
                ids = [rid for rid, _ in g]
                if opts.executor == "inline":
                    report(force=True)
                    _, args = executor.submit(out, command, [g])[0]
                    run_group(*args)
                    continue
                since = time.time()
                job = executor.submit(out, command, [g])[0]
                local = opts.executor == "local"
                _mark_queued(out, ids, opts.executor, str(job.job_id), int(job.job_id) if local else None, since)
                in_flight.append((job, ids))
                alive.refresh()
            still = []
            for job, ids in in_flight:
                if _job_running(job, opts.executor, alive):
                    still.append((job, ids))
                    continue
                for rid in ids:  # the job is gone: any run it did not finish crashed with it
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
            in_flight = still
            for rid in list(adopted):
                s = read_status(out, rid)
                if s.get("status") in ("done", "failed") or not alive(s):
                    adopted.discard(rid)
                    if s.get("status") not in ("done", "failed"):  # its old job died: run it ourselves
                        queue.append([(rid, by_id[rid].config)])
            report()
            if queue or in_flight or adopted:
                time.sleep(opts.poll)
    except BaseException as exc:  # Ctrl-C here, or (inline) the trainer's Interrupted
        if not _interrupted(exc):
            raise
        if opts.executor == "local":
            for job, _ in in_flight:
                job.cancel(check=False)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and any(_job_running(j, "local", alive) for j, _ in in_flight):
                time.sleep(0.2)
        manifest = report(force=True)
        c = manifest["counts"]
        left = "; its Slurm jobs keep running" if opts.executor == "slurm" and in_flight else ""
        raise Interrupted(
            f"interrupted: {c['done']} of {total} runs done{left}; finished runs are kept, "
            "rerun the same command to continue"
        ) from None
    return report(force=True)


def _mark_queued(out: Path, ids: list[str], executor: str, job: str, pid: int | None, since: float) -> None:
    """Record the job a run was submitted to (so a later driver can wait for it instead of resubmitting),
    unless the job already started it: under the run's lock, and only over a status older than ``since``."""
    ident: dict[str, Any] = {"executor": executor, "job": job, "host": socket.gethostname()}
    if pid is not None:
        ident.update(pid=pid, pid_start=_proc_start(pid))
    for rid in ids:
        with open(out / "status" / f"{rid}.lock", "a") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # the job holds it: it is running and writes its own status
            if read_status(out, rid).get("time", 0.0) < since:
                write_status(out, rid, "queued", **ident)


def _job_running(job, executor: str, alive: _Liveness) -> bool:
    if executor == "local":
        return not job.done()
    return str(job.job_id) in alive.slurm_jobs()
