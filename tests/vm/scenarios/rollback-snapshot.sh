# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "rollback-snapshot": `rewind rollback VG/SNAP --mode snapshot` with the snapshot
# mounted. The snapshot's own device becomes the merging one (snapshot -> snapshot-merge on the
# same device: the kernel hands the exception store over), the origin's device becomes an
# error target, and when the merge is done the result carries the snapshot's name and UUID.
# One boot, root disk throttled so the merge is still copying while the mount is read.
# Boot 1: ext4 on vg0/data with files A (checksums); unmount; snapshot dsnap; files changed to
#         B; data unmounted, dsnap mounted at /mnt/snap: checksums before; rollback --mode
#         snapshot: tables checked (the merge paused by `dmsetup suspend` until the watch below
#         has its first sample), `rewind status --watch` prints progress and ends when the
#         merge is done, `rewind status` names the mode, `rewind cancel` refused,
#         stock `lvm lvpoll` mid-merge aborts without writing (seqno unchanged), stock
#         `vgchange -ay` changes no table, checksums read
#         while the kernel still copies; poll killed after its commit, poll again: the mount
#         never moved (same MAJ:MIN), checksums after; stock lvs shows dsnap with its old UUID
#         and no data LV; only vg0-dsnap (linear) and root are left.
# Host:   every checksum equals A; stock vgck/lvs on the image: dsnap with the snapshot's UUID.

VM_BOOTS=1
VM_LVS=(root:1200M data:128M)
VM_INITRAMFS_ARGS=(--lvm --no-systemd)
VM_ROOT_ADD=("${REWIND_BIN:-${VM_REPO_DIR:-}/target/x86_64-unknown-linux-gnu/release/rewind}:/usr/sbin/rewind")

# 8 MiB/s: a 48 MiB merge (read from the COW, write to the origin) takes ~12 s.
vm_boot_disk_opts() { [[ $1 == 1 ]] && echo 'throttling.bps-total=8388608'; }

RS_FILES=6 # files of 8 MiB each

rs_write() {
    local i
    for ((i = 0; i < RS_FILES; i++)); do
        g_fill "/mnt/data/f$i" 8 "rollback-snapshot file $i pattern $1"
    done
    sync
}

rs_status() {
    dmsetup status vg0-dsnap | tee -a "$BOOT_OUT/dm-status"
}

