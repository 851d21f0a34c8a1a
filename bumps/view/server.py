"""The local server of ``bumps view``: standard-library HTTP on 127.0.0.1, read-only, files under PATH only.

Routes (all GET; anything else is refused):

* ``/`` the page; ``/static/<name>`` its files (:data:`bumps.view.page.ASSETS`, nothing else);
* ``/api/page?file=REL`` the first payload of a run (``file`` omitted on a folder: the folder page);
* ``/api/events?file=REL&group=curves|units`` the detector's events of a run (slower, so asked for
  after the page; the page asks for the unit families, the slowest, last);
* ``/api/record?file=REL&i=N`` one mod-add record's spectrum and neuron × frequency table;
* ``/api/seed?file=REL&s=N`` one toy-model seed;
* ``/api/window?file=REL&chart=ID&lo=A&hi=B`` one scalar chart over steps A..B only (zoom: finer detail);
* ``/api/version`` a token that changes when a run file changes (the page polls it to update live).

A request whose ``Host`` is not this server's loopback address is refused (a web page elsewhere
cannot reach the server through DNS rebinding).
"""

from __future__ import annotations

import errno
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from bumps.errors import BumpsError
from bumps.view.charts import chart_window, finite
from bumps.view.data import record_payload, run_payload, seed_payload
from bumps.view.events import run_events
from bumps.view.files import Target, folder_payload
from bumps.view.page import ASSETS, asset, render_page

HOST = "127.0.0.1"
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


@dataclass
class Response:
    """An HTTP answer: status code, content type and body."""

    status: int
    content_type: str
    body: bytes


def _json(obj, status: int = 200) -> Response:
    try:
        text = json.dumps(obj, allow_nan=False)
    except ValueError:  # a NaN somewhere (a config value, an event field): send it as null
        text = json.dumps(finite(obj), allow_nan=False)
    return Response(status, "application/json", text.encode())


def _error(status: int, message: str) -> Response:
    return _json({"error": message}, status)


@dataclass
class ViewApp:
    """The server's answers, without HTTP: ``app.get("/api/page?file=...")`` returns a :class:`Response`.

    Attributes
    ----------
    target : Target
        What is viewed (:meth:`bumps.view.files.Target.open`).
    """

    target: Target
    _events: dict = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def get(self, url: str) -> Response:
        """Answer one GET request.

        Parameters
        ----------
        url : str
            The request target, e.g. ``/api/record?file=run.pt&i=3``.

        Returns
        -------
        Response
            200 with the page, a static file or JSON; 400 for bad parameters or a file that is not a
            run, 403 for a file outside PATH, 404 for anything else.
        """
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        route = parts.path
        try:
            if route in ("/", "/index.html"):
                return Response(200, "text/html; charset=utf-8", render_page().encode())
            if route.startswith("/static/"):
                name = route[len("/static/") :]
                if name not in ASSETS:
                    return _error(404, "no such file")
                return Response(200, TYPES[name[name.rfind(".") :]], asset(name))
            if route == "/api/version":
                return _json({"version": self.target.version()})
            if route == "/api/page":
                if not self.target.is_file and not query.get("file"):
                    return _json(folder_payload(self.target))
                path = self.target.resolve(query.get("file"))
                return _json(run_payload(self.target.load(path), self.target.name_of(path)))
            if route == "/api/events":
                return _json({"events": self._run_events(query.get("file"), query.get("group"))})
            if route == "/api/record":
                run = self.target.load(self.target.resolve(query.get("file")))
                return _json(record_payload(run, int(query.get("i", "-1"))))
            if route == "/api/window":
                run = self.target.load(self.target.resolve(query.get("file")))
                lo, hi = float(query.get("lo", "-inf")), float(query.get("hi", "inf"))
                return _json(chart_window(run, query.get("chart", ""), lo, hi))
            if route == "/api/seed":
                run = self.target.load(self.target.resolve(query.get("file")))
                return _json(seed_payload(run, int(query.get("s", "0"))))
        except PermissionError as exc:
            return _error(403, str(exc))
        except FileNotFoundError as exc:
            return _error(404, str(exc))
        except (BumpsError, ValueError, IndexError, KeyError) as exc:
            return _error(400, str(exc))
        return _error(404, "no such page")

    def _run_events(self, rel: str | None, group: str | None) -> list[dict]:
        path = self.target.resolve(rel)
        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_size, group)
        with self._lock:
            if key in self._events:
                return self._events[key]
        events = run_events(self.target.load(path), group)
        with self._lock:  # keep this file's latest version only
            self._events = {k: v for k, v in self._events.items() if k[0] != key[0] or k[1:3] == key[1:3]}
            self._events[key] = events
        return events


