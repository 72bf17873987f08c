# shellcheck shell=bash disable=SC2034,SC2153 # VM_BOOT is set by vm-init; VM_* settings are read by tests/vm/run.sh
# Scenario "thin-root" (long suite; issue 19 proofs 1 and 2, docs/THIN.md): the ROOT file system
# on a thin LV, rolled back by `rewind early` in an initramfs with rewind and no LVM2 (dracut,
# module 90rewind, shell init), three ways: stock `lvconvert --merge`, `rd.rewind=VG/SNAP` on
# the kernel command line, `rewind rollback SET` of a thin set. Five boots.
# Boot 1: root is vg0/seed (linear, built on the host: the host cannot make a thin pool). Stock
#         LVM2 makes a thin pool vg0/pool, a thin LV vg0/root of seed's size and a thin LV
#         vg0/data (ext4); / is remounted read-only and seed copied into vg0/root (dd, sparse:
#         the pool allocates only what the file system uses), e2fsck clean.
# Boot 2: root=/dev/mapper/vg0-root rd.lvm.lv=vg0/root from here on: rewind early lays out the
#         pool and the thin root. The spare seed is removed (stock lvremove). Known files under
#         /srv/tr, two stock thin snapshots snap1 and snap2 of the mounted root, snap2's whole
#         device checksummed, a bad change, stock `lvconvert --merge vg0/snap1` (deferred:
#         root is open).
# Boot 3: rewind early activates the root with snap1's device id: root shows the files from
#         before (checksums), snap2 is the same device (checksum, activated by stock LVM, which
#         checks the pool's transaction id), `rewind poll` finishes the merge; stock lvs/vgck:
#         a plain thin root; the pool's transaction id in the metadata equals `dmsetup status`.
#         Then new files, a stock thin snapshot snap3, a bad change.
# Boot 4: rd.rewind=vg0/snap3 (no lvconvert): root shows snap3's files; `rewind poll` finishes;
#         the pool in step. Then `rewind snapshot --name s1 vg0/root vg0/data` (a thin set of
#         two LVs in one pool), a bad change on both, `rewind rollback s1`.
# Boot 5: both LVs show s1's files; `rewind poll` finishes both thin merges; stock vgck; the
#         pool in step.
# Host:   stock vgck and lvs on the image: root, data and snap2 plain thin LVs (snap2's origin
#         cleared as stock LVM's own finish clears it), no seed, snap1, snap3 or member left,
#         no tag on the pool, the pool's transaction id in the metadata equals the kernel's at
#         the end.
# The guest has no thin-provisioning-tools: LVM runs with thin_check_executable = "".
VM_SCENARIO_SUITE=long
# Boot 1 copies the root into the pool (dd of 640 MiB under TCG): over 300 s on a loaded host.
VM_TIMEOUT=$((${VM_TIMEOUT:-0} > 600 ? VM_TIMEOUT : 600))
VM_BOOTS=5
VM_DISK_SIZE=3G
VM_LVS=(seed:640M) # the root tree takes ~350 MiB; snap2 is hashed whole twice (slow under TCG)
VM_INITRAMFS_ARGS=(--no-lvm --no-systemd --modules-dir "${VM_REPO_DIR:-}/dracut-module")
VM_ROOT_ADD=(
    "${VM_REPO_DIR:-}/target/x86_64-unknown-linux-gnu/release/rewind:/usr/sbin/rewind"
    "${VM_REPO_DIR:-}/initramfs/rewind-early:/usr/lib/rewind/rewind-early"
)
# root= and rd.lvm.lv= are per boot (vm_boot_args): the seed at boot 1, the thin root after.
VM_CMDLINE='ro printk.devkmsg=on'
# shellcheck source=tests/vm/lib/cross-writer.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/cross-writer.sh"

vm_boot_args() {
    case $1 in
    1) echo 'root=/dev/mapper/vg0-seed rd.lvm.lv=vg0/seed' ;;
    4) echo 'root=/dev/mapper/vg0-root rd.lvm.lv=vg0/root rd.rewind=vg0/snap3' ;;
    *) echo 'root=/dev/mapper/vg0-root rd.lvm.lv=vg0/root' ;;
    esac
}

vm_boot_title() {
    case $1 in
    1) echo 'the thin root made from the seed' ;;
    2) echo 'thin root; snapshots, lvconvert --merge' ;;
    3) echo 'merged root, poll; snap3' ;;
    4) echo 'rd.rewind=vg0/snap3; a thin set, rewind rollback' ;;
    5) echo 'the set rolled back' ;;
    esac
}

