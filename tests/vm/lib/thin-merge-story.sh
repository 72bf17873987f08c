# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# The thin-merge story, shared by thin-merge (quick) and thin-merge-crash (long): a thin LV
# rolled back to a thin snapshot by `rewind early` in an initramfs with no LVM2 (dracut, shell
# init, module 90rewind), the flag written by stock `lvconvert --merge` while the LV is open,
# and the merge finished by `rewind poll`.
# Boot 1: stock LVM2 in the booted system makes a thin pool vg0/pool and a thin LV vg0/thin
#         (ext4, known data), two thin snapshots snap1 and snap2, then activates vg0/thin
#         alone and keeps what LVM loaded (names, UUIDs, tables). The data is overwritten (the
#         bad change) with vg0/thin mounted, so `lvconvert --merge vg0/snap1` is deferred.
#         snap2's content is recorded.
# Boot 2: rewind early activates vg0/thin for the flagged merge: the pool's devices and
#         thin's, LVM's names and UUIDs, tables equal to what LVM loaded in boot 1 except the
#         thin table's device id, which is snap1's. The data is the snapshot's. `rewind poll`
#         finishes the merge as LVM's poller does (docs/THIN.md): one commit (thin carries
#         snap1's device, snap1 gone, the pool's transaction id one up and the owed delete as a
#         pool tag), the pool's `delete` and `set_transaction_id`, a second commit (no tag).
#         With TM_KILLS (thin-merge-crash) the guest is killed at TM_KILLS[0] instead, and
#         each next boot (vg0/thin activated by rd.lvm.lv) runs `rewind poll` killed at the
#         next failpoint; the boot after the last kill polls to the end.
# Last:   stock LVM activates snap2 (the pool's transaction id must match) and it is unchanged
#         (its `origin` cleared, as stock LVM's own finish does: the LV it was taken of is the
#         one deleted); thin's data is the snapshot's.
# Host:   the data from before; snap2 the same; stock vgck and lvs on the image: a plain thin
#         LV, no snap1, snap2 still a snapshot, no tag on the pool; the pool's transaction id in
#         the metadata equals what the kernel reported after the finish.
# The guest has no thin-provisioning-tools: LVM runs with thin_check_executable = "".
# Not the issue's thin *root* (the disk is built on the host without device-mapper, so a thin
# root would need a first boot to copy root into a pool); the thin LV here is an ordinary
# volume rewind activates in the initramfs, which is the same code path.

