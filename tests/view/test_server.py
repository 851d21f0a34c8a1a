"""bumps.view.server and the `bumps view` command: loopback only, files under PATH only, read-only, bad input."""

import http.client
import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bumps.errors import BumpsError
from bumps.view.files import Target
from bumps.view.server import ViewApp, make_server, url_of

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def served(view_runs):
    """A running server on the probe-ablation folder: (server, port)."""
    server = make_server(Target.open(view_runs["ablation"]))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, server.server_address[1]
    server.shutdown()
    server.server_close()


def get(port: int, path: str, host: str | None = None, method: str = "GET") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest(method, path, skip_host=True)  # the path goes out as given: no normalisation of ..
    conn.putheader("Host", host or f"127.0.0.1:{port}")
    conn.endheaders()
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, body


def test_binds_loopback_on_a_free_port(served):
    server, port = served
    assert server.server_address[0] == "127.0.0.1" and port > 0
    assert url_of(server) == f"http://127.0.0.1:{port}/"


@pytest.mark.parametrize(
    "path",
    [
        "/api/page?file=../toy.pt",
        "/api/record?file=..%2Ftoy.pt&i=0",
        "/api/page?file=%2Fetc%2Fpasswd",
        "/api/events?file=../../../../etc/passwd",
        "/api/seed?file=../toy.pt&s=0",
    ],
)
def test_path_traversal_is_refused(served, path):
    status, body = get(served[1], path)
    assert status == 403 and "error" in json.loads(body)


@pytest.mark.parametrize("path", ["/static/../../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd", "/../README.md"])
def test_only_the_pages_own_files_are_static(served, path):
    assert get(served[1], path)[0] == 404


def test_pages_and_api(served):
    port = served[1]
    status, html = get(port, "/")
    assert status == 200 and b'<main id="app">' in html
    assert get(port, "/static/uPlot.iife.min.js")[0] == 200
    folder = json.loads(get(port, "/api/page")[1])
    assert folder["view"] == "folder" and len(folder["runs"]) == 4
    run = json.loads(get(port, "/api/page?file=k0_seed0.pt")[1])
    assert run["view"] == "run" and "modadd" in run
    rec = json.loads(get(port, "/api/record?file=k0_seed0.pt&i=2")[1])
    assert rec["record"] == 2 and len(rec["neuron_freq"]) == 32
    assert get(port, "/api/record?file=k0_seed0.pt&i=999")[0] == 400
    assert get(port, "/api/record?file=k0_seed0.pt&i=x")[0] == 400
    assert get(port, "/api/page?file=missing.pt")[0] == 404
    window = json.loads(get(port, "/api/window?file=k0_seed0.pt&chart=losses&lo=10&hi=20")[1])
    assert window["id"] == "losses" and min(window["x"]) >= 5 and max(window["x"]) <= 25
    assert get(port, "/api/window?file=k0_seed0.pt&chart=nope")[0] == 400
    events = json.loads(get(port, "/api/events?file=k0_seed0.pt")[1])["events"]
    assert events and all(e["kind"] in ("bump", "spike", "phase_change") for e in events)
    assert json.loads(get(port, "/api/version")[1])["version"]


def test_other_hosts_and_writes_are_refused(served):
    port = served[1]
    assert get(port, "/api/version", host="evil.example:80")[0] == 403  # DNS rebinding
    assert get(port, "/api/version", host=f"localhost:{port}")[0] == 200
    assert get(port, "/api/version", method="POST")[0] == 405


def test_a_port_in_use_is_one_line(view_runs):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(BumpsError, match=f"port {port} is in use"):
            make_server(Target.open(view_runs["toy"]), port)
    with pytest.raises(BumpsError, match="0..65535"):
        make_server(Target.open(view_runs["toy"]), 70000)


def test_app_answers_without_http(view_runs):
    app = ViewApp(Target.open(view_runs["toy"]))
    assert app.get("/api/seed?s=1").status == 200
    assert json.loads(app.get("/api/seed?s=5").body)["error"].startswith("seed 5 is out of range")
    assert app.get("/api/page?file=other.pt").status == 403


def bumps(*args):
    return subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "view", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def assert_one_line(proc, match):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and match in lines[0], proc.stderr


def test_command_bad_input_is_one_line_exit_2(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    assert_one_line(bumps(tmp_path / "notes.txt", "--no-browser"), "is a text file, not a torch file")


@pytest.mark.slow
def test_command_every_bad_input_is_one_line(view_runs, tmp_path):
    (tmp_path / "empty").mkdir()
    assert_one_line(bumps(tmp_path / "empty", "--no-browser"), "holds no bumps run files")
    assert_one_line(bumps(tmp_path / "missing.pt", "--no-browser"), "no such file or folder")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert_one_line(bumps(view_runs["toy"], "--port", port, "--no-browser"), f"port {port} is in use")
    assert_one_line(bumps(view_runs["toy"], "--export", tmp_path / "page.txt"), "give a name ending in .html")


def test_command_serves_and_prints_the_url(view_runs):
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "cli.py"), "view", str(view_runs["toy"]), "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("bumps view: http://127.0.0.1:"), line
        port = int(line.split("127.0.0.1:")[1].split("/")[0])
        assert json.loads(get(port, "/api/page")[1])["kind"] == "lowrank"
    finally:
        proc.terminate()
        proc.wait(10)


def test_nan_in_a_run_is_sent_as_null(view_runs, tmp_path):
    import torch

    run = torch.load(view_runs["toy"], weights_only=True)
    run["config"]["lr"] = float("nan")
    torch.save(run, tmp_path / "nan.pt")
    r = ViewApp(Target.open(tmp_path / "nan.pt")).get("/api/page")
    assert r.status == 200 and json.loads(r.body)["config"]["lr"] is None