host_prepare() {
    (cd "$VM_REPO_DIR" && cargo build --release --quiet)
}

# The guest side -------------------------------------------------------------------------------

TR_DIR=/srv/tr

tr_lvm() {
    mkdir -p /run/lvm /run/lock/lvm
    lvm "$@" --config 'global { use_lvmpolld = 0 thin_check_executable = "" } activation { udev_sync = 0 udev_rules = 0 monitoring = 0 } devices { obtain_device_list_from_udev = 0 }'
}

tr_setup() {
    mkdir -p /run/lock/lvm
    # The initramfs's udevd left its socket; nothing listens after switch_root.
    rm -f /run/udev/control
    modprobe dm-thin-pool
    dmesg | grep 'rewind:' | tee "$BOOT_OUT/rewind.log" || true
    dmsetup table | tee "$BOOT_OUT/dm-at-init"
    g_record "b${VM_BOOT}_root_source" "$(findmnt -no SOURCE /)"
    g_record "b${VM_BOOT}_root_target" "$(dmsetup table vg0-root 2>/dev/null | awk '{ print $3 }')"
}

# The pool's transaction id: in the metadata (stock lvs), in the kernel (dmsetup status).
tr_tid_meta() { tr_lvm lvs --noheadings -o transaction_id vg0/pool | tr -d ' '; }
tr_tid_kernel() { dmsetup status vg0-pool-tpool | awk '{ print $4 }'; }

# tr_in_step WHAT: the metadata's transaction id is the kernel's, no tag left on the pool.
tr_in_step() {
    local m k tags
    m=$(tr_tid_meta) k=$(tr_tid_kernel)
    tags=$(tr_lvm lvs --noheadings -o lv_tags vg0/pool | tr -d ' ')
    echo "$1: pool transaction id metadata $m, kernel $k, tags '$tags'"
    g_record "b${VM_BOOT}_tid_$2" "$m/$k"
    [[ -n $m && $m == "$k" ]] || g_fail "$1: the pool's transaction id is $m in the metadata, $k in the kernel"
    [[ -z $tags ]] || g_fail "$1: the pool still carries $tags"
}

# tr_files TEXT: the known files of the root, written and synced.
tr_files() {
    local i
    mkdir -p "$TR_DIR"
    for i in 1 2 3; do
        g_fill "$TR_DIR/f$i" 4 "thin-root: $1: file $i"
    done
    echo "$1" >"$TR_DIR/marker"
    sync
}

# tr_sums DIR: the known files' checksums, read from the device (caches dropped).
tr_sums() {
    sync
    echo 3 >/proc/sys/vm/drop_caches
    sha256sum "$1"/f* "$1/marker"
}

# tr_thin_id LV: its device id (stock lvs, hidden LVs too).
tr_thin_id() { tr_lvm lvs -a --noheadings -o thin_id "vg0/$1" | tr -d ' '; }

# tr_table_id: the device id in the live thin table of the root.
tr_table_id() { dmsetup table vg0-root | awk '$3 == "thin" { print $5 }'; }

# tr_snap2_sum: snap2's whole device, activated by stock LVM (which checks the pool's ids).
tr_snap2_sum() {
    tr_lvm lvchange -q -ay -K vg0/snap2
    sha256sum </dev/mapper/vg0-snap2 | cut -d' ' -f1
    tr_lvm lvchange -q -an vg0/snap2
}

# tr_poll: `rewind poll` to the end.
tr_poll() {
    local rc=0
    dmsetup status vg0-pool-tpool | tee "$BOOT_OUT/pool-before-poll"
    RUST_LOG=info rewind poll -v >"$BOOT_OUT/poll.out" 2>&1 || rc=$?
    cat "$BOOT_OUT/poll.out"
    [[ $rc == 0 ]] || g_fail "rewind poll exited $rc"
    tr_lvm lvs -a -o lv_name,lv_attr,origin,pool_lv,thin_id,transaction_id,lv_tags vg0 | tee "$BOOT_OUT/lvs-after-poll"
    dmsetup table | tee "$BOOT_OUT/dm-after-poll"
    dmsetup status vg0-pool-tpool | tee "$OUT/pool-status-boot$VM_BOOT"
    tr_in_step "boot $VM_BOOT after rewind poll" poll
    tr_lvm vgck vg0 || g_fail "vgck vg0 after boot $VM_BOOT's poll"
}