# TM_KILLS (set by the scenario before sourcing): failpoints, one boot each from boot 2.
TM_KILLS=(${TM_KILLS[@]+"${TM_KILLS[@]}"})
TM_LAST=$((2 + ${#TM_KILLS[@]}))

VM_BOOTS=$TM_LAST
VM_LVS=(root:1200M)
VM_INITRAMFS_ARGS=(--no-lvm --no-systemd --modules-dir "${VM_REPO_DIR:-}/dracut-module")
VM_ROOT_ADD=(
    "${VM_REPO_DIR:-}/target/x86_64-unknown-linux-gnu/release/rewind:/usr/sbin/rewind"
    "${VM_REPO_DIR:-}/initramfs/rewind-early:/usr/lib/rewind/rewind-early"
)

TH_DIR=/mnt/thin
TH_FILES=3 # of 4 MiB each

host_prepare() {
    (cd "$VM_REPO_DIR" && cargo build --release --quiet)
}

th_lvm() {
    mkdir -p /run/lvm /run/lock/lvm
    lvm "$@" --config 'global { use_lvmpolld = 0 thin_check_executable = "" } activation { udev_sync = 0 udev_rules = 0 monitoring = 0 } devices { obtain_device_list_from_udev = 0 }'
}

# th_tables OUT: every device's name, uuid and table, with major:minor replaced by names, so
# tables from two boots compare.
th_tables() {
    dmsetup info -c --noheadings --separator ' ' -o major,minor,name >/run/th-devices
    dmsetup table | awk 'NR == FNR { n[$1 ":" $2] = $3; next }
        { for (i = 1; i <= NF; i++) if ($i in n) $i = n[$i]; print }' /run/th-devices - |
        sort >"$1.table"
    dmsetup info -c --noheadings --separator ' ' -o name,uuid | sort >"$1.uuid"
    cat "$1.table" "$1.uuid"
}

th_sums() {
    (cd "$TH_DIR" && sha256sum f* marker)
}

guest_boot_1() {
    local i
    modprobe dm-thin-pool
    th_lvm lvcreate -q --type thin-pool -L 96M --chunksize 64k -n pool vg0
    th_lvm lvcreate -q -V 64M -T vg0/pool -n thin
    mkfs.ext4 -q /dev/vg0/thin
    mkdir -p "$TH_DIR"
    mount /dev/vg0/thin "$TH_DIR"
    for ((i = 1; i <= TH_FILES; i++)); do
        g_fill "$TH_DIR/f$i" 4 "thin before: file $i"
    done
    echo "thin before" >"$TH_DIR/marker"
    th_sums | tee "$OUT/before.sha256"
    umount "$TH_DIR"
    th_lvm lvcreate -q -s -n snap1 vg0/thin
    th_lvm lvcreate -q -s -n snap2 vg0/thin
    # What stock LVM loads to activate the thin LV alone (an initramfs activates one LV).
    th_lvm lvchange -q -an vg0/thin vg0/pool
    dmsetup table | tee "$BOOT_OUT/dm-after-deactivate"
    th_lvm lvchange -q -ay vg0/thin
    th_tables "$OUT/stock" | tee "$BOOT_OUT/stock-tables"
    mount /dev/vg0/thin "$TH_DIR"
    for ((i = 1; i <= TH_FILES; i++)); do
        g_fill "$TH_DIR/f$i" 4 "thin after: file $i"
    done
    echo "thin after" >"$TH_DIR/marker"
    sync
    th_sums | tee "$OUT/after.sha256"
    th_lvm lvchange -q -ay -K vg0/snap2
    sha256sum </dev/vg0/snap2 | cut -d' ' -f1 | tee "$OUT/snap2-before"
    th_lvm lvchange -q -an vg0/snap2
    th_lvm lvconvert --merge vg0/snap1 2>&1 | tee "$BOOT_OUT/lvconvert.out"
    grep -q 'will occur on next activation' "$BOOT_OUT/lvconvert.out" ||
        g_fail "lvconvert --merge did not defer the thin merge"
    th_lvm lvs -a -o lv_name,lv_attr,origin,thin_id vg0 | tee "$OUT/lvs-boot1"
    umount "$TH_DIR"
}

# tm_observe: what rewind early set up (boot 2): tables, data.
tm_observe() {
    dmesg | grep 'rewind:' | tee "$BOOT_OUT/rewind.log" || true
    th_tables "$OUT/rewind" | tee "$BOOT_OUT/rewind-tables"
    mkdir -p "$TH_DIR"
    mount -o ro,noload /dev/mapper/vg0-thin "$TH_DIR"
    th_sums | tee "$OUT/boot2.sha256"
    umount "$TH_DIR"
}

# tm_killed_poll N: `rewind poll` at boot N stopped at its failpoint; the host kills qemu on
# the failpoint's console line.
tm_killed_poll() {
    local fp=${TM_KILLS[$(($1 - 2))]}
    dmsetup status vg0-pool-tpool | tee "$OUT/pool-status-boot$1"
    dmsetup table vg0-thin | tee "$OUT/thin-table-boot$1"
    REWIND_FAILPOINT=$fp rewind poll -v 2>&1 || true
    sleep 300
    g_fail "the host did not kill the guest at $fp"
}

# tm_finish: `rewind poll` to the end, then stock LVM's view.
tm_finish() {
    local rc=0
    dmsetup status vg0-pool-tpool | tee "$OUT/pool-status-before-poll"
    rewind poll -v >"$BOOT_OUT/poll.out" 2>&1 || rc=$?
    cat "$BOOT_OUT/poll.out"
    [[ $rc == 0 ]] || g_fail "rewind poll exited $rc"
    modprobe dm-thin-pool
    th_lvm lvs -a -o lv_name,lv_attr,origin,thin_id,transaction_id,lv_tags vg0 | tee "$OUT/lvs-after-poll"
    dmsetup status vg0-pool-tpool | tee "$OUT/pool-status"
    dmsetup table vg0-thin | tee "$OUT/thin-table-end"
    # Stock LVM activates the sibling in the same pool: it checks the transaction ids.
    th_lvm lvchange -q -ay -K vg0/snap2
    sha256sum </dev/mapper/vg0-snap2 | cut -d' ' -f1 | tee "$OUT/snap2-after"
    mkdir -p "$TH_DIR"
    mount /dev/mapper/vg0-thin "$TH_DIR"
    th_sums | tee "$OUT/boot2-after-poll.sha256"
    umount "$TH_DIR"
    th_lvm lvchange -q -an vg0/snap2
}

guest_boot_2() {
    tm_observe
    mkdir -p /run/lock/lvm
    if ((${#TM_KILLS[@]})); then
        tm_killed_poll 2
    else
        tm_finish
    fi
}

vm_boot_kill() {
    (($1 >= 2 && $1 < TM_LAST)) && echo "on failpoint ${TM_KILLS[$(($1 - 2))]}: exiting as if killed"
}

# After the first kill the merge is no longer flagged: vg0/thin is named for rewind early.
vm_boot_args() { (($1 >= 3)) && echo "rd.lvm.lv=vg0/thin"; }

# Boots 3 .. TM_LAST (thin-merge-crash).
tm_later_boot() {
    mkdir -p /run/lock/lvm
    if (($1 < TM_LAST)); then
        tm_killed_poll "$1"
    else
        tm_finish
    fi
}
guest_boot_3() { tm_later_boot 3; }
guest_boot_4() { tm_later_boot 4; }
guest_boot_5() { tm_later_boot 5; }

# tm_check_kills: every killed boot was killed at its failpoint, and what the next boot found.
tm_check_kills() {
    local n fp img=$WORK/disk.img
    for ((n = 2; n < TM_LAST; n++)); do
        fp=${TM_KILLS[$((n - 2))]}
        vm_check_eq "boot $n was killed" killed "$(cat "$WORK/boot$n.result" 2>/dev/null)"
        vm_check "boot $n stopped at $fp" grep -q "failpoint $fp: exiting as if killed" "$WORK/boot$n.serial.log"
    done
    # Each later boot: rewind early activated vg0/thin with snap1's device over a pool whose
    # kernel transaction id is one behind the metadata's (3 against 4) until set_transaction_id
    # went through (the kill after the messages): 4 at the last boot.
    for ((n = 3; n < TM_LAST; n++)); do
        vm_check "boot $n: thin with snap1's device id" grep -qE '^0 [0-9]+ thin [0-9]+:[0-9]+ 2\b' "$WORK/boot$n.serial.log"
        fp=${TM_KILLS[$((n - 3))]}
        vm_check "boot $n: pool transaction id 3 after a kill at $fp" grep -qE '^0 [0-9]+ thin-pool 3 ' "$WORK/boot$n.serial.log"
    done
    vm_check_eq "last boot: pool transaction id 4 before the last poll (set by the killed one)" 4 \
        "$(awk '{ print $4 }' "$VM_STATE/pool-status-before-poll")"
    vm_check "vgck vg0" vm_image_lvm "$img" vgck vg0
}

# tm_check_boot_2: what rewind early set up at boot 2 (recorded by a boot that was not killed).
tm_check_boot_2() {
    vm_check "boot 2 (rewind, no LVM2 in the initramfs) shows the snapshot's data" \
        vm_compare_sums "$VM_STATE/before.sha256" "$VM_STATE/boot2.sha256"
    vm_check "rewind said it set up the merge" grep -q 'rewind: vg0/thin merged: ' "$VM_STATE/boot2/rewind.log"
    # Names and UUIDs: every device LVM made for vg0/thin, rewind made (root's are both boots').
    vm_check_eq "device names and UUIDs as LVM's" \
        "$(cat "$VM_STATE/stock.uuid")" "$(cat "$VM_STATE/rewind.uuid")"
    local id want
    # snap1's device id, from boot 1's `lvs -a` (the hidden LV's row).
    id=$(awk '$1 == "[snap1]" { print $NF }' "$VM_STATE/lvs-boot1")
    vm_check "snap1 had a device id" test -n "$id"
    want=$(sed -E "s/^(vg0-thin: 0 [0-9]+ thin vg0-pool-tpool) [0-9]+$/\1 $id/" "$VM_STATE/stock.table")
    vm_check_eq "tables as LVM's, the thin LV's with snap1's device id ($id)" \
        "$want" "$(cat "$VM_STATE/rewind.table")"
}

host_check() {
    ((${#TM_KILLS[@]} == 0)) || tm_check_kills
    vm_check "boot 1 changed the data" \
        vm_files_differ "$VM_STATE/before.sha256" "$VM_STATE/after.sha256"
    vm_check "after the finish the data is still the snapshot's" \
        vm_compare_sums "$VM_STATE/before.sha256" "$VM_STATE/boot2-after-poll.sha256"
    vm_check_eq "snap2 unchanged" "$(cat "$VM_STATE/snap2-before")" "$(cat "$VM_STATE/snap2-after")"
    local last=$VM_STATE/boot$TM_LAST/poll.out
    if ((${#TM_KILLS[@]})); then
        # The first kill came right after the finish's commit: the merge is finished in the
        # metadata, the delete is owed; the last boot only sends what is owed.
        vm_check "the last poll took up the owed delete" grep -q 'the kernel.s transaction id is 4, as the metadata.s' "$last"
    else
        vm_check "rewind poll finished the thin merge" grep -q 'thin merge into vg0/thin finished in the metadata' "$last"
        vm_check "rewind poll sent the pool its messages" grep -q 'delete 1 and set_transaction_id 3 4 sent' "$last"
    fi
    if ((${#TM_KILLS[@]})); then
        # A killed boot keeps nothing of its own: what boot 2 saw is on its console.
        vm_check "rewind said it set up the merge (boot 2's console)" \
            grep -q 'rewind: vg0/thin merged: ' "$WORK/boot2.serial.log"
        vm_check "boot 2's poll committed the finish before its kill" \
            grep -q 'thin merge into vg0/thin finished in the metadata' "$WORK/boot2.serial.log"
    else
        tm_check_boot_2
    fi
    local img=$WORK/disk.img lvs tid kernel_tid
    vm_check "vgck vg0" vm_image_lvm "$img" vgck vg0
    lvs=$(vm_image_lvm "$img" lvs -a --noheadings --separator , -o lv_name,lv_attr,origin vg0 | tr -d ' ' | sort)
    echo "$lvs" >"$WORK/lvs-final"
    # The finish removes the old origin's LV, and with it snap2's `origin` (snap2's blocks are
    # its own in the pool; the LV it was taken of is gone), as stock LVM's own finish does.
    vm_check_eq "thin plain, snap1 gone, snap2 kept, its origin cleared (name,attr[1],origin)" \
        "snap2,V,;thin,V," \
        "$(grep -E '^(thin|snap1|snap2),' <<<"$lvs" | awk -F, '{ printf "%s%s,%s,%s", (NR > 1 ? ";" : ""), $1, substr($2, 1, 1), $3 }')"
    vm_check_eq "no tag left on the pool" "" \
        "$(vm_image_lvm "$img" lvs --noheadings -o lv_tags vg0/pool | tr -d ' ')"
    vm_check_eq "thin carries snap1's device id" "2" \
        "$(vm_image_lvm "$img" lvs --noheadings -o thin_id vg0/thin | tr -d ' ')"
    tid=$(vm_image_lvm "$img" lvs --noheadings -o transaction_id vg0/pool | tr -d ' ')
    kernel_tid=$(awk '{ print $4 }' "$VM_STATE/pool-status")
    vm_check_eq "pool transaction id: metadata = kernel" "$tid" "$kernel_tid"
}
