"""The one exception users see (kept free of heavy imports so the CLI starts fast)."""


class BumpsError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits non-zero."""


def did_you_mean(word: str, choices: list[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices`` to a mistyped ``word``, else ``""``.

    Parameters
    ----------
    word : str
        What was written.
    choices : list of str
        What is known.

    Returns
    -------
    str
        The suggestion, ready to append to an error line (up to two close matches, difflib ratio >= 0.7).
    """
    import difflib

    close = difflib.get_close_matches(word, choices, n=2, cutoff=0.7)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
