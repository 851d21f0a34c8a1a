"""Numbers in prose, inserted from the reports: ``<!-- value: FILE PATH [FORMAT] -->TEXT<!-- /value -->``.

A Markdown file (the README, a docs page) never types a number or verdict that a report holds: it marks
the place, and :func:`fill` writes the report's value between the markers. :func:`stale` lists the marks
whose text differs from what the report now says (a test runs it over the README and docs).

* ``FILE``: a JSON report, relative to the repository root (e.g. ``reports/claims.json``).
* ``PATH``: dot-separated keys; ``[3]`` indexes a list; ``[id=MD3b]`` picks the list element whose ``id``
  is ``MD3b`` (any key: ``[variant=full]``). Example: ``claims[id=8].verdict``.
* ``FORMAT`` (optional): a Python format spec for numbers (``.2f``, ``.3g``, ``.0%``); lists of numbers
  (an interval) are written ``a [b, c]`` from their first three entries, and so is a dict with ``ci_low``,
  ``ci_high`` and ``value`` (a claim row) or ``mean``.

``bumps values FILES --check`` exits 1 listing stale marks; without ``--check`` it fills them in place.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from bumps.errors import BumpsError

MARK = re.compile(r"<!-- value: (\S+) (\S+)(?: (\S+))? -->(.*?)<!-- /value -->", re.DOTALL)
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]|\[([^=\]]+)=([^\]]+)\]")


@dataclass(frozen=True)
class Stale:
    """A mark whose text is not the report's value: ``file:line``, the mark, what it says, what it should."""

    file: str
    line: int
    source: str
    found: str
    expected: str


def resolve(data, path: str):
    """The value at ``path`` (module docstring) in parsed JSON ``data``; BumpsError naming the step that fails."""
    x = data
    pos = 0
    for m in _STEP.finditer(path):
        if m.start() != pos and path[pos : m.start()] != ".":
            raise BumpsError(f"value path {path!r} is malformed at {path[pos:]!r}")
        pos = m.end()
        key, index, sel_key, sel_value = m.groups()
        try:
            if key is not None:
                x = x[key]
            elif index is not None:
                x = x[int(index)]
            else:
                hits = [e for e in x if isinstance(e, dict) and str(e.get(sel_key)) == sel_value]
                if len(hits) != 1:
                    raise BumpsError(f"value path {path!r}: {len(hits)} entries have {sel_key} = {sel_value}")
                x = hits[0]
        except (KeyError, IndexError, TypeError):
            raise BumpsError(f"value path {path!r}: no {m.group(0)!r} there") from None
    if pos != len(path):
        raise BumpsError(f"value path {path!r} is malformed at {path[pos:]!r}")
    return x


def render(value, fmt: str | None = None) -> str:
    """``value`` as prose: numbers through ``fmt``; ``[v, lo, hi, ...]`` and a dict with ``ci_low``,
    ``ci_high`` and ``value`` (a claim row) or ``mean`` as ``v [lo, hi]``; text as is."""
    if isinstance(value, dict) and {"ci_low", "ci_high"} <= set(value) and ({"value", "mean"} & set(value)):
        value = [value.get("value", value.get("mean")), value["ci_low"], value["ci_high"]]
    if isinstance(value, list) and len(value) >= 3 and all(isinstance(v, (int, float)) for v in value[:3]):
        v, lo, hi = (render(x, fmt) for x in value[:3])
        return f"{v} [{lo}, {hi}]"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return format(value, fmt) if fmt else str(value)


@cache
def _load(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BumpsError(f"a value mark reads {path}, which does not exist; regenerate the report") from None
    except json.JSONDecodeError as e:
        raise BumpsError(f"{path} is not valid JSON ({e.msg}); regenerate the report") from None


def expected(file: str, path: str, fmt: str | None, root: Path) -> str:
    """The text a mark should hold."""
    return render(resolve(_load((root / file).resolve()), path), fmt)


def fill(text: str, root: Path) -> str:
    """``text`` with every mark's content replaced by the report's value."""

    def one(m: re.Match) -> str:
        file, path, fmt, _ = m.groups()
        return (
            f"<!-- value: {file} {path}{' ' + fmt if fmt else ''} -->{expected(file, path, fmt, root)}<!-- /value -->"
        )

    return MARK.sub(one, text)


def stale(text: str, root: Path, name: str = "") -> list[Stale]:
    """The marks of ``text`` whose content differs from the report's value."""
    out = []
    for m in MARK.finditer(text):
        file, path, fmt, found = m.groups()
        want = expected(file, path, fmt, root)
        if found != want:
            out.append(Stale(name, text.count("\n", 0, m.start()) + 1, f"{file} {path}", found, want))
    return out


def markdown_files(paths: list[Path]) -> list[Path]:
    """The ``.md`` files among ``paths`` (folders searched recursively), sorted."""
    out = []
    for p in paths:
        if p.is_dir():
            out += sorted(p.rglob("*.md"))
        elif p.exists():
            out.append(p)
        else:
            raise BumpsError(f"{p} does not exist; give Markdown files or folders")
    return out