guest_boot_1() {
    local i rc seq0 seq1 majmin uuid watch_pid
    mkdir -p /run/lock/lvm /mnt/data /mnt/snap
    rm -f /run/udev/control # no udevd after switch_root here (see rollback-now.sh)
    g_lvm lvchange -ay vg0/data
    mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 /dev/mapper/vg0-data
    mount /dev/mapper/vg0-data /mnt/data
    rs_write A
    g_sums_cold /mnt/data "$OUT/sums-a"
    umount /mnt/data
    g_lvm lvcreate -s -n dsnap -L 80M --chunksize 64k vg0/data
    mount /dev/mapper/vg0-data /mnt/data
    rs_write B
    g_sums_cold /mnt/data "$OUT/sums-b"
    umount /mnt/data
    uuid=$(g_lvm lvs --noheadings -o lv_uuid vg0/dsnap | tr -d ' ')
    echo "$uuid" >"$OUT/dsnap-uuid"
    mount /dev/mapper/vg0-dsnap /mnt/snap
    majmin=$(findmnt -no MAJ:MIN /mnt/snap)
    echo "$majmin" >"$OUT/majmin-before"
    g_sums_cold /mnt/snap "$OUT/sums-before"

    seq0=$(g_lvm vgs --noheadings -o seqno vg0 | tr -d ' ')
    rewind rollback vg0/dsnap --mode snapshot 2>&1 | tee "$BOOT_OUT/rollback.out"
    grep -q 'merging into vg0/data' "$BOOT_OUT/rollback.out" || g_fail "merge not started"
    # The merge paused (the kernel stops merging while the device is suspended and goes on when
    # it resumes) until `status --watch` has taken its first sample: each sample reads the
    # metadata from the throttled disk behind the merge's own I/O, and a CI run's first sample
    # came when the merge was over (no progress line to check).
    dmsetup suspend vg0-dsnap
    dmsetup table | tee "$BOOT_OUT/dm-table-merging"
    grep -q '^vg0-dsnap: 0 [0-9]* snapshot-merge ' "$BOOT_OUT/dm-table-merging" ||
        g_fail "vg0-dsnap is not the merging device"
    grep -q '^vg0-data: 0 [0-9]* error' "$BOOT_OUT/dm-table-merging" ||
        g_fail "vg0-data is not an error device during the merge"
    # The mount, read from the device while the kernel still copies (first thing after the
    # start; the status before and after the read shows how much of it overlapped).
    rs_status >"$OUT/status-at-start"
    # `status --watch` without a terminal: a line per second until the merge is done.
    timeout 120 rewind status --watch >"$BOOT_OUT/watch.out" 2>&1 &
    watch_pid=$!
    for ((i = 0; i < 300; i++)); do
        [[ -s $BOOT_OUT/watch.out ]] && break
        sleep 0.2
    done
    dmsetup resume vg0-dsnap
    g_sums_cold /mnt/snap "$OUT/sums-during"
    rs_status >"$OUT/status-after-during"
    rc=0
    wait "$watch_pid" || rc=$?
    cat "$BOOT_OUT/watch.out"
    [[ $rc == 0 ]] || g_fail "rewind status --watch exited $rc (124: it did not end)"
    grep -q '^vg0/data <- dsnap: merging, .*% merged' "$BOOT_OUT/watch.out" ||
        g_fail "status --watch printed no progress line"
    grep '^vg0/data <- dsnap' "$BOOT_OUT/watch.out" | tail -n1 | grep -q ': merged; rewind poll drops it' ||
        g_fail "status --watch did not end on the finished merge"
    g_lvm lvs -a -o lv_name,lv_attr,lv_tags,lv_uuid vg0 | tee "$BOOT_OUT/lvs-merging"
    grep -q rewind_merge_as_snapshot "$BOOT_OUT/lvs-merging" || g_fail "stock lvs does not show the mode tag"
    rewind status 2>&1 | tee "$BOOT_OUT/status.out" || true
    grep -q 'snapshot mode: the result is named dsnap' "$BOOT_OUT/status.out" ||
        g_fail "rewind status does not show the mode"
    rc=0
    rewind cancel vg0/dsnap >"$BOOT_OUT/cancel.out" 2>&1 || rc=$?
    cat "$BOOT_OUT/cancel.out"
    if [[ $rc != 1 ]] || ! grep -q 'has started' "$BOOT_OUT/cancel.out"; then
        g_fail "cancel of a running merge was not refused"
    fi
    # Stock LVM's poll on the origin mid-merge: it cannot read progress from the error target
    # and must stop without writing anything.
    rc=0
    timeout 60 lvm lvpoll --polloperation merge --interval 1 vg0/data --config "$G_LVM_CONFIG" \
        >"$BOOT_OUT/lvpoll.out" 2>&1 || rc=$?
    cat "$BOOT_OUT/lvpoll.out"
    g_record stock_lvpoll_rc "$rc"
    # Stock activation mid-merge finds the origin's device active and leaves every table alone.
    dmsetup table | sort >"$BOOT_OUT/tables-before-vgchange"
    g_lvm vgchange -ay vg0 2>&1 | tee "$BOOT_OUT/vgchange.out" || true
    dmsetup table | sort >"$BOOT_OUT/tables-after-vgchange"
    cmp -s "$BOOT_OUT/tables-before-vgchange" "$BOOT_OUT/tables-after-vgchange" ||
        g_fail "stock vgchange -ay changed a table mid-merge"
    seq1=$(g_lvm vgs --noheadings -o seqno vg0 | tr -d ' ')
    g_record seqno_flag_then_stock_poll "$seq0 $seq1"
    [[ $seq1 == $((seq0 + 1)) ]] || g_fail "seqno $seq0 -> $seq1: only rewind's flag commit expected"

    rc=0
    REWIND_FAILPOINT=poll-after-commit rewind poll -v >"$BOOT_OUT/poll-killed.out" 2>&1 || rc=$?
    cat "$BOOT_OUT/poll-killed.out"
    [[ $rc == 137 ]] || g_fail "poll did not stop at its failpoint (exit $rc)"
    g_lvm lvs -a --noheadings -o lv_name,lv_uuid vg0 | tee "$BOOT_OUT/lvs-killed"
    dmsetup table | tee "$BOOT_OUT/dm-table-killed"
    if ! grep -qw dsnap "$BOOT_OUT/lvs-killed" || grep -qw data "$BOOT_OUT/lvs-killed"; then
        g_fail "after the killed poll the metadata should hold dsnap and no data LV"
    fi
    grep -q '^vg0-dsnap: 0 [0-9]* snapshot-merge ' "$BOOT_OUT/dm-table-killed" ||
        g_fail "vg0-dsnap should still be snapshot-merge after a kill right after the commit"
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
    findmnt -no MAJ:MIN /mnt/snap >"$OUT/majmin-after"
    g_sums_cold /mnt/snap "$OUT/sums-after"
    # The volume stays usable: a write and read back through the same mount.
    echo written-after >/mnt/snap/after
    sync
    umount /mnt/snap
    mount /dev/vg0/dsnap /mnt/snap 2>/dev/null || mount /dev/mapper/vg0-dsnap /mnt/snap
    grep -q written-after /mnt/snap/after || g_fail "write after the merge lost"
    umount /mnt/snap
    g_lvm lvs -a --noheadings -o lv_name,lv_uuid vg0 | tee "$BOOT_OUT/lvs-end"
    g_lvm vgck vg0
}

