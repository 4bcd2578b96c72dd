# Shared by scripts/with-test-postgres.sh and scripts/with-test-replicas.sh
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
