"""What ``bumps view PATH`` may read: the run files under PATH, loaded safely, and folders of them.

:class:`Target` is PATH, checked once: a run file, or a folder holding run files (a sweep, an
ensemble, a probe ablation). Every file the page asks for is resolved by :meth:`Target.resolve`,
which refuses anything outside PATH (``..``, absolute paths, symlinks out). Run files are loaded
with :func:`bumps.io.runfile.load_run` (``weights_only=True``) and cached by modification time and
size; a load that fails while the file is being replaced is retried.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bumps.errors import BumpsError
from bumps.io.runfile import file_kind, load_run
from bumps.view.charts import BUCKETS, chart
from bumps.view.data import run_status

MAX_FILES = 1000  # run files listed in a folder at most


def run_files(folder: Path) -> list[Path]:
    """The ``.pt`` files under a folder (recursively), without weight checkpoints (``*_ckpt/``), sorted.

    Parameters
    ----------
    folder : pathlib.Path
        The folder.

    Returns
    -------
    list of pathlib.Path
        At most :data:`MAX_FILES` paths, hidden files and folders left out.
    """
    found = []
    for p in sorted(folder.rglob("*.pt")):
        parts = p.relative_to(folder).parts
        if any(s.startswith(".") or s.endswith("_ckpt") for s in parts) or not p.is_file():
            continue
        found.append(p)
        if len(found) >= MAX_FILES:
            break
    return found


@dataclass
class Target:
    """PATH of ``bumps view``, checked: one run file, or a folder of run files.

    Attributes
    ----------
    root : pathlib.Path
        PATH, resolved (symlinks followed).
    is_file : bool
        True for a run file, False for a folder.
    tries : int, default 5
        Attempts to load a run file that fails to load (it may be mid-replace).
    wait : float, default 0.2
        Seconds between attempts.
    """

    root: Path
    is_file: bool
    tries: int = 5
    wait: float = 0.2
    _cache: OrderedDict = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def open(cls, path: str | os.PathLike) -> Target:
        """Check PATH: a readable run file, or a folder with at least one run file.

        Parameters
        ----------
        path : str or os.PathLike
            What to view.

        Returns
        -------
        Target
            The checked target.

        Raises
        ------
        BumpsError
            If ``path`` does not exist, is a file that is not a bumps run, or is a folder without run
            files.
        """
        given = Path(path)
        if not given.exists():
            raise BumpsError(f"no such file or folder: {given}")
        root = given.resolve()
        if root.is_file():
            target = cls(root, True)
            try:  # a file that is not a run fails here, with its reason
                target.load(root)
            except BumpsError as exc:
                raise BumpsError(str(exc).replace(str(root), str(given))) from None
            return target
        target = cls(root, False)
        if not target.runs():
            raise BumpsError(f"{given} holds no bumps run files (.pt); give a run file or a folder of runs")
        return target

    def name_of(self, path: Path) -> str:
        """How the page names a file: relative to the folder, or the file's name."""
        return path.name if self.is_file else path.relative_to(self.root).as_posix()

    def resolve(self, rel: str | None) -> Path:
        """The run file the page asks for, refused unless it is PATH itself or a ``.pt`` file under PATH.

        Parameters
        ----------
        rel : str or None
            The path relative to PATH (a folder target), or None / "" / the file's name (a file target).

        Returns
        -------
        pathlib.Path
            The resolved file.

        Raises
        ------
        PermissionError
            If ``rel`` leads outside PATH, or is not a ``.pt`` file.
        FileNotFoundError
            If it is under PATH but does not exist.
        """
        if self.is_file:
            if rel not in (None, "", self.root.name):
                raise PermissionError(f"only {self.root.name} is served")
            return self.root
        if not rel:
            raise FileNotFoundError("no file given")
        if "\x00" in rel or os.path.isabs(rel):
            raise PermissionError("absolute paths are not served")
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.root) or path.suffix != ".pt":
            raise PermissionError("only .pt files under the viewed folder are served")
        if not path.is_file():
            raise FileNotFoundError(f"no such run file: {rel}")
        return path

    def runs(self) -> list[Path]:
        """The run files now under the folder (PATH itself for a file target)."""
        return [self.root] if self.is_file else run_files(self.root)

    def load(self, path: Path) -> dict:
        """Load a run file, cached by (modification time, size); retried while it fails to load.

        Parameters
        ----------
        path : pathlib.Path
            A file from :meth:`resolve` or :meth:`runs`.

        Returns
        -------
        dict
            The run (:func:`bumps.io.runfile.load_run`, ``weights_only=True``).

        Raises
        ------
        BumpsError
            If it is not a bumps run file (at once for a file of another type), or still fails to load
            after :attr:`tries` attempts.
        """
        for attempt in range(self.tries):
            try:
                st = path.stat()
            except OSError:
                raise BumpsError(f"no such file: {path}") from None
            key = (str(path), st.st_mtime_ns, st.st_size)
            with self._lock:
                if key in self._cache:
                    self._cache.move_to_end(key)
                    return self._cache[key]
            try:
                run = load_run(path)
            except BumpsError:
                if attempt == self.tries - 1 or file_kind(path) not in ("torch", "pickle", "empty"):
                    raise
                time.sleep(self.wait)  # being replaced (or written by a non-atomic writer): try again
                continue
            with self._lock:
                self._cache[key] = run
                while len(self._cache) > 8:
                    self._cache.popitem(last=False)
            return run
        raise BumpsError(f"could not load {path}")  # not reached: the last attempt raises

    def version(self) -> str:
        """A string that changes when any run file (or a sweep's manifest / status file) changes."""
        paths = self.runs()
        if not self.is_file:
            paths += [self.root / "manifest.json", *sorted((self.root / "status").glob("*.json"))]
        parts = []
        for p in paths:
            try:
                st = p.stat()
            except OSError:
                continue
            parts.append(f"{p.name}:{st.st_mtime_ns}:{st.st_size}")
        return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12]


