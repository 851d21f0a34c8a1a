"""Flush subnormal floats to zero while training: late in a grokking run they slow every step.

Once the training loss of a mod-add run is small, the float32 gradient of the logits (softmax minus
one-hot, from the float64 cross-entropy cast down) holds wrong-class probabilities below float32's
smallest normal number (about 1.2e-38). x86 CPUs compute on such subnormal values in microcode, and
the backward pass's gathers and matrix products over them become several times slower
(``benchmarks/bench_subnormals.py`` measures the ratio, on a state built to have them).

Flushing them (``torch.set_flush_denormal``: subnormal results become 0, subnormal inputs read as 0)
changes nothing an update can see: a gradient entry that small is below float32's resolution next to
any other contribution, and AdamW's step for it, m / (sqrt(v) + eps) with eps = 1e-8, is itself
subnormal. The benchmark checks that the parameters after its steps are bitwise the same both ways.
Where the CPU does not support flushing (``torch.set_flush_denormal`` returns False) nothing changes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def flush_subnormals(enabled: bool = True) -> Iterator[bool]:
    """Run a block with subnormal floats flushed to zero, then turn flushing off again.

    Parameters
    ----------
    enabled : bool, default True
        False leaves the setting as it is (off, unless an enclosing block turned it on): a baseline.

    Yields
    ------
    bool
        Whether flushing is in effect inside the block (False where the CPU cannot flush).

    Notes
    -----
    torch keeps one process-wide setting with no getter, off by default. Blocks may nest: flushing
    stays on until the outermost enabled block ends, and is off after it.
    """
    global _depth
    if not enabled:
        yield flushing()
        return
    _set(True)
    _depth += 1
    try:
        yield _supported
    finally:
        _depth -= 1
        if _depth == 0:
            _set(False)


def flushing() -> bool:
    """Whether subnormals are being flushed now (inside an enabled :func:`flush_subnormals` block)."""
    return _depth > 0 and _supported


_depth = 0  # enabled blocks now open
_supported = False


def _set(on: bool) -> None:
    global _supported
    ok = bool(torch.set_flush_denormal(on))
    if on:
        _supported = ok
