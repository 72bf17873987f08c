# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# The guest-killed-during-the-finish story, shared by poll-guest-kill*: the whole guest dies
# during `rewind poll`'s finish at the failpoint PGK_FAILPOINT (set by the scenario); the next
# boot converges (invariant 8).
# Host:   ~30 MiB of known data in /var/lib/pgk on the new disk, checksums kept on the host.
# Boot 1: snapshot root, overwrite the data; `rewind rollback vg0/pre` (root open: flagged).
# Boot 2: stock LVM's initramfs activates root through snapshot-merge; `rewind poll` runs with
#         the failpoint: it waits for the merge, commits the metadata without the snapshot
#         (poll-after-commit stops there; poll-after-reload also reloads root as linear) and
#         stops; the host kills qemu when the failpoint's line appears on the console
#         (-real/-cow/pre devices still live).
# Host:   after the kill, stock lvs on the image has no pre: the cut came after the commit.
# Boot 3: root comes up plain; its data equals the snapshot's; `rewind poll` has nothing to do.
# Host:   stock vgck/lvs/vgcfgbackup on the image: plain root, no snapshot, no merge flag.

VM_BOOTS=3
VM_LVS=(root:1200M)
VM_INITRAMFS_ARGS=(--lvm --no-systemd)
VM_ROOT_ADD=("${REWIND_BIN:-${VM_REPO_DIR:-}/target/x86_64-unknown-linux-gnu/release/rewind}:/usr/sbin/rewind")

PGK_DIR=/var/lib/pgk
PGK_FILES=3 # of 10 MiB each

# shellcheck source=tests/vm/lib/known-data.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/known-data.sh"

# PGK_FAILPOINT (set by the scenario): poll-after-commit or poll-after-reload.
vm_boot_kill() { [[ $1 == 2 ]] && echo "on failpoint $PGK_FAILPOINT: exiting as if killed"; }

host_prepare() {
    known_data pgk "$PGK_DIR" "$PGK_FILES" "pgk before"
}

guest_boot_1() {
    local i
    mkdir -p /run/lock/lvm
    rm -f /run/udev/control # no udevd after switch_root here (see poll-finish.sh)
    g_lvm lvcreate -s -n pre -L 100M --chunksize 64k vg0/root
    for ((i = 1; i <= PGK_FILES; i++)); do
        g_fill "$PGK_DIR/f$i" 10 "pgk after: file $i"
    done
    echo "pgk after" >"$PGK_DIR/marker"
    sync
    known_sums "$PGK_DIR" >"$OUT/after.sha256"
    rewind rollback vg0/pre 2>&1 | tee "$BOOT_OUT/rollback.out"
    grep -q 'merges back at the next boot' "$BOOT_OUT/rollback.out" ||
        g_fail "rewind rollback did not flag the open root for the next boot"
}

guest_boot_2() {
    dmsetup table | tee "$BOOT_OUT/dm-table-start"
    grep -q '^vg0-root: .* snapshot-merge ' "$BOOT_OUT/dm-table-start" ||
        g_fail "root is not active through a snapshot-merge table"
    mkdir -p /run/lock/lvm
    rm -f /run/udev/control
    # To the console: the host kills qemu on the failpoint's line.
    REWIND_FAILPOINT=$PGK_FAILPOINT rewind poll -v 2>&1 || true
    dmsetup table # what the kill leaves behind, on the console
    sleep 300
    g_fail "the host did not kill the guest at the failpoint"
}

host_check_boot_2() {
    local img=$WORK/disk.img
    vm_check_eq "boot 2 was killed" killed "$(cat "$WORK/boot2.result" 2>/dev/null)"
    vm_check "the failpoint was reached after the commit" \
        grep -q 'metadata committed without the snapshot' "$WORK/boot2.serial.log"
    vm_check_eq "after the kill, stock lvs on the image: root only (the commit is on disk)" "root" \
        "$(vm_image_lvm "$img" lvs -a --noheadings -o lv_name vg0 | tr -d ' ' | paste -sd,)"
    vm_check "vgck vg0 after the kill" vm_image_lvm "$img" vgck vg0
}

guest_boot_3() {
    local rc
    dmsetup table | tee "$BOOT_OUT/dm-table"
    grep -q '^vg0-root: 0 [0-9]* linear ' "$BOOT_OUT/dm-table" ||
        g_fail "root is not plain linear at the boot after the kill"
    if grep -q -e '-cow:' -e '-real:' -e '^vg0-pre:' "$BOOT_OUT/dm-table"; then
        g_fail "snapshot devices at the boot after the kill"
    fi
    mkdir -p /run/lock/lvm
    rm -f /run/udev/control
    rc=0
    rewind poll -v >"$BOOT_OUT/poll.out" 2>&1 || rc=$?
    cat "$BOOT_OUT/poll.out"
    [[ $rc == 0 ]] || g_fail "rewind poll after the kill exited $rc"
    grep -q 'no active merge' "$BOOT_OUT/poll.out" || g_fail "rewind poll found work after the kill"
    g_lvm vgck vg0
    known_sums "$PGK_DIR" | tee "$OUT/boot3.sha256"
}

host_check() {
    vm_check "boot 1 changed the data" \
        vm_files_differ "$VM_STATE/before.sha256" "$VM_STATE/after.sha256"
    vm_check "boot 3 sees the data from before the snapshot" \
        vm_compare_sums "$VM_STATE/before.sha256" "$VM_STATE/boot3.sha256"
    local img=$WORK/disk.img lvs
    vm_check "vgck vg0" vm_image_lvm "$img" vgck vg0
    lvs=$(vm_image_lvm "$img" lvs -a --noheadings --separator , -o lv_name,lv_attr,segtype vg0 | tr -d ' ')
    vm_check_eq "LVs left in vg0 (name,attr[1-4],segtype)" "root,-wi-,linear" \
        "$(awk -F, '{ printf "%s%s,%s,%s", (NR > 1 ? ";" : ""), $1, substr($2, 1, 4), $3 }' <<<"$lvs")"
    vm_image_lvm "$img" vgcfgbackup -f "$WORK/vg0-final.vg" vg0
    vm_check "no snapshot or merge flag left in the metadata" \
        vm_file_lacks 'snapshot|merging_store|cow_store' "$WORK/vg0-final.vg"
}
