#!/usr/bin/env bash
# Runs each cargo-fuzz target for a bounded time (default 30 s each) from
# its committed seed corpus (fuzz/corpus/<target>), installing cargo-fuzz
# into target/tools if needed. cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP
# lets the stable toolchain accept them. Exits non-zero on any crash.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
# With FUZZ_RUNS=N each target instead runs exactly N inputs from a fixed
# seed (-seed=1): a reproducible pass, used by the test command.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-30}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(fuzz_url fuzz_placeholders fuzz_capi)
export PATH="$PWD/target/tools/bin:$PATH"
if ! command -v cargo-fuzz >/dev/null; then
  echo "fuzz: installing cargo-fuzz into target/tools" >&2
  cargo install cargo-fuzz --version 0.13.2 --locked --root target/tools --quiet
fi
export RUSTC_BOOTSTRAP=1
for t in "${TARGETS[@]}"; do
  WORK=$(mktemp -d)
  cp fuzz/corpus/"$t"/* "$WORK"/
  if [ -n "${FUZZ_RUNS:-}" ]; then
    LIMIT=(-runs="$FUZZ_RUNS" -seed=1)
    echo "== fuzz $t for $FUZZ_RUNS runs (seed 1)"
  else
    LIMIT=(-max_total_time="$SECS")
    echo "== fuzz $t for ${SECS}s"
  fi
  LOG="$WORK.log"
  if ! cargo fuzz run -O "$t" "$WORK" -- "${LIMIT[@]}" -print_final_stats=1 >"$LOG" 2>&1; then
    tail -40 "$LOG" >&2
    echo "fuzz: $t failed (a crash is saved under fuzz/artifacts/$t)" >&2
    exit 1
  fi
  grep -E "^stat::number_of_executed_units|^stat::new_units_added|Done [0-9]+ runs" "$LOG" || true
  rm -f "$LOG"
  rm -rf "$WORK"
done
echo "fuzz: no crashes"
