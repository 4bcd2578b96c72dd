"""dbmux: a PEP 249 (DB-API 2.0) driver for SQLite and PostgreSQL, pooled by
the dbmux Rust connection manager through its C library.

    import dbmux
    with dbmux.connect("sqlite:///app.db") as conn:      # or connect() for DATABASE_URL
        cur = conn.cursor()
        cur.execute("SELECT ? + 1", (41,))
        print(cur.fetchone())                             # (42,)

threadsafety = 2: threads may share the module and connections (each
connection serialises its calls with a lock); a cursor is used by one
thread at a time.
"""

import ctypes
import datetime
import decimal
import json
import functools
import logging
import marshal
import threading
import time
from ctypes import byref, c_int64, c_size_t, c_void_p

from . import _errors, _ffi
from ._errors import (  # noqa: F401 - re-exported (PEP 249)
    DatabaseError, DataError, Error, IntegrityError, InterfaceError, InternalError,
    NotSupportedError, OperationalError, ProgrammingError, Warning,
)

__version__ = "0.1.0"

apilevel = "2.0"
threadsafety = 2
paramstyle = "qmark"

_lib = _ffi.lib

assert _ffi.PACKAGE_VERSION == __version__  # checked against the library in _ffi


# ---------------------------------------------------------------- types --

class DBAPITypeObject:
    """Compares equal to every type code (declared column type) of its kind."""

    def __init__(self, name, *keywords):
        self.name = name
        self.keywords = keywords

    def __eq__(self, other):
        if isinstance(other, DBAPITypeObject):
            return self is other
        if not isinstance(other, str):
            return NotImplemented
        return _kind(other) == self.name

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self):
        return hash(self.name)

    def __repr__(self):
        return f"dbmux.{self.name}"


def _kind(decl):
    """The DB-API kind of a declared type name (SQLite's affinity rules,
    extended with PostgreSQL's type names)."""
    t = decl.upper()
    if t == "OID" or "ROWID" in t:
        return "ROWID"
    if "DATE" in t or "TIME" in t:
        return "DATETIME"
    if "BLOB" in t or "BYTEA" in t or "BINARY" in t:
        return "BINARY"
    if "CHAR" in t or "CLOB" in t or "TEXT" in t or t in ("NAME", "JSON", "JSONB", "UUID", "XML", "CITEXT"):
        return "STRING"
    if ("INT" in t or "REAL" in t or "FLOA" in t or "DOUB" in t or "NUM" in t or "DEC" in t
            or "BOOL" in t or t in ("FLOAT4", "FLOAT8", "MONEY")):
        return "NUMBER"
    return "STRING"


STRING = DBAPITypeObject("STRING")
BINARY = DBAPITypeObject("BINARY")
NUMBER = DBAPITypeObject("NUMBER")
DATETIME = DBAPITypeObject("DATETIME")
ROWID = DBAPITypeObject("ROWID")

Date = datetime.date
Time = datetime.time
Timestamp = datetime.datetime


def DateFromTicks(ticks):
    return Date(*time.localtime(ticks)[:3])


def TimeFromTicks(ticks):
    return Time(*time.localtime(ticks)[3:6])


def TimestampFromTicks(ticks):
    return Timestamp(*time.localtime(ticks)[:6])


def Binary(data):
    return bytes(data)


# ------------------------------------------------------------- logging --

_logger = logging.getLogger("dbmux")
_LEVELS = {1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO, 4: logging.DEBUG, 5: logging.DEBUG}


@_ffi.LOG_FN
def _log_bridge(level, target, message, _user_data):
    try:
        _logger.getChild(target.decode().replace("::", ".").removeprefix("dbmux").lstrip(".") or "core") \
            .log(_LEVELS.get(level, logging.INFO), "%s", message.decode("utf-8", "replace"))
    except Exception:  # never let an exception cross into Rust
        pass


try:
    _lib.dbmux_set_log_callback(_log_bridge, None)
except InterfaceError:  # another logger owns Rust's log facade in this process
    pass


# ----------------------------------------------------------- parameters --

