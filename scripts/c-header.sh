#!/usr/bin/env bash
# Regenerates bindings/c/dbmux.h with the pinned cbindgen, installing it into
# target/tools if needed. With --check, fails when the committed header differs.
set -euo pipefail
cd "$(dirname "$0")/.."
CBINDGEN_VERSION=0.29.4
BIN=target/tools/bin/cbindgen
if [ ! -x "$BIN" ] || ! "$BIN" --version | grep " $CBINDGEN_VERSION\$" >/dev/null; then
  echo "c-header: installing cbindgen $CBINDGEN_VERSION into target/tools" >&2
  cargo install cbindgen --version "$CBINDGEN_VERSION" --locked --root target/tools --quiet
fi
OUT=bindings/c/dbmux.h
if [ "${1:-}" = "--check" ]; then
  TMP=$(mktemp)
  trap 'rm -f "$TMP"' EXIT
  "$BIN" --quiet --config cbindgen.toml --crate dbmux-ffi --output "$TMP" ffi
  if ! diff -u "$OUT" "$TMP"; then
    echo "c-header: $OUT is out of date; run scripts/c-header.sh and commit it" >&2
    exit 1
  fi
  echo "c-header: $OUT is up to date"
else
  "$BIN" --quiet --config cbindgen.toml --crate dbmux-ffi --output "$OUT" ffi
  echo "c-header: wrote $OUT"
fi
