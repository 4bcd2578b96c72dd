#!/usr/bin/env bash
# Installs the C library into a temporary prefix (scripts/install-c.sh) and
# builds the C example with nothing but pkg-config, shared and static, then
# runs both: the installed library has its soname, the program needs
# libdbmux.so.0, and the static one needs no libdbmux at all.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# the debug build the C tests already made (a release one is the default)
CARGO_PROFILE=dev scripts/install-c.sh "$T/prefix"
export PKG_CONFIG_PATH=$T/prefix/lib/pkgconfig
fail() { echo "test-c-install: $*" >&2; exit 1; }

readelf -d "$T/prefix/lib/libdbmux.so.0" | grep -q 'SONAME.*\[libdbmux\.so\.0\]' ||
  fail "the installed library has no soname libdbmux.so.0"
pkg-config --print-requires-private dbmux | grep -qx sqlite3 ||
  fail "dbmux.pc does not list sqlite3 in Requires.private"

# shared: exactly the README's command
# shellcheck disable=SC2046
cc "$ROOT/examples/c/example.c" $(pkg-config --cflags --libs dbmux) -o "$T/example"
readelf -d "$T/example" | grep -q 'NEEDED.*\[libdbmux\.so\.0\]' ||
  fail "the example does not need libdbmux.so.0"
# static: the archive, then what pkg-config --static lists after -ldbmux
# shellcheck disable=SC2046
cc "$ROOT/examples/c/example.c" $(pkg-config --cflags dbmux) "$T/prefix/lib/libdbmux.a" \
  $(pkg-config --static --libs-only-l dbmux | sed 's/-ldbmux //') -o "$T/example_static"
if ldd "$T/example_static" | grep -q libdbmux; then
  fail "the static example still loads libdbmux"
fi

for exe in example example_static; do
  mkdir "$T/run-$exe"
  out=$(cd "$T/run-$exe" && env -u DATABASE_URL LD_LIBRARY_PATH="$T/prefix/lib" "$T/$exe")
  grep -q '^1 visits$' <<<"$out" || fail "$exe printed: $out"
  grep -q '"status":"healthy"' <<<"$out" || fail "$exe's health: $out"
  grep -q '"sqlite_version":"'"$(pkg-config --modversion sqlite3)"'"' <<<"$out" || fail "$exe does not run on the system SQLite: $out"
  [ -f "$T/run-$exe/dbmux.db" ] || fail "$exe did not create dbmux.db"
  echo "test-c-install: $exe (built with pkg-config) ran: ${out%%$'\n'*}"
done
