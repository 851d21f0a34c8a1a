"""Flush subnormal floats to zero while training: late in a grokking run they slow every step.

Once the training loss of a mod-add run is small, the float32 gradient of the logits (softmax minus
one-hot, from the float64 cross-entropy cast down) holds wrong-class probabilities below float32's
smallest normal number (about 1.2e-38). x86 CPUs compute on such subnormal values in microcode, and
the backward pass's gathers and matrix products over them become several times slower
(``benchmarks/bench_subnormals.py`` measures the ratio, on a state built to have them).

Flushing them (``torch.set_flush_denormal``: subnormal results become 0, subnormal inputs read as 0)
drops gradient contributions of order 1e-38 and below. Next to any other contribution they are
below float32's resolution; a gradient entry made of them alone gives an AdamW step of order
lr · 1e-38 / eps, far below the rounding step of any weight that is not itself almost zero. The
benchmark and ``tests/test_subnormals.py`` check that training continued from such a state ends
with bitwise the same weights both ways; that is measured, not guaranteed for every state.

Limits: the setting is per thread (the CPU's MXCSR register). It reaches the calling thread only,
not torch's intra-op worker threads, so it takes full effect with one thread (``--threads 1``, how
the studies train); with more, ops split over the pool still see subnormals. It does nothing on a
GPU, and where the CPU cannot flush (``torch.set_flush_denormal`` returns False) nothing changes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

_depth = 0  # enabled blocks open now (one process-wide setting; blocks may nest)
_supported = False  # whether the last attempt to turn flushing on succeeded


def flushing() -> bool:
    """Whether the calling thread flushes subnormals now (inside an enabled :func:`flush_subnormals`)."""
    return _depth > 0 and _supported


def flushed_throughout() -> bool:
    """Whether every CPU op of the process is flushed now: :func:`flushing`, and torch uses one thread."""
    return flushing() and torch.get_num_threads() == 1


@contextlib.contextmanager
def flush_subnormals(enabled: bool = True) -> Iterator[bool]:
    """Run a block with subnormal floats flushed to zero on the calling thread, then turn flushing off.

    Parameters
    ----------
    enabled : bool, default True
        False leaves the setting as it is (off, unless an enclosing block turned it on): a baseline.

    Yields
    ------
    bool
        :func:`flushing` inside the block (False where the CPU cannot flush).

    Notes
    -----
    torch keeps the setting with no getter, off by default, and bumps assumes nothing else sets it.
    Blocks may nest: flushing stays on until the outermost enabled block ends, and is off after it
    (also when the block raises).
    """
    global _depth, _supported
    if not enabled:
        yield flushing()
        return
    _supported = bool(torch.set_flush_denormal(True))
    _depth += 1
    try:
        yield flushing()
    finally:
        _depth -= 1
        if _depth == 0:
            torch.set_flush_denormal(False)
