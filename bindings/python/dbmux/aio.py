"""asyncio for dbmux: the same pools, connections and cursors, awaited.

    import dbmux.aio
    async with await dbmux.aio.connect("sqlite:///app.db") as conn:
        cur = await conn.execute("SELECT ? + 1", (41,))
        print(await cur.fetchone())          # (42,)

Each statement goes to a worker thread once (Rust threads of dbmux's own,
one set per manager, as many as the pool can have connections:
`pool_size + max_overflow`, fed through one queue). The worker runs it
without taking the GIL and hands the result back whole through a socket
the event loop watches, so the fetches are answered on the event loop
without another hand-off, and no GIL passes between threads on the way.
A worker that finished a statement stays awake for 50 microseconds for
the next one (one worker at a time), about what a sleeping thread takes
to wake. The event loop never blocks on the database.

A task cancelled while its statement runs interrupts that statement
(SQLite's `sqlite3_interrupt`, a PostgreSQL cancel request), waits for the
worker to let go of the connection, rolls it back and returns it to the
pool, and only then lets the `CancelledError` go on: a connection is never
handed out while a statement still runs on it.
"""

import asyncio
import json
import threading
import weakref

from . import _dbmux

from ._manager import Manager as _SyncManager
from ._manager import _manager_for

__all__ = ["Manager", "Connection", "Cursor", "connect"]

class _Statement(asyncio.Future):
    """The future of a connection's call on a worker. A cancellation does
    not end it: it interrupts the statement (`cancel()` returns False, so
    the task's CancelledError comes once the worker has let go of the
    connection, see `Connection._wait`)."""

    __slots__ = ("_interrupt",)

    def cancel(self, msg=None):
        if not self.done():
            # off the event loop: a PostgreSQL cancel request is a
            # connection of its own (at most a few seconds)
            self.get_loop().run_in_executor(None, self._interrupt)
        return False


