"""bumps.modadd.wd_grid: the grid's configs are the registered command's, censoring bounds the statistic."""

import math

import pytest

from bumps.errors import BumpsError
from bumps.modadd import ablation, wd_grid
from bumps.modadd.ablation import SeedCell
from bumps.modadd.ledger import config_hash
from bumps.modadd.model import ModAddConfig


def test_configs_are_the_registered_grok_commands():
    cfg = wd_grid.grid_configs([0.3], [2])[("wd0.3", 2)]
    # bumps grok --preset nanda --weight-decay 0.3 --seeds 2 --data-seeds 2 --epochs 30000 --stop-after-grok 0
    #   --stop-on grok --checkpoint-every 0
    grok = ModAddConfig.from_preset(
        "nanda",
        seed=2,
        data_seed=2,
        weight_decay=0.3,
        epochs=30000,
        stop_after_grok=0,
        stop_on="grok",
        checkpoint_every=0,
    )
    assert config_hash(cfg) == config_hash(grok)
    assert list(wd_grid.grid_configs([3.0, 0.0], [0, 1])) == [("wd3", 0), ("wd3", 1), ("wd0", 0), ("wd0", 1)]
    for bad in ([-1.0], [math.inf], []):
        with pytest.raises(BumpsError, match="weight_decays"):
            wd_grid.grid_configs(bad, [0])
    with pytest.raises(BumpsError, match="seeds"):
        wd_grid.grid_configs([1.0], [-1])


def cells(*specs):
    out = []
    for seed, status, epoch in specs:
        if status == "grokked":
            out.append(SeedCell(seed, status, epoch))
        else:
            out.append(SeedCell(seed, status, None, epoch))
    return out


def test_paired_difference_enters_censored_runs_at_the_budget_as_bounds():
    low = cells((0, "grokked", 9000), (1, "censored", 30000), (2, "grokked", 8000), (3, "training", 500))
    high = cells((0, "grokked", 3000), (1, "grokked", 2000), (2, "censored", 30000), (3, "grokked", 100))
    d = wd_grid.paired_difference(low, high)
    assert d.seeds == [0, 1, 2] and d.n == 3  # seed 3's low run is unfinished: not a unit
    assert d.diffs == pytest.approx([math.log(3000 / 9000), math.log(2000 / 30000), math.log(30000 / 8000)])
    assert d.upper_bounds == [1] and d.lower_bounds == [2] and d.both_censored == []
    both = wd_grid.paired_difference(cells((0, "censored", 30000)), cells((0, "censored", 30000)))
    assert both.diffs == [0.0] and both.both_censored == [0] and not both.lower_bounds + both.upper_bounds
    assert d.mean == pytest.approx(sum(d.diffs) / 3) and d.ci_low < d.mean < d.ci_high
    one = wd_grid.paired_difference(low[:1], high[:1])
    assert one.mean is None and wd_grid.judge_wd(one)[1] is None


def test_verdict_follows_the_registered_rule():
    faster = wd_grid.paired_difference(
        cells((0, "grokked", 9000), (1, "grokked", 8000), (2, "grokked", 10000)),
        cells((0, "grokked", 2000), (1, "grokked", 2100), (2, "grokked", 1900)),
    )
    entry, claim = wd_grid.judge_wd(faster)
    assert entry.id == "WD" and entry.status == "registered" and claim.verdict == "supported"
    assert "text" in wd_grid.sources_line(claim)
    slower = wd_grid.paired_difference(
        cells((0, "grokked", 2000), (1, "grokked", 2100), (2, "grokked", 1900)),
        cells((0, "grokked", 9000), (1, "grokked", 8000), (2, "grokked", 10000)),
    )
    assert wd_grid.judge_wd(slower)[1].verdict == "not supported"


def test_a_tiny_grid_trains_into_the_ledger_and_reports(tmp_path):
    cfg = wd_grid.grid_configs([0.3, 3.0], [0, 1], epochs=100, p=23, d_model=32, d_mlp=64, eval_every=50)
    study = ablation.run_study(cfg, tmp_path / "runs", tmp_path / "ledger.json", threads=1)
    assert all(c.finished for cs in study.cells.values() for c in cs)
    diff = wd_grid.paired_difference(study.cells["wd0.3"], study.cells["wd3"])
    entry, claim = wd_grid.judge_wd(diff)
    meta = dict(command="bumps wd-grid ...", ledger="ledger.json", budget=100, remaining_command="")
    md, js = wd_grid.write_report(study.cells, diff, claim, entry, meta, tmp_path / "wd")
    text = md.read_text()
    assert "| 0.3 |" in text and "| 3 |" in text and "Claim WD" in text
    again = ablation.run_study(cfg, tmp_path / "runs", tmp_path / "ledger.json", train=False)
    assert [c.text() for c in again.cells["wd3"]] == [c.text() for c in study.cells["wd3"]]


@pytest.mark.parametrize("flag", ["-1", "x", "inf"])
def test_cli_bad_weight_decays_is_one_line_and_exit_2(flag):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, str(root / "cli.py"), "wd-grid", "--weight-decays", flag, "--no-train"],
        capture_output=True,
        text=True,
        cwd=root,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "weight-decays" in proc.stderr


def test_remaining_command_trains_one_run_per_invocation():
    from pathlib import Path

    line = wd_grid.remaining_command(["0.3:1", "0:2"], 30000, Path("reports/wd_grid_runs.json"), Path("reports/wd"))
    assert line.startswith("for job in 0.3:1 0:2; do bumps wd-grid --weight-decays ${job%:*} --seeds ${job#*:}")
    assert line.endswith("bumps wd-grid --no-train --ledger reports/wd_grid_runs.json --report reports/wd")
    import subprocess

    assert subprocess.run(["bash", "-n", "-c", line]).returncode == 0
