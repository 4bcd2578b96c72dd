#!/usr/bin/env bash
# SQLAlchemy's dialect compliance suite (sqlalchemy.testing.suite) on the
# dbmux dialects, with the same requirements (bindings/python/sa_suite) as
# the drivers SQLAlchemy ships with, in the same run:
#   - SQLite: sqlite+dbmux must pass every test that the stdlib pysqlite
#     dialect passes (exit 1 otherwise, listing them);
#   - PostgreSQL (when DBMUX_TEST_PG_URL is set): postgresql+dbmux's counts
#     beside psycopg2's, and the tests only psycopg2 passed (reported).
# Usage: scripts/test-sqlalchemy.sh PYTHON   (a Python with dbmux[test] and
# psycopg2 installed)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${1:?usage: scripts/test-sqlalchemy.sh PYTHON}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cp -r bindings/python/sa_suite/. "$WORK/"

# pytest exits 1 when tests fail (both drivers fail some under these
# requirements); anything else (no tests, a crash) is an error.
suite() {
  local name=$1 url=$2 rc=0
  (cd "$WORK" && "$PY" -m pytest -q --dburi "$url" --junitxml="$name.xml" >"$name.log" 2>&1) || rc=$?
  if [ "$rc" -gt 1 ] || [ ! -s "$WORK/$name.xml" ]; then
    tail -30 "$WORK/$name.log" >&2
    echo "test-sqlalchemy: the suite did not run on $url (pytest exit $rc)" >&2
    exit 1
  fi
  tail -1 "$WORK/$name.log"
}

echo "-- SQLite: pysqlite (the baseline), then sqlite+dbmux"
suite pysqlite "sqlite:///suite.db"
suite sqlite_dbmux "sqlite+dbmux:///suite.db"
python3 scripts/sqlalchemy-suite-compare.py "$WORK/pysqlite.xml" "$WORK/sqlite_dbmux.xml" --label pysqlite

if [ -z "${DBMUX_TEST_PG_URL:-}" ]; then
  if [ "${CI:-}" = true ]; then
    echo "test-sqlalchemy: DBMUX_TEST_PG_URL is not set (run under scripts/with-test-postgres.sh)" >&2
    exit 1
  fi
  echo "test-sqlalchemy: SKIPPED PostgreSQL (DBMUX_TEST_PG_URL is not set)"
  exit 0
fi
echo "-- PostgreSQL: psycopg2 (the baseline), then postgresql+dbmux"
"$PY" - <<PYEOF
import dbmux
with dbmux.connect("$DBMUX_TEST_PG_URL") as c:
    for s in ("test_schema", "test_schema_2"):
        c.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
PYEOF
suite pg_psycopg2 "${DBMUX_TEST_PG_URL/postgresql:/postgresql+psycopg2:}"
suite pg_dbmux "${DBMUX_TEST_PG_URL/postgresql:/postgresql+dbmux:}"
python3 scripts/sqlalchemy-suite-compare.py "$WORK/pg_psycopg2.xml" "$WORK/pg_dbmux.xml" \
  --label psycopg2 --report || true
