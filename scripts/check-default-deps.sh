#!/usr/bin/env bash
# What `cargo add dbmux` pulls in: the default features' normal and build
# dependencies must hold neither tokio nor OpenSSL (nor the PostgreSQL
# client). As a check of the check, the `tls` feature must pull them.
set -euo pipefail
cd "$(dirname "$0")/.."

FORBIDDEN='^(tokio|tokio-postgres|native-tls|openssl|openssl-sys|postgres-native-tls)$'
# the names of the crates, once each
deps() { cargo tree --locked -p dbmux -e normal,build --prefix none --format "{p}" "$@" | awk "{print \$1}" | sort -u; }

found=$(deps | grep -E "$FORBIDDEN" || true)
if [ -n "$found" ]; then
  echo "the default features of dbmux pull in what an embedded app did not ask for:" >&2
  echo "$found" >&2
  echo "(cargo tree -p dbmux -e normal,build -i CRATE shows the path)" >&2
  exit 1
fi
with_tls=$(deps --features tls | grep -cE "$FORBIDDEN" || true)
if [ "$with_tls" -lt 4 ]; then
  echo "check-default-deps.sh is broken: --features tls shows $with_tls of tokio, native-tls, openssl" >&2
  exit 1
fi
echo "default features: $(deps | wc -l) crates, none of tokio, tokio-postgres, native-tls, openssl; --features tls adds $with_tls of them"