guest_boot_1() {
    local size
    tr_setup
    tr_lvm lvcreate -q --type thin-pool -L 1G --chunksize 64k -n pool vg0
    size=$(blockdev --getsize64 /dev/mapper/vg0-seed)
    tr_lvm lvcreate -q -V "${size}b" -T vg0/pool -n root
    tr_lvm lvcreate -q -V 64M -T vg0/pool -n data
    [[ $(blockdev --getsize64 /dev/mapper/vg0-root) == "$size" ]] || g_fail "vg0/root is not seed's size ($size)"
    mkfs.ext4 -q -E nodiscard /dev/mapper/vg0-data
    # The root file system copied while nothing writes it: read-only from here to the power-off.
    sync
    mount -o remount,ro /
    echo "thin-root: $(g_uptime) s: copying the seed"
    dd if=/dev/mapper/vg0-seed of=/dev/mapper/vg0-root bs=1M conv=sparse,fsync status=none
    echo "thin-root: $(g_uptime) s: copied"
    e2fsck -fn /dev/mapper/vg0-root 2>&1 | tee "$BOOT_OUT/fsck" || g_fail "e2fsck of the copy"
    dmsetup status vg0-pool-tpool | tee "$BOOT_OUT/pool-after-copy"
    tr_lvm lvs -a -o lv_name,lv_attr,lv_size,pool_lv,thin_id,data_percent vg0 | tee "$BOOT_OUT/lvs"
    tr_in_step "boot 1 after the copy" copy
}

guest_boot_2() {
    local out
    tr_setup
    g_record b2_seed_active "$(dmsetup ls | awk '$1 == "vg0-seed"' | wc -l)"
    # The spare goes: the root is the thin LV from now on.
    tr_lvm lvremove -q -y vg0/seed
    tr_files before
    tr_sums "$TR_DIR" | tee "$OUT/before.sha256"
    tr_lvm lvcreate -q -s -n snap1 vg0/root
    tr_lvm lvcreate -q -s -n snap2 vg0/root
    g_record snap1_id "$(tr_thin_id snap1)"
    g_record snap2_sum_before "$(tr_snap2_sum)"
    # The bad change.
    tr_files "bad change"
    tr_sums "$TR_DIR" | tee "$OUT/bad.sha256"
    out=$(tr_lvm lvconvert --merge vg0/snap1 2>&1) || g_fail "lvconvert --merge vg0/snap1: $out"
    echo "$out" | tee "$BOOT_OUT/lvconvert.out"
    grep -q 'will occur on next activation' <<<"$out" || g_fail "lvconvert --merge did not defer the thin merge"
    tr_lvm lvs -a -o lv_name,lv_attr,origin,thin_id,transaction_id vg0 | tee "$BOOT_OUT/lvs-flagged"
}

guest_boot_3() {
    tr_setup
    g_record b3_table_id "$(tr_table_id)"
    tr_sums "$TR_DIR" | tee "$OUT/boot3.sha256"
    tr_poll
    tr_sums "$TR_DIR" | tee "$OUT/boot3-after-poll.sha256"
    g_record b3_root_id "$(tr_thin_id root)"
    g_record snap2_sum_after "$(tr_snap2_sum)"
    # Proof 2's first part: a stock thin snapshot, rolled back by rd.rewind= at the next boot.
    tr_files "snap3's"
    tr_sums "$TR_DIR" | tee "$OUT/snap3.sha256"
    tr_lvm lvcreate -q -s -n snap3 vg0/root
    g_record snap3_id "$(tr_thin_id snap3)"
    tr_files "bad change 3"
    tr_in_step "boot 3 after snap3" snap3
}

