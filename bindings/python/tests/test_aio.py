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


def slow_query(url):
    """A statement that runs about half a second, and its one row."""
    if url.startswith("sqlite"):
        return ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) "
                "SELECT count(*) FROM c"), (3000000,)
    return "SELECT count(*) FROM pg_sleep(0.5)", (1,)


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
        workers = mgr._executor._native
        before = workers.handed
        cur = await conn.execute("SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3")
        assert await cur.fetchone() == (1,)
        assert await cur.fetchmany(1) == [(2,)]
        assert await cur.fetchall() == [(3,)]
        assert workers.handed - before == 1
        await conn.commit()
        assert workers.handed - before == 2
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
        slow, _ = slow_query(url)
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


def test_a_timeout_around_a_statement_interrupts_it(url):
    """asyncio.wait_for, as services bound a request: TimeoutError once the
    statement was interrupted, and the connection back in the pool."""
    async def main():
        mgr = dbmux.aio.Manager(url)
        conn = await mgr.connect()
        start = time.perf_counter()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(conn.execute(long_query(url)), 0.3)
        took = time.perf_counter() - start
        assert took < 5, f"the statement was not interrupted ({took:.1f} s)"
        assert conn.closed
        assert (await mgr.debug_info())["pool_checked_out"] == 0
        async with await mgr.connect() as c2:
            assert await (await c2.execute("SELECT 5")).fetchone() == (5,)
        await mgr.close()
    asyncio.run(main())


def test_a_cursor_refuses_fetches_while_its_statement_runs(url):
    async def main():
        mgr = dbmux.aio.Manager(url)
        conn = await mgr.connect()
        cur = conn.cursor()
        slow, row = slow_query(url)
        task = asyncio.create_task(cur.execute(slow))
        await asyncio.sleep(0.05)
        assert not task.done()
        with pytest.raises(dbmux.ProgrammingError, match="still running on this cursor") as e:
            await cur.fetchone()
        assert e.value.name == "misuse"
        with pytest.raises(dbmux.ProgrammingError, match="still running"):
            await cur.execute("SELECT 1")
        await task
        assert await cur.fetchone() == row
        await conn.close()
        await mgr.close()
    asyncio.run(main())


def test_a_statement_after_the_manager_closed_is_refused(url):
    async def main():
        mgr = dbmux.aio.Manager(url)
        conn = await mgr.connect()
        cur = conn.cursor()
        await mgr.close()
        with pytest.raises(dbmux.InterfaceError, match="the manager is closed") as e:
            await cur.execute("SELECT 1")
        assert e.value.name == "manager_closed"
        # the cursor is usable for nothing else, and says so
        with pytest.raises(dbmux.Error):
            await cur.fetchone()
    asyncio.run(main())


def test_a_loop_without_add_reader_is_woken_another_way(url):
    """Loops that cannot watch a socket (Windows' proactor loop) get the
    results through call_soon_threadsafe."""
    class NoReaderLoop(asyncio.SelectorEventLoop):
        def add_reader(self, *a):
            raise NotImplementedError

    async def main():
        mgr = dbmux.aio.Manager(url)
        async with await mgr.connect() as conn:
            for i in range(50):
                cur = await conn.execute("SELECT ? + 1", (i,))
                assert await cur.fetchone() == (i + 1,)
            with pytest.raises(dbmux.ProgrammingError):
                await conn.execute("SELEKT 1")
        await mgr.close()

    loop = NoReaderLoop()
    try:
        loop.run_until_complete(main())
        assert dbmux.aio._wakers[loop].fd is None
    finally:
        loop.close()
