"""bumps.registry: rules as data, registration hashes, revisions with their verdicts, and git history."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from bumps.errors import BumpsError
from bumps.registry import (
    REGISTRY,
    _versions,
    dump,
    file_hash,
    last_changed,
    load,
    register,
    rule_from_data,
    rule_hash,
    rule_to_data,
)
from bumps.stats import STAT, Clause, Condition, Rule, above, below

RULE = Rule(
    Condition((Clause(STAT, "low", ">", 0.5), Clause("ref", "high", "<", ("other", "low"))), note="why"),
    below(0.3),
    names={"ref": "the reference"},
    note="overall",
)


def _entry(rule: Rule = RULE, **kw) -> dict:
    d = {"statement": "a claim", "statistic": "a fraction", "command": "bumps x", "rule": rule_to_data(rule)}
    d.update(kw)
    d["registered"] = kw.get("registered", rule_hash(d))
    return d


def _write(path, family="fam", **entries):
    path.write_text(dump({family: entries}))
    return path


def test_a_rule_survives_the_round_trip_through_plain_data():
    back = rule_from_data(json.loads(json.dumps(rule_to_data(RULE))))
    assert back == RULE and back.describe() == RULE.describe()
    values = {STAT: (0.7, 0.6, 0.8), "ref": (0.1, 0.0, 0.2), "other": (0.5, 0.3, 0.6)}
    assert back.decide(values) == RULE.decide(values) == "supported"


def test_dump_keeps_the_data_and_puts_each_clause_on_one_line():
    data = {"fam": {"1": _entry()}}
    text = dump(data)
    assert json.loads(text) == data
    assert '["stat", "low", ">", 0.5]' in text and '["ref", "high", "<", ["other", "low"]]' in text


def test_a_rule_changed_without_registering_again_says_so_until_registered(tmp_path):
    path = _write(tmp_path / "rules.json", **{"1": _entry()})
    assert load("fam", path)["1"].status == "registered"
    data = json.loads(path.read_text())
    data["fam"]["1"]["rule"]["supported"]["all"][0][3] = 0.4  # loosen the threshold, forget to register
    path.write_text(dump(data))
    entry = load("fam", path)["1"]
    assert entry.status == "changed, not registered" and entry.registered != entry.current
    assert register("fam", ["1"], path) == ["1"]
    assert load("fam", path)["1"].status == "registered"
    assert register("fam", ["1"], path) == []  # nothing left to register
    with pytest.raises(BumpsError, match="has no claim 9"):
        register("fam", ["9"], path)


def test_a_rule_revised_after_data_shows_the_verdict_of_the_earlier_rule(tmp_path):
    old = Rule(above(0.9), below(0.2))
    revisions = [{"rule": rule_to_data(old), "reads": {"stat": "old_stat"}, "reason": "r", "after_data": True}]
    path = _write(tmp_path / "rules.json", **{"1": _entry(Rule(above(0.5), below(0.3)), revisions=revisions)})
    entry = load("fam", path)["1"]
    assert entry.status == "revised after data"
    values = {STAT: (0.7, 0.6, 0.8), "old_stat": (0.8, 0.7, 0.85)}
    row = entry.judge(values, 5)
    assert row.verdict == "supported" and row.n_seeds == 5 and row.statement == "a claim"
    assert entry.earlier_verdicts(values) == ["inconclusive"]  # the earlier rule on its own statistic
    assert entry.earlier_verdicts({STAT: (0.7, 0.6, 0.8)}) == ["not measured"]


def test_a_row_added_after_data_is_marked(tmp_path):
    path = _write(tmp_path / "rules.json", **{"2": _entry(added_after_data=True, reason="seen in the audit")})
    entry = load("fam", path)["2"]
    assert entry.status == "added after data" and entry.reason == "seen in the audit"


def test_bad_registries_are_refused_in_one_line(tmp_path):
    with pytest.raises(BumpsError, match="does not exist"):
        load("fam", tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(BumpsError, match="not valid JSON"):
        load("fam", tmp_path / "bad.json")
    path = _write(tmp_path / "rules.json", **{"1": _entry()})
    with pytest.raises(BumpsError, match="has no rules for 'other'"):
        load("other", path)
    data = json.loads(path.read_text())
    data["fam"]["1"]["rule"]["supported"] = {"all": [["stat", "middle", ">", 0]]}
    path.write_text(json.dumps(data))
    with pytest.raises(BumpsError, match="malformed"):
        load("fam", path)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_last_changed_is_the_commit_since_which_the_rule_stood(tmp_path):
    def git(*args):
        return subprocess.run(["git", "-C", str(tmp_path), *args], capture_output=True, text=True, check=True).stdout

    git("init", "-q")
    git("config", "user.email", "t@example.org")
    git("config", "user.name", "t")
    path = tmp_path / "rules.json"
    _write(path, **{"1": _entry(), "2": _entry(Rule(above(0.1), below(0.0)))})
    git("add", "rules.json")
    git("commit", "-qm", "first")
    first = git("rev-parse", "--short", "HEAD").strip()
    data = json.loads(path.read_text())
    data["fam"]["2"] = _entry(Rule(above(0.2), below(0.0)))
    path.write_text(dump(data))
    git("commit", "-qam", "second")
    second = git("rev-parse", "--short", "HEAD").strip()
    _versions.cache_clear()
    entries = load("fam", path)
    assert last_changed(entries["1"], path) == first  # untouched since the first commit
    assert last_changed(entries["2"], path) == second
    data["fam"]["1"] = _entry(Rule(above(0.6), below(0.3)))  # edited, not committed
    path.write_text(dump(data))
    _versions.cache_clear()
    assert last_changed(load("fam", path)["1"], path) == "uncommitted"


def test_the_shipped_registry_loads_and_every_entry_is_registered():
    entries = load("toy")
    assert entries and all(e.status != "changed, not registered" for e in entries.values())
    assert len(file_hash(REGISTRY)) == 16


def test_the_rules_command_lists_the_registry_and_refuses_an_unknown_family():
    import sys
    from pathlib import Path

    cli = Path(__file__).resolve().parents[1] / "cli.py"
    ok = subprocess.run([sys.executable, str(cli), "rules"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("1: ") and "revised after data" in ok.stdout
    bad = subprocess.run([sys.executable, str(cli), "rules", "nope"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "bumps/rules.json has no rules for 'nope'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr


def test_every_committed_family_loads_and_is_registered():
    import json

    from bumps.registry import REGISTRY, load

    families = json.loads(REGISTRY.read_text())
    assert {"toy", "modadd"} <= set(families)
    for family in families:
        entries = load(family)
        assert entries, family
        assert all(e.status != "changed, not registered" for e in entries.values()), family
