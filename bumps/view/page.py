"""The page itself: its static files in the package, and ``--export``, one HTML file with everything inlined.

The page is ``static/page.html`` with ``app.js``, ``view.css`` and the vendored uPlot
(``static/vendor/``, version and licence in its README). Served, it loads them from
``/static/`` and asks the server for data; exported, the same tags carry the files' text and the
data is one JSON object in the page (``window.BUMPS_EXPORT``), so the file opens from disk with no
server and no network.
"""

from __future__ import annotations

import json
import os
from importlib.resources import files
from pathlib import Path

from bumps.errors import BumpsError
from bumps.io.runfile import atomic_write
from bumps.view.charts import finite
from bumps.view.data import record_payload, run_payload, seed_payload
from bumps.view.events import run_events
from bumps.view.files import Target, folder_payload

ASSETS = {  # name under /static/ -> file in the package
    "app.js": "static/app.js",
    "view.css": "static/view.css",
    "uPlot.iife.min.js": "static/vendor/uPlot.iife.min.js",
    "uPlot.min.css": "static/vendor/uPlot.min.css",
}
EXPORT_RECORDS = 24  # neuron tables inlined in an export at most (evenly spaced records)
EXPORT_SEEDS = 32  # toy-model seeds inlined in an export at most


def asset(name: str) -> bytes:
    """The bytes of a static file of the page, by its name under ``/static/``.

    Parameters
    ----------
    name : str
        A key of :data:`ASSETS`.

    Returns
    -------
    bytes
        The file's content.

    Raises
    ------
    KeyError
        If ``name`` is not one of the page's files.
    """
    return files("bumps.view").joinpath(ASSETS[name]).read_bytes()


def _script_json(obj) -> str:
    """JSON that is safe inside a ``<script>`` element (no ``</script>``, no ``<!--``)."""
    try:
        text = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    except ValueError:  # a NaN somewhere: null, as the server sends it
        text = json.dumps(finite(obj), separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c")


def render_page(export: dict | None = None) -> str:
    """The page's HTML: as served (assets by URL), or self-contained with ``export`` data inlined.

    Parameters
    ----------
    export : dict, optional
        The data of an exported page (:func:`export_data`); None gives the served page.

    Returns
    -------
    str
        The HTML document.
    """
    html = asset_text("page.html")
    if export is None:
        return html.replace("<!--DATA-->", "")
    for name in ASSETS:
        text = asset(name).decode()
        if name.endswith(".css"):
            html = html.replace(f'<link rel="stylesheet" href="static/{name}">', f"<style>\n{text}\n</style>")
        else:
            html = html.replace(f'<script src="static/{name}"></script>', f"<script>\n{text}\n</script>")
    return html.replace("<!--DATA-->", f"<script>window.BUMPS_EXPORT = {_script_json(export)};</script>")


def asset_text(name: str) -> str:
    """The text of ``static/<name>`` (the page template)."""
    return files("bumps.view").joinpath("static", name).read_text()


def export_data(target: Target, rel: str | None = None) -> dict:
    """Everything one exported page shows, as one JSON-ready dict.

    Parameters
    ----------
    target : Target
        What is viewed.
    rel : str, optional
        For a folder target, one run in it to export instead of the folder page.

    Returns
    -------
    dict
        ``page`` (:func:`bumps.view.data.run_payload` or :func:`bumps.view.files.folder_payload`),
        ``events`` (a run page's :func:`bumps.view.events.run_events`), ``records`` (record index ->
        :func:`bumps.view.data.record_payload` for at most :data:`EXPORT_RECORDS` evenly spaced
        records of a mod-add run: the slider of an export steps over those) and ``seeds`` (seed ->
        :func:`bumps.view.data.seed_payload` for the first :data:`EXPORT_SEEDS` seeds of a toy run).
    """
    if not target.is_file and not rel:
        return {"page": folder_payload(target), "events": [], "records": {}, "seeds": {}}
    path = target.resolve(rel)
    run = target.load(path)
    page = run_payload(run, target.name_of(path))
    out = {"page": page, "events": run_events(run), "records": {}, "seeds": {}}
    if "modadd" in page and "neuron_freq" in run:
        n = page["modadd"]["records"]
        picks = sorted({round(i * (n - 1) / max(EXPORT_RECORDS - 1, 1)) for i in range(min(n, EXPORT_RECORDS))})
        out["records"] = {str(i): record_payload(run, i) for i in picks}
    if "lowrank" in page:
        out["seeds"] = {str(s): seed_payload(run, s) for s in range(min(page["lowrank"]["seeds"], EXPORT_SEEDS))}
    return out


def export_page(target: Target, out: str | os.PathLike, rel: str | None = None) -> Path:
    """Write one self-contained HTML file of the view (data and scripts inlined; no server needed).

    Parameters
    ----------
    target : Target
        What is viewed.
    out : str or os.PathLike
        The HTML file to write (atomically).
    rel : str, optional
        As :func:`export_data`.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    BumpsError
        If ``out`` cannot be written, or a run cannot be loaded.
    """
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise BumpsError(f"--export writes an HTML file; give a name ending in .html (got {out})")
    data = render_page(export_data(target, rel)).encode()
    return atomic_write(out, lambda fh: fh.write(data))
