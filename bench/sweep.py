"""The reminder sweep of duban against raw sqlite3 doing the same indexed work, in one run.

Run by hand from the project root:

    .venv/bin/python bench/sweep.py --sizes 100000 1000000 --due 1000 --repeat 5
    .venv/bin/python bench/sweep.py --sizes 100000 --profile     # also cProfile one warm sweep

For each size N a database is built once in a temporary folder: duban's migrations (db.upgrade),
then duban's own import of a tiny CSV (so the ledger row and the shipped workflow version are what
duban writes), then N synthetic issues bulk-inserted with raw sqlite3 into that ledger / workflow.
Exactly ``--due`` of them (spread evenly over the table) are planned / in_progress with a deadline
that makes the sweep at T write a reminder (overdue by 1-250 working days, due today, or 1/3/5
working days before), last swept the working day before, with next_remind_at as duban's planner
computes it (09:00 Beijing today, <= T). The others have next_remind_at in the future, again as the
planner computes it (future deadlines, long-term items with a recent check-in); ``--null-share``
turns a share of them into identified / completed issues with no next_remind_at, as a real ledger has.

Each timed run starts from a fresh copy of the prepared file (shutil.copy), so every run sees the
same due rows:

- duban warm: ``Sweeper(runtime, sessions).sweep(T)`` with a Runtime that has already swept once
  (at T - 5 min, on another copy) as a long-lived process would have; the timed instants differ
  from the warm-up's (T + r seconds), so the now-dependent planner caches miss as on a new day.
- duban cold: a new Runtime(load_config(...)) for the same call (first sweep of a process).
- raw: stdlib sqlite3, same PRAGMAs, BEGIN IMMEDIATE; SELECT the due rows by next_remind_at <= T
  joined with ledgers (ORDER BY next_remind_at LIMIT batch), INSERT … ON CONFLICT(dedupe_key) DO
  NOTHING one keyed reminder per row (same columns as duban, JSON text for recipients / details),
  UPDATE remind_after / next_remind_at, COMMIT; batches until one comes back short, then the empty
  select of due duty occurrences duban also makes.

Engines and connections are opened (PRAGMAs set) before the clock starts, as in a daemon, and
gc.collect() runs before each timed sweep (on both sides) so no run pays for the last one's garbage.
The raw reminder's details carry what duban's sweep puts there (title, ledger, ref, state, leader,
department, area, category, escalation level). Medians
are reported with the ratios; a full table scan (LIKE on the title) is timed for contrast, and the
plan SQLite picks for duban's own SELECT (captured from the engine) is printed. Figures also go to
bench/out/sweep.json.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gc
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import machine  # bench/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "bishan-keji-2022.csv"
HEADERS = ["序号", "方面", "问题类别", "具体问题", "整改措施", "责任领导", "责任科室", "整改时限", "整改状态"]
PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON",
           "PRAGMA busy_timeout=30000")
UTC = dt.UTC
FMT = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy's SQLite DateTime stores an instant (naive UTC here)
BEIJING = dt.timezone(dt.timedelta(hours=8))
# A Tuesday 09:30 in Beijing: the 09:00 reminders of the day have fallen due; the previous sweep ran
# on Monday at 09:30. Not in December (the sweep's calendar check would add a reminder then).
T = dt.datetime(2026, 6, 16, 9, 30, tzinfo=BEIJING).astimezone(UTC)
PREVIOUS = T - dt.timedelta(days=1)


def stamp(instant: dt.datetime | None) -> str | None:
    return None if instant is None else instant.astimezone(UTC).replace(tzinfo=None).strftime(FMT)


def runtime():
    from engine.config import load_config
    from engine.runtime import Runtime

    return Runtime(load_config(ROOT / "config.toml"))


def raw_connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, isolation_level=None)
    for p in PRAGMAS:
        con.execute(p)
    return con


def drop_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


# --- building the database -----------------------------------------------------------------------

def build(path: Path, n: int, due: int, null_share: float) -> dict:
    """duban's schema and ledger/workflow rows, then n synthetic issues by raw bulk insert."""
    from engine.ledger.importer import import_ledger
    from engine.store import db

    t0 = time.perf_counter()
    with SAMPLE.open(encoding="utf-8-sig", newline="") as fh:
        sample = list(csv.DictReader(fh))
    rt = runtime()
    engine = db.make_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    tiny = path.parent / "巡察整改台账.csv"  # the ledger's name is the file's stem
    with tiny.open("w", encoding="utf-8-sig", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(HEADERS)
        for s in sample[:3]:
            out.writerow([s[h] for h in HEADERS[:-1]] + ["已完成"])
    with db.transaction(db.session_factory(engine)) as session:
        import_ledger(session, rt, tiny, now=T - dt.timedelta(days=60),
                      workflow_name=rt.config.workflows.default)
    engine.dispose()

    con = raw_connect(path)
    ledger_id, = con.execute("SELECT id FROM ledgers").fetchone()
    workflow_id, content_hash = con.execute("SELECT id, content_hash FROM workflows").fetchone()
    wf = rt.registry.file(rt.config.workflows.default).definition
    core, cal = rt.core, rt.calendar
    today = rt.calendar.local_date(T)
    since = T - dt.timedelta(days=60)
    checkin_state = wf.checkins.state if wf.checkins else None

    plans: dict[tuple, str | None] = {}

    def next_remind(state: str, deadline: dt.date | None, after: dt.datetime, checkin: dt.datetime | None) -> str | None:
        key = (state, deadline, after, checkin)
        if key not in plans:
            track = core.issue_track(wf, content_hash, state, deadline, None, cal.local_date(since),
                                     None if checkin is None else cal.local_date(checkin))
            plans[key] = None if track is None else stamp(core.planner.next_after(track, after))
        return plans[key]

    step = n // due
    due_at = {i * step for i in range(due)}
    k_cycle = [("overdue", None)] * 6 + [("due", 0), ("before", 1), ("before", 3), ("before", 5)]
    null_every = round(1 / null_share) if null_share else 0
    s_since = stamp(since)

    def rows():
        for i in range(n):
            s = sample[i % len(sample)]
            checkin = None
            if i in due_at:
                j = i // step
                kind, ahead = k_cycle[j % len(k_cycle)]
                k = -(1 + (j * 7) % 250) if kind == "overdue" else ahead  # working days from today to the deadline
                deadline = cal.add_workdays(today, k)
                state = ("planned", "in_progress")[j % 2]
                after = PREVIOUS
                nxt = next_remind(state, deadline, after, None)
                assert nxt is not None and nxt <= stamp(T), (state, deadline, nxt)
            elif null_every and i % null_every == 0:
                state, deadline, after, nxt = ("identified", "completed")[i % 2], None, PREVIOUS, None
            else:
                after = PREVIOUS
                if i % 5 == 4 and checkin_state:  # a long-term item checked in within the last quarter
                    state, deadline = checkin_state, None
                    checkin = T - dt.timedelta(days=1 + i % 80)
                else:  # a deadline 8 working days to two years ahead
                    state, deadline = ("planned", "in_progress")[i % 2], cal.add_workdays(today, 8 + (i * 7919) % 480)
                nxt = next_remind(state, deadline, after, checkin)
                assert nxt is not None and nxt > stamp(T), (state, deadline, nxt)
            yield (ledger_id, str(i + 1), i, s["方面"], s["问题类别"], f"{s['具体问题']}（{i // len(sample) + 1}）",
                   s["整改措施"], s["责任领导"], s["责任科室"], deadline and deadline.isoformat(), state, workflow_id,
                   s_since, s_since, s_since, nxt, stamp(after), stamp(checkin))

    indexes = con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'issues'"
                          " AND sql IS NOT NULL").fetchall()
    con.execute("BEGIN")
    con.execute("DELETE FROM issues")  # the tiny import's rows: the table holds exactly n
    for name, _ in indexes:  # faster bulk load; recreated from the same DDL below
        con.execute(f"DROP INDEX {name}")
    con.executemany(
        "INSERT INTO issues (ledger_id, ref, position, area, category, title, measures, leader, department, deadline,"
        " state, workflow_id, state_since, extra, created_at, updated_at, next_remind_at, remind_after,"
        " last_checkin_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{}', ?, ?, ?, ?, ?)", rows())
    for _, sql in indexes:
        con.execute(sql)
    con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    facts = {
        "issues": con.execute("SELECT count(*) FROM issues").fetchone()[0],
        "due": con.execute("SELECT count(*) FROM issues WHERE next_remind_at <= ?", (stamp(T),)).fetchone()[0],
        "null_next": con.execute("SELECT count(*) FROM issues WHERE next_remind_at IS NULL").fetchone()[0],
        "occurrences": con.execute("SELECT count(*) FROM duty_occurrences").fetchone()[0],
        "reminders": con.execute("SELECT count(*) FROM reminders").fetchone()[0],
        "indexes": sorted(name for name, _ in indexes),
    }
    con.close()
    assert facts["issues"] == n and facts["due"] == due and facts["reminders"] == 0, facts
    facts["mb"] = path.stat().st_size / 2**20
    facts["build_s"] = time.perf_counter() - t0
    return facts


