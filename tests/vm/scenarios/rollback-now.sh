# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "rollback-now": `rewind rollback` of a volume nothing has open starts the merge at
# once (the origin is reloaded into LVM's merge layout, as `lvconvert --merge` does), and
# `rewind poll` finishes it, all in one boot with the real kernel.
# Boot 1: activate vg0/data (not mounted), write pattern A (checksum), snapshot it, write
#         pattern B; `rewind rollback vg0/dsnap` must say the merge runs now and dmsetup must
#         show snapshot-merge; `rewind poll -vv` finishes it: stock lvs shows no snapshot, data
#         is plain linear with no -real/-cow/dsnap device left, and its content is pattern A.
# Host:   stock vgck/lvs on the image: root and data plain, no snapshot in the metadata.

VM_BOOTS=1
VM_LVS=(root:1200M data:256M)
VM_INITRAMFS_ARGS=(--lvm --no-systemd)
VM_ROOT_ADD=("${REWIND_BIN:-${VM_REPO_DIR:-}/target/x86_64-unknown-linux-gnu/release/rewind}:/usr/sbin/rewind")

RN_MIB=128

guest_boot_1() {
    local a b t0 rc
    mkdir -p /run/lock/lvm
    # No udevd runs after switch_root in this shell-init guest, but the initramfs udevd's
    # control socket is carried over in /run: libdm (and rewind) would take udev as running
    # and wait for it on every device change (g_lvm turns udev sync off for the same reason).
    rm -f /run/udev/control
    g_lvm lvchange -ay vg0/data
    g_fill_dev /dev/mapper/vg0-data "$RN_MIB" "rollback-now pattern A"
    a=$(g_sum_dev /dev/mapper/vg0-data "$RN_MIB")
    echo "$a" >"$OUT/a.sum"
    g_lvm lvcreate -s -n dsnap -L 200M --chunksize 64k vg0/data
    g_fill_dev /dev/mapper/vg0-data "$RN_MIB" "rollback-now pattern B"
    b=$(g_sum_dev /dev/mapper/vg0-data "$RN_MIB")
    echo "$b" >"$OUT/b.sum"
    [[ $a != "$b" ]] || g_fail "pattern B did not change the data"

    rewind rollback vg0/dsnap 2>&1 | tee "$BOOT_OUT/rollback.out"
    t0=$(g_uptime)
    grep -q 'merging vg0/dsnap back now' "$BOOT_OUT/rollback.out" ||
        g_fail "rewind rollback did not start the merge of the unused volume"
    dmsetup table | tee "$BOOT_OUT/dm-table-merging"
    grep -q '^vg0-data: .* snapshot-merge ' "$BOOT_OUT/dm-table-merging" ||
        g_fail "vg0-data is not a snapshot-merge"
    grep -q '^vg0-dsnap: 0 [0-9]* error' "$BOOT_OUT/dm-table-merging" ||
        g_fail "vg0-dsnap is not the error device of LVM's merge layout"
    # status samples twice a second apart (rate, ETA) while the poller runs beside it.
    rewind status --json >"$BOOT_OUT/status.json" 2>&1 &
    rc=0
    RUST_LOG=debug rewind poll -vv >"$BOOT_OUT/poll.out" 2>&1 || rc=$?
    wait
    cat "$BOOT_OUT/status.json"
    g_record rollback_to_poll_end "$(g_since "$t0")"
    cat "$BOOT_OUT/poll.out"
    [[ $rc == 0 ]] || g_fail "rewind poll exited $rc"
    g_record poll_done_to_cleanup_ms "$(sed -n 's/.*cleaned up \([0-9]*\) ms after.*/\1/p' "$BOOT_OUT/poll.out" | head -n1)"
    g_record poll_status_samples "$(grep -c 'sectors left' "$BOOT_OUT/poll.out" || true)"

    g_lvm lvs -a --noheadings -o lv_name vg0 | tee "$BOOT_OUT/lvs-after"
    if grep -qw dsnap "$BOOT_OUT/lvs-after"; then
        g_fail "the snapshot is still in the metadata after rewind poll"
    fi
    dmsetup table | tee "$BOOT_OUT/dm-table-end"
    grep -q '^vg0-data: 0 [0-9]* linear ' "$BOOT_OUT/dm-table-end" ||
        g_fail "vg0-data is not plain linear after the merge"
    if grep -q -e '-cow:' -e '-real:' -e '^vg0-dsnap:' "$BOOT_OUT/dm-table-end"; then
        g_fail "snapshot devices left after the merge"
    fi
    g_sum_dev /dev/mapper/vg0-data "$RN_MIB" | tee "$OUT/end.sum"
    g_lvm vgck vg0
}

host_check() {
    vm_check_eq "data after rollback equals pattern A" "$(cat "$VM_STATE/a.sum")" "$(cat "$VM_STATE/end.sum")"
    vm_check "pattern B differed" test "$(cat "$VM_STATE/a.sum")" != "$(cat "$VM_STATE/b.sum")"
    local img=$WORK/disk.img lvs
    vm_check "vgck vg0" vm_image_lvm "$img" vgck vg0
    lvs=$(vm_image_lvm "$img" lvs -a --noheadings --separator , -o lv_name,lv_attr,segtype vg0 | tr -d ' ')
    echo "$lvs" >"$WORK/lvs-final"
    vm_check_eq "LVs left in vg0 (name,attr[1-4],segtype)" "data,-wi-,linear;root,-wi-,linear" \
        "$(sort <<<"$lvs" | awk -F, '{ printf "%s%s,%s,%s", (NR > 1 ? ";" : ""), $1, substr($2, 1, 4), $3 }')"
    vm_check "rewind committed the metadata without the snapshot" \
        grep -q 'metadata committed without the snapshot' "$VM_STATE/boot1/poll.out"
}
