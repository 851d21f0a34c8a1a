"""bumps.view.files: what may be served (files under PATH only), safe loads retried, folders and sweeps."""

import os
from pathlib import Path

import pytest
import torch

import bumps.view.files as files_mod
from bumps.errors import BumpsError
from bumps.view.files import Target, folder_payload, run_files, sweep_table


def test_open_refuses_what_is_not_a_run_or_a_folder_of_runs(tmp_path):
    with pytest.raises(BumpsError, match="no such file or folder"):
        Target.open(tmp_path / "missing.pt")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(BumpsError, match="is a text file"):
        Target.open(tmp_path / "notes.txt")
    torch.save({"a": torch.zeros(2)}, tmp_path / "weights.pt")
    with pytest.raises(BumpsError, match="not a bumps run file"):
        Target.open(tmp_path / "weights.pt")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BumpsError, match="holds no bumps run files"):
        Target.open(empty)


def test_resolve_refuses_everything_outside_path(view_runs, tmp_path):
    folder = Target.open(view_runs["ablation"])
    assert folder.resolve("baseline_seed0.pt") == view_runs["ablation"].resolve() / "baseline_seed0.pt"
    outside = view_runs["root"] / "toy.pt"  # a real run file, but outside the viewed folder
    for rel in ("../toy.pt", "../../etc/passwd", str(outside), "/etc/passwd", "x/../../toy.pt", "a\x00.pt"):
        with pytest.raises(PermissionError):
            folder.resolve(rel)
    (view_runs["ablation"] / "notes.txt").write_text("x")
    with pytest.raises(PermissionError, match=".pt files"):
        folder.resolve("notes.txt")
    link = view_runs["ablation"] / "link.pt"
    link.symlink_to(outside)
    try:
        with pytest.raises(PermissionError):
            folder.resolve("link.pt")  # a symlink out of the folder is outside it
    finally:
        link.unlink()
        (view_runs["ablation"] / "notes.txt").unlink()
    with pytest.raises(FileNotFoundError):
        folder.resolve("nope.pt")
    single = Target.open(view_runs["toy"])
    assert single.resolve(None) == single.resolve("toy.pt") == view_runs["toy"].resolve()
    with pytest.raises(PermissionError, match="only toy.pt"):
        single.resolve("modadd.pt")


def test_a_load_that_fails_while_the_file_is_replaced_is_retried(view_runs, monkeypatch):
    target = Target.open(view_runs["toy"])
    target._cache.clear()
    real = files_mod.load_run
    calls = []

    def flaky(path):
        calls.append(path)
        if len(calls) == 1:
            raise BumpsError(f"{path} is not a readable torch file (EOFError)")
        return real(path)

    monkeypatch.setattr(files_mod, "load_run", flaky)
    target.wait = 0.0
    assert target.load(target.root)["kind"] == "lowrank" and len(calls) == 2


def test_a_load_that_keeps_failing_gives_its_reason(tmp_path):
    bad = tmp_path / "run.pt"
    bad.write_bytes(b"PK\x03\x04" + b"\x00" * 64)  # a torch-like zip that never loads
    target = Target(tmp_path.resolve(), False, tries=3, wait=0.0)
    with pytest.raises(BumpsError, match="not a readable torch file"):
        target.load(bad)


def test_cache_follows_the_file(view_runs, tmp_path):
    path = tmp_path / "run.pt"
    path.write_bytes(view_runs["toy"].read_bytes())
    target = Target.open(path)
    first = target.load(target.root)
    assert target.load(target.root) is first
    v1 = target.version()
    os.utime(path, ns=(1, 1))
    assert target.load(target.root) is not first and target.version() != v1


def test_run_files_skip_checkpoints_and_hidden(tmp_path):
    for rel in ("a.pt", "sub/b.pt", "a_ckpt/epoch_000100.pt", ".hidden/c.pt", ".tmp.pt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    assert [p.relative_to(tmp_path).as_posix() for p in run_files(tmp_path)] == ["a.pt", "sub/b.pt"]


def test_folder_overlays_every_run_and_marks_grok_epochs(view_runs, tmp_path):
    page = folder_payload(Target.open(view_runs["ablation"]))
    assert [r["file"] for r in page["runs"]] == [f"{v}_seed{s}.pt" for v in ("baseline", "k0") for s in (0, 1)]
    (acc,) = page["overlays"]
    assert [s["label"] for s in acc["series"]] == [r["file"] for r in page["runs"]]
    assert page["sweep"] is None and page["skipped"] == []
    # a run that groks gets a mark at its grok epoch
    run = torch.load(view_runs["ablation"] / "k0_seed1.pt", weights_only=True)
    run["grok_epoch"] = 40
    folder = tmp_path / "grokked"
    folder.mkdir()
    torch.save(run, folder / "g.pt")
    (folder / "junk.pt").write_bytes(b"not torch")
    page = folder_payload(Target.open(folder))
    assert page["overlays"][0]["marks"] == [{"label": "g.pt", "step": 40, "what": "grok epoch"}]
    assert page["skipped"][0]["file"] == "junk.pt"


def test_sweep_table_reads_manifest_and_status_without_writing(view_runs):
    folder = view_runs["sweep"]
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}
    table = sweep_table(folder)
    assert table["counts"] == {"done": 2} and {r["status"] for r in table["runs"]} == {"done"}
    assert all(r["grid"] for r in table["runs"])
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*")} == before
    page = folder_payload(Target.open(folder))
    assert page["sweep"]["runs"] and len(page["runs"]) == 2 and page["overlays"][0]["id"] == "overlay_loss"
    assert sweep_table(Path(view_runs["ablation"])) is None
