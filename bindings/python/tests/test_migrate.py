"""Migrations through the Python package: Manager.migrate(dir) and
Manager.migration_status(dir) hand out Rust's documents (compared with the
`dbmux migrate` CLI's), and the errors keep their classes."""

import json
import os
import pathlib
import subprocess
import uuid

import pytest

import dbmux

from helpers import pg_url

REPO = pathlib.Path(__file__).resolve().parents[3]
FIXTURE = REPO / "tests" / "migrations"


def _cli():
    exe = os.environ.get("DBMUX_CLI", str(REPO / "target" / "debug" / "dbmux"))
    if os.path.exists(exe):
        return exe
    msg = f"the dbmux CLI is not built ({exe}): run cargo build --features cli first (scripts/test.sh does)"
    if os.environ.get("CI") == "true":
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request, tmp_path):
    """A database nobody else uses: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/mig.db"
        return
    base = pg_url()
    name = "py_mig_" + uuid.uuid4().hex[:10]
    # CREATE DATABASE runs outside a transaction: through the CLI
    subprocess.run([_cli(), "sql", "--url", base, f"CREATE DATABASE {name}"], check=True,
                   capture_output=True)
    yield base.replace("/dbmux_test?", f"/{name}?")
    dbmux.shutdown()
    subprocess.run([_cli(), "sql", "--url", base, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                   check=True, capture_output=True)


def _strip(v, keys=("duration_ms", "applied_at", "lock_wait_ms")):
    if isinstance(v, dict):
        return {k: _strip(x, keys) for k, x in v.items() if k not in keys}
    if isinstance(v, list):
        return [_strip(x, keys) for x in v]
    return v


def test_migrate_and_status_are_rusts_documents(fresh_url):
    mgr = dbmux.Manager(fresh_url)
    before = mgr.migration_status(str(FIXTURE))
    assert [v["state"] for v in before["versions"]] == ["pending", "pending"]
    report = mgr.migrate(str(FIXTURE))
    variant = "V0002__seed.sqlite.sql" if fresh_url.startswith("sqlite") else "V0002__seed.postgres.sql"
    assert [a["file"] for a in report["applied"]] == ["V0001__create_notes.sql", variant]
    assert report["already_applied"] == 0
    again = mgr.migrate(str(FIXTURE))
    assert again["applied"] == [] and again["already_applied"] == 2
    status = mgr.migration_status(str(FIXTURE))
    assert status["applied"] == 2 and status["pending"] == 0 and status["problems"] == []
    with mgr.connect() as c:
        cur = c.cursor()
        cur.execute("SELECT body FROM notes WHERE id = 1")
        assert cur.fetchone()[0].startswith("from the ")
    cli = subprocess.run(
        [_cli(), "migrate", "--url", fresh_url, "--dir", str(FIXTURE), "status", "--json"],
        capture_output=True, text=True, check=True,
    )
    assert _strip(json.loads(cli.stdout)) == _strip(status)
    # the report too: the CLI migrating another file of the same backend
    if fresh_url.startswith("sqlite"):
        other = fresh_url.replace("mig.db", "other.db")
        cli = subprocess.run(
            [_cli(), "migrate", "--url", other, "--dir", str(FIXTURE), "up", "--json"],
            capture_output=True, text=True, check=True,
        )
        keys = ("duration_ms", "lock_wait_ms", "database")
        assert _strip(json.loads(cli.stdout), keys) == _strip(report, keys)
    mgr.close()


def test_migration_errors_keep_their_classes(fresh_url, tmp_path):
    mgr = dbmux.Manager(fresh_url)
    d = tmp_path / "m"
    d.mkdir()
    (d / "V0001__a.sql").write_text("CREATE TABLE a (x INTEGER);\nINSERT INTO nowhere VALUES (1);\n")
    with pytest.raises(dbmux.ProgrammingError) as e:
        mgr.migrate(str(d))
    assert e.value.name == "sql"
    assert "V0001__a.sql: line 2:" in str(e.value) and "rolled back" in str(e.value)
    (d / "V0001__a.sql").write_text("CREATE TABLE a (x INTEGER);\n")
    mgr.migrate(str(d))
    (d / "V0001__a.sql").write_text("CREATE TABLE a (x INTEGER, y INTEGER);\n")
    with pytest.raises(dbmux.MigrationError) as e:
        mgr.migrate(str(d))
    assert e.value.name == "migration"
    assert "V0001 (V0001__a.sql) was applied with checksum" in str(e.value)
    assert mgr.migration_status(str(d))["versions"][0]["state"] == "modified"
    (d / "bad.sql").write_text("SELECT 1;")
    with pytest.raises(dbmux.MigrationError, match="bad.sql: name it V<version>__<name>.sql"):
        mgr.migration_status(str(d))
    with pytest.raises(dbmux.OperationalError, match="cannot read the migrations directory"):
        mgr.migrate(str(tmp_path / "nope"))
    mgr.close()
