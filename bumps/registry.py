"""The rule registry: every claim's verdict rule as data, registered before the data that decides it.

One data file, ``bumps/rules.json``, holds the rules of every report, by family (``"toy"``, ...) and claim
id. An entry states the claim, what is measured, the rule (a :class:`bumps.stats.Rule` as plain data), the
command that produces the data, a ``registered`` hash and the ``revisions`` it went through::

    {"toy": {"1": {"statement": "...", "statistic": "...", "command": "bumps claims ...",
                   "rule": {"supported": {"all": [["stat", "low", ">", 0.5]], "note": ""},
                            "not_supported": {"any": [["stat", "high", "<", 0.5]]},
                            "names": {}, "note": ""},
                   "registered": "3f2a...",
                   "revisions": [{"rule": {...}, "reads": {"stat": "old_stat"}, "reason": "...",
                                  "after_data": true}]}}}

* ``registered`` is :func:`rule_hash` of the entry's statement, statistic and rule at registration
  (:func:`register`). An entry edited without registering again no longer matches it: the report says
  "changed, not registered" (:attr:`Entry.status`).
* ``revisions`` lists earlier rules, oldest first. One with ``after_data`` was replaced after the data it
  decided had been seen: the report marks the row "revised after data" and shows the verdict that rule
  gives (:meth:`Entry.earlier_verdicts`). ``reads`` maps the earlier rule's statistic names to the names
  under which the current measurement supplies them (an earlier rule read another statistic).
* :func:`last_changed` finds, from git, the commit since which an entry's rule has stood unchanged.

The registry knows no model: a task's claims module builds its rows with :meth:`Entry.judge`.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from bumps.errors import BumpsError
from bumps.stats import STAT, Claim, Clause, Condition, Rule, judge

REGISTRY = Path(__file__).with_name("rules.json")


# ---------------------------------------------------------------------------- Rule <-> plain data


def _clause(c: list) -> Clause:
    stat, bound, op, threshold = c
    return Clause(stat, bound, op, tuple(threshold) if isinstance(threshold, list) else threshold)


def _condition(d: dict) -> Condition:
    (combine,) = [k for k in ("all", "any") if k in d]
    return Condition(tuple(_clause(c) for c in d[combine]), combine, d.get("note", ""))


def rule_from_data(d: dict) -> Rule:
    """The :class:`Rule` of a registry ``rule`` object (module docstring)."""
    try:
        return Rule(_condition(d["supported"]), _condition(d["not_supported"]), d.get("names", {}), d.get("note", ""))
    except (KeyError, TypeError, ValueError) as e:
        raise BumpsError(f"a registry rule is malformed ({e}); see bumps.registry for the format") from None


def rule_to_data(rule: Rule) -> dict:
    """Plain data of ``rule`` (the inverse of :func:`rule_from_data`)."""

    def cond(c: Condition) -> dict:
        clauses = [
            [x.stat, x.bound, x.op, list(x.threshold) if isinstance(x.threshold, tuple) else x.threshold]
            for x in c.clauses
        ]
        return {c.combine: clauses, "note": c.note}

    return {
        "supported": cond(rule.supported),
        "not_supported": cond(rule.not_supported),
        "names": dict(rule.names),
        "note": rule.note,
    }


def rule_hash(entry: dict) -> str:
    """sha256 (16 hex digits) of an entry's statement, statistic and rule, in canonical JSON."""
    core = {k: entry.get(k) for k in ("statement", "statistic", "rule")}
    return hashlib.sha256(json.dumps(core, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------- entries


@dataclass(frozen=True)
class Revision:
    """An earlier rule of an entry.

    Attributes
    ----------
    rule : Rule
        The earlier rule.
    reads : dict of str to str
        Its statistic names -> the names the current measurement gives them (identity when absent).
    reason : str
        Why it was replaced.
    after_data : bool
        Replaced after the data it decided had been seen.
    """

    rule: Rule
    reads: dict[str, str]
    reason: str
    after_data: bool


@dataclass(frozen=True)
class Entry:
    """One registered claim (module docstring).

    Attributes
    ----------
    family, id : str
        Where it sits in the registry.
    statement, statistic, command : str
        The claim, what is measured, the command that produces the data.
    rule : Rule
        The current rule.
    registered : str
        The hash recorded at registration.
    current : str
        :func:`rule_hash` of the entry as it is now.
    revisions : tuple of Revision
        Earlier rules, oldest first.
    added_after_data : bool
        A row added after the data it reads had been seen (``"added_after_data": true`` and a ``reason``).
    reason : str
        Why it was added.
    """

    family: str
    id: str
    statement: str
    statistic: str
    command: str
    rule: Rule
    registered: str
    current: str
    revisions: tuple[Revision, ...] = field(default=())
    added_after_data: bool = False
    reason: str = ""

    @property
    def status(self) -> str:
        """``"registered"``, ``"revised after data"``, ``"added after data"`` or ``"changed, not registered"``."""
        if self.registered != self.current:
            return "changed, not registered"
        if any(r.after_data for r in self.revisions):
            return "revised after data"
        return "added after data" if self.added_after_data else "registered"

    def earlier_verdicts(self, values) -> list[str]:
        """The verdict of each earlier rule replaced after data, oldest first, on ``values``.

        Parameters
        ----------
        values : mapping of str to (value, ci_low, ci_high), or one such triple
            The current measurement (as given to :meth:`judge`); an earlier rule reads its statistics
            through its ``reads`` map, and one whose statistics are not all there gives "not measured".
        """
        if not isinstance(values, dict):
            values = {STAT: values}
        out = []
        for r in self.revisions:
            if not r.after_data:
                continue
            mapped = {name: values.get(r.reads.get(name, name)) for name in r.rule.stats()}
            out.append("not measured" if any(v is None for v in mapped.values()) else r.rule.decide(mapped))
        return out

    def judge(self, values, n: int, statistic: str | None = None) -> Claim:
        """The report row (:func:`bumps.stats.judge` with this entry's statement and rule).

        Parameters
        ----------
        values : mapping of str to (value, ci_low, ci_high), or one such triple
            Every statistic the rule reads.
        n : int
            Independent units behind the value.
        statistic : str, optional
            The statistic's text when it depends on the run (default: the entry's).
        """
        return judge(self.id, self.statement, statistic or self.statistic, values, n, self.rule)


def _entry(family: str, cid: str, d: dict) -> Entry:
    revisions = tuple(
        Revision(rule_from_data(r["rule"]), dict(r.get("reads", {})), r.get("reason", ""), bool(r.get("after_data")))
        for r in d.get("revisions", [])
    )
    return Entry(
        family,
        cid,
        d["statement"],
        d.get("statistic", ""),
        d.get("command", ""),
        rule_from_data(d["rule"]),
        d.get("registered", ""),
        rule_hash(d),
        revisions,
        bool(d.get("added_after_data")),
        d.get("reason", ""),
    )


def load(family: str, path: Path = REGISTRY) -> dict[str, Entry]:
    """The entries of one family, by claim id, in file order.

    Raises
    ------
    BumpsError
        If the file is missing or not JSON, or has no such family.
    """
    data = _read(Path(path))
    if family not in data:
        raise BumpsError(f"{_shown(path)} has no rules for {family!r} (it has: {', '.join(data) or 'none'})")
    return {cid: _entry(family, cid, d) for cid, d in data[family].items()}


def _shown(path: Path) -> str:
    """How messages name a registry: the shipped one as bumps/rules.json, others as given."""
    return "bumps/rules.json" if Path(path).resolve() == REGISTRY.resolve() else str(path)


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise BumpsError(f"{_shown(path)} does not exist; the rule registry ships with bumps") from None
    except json.JSONDecodeError as e:
        raise BumpsError(f"{_shown(path)} is not valid JSON ({e.msg}, line {e.lineno})") from None


def file_hash(path: Path = REGISTRY) -> str:
    """sha256 (16 hex digits) of the registry file's bytes: the report records it."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def register(family: str, ids: list[str], path: Path = REGISTRY) -> list[str]:
    """Record the current hash of each entry as its registered one (the file is rewritten atomically).

    Parameters
    ----------
    family : str
        The family.
    ids : list of str
        Claim ids to register; an empty list registers none.

    Returns
    -------
    list of str
        The ids whose registered hash changed.
    """
    from bumps.io.runfile import atomic_write

    path = Path(path)
    data = _read(path)
    if family not in data:
        raise BumpsError(f"{_shown(path)} has no rules for {family!r}")
    unknown = [i for i in ids if i not in data[family]]
    if unknown:
        raise BumpsError(f"{family} has no claim {', '.join(unknown)}; it has {', '.join(data[family])}")
    changed = []
    for cid in ids:
        h = rule_hash(data[family][cid])
        if data[family][cid].get("registered") != h:
            data[family][cid]["registered"] = h
            changed.append(cid)
    text = dump(data)
    atomic_write(path, lambda fh: fh.write(text.encode()))
    return changed


def dump(data: dict) -> str:
    """The registry's text: indented JSON with each clause (a list of scalars and lists) on one line."""

    def flat(x) -> bool:
        return not isinstance(x, dict) and (not isinstance(x, list) or all(flat(y) for y in x))

    def fmt(x, depth: int) -> str:
        pad, inner = " " * depth, " " * (depth + 1)
        if flat(x):
            return json.dumps(x, ensure_ascii=False, separators=(", ", ": "))
        if isinstance(x, dict):
            items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {fmt(v, depth + 1)}" for k, v in x.items()]
            return "{\n" + ",\n".join(items) + f"\n{pad}}}" if items else "{}"
        return "[\n" + ",\n".join(f"{inner}{fmt(v, depth + 1)}" for v in x) + f"\n{pad}]"

    return fmt(data, 0) + "\n"


# ---------------------------------------------------------------------------- git


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


@cache
def _versions(path: str) -> tuple[tuple[str, dict], ...] | None:
    """``(commit, registry data)`` of every committed version of ``path``, newest first; None without git."""
    p = Path(path).resolve()
    root = _git(p.parent, "rev-parse", "--show-toplevel")
    if root is None:
        return None
    root_path = Path(root.strip())
    rel = p.relative_to(root_path).as_posix()
    log = _git(root_path, "log", "--format=%h", "--", rel)
    if log is None:
        return None
    out = []
    for commit in log.split():
        text = _git(root_path, "show", f"{commit}:{rel}")
        try:
            out.append((commit, json.loads(text) if text else {}))
        except json.JSONDecodeError:
            out.append((commit, {}))
    return tuple(out)


def last_changed(entry: Entry, path: Path = REGISTRY) -> str:
    """The commit since which ``entry``'s statement, statistic and rule have stood as they are now.

    Returns
    -------
    str
        A short commit hash; ``"uncommitted"`` when the entry differs from every committed version's
        newest (edited in the working tree); ``"unknown"`` without git history.
    """
    versions = _versions(str(Path(path).resolve()))
    if not versions:
        return "unknown"
    found = None
    for commit, data in versions:  # newest first: walk back while the entry is unchanged
        d = data.get(entry.family, {}).get(entry.id)
        if d is None or rule_hash(d) != entry.current:
            break
        found = commit
    return found or "uncommitted"
