#!/usr/bin/env bash
# Prints the path of promtool (Prometheus's own checker of the text format),
# which the test command runs on `dbmux metrics`. Uses the one on PATH, else
# takes it out of Debian's `prometheus` package into target/tools/promtool
# without installing the package (which would start a Prometheus server).
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v promtool >/dev/null; then
  command -v promtool
  exit 0
fi
TOOL=$PWD/target/tools/promtool/usr/bin/promtool
if [ ! -x "$TOOL" ]; then
  echo "need-promtool: fetching promtool from Debian's prometheus package" >&2
  if ! command -v apt-get >/dev/null; then
    echo "need-promtool: no apt-get here; put promtool (Prometheus 2.x) on PATH" >&2
    exit 1
  fi
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
  (cd "$WORK" && { apt-get download prometheus >/dev/null 2>&1 || {
    apt-get update -q >/dev/null
    apt-get download prometheus >/dev/null
  }; })
  dpkg-deb -x "$WORK"/prometheus_*.deb "$WORK/x"
  mkdir -p "$(dirname "$TOOL")"
  cp "$WORK/x/usr/bin/promtool" "$TOOL"
fi
echo "$TOOL"