def _final(run: dict, key: str) -> float | None:
    v = run.get(key)
    if v is None or not len(v):
        return None
    x = float(np.median(np.asarray(v[-1], dtype=np.float64)))
    return x if np.isfinite(x) else None


def sweep_table(folder: Path) -> dict | None:
    """The run table of a sweep folder, read only (never rewritten): ``manifest.json`` and ``status/``.

    Parameters
    ----------
    folder : pathlib.Path
        A folder; a sweep has ``sweep.json``.

    Returns
    -------
    dict or None
        None when ``folder`` is not a sweep; else ``command``, ``updated``, ``counts`` (runs per
        status) and ``runs``: ``id``, ``grid``, ``status``, ``note``, ``error``, ``summary``,
        ``progress`` and ``run_file``. A run's own status file, when newer, gives its status
        (``running`` while a job trains it); the manifest is as the sweep driver last wrote it.
    """
    if not (folder / "sweep.json").exists():
        return None
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        entries = manifest["runs"]
    except (OSError, ValueError, KeyError):
        return {"command": "?", "updated": None, "counts": {}, "runs": [], "note": "manifest.json unreadable"}
    rows = []
    for e in entries:
        row = {k: e.get(k) for k in ("id", "grid", "status", "note", "error", "summary", "progress", "run_file")}
        try:
            st = json.loads((folder / "status" / f"{e.get('id')}.json").read_text())
        except (OSError, ValueError):
            st = {}
        if st.get("status") in ("running", "done", "failed"):
            row["status"] = st["status"]
            row["progress"] = st.get("progress", row["progress"])
            row["summary"] = st.get("summary", row["summary"])
        rows.append(row)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return {"command": manifest.get("command"), "updated": manifest.get("updated"), "counts": counts, "runs": rows}


def folder_payload(target: Target, buckets: int = BUCKETS) -> dict:
    """The folder page: every run overlaid (test accuracy; the toy model's median loss), and the run table.

    Parameters
    ----------
    target : Target
        A folder target.
    buckets : int, default BUCKETS
        Envelope buckets per line.

    Returns
    -------
    dict
        ``view`` ("folder"), ``name``, ``runs`` (per file: ``file``, ``kind``, ``status``, ``detail``,
        ``records``, ``grok_epoch``, ``final_test_acc``, ``final_loss``), ``skipped`` (files that
        are not runs, with the reason), ``overlays`` (charts: ``test_acc`` of every mod-add run, with
        ``marks`` at grok epochs; ``loss`` median over seeds of every toy run) and ``sweep``
        (:func:`sweep_table`, or None).
    """
    rows, skipped, acc, loss, marks = [], [], [], [], []
    for path in target.runs():
        name = target.name_of(path)
        try:
            run = target.load(path)
        except BumpsError as exc:
            skipped.append({"file": name, "reason": str(exc)})
            continue
        status, detail = run_status(run)
        kind = run.get("kind")
        grok = int(run["grok_epoch"]) if "grok_epoch" in run else None
        steps = np.asarray(run.get("step", []))
        rows.append(
            {
                "file": name,
                "kind": kind,
                "status": status,
                "detail": detail,
                "records": len(steps),
                "grok_epoch": grok,
                "final_test_acc": _final(run, "test_acc"),
                "final_loss": _final(run, "test_loss" if kind == "modadd" else "loss"),
            }
        )
        if kind == "modadd" and "test_acc" in run and len(steps):
            acc.append(("test_acc", name, steps, np.asarray(run["test_acc"], dtype=np.float64)))
            if grok is not None and grok >= 0:
                marks.append({"label": name, "step": grok, "what": "grok epoch"})
        elif kind == "lowrank" and "loss" in run and len(steps):
            loss.append(("loss", name, steps, np.median(np.asarray(run["loss"], dtype=np.float64), axis=1)))
    overlays = []
    if acc:
        overlays.append({**chart("overlay_test_acc", "test accuracy, every run", False, acc, buckets), "marks": marks})
    if loss:
        title = "loss (median over seeds), every run"
        overlays.append({**chart("overlay_loss", title, True, loss, buckets), "marks": []})
    return {
        "view": "folder",
        "name": target.root.name,
        "runs": rows,
        "skipped": skipped,
        "overlays": overlays,
        "sweep": sweep_table(target.root),
    }
