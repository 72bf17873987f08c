# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "rewind-cmdline": a rollback typed on the kernel command line, carried out by
# `rewind early` in an initramfs with no LVM2 at all (dracut, shell init, module 90rewind).
# Host:   known data in /var/lib/rw on the new disk; its checksums stay on the host.
# Boot 1: rewind activates the plain root itself (no LVM2 in the initramfs). Three snapshots of
#         root: `pre`, `keep`, and a 4 MiB `full` that the overwrite overflows (the kernel marks
#         it invalid); the data is overwritten; `keep`'s content is recorded. Nothing is flagged.
# Boot 2: `rd.rewind=vg0/full,vg0/pre`. `full` is refused (invalid: it cannot be merged) with
#         the reason on the console and nothing written for it; `pre` is carried out: rewind
#         commits the merge flag (stock lvs must show `merging`), sets up LVM's merge layout
#         (`keep` stays active as a snapshot, invariant 4), and root shows the old data at
#         once; the kernel finishes the copy.
# Host:   old data seen in boot 2; `keep` identical before and after; the metadata on the
#         image is exactly one commit newer, passes vgck, shows pre merging into root and
#         full not merging.
# No random-number device (issue #4 proof 7): the test-only dracut module 99norandom removes
# /dev/random and /dev/urandom before udevd starts, in both boots; udevd runs, rewind runs from
# the initqueue as usual. The kernel log (serial console) says the nodes were gone and rewind-early
# had run by pre-mount; the booted system (same devtmpfs) finds them still absent. The rollback's
# data and metadata checks above are the proof that rewind did not hang and did its work.
# The image's configuration in force (issue 17: the initramfs reads it as JSON): the guest
# root's /etc/rewind/rewind.toml sets `[log] level = "debug"`; dracut's module writes it into the
# image as etc/rewind/initramfs.json (rewind check-config --boot-json; no rewind.toml in the
# image: the host lists the cpio and compares the JSON with check-config's), and rewind early
# logs its debug lines in both boots with no rd.rewind.debug on the command line.

VM_BOOTS=2
VM_LVS=(root:1200M)
# printk.devkmsg=on: the debug lines are more than /dev/kmsg's default rate limit lets through.
VM_CMDLINE='root=/dev/mapper/vg0-root rd.lvm.lv=vg0/root ro printk.devkmsg=on'
VM_INITRAMFS_ARGS=(--no-lvm --no-systemd --modules-dir "${VM_REPO_DIR:-}/dracut-module"
    --modules-dir "${VM_IMAGES_DIR:-}/dracut-norandom")
VM_ROOT_ADD=(
    "${VM_REPO_DIR:-}/target/x86_64-unknown-linux-gnu/release/rewind:/usr/sbin/rewind"
    "${VM_REPO_DIR:-}/initramfs/rewind-early:/usr/lib/rewind/rewind-early"
)

RW_DIR=/var/lib/rw
RW_FILES=3 # of 10 MiB each

# shellcheck source=tests/vm/lib/known-data.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/known-data.sh"

vm_boot_args() { [[ $1 == 2 ]] && echo 'rd.rewind=vg0/full,vg0/pre'; }

host_prepare() {
    (cd "$VM_REPO_DIR" && cargo build --release --quiet)
    known_data rw "$RW_DIR" "$RW_FILES" "rewind before"
    printf '# rewind-cmdline: debug lines at boot without rd.rewind.debug\n[log]\nlevel = "debug"\n' \
        >"$WORK/rewind.toml"
    VM_ROOT_ADD+=("$WORK/rewind.toml:/etc/rewind/rewind.toml")
}

