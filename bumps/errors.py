"""The one exception users see (kept free of heavy imports so the CLI starts fast)."""


class BumpsError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits non-zero."""
