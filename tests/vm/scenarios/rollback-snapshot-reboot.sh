# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "rollback-snapshot-reboot" (long suite): a `--mode snapshot` merge cut by a power
# loss mid-merge is resumed by the next boot's `rewind early` the same way (invariants 2, 8):
# the snapshot's device merging, the origin's device an error target.
# Boot 1: ext4 on vg0/data with files A; snapshot dsnap; files B (checksums, dsnap's UUID).
# Boot 2: root disk throttled; dsnap mounted; `rewind rollback vg0/dsnap --mode snapshot`:
#         qemu is killed as soon as it says the merge runs.
# Host:   stock lvs on the image: dsnap flagged (merging, with rewind's mode tag); vgck clean.
# Boot 3: rewind's initramfs (no LVM2) lays out the merge again: vg0-dsnap snapshot-merge,
#         vg0-data error. The mounted dsnap shows A; `rewind poll` finishes: stock lvs shows
#         dsnap with the snapshot's UUID and no data LV; only vg0-dsnap (linear) is left.
# Host:   checksums equal A; stock vgck/lvs on the image.

VM_SCENARIO_SUITE=long
VM_BOOTS=3
VM_LVS=(root:1200M data:128M)
VM_INITRAMFS_ARGS=(--no-lvm --no-systemd --modules-dir "${VM_REPO_DIR:-}/dracut-module")
VM_ROOT_ADD=(
    "${VM_REPO_DIR:-}/target/x86_64-unknown-linux-gnu/release/rewind:/usr/sbin/rewind"
    "${VM_REPO_DIR:-}/initramfs/rewind-early:/usr/lib/rewind/rewind-early"
)

vm_boot_disk_opts() { [[ $1 == 2 ]] && echo 'throttling.bps-total=8388608'; }
vm_boot_kill() { [[ $1 == 2 ]] && echo 'on vg0/dsnap: merging into vg0/data'; }

RSR_FILES=4 # of 8 MiB each

guest_boot_1() {
    local i
    mkdir -p /run/lock/lvm /mnt/data
    rm -f /run/udev/control # no udevd after switch_root here (see rollback-now.sh)
    g_lvm lvchange -ay vg0/data
    mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 /dev/mapper/vg0-data
    mount /dev/mapper/vg0-data /mnt/data
    for ((i = 0; i < RSR_FILES; i++)); do
        g_fill "/mnt/data/f$i" 8 "rollback-snapshot-reboot file $i pattern A"
    done
    g_sums_cold /mnt/data "$OUT/sums-a"
    umount /mnt/data
    g_lvm lvcreate -s -n dsnap -L 60M --chunksize 64k vg0/data
    g_lvm lvs --noheadings -o lv_uuid vg0/dsnap | tr -d ' ' >"$OUT/dsnap-uuid"
    mount /dev/mapper/vg0-data /mnt/data
    for ((i = 0; i < RSR_FILES; i++)); do
        g_fill "/mnt/data/f$i" 8 "rollback-snapshot-reboot file $i pattern B"
    done
    g_sums_cold /mnt/data "$OUT/sums-b"
    umount /mnt/data
}

guest_boot_2() {
    mkdir -p /run/lock/lvm /mnt/snap
    rm -f /run/udev/control
    g_lvm lvchange -ay vg0/data
    mount /dev/mapper/vg0-dsnap /mnt/snap
    # Nothing written to $OUT in this boot survives the kill: the host reads the disk.
    rewind rollback vg0/dsnap --mode snapshot 2>&1
    dmsetup status vg0-dsnap
    sleep 300
    g_fail "the host did not kill the guest"
}

# The number of exceptions in dsnap's first exception area on the image (64 KiB chunks).
rsr_exceptions() {
    vm_cow_exceptions "$WORK/disk.img" "$(vm_cow_area "$WORK/disk.img" vg0/dsnap)"
}

host_check_boot_1() {
    rsr_exceptions >"$VM_STATE/exceptions-boot1"
    vm_check "the snapshot holds the change ($(cat "$VM_STATE/exceptions-boot1") exceptions)" \
        test "$(cat "$VM_STATE/exceptions-boot1")" -gt 0
}

