"""Run files: one `.pt` per run, atomic writes, safe loads.

Every run file is a plain dict of tensors, numbers, strings, lists and dicts, so
it loads with ``torch.load(path, weights_only=True)`` and can never execute code.
Common keys for every kind: ``format`` ("bumps.run"), ``version`` (1), ``kind``,
``config`` (every parameter, the seed and the package versions) and ``step``
[T] int64; every time series has time on axis 0.
"""

from __future__ import annotations

import os
import pickle
import platform
import re
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch

from bumps.errors import BumpsError

FORMAT = "bumps.run"
VERSION = 1


def versions() -> dict[str, str]:
    """Versions of everything that can change the numbers.

    Returns
    -------
    dict of str to str
        Versions of ``bumps``, ``torch``, ``numpy``, ``scipy`` (from its metadata if
        it is not imported) and ``python``.
    """
    import sys
    from importlib.metadata import version

    import numpy

    from bumps import __version__

    scipy = sys.modules.get("scipy")  # not imported just for its version (`bumps simulate` never needs it)
    return {
        "bumps": __version__,
        "torch": str(torch.__version__),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__ if scipy is not None else version("scipy"),
        "python": platform.python_version(),
    }


class OutputPathError(BumpsError):
    """An output path that cannot be written; ``path`` lets the CLI name the flag that gave it.

    Parameters
    ----------
    message : str
        The one-line message.
    path : str or os.PathLike
        The output path.
    """

    def __init__(self, message: str, path: str | os.PathLike):
        super().__init__(message)
        self.path = Path(path)


