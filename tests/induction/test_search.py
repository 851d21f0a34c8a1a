"""The configuration-search table: rows from runs, kept across reports, censoring shown as such."""

import json

import numpy as np
import pytest

from bumps.errors import BumpsError
from bumps.induction import search


def _row(name, **kw):
    row = dict(
        run=name,
        lr=1e-3,
        weight_decay=1.0,
        train_size=256,
        placement="consecutive",
        seed=0,
        steps=4000,
        loss_pc=[],
        final_loss_pred=2.0,
        seconds=800.0,
        memorised=460,
        generalised=None,
        max_gap=4.2,
    )
    return {**row, **kw}


def test_merge_replaces_rows_of_the_same_run_and_keeps_the_others():
    old = [_row("a.pt"), _row("b.pt", lr=3e-3)]
    rows = search.merge(old, [_row("b.pt", lr=1e-2), _row("c.pt")])
    assert [r["run"] for r in rows] == ["a.pt", "b.pt", "c.pt"] and rows[1]["lr"] == 1e-2
    again = search.merge(rows, [_row("a.pt", lr=5e-3)])  # a replaced row keeps its place
    assert [r["run"] for r in again] == ["a.pt", "b.pt", "c.pt"] and again[0]["lr"] == 5e-3


def test_rows_load_from_a_search_report_or_a_claims_report(tmp_path):
    claims = tmp_path / "claims.json"
    claims.write_text(json.dumps({"tables": {"probes": [_row("a.pt")]}}))
    assert [r["run"] for r in search.load_rows(claims)] == ["a.pt"]
    paths = search.write_report([_row("a.pt"), _row("b.pt")], "cmd", tmp_path / "rep")
    assert [r["run"] for r in search.load_rows(paths[1])] == ["a.pt", "b.pt"]
    assert search.load_rows(tmp_path / "missing.json") == []
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(BumpsError, match="no search rows"):
        search.load_rows(tmp_path / "bad.json")


def test_report_shows_censoring_and_names_the_earliest_success():
    text = search.report_text([_row("a.pt"), _row("b.pt", memorised=None), _row("c.pt", infinite=True)], "cmd")
    assert "| 460 | > 4000 (censored) |" in text and "| > 4000 (censored) | > 4000 (censored) |" in text
    assert "No run of the 3 shows memorise-then-generalise" in text
    text = search.report_text([_row("a.pt", generalised=3000), _row("d.pt", memorised=100, generalised=900)], "cmd")
    assert "seen in 2 of 2 runs; the earliest: d.pt (memorised at 100, generalised at 900)" in text


def test_search_row_of_a_tiny_finite_run(tmp_path):
    from bumps.induction.model import InductionConfig
    from bumps.induction.train import train_induction

    cfg = InductionConfig(
        seed=0, steps=20, batch_size=8, lr=1e-2, warmup=0, record_every=1, checkpoint_every=5,
        n_ctx=25, vocab=20, sub_len=4, d_model=16, n_heads=4, train_size=16, test_size=16,
    )  # fmt: skip
    run = train_induction([cfg], [tmp_path / "run.pt"], autosave_every=0)[0]
    row = search.search_row("run.pt", run)
    pred = np.asarray(run["test_loss_pred"], dtype=np.float64)
    assert row["train_size"] == 16 and row["steps"] == 20
    assert row["final_test_loss_pred"] == pytest.approx(pred[-1]) and row["min_test_loss_pred"] == pytest.approx(
        pred.min()
    )


def test_report_gives_the_copying_rule_per_placement(tmp_path):
    rows = [_row("a.pt"), _row("b.pt", placement="gaps")]
    refs = search.references(rows)
    assert list(refs) == ["consecutive", "gaps"] and all(0 < m < 1 and 0 < se < m for m, se in refs.values())
    paths = search.write_report(rows, "cmd", tmp_path / "rep")
    text = paths[0].read_text()
    assert f"consecutive: {refs['consecutive'][0]:.3f} ± {refs['consecutive'][1]:.3f}" in text
    assert json.loads(paths[1].read_text())["copying_reference"] == refs
    assert "copying rule" not in search.report_text(rows, "cmd")  # without refs, no line
    short = _row("c.pt", n_ctx=40, sub_len=8)  # a row at other sizes gets a reference of its own
    assert search.layout_label(search.row_layout(short)) == "consecutive, n_ctx 40, vocab 128, sub_len 8, 3 repeats"
    assert len(search.references([*rows, short], n=64)) == 3
