"""Managers (pools), the process-wide ones behind `dbmux.connect()`, and
what the library reports about itself."""

import json
import os
import threading
from ctypes import byref, c_void_p

from . import _errors, _ffi
from ._connection import Connection
from ._errors import InterfaceError
from ._native import NativeHandle

_lib = _ffi.lib


class Manager(NativeHandle):
    """A dbmux connection manager (a pool) for one URL; `None` reads the
    environment (DATABASE_URL, DB_POOL_SIZE, ...), as in Rust."""

    def __init__(self, url=None, *, _handle=None):
        if _handle is not None:
            super().__init__(_handle, borrowed=True)
            return
        h = _ffi.Manager_p()
        _lib.dbmux_manager_open(url.encode() if url is not None else None, byref(h))
        super().__init__(h)

    def _free(self, handle):
        _lib.dbmux_manager_close(handle)

    def _closed_error(self):
        return InterfaceError("the manager is closed", _errors.MANAGER_CLOSED)

    @property
    def backend(self):
        """`sqlite` or `postgresql`."""
        b = getattr(self, "_backend", None)
        if b is None:
            b = self._backend = self.debug_info()["backend"]
        return b

    def connect(self, readonly=False, after=None):
        """Checks a connection out of the pool (waits up to pool_timeout).

        `readonly=True`: a connection for reads (Rust's `get_read`), from the
        read pool (DB_READ_POOL_SIZE); the database refuses writes through it
        (OperationalError, code read_only). With several PostgreSQL hosts it
        is on a standby where one qualifies. `after=token` (a `Connection.write_token`) gives
        a reader that has that write: a standby that replayed it, else the
        primary after DB_READ_AFTER_WAIT; it implies `readonly=True`."""
        c = _ffi.Conn_p()
        if after is not None:
            if not isinstance(after, str):
                raise TypeError(
                    f"after must be a write token (a str from Connection.write_token), "
                    f"not {type(after).__name__}")
            _lib.dbmux_conn_get_read(self._handle(), after.encode(), byref(c))
        elif readonly:
            _lib.dbmux_conn_get_read(self._handle(), None, byref(c))
        else:
            _lib.dbmux_conn_get(self._handle(), byref(c))
        return Connection(c, self, readonly=readonly or after is not None)

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

    def backup(self, dest, compact=False, progress=None, overwrite=False):
        """Copies the live SQLite database to the file `dest` (Rust's
        `backup_to`): one consistent snapshot while writers go on, written
        beside `dest` and renamed over it, so `dest` is never a partial file.
        `compact=True` compacts it (VACUUM INTO); `overwrite=True` replaces
        an existing `dest`. `progress(pages_done, pages_total)` is called
        after each step; returning False cancels (OperationalError, code
        cancelled; nothing is left behind), and an exception it raises
        cancels too and is raised again. Returns what was written: a dict
        with `path`, `bytes`, `pages`, `compact`, `duration_ms`."""
        raised = []

        def call(done, total, _user):
            try:
                return progress(done, total) is not False
            except BaseException as e:  # re-raised below, after the cancel
                raised.append(e)
                return False

        cb = _ffi.PROGRESS_FN(call) if progress is not None else _ffi.PROGRESS_FN()
        flags = (_ffi.BACKUP_COMPACT if compact else 0) | (_ffi.BACKUP_OVERWRITE if overwrite else 0)
        out = c_void_p()
        try:
            _lib.dbmux_backup(self._handle(), os.fsencode(dest), flags, cb, None, byref(out))
        except _errors.Error:
            if raised:
                raise raised[0] from None
            raise
        return json.loads(_ffi.take_string(out))

    def restore(self, src):
        """Replaces the SQLite database's contents with the database file
        `src` (for example a backup), in one write: writers of this process
        wait, readers see the old contents or the new. `src` must pass
        `PRAGMA quick_check` (else ProgrammingError, and nothing changes)."""
        _lib.dbmux_restore(self._handle(), os.fsencode(src))

    def migrate(self, dir):
        """Applies the pending migrations of the directory `dir`
        (`V0001__name.sql`, with `.sqlite.sql` / `.postgres.sql` variants),
        each in its own transaction with its row in the `_dbmux_migrations`
        ledger, under the migration lock (several processes started at once
        apply each exactly once). Returns Rust's report as a dict: `applied`
        (a list of `version`, `name`, `file`, `duration_ms`),
        `already_applied`, `lock_wait_ms`, `duration_ms`. Raises
        MigrationError when an applied migration was modified or is missing,
        the ledger is dirty or a version is out of order (nothing runs); a
        failing migration raises its own error class with the file and line
        in the message (that migration is rolled back)."""
        out = c_void_p()
        _lib.dbmux_migrate_dir(self._handle(), os.fsencode(dir), byref(out))
        return json.loads(_ffi.take_string(out))

    def migration_status(self, dir):
        """Where every migration of `dir` stands, without changing anything:
        Rust's status as a dict, with `versions` (each with `version`,
        `name`, `state` -- "applied", "pending", "modified", "missing",
        "out_of_order" or "dirty" --, `file`, `checksum`, `applied_at`, ...),
        `applied`, `pending` and `problems`."""
        out = c_void_p()
        _lib.dbmux_migration_status(self._handle(), os.fsencode(dir), byref(out))
        return json.loads(_ffi.take_string(out))

    def close(self):
        """Closes every connection of the pool (checked-out ones when they close)."""
        super().close()


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


def connect(url=None, readonly=False, after=None):
    """A connection from the process-wide manager of `url` (or of the
    environment, as dbmux::global() in Rust, when `url` is None);
    `readonly` and `after` as in `Manager.connect`."""
    return _manager_for(url).connect(readonly=readonly, after=after)


def sqlite_version():
    """The version of the SQLite library dbmux runs on, e.g. "3.40.1", or None
    when the native library was built without SQLite. The package links the
    system libsqlite3, the one the stdlib `sqlite3` module uses, so this
    equals `sqlite3.sqlite_version`: one SQLite in the process."""
    v = _lib.dbmux_sqlite_version()
    return v.decode("ascii") if v is not None else None


def shutdown():
    """Shuts the process-wide managers down (as `dbmux::shutdown()` in Rust
    and `dbmux_global_shutdown()` in C): the next `connect()` reads the
    environment again."""
    with _managers_lock:
        for m in _managers.values():
            m.close()
        _managers.clear()
    _lib.dbmux_global_shutdown()


def health():
    """The process-wide manager's health report (a dict)."""
    return _manager_for(None).health()


def debug_info():
    """The process-wide manager's debug info (a dict)."""
    return _manager_for(None).debug_info()
