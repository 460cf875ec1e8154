"""The HTTP channels' keep-alive lines: the request a client would send, one connection per send
in flight, and a proxy named in the environment still used."""

from __future__ import annotations

import threading

import httpx
import pytest

from notifications.channels import build_channel
from notifications.channels._http import USER_AGENT
from notifications.message import OutgoingMessage
from tests.peers import LoopbackHTTP, Seen, json_reply

WAIT = 30.0  # a bound for waits on conditions, never a sleep


@pytest.fixture(autouse=True)
def no_proxy_in_the_environment(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def message(key: str) -> OutgoingMessage:
    return OutgoingMessage(key=key, recipient="办公室", address="oa-1", subject="督办提醒", text="整改将于10月13日到期。",
                           data={"items": [1, 2]})


def test_a_send_carries_what_httpx_client_post_would():
    with LoopbackHTTP() as http:
        channel = build_channel("hook", {"kind": "webhook", "url": http.url()})
        try:
            channel.send(message("k1"))
        finally:
            channel.close()
        ours = http.seen[0]
        with httpx.Client(timeout=10.0, headers={"User-Agent": USER_AGENT}, follow_redirects=False) as client:
            client.post(http.url(), content=ours.body, headers={
                "Content-Type": "application/json; charset=utf-8", "Idempotency-Key": "k1"})
        theirs = http.seen[1]
    assert (ours.method, ours.path, ours.headers) == (theirs.method, theirs.path, theirs.headers)


def test_sends_on_their_way_together_each_have_a_connection_and_keep_it():
    arrived = threading.Barrier(3, timeout=WAIT)

    def respond(seen: Seen):
        arrived.wait()  # three requests in the server at once
        return json_reply({"ok": True})

    with LoopbackHTTP(respond) as http:
        channel = build_channel("hook", {"kind": "webhook", "url": http.url()})
        try:
            for wave in range(2):
                threads = [threading.Thread(target=channel.send, args=(message(f"w{wave}-{n}"),)) for n in range(3)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(WAIT)
        finally:
            channel.close()
        assert len(http.seen) == 6
        assert http.connections == 3  # the second wave went over the first wave's connections


def test_a_proxy_named_in_the_environment_is_used(monkeypatch):
    with LoopbackHTTP() as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        channel = build_channel("hook", {"kind": "webhook", "url": "http://oa.example.invalid/hook"})
        try:
            channel.send(message("k2"))
        finally:
            channel.close()
        [seen] = proxy.seen
    assert seen.headers["host"] == "oa.example.invalid" and seen.headers["idempotency-key"] == "k2"


def test_lines_check_the_server_certificate_against_the_environments_bundle(tmp_path, monkeypatch):
    """One TLS context serves every line; it trusts what httpx's clients trust (SSL_CERT_FILE)."""
    import ssl
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from notifications.channels.base import DeliveryError
    from tests.peers import intranet_cert

    chain, key = intranet_cert(tmp_path)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(chain, key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    url = f"https://127.0.0.1:{server.server_address[1]}/hook"
    try:
        untrusting = build_channel("hook", {"kind": "webhook", "url": url})
        with pytest.raises(DeliveryError, match=r"cannot reach 127\.0\.0\.1"):
            untrusting.send(message("k3"))
        untrusting.close()
        monkeypatch.setenv("SSL_CERT_FILE", str(chain))
        trusting = build_channel("hook", {"kind": "webhook", "url": url})
        try:
            failed: list[BaseException] = []

            def send(key: str) -> None:
                try:
                    trusting.send(message(key))
                except DeliveryError as exc:
                    failed.append(exc)

            threads = [threading.Thread(target=send, args=(f"k4-{n}",)) for n in range(3)]  # lines of their own
            for t in threads:
                t.start()
            for t in threads:
                t.join(WAIT)
            assert failed == []
            trusting.send(message("k5"))
        finally:
            trusting.close()
    finally:
        server.shutdown()
        server.server_close()


def _one_answer_a_connection(answer: bytes, closed: threading.Event, connections: list[int]):
    """A raw server on 127.0.0.1 that reads one request per connection, writes ``answer`` and closes
    the connection without a ``Connection: close`` (an idle timeout, as a server may have)."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                connections.append(1)
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                while len(body) < length:
                    body += conn.recv(65536)
                conn.sendall(answer)
            closed.set()

    threading.Thread(target=serve, daemon=True).start()
    return listener


def test_a_connection_the_server_closed_while_idle_is_not_used_again():
    closed = threading.Event()
    connections: list[int] = []
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}"
    listener = _one_answer_a_connection(answer, closed, connections)
    channel = build_channel("hook", {"kind": "webhook", "url": f"http://127.0.0.1:{listener.getsockname()[1]}/h"})
    try:
        for key in ("a", "b", "c"):
            channel.send(message(key))  # a failed send raises DeliveryError
            assert closed.wait(WAIT)  # the server has closed this connection: the next send must see it
            closed.clear()
    finally:
        channel.close()
        listener.close()
    assert len(connections) == 3


def test_an_answer_is_read_up_to_its_limit_and_its_connection_not_used_again(monkeypatch):
    from notifications.channels import _lines

    monkeypatch.setattr(_lines, "MAX_REPLY", 64)
    with LoopbackHTTP(lambda seen: (200, {"Content-Type": "text/plain"}, b"x" * 1000)) as http:
        line = _lines.Lines(10.0, USER_AGENT)
        with line.line() as one:
            first = one.post(httpx.URL(http.url()), b"{}", {"Content-Type": "application/json"})
            second = one.post(httpx.URL(http.url()), b"{}", {"Content-Type": "application/json"})
        line.close()
        assert (first.status_code, len(first.content), len(second.content)) == (200, 64, 64)
        assert http.connections == 2  # the first answer's rest was never read: its connection went


def test_network_trouble_comes_back_as_httpx_raises_it():
    import socket

    from notifications.channels import _lines

    with socket.create_server(("127.0.0.1", 0)) as free:
        port = free.getsockname()[1]
    lines = _lines.Lines(10.0, USER_AGENT)
    with lines.line() as line, pytest.raises(httpx.ConnectError):
        line.post(httpx.URL(f"http://127.0.0.1:{port}/h"), b"{}", {})  # nobody listens there
    # a server that accepts and never answers: the read times out
    with socket.create_server(("127.0.0.1", 0)) as silent:
        slow = _lines.Lines(0.2, USER_AGENT)
        with slow.line() as line, pytest.raises(httpx.ReadTimeout):
            line.post(httpx.URL(f"http://127.0.0.1:{silent.getsockname()[1]}/h"), b"{}", {})
        slow.close()
    # a server that answers with something that is not HTTP
    with socket.create_server(("127.0.0.1", 0)) as garbled:
        def reply() -> None:
            conn, _ = garbled.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"SMTP ready\r\n\r\n")
        threading.Thread(target=reply, daemon=True).start()
        with lines.line() as line, pytest.raises(httpx.RemoteProtocolError):
            line.post(httpx.URL(f"http://127.0.0.1:{garbled.getsockname()[1]}/h"), b"{}", {})
    lines.close()
