#!/usr/bin/env bash
# Python benchmark: dbmux vs sqlite3, psycopg2 and SQLAlchemy (QueuePool over
# psycopg2), dbmux.aio vs aiosqlite and asyncpg, in a venv of its own (the comparison drivers are installed for
# the benchmark only), against the throwaway PostgreSQL server.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=target/py-bench-venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check ./bindings/python psycopg2-binary sqlalchemy aiosqlite asyncpg
scripts/with-test-postgres.sh "$VENV/bin/python" bindings/python/bench/bench.py
