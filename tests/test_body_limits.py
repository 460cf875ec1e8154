"""A server that protects itself before it reads (issue #18): a body is authenticated and measured
before a byte of it is read.

``duban board`` runs as its own process on 127.0.0.1, so its memory (``VmRSS``), what it wrote
(``wchar`` of ``/proc/PID/io``) and the files it holds open can be watched while bodies of hundreds
of megabytes are offered. They are sent from a generator over a raw socket, chunk by chunk, until
the answer arrives: the test never holds them, and the bytes it managed to send (at most what the
kernel's socket buffers take, a few megabytes, when nothing reads them) show how much the server
let in.
"""

from __future__ import annotations

import os
import re
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from .conftest import ROOT, serving, site_for
from .peers import free_port

EXAMPLE = ROOT / "examples" / "2026-区审计局.csv"
LEDGER = "2026-区审计局"
T0 = "2026-12-01T09:00"
NOW = "2026-12-24T10:00"
MB = 1 << 20
EVIDENCE_MAX = 2 * MB  # [evidence] max_bytes of these tests: an upload limit that takes little time to pass
API_ISSUE = quote(f"/api/v1/issues/{LEDGER}/7")
WS_ISSUE = quote(f"/ws/issues/{LEDGER}/7")


@pytest.fixture
def office(project, cli):
    """The example ledger imported (办公室 answers for issue 7) with 办公室's API token."""
    config = project / "config.toml"
    config.write_text(config.read_text(encoding="utf-8") + f"\n[evidence]\nmax_bytes = {EVIDENCE_MAX}\n",
                      encoding="utf-8")
    assert cli("init", "--at", T0).code == 0
    imported = cli("ledger", "import", EXAMPLE, "--at", T0)
    assert imported.code == 0, imported.err
    made = cli("user", "token", "办公室", "--at", NOW)
    assert made.code == 0, made.err
    return project, made.out.strip().splitlines()[-1]


class Board:
    """``duban board`` in a subprocess with its own temporary folder; its memory and I/O readable."""

    def __init__(self, project: Path):
        self.port = free_port()
        self.tmp = project / "server-tmp"
        self.tmp.mkdir()
        self.log = project / "board.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", "from engine.app.cli.main import entry; entry()", "--config",
                 str(project / "config.toml"), "board", "--listen", f"127.0.0.1:{self.port}", "--at", NOW],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "TMPDIR": str(self.tmp)})
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and self.proc.poll() is None, self.log.read_text(errors="replace")
            time.sleep(0.1)

    def rss(self) -> int:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024

    def written(self) -> int:
        """Bytes the server has written so far (files, spooled uploads and answers alike)."""
        fields = dict(line.split(": ") for line in Path(f"/proc/{self.proc.pid}/io").read_text().splitlines())
        return int(fields["wchar"])

    def close(self) -> str:
        self.proc.terminate()
        self.proc.wait(10)
        return self.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture
def board(office):
    served = Board(office[0])
    try:
        yield served
    finally:
        output = served.close()
        assert "Traceback" not in output, output[-3000:]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float  # from the first byte sent to the whole answer read
    sent: int  # body bytes the server let the client send before it answered
    text: str = field(init=False)

    def __post_init__(self) -> None:
        self.text = self.body.decode("utf-8", errors="replace")


