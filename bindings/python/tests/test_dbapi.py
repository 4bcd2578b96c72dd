"""PEP 249 behaviour of the dbmux Python package, on a real SQLite file and
on the throwaway PostgreSQL server that scripts/with-test-postgres.sh starts.
Without that server the PostgreSQL cases skip with a message locally and
fail in CI (CI=true)."""

import datetime
import decimal
import logging
import os
import threading
import time
import uuid

import pytest

import dbmux
from helpers import open_fds_to, pg_url


def is_pg(url):
    return url.startswith("postgres")


def test_module_attributes_and_type_objects():
    assert dbmux.apilevel == "2.0"
    assert dbmux.threadsafety == 2
    assert dbmux.paramstyle == "qmark"
    for name in ["Warning", "Error", "InterfaceError", "DatabaseError", "DataError", "OperationalError",
                 "IntegrityError", "InternalError", "ProgrammingError", "NotSupportedError"]:
        assert isinstance(getattr(dbmux, name), type)
    assert issubclass(dbmux.IntegrityError, dbmux.DatabaseError)
    assert issubclass(dbmux.DatabaseError, dbmux.Error)
    assert issubclass(dbmux.InterfaceError, dbmux.Error)
    assert "INTEGER" == dbmux.NUMBER and "int4" == dbmux.NUMBER and "numeric" == dbmux.NUMBER
    assert "TEXT" == dbmux.STRING and "varchar" == dbmux.STRING
    assert "BLOB" == dbmux.BINARY and "bytea" == dbmux.BINARY
    assert "timestamptz" == dbmux.DATETIME and "DATE" == dbmux.DATETIME
    assert "INTEGER" != dbmux.STRING
    assert dbmux.Date(2024, 1, 2) == datetime.date(2024, 1, 2)
    assert dbmux.Binary(bytearray(b"ab")) == b"ab"
    assert isinstance(dbmux.TimestampFromTicks(0), datetime.datetime)
    assert isinstance(dbmux.DateFromTicks(0), datetime.date)
    assert isinstance(dbmux.TimeFromTicks(0), datetime.time)