# The nodes 99norandom removed in the initramfs must still be absent (the same devtmpfs); then
# they are made again for LVM2, which reads /dev/urandom for new UUIDs.
rw_norandom() {
    local n present=''
    for n in random urandom; do
        [[ -e /dev/$n ]] && present+=" $n"
    done
    echo "${present# }" >"$BOOT_OUT/random-nodes"
    dmesg | grep 'norandom:' | tee "$BOOT_OUT/norandom.log" || true
    [[ -z $present ]] || g_fail "random nodes present after switch_root:$present (99norandom had no effect)"
    mknod -m 666 /dev/random c 1 8
    mknod -m 666 /dev/urandom c 1 9
}

# The snapshot `keep` as files: mounted read-only without journal replay, so nothing writes.
keep_sums() {
    mkdir -p /mnt/keep
    mount -o ro,noload /dev/mapper/vg0-keep /mnt/keep
    known_sums "/mnt/keep$RW_DIR" >"$1"
    head -c 67108864 /dev/mapper/vg0-keep | sha256sum >>"$1"
    umount /mnt/keep
}

guest_boot_1() {
    local i
    rw_norandom
    dmsetup table | tee "$BOOT_OUT/dm-table"
    grep -q '^vg0-root: 0 [0-9]* linear ' "$BOOT_OUT/dm-table" ||
        g_fail "root was not activated as a plain linear LV by rewind"
    dmesg | grep 'rewind:' >"$BOOT_OUT/rewind.log" || true
    g_lvm lvcreate -s -n pre -L 100M --chunksize 64k vg0/root
    g_lvm lvcreate -s -n keep -L 100M --chunksize 64k vg0/root
    g_lvm lvcreate -s -n full -L 4M --chunksize 64k vg0/root
    for ((i = 1; i <= RW_FILES; i++)); do
        g_fill "$RW_DIR/f$i" 10 "rewind after: file $i"
    done
    echo "rewind after" >"$RW_DIR/marker"
    sync
    known_sums "$RW_DIR" >"$OUT/after.sha256"
    keep_sums "$OUT/keep-before.sha256"
    g_lvm vgs --noheadings -o seqno vg0 | tr -d ' ' >"$OUT/seqno-boot1"
    g_lvm lvs -a -o lv_name,lv_attr,origin,lv_merging vg0 | tee "$OUT/lvs-boot1"
}

guest_boot_2() {
    rw_norandom
    dmesg | grep 'rewind:' | tee "$BOOT_OUT/rewind.log" || true
    dmsetup table | tee "$BOOT_OUT/dm-table-start"
    grep -q '^vg0-root: 0 [0-9]* snapshot-merge ' "$BOOT_OUT/dm-table-start" ||
        g_fail "root is not active through a snapshot-merge table"
    grep -q '^vg0-keep: 0 [0-9]* snapshot ' "$BOOT_OUT/dm-table-start" ||
        g_fail "the other snapshot is not active while root merges (invariant 4)"
    grep -q '^vg0-pre: 0 [0-9]* error' "$BOOT_OUT/dm-table-start" ||
        g_fail "the merging snapshot's device is not an error target, as LVM makes it"
    grep -q 'rd.rewind=vg0/full ignored, nothing changed: .*snapshot is invalid' "$BOOT_OUT/rewind.log" ||
        g_fail "rewind did not say why it refused the overflowed snapshot"
    # The flag is LVM's own: stock lvs reads it from what rewind committed.
    g_lvm lvs -a --noheadings -o lv_name,lv_merging vg0 | tee "$BOOT_OUT/lvs-start"
    grep -q 'pre.*merging' "$BOOT_OUT/lvs-start" || g_fail "stock lvs does not show pre merging"
    g_lvm vgs --noheadings -o seqno vg0 | tr -d ' ' >"$OUT/seqno-boot2"

    known_sums "$RW_DIR" | tee "$OUT/boot2.sha256"

    # The kernel copies in the background.
    g_wait_merged vg0-root "$BOOT_OUT/dm-status-last"
    g_record merge_done_uptime "$(g_uptime)"
    keep_sums "$OUT/keep-after.sha256"
}

