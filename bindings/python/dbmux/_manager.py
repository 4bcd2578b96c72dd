"""Managers (pools), the process-wide ones behind `dbmux.connect()`, and
what the library reports about itself."""

import json
import os
import threading

from . import _dbmux

class Manager(_dbmux.Manager):
    """A dbmux connection manager (a pool) for one URL; `None` reads the
    environment (DATABASE_URL, DB_POOL_SIZE, ...), as in Rust. `close()`
    closes every connection of the pool before it returns.

    The pool settings SQLAlchemy users know may be given in code, and then
    win over the environment: `pool_size`, `max_overflow`, `pool_timeout`
    (seconds), `pool_recycle` (seconds; -1: never) and `pool_pre_ping`
    (dbmux pings a connection idle longer than 500 ms before handing it
    out; on by default). `pool_name` is the `pool` label of the metrics
    (DB_POOL_NAME; by default the URL without its password).

    `metrics()` returns the pool's metrics in the Prometheus text format
    (serve it as `text/plain; version=0.0.4`); `metrics(openmetrics=True)`
    the same in OpenMetrics 1.0."""

    def health(self):
        """The health report as a dict (cached for DB_HEALTH_CHECK_INTERVAL)."""
        return json.loads(self._health_json())

    def debug_info(self):
        """Pool state and counters as a dict."""
        return json.loads(self._debug_info_json())

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
        return json.loads(self._backup(os.fspath(dest), compact, overwrite, progress))

    def restore(self, src):
        """Replaces the SQLite database's contents with the database file
        `src` (for example a backup), in one write: writers of this process
        wait, readers see the old contents or the new. `src` must pass
        `PRAGMA quick_check` (else ProgrammingError, and nothing changes)."""
        self._restore(os.fspath(src))

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
        return json.loads(self._migrate(os.fspath(dir)))

    def migration_status(self, dir):
        """Where every migration of `dir` stands, without changing anything:
        Rust's status as a dict, with `versions` (each with `version`,
        `name`, `state` -- "applied", "pending", "modified", "missing",
        "out_of_order" or "dirty" --, `file`, `checksum`, `applied_at`, ...),
        `applied`, `pending` and `problems`."""
        return json.loads(self._migration_status(os.fspath(dir)))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


_managers = {}
_managers_lock = threading.Lock()


def _global_manager():
    return Manager(_global=True)


def _manager_for(url):
    with _managers_lock:
        m = _managers.get(url)
        if m is None or m.closed:
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
    return _dbmux.sqlite_version()


def shutdown():
    """Shuts the process-wide managers down (as `dbmux::shutdown()` in Rust
    and `dbmux_global_shutdown()` in C): the next `connect()` reads the
    environment again."""
    with _managers_lock:
        for m in _managers.values():
            m.close()
        _managers.clear()
    _dbmux.global_shutdown()


def health():
    """The process-wide manager's health report (a dict)."""
    return _manager_for(None).health()


def debug_info():
    """The process-wide manager's debug info (a dict)."""
    return _manager_for(None).debug_info()


def metrics(openmetrics=False):
    """The process-wide manager's metrics: the Prometheus text format
    (`text/plain; version=0.0.4`), or with `openmetrics=True` OpenMetrics 1.0
    (`application/openmetrics-text; version=1.0.0; charset=utf-8`)."""
    return _manager_for(None).metrics(openmetrics=openmetrics)
