"""The PEP 249 cursor. `execute` brings the whole result across the C
boundary in one call (CPython marshal bytes); fetching is then pure Python."""

import ctypes
import marshal
from ctypes import byref, c_int64, c_size_t, c_void_p

from . import _errors, _ffi
from ._errors import ProgrammingError
from ._params import to_values
from ._sql import first_word
from ._types import converter, expr_type

_lib = _ffi.lib


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
        arr, n, _keep = to_values(params)
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
                convs = [converter(d) for _, d in cols]
                if any(convs):
                    rows = [tuple(v if f is None or v is None else f(v) for f, v in zip(convs, row))
                            for row in rows]
                self._rows = rows
                first = rows[0] if rows else None
                self.description = [
                    (name, decl if decl else expr_type(first, i), None, None, None, None, None)
                    for i, (name, decl) in enumerate(cols)]
            else:
                self.rowcount = affected
            if self._rows is None and first_word(sql) in ("INSERT", "REPLACE") \
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
