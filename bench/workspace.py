"""The workspace under load: 我的待办 and the issue list at 20 concurrent users, beside ``/healthz``.

Run by hand from the project root:

    .venv/bin/python bench/workspace.py --issues 100000 --seconds 10          # a quick look (SQLite)
    .venv/bin/python bench/workspace.py --db both --issues 1000000 --seconds 30
    .venv/bin/python bench/workspace.py --db sqlite --think 0                 # closed loop: saturation
    .venv/bin/python bench/workspace.py --db postgres --issues 100000 --only "api search no match"

The database (``--issues`` N in 100 ledgers) is built once and reused, keyed by size: SQLite in
bench/out/workspace-N.db, PostgreSQL in the database ``duban_bench_ws_N`` on 127.0.0.1:5432
(``--drop`` drops it at the end). It is built as duban builds one: its migrations, then each
ledger a CSV imported with duban's own ``import_ledger`` (so issues, issue_departments and the plan
columns due_on / overdue_on are what duban writes), then ``ensure_accounts`` for the people the
ledger names, as ``duban ledger import`` does. Each ledger (one unit) has ~10 of 25 department
names and 5 of 50 leader names (so a department such as 办公室 appears in ~40 units and sees ~40k
issues, a leader ~20k), one cell in ten names two departments, deadlines over 2026-06 … 2027-06
and every status word. "Now" is 2026-12-01 10:00 Beijing (the server's clock is fixed there).

The application (``create_app`` with read and write sessions) runs on duban's real uvicorn
(``HttpServer``) in a child process. The load generator (this process, asyncio + httpx) runs one
scenario per endpoint for ``--seconds``: ``--users`` virtual users, each a different department or
leader account (half and half), each with its own connection; API calls carry the user's API token
(``new_api_token``), pages the session cookie of the user's signed link (``/w/TOKEN``). A user
sends a request, reads the whole answer, waits a think time (uniform 0 … 2 × ``--think`` s) and
sends the next. In the same run a probe requests ``/healthz`` every 100 ms. Per endpoint:
requests, throughput, p50 / p95 / p99 and errors (any status but 200). JSON to
bench/out/workspace.json.

Of the users, ``--district`` (default 4) are the 巡察办's reviewers and observers, who see every unit's
issues (a 我的待办 and a list over all 1M); the others a unit's department or leader accounts.

The write mix (scenario ``writes``, issue #22): ``--users`` department and leader accounts as writers, each in a
closed loop (``--write-think``, default 0) alternating a step and a progress note through the API:
``POST …/actions {"trigger": "start"}`` on the next of its own planned issues (once each: a reused
database has fewer planned issues left each run) and ``POST …/progress`` on one of its issues in
progress, each answer read whole. Per run: writes/s, p50 / p95 / p99 / max and errors (a status other
than 200 / 201), and /healthz meanwhile. On PostgreSQL ``--servers N`` spreads the writers over N server
processes on the one database, as several daemons would serve it (/healthz asks the first).
Targets: SQLite p99 <= 250 ms and max <= 1 s; PostgreSQL >= 300 writes/s with p95 <= 150 ms; no errors.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import machine  # bench/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
DATA = {"dir": OUT}  # where the SQLite databases are built and reused (--db-dir)
SAMPLE = ROOT / "examples" / "bishan-keji-2022.csv"
HEADERS = ["序号", "方面", "问题类别", "具体问题", "整改措施", "责任领导", "责任科室", "整改时限", "整改状态"]
WORDS = ["整改中"] * 6 + ["待整改"] * 2 + ["已制定方案"] * 2 + ["已完成"] * 7 + ["长期坚持"] * 3 + ["待审核销号"]
DEPARTMENTS = ["办公室", "财务室", "人事组", "机关党支部", "综合科", "法规科", "规划科", "成果科", "科技管理科",
               "高新技术科", "农村科技科", "社会发展科", "科技合作科", "知识产权科", "科普科", "信息中心", "档案室",
               "后勤服务中心", "审计科", "督查室", "政策研究室", "宣传科", "统计科", "安全监管科", "应急办"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
LEADERS = [f"{SURNAMES[i % 20]}{'建国志强海燕秀英明辉'[i // 20 * 2:i // 20 * 2 + 2]}" for i in range(50)]
LEDGERS = 100
AT = "2026-12-01T10:00+08:00"
NOW = dt.datetime.fromisoformat(AT)
SECRET = "bench-workspace-secret-key-not-for-production"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def config_for(url: str):
    from engine.config import Config

    return Config.model_validate({"database": {"url": url},
                                  "workflows": {"paths": [str(ROOT / "workflows")]},
                                  "duties": {"paths": [str(ROOT / "workflows" / "duties")]}})


# -- building -------------------------------------------------------------------------------------


def _pg(dbname: str, sql: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(PG_ADMIN.rsplit("/", 1)[0] + "/" + dbname, autocommit=True) as con:
        cur = con.execute(sql)
        return cur.fetchall() if cur.description else []


TAG = os.environ.get("DUBAN_BENCH_TAG", "")  # e.g. a checkout's name: its own PostgreSQL database


def target(kind: str, n: int) -> tuple[str, str]:
    """(SQLAlchemy URL, a name for the table) of the database of ``n`` issues."""
    if kind == "sqlite":
        return f"sqlite:///{DATA['dir'] / f'workspace-{n}.db'}", f"workspace-{n}.db"
    name = f"duban_bench_ws_{n}{'_' + TAG if TAG else ''}"
    return f"postgresql://postgres@127.0.0.1:5432/{name}", name


def ready(kind: str, n: int) -> bool:
    url, name = target(kind, n)
    if kind == "sqlite":
        return (DATA["dir"] / name).exists()
    if not _pg("test", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"):
        return False
    try:
        return bool(_pg(name, "SELECT 1 FROM bench_built"))
    except Exception:  # noqa: BLE001 - a half-built database: build again
        return False


def ledger_rows(number: int, size: int, sample: list[dict], rng: random.Random) -> tuple[list[list], list[str]]:
    departments = rng.sample(DEPARTMENTS, 10)
    leaders = rng.sample(LEADERS, 5)
    first_day = dt.date(2026, 6, 1)
    rows = []
    for i in range(1, size + 1):
        s = sample[i % len(sample)]
        department = departments[i % 10]
        if i % 10 == 3:  # one cell in ten names two departments
            department = f"{department}、{departments[(i // 10) % 10]}" if (i // 10) % 10 != 3 else department
        deadline = first_day + dt.timedelta(days=rng.randrange(0, 395))
        rows.append([i, s["方面"], s["问题类别"], f"{s['具体问题']}（{number}-{i}）", s["整改措施"],
                     leaders[(i // 7) % 5], department, deadline.isoformat(), WORDS[i % len(WORDS)]])
    return rows, departments


_WORKER: dict = {}


def _worker_start(build_url: str, size: int) -> None:
    from engine.runtime import Runtime
    from engine.store import db

    with SAMPLE.open(encoding="utf-8-sig", newline="") as fh:
        _WORKER["sample"] = list(csv.DictReader(fh))
    _WORKER["runtime"] = Runtime(config_for(build_url))
    _WORKER["sessions"] = db.session_factory(db.make_engine(build_url))
    _WORKER["size"] = size


def _import_one(number: int, work: str) -> int:
    """One ledger (one unit) through duban's own import path, as ``duban ledger import`` does."""
    from engine.ledger.importer import ensure_ledger_accounts, import_ledger
    from engine.store import db

    rows, _ = ledger_rows(number, _WORKER["size"], _WORKER["sample"], random.Random(12 + number))
    csv_path = Path(work) / f"U{number:03d}.csv"
    with csv_path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(HEADERS)
        out.writerows(rows)
    imported_at = NOW - dt.timedelta(days=200)
    with db.transaction(_WORKER["sessions"]) as s:
        result = import_ledger(s, _WORKER["runtime"], csv_path, now=imported_at, ledger_name=f"U{number:03d}-2026巡察",
                               feedback_date=dt.date(2026, 5, 1), workflow_name="inspection-rectification",
                               unit=f"单位{number:03d}")
        ensure_ledger_accounts(s, result.ledger, imported_at)
    csv_path.unlink()
    return number


