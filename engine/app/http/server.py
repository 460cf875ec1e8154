"""Serving the one HTTP application with uvicorn: in the daemon's background, or in the foreground.

The listening socket is bound here, before uvicorn starts, so an address in use is an error the
caller sees (uvicorn would log it and exit its own thread). In a background thread uvicorn leaves
signal handling to the process (the daemon's main thread owns SIGTERM and SIGHUP).
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from ...config import parse_listen

# Bounds for a server that faces a browser, a phone and a calendar program, not the internet
# at large: a connection idle for KEEP_ALIVE_SECONDS is closed (a new one that sends nothing too,
# which uvicorn alone leaves open for ever); past MAX_CONNECTIONS the oldest idle one is closed
# to make room, so idle sockets never use up the process's file descriptors and /healthz still
# gets in; past MAX_CONCURRENCY requests in flight uvicorn answers 503 at once.
KEEP_ALIVE_SECONDS = 5
HEADER_SECONDS = 10  # each request must arrive whole within this after the last one (slow-header clients)
MAX_CONNECTIONS = 400
MAX_CONCURRENCY = 1000


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with an idle timeout from the first byte and a cap on connections."""

    def connection_made(self, transport: Any) -> None:
        self.opened = time.monotonic()
        super().connection_made(transport)
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)
        # Data cancels the keep-alive timer; a client that trickles a header never completes it.
        self.loop.call_later(HEADER_SECONDS, self._next_request_due, None)
        if len(self.connections) > MAX_CONNECTIONS:
            idle = [c for c in self.connections if c is not self and isinstance(c, BoundedH11Protocol) and c.idle()]
            if idle:
                min(idle, key=lambda c: c.opened).timeout_keep_alive_handler()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self.loop.call_later(HEADER_SECONDS, self._next_request_due, self.cycle)

    def _next_request_due(self, last: Any) -> None:
        if self.cycle is last and not self.transport.is_closing():  # no new request has begun: close it
            self.timeout_keep_alive_handler()

    def idle(self) -> bool:
        """No request in hand (nothing is lost by closing it), and not already being closed."""
        return not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete)


def bind(listen: str) -> socket.socket:
    """A listening socket on ``listen`` (raises OSError when the address is taken or not ours)."""
    host, port = parse_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: without it a response written in two parts (headers, body)
    # waits out the client's delayed ACK, 40 ms on every request.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def config_for(app: Any, **overrides: Any) -> uvicorn.Config:
    """uvicorn's settings for duban: no access log (the daemon logs events), bounded connections."""
    settings: dict[str, Any] = {"log_config": None, "access_log": False, "lifespan": "off", "proxy_headers": False,
                                "server_header": False, "timeout_keep_alive": KEEP_ALIVE_SECONDS,
                                "limit_concurrency": MAX_CONCURRENCY, "timeout_graceful_shutdown": 2,
                                # accepted per turn of the event loop: a burst stays well under the open-file limit
                                "http": BoundedH11Protocol, "backlog": 128}
    settings.update(overrides)
    return uvicorn.Config(app, **settings)


class HttpServer:
    """The application served from a background thread of the daemon."""

    def __init__(self, app: Any, listen: str):
        self._socket = bind(listen)
        self._server = uvicorn.Server(config_for(app))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name="duban-http", daemon=True)

    @property
    def address(self) -> str:
        host, port = self._socket.getsockname()[:2]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OSError(f"the HTTP server on {self.address} did not start")
            time.sleep(0.01)

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(5)
        self._socket.close()


def serve_forever(app: Any, listen: str) -> None:
    """Serve ``app`` in the foreground until Ctrl-C / SIGTERM (``duban board``)."""
    sock = bind(listen)
    try:
        uvicorn.Server(config_for(app)).run(sockets=[sock])
    finally:
        sock.close()
