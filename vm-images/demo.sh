#!/usr/bin/env bash
# The reboot-to-rollback demo, in a qemu guest (run as root; installs what it needs).
#
# A Debian guest boots from an LVM root through an initramfs that holds rewind and no LVM2.
# Boot 1: snapshots of root are taken and 30 MiB of data are overwritten (the "bad upgrade").
# Boot 2: `rd.rewind=vg0/pre` on the kernel command line: rewind flags the merge in LVM's own
# metadata, sets up the merge before root is mounted, and the system comes up in its old state
# while the kernel copies the old data back. This script then shows what happened.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) != 0 ]]; then
    echo "demo: run as root (it builds disk images and boots qemu)" >&2
    exit 2
fi
bash tests/deps.sh
cargo build --release --quiet

scenario=rewind-cmdline
VM_SELFTEST_BOOT=0 bash tests/vm/run.sh "$scenario"
run=target/vm/run/$scenario
state=$run/state

show() { printf '\n== %s\n' "$1"; }
show "boot 2: what rewind said on the console"
grep -a 'rewind:' "$run/boot2.serial.log" | sort -u
show "boot 2: device-mapper tables before root was mounted (LVM's own layout)"
cat "$state/boot2/dm-table-start"
show "boot 2: stock LVM2 reads the merge flag rewind committed"
cat "$state/boot2/lvs-start"
show "the data: as before the snapshot, after the bad change, and as seen in boot 2"
paste <(awk '{ print $2, substr($1, 1, 12) }' "$state/before.sha256") \
    <(awk '{ print substr($1, 1, 12) }' "$state/after.sha256") \
    <(awk '{ print substr($1, 1, 12) }' "$state/boot2.sha256") |
    awk 'BEGIN { printf "%-8s %-14s %-14s %-14s\n", "file", "before", "after change", "boot 2" }
         { printf "%-8s %-14s %-14s %-14s\n", $1, $2, $3, $4 }'
show "the whole run's logs"
echo "$run"