def build(kind: str, n: int, progress, jobs: int) -> dict:
    """``LEDGERS`` ledger imports, ``jobs`` at a time (each its own process and transaction, as units
    importing at once would be; on SQLite they take the write lock in turn, so one job)."""
    from concurrent.futures import ProcessPoolExecutor

    from sqlalchemy import text

    from engine.runtime import Runtime
    from engine.store import db

    url, name = target(kind, n)
    started = time.perf_counter()
    if kind == "sqlite":
        path = DATA["dir"] / name
        tmp = path.with_suffix(".building")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{tmp}{suffix}").unlink(missing_ok=True)
        build_url = f"sqlite:///{tmp}"
        jobs = 1
    else:
        _pg("test", f"DROP DATABASE IF EXISTS {name}")
        _pg("test", f"CREATE DATABASE {name}")
        build_url = url
    runtime = Runtime(config_for(build_url))
    engine = db.make_engine(build_url)
    db.upgrade(engine)
    sessions = db.session_factory(engine)
    imported_at = NOW - dt.timedelta(days=200)
    with db.transaction(sessions) as s:
        runtime.registry.sync_all(s, imported_at)
        runtime.duty_book.sync(s, runtime.duty_definitions(), imported_at)
    task = progress.add_task(f"building {name} ({jobs} at a time)", total=LEDGERS)
    work = DATA["dir"] / f"{name}.csv-work"  # its own: two builds may run at once
    work.mkdir(exist_ok=True)
    with ProcessPoolExecutor(jobs, initializer=_worker_start, initargs=(build_url, n // LEDGERS)) as pool:
        for _ in pool.map(_import_one, range(LEDGERS), [str(work)] * LEDGERS):
            progress.advance(task)
    work.rmdir()
    if kind == "postgres":
        with engine.begin() as con:
            con.execute(text("CREATE TABLE bench_built (n integer)"))
            con.execute(text(f"INSERT INTO bench_built VALUES ({n})"))
    engine.dispose()
    if kind == "postgres":
        _pg(name, "VACUUM ANALYZE")  # as autovacuum leaves a loaded table: statistics, visibility map
    if kind == "sqlite":
        import sqlite3

        con = sqlite3.connect(tmp)
        con.execute("ANALYZE")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        tmp.rename(DATA["dir"] / name)
    progress.remove_task(task)
    return {"built_seconds": round(time.perf_counter() - started, 1), "build_jobs": jobs}


def upgrade(kind: str, url: str) -> dict:
    """Bring a reused database to this code's schema (new indexes), then refresh its statistics."""
    from engine.store import db

    engine = db.make_engine(url)
    try:
        before = db.schema_status(engine)[0]
        db.upgrade(engine)
        after = db.schema_status(engine)[0]
    finally:
        engine.dispose()
    if before == after:
        return {}
    if kind == "postgres":
        _pg(url.rsplit("/", 1)[1], "VACUUM ANALYZE")
    else:
        import sqlite3

        con = sqlite3.connect(url.removeprefix("sqlite:///"))
        con.execute("ANALYZE")
        con.close()
    return {"upgraded": f"{before} -> {after}"}


DISTRICT_ROLES = ("reviewer", "observer")  # the 巡察办's people: every unit's issues


def prepare_users(url: str, count: int, district: int = 0) -> list[dict]:
    """``count`` users with an API token and a signed link each: ``district`` of them over every
    unit (reviewers and observers of the 巡察办, who see all the issues), the rest a unit's
    departments and leaders (half each, those who see the most first)."""
    from sqlalchemy import func, select

    from engine.accounts.credentials import new_api_token
    from engine.accounts.links import make_link_token
    from engine.accounts.users import NewUser, add_user, get_user
    from engine.store import db
    from engine.store.accounts import Grant, User
    from engine.store.models import ISSUE_DEPARTMENTS, ISSUES
    from engine.store.models import LEDGERS as LEDGER_ROWS

    engine = db.make_engine(url)
    out = []
    with db.transaction(db.session_factory(engine)) as s:
        # what a unit's account sees: its unit's issues of that department or leader
        by_dept = {f"{unit}/{name}": n for unit, name, n in s.execute(
            select(LEDGER_ROWS.c.unit, ISSUE_DEPARTMENTS.c.department, func.count())
            .join(LEDGER_ROWS, LEDGER_ROWS.c.id == ISSUE_DEPARTMENTS.c.ledger_id)
            .group_by(LEDGER_ROWS.c.unit, ISSUE_DEPARTMENTS.c.department))}
        by_leader = {f"{unit}/{name}": n for unit, name, n in s.execute(
            select(LEDGER_ROWS.c.unit, ISSUES.c.leader, func.count()).join(LEDGER_ROWS, LEDGER_ROWS.c.id == ISSUES.c.ledger_id)
            .group_by(LEDGER_ROWS.c.unit, ISSUES.c.leader))}
        everything = s.scalar(select(func.count()).select_from(ISSUES)) or 0
        names = {role: [u for u, in s.execute(select(User.name).join(Grant).where(Grant.role == role))]
                 for role in ("department", "leader")}
        district = min(district, count // 2)  # at most half: the rest are a unit's own accounts
        rest = count - district
        depts = sorted(names["department"], key=lambda u: -by_dept.get(u, 0))[: rest - rest // 2]
        leaders = sorted(names["leader"], key=lambda u: -by_leader.get(u, 0))[: rest // 2]
        chosen = [x for pair in zip(depts, leaders, strict=False) for x in pair] + depts[len(leaders):]
        for i in range(district):
            name = f"巡察办{DISTRICT_ROLES[i % 2]}{i + 1}"
            if s.scalar(select(User.id).where(User.name == name)) is None:
                add_user(s, NewUser(name=name, roles=(DISTRICT_ROLES[i % 2],)), NOW)
            chosen.insert(2 * i, name)  # one in every few users, from the first
        for name in chosen:
            user = get_user(s, name)
            role = user.grants[0].role
            sees = by_dept.get(name, 0) if role == "department" else by_leader.get(name, 0) if role == "leader" \
                else everything
            out.append({"name": name, "role": role, "sees": sees, "token": new_api_token(s, user, "bench", NOW)[0],
                        "link": make_link_token(SECRET, user.id, user.session_epoch, NOW)})
    engine.dispose()
    return out


# -- the server (a child process) -----------------------------------------------------------------


def serve(url: str) -> None:
    from engine.app.http.app import Site, create_app
    from engine.app.http.server import HttpServer
    from engine.clock import FixedClock
    from engine.heap import settle
    from engine.runtime import Runtime
    from engine.store import db

    if os.environ.get("SWI"):
        sys.setswitchinterval(float(os.environ["SWI"]))
    runtime = Runtime(config_for(url))
    engine = db.make_engine(url)
    site = Site(runtime=lambda: runtime, sessions=db.read_factory(engine), writers=db.session_factory(engine),
                clock=FixedClock(NOW.astimezone(dt.UTC)))
    app = create_app(site)
    settle()  # as the daemon does once started (engine.heap)
    server = HttpServer(app, "127.0.0.1:0")
    server.start()
    print(server.address, flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    server.close()
    engine.dispose()


class Server:
    def __init__(self, url: str):
        env = {**os.environ, "DUBAN_SECRET_KEY": SECRET, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", url], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        assert self.proc.stdout is not None
        self.address = self.proc.stdout.readline().strip()
        if not self.address:
            raise RuntimeError("the server did not start")

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# -- the load generator ---------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def figures(latencies: list[float], errors: int, seconds: float) -> dict:
    ms = [x * 1000 for x in latencies]
    return {"requests": len(ms) + errors, "errors": errors, "per_second": round((len(ms) + errors) / seconds, 1),
            "p50_ms": round(percentile(ms, 50), 1), "p95_ms": round(percentile(ms, 95), 1),
            "p99_ms": round(percentile(ms, 99), 1), "max_ms": round(max(ms), 1) if ms else None}


async def scenario(base: str, users: list[dict], path: str, api: bool, seconds: float, think: float,
                   seed: int) -> dict:
    import httpx

    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = []
    for u in users:
        c = httpx.AsyncClient(base_url=base, timeout=60, limits=limits,
                              headers={"Authorization": f"Bearer {u['token']}"} if api else {})
        if not api:
            r = await c.get(f"/w/{u['link']}")
            assert r.status_code == 303 and c.cookies, (u["name"], r.status_code, r.text[:200])
        r = await c.get(path)  # warm-up, untimed
        assert r.status_code == 200, (u["name"], path, r.status_code, r.text[:300])
        clients.append(c)
    lat: list[float] = []
    errors = [0]
    health: list[float] = []
    health_errors = [0]
    stop = time.perf_counter() + seconds
    rng = random.Random(seed)

    async def user(c, delay: float) -> None:
        await asyncio.sleep(delay)
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            try:
                r = await c.get(path)
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                lat.append(time.perf_counter() - t0)
            else:
                errors[0] += 1
            if think:
                await asyncio.sleep(rng.uniform(0, 2 * think))

    started = time.perf_counter()
    await asyncio.gather(healthz_probe(base, stop, health, health_errors), *(user(c, rng.uniform(0, think)) for c in clients))
    took = time.perf_counter() - started
    for c in clients:
        await c.aclose()
    return {"path": path, **figures(lat, errors[0], took), "healthz": figures(health, health_errors[0], took)}


def search_word() -> str:
    """A word in a sixth or so of the titles (the sample's titles cycle through every ledger)."""
    return "学习"


async def healthz_probe(base: str, stop: float, health: list[float], health_errors: list[int]) -> None:
    """/healthz every 0.1 s until ``stop`` (perf_counter): how a page load weighs on the probe."""
    import httpx

    async with httpx.AsyncClient(base_url=base, timeout=60) as c:
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            try:
                ok = (await c.get("/healthz")).status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                health.append(time.perf_counter() - t0)
            else:
                health_errors[0] += 1
            await asyncio.sleep(0.1)


def writer_work(url: str, users: list[dict], per_user: int = 2000) -> list[dict]:
    """Each writer's own issues: planned ones to start, in-progress ones to note progress on."""
    from sqlalchemy import select

    from engine.store import db
    from engine.store.models import ISSUE_DEPARTMENTS, Issue, Ledger

    engine = db.make_engine(url)
    work = []
    taken: set[str] = set()  # a department's and a leader's issues overlap: each is started by one writer
    with db.read_factory(engine)() as s:
        for u in users:
            unit, _, name = u["name"].rpartition("/")  # a unit's own account: UNIT/NAME, over that unit's ledgers
            mine = (Issue.id.in_(select(ISSUE_DEPARTMENTS.c.issue_id).where(ISSUE_DEPARTMENTS.c.department == name))
                    if u["role"] == "department" else Issue.leader == name)
            if unit:
                mine = mine & Ledger.unit.is_not_distinct_from(unit)

            def refs(state: str, mine=mine) -> list[str]:
                rows = s.execute(select(Ledger.name, Issue.ref).join(Ledger).where(mine, Issue.state == state)
                                 .order_by(Issue.id).limit(per_user)).all()
                return [f"{ledger}/{ref}" for ledger, ref in rows]

            planned = [ref for ref in refs("planned") if ref not in taken]
            taken.update(planned)
            work.append({"planned": planned, "in_progress": refs("in_progress")})
    engine.dispose()
    return work


async def write_mix(bases: list[str], users: list[dict], work: list[dict], seconds: float, think: float,
                    seed: int) -> dict:
    """``len(users)`` writers at once, each alternating a step (start) and a progress note."""
    from urllib.parse import quote

    import httpx

    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    # with --servers the writers are spread over the servers in turn; /healthz asks the first
    clients = [httpx.AsyncClient(base_url=bases[i % len(bases)], timeout=60, limits=limits,
                                 headers={"Authorization": f"Bearer {u['token']}"}) for i, u in enumerate(users)]
    lat: dict[str, list[float]] = {"step": [], "progress": []}
    errors: dict[str, int] = {"step": 0, "progress": 0}
    failures: list[str] = []
    health: list[float] = []
    health_errors = [0]
    stop = time.perf_counter() + seconds
    rng = random.Random(seed)

    def address(ref: str) -> str:
        ledger, number = ref.rsplit("/", 1)
        return f"/api/v1/issues/{quote(ledger, safe='')}/{quote(number, safe='')}"

    async def writer(c, mine: dict, n: int) -> None:
        planned = list(mine["planned"])
        noted = list(mine["in_progress"]) or list(planned)
        turn = n % 2
        while time.perf_counter() < stop:
            kind = "step" if turn % 2 == 0 and planned else "progress"
            turn += 1
            if kind == "step":
                ref = planned.pop(0)
                request = c.post(f"{address(ref)}/actions", json={"trigger": "start"})
            else:
                if not noted:
                    break
                ref = rng.choice(noted)
                request = c.post(f"{address(ref)}/progress", json={"note": f"第{turn}次进展：已召开专题会议推进整改"})
            t0 = time.perf_counter()
            try:
                r = await request
                ok = r.status_code in (200, 201)
                if not ok and len(failures) < 5:
                    failures.append(f"{kind} {ref}: {r.status_code} {r.text[:200]}")
            except httpx.HTTPError as exc:
                ok = False
                if len(failures) < 5:
                    failures.append(f"{kind} {ref}: {exc!r}")
            if ok:
                lat[kind].append(time.perf_counter() - t0)
            else:
                errors[kind] += 1
            if think:
                await asyncio.sleep(rng.uniform(0, 2 * think))

    started = time.perf_counter()
    await asyncio.gather(healthz_probe(bases[0], stop, health, health_errors),
                         *(writer(c, mine, n) for n, (c, mine) in enumerate(zip(clients, work, strict=True))))
    took = time.perf_counter() - started
    for c in clients:
        await c.aclose()
    return {"path": "POST …/actions start + …/progress", **figures(lat["step"] + lat["progress"],
                                                                     sum(errors.values()), took),
            "steps": figures(lat["step"], errors["step"], took),
            "progress": figures(lat["progress"], errors["progress"], took),
            "failures": failures, "healthz": figures(health, health_errors[0], took)}

# Searches (#22): a two-character word (in a sixth of the titles), a four-character one (in about one
# in thirteen) and one found nowhere — which the index answers without reading an issue.
SEARCHES = {"2-char": search_word(), "4-char": "把关不严", "no match": "量子纠缠"}

SCENARIOS = [("api todo", "/api/v1/todo", True), ("api issues", "/api/v1/issues?page=1", True),
             *((f"api search {k}", f"/api/v1/issues?q={q}", True) for k, q in SEARCHES.items()),
             ("ws todo", "/ws/", False), ("ws issues", "/ws/issues", False),
             *((f"ws search {k}", f"/ws/issues?q={q}", False) for k, q in SEARCHES.items())]


FIELDS = ("requests", "errors", "per_second", "p50_ms", "p95_ms", "p99_ms", "max_ms")


def median_of(runs: list[dict]) -> dict:
    """Each figure's median over the runs (and the healthz probe's), the runs themselves kept."""
    def med(key: str, rows: list[dict]):
        values = [r[key] for r in rows if r.get(key) is not None]
        return round(statistics.median(values), 1) if values else None

    out = {"path": runs[0]["path"], **{k: med(k, runs) for k in FIELDS},
           "healthz": {k: med(k, [r["healthz"] for r in runs]) for k in FIELDS}, "runs": runs}
    if "failures" in runs[0]:
        out["failures"] = [f for r in runs for f in r["failures"]]
    return out


def run(kind: str, n: int, args, progress) -> dict:
    url, name = target(kind, n)
    built = {"built_seconds": "reused", **upgrade(kind, url)} if ready(kind, n) else build(kind, n, progress, args.jobs)
    users = prepare_users(url, args.users, args.district)
    writers = prepare_users(url, args.users) if args.district else users  # who may take a step: a unit's own
    server = Server(url)
    # more server processes for the write mix (PostgreSQL): what several daemons on one database give
    extra = [Server(url) for _ in range(args.servers - 1)] if kind == "postgres" else []
    out: dict = {"database": name, **built, "repeat": args.repeat, "servers": 1 + len(extra),
                 "users": [{k: u[k] for k in ("name", "role", "sees")} for u in users], "scenarios": {}}
    only = set(args.only or [])
    labels = [label for label, _, _ in SCENARIOS if not only or label in only]
    writes = not only or "writes" in only
    raw: dict[str, list[dict]] = {}
    try:
        base = f"http://{server.address}"
        task = progress.add_task(f"{kind} {n:,}", total=args.repeat * (len(labels) + writes))
        for _ in range(args.repeat):  # the scenarios one after another, then again: a run is a pass over all
            for number, (label, path, api) in enumerate(SCENARIOS):
                if label not in labels:
                    continue
                progress.update(task, description=f"{kind} {n:,}: {label}")
                raw.setdefault(label, []).append(asyncio.run(scenario(base, users, path, api, args.seconds,
                                                                      args.think, seed=number)))
                progress.advance(task)
            if writes:
                progress.update(task, description=f"{kind} {n:,}: writes")
                raw.setdefault("writes", []).append(asyncio.run(write_mix(
                    [base, *(f"http://{e.address}" for e in extra)], writers, writer_work(url, writers),
                    args.seconds, args.write_think, seed=len(SCENARIOS))))
                progress.advance(task)
        progress.remove_task(task)
    finally:
        for each in (server, *extra):
            each.close()
    out["scenarios"] = {label: median_of(runs) for label, runs in raw.items()}
    if args.drop and kind == "postgres":
        _pg("test", f"DROP DATABASE IF EXISTS {name}")
    return out


def show(console, kind: str, result: dict, think: float) -> None:
    from rich.table import Table

    table = Table(title=f"{kind}: {result['database']} ({result['built_seconds']}), "
                        f"{len(result['users'])} users, think {think} s, median of {result.get('repeat', 1)}")
    for col in ("endpoint", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors",
                "/healthz p50", "p95", "p99", "errors"):
        table.add_column(col, justify="left" if col == "endpoint" else "right")
    for label, f in result["scenarios"].items():
        h = f["healthz"]
        table.add_row(label, str(f["requests"]), str(f["per_second"]), str(f["p50_ms"]), str(f["p95_ms"]),
                      str(f["p99_ms"]), str(f.get("max_ms", "")), str(f["errors"]), str(h["p50_ms"]), str(h["p95_ms"]),
                      str(h["p99_ms"]), str(h["errors"]))
    console.print(table)


def side_by_side(console, results: dict, before: dict | None) -> None:
    """p95 of each scenario on each database (and /healthz's), beside ``before`` (e.g. the 100k run)."""
    from rich.table import Table

    kinds = list(results["runs"])
    table = Table(title=f"p95 ms at {results['issues']:,} issues" + (
        f", and x its figure at {before['issues']:,}" if before else ""))
    table.add_column("endpoint", justify="left")
    for kind in kinds:
        table.add_column(f"{kind} p95", justify="right")
        table.add_column("/healthz p95", justify="right")
        if before:
            table.add_column(f"x {before['issues']:,}", justify="right")
    labels = dict.fromkeys(label for kind in kinds for label in results["runs"][kind]["scenarios"])
    for label in labels:
        row = [label]
        for kind in kinds:
            f = results["runs"][kind]["scenarios"].get(label)
            if f is None:
                row += ["", ""] + ([""] if before else [])
                continue
            row += [str(f["p95_ms"]), str(f["healthz"]["p95_ms"])]
            if before:
                old = before.get("runs", {}).get(kind, {}).get("scenarios", {}).get(label)
                row.append(f"{f['p95_ms'] / old['p95_ms']:.2f}" if old and old.get("p95_ms") else "")
        table.add_row(*row)
    console.print(table)
    for kind in kinds:
        w = results["runs"][kind]["scenarios"].get("writes")
        if w:
            console.print(f"writes, {kind}: {w['per_second']} /s, p50 {w['p50_ms']} p95 {w['p95_ms']} p99 {w['p99_ms']} "
                          f"max {w['max_ms']} ms, {w['errors']} errors (medians of {len(w['runs'])}; targets: SQLite "
                          "p99 <= 250 and max <= 1000 ms; PostgreSQL >= 300 /s and p95 <= 150 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--issues", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--district", type=int, default=4,
                        help="of the users, how many see every unit (the 巡察办's reviewers and observers)")
    parser.add_argument("--think", type=float, default=1.0, help="mean think time between a user's requests, s")
    parser.add_argument("--write-think", type=float, default=0.0,
                        help="mean think time between a writer's writes, s (default 0: closed loop)")
    parser.add_argument("--servers", type=int, default=1,
                        help="PostgreSQL: server processes the write mix's writers are spread over (default 1)")
    parser.add_argument("--only", nargs="*", help="scenarios to run (labels), default all")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="ledger imports at a time when building a PostgreSQL database (default: the cores)")
    parser.add_argument("--repeat", type=int, default=1, help="passes over the scenarios; figures are their medians")
    parser.add_argument("--compare", type=Path, help="a JSON this script wrote (e.g. the 100k run): p95 as x that")
    parser.add_argument("--drop", action="store_true", help="drop the PostgreSQL database afterwards")
    parser.add_argument("--out", default="workspace.json")
    parser.add_argument("--db-dir", type=Path, default=OUT,
                        help="where the SQLite databases are built and reused (default: bench/out)")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.serve:
        serve(args.serve)
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    OUT.mkdir(exist_ok=True)
    DATA["dir"] = args.db_dir
    console = Console(width=150)
    results: dict = {"machine": machine(), "issues": args.issues, "ledgers": LEDGERS, "seconds": args.seconds,
                     "think": args.think, "users": args.users, "runs": {}}
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        for kind in kinds:
            results["runs"][kind] = run(kind, args.issues, args, progress)
            show(progress.console, kind, results["runs"][kind], args.think)
    before = json.loads(args.compare.read_text(encoding="utf-8")) if args.compare else None
    side_by_side(console, results, before)
    (OUT / args.out).write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")
    medians = {k: statistics.median([s["p95_ms"] for s in r["scenarios"].values()]) for k, r in results["runs"].items()
               if r["scenarios"]}
    console.print(f"median p95 over the scenarios: {medians}; written to {OUT / args.out}")


if __name__ == "__main__":
    main()
