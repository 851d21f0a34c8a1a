"""`bumps view` in a real browser (headless Chromium): the DOM of every view, screenshots, live updates, exports.

Skipped, with the reason, where Chromium is absent (Debian: ``apt-get install chromium``). Screenshots go to
``runs/view/screenshots/``; ``python -m tests.view.screenshots`` makes the ones in the docs.
"""

import threading
from pathlib import Path

import pytest
import torch

from bumps.io.runfile import atomic_save
from bumps.io.schema import EXTRA_SERIES
from bumps.view import Target, export_page, make_server, url_of
from tests.view.chromium import Browser, chromium_path
from tests.view.fixtures import truncated

# About 20 s together (on 2 busy cores), so they run with the default (not slow) tests, and in CI.
pytestmark = pytest.mark.skipif(
    chromium_path() is None, reason="needs Chromium for the browser tests: apt-get install chromium (Debian)"
)
SHOTS = Path(__file__).resolve().parents[2] / "runs" / "view" / "screenshots"


@pytest.fixture(scope="module")
def browser():
    with Browser(width=1280, height=900) as b:
        yield b


class Served:
    def __init__(self, path):
        self.server = make_server(Target.open(path))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = url_of(self.server)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def load(browser, url, events=True):
    browser.goto(url)
    browser.wait_for("document.body.dataset.ready === '1'")
    if events:
        browser.wait_for("document.body.dataset.eventsReady === '1'")
    assert browser.js("document.getElementById('error')") is None


def test_modadd_run_page(browser, view_runs):
    run = torch.load(view_runs["modadd"], weights_only=True)
    with Served(view_runs["modadd"]) as s:
        load(browser, s.url)
        listed = browser.js("[...document.querySelectorAll('#series-list li')].map(e => e.dataset.key)")
        scalars = [k for k, (axes, _) in EXTRA_SERIES["modadd"].items() if k in run and not axes]
        assert set(scalars) | {"freq_norm", "freq_norm_wl", "neuron_freq"} == set(listed)
        drawn = int(browser.js("document.body.dataset.events"))
        assert drawn > 0 and browser.js("document.querySelectorAll('#events-timeline circle.event').length") == drawn
        counts = browser.js("[...document.querySelectorAll('.kind-count')].map(e => +e.textContent.split(': ')[1])")
        assert len(counts) == 3 and sum(counts) == drawn  # bump, spike, phase change: every one drawn
        kinds = set(browser.js("[...document.querySelectorAll('circle.event')].map(e => e.dataset.kind)"))
        assert kinds and kinds <= {"bump", "spike", "phase_change"}
        assert browser.js("document.querySelectorAll('.chart canvas').length") >= 4  # uPlot drew the charts
        for key in ("freq_norm", "freq_norm_wl"):
            assert browser.js(f"document.querySelector('#wavetable-{key} canvas').width") > 0
        assert browser.js("document.querySelectorAll('#wavetable-freq_norm .phase').length") >= 1
        assert browser.js("document.querySelectorAll('#wavetable-freq_norm .ylabel').length") >= 1
        browser.wait_for("document.querySelector('#neuron-table canvas') !== null")
        assert browser.js("+document.querySelector('#neuron-table').dataset.neurons") == 32
        # the slider loads another record's table from the server
        browser.js(
            "(() => { const s = document.getElementById('record-slider'); s.value = 3;"
            " s.dispatchEvent(new Event('input')); })()"
        )
        browser.wait_for(f"document.body.dataset.recordStep === '{int(run['step'][3])}'")
        # zooming a chart asks the server for that span only
        browser.js("document.querySelector('[data-chart=losses]').uplot.setScale('x', {min: 10, max: 30})")
        browser.wait_for("document.querySelector('[data-chart=losses]').dataset.refined === '1'")
        browser.screenshot(SHOTS / "modadd.png", full_height=2600)


def test_toy_run_page(browser, view_runs):
    with Served(view_runs["toy"]) as s:
        load(browser, s.url)
        browser.wait_for("document.querySelectorAll('#per-unit .chart').length === 2")
        assert browser.js("document.querySelectorAll('#seed-select option').length") == 2
        assert browser.js("document.querySelectorAll('#invariant .chart').length") == 5
        browser.js(
            "(() => { const s = document.getElementById('seed-select'); s.value = 1;"
            " s.dispatchEvent(new Event('change')); })()"
        )
        browser.wait_for("document.body.dataset.seed === '1'")
        browser.screenshot(SHOTS / "toy.png", full_height=1800)


def test_folder_page(browser, view_runs):
    with Served(view_runs["ablation"]) as s:
        load(browser, s.url, events=False)
        assert browser.js("document.querySelectorAll('#run-table .run-row').length") == 4
        assert browser.js("document.querySelector('[data-chart=overlay_test_acc] canvas') !== null")
        browser.screenshot(SHOTS / "ablation.png", full_height=1200)
        browser.js("document.querySelector('#run-table a').click()")  # a run of the folder opens its own page
        browser.wait_for("document.body.dataset.kind === 'modadd'")


def test_sweep_page(browser, view_runs):
    with Served(view_runs["sweep"]) as s:
        load(browser, s.url, events=False)
        rows = browser.js("[...document.querySelectorAll('#sweep-table .sweep-row')].map(r => r.dataset.status)")
        assert rows == ["done", "done"]
        assert browser.js("document.querySelector('[data-chart=overlay_loss] canvas') !== null")
        browser.screenshot(SHOTS / "sweep.png", full_height=1200)


def test_live_page_picks_up_a_new_autosave(browser, view_runs, tmp_path):
    full = torch.load(view_runs["modadd"], weights_only=True)
    path = tmp_path / "training.pt"
    atomic_save(truncated(full, 5), path)
    with Served(path) as s:
        load(browser, s.url)
        assert browser.js("document.body.dataset.records") == "5"
        assert "in progress" in browser.js("document.getElementById('meta').textContent")
        browser.js("window.__same_page = true")
        atomic_save(truncated(full, 9), path)  # an autosave lands
        browser.wait_for("document.body.dataset.records === '9'", timeout=15)
        atomic_save(full, path)  # the run finishes
        browser.wait_for("document.body.dataset.records === '13'", timeout=15)
        assert "finished" in browser.js("document.getElementById('meta').textContent")
        assert browser.js("window.__same_page") is True, "updated without reloading the page"
        assert int(browser.js("document.body.dataset.updates")) >= 2


def test_exported_page_opens_from_disk(browser, view_runs, tmp_path):
    out = export_page(Target.open(view_runs["modadd"]), tmp_path / "page.html")
    load(browser, out.as_uri())
    assert int(browser.js("document.body.dataset.events")) > 0
    assert browser.js("document.getElementById('live').textContent") == "exported page (static)"
    browser.wait_for("document.querySelector('#neuron-table canvas') !== null")
