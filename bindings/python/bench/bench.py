"""dbmux's Python driver against the usual drivers, measured in the same run.

- `SELECT 1` awaited 5,000 times through `dbmux.aio` against aiosqlite
  (SQLite) and beside asyncpg (PostgreSQL);
- `SELECT 1` executed 20,000 times on one pooled connection, and a
  10,000-row x 5-column fetchall:
  - on SQLite, against the stdlib sqlite3;
  - on PostgreSQL (when DBMUX_TEST_PG_URL is set), against psycopg2 and
    against SQLAlchemy Core with its QueuePool over psycopg2 (a checkout per
    query, as an application would).
Each figure is the median of several rounds, each side taking each place
in a round in turn; ratios are
others' time / dbmux's time (above 1 means dbmux is faster).

Run it in a venv of its own: scripts/bench-python.sh does that.
"""

import os
import sqlite3
import statistics
import sys
import tempfile
import time

import asyncio

import dbmux
import dbmux.aio

ROUNDS = int(os.environ.get("DBMUX_BENCH_ROUNDS", "6" if os.environ.get("DBMUX_BENCH_QUICK") == "1" else "12"))
QUICK = os.environ.get("DBMUX_BENCH_QUICK") == "1"
LOOP = 2_000 if QUICK else 20_000
ROWS = 1_000 if QUICK else 10_000


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def compare(name, sides):
    """sides: {label: fn}; the first label is dbmux."""
    times = {k: [] for k in sides}
    items = list(sides.items())
    for r in range(ROUNDS):
        # each side runs first, second, ... equally often: on this 2-core
        # machine the first loop of a round runs a few per cent slower
        # (with PostgreSQL's backends), whichever driver it is
        k = r % len(items)
        for label, fn in items[k:] + items[:k]:
            times[label].append(timed(fn))
    med = {k: statistics.median(v) for k, v in times.items()}
    base = next(iter(sides))
    print(f"{name}:")
    for label, t in med.items():
        ratio = "" if label == base else f"   {label}/dbmux time = {t / med[base]:.2f}x"
        print(f"  {label:<28} {t * 1000:9.1f} ms{ratio}")
    return med


def sqlite_bench(tmp):
    path = os.path.join(tmp, "bench.db")
    setup = sqlite3.connect(path)
    setup.execute("CREATE TABLE big (a INTEGER, b REAL, c TEXT, d INTEGER, e TEXT)")
    setup.executemany("INSERT INTO big VALUES (?, ?, ?, ?, ?)",
                      [(i, i * 0.5, f"row {i}", i * 2, "x" * 20) for i in range(ROWS)])
    setup.commit()
    setup.close()

    mgr = dbmux.Manager(f"sqlite:///{path}")
    conn = mgr.connect()
    cur = conn.cursor()
    lite = sqlite3.connect(path, check_same_thread=False)
    lcur = lite.cursor()

    def dbmux_loop():
        for _ in range(LOOP):
            cur.execute("SELECT 1")
            cur.fetchone()

    def sqlite_loop():
        for _ in range(LOOP):
            lcur.execute("SELECT 1")
            lcur.fetchone()

    m1 = compare(f"SQLite: SELECT 1 x {LOOP}", {"dbmux": dbmux_loop, "sqlite3": sqlite_loop})

    def dbmux_fetch():
        cur.execute("SELECT a, b, c, d, e FROM big")
        assert len(cur.fetchall()) == ROWS

    def sqlite_fetch():
        lcur.execute("SELECT a, b, c, d, e FROM big")
        assert len(lcur.fetchall()) == ROWS

    m2 = compare(f"SQLite: fetchall {ROWS} rows x 5 columns", {"dbmux": dbmux_fetch, "sqlite3": sqlite_fetch})
    conn.close()
    mgr.close()
    lite.close()
    return {"select1 vs sqlite3": m1["sqlite3"] / m1["dbmux"], "fetchall vs sqlite3": m2["sqlite3"] / m2["dbmux"]}


ALOOP = 500 if QUICK else 5_000


def aio_select1(backend, url, label, connect_other, other_select1):
    """`SELECT 1` awaited ALOOP times, dbmux.aio against another asyncio
    driver, each on one connection, in one event loop: the ratio
    other's time / dbmux's. `connect_other()` opens the other driver's
    connection; `other_select1(conn)` runs one SELECT 1 on it."""
    loop = asyncio.new_event_loop()

    async def setup():
        mgr = dbmux.aio.Manager(url)
        return mgr, await mgr.connect(), await connect_other()

    mgr, conn, other = loop.run_until_complete(setup())

    async def dbmux_loop():
        cur = conn.cursor()
        for _ in range(ALOOP):
            await cur.execute("SELECT 1")
            await cur.fetchone()

    async def other_loop():
        for _ in range(ALOOP):
            await other_select1(other)

    m = compare(f"{backend}, asyncio: SELECT 1 x {ALOOP}", {
        "dbmux.aio": lambda: loop.run_until_complete(dbmux_loop()),
        label: lambda: loop.run_until_complete(other_loop())})

    async def teardown():
        await conn.close()
        await mgr.close()
        await other.close()
    loop.run_until_complete(teardown())
    loop.close()
    return m[label] / m["dbmux.aio"]