# --- one sweep each ------------------------------------------------------------------------------

def sweep_duban(path: Path, rt, now: dt.datetime, due: int, capture: list | None = None, prof=None) -> float:
    from sqlalchemy import event

    from engine.reminders.sweep import Sweeper
    from engine.store import db

    engine = db.make_engine(f"sqlite:///{path}")
    if capture is not None:
        event.listen(engine, "before_cursor_execute",
                     lambda conn, cur, sql, params, ctx, many: capture.append((sql, params)) if not many else None)
    with engine.connect():  # open the pooled connection (PRAGMAs) before timing, as a daemon holds it
        pass
    sweeper = Sweeper(rt, db.session_factory(engine))
    gc.collect()  # no collection of earlier runs' garbage inside the timing (the first warm run paid ~50%)
    t0 = time.perf_counter()
    prof and prof.enable()
    result = sweeper.sweep(now)
    prof and prof.disable()
    seconds = time.perf_counter() - t0
    engine.dispose()
    check = sqlite3.connect(path)
    written = check.execute("SELECT count(*) FROM reminders").fetchone()[0]
    left = check.execute("SELECT count(*) FROM issues WHERE next_remind_at <= ?", (stamp(now),)).fetchone()[0]
    check.close()
    assert not result.errors, result.errors[:3]
    assert result.written == due == written and result.examined == due and left == 0, (result, written, left)
    return seconds


