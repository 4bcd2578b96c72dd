"""`postgresql+dbmux://`: SQLAlchemy's PostgreSQL dialect on dbmux.

    engine = create_engine("postgresql+dbmux://app:secret@db/app?sslmode=verify-full")

libpq's URL and `sslmode` semantics, several hosts with
`target_session_attrs`, recovery within a second of a server restart and
fast failure for permanent errors come from dbmux. SQL goes to the server as
SQLAlchemy renders it: `numeric_dollar` placeholders (`$1`, `$2`, ...)
passed through untouched, so jsonb's `?`, `?|` and `?&` operators are never
mistaken for parameters; bind casts (`$1::INTEGER`) are rendered, as for
pg8000 and asyncpg. Values are dbmux's: `numeric` as `Decimal`, timestamps
as `datetime`, `bool` as `bool`; `description` carries the type OIDs.
"""

import datetime
import decimal
import uuid

from sqlalchemy import exc, util
from sqlalchemy.dialects.postgresql.base import INTERVAL, PGDialect, PGExecutionContext
from sqlalchemy.dialects.postgresql.json import JSON, JSONB
from sqlalchemy.dialects.postgresql.pg_catalog import INT2VECTOR, OIDVECTOR, _SpaceVector
from sqlalchemy.engine import processors
from sqlalchemy.sql import sqltypes

from ._asyncio import DbmuxAsyncDialect
from ._base import DbmuxDialect

__all__ = ["PGDialect_dbmux", "PGDialect_dbmux_async"]

_FLOAT_TYPES = (700, 701, 1021, 1022)
_DECIMAL_TYPES = (1231, 1700)
_INT_TYPES = (20, 21, 23, 26, 1005, 1007, 1016)


class _Cast:
    render_bind_cast = True


class _String(_Cast, sqltypes.String):
    pass


class _NumericCommon(_Cast, sqltypes.NumericCommon):
    def bind_processor(self, dialect):
        return None

    def result_processor(self, dialect, coltype):
        if self.asdecimal:
            if coltype in _FLOAT_TYPES:
                return processors.to_decimal_processor_factory(
                    decimal.Decimal, self._effective_decimal_return_scale)
            if coltype in _DECIMAL_TYPES or coltype in _INT_TYPES:
                return None  # dbmux gives Decimal for numeric, int for integers
            raise exc.InvalidRequestError(f"Unknown PG numeric type: {coltype}")
        if coltype in _FLOAT_TYPES:
            return None
        if coltype in _DECIMAL_TYPES or coltype in _INT_TYPES:
            return processors.to_float
        raise exc.InvalidRequestError(f"Unknown PG numeric type: {coltype}")


class _Numeric(_NumericCommon, sqltypes.Numeric):
    pass


class _Float(_NumericCommon, sqltypes.Float):
    pass


class _JSON(_Cast, JSON):
    pass


class _JSONB(_Cast, JSONB):
    pass


class _JSONIntIndexType(_Cast, sqltypes.JSON.JSONIntIndexType):
    __visit_name__ = "json_int_index"


class _JSONStrIndexType(_Cast, sqltypes.JSON.JSONStrIndexType):
    __visit_name__ = "json_str_index"


def _interval_text(td):
    return f"{td.days} days {td.seconds} seconds {td.microseconds} microseconds"


class _Interval(_Cast, INTERVAL):
    def bind_processor(self, dialect):
        def process(v):
            return _interval_text(v) if isinstance(v, datetime.timedelta) else v
        return process

    def result_processor(self, dialect, coltype):
        return None  # dbmux reads interval as a timedelta

    @classmethod
    def adapt_emulated_to_native(cls, interval, **kw):
        return _Interval(precision=interval.second_precision)


class _Uuid(_Cast, sqltypes.Uuid):
    """Native uuid columns: dbmux sends and reads their text."""

    def bind_processor(self, dialect):
        if not self.native_uuid:
            return super().bind_processor(dialect)

        def process(v):
            return str(v) if isinstance(v, uuid.UUID) else v
        return process

    def result_processor(self, dialect, coltype):
        if not self.native_uuid:
            return super().result_processor(dialect, coltype)
        if not self.as_uuid:
            return None

        def process(v):
            return uuid.UUID(v) if isinstance(v, str) else v
        return process


