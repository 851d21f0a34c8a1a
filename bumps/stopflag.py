"""Ctrl-C as a request to stop between steps, for every trainer.

Inside ``with StopFlag() as flag:`` the first SIGINT only sets ``flag.hit``; the training loop checks it
after each step, saves what it has and stops. A second SIGINT raises ``KeyboardInterrupt`` at once.
Outside the main thread no handler can be installed, so Ctrl-C keeps its usual meaning there.
"""

from __future__ import annotations

import signal


class StopFlag:
    """Ctrl-C sets a flag checked between steps (a second Ctrl-C stops at once).

    Attributes
    ----------
    hit : bool
        True once SIGINT has arrived inside the ``with`` block.
    """

    def __init__(self) -> None:
        self.hit, self._old = False, None

    def _handle(self, signum, frame) -> None:
        if self.hit:
            raise KeyboardInterrupt
        self.hit = True

    def __enter__(self) -> StopFlag:
        try:
            self._old = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread: no handler, Ctrl-C is not ours to catch
            self._old = None
        return self

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
