#!/usr/bin/env bash
# Runs every test suite of dbmux. This is the README's test command, and
# .ci/run calls it. It installs what it needs (the PostgreSQL server
# package, through scripts/with-test-postgres.sh). With CI=true a suite
# whose prerequisites are missing fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# The system SQLite (libsqlite3 and its headers): the C library and the
# Python package link it, and the one-SQLite tests call it directly.
scripts/need-libsqlite3.sh

echo "== Rust: the default features (what cargo add dbmux gives) pull neither tokio nor OpenSSL"
scripts/check-default-deps.sh

echo "== Rust: unit, integration, CLI and doc tests (SQLite on real files, PostgreSQL on real servers)"
# --features dbmux/cli: the CLI and every backend (PostgreSQL and TLS are
# not default features of the crate).
# Two throwaway PostgreSQL clusters (one with TLS), and a primary with two
# streaming standbys, live for the duration of the run.
scripts/with-test-postgres.sh scripts/with-test-replicas.sh cargo test --locked --workspace --features dbmux/cli

echo "== C: header up to date, tests against the shared and static library and under ASan+UBSan, on SQLite and PostgreSQL; one SQLite per process"
CDB=$(mktemp -d)
scripts/with-test-postgres.sh bash -c 'scripts/test-c.sh "sqlite:///$0/c.db" "$DBMUX_TEST_PG_URL?sslmode=require"' "$CDB"
rm -rf "$CDB"

echo "== C: scripts/install-c.sh into a temporary prefix; the example built with pkg-config alone (shared and static)"
scripts/test-c-install.sh

echo "== Python: pip install ./bindings/python into a fresh venv (maturin builds the compiled core), then pytest on SQLite and PostgreSQL"
# The bundled libdbmux that scripts/test-c.sh kept aside: the hidden-copy test loads it beside dbmux.
export DBMUX_TEST_BUNDLED_LIBRARY=$ROOT/target/c-tests/bundled/libdbmux.so
VENV=$ROOT/target/py-venv
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "./bindings/python[test]"
# `pip wheel` makes the wheel; one built with its own SQLite, unpacked, is
# what the second-copy test imports beside the sqlite3 module.
PYB=$ROOT/target/py-bundled
rm -rf "$PYB"
MATURIN_PEP517_ARGS="--features bundled" "$VENV/bin/pip" wheel --quiet --disable-pip-version-check \
  --no-deps -w "$PYB/wheel" ./bindings/python
"$VENV/bin/python" -m zipfile -e "$PYB"/wheel/dbmux-*.whl "$PYB/site"
export DBMUX_TEST_BUNDLED_PACKAGE=$PYB/site
scripts/with-test-postgres.sh scripts/with-test-replicas.sh \
  bash -c 'cd bindings/python/tests && "$0/bin/python" -m pytest -q -p no:cacheprovider' "$VENV"

echo "== SQLAlchemy's dialect compliance suite: sqlite+dbmux against pysqlite, postgresql+dbmux beside psycopg2"
"$VENV/bin/pip" install --quiet --disable-pip-version-check psycopg2-binary
scripts/with-test-postgres.sh scripts/test-sqlalchemy.sh "$VENV/bin/python"

echo "== WebAssembly: wasm32-unknown-unknown build, tests in Node (wasm-bindgen-test), the Node example"
scripts/test-wasm.sh

echo "== Rust: the metrics crate facade (feature metrics) sees the numbers of metrics_text"
scripts/with-test-postgres.sh cargo test --locked --features metrics,tls --test metrics_facade

echo "== Rust: Manager::interact (feature tokio) on a current-thread runtime"
cargo test --locked --features tokio --doc -p dbmux -- interact
cargo test --locked --features tokio --test tokio_interact

echo "== Prometheus's promtool checks the text of dbmux metrics, on SQLite and on PostgreSQL"
PROMTOOL=$(scripts/need-promtool.sh)
MDB=$(mktemp -d)
scripts/with-test-postgres.sh bash -c '
  set -euo pipefail
  for url in "sqlite:///$1/m.db" "$DBMUX_TEST_PG_URL?sslmode=require"; do
    text=$(cargo run --locked --quiet --features cli -- metrics --url "$url")
    grep -q "^dbmux_checkouts_total{" <<<"$text"
    "$0" check metrics <<<"$text"
  done' "$PROMTOOL" "$MDB"
rm -rf "$MDB"

echo "== Rust: a build without default features still compiles and parses URLs"
cargo test --locked --no-default-features --lib --test url_config

echo "== README's first command: the quickstart on the embedded default, in an empty directory"
QS=$(mktemp -d)
trap 'rm -rf "$QS"' EXIT
(cd "$QS" && env -u DATABASE_URL cargo run --locked --quiet --manifest-path "$ROOT/Cargo.toml" --example quickstart)
test -f "$QS/dbmux.db" || { echo "quickstart did not create dbmux.db" >&2; exit 1; }

echo "== Fuzzing smoke pass: 300,000 inputs per cargo-fuzz target from a fixed seed (scripts/fuzz.sh SECONDS for longer runs)"
FUZZ_RUNS=300000 scripts/fuzz.sh

echo "== Benchmark smoke runs (short; see benches/README.md for real figures)"
# One feature set for all of them (one build): the CLI's, every backend.
DBMUX_BENCH_QUICK=1 cargo bench --locked --features cli --bench pool
DBMUX_BENCH_QUICK=1 cargo bench --locked --features cli --bench sqlite
DBMUX_BENCH_QUICK=1 cargo bench --locked --features cli --bench sqlite_wal
DBMUX_BENCH_QUICK=1 scripts/with-test-postgres.sh cargo bench --locked --features cli --bench postgres
scripts/need-pgloader.sh
DBMUX_BENCH_QUICK=1 scripts/with-test-postgres.sh cargo bench --locked --features cli --bench copy

echo "dbmux: all test suites passed"