class _DateTime(_Cast, sqltypes.DateTime):
    pass


class _Date(_Cast, sqltypes.Date):
    pass


class _Time(_Cast, sqltypes.Time):
    pass


class _Integer(_Cast, sqltypes.Integer):
    pass


class _SmallInteger(_Cast, sqltypes.SmallInteger):
    pass


class _BigInteger(_Cast, sqltypes.BigInteger):
    pass


class _Boolean(_Cast, sqltypes.Boolean):
    pass


class _INT2VECTOR(_SpaceVector, INT2VECTOR):
    """dbmux reads int2vector as its text, "1 2 3" (as psycopg2 does)."""


class _OIDVECTOR(_SpaceVector, OIDVECTOR):
    pass


class PGExecutionContext_dbmux(PGExecutionContext):
    pass


class PGDialect_dbmux(DbmuxDialect, PGDialect):
    """`postgresql+dbmux://` (URLs as libpq takes them, after the driver
    name)."""

    supports_statement_cache = True
    default_paramstyle = "numeric_dollar"
    render_bind_cast = True
    supports_server_side_cursors = False
    supports_native_json_serialization = False
    supports_native_json_deserialization = False
    supports_native_uuid = True
    description_encoding = None
    execution_ctx_cls = PGExecutionContext_dbmux
    _dbmux_raw = False

    colspecs = util.update_copy(
        PGDialect.colspecs,
        {
            sqltypes.String: _String,
            sqltypes.Numeric: _Numeric,
            sqltypes.Float: _Float,
            sqltypes.JSON: _JSON,
            JSONB: _JSONB,
            sqltypes.JSON.JSONIntIndexType: _JSONIntIndexType,
            sqltypes.JSON.JSONStrIndexType: _JSONStrIndexType,
            sqltypes.Interval: _Interval,
            INTERVAL: _Interval,
            sqltypes.Uuid: _Uuid,
            sqltypes.DateTime: _DateTime,
            sqltypes.Date: _Date,
            sqltypes.Time: _Time,
            sqltypes.Integer: _Integer,
            sqltypes.SmallInteger: _SmallInteger,
            sqltypes.BigInteger: _BigInteger,
            sqltypes.Boolean: _Boolean,
            INT2VECTOR: _INT2VECTOR,
            OIDVECTOR: _OIDVECTOR,
        },
    )

    @classmethod
    def get_async_dialect_cls(cls, url):
        return PGDialect_dbmux_async

    def create_connect_args(self, url):
        return self._dbmux_connect_args(url, drivername="postgresql")

    def get_isolation_level_values(self, dbapi_connection):
        return ("AUTOCOMMIT", "READ COMMITTED", "READ UNCOMMITTED", "REPEATABLE READ",
                "SERIALIZABLE")

    def set_isolation_level(self, dbapi_connection, level):
        level = level.replace("_", " ")
        if not self._dbmux_set_isolation(dbapi_connection, level):
            # for this checkout's transactions (BEGIN; SET TRANSACTION ...)
            dbapi_connection.isolation_level = level

    def get_isolation_level(self, dbapi_connection):
        level = dbapi_connection.isolation_level
        if level is not None:
            return level
        return super().get_isolation_level(dbapi_connection)

    def set_readonly(self, connection, value):
        cursor = connection.cursor()
        try:
            cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION "
                           + ("READ ONLY" if value else "READ WRITE"))
        finally:
            cursor.close()

    def get_readonly(self, connection):
        cursor = connection.cursor()
        try:
            cursor.execute("show transaction_read_only")
            return cursor.fetchone()[0] == "on"
        finally:
            cursor.close()

    def set_deferrable(self, connection, value):
        cursor = connection.cursor()
        try:
            cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION "
                           + ("DEFERRABLE" if value else "NOT DEFERRABLE"))
        finally:
            cursor.close()

    def get_deferrable(self, connection):
        cursor = connection.cursor()
        try:
            cursor.execute("show transaction_deferrable")
            return cursor.fetchone()[0] == "on"
        finally:
            cursor.close()


class PGDialect_dbmux_async(DbmuxAsyncDialect, PGDialect_dbmux):
    """`create_async_engine("postgresql+dbmux://...")`: the same dialect on
    `dbmux.aio`."""

    supports_statement_cache = True