def test_values_round_trip(url, table):
    pg = is_pg(url)
    ddl = (f"CREATE TABLE {table} (i BIGINT, r DOUBLE PRECISION, s TEXT, b BYTEA, n NUMERIC, "
           "ts TIMESTAMP, tz TIMESTAMPTZ, d DATE, tm TIME, f BOOLEAN, z TEXT)") if pg else \
          (f"CREATE TABLE {table} (i INTEGER, r REAL, s TEXT, b BLOB, n DECIMAL, "
           "ts TIMESTAMP, tz TIMESTAMP, d DATE, tm TIME, f BOOLEAN, z TEXT)")
    utc = datetime.timezone.utc
    values = (
        -(1 << 63), 0.1, "héllo ✓ 'quoted'", b"\x00\x01\xfe\xff", decimal.Decimal("12.345"),
        datetime.datetime(2024, 2, 29, 12, 34, 56, 789012),
        datetime.datetime(2024, 2, 29, 10, 34, 56, 500000, tzinfo=utc),
        datetime.date(2024, 2, 29), datetime.time(3, 4, 5, 600000), True, None,
    )
    with dbmux.connect(url) as c:
        cur = c.cursor()
        cur.execute(ddl)
        cur.execute(f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
        assert cur.rowcount == 1
        # bytearray and memoryview bind as bytes too
        cur.execute(f"INSERT INTO {table} (b) VALUES (?)", (bytearray(b"ba"),))
        cur.execute(f"INSERT INTO {table} (b) VALUES (?)", (memoryview(b"mv"),))
    with dbmux.connect(url) as c:
        cur = c.cursor()
        cur.execute(f"SELECT * FROM {table} WHERE i IS NOT NULL")
        row = cur.fetchone()
        assert row == values
        cur.execute(f"SELECT b FROM {table} WHERE i IS NULL ORDER BY b")
        assert cur.fetchall() == [(b"ba",), (b"mv",)]


def test_status_codes_pick_the_exception_class(url, table, tmp_path):
    # a bad URL or setting is the caller's mistake: ProgrammingError, as psycopg
    with pytest.raises(dbmux.ProgrammingError, match="unsupported database URL scheme") as e:
        dbmux.Manager("mysql://u:pw@h/db")
    assert (e.value.code, e.value.name) == (1, "invalid_url")
    with pytest.raises(dbmux.ProgrammingError, match="busy_timeout") as e:
        dbmux.Manager(f"sqlite:///{tmp_path}/x.db?busy_timeout=-3")
    assert e.value.name in ("invalid_url", "invalid_config")
    with dbmux.connect(url) as c:
        cur = c.cursor()
        with pytest.raises(dbmux.ProgrammingError, match="syntax error"):
            cur.execute("SELEC 1")
        c.rollback()
        cur.execute(f"CREATE TABLE {table} (x INTEGER UNIQUE)")
        cur.execute(f"INSERT INTO {table} VALUES (?)", (1,))
        c.commit()
        with pytest.raises(dbmux.IntegrityError) as e:
            cur.execute(f"INSERT INTO {table} VALUES (?)", (1,))
        assert (e.value.code, e.value.name) == (9, "constraint")
        c.rollback()
        if is_pg(url):
            with pytest.raises(dbmux.DataError, match="out of range"):
                cur.execute("SELECT ?::int4", (1 << 40,))
            c.rollback()
    with pytest.raises(dbmux.DataError, match="does not fit in 64 bits") as e:
        dbmux.connect(url).cursor().execute("SELECT ?", (1 << 70,))
    assert e.value.name == "type_mismatch"


def test_rowcount_after_a_statement_that_changes_no_rows(url, table):
    with dbmux.connect(url) as c:
        cur = c.cursor()
        cur.execute(f"CREATE TABLE {table} (x INTEGER)")
        cur.execute(f"INSERT INTO {table} VALUES (1), (2)")
        assert cur.rowcount == 2
        # SQLite's changes() still says 2 here; rowcount must not
        cur.execute(f"CREATE INDEX ix_{table} ON {table} (x)")
        assert cur.rowcount in (0, -1)
        cur.execute(f"DROP INDEX ix_{table}")
        assert cur.rowcount in (0, -1)


def test_every_status_of_the_library_has_an_exception_class_and_a_name():
    # the codes exist once, in Rust; the library lists them through dbmux_status_name
    from dbmux import _dbmux, _errors
    names = dict(_dbmux.status_names())
    codes = sorted(names)
    assert codes == sorted(_errors.NAMES) and len(codes) >= 19
    for n in codes:
        assert n in _errors.STATUS, f"status {n} ({_errors.NAMES[n]}) has no exception class"
        err = _errors.from_status(n, "m")
        assert (err.code, err.name) == (n, names[n])
    assert _errors.NAMES[18] == "commit_unknown" and _errors.STATUS[18] is dbmux.OperationalError


def test_a_commit_that_loses_its_connection_is_commit_unknown():
    """PostgreSQL: the backend dies between the INSERT and the COMMIT. The
    outcome is unknown to the client, so the error says so (code 18), and is
    not the retryable connect_failed."""
    url = pg_url()
    table = "t_" + uuid.uuid4().hex[:10]
    with dbmux.connect(url) as admin:
        admin.cursor().execute(f"CREATE TABLE {table} (x INTEGER)")
    victim = dbmux.connect(url)
    cur = victim.cursor()
    cur.execute(f"INSERT INTO {table} VALUES (?)", (1,))
    cur.execute("SELECT pg_backend_pid()")
    (pid,) = cur.fetchone()
    with dbmux.connect(url) as admin:
        a = admin.cursor()
        a.execute("SELECT pg_terminate_backend(?)", (pid,))
        for _ in range(500):
            a.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ?", (pid,))
            if a.fetchone() == (0,):
                break
            time.sleep(0.01)
    with pytest.raises(dbmux.OperationalError, match="outcome of COMMIT is unknown") as e:
        victim.commit()
    assert (e.value.code, e.value.name) == (18, "commit_unknown")
    victim.close()
    with dbmux.connect(url) as c:
        cur = c.cursor()
        cur.execute(f"SELECT count(*) FROM {table}")
        assert cur.fetchone() == (0,), "the server never committed it"
        cur.execute(f"DROP TABLE {table}")


def test_permanent_connect_errors_are_raised_at_once_with_their_class(tmp_path):
    """A cause no retry can fix is raised within one connect attempt (the
    pool timeout is 30 s), as its own OperationalError subclass."""
    pg = pg_url()
    wrong_password = pg.replace(os.environ["DBMUX_TEST_PG_PASSWORD"], "not-the-password")
    missing_db = pg.replace("/dbmux_test", "/nosuchdb")
    cases = [
        (wrong_password, dbmux.AuthFailed, 19, "auth_failed", "password authentication failed"),
        (missing_db, dbmux.DatabaseNotFound, 20, "database_not_found", "does not exist"),
        (f"sqlite:///{tmp_path}/missing.db?mode=rw", dbmux.DatabaseNotFound, 20,
         "database_not_found", "does not exist"),
    ]
    for url, cls, code, name, text in cases:
        start = time.monotonic()
        with pytest.raises(cls, match=text) as e:
            dbmux.connect(url)
        assert time.monotonic() - start < 2.0, url
        assert isinstance(e.value, dbmux.OperationalError)
        assert (e.value.code, e.value.name) == (code, name)
        assert os.environ["DBMUX_TEST_PG_PASSWORD"] not in str(e.value)


def test_pool_timeout_is_an_operational_error(tmp_path, monkeypatch):
    monkeypatch.setenv("DB_POOL_SIZE", "1")
    monkeypatch.setenv("DB_MAX_OVERFLOW", "0")
    monkeypatch.setenv("DB_POOL_TIMEOUT", "0.3")
    m = dbmux.Manager(f"sqlite:///{tmp_path}/small.db")
    held = m.connect()
    with pytest.raises(dbmux.OperationalError, match="pool_size=1") as e:
        m.connect()
    assert e.value.code == 5
    held.close()
    m.connect().close()
    m.close()


def test_close_without_commit_rolls_back_and_the_pool_hands_out_clean_connections(url, table):
    m = dbmux.Manager(url)
    c = m.connect()
    cur = c.cursor()
    cur.execute(f"CREATE TABLE {table} (x INTEGER)")
    cur.execute(f"INSERT INTO {table} VALUES (?)", (1,))
    c.close()
    with pytest.raises(dbmux.Error, match="closed"):
        c.cursor()
    with pytest.raises(dbmux.InterfaceError):
        c.commit()
    c2 = m.connect()
    with pytest.raises(dbmux.ProgrammingError):
        c2.cursor().execute(f"SELECT * FROM {table}")
    c2.close()
    info = m.debug_info()
    assert info["resets_on_return"] >= 1, info
    m.close()


def test_context_manager_commits_or_rolls_back(url, table):
    with dbmux.connect(url) as c:
        c.cursor().execute(f"CREATE TABLE {table} (x INTEGER)")
    with pytest.raises(RuntimeError):
        with dbmux.connect(url) as c:
            c.cursor().execute(f"INSERT INTO {table} VALUES (?)", (1,))
            raise RuntimeError("boom")
    with dbmux.connect(url) as c:
        c.cursor().execute(f"INSERT INTO {table} VALUES (?)", (2,))
    with dbmux.connect(url) as c:
        cur = c.execute(f"SELECT x FROM {table}")
        assert cur.fetchall() == [(2,)]


def test_eight_threads_reuse_pooled_connections(url, table):
    m = dbmux.Manager(url)
    with m.connect() as c:
        c.cursor().execute(f"CREATE TABLE {table} (t INTEGER, n INTEGER)")
    errors = []

    def work(t):
        try:
            for n in range(25):
                with m.connect() as c:
                    c.cursor().execute(f"INSERT INTO {table} VALUES (?, ?)", (t, n))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    with m.connect() as c:
        assert c.execute(f"SELECT count(*) FROM {table}").fetchone() == (200,)
    info = m.debug_info()
    assert info["session_creation_count"] >= 202
    assert info["connections_opened"] <= 15, info  # pool_size 5 + max_overflow 10
    assert info["session_creation_count"] > 10 * info["connections_opened"], "connections were reused"
    m.close()


def test_a_hundred_thousand_rows(url):
    sql = ("SELECT g, g * 2 FROM generate_series(1, 100000) AS g" if is_pg(url) else
           "WITH RECURSIVE c(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM c WHERE g < 100000) SELECT g, g * 2 FROM c")
    with dbmux.connect(url) as c:
        rows = c.execute(sql).fetchall()
    assert len(rows) == 100000
    assert rows[0] == (1, 2) and rows[-1] == (100000, 200000)
    assert sum(r[0] for r in rows) == 100000 * 100001 // 2


def test_cursors_made_one_after_another_each_describe_their_own_result(url, table):
    # a closed cursor's buffers serve the next cursor: its columns and
    # values must never show through
    with dbmux.connect(url) as c:
        c.execute(f"CREATE TABLE {table} (id INTEGER, name TEXT)")
        c.execute(f"INSERT INTO {table} VALUES (1, 'one'), (2, 'two')")
        c.commit()
    shapes = [
        ("SELECT 1 AS a", ["a"], [(1,)]),
        (f"SELECT id, name FROM {table} ORDER BY id", ["id", "name"], [(1, "one"), (2, "two")]),
        (f"SELECT name FROM {table} WHERE id = 3", ["name"], []),
        ("SELECT 'x' AS b, 2.5 AS c", ["b", "c"], [("x", 2.5)]),
    ]
    for i in range(12):
        sql, names, rows = shapes[i % len(shapes)]
        with dbmux.connect(url) as c:
            cur = c.cursor()
            if i % 3 == 0:
                cur.execute(f"UPDATE {table} SET name = name WHERE id = 1")
                assert cur.description is None and cur.rowcount == 1
            cur.execute(sql)
            assert [d[0] for d in cur.description] == names
            assert [tuple(r) for r in cur.fetchall()] == rows
            cur.close()


def test_plain_rows_are_left_out_of_the_cycle_collector_and_converted_ones_are_not(url):
    import gc
    with dbmux.connect(url) as c:
        real = "2.5::float8" if is_pg(url) else "2.5"
        rows = c.execute(f"SELECT 1, 'a', {real}, NULL").fetchall()
        assert rows == [(1, "a", 2.5, None)]
        # None, int, float, str and bytes hold no references back: the
        # collector has nothing to find in such a tuple
        assert not gc.is_tracked(rows[0])
    if is_pg(url):
        with dbmux.connect(url) as c:
            # a converter may return a container (a list for an array)
            row = c.execute("SELECT ARRAY[1, 2]::int4[]").fetchone()
            assert row == ([1, 2],)
            assert gc.is_tracked(row)


def test_bad_input_gives_useful_errors(url):
    with dbmux.connect(url) as c:
        cur = c.cursor()
        with pytest.raises(dbmux.ProgrammingError, match="no statement was executed"):
            cur.fetchone()
        with pytest.raises(dbmux.ProgrammingError, match="takes 2 parameter"):
            cur.execute("SELECT ?, ?", (1,))
        with pytest.raises(dbmux.ProgrammingError, match="type list are not supported"):
            cur.execute("SELECT ?", ([1, 2],))
        with pytest.raises(dbmux.ProgrammingError, match="must be a sequence"):
            cur.execute("SELECT ?", "ab")
        cur.close()
        with pytest.raises(dbmux.ProgrammingError, match="closed cursor"):
            cur.execute("SELECT 1")


def test_fetch_after_a_statement_without_rows_is_an_error(url, table):
    with dbmux.connect(url) as c:
        cur = c.cursor()
        cur.execute(f"CREATE TABLE {table} (x INTEGER)")
        with pytest.raises(dbmux.Error, match="not a query"):
            cur.fetchall()
        cur.executemany(f"INSERT INTO {table} VALUES (?)", [(1,), (2,), (3,)])
        assert cur.rowcount == 3
        with pytest.raises(dbmux.Error, match="not a query"):
            cur.fetchone()
        cur.execute(f"SELECT x FROM {table} ORDER BY x")
        cur.arraysize = 2
        assert cur.fetchmany() == [(1,), (2,)]
        assert list(cur) == [(3,)]
        assert cur.fetchone() is None


def test_question_mark_in_a_literal_is_not_a_parameter(url):
    with dbmux.connect(url) as c:
        assert c.execute("SELECT '?', ?", ("x",)).fetchone() == ("?", "x")


def test_description_type_codes_even_without_rows(url, table):
    with dbmux.connect(url) as c:
        cur = c.cursor()
        cur.execute(f"CREATE TABLE {table} (i INTEGER, s TEXT, b {'BYTEA' if is_pg(url) else 'BLOB'}, d DATE)")
        cur.execute(f"SELECT i, s, b, d FROM {table}")
        assert cur.fetchall() == []
        codes = [d[1] for d in cur.description]
        assert codes[0] == dbmux.NUMBER and codes[1] == dbmux.STRING
        assert codes[2] == dbmux.BINARY and codes[3] == dbmux.DATETIME
        assert [d[0] for d in cur.description] == ["i", "s", "b", "d"]


def test_lastrowid_and_connection_attributes(tmp_path):
    with dbmux.connect(f"sqlite:///{tmp_path}/rid.db") as c:
        assert c.Error is dbmux.Error and c.ProgrammingError is dbmux.ProgrammingError
        cur = c.cursor()
        cur.execute("CREATE TABLE r (id INTEGER PRIMARY KEY, x TEXT)")
        cur.execute("INSERT INTO r (x) VALUES (?)", ("a",))
        cur.execute("INSERT INTO r (x) VALUES (?)", ("b",))
        assert cur.lastrowid == 2


def test_health_debug_and_logging(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("DB_ECHO", "1")
    m = dbmux.Manager(f"sqlite:///{tmp_path}/h.db")
    caplog.set_level(logging.INFO, logger="dbmux")
    with m.connect() as c:
        c.execute("SELECT 12345 AS marker").fetchall()
    h = m.health()
    assert h["status"] == "healthy" and h["database_type"] == "sqlite"
    assert set(h["pool_status"]) == {"pool_size", "max_overflow", "checked_in", "checked_out", "overflow"}
    d = m.debug_info()
    assert d["backend"] == "sqlite" and d["session_creation_count"] >= 2
    assert any("SELECT 12345 AS marker" in r.getMessage() and r.name.startswith("dbmux") for r in caplog.records), \
        [r.getMessage() for r in caplog.records]
    m.close()
    with pytest.raises(dbmux.InterfaceError, match="closed"):
        m.connect()


def test_every_native_handle_closes_once_with_with_and_on_collection(tmp_path):
    from dbmux import _dbmux
    url = f"sqlite:///{tmp_path}/h.db"
    m = dbmux.Manager(url)
    c = m.connect()
    assert isinstance(m, _dbmux.Manager) and isinstance(c, _dbmux.Connection)
    c.close()
    c.close()  # a second close does nothing
    assert c.closed
    with pytest.raises(dbmux.InterfaceError) as e:
        c.cursor()
    assert e.value.name == "misuse"
    with m:
        assert m.debug_info()["engine_initialized"]
    assert m.closed
    with pytest.raises(dbmux.InterfaceError) as e:
        m.connect()
    assert e.value.name == "manager_closed"
    # a forgotten connection goes back to its pool when collected
    m2 = dbmux.Manager(url)
    forgotten = m2.connect()
    assert m2.debug_info()["pool_checked_out"] == 1
    del forgotten
    import gc
    gc.collect()
    assert m2.debug_info()["pool_checked_out"] == 0
    m2.close()


def test_global_connect_uses_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/global.db")
    dbmux.shutdown()
    with dbmux.connect() as c:
        c.execute("CREATE TABLE g (x INTEGER)")
    assert os.path.exists(tmp_path / "global.db")
    assert dbmux.health()["database"].endswith("global.db")
    assert dbmux.debug_info()["url"].endswith("global.db")
    dbmux.shutdown()


def test_the_compiled_core_is_this_packages_version():
    """The extension is built from the same tree as the package: one version."""
    from dbmux import _dbmux
    assert _dbmux.library_version().startswith(f"dbmux {dbmux.__version__} ("), _dbmux.library_version()
    assert "sqlite" in _dbmux.library_version()


def test_readers_refuse_writes_and_a_write_token_reads_what_was_written(url, table):
    with dbmux.connect(url) as c:
        c.cursor().execute(f"CREATE TABLE {table} (x INTEGER)")
    w = dbmux.connect(url)
    assert w.write_token is None, "no write in this checkout yet"
    w.cursor().execute(f"INSERT INTO {table} VALUES (?)", (7,))
    assert w.write_token is None, "not committed yet"
    w.commit()
    token = w.write_token
    assert isinstance(token, str) and token.startswith("pg:" if is_pg(url) else "sqlite"), token
    w.close()
    r = dbmux.connect(url, readonly=True, after=token)
    assert r.readonly and r.write_token is None
    cur = r.cursor()
    cur.execute(f"SELECT x FROM {table}")
    assert cur.fetchall() == [(7,)]
    with pytest.raises(dbmux.OperationalError) as e:
        r.cursor().execute(f"INSERT INTO {table} VALUES (1)")
    assert e.value.code == 10 and "get()" in str(e.value)
    r.close()
    with dbmux.connect(url, readonly=True) as r2:
        assert r2.readonly
    with pytest.raises(dbmux.ProgrammingError) as e:
        dbmux.connect(url, after="pg:one:0/0")
    assert "not a write token" in str(e.value)
    with pytest.raises(TypeError):
        dbmux.connect(url, after=5)


def test_a_read_after_a_write_token_runs_on_a_standby_that_has_it():
    url = os.environ.get("DBMUX_TEST_REPL_URL")
    if not url:
        msg = "replicated set not running: run through scripts/with-test-replicas.sh"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    url += "?sslmode=disable&target_session_attrs=read-write"
    name = "t_" + uuid.uuid4().hex[:10]
    with dbmux.connect(url) as c:
        c.cursor().execute(f"CREATE TABLE {name} (x INTEGER)")
    try:
        for i in range(50):
            with dbmux.connect(url) as w:
                w.cursor().execute(f"INSERT INTO {name} VALUES (?)", (i,))
                w.commit()
                token = w.write_token
            with dbmux.connect(url, readonly=True, after=token) as r:
                cur = r.cursor()
                cur.execute(f"SELECT count(*), pg_is_in_recovery() FROM {name} WHERE x = ?", (i,))
                assert cur.fetchone() == (1, True)
    finally:
        with dbmux.connect(url) as c:
            c.cursor().execute(f"DROP TABLE {name}")


def test_backup_and_restore_of_a_sqlite_file(tmp_path):
    url = f"sqlite:///{tmp_path}/live.db"
    mgr = dbmux.Manager(url)
    with mgr.connect() as c:
        cur = c.cursor()
        cur.execute("CREATE TABLE t (x INTEGER)")
        cur.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])
    seen = []
    report = mgr.backup(tmp_path / "copy.db", progress=lambda done, total: seen.append((done, total)))
    assert report["path"] == str(tmp_path / "copy.db") and report["bytes"] > 0
    assert seen and all(d <= t for d, t in seen)
    import sqlite3
    copy = sqlite3.connect(tmp_path / "copy.db")
    assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert copy.execute("SELECT count(*) FROM t").fetchone() == (100,)
    copy.close()
    # exists: refused unless overwrite; a callback can cancel, or raise
    with pytest.raises(dbmux.ProgrammingError) as e:
        mgr.backup(tmp_path / "copy.db")
    assert "overwrite" in str(e.value)
    with pytest.raises(dbmux.OperationalError) as e:
        mgr.backup(tmp_path / "copy.db", overwrite=True, progress=lambda d, t: False)
    assert e.value.code == 22

    def boom(d, t):
        raise KeyError("from the callback")
    with pytest.raises(KeyError):
        mgr.backup(tmp_path / "copy.db", overwrite=True, progress=boom)
    assert not [p for p in os.listdir(tmp_path) if "dbmux-tmp" in p]
    assert mgr.backup(tmp_path / "small.db", compact=True)["compact"] is True
    # restore
    with mgr.connect() as c:
        c.cursor().execute("DELETE FROM t")
    mgr.restore(tmp_path / "copy.db")
    with mgr.connect() as c:
        cur = c.cursor()
        cur.execute("SELECT count(*) FROM t")
        assert cur.fetchone() == (100,)
    with pytest.raises(dbmux.ProgrammingError):
        mgr.restore(tmp_path / "missing.db")
    mgr.close()


