#!/usr/bin/env bash
# The reboot-to-rollback demo, in a qemu guest (run as root; installs what it needs).
#
# A Debian guest boots from an LVM root through an initramfs that holds rewind and no LVM2.
# Boot 1: a snapshot of root is taken, 30 MiB of data are overwritten (the "bad upgrade"), and
# `rewind rollback vg0/pre` flags the merge for the next boot (root is in use).
# Boot 2: `rewind early` sets up the merge before root is mounted, so the system comes up in
# its old state at once; `rewind poll` waits for the kernel to finish copying, drops the
# snapshot from LVM's metadata and reloads root as a plain volume. This script then shows what
# happened, step by step, from the run's own records.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) != 0 ]]; then
    echo "demo: run as root (it builds disk images and boots qemu)" >&2
    exit 2
fi
bash tests/deps.sh
cargo build --release --quiet

scenario=reboot-rollback
VM_SELFTEST_BOOT=0 bash tests/vm/run.sh "$scenario"
run=target/vm/run/$scenario
state=$run/state

show() { printf '\n== %s\n' "$1"; }
show "boot 1: rewind rollback vg0/pre, after the bad upgrade"
cat "$state/rollback.out"
show "boot 1: stock LVM2 reads the flag rewind committed"
cat "$state/lvs-flagged"
show "boot 2: what rewind early said on the console, before root was mounted"
cat "$state/rewind-early.log"
show "boot 2: device-mapper tables as root came up (LVM's own merge layout)"
cat "$state/dm-table-start"
show "boot 2: rewind poll, in the booted system"
cat "$state/poll.out"
show "boot 2: afterwards: a plain root, no snapshot"
cat "$state/dm-table-end" "$state/lvs-end"
show "the data: before the upgrade, after it, and as seen in boot 2"
paste <(awk '{ print $2, substr($1, 1, 12) }' "$state/before.sha256") \
    <(awk '{ print substr($1, 1, 12) }' "$state/after.sha256") \
    <(awk '{ print substr($1, 1, 12) }' "$state/boot2.sha256") |
    awk 'BEGIN { printf "%-8s %-14s %-14s %-14s\n", "file", "before", "after upgrade", "boot 2" }
         { printf "%-8s %-14s %-14s %-14s\n", $1, $2, $3, $4 }'
show "the whole run's logs"
echo "$run"