host_check() {
    local s img=$WORK/disk.img lvs
    for s in before during after; do
        vm_check "mounted snapshot $s the merge equals A" \
            cmp -s "$VM_STATE/sums-a" "$VM_STATE/sums-$s"
    done
    vm_check "pattern B differed" vm_files_differ "$VM_STATE/sums-a" "$VM_STATE/sums-b"
    vm_check_eq "the mount never moved" "$(cat "$VM_STATE/majmin-before")" "$(cat "$VM_STATE/majmin-after")"
    # At the start the kernel had not finished: allocated != metadata sectors.
    # shellcheck disable=SC2016 # awk's own fields
    vm_check "the merge was still copying when the during-read started" \
        awk '{ split($4, a, "/"); exit !(a[1] != $5) }' "$VM_STATE/status-at-start"
    echo "status after the during-checksums: $(cat "$VM_STATE/status-after-during")"
    vm_check "stock lvpoll mid-merge aborted (failed at once, no timeout) rather than finishing" \
        bash -c "rc=$(vm_guest_value stock_lvpoll_rc); [[ \$rc != 0 && \$rc != 124 ]]"
    vm_check "vgck vg0" vm_image_lvm "$img" vgck vg0
    lvs=$(vm_image_lvm "$img" lvs -a --noheadings --separator , -o lv_name,lv_uuid,lv_attr,segtype vg0 | tr -d ' ')
    echo "$lvs" >"$WORK/lvs-final"
    vm_check_eq "LVs left in vg0 (name,uuid,attr[1-4],segtype)" \
        "dsnap,$(cat "$VM_STATE/dsnap-uuid"),-wi-,linear;root" \
        "$(sort <<<"$lvs" | awk -F, '{ printf "%s%s", (NR > 1 ? ";" : ""), ($1 == "root" ? $1 : $1 "," $2 "," substr($3, 1, 4) "," $4) }')"
    vm_check "poll committed the result under the snapshot's name" \
        grep -q 'now carries the name dsnap' "$VM_STATE/boot1/poll-killed.out"
}