def aio_sqlite_bench(tmp):
    """dbmux.aio against aiosqlite."""
    import aiosqlite
    path = os.path.join(tmp, "aio.db")
    sqlite3.connect(path).close()

    async def select1(c):
        async with c.execute("SELECT 1") as cur:
            await cur.fetchone()

    ratio = aio_select1("SQLite", f"sqlite:///{path}", "aiosqlite", lambda: aiosqlite.connect(path), select1)
    return {"aio select1 vs aiosqlite": ratio}


def aio_pg_bench(url):
    """dbmux.aio beside asyncpg on PostgreSQL (printed, no target)."""
    import asyncpg

    async def select1(c):
        await c.fetchrow("SELECT 1")

    ratio = aio_select1("PostgreSQL", url, "asyncpg",
                        lambda: asyncpg.connect(url.split("?")[0], ssl=False), select1)
    return {"aio select1 vs asyncpg": ratio}


def pg_bench(url):
    import psycopg2
    import sqlalchemy

    mgr = dbmux.Manager(url)
    with mgr.connect() as c:
        cur = c.cursor()
        cur.execute("DROP TABLE IF EXISTS bench_big")
        cur.execute("CREATE TABLE bench_big (a BIGINT, b DOUBLE PRECISION, c TEXT, d BIGINT, e TEXT)")
        cur.execute("INSERT INTO bench_big SELECT g, g * 0.5, 'row ' || g, g * 2, repeat('x', 20) "
                    "FROM generate_series(1, ?) g", (ROWS,))
    dsn = url.split("?")[0]
    pg = psycopg2.connect(dsn, sslmode="disable")
    pg.autocommit = True
    pcur = pg.cursor()
    engine = sqlalchemy.create_engine(dsn.replace("postgresql://", "postgresql+psycopg2://") + "?sslmode=disable",
                                      pool_size=5, max_overflow=10, pool_pre_ping=True)
    select1 = sqlalchemy.text("SELECT 1")

    def dbmux_loop():
        for _ in range(LOOP):
            with mgr.connect() as c:
                c.execute("SELECT 1").fetchone()

    def psycopg2_loop():
        for _ in range(LOOP):
            pcur.execute("SELECT 1")
            pcur.fetchone()

    def sqlalchemy_loop():
        for _ in range(LOOP):
            with engine.connect() as c:
                c.execute(select1).fetchone()

    m1 = compare(f"PostgreSQL: SELECT 1 x {LOOP} (dbmux and SQLAlchemy check out per query)",
                 {"dbmux": dbmux_loop, "psycopg2": psycopg2_loop, "SQLAlchemy QueuePool": sqlalchemy_loop})

    conn = mgr.connect()
    cur = conn.cursor()

    def dbmux_fetch():
        cur.execute("SELECT a, b, c, d, e FROM bench_big")
        assert len(cur.fetchall()) == ROWS

    def psycopg2_fetch():
        pcur.execute("SELECT a, b, c, d, e FROM bench_big")
        assert len(pcur.fetchall()) == ROWS

    m2 = compare(f"PostgreSQL: fetchall {ROWS} rows x 5 columns", {"dbmux": dbmux_fetch, "psycopg2": psycopg2_fetch})
    conn.close()
    with mgr.connect() as c:
        c.execute("DROP TABLE bench_big")
    mgr.close()
    pg.close()
    engine.dispose()
    return {"select1 vs SQLAlchemy": m1["SQLAlchemy QueuePool"] / m1["dbmux"],
            "select1 vs psycopg2": m1["psycopg2"] / m1["dbmux"],
            "fetchall vs psycopg2": m2["psycopg2"] / m2["dbmux"]}


def main():
    targets = {"select1 vs sqlite3": 0.8, "fetchall vs sqlite3": 1.5, "select1 vs SQLAlchemy": 4.0,
               "select1 vs psycopg2": 1.0, "fetchall vs psycopg2": 1.2, "aio select1 vs aiosqlite": 3.0}
    with tempfile.TemporaryDirectory() as tmp:
        results = sqlite_bench(tmp)
        results.update(aio_sqlite_bench(tmp))
    url = os.environ.get("DBMUX_TEST_PG_URL")
    if url:
        results.update(pg_bench(url + "?sslmode=disable"))
        results.update(aio_pg_bench(url + "?sslmode=disable"))
    else:
        print("(PostgreSQL skipped: DBMUX_TEST_PG_URL is not set)")
    print("speed relative to the other driver (others' time / dbmux's time; higher is better for dbmux):")
    for k, v in results.items():
        t = targets.get(k)
        verdict = "" if t is None else f"  (target >= {t}x: {'meets target' if v >= t else 'MISSES target'})"
        print(f"  {k:<24} {v:6.2f}x{verdict}")


if __name__ == "__main__":
    sys.exit(main())
