#!/usr/bin/env bash
# Installs what the wasm32 build and its tests need, when missing:
# - the wasm32-unknown-unknown target (rustup);
# - clang-19, whose wasm32 backend compiles SQLite's C for sqlite-wasm-rs
#   (Debian's default clang 14 is too old) -- apt, as root or through sudo;
# - Node.js and npm, which run the tests and pack the npm package (apt);
# - Chromium and its chromedriver, for the tests in a headless browser (apt);
# - wasm-bindgen-cli, at exactly the wasm-bindgen version in Cargo.lock,
#   into target/tools (its test runner must match the library).
# Prints the environment to use: `eval "$(scripts/wasm-setup.sh)"`.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "wasm-setup: $*" >&2; }

if ! rustup target list --installed | grep -x wasm32-unknown-unknown >/dev/null; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown >&2
fi

# apt-get install, as root or through sudo; refreshes the lists if needed
apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2 \
    || { $sudo apt-get update -q >&2 && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >&2; }
}

if ! command -v clang-19 >/dev/null; then
  log "installing clang-19 (apt)"
  apt_install clang-19
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  log "installing Node.js and npm (apt), which run the wasm tests"
  apt_install nodejs npm
fi

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  log "installing chromium and chromium-driver (apt), for the browser tests"
  apt_install chromium chromium-driver
fi

VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
if [ -z "$VERSION" ]; then
  log "no wasm-bindgen in Cargo.lock"
  exit 1
fi
BIN=target/tools/bin/wasm-bindgen-test-runner
if [ ! -x "$BIN" ] || ! target/tools/bin/wasm-bindgen --version | grep " $VERSION\$" >/dev/null; then
  log "installing wasm-bindgen-cli $VERSION into target/tools (a few minutes, once)"
  # --locked first; the registry mirror may lack a pinned dependency
  # (webpki-roots 1.0.11 for 0.2.130), and then the newest that resolves
  cargo install wasm-bindgen-cli --version "$VERSION" --locked --root target/tools --quiet >&2 \
    || cargo install wasm-bindgen-cli --version "$VERSION" --root target/tools --quiet >&2
fi

echo "export CC_wasm32_unknown_unknown=clang-19"
echo "export AR_wasm32_unknown_unknown=llvm-ar-19"
echo "export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=$PWD/$BIN"
echo "export PATH=$PWD/target/tools/bin:\$PATH"
echo "export CHROMEDRIVER=$(command -v chromedriver)"
