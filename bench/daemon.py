"""The daemon's footprint with a million issues: RSS, idle CPU between sweeps, start to first sweep.

Run by hand from the project root:

    .venv/bin/python bench/daemon.py                          # 1M issues, 1,000 due, 30 s idle window
    .venv/bin/python bench/daemon.py --issues 100000 --idle 10

A SQLite database is built in a temporary folder: ``duban init`` and a three-row ``duban ledger
import`` (so the ledger, workflow and duty rows are duban's own), then N issues bulk-inserted with
raw sqlite3: all in progress with deadlines 8 to 480 working days ahead and next_remind_at as duban's
planner computes it, except ``--due`` of them, overdue, whose reminder is due now. Then ``duban run``
starts with the default intervals (sweep 60 s, deliver 10 s, elect 5 s) and a file channel:

* **first sweep**: from just before the process is spawned to the ``event=sweep`` line's timestamp
  (Python start, imports, schema check, duty sync, and a sweep writing and routing ``--due``
  reminders). Target < 3 s.
* **idle CPU**: utime + stime from /proc/PID/stat over ``--idle`` seconds starting a few seconds after
  the first sweep, before the second one (so between sweeps: the delivery and election ticks only).
  Target < 1 % of a core.
* **RSS**: VmRSS and VmHWM (peak) from /proc/PID/status at the end. Target < 150 MB.
* **/metrics while it works**: scraped every ``--scrape-every`` seconds from start to the end, first
  sweep and catch-up included (median, p95, max, and the slowest's time since start); Prometheus
  gives up on a scrape after 10 s.

For scale, the same run measures two baselines: a bare interpreter, and one that only imports what
the daemon imports (RSS and the time the imports take). Figures also go to bench/out/daemon.json.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "bishan-keji-2022.csv"
HEADERS = ["序号", "方面", "问题类别", "具体问题", "整改措施", "责任领导", "责任科室", "整改时限", "整改状态"]
DUBAN = [sys.executable, "-c", "from engine.app.cli.main import entry; entry()"]
UTC = dt.UTC
FMT = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy's SQLite DateTime stores an instant (naive UTC)
CLK_TCK = os.sysconf("SC_CLK_TCK")
PEOPLE = ["党组书记", "分管副局长", "办公室", "科技管理科", "财务室", "人事组", "机关党支部", "第一责任人",
          "派驻纪检监察组"]


def stamp(instant: dt.datetime | None) -> str | None:
    return None if instant is None else instant.astimezone(UTC).replace(tzinfo=None).strftime(FMT)


def write_config(work: Path, port: int) -> Path:
    lines = ["[database]", f'url = "sqlite:///{work / "duban.db"}"',
             "[workflows]", f'paths = ["{ROOT / "workflows"}"]', "[duties]", f'paths = ["{ROOT / "workflows" / "duties"}"]',
             "[notifications]", f'routing_paths = ["{ROOT / "workflows" / "routing"}"]',
             "[channels.audit]", 'kind = "file"', f'path = "{work / "messages.jsonl"}"',
             "[daemon]", f'listen = "127.0.0.1:{port}"']
    for person in PEOPLE:
        lines += [f'[recipients."{person}"]', f'audit = "{person}"']
    config = work / "config.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def cli(config: Path, *args: str) -> None:
    subprocess.run([*DUBAN, "--config", str(config), *args], check=True, capture_output=True)


def build(config: Path, work: Path, n: int, due: int) -> dict:
    """duban's own rows from the CLI, then n issues by raw bulk insert (``due`` of them due now)."""
    t0 = time.perf_counter()
    now = dt.datetime.now(UTC)
    with SAMPLE.open(encoding="utf-8-sig", newline="") as fh:
        sample = list(csv.DictReader(fh))
    tiny = work / "tiny.csv"
    with tiny.open("w", encoding="utf-8-sig", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(HEADERS)
        for s in sample[:3]:
            out.writerow([s[h] for h in HEADERS[:-1]] + ["已完成"])
    cli(config, "init")
    cli(config, "ledger", "import", str(tiny), "--ledger", "bench", "--feedback-date",
        str((now - dt.timedelta(days=200)).date()))

    from engine.config import load_config
    from engine.runtime import Runtime

    rt = Runtime(load_config(config))
    con = sqlite3.connect(work / "duban.db", isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    ledger_id, = con.execute("SELECT id FROM ledgers").fetchone()
    workflow_id, content_hash = con.execute("SELECT id, content_hash FROM workflows ORDER BY id DESC").fetchone()
    wf = rt.registry.file(rt.config.workflows.default).definition
    cal, today = rt.calendar, rt.calendar.local_date(now)
    since = now - dt.timedelta(days=30)
    after = now - dt.timedelta(days=14)  # last swept two weeks ago: the due rows' reminder has come
    plans: dict[dt.date, str | None] = {}

    def next_remind(deadline: dt.date, when: dt.datetime) -> str | None:
        key = (deadline, when)
        if key not in plans:
            track = rt.core.issue_track(wf, content_hash, "in_progress", deadline, None, cal.local_date(since), None)
            plans[key] = None if track is None else stamp(rt.planner.next_after(track, when))
        return plans[key]

    step = max(1, n // max(due, 1))
    s_since, s_after, s_now = stamp(since), stamp(after), stamp(now)

    def rows():
        for i in range(n):
            s = sample[i % len(sample)]
            if due and i % step == 0 and i // step < due:
                deadline = cal.add_workdays(today, -(5 + i % 40))
                nxt = next_remind(deadline, after)
                last = s_after
            else:
                deadline = cal.add_workdays(today, 8 + (i * 7919) % 480)
                nxt, last = next_remind(deadline, now), s_now
            yield (ledger_id, str(i + 1), i, s["方面"], s["问题类别"], f"{s['具体问题']}（{i + 1}）", s["整改措施"],
                   s["责任领导"], s["责任科室"], deadline.isoformat(), "in_progress", workflow_id, s_since, s_since,
                   s_since, nxt, last)

    indexes = con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'issues'"
                          " AND sql IS NOT NULL").fetchall()
    con.execute("BEGIN")
    con.execute("DELETE FROM issues")
    for name, _ in indexes:  # bulk load without them, then rebuild from the same DDL
        con.execute(f"DROP INDEX {name}")
    con.executemany(
        "INSERT INTO issues (ledger_id, ref, position, area, category, title, measures, leader, department, deadline,"
        " state, workflow_id, state_since, extra, created_at, updated_at, next_remind_at, remind_after)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{}', ?, ?, ?, ?)", rows())
    for _, sql in indexes:
        con.execute(sql)
    con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    facts = {"issues": con.execute("SELECT count(*) FROM issues").fetchone()[0],
             "due_now": con.execute("SELECT count(*) FROM issues WHERE next_remind_at <= ?", (s_now,)).fetchone()[0],
             "mb": (work / "duban.db").stat().st_size / 2**20, "build_s": time.perf_counter() - t0}
    con.close()
    return facts


def proc_stat(pid: int) -> tuple[int, dict[str, int]]:
    """CPU ticks (utime + stime) and the kB fields of /proc/PID/status."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    status = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if value.strip().endswith("kB"):
            status[key] = int(value.split()[0])
    return ticks, status


def wait_line(log: Path, pattern: str, timeout: float, proc: subprocess.Popen) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
            if pattern in line:
                return line
        if proc.poll() is not None:
            raise SystemExit(f"the daemon exited with {proc.returncode}:\n{log.read_text()}")
        time.sleep(0.01)
    raise SystemExit(f"no {pattern!r} within {timeout} s:\n{log.read_text()}")


def line_time(line: str) -> float:
    return dt.datetime.fromisoformat(re.search(r"ts=(\S+)", line).group(1)).timestamp()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def baseline(code: str) -> dict:
    """RSS of an interpreter that ran ``code`` and then idles, and how long ``code`` took."""
    script = f"import time, sys; t = time.perf_counter(); {code}; print(time.perf_counter() - t, flush=True); " \
             "time.sleep(30)"
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    seconds = float(proc.stdout.readline())
    _, status = proc_stat(proc.pid)
    proc.kill()
    proc.wait()
    return {"import_s": seconds, "rss_mb": status["VmRSS"] / 1024}


def scrape_figures(scrapes: list[tuple[float, float]]) -> dict:
    took = sorted(t for _, t in scrapes)
    if not took:
        return {"count": 0}
    at, slowest = max(scrapes, key=lambda s: s[1])
    return {"count": len(took), "median_ms": statistics.median(took) * 1e3,
            "p95_ms": took[min(len(took) - 1, int(0.95 * len(took)))] * 1e3, "max_ms": slowest * 1e3,
            "slowest_at_s": at}


def run(args) -> dict:
    with tempfile.TemporaryDirectory(prefix="duban-bench-daemon-") as folder:
        work = Path(folder)
        port = free_port()
        config = write_config(work, port)
        print(f"building {args.issues:,} issues ({args.due:,} due) …", file=sys.stderr, flush=True)
        facts = build(config, work, args.issues, args.due)
        print(f"  built in {facts['build_s']:.1f} s ({facts['mb']:.0f} MB, {facts['due_now']} due now)",
              file=sys.stderr, flush=True)
        log = work / "daemon.log"
        spawned = time.time()
        with log.open("wb") as out:
            proc = subprocess.Popen([*DUBAN, "--config", str(config), "run"], stdout=out, stderr=subprocess.STDOUT)
        scrapes: list[tuple[float, float]] = []  # (seconds since spawn, seconds the scrape took)
        done = threading.Event()

        def scrape_while_running() -> None:
            while not done.wait(args.scrape_every):
                m0 = time.perf_counter()
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as response:
                        response.read()
                except OSError:
                    continue  # not listening yet
                scrapes.append((time.time() - spawned, time.perf_counter() - m0))

        scraper = threading.Thread(target=scrape_while_running, daemon=True)
        try:
            started = wait_line(log, "event=started", 60, proc)
            scraper.start()
            first = wait_line(log, "event=sweep ", args.first_sweep_timeout, proc)
            time.sleep(args.settle)
            ticks0, _ = proc_stat(proc.pid)
            t0 = time.monotonic()
            time.sleep(args.idle)
            ticks1, status = proc_stat(proc.pid)
            elapsed = time.monotonic() - t0
            sweeps = sum(1 for ln in log.read_text(encoding="utf-8").splitlines() if "event=sweep " in ln)
            m0 = time.perf_counter()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
                metrics = response.read().decode()
            metrics_s = time.perf_counter() - m0
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=30) as response:
                health = json.loads(response.read())
            done.set()
            scraper.join(65)
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(15)
        finally:
            done.set()
            if proc.poll() is None:
                proc.kill()
        return {
            "db": facts, "first_sweep": first.split(" event=sweep ", 1)[1],
            "start_to_ready_s": line_time(started) - spawned, "start_to_first_sweep_s": line_time(first) - spawned,
            "idle_window_s": elapsed, "idle_cpu_pct": (ticks1 - ticks0) / CLK_TCK / elapsed * 100,
            "sweeps_in_window": sweeps - 1, "rss_mb": status["VmRSS"] / 1024, "peak_rss_mb": status["VmHWM"] / 1024,
            "metrics_scrape_s": metrics_s, "outbox_depth": re.findall(r'duban_outbox_depth\{status="(\w+)"\} (\S+)',
                                                                       metrics),
            "health": health, "sigterm_exit": code, "scrapes": scrape_figures(scrapes),
            "baseline_bare": baseline("pass"),
            "baseline_imports": baseline("import engine.app.daemon, engine.app.cli.main, notifications.service, "
                                         "notifications.channels.file, psycopg"),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=1000)
    parser.add_argument("--first-sweep-timeout", type=float, default=60,
                        help="seconds to wait for the first sweep (a catch-up of --due 600000 takes minutes)")
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of idle CPU measurement")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds after the first sweep before measuring")
    parser.add_argument("--scrape-every", type=float, default=1.0,
                        help="seconds between /metrics scrapes while the daemon runs (default 1)")
    parser.add_argument("--out", default="daemon.json", help="file name under bench/out/ (default: daemon.json)")
    args = parser.parse_args()
    if args.settle + args.idle >= 55:
        parser.error("--settle + --idle must stay under the 60 s sweep interval (idle means between sweeps)")
    r = run(args)
    r["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(), "sqlite": sqlite3.sqlite_version,
                    "commit": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                             capture_output=True, text=True).stdout.strip()}
    b, i = r["baseline_bare"], r["baseline_imports"]
    sc = r["scrapes"]
    scraped = (f"{sc['count']} scrapes: median {sc['median_ms']:.0f} ms, p95 {sc['p95_ms']:.0f} ms, max "
               f"{sc['max_ms']:.0f} ms ({sc['slowest_at_s']:.0f} s after start)" if sc["count"] else "no scrape")
    print(f"""
duban run with {r['db']['issues']:,} issues in SQLite ({r['db']['mb']:.0f} MB), {r['db']['due_now']} due at start
  start to first sweep   {r['start_to_first_sweep_s']:.2f} s   (target < 3 s; ready after {r['start_to_ready_s']:.2f} s)
    first sweep          {r['first_sweep']}
  idle CPU               {r['idle_cpu_pct']:.2f} % of a core over {r['idle_window_s']:.0f} s, \
{r['sweeps_in_window']} sweep(s) in the window   (target < 1 %)
  RSS                    {r['rss_mb']:.0f} MB now, {r['peak_rss_mb']:.0f} MB peak   (target < 150 MB)
  /metrics scrape        {r['metrics_scrape_s'] * 1000:.0f} ms (outbox depth {dict(r['outbox_depth'])})
  /metrics while running {scraped}
  /healthz               {r['health']['status']} (leader {r['health']['leader']}, role {r['health']['role']})
  SIGTERM                exit {r['sigterm_exit']}
baselines in the same run
  bare python            {b['rss_mb']:.0f} MB RSS
  the daemon's imports   {i['rss_mb']:.0f} MB RSS, {i['import_s']:.2f} s to import""")
    out = ROOT / "bench" / "out" / args.out
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(r, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"  (written to {out})")


if __name__ == "__main__":
    main()
