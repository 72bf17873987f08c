# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# The power-cut-in-mid-merge story, shared by the rewind-resume* scenarios: a merge flagged by
# stock `lvconvert --merge`, carried out by `rewind early` in an initramfs with no LVM2, with a
# power cut during the copy; the scenario sets RR_CUT (where the cut comes) and sources this.
# Host:   60 MiB of known data in /var/lib/rr on the new disk; checksums stay on the host.
# Boot 1: snapshot root, overwrite the data, stock `lvconvert --merge` (deferred: root open).
# Host:   the snapshot's store on the image holds N > 0 exceptions (it captured the change).
# Boot 2: root disk throttled; rewind sets up the merge; qemu is killed at the RR_CUT moment.
# Host:   the store holds K exceptions, 0 < K < N: the origin on disk is half merged.
# Boot 3: rewind sets the merge up again from the metadata; root shows the old data at once
#         (never the half-merged origin, invariant 2); the kernel finishes the copy.
# Host:   boot 3 saw the old data; vgck clean; the merge still recorded (no poller here).

VM_BOOTS=3
VM_LVS=(root:1200M)
VM_INITRAMFS_ARGS=(--no-lvm --no-systemd --modules-dir "${VM_REPO_DIR:-}/dracut-module")
VM_ROOT_ADD=(
    "${VM_REPO_DIR:-}/target/x86_64-unknown-linux-gnu/release/rewind:/usr/sbin/rewind"
    "${VM_REPO_DIR:-}/initramfs/rewind-early:/usr/lib/rewind/rewind-early"
)

RR_DIR=/var/lib/rr
RR_FILES=6 # of 10 MiB each

# Where boot 2 is cut (RR_CUT): `start` = when rewind reports the merge running (root has been
# resumed, the kernel copies from then on); a number P = when the host, reading the store's
# exception area in the disk image while the guest runs, sees at least P % of boot 1's
# exceptions merged back (the merge commits its progress to the store as it goes).
RR_CUT=${RR_CUT:-start}

# shellcheck source=tests/vm/lib/known-data.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/known-data.sh"

vm_boot_kill() {
    [[ $1 == 2 ]] || return 0
    if [[ $RR_CUT == start ]]; then
        echo 'on rewind: vg0/root merging'
    else
        local n
        n=$(cat "$VM_STATE/exceptions-boot1")
        echo "when [ \"\$(python3 '$TESTS_VM_DIR/cow-exceptions.py' '$WORK/disk.img' $(cat "$WORK/cow-area-offset") 65536)\" -le $((n * (100 - RR_CUT) / 100)) ]"
    fi
}
# The kernel merges 60 MiB in well under a second, faster than qemu can be killed: boot 2's
# root disk is throttled so the cut lands in the middle of the copy.
vm_boot_disk_opts() { [[ $1 == 2 ]] && echo 'throttling.bps-total=4194304'; }

host_prepare() {
    (cd "$VM_REPO_DIR" && cargo build --release --quiet)
    known_data rr "$RR_DIR" "$RR_FILES" "resume before"
}

guest_boot_1() {
    local i
    g_lvm lvcreate -s -n pre -L 200M --chunksize 64k vg0/root
    for ((i = 1; i <= RR_FILES; i++)); do
        g_fill "$RR_DIR/f$i" 10 "resume after: file $i"
    done
    echo "resume after" >"$RR_DIR/marker"
    sync
    known_sums "$RR_DIR" >"$OUT/after.sha256"
    g_lvm lvconvert --merge vg0/pre 2>&1 | tee "$BOOT_OUT/lvconvert.out"
    grep -q 'will occur on next activation' "$BOOT_OUT/lvconvert.out" ||
        g_fail "lvconvert --merge did not defer the merge"
}

guest_boot_2() {
    [[ $RR_CUT != start ]] || g_fail "boot 2 should have been killed during the merge"
    # The host cuts while the kernel copies; reaching the end here means it came too late.
    local st i
    for ((i = 0; i < 600; i++)); do
        st=$(dmsetup status vg0-root)
        if g_merged "$st"; then
            g_fail "the merge ended before the host's cut at $RR_CUT %: $st"
        fi
        sleep 0.5
    done
    g_fail "boot 2 was not cut: $st"
}

host_check_boot_1() {
    vm_cow_area "$WORK/disk.img" vg0/pre >"$WORK/cow-area-offset"
    vm_cow_exceptions "$WORK/disk.img" "$(cat "$WORK/cow-area-offset")" >"$VM_STATE/exceptions-boot1"
    vm_check "the snapshot store captured the change ($(cat "$VM_STATE/exceptions-boot1") exceptions)" \
        test "$(cat "$VM_STATE/exceptions-boot1")" -gt 0
}

host_check_boot_2() {
    vm_check_eq "boot 2 was cut off during the merge" killed "$(cat "$WORK/boot2.result")"
    local n k
    n=$(cat "$VM_STATE/exceptions-boot1")
    k=$(vm_cow_exceptions "$WORK/disk.img" "$(cat "$WORK/cow-area-offset")")
    echo "$k" >"$VM_STATE/exceptions-boot2"
    vm_log "exceptions: $n after boot 1, $k left after the cut"
    vm_check "the cut left the origin half merged on disk (0 < $k < $n exceptions left)" \
        test "$k" -gt 0 -a "$k" -lt "$n"
    if [[ $RR_CUT != start ]]; then
        vm_check "the cut came after $RR_CUT % of the merge ($k of $n exceptions left)" \
            test "$((k * 100))" -le "$((n * (100 - RR_CUT)))"
    fi
}

guest_boot_3() {
    dmesg | grep 'rewind:' | tee "$BOOT_OUT/rewind.log" || true
    local st
    st=$(dmsetup status vg0-root)
    echo "$st" | tee "$BOOT_OUT/dm-status-start"
    [[ $st == *snapshot-merge* ]] || g_fail "root is not merging after the power cut: $st"
    known_sums "$RR_DIR" | tee "$OUT/boot3.sha256"
    g_wait_merged vg0-root "$BOOT_OUT/dm-status-end"
}

host_check() {
    vm_check "boot 1 changed the data" \
        vm_files_differ "$VM_STATE/before.sha256" "$VM_STATE/after.sha256"
    vm_check "after the power cut, root shows the data from before the snapshot" \
        vm_compare_sums "$VM_STATE/before.sha256" "$VM_STATE/boot3.sha256"
    local img=$WORK/disk.img
    vm_check "vgck vg0" vm_image_lvm "$img" vgck vg0
    vm_check_eq "the merge is still recorded (no poller here)" "merging" \
        "$(vm_image_lvm "$img" lvs --noheadings -o lv_merging vg0/root | tr -d ' ')"
}
