"""What the dbmux dialects share: the DBAPI module, the pool, checkouts,
disconnects, autocommit and isolation levels."""

import dbmux

from ._pool import DbmuxPool, ManagerSlot

# connections open at once through an engine with a pool class of its own
_UNPOOLED_MAX = 64


class DbmuxDialect:
    """Mixin of the `sqlite+dbmux` and `postgresql+dbmux` dialects (before
    SQLAlchemy's dialect class in the bases)."""

    driver = "dbmux"
    supports_statement_cache = True
    supports_sane_rowcount = True
    supports_sane_multi_rowcount = True
    # values as the database gives them (SQLAlchemy's types convert)
    _dbmux_raw = True
    # set by DbmuxPool, which owns the manager
    _dbmux_pool = None

    def __init__(self, **kw):
        # SQLAlchemy takes the DBAPI module's paramstyle ("qmark") unless
        # told: the dialect's own, which the checkouts are opened with
        kw.setdefault("paramstyle", self.default_paramstyle)
        super().__init__(**kw)

    @classmethod
    def import_dbapi(cls):
        return dbmux

    def _dbmux_connect_args(self, url, **parts):
        """`create_connect_args` of a dbmux dialect: the dbmux URL (SQLAlchemy's
        with `parts` changed, the password kept for the connection)."""
        return [], {"url": url.set(**parts).render_as_string(hide_password=False)}

    @classmethod
    def get_pool_class(cls, url):
        return DbmuxPool

    def connect(self, *cargs, **cparams):
        return self._dbmux_connect(*cargs, **cparams)

    def _dbmux_manager(self, url):
        pool = self._dbmux_pool
        if pool is not None:
            return pool.manager(url)
        # poolclass=NullPool, StaticPool, ...: SQLAlchemy's pool decides
        # what stays open, so this engine's own manager keeps nothing idle
        # (a connection closed is closed, and a disposed engine holds no file)
        slot = self.__dict__.get("_dbmux_own")
        if slot is None:  # setdefault: one slot even when two threads race
            slot = self.__dict__.setdefault(
                "_dbmux_own", ManagerSlot(pool_size=0, max_overflow=_UNPOOLED_MAX))
        return slot.get(url)

    def _dbmux_connect(self, url, readonly=False, after=None):
        return self._dbmux_manager(url).connect(
            readonly=readonly, after=after, raw=self._dbmux_raw, paramstyle=self.paramstyle)

    def do_close(self, dbapi_connection):
        dbapi_connection.close()

    def do_terminate(self, dbapi_connection):
        # SQLAlchemy invalidated it: dbmux closes it instead of pooling it
        dbapi_connection._discard()
        dbapi_connection.close()

    def is_disconnect(self, e, connection, cursor):
        if not isinstance(e, dbmux.Error):
            return False
        if e.name in ("connect_failed", "commit_unknown", "manager_closed"):
            return True
        return "the connection is closed" in str(e)

    def detect_autocommit_setting(self, dbapi_conn):
        return dbapi_conn.autocommit

    def _dbmux_set_isolation(self, dbapi_connection, level):
        """AUTOCOMMIT through the driver's `autocommit`; True when that was it."""
        if level == "AUTOCOMMIT":
            dbapi_connection.autocommit = True
            return True
        dbapi_connection.autocommit = False
        return False
