#!/usr/bin/env bash
# Runs every test tier: lints, unit and host tests (cargo), fuzzing (bounded), VM scenarios.
# Needs root for the host and VM tiers. REWIND_SKIP_VM=1 skips the VM tier (for quick local runs).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "tests/run.sh: run as root (the host tier uses loop devices, the VM tier builds disks)" >&2
  exit 2
fi

step() { printf '\n== %s\n' "$*"; }

step "dependencies"
bash tests/deps.sh

step "format and lints"
cargo fmt --all -- --check
cargo clippy --all-targets --quiet -- -D warnings
# Every shell file git tracks: a shell shebang, a `.sh` name (the sourced scenarios, story
# libraries and helpers have no shebang), or a `# shellcheck shell=` line at the top. Each
# sourced file names its shell in that line, so shellcheck checks it as what it is.
mapfile -t scripts < <(git ls-files | while read -r f; do
  [ -f "$f" ] || continue
  case $f in *.md) continue ;; esac
  if [[ $f == *.sh ]] || head -c 64 "$f" | grep -qE '^#!.*(ba|da)?sh' ||
    head -n 3 "$f" | grep -q '^# shellcheck shell='; then
    echo "$f"
  fi
done)
unnamed=()
for f in "${scripts[@]}"; do
  head -c 64 "$f" | grep -q '^#!' || head -n 3 "$f" | grep -q '^# shellcheck shell=' || unnamed+=("$f")
done
if ((${#unnamed[@]})); then
  echo "shellcheck: no shebang and no '# shellcheck shell=' line: ${unnamed[*]}" >&2
  exit 1
fi
shellcheck -x --source-path=SCRIPTDIR -S style "${scripts[@]}"
echo "shellcheck: ${#scripts[@]} shell files clean"

step "release build (static)"
cargo build --release --quiet
release_bin="$PWD/target/x86_64-unknown-linux-gnu/release/rewind"
ls -l "$release_bin"

step "unit and host tests"
REWIND_RELEASE_BIN="$release_bin" cargo test --quiet

step "initramfs hooks (dracut, mkinitcpio, initramfs-tools) against recording fakes"
bash tests/hooks/run.sh

step "fuzzing (FUZZ_SECONDS=${FUZZ_SECONDS:-20} per target)"
bash tests/fuzz.sh
# The sanitizer build (~1 GB) is not needed again in this run; the VM tier needs the disk space.
# FUZZ_KEEP_BUILD=1 keeps it for the next run.
[ "${FUZZ_KEEP_BUILD:-0}" = 1 ] || rm -rf "${CARGO_TARGET_DIR:-target}/fuzz"

if [ "${REWIND_SKIP_VM:-0}" = 1 ]; then
  step "VM tier skipped (REWIND_SKIP_VM=1)"
else
  step "VM tier"
  bash tests/vm/run.sh
fi
