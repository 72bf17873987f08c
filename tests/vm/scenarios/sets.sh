# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "sets" (issue 14; docs/SETS.md): snapshot sets in three boots of the lean guest
# (dracut image with rewind and no LVM2, shell init; no udev after switch_root).
# Members: vg0/a and vg0/c on the root disk, vgb/b on a second disk (made in boot 1), ext4.
# Boot 1: a writer appends 1, 2, ... to a file on A then on B (each fsynced) throughout.
#         Stock serial `lvcreate -s` of A then B (the pair's order, recorded), removed again.
#         `rewind snapshot --name s1` of a, b, c while it writes; `rewind list`/`show`; the
#         snapshots read through `rewind mount s1` (read-only under /run/rewind/s1, devices
#         read-only; `rewind delete` refused while mounted; `rewind umount`): s1's last numbers
#         and checksums. The "bad
#         change" (more numbers, c's file overwritten): its checksums. `rewind rollback s1
#         --keep-current=s2`. Refusal: `rewind snapshot` of an origin flagged to merge.
# Boot 2 (also: `rewind watch` warns about b's store of s3 filling up, then extends it with
#         stock lvextend once [watch] extend is on):
#         `rewind early` merges s1's three members; `rewind poll` finishes them (`rewind status
#         --wait` returns once it has; the poller says "rollback complete", in the log, at the
#         next login and in `rewind status`). Every member
#         shows s1's instant (checksums), s2 is whole. s3 (a, b) taken with 4 MiB stores, a's
#         filled past its end (overflowed). `rewind rollback s2` (roll forward).
# Boot 3: with rd.rewind=s3: refused whole (nothing flagged, the console names vg0/a.s3), the
#         boot goes on; s2's merges finish: the bad change's state again, byte-identical.
#         `rewind list` shows s3 lost; `rewind delete s3`.
# Host:   s1 is one instant (B = A or A - 1); stock vgck on both disks; no snapshot left.

VM_BOOTS=3
VM_LVS=(root:1200M a:96M c:64M)
VM_DISK_SIZE=2G
VM_INITRAMFS_ARGS=(--no-lvm --no-systemd --modules-dir "${VM_REPO_DIR:-}/dracut-module")
VM_ROOT_ADD=(
    "${VM_REPO_DIR:-}/target/x86_64-unknown-linux-gnu/release/rewind:/usr/sbin/rewind"
    "${VM_REPO_DIR:-}/initramfs/rewind-early:/usr/lib/rewind/rewind-early"
)
VM_CMDLINE='root=/dev/mapper/vg0-root rd.lvm.lv=vg0/root ro printk.devkmsg=on'
# shellcheck source=tests/vm/lib/cross-writer.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/cross-writer.sh"

vm_boot_args() { [[ $1 == 3 ]] && echo 'rd.rewind=s3'; }

host_prepare() {
    (cd "$VM_REPO_DIR" && cargo build --release --quiet)
    truncate -s 512M "$WORK/vgb.img"
    VM_EXTRA_DISKS+=("$WORK/vgb.img:vmvgb")
}

# The guest side -------------------------------------------------------------------------------

st_disk() {
    local s
    for s in /sys/block/*/serial; do
        if [[ $(cat "$s" 2>/dev/null) == "$1" ]]; then
            echo "/dev/$(basename "$(dirname "$s")")"
            return
        fi
    done
    g_fail "no disk with serial $1"
}

st_setup() {
    mkdir -p /run/lock/lvm
    # The initramfs's udevd left its socket; nothing listens after switch_root.
    rm -f /run/udev/control
}

st_mount() {
    local lv
    for lv in vg0/a vgb/b vg0/c; do
        mkdir -p "/mnt/${lv#*/}"
        mount "/dev/mapper/${lv%/*}-${lv#*/}" "/mnt/${lv#*/}"
    done
}

st_umount() {
    umount /mnt/a /mnt/b /mnt/c
}

# The cross-LV writer (tests/vm/lib/cross-writer.sh): N to /mnt/a/seq, fsync, N to /mnt/b/seq, fsync.
st_writer_start() { cross_writer_start /mnt/a/seq /mnt/b/seq; }
st_writer_stop() { cross_writer_stop; }

# st_sums DIR_A DIR_B DIR_C: the checksums of the member files.
st_sums() {
    sha256sum "$1/seq" "$2/seq" "$3/f" | awk '{ print $1 }'
}

