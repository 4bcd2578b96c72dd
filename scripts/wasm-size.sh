#!/usr/bin/env bash
# Prints the size of the wasm module dbmux ships (examples/wasm_node after
# wasm-bindgen): the release build, the size-optimised profile
# (`wasm-small`: opt-level "z", LTO, one codegen unit), and that build
# through `wasm-opt -Oz` when wasm-opt 116+ is on PATH or in target/tools
# (`cargo install wasm-opt --root target/tools`; Debian's binaryen 108 cannot
# read what current rustc and wasm-bindgen emit). Each is checked to still
# run the Node example.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/wasm-setup.sh)"
FLAGS=(--locked --target wasm32-unknown-unknown -p dbmux --no-default-features --features wasm --example wasm_node)
OUT=target/wasm-size
rm -rf "$OUT"

report() { # name dir
  local f="$2/wasm_node_bg.wasm"
  node examples/wasm/health.js "$2/wasm_node.js" | grep -q '"status":"healthy"' \
    || { echo "wasm-size: $1 does not run" >&2; exit 1; }
  printf '%-28s %9d bytes  %8d gzipped\n' "$1" "$(stat -c %s "$f")" "$(gzip -9c "$f" | wc -c)"
}

cargo build "${FLAGS[@]}" --release
wasm-bindgen --target nodejs --out-dir "$OUT/release" target/wasm32-unknown-unknown/release/examples/wasm_node.wasm
cargo build "${FLAGS[@]}" --profile wasm-small
wasm-bindgen --target nodejs --out-dir "$OUT/small" target/wasm32-unknown-unknown/wasm-small/examples/wasm_node.wasm

echo "size of the shipped module (wasm_node_bg.wasm):"
report "release" "$OUT/release"
report "opt-level=z, LTO" "$OUT/small"
if command -v wasm-opt >/dev/null && wasm-opt --version | grep -qE 'version (1[1-9][0-9]|[2-9][0-9]{2})'; then
  cp -r "$OUT/small" "$OUT/small-opt"
  wasm-opt -Oz --enable-bulk-memory --enable-reference-types --enable-sign-ext \
    --enable-nontrapping-float-to-int --enable-mutable-globals --enable-multivalue \
    "$OUT/small/wasm_node_bg.wasm" -o "$OUT/small-opt/wasm_node_bg.wasm"
  report "opt-level=z, LTO, wasm-opt" "$OUT/small-opt"
else
  echo "(no wasm-opt 116+ found: skipped the wasm-opt step)"
fi