guest_boot_4() {
    local out
    tr_setup
    g_record b4_table_id "$(tr_table_id)"
    tr_lvm lvs -a -o lv_name,lv_attr,origin,thin_id,lv_tags vg0 | tee "$BOOT_OUT/lvs-flagged"
    tr_sums "$TR_DIR" | tee "$OUT/boot4.sha256"
    tr_poll
    tr_sums "$TR_DIR" | tee "$OUT/boot4-after-poll.sha256"
    # Proof 2's second part: a thin set of the root and vg0/data, rolled back by `rewind rollback`.
    tr_lvm lvchange -q -ay vg0/data
    mkdir -p /mnt/data
    mount /dev/mapper/vg0-data /mnt/data
    g_fill /mnt/data/f 4 "thin-root: data's file of s1"
    echo "s1's" >/mnt/data/marker
    tr_files "s1's"
    { tr_sums "$TR_DIR" && tr_sums /mnt/data; } | tee "$OUT/s1.sha256"
    # One instant across the two thin LVs: the sets issue's cross-LV writer appends N to the
    # root, then to data, each synced, while s1 is taken.
    cross_writer_start "$TR_DIR/seq" /mnt/data/seq
    out=$(rewind snapshot -v --name s1 vg0/root vg0/data 2>&1) || g_fail "rewind snapshot s1: $out"
    cross_writer_stop
    g_record s1_window_ms "$(sed -n 's/.*writes held for \([0-9.]*\) ms.*/\1/p' <<<"$out")"
    echo "$out" | tee "$BOOT_OUT/snapshot.out"
    rewind list | tee "$BOOT_OUT/list"
    tr_in_step "boot 4 after s1" s1
    g_record s1_root_id "$(tr_thin_id root.s1)"
    g_record s1_data_id "$(tr_thin_id data.s1)"
    g_fill /mnt/data/f 4 "thin-root: data's bad change"
    echo "bad" >/mnt/data/marker
    tr_files "bad change 4"
    { tr_sums "$TR_DIR" && tr_sums /mnt/data; } | tee "$OUT/bad4.sha256"
    out=$(rewind rollback s1 2>&1) || g_fail "rewind rollback s1: $out"
    echo "$out" | tee "$BOOT_OUT/rollback.out"
    tr_lvm lvs -a -o lv_name,lv_attr,origin,thin_id,lv_tags vg0 | tee "$BOOT_OUT/lvs-flagged-s1"
    umount /mnt/data
}

guest_boot_5() {
    tr_setup
    g_record b5_table_id "$(tr_table_id)"
    g_record b5_data_table_id "$(dmsetup table vg0-data | awk '$3 == "thin" { print $5 }')"
    mkdir -p /mnt/data
    mount /dev/mapper/vg0-data /mnt/data
    { tr_sums "$TR_DIR" && tr_sums /mnt/data; } | tee "$OUT/boot5.sha256"
    g_record b5_root_last "$(tail -n1 "$TR_DIR/seq")"
    g_record b5_data_last "$(tail -n1 /mnt/data/seq)"
    tr_poll
    { tr_sums "$TR_DIR" && tr_sums /mnt/data; } | tee "$OUT/boot5-after-poll.sha256"
    umount /mnt/data
    rewind list | tee "$BOOT_OUT/list-end"
}

# The host side --------------------------------------------------------------------------------

