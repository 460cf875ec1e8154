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
