#!/usr/bin/env bash
# Installs the C library of dbmux into PREFIX (for example /usr/local, or a
# directory of your own):
#   PREFIX/lib/libdbmux.so.0.1.0 (soname libdbmux.so.0) with the
#       libdbmux.so.0 and libdbmux.so links,
#   PREFIX/lib/libdbmux.a,
#   PREFIX/include/dbmux.h,
#   PREFIX/lib/pkgconfig/dbmux.pc.
# Then `cc app.c $(pkg-config --cflags --libs dbmux)` builds a program
# (PKG_CONFIG_PATH=PREFIX/lib/pkgconfig when PREFIX is not a system one).
# The library links the system libsqlite3 (one SQLite per process), so
# SQLite's development files are needed (scripts/need-libsqlite3.sh).
# Release build; CARGO_PROFILE=dev for a debug one.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 1 ] || { echo "usage: $0 PREFIX" >&2; exit 2; }
mkdir -p "$1"
PREFIX=$(cd "$1" && pwd)
PROFILE=${CARGO_PROFILE:-release}
case "$PROFILE" in dev) DIR=target/debug ;; *) DIR=target/$PROFILE ;; esac
scripts/need-libsqlite3.sh
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' ffi/Cargo.toml | head -1)
MAJOR=${VERSION%%.*}
DBMUX_SONAME=libdbmux.so.$MAJOR cargo build --locked --quiet -p dbmux-ffi --profile "$PROFILE"
SONAME=$(readelf -d "$DIR/libdbmux.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
if [ "$SONAME" != "libdbmux.so.$MAJOR" ]; then
  echo "install-c: $DIR/libdbmux.so has soname '$SONAME', not libdbmux.so.$MAJOR" >&2
  exit 1
fi
install -d "$PREFIX/lib/pkgconfig" "$PREFIX/include"
install -m 755 "$DIR/libdbmux.so" "$PREFIX/lib/libdbmux.so.$VERSION"
ln -sf "libdbmux.so.$VERSION" "$PREFIX/lib/libdbmux.so.$MAJOR"
ln -sf "libdbmux.so.$MAJOR" "$PREFIX/lib/libdbmux.so"
install -m 644 "$DIR/libdbmux.a" "$PREFIX/lib/libdbmux.a"
install -m 644 bindings/c/dbmux.h "$PREFIX/include/dbmux.h"
# SQLite and OpenSSL by their own .pc files when they have them
REQUIRES=sqlite3
PRIVATE="-lpthread -ldl -lm -lrt -lutil -lgcc_s"
if pkg-config --exists openssl; then
  REQUIRES="$REQUIRES openssl"
else
  PRIVATE="-lssl -lcrypto $PRIVATE"
fi
cat >"$PREFIX/lib/pkgconfig/dbmux.pc" <<PC
prefix=$PREFIX
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib
includedir=\${prefix}/include

Name: dbmux
Description: Embedded-first database connection manager (SQLite, PostgreSQL): the C library
Version: $VERSION
Requires.private: $REQUIRES
Libs: -L\${libdir} -ldbmux
Libs.private: $PRIVATE
Cflags: -I\${includedir}
PC
echo "install-c: installed libdbmux $VERSION into $PREFIX (pkg-config: $PREFIX/lib/pkgconfig/dbmux.pc)"
