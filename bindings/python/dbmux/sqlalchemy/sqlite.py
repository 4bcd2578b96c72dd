"""`sqlite+dbmux://`: SQLAlchemy's SQLite dialect on dbmux.

    engine = create_engine("sqlite+dbmux:///app.db", pool_size=5, max_overflow=10)

Everything SQLAlchemy's stdlib `sqlite3` dialect (pysqlite) does for SQL
and types, on dbmux's pool: WAL and busy handling that survive concurrency,
the writer lane (no "database is locked"), health and metrics. Values come
back raw (`raw=True`): SQLAlchemy's SQLite types convert dates and decimals
themselves, as they do for pysqlite; its `connect` hook registers REGEXP
and floor() through `create_function`, once per connection.
"""

from sqlalchemy.dialects.sqlite.base import SQLiteDialect
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy import exc

import dbmux

from ._asyncio import DbmuxAsyncDialect
from ._base import DbmuxDialect

__all__ = ["SQLiteDialect_dbmux", "SQLiteDialect_dbmux_async"]


class SQLiteDialect_dbmux(DbmuxDialect, SQLiteDialect_pysqlite):
    """`sqlite+dbmux://` (file paths as in SQLAlchemy: three slashes for a
    relative path, four for an absolute one; no path for a private
    in-memory database, shared by the connections of the engine)."""

    supports_statement_cache = True
    default_paramstyle = "qmark"

    @classmethod
    def get_async_dialect_cls(cls, url):
        return SQLiteDialect_dbmux_async

    def _get_server_version_info(self, connection):
        return dbmux.sqlite_version_info

    def create_connect_args(self, url):
        if url.username or url.password or url.host or url.port:
            raise exc.ArgumentError(
                f"Invalid SQLite URL: {url}\nValid forms: sqlite+dbmux:///relative/path.db, "
                "sqlite+dbmux:////absolute/path.db, sqlite+dbmux:// (in memory)")
        return self._dbmux_connect_args(url, drivername="sqlite",
                                        database=url.database or ":memory:")

    def set_isolation_level(self, dbapi_connection, level):
        if not self._dbmux_set_isolation(dbapi_connection, level):
            SQLiteDialect.set_isolation_level(self, dbapi_connection, level)


class SQLiteDialect_dbmux_async(DbmuxAsyncDialect, SQLiteDialect_dbmux):
    """`create_async_engine("sqlite+dbmux:///app.db")`: the same dialect on
    `dbmux.aio` (one hand-off to dbmux's worker threads per statement)."""

    supports_statement_cache = True
