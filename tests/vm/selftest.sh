#!/bin/bash
# Host-only self-test of the VM harness's checks (no boot): a wrong checksum must fail and say
# which file differed and how; identical listings must pass.
set -euo pipefail
TESTS_VM_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/vm/host-lib.sh
. "$TESTS_VM_DIR/host-lib.sh"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '%s  f01\n%s  marker\n' "$(printf a | sha256sum | cut -d' ' -f1)" "$(printf b | sha256sum | cut -d' ' -f1)" >"$tmp/want"
cp "$tmp/want" "$tmp/same"
sed 's/^./0/' "$tmp/want" | head -n1 >"$tmp/wrong"
sed -n 2p "$tmp/want" >>"$tmp/wrong"
head -n1 "$tmp/want" >"$tmp/short"

fail() {
    echo "selftest: FAIL: $*" >&2
    exit 1
}
vm_compare_sums "$tmp/want" "$tmp/same" 2>"$tmp/err" || fail "identical listings reported as different: $(cat "$tmp/err")"
if vm_compare_sums "$tmp/want" "$tmp/wrong" 2>"$tmp/err"; then
    fail "a wrong checksum was not detected"
fi
grep -q '^checksum mismatch: f01 expected [0-9a-f]\{64\} got 0' "$tmp/err" || fail "unclear message: $(cat "$tmp/err")"
if vm_compare_sums "$tmp/want" "$tmp/short" 2>"$tmp/err"; then
    fail "a missing file was not detected"
fi
grep -q '^checksum mismatch: marker missing' "$tmp/err" || fail "unclear message: $(cat "$tmp/err")"
echo "selftest: ok (checksum comparison detects and names differences)" >&2
