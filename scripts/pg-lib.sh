# Shared by scripts/with-test-postgres.sh, scripts/with-test-replicas.sh and
# scripts/pg-pair.sh
# (sourced, not run): the server's binaries, free ports, and stopping and
# removing the throwaway clusters on exit.

# Sets BIN to the newest PostgreSQL bin directory, installing the
# `postgresql` package first if its binaries are missing ($1 names the caller).
pg_find_bin() {
  find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
  BIN=$(find_bin || true)
  if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
    echo "$1: PostgreSQL server binaries missing; installing the postgresql package" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
    BIN=$(find_bin)
  fi
  id postgres >/dev/null 2>&1 || { echo "$1: no 'postgres' user" >&2; exit 1; }
}

as_pg() { runuser -u postgres -- "$@"; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# On exit: stops the clusters named in PG_NODES (directories under $BASE),
# keeps their logs in $DBMUX_PG_KEEP_LOGS after a failure, removes $BASE.
pg_cleanup() {
  local rc=$?
  for d in $PG_NODES; do
    if [ -f "$BASE/$d/postmaster.pid" ]; then
      as_pg "$BIN/pg_ctl" -D "$BASE/$d" -m immediate -w stop >/dev/null 2>&1 || true
    fi
  done
  if [ $rc -ne 0 ] && [ -n "${DBMUX_PG_KEEP_LOGS:-}" ]; then
    cp "$BASE"/*.log "$DBMUX_PG_KEEP_LOGS"/ 2>/dev/null || true
  fi
  rm -rf "$BASE"
  exit $rc
}

# Replicated sets (scripts/with-test-replicas.sh, scripts/pg-pair.sh). All
# take BASE (a directory owned by postgres, with sock/ inside) and BIN.

# repl_primary PORT [MAX_CONNECTIONS]: initdb and start $BASE/primary, with a
# superuser role "dbmux" (password $PASSWORD when set) and database dbmux_test.
# Loopback sessions are trusted.
repl_primary() {
  local port=$1 maxconn=${2:-150}
  as_pg "$BIN/initdb" -D "$BASE/primary" -U postgres -A trust --no-sync -E UTF8 >/dev/null
  cat >> "$BASE/primary/postgresql.conf" <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$BASE/sock'
max_connections = $maxconn
wal_keep_size = 64MB
fsync = off
full_page_writes = off
password_encryption = 'scram-sha-256'
CONF
  cat > "$BASE/primary/pg_hba.conf" <<CONF
local     all          all                     trust
host      replication  postgres  127.0.0.1/32  trust
host      all          all       127.0.0.1/32  trust
CONF
  as_pg "$BIN/pg_ctl" -D "$BASE/primary" -l "$BASE/primary.log" -w -t 60 start >/dev/null
  as_pg "$BIN/psql" -q -h "$BASE/sock" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 <<SQL
CREATE ROLE dbmux LOGIN SUPERUSER PASSWORD '${PASSWORD:-dbmux}';
CREATE DATABASE dbmux_test OWNER dbmux;
SQL
}

# repl_standby NAME PORT PRIMARY_PORT: pg_basebackup -R of the primary into
# $BASE/NAME, started; it retries WAL retrieval every 100 ms (with the
# default 5 s a promotion after a killed primary can take 5 s).
repl_standby() {
  local name=$1 port=$2 primary=$3
  as_pg "$BIN/pg_basebackup" -h 127.0.0.1 -p "$primary" -U postgres -D "$BASE/$name" -R -X stream -c fast
  cat >> "$BASE/$name/postgresql.auto.conf" <<CONF
port = $port
cluster_name = '$name'
wal_retrieve_retry_interval = 100ms
CONF
  as_pg "$BIN/pg_ctl" -D "$BASE/$name" -l "$BASE/$name.log" -w -t 60 start >/dev/null
}

# repl_sync PRIMARY_PORT NAME COUNT: makes NAME the synchronous standby and
# waits until COUNT standbys stream.
repl_sync() {
  local primary=$1 name=$2 count=$3 n=0
  as_pg "$BIN/psql" -q -h "$BASE/sock" -p "$primary" -U postgres -d postgres -v ON_ERROR_STOP=1 >/dev/null <<SQL
ALTER SYSTEM SET synchronous_standby_names = '$name';
SELECT pg_reload_conf();
SQL
  for _ in $(seq 1 300); do
    n=$(as_pg "$BIN/psql" -tA -h "$BASE/sock" -p "$primary" -U postgres -d postgres \
      -c "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
    [ "$n" = "$count" ] && return 0
    sleep 0.1
  done
  echo "pg-lib: $count standby(s) should stream, $n do" >&2
  return 1
}
