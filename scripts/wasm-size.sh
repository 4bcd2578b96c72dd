#!/usr/bin/env bash
# Prints the size of the wasm module dbmux ships (examples/wasm_node after
# wasm-bindgen): the release build, the size-optimised profile
# (`wasm-small`: opt-level "z", LTO, one codegen unit), and that build
# through `wasm-opt -Oz` (binaryen 116, installed into target/tools by
# `cargo install wasm-opt` when missing, about 7 minutes once; Debian's
# binaryen 108 cannot read what current rustc emits). wasm-opt runs before
# wasm-bindgen: binaryen 116 cannot parse the `table.fill` that
# wasm-bindgen's externref pass adds. Each module is checked to still run
# the Node example. Not part of the test command (it only measures).
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/wasm-setup.sh)"
if ! target/tools/bin/wasm-opt --version 2>/dev/null | grep "version 116" >/dev/null; then
  echo "wasm-size: installing wasm-opt (binaryen 116) into target/tools" >&2
  cargo install wasm-opt --version 0.116.1 --root target/tools --quiet
fi
FLAGS=(--locked --target wasm32-unknown-unknown -p dbmux --no-default-features --features wasm --example wasm_node)
OUT=target/wasm-size
rm -rf "$OUT"

report() { # name dir
  local f="$2/wasm_node_bg.wasm"
  node examples/wasm/health.js "$2/wasm_node.js" | grep '"status":"healthy"' >/dev/null \
    || { echo "wasm-size: $1 does not run" >&2; exit 1; }
  printf '%-32s %9d bytes  %8d gzipped\n' "$1" "$(stat -c %s "$f")" "$(gzip -9c "$f" | wc -c)"
}

cargo build "${FLAGS[@]}" --release
wasm-bindgen --target nodejs --out-dir "$OUT/release" target/wasm32-unknown-unknown/release/examples/wasm_node.wasm
cargo build "${FLAGS[@]}" --profile wasm-small
wasm-bindgen --target nodejs --out-dir "$OUT/small" target/wasm32-unknown-unknown/wasm-small/examples/wasm_node.wasm

echo "size of the shipped module (wasm_node_bg.wasm):"
report "release" "$OUT/release"
report "opt-level=z, LTO" "$OUT/small"
target/tools/bin/wasm-opt -Oz --enable-bulk-memory --enable-reference-types --enable-sign-ext \
  --enable-nontrapping-float-to-int --enable-mutable-globals --enable-multivalue \
  target/wasm32-unknown-unknown/wasm-small/examples/wasm_node.wasm -o "$OUT/wasm_node.wasm"
wasm-bindgen --target nodejs --out-dir "$OUT/small-opt" "$OUT/wasm_node.wasm"
report "opt-level=z, LTO, wasm-opt -Oz" "$OUT/small-opt"
