# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "mkinitcpio-busybox": rewind's mkinitcpio hook in a busybox image with no udev and no
# LVM2, and a cloned disk that rewind must leave alone (issue #4 proofs 1 and 6, issue #6).
# Image:  vm-images/build-initramfs-mkinitcpio.sh: exactly what install/rewind's build()
#         declares (static rewind, rewind-early, dm-mod/dm-snapshot and their dependencies, the
#         udev rule recorded), the runtime hook hooks/rewind, the host's static busybox, and a
#         mkinitcpio-like /init (ash) that calls each run_hook. No udev daemon, no LVM2.
# Host:   known data in /var/lib/mk on the new disk; its checksums stay on the host. Two small
#         extra disks: `vmvgx` (empty) and `vmvgxcp` (empty).
# Boot 1: run_hook -> rewind-early -> `rewind early` activates the plain root from rd.lvm.lv=.
#         A second VG `vgx` on vmvgx: LV `data` with a snapshot `snap`, both deactivated, then
#         stock `lvconvert --merge vgx/snap` (flagged for the next activation). vg0: snapshot
#         `pre`, the bad change, stock `lvconvert --merge vg0/pre` (deferred: root is open).
# Host:   vmvgxcp becomes a byte-for-byte copy of vmvgx (same VG name, same PV UUID); both
#         disks' checksums recorded.
# Boot 2: the run_hook sets up root's merge before root is mounted: the old data at once; the
#         kernel finishes the copy (dm status); `rewind poll` finishes. vgx is ambiguous:
#         rewind takes no action on it and says why on the console; no vgx device is active.
# Host:   both vgx disks are bit-identical to what boot 1 left (metadata untouched), stock LVM
#         still reads vgx's merge flag on each; then the copy is blanked (the control).
# Boot 3: the control: with vgx unambiguous, the same flag is carried out (vgx/data shows the
#         snapshot's content, `rewind poll` finishes): boot 2's refusal came from the clone.
# Host:   old data in boot 2; stock vgck/lvs/vgcfgbackup on vg0: a plain root, nothing left;
#         vgx after boot 3: data alone, no snapshot, no flag.
# Also: a striped LV (VG `vgs` over two more small disks, made by stock LVM in boot 1) named
# by `rd.lvm.lv=vgs/st` in boot 2 is activated by rewind with the table stock LVM loaded for it
# in boot 1, and reads the same bytes.

VM_BOOTS=3
VM_LVS=(root:1200M)
VM_INITRAMFS_ARGS=(--generator mkinitcpio --hook rewind)
VM_ROOT_ADD=(
    "${VM_REPO_DIR:-}/target/x86_64-unknown-linux-gnu/release/rewind:/usr/sbin/rewind"
    "${VM_REPO_DIR:-}/initramfs/rewind-early:/usr/lib/rewind/rewind-early"
    "${VM_REPO_DIR:-}/initramfs/63-rewind.rules:/usr/lib/rewind/63-rewind.rules"
)

MK_DIR=/var/lib/mk
MK_FILES=3 # of 10 MiB each

# shellcheck source=tests/vm/lib/known-data.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/known-data.sh"

