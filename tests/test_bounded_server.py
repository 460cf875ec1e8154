"""A bounded server (issue #11): 1,500 idle connections against a process limited to 1,024 open
files neither exhaust it nor keep /healthz from answering within a second."""

from __future__ import annotations

import resource
import socket
import subprocess
import sys
import time

import httpx

from .conftest import SEED_CSV, run_cli


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_idle_connections_do_not_starve_healthz(project):
    config = project / "config.toml"
    assert run_cli("--config", config, "init").code == 0
    assert run_cli("--config", config, "ledger", "import", SEED_CSV, "--feedback-date", "2022-07-15").code == 0
    port = _free_port()

    def low_limit() -> None:  # the default of many systems, for the server only
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))  # this side holds 1,500 sockets
    server = subprocess.Popen([sys.executable, "-c", "from engine.app.cli.main import entry; entry()",
                               "--config", str(config), "board",
                               "--listen", f"127.0.0.1:{port}"], preexec_fn=low_limit,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    idle: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and server.poll() is None, "the board did not start"
                time.sleep(0.2)
        for _ in range(1500):
            s = socket.socket()
            s.settimeout(5)
            s.connect(("127.0.0.1", port))
            idle.append(s)
        time.sleep(0.5)  # let the server accept what it will
        slowest = 0.0
        for _ in range(5):
            started = time.monotonic()
            answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
            slowest = max(slowest, time.monotonic() - started)
            assert answer.status_code == 200
        assert slowest < 1.0, f"/healthz took {slowest:.2f} s behind 1,500 idle connections"
        assert server.poll() is None
    finally:
        for s in idle:
            s.close()
        server.terminate()
        server.wait(10)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _response(conn: socket.socket) -> bytes:
    """One whole HTTP response (head and Content-Length body): it may come in several pieces."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += conn.recv(65536)
    return data


def test_a_client_that_trickles_its_first_header_is_cut_off(project, monkeypatch):
    from engine.app.http import server as http_server
    from engine.app.http.app import create_app

    from .conftest import site_for

    config = project / "config.toml"
    assert run_cli("--config", config, "init").code == 0
    monkeypatch.setattr(http_server, "HEADER_SECONDS", 1.0)
    served = http_server.HttpServer(create_app(site_for(config)), "127.0.0.1:0")
    served.start()
    try:
        host, port = served.address.rsplit(":", 1)
        slow = socket.create_connection((host, int(port)), timeout=5)
        started = time.monotonic()
        for part in (b"GET / HTTP/1.1\r\n", b"Host: x\r\n", b"X-Slow: 1\r\n"):
            slow.sendall(part)
            time.sleep(0.4)  # each piece resets the keep-alive timer, never the first-request deadline
        assert slow.recv(1024) == b""  # closed by the server
        assert time.monotonic() - started < 4
        assert httpx.get(f"http://{served.address}/healthz", timeout=5).status_code == 200
        # the same on a kept-alive connection: one whole request, then a trickle
        kept = socket.create_connection((host, int(port)), timeout=5)
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _response(kept).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        for part in (b"GET / HTTP/1.1\r\n", b"Host: x\r\n", b"X-Slow: 1\r\n"):
            kept.sendall(part)
            time.sleep(0.4)
        assert kept.recv(1024) == b""
        assert time.monotonic() - started < 4
    finally:
        served.close()
