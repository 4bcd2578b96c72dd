"""`DbmuxPool`: SQLAlchemy's pool interface with the dbmux pool under it.

SQLAlchemy checks a connection out of its pool for every `engine.connect()`
and `Session`; here that checkout is a dbmux checkout (`Manager.connect`),
and checking it in returns it to dbmux. dbmux does the pooling itself
(sizes, overflow, timeouts with a cause, recycling, pre-ping, recovery after
a server restart), so the keywords users pass to `create_engine` --
`pool_size`, `max_overflow`, `pool_timeout`, `pool_recycle`,
`pool_pre_ping` -- go to the dbmux manager instead of a second pool.

SQLAlchemy's `connect` event fires once per *physical* connection (the
first checkout of each connection dbmux opens), as with its own pools, so
`PRAGMA`s, `ATTACH`es and `SET`s made there stay for the connection's life.
`engine.dispose()` closes every connection of the manager before it returns
(a SQLite file can be deleted at once), and the next checkout builds a new
manager.
"""

import sys
import threading
import time

from sqlalchemy.pool import Pool
from sqlalchemy.pool.base import _ConnectionRecord

import dbmux

__all__ = ["DbmuxPool"]


class ManagerSlot:
    """One engine's dbmux manager, built from `settings` at its first use
    (and again after it was closed), for one URL."""

    def __init__(self, **settings):
        self._settings = {k: v for k, v in settings.items() if v is not None}
        self._manager = None
        self._url = None
        self._lock = threading.Lock()

    def get(self, url):
        with self._lock:
            if self._manager is None or self._manager.closed:
                self._manager = dbmux.Manager(url, **self._settings)
                self._url = url
            elif url != self._url:
                raise dbmux.InterfaceError(
                    "one engine, one database: this pool's manager serves another URL")
            return self._manager

    def current(self):
        """The manager if it is built and open, else None."""
        m = self._manager
        return None if m is None or m.closed else m

    def close(self):
        """Closes the manager, every connection before it returns (checked-out
        ones as they are returned), and its dbmux.aio worker threads."""
        with self._lock:
            m, self._manager = self._manager, None
        if m is not None:
            m.close()
            aio = sys.modules.get("dbmux.aio")
            if aio is not None:
                aio._forget_executor(m)


class DbmuxPool(Pool):
    """A SQLAlchemy pool whose connections come from one dbmux manager.

    `pool_size`, `max_overflow`, `timeout` (`pool_timeout`), `recycle`
    (`pool_recycle`, -1: never) and `pre_ping` (`pool_pre_ping`) configure
    that manager; `None` (the default) keeps dbmux's setting, which the
    environment (`DB_POOL_SIZE`, ...) may give."""

    def __init__(self, creator, pool_size=None, max_overflow=None, timeout=None,
                 recycle=None, pre_ping=None, use_lifo=False, **kw):
        # SQLAlchemy's own recycle and pre-ping stay off: dbmux does both
        super().__init__(creator, recycle=-1, pre_ping=False, **kw)
        self._settings = {
            "pool_size": pool_size,
            "max_overflow": max_overflow,
            "pool_timeout": timeout,
            "pool_recycle": recycle,
            "pool_pre_ping": pre_ping,
        }
        self._use_lifo = use_lifo
        self._slot = ManagerSlot(**self._settings)
        dialect = kw.get("dialect")
        if dialect is not None and hasattr(dialect, "_dbmux_connect"):
            dialect._dbmux_pool = self

    def manager(self, url):
        """The dbmux manager of this pool (built at the first checkout)."""
        return self._slot.get(url)

    def _do_get(self):
        rec = _ConnectionRecord(self, connect=False)
        rec.starttime = time.time()
        conn = self._invoke_creator(rec)
        rec.dbapi_connection = conn
        rec.fresh = True
        if not getattr(conn, "_first_checkout", True):
            # what SQLAlchemy sets per connection in its own `connect` hook
            # lives on the checkout here: the engine's isolation_level
            level = getattr(self._dialect, "_on_connect_isolation_level", None)
            if level is not None:
                try:
                    self._dialect._assert_and_set_isolation_level(conn, level)
                except BaseException:
                    rec.dbapi_connection = None
                    self._dialect.do_close(conn)
                    raise
            return rec
        try:
            if self.dispatch.first_connect:
                self.dispatch.first_connect.for_modify(self.dispatch).exec_once_unless_exception(
                    conn, rec)
            self.dispatch.connect.for_modify(self.dispatch)._exec_w_sync_on_first_run(conn, rec)
        except BaseException:
            # the connection's setup did not complete: never pool it again
            rec.dbapi_connection = None
            self._dialect.do_terminate(conn)
            raise
        return rec

    def _do_return_conn(self, record):
        conn = record.dbapi_connection
        record.dbapi_connection = None
        if conn is not None:
            self._dialect.do_close(conn)

    def recreate(self):
        self.logger.info("Pool recreating")
        s = self._settings
        return self.__class__(
            self._creator,
            pool_size=s["pool_size"],
            max_overflow=s["max_overflow"],
            timeout=s["pool_timeout"],
            recycle=s["pool_recycle"],
            pre_ping=s["pool_pre_ping"],
            use_lifo=self._use_lifo,
            echo=self.echo,
            logging_name=self._orig_logging_name,
            reset_on_return=self._reset_on_return,
            _dispatch=self.dispatch,
            dialect=self._dialect,
        )

    def dispose(self):
        """Closes every connection of the dbmux manager (checked-out ones as
        they are returned) before it returns."""
        self._slot.close()

    def _info(self):
        m = self._slot.current()
        return {} if m is None else m.debug_info()

    def size(self):
        return self._info().get("pool_size", self._settings["pool_size"] or 0)

    def checkedin(self):
        return self._info().get("pool_checked_in", 0)

    def checkedout(self):
        return self._info().get("pool_checked_out", 0)

    def overflow(self):
        return self._info().get("pool_overflow", 0)

    def status(self):
        i = self._info()
        return (f"DbmuxPool size: {i.get('pool_size', '-')}  connections in pool: "
                f"{i.get('pool_checked_in', 0)} checked out: {i.get('pool_checked_out', 0)} "
                f"overflow: {i.get('pool_overflow', 0)}")
