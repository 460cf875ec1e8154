"""Ledger import, listing and transition speed of duban against raw sqlite3, in one run.

Run by hand from the project root:

    .venv/bin/python bench/ledger_import.py --sizes 10000 100000 1000000 --repeat 3
    .venv/bin/python bench/ledger_import.py --profile 100000   # cProfile one duban import

For each size N a synthetic ledger CSV (the real Chinese headers, values cycled from the sample
ledger, deadlines over 2026-2027, status words of every state) is written once. Each import, duban's
and the raw baseline's, runs in a fresh subprocess (``--child``) into a fresh SQLite file, so its
peak RSS (ru_maxrss) is its own. The raw baseline uses only the stdlib: the same schema as duban's
migrations (DDL copied from an upgraded database, so the next_remind_at index is there too), the
same PRAGMAs, csv + executemany, one transaction; like duban it fills remind_after, next_remind_at,
due_on / overdue_on, the issue_departments rows (a timestamp string memoised per (state, deadline))
and, since issue #22, the search index's rows (folded text, characters, pairs and scope terms).
On the last duban database, listing by state
and single transitions are timed beside raw sqlite3 doing the same work (the raw transition also
rewrites remind_after / next_remind_at, as duban's re-plan does). Medians are reported; figures also
go to bench/out/ledger_import.json.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import re
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

from common import machine  # bench/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "bishan-keji-2022.csv"
HEADERS = ["序号", "方面", "问题类别", "具体问题", "整改措施", "责任领导", "责任科室", "整改时限", "整改状态"]
PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON",
           "PRAGMA busy_timeout=30000")
TRANSITIONS = 200


def rss_mb() -> float:
    """Peak RSS of this process in MB. On Linux ru_maxrss survives exec, so a child started by
    subprocess reports the parent's peak if that was higher; VmHWM belongs to this address space."""
    try:
        status = Path("/proc/self/status").read_text()
        return int(status.split("VmHWM:")[1].split()[0]) / 1024
    except (OSError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def duban_setup():
    """Config, runtime and the default workflow the way the CLI builds them (imported late: children
    of the raw baseline must load only the stdlib)."""
    from engine.config import load_config
    from engine.runtime import Runtime

    config = load_config(ROOT / "config.toml")
    runtime = Runtime(config)
    wf = runtime.registry.file(config.workflows.default).definition
    return config, runtime, wf


# --- data ----------------------------------------------------------------------------------------

def make_csv(path: Path, n: int, status_words: list[str]) -> None:
    with SAMPLE.open(encoding="utf-8-sig", newline="") as fh:
        sample = list(csv.DictReader(fh))
    start = dt.date(2026, 1, 1)
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(HEADERS)
        for i in range(n):
            s = sample[i % len(sample)]
            out.writerow([i + 1, s["方面"], s["问题类别"], f"{s['具体问题']}（{i // len(sample) + 1}）",
                          s["整改措施"], s["责任领导"], s["责任科室"],
                          (start + dt.timedelta(days=(i * 7919) % 730)).isoformat(),
                          status_words[(i * 31 + i // 7) % len(status_words)]])


def schema_ddl(workdir: Path) -> list[str]:
    """CREATE statements of duban's schema, read from a database upgraded by its migrations."""
    from engine.store import db

    path = workdir / "template.db"
    engine = db.make_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    engine.dispose()
    with sqlite3.connect(path) as con:
        # not SQLite's own tables (the upgrade ends with ANALYZE, and sqlite_stat1 cannot be created by
        # name), nor the search index's FTS5 shadow tables, which its CREATE VIRTUAL TABLE makes itself
        rows = con.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name != 'alembic_version' "
                           "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE 'issue\\_search\\_fts\\_%' "
                           "ESCAPE '\\' ORDER BY type = 'index', rowid").fetchall()
    con.close()
    return [r[0] for r in rows]


# --- children: one import each, reporting its own time and peak RSS ------------------------------

def child_duban(csv_path: Path, db_path: Path, prof=None) -> dict:
    from engine.ledger.importer import import_ledger
    from engine.store import db

    config, runtime, _ = duban_setup()
    engine = db.make_engine(f"sqlite:///{db_path}")
    db.upgrade(engine)
    factory = db.session_factory(engine)
    before = rss_mb()
    t0 = time.perf_counter()
    prof and prof.enable()
    with db.transaction(factory) as session:
        result = import_ledger(session, runtime, csv_path, now=dt.datetime.now(dt.UTC),
                               workflow_name=config.workflows.default)
    prof and prof.disable()
    seconds = time.perf_counter() - t0
    engine.dispose()
    return {"seconds": seconds, "rows": result.created, "rss_mb": rss_mb(), "rss_before_mb": before,
            "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def child_raw(csv_path: Path, db_path: Path, ddl_file: Path) -> dict:
    spec = json.loads(ddl_file.read_text(encoding="utf-8"))
    con = sqlite3.connect(db_path, isolation_level=None)
    for p in PRAGMAS:
        con.execute(p)
    for stmt in spec["ddl"]:
        con.execute(stmt)
    words = spec["words"]
    dated, checkin_state = set(spec["deadline_states"]), spec["checkin_state"]
    before = rss_mb()
    t0 = time.perf_counter()
    stamp = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    now = stamp.isoformat(" ", "microseconds")
    # next_remind_at as duban stores it (naive UTC text), memoised per (state, deadline) as duban's
    # importer memoises its plan: 09:00 Beijing (01:00 UTC) on the deadline, or a check-in 3 months on.
    checkin_at = (stamp + dt.timedelta(days=91)).replace(hour=1, minute=0, second=0, microsecond=0).isoformat(" ", "microseconds")
    plans: dict[tuple, str | None] = {}

    def next_remind(state: str, deadline: str) -> str | None:
        key = (state, deadline)
        if key not in plans:
            plans[key] = (f"{deadline} 01:00:00.000000" if state in dated and deadline else
                          checkin_at if state == checkin_state else None)
        return plans[key]

    def day_after(deadline: str) -> str:  # overdue_on, memoised as duban memoises its plan
        if deadline not in days_after:
            days_after[deadline] = (dt.date.fromisoformat(deadline) + dt.timedelta(days=1)).isoformat()
        return days_after[deadline]

    days_after: dict[str, str] = {}
    split = re.compile(r"[、,，;；/／\s]+")
    departments: list[tuple[int, str]] = []

    con.execute("BEGIN")
    # columns named: a migration that adds one (ledgers' archived_at…) must not break the baseline
    con.execute("INSERT INTO workflows (id, name, content_hash, title, source_path, source, definition, created_at)"
                " VALUES (1, 'wf', 'x', '', '', '', '{}', ?)", (now,))
    con.execute("INSERT INTO ledgers (id, name, unit, feedback_date, workflow_name, headers, created_at, updated_at)"
                " VALUES (1, ?, '', NULL, 'wf', '[]', ?, ?)", (csv_path.stem, now, now))
    with csv_path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        def rows():
            for i, r in enumerate(reader):
                state, deadline = words[r[8]], r[7]
                departments.extend((i + 1, d) for d in dict.fromkeys(p for p in split.split(r[6]) if p))
                planned = state in dated and deadline
                yield (r[0], i + 1, r[1], r[2], r[3], r[4], r[5], r[6], deadline or None, state, now, now, now, now,
                       next_remind(state, deadline), deadline if planned else None,
                       day_after(deadline) if planned else None)

        cur = con.executemany(
            "INSERT INTO issues (ledger_id, ref, position, area, category, title, measures, leader, department,"
            " deadline, state, workflow_id, state_since, extra, created_at, updated_at, remind_after, next_remind_at,"
            " due_on, overdue_on)"
            " VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, '{}', ?, ?, ?, ?, ?, ?)", rows())
        # issue ids are 1..N in this fresh file, in row order
        con.executemany("INSERT INTO issue_departments (issue_id, department) VALUES (?, ?)", departments)
    # the search index (issue #22) as duban fills it: each issue's folded text, its characters and
    # neighbouring pairs and its scope terms, into issue_search (whose triggers fill the FTS5 table)
    by_issue: dict[int, list[str]] = {}
    for issue_id, department in departments:
        by_issue.setdefault(issue_id, []).append(department)
    letters = re.compile(r"[^\W_]+")

    def fold(value: str) -> str:
        return unicodedata.normalize("NFKC", value).lower()

    def terms(text: str) -> set[str]:
        out: set[str] = set()
        for run in letters.findall(text):
            out.update(run)
            out.update(map(str.__add__, run, run[1:]))
        return out

    def search_rows():
        for issue_id, ref, title, measures, leader in con.execute(
                "SELECT id, ref, title, measures, leader FROM issues ORDER BY id"):
            folded, body = fold(title or ""), "\n".join((fold(ref or ""), fold(measures or "")))
            scope = {"ledger1", "leader" + (leader or "").encode().hex(),
                     *("dept" + d.encode().hex() for d in by_issue.get(issue_id, ()))}
            yield issue_id, folded, body, " ".join(sorted(terms(folded) | terms(body) | scope))

    con.executemany("INSERT INTO issue_search (issue_id, title, body, terms) VALUES (?, ?, ?, ?)", list(search_rows()))
    con.execute("COMMIT")
    seconds = time.perf_counter() - t0
    con.close()
    return {"seconds": seconds, "rows": cur.rowcount, "rss_mb": rss_mb(), "rss_before_mb": before,
            "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        sys.exit(f"child {args[0]} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- in-process: listing and transitions on the imported database --------------------------------

def bench_listing(db_path: Path, repeat: int) -> dict:
    from engine.issues.queries import list_issues
    from engine.store import db

    engine = db.make_engine(f"sqlite:///{db_path}")
    factory = db.session_factory(engine)
    orm, raw = [], []
    for _ in range(repeat):
        with db.transaction(factory) as session:
            t0 = time.perf_counter()
            n = sum(1 for _ in list_issues(session, state="in_progress"))
            orm.append(time.perf_counter() - t0)
        con = sqlite3.connect(db_path)
        t0 = time.perf_counter()
        m = len(con.execute("SELECT i.*, l.* FROM issues i JOIN ledgers l ON l.id = i.ledger_id WHERE i.state = ?"
                            " ORDER BY l.name, i.position, i.id", ("in_progress",)).fetchall())
        raw.append(time.perf_counter() - t0)
        con.close()
        assert n == m, (n, m)
    engine.dispose()
    return {"rows": n, "duban_s": statistics.median(orm), "raw_s": statistics.median(raw)}


def bench_transitions(db_path: Path, ledger: str, count: int = TRANSITIONS) -> dict:
    from engine.accounts.actor import SYSTEM
    from engine.issues.service import transition
    from engine.store import db

    _, runtime, _ = duban_setup()
    con = sqlite3.connect(db_path)
    refs = [r[0] for r in con.execute("SELECT ref FROM issues WHERE state = 'planned' ORDER BY id LIMIT ?",
                                      (2 * count + 2,))]
    con.close()
    assert len(refs) == 2 * count + 2, "not enough planned issues (fewer --transitions for a small --sizes)"
    engine = db.make_engine(f"sqlite:///{db_path}")
    factory = db.session_factory(engine)
    orm = []
    for i, ref in enumerate(refs[:count + 1]):  # the first one warms caches and is not counted
        t0 = time.perf_counter()
        with db.transaction(factory) as session:
            transition(session, runtime, f"{ledger}/{ref}", "start", actor=SYSTEM, now=dt.datetime.now(dt.UTC))
        if i:
            orm.append(time.perf_counter() - t0)
    engine.dispose()

    con = sqlite3.connect(db_path)
    for p in PRAGMAS:
        con.execute(p)
    raw = []
    for i, ref in enumerate(refs[count + 1:]):
        t0 = time.perf_counter()
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
        issue_id, state, deadline = con.execute(
            "SELECT i.id, i.state, i.deadline FROM issues i JOIN ledgers l ON l.id = i.ledger_id"
            " WHERE l.name = ? AND i.ref = ?", (ledger, ref)).fetchone()
        # duban re-plans the issue on a move: the raw step also rewrites the indexed next-due column
        con.execute("UPDATE issues SET state = 'in_progress', state_since = ?, updated_at = ?, remind_after = ?,"
                    " next_remind_at = ? WHERE id = ?",
                    (now, now, now, f"{deadline} 01:00:00.000000" if deadline else None, issue_id))
        con.execute("INSERT INTO history (issue_id, at, by, \"trigger\", from_state, to_state, note)"
                    " VALUES (?, ?, 'bench', 'start', ?, 'in_progress', '')", (issue_id, now, state))
        con.commit()
        if i:
            raw.append(time.perf_counter() - t0)
    con.close()

    def stats(xs: list[float]) -> dict:
        return {"median_ms": statistics.median(xs) * 1e3, "p95_ms": statistics.quantiles(xs, n=20)[-1] * 1e3}

    return {"count": count, "duban": stats(orm), "raw": stats(raw)}


# --- driver --------------------------------------------------------------------------------------

def bench_size(n: int, repeat: int, work: Path, ddl_file: Path, words: list[str], transitions: int = TRANSITIONS) -> dict:
    csv_path = work / f"ledger-{n}.csv"
    make_csv(csv_path, n, words)
    duban, raw = [], []
    for r in range(repeat):
        for kind, runs in (("duban", duban), ("raw", raw)):
            db_path = work / f"{kind}-{n}-{r}.db"
            args = (kind, str(csv_path), str(db_path)) + ((str(ddl_file),) if kind == "raw" else ())
            runs.append(run_child(*args))
            assert runs[-1]["rows"] == n, runs[-1]
            if not (kind == "duban" and r == repeat - 1):
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{db_path}{suffix}").unlink(missing_ok=True)
        print(f"  N={n} run {r + 1}/{repeat}: duban {duban[-1]['seconds']:.2f} s, raw {raw[-1]['seconds']:.2f} s",
              file=sys.stderr)
    kept = work / f"duban-{n}-{repeat - 1}.db"
    listing = bench_listing(kept, repeat)
    moves = bench_transitions(kept, csv_path.stem, transitions)

    def med(runs: list[dict], key: str) -> float:
        return statistics.median(x[key] for x in runs)

    d, w = med(duban, "seconds"), med(raw, "seconds")
    return {
        "rows": n, "csv_mb": csv_path.stat().st_size / 2**20,
        "import": {"duban_s": d, "raw_s": w, "duban_rows_s": n / d, "raw_rows_s": n / w, "ratio": d / w,
                   "duban_rss_mb": med(duban, "rss_mb"), "raw_rss_mb": med(raw, "rss_mb"),
                   "duban_rss_before_mb": med(duban, "rss_before_mb"), "raw_rss_before_mb": med(raw, "rss_before_mb"),
                   "runs": {"duban": duban, "raw": raw}},
        "listing": {**listing, "ratio": listing["duban_s"] / listing["raw_s"]},
        "transition": moves,
    }


def column(r: dict) -> list[str]:
    i, li, d, w = r["import"], r["listing"], r["transition"]["duban"], r["transition"]["raw"]
    return [f"{i['duban_s']:.2f} s ({i['duban_rows_s'] / 1e3:.0f}k rows/s)",
            f"{i['raw_s']:.2f} s ({i['raw_rows_s'] / 1e3:.0f}k rows/s)", f"{i['ratio']:.1f}×",
            f"{i['duban_rss_mb']:.0f} MB (idle {i['duban_rss_before_mb']:.0f})",
            f"{i['raw_rss_mb']:.0f} MB (idle {i['raw_rss_before_mb']:.0f})",
            f"{li['duban_s'] * 1e3:.0f} ms ({li['rows']:,} rows)", f"{li['raw_s'] * 1e3:.0f} ms", f"{li['ratio']:.1f}×",
            f"{d['median_ms']:.2f} / {d['p95_ms']:.2f} ms", f"{w['median_ms']:.2f} / {w['p95_ms']:.2f} ms",
            f"{d['median_ms'] / w['median_ms']:.1f}×"]


def report(facts: dict, results: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print("machine: " + ", ".join(f"{k} {v}" for k, v in facts.items()))
    t = Table(title="duban vs raw sqlite3 (medians)")
    t.add_column("")
    for r in results:
        t.add_column(f"N = {r['rows']:,}", justify="right")
    labels = ["import duban", "import raw", "import ratio", "peak RSS duban", "peak RSS raw",
              "list in_progress duban", "list in_progress raw", "list ratio",
              "transition duban med / p95", "transition raw med / p95", "transition ratio (median)"]
    for label, *cells in zip(labels, *(column(r) for r in results), strict=False):
        t.add_row(label, *cells)
    console.print(t)
    console.print("targets: import ≤ 3× raw at 100k; duban import RSS < 500 MB at 1M; transition ≤ 1.0 ms median")


def profile(n: int, work: Path, words: list[str], top: int = 15) -> None:
    import cProfile
    import pstats

    csv_path = work / f"ledger-{n}.csv"
    make_csv(csv_path, n, words)
    prof = cProfile.Profile()
    print(f"import of {n:,} rows under cProfile: {child_duban(csv_path, work / 'profile.db', prof)['seconds']:.2f} s")
    stats = pstats.Stats(prof).sort_stats("cumulative")
    engine_dir = str(ROOT / "engine")
    keys = [k for k in stats.fcn_list if k[0].startswith(engine_dir)][:top]  # fcn_list is sorted
    print(f"{'ncalls':>10} {'tottime':>9} {'cumtime':>9}  function (engine/ only, by cumulative time)")
    for k in keys:
        cc, nc, tt, ct, _ = stats.stats[k]
        print(f"{nc:>10} {tt:9.3f} {ct:9.3f}  {Path(k[0]).relative_to(ROOT)}:{k[1]}({k[2]})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--transitions", type=int, default=TRANSITIONS, help="single transitions timed per side")
    ap.add_argument("--profile", type=int, metavar="N", help="cProfile one duban import of N rows and stop")
    ap.add_argument("--out", default="ledger_import.json", help="file name under bench/out/ (default: ledger_import.json)")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, *paths = args.child
        fn = child_duban if kind == "duban" else child_raw
        print(json.dumps(fn(*map(Path, paths))))
        return
    _, _, wf = duban_setup()
    words = [w for ws in wf.status_words.values() for w in ws]
    with tempfile.TemporaryDirectory(prefix="duban-bench-") as tmp:
        work = Path(tmp)
        if args.profile:
            profile(args.profile, work, words)
            return
        ddl_file = work / "schema.json"
        spec = {"ddl": schema_ddl(work), "words": wf.word_to_state(),
                "deadline_states": [s for s, rule in wf.deadlines.items() if rule.anchor == "deadline"],
                "checkin_state": wf.checkins.state if wf.checkins else None}
        ddl_file.write_text(json.dumps(spec), encoding="utf-8")
        facts = machine()
        results = [bench_size(n, args.repeat, work, ddl_file, words, args.transitions) for n in args.sizes]
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / args.out).write_text(
        json.dumps({"machine": facts, "repeat": args.repeat, "results": results}, indent=2, ensure_ascii=False),
        encoding="utf-8")
    report(facts, results)
    print(f"figures written to {out / args.out}")


if __name__ == "__main__":
    main()
