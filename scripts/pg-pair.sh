#!/usr/bin/env bash
# A replicated pair of one's own, for tests and measurements that kill and
# promote servers (the set of scripts/with-test-replicas.sh is shared):
#
#   scripts/pg-pair.sh start DIR [MAX_CONNECTIONS]
#       a primary ("primary") and a synchronous streaming standby ("s1") on
#       free loopback ports, data and logs under DIR (created; must not
#       exist); prints "PRIMARY_PORT STANDBY_PORT". Role "dbmux" (superuser,
#       trusted on loopback), database dbmux_test.
#   scripts/pg-pair.sh stop DIR
#       stops both (immediately) and removes DIR.
#
# Runs as root (the servers run as the postgres user), like the other
# PostgreSQL scripts.
set -euo pipefail
. "$(dirname "$0")/pg-lib.sh"
cmd=${1:-}
BASE=${2:-}
[ -n "$cmd" ] && [ -n "$BASE" ] || { echo "usage: $0 start|stop DIR [MAX_CONNECTIONS]" >&2; exit 2; }
pg_find_bin pg-pair
case "$cmd" in
  start)
    mkdir "$BASE"
    chmod 755 "$BASE"
    mkdir -p "$BASE/sock"
    chown postgres "$BASE" "$BASE/sock"
    P0=$(free_port)
    P1=$(free_port); while [ "$P1" = "$P0" ]; do P1=$(free_port); done
    if ! { repl_primary "$P0" "${3:-150}" && repl_standby s1 "$P1" "$P0" && repl_sync "$P0" s1 1; } >&2; then
      PG_NODES="s1 primary"
      false || pg_cleanup  # exits 1
    fi
    echo "$P0 $P1"
    ;;
  stop)
    PG_NODES="s1 primary"
    pg_cleanup
    ;;
  *) echo "usage: $0 start|stop DIR [MAX_CONNECTIONS]" >&2; exit 2 ;;
esac
