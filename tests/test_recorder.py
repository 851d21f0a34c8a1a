"""bumps.recorder: series with named axes into a self-describing run file that detect, export and info read."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from bumps.detect.analysis import analyze, load_source
from bumps.errors import BumpsError
from bumps.export import export
from bumps.io.info import run_info
from bumps.io.runfile import safe_load
from bumps.recorder import KIND, Recorder, load_recorded

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Cfg:
    lr: float = 0.1
    width: int = 3


def _bump(t: np.ndarray, at: float) -> np.ndarray:
    return np.exp(-(((t - at) / 15.0) ** 2))


def test_records_scalars_and_named_axes(tmp_path):
    rec = Recorder(tmp_path / "r.pt", config=Cfg(), seed=7, axes={"per": ("digit",), "attn": ("head", "pos")})
    for s in range(5):
        rec.record(s, loss=1.0 / (s + 1), per=torch.arange(3.0) * s, attn=torch.full((2, 4), float(s)))
    run = rec.close()
    back = load_recorded(tmp_path / "r.pt")
    assert back["kind"] == KIND == run["kind"]
    assert back["step"].tolist() == [0, 1, 2, 3, 4]
    assert back["axes"] == {"loss": [], "per": ["digit"], "attn": ["head", "pos"]}
    assert back["per"].shape == (5, 3) and back["attn"].shape == (5, 2, 4)
    assert torch.equal(back["per"][4], torch.tensor([0.0, 4.0, 8.0]))
    assert back["loss"].tolist() == pytest.approx([1, 1 / 2, 1 / 3, 1 / 4, 1 / 5])
    cfg = back["config"]
    assert cfg["lr"] == 0.1 and cfg["width"] == 3 and cfg["seed"] == 7 and cfg["final"] is True
    assert {"torch", "bumps", "python"} <= set(cfg["versions"]) and back["command"]


def test_cadence_and_autosave_keep_an_interrupted_run(tmp_path):
    rec = Recorder(tmp_path / "r.pt", seed=0, every=10, autosave_every=3)
    for s in range(100):
        if rec.due(s):
            rec.record(s, loss=float(s))
        if s == 55:
            break  # the loop dies here: no close()
    saved = safe_load(tmp_path / "r.pt")
    assert saved["step"].tolist() == [0, 10, 20, 30, 40, 50]  # autosaved after the 6th record
    assert saved["config"]["final"] is False
    assert run_info(tmp_path / "r.pt").status == "interrupted"


def test_bad_shape_is_one_line_and_keeps_what_was_recorded(tmp_path):
    rec = Recorder(tmp_path / "r.pt", seed=0, axes={"per": ("digit",)}, autosave_every=0)
    rec.record(0, per=torch.zeros(6))
    rec.record(1, per=torch.ones(6))
    with pytest.raises(BumpsError, match=r"'per' has shape \(5,\) at step 2 but \(6,\) before") as err:
        rec.record(2, per=torch.ones(5))
    assert "\n" not in str(err.value) and "2 records so far are saved" in str(err.value)
    saved = load_recorded(tmp_path / "r.pt")
    assert saved["step"].tolist() == [0, 1] and torch.equal(saved["per"][1], torch.ones(6))
    rec.record(2, per=torch.full((6,), 2.0))  # a failed record adds nothing; the recorder goes on
    assert rec.close()["per"].shape == (3, 6)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: r.record(0, per=torch.zeros(2, 2)), "has shape \\(2, 2\\), 2 axes"),
        (lambda r: r.record(0, per=torch.zeros(2), other=torch.zeros(3)), "declare its axes"),
        (lambda r: r.record(0, per="x"), "not a number or a tensor"),
        (lambda r: r.record(0, step=1.0, per=torch.zeros(2)), "reserved"),
    ],
)
def test_bad_records(tmp_path, call, message):
    rec = Recorder(tmp_path / "r.pt", seed=0, axes={"per": ("digit",)})
    with pytest.raises(BumpsError, match=message):
        call(rec)
    assert not (tmp_path / "r.pt").exists()  # nothing was recorded, nothing written


def test_keys_and_steps_must_stay_consistent(tmp_path):
    rec = Recorder(tmp_path / "r.pt", seed=0)
    rec.record(0, a=1.0, b=2.0)
    with pytest.raises(BumpsError, match=r"missing \['b'\]"):
        rec.record(1, a=1.0)
    with pytest.raises(BumpsError, match="not after the last recorded step 0"):
        rec.record(0, a=1.0, b=2.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"axes": {"x": ("value",)}}, "reserved"),
        ({"axes": {"x": ("a", "a")}}, "names an axis twice"),
        ({"axes": {"x": ("a",)}, "competition": {"x": ("a", "b")}}, "must name two axes"),
        ({"config": {"versions": 1}}, "recorded by the recorder itself"),
        ({"config": {"seed": 1}, "seed": 2}, "differs from config"),
        ({"every": 0}, "`every` must be"),
        ({"config": [1, 2]}, "dataclass instance or a dict"),
    ],
)
def test_bad_settings(tmp_path, kwargs, message):
    with pytest.raises(BumpsError, match=message):
        Recorder(tmp_path / "r.pt", **kwargs)


def test_restore_continues_records_and_refuses_other_settings(tmp_path):
    rec = Recorder(tmp_path / "r.pt", config={"lr": 1}, seed=0, axes={"v": ("i",)})
    for s in range(3):
        rec.record(s, v=torch.full((2,), float(s)))
    rec.save()
    again = Recorder(tmp_path / "r.pt", config={"lr": 1}, seed=0, axes={"v": ("i",)})
    again.restore(safe_load(tmp_path / "r.pt"))
    again.record(3, v=torch.full((2,), 3.0))
    assert again.close()["v"][:, 0].tolist() == [0, 1, 2, 3]
    other = Recorder(tmp_path / "r.pt", config={"lr": 2}, seed=0, axes={"v": ("i",)})
    with pytest.raises(BumpsError, match="other settings \\(lr\\)"):
        other.restore(safe_load(tmp_path / "r.pt"))


def test_detect_reads_axes_and_competition(tmp_path):
    t = np.arange(200.0)
    rise = 1 / (1 + np.exp(-(t - 100) / 6))
    # [T, unit, target]: unit 0 rises on target 0 and falls back while unit 1 takes target 0 over and unit 0
    # moves to target 1 (the competition story of the detector)
    align = np.zeros((200, 2, 2))
    align[:, 0, 0] = 0.8 * _bump(t, 90)
    align[:, 1, 0] = rise
    align[:, 0, 1] = rise
    per = np.stack([rise, 1 - rise], 1)
    rec = Recorder(
        tmp_path / "r.pt",
        seed=0,
        axes={"align": ("unit", "target"), "per": ("digit",)},
        competition={"align": ("unit", "target")},
    )
    for s in range(200):
        rec.record(s, align=torch.tensor(align[s]), per=torch.tensor(per[s]))
    rec.close()
    source = load_source(tmp_path / "r.pt")
    specs = {spec.key: spec for spec, _ in source.series}
    assert specs["align"].axes == ("unit", "target") and specs["align"].unit_axis == 0
    assert specs["per"].axes == ("digit",) and specs["per"].unit_axis is None
    result = analyze(source)
    bumps = [b for b in result["bumps"] if b["series"] == "align"]
    assert [b["index"] for b in bumps] == [[0, 0]]
    assert result["competition"] and result["competition"][0]["winner"] == 1


def test_export_csv_names_the_recorded_axes(tmp_path):
    rec = Recorder(tmp_path / "r.pt", config={"lr": 0.5}, seed=3, axes={"attn": ("head", "position")})
    for s in range(2):
        rec.record(s, loss=float(s), attn=torch.arange(6.0).view(2, 3) + 10 * s)
    rec.close()
    export(tmp_path / "r.pt", "csv", tmp_path / "r.csv")
    rows = list(csv.DictReader(open(tmp_path / "r.csv")))
    assert {"head", "position", "cfg_lr", "cfg_seed"} <= set(rows[0])
    attn = [r for r in rows if r["series"] == "attn"]
    assert len(attn) == 12
    last = [r for r in attn if r["step"] == "1" and r["head"] == "1" and r["position"] == "2"]
    assert float(last[0]["value"]) == 15.0
    loss = [r for r in rows if r["series"] == "loss"]
    assert [r["head"] for r in loss] == ["", ""]


def _doc_example() -> str:
    text = (ROOT / "docs" / "recording.md").read_text()
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


@pytest.mark.slow
def test_the_documented_example_runs_and_detect_reads_it(tmp_path):
    code = _doc_example()
    assert len(code.strip().splitlines()) <= 22
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(
        [sys.executable, "-c", "import torch; torch.set_num_threads(1)\n" + code], cwd=tmp_path, env=env, check=True
    )
    run = load_recorded(tmp_path / "runs" / "my_loop.pt")
    assert run["loss_per_output"].shape == (80, 4) and run["neuron_norm"].shape == (80, 32)
    assert run["loss"][-1] < run["loss"][0] / 10  # it trained
    out = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "detect", "runs/my_loop.pt", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert {"loss", "loss_per_output", "neuron_norm"} <= set(__import__("json").loads(out.stdout)["summary"])