# st_pair PREFIX DEV_A DEV_B: the last numbers on snapshot devices of A and B.
st_pair() {
    mkdir -p /mnt/sa /mnt/sb
    mount -o ro "$2" /mnt/sa
    mount -o ro "$3" /mnt/sb
    g_record "$1_a_last" "$(tail -n1 /mnt/sa/seq)"
    g_record "$1_b_last" "$(tail -n1 /mnt/sb/seq)"
    umount /mnt/sa /mnt/sb
}

guest_boot_1() {
    local vgb out
    st_setup
    vgb=$(st_disk vmvgb)
    g_lvm pvcreate -q "$vgb" >/dev/null
    g_lvm vgcreate -q vgb "$vgb" >/dev/null
    g_lvm lvcreate -q -n b -L 96M vgb >/dev/null
    g_lvm lvchange -ay vg0/a vg0/c
    for lv in vg0/a vgb/b vg0/c; do
        mkfs.ext4 -q "/dev/mapper/${lv%/*}-${lv#*/}"
    done
    st_mount
    g_fill /mnt/c/f 8 "sets: c's file before the upgrade"

    # Stock LVM, one snapshot after the other.
    st_writer_start
    g_lvm lvcreate -q -s -n sa -L 16M vg0/a >/dev/null
    g_lvm lvcreate -q -s -n sb -L 16M vgb/b >/dev/null
    st_writer_stop
    st_pair stock /dev/mapper/vg0-sa /dev/mapper/vgb-sb
    g_lvm lvremove -q -f vg0/sa vgb/sb >/dev/null

    # rewind: one instant.
    st_writer_start
    out=$(rewind snapshot -v --name s1 --description "before the upgrade" --size 16M vg0/a vgb/b vg0/c 2>&1) ||
        g_fail "rewind snapshot failed: $out"
    st_writer_stop
    echo "$out" | tee "$BOOT_OUT/snapshot.out"
    g_record s1_window_ms "$(sed -n 's/.*writes held for \([0-9.]*\) ms.*/\1/p' <<<"$out")"
    rewind list | tee "$BOOT_OUT/list1"
    rewind show s1 --json >"$BOOT_OUT/show-s1.json"
    grep -q '"state": "ok"' "$BOOT_OUT/show-s1.json" || g_fail "s1 is not ok: $(cat "$BOOT_OUT/show-s1.json")"
    g_lvm lvs -a -o lv_name,lv_attr,origin,lv_tags vg0 vgb | tee "$BOOT_OUT/lvs1"
    # `rewind mount s1`: every member read-only under /run/rewind/s1/VG/ORIGIN, its device
    # read-only too; s1's last numbers and checksums are read there.
    rewind mount s1 | tee "$BOOT_OUT/mount-s1"
    local r=/run/rewind/s1
    g_record s1_a_last "$(tail -n1 $r/vg0/a/seq)"
    g_record s1_b_last "$(tail -n1 $r/vgb/b/seq)"
    st_sums $r/vg0/a $r/vgb/b $r/vg0/c >"$OUT/s1.sums"
    g_record s1_mounted_ro "$(blockdev --getro /dev/mapper/vg0-a.s1 /dev/mapper/vgb-b.s1 /dev/mapper/vg0-c.s1 | paste -sd,)"
    if touch $r/vg0/a/x 2>/dev/null; then g_fail "a write to the mounted set s1 succeeded"; fi
    if out=$(rewind delete s1 2>&1); then g_fail "a mounted set was deleted: $out"; fi
    echo "$out" | tee "$BOOT_OUT/refused-delete-mounted"
    grep -q 'is in use' <<<"$out" || g_fail "unexpected refusal: $out"
    out=$(rewind umount s1) || g_fail "rewind umount s1: $out"
    echo "$out"
    g_record s1_after_umount_ro "$(blockdev --getro /dev/mapper/vg0-a.s1 /dev/mapper/vgb-b.s1 /dev/mapper/vg0-c.s1 | paste -sd,)"
    [[ ! -e $r ]] || g_fail "$r is left after rewind umount"
    grep -q ' /run/rewind/' /proc/self/mountinfo && g_fail "a mount under /run/rewind is left"
    rewind show s1 --json >"$BOOT_OUT/show-s1-after-mount.json"
    grep -q '"state": "ok"' "$BOOT_OUT/show-s1-after-mount.json" || g_fail "s1 is not ok after mount, refused delete, umount"

    # The bad change.
    st_writer_start
    st_writer_stop
    g_fill /mnt/c/f 8 "sets: c's file after a bad upgrade"
    sync
    st_sums /mnt/a /mnt/b /mnt/c >"$OUT/bad.sums"
    st_umount

    out=$(rewind rollback s1 --keep-current=s2 2>&1) || g_fail "rewind rollback s1 failed: $out"
    echo "$out" | tee "$BOOT_OUT/rollback.out"
    grep -q 'rolls back at the next boot' <<<"$out" || g_fail "no set rollback: $out"
    g_lvm lvs -a -o lv_name,lv_attr,origin,lv_tags vg0 vgb | tee "$BOOT_OUT/lvs-flagged"
    [[ $(g_lvm lvs --noheadings -o lv_attr vg0/a.s1 vgb/b.s1 vg0/c.s1 | grep -c '^ *S') == 3 ]] ||
        g_fail "s1's members are not all flagged"

    # Refused: a snapshot of an origin flagged to merge.
    if out=$(rewind snapshot --name s9 vg0/a 2>&1); then
        g_fail "a snapshot of a merging origin was taken: $out"
    fi
    echo "$out" | tee "$BOOT_OUT/refused-merging"
    grep -q 'is merging snapshot vg0/a.s1 back' <<<"$out" || g_fail "unexpected refusal: $out"
}

