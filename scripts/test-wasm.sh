#!/usr/bin/env bash
# The wasm32 suite: builds the library for wasm32-unknown-unknown with the
# SQLite backend alone, runs tests/wasm.rs in Node and in headless Chromium
# and tests/wasm_worker.rs (OPFS) in a dedicated worker of Chromium
# (wasm-bindgen-test-runner through chromedriver), builds the Node example
# and checks that it prints a healthy report, builds the npm package
# (bindings/wasm/) and tests it (npm pack, tsc, Node), and drives the demo
# page and the OPFS reload page in Chromium (scripts/browser-test.mjs).
# scripts/wasm-setup.sh installs the target, clang-19, Node.js and npm,
# Chromium and chromedriver, and a wasm-bindgen-cli matching Cargo.lock.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/wasm-setup.sh)"
FLAGS=(--locked --target wasm32-unknown-unknown -p dbmux --no-default-features)

echo "-- cargo build ${FLAGS[*]} --features sqlite"
cargo build "${FLAGS[@]}" --features sqlite

echo "-- clippy of the wasm32 code (library, tests, example), with and without OPFS"
cargo clippy "${FLAGS[@]}" --features wasm --lib --test wasm --example wasm_node -- -D warnings
cargo clippy "${FLAGS[@]}" --features opfs --lib --test wasm --test wasm_worker --example wasm_node -- -D warnings

echo "-- tests/wasm.rs in Node"
cargo test "${FLAGS[@]}" --features opfs --test wasm

echo "-- tests/wasm.rs in headless Chromium (the page's thread: OPFS refused with a clear error)"
WASM_BINDGEN_USE_BROWSER=1 cargo test "${FLAGS[@]}" --features opfs --test wasm

echo "-- tests/wasm_worker.rs in a dedicated worker of headless Chromium (OPFS)"
cargo test "${FLAGS[@]}" --features opfs --test wasm_worker

echo "-- the Node example (examples/wasm/health.js)"
cargo build "${FLAGS[@]}" --features wasm --release --example wasm_node
rm -rf target/wasm-example
wasm-bindgen --target nodejs --out-dir target/wasm-example \
  target/wasm32-unknown-unknown/release/examples/wasm_node.wasm
OUT=$(node examples/wasm/health.js)
echo "$OUT"
grep -q '^health: {"status":"healthy","database_type":"sqlite"' <<<"$OUT" \
  || { echo "test-wasm: the example did not print a healthy report" >&2; exit 1; }
grep -q '^transaction rolled back: changed my mind$' <<<"$OUT" \
  || { echo "test-wasm: the example's transaction did not roll back" >&2; exit 1; }
grep -q '^note 1: hello from wasm (stars: 4.5, raw: 1,2,3)$' <<<"$OUT" \
  || { echo "test-wasm: the example did not read its row back" >&2; exit 1; }
grep -q '^dbmux_checkouts_total{pool="sqlite:notes.db",backend="sqlite"} [0-9]' <<<"$OUT" \
  || { echo "test-wasm: the example did not print its checkouts metric" >&2; exit 1; }

SIZE=$(stat -c %s target/wasm-example/wasm_node_bg.wasm)
GZ=$(gzip -9c target/wasm-example/wasm_node_bg.wasm | wc -c)
echo "-- target/wasm-example/wasm_node_bg.wasm (release): $SIZE bytes, $GZ gzipped (scripts/wasm-size.sh for the size-optimised build)"

echo "-- the npm package (bindings/wasm/): built, packed, installed, type-checked and run"
scripts/build-wasm-package.sh
scripts/test-wasm-package.sh

echo "-- the demo page and the OPFS page in headless Chromium (a reload, a browser restart)"
node scripts/browser-test.mjs