host_check() {
    local n
    for n in 1 2; do
        vm_check "boot $n: the kernel log says udev started with no random nodes" \
            grep -q 'norandom: removed /dev/random and /dev/urandom before udev' "$WORK/boot$n.serial.log"
        vm_check "boot $n: no random nodes at pre-mount, after rewind-early had run" \
            grep -q 'norandom: at pre-mount: random nodes present=\[\] rewind-early ran=yes' "$WORK/boot$n.serial.log"
        vm_check_eq "boot $n: random nodes in the booted system (same devtmpfs)" "" "$(cat "$VM_STATE/boot$n/random-nodes")"
        vm_check "boot $n: rewind finished (no timeout)" grep -q 'rewind: done: ' "$VM_STATE/boot$n/rewind.log"
        vm_check "boot $n: rewind-early did not stop rewind" vm_file_lacks 'stopped after|exit status' "$VM_STATE/boot$n/rewind.log"
    done
    # The configuration in force: the image's JSON, written from the root's rewind.toml.
    local list bin=$VM_REPO_DIR/target/x86_64-unknown-linux-gnu/release/rewind
    list=$(cpio -it --quiet <"$WORK/initramfs.img")
    vm_check "the image has etc/rewind/initramfs.json" grep -qx 'etc/rewind/initramfs.json' <<<"$list"
    vm_check "the image has no rewind.toml" vm_file_lacks 'rewind\.toml' <(echo "$list")
    "$bin" check-config --config "$WORK/rewind.toml" --boot-json "$WORK/want.json" >/dev/null
    (cd "$WORK" && cpio -i --quiet --to-stdout etc/rewind/initramfs.json <initramfs.img >image.json)
    vm_check "the image's initramfs.json is check-config's JSON of the root's rewind.toml" \
        cmp "$WORK/want.json" "$WORK/image.json"
    vm_check "the image's JSON sets the debug level" grep -q '"level": "debug"' "$WORK/image.json"
    for n in 1 2; do
        vm_check "boot $n: no rd.rewind.debug on the kernel command line" \
            vm_file_lacks 'Kernel command line:.*rd\.rewind\.debug' "$WORK/boot$n.serial.log"
        vm_check "boot $n: rewind early logged at the configuration's debug level" \
            grep -q "rewind: rewind early [0-9.]*: started" "$VM_STATE/boot$n/rewind.log"
    done
    vm_check "boot 1 changed the data" \
        vm_files_differ "$VM_STATE/before.sha256" "$VM_STATE/after.sha256"
    vm_check "boot 2 sees the data from before the snapshot" \
        vm_compare_sums "$VM_STATE/before.sha256" "$VM_STATE/boot2.sha256"
    vm_check "the other snapshot's content did not change during the merge" \
        vm_compare_sums "$VM_STATE/keep-before.sha256" "$VM_STATE/keep-after.sha256"
    local s1 s2
    s1=$(cat "$VM_STATE/seqno-boot1")
    s2=$(cat "$VM_STATE/seqno-boot2")
    vm_check_eq "rewind made exactly one metadata commit" "$((s1 + 1))" "$s2"

    local img=$WORK/disk.img lvs
    vm_check "vgck vg0" vm_image_lvm "$img" vgck vg0
    lvs=$(vm_image_lvm "$img" lvs -a --noheadings --separator , -o lv_name,lv_attr,origin,lv_merging vg0 | tr -d ' ')
    echo "$lvs" >"$WORK/lvs-final"
    vm_check_eq "pre merging into root; keep and the refused full plain snapshots (name,attr[1],origin,merging)" \
        "[pre],S,root,merging;full,s,root,;keep,s,root,;root,O,,merging" \
        "$(sort <<<"$lvs" | awk -F, '{ printf "%s%s,%s,%s,%s", (NR > 1 ? ";" : ""), $1, substr($2, 1, 1), $3, $4 }')"
}
