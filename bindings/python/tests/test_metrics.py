"""Manager.metrics() and dbmux.metrics(): the Prometheus text and OpenMetrics
parse with prometheus_client's own parsers, every documented family is there
with its type, and the numbers follow a scripted workload."""

import time

import pytest

import dbmux
from helpers import need, pg_url

# Every family of the README's "Metrics" on both backends: name -> type
# (counters by their name without _total, as prometheus_client reports them).
COMMON = {
    "dbmux_manager_open": "gauge",
    "dbmux_connections": "gauge",
    "dbmux_pool_size": "gauge",
    "dbmux_pool_max_connections": "gauge",
    "dbmux_checkouts_waiting": "gauge",
    "dbmux_connects_in_flight": "gauge",
    "dbmux_checkouts": "counter",
    "dbmux_checkout_timeouts": "counter",
    "dbmux_connections_opened": "counter",
    "dbmux_connections_closed": "counter",
    "dbmux_connect_errors": "counter",
    "dbmux_retries": "counter",
    "dbmux_pre_pings": "counter",
    "dbmux_resets_on_return": "counter",
    "dbmux_leak_warnings": "counter",
    "dbmux_acquire_seconds": "histogram",
    "dbmux_hold_seconds": "histogram",
    "dbmux_connect_seconds": "histogram",
    "dbmux_statement_seconds": "histogram",
}
SQLITE = {
    "dbmux_sqlite_wal_bytes": "gauge",
    "dbmux_sqlite_wal_frames": "gauge",
    "dbmux_sqlite_lane_waiting": "gauge",
    "dbmux_sqlite_oldest_read_transaction_seconds": "gauge",
    "dbmux_sqlite_checkpoints": "counter",
    "dbmux_sqlite_checkpoints_blocked": "counter",
    "dbmux_sqlite_reader_gate_closures": "counter",
    "dbmux_sqlite_long_read_transactions": "counter",
    "dbmux_sqlite_lane_wait_seconds": "histogram",
    "dbmux_sqlite_reader_gate_wait_seconds": "histogram",
}
POSTGRES = {
    "dbmux_host_up": "gauge",
    "dbmux_host_replay_lag_bytes": "gauge",
    "dbmux_read_after": "counter",
    "dbmux_read_lag_avoided": "counter",
}