def _handler(app: ViewApp, allowed_hosts: Callable[[], set[str]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "bumps-view"

        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            if self.headers.get("Host") not in allowed_hosts():
                self._send(_error(403, "requests must come from this machine (Host must be the loopback address)"))
                return
            self._send(app.get(self.path))

        def do_HEAD(self) -> None:  # noqa: N802
            self.do_GET()

        def _refuse(self) -> None:
            self._send(_error(405, "bumps view is read-only"))

        do_POST = do_PUT = do_DELETE = do_PATCH = _refuse  # noqa: N815

        def _send(self, r: Response) -> None:
            self.send_response(r.status)
            self.send_header("Content-Type", r.content_type)
            self.send_header("Content-Length", str(len(r.body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(r.body)

        def log_message(self, format, *args) -> None:  # noqa: A002 (the stdlib's signature)
            pass  # quiet: the command prints the URL once

    return Handler


def make_server(target: Target, port: int = 0) -> ThreadingHTTPServer:
    """A server for ``target`` bound to 127.0.0.1 (not started; call ``serve_forever``).

    Parameters
    ----------
    target : Target
        What to serve.
    port : int, default 0
        The TCP port; 0 picks a free one (read it from ``server.server_address[1]``).

    Returns
    -------
    http.server.ThreadingHTTPServer
        The bound server, one thread per request.

    Raises
    ------
    BumpsError
        If ``port`` is outside 0..65535, in use, or may not be bound.
    """
    if not 0 <= port <= 65535:
        raise BumpsError(f"`port` must be in 0..65535 (got {port})")
    app = ViewApp(target)
    bound: list[int] = []

    def hosts() -> set[str]:
        return {f"{HOST}:{bound[0]}", f"localhost:{bound[0]}"}

    try:
        server = ThreadingHTTPServer((HOST, port), _handler(app, hosts))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise BumpsError(f"port {port} is in use on {HOST}; choose another `port`, or leave it out") from None
        raise BumpsError(f"cannot listen on {HOST}:{port}: {exc.strerror}") from None
    server.daemon_threads = True
    bound.append(server.server_address[1])
    return server


def url_of(server: ThreadingHTTPServer) -> str:
    """The page's address, ``http://127.0.0.1:PORT/``."""
    return f"http://{HOST}:{server.server_address[1]}/"


def serve(
    path: str | Path,
    port: int = 0,
    open_browser: bool = True,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve the view of ``path`` on 127.0.0.1 until Ctrl-C.

    Parameters
    ----------
    path : str or pathlib.Path
        A run file or a folder of run files (:meth:`bumps.view.files.Target.open`).
    port : int, default 0
        The port; 0 picks a free one.
    open_browser : bool, default True
        Open the page in the default browser (:func:`webbrowser.open`).
    announce : callable, default print
        Called once with the line that gives the page's address.

    Raises
    ------
    BumpsError
        As :meth:`bumps.view.files.Target.open` and :func:`make_server`.
    """
    import webbrowser

    server = make_server(Target.open(path), port)
    url = url_of(server)
    announce(f"bumps view: {url} (serving {path}; Ctrl-C to stop)")
    if open_browser:
        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