def offer(port: int, method: str, path: str, headers: dict[str, str], body: Iterable[bytes],
          length: int | None) -> Answer:
    """Send a request, its body chunk by chunk (chunked when ``length`` is None), stopping as soon as
    the server answers or closes; then read the answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1",
            f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked",
            *(f"{k}: {v}" for k, v in headers.items())]
    started, sent = time.monotonic(), 0
    try:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        for chunk in body:
            if select.select([sock], [], [], 0)[0]:
                break  # the answer (or the close) is here: stop sending
            assert time.monotonic() - started < 5, f"{path}: still read after {sent / MB:.0f} MB and 5 s"
            sock.sendall(chunk if length is not None else b"%x\r\n%b\r\n" % (len(chunk), chunk))
            sent += len(chunk)
        else:
            if length is None:
                sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server closed while the body was coming: its answer is already here
    data = b""
    try:
        while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
            part = sock.recv(65536)
            if not part:
                break
            data += part
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    seconds = time.monotonic() - started
    head_bytes, _, rest = data.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 "), data[:300]
    fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return Answer(int(lines[0].split()[1]), fields, rest, seconds, sent)


def _length(data: bytes) -> int:
    found = re.search(rb"\r\ncontent-length:\s*(\d+)", data.partition(b"\r\n\r\n")[0], re.IGNORECASE)
    return int(found.group(1)) if found else 1 << 62


def filler(size: int) -> Iterator[bytes]:
    block = b"x" * MB  # the same megabyte, sent again and again
    while size > 0:
        yield block[:size]
        size -= MB


def json_body(size: int) -> tuple[Iterator[bytes], int]:
    head, tail = b'{"note": "', b'"}'
    return iter([head, *filler(size - len(head) - len(tail)), tail]), size


def multipart(size: int, boundary: str = "duban-test-boundary") -> tuple[Iterator[bytes], int, str]:
    """A multipart form of ``size`` bytes: a note, then one file filling the rest."""
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\n大文件\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def parts() -> Iterator[bytes]:
        yield head
        yield from filler(size - len(head) - len(tail))
        yield tail

    return parts(), size, f"multipart/form-data; boundary={boundary}"


def post_json(port: int, path: str, size: int, headers: dict[str, str], chunked: bool = False) -> Answer:
    body, length = json_body(size)
    return offer(port, "POST", path, {"Content-Type": "application/json", **headers}, body,
                 None if chunked else length)


def post_upload(port: int, path: str, size: int, headers: dict[str, str], chunked: bool = False) -> Answer:
    body, length, kind = multipart(size)
    return offer(port, "POST", path, {"Content-Type": kind, **headers}, body, None if chunked else length)


def nothing_kept(project: Path, board: Board) -> None:
    """No evidence file stored, nothing in the server's temporary folder, not even an unnamed file
    it still holds open there (a spooled upload)."""
    store = project / "evidence-files"
    assert not store.exists() or not any(store.iterdir())
    assert not any(board.tmp.iterdir())
    held = [os.readlink(fd) for fd in Path(f"/proc/{board.proc.pid}/fd").iterdir() if fd.is_symlink()]
    assert not [name for name in held if name.startswith(str(board.tmp))], held


def test_a_strangers_huge_body_is_refused_unread(office, board):
    project = office[0]
    rss, written = board.rss(), board.written()
    answers = {
        "300 MB JSON, no token": post_json(board.port, f"{API_ISSUE}/progress", 300 * MB, {}),
        "300 MB JSON, no token, chunked": post_json(board.port, f"{API_ISSUE}/progress", 300 * MB, {}, chunked=True),
        "300 MB JSON, a wrong token": post_json(board.port, f"{API_ISSUE}/actions", 300 * MB,
                                                {"Authorization": "Bearer not-a-token"}),
        "400 MB upload to /api, no token": post_upload(board.port, f"{API_ISSUE}/evidence", 400 * MB, {}),
        "400 MB upload to /ws, no session": post_upload(board.port, f"{WS_ISSUE}/evidence", 400 * MB, {}),
        "400 MB upload to /ws, chunked": post_upload(board.port, f"{WS_ISSUE}/evidence", 400 * MB, {}, chunked=True),
        "300 MB sign-in form": offer(board.port, "POST", "/ws/login",
                                     {"Content-Type": "application/x-www-form-urlencoded"}, filler(300 * MB), 300 * MB),
        "300 MB to the board": post_json(board.port, "/", 300 * MB, {}),
        "300 MB GET body": offer(board.port, "GET", "/ws/", {}, filler(300 * MB), 300 * MB),
    }
    for what, answer in answers.items():
        assert answer.status in (401, 403, 413), (what, answer.status, answer.text[:300])
        assert answer.seconds < 1.0, (what, answer.seconds)
        assert answer.sent < 32 * MB, (what, answer.sent)  # the server stopped reading long before the end
        assert answer.headers.get("connection") == "close", (what, answer.headers)
        assert answer.headers.get("content-security-policy"), what  # refusals carry the security headers too
    api = answers["300 MB JSON, no token"]
    assert api.status == 401 and api.headers["content-type"] == "application/json"
    assert "bearer token" in api.text and api.headers["www-authenticate"].startswith("Bearer")
    ws = answers["400 MB upload to /ws, no session"]
    assert ws.status == 403 and "text/html" in ws.headers["content-type"] and "请刷新页面后重试" in ws.text
    assert answers["300 MB sign-in form"].status == 413 and "超过上限" in answers["300 MB sign-in form"].text
    assert answers["300 MB to the board"].status == 413 and answers["300 MB GET body"].status == 413
    grown, wrote = board.rss() - rss, board.written() - written
    slowest = max(a.seconds for a in answers.values())
    print(f"\nunauthenticated: {len(answers)} huge bodies answered in at most {slowest * 1000:.0f} ms; "
          f"RSS grew {grown / MB:.1f} MB (from {rss / MB:.0f} MB); the server wrote {wrote / MB:.1f} MB")
    assert grown < 50 * MB, f"the server grew by {grown / MB:.0f} MB"
    assert wrote < MB, f"the server wrote {wrote / MB:.1f} MB"
    nothing_kept(project, board)
    assert httpx.get(f"{board.base}/healthz", timeout=5).status_code == 200


def _signed_in(cli, board: Board) -> tuple[httpx.Client, str]:
    """办公室 signed in through a reminder's link; the CSRF token of issue 7's page."""
    link = cli("user", "link", "办公室", "--at", NOW)
    assert link.code == 0, link.err
    web = httpx.Client(base_url=board.base, timeout=30, follow_redirects=True)
    todo = web.get(re.search(r"/w/\S+", link.out).group(0))
    assert todo.status_code == 200 and "我的待办" in todo.text
    page = web.get(WS_ISSUE)
    assert page.status_code == 200
    return web, re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def test_a_signed_in_users_body_is_limited_too(office, board, cli):
    project, token = office
    web, csrf = _signed_in(cli, board)
    bearer = {"Authorization": f"Bearer {token}"}
    session = {"Cookie": f"duban_session={web.cookies['duban_session']}"}
    rss, written = board.rss(), board.written()
    over = 300 * MB  # refused on its length; chunked, cut off as it passes the limit
    answers = {
        "2 MB JSON": post_json(board.port, f"{API_ISSUE}/progress", 2 * MB, bearer),
        "300 MB JSON, chunked": post_json(board.port, f"{API_ISSUE}/progress", over, bearer, chunked=True),
        "upload to /api": post_upload(board.port, f"{API_ISSUE}/evidence", over, bearer),
        "upload to /api, chunked": post_upload(board.port, f"{API_ISSUE}/evidence", over, bearer, chunked=True),
        "upload to /ws": post_upload(board.port, f"{WS_ISSUE}/evidence?csrf={csrf}", over, session),
        "upload to /ws, chunked": post_upload(board.port, f"{WS_ISSUE}/evidence?csrf={csrf}", over, session,
                                              chunked=True),
        "a step with a file, chunked": post_upload(board.port, f"{WS_ISSUE}/step?csrf={csrf}", over, session,
                                                   chunked=True),
        "2 MB form": offer(board.port, "POST", f"{WS_ISSUE}/progress?csrf={csrf}",
                           {"Content-Type": "application/x-www-form-urlencoded", **session}, filler(2 * MB), 2 * MB),
        "300 MB form, chunked": offer(board.port, "POST", f"{WS_ISSUE}/progress?csrf={csrf}",
                                      {"Content-Type": "application/x-www-form-urlencoded", **session},
                                      filler(over), None),
    }
    for what, answer in answers.items():
        # the chunked form meets the form parser's own limit first: one field at most 64 KB
        assert answer.status == (400 if what == "300 MB form, chunked" else 413), (what, answer.status, answer.text)
        assert answer.seconds < 1.0, (what, answer.seconds)
        assert answer.sent < 32 * MB, (what, answer.sent)
        assert answer.headers.get("connection") == "close", (what, answer.headers)
    assert answers["2 MB JSON"].headers["content-type"] == "application/json"
    assert "larger than the limit of 1 MB" in answers["2 MB JSON"].text
    assert "超过上限（2 MB）" in answers["upload to /ws"].text
    # a body to an address that reads none: refused on its length, or answered at once and the
    # connection closed, rather than 300 MB read to be thrown away
    for chunked in (False, True):
        unread = post_json(board.port, "/api/v1/me", 300 * MB, bearer, chunked=chunked)
        assert unread.status == (405 if chunked else 413) and unread.seconds < 1.0 and unread.sent < 32 * MB, unread
        assert unread.headers.get("connection") == "close"
    # a session without its CSRF token, or with another, is refused before its body is read
    for query in ("", "?csrf=forged-token-000000000000"):
        forged = post_upload(board.port, f"{WS_ISSUE}/evidence{query}", 400 * MB, session)
        assert forged.status == 403 and forged.seconds < 1.0 and forged.sent < 32 * MB, (query, forged.text[:300])
        assert "校验令牌" in forged.text
    grown, wrote = board.rss() - rss, board.written() - written
    assert grown < 50 * MB, f"the server grew by {grown / MB:.0f} MB"
    # a chunked upload is spooled (past 1 MB to an unnamed temporary file) up to its limit, no further
    assert wrote < 3 * (EVIDENCE_MAX + MB), f"the server wrote {wrote / MB:.1f} MB"
    nothing_kept(project, board)
    assert cli("issue", "show", f"{LEDGER}/7", "--json").json["evidence"] == []

    # what fits goes through: a form with its token in the action, uploads under the limit
    done = web.post(f"{WS_ISSUE}/progress?csrf={csrf}", data={"note": "已召开专题会", "csrf": csrf})
    assert done.status_code == 200 and "进展情况已记录" in done.text
    uploaded = web.post(f"{WS_ISSUE}/evidence?csrf={csrf}", data={"csrf": csrf, "note": "纪要"},
                        files={"file": ("纪要.pdf", b"%PDF-1.4 " + b"m" * (3 * MB // 2))})
    assert uploaded.status_code == 200 and "已上传：纪要.pdf" in uploaded.text  # 1.5 MB: past the form limit, an upload
    by_api = httpx.post(f"{board.base}{API_ISSUE}/evidence", headers=bearer, timeout=30,
                        files={"file": ("记录.pdf", b"%PDF-1.4 record")})
    assert by_api.status_code == 201, by_api.text
    # one byte over the evidence limit fits the body's allowance: the handler's own check refuses it
    too_big = web.post(f"{WS_ISSUE}/evidence?csrf={csrf}", data={"csrf": csrf},
                       files={"file": ("大.pdf", b"x" * (EVIDENCE_MAX + 1))})
    assert too_big.status_code == 400 and "超过佐证材料大小上限" in too_big.text  # the page reads it in Chinese
    kept = cli("issue", "show", f"{LEDGER}/7", "--json").json["evidence"]
    assert sorted(e["file_name"] for e in kept) == ["纪要.pdf", "记录.pdf"]
    nothing_kept(project, board)
    web.close()


@pytest.mark.parametrize(("public_url", "hsts"), [("https://duban.example.org", True),
                                                  ("http://127.0.0.1:8790", False), ("", False)])
def test_hsts_only_under_https(project, cli, public_url, hsts):
    from engine.app.http.app import create_app

    config = project / "config.toml"
    if public_url:
        config.write_text(config.read_text(encoding="utf-8") + f'\n[board]\npublic_url = "{public_url}"\n',
                          encoding="utf-8")
    assert cli("init").code == 0
    with serving(create_app(site_for(config))) as base:
        answers = [httpx.get(f"{base}/healthz", timeout=10), httpx.get(f"{base}/ws/login", timeout=10),
                   httpx.get(f"{base}/api/v1/me", timeout=10),
                   httpx.post(f"{base}/", content=b"x" * 100, timeout=10),  # refused before the application
                   httpx.post(f"{base}/api/v1/issues/a/1/progress", json={"note": "x"}, timeout=10)]
    assert [a.status_code for a in answers] == [200, 200, 401, 413, 401]
    for answer in answers:
        assert answer.headers.get("strict-transport-security") == ("max-age=31536000" if hsts else None)
        assert answer.headers["x-content-type-options"] == "nosniff"
