"""A pooled connection (PEP 249), owning its native handle."""

from ctypes import byref, c_void_p

from . import _errors, _ffi
from ._cursor import Cursor
from ._errors import (
    DatabaseError, DataError, Error, IntegrityError, InterfaceError, InternalError,
    NotSupportedError, OperationalError, ProgrammingError, Warning,
)
from ._native import NativeHandle
from ._sql import NO_IMPLICIT_TX, first_word

_lib = _ffi.lib


class Connection(NativeHandle):
    """A pooled connection (PEP 249). A transaction starts implicitly before
    the first statement that changes something (not before SELECTs);
    `commit()` / `rollback()` end it; `close()` rolls back and returns the
    connection to the pool. `with` commits on success and rolls back on an
    exception, then closes."""

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

    def __init__(self, handle, manager, readonly=False):
        super().__init__(handle)
        self._manager = manager
        self._in_tx = False
        self._readonly = readonly

    @property
    def readonly(self):
        """True for a connection for reads (`connect(readonly=True)`)."""
        return self._readonly

    @property
    def write_token(self):
        """After a committed write on this connection (since it was checked
        out), a short string that `connect(readonly=True, after=token)` takes
        to read on a replica that has the write; else None (no committed
        write yet, or a connection for reads). On PostgreSQL it costs one
        round trip."""
        with self._lock:
            out = c_void_p()
            _lib.dbmux_conn_write_token(self._conn(), byref(out))
            return _ffi.take_string(out) if out.value else None

    def _free(self, handle):
        self._in_tx = False
        _lib.dbmux_conn_release(handle)  # rolls back an open transaction

    def _closed_error(self):
        return InterfaceError("the connection is closed", _errors.MISUSE)

    def _conn(self):
        return self._handle()

    def cursor(self):
        self._conn()
        return Cursor(self)

    def _begin_if_needed(self, sql):
        word = first_word(sql)
        if not self._in_tx and word not in NO_IMPLICIT_TX:
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
        super().close()

    def execute(self, sql, params=()):
        """Shortcut: a new cursor, executed."""
        cur = self.cursor()
        cur.execute(sql, params)
        return cur

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
