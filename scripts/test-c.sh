#!/usr/bin/env bash
# Builds libdbmux (shared and static), checks the committed header is what
# cbindgen generates, and runs the C tests: against the shared library,
# against the static one, and built with AddressSanitizer + UBSan (leaks
# count). Each binary runs against every URL given as an argument. Then the
# one-SQLite tests: a program that uses libsqlite3 itself writes one file
# through it and through libdbmux at once (DBMUX_TEST_ONE_SQLITE_SECONDS,
# default 10), and a `bundled` libdbmux next to libsqlite3 logs the
# second-copy warning.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: $0 URL [URL...]" >&2; exit 2; }

scripts/c-header.sh --check
scripts/need-libsqlite3.sh
OUT=$PWD/target/c-tests
mkdir -p "$OUT/bundled"
# A libdbmux with its own SQLite (the `bundled` build option), kept aside for
# the second-copy test; then the default build, linked to the system libsqlite3.
cargo build --locked -p dbmux-ffi --features bundled --quiet
cp target/debug/libdbmux.so "$OUT/bundled/libdbmux.so"
cargo build --locked -p dbmux-ffi --quiet
LIB=$PWD/target/debug
if ! ldd "$LIB/libdbmux.so" | grep 'libsqlite3\.so' >/dev/null; then
  echo "test-c: $LIB/libdbmux.so does not link the system libsqlite3" >&2
  exit 1
fi
CFLAGS=(-std=c11 -Wall -Wextra -Werror -pedantic -D_POSIX_C_SOURCE=200809L -Ibindings/c)
# libdbmux.a leaves SQLite to the program, like every other system library.
NATIVE=(-lsqlite3 -lssl -lcrypto -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc)
SRC=bindings/c/tests/test_dbmux.c
ONE=bindings/c/tests/test_one_sqlite.c

cc "${CFLAGS[@]}" "$SRC" -L"$LIB" -ldbmux -Wl,-rpath,"$LIB" -lm -o "$OUT/test_shared"
cc "${CFLAGS[@]}" "$SRC" "$LIB/libdbmux.a" "${NATIVE[@]}" -o "$OUT/test_static"
cc "${CFLAGS[@]}" -g -fsanitize=address,undefined -fno-omit-frame-pointer "$SRC" \
  "$LIB/libdbmux.a" "${NATIVE[@]}" -o "$OUT/test_asan"
cc "${CFLAGS[@]}" -o "$OUT/example" examples/c/example.c -L"$LIB" -ldbmux -Wl,-rpath,"$LIB"
cc "${CFLAGS[@]}" "$ONE" -L"$LIB" -ldbmux -Wl,-rpath,"$LIB" -lsqlite3 -lpthread -o "$OUT/one_shared"
cc "${CFLAGS[@]}" -g -fsanitize=address,undefined -fno-omit-frame-pointer "$ONE" \
  "$LIB/libdbmux.a" "${NATIVE[@]}" -o "$OUT/one_asan"
cc "${CFLAGS[@]}" "$ONE" -L"$OUT/bundled" -ldbmux -Wl,-rpath,"$OUT/bundled" -lsqlite3 -lpthread \
  -o "$OUT/one_bundled"

cargo build --locked --bin dbmux --features cli --quiet
for url in "$@"; do
  for t in test_shared test_static test_asan; do
    echo "== C tests ($t) against ${url%%:*}"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      DBMUX_C_MIGRATION_STATUS="$OUT/status-c.json" "$OUT/$t" "$url"
  done
  # the C status document is Rust's (the CLI's), the times aside; the C test
  # dropped what it migrated, so the CLI migrates again before it is asked
  echo "== C migration status equals the CLI's against ${url%%:*}"
  target/debug/dbmux migrate --url "$url" --dir tests/migrations up >/dev/null
  target/debug/dbmux migrate --url "$url" --dir tests/migrations status --json >"$OUT/status-cli.json"
  python3 scripts/same-json.py "$OUT/status-c.json" "$OUT/status-cli.json" duration_ms applied_at
  target/debug/dbmux sql --url "$url" "DROP TABLE notes" >/dev/null
  target/debug/dbmux sql --url "$url" "DROP TABLE _dbmux_migrations" >/dev/null
done
SECONDS_ONE=${DBMUX_TEST_ONE_SQLITE_SECONDS:-10}
for t in one_shared one_asan; do
  echo "== C one-SQLite test ($t): libsqlite3 and libdbmux write one file for ${SECONDS_ONE}s"
  D=$(mktemp -d)
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$OUT/$t" "$D" "$SECONDS_ONE"
  rm -rf "$D"
done
echo "== C second-copy warning: a bundled libdbmux next to the system libsqlite3"
D=$(mktemp -d)
"$OUT/one_bundled" "$D" --expect-second-copy
rm -rf "$D"
echo "== C example"
(cd "$OUT" && env -u DATABASE_URL ./example)
