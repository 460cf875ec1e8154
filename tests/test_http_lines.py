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
