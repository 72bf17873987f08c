# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "poll-finish": `rewind poll` finishes a merge that stock LVM's initramfs started.
# Host:   ~50 MiB of known data in /var/lib/pf on the new disk, checksums kept on the host.
# Boot 1: snapshot root, overwrite the data; `rewind rollback vg0/pre` (root is open: flagged
#         for the next boot), `rewind status --json` says flagged; `rewind cancel` withdraws it
#         (stock lvs: a plain snapshot again), `rewind rollback` flags it again.
# Boot 2: dracut's lvm module activates root through snapshot-merge; `rewind status --json`,
#         then `rewind poll`: stock lvs shows no snapshot, dmsetup shows a plain linear root and
#         no -real/-cow/pre device, a second `rewind poll` exits 0 at once.
# Host:   boot 2's checksums equal the "before" ones; stock vgck/lvs on the image: plain root.
# The rewind binary is put into the root (VM_ROOT_ADD); the initramfs is stock LVM2's.

VM_BOOTS=2
VM_LVS=(root:1200M)
VM_INITRAMFS_ARGS=(--lvm --no-systemd)
VM_ROOT_ADD=("${REWIND_BIN:-${VM_REPO_DIR:-}/target/x86_64-unknown-linux-gnu/release/rewind}:/usr/sbin/rewind")

PF_DIR=/var/lib/pf
PF_FILES=5 # of 10 MiB each

# shellcheck source=tests/vm/lib/known-data.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/known-data.sh"

host_prepare() {
    known_data pf "$PF_DIR" "$PF_FILES" "pf before"
}

guest_boot_1() {
    local i rc
    mkdir -p /run/lock/lvm
    # No udevd runs after switch_root in this shell-init guest, but the initramfs udevd's
    # control socket is carried over in /run: libdm (and rewind) would take udev as running
    # and wait for it on every device change (g_lvm turns udev sync off for the same reason).
    rm -f /run/udev/control
    g_lvm lvcreate -s -n pre -L 200M --chunksize 64k vg0/root
    for ((i = 1; i <= PF_FILES; i++)); do
        g_fill "$PF_DIR/f$i" 10 "pf after: file $i"
    done
    echo "pf after" >"$PF_DIR/marker"
    sync
    known_sums "$PF_DIR" >"$OUT/after.sha256"

    rewind rollback vg0/pre 2>&1 | tee "$BOOT_OUT/rollback1.out"
    grep -q 'is in use .* merges back at the next boot' "$BOOT_OUT/rollback1.out" ||
        g_fail "rewind rollback did not defer the merge of the open root"
    g_lvm lvs -a --noheadings -o lv_name,lv_attr vg0 | tee "$BOOT_OUT/lvs-flagged"
    grep -q '\[pre\] *S' "$BOOT_OUT/lvs-flagged" || g_fail "stock lvs does not show pre merging"
    rewind status --json | tee "$BOOT_OUT/status-flagged.json"
    grep -q '"state": "flagged"' "$BOOT_OUT/status-flagged.json" || g_fail "status: not flagged"

    rewind cancel vg0/pre 2>&1 | tee "$BOOT_OUT/cancel.out"
    g_lvm lvs -a --noheadings -o lv_name,lv_attr vg0 | tee "$BOOT_OUT/lvs-cancelled"
    grep -q '^ *pre *s' "$BOOT_OUT/lvs-cancelled" || g_fail "cancel: pre is not a plain snapshot"
    g_lvm vgck vg0

    rc=0
    rewind rollback vg0/pre >"$BOOT_OUT/rollback2.out" 2>&1 || rc=$?
    cat "$BOOT_OUT/rollback2.out"
    [[ $rc == 0 ]] || g_fail "second rewind rollback failed ($rc)"
    g_lvm lvs -a --noheadings -o lv_name,lv_attr vg0
}

guest_boot_2() {
    local t0 rc
    dmsetup table | tee "$BOOT_OUT/dm-table-start"
    grep -q '^vg0-root: .* snapshot-merge ' "$BOOT_OUT/dm-table-start" ||
        g_fail "root is not active through a snapshot-merge table"
    dmsetup status | tee "$BOOT_OUT/dm-status-start"
    rewind status --json >"$BOOT_OUT/status-merging.json" || true
    cat "$BOOT_OUT/status-merging.json"

    mkdir -p /run/lock/lvm
    # No udevd runs after switch_root in this shell-init guest, but the initramfs udevd's
    # control socket is carried over in /run: libdm (and rewind) would take udev as running
    # and wait for it on every device change (g_lvm turns udev sync off for the same reason).
    rm -f /run/udev/control
    t0=$(g_uptime)
    rc=0
    rewind poll -v >"$BOOT_OUT/poll.out" 2>&1 || rc=$?
    g_record poll_runtime "$(g_since "$t0")"
    cat "$BOOT_OUT/poll.out"
    [[ $rc == 0 ]] || g_fail "rewind poll exited $rc"
    # The poller's own figure: from seeing the merge done to the cleanup done.
    g_record poll_done_to_cleanup_ms "$(sed -n 's/.*cleaned up \([0-9]*\) ms after.*/\1/p' "$BOOT_OUT/poll.out" | head -n1)"

    g_lvm lvs -a --noheadings -o lv_name vg0 | tee "$BOOT_OUT/lvs-after-poll"
    if grep -qw pre "$BOOT_OUT/lvs-after-poll"; then
        g_fail "the snapshot is still in the metadata after rewind poll"
    fi
    dmsetup table | tee "$BOOT_OUT/dm-table-end"
    grep -q '^vg0-root: 0 [0-9]* linear ' "$BOOT_OUT/dm-table-end" ||
        g_fail "root's table is not plain linear after the merge"
    if grep -q -e '-cow:' -e '-real:' -e '^vg0-pre:' "$BOOT_OUT/dm-table-end"; then
        g_fail "snapshot devices left after the merge"
    fi
    t0=$(g_uptime)
    rewind poll || g_fail "second rewind poll failed"
    g_record poll_nothing_to_do "$(g_since "$t0")"
    rewind status --json | tee "$BOOT_OUT/status-end.json"
    known_sums "$PF_DIR" | tee "$OUT/boot2.sha256"
}

host_check() {
    vm_check "boot 1 changed the data" \
        vm_files_differ "$VM_STATE/before.sha256" "$VM_STATE/after.sha256"
    vm_check "boot 2 sees the data from before the snapshot" \
        vm_compare_sums "$VM_STATE/before.sha256" "$VM_STATE/boot2.sha256"
    local img=$WORK/disk.img lvs
    vm_check "vgck vg0" vm_image_lvm "$img" vgck vg0
    lvs=$(vm_image_lvm "$img" lvs -a --noheadings --separator , -o lv_name,lv_attr,segtype,origin vg0 | tr -d ' ')
    echo "$lvs" >"$WORK/lvs-final"
    vm_check_eq "LVs left in vg0 (name,attr[1-4],segtype,origin)" "root,-wi-,linear," \
        "$(awk -F, '{ printf "%s%s,%s,%s,%s", (NR > 1 ? ";" : ""), $1, substr($2, 1, 4), $3, $4 }' <<<"$lvs")"
    vm_image_lvm "$img" vgcfgbackup -f "$WORK/vg0-final.vg" vg0
    vm_check "no snapshot or merging_store left in the metadata" \
        vm_file_lacks 'snapshot|merging_store|cow_store' "$WORK/vg0-final.vg"
    vm_check "rewind (not lvm) committed the metadata without the snapshot" \
        grep -q 'metadata committed without the snapshot' "$VM_STATE/boot2/poll.out"
}
