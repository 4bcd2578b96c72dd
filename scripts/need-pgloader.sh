#!/usr/bin/env bash
# Makes sure pgloader is installed: the copy benchmark (benches/copy.rs)
# measures `dbmux copy` against it in the same run. Installs Debian's
# pgloader package when it is missing.
set -euo pipefail
command -v pgloader >/dev/null && exit 0
echo "need-pgloader: installing pgloader" >&2
if ! command -v apt-get >/dev/null; then
  echo "need-pgloader: no apt-get here; install pgloader 3.6 yourself" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q pgloader >/dev/null 2>&1 || {
  apt-get update -q >/dev/null
  apt-get install -y -q pgloader >/dev/null
}
command -v pgloader >/dev/null
