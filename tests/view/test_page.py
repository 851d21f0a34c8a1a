"""bumps.view.page: the served page, and --export as one self-contained file."""

import json
import re

from bumps.view.files import Target
from bumps.view.page import ASSETS, asset, export_data, export_page, render_page


def test_served_page_loads_its_files_from_the_server():
    html = render_page()
    for name in ASSETS:
        assert f"static/{name}" in html
    assert "BUMPS_EXPORT" not in html


def test_export_is_self_contained(view_runs, tmp_path):
    out = export_page(Target.open(view_runs["modadd"]), tmp_path / "page.html")
    html = out.read_text()
    assert not re.search(r'(src|href)="(static/|https?:)', html), "an exported page loads nothing"
    assert asset("app.js").decode() in html and asset("uPlot.iife.min.js").decode() in html
    data = json.loads(re.search(r"window.BUMPS_EXPORT = (.*?);</script>", html, re.S).group(1))
    assert data["page"]["kind"] == "modadd" and data["events"]
    assert data["records"] and all(len(r["neuron_freq"]) == 32 for r in data["records"].values())


def test_export_data_cannot_break_out_of_its_script(view_runs, tmp_path):
    import torch

    run = torch.load(view_runs["toy"], weights_only=True)
    run["config"]["note"] = "</script><script>alert(1)</script>"
    torch.save(run, tmp_path / "evil.pt")
    html = export_page(Target.open(tmp_path / "evil.pt"), tmp_path / "evil.html").read_text()
    assert "</script><script>alert(1)" not in html


def test_export_of_a_toy_run_and_a_folder(view_runs):
    toy = export_data(Target.open(view_runs["toy"]))
    assert sorted(toy["seeds"]) == ["0", "1"] and toy["records"] == {}
    folder = export_data(Target.open(view_runs["ablation"]))
    assert folder["page"]["view"] == "folder" and len(folder["page"]["runs"]) == 4
