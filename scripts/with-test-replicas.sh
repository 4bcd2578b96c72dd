#!/usr/bin/env bash
# Runs a command with a throwaway replicated PostgreSQL set on loopback: a
# primary, a synchronous streaming standby ("s1") and an asynchronous one
# ("s2"), both made with `pg_basebackup -R`. Servers run as the `postgres`
# user on free ports with their own socket directory; everything is stopped
# and removed on exit, even on failure. The server package is installed
# first if missing (as scripts/with-test-postgres.sh does).
#
# Loopback sessions are trusted (authentication is tested against the servers
# of scripts/with-test-postgres.sh): tests here open thousands of connections,
# and SCRAM in a debug build costs tens of milliseconds each.
#
# The standbys retry WAL retrieval every 100 ms (wal_retrieve_retry_interval):
# with the default 5 s, a promotion after a killed primary can take 5 s.
#
# The command sees:
#   DBMUX_TEST_REPL_PRIMARY_PORT, DBMUX_TEST_REPL_STANDBY_PORT (s1, synchronous),
#   DBMUX_TEST_REPL_ASYNC_PORT (s2)
#   DBMUX_TEST_REPL_PASSWORD   password of the superuser role "dbmux"
#   DBMUX_TEST_REPL_URL        postgresql://dbmux:...@127.0.0.1:PRIMARY,127.0.0.1:STANDBY/dbmux_test
#   DBMUX_TEST_REPL_BIN        the server's bin directory (pg_ctl, psql, ...)
#   DBMUX_TEST_REPL_BASE       the directory holding primary/, s1/, s2/ (data) and the logs
set -euo pipefail
. "$(dirname "$0")/pg-lib.sh"

pg_find_bin with-test-replicas

BASE=$(mktemp -d /tmp/dbmux-repl.XXXXXX)
chmod 755 "$BASE"
mkdir -p "$BASE/sock"
chown postgres "$BASE" "$BASE/sock"
PG_NODES="s2 s1 primary"
trap pg_cleanup EXIT INT TERM
P0=$(free_port)
P1=$(free_port); while [ "$P1" = "$P0" ]; do P1=$(free_port); done
P2=$(free_port); while [ "$P2" = "$P0" ] || [ "$P2" = "$P1" ]; do P2=$(free_port); done
PASSWORD="dbmux-repl-$(openssl rand -hex 8 2>/dev/null || od -An -N8 -tx8 /dev/urandom | tr -d ' ')"

repl_primary "$P0"
repl_standby s1 "$P1" "$P0"
repl_standby s2 "$P2" "$P0"
# s1 is synchronous: a COMMIT returns once s1 has the WAL
repl_sync "$P0" s1 2 || { echo "with-test-replicas: the standbys are not streaming" >&2; exit 1; }

export DBMUX_TEST_REPL_PRIMARY_PORT=$P0
export DBMUX_TEST_REPL_STANDBY_PORT=$P1
export DBMUX_TEST_REPL_ASYNC_PORT=$P2
export DBMUX_TEST_REPL_PASSWORD=$PASSWORD
export DBMUX_TEST_REPL_URL="postgresql://dbmux:$PASSWORD@127.0.0.1:$P0,127.0.0.1:$P1/dbmux_test"
export DBMUX_TEST_REPL_BIN=$BIN
export DBMUX_TEST_REPL_BASE=$BASE
echo "with-test-replicas: primary 127.0.0.1:$P0, synchronous standby s1 :$P1, asynchronous standby s2 :$P2" >&2

"$@"
