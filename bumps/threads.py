"""The CPU thread policy every training command shares: how many torch intra-op threads a loop gets."""

from __future__ import annotations

import torch

from bumps.errors import BumpsError

SMALL_STEP_ELEMENTS = 1 << 18


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