def check_writable(path: str | os.PathLike, flag: str = "out") -> Path:
    """Fail early (before any long computation) if ``path`` cannot be written.

    Creates the parent directory if needed, and really creates and removes a probe
    file in it.

    Parameters
    ----------
    path : str or os.PathLike
        The output file.
    flag : str
        The parameter that gave ``path``, named in the message (the CLI shows it as ``--flag``; it names
        the flag the user typed instead when it finds ``path`` among them).

    Returns
    -------
    pathlib.Path
        ``path`` as a ``Path``.

    Raises
    ------
    OutputPathError
        If ``path`` is a directory, or its directory cannot be created or written to.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(
            f"output path {path} is a directory; give `{flag}` a file name such as {path}/run.pt", path
        )
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(
            f"cannot create output directory {parent}: {exc.strerror}; choose another `{flag}`", path
        ) from None
    try:  # os.access lies for root and for special file systems: really try
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputPathError(f"cannot write to {parent}: {exc.strerror}; choose another `{flag}`", path) from None
    return path


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(file)`` on a temp file beside ``path``, then rename it over ``path``.

    A crash or Ctrl-C mid-write leaves any existing file at ``path`` untouched. The
    file is made readable by all (mode 0644).

    Parameters
    ----------
    path : str or os.PathLike
        The output file (checked first with :func:`check_writable`).
    write : callable
        ``write(fh)`` writes the whole content to the binary file object ``fh``.

    Returns
    -------
    pathlib.Path
        ``path`` as a ``Path``.

    Raises
    ------
    BumpsError
        If ``path`` is not writable, or writing or renaming fails with an ``OSError``.
        Any other exception from ``write`` propagates (the temp file is removed).
    """
    path = check_writable(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are meant to be shared
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise BumpsError(f"could not write {path}: {exc.strerror or exc}") from None
        raise
    return path


def write_report_files(report: str | os.PathLike, markdown: str, data: Any) -> list[Path]:
    """Write a report's ``report``.md (``markdown``) and ``report``.json (``data``), each atomically.

    The JSON is serialised (indent 1, values it cannot encode written with ``str``) before either file
    is touched, so a value that cannot be serialised leaves both files as they were; each file is then
    replaced atomically, one after the other (an error writing the second leaves the first new).

    Parameters
    ----------
    report : str or os.PathLike
        The report's path without suffix; its folder is created.
    markdown : str
        The Markdown text.
    data : object
        The JSON content.

    Returns
    -------
    list of pathlib.Path
        The .md and .json paths.
    """
    import json

    report = Path(report)
    md, js = report.with_suffix(".md"), report.with_suffix(".json")
    blob = (json.dumps(data, indent=1, default=str) + "\n").encode()
    text = markdown.encode()
    report.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(md, lambda f: f.write(text))
    atomic_write(js, lambda f: f.write(blob))
    return [md, js]


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` ``obj`` to ``path`` atomically (see :func:`atomic_write`).

    Parameters
    ----------
    obj : Any
        What to save; plain tensors, numbers, strings, lists and dicts keep it
        loadable by :func:`safe_load`.
    path : str or os.PathLike
        The output file.

    Returns
    -------
    pathlib.Path
        ``path`` as a ``Path``.

    Raises
    ------
    BumpsError
        As :func:`atomic_write`.
    """
    return atomic_write(path, lambda fh: torch.save(obj, fh))


KIND_WORDS = {
    "empty": "empty",
    "numpy": "a numpy array file",
    "npz": "a numpy .npz archive",
    "zip": "a zip archive",
    "text": "a text file",
    "unknown": "not a file format bumps reads",
}


def file_kind(path: str | os.PathLike) -> str:
    """What a file holds, from its first bytes (and its extension for zip archives), before anything is parsed.

    Parameters
    ----------
    path : str or os.PathLike
        An existing file.

    Returns
    -------
    str
        ``"empty"``; ``"torch"`` (a zip archive as ``torch.save`` writes, or any zip named ``.pt``/``.pth``);
        ``"npz"`` (a zip named ``.npz``); ``"zip"`` (another zip); ``"pickle"`` (a legacy torch or pickle
        stream, protocol >= 2); ``"numpy"`` (``.npy`` magic); ``"text"`` (UTF-8 text: CSV, TOML, ...);
        ``"unknown"`` otherwise.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(512)
    if not head:
        return "empty"
    if head.startswith(b"PK\x03\x04"):
        if path.suffix.lower() == ".npz":
            return "npz"
        return "torch" if path.suffix.lower() in (".pt", ".pth") or b"data.pkl" in head else "zip"
    if head.startswith(b"\x93NUMPY"):
        return "numpy"
    if head[0] == 0x80 and len(head) > 1 and 2 <= head[1] <= 5:
        return "pickle"
    try:
        head.decode("utf-8")
        return "text"
    except UnicodeDecodeError:
        return "text" if b"\x00" not in head and len(head) == 512 else "unknown"


def safe_load(path: str | os.PathLike) -> Any:
    """Load a ``.pt`` file with ``weights_only=True``; refuse anything that carries code.

    Parameters
    ----------
    path : str or os.PathLike
        The torch file; tensors are mapped to the CPU.

    Returns
    -------
    Any
        The loaded object.

    Raises
    ------
    BumpsError
        If ``path`` is missing or a directory, references anything that is not plain
        data (nothing is executed), or is not a readable torch file.
    """
    path = Path(path)
    if not path.exists():
        raise BumpsError(f"no such file: {path}")
    if path.is_dir():
        raise BumpsError(f"{path} is a directory, not a file")
    kind = file_kind(path)
    if kind not in ("torch", "pickle"):
        raise BumpsError(f"{path} is {KIND_WORDS[kind]}, not a torch file; give a bumps run file (.pt)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        what = f"it references {found.group(1)}" if found else "it is not a plain tensor/data torch file"
        raise BumpsError(
            f"refusing to load {path}: {what} (loaded with weights_only=True; nothing was executed)"
        ) from None
    except Exception as exc:  # any other failure: not a torch file we can read
        raise BumpsError(f"{path} is not a readable torch file ({type(exc).__name__})") from None


def is_run(obj: Any) -> bool:
    """Whether ``obj`` is a bumps run: a dict with ``format == "bumps.run"``.

    Parameters
    ----------
    obj : Any
        A loaded object.

    Returns
    -------
    bool
        True for a run dict (of any version or kind).
    """
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def load_run(path: str | os.PathLike, kind: str | None = None) -> dict:
    """Load and validate a bumps run file, optionally requiring a given ``kind``.

    Parameters
    ----------
    path : str or os.PathLike
        The run file (loaded with :func:`safe_load`).
    kind : str, optional
        Required run kind (e.g. ``"lowrank"``, ``"modadd"``); None accepts any.

    Returns
    -------
    dict
        The run.

    Raises
    ------
    BumpsError
        As :func:`safe_load` and :func:`check_run`.
    """
    return check_run(safe_load(path), path, kind)


def check_run(obj: Any, path: str | os.PathLike, kind: str | None = None) -> dict:
    """Validate an already-loaded object as a bumps run (see :func:`load_run`).

    Parameters
    ----------
    obj : Any
        The loaded object.
    path : str or os.PathLike
        Where it came from; used only in error messages.
    kind : str, optional
        Required run kind; None accepts any.

    Returns
    -------
    dict
        ``obj``, unchanged.

    Raises
    ------
    BumpsError
        If ``obj`` is not a run, has another run-file version than :data:`VERSION`,
        or is not of kind ``kind``.
    """
    if not is_run(obj):
        raise BumpsError(f"{path} is not a bumps run file (no format='{FORMAT}' key)")
    if obj.get("version") != VERSION:
        raise BumpsError(f"{path} has run-file version {obj.get('version')}; this bumps reads {VERSION}")
    if kind is not None and obj.get("kind") != kind:
        raise BumpsError(f"{path} is a '{obj.get('kind')}' run; expected a '{kind}' run")
    return obj


def new_run(kind: str, config: dict, **arrays: Any) -> dict:
    """Assemble a run dict with the common header keys.

    Parameters
    ----------
    kind : str
        The run kind.
    config : dict
        Every parameter of the run, its seed and the package versions.
    **arrays : Any
        The recorded data (``step`` and the series), stored under their names.

    Returns
    -------
    dict
        ``format``, ``version``, ``kind``, ``config`` and ``arrays``.
    """
    return {"format": FORMAT, "version": VERSION, "kind": kind, "config": config, **arrays}


def checkpoint_dir(run_path: str | os.PathLike) -> Path:
    """Where the weight checkpoints of the run file ``run_path`` live: ``<stem>_ckpt/`` beside it.

    Parameters
    ----------
    run_path : str or os.PathLike
        The run file.

    Returns
    -------
    pathlib.Path
        The checkpoint directory (not created).
    """
    run_path = Path(run_path)
    return run_path.with_name(run_path.stem + "_ckpt")


def run_id_of(run: dict) -> str | None:
    """The run id a run file records (top level, or in its config for older files).

    Parameters
    ----------
    run : dict
        A loaded run.

    Returns
    -------
    str or None
        The run id as a string; None if the run records none.
    """
    rid = run.get("run_id", (run.get("config") or {}).get("run_id"))
    return None if rid is None else str(rid)


def read_checkpoint(path: str | Path) -> tuple[int, dict[str, torch.Tensor], str | None]:
    """Read a weight checkpoint, old (``{epoch, params}``) or new (``+ run_id, ...``).

    Parameters
    ----------
    path : str or pathlib.Path
        The checkpoint file (loaded with :func:`safe_load`).

    Returns
    -------
    epoch : int
        The epoch the weights are from.
    params : dict of str to torch.Tensor
        The weights by parameter name.
    run_id : str or None
        The id of the run that wrote it; None for old checkpoints.

    Raises
    ------
    BumpsError
        As :func:`safe_load`, or if the file has no ``epoch`` key or no ``params`` dict.
    """
    obj = safe_load(path)
    if not isinstance(obj, dict) or "epoch" not in obj or not isinstance(obj.get("params"), dict):
        raise BumpsError(f"{path} is not a bumps weight checkpoint (needs keys 'epoch' and 'params')")
    rid = obj.get("run_id")
    return int(obj["epoch"]), obj["params"], None if rid is None else str(rid)
