"""Keep-alive HTTP for the channels that POST: a connection per send on its way, each request sent
by the standard library's ``http.client`` and answered as an ``httpx.Response``.

Why not an ``httpx.Client`` per line (measured with ``bench/delivery.py`` and a sequential loop to a
loopback receiver on this project's 2-core machine, CPU per request): ``Client.post`` 500 µs, its
transport alone (httpcore and h11) 350–370 µs, ``http.client`` 120–140 µs. The outbox's sends share
one core's worth of Python with its claims and records, so a request's CPU is what bounds delivery.
The channels above keep what httpx gave them:

* **The same request.** The headers are the ones ``httpx.Client.post`` sends (its defaults, taken
  from a client once, then Host, the channel's headers and Content-Length), to the same path.
* **An ``httpx.Response``** carrying the status, headers and body (decompressed as httpx would:
  the ``Accept-Encoding`` is httpx's), with its ``request``. At most ``MAX_REPLY`` bytes of an
  answer are read; a longer one closes its connection.
* **httpx's exceptions**: a connection that cannot be made (refused, DNS, a certificate that does
  not verify) raises ``httpx.ConnectError`` or ``ConnectTimeout``; trouble after that
  ``ReadTimeout``, ``WriteError``, ``ReadError`` or ``RemoteProtocolError``.
* **Keep-alive as httpcore does it**: a connection is reused for the next send unless the server
  said it closes, and before reuse it is checked for having been closed by the server meanwhile
  (a readable idle socket), so an idle timeout on the server's side costs a reconnect, not a
  failed send.
* **TLS** through one context made by ``httpx.create_ssl_context`` (the CA bundle httpx trusts,
  ``SSL_CERT_FILE``), the host name checked.

When the environment names a proxy (``HTTP_PROXY``...) the line is an ``httpx.Client``, which picks
the proxy's transport by URL and sends as before: a proxy is rare on an intranet, and its speed is
not what bounds a send through it.
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import httpx

# An answer longer than this is cut and its connection closed: the channels read a status, a few
# headers and a small JSON object, and a misconfigured URL must not fill the daemon's memory.
MAX_REPLY = 1 << 20

_Origin = tuple[str, str, int]  # scheme, host, port


class Line:
    """One keep-alive connection, used by one send at a time."""

    def __init__(self, timeout: float, tls: ssl.SSLContext, fixed: list[tuple[bytes, bytes]]) -> None:
        self.timeout, self.tls, self.fixed = timeout, tls, fixed
        self.origin: _Origin | None = None
        self.conn: http.client.HTTPConnection | None = None

    def post(self, url: httpx.URL, content: bytes, headers: Mapping[str, str]) -> httpx.Response:
        """POST and read the answer; httpx's exceptions as ``Client.post`` raises them."""
        fields = [(b"Host", url.netloc), *self.fixed]
        fields.extend((name.encode("ascii"), value.encode("ascii")) for name, value in headers.items())
        fields.append((b"Content-Length", str(len(content)).encode("ascii")))
        request = httpx.Request("POST", url, headers=fields, content=content)
        conn = self._connected(url)
        try:
            conn.putrequest("POST", url.raw_path.decode("ascii"), skip_host=True, skip_accept_encoding=True)
            for name, value in fields:
                conn.putheader(name, value)
            conn.endheaders(content)
            answer = conn.getresponse()
            body = answer.read(MAX_REPLY)
            if not answer.isclosed():  # longer than MAX_REPLY: the rest is never read
                self.close()
        except TimeoutError as exc:
            self.close()
            raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from exc
        except http.client.HTTPException as exc:
            self.close()
            raise httpx.RemoteProtocolError(str(exc) or type(exc).__name__, request=request) from exc
        except OSError as exc:
            self.close()
            # a broken pipe is the request not getting out; the rest happened while reading
            kind = httpx.WriteError if isinstance(exc, BrokenPipeError) else httpx.ReadError
            raise kind(str(exc) or type(exc).__name__, request=request) from exc
        return httpx.Response(answer.status, headers=answer.getheaders(), content=body, request=request)

    def _connected(self, url: httpx.URL) -> http.client.HTTPConnection:
        origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        if self.conn is not None and (origin != self.origin or self.conn.sock is None or dropped(self.conn.sock)):
            self.close()
        if self.conn is None:
            scheme, host, port = origin
            if scheme == "https":
                self.conn = http.client.HTTPSConnection(host, port, timeout=self.timeout, context=self.tls)
            elif scheme == "http":
                self.conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
            else:
                raise httpx.UnsupportedProtocol(f"the URL's scheme {scheme!r} is not http or https")
            self.origin = origin
            try:
                self.conn.connect()  # Nagle off, as httpcore has it
            except TimeoutError as exc:
                self.close()
                raise httpx.ConnectTimeout(str(exc) or "timed out") from exc
            except OSError as exc:  # refused, unknown host, a certificate that does not verify
                self.close()
                raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class ProxiedLine:
    """A client that sends through the proxy the environment names."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def post(self, url: httpx.URL, content: bytes, headers: Mapping[str, str]) -> httpx.Response:
        return self.client.post(url, content=content, headers=headers)

    def close(self) -> None:
        self.client.close()


def dropped(sock: socket.socket) -> bool:
    """Whether an idle keep-alive socket has something to read: the server closed it (or broke
    the protocol); either way it must not carry the next request."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def proxied() -> bool:
    """Whether the environment names a proxy, which httpx's clients would send through."""
    return any(scheme != "no" for scheme in urllib.request.getproxies())


class Lines:
    """The idle lines of one channel; ``line()`` lends one for a send."""

    def __init__(self, timeout: float, user_agent: str) -> None:
        self.timeout, self.user_agent = timeout, user_agent
        self._idle: list[Line | ProxiedLine] = []
        self._lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None
        self._fixed: list[tuple[bytes, bytes]] = []

    def _open(self) -> Line | ProxiedLine:
        with self._lock:
            # One TLS context for the lines: each would load the CA bundle (~25 ms).
            if self._tls is None:
                self._tls = httpx.create_ssl_context()
                # What httpx.Client puts on every request (Accept, Accept-Encoding, Connection,
                # User-Agent), in its order, so a line's request is the one Client.post sends.
                with httpx.Client(headers={"User-Agent": self.user_agent}) as client:
                    self._fixed = list(client.headers.raw)
            tls, fixed = self._tls, self._fixed
        if proxied():
            # A redirect from a robot endpoint means a wrong URL; following it could post the
            # reminder somewhere unintended.
            return ProxiedLine(httpx.Client(timeout=self.timeout, headers={"User-Agent": self.user_agent},
                                            follow_redirects=False, verify=tls))
        return Line(self.timeout, tls, fixed)

    @contextmanager
    def line(self) -> Iterator[Line | ProxiedLine]:
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
            line.close()
