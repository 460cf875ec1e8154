"""Outbox delivery of duban against a bare httpx loop posting the same bodies, in one run.

Run by hand from the project root:

    .venv/bin/python bench/delivery.py --messages 10000 --repeat 3
    .venv/bin/python bench/delivery.py --messages 10000 --repeat 1 --profile   # + cProfile one duban run

A loopback HTTP receiver runs in a separate process (multiprocessing, spawn), so its CPU does not
share the sender's GIL: a ThreadingHTTPServer on 127.0.0.1, HTTP/1.1 keep-alive, Nagle off, that
answers every POST with 200 {"ok":true} and counts requests, TCP connections, body bytes and the
Idempotency-Key header of each request. Both sides post to it, and it is asked for its counts (and
reset) after every timed run.

Per repeat (the order of the two alternates between repeats, so neither always runs first):

- duban: a fresh SQLite file (db.upgrade), ``--messages`` pending OutboxMessage rows for the
  webhook channel "hook" bulk-inserted (ORM bulk ``session.execute(insert(OutboxMessage), rows)``),
  each a digest as the pipeline queues it (``dg-`` + 40 hex key, a Chinese subject and text, data
  with three items); the pooled connection is opened before the clock starts, as in a daemon. Timed:
  ``Outbox(sessions, {"hook": build_channel("hook", {"kind": "webhook", "url": URL})}).deliver_due(now)``
  (default batch, no quiet hours, no rate limit: the webhook kind has none). Asserts every message
  was sent (stats, rows, one delivery attempt each) and that the receiver got exactly that many
  requests carrying exactly the rows' keys, each once.
- bare: one ``httpx.Client`` (same timeout, User-Agent and redirect setting as duban's HTTP channels)
  posting the same bodies in a loop: the JSON the webhook channel sends (idempotency_key, recipient,
  address, subject, text, data; ``ensure_ascii=False``, compact separators, serialised inside the
  loop), ``Content-Type: application/json; charset=utf-8`` and ``Idempotency-Key``; each response
  read and its status checked. Same assertions on the receiver's side. The receiver also keeps the
  first body of each run: the two must have the same fields, and send the same number of body bytes.

Both timings include creating the HTTP client and opening its one connection (duban's channel
creates its client on the first send). gc.collect() runs before each timed run. The duban run
counts the transactions and statements it issued (engine events "begin" / "before_cursor_execute").
The JSON records which outbox code was imported (the modules in DELIVERY_PATH: folder and sha256), so another version
can be measured by putting a copy of the package first on PYTHONPATH. An untimed warm-up of
``--warmup`` messages per side runs first (imports, first connections). Medians of ``--repeat`` are
reported as messages per second, with the ratio duban / bare (target: >= 1.0; duban sends up to
``--in-flight`` messages per channel at once, the daemon's default 8; the bare loop one at a time). Figures also go to
bench/out/delivery.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import json
import multiprocessing as mp
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UTC = dt.UTC
BEIJING = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 9, 29, 10, 0, tzinfo=BEIJING).astimezone(UTC)  # a Tuesday morning, working hours
REPLY = b'{"ok":true}'
TARGET = 1.0  # issue #22: ahead of the bare loop, with several sends in flight
# The modules of notifications/ the delivery path runs through, hashed into the JSON's "outbox"
DELIVERY_PATH = ("outbox.py", "leases.py", "lanes.py", "senders.py", "recording.py", "channels/_http.py",
                 "channels/_lines.py", "channels/webhook.py")


# --- the receiver (its own process) --------------------------------------------------------------

def receiver_main(conn) -> None:
    """Serve until told to stop; answer "report" with the counts since the last report."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    lock = threading.Lock()
    state: dict = {}

    def reset() -> None:
        state.update(requests=0, connections=0, bytes=0, keys=[], sample=None, bad=0)

    reset()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive
        disable_nagle_algorithm = True  # headers and body go out as two writes; no 40 ms stalls

        def setup(self) -> None:
            super().setup()
            with lock:
                state["connections"] += 1

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            key = self.headers.get("Idempotency-Key", "")
            with lock:
                state["requests"] += 1
                state["bytes"] += len(body)
                state["keys"].append(key)
                if not key:
                    state["bad"] += 1
                if state["sample"] is None:
                    state["sample"] = (body.decode("utf-8"), self.headers.get("Content-Type", ""))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(REPLY)))
            self.end_headers()
            self.wfile.write(REPLY)

        def log_message(self, format, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    conn.send(server.server_address[1])
    while True:
        command = conn.recv()
        if command == "report":
            with lock:
                keys = state["keys"]
                conn.send({"requests": state["requests"], "connections": state["connections"],
                           "bytes": state["bytes"], "keys": keys, "distinct": len(set(keys)),
                           "sample": state["sample"], "bad": state["bad"]})
                reset()
        elif command == "stop":
            break
    server.shutdown()
    server.server_close()


class Receiver:
    def __init__(self) -> None:
        ctx = mp.get_context("spawn")  # a clean interpreter: nothing of the sender's state
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=receiver_main, args=(child,), daemon=True, name="delivery-receiver")

    def __enter__(self) -> Receiver:
        self._proc.start()
        if not self._conn.poll(30):
            raise RuntimeError("the receiver process did not start")
        self.port = self._conn.recv()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        return self

    def report(self) -> dict:
        self._conn.send("report")
        return self._conn.recv()

    def __exit__(self, *exc: object) -> None:
        self._conn.send("stop")
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)


