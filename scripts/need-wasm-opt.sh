#!/usr/bin/env bash
# Prints the path of wasm-opt (binaryen 132, from the npm package `binaryen`,
# installed into target/tools/npm in a few seconds). It optimises the module
# of the npm package (scripts/build-wasm-package.sh) and the size report
# (scripts/wasm-size.sh). Debian's binaryen 108 cannot read what current rustc
# emits, and `cargo install wasm-opt` (binaryen 116) compiles for minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
NPM_TOOLS=$PWD/target/tools/npm
TOOL=$NPM_TOOLS/node_modules/.bin/wasm-opt
if ! "$TOOL" --version 2>/dev/null | grep -q "version 132"; then
  echo "need-wasm-opt: installing binaryen 132 (npm) into target/tools/npm" >&2
  npm install --silent --no-audit --no-fund --prefix "$NPM_TOOLS" binaryen@132.0.0 >&2
fi
echo "$TOOL"
