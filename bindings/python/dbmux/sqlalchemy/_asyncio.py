"""The asyncio side of the dbmux dialects: SQLAlchemy's adapters of an
awaited DBAPI (`sqlalchemy.connectors.asyncio`) over `dbmux.aio`."""

from sqlalchemy.connectors.asyncio import (
    AsyncAdapt_dbapi_connection, AsyncAdapt_dbapi_cursor, AsyncAdapt_dbapi_module,
)
from sqlalchemy.util.concurrency import await_

import dbmux
import dbmux.aio

_EXPORTED = (
    "Warning", "Error", "InterfaceError", "DatabaseError", "DataError", "OperationalError",
    "IntegrityError", "InternalError", "ProgrammingError", "NotSupportedError",
    "STRING", "BINARY", "NUMBER", "DATETIME", "ROWID", "Binary", "sqlite_version",
    "sqlite_version_info",
    "apilevel", "threadsafety",
)


class AsyncAdapt_dbmux_dbapi(AsyncAdapt_dbapi_module):
    """`dbmux.aio` as the DBAPI module SQLAlchemy's async engine expects."""

    def __init__(self):
        super().__init__(dbmux.aio, dbapi_module=dbmux)
        for name in _EXPORTED:
            setattr(self, name, getattr(dbmux, name))
        self.paramstyle = dbmux.paramstyle


class AsyncAdapt_dbmux_cursor(AsyncAdapt_dbapi_cursor):
    __slots__ = ()


class AsyncAdapt_dbmux_connection(AsyncAdapt_dbapi_connection):
    """A `dbmux.aio.Connection`, driven from SQLAlchemy's greenlets."""

    __slots__ = ()
    _cursor_cls = AsyncAdapt_dbmux_cursor

    @property
    def autocommit(self):
        return self._connection.autocommit

    @autocommit.setter
    def autocommit(self, on):
        self._connection.autocommit = on

    @property
    def isolation_level(self):
        return self._connection.isolation_level

    @isolation_level.setter
    def isolation_level(self, level):
        self._connection.isolation_level = level

    @property
    def _first_checkout(self):
        return self._connection._sync._first_checkout

    def _discard(self):
        self._connection._sync._discard()

    def create_function(self, *args, **kw):
        # registration only, no statement: done here, on the loop
        self._connection._sync.create_function(*args, **kw)

    def close(self):
        try:
            await_(self._connection.close())
        except Exception as error:
            self._handle_exception(error)


def connect(dialect, url, readonly, after):
    """A dbmux checkout for SQLAlchemy's async engine (in its greenlet)."""
    manager = dbmux.aio.Manager(_sync=dialect._dbmux_manager(url))
    conn = await_(manager.connect(readonly, after, raw=dialect._dbmux_raw,
                                  paramstyle=dialect.paramstyle))
    return AsyncAdapt_dbmux_connection(dialect.loaded_dbapi, conn)


class DbmuxAsyncDialect:
    """Mixin of the async dialects (before the sync dialect in the bases):
    `create_async_engine` on the same URLs, over `dbmux.aio`."""

    is_async = True
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls):
        return AsyncAdapt_dbmux_dbapi()

    def _dbmux_connect(self, url, readonly=False, after=None):
        return connect(self, url, readonly, after)

    def get_driver_connection(self, connection):
        return connection._connection
