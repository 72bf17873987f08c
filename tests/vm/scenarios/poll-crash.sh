# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "poll-crash": `rewind poll` killed after its metadata commit, and killed after the
# origin's reload, converges when run again (invariant 8), with the real kernel. One boot.
# Merge 1: rollback vg0/data to dsnap; poll exits at failpoint poll-after-commit: stock lvs has
#          no dsnap, but vg0-data is still snapshot-merge; poll again: plain, no leftovers.
# Merge 2: the same with failpoint poll-after-reload: vg0-data is linear but -real/-cow/dsnap
#          devices are left; poll again removes them.
# Each time the data must equal what it was when the snapshot was taken.

VM_BOOTS=1
VM_LVS=(root:1200M data:256M)
VM_INITRAMFS_ARGS=(--lvm --no-systemd)
VM_ROOT_ADD=("${REWIND_BIN:-${VM_REPO_DIR:-}/target/x86_64-unknown-linux-gnu/release/rewind}:/usr/sbin/rewind")

PC_MIB=64

# pc_round N FAILPOINT: snapshot, change, roll back, poll killed at FAILPOINT, poll again.
pc_round() {
    local n=$1 fp=$2 a rc
    g_fill_dev /dev/mapper/vg0-data "$PC_MIB" "poll-crash round $n pattern A"
    a=$(g_sum_dev /dev/mapper/vg0-data "$PC_MIB")
    g_lvm lvcreate -s -n dsnap -L 100M --chunksize 64k vg0/data
    g_fill_dev /dev/mapper/vg0-data "$PC_MIB" "poll-crash round $n pattern B"
    rewind rollback vg0/dsnap | tee "$BOOT_OUT/rollback$n.out"
    grep -q 'back now' "$BOOT_OUT/rollback$n.out" || g_fail "round $n: merge not started"
    rc=0
    REWIND_FAILPOINT=$fp rewind poll -v >"$BOOT_OUT/poll$n-killed.out" 2>&1 || rc=$?
    cat "$BOOT_OUT/poll$n-killed.out"
    [[ $rc == 137 ]] || g_fail "round $n: poll did not stop at $fp (exit $rc)"
    dmsetup table | tee "$BOOT_OUT/dm-table$n-killed"
    g_lvm lvs -a --noheadings -o lv_name vg0 | tee "$BOOT_OUT/lvs$n-killed"
    if grep -qw dsnap "$BOOT_OUT/lvs$n-killed"; then
        g_fail "round $n: the commit did not happen before $fp"
    fi
    case $fp in
    poll-after-commit)
        grep -q '^vg0-data: .* snapshot-merge ' "$BOOT_OUT/dm-table$n-killed" ||
            g_fail "round $n: data is not merging any more after $fp" ;;
    poll-after-reload)
        grep -q '^vg0-data: 0 [0-9]* linear ' "$BOOT_OUT/dm-table$n-killed" ||
            g_fail "round $n: data not reloaded before $fp"
        grep -q -e '-cow:' "$BOOT_OUT/dm-table$n-killed" ||
            g_fail "round $n: no leftover device after $fp" ;;
    esac
    rewind poll -v 2>&1 | tee "$BOOT_OUT/poll$n-again.out"
    dmsetup table | tee "$BOOT_OUT/dm-table$n-end"
    grep -q '^vg0-data: 0 [0-9]* linear ' "$BOOT_OUT/dm-table$n-end" ||
        g_fail "round $n: data is not plain linear after the second poll"
    if grep -q -e '-cow:' -e '-real:' -e '^vg0-dsnap:' "$BOOT_OUT/dm-table$n-end"; then
        g_fail "round $n: snapshot devices left after the second poll"
    fi
    [[ $(g_sum_dev /dev/mapper/vg0-data "$PC_MIB") == "$a" ]] || g_fail "round $n: data is not what it was at the snapshot"
    g_lvm vgck vg0
    echo "round $n ok" >>"$OUT/rounds"
}

guest_boot_1() {
    mkdir -p /run/lock/lvm
    # No udevd in this guest; the initramfs udevd's control socket is stale (see poll-finish).
    rm -f /run/udev/control
    g_lvm lvchange -ay vg0/data
    pc_round 1 poll-after-commit
    pc_round 2 poll-after-reload
}

host_check() {
    vm_check_eq "both crash rounds converged" "round 1 ok;round 2 ok" "$(paste -sd';' "$VM_STATE/rounds")"
    local img=$WORK/disk.img lvs
    vm_check "vgck vg0" vm_image_lvm "$img" vgck vg0
    lvs=$(vm_image_lvm "$img" lvs -a --noheadings --separator , -o lv_name,lv_attr,segtype vg0 | tr -d ' ')
    vm_check_eq "LVs left in vg0 (name,attr[1-4],segtype)" "data,-wi-,linear;root,-wi-,linear" \
        "$(sort <<<"$lvs" | awk -F, '{ printf "%s%s,%s,%s", (NR > 1 ? ";" : ""), $1, substr($2, 1, 4), $3 }')"
}
