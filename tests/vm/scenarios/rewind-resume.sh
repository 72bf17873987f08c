# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "rewind-resume": a merge flagged by stock `lvconvert --merge`, carried out by
# `rewind early` in an initramfs with no LVM2, with a power cut in the middle of the copy.
# Host:   60 MiB of known data in /var/lib/rr on the new disk; checksums stay on the host.
# Boot 1: snapshot root, overwrite the data, stock `lvconvert --merge` (deferred: root open).
# Boot 2: rewind sets up the merge; qemu is killed the moment rewind says the merge runs.
# Boot 3: rewind sets the merge up again from the metadata; the kernel resumes where its
#         committed progress left off; root shows the old data; the copy completes.
# Host:   boot 3 sees the old data; the merge was still unfinished when boot 3 started (so the
#         resume is proven, not a merge that happened to finish before the kill); the image's
#         metadata passes vgck and still shows the merge (no poller in this scenario).

VM_BOOTS=3
VM_LVS=(root:1200M)
VM_INITRAMFS_ARGS=(--no-lvm --no-systemd --modules-dir "${VM_REPO_DIR:-}/dracut-module")
VM_ROOT_ADD=(
    "${VM_REPO_DIR:-}/target/x86_64-unknown-linux-gnu/release/rewind:/usr/sbin/rewind"
    "${VM_REPO_DIR:-}/initramfs/rewind-early:/usr/lib/rewind/rewind-early"
)

RR_DIR=/var/lib/rr
RR_FILES=6 # of 10 MiB each

vm_boot_kill() { [[ $1 == 2 ]] && echo 'on rewind: vg0/root merging'; }

rr_sums() {
    (cd "$1" && sha256sum f* marker)
}

host_prepare() {
    (cd "$VM_REPO_DIR" && cargo build --release --quiet)
    local data=$WORK/rr-data i
    mkdir -p "$data"
    for ((i = 1; i <= RR_FILES; i++)); do
        { yes "resume before: file $i" || true; } | head -c 10485760 >"$data/f$i"
    done
    echo "resume before" >"$data/marker"
    rr_sums "$data" >"$VM_STATE/before.sha256"
    VM_DISK_ADD+=("$data:$RR_DIR")
}

guest_boot_1() {
    local i
    g_lvm lvcreate -s -n pre -L 200M --chunksize 64k vg0/root
    for ((i = 1; i <= RR_FILES; i++)); do
        g_fill "$RR_DIR/f$i" 10 "resume after: file $i"
    done
    echo "resume after" >"$RR_DIR/marker"
    sync
    rr_sums "$RR_DIR" >"$OUT/after.sha256"
    g_lvm lvconvert --merge vg0/pre 2>&1 | tee "$BOOT_OUT/lvconvert.out"
    grep -q 'will occur on next activation' "$BOOT_OUT/lvconvert.out" ||
        g_fail "lvconvert --merge did not defer the merge"
}

guest_boot_2() {
    g_fail "boot 2 should have been killed during the merge"
}

host_check_boot_2() {
    vm_check_eq "boot 2 was cut off during the merge" killed "$(cat "$WORK/boot2.result")"
    vm_check "rewind set up the merge before the cut" \
        grep -q 'rewind: vg0/root merging' "$WORK/boot2.serial.log"
}

guest_boot_3() {
    dmesg | grep 'rewind:' | tee "$BOOT_OUT/rewind.log" || true
    local st
    st=$(dmsetup status vg0-root)
    echo "$st" | tee "$BOOT_OUT/dm-status-start"
    [[ $st == *snapshot-merge* ]] || g_fail "root is not merging after the power cut: $st"
    rr_sums "$RR_DIR" | tee "$OUT/boot3.sha256"
    local i done=0
    for ((i = 0; i < 240; i++)); do
        st=$(dmsetup status vg0-root)
        if awk '{ split($4, a, "/"); exit !(a[1] == $5) }' <<<"$st"; then
            done=1
            break
        fi
        sleep 0.5
    done
    echo "$st" >"$BOOT_OUT/dm-status-end"
    [[ $done == 1 ]] || g_fail "the resumed merge did not finish: $st"
}

host_check() {
    vm_check "boot 1 changed the data" \
        vm_files_differ "$VM_STATE/before.sha256" "$VM_STATE/after.sha256"
    vm_check "after the power cut, root shows the data from before the snapshot" \
        vm_compare_sums "$VM_STATE/before.sha256" "$VM_STATE/boot3.sha256"
    # "<start> <len> snapshot-merge <allocated>/<total> <metadata>": work was left at boot 3.
    # shellcheck disable=SC2016 # awk's own $4 and $5
    vm_check "the merge was unfinished when boot 3 started (a resume, not a finished copy)" \
        awk '{ split($4, a, "/"); exit !(a[1] > $5) }' "$VM_STATE/boot3/dm-status-start"
    local img=$WORK/disk.img
    vm_check "vgck vg0" vm_image_lvm "$img" vgck vg0
    vm_check_eq "the merge is still recorded (no poller here)" "merging" \
        "$(vm_image_lvm "$img" lvs --noheadings -o lv_merging vg0/root | tr -d ' ')"
}
