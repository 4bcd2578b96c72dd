#!/usr/bin/env bash
# Builds libdbmux (shared and static), checks the committed header is what
# cbindgen generates, and runs the C tests: against the shared library,
# against the static one, and built with AddressSanitizer + UBSan (leaks
# count). Each binary runs against every URL given as an argument.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: $0 URL [URL...]" >&2; exit 2; }

scripts/c-header.sh --check
cargo build --locked -p dbmux-ffi --quiet
LIB=$PWD/target/debug
OUT=$PWD/target/c-tests
mkdir -p "$OUT"
CFLAGS=(-std=c11 -Wall -Wextra -Werror -pedantic -D_POSIX_C_SOURCE=200809L -Ibindings/c)
NATIVE=(-lssl -lcrypto -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc)
SRC=bindings/c/tests/test_dbmux.c

cc "${CFLAGS[@]}" "$SRC" -L"$LIB" -ldbmux -Wl,-rpath,"$LIB" -lm -o "$OUT/test_shared"
cc "${CFLAGS[@]}" "$SRC" "$LIB/libdbmux.a" "${NATIVE[@]}" -o "$OUT/test_static"
cc "${CFLAGS[@]}" -g -fsanitize=address,undefined -fno-omit-frame-pointer "$SRC" \
  "$LIB/libdbmux.a" "${NATIVE[@]}" -o "$OUT/test_asan"
cc "${CFLAGS[@]}" -o "$OUT/example" examples/c/example.c -L"$LIB" -ldbmux -Wl,-rpath,"$LIB"

for url in "$@"; do
  for t in test_shared test_static test_asan; do
    echo "== C tests ($t) against ${url%%:*}"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      "$OUT/$t" "$url"
  done
done
echo "== C example"
(cd "$OUT" && env -u DATABASE_URL ./example)