host_check() {
    local n img=$WORK/disk.img lvs tid
    vm_check_eq "boot 1: root was the seed" /dev/mapper/vg0-seed "$(vm_guest_value b1_root_source)"
    vm_check "boot 1: the copy is a clean ext4 (e2fsck -fn)" grep -q 'files (' "$VM_STATE/boot1/fsck"
    for n in 2 3 4 5; do
        vm_check_eq "boot $n: root is the thin LV" /dev/mapper/vg0-root "$(vm_guest_value "b${n}_root_source")"
        vm_check_eq "boot $n: vg0-root's table is thin (laid out by rewind early)" thin "$(vm_guest_value "b${n}_root_target")"
    done
    vm_check_eq "boot 2: the seed was not activated" 0 "$(vm_guest_value b2_seed_active)"

    # Proof 1: stock lvconvert --merge of snap1.
    vm_check "boot 2 changed the files" vm_files_differ "$VM_STATE/before.sha256" "$VM_STATE/bad.sha256"
    vm_check "boot 3: rewind early said it set up the merge" grep -q 'rewind: vg0/root merged: ' "$VM_STATE/boot3/rewind.log"
    vm_check_eq "boot 3: the root's thin table carries snap1's device id" \
        "$(vm_guest_value snap1_id)" "$(vm_guest_value b3_table_id)"
    vm_check "boot 3: root shows snap1's files" vm_compare_sums "$VM_STATE/before.sha256" "$VM_STATE/boot3.sha256"
    vm_check "boot 3: rewind poll finished the thin merge" \
        grep -q 'thin merge into vg0/root finished in the metadata' "$VM_STATE/boot3/poll.out"
    vm_check_eq "boot 3: the root carries snap1's device id in the metadata" \
        "$(vm_guest_value snap1_id)" "$(vm_guest_value b3_root_id)"
    vm_check "boot 3: root still snap1's after the finish" \
        vm_compare_sums "$VM_STATE/before.sha256" "$VM_STATE/boot3-after-poll.sha256"
    vm_check_eq "snap2 intact (its whole device)" "$(vm_guest_value snap2_sum_before)" "$(vm_guest_value snap2_sum_after)"
    local t
    t=$(vm_guest_value b3_tid_poll)
    vm_check_eq "boot 3: pool transaction id, metadata = kernel" "${t%/*}" "${t#*/}"

    # Proof 2: rd.rewind=vg0/snap3, then rewind rollback of a thin set.
    vm_check "boot 4: rd.rewind=vg0/snap3 flagged it" grep -q 'vg0/snap3: merge flag committed' "$WORK/boot4.serial.log"
    vm_check_eq "boot 4: the root's thin table carries snap3's device id" \
        "$(vm_guest_value snap3_id)" "$(vm_guest_value b4_table_id)"
    vm_check "boot 4: root shows snap3's files" vm_compare_sums "$VM_STATE/snap3.sha256" "$VM_STATE/boot4.sha256"
    vm_check "boot 4: rewind poll finished the thin merge" \
        grep -q 'thin merge into vg0/root finished in the metadata' "$VM_STATE/boot4/poll.out"
    vm_check "boot 4: root still snap3's after the finish" \
        vm_compare_sums "$VM_STATE/snap3.sha256" "$VM_STATE/boot4-after-poll.sha256"
    vm_check "boot 4: the bad change changed both LVs' files" \
        test "$(paste "$VM_STATE/s1.sha256" "$VM_STATE/bad4.sha256" | awk '$1 != $3' | wc -l)" -eq 6
    vm_check_eq "boot 5: the root's thin table carries root.s1's device id" \
        "$(vm_guest_value s1_root_id)" "$(vm_guest_value b5_table_id)"
    vm_check_eq "boot 5: data's thin table carries data.s1's device id" \
        "$(vm_guest_value s1_data_id)" "$(vm_guest_value b5_data_table_id)"
    vm_check "boot 5: both LVs show s1's files" vm_compare_sums "$VM_STATE/s1.sha256" "$VM_STATE/boot5.sha256"
    # One instant: the writer's last number on data (written second) is the root's or one less.
    local ra da
    ra=$(vm_guest_value b5_root_last) da=$(vm_guest_value b5_data_last)
    printf 'thin-root: s1 under the cross-LV writer: root %s, data %s (B - A = %s), window %s ms\n' \
        "$ra" "$da" "$((da - ra))" "$(vm_guest_value s1_window_ms)"
    vm_check "boot 5: the writer ran before s1 (root's last number > 1)" test "$ra" -gt 1
    vm_check "boot 5: s1 is one instant across root and data (B - A is 0 or -1)" \
        test "$((da - ra))" -ge -1 -a "$((da - ra))" -le 0
    vm_check "boot 5: rewind poll finished the root's merge" \
        grep -q 'thin merge into vg0/root finished in the metadata' "$VM_STATE/boot5/poll.out"
    vm_check "boot 5: rewind poll finished data's merge" \
        grep -q 'thin merge into vg0/data finished in the metadata' "$VM_STATE/boot5/poll.out"
    vm_check "boot 5: both LVs still s1's after the finish" \
        vm_compare_sums "$VM_STATE/s1.sha256" "$VM_STATE/boot5-after-poll.sha256"

    # Stock LVM2 on the image at the end.
    vm_check "vgck vg0" vm_image_lvm "$img" vgck vg0
    lvs=$(vm_image_lvm "$img" lvs -a --noheadings --separator , -o lv_name,segtype,origin,lv_tags vg0 | tr -d ' ' | sort)
    echo "$lvs" >"$WORK/lvs-final"
    # The members keep the set's rolled-back note (a tag, docs/SETS.md), nothing else.
    vm_check_eq "thin LVs left (name,segtype,origin,tags)" \
        "data,thin,,rewind_rolled_back_T_s1;root,thin,,rewind_rolled_back_T_s1;snap2,thin,," \
        "$(grep -E '^(root|data|snap[0-9]|seed|.*\.s1),' <<<"$lvs" | sed -E 's/_rolled_back_[0-9]+_/_rolled_back_T_/' | paste -sd';')"
    vm_check_eq "no tag left on the pool" "" \
        "$(vm_image_lvm "$img" lvs --noheadings -o lv_tags vg0/pool | tr -d ' ')"
    tid=$(vm_image_lvm "$img" lvs --noheadings -o transaction_id vg0/pool | tr -d ' ')
    vm_check_eq "pool transaction id at the end: metadata = kernel" "$tid" "$(awk '{ print $4 }' "$VM_STATE/pool-status-boot5")"
}
