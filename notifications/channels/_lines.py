"""Keep-alive HTTP for the channels that POST: a client per send on its way, each request built by
its client and sent by that client's transport.

Two costs of one shared ``httpx.Client`` and its ``post`` are avoided here (measured with
``bench/delivery.py``, where the outbox sends up to ``in_flight`` messages of a channel at once):

* **A client per send in flight.** Sends sharing one client queue on its connection pool's lock,
  and the pool polls every pooled socket for each request. Here a send takes an idle client (or
  makes one) and gives it back: each client carries one request at a time over its one keep-alive
  connection, and the process holds as many connections as before, one per send in flight.
* **Built by the client, sent by its transport.** ``Client.build_request`` gives the request the
  client's headers (User-Agent, Accept...), its timeouts and the URL exactly as ``Client.post``
  would, and ``HTTPTransport.handle_request`` sends it. What ``Client.send`` does around that was
  a third of the CPU of a request on loopback, and none of it is used here: authentication,
  following redirects (off: a redirect from a robot means a wrong URL), keeping cookies, event
  hooks, logging the URL (silenced anyway: robot URLs carry tokens). A client picks a proxy's
  transport by URL when the environment names one (``HTTP_PROXY``...): then ``Client.send`` does
  the sending, as before.
"""

from __future__ import annotations

import ssl
import threading
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Line:
    """One client and, unless a proxy is configured, the transport it was made with."""

    client: httpx.Client
    transport: httpx.HTTPTransport | None

    def post(self, url: httpx.URL, content: bytes, headers: Mapping[str, str]) -> httpx.Response:
        """POST and read the whole answer; httpx's exceptions as ``Client.post`` raises them."""
        request = self.client.build_request("POST", url, content=content, headers=headers)
        if self.transport is None:
            return self.client.send(request)
        response = self.transport.handle_request(request)
        try:
            response.read()
        finally:
            response.close()  # the connection goes back to the client's pool for the next send
        response.request = request
        return response


def proxied() -> bool:
    """Whether the environment names a proxy, which httpx's clients would send through."""
    return any(scheme != "no" for scheme in urllib.request.getproxies())


class Lines:
    """The idle lines of one channel; ``line()`` lends one for a send."""

    def __init__(self, timeout: float, user_agent: str) -> None:
        self.timeout, self.user_agent = timeout, user_agent
        self._idle: list[Line] = []
        self._lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None

    def _open(self) -> Line:
        with self._lock:
            # One TLS context for the lines, as one client had: each loads the CA bundle (~25 ms).
            if self._tls is None:
                self._tls = httpx.create_ssl_context()
            tls = self._tls
        transport = None if proxied() else httpx.HTTPTransport(verify=tls)
        # A redirect from a robot endpoint means a wrong URL; following it could post the reminder
        # somewhere unintended.
        client = httpx.Client(timeout=self.timeout, headers={"User-Agent": self.user_agent},
                              follow_redirects=False, verify=tls, transport=transport)
        return Line(client, transport)

    @contextmanager
    def line(self) -> Iterator[Line]:
        # Opened on a send's demand, so building a channel (e.g. for `duban check`) opens nothing.
        with self._lock:
            line = self._idle.pop() if self._idle else None
        if line is None:
            line = self._open()
        try:
            yield line
        finally:
            with self._lock:
                self._idle.append(line)

    def close(self) -> None:
        """Close every idle line's connection; the next send opens a new one."""
        with self._lock:
            lines, self._idle = self._idle, []
        for line in lines:
            line.client.close()  # closes its transport too
