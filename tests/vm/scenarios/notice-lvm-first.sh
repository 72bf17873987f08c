# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "notice-lvm-first" (issues 21/14: "rollback complete" when stock LVM2 finishes the
# merge first; invariant 6). Shell-init root, LVM2 in the initramfs beside rewind.
# Boot 1: vg0/data gets pattern A; the snapshot set s1 of it (`rewind snapshot`); pattern B.
# Boot 2: (rd.rewind=s1) rewind early flags the set and sets up data's merge, and leaves its
#         record under /run/rewind/.merges (kept across switch_root). In the root, stock
#         lvmpolld is asked to poll the merge and finishes it (the snapshot and its set tag gone)
#         before `rewind poll` runs. `rewind poll` then has no merge to finish, but from the
#         record: one commit (seqno + 1) that tags vg0/data rewind_rolled_back_TIME_s1, the
#         journal message and the login note "rollback complete", `rewind status` names s1, the
#         record is dropped; a second `rewind poll` writes nothing.
# Host:   data = A; stock vgck clean; stock lvs: data's tag names s1, no snapshot left.

VM_SCENARIO_SUITE=long
VM_BOOTS=2
VM_LVS=(root:1200M data:128M)
VM_INITRAMFS_ARGS=(--lvm --no-systemd --modules-dir "${VM_REPO_DIR:-}/dracut-module")
VM_CMDLINE='root=/dev/mapper/vg0-root rd.lvm.lv=vg0/root ro printk.devkmsg=on'
VM_ROOT_ADD=(
    "${VM_REPO_DIR:-}/target/x86_64-unknown-linux-gnu/release/rewind:/usr/sbin/rewind"
    "${VM_REPO_DIR:-}/initramfs/rewind-early:/usr/lib/rewind/rewind-early"
)

NL_MIB=24
NL_CONF=/run/lvmconf

vm_boot_args() { [[ $1 == 2 ]] && echo 'rd.rewind=s1'; }
vm_boot_title() {
    case $1 in
    1) echo "pattern A, snapshot set s1 of vg0/data, pattern B" ;;
    2) echo "rd.rewind=s1: rewind early merges; lvmpolld finishes first; rewind poll notices" ;;
    esac
}

# LVM with lvmpolld, in a guest without udevd (as in lvmpolld-orders.sh).
nl_setup() {
    mkdir -p "$NL_CONF" /run/lock/lvm /run/lvm
    rm -f /run/udev/control
    cat >"$NL_CONF/lvm.conf" <<CONF
global { use_lvmpolld = 1 }
activation { udev_sync = 0 udev_rules = 0 monitoring = 0 polling_interval = 1 }
devices { obtain_device_list_from_udev = 0 }
backup { backup = 0 archive = 0 }
CONF
    export LVM_SYSTEM_DIR=$NL_CONF
}

nl_seqno() {
    lvm vgs --noheadings -o seqno vg0 | tr -d ' '
}

guest_boot_1() {
    nl_setup
    lvm lvchange -ay vg0/data
    g_fill_dev /dev/mapper/vg0-data "$NL_MIB" "notice-lvm-first pattern A"
    g_sum_dev /dev/mapper/vg0-data "$NL_MIB" >"$OUT/a.sum"
    rewind snapshot --name s1 --size 40M vg0/data 2>&1 | tee "$BOOT_OUT/snapshot.out"
    lvm lvs -a -o lv_name,lv_attr,lv_tags vg0 | tee "$BOOT_OUT/lvs"
    grep -q 'rewind_set_s1' "$BOOT_OUT/lvs" || g_fail "no set s1"
    g_fill_dev /dev/mapper/vg0-data "$NL_MIB" "notice-lvm-first pattern B"
    g_sum_dev /dev/mapper/vg0-data "$NL_MIB" >"$OUT/b.sum"
    lvm lvchange -an vg0/data
}