def parse(text, openmetrics=False):
    """The families of `text` by name, through prometheus_client's parser."""
    pc = need("prometheus_client", "prometheus_client")
    if openmetrics:
        from prometheus_client.openmetrics.parser import text_string_to_metric_families
    else:
        from prometheus_client.parser import text_string_to_metric_families
    del pc
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(families, family, sample, **labels):
    """The one sample `sample` of `family` whose labels include `labels`."""
    found = [
        s.value
        for s in families[family].samples
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, (family, sample, labels, families[family].samples)
    return found[0]


def check_families(families, expected):
    for name, typ in expected.items():
        assert name in families, f"{name} missing from {sorted(families)}"
        assert families[name].type == typ, (name, families[name].type)
    for f in families.values():
        for s in f.samples:
            assert s.labels["pool"] and s.labels["backend"], s


@pytest.mark.parametrize("openmetrics", [False, True])
def test_sqlite_metrics_parse_and_follow_a_scripted_workload(tmp_path, openmetrics):
    m = dbmux.Manager(
        f"sqlite:///{tmp_path}/m.db",
        pool_size=1,
        max_overflow=1,
        pool_timeout=0.2,
        pool_recycle=0.3,
        pool_name="py-orders",
    )
    with m.connect() as c:
        c.execute("CREATE TABLE t (x INTEGER)")
        c.commit()
    n = 10
    for i in range(n):
        with m.connect() as c:
            c.execute("INSERT INTO t VALUES (?)", (i,))
            c.commit()
    # one forced timeout: both allowed connections are held
    a, b = m.connect(), m.connect()
    with pytest.raises(dbmux.OperationalError) as e:
        m.connect()
    assert e.value.name == "pool_timeout"
    # one overflow close: both come back to a pool that keeps one
    a.close()
    b.close()
    # one recycle: the idle connection outlives pool_recycle (+10 %)
    time.sleep(0.4)
    with m.connect() as c:
        assert c.execute("SELECT count(*) FROM t").fetchone() == (n,)

    text = m.metrics(openmetrics=openmetrics)
    assert text.endswith("# EOF\n") == openmetrics
    f = parse(text, openmetrics)
    check_families(f, {**COMMON, **SQLITE})
    assert not set(POSTGRES) & set(f)
    checkouts = 1 + n + 2 + 1
    assert value(f, "dbmux_checkouts", "dbmux_checkouts_total") == checkouts
    assert value(f, "dbmux_checkout_timeouts", "dbmux_checkout_timeouts_total") == 1
    assert value(f, "dbmux_acquire_seconds", "dbmux_acquire_seconds_count") == checkouts + 1
    assert value(f, "dbmux_hold_seconds", "dbmux_hold_seconds_count") == checkouts
    assert value(f, "dbmux_hold_seconds", "dbmux_hold_seconds_bucket", le="+Inf") == checkouts
    closed = "dbmux_connections_closed_total"
    assert value(f, "dbmux_connections_closed", closed, reason="overflow") == 1
    assert value(f, "dbmux_connections_closed", closed, reason="recycled") == 1
    assert value(f, "dbmux_connections_closed", closed, reason="broken") == 0
    assert value(f, "dbmux_connections", "dbmux_connections", access="write", state="idle") == 1
    # statements: CREATE, the inserts, the count, and each commit's COMMIT
    stmts = value(f, "dbmux_statement_seconds", "dbmux_statement_seconds_count")
    assert stmts >= 1 + n + 1, stmts
    assert all(s.labels["pool"] == "py-orders" for s in f["dbmux_checkouts"].samples)
    # every write took the lane
    assert value(f, "dbmux_sqlite_lane_wait_seconds", "dbmux_sqlite_lane_wait_seconds_count") >= n
    # debug info's figures come from the same counters and histograms
    info = m.debug_info()
    assert info["session_creation_count"] == checkouts
    assert info["histograms"] is True
    assert info["hold_p50_ms"] > 0
    m.close()
    with pytest.raises(dbmux.InterfaceError) as e:
        m.metrics()
    assert e.value.name == "manager_closed"


def test_the_global_metrics_read_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/global.db")
    monkeypatch.setenv("DB_POOL_NAME", "from-env")
    dbmux.shutdown()
    with dbmux.connect() as c:
        c.execute("SELECT 1")
    f = parse(dbmux.metrics())
    assert value(f, "dbmux_checkouts", "dbmux_checkouts_total", pool="from-env") == 1
    assert dbmux.metrics(openmetrics=True).endswith("# EOF\n")
    dbmux.shutdown()


def test_postgres_metrics_count_connect_errors_and_show_no_password():
    url = pg_url()
    password = url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    wrong = url.replace(password, "Py-Wr0ng-Secret", 1)
    m = dbmux.Manager(wrong, pool_timeout=5)
    for _ in range(2):
        with pytest.raises(dbmux.OperationalError) as e:
            m.connect()
        assert e.value.name == "auth_failed"
    for om in (False, True):
        text = m.metrics(openmetrics=om)
        assert "Py-Wr0ng-Secret" not in text
        f = parse(text, om)
        check_families(f, {**COMMON, **POSTGRES})
        assert value(f, "dbmux_connect_errors", "dbmux_connect_errors_total", code="auth_failed") == 2
    m.close()

    good = dbmux.Manager(url)
    with good.connect() as c:
        assert c.execute("SELECT 40 + 2").fetchone() == (42,)
    text = good.metrics()
    assert password not in text
    f = parse(text)
    up = [s for s in f["dbmux_host_up"].samples]
    assert [(s.labels["role"], s.value) for s in up] == [("primary", 1.0)], up
    assert value(f, "dbmux_connections_opened", "dbmux_connections_opened_total") == 1
    good.close()


def test_a_bad_pool_name_is_refused():
    with pytest.raises(dbmux.ProgrammingError) as e:
        dbmux.Manager("sqlite::memory:", pool_name="a\nb")
    assert "DB_POOL_NAME" in str(e.value)