class _Workers:
    """dbmux's worker threads for one manager: Rust threads, as many as the
    pool can have connections (`pool_size + max_overflow`), fed through
    one queue. A statement runs on one without the GIL; the outcome comes
    back to the awaiting loop through that loop's waker (a socket it
    watches), so no GIL passes between threads on the way."""

    def __init__(self, n):
        self._native = _dbmux._Workers(n)

    def submit(self, fn, *args):
        """Runs `fn(*args)` on a worker: an asyncio future of the running loop."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._native.call(_waker_of(loop), fut, fn, args)
        return fut

    def run(self, sync, fn, *args):
        """Runs `fn(*args)`, a call on the (sync) connection `sync`, on a
        worker: a `_Statement` future."""
        waker, fut = _statement(sync)
        self._native.call(waker, fut, fn, args)
        return fut

    def execute(self, sync, cursor, sql, params):
        """Runs the (sync) `cursor`'s statement on a worker: a `_Statement`
        future that gets None (the rows are on the cursor). Bad SQL or
        parameters raise here, before any hand-off."""
        waker, fut = _statement(sync)
        self._native.execute(waker, fut, cursor, sql, params)
        return fut

    def shutdown(self):
        self._native.shutdown()


def _statement(sync):
    """The running loop's waker, and a new `_Statement` future of it that
    interrupts the (sync) connection `sync` when cancelled."""
    loop = asyncio.get_running_loop()
    fut = _Statement(loop=loop)
    fut._interrupt = sync._interrupt
    return _waker_of(loop), fut


_wakers = weakref.WeakKeyDictionary()


def _waker_of(loop):
    """The waker of `loop`: made at its first job, watched with
    `add_reader` (or, where the loop has none, woken with
    `call_soon_threadsafe`)."""
    w = _wakers.get(loop)
    if w is None:
        w = _dbmux._Waker()
        try:
            loop.add_reader(w.fd, w.drain)
        except NotImplementedError:  # e.g. Windows' proactor loop
            w = _threadsafe_waker(loop)
        _wakers[loop] = w
    return w


def _threadsafe_waker(loop):
    box = []
    w = _dbmux._Waker(lambda: loop.call_soon_threadsafe(box[0].drain))
    box.append(w)
    return w


_executors = {}
_executors_lock = threading.Lock()


def _executor_of(sync):
    """The worker threads of a (sync) manager: one set of threads per manager."""
    with _executors_lock:
        ex = _executors.get(id(sync))
        if ex is None or ex[0] is not sync:
            info = json.loads(sync._debug_info_json())
            n = max(1, info["pool_size"] + info["pool_max_overflow"])
            ex = (sync, _Workers(n))
            _executors[id(sync)] = ex
        return ex[1]


def _forget_executor(sync):
    with _executors_lock:
        ex = _executors.pop(id(sync), None)
    if ex is not None:
        ex[1].shutdown()


async def _call(executor, fn, *args):
    """`fn(*args)` on a worker thread: the one hand-off of a call."""
    return await executor.submit(fn, *args)


class Manager:
    """The asyncio face of a dbmux manager (a pool) for one URL; `None`
    reads the environment, as `dbmux.Manager` (which takes the same pool
    settings: `pool_size`, `max_overflow`, ...)."""

    def __init__(self, url=None, *, _sync=None, **pool):
        self._sync = _sync if _sync is not None else _SyncManager(url, **pool)
        self._executor = _executor_of(self._sync)

    @property
    def backend(self):
        """`sqlite` or `postgresql`."""
        return self._sync.backend

    async def connect(self, readonly=False, after=None, **kw):
        """A connection from the pool, checked out off the event loop (on
        asyncio's default executor, so that waiting for a free connection
        never takes a statement worker); arguments as
        `dbmux.Manager.connect`."""
        # not on the statement workers: a checkout that waits for a
        # connection must not hold the thread its holder's statements need
        loop = asyncio.get_running_loop()
        c = await loop.run_in_executor(None, lambda: self._sync.connect(readonly, after, **kw))
        return Connection(c, self._executor)

    async def health(self):
        """The health report as a dict."""
        return await _call(self._executor, self._sync.health)

    async def debug_info(self):
        """Pool state and counters as a dict."""
        return await _call(self._executor, self._sync.debug_info)

    def metrics(self, openmetrics=False):
        """The Prometheus text (or OpenMetrics); a read of counters that
        never waits, so it is not a coroutine."""
        return self._sync.metrics(openmetrics=openmetrics)

    async def close(self):
        """Closes every connection of the pool (and its worker threads)."""
        await _call(self._executor, self._sync.close)
        _forget_executor(self._sync)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()
        return False


async def connect(url=None, readonly=False, after=None):
    """A connection from the process-wide manager of `url` (the
    environment's for `None`), as `dbmux.connect`, awaited."""
    return await Manager(_sync=_manager_for(url)).connect(readonly, after)


class Connection:
    """An awaited PEP 249 connection. `async with conn:` commits on success,
    rolls back on an exception, and returns it to the pool; `async with
    conn.transaction():` does the same for one transaction and keeps the
    connection."""

    def __init__(self, sync, executor):
        self._sync = sync
        self._executor = executor

    @property
    def readonly(self):
        return self._sync.readonly

    @property
    def closed(self):
        return self._sync.closed

    @property
    def write_token(self):
        return self._sync.write_token

    @property
    def autocommit(self):
        """As `dbmux.Connection.autocommit` (no I/O: set it on the loop)."""
        return self._sync.autocommit

    @autocommit.setter
    def autocommit(self, on):
        self._sync.autocommit = on

    @property
    def isolation_level(self):
        """As `dbmux.Connection.isolation_level`."""
        return self._sync.isolation_level

    @isolation_level.setter
    def isolation_level(self, level):
        self._sync.isolation_level = level

    async def _run(self, fn, *args):
        """`fn(*args)` on a worker (see `_wait`)."""
        return await self._wait(self._executor.run(self._sync, fn, *args))

    async def _wait(self, fut):
        """Awaits a worker's `_Statement`: a cancellation interrupts the
        statement, and once the worker has let go of the connection, rolls
        it back and returns it to the pool (see the module's doc)."""
        try:
            return await fut
        except asyncio.CancelledError:
            # the connection is the worker's until its call ends
            while not fut.done():
                try:
                    await asyncio.wait([fut])
                except asyncio.CancelledError:
                    continue
            if not fut.cancelled():
                fut.exception()  # retrieved: the interrupted statement's error is expected
            # roll back and give it back to the pool; nobody may use it meanwhile
            closing = self._executor.submit(self._sync.close)
            while not closing.done():
                try:
                    await asyncio.wait([closing])
                except asyncio.CancelledError:
                    continue
            raise

    def cursor(self):
        return Cursor(self, self._sync.cursor())

    async def execute(self, sql, params=None):
        """A new cursor, executed."""
        cur = self.cursor()
        await cur.execute(sql, params)
        return cur

    async def commit(self):
        await self._run(self._sync.commit)

    async def rollback(self):
        await self._run(self._sync.rollback)

    async def close(self):
        """Rolls back anything uncommitted and returns the connection to the pool."""
        await _call(self._executor, self._sync.close)

    def transaction(self):
        """`async with conn.transaction():` commits on success, rolls back on
        an exception."""
        return _Transaction(self)

    async def __aenter__(self):
        return self

    async def __aexit__(self, exc_type, exc, tb):
        try:
            if not self._sync.closed:
                if exc_type is None:
                    await self.commit()
                else:
                    await self.rollback()
        finally:
            if not self._sync.closed:
                await self.close()
        return False


class _Transaction:
    def __init__(self, conn):
        self._conn = conn

    async def __aenter__(self):
        return self._conn

    async def __aexit__(self, exc_type, exc, tb):
        if exc_type is None:
            await self._conn.commit()
        elif not self._conn.closed:
            await self._conn.rollback()
        return False


class Cursor:
    """An awaited PEP 249 cursor: `await cur.execute(...)` runs the statement
    on a worker; the fetches are answered at once (the result came back
    whole)."""

    def __init__(self, conn, sync):
        self.connection = conn
        self._sync = sync

    @property
    def description(self):
        return self._sync.description

    @property
    def rowcount(self):
        return self._sync.rowcount

    @property
    def lastrowid(self):
        return self._sync.lastrowid

    @property
    def arraysize(self):
        return self._sync.arraysize

    @arraysize.setter
    def arraysize(self, n):
        self._sync.arraysize = n

    async def execute(self, sql, params=None):
        conn = self.connection
        await conn._wait(conn._executor.execute(conn._sync, self._sync, sql, params))
        return self

    async def executemany(self, sql, seq_of_params):
        await self.connection._run(self._sync.executemany, sql, list(seq_of_params))
        return self

    async def fetchone(self):
        return self._sync.fetchone()

    async def fetchmany(self, size=None):
        return self._sync.fetchmany(size)

    async def fetchall(self):
        return self._sync.fetchall()

    async def close(self):
        self._sync.close()

    def __aiter__(self):
        return self

    async def __anext__(self):
        row = self._sync.fetchone()
        if row is None:
            raise StopAsyncIteration
        return row

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        self._sync.close()
        return False