def test_debug_info_has_the_sqlite_section(tmp_path):
    m = dbmux.Manager(f"sqlite:///{tmp_path}/wal.db")
    c = m.connect()
    cur = c.cursor()
    cur.execute("CREATE TABLE t (x INTEGER)")
    for i in range(10):
        cur.execute("INSERT INTO t VALUES (?)", (i,))
    c.commit()
    c.close()
    s = m.debug_info()["sqlite"]
    assert s["journal_mode"] == "WAL", s
    assert s["wal_controlled"] is True, s
    assert s["lane_waits"] >= 1, s
    for key in ("wal_frames", "checkpoints", "checkpoints_blocked", "gate_closures",
                "gate_waits", "gate_wait_max_ms", "lane_wait_p99_ms", "oldest_read_tx_ms"):
        assert key in s, (key, s)
    m.close()


def test_the_type_stubs_describe_the_compiled_core():
    """Every class, method and function in _dbmux.pyi exists in the extension, and back."""
    import ast
    import pathlib
    from dbmux import _dbmux
    stub = pathlib.Path(_dbmux.__file__).with_name("_dbmux.pyi")
    assert stub.exists() and stub.with_name("py.typed").exists()
    tree = ast.parse(stub.read_text())
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            cls = getattr(_dbmux, node.name)
            for item in node.body:
                name = getattr(item, "name", None) or getattr(getattr(item, "target", None), "id", None)
                if name and name != "__new__":
                    assert hasattr(cls, name), f"{node.name}.{name} is in the stub, not in the extension"
            public = {n for n in dir(cls) if not n.startswith("__")}
            stubbed = {getattr(i, "name", None) or getattr(getattr(i, "target", None), "id", None) for i in node.body}
            assert public <= stubbed, f"{node.name}: {sorted(public - stubbed)} lack stubs"
        elif isinstance(node, ast.FunctionDef):
            assert callable(getattr(_dbmux, node.name)), node.name
    functions = {n for n in dir(_dbmux) if not n.startswith("_") and callable(getattr(_dbmux, n))}
    stubbed = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    assert functions <= stubbed, sorted(functions - stubbed)


def test_close_lets_go_of_the_file_before_it_returns(tmp_path):
    """Manager.close() closes every connection (writers and readers) before it
    returns, so the file can be deleted or replaced at once (SQLAlchemy's test
    setup does so between test classes)."""
    path = tmp_path / "gone.db"
    m = dbmux.Manager(f"sqlite:///{path}")
    with m.connect() as c:
        c.cursor().execute("CREATE TABLE t (x INTEGER)")
        c.cursor().execute("INSERT INTO t VALUES (1)")
    with m.connect(readonly=True) as r:
        assert r.cursor().execute("SELECT count(*) FROM t").fetchone() == (1,)
    assert open_fds_to(path), "the pool keeps its connections open while it lives"
    m.close()
    assert open_fds_to(path) == []
    assert not os.path.exists(str(path) + "-wal") and not os.path.exists(str(path) + "-shm")
    os.remove(path)
    # a new database in the same place, through a new manager
    m2 = dbmux.Manager(f"sqlite:///{path}")
    with m2.connect() as c:
        c.cursor().execute("CREATE TABLE fresh (y TEXT)")
        assert c.cursor().execute("SELECT count(*) FROM sqlite_schema").fetchone() == (1,)
    m2.close()
    assert open_fds_to(path) == []