host_check_boot_2() {
    local img=$WORK/disk.img lvs n
    vm_check_eq "boot 2 was killed" killed "$(cat "$WORK/boot2.result" 2>/dev/null)"
    lvs=$(vm_image_lvm "$img" lvs -a --noheadings -o lv_name,lv_attr,lv_tags vg0)
    echo "$lvs"
    vm_check "after the kill, stock lvs: dsnap merging with rewind's mode tag" \
        grep -qE '\[dsnap\] +S.* rewind_merge_as_snapshot' <<<"$lvs"
    vm_check "vgck vg0 after the kill" vm_image_lvm "$img" vgck vg0
    n=$(rsr_exceptions)
    echo "$n" >"$VM_STATE/exceptions-boot2"
    vm_check "cut mid-merge: $n of $(cat "$VM_STATE/exceptions-boot1") exceptions left on disk" \
        test "$n" -gt 0 -a "$n" -lt "$(cat "$VM_STATE/exceptions-boot1")"
}

guest_boot_3() {
    local rc
    mkdir -p /run/lock/lvm /mnt/snap
    rm -f /run/udev/control
    dmsetup table | tee "$BOOT_OUT/dm-table-start"
    dmsetup status | tee "$BOOT_OUT/dm-status-start"
    grep -q '^vg0-dsnap: 0 [0-9]* snapshot-merge ' "$BOOT_OUT/dm-table-start" ||
        g_fail "rewind early did not make vg0-dsnap the merging device"
    grep -q '^vg0-data: 0 [0-9]* error' "$BOOT_OUT/dm-table-start" ||
        g_fail "rewind early did not make vg0-data an error device"
    mount /dev/mapper/vg0-dsnap /mnt/snap
    g_sums_cold /mnt/snap "$OUT/sums-boot3"
    rc=0
    rewind poll -v >"$BOOT_OUT/poll.out" 2>&1 || rc=$?
    cat "$BOOT_OUT/poll.out"
    [[ $rc == 0 ]] || g_fail "rewind poll exited $rc"
    dmsetup table | tee "$BOOT_OUT/dm-table-end"
    grep -q '^vg0-dsnap: 0 [0-9]* linear ' "$BOOT_OUT/dm-table-end" ||
        g_fail "vg0-dsnap is not plain linear after the merge"
    if grep -q -e '-cow:' -e '-real:' -e '^vg0-data:' "$BOOT_OUT/dm-table-end"; then
        g_fail "devices left after the merge"
    fi
    g_sums_cold /mnt/snap "$OUT/sums-after"
    umount /mnt/snap
    g_lvm vgck vg0
}

host_check() {
    local s img=$WORK/disk.img lvs
    vm_check "pattern B differed" vm_files_differ "$VM_STATE/sums-a" "$VM_STATE/sums-b"
    for s in boot3 after; do
        vm_check "mounted snapshot ($s) equals A" cmp -s "$VM_STATE/sums-a" "$VM_STATE/sums-$s"
    done
    echo "boot 3's first look at the merge: $(grep '^vg0-dsnap:' "$VM_STATE/boot3/dm-status-start")"
    vm_check "vgck vg0" vm_image_lvm "$img" vgck vg0
    lvs=$(vm_image_lvm "$img" lvs -a --noheadings --separator , -o lv_name,lv_uuid,lv_attr,segtype vg0 | tr -d ' ')
    echo "$lvs" >"$WORK/lvs-final"
    vm_check_eq "LVs left in vg0 (name,uuid,attr[1-4],segtype)" \
        "dsnap,$(cat "$VM_STATE/dsnap-uuid"),-wi-,linear;root" \
        "$(sort <<<"$lvs" | awk -F, '{ printf "%s%s", (NR > 1 ? ";" : ""), ($1 == "root" ? $1 : $1 "," $2 "," substr($3, 1, 4) "," $4) }')"
}
