"""dbmux.aio on a real SQLite file and the throwaway PostgreSQL server: the
calls awaited, one hand-off to a worker per statement, an event loop that
keeps running while the database works, and cancellation that interrupts the
statement and returns the connection rolled back."""

import asyncio
import os
import time

import pytest

import dbmux
import dbmux.aio

from helpers import open_fds_to


def long_query(url):
    """A statement that runs for many seconds unless interrupted."""
    if url.startswith("sqlite"):
        return ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000000) "
                "SELECT count(*) FROM c")
    return "SELECT 1 FROM pg_sleep(30)"


def test_connections_cursors_and_transactions_are_awaited(url, table):
    async def main():
        mgr = dbmux.aio.Manager(url)
        async with await mgr.connect() as conn:
            await conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT)")
            cur = conn.cursor()
            await cur.executemany(f"INSERT INTO {table} VALUES (?, ?)", [(1, "a"), (2, "b")])
            assert cur.rowcount == 2
        # committed by `async with`
        async with await mgr.connect(readonly=True) as conn:
            cur = await conn.execute(f"SELECT id, name FROM {table} ORDER BY id")
            assert cur.description[0][0] == "id"
            assert await cur.fetchone() == (1, "a")
            assert [r async for r in cur] == [(2, "b")]
        conn = await mgr.connect()
        with pytest.raises(ZeroDivisionError):
            async with conn.transaction():
                await conn.execute(f"INSERT INTO {table} VALUES (3, 'c')")
                1 / 0
        cur = await conn.execute(f"SELECT count(*) FROM {table}")
        assert await cur.fetchall() == [(2,)]
        with pytest.raises(dbmux.IntegrityError):
            await conn.execute(f"INSERT INTO {table} VALUES (1, 'dup')")
        await conn.rollback()
        await conn.close()
        assert (await mgr.health())["status"] == "healthy"
        info = await mgr.debug_info()
        assert info["pool_checked_out"] == 0
        await mgr.close()
        # the module-level connect uses the process-wide manager of the URL
        async with await dbmux.aio.connect(url) as conn:
            cur = await conn.execute("SELECT 40 + 2")
            assert await cur.fetchone() == (42,)
    asyncio.run(main())


def test_one_hand_off_per_statement_and_none_per_fetch(url):
    async def main():
        mgr = dbmux.aio.Manager(url)
        conn = await mgr.connect()
        submits = []
        real = mgr._executor.submit
        mgr._executor.submit = lambda *a: submits.append(a[0]) or real(*a)
        try:
            cur = await conn.execute("SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3")
            await cur.fetchone()
            await cur.fetchmany(1)
            await cur.fetchall()
            assert len(submits) == 1, submits
        finally:
            mgr._executor.submit = real
        await conn.close()
        await mgr.close()
    asyncio.run(main())


def test_the_event_loop_runs_while_the_database_works(url):
    async def main():
        mgr = dbmux.aio.Manager(url)
        conn = await mgr.connect()
        gaps, stop = [], asyncio.Event()

        async def ticker():
            last = time.perf_counter()
            while not stop.is_set():
                await asyncio.sleep(0.01)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        t = asyncio.create_task(ticker())
        slow = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) "
                "SELECT count(*) FROM c") if url.startswith("sqlite") else "SELECT 1 FROM pg_sleep(0.5)"
        start = time.perf_counter()
        await conn.execute(slow)
        took = time.perf_counter() - start
        stop.set()
        await t
        assert took > 0.2, took
        assert len(gaps) >= 10 and max(gaps) < 0.15, (took, max(gaps), len(gaps))
        await conn.close()
        await mgr.close()
    asyncio.run(main())


def test_a_cancelled_task_interrupts_its_statement_and_returns_the_connection(url, table):
    async def main():
        mgr = dbmux.aio.Manager(url)
        async with await mgr.connect() as conn:
            await conn.execute(f"CREATE TABLE {table} (x INTEGER)")
        conn = await mgr.connect()
        await conn.execute(f"INSERT INTO {table} VALUES (1)")  # uncommitted
        task = asyncio.create_task(conn.execute(long_query(url)))
        await asyncio.sleep(0.3)
        start = time.perf_counter()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        took = time.perf_counter() - start
        assert took < 5, f"the statement was not interrupted ({took:.1f} s)"
        # rolled back and back in the pool
        assert conn.closed
        info = await mgr.debug_info()
        assert info["pool_checked_out"] == 0, info
        async with await mgr.connect() as c2:
            cur = await c2.execute(f"SELECT count(*) FROM {table}")
            assert await cur.fetchone() == (0,)
            cur = await c2.execute("SELECT 7")
            assert await cur.fetchone() == (7,)
        await mgr.close()
    asyncio.run(main())


def test_closing_an_aio_manager_lets_go_of_the_file(tmp_path):
    path = tmp_path / "aio-gone.db"

    async def main():
        mgr = dbmux.aio.Manager(f"sqlite:///{path}")
        async with await mgr.connect() as c:
            await c.execute("CREATE TABLE t (x INTEGER)")
        assert open_fds_to(path)
        await mgr.close()
        assert open_fds_to(path) == []
    asyncio.run(main())
    os.remove(path)
