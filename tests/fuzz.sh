#!/usr/bin/env bash
# Bounded fuzzing of every parser: seeds the corpora from the fixtures (fuzz/seed.sh), builds
# the targets once and runs each for FUZZ_SECONDS (default 20). Fails on any crash; the input
# that crashed is left in fuzz/artifacts/TARGET/. Installs cargo-fuzz if it is missing.
# cargo-fuzz needs nightly flags (-Zsanitizer); RUSTC_BOOTSTRAP=1 lets the stable toolchain
# accept them. cargo-fuzz sets RUSTFLAGS itself, which replaces the main crate's
# `.cargo/config.toml` rustflags (+crt-static, which AddressSanitizer cannot link with).
# The targets are built optimised with debug assertions and overflow checks (cargo-fuzz's
# default without -O), so an arithmetic overflow on a hostile header is a crash too.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-20}
# shellcheck source=tests/progress.sh
. tests/progress.sh
pg_setup
export RUSTC_BOOTSTRAP=1
# Sanitizer builds get their own target directory: sharing the main one would make the two
# builds (different RUSTFLAGS) overwrite each other's artifacts.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

bash fuzz/seed.sh
targets=$(cargo fuzz list)
start=$(date +%s)
cargo fuzz build
echo "fuzz: build took $(($(date +%s) - start)) s"

# fuzz_one TARGET: one bounded run, its output to $log.
fuzz_one() {
  cargo fuzz run "$1" "fuzz/corpus/$1" -- -max_total_time="$seconds" -max_len=65536 \
    -print_final_stats=1 >"$log" 2>&1
}

failed=() i=0
total=$(wc -w <<<"$targets")
for t in $targets; do
  i=$((i + 1))
  log=$(mktemp)
  if pg_run "fuzz: $t (target $i of $total, ${seconds} s)" fuzz_one "$t"; then
    runs=$(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
    echo "fuzz: $t (target $i of $total): ${runs:-?} executions in ${seconds} s, no crash"
  else
    echo "fuzz: $t (target $i of $total): CRASH (input in fuzz/artifacts/$t/)"
    tail -n 40 "$log"
    failed+=("$t")
  fi
  rm -f "$log"
done
echo "fuzz: total $(($(date +%s) - start)) s"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: crashes in: ${failed[*]}" >&2
  exit 1
fi