guest_boot_2() {
    local i pid rc lvs seq
    nl_setup
    dmesg | grep 'rewind:' >"$BOOT_OUT/rewind-early.log" || true
    dmsetup table | tee "$BOOT_OUT/dm-table-at-init"
    # rewind early's record, carried over switch_root in /run.
    cat /run/rewind/.merges/*.json >"$OUT/record.json" 2>/dev/null || g_fail "no merge record in /run/rewind/.merges"
    cat "$OUT/record.json"
    lvmpolld -f -t 0 -l all >"$BOOT_OUT/lvmpolld.log" 2>&1 &
    pid=$!
    for ((i = 0; i < 50; i++)); do
        [[ -S /run/lvm/lvmpolld.socket ]] && break
        sleep 0.2
    done
    [[ -S /run/lvm/lvmpolld.socket ]] || g_fail "lvmpolld did not start"
    lvm lvchange --poll y vg0/data 2>&1 | tee "$BOOT_OUT/lvchange-poll.out"
    for ((i = 0; i < 120; i++)); do
        # lvs can fail while lvpoll holds the VG (a failed lvs is not "snapshot gone").
        if lvs=$(lvm lvs -a --noheadings -o lv_name vg0) && ! grep -q 'data\.s1' <<<"$lvs"; then
            break
        fi
        sleep 1
    done
    g_record lvm_finished_after_s "$i"
    lvm lvs -a --noheadings -o lv_name vg0 | grep -q 'data\.s1' && g_fail "lvmpolld did not finish the merge"
    for ((i = 0; i < 30; i++)); do
        pgrep -f lvpoll >/dev/null || break
        sleep 1
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    seq=$(nl_seqno)
    echo "$seq" >"$OUT/seqno-before-poll"
    rc=0
    rewind poll -v >"$BOOT_OUT/poll.out" 2>&1 || rc=$?
    cat "$BOOT_OUT/poll.out"
    echo "$rc" >"$OUT/poll.rc"
    nl_seqno >"$OUT/seqno-after-poll"
    cat /run/motd.d/rewind >"$OUT/motd" 2>/dev/null || true
    rewind status >"$OUT/status" 2>&1 || true
    cat "$OUT/status"
    ls -A /run/rewind/.merges >"$OUT/records-after" 2>/dev/null || true
    rc=0
    rewind poll -v >"$BOOT_OUT/poll-again.out" 2>&1 || rc=$?
    echo "$rc" >"$OUT/poll-again.rc"
    nl_seqno >"$OUT/seqno-after-again"
    lvm lvs -a --noheadings -o lv_name,lv_tags vg0 | tee "$OUT/lvs-end"
    dmsetup table | tee "$BOOT_OUT/dm-table-end"
    g_sum_dev /dev/mapper/vg0-data "$NL_MIB" >"$OUT/end.sum"
    lvm vgck vg0
}

host_check() {
    local before
    vm_check "boot 2: rewind early set up data's merge" grep -q 'vg0/data merging' "$VM_STATE/boot2/rewind-early.log"
    vm_check "boot 2: the record names vg0/data, its snapshot data.s1 and the set s1" \
        bash -c "grep -q '\"origin\": \"data\"' '$VM_STATE/record.json' && grep -q '\"snapshot\": \"data.s1\"' '$VM_STATE/record.json' && grep -q '\"set\": \"s1\"' '$VM_STATE/record.json'"
    vm_check "boot 2: stock LVM's lvpoll (lvmpolld) finished the merge" \
        grep -q 'Merge of snapshot into logical volume vg0/data has finished' "$VM_STATE/boot2/lvmpolld.log"
    vm_check "boot 2: rewind poll did not" \
        bash -c "! grep -q 'metadata committed without' '$VM_STATE/boot2/poll.out'"
    vm_check_eq "boot 2: rewind poll exit status" 0 "$(cat "$VM_STATE/poll.rc")"
    vm_check "boot 2: the journal message" \
        grep -q 'rollback complete: vg0/data is back at snapshot set s1 (its merge was finished by lvm)' "$VM_STATE/boot2/poll.out"
    vm_check "boot 2: the login note" \
        grep -q 'rollback complete: vg0/data is back at snapshot set s1' "$VM_STATE/motd"
    vm_check "boot 2: rewind status names the set" grep -q 'vg0/data: rolled back to snapshot set s1' "$VM_STATE/status"
    before=$(cat "$VM_STATE/seqno-before-poll")
    vm_check_eq "boot 2: one metadata commit (seqno)" "$((before + 1))" "$(cat "$VM_STATE/seqno-after-poll")"
    vm_check_eq "boot 2: the record dropped" "" "$(cat "$VM_STATE/records-after")"
    vm_check_eq "boot 2: a second rewind poll exits 0" 0 "$(cat "$VM_STATE/poll-again.rc")"
    vm_check_eq "boot 2: and writes nothing" "$((before + 1))" "$(cat "$VM_STATE/seqno-after-again")"
    vm_check "boot 2: stock lvs: data tagged rolled back to s1, no snapshot left" \
        bash -c "grep -Eq '^ *data +rewind_rolled_back_[0-9]+_s1 *\$' '$VM_STATE/lvs-end' && ! grep -q 'data\\.s1' '$VM_STATE/lvs-end'"
    vm_check "pattern B differs from A" bash -c "! cmp -s '$VM_STATE/a.sum' '$VM_STATE/b.sum'"
    vm_check_eq "data is back at pattern A" "$(cat "$VM_STATE/a.sum")" "$(cat "$VM_STATE/end.sum")"
    vm_check "vgck vg0" vm_image_lvm "$WORK/disk.img" vgck vg0
}
