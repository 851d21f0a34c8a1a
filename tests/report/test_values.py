"""bumps.report.values: marks in prose are filled from the reports, and the shipped README and docs are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bumps.errors import BumpsError
from bumps.report.values import fill, markdown_files, render, resolve, stale

ROOT = Path(__file__).resolve().parents[2]
DATA = {"claims": [{"id": "8", "verdict": "supported", "value": 0.5912, "ci_low": 0.24, "ci_high": 0.94}], "n": [3, 4]}


def test_paths_select_keys_indices_and_list_entries_by_field():
    assert resolve(DATA, "claims[id=8].verdict") == "supported"
    assert resolve(DATA, "n[1]") == 4
    with pytest.raises(BumpsError, match="0 entries have id = 9"):
        resolve(DATA, "claims[id=9].verdict")
    with pytest.raises(BumpsError, match="no 'x'"):
        resolve(DATA, "claims[id=8].x")


def test_render_formats_numbers_and_intervals():
    assert render(0.5912, ".2f") == "0.59"
    assert render([0.5912, 0.24, 0.94], ".2f") == "0.59 [0.24, 0.94]"
    assert render(resolve(DATA, "claims[id=8]"), ".2f") == "0.59 [0.24, 0.94]"
    assert render({"mean": 1079.4, "ci_low": 998.0, "ci_high": 1160.7}, ".0f") == "1079 [998, 1161]"
    assert render("inconclusive") == "inconclusive" and render(True) == "True"


def test_fill_and_stale_agree(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps(DATA))
    text = (
        "Claim 8 is *<!-- value: r.json claims[id=8].verdict -->old<!-- /value -->*, "
        "n = <!-- value: r.json n[0] -->3<!-- /value -->."
    )
    found = stale(text, tmp_path, "page.md")
    assert [(s.line, s.found, s.expected) for s in found] == [(1, "old", "supported")]
    filled = fill(text, tmp_path)
    assert "*<!-- value: r.json claims[id=8].verdict -->supported<!-- /value -->*" in filled
    assert stale(filled, tmp_path) == []


def test_a_missing_report_is_one_clear_error(tmp_path):
    with pytest.raises(BumpsError, match="does not exist; regenerate the report"):
        fill("<!-- value: nothere.json a -->x<!-- /value -->", tmp_path)


def test_the_shipped_readme_and_docs_say_what_the_reports_say():
    files = markdown_files([ROOT / "README.md", ROOT / "docs"])
    marks = [s for f in files for s in stale(f.read_text(encoding="utf-8"), ROOT, str(f.relative_to(ROOT)))]
    assert not marks, "; ".join(f"{s.file}:{s.line} says {s.found!r}, {s.source} says {s.expected!r}" for s in marks)
    assert "<!-- value:" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_values_command_checks_and_fills_in_place(tmp_path):
    import subprocess
    import sys

    (tmp_path / "r.json").write_text(json.dumps(DATA))
    page = tmp_path / "page.md"
    page.write_text("Claim 8: <!-- value: r.json claims[id=8] .2f -->old<!-- /value -->\n")
    cmd = [sys.executable, "-m", "bumps", "values", "page.md"]
    check = subprocess.run([*cmd, "--check"], cwd=tmp_path, capture_output=True, text=True)
    assert check.returncode == 1 and "page.md:1: says 'old'" in check.stdout
    assert "old" in page.read_text()  # --check writes nothing
    assert subprocess.run(cmd, cwd=tmp_path, capture_output=True).returncode == 0
    assert "-->0.59 [0.24, 0.94]<!--" in page.read_text()
    assert subprocess.run([*cmd, "--check"], cwd=tmp_path).returncode == 0
    missing = subprocess.run([*cmd[:-1], "nothere.md"], cwd=tmp_path, capture_output=True, text=True)
    assert missing.returncode == 2 and missing.stderr.strip().count("\n") == 0 and "does not exist" in missing.stderr
