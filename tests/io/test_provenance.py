"""bumps.io.provenance: outputs record their settings; nothing made from other settings is replaced unforced."""

import json

import pytest

from bumps.errors import BumpsError
from bumps.io.png import pyplot, save_png
from bumps.io.provenance import (
    check_replace,
    diff_settings,
    settings_hash,
    settings_of_run,
    stamp_markdown,
    stamp_png,
    stored_settings,
)
from bumps.io.runfile import atomic_save, new_run

SETTINGS = {"command": "claims", "seeds": 128, "quick": False, "configs": None, "kinds": ("neuron",)}


def test_hash_is_stable_and_sees_every_value():
    assert settings_hash(SETTINGS) == settings_hash({**SETTINGS, "kinds": ["neuron"]})  # tuples are lists
    assert settings_hash(SETTINGS) != settings_hash({**SETTINGS, "seeds": 64})
    assert len(settings_hash(SETTINGS)) == 8 and int(settings_hash(SETTINGS), 16) >= 0


def test_run_settings_leave_out_how_the_run_went():
    cfg = {"lr": 0.01, "versions": {"torch": "2"}, "train_seconds": 3.0, "final": True, "run_id": "x", "device": "cpu"}
    assert settings_of_run(cfg) == {"lr": 0.01}


def test_every_output_kind_reads_back_its_settings(tmp_path):
    md = tmp_path / "r.md"
    md.write_text(stamp_markdown("# Report\n\ntext", SETTINGS))
    assert md.read_text().startswith("# Report\n\ntext\n<!-- bumps-settings: ")
    js = tmp_path / "r.json"
    js.write_text(json.dumps({"x": 1, "bumps_settings": SETTINGS}))
    plt = pyplot()
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    png = save_png(fig, tmp_path / "f.png")
    stamp_png(png, SETTINGS)
    run = tmp_path / "run.pt"
    atomic_save(new_run("lowrank", {"lr": 0.01, "versions": {}}), run)
    want = json.loads(json.dumps(SETTINGS))
    assert stored_settings(md) == stored_settings(js) == stored_settings(png) == want
    assert stored_settings(run) == {"lr": 0.01}
    (tmp_path / "plain.md").write_text("# no stamp\n")
    assert stored_settings(tmp_path / "plain.md") is None and stored_settings(tmp_path / "missing.md") is None


def test_check_replace_refuses_other_and_unknown_settings_unless_forced(tmp_path):
    md = tmp_path / "r.md"
    check_replace(md, SETTINGS)  # nothing there yet
    md.write_text(stamp_markdown("x", SETTINGS))
    check_replace(md, SETTINGS)  # the same settings: replaced
    with pytest.raises(BumpsError) as err:
        check_replace(md, {**SETTINGS, "seeds": 64, "quick": True})
    assert str(err.value) == (
        f"{md} was made from other settings (quick False → True; seeds 128 → 64); pass `force` to replace it, "
        "or choose another `out`"
    )
    check_replace(md, {**SETTINGS, "seeds": 64}, force=True)
    (tmp_path / "hand.md").write_text("written by hand")
    with pytest.raises(BumpsError, match="hand.md exists and records no bumps settings.*another `report`"):
        check_replace(tmp_path / "hand.md", SETTINGS, flag="report")


def test_run_files_compare_only_the_new_settings_keys(tmp_path):
    run = tmp_path / "run.pt"
    atomic_save(new_run("modadd", {"lr": 0.01, "epochs": 10, "intervention": None}), run)
    check_replace(run, {"lr": 0.01, "epochs": 10}, run=True)
    with pytest.raises(BumpsError, match=r"\(epochs 10 → 20\)"):
        check_replace(run, {"lr": 0.01, "epochs": 20}, run=True)
    assert diff_settings({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}, keys=["a", "b"]) == ["b 2 → 3"]
