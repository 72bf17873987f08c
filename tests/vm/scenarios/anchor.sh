# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "anchor": stock LVM2 rolls back an open root. The baseline rewind is compared with.
# Host:   ~100 MiB of known data in /var/lib/anchor on the new disk, checksums kept on the host.
# Boot 1: snapshot root, overwrite the data in place, `lvconvert --merge` (deferred: root is
#         open). Boot 2: dracut's lvm module activates root through the merge
#         table; the old data must be visible; stock LVM2 finishes the merge (lvpoll).
# Host: boot 2's checksums equal the host's "before" ones; stock vgck/lvs on the image show a
#       plain root with no snapshot left.
# Sourced on the host (by tests/vm/run.sh) and in the guest (by vm-init).

VM_BOOTS=2
VM_LVS=(root:1200M)
# vmtime wraps the initramfs's lvm binary to time LVM2's activation (see vm-images/dracut/).
VM_INITRAMFS_ARGS=(--lvm --no-systemd --modules-dir "${VM_IMAGES_DIR:-}/dracut")

ANCHOR_DIR=/var/lib/anchor
ANCHOR_FILES=10 # of 10 MiB each

# shellcheck source=tests/vm/lib/known-data.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/known-data.sh"

host_prepare() {
    known_data anchor "$ANCHOR_DIR" "$ANCHOR_FILES" "anchor before"
}

guest_boot_1() {
    local i t
    t=$(g_uptime)
    # 64 KiB chunks (LVM's default is 4 KiB): 16x fewer exceptions to copy and commit, which
    # under TCG is the difference between ~15 s and minutes for the 100 MiB overwrite.
    g_lvm lvcreate -s -n pre -L 300M --chunksize 64k vg0/root
    g_record boot1_lvcreate_snapshot "$(g_since "$t")"
    t=$(g_uptime)
    for ((i = 1; i <= ANCHOR_FILES; i++)); do
        g_fill "$ANCHOR_DIR/f$i" 10 "anchor after: file $i"
    done
    echo "anchor after" >"$ANCHOR_DIR/marker"
    sync
    known_sums "$ANCHOR_DIR" >"$OUT/after.sha256"
    g_record boot1_write_after "$(g_since "$t")"
    g_lvm lvs -a -o lv_name,lv_attr,origin,data_percent,segtype vg0 | tee "$OUT/lvs-boot1-snapshot"

    g_lvm lvconvert --merge vg0/pre 2>&1 | tee "$BOOT_OUT/lvconvert.out"
    # Root is open: LVM can only flag the merge for the next activation.
    grep -q 'will occur on next activation' "$BOOT_OUT/lvconvert.out" ||
        g_fail "lvconvert --merge did not defer the merge"
    g_lvm lvs -a -o lv_name,lv_attr,origin,lv_merging vg0 | tee "$OUT/lvs-boot1-flagged"
}

guest_boot_2() {
    dmsetup table | tee "$BOOT_OUT/dm-table-start"
    dmsetup status | tee "$BOOT_OUT/dm-status-start"
    grep -q '^vg0-root: .* snapshot-merge ' "$BOOT_OUT/dm-table-start" ||
        g_fail "root is not active through a snapshot-merge table"

    # Nothing polls in this guest (LVM's initramfs activation uses --sysinit): finish the merge
    # the way an administrator would. lvpoll waits for the kernel, then drops the snapshot.
    g_lvm lvpoll --polloperation merge --interval 1 vg0/root 2>&1 | tee "$BOOT_OUT/lvpoll.out"
    local t_gone
    t_gone=$(g_uptime)
    g_lvm lvs -a --noheadings -o lv_name vg0 | tee "$BOOT_OUT/lvs-after-poll"
    if grep -qw pre "$BOOT_OUT/lvs-after-poll"; then
        g_fail "the snapshot is still in the metadata after lvpoll"
    fi
    g_record switch_root_to_snapshot_gone "$(g_since "$VM_T_INIT" "$t_gone")"
    dmsetup table | tee "$BOOT_OUT/dm-table-end"
    grep -q '^vg0-root: 0 [0-9]* linear ' "$BOOT_OUT/dm-table-end" ||
        g_fail "root's table is not plain linear after the merge"
    if grep -q -e '-cow:' -e '-real:' -e '^vg0-pre:' "$BOOT_OUT/dm-table-end"; then
        g_fail "snapshot devices left after the merge"
    fi

    known_sums "$ANCHOR_DIR" | tee "$OUT/boot2.sha256"

    # LVM2's activation in the initramfs, from the vmtime lines' kernel timestamps.
    dmesg | grep 'vmtime: lvm-' | tee "$BOOT_OUT/vmtime" || true
    g_record initramfs_lvm_activation "$(awk '
        { t = substr($0, index($0, "[") + 1); t = substr(t, 1, index(t, "]") - 1) + 0 }
        / vmtime: lvm-start .* -ay / { s = t }
        / vmtime: lvm-end .* -ay / && s != "" { d += t - s; s = "" }
        END { printf "%.3f", d }' "$BOOT_OUT/vmtime")"
    g_record initramfs_lvm_all_commands "$(awk '
        { t = substr($0, index($0, "[") + 1); t = substr(t, 1, index(t, "]") - 1) + 0 }
        / vmtime: lvm-start / { s = t }
        / vmtime: lvm-end / && s != "" { d += t - s; s = "" }
        END { printf "%.3f", d }' "$BOOT_OUT/vmtime")"
    g_record switch_root_uptime "$VM_T_INIT"
}

host_check() {
    local expected=$VM_STATE/before.sha256
    if [[ ${VM_ANCHOR_WRONG_SUM:-0} == 1 ]]; then
        # Self-test of the whole path: a deliberately wrong expectation must make this FAIL.
        expected=$VM_STATE/before-wrong.sha256
        sed '1s/^./x/' "$VM_STATE/before.sha256" >"$expected"
    fi
    vm_check "boot 1 changed the data" \
        vm_files_differ "$VM_STATE/before.sha256" "$VM_STATE/after.sha256"
    vm_check "boot 2 sees the data from before the snapshot" \
        vm_compare_sums "$expected" "$VM_STATE/boot2.sha256"
    # The comparison itself must catch a difference (costs no boot).
    sed '1s/^./x/' "$VM_STATE/before.sha256" >"$WORK/self-test-wrong.sha256"
    if vm_compare_sums "$WORK/self-test-wrong.sha256" "$VM_STATE/boot2.sha256" 2>/dev/null; then
        vm_fail "self-test: a wrong expected checksum was accepted"
    fi

    vm_check_plain_root "$WORK/disk.img"
}