def sweep_raw(path: Path, now: dt.datetime, due: int, batch: int) -> float:
    """The same indexed work with the stdlib: select due, insert keyed reminders, move next-due, commit."""
    con = raw_connect(path)
    gc.collect()
    t0 = time.perf_counter()
    bound, created = stamp(now), stamp(now)
    today = (now + dt.timedelta(hours=8)).date()  # Beijing
    at = stamp(dt.datetime.combine(today, dt.time(9), BEIJING))
    occurrence = today.isoformat()
    nxt = stamp(dt.datetime.combine(today + dt.timedelta(days=1), dt.time(9), BEIJING))
    written = examined = 0
    while True:
        con.execute("BEGIN IMMEDIATE")
        rows = con.execute(
            "SELECT i.id, i.ref, i.state, i.deadline, i.state_since, i.last_checkin_at, i.remind_after, i.leader,"
            " i.department, i.title, i.area, i.category, i.workflow_id, i.ledger_id, l.name, l.feedback_date"
            " FROM issues i JOIN ledgers l ON l.id = i.ledger_id"
            " WHERE i.next_remind_at <= ? ORDER BY i.next_remind_at LIMIT ?", (bound, batch)).fetchall()
        reminders, moves = [], []
        for (issue_id, ref, state, deadline, _since, _checkin, _after, leader, department, title, area, category,
             _wf, ledger_id, name, _feedback) in rows:
            days = (today - dt.date.fromisoformat(deadline)).days
            kind = "overdue" if days > 0 else "due" if days == 0 else "before"
            rule = kind if kind != "before" else f"before-{-days}"
            subject = f"{name}/{ref}"
            reminders.append((f"{subject}|{rule}|{occurrence}", at, subject, kind, rule, occurrence,
                              json.dumps([leader, department]), ledger_id, issue_id, None, deadline, max(days, 0),
                              json.dumps({"title": title, "what": "整改时限", "ledger": name, "ref": ref,
                                          "state": state, "leader": leader, "department": department, "area": area,
                                          "category": category, "level": (days > 3) + (days > 10),
                                          "subject_kind": "issue"}), created))
            moves.append((bound, nxt, deadline, deadline, issue_id))
        cur = con.executemany(
            "INSERT INTO reminders (dedupe_key, at, subject, kind, rule, occurrence, recipients, ledger_id, issue_id,"
            " occurrence_id, due, days_overdue, details, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (dedupe_key) DO NOTHING", reminders)
        written += max(cur.rowcount, 0) if reminders else 0
        # as duban, the row's plan: next reminder, due and overdue dates
        con.executemany("UPDATE issues SET remind_after = ?, next_remind_at = ?, due_on = ?, overdue_on = ?"
                        " WHERE id = ?", moves)
        con.execute("COMMIT")
        examined += len(rows)
        if len(rows) < batch:
            break
    con.execute("BEGIN IMMEDIATE")  # duban then looks for due duty occurrences (none here)
    con.execute("SELECT o.id FROM duty_occurrences o JOIN duties d ON d.id = o.duty_id"
                " WHERE o.next_remind_at <= ? AND o.state = 'open' ORDER BY o.next_remind_at LIMIT ?",
                (bound, batch)).fetchall()
    con.execute("COMMIT")
    seconds = time.perf_counter() - t0
    count = con.execute("SELECT count(*) FROM reminders").fetchone()[0]
    con.close()
    assert written == due == count == examined, (written, count, examined)
    return seconds