# --- the messages --------------------------------------------------------------------------------

PEOPLE = ["局长", "副局长", "办公室", "财务科", "审批科", "综合执法大队", "党组书记"]
TITLES = ["窗口服务不规范，群众反映办事等待时间长", "办事流程繁琐，审批环节多", "报销审核不严，存在超标准列支",
          "资产台账不全，账实不符", "“三重一大”事项集体决策记录不完整", "干部队伍建设统筹谋划不够"]


def messages(n: int) -> list[dict]:
    """n outbox rows shaped like the pipeline's digests (key, subject, text, data with three items)."""
    rows = []
    for i in range(n):
        person = PEOPLE[i % len(PEOPLE)]
        key = "dg-" + hashlib.sha256(f"hook\n{person}\n{i}".encode()).hexdigest()[:40]
        items = [{"subject": f"县市场监管局巡察整改台账/{i % 97 + j}", "kind": "overdue" if j == 0 else "before",
                  "rule": "overdue" if j == 0 else f"before-{j * 2 + 1}", "title": TITLES[(i + j) % len(TITLES)],
                  "due": f"2026-10-{13 + j:02d}", "days_overdue": 3 if j == 0 else 0} for j in range(3)]
        lines = [f"{k + 1}. {it['subject']}：{it['title']}（整改时限 {it['due']}）" for k, it in enumerate(items)]
        text = (f"{person}，您好：\n\n您负责的巡察整改事项中有 1 项已逾期、2 项即将到期：\n\n" + "\n".join(lines)
                + "\n\n请及时推进整改并在系统中登记进展，上传佐证材料。\n\n——督办系统")
        rows.append({
            "key": key, "channel": "hook", "recipient": person, "address": f"oa-{i % len(PEOPLE)}",
            "subject": f"督办提醒：{person} 有 3 项整改事项需关注", "text": text, "html": None,
            "data": {"recipient": person, "generated_at": NOW.isoformat(), "items": items},
            "status": "pending", "urgent": False, "attempts": 0, "next_attempt_at": NOW - dt.timedelta(minutes=1),
            "last_error": "", "created_at": NOW - dt.timedelta(minutes=1),
        })
    return rows


def webhook_body(row: dict) -> dict:
    """What notifications/channels/webhook.py posts for a row."""
    return {"idempotency_key": row["key"], "recipient": row["recipient"], "address": row["address"],
            "subject": row["subject"], "text": row["text"], "data": row["data"]}


# --- one run each --------------------------------------------------------------------------------

def check_received(got: dict, keys: list[str], side: str) -> None:
    assert got["requests"] == len(keys), (side, got["requests"], len(keys))
    assert got["distinct"] == len(keys) and set(got["keys"]) == set(keys), (side, got["distinct"])
    assert got["bad"] == 0, (side, got["bad"])


IN_FLIGHT: int | None = None  # --in-flight; None: the outbox's default


