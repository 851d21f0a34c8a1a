"""Atomic writes and safe loads."""

import pytest
import torch

from bumps.io.runfile import BumpsError, atomic_save, load_run, new_run


def test_roundtrip_with_weights_only(tmp_path):
    run = new_run("lowrank", {"rank": 2, "versions": {"torch": "x"}}, step=torch.arange(3))
    path = atomic_save(run, tmp_path / "sub" / "r.pt")
    back = torch.load(path, weights_only=True)
    assert back["kind"] == "lowrank" and torch.equal(back["step"], torch.arange(3))
    assert [p.name for p in path.parent.iterdir()] == ["r.pt"]  # no temp files left


def test_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "r.pt"
    atomic_save({"v": 1}, path)

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        atomic_save({"v": 2}, path)
    assert torch.load(path, weights_only=True) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.pt"]


def test_load_run_checks_kind(tmp_path):
    path = atomic_save(new_run("lowrank", {}), tmp_path / "r.pt")
    with pytest.raises(BumpsError, match="expected a 'modadd' run"):
        load_run(path, kind="modadd")
    atomic_save({"not": "a run"}, tmp_path / "x.pt")
    with pytest.raises(BumpsError, match="not a bumps run"):
        load_run(tmp_path / "x.pt")


def test_report_files_are_left_alone_when_the_data_cannot_be_serialised(tmp_path):
    import json
    import math

    from bumps.io.runfile import write_report_files

    report = tmp_path / "sub" / "rep"
    paths = write_report_files(report, "# ok\n", {"x": 1, "path": tmp_path})
    assert [p.name for p in paths] == ["rep.md", "rep.json"]
    assert paths[0].read_text() == "# ok\n" and json.loads(paths[1].read_text()) == {"x": 1, "path": str(tmp_path)}
    with pytest.raises(ValueError):  # NaN is fine for json, a circular structure is not
        loop: dict = {"nan": math.nan}
        loop["self"] = loop
        write_report_files(report, "# new\n", loop)
    assert paths[0].read_text() == "# ok\n" and json.loads(paths[1].read_text())["x"] == 1
