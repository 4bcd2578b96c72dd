#!/usr/bin/env bash
# Measures scale-out on PostgreSQL, in a release build:
# - failover: 20 rounds (DBMUX_FAILOVER_ROUNDS), each on a new primary with
#   a synchronous standby (scripts/pg-pair.sh): 8 writers, the primary
#   SIGKILLed and the standby promoted at once; the largest gap between
#   acknowledged writes of any writer (target <= 1.5 s) and acknowledged
#   writes missing on the promoted node (target 0);
# - read-your-writes: 10,000 write-then-read pairs against an asynchronous
#   standby: violations (target 0) and the share served by the standby
#   (target >= 90 %); 200 more with replay paused (all on the primary, 0
#   violations);
# - read throughput of 8 threads with reads spread over two standbys against
#   all reads on the primary (medians of alternating rounds).
# Fails when a target is missed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/with-test-replicas.sh cargo test --locked --release --features cli --test pg_replicas --test pg_failover \
  measure_ -- --ignored --nocapture --test-threads=1 2>&1 \
  | grep -E '^(failover|read-your-writes|read throughput)|test result|panicked|FAILED'
