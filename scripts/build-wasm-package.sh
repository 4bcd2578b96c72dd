#!/usr/bin/env bash
# Builds the npm package in bindings/wasm/: the wasm32 module with the OPFS
# VFS (features `opfs`), size-optimised (profile wasm-small), through
# `wasm-bindgen --target web` into bindings/wasm/dist/ (dbmux.js,
# dbmux_bg.wasm). DBMUX_WASM_PROFILE=release builds quicker and larger.
# Then `npm pack` in bindings/wasm/ makes dbmux-wasm-VERSION.tgz.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/wasm-setup.sh)"
PROFILE=${DBMUX_WASM_PROFILE:-wasm-small}
cargo build --locked --target wasm32-unknown-unknown -p dbmux --no-default-features \
  --features opfs --example wasm_node --profile "$PROFILE"
rm -rf bindings/wasm/dist
wasm-bindgen --target web --no-typescript --out-name dbmux --out-dir bindings/wasm/dist \
  "target/wasm32-unknown-unknown/$PROFILE/examples/wasm_node.wasm"
echo "bindings/wasm/dist/dbmux_bg.wasm: $(stat -c %s bindings/wasm/dist/dbmux_bg.wasm) bytes ($PROFILE)" >&2