guest_boot_2() {
    local out
    st_setup
    dmsetup table | tee "$BOOT_OUT/dm-at-init"
    grep -c 'snapshot-merge' "$BOOT_OUT/dm-at-init" | grep -qx 3 || g_fail "not every member of s1 is merging"
    # The poller finishes the three merges; `status --wait` returns once it has.
    RUST_LOG=info rewind poll -v >"$BOOT_OUT/poll.out" 2>&1 &
    local poll=$!
    rewind status --wait --json >"$BOOT_OUT/status-wait.json"
    wait "$poll" || g_fail "rewind poll failed: $(cat "$BOOT_OUT/poll.out")"
    grep -q '"state": "merging"' "$BOOT_OUT/status-wait.json" && g_fail "status --wait returned during a merge"
    # "Rollback complete": the poller said it, left a note for the next login, and
    # `rewind status` tells which set and when (LV tags on the origins).
    grep -q 'rollback complete: vg0/a is back at snapshot set s1' "$BOOT_OUT/poll.out" || g_fail "no rollback-complete message"
    grep -q 'rollback complete: vgb/b is back at snapshot set s1' /run/motd.d/rewind || g_fail "no login note"
    rewind status | tee "$BOOT_OUT/status"
    [[ $(grep -c 'rolled back to snapshot set s1 (merge finished' "$BOOT_OUT/status") == 3 ]] ||
        g_fail "rewind status does not say which set every member was rolled back to"
    rewind list | tee "$BOOT_OUT/list2"
    grep -q '^s1 ' "$BOOT_OUT/list2" && g_fail "s1 is still there after its rollback"
    grep -q '^s2 .* ok ' "$BOOT_OUT/list2" || g_fail "s2 (the kept state) is not ok"
    st_mount
    st_sums /mnt/a /mnt/b /mnt/c >"$BOOT_OUT/after-s1.sums"
    cmp "$OUT/s1.sums" "$BOOT_OUT/after-s1.sums" || g_fail "the members are not at s1's instant"
    g_record back_a_last "$(tail -n1 /mnt/a/seq)"
    g_record back_b_last "$(tail -n1 /mnt/b/seq)"

    # s3: small stores. b's fills past the watch's threshold: warned, then extended once the
    # configuration allows it; a's overflows.
    out=$(rewind snapshot --name s3 --size 4M vg0/a vgb/b 2>&1) || g_fail "rewind snapshot s3: $out"
    echo "$out"
    # 3.5 MiB into a 4 MiB store: about 90 % full (data chunks, ext4 metadata, the index).
    dd if=/dev/urandom of=/mnt/b/fill bs=512K count=7 conv=fsync status=none
    dmsetup status vgb-b.s3 | tee "$BOOT_OUT/b.s3-status"
    rewind watch --json >"$BOOT_OUT/watch1.json" 2>"$BOOT_OUT/watch1.log"
    cat "$BOOT_OUT/watch1.json" "$BOOT_OUT/watch1.log"
    grep -A2 '"action": "warned"' "$BOOT_OUT/watch1.json" | grep -q 'vgb/b.s3' || g_fail "no warning about vgb/b.s3"
    grep -q 'vgb/b.s3 is .* full and will overflow' /run/motd.d/rewind || g_fail "no login note about vgb/b.s3"
    mkdir -p /etc/rewind
    printf '[watch]\nextend = true\n' >/etc/rewind/rewind.toml
    rewind watch --json >"$BOOT_OUT/watch2.json" 2>"$BOOT_OUT/watch2.log"
    rm /etc/rewind/rewind.toml
    cat "$BOOT_OUT/watch2.json"
    grep -A2 '"action": "extended"' "$BOOT_OUT/watch2.json" | grep -q 'vgb/b.s3' || g_fail "vgb/b.s3 was not extended"
    g_record b_s3_size_after_watch "$(g_lvm lvs --noheadings --units m --nosuffix -o lv_size vgb/b.s3 | tr -d ' ')"
    dd if=/dev/urandom of=/mnt/a/fill bs=1M count=12 conv=fsync status=none
    sync
    dmsetup status vg0-a.s3 | tee "$BOOT_OUT/s3-status"
    grep -q Invalid "$BOOT_OUT/s3-status" || g_fail "vg0/a.s3 did not overflow"
    rewind list | tee "$BOOT_OUT/list2b"
    grep -q '^s3 .* lost ' "$BOOT_OUT/list2b" || g_fail "s3 is not shown lost"
    if out=$(rewind rollback s3 2>&1); then
        g_fail "a lost set was flagged: $out"
    fi
    echo "$out" | tee "$BOOT_OUT/refused-lost"
    st_umount

    out=$(rewind rollback s2 2>&1) || g_fail "rewind rollback s2 failed: $out"
    echo "$out" | tee "$BOOT_OUT/rollforward.out"
}