def run_duban(work: Path, url: str, rows: list[dict], receiver: Receiver, prof=None) -> tuple[float, dict, dict]:
    from sqlalchemy import event, func, insert, select

    from engine.store import db
    from notifications.channels import build_channel
    from notifications.outbox import DeliveryStats, Outbox
    from notifications.store import DeliveryAttempt, OutboxMessage

    path = work / "delivery.db"
    drop_files(path)
    engine = db.make_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    sessions = db.session_factory(engine)
    with db.transaction(sessions) as session:
        session.execute(insert(OutboxMessage), rows)
    with engine.connect():  # open the pooled connection (PRAGMAs) before timing, as a daemon holds it
        pass
    channel = build_channel("hook", {"kind": "webhook", "url": url})
    outbox = Outbox(sessions, {"hook": channel})
    # how often the run went to the database (a counter per transaction / statement, nothing more)
    db_use = {"transactions": 0, "statements": 0}

    def count(name: str):
        return lambda *a, **k: db_use.__setitem__(name, db_use[name] + 1)

    event.listen(engine, "begin", count("transactions"))
    event.listen(engine, "before_cursor_execute", count("statements"))
    gc.collect()
    t0 = time.perf_counter()
    prof and prof.enable()
    stats = outbox.deliver_due(NOW, in_flight=IN_FLIGHT)
    prof and prof.disable()
    seconds = time.perf_counter() - t0
    used = dict(db_use)  # before the checks below add their own
    channel.close()
    got = receiver.report()
    n = len(rows)
    with sessions() as session:
        by_status = dict(session.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all())
        tries = dict(session.execute(select(DeliveryAttempt.status, func.count()).group_by(DeliveryAttempt.status)).all())
        leased = session.scalar(select(func.count()).where(OutboxMessage.lease_owner.is_not(None)))
    engine.dispose()
    drop_files(path)
    assert stats == DeliveryStats(sent=n), stats
    assert by_status == {"sent": n} and tries == {"sent": n} and leased == 0, (by_status, tries, leased)
    check_received(got, [r["key"] for r in rows], "duban")
    return seconds, got, used


def run_bare(url: str, bodies: list[dict], receiver: Receiver) -> tuple[float, dict]:
    import httpx

    from notifications.channels._http import USER_AGENT

    gc.collect()
    t0 = time.perf_counter()
    with httpx.Client(timeout=10.0, headers={"User-Agent": USER_AGENT}, follow_redirects=False) as client:
        for body in bodies:
            content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            response = client.post(url, content=content, headers={
                "Content-Type": "application/json; charset=utf-8", "Idempotency-Key": body["idempotency_key"]})
            if response.status_code != 200:
                raise RuntimeError(f"bare: HTTP {response.status_code}")
    seconds = time.perf_counter() - t0
    got = receiver.report()
    check_received(got, [b["idempotency_key"] for b in bodies], "bare")
    return seconds, got


def drop_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def same_shape(duban: dict, bare: dict) -> dict:
    """The two sides must post the same thing: same fields, same bytes per request, same content type."""
    d_body, d_type = duban["sample"]
    b_body, b_type = bare["sample"]
    assert list(json.loads(d_body)) == list(json.loads(b_body)), (d_body[:200], b_body[:200])
    assert d_type == b_type, (d_type, b_type)
    assert duban["bytes"] == bare["bytes"], (duban["bytes"], bare["bytes"])
    return {"fields": list(json.loads(d_body)), "content_type": d_type, "bytes_per_request": duban["bytes"] / duban["requests"]}


def profile(work: Path, url: str, rows: list[dict], receiver: Receiver, top: int = 30) -> list[str]:
    import cProfile
    import io
    import pstats

    prof = cProfile.Profile()
    seconds, _, _ = run_duban(work, url, rows, receiver, prof=prof)
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    text = (f"one duban run of {len(rows):,} messages under cProfile: {seconds:.2f} s "
            f"({len(rows) / seconds:,.0f} msg/s)\n{buf.getvalue()}")
    print(text)
    return text.splitlines()


# --- driver --------------------------------------------------------------------------------------

def machine() -> dict:
    import httpx
    import sqlalchemy

    def git(*a: str) -> str:
        return subprocess.run(["git", *a], capture_output=True, text=True, cwd=ROOT).stdout.strip()

    # the code under test: the outbox, the channels, the store (other uncommitted work is not)
    dirty = git("status", "--porcelain", "--untracked-files=no", "notifications", "engine/store").splitlines()
    # which outbox was imported (a copy on PYTHONPATH can stand in for the working tree's)
    import notifications.outbox as outbox_module

    folder = Path(outbox_module.__file__).parent
    digest = hashlib.sha256()
    for name in DELIVERY_PATH:
        path = folder / name
        digest.update(path.read_bytes() if path.exists() else b"")
    return {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version, "sqlalchemy": sqlalchemy.__version__,
            "httpx": httpx.__version__, "cpus": os.cpu_count(), "platform": platform.platform(),
            "commit": git("rev-parse", "--short", "HEAD")
            + (" + uncommitted " + " ".join(line.split()[-1] for line in dirty) if dirty else ""),
            "outbox": f"{folder}/{{{','.join(DELIVERY_PATH)}}} (sha256 {digest.hexdigest()[:12]})"}