def full_scan(path: Path) -> tuple[float, int]:
    con = raw_connect(path)
    t0 = time.perf_counter()
    hits = con.execute("SELECT count(*) FROM issues WHERE title LIKE '%x%'").fetchone()[0]
    seconds = time.perf_counter() - t0
    con.close()
    return seconds, hits


def query_plans(path: Path, captured: list) -> list[dict]:
    """EXPLAIN QUERY PLAN of every SELECT duban's sweep ran, with the parameters it ran it with."""
    con = sqlite3.connect(path)
    out, seen = [], set()
    for sql, params in captured:
        if not sql.lstrip().upper().startswith("SELECT") or sql in seen:
            continue
        seen.add(sql)
        plan = [row[3] for row in con.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
        sql = " ".join(sql.split())
        out.append({"table": sql.split(" FROM ", 1)[1].split()[0], "sql": sql, "plan": plan})
    con.close()
    return out


# --- driver --------------------------------------------------------------------------------------

def bench_size(n: int, args, work: Path, warm_rt) -> dict:
    prepared = work / f"prepared-{n}.db"
    print(f"N={n:,}: building …", file=sys.stderr, flush=True)
    facts = build(prepared, n, args.due, args.null_share)
    print(f"  built in {facts['build_s']:.1f} s ({facts['mb']:.0f} MB)", file=sys.stderr, flush=True)
    run = work / "run.db"

    def fresh() -> Path:
        drop_files(run)
        shutil.copy(prepared, run)
        # flush the copy now: the WAL checkpoint at the sweep's commit fsyncs the database file,
        # and must not pay for writing back hundreds of MB the copy left dirty
        with run.open("rb+") as fh:
            os.fsync(fh.fileno())
        return run

    # warm-up of the long-lived runtime (and the statements SQLite is asked to plan)
    captured: list = []
    sweep_duban(fresh(), warm_rt, T - dt.timedelta(minutes=5), args.due, capture=captured)
    plans = query_plans(prepared, captured)
    issue_plan = next(p for p in plans if p["table"] == "issues")
    assert any("ix_issues_next_remind_at" in line for line in issue_plan["plan"]), issue_plan
    raw, warm, cold, scans = [], [], [], []
    for r in range(args.repeat):
        now = T + dt.timedelta(seconds=r)
        raw.append(sweep_raw(fresh(), now, args.due, args.batch))
        warm.append(sweep_duban(fresh(), warm_rt, now, args.due))
        cold.append(sweep_duban(fresh(), runtime(), now, args.due))
        scans.append(full_scan(prepared))
        print(f"  run {r + 1}/{args.repeat}: raw {raw[-1] * 1e3:.1f} ms, duban warm {warm[-1] * 1e3:.1f} ms,"
              f" cold {cold[-1] * 1e3:.1f} ms, scan {scans[-1][0] * 1e3:.0f} ms", file=sys.stderr, flush=True)
    drop_files(run)
    med = statistics.median
    result = {
        "issues": n, "due": args.due, "db": facts,
        "raw_s": med(raw), "duban_warm_s": med(warm), "duban_cold_s": med(cold),
        "ratio_warm": med(warm) / med(raw), "ratio_cold": med(cold) / med(raw),
        "scan_s": med(s for s, _ in scans), "scan_hits": scans[0][1],
        "plans": plans, "runs": {"raw": raw, "duban_warm": warm, "duban_cold": cold, "scan": [s for s, _ in scans]},
    }
    if args.profile:
        result["profile"] = profile(fresh(), warm_rt, T + dt.timedelta(seconds=99), args.due)
        drop_files(run)
    drop_files(prepared)
    return result


def profile(path: Path, rt, now: dt.datetime, due: int, top: int = 20) -> list[str]:
    import cProfile
    import io
    import pstats

    prof = cProfile.Profile()
    seconds = sweep_duban(path, rt, now, due, prof=prof)
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(top)
    text = f"one warm sweep under cProfile: {seconds * 1e3:.1f} ms\n{buf.getvalue()}"
    print(text)
    return text.splitlines()


def report(facts: dict, results: list[dict], args) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=140)
    console.print("machine: " + ", ".join(f"{k} {v}" for k, v in facts.items()))
    console.print(f"sweep instant T = {T.isoformat()} ({T.astimezone(BEIJING):%Y-%m-%d %H:%M} Beijing); "
                  f"{args.due} due; median of {args.repeat}")
    t = Table(title="sweep: duban vs raw sqlite3 (medians)")
    t.add_column("")
    for r in results:
        t.add_column(f"N = {r['issues']:,}", justify="right")
    rows = [
        ("raw sqlite3 sweep", lambda r: f"{r['raw_s'] * 1e3:.1f} ms"),
        ("duban sweep (warm runtime)", lambda r: f"{r['duban_warm_s'] * 1e3:.1f} ms"),
        ("ratio duban warm / raw", lambda r: f"{r['ratio_warm']:.1f}×"),
        ("duban sweep (cold runtime)", lambda r: f"{r['duban_cold_s'] * 1e3:.1f} ms"),
        ("ratio duban cold / raw", lambda r: f"{r['ratio_cold']:.1f}×"),
        ("full scan (title LIKE '%x%')", lambda r: f"{r['scan_s'] * 1e3:.0f} ms"),
        ("database file", lambda r: f"{r['db']['mb']:.0f} MB"),
    ]
    for label, cell in rows:
        t.add_row(label, *(cell(r) for r in results))
    console.print(t)
    if len(results) > 1:
        a, b = results[0], results[-1]
        console.print(f"growth N {a['issues']:,} → {b['issues']:,}: duban warm ×{b['duban_warm_s'] / a['duban_warm_s']:.2f},"
                      f" cold ×{b['duban_cold_s'] / a['duban_cold_s']:.2f}, raw ×{b['raw_s'] / a['raw_s']:.2f},"
                      f" full scan ×{b['scan_s'] / a['scan_s']:.1f}")
    for r in results:
        console.print(f"EXPLAIN QUERY PLAN of the SELECTs duban's sweep ran (N = {r['issues']:,}):", highlight=False)
        for p in r["plans"]:
            console.print(f"  FROM {p['table']}: " + " | ".join(p["plan"]), highlight=False)
    console.print("targets: duban ≤ 3× raw; duban(largest N) / duban(smallest N) < 2×")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--due", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--batch", type=int, default=None, help="raw batch size (default: duban's sweep.BATCH)")
    ap.add_argument("--null-share", type=float, default=0.0,
                    help="share of the not-due issues that are identified/completed with no next_remind_at")
    ap.add_argument("--profile", action="store_true", help="also cProfile one warm duban sweep per size")
    ap.add_argument("--out", default="sweep.json", help="file name under bench/out/ (default: sweep.json)")
    args = ap.parse_args()
    from engine.reminders import sweep as sweep_mod

    args.batch = args.batch or sweep_mod.BATCH
    facts = machine()
    warm_rt = runtime()
    with tempfile.TemporaryDirectory(prefix="duban-sweep-") as tmp:
        results = [bench_size(n, args, Path(tmp), warm_rt) for n in args.sizes]
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / args.out).write_text(json.dumps(
        {"machine": facts, "T": T.isoformat(), "due": args.due, "repeat": args.repeat, "batch": args.batch,
         "null_share": args.null_share, "results": results}, indent=2, ensure_ascii=False), encoding="utf-8")
    report(facts, results, args)
    print(f"figures written to {out / args.out}")


if __name__ == "__main__":
    main()