def _params(params):
    """Converts Python values to a dbmux_value array (and keeps the buffers alive)."""
    if not params and params is not None and isinstance(params, (tuple, list)):
        return None, 0, ()
    if params is None:
        return None, 0, ()
    if isinstance(params, (str, bytes)) or not hasattr(params, "__len__"):
        raise ProgrammingError("parameters must be a sequence (tuple or list) of values, in ? order",
                               _errors.INVALID_PARAMETER)
    n = len(params)
    arr = (_ffi.Value * n)()
    keep = []
    for i, v in enumerate(params):
        slot = arr[i]
        if v is None:
            slot.type = _ffi.NULL
        elif isinstance(v, bool):
            slot.type, slot.int64 = _ffi.INT64, int(v)
        elif isinstance(v, int):
            if not -(1 << 63) <= v < (1 << 63):
                raise DataError(f"parameter {i + 1}: integer {v} does not fit in 64 bits", _errors.TYPE_MISMATCH)
            slot.type, slot.int64 = _ffi.INT64, v
        elif isinstance(v, float):
            slot.type, slot.real = _ffi.DOUBLE, v
        else:
            if isinstance(v, str):
                kind, data = _ffi.TEXT, v.encode("utf-8")
            elif isinstance(v, (bytes, bytearray, memoryview)):
                kind, data = _ffi.BLOB, bytes(v)
            elif isinstance(v, datetime.datetime):
                kind, data = _ffi.TEXT, v.isoformat(sep=" ").encode()
            elif isinstance(v, (datetime.date, datetime.time)):
                kind, data = _ffi.TEXT, v.isoformat().encode()
            elif isinstance(v, decimal.Decimal):
                kind, data = _ffi.TEXT, str(v).encode()
            else:
                raise ProgrammingError(
                    f"parameter {i + 1}: values of type {type(v).__name__} are not supported; use None, "
                    "int, float, str, bytes, bool, date, time, datetime or Decimal", _errors.INVALID_PARAMETER)
            buf = ctypes.create_string_buffer(data, len(data))
            keep.append(buf)
            slot.type, slot.ptr, slot.len = kind, ctypes.cast(buf, c_void_p), len(data)
    return arr, n, keep


def _convert(decl, value):
    """Turns a value read back into the Python type its declared type names."""
    if value is None or decl is None:
        return value
    t = decl.upper()
    try:
        if "BOOL" in t and isinstance(value, int):
            return bool(value)
        if isinstance(value, str):
            if t == "DATE":
                return datetime.date.fromisoformat(value)
            if "TIMESTAMP" in t or t == "DATETIME":
                return datetime.datetime.fromisoformat(value.replace(" ", "T"))
            if t == "TIME" or t.startswith("TIME ") or t == "TIMETZ":
                return datetime.time.fromisoformat(value)
            if "NUMERIC" in t or "DECIMAL" in t:
                return decimal.Decimal(value)
        if isinstance(value, float) and ("NUMERIC" in t or "DECIMAL" in t):
            return decimal.Decimal(repr(value))
        if isinstance(value, int) and ("NUMERIC" in t or "DECIMAL" in t):
            return decimal.Decimal(value)
    except ValueError:
        return value
    return value


# ------------------------------------------------------------- managers --

