"""The size guard: compare a run's estimated memory with what the machine has before allocating anything.

Each task estimates its own run (:func:`bumps.lowrank.model.estimate_memory`,
:func:`bumps.modadd.train.estimate_memory`) as named parts in bytes; :func:`check_fits` refuses a run
whose total exceeds the available memory with one line that gives the estimate, unless forced.
"""

from __future__ import annotations

import os
from pathlib import Path

from bumps.errors import BumpsError


def format_bytes(n: float) -> str:
    """``n`` bytes as a short human-readable size (``"512 B"``, ``"3.2 MB"``, ``"1.5 TB"``; powers of 1000).

    Parameters
    ----------
    n : float
        A size in bytes, >= 0.

    Returns
    -------
    str
        The size with one unit (B, kB, MB, GB, TB, PB, EB), three significant digits above 1 kB.
    """
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} EB"


def _cgroup_free() -> int | None:
    """Bytes left under this process's cgroup (v2) memory limit; None without a limit."""
    base = Path("/sys/fs/cgroup")
    try:
        limit = (base / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((base / "memory.current").read_text().strip()))
    except (OSError, ValueError):
        return None


def available_bytes(device: str = "cpu") -> int | None:
    """Memory a new allocation can use now on ``device``.

    Parameters
    ----------
    device : str
        torch device: ``"cpu"`` (``MemAvailable`` of ``/proc/meminfo``, lowered to what a cgroup memory
        limit leaves; else physical pages from ``os.sysconf``), a CUDA device (free device memory), or
        any other (unknown).

    Returns
    -------
    int or None
        Bytes, or None where it cannot be known (no check is then made).
    """
    if device.startswith("cuda"):
        import torch

        try:
            return int(torch.cuda.mem_get_info(torch.device(device))[0])
        except (RuntimeError, AssertionError, ValueError):
            return None
    if device != "cpu":
        return None
    free = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    free = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        free = None
    if free is None:
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            return None
    cgroup = _cgroup_free()
    return free if cgroup is None else min(free, cgroup)


def check_fits(parts: dict[str, int], what: str, device: str = "cpu", force: bool = False, hint: str = "") -> int:
    """Refuse a run whose estimated memory exceeds what ``device`` has available.

    Parameters
    ----------
    parts : dict of str to int
        The estimate, in bytes, by what it is for (e.g. ``{"state": ..., "records": ...}``).
    what : str
        What is estimated, for the message (e.g. ``"this simulation"``).
    device : str
        Where it would be allocated (:func:`available_bytes`).
    force : bool
        True: never refuse (``--force``: try anyway).
    hint : str
        What to change to make it smaller (e.g. ``"reduce `seeds`"``), appended to the message.

    Returns
    -------
    int
        The estimated total in bytes.

    Raises
    ------
    BumpsError
        One line with the estimate, its largest parts and the available memory, when the total exceeds
        the available memory and ``force`` is False.
    """
    total = int(sum(parts.values()))
    if force:
        return total
    free = available_bytes(device)
    if free is None or total <= free:
        return total
    big = sorted(parts.items(), key=lambda kv: -kv[1])[:3]
    detail = ", ".join(f"{k} {format_bytes(v)}" for k, v in big)
    raise BumpsError(
        f"{what} needs about {format_bytes(total)} of memory ({detail}) but {format_bytes(free)} is available on "
        f"{device}; {hint + ', or ' if hint else ''}pass `force` to try anyway"
    )
