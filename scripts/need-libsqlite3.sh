#!/usr/bin/env bash
# Makes sure the system SQLite library and its development files are
# installed: the C library and the Python package link libsqlite3 (one SQLite
# per process), and the C tests call it directly. Installs Debian's
# libsqlite3-dev (and pkg-config) when they are missing.
set -euo pipefail
if pkg-config --exists sqlite3 2>/dev/null && [ -f "$(pkg-config --variable=includedir sqlite3)/sqlite3.h" ]; then
  exit 0
fi
echo "need-libsqlite3: installing libsqlite3-dev and pkg-config" >&2
if ! command -v apt-get >/dev/null; then
  echo "need-libsqlite3: no apt-get here; install SQLite's development files (sqlite3.h, libsqlite3.so) yourself" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q libsqlite3-dev pkg-config >/dev/null 2>&1 || {
  apt-get update -q >/dev/null
  apt-get install -y -q libsqlite3-dev pkg-config >/dev/null
}
pkg-config --exists sqlite3