guest_boot_3() {
    st_setup
    RUST_LOG=info rewind poll -v 2>&1 | tee "$BOOT_OUT/poll.out"
    st_mount
    st_sums /mnt/a /mnt/b /mnt/c >"$BOOT_OUT/after-s2.sums"
    cmp "$OUT/bad.sums" "$BOOT_OUT/after-s2.sums" || g_fail "rolling forward did not bring the bad state back"
    [[ ! -e /mnt/a/fill ]] || g_fail "a file written after s2 survived the roll forward"
    st_umount
    g_lvm lvs -a -o lv_name,lv_attr,origin,lv_tags vg0 vgb | tee "$BOOT_OUT/lvs3"
    if g_lvm lvs --noheadings -o lv_attr vg0 vgb | grep -q '^ *[SO]'; then
        g_fail "a merge flag is left after boot 3"
    fi
    rewind list | tee "$BOOT_OUT/list3"
    rewind delete s3 | tee "$BOOT_OUT/delete"
    rewind list | tee "$BOOT_OUT/list3b"
    grep -q 'no snapshot sets' "$BOOT_OUT/list3b" || g_fail "sets left after delete"
    g_lvm vgck vg0
    g_lvm vgck vgb
}

host_check() {
    local a b d
    a=$(vm_guest_value s1_a_last) b=$(vm_guest_value s1_b_last)
    d=$((b - a))
    vm_check "s1 is one instant (B's last ${b} is A's ${a} or A's minus one)" test "$d" -le 0 -a "$d" -ge -1
    vm_check_eq "rewind mount s1: every member's device read-only while mounted" "1,1,1" "$(vm_guest_value s1_mounted_ro)"
    vm_check_eq "rewind umount s1: every member's device writable again" "0,0,0" "$(vm_guest_value s1_after_umount_ro)"
    vm_check_eq "after the rollback A shows s1's last number" "$a" "$(vm_guest_value back_a_last)"
    vm_check_eq "after the rollback B shows s1's last number" "$b" "$(vm_guest_value back_b_last)"
    printf 'stock serial lvcreate: B - A = %s; rewind: B - A = %s, window %s ms\n' \
        $(($(vm_guest_value stock_b_last) - $(vm_guest_value stock_a_last))) "$d" "$(vm_guest_value s1_window_ms)"
    vm_check "boot 3: rd.rewind=s3 refused whole, naming the overflowed member" \
        grep -q 'rd.rewind=s3 ignored, nothing changed: snapshot set member vg0/a.s3' "$WORK/boot3.serial.log"
    vm_check "rewind watch extended vgb/b.s3 past its 4 MiB" \
        awk -v s="$(vm_guest_value b_s3_size_after_watch)" 'BEGIN { exit !(s > 4) }'
    vm_check "vgck vg0" vm_image_lvm "$WORK/disk.img" vgck vg0
    vm_check "vgck vgb" vm_image_lvm "$WORK/vgb.img" vgck vgb
    local left
    left=$(vm_image_lvm "$WORK/disk.img" lvs -a --noheadings -o lv_name vg0 | tr -d ' ' | sort | paste -sd,)
    vm_check_eq "vg0's LVs at the end" "a,c,root" "$left"
}
