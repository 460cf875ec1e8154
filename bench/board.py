"""The board's pages, the ICS feed, the report and ``duban --help``, each beside raw SQL computing the same figures.

Run by hand from the project root:

    .venv/bin/python bench/board.py --sizes 10000 100000 1000000 --repeat 3
    .venv/bin/python bench/board.py --sizes 1000000 --ledger-size 50000    # 1M in 20 ledgers

For each size N a SQLite database is built once (cached in bench/out/board-N-S.db): duban's
migrations, then N issues imported with duban's own ``import_ledger`` as ledgers of ``--ledger-size``
issues (5,000 by default: 20 ledgers at 100k, 200 at 1M), rows cycled from the shipped example
ledger with deadlines over 2026-06 … 2027-06 and every status word (so there are overdue,
upcoming, completed and long-term items, and look-backs for the long-term ones); then a tenth of
the issues get a history entry (a transition on some day of 2026), written with raw sqlite3.
Duty occurrences are stored by duban's duty sync. "Now" is 2026-12-01 10:00 Beijing.

Timed (median of ``--repeat``, each after one untimed warm-up), through the real HTTP application
on uvicorn on 127.0.0.1 and httpx:

| page | duban | raw baseline (stdlib sqlite3, same file) |
| --- | --- | --- |
| issue | ``/issues/L0000/2500`` | the issue row, its history, evidence and look-backs by issue id |
| one ledger | ``/?ledger=L0000`` | area × state counts, the history grouped by day, overdue / upcoming counts and top 50 |
| whole board | ``/`` | the same for the first page of ledgers and all ledgers' overdue / upcoming |
| department ICS | ``/calendar.ics?department=办公室`` with and without ``&ledger=L0000`` | its open items |
| md report | ``build_report`` + ``render_report`` of one ledger | its issues, measures, evidence, as markdown |

plus the size of each page, the process's peak RSS, and ``duban --help`` beside ``python -c "import
sqlalchemy"`` and ``python -c pass`` (subprocesses, median of 5). Figures go to bench/out/board.json.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import machine  # bench/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
SAMPLE = ROOT / "examples" / "bishan-keji-2022.csv"
HEADERS = ["序号", "方面", "问题类别", "具体问题", "整改措施", "责任领导", "责任科室", "整改时限", "整改状态"]
WORDS = ["整改中"] * 6 + ["待整改"] * 2 + ["已制定方案"] * 2 + ["已完成"] * 7 + ["长期坚持"] * 3
DEPARTMENTS = ["办公室", "财务室", "科技管理科", "人事组", "机关党支部", "综合科", "法规科", "规划科", "成果科",
               "办公室、财务室"]  # ten or so departments, one cell naming two
AT = "2026-12-01T10:00+08:00"
NOW = dt.datetime.fromisoformat(AT)


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def config_for(path: Path):
    from engine.config import Config

    return Config.model_validate({"database": {"url": f"sqlite:///{path}"},
                                  "workflows": {"paths": [str(ROOT / "workflows")]},
                                  "duties": {"paths": [str(ROOT / "workflows" / "duties")]}})


# -- building -------------------------------------------------------------------------------------


def build(path: Path, n: int, ledger_size: int) -> dict:
    from engine.ledger.importer import import_ledger
    from engine.runtime import Runtime
    from engine.store import db

    if path.exists():
        return {"built": "cached"}
    started = time.perf_counter()
    with SAMPLE.open(encoding="utf-8-sig", newline="") as fh:
        sample = list(csv.DictReader(fh))
    tmp = path.with_suffix(".building")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    runtime = Runtime(config_for(tmp))
    engine = db.make_engine(f"sqlite:///{tmp}")
    db.upgrade(engine)
    sessions = db.session_factory(engine)
    imported_at = NOW - dt.timedelta(days=200)
    with db.transaction(sessions) as s:
        runtime.registry.sync_all(s, imported_at)
        runtime.duty_book.sync(s, runtime.duty_definitions(), imported_at)
    rng = random.Random(7)
    first_day = dt.date(2026, 6, 1)
    for number in range(max(1, n // ledger_size)):
        csv_path = tmp.parent / f"L{number:04d}.csv"
        with csv_path.open("w", encoding="utf-8", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(HEADERS)
            for i in range(1, min(ledger_size, n) + 1):
                s = sample[i % len(sample)]
                deadline = first_day + dt.timedelta(days=rng.randrange(0, 395))
                out.writerow([i, s["方面"], s["问题类别"], f"{s['具体问题']}（{i}）", s["整改措施"], s["责任领导"],
                              DEPARTMENTS[i % len(DEPARTMENTS)], deadline.isoformat(), WORDS[i % len(WORDS)]])
        with db.transaction(sessions) as s:
            import_ledger(s, runtime, csv_path, now=imported_at, ledger_name=f"L{number:04d}",
                          feedback_date=dt.date(2026, 5, 1), workflow_name="inspection-rectification",
                          unit=f"单位{number}")
        csv_path.unlink()
    engine.dispose()
    con = sqlite3.connect(tmp)
    rows = []
    for issue_id, state in con.execute("SELECT id, state FROM issues WHERE id % 10 = 0"):
        at = dt.datetime(2026, 6, 1, 2) + dt.timedelta(days=rng.randrange(0, 180), minutes=rng.randrange(600))
        rows.append((issue_id, at.strftime("%Y-%m-%d %H:%M:%S.%f"), "bench", "start", "planned", state, ""))
    con.executemany("INSERT INTO history (issue_id, at, by, trigger, from_state, to_state, note) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    tmp.rename(path)
    return {"built": round(time.perf_counter() - started, 1)}


# -- the raw baselines ------------------------------------------------------------------------------


def issue_ref(n: int, ledger_size: int) -> str:
    """The issue whose page is timed: row 2,500 of the first ledger, its middle row in a smaller one."""
    return str(min(2500, max(1, min(n, ledger_size) // 2)))


def raw_issue(con: sqlite3.Connection, ref: str) -> int:
    (issue_id,) = con.execute("SELECT i.id FROM issues i JOIN ledgers l ON l.id = i.ledger_id "
                              "WHERE l.name = 'L0000' AND i.ref = ?", (ref,)).fetchone()
    n = len(con.execute("SELECT * FROM issues WHERE id = ?", (issue_id,)).fetchall())
    n += len(con.execute("SELECT * FROM history WHERE issue_id = ? ORDER BY at, id", (issue_id,)).fetchall())
    n += len(con.execute("SELECT id, file_name FROM evidence WHERE issue_id = ?", (issue_id,)).fetchall())
    n += len(con.execute("SELECT * FROM duty_occurrences WHERE issue_id = ?", (issue_id,)).fetchall())
    return n


def _ledger_figures(con: sqlite3.Connection, ledger_id: int) -> int:
    n = len(con.execute("SELECT area, state, count(*) FROM issues WHERE ledger_id = ? GROUP BY area, state",
                        (ledger_id,)).fetchall())
    n += len(con.execute("SELECT CAST(strftime('%s', h.at) AS INTEGER) / 900, h.from_state, h.to_state, count(*) "
                         "FROM history h JOIN issues i ON i.id = h.issue_id WHERE i.ledger_id = ? "
                         "GROUP BY 1, 2, 3", (ledger_id,)).fetchall())
    return n


def _agenda(con: sqlite3.Connection, where: str, args: tuple) -> int:
    today = NOW.date().isoformat()
    n = 0
    for window in ("overdue_on <= ?", "overdue_on > ? AND due_on <= date(?, '+14 days')"):
        values = (today,) if window.count("?") == 1 else (today, today)
        n += con.execute(f"SELECT count(*) FROM issues WHERE {where} {window}", (*args, *values)).fetchone()[0]
        n += len(con.execute(f"SELECT * FROM issues WHERE {where} {window} ORDER BY overdue_on, due_on, id LIMIT 50",
                             (*args, *values)).fetchall())
    return n


def raw_ledger(con: sqlite3.Connection) -> int:
    (ledger_id,) = con.execute("SELECT id FROM ledgers WHERE name = 'L0000'").fetchone()
    return _ledger_figures(con, ledger_id) + _agenda(con, "ledger_id = ? AND", (ledger_id,))


def raw_whole(con: sqlite3.Connection) -> int:
    n = 0
    for (ledger_id,) in con.execute("SELECT id FROM ledgers ORDER BY name LIMIT 20").fetchall():
        n += _ledger_figures(con, ledger_id)
    return n + _agenda(con, "", ())


def raw_ics(con: sqlite3.Connection, ledger: bool) -> int:
    sql = ("SELECT i.* FROM issues i JOIN issue_departments d ON d.issue_id = i.id "
           "WHERE d.department = '办公室' AND i.due_on IS NOT NULL")
    if ledger:
        sql += " AND i.ledger_id = (SELECT id FROM ledgers WHERE name = 'L0000')"
    # as the feed: the earliest due first, at most 2,000 (and one to know there are more)
    return len(con.execute(sql + " ORDER BY i.overdue_on, i.due_on, i.id LIMIT 2001").fetchall())


def raw_report(con: sqlite3.Connection) -> int:
    (ledger_id,) = con.execute("SELECT id FROM ledgers WHERE name = 'L0000'").fetchone()
    lines = []
    evidence = dict(con.execute("SELECT issue_id, count(*) FROM evidence e JOIN issues i ON i.id = e.issue_id "
                                "WHERE i.ledger_id = ? GROUP BY issue_id", (ledger_id,)).fetchall())
    for issue_id, area, category, title, measures, state in con.execute(
            "SELECT id, area, category, title, measures, state FROM issues WHERE ledger_id = ? "
            "ORDER BY position, id", (ledger_id,)):
        lines.append(f"#### {area} {category}\n（{issue_id}）关于“{title}”问题的整改情况。\n{measures}\n"
                     f"整改状态：{state}；佐证材料：{evidence.get(issue_id, 0)}份。\n")
    return len("\n".join(lines))


# -- timing ---------------------------------------------------------------------------------------


def median_of(repeat: int, work) -> tuple[float, object]:
    work()  # warm-up: caches, connections, templates
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def measure(path: Path, repeat: int, ref: str = "2500") -> dict:
    import httpx

    from engine.app.http.app import Site, create_app
    from engine.app.http.server import HttpServer
    from engine.clock import FixedClock
    from engine.issues.queries import find_ledger
    from engine.report.build import build_report
    from engine.report.render import render_report
    from engine.runtime import Runtime
    from engine.store import db

    config = config_for(path)
    runtime = Runtime(config)
    engine = db.make_engine(config.database.url)
    readers = db.read_factory(engine)
    site = Site(runtime=lambda: runtime, sessions=readers, clock=FixedClock(NOW.astimezone(dt.UTC)))
    server = HttpServer(create_app(site), "127.0.0.1:0")
    server.start()
    con = sqlite3.connect(path)
    out: dict = {}
    try:
        with httpx.Client(base_url=f"http://{server.address}", timeout=600) as web:
            def page(url: str):
                def get():
                    answer = web.get(url)
                    assert answer.status_code == 200, (url, answer.status_code, answer.text[:300])
                    return len(answer.content)
                return get

            pages = {"issue": (f"/issues/L0000/{ref}", lambda: raw_issue(con, ref)),
                     "ledger board": ("/?ledger=L0000", lambda: raw_ledger(con)),
                     "whole board": ("/", lambda: raw_whole(con)),
                     "ICS dept, one ledger": ("/calendar.ics?department=办公室&ledger=L0000",
                                              lambda: raw_ics(con, True)),
                     "ICS dept, all ledgers": ("/calendar.ics?department=办公室", lambda: raw_ics(con, False))}
            for name, (url, raw) in pages.items():
                seconds, size = median_of(repeat, page(url))
                raw_seconds, _ = median_of(repeat, raw)
                out[name] = {"url": url, "seconds": round(seconds, 4), "bytes": size,
                             "raw_seconds": round(raw_seconds, 5)}

        def report():
            with readers() as session:
                ledger = find_ledger(session, "L0000")
                assert ledger is not None
                data = build_report(session, runtime, ledger, NOW)
                session.rollback()
            return len(render_report(data, "md", runtime.config))

        seconds, size = median_of(repeat, report)
        raw_seconds, _ = median_of(repeat, lambda: raw_report(con))
        issues = con.execute("SELECT count(*) FROM issues i JOIN ledgers l ON l.id = i.ledger_id "
                             "WHERE l.name = 'L0000'").fetchone()[0]
        out["md report"] = {"issues": issues, "seconds": round(seconds, 3), "bytes": size,
                            "raw_seconds": round(raw_seconds, 4)}
    finally:
        server.close()
        con.close()
        engine.dispose()
    out["peak_rss_mb"] = round(peak_rss_mb())
    return out


def startup(repeat: int = 5) -> dict:
    def run(args: list[str]) -> float:
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            subprocess.run(args, check=True, capture_output=True, cwd=ROOT)
            times.append(time.perf_counter() - started)
        return round(statistics.median(times), 3)

    duban = str(Path(sys.executable).parent / "duban")
    return {"duban --help": run([duban, "--help"]),
            "python -c 'import sqlalchemy'": run([sys.executable, "-c", "import sqlalchemy"]),
            "python -c pass": run([sys.executable, "-c", "pass"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--ledger-size", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default="board.json")
    parser.add_argument("--db-dir", type=Path, default=OUT,
                        help="where the built databases are kept and reused (default: bench/out)")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    sys.path.insert(0, str(ROOT))
    results: dict = {"machine": machine(), "ledger_size": args.ledger_size, "sizes": {}}
    for n in args.sizes:
        path = args.db_dir / f"board-{n}-{args.ledger_size}.db"
        built = build(path, n, args.ledger_size)
        figures = measure(path, args.repeat, issue_ref(n, args.ledger_size))
        results["sizes"][n] = {**built, **figures}
        print(f"\n{n:,} issues in ledgers of {args.ledger_size:,} ({built['built']}):")
        for name, f in figures.items():
            if isinstance(f, dict):
                print(f"  {name:<24} {f['seconds']*1000:9.1f} ms  {f['bytes']/1024:9.1f} KiB   "
                      f"raw SQL {f['raw_seconds']*1000:8.2f} ms")
        print(f"  peak RSS {figures['peak_rss_mb']} MB")
    results["startup"] = startup()
    print("\nstartup (median of 5):", ", ".join(f"{k} {v:.3f} s" for k, v in results["startup"].items()))
    (OUT / args.out).write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