class Manager:
    """A dbmux connection manager (a pool) for one URL; `None` reads the
    environment (DATABASE_URL, DB_POOL_SIZE, ...), as in Rust."""

    def __init__(self, url=None, *, _handle=None):
        self._lock = threading.Lock()
        if _handle is not None:
            self._h, self._borrowed = _handle, True
            return
        h = _ffi.Manager_p()
        _lib.dbmux_manager_open(url.encode() if url is not None else None, byref(h))
        self._h, self._borrowed = h, False

    @property
    def backend(self):
        """`sqlite` or `postgresql`."""
        b = getattr(self, "_backend", None)
        if b is None:
            b = self._backend = self.debug_info()["backend"]
        return b

    def _handle(self):
        if not self._h:
            raise InterfaceError("the manager is closed", _errors.MANAGER_CLOSED)
        return self._h

    def connect(self):
        """Checks a connection out of the pool (waits up to pool_timeout)."""
        c = _ffi.Conn_p()
        _lib.dbmux_conn_get(self._handle(), byref(c))
        return Connection(c, self)

    def health(self):
        """The health report as a dict (cached for DB_HEALTH_CHECK_INTERVAL)."""
        out = c_void_p()
        _lib.dbmux_health_json(self._handle(), byref(out))
        return json.loads(_ffi.take_string(out))

    def debug_info(self):
        """Pool state and counters as a dict."""
        out = c_void_p()
        _lib.dbmux_debug_info_json(self._handle(), byref(out))
        return json.loads(_ffi.take_string(out))

    def close(self):
        """Closes every connection of the pool (checked-out ones when they close)."""
        with self._lock:
            if self._h and not self._borrowed:
                _lib.dbmux_manager_close(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_managers = {}
_managers_lock = threading.Lock()


def _global_manager():
    h = _ffi.Manager_p()
    _lib.dbmux_global(byref(h))
    return Manager(_handle=h)


def _manager_for(url):
    with _managers_lock:
        m = _managers.get(url)
        if m is None or not m._h:
            m = _global_manager() if url is None else Manager(url)
            _managers[url] = m
        return m


def connect(url=None):
    """A connection from the process-wide manager of `url` (or of the
    environment, as dbmux::global() in Rust, when `url` is None)."""
    return _manager_for(url).connect()


def sqlite_version():
    """The version of the SQLite library dbmux runs on, e.g. "3.40.1", or None
    when the native library was built without SQLite. The package links the
    system libsqlite3, the one the stdlib `sqlite3` module uses, so this
    equals `sqlite3.sqlite_version`: one SQLite in the process."""
    v = _lib.dbmux_sqlite_version()
    return v.decode("ascii") if v is not None else None


def health():
    """The process-wide manager's health report (a dict)."""
    return _manager_for(None).health()


def debug_info():
    """The process-wide manager's debug info (a dict)."""
    return _manager_for(None).debug_info()


# ---------------------------------------------------------- connections --

_NO_IMPLICIT_TX = ("SELECT", "WITH", "VALUES", "SHOW", "EXPLAIN", "PRAGMA", "BEGIN", "START",
                   "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE", "SET", "ANALYZE", "VACUUM")


@functools.lru_cache(maxsize=512)
def _first_word(sql):
    s = sql.lstrip()
    while s.startswith("--") or s.startswith("/*"):
        if s.startswith("--"):
            s = s.split("\n", 1)[1].lstrip() if "\n" in s else ""
        else:
            s = s.split("*/", 1)[1].lstrip() if "*/" in s else ""
    word = ""
    for ch in s:
        if not ch.isalpha():
            break
        word += ch
    return word.upper()


class Connection:
    """A pooled connection (PEP 249). A transaction starts implicitly before
    the first statement that changes something (not before SELECTs);
    `commit()` / `rollback()` end it; `close()` rolls back and returns the
    connection to the pool."""

    Warning = Warning
    Error = Error
    InterfaceError = InterfaceError
    DatabaseError = DatabaseError
    DataError = DataError
    OperationalError = OperationalError
    IntegrityError = IntegrityError
    InternalError = InternalError
    ProgrammingError = ProgrammingError
    NotSupportedError = NotSupportedError

    def __init__(self, handle, manager):
        self._h = handle
        self._manager = manager
        self._lock = threading.RLock()
        self._in_tx = False

    def _conn(self):
        if not self._h:
            raise InterfaceError("the connection is closed", _errors.MISUSE)
        return self._h

    def cursor(self):
        self._conn()
        return Cursor(self)

    def _begin_if_needed(self, sql):
        word = _first_word(sql)
        if not self._in_tx and word not in _NO_IMPLICIT_TX:
            _lib.dbmux_begin(self._conn())
            self._in_tx = True
        elif word in ("COMMIT", "END", "ROLLBACK"):
            self._in_tx = False

    def commit(self):
        with self._lock:
            h = self._conn()
            if self._in_tx:
                self._in_tx = False
                _lib.dbmux_commit(h)

    def rollback(self):
        with self._lock:
            h = self._conn()
            if self._in_tx:
                self._in_tx = False
                _lib.dbmux_rollback(h)

    def close(self):
        """Rolls back anything uncommitted and returns the connection to the pool."""
        with self._lock:
            if self._h:
                h, self._h = self._h, None
                self._in_tx = False
                _lib.dbmux_conn_release(h)  # rolls back an open transaction

    @property
    def closed(self):
        return not self._h

    def execute(self, sql, params=()):
        """Shortcut: a new cursor, executed."""
        cur = self.cursor()
        cur.execute(sql, params)
        return cur

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        """Commits on success, rolls back on an exception, then closes
        (returns the connection to the pool)."""
        try:
            if self._h:
                if exc_type is None:
                    self.commit()
                else:
                    self.rollback()
        finally:
            self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def _converter(decl):
    """A function converting values of a column declared `decl`, or None when
    values need no conversion."""
    if decl is None:
        return None
    t = decl.upper()
    if "BOOL" in t or t == "DATE" or "TIME" in t or "NUMERIC" in t or "DECIMAL" in t:
        return lambda v: _convert(decl, v)
    return None


class Cursor:
    """A PEP 249 cursor. `execute` brings the whole result across the C
    boundary in one call (CPython marshal bytes); fetching is then pure Python."""

    def __init__(self, conn):
        self.connection = conn
        self.arraysize = 1
        self._rows = None  # list of tuples, or None when the statement returned no rows
        self._pos = 0
        self._executed = False
        self._closed = False
        self.description = None
        self.rowcount = -1
        self.lastrowid = None

    def _check(self):
        if self._closed:
            raise ProgrammingError("cannot operate on a closed cursor", _errors.MISUSE)
        self.connection._conn()

    def close(self):
        self._rows = None
        self._closed = True

    def setinputsizes(self, sizes):
        """Accepted and ignored (PEP 249)."""

    def setoutputsize(self, size, column=None):
        """Accepted and ignored (PEP 249)."""

    def execute(self, sql, params=()):
        self._check()
        if not isinstance(sql, str):
            raise ProgrammingError("the SQL must be a str", _errors.INVALID_PARAMETER)
        arr, n, _keep = _params(params)
        conn = self.connection
        with conn._lock:
            self._executed = True
            self._rows, self._pos = None, 0
            self.description = None
            self.rowcount, self.lastrowid = -1, None
            conn._begin_if_needed(sql)
            buf, size = c_void_p(), c_size_t()
            _lib.dbmux_query_pymarshal(conn._conn(), sql.encode("utf-8"), arr, n, byref(buf), byref(size))
            try:
                cols, rows, affected = marshal.loads(ctypes.string_at(buf, size.value))
            finally:
                _lib.dbmux_bytes_free(buf, size)
            if cols:
                convs = [_converter(d) for _, d in cols]
                if any(convs):
                    rows = [tuple(v if f is None or v is None else f(v) for f, v in zip(convs, row))
                            for row in rows]
                self._rows = rows
                first = rows[0] if rows else None
                self.description = [
                    (name, decl if decl else _expr_type(first, i), None, None, None, None, None)
                    for i, (name, decl) in enumerate(cols)]
            else:
                self.rowcount = affected
            if self._rows is None and _first_word(sql) in ("INSERT", "REPLACE") \
                    and conn._manager.backend == "sqlite":
                # SQLite's rowid; on PostgreSQL lastrowid stays None (use RETURNING)
                lid = c_int64()
                _lib.dbmux_last_insert_id(conn._conn(), byref(lid))
                self.lastrowid = lid.value
        return self

    def executemany(self, sql, seq_of_params):
        total = 0
        for params in seq_of_params:
            self.execute(sql, params)
            if self.rowcount > 0:
                total += self.rowcount
        self.rowcount = total
        return self

    def _rows_available(self):
        self._check()
        if not self._executed:
            raise ProgrammingError("no statement was executed on this cursor; call execute() first", _errors.MISUSE)
        if self._rows is None:
            raise ProgrammingError("the last statement returned no rows to fetch (it was not a query)",
                                   _errors.MISUSE)

    def fetchone(self):
        self._rows_available()
        if self._pos >= len(self._rows):
            return None
        row = self._rows[self._pos]
        self._pos += 1
        return row

    def fetchmany(self, size=None):
        self._rows_available()
        size = self.arraysize if size is None else size
        out = self._rows[self._pos:self._pos + size]
        self._pos += len(out)
        return out

    def fetchall(self):
        self._rows_available()
        out = self._rows[self._pos:] if self._pos else self._rows
        self._pos = len(self._rows)
        return out

    def __iter__(self):
        return self

    def __next__(self):
        row = self.fetchone()
        if row is None:
            raise StopIteration
        return row

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _expr_type(first_row, i):
    """The type code of a column without a declared type: from its first value."""
    if first_row is None or first_row[i] is None:
        return None
    v = first_row[i]
    if isinstance(v, (int, float)):
        return "NUMERIC"
    if isinstance(v, bytes):
        return "BLOB"
    return "TEXT"
