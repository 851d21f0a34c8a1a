"""The CPU thread policy every training command shares: how many torch intra-op threads a loop gets.

One rule, :func:`choose_threads`, for ``bumps simulate``, ``grok``, ``probe-ablation``, ``claims`` and the
knockout continuations: an explicit count wins; on the CPU a loop whose per-step tensors are small gets
one thread; a larger loop gets torch's default, but never more threads than there are idle cores (a
thread that has to share a core with another process makes every step wait for it).
``benchmarks/bench_threads.py`` measures the rule against fixed counts, on an idle machine and with one
core kept busy.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from bumps.errors import BumpsError

SMALL_STEP_ELEMENTS = 1 << 18
TORCH_DEFAULT_THREADS = torch.get_num_threads()  # torch's own choice, before anything sets it


def set_threads(threads: int | None, minimum: int = 0) -> None:
    """Set torch's intra-op threads.

    Parameters
    ----------
    threads : int or None
        Threads to use; None or 0 leaves torch's current setting.
    minimum : int
        Smallest accepted value (0 where "0 = default" is meaningful, else 1); a smaller ``threads``
        raises :class:`~bumps.errors.BumpsError`.
    """
    if threads is None:
        return
    if threads < minimum:
        raise BumpsError(f"`threads` must be >= {minimum} (got {threads})")
    if threads:
        torch.set_num_threads(threads)


def small_step_threads(elements_per_step: int, device: str) -> int:
    """Threads for a training loop whose per-step tensors hold about ``elements_per_step`` elements.

    Parameters
    ----------
    elements_per_step : int
        Elements touched by the largest operations of one step.
    device : str
        torch device; only ``"cpu"`` is ever limited.

    Returns
    -------
    int
        1 on the CPU when ``elements_per_step < SMALL_STEP_ELEMENTS`` (2**18): torch splits ops over
        >= 32k elements across threads, and for ops this small the hand-off costs more than it saves
        (measured 10-100x more on a busy machine); otherwise torch's current thread count.
    """
    if device == "cpu" and elements_per_step < SMALL_STEP_ELEMENTS:
        return 1
    return torch.get_num_threads()


def _cpu_times() -> tuple[float, float] | None:
    """(busy, total) jiffies summed over this machine's cores from /proc/stat; None where it is missing."""
    try:
        with open("/proc/stat") as fh:
            fields = [float(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    if len(fields) < 4:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def idle_cores(sample_seconds: float = 0.2) -> float:
    """How many cores are idle now, from /proc/stat over ``sample_seconds`` (else the 1-minute load average).

    Parameters
    ----------
    sample_seconds : float
        How long to sample the machine's CPU counters; the caller should be idle meanwhile.

    Returns
    -------
    float
        Idle cores, between 0 and :func:`usable_cores` (all of them where neither source exists).
    """
    cores = usable_cores()
    machine = os.cpu_count() or cores
    first = _cpu_times()
    if first is not None and sample_seconds > 0:
        time.sleep(sample_seconds)
        second = _cpu_times()
        if second is not None and second[1] > first[1]:
            busy = machine * (second[0] - first[0]) / (second[1] - first[1])
            return float(min(cores, max(0.0, machine - busy)))
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return float(cores)
    return float(min(cores, max(0.0, machine - load)))


def choose_threads(
    elements_per_step: int, device: str = "cpu", requested: int | None = None, idle: float | None = None
) -> int:
    """The thread count of the policy for one training loop.

    Parameters
    ----------
    elements_per_step : int
        Elements touched by the largest operations of one step (each task estimates its own).
    device : str
        torch device; threads matter only on ``"cpu"`` (elsewhere torch's current count is returned).
    requested : int or None
        A count the user gave (``--threads N``); a positive value is returned as is, None or 0 applies the
        policy, a negative one raises.
    idle : float or None
        Idle cores, for tests; None measures them (:func:`idle_cores`, about 0.2 s).

    Returns
    -------
    int
        ``requested`` when positive; else 1 for a small step on the CPU (:func:`small_step_threads`);
        else torch's default thread count (:data:`TORCH_DEFAULT_THREADS`), capped at the number of idle
        cores rounded to nearest (at least 1).

    Raises
    ------
    BumpsError
        If ``requested`` is negative.
    """
    if requested is not None and requested < 0:
        raise BumpsError(f"`threads` must be >= 0 (got {requested}); 0 chooses by the thread policy")
    if requested:
        return int(requested)
    if device != "cpu":
        return torch.get_num_threads()
    if elements_per_step < SMALL_STEP_ELEMENTS:
        return 1
    default = min(TORCH_DEFAULT_THREADS, usable_cores())
    free = idle_cores() if idle is None else idle
    return max(1, min(default, math.floor(free + 0.5)))


def apply_threads(elements_per_step: int, device: str = "cpu", requested: int | None = None) -> int:
    """Set torch's intra-op threads by :func:`choose_threads` and return the count set.

    Parameters
    ----------
    elements_per_step : int
        As :func:`choose_threads`.
    device : str
        As :func:`choose_threads`.
    requested : int or None
        As :func:`choose_threads`.

    Returns
    -------
    int
        The thread count now in effect.
    """
    n = choose_threads(elements_per_step, device, requested)
    torch.set_num_threads(n)
    return n


@contextmanager
def threads_for(elements_per_step: int, device: str = "cpu", requested: int | None = None) -> Iterator[int]:
    """Run a block with the policy's thread count (:func:`choose_threads`), restoring torch's count after it.

    Parameters
    ----------
    elements_per_step : int
        As :func:`choose_threads`.
    device : str
        As :func:`choose_threads`.
    requested : int or None
        As :func:`choose_threads`.

    Yields
    ------
    int
        The thread count in effect inside the block.
    """
    before = torch.get_num_threads()
    n = choose_threads(elements_per_step, device, requested)
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)
