"""examples/python/fastapi_app.py driven by FastAPI's test client, on
SQLite and PostgreSQL, including a PostgreSQL server stopped and started
again under the running app."""

import importlib.util
import os
import pathlib
import subprocess
import time
import urllib.parse
import uuid

import pytest

from helpers import need, pg_url

fastapi = need("fastapi", "fastapi httpx")
from fastapi.testclient import TestClient  # noqa: E402

EXAMPLE = pathlib.Path(__file__).resolve().parents[3] / "examples" / "python" / "fastapi_app.py"


def load_app(monkeypatch, url):
    monkeypatch.setenv("DATABASE_URL", url)
    spec = importlib.util.spec_from_file_location(f"fastapi_app_{uuid.uuid4().hex}", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_app_on_each_backend(monkeypatch, url, caplog):
    mod = load_app(monkeypatch, url)
    if url.startswith("postgresql"):
        # PostgreSQL is shared between tests: a table of this test's own
        mod.Item.__table__.name = "items_" + uuid.uuid4().hex[:8]
    caplog.set_level("INFO", logger="fastapi_app")
    with TestClient(mod.app) as client:
        assert any("database ready" in r.getMessage() for r in caplog.records)
        h = client.get("/health/database")
        assert h.status_code == 200, h.text
        assert h.json()["status"] == "healthy"
        info = client.get("/api/database/info").json()
        assert info["backend"] == ("sqlite" if url.startswith("sqlite") else "postgresql")
        assert info["driver"] == "dbmux" and info["pool_size"] == 5 and info["max_overflow"] == 10
        password = urllib.parse.urlsplit(url).password
        if password:
            assert password not in str(info) and password not in client.get(
                "/api/database/status").text and password not in h.text
        created = client.post("/api/items", json={"name": "first"})
        assert created.status_code == 201
        item = client.get(f"/api/items/{created.json()['id']}").json()
        assert item == {"id": created.json()["id"], "name": "first"}
        assert client.get("/api/items/999999").status_code == 404
        status = client.get("/api/database/status").json()
        assert status["pool_size"] == 5 and status["pool_checked_out"] == 0
        # a Prometheus scrape: the requests above were counted
        m = client.get("/metrics")
        assert m.status_code == 200 and m.headers["content-type"].startswith("text/plain; version=0.0.4")
        from prometheus_client.parser import text_string_to_metric_families
        families = {f.name: f for f in text_string_to_metric_families(m.text)}
        checkouts = families["dbmux_checkouts"].samples[0]
        assert checkouts.value >= 3 and checkouts.labels["backend"] == info["backend"], checkouts
        if password:
            assert password not in m.text
        om = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
        assert om.headers["content-type"].startswith("application/openmetrics-text")
        assert om.text.endswith("# EOF\n")
        r = client.post("/api/database/reconnect")
        assert r.status_code == 200 and r.json()["reconnected"] is True
        # the data outlives the reconnect
        assert client.get(f"/api/items/{created.json()['id']}").json()["name"] == "first"
    if url.startswith("postgresql"):
        import dbmux
        with dbmux.connect(url) as c:
            c.execute(f"DROP TABLE {mod.Item.__table__.name}")
    assert any("connections closed" in r.getMessage() for r in caplog.records)


def pg_ctl(*args):
    bin_, data = os.environ.get("DBMUX_TEST_PG_BIN"), os.environ.get("DBMUX_TEST_PG_DATA")
    if not (bin_ and data):
        pytest.skip("needs scripts/with-test-postgres.sh (DBMUX_TEST_PG_BIN, DBMUX_TEST_PG_DATA)")
    subprocess.run(["runuser", "-u", "postgres", "--", f"{bin_}/pg_ctl", "-D", data, "-w",
                    "-t", "60", *args], check=True, stdout=subprocess.DEVNULL)


def test_health_is_503_while_postgresql_is_down_and_200_after_without_a_restart(monkeypatch):
    url = pg_url()
    # health() reuses its result for DB_HEALTH_CHECK_INTERVAL (30 s by default)
    monkeypatch.setenv("DB_HEALTH_CHECK_INTERVAL", "0")
    mod = load_app(monkeypatch, url)
    mod.Item.__table__.name = "items_" + uuid.uuid4().hex[:8]
    with TestClient(mod.app) as client:
        assert client.get("/health/database").status_code == 200
        pg_ctl("stop", "-m", "fast")
        try:
            h = client.get("/health/database")
            assert h.status_code == 503
            body = h.json()
            assert body["status"] == "unhealthy"
            assert body["error_code"] == "connect_failed" and body["message"]
        finally:
            pg_ctl("start", "-l", os.environ["DBMUX_TEST_PG_DATA"] + "/../restart.log")
        # the app notices by itself, within dbmux's reconnect backoff
        deadline = time.monotonic() + 15
        while True:
            h = client.get("/health/database")
            if h.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert h.status_code == 200, h.text
        created = client.post("/api/items", json={"name": "after"})
        assert created.status_code == 201
    import dbmux
    with dbmux.connect(url) as c:
        c.execute(f"DROP TABLE {mod.Item.__table__.name}")