# The block device whose virtio serial is $1.
mk_disk() {
    local s
    for s in /sys/block/*/serial; do
        if [[ $(cat "$s") == "$1" ]]; then
            echo "/dev/$(basename "$(dirname "$s")")"
            return 0
        fi
    done
    g_fail "no disk with serial $1"
}

host_prepare() {
    (cd "$VM_REPO_DIR" && cargo build --release --quiet)
    known_data mk "$MK_DIR" "$MK_FILES" "mkinitcpio before"
    { yes "vgx before" || true; } | head -c 16777216 | sha256sum | cut -d' ' -f1 >"$VM_STATE/vgx-before.sha256"
    truncate -s 64M "$WORK/vgx.img" "$WORK/vgx-copy.img"
    VM_EXTRA_DISKS+=("$WORK/vgx.img:vmvgx" "$WORK/vgx-copy.img:vmvgxcp")
    truncate -s 32M "$WORK/st0.img" "$WORK/st1.img"
    VM_EXTRA_DISKS+=("$WORK/st0.img:vmst0" "$WORK/st1.img:vmst1")
}

# Boot 2 also asks rewind to activate the striped LV made in boot 1.
vm_boot_args() { [[ $1 == 2 ]] && echo 'rd.lvm.lv=vgs/st'; }

guest_boot_1() {
    local i vgx
    dmesg | grep 'rewind:' | tee "$BOOT_OUT/rewind.log" || true
    dmsetup table | tee "$BOOT_OUT/dm-table"
    grep -q '^vg0-root: 0 [0-9]* linear ' "$BOOT_OUT/dm-table" ||
        g_fail "root was not activated as a plain linear LV by rewind's run_hook"

    # vgx: a merge flagged by stock LVM on an inactive origin (the next activation would merge).
    vgx=$(mk_disk vmvgx)
    g_lvm pvcreate -q "$vgx"
    g_lvm vgcreate -q vgx "$vgx"
    g_lvm lvcreate -q -n data -L 16M vgx
    { yes "vgx before" || true; } | head -c 16777216 >/dev/mapper/vgx-data
    # On the disk before the snapshot is taken, so no writeback of it crosses the snapshot's
    # creation (in CI this boot once hung just after "snap" was created; the kernel's report was
    # not kept, and the runner now prints it).
    sync
    g_lvm lvcreate -q -s -n snap -L 8M vgx/data
    { yes "vgx after" || true; } | head -c 4194304 >/dev/mapper/vgx-data
    sync
    g_lvm vgchange -an vgx
    g_lvm lvconvert --merge vgx/snap 2>&1 | tee "$BOOT_OUT/vgx-lvconvert.out"
    g_lvm lvs -a --noheadings -o lv_name,lv_attr,lv_merging vgx | tee "$BOOT_OUT/lvs-vgx"
    grep -q 'snap.*merging' "$BOOT_OUT/lvs-vgx" || g_fail "stock lvconvert did not flag vgx/snap"
    g_lvm vgchange -an vgx
    g_lvm pvs --noheadings -o pv_uuid "$vgx" | tr -d ' -' >"$OUT/vgx-pv-uuid"

    # vgs: a 24 MiB LV striped over two disks (64 KiB stripes), activated by stock LVM: its
    # table and content are what boot 2's rewind must reproduce.
    local st0 st1
    st0=$(mk_disk vmst0)
    st1=$(mk_disk vmst1)
    g_lvm pvcreate -q "$st0" "$st1"
    g_lvm vgcreate -q vgs "$st0" "$st1"
    g_lvm lvcreate -q -n st -i 2 -I 64k -L 24M vgs
    { yes "striped over two disks" || true; } | head -c 25165824 >/dev/mapper/vgs-st
    sync
    dmsetup table vgs-st | tee "$OUT/vgs-st-lvm.table"
    sha256sum </dev/mapper/vgs-st | cut -d' ' -f1 >"$OUT/vgs-st-boot1.sha256"
    g_lvm vgchange -an vgs

    # vg0: the stock rollback of an open root.
    g_lvm lvcreate -s -n pre -L 100M --chunksize 64k vg0/root
    for ((i = 1; i <= MK_FILES; i++)); do
        g_fill "$MK_DIR/f$i" 10 "mkinitcpio after: file $i"
    done
    echo "mkinitcpio after" >"$MK_DIR/marker"
    sync
    known_sums "$MK_DIR" >"$OUT/after.sha256"
    g_lvm lvconvert --merge vg0/pre 2>&1 | tee "$BOOT_OUT/lvconvert.out"
    g_lvm lvs -a --noheadings -o lv_name,lv_merging vg0 | tee "$BOOT_OUT/lvs-flagged"
    grep -q 'pre.*merging' "$BOOT_OUT/lvs-flagged" || g_fail "stock lvconvert did not flag the merge"
}

# After boot 1: the clone. Both disks' bytes are recorded to compare after boot 2.
host_check_boot_1() {
    cp "$WORK/vgx.img" "$WORK/vgx-copy.img"
    sha256sum <"$WORK/vgx.img" | cut -d' ' -f1 >"$WORK/vgx.sha256-boot1"
    vm_check_eq "the copy is byte-for-byte the vgx disk" "$(cat "$WORK/vgx.sha256-boot1")" \
        "$(sha256sum <"$WORK/vgx-copy.img" | cut -d' ' -f1)"
    vm_image_lvm "$WORK/vgx.img" vgcfgbackup -f "$WORK/vgx-boot1.vg" vgx
    vm_check "vgx/snap is flagged to merge in boot 1's metadata" \
        grep -Eq 'merging_store' "$WORK/vgx-boot1.vg"
}

guest_boot_2() {
    dmesg | grep 'rewind:' | tee "$BOOT_OUT/rewind.log" || true
    dmsetup table | tee "$BOOT_OUT/dm-table-start"
    grep -q '^vg0-root: 0 [0-9]* snapshot-merge ' "$BOOT_OUT/dm-table-start" ||
        g_fail "root is not active through a snapshot-merge table"
    if grep -q '^vgx-' "$BOOT_OUT/dm-table-start"; then
        g_fail "a vgx device is active: rewind acted on an ambiguous VG"
    fi
    known_sums "$MK_DIR" | tee "$OUT/boot2.sha256"
    dmsetup table vgs-st | tee "$OUT/vgs-st-rewind.table" || g_fail "rewind did not activate vgs/st"
    sha256sum </dev/mapper/vgs-st | cut -d' ' -f1 >"$OUT/vgs-st-boot2.sha256"

    # The kernel copies in the background.
    g_wait_merged vg0-root "$BOOT_OUT/dm-status-last"
    local rc=0

    rm -f /run/udev/control
    rewind poll -v >"$BOOT_OUT/poll.out" 2>&1 || rc=$?
    cat "$BOOT_OUT/poll.out"
    [[ $rc == 0 ]] || g_fail "rewind poll exited $rc"
    dmsetup table | tee "$BOOT_OUT/dm-table-end"
    grep -q '^vg0-root: 0 [0-9]* linear ' "$BOOT_OUT/dm-table-end" ||
        g_fail "root is not plain linear after rewind poll"
    if grep -q -e '-cow:' -e '-real:' -e '^vg0-pre:' -e '^vgx-' "$BOOT_OUT/dm-table-end"; then
        g_fail "snapshot or vgx devices left after rewind poll"
    fi
}

# After boot 2: the clone's claims, then the copy is blanked for the control boot.
host_check_boot_2() {
    mk_vgx_check "$WORK/vgx.img" "vgx disk"
    mk_vgx_check "$WORK/vgx-copy.img" "vgx copy"
    local uuid
    uuid=$(cat "$VM_STATE/vgx-pv-uuid")
    vm_check "the console says why vgx was left alone: its PV $uuid on both disks, no action" \
        grep -Eq "rewind: vgx/.*pv $uuid is on several devices \(/dev/vd[c-d], /dev/vd[c-d]\).*no action" \
        <(tr -d - <"$VM_STATE/boot2/rewind.log")
    truncate -s 0 "$WORK/vgx-copy.img"
    truncate -s 64M "$WORK/vgx-copy.img"
}

guest_boot_3() {
    dmesg | grep 'rewind:' | tee "$BOOT_OUT/rewind.log" || true
    dmsetup table | tee "$BOOT_OUT/dm-table-start"
    grep -q '^vgx-data: 0 [0-9]* snapshot-merge ' "$BOOT_OUT/dm-table-start" ||
        g_fail "control: vgx/data is not merging once vgx is unambiguous"
    head -c 16777216 /dev/mapper/vgx-data | sha256sum | cut -d' ' -f1 | tee "$OUT/vgx-boot3.sha256"
    local rc=0
    rm -f /run/udev/control
    rewind poll -v >"$BOOT_OUT/poll.out" 2>&1 || rc=$?
    cat "$BOOT_OUT/poll.out"
    [[ $rc == 0 ]] || g_fail "rewind poll exited $rc"
    dmsetup table | tee "$BOOT_OUT/dm-table-end"
    grep -q '^vgx-data: 0 [0-9]* linear ' "$BOOT_OUT/dm-table-end" ||
        g_fail "vgx/data is not plain linear after rewind poll"
}

mk_vgx_check() { # mk_vgx_check IMAGE NAME: the disk is what boot 1 left, LVM reads vgx's flag
    vm_check_eq "$2: every byte as boot 1 left it" "$(cat "$WORK/vgx.sha256-boot1")" \
        "$(sha256sum <"$1" | cut -d' ' -f1)"
    vm_check "$2: vgck vgx" vm_image_lvm "$1" vgck vgx
    vm_check_eq "$2: stock lvs: snap still flagged to merge into data (name,origin,merging)" \
        "[snap],data,merging;data,,merging" \
        "$(vm_image_lvm "$1" lvs -a --noheadings --separator , -o lv_name,origin,lv_merging vgx |
            tr -d ' ' | LC_ALL=C sort | paste -sd';')"
}

host_check() {
    vm_check "the bad change changed the data" \
        vm_files_differ "$VM_STATE/before.sha256" "$VM_STATE/after.sha256"
    vm_check "boot 2 sees the data from before the snapshot" \
        vm_compare_sums "$VM_STATE/before.sha256" "$VM_STATE/boot2.sha256"
    vm_check_plain_root "$WORK/disk.img"

    vm_check "boot 1: stock LVM loaded a 2-stripe table for vgs/st" \
        grep -Eq '^0 49152 striped 2 128 [0-9]+:[0-9]+ [0-9]+ [0-9]+:[0-9]+ [0-9]+$' "$VM_STATE/vgs-st-lvm.table"
    vm_check_eq "boot 2: rewind's table for vgs/st is stock LVM's" \
        "$(cat "$VM_STATE/vgs-st-lvm.table")" "$(cat "$VM_STATE/vgs-st-rewind.table")"
    vm_check_eq "boot 2: vgs/st reads the bytes written in boot 1" \
        "$(cat "$VM_STATE/vgs-st-boot1.sha256")" "$(cat "$VM_STATE/vgs-st-boot2.sha256")"
    vm_check "control: boot 3 (no clone) shows vgx's snapshot content" \
        cmp "$VM_STATE/vgx-before.sha256" "$VM_STATE/vgx-boot3.sha256"
    vm_check_eq "control: vgx after boot 3 (name,origin,merging)" "data,," \
        "$(vm_image_lvm "$WORK/vgx.img" lvs -a --noheadings --separator , -o lv_name,origin,lv_merging vgx | tr -d ' ' | paste -sd';')"
    # shellcheck disable=SC2016 # awk's fields
    vm_check "the kernel had finished the merge before rewind poll (allocated == metadata)" \
        awk '{ split($4, a, "/"); exit !(a[1] == $5) }' "$VM_STATE/boot2/dm-status-last"

    # The image: what build() declared, the runtime hook, and neither udev nor LVM2.
    local list f
    list=$(cpio -it --quiet <"$WORK/initramfs.img")
    for f in usr/bin/rewind usr/lib/rewind/rewind-early hooks/rewind \
        usr/lib/udev/rules.d/63-rewind.rules 'usr/lib/modules/.*/dm-snapshot.ko' 'usr/lib/modules/.*/dm-mod.ko'; do
        vm_check "the image has $f" grep -Eqx "$f" <<<"$list"
    done
    vm_check "the image has no udev daemon and no LVM2" vm_file_lacks '^usr/.*/(systemd-udevd|udevd|udevadm|lvm)$' <(echo "$list")
}
