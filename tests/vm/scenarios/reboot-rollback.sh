# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "reboot-rollback": the whole story, with rewind alone (the demo runs this one).
# Host:   known data in /var/lib/rb on the new disk; its checksums stay on the host.
# Boot 1: rewind's initramfs (no LVM2) brings up the plain root. A snapshot `pre`, then the
#         "bad upgrade" overwrites the data; `rewind rollback vg0/pre`: root is open, so the
#         merge is flagged for the next boot (stock lvs shows it).
# Boot 2: `rewind early` sets up the merge before root is mounted: the old data at once.
#         `rewind poll` waits for the kernel, drops the snapshot from the metadata and
#         reloads root as plain linear.
# Host:   the old data in boot 2; stock vgck, lvs and vgcfgbackup on the image: a plain root,
#         no snapshot, no merge flag left.

VM_BOOTS=2
VM_LVS=(root:1200M)
VM_INITRAMFS_ARGS=(--no-lvm --no-systemd --modules-dir "${VM_REPO_DIR:-}/dracut-module")
VM_ROOT_ADD=(
    "${VM_REPO_DIR:-}/target/x86_64-unknown-linux-gnu/release/rewind:/usr/sbin/rewind"
    "${VM_REPO_DIR:-}/initramfs/rewind-early:/usr/lib/rewind/rewind-early"
)

RB_DIR=/var/lib/rb
RB_FILES=3 # of 10 MiB each

rb_sums() {
    (cd "$1" && sha256sum f* marker)
}

host_prepare() {
    (cd "$VM_REPO_DIR" && cargo build --release --quiet)
    local data=$WORK/rb-data i
    mkdir -p "$data"
    for ((i = 1; i <= RB_FILES; i++)); do
        { yes "before the upgrade: file $i" || true; } | head -c 10485760 >"$data/f$i"
    done
    echo "before the upgrade" >"$data/marker"
    rb_sums "$data" >"$VM_STATE/before.sha256"
    VM_DISK_ADD+=("$data:$RB_DIR")
}

guest_boot_1() {
    local i
    # The shell-init guest has no udevd after switch_root; the initramfs's socket is stale.
    rm -f /run/udev/control
    g_lvm lvcreate -s -n pre -L 100M --chunksize 64k vg0/root
    for ((i = 1; i <= RB_FILES; i++)); do
        g_fill "$RB_DIR/f$i" 10 "after the bad upgrade: file $i"
    done
    echo "after the bad upgrade" >"$RB_DIR/marker"
    sync
    rb_sums "$RB_DIR" >"$OUT/after.sha256"
    rewind rollback vg0/pre 2>&1 | tee "$OUT/rollback.out"
    g_lvm lvs -a --noheadings -o lv_name,lv_merging vg0 | tee "$OUT/lvs-flagged"
    grep -q 'pre.*merging' "$OUT/lvs-flagged" || g_fail "rewind rollback did not flag the merge"
}

guest_boot_2() {
    rm -f /run/udev/control
    dmesg | grep 'rewind:' | tee "$OUT/rewind-early.log" || true
    dmsetup table | tee "$OUT/dm-table-start"
    grep -q '^vg0-root: 0 [0-9]* snapshot-merge ' "$OUT/dm-table-start" ||
        g_fail "root is not active through a snapshot-merge table"
    rb_sums "$RB_DIR" | tee "$OUT/boot2.sha256"
    local rc=0
    rewind poll -v >"$OUT/poll.out" 2>&1 || rc=$?
    [[ $rc == 0 ]] || g_fail "rewind poll exited $rc"
    dmsetup table | tee "$OUT/dm-table-end"
    grep -q '^vg0-root: 0 [0-9]* linear ' "$OUT/dm-table-end" ||
        g_fail "root is not plain linear after rewind poll"
    if grep -q -e '-cow:' -e '-real:' -e '^vg0-pre:' "$OUT/dm-table-end"; then
        g_fail "snapshot devices left after rewind poll"
    fi
    g_lvm lvs -a --noheadings -o lv_name,lv_attr vg0 | tee "$OUT/lvs-end"
}

host_check() {
    vm_check "the bad upgrade changed the data" \
        vm_files_differ "$VM_STATE/before.sha256" "$VM_STATE/after.sha256"
    vm_check "boot 2 sees the data from before the upgrade" \
        vm_compare_sums "$VM_STATE/before.sha256" "$VM_STATE/boot2.sha256"
    local img=$WORK/disk.img lvs
    vm_check "vgck vg0" vm_image_lvm "$img" vgck vg0
    lvs=$(vm_image_lvm "$img" lvs -a --noheadings --separator , -o lv_name,lv_attr,segtype,origin,lv_merging vg0 | tr -d ' ')
    vm_check_eq "LVs left in vg0 (name,attr[1-4],segtype,origin,merging)" "root,-wi-,linear,," \
        "$(awk -F, '{ printf "%s%s,%s,%s,%s,%s", (NR > 1 ? ";" : ""), $1, substr($2, 1, 4), $3, $4, $5 }' <<<"$lvs")"
    vm_image_lvm "$img" vgcfgbackup -f "$WORK/vg0-final.vg" vg0
    vm_check "no snapshot or merge flag left in the metadata" \
        vm_file_lacks 'snapshot|merging_store|cow_store' "$WORK/vg0-final.vg"
}
