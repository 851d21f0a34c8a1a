"""What an output was made from, recorded in the output itself, so that nothing replaces what it did not make.

Every output a command writes records its *settings* (a flat dict of plain values): a run file its
``config``; a Markdown report a last line ``<!-- bumps-settings: {...} -->``; a JSON report a top-level
``bumps_settings`` key; a PNG figure a ``bumps-settings`` text chunk. :func:`check_replace` compares the
settings of an existing file with those of the output about to replace it and refuses a different (or
unknown) origin unless forced; :func:`settings_hash` gives the short hash that default run names carry.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import zlib
from pathlib import Path
from typing import Any

from bumps.errors import BumpsError
from bumps.io.runfile import OutputPathError, atomic_write, file_kind, is_run, safe_load

# Config keys a run file records about how a run went, not what it was asked to be.
OUTCOME_KEYS = frozenset(
    {
        "versions",
        "train_seconds",
        "epochs_done",
        "first_epoch",
        "started_from",
        "run_id",
        "final",
        "stop_reason",
        "diverged_epoch",
        "diverged_step",
        "losses",
        "probe_choices",
        "device",
        "subnormals_flushed",
    }
)
MD_STAMP = re.compile(r"^<!-- bumps-settings: (\{.*\}) -->$", re.M)
PNG_KEY = b"bumps-settings"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively, so that settings compare equal however they were made."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def settings_of_run(config: dict) -> dict:
    """The settings of a run: its stored ``config`` without the outcome keys (:data:`OUTCOME_KEYS`).

    Parameters
    ----------
    config : dict
        A run file's ``config``.

    Returns
    -------
    dict
        What the run was asked to be, as plain data.
    """
    return {k: _plain(v) for k, v in config.items() if k not in OUTCOME_KEYS}


def settings_hash(settings: dict, length: int = 8) -> str:
    """A short, stable hex hash of ``settings`` (sha256 of its sorted JSON).

    Parameters
    ----------
    settings : dict
        Plain data (tuples count as lists).
    length : int
        Hex digits kept.

    Returns
    -------
    str
        ``length`` lowercase hex digits.
    """
    text = json.dumps(_plain(settings), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _png_text(path: Path) -> dict[bytes, bytes]:
    out = {}
    with open(path, "rb") as fh:
        if fh.read(8) != PNG_SIGNATURE:
            return out
        while True:
            head = fh.read(8)
            if len(head) < 8:
                return out
            n, kind = struct.unpack(">I4s", head)
            data = fh.read(n)
            fh.read(4)  # crc
            if kind == b"tEXt" and b"\x00" in data:
                key, _, text = data.partition(b"\x00")
                out[key] = text
            if kind == b"IEND":
                return out


def stored_settings(path: str | os.PathLike) -> dict | None:
    """The settings an existing output records (None: it records none, or is not a bumps output).

    Parameters
    ----------
    path : str or os.PathLike
        An existing file: a run file (``.pt``), a Markdown or JSON report, or a PNG.

    Returns
    -------
    dict or None
        The recorded settings.
    """
    path = Path(path)
    if not path.is_file():
        return None
    kind = file_kind(path)
    try:
        if kind in ("torch", "pickle"):
            obj = safe_load(path)
            return settings_of_run(obj.get("config") or {}) if is_run(obj) else None
        if path.suffix.lower() == ".png":
            text = _png_text(path).get(PNG_KEY)
            return None if text is None else json.loads(text.decode("latin-1"))
        if kind != "text":
            return None
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix.lower() == ".json":
            obj = json.loads(text)
            return obj.get("bumps_settings") if isinstance(obj, dict) else None
        found = MD_STAMP.findall(text)
        return json.loads(found[-1]) if found else None
    except (BumpsError, ValueError, OSError, struct.error):
        return None


def diff_settings(old: dict, new: dict, keys: list[str] | None = None) -> list[str]:
    """How ``new`` differs from ``old``, key by key, as ``"key old → new"``.

    Parameters
    ----------
    old, new : dict
        Settings (:func:`stored_settings`, or those of the output about to be written).
    keys : list of str, optional
        Compare only these keys; None: every key of either dict.

    Returns
    -------
    list of str
        One entry per compared key whose values differ (a missing key shows as ``unset``), sorted.
    """
    old, new = _plain(old), _plain(new)
    out = []
    for k in sorted(set(old) | set(new) if keys is None else set(keys)):
        a, b = old.get(k, "unset"), new.get(k, "unset")
        if a != b:
            out.append(f"{k} {a!r} → {b!r}")
    return out


def check_replace(
    path: str | os.PathLike, settings: dict, force: bool = False, flag: str = "out", run: bool = False
) -> None:
    """Refuse to replace an output made from other settings (or from unknown ones) unless forced.

    Parameters
    ----------
    path : str or os.PathLike
        The output about to be written; nothing is checked if it does not exist.
    settings : dict
        The settings of the new output (what :func:`stored_settings` will read back from it).
    force : bool
        True: replace whatever is there.
    flag : str
        The parameter that chose ``path`` (named in the message, e.g. ``out`` or ``report``).
    run : bool
        True for a run file: only the keys of ``settings`` are compared (a run file records more than its
        configuration, e.g. knockouts), and the file must be a bumps run.

    Raises
    ------
    OutputPathError
        One line naming ``path`` and how its settings differ (or that it records none).
    """
    path = Path(path)
    if force or not path.exists() or path.is_dir():
        return
    old = stored_settings(path)
    if old is None:
        raise OutputPathError(
            f"{path} exists and records no bumps settings (not made by bumps, or made before outputs recorded "
            f"them); pass `force` to replace it, or choose another `{flag}`",
            path,
        )
    diff = diff_settings(old, settings, keys=list(settings) if run else None)
    if diff:
        more = f" and {len(diff) - 4} more" if len(diff) > 4 else ""
        raise OutputPathError(
            f"{path} was made from other settings ({'; '.join(diff[:4])}{more}); pass `force` to replace it, "
            f"or choose another `{flag}`",
            path,
        )


def stamp_markdown(text: str, settings: dict) -> str:
    """``text`` with the settings line appended (an HTML comment: invisible when the Markdown is rendered).

    Parameters
    ----------
    text : str
        The report.
    settings : dict
        Its settings.

    Returns
    -------
    str
        ``text``, a newline if it lacks one, and ``<!-- bumps-settings: {...} -->``.
    """
    line = json.dumps(_plain(settings), sort_keys=True, default=str, ensure_ascii=True)
    return f"{text}{'' if text.endswith(chr(10)) else chr(10)}<!-- bumps-settings: {line} -->\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def stamp_png(path: str | os.PathLike, settings: dict) -> Path:
    """Record ``settings`` in the PNG at ``path`` (a ``bumps-settings`` tEXt chunk after IHDR), atomically.

    Parameters
    ----------
    path : str or os.PathLike
        A PNG file just written.
    settings : dict
        Its settings.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    BumpsError
        If ``path`` is not a PNG, or cannot be rewritten.
    """
    path = Path(path)
    data = path.read_bytes()
    if not data.startswith(PNG_SIGNATURE):
        raise BumpsError(f"{path} is not a PNG file")
    ihdr_end = 8 + 8 + struct.unpack(">I", data[8:12])[0] + 4
    text = json.dumps(_plain(settings), sort_keys=True, default=str, ensure_ascii=True).encode("latin-1")
    stamped = data[:ihdr_end] + _chunk(b"tEXt", PNG_KEY + b"\x00" + text) + data[ihdr_end:]
    return atomic_write(path, lambda fh: fh.write(stamped))