def report(facts: dict, result: dict, args) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=140)
    console.print("machine: " + ", ".join(f"{k} {v}" for k, v in facts.items()))
    console.print(f"{args.messages:,} webhook messages to a loopback receiver in its own process; "
                  f"median of {args.repeat}; {result['shape']['bytes_per_request']:.0f} body bytes a request")
    t = Table(title="delivery: duban outbox vs bare httpx loop (medians)")
    for col in ("", "seconds", "messages/s", "connections"):
        t.add_column(col, justify="right" if col else "left")
    t.add_row("bare httpx.Client loop", f"{result['bare_s']:.2f}", f"{result['bare_per_s']:,.0f}",
              str(result["connections"]["bare"]))
    t.add_row("duban Outbox.deliver_due", f"{result['duban_s']:.2f}", f"{result['duban_per_s']:,.0f}",
              str(result["connections"]["duban"]))
    t.add_row("ratio duban / bare (msg/s)", "", f"{result['ratio']:.2f}", "")
    console.print(t)
    runs = result["runs"]
    console.print("runs (s): bare " + ", ".join(f"{s:.2f}" for s in runs["bare"])
                  + "; duban " + ", ".join(f"{s:.2f}" for s in runs["duban"]), highlight=False)
    verdict = "met" if result["ratio"] >= TARGET else "NOT met"
    console.print(f"per message: duban {result['duban_s'] / args.messages * 1e6:.0f} µs, bare "
                  f"{result['bare_s'] / args.messages * 1e6:.0f} µs, duban's extra "
                  f"{(result['duban_s'] - result['bare_s']) / args.messages * 1e6:.0f} µs", highlight=False)
    use = result["duban_db"]
    console.print(f"duban's database work: {use['transactions']:,.0f} transactions, {use['statements']:,.0f} statements"
                  f" ({use['transactions'] / args.messages:.3f} / {use['statements'] / args.messages:.3f} a message)",
                  highlight=False)
    console.print(f"target: duban >= {TARGET:.0%} of bare: {verdict}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=200, help="untimed messages per side before the runs")
    ap.add_argument("--profile", action="store_true", help="also cProfile one duban run (not in the medians)")
    ap.add_argument("--out", default="delivery.json", help="file name under bench/out/ (default: delivery.json)")
    ap.add_argument("--in-flight", type=int, default=None, help="sends per channel at once (default: the outbox's, 8)")
    args = ap.parse_args()
    global IN_FLIGHT
    IN_FLIGHT = args.in_flight
    facts = machine()
    rows = messages(args.messages)
    bodies = [webhook_body(r) for r in rows]
    bare_runs, duban_runs, conns, db_uses = [], [], {"bare": [], "duban": []}, []
    shape = None
    with tempfile.TemporaryDirectory(prefix="duban-delivery-") as tmp, Receiver() as receiver:
        work = Path(tmp)
        print(f"receiver on {receiver.url} (pid in its own process)", file=sys.stderr, flush=True)
        warm = rows[: args.warmup]
        run_bare(receiver.url, bodies[: args.warmup], receiver)
        run_duban(work, receiver.url, warm, receiver)
        for r in range(args.repeat):
            order = ("bare", "duban") if r % 2 == 0 else ("duban", "bare")
            got = {}
            for side in order:
                if side == "bare":
                    seconds, got["bare"] = run_bare(receiver.url, bodies, receiver)
                    bare_runs.append(seconds)
                else:
                    seconds, got["duban"], use = run_duban(work, receiver.url, rows, receiver)
                    duban_runs.append(seconds)
                    db_uses.append(use)
            shape = same_shape(got["duban"], got["bare"])
            for side in conns:
                conns[side].append(got[side]["connections"])
            print(f"  run {r + 1}/{args.repeat}: bare {bare_runs[-1]:.2f} s ({args.messages / bare_runs[-1]:,.0f}/s),"
                  f" duban {duban_runs[-1]:.2f} s ({args.messages / duban_runs[-1]:,.0f}/s)", file=sys.stderr, flush=True)
        prof_lines = profile(work, receiver.url, rows, receiver) if args.profile else None
    med = statistics.median
    result = {
        "messages": args.messages, "repeat": args.repeat, "shape": shape,
        "bare_s": med(bare_runs), "duban_s": med(duban_runs),
        "bare_per_s": args.messages / med(bare_runs), "duban_per_s": args.messages / med(duban_runs),
        "ratio": med(bare_runs) / med(duban_runs), "target": TARGET, "in_flight": args.in_flight,
        "connections": {side: max(c) for side, c in conns.items()},
        "duban_db": {k: med(u[k] for u in db_uses) for k in ("transactions", "statements")},
        "runs": {"bare": bare_runs, "duban": duban_runs},
    }
    if prof_lines is not None:
        result["profile"] = prof_lines
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / args.out).write_text(json.dumps({"machine": facts, "now": NOW.isoformat(), **result}, indent=2,
                                           ensure_ascii=False), encoding="utf-8")
    report(facts, result, args)
    print(f"figures written to {out / args.out}")


if __name__ == "__main__":
    main()
