"""bumps.report.claims: the report's terminal rendering fits 80 columns; reports record their settings."""

from pathlib import Path

from bumps.report.claims import markdown_for_terminal

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_report_renders_within_80_columns_and_keeps_every_claim():
    text = (ROOT / "reports" / "claims.md").read_text().split("\n## Knockouts")[0]
    out = markdown_for_terminal(text, 80)
    assert max(len(line) for line in out.splitlines()) <= 80
    for claim in range(1, 11):
        assert f"claim {claim} — verdict: " in out
    assert "|" not in out and "**" not in out


def test_tables_become_blocks_and_paragraphs_wrap():
    md = "# Title\n\nA " + "long " * 30 + "line.\n\n| a | b | c |\n|---|---|---|\n| 1 | two **x** | `three` |\n"
    out = markdown_for_terminal(md, 40).splitlines()
    assert out[0] == "Title" and max(len(line) for line in out) <= 40
    assert out[-2:] == ["a 1 — c: three", "  b: two x"]
