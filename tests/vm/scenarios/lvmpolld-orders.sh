# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "lvmpolld-orders": stock lvmpolld and `rewind poll` on the same live merge, in both
# orders (invariant 6: whichever finishes first, the other notices and stops). One boot; the
# shell-init root has no systemd, so lvmpolld is started by hand with a config that uses it.
# Each round: vg0/data (unused) gets pattern A, snapshot dsnap, pattern B, `rewind rollback`
# starts the merge at once; LVM is asked to poll it (`lvchange --poll y`, handed to lvmpolld).
# Round 1 (lvmpolld first): polling interval 1 s; wait until stock lvs has no dsnap, then
#         `rewind poll` must find nothing to finish (exit 0, no commit of its own).
# Round 2 (rewind first): polling interval 30 s; a first `rewind poll` dies while the kernel
#         still merges (failpoint poll-waiting: exits as if killed once it has seen the merge
#         copying): nothing written, the merge goes on; the next `rewind poll`
#         finishes (its commit), then lvmpolld's lvpoll wakes, must notice and end without
#         error or another write.
# Both: data linear, no -real/-cow/dsnap device, content = A, vgck clean. The final metadata
# of the two rounds (vgcfgbackup without seqno, times, host and description) must be equal.

VM_BOOTS=1
VM_LVS=(root:1200M data:128M)
VM_INITRAMFS_ARGS=(--lvm --no-systemd)
VM_ROOT_ADD=("${REWIND_BIN:-${VM_REPO_DIR:-}/target/x86_64-unknown-linux-gnu/release/rewind}:/usr/sbin/rewind")

LO_MIB=24
# Unthrottled, a merge ends before lvpoll's first look; at 4 MiB/s a 24 MiB one takes ~12 s.
vm_boot_disk_opts() { [[ $1 == 1 ]] && echo 'throttling.bps-total=4194304'; }
LO_CONF=/run/lvmconf
LO_PID='' # lvmpolld

# LVM with lvmpolld, in a guest without udevd; INTERVAL = activation/polling_interval.
lo_config() {
    mkdir -p "$LO_CONF"
    cat >"$LO_CONF/lvm.conf" <<CONF
global { use_lvmpolld = 1 }
activation { udev_sync = 0 udev_rules = 0 monitoring = 0 polling_interval = $1 }
devices { obtain_device_list_from_udev = 0 }
backup { backup = 0 archive = 0 }
CONF
}

lo_lvm() {
    LVM_SYSTEM_DIR=$LO_CONF lvm "$@"
}

# The VG's metadata without what changes on every write.
lo_meta() {
    lo_lvm vgcfgbackup -q -f "$1.raw" vg0 >/dev/null
    grep -v -E '^\s*(seqno|creation_time|creation_host|description|contents|version)\b|^# ' "$1.raw" >"$1"
}

# lo_round N: snapshot, change, rollback (merge starts now), LVM asked to poll.
lo_start() {
    local n=$1 a
    g_fill_dev /dev/mapper/vg0-data "$LO_MIB" "lvmpolld-orders round $n pattern A"
    a=$(g_sum_dev /dev/mapper/vg0-data "$LO_MIB")
    echo "$a" >"$OUT/a$n.sum"
    lo_lvm lvcreate -q -s -n dsnap -L 40M --chunksize 64k vg0/data
    g_fill_dev /dev/mapper/vg0-data "$LO_MIB" "lvmpolld-orders round $n pattern B"
    rewind rollback vg0/dsnap 2>&1 | tee "$BOOT_OUT/rollback$n.out"
    grep -q 'back now' "$BOOT_OUT/rollback$n.out" || g_fail "round $n: merge not started"
    lo_lvm lvchange --poll y vg0/data 2>&1 | tee "$BOOT_OUT/lvchange-poll$n.out"
    # LVM handed the poll to lvmpolld: an lvpoll child of lvmpolld watches vg0/data.
    ps -eo pid,ppid,args | tee "$BOOT_OUT/ps$n" | grep -E 'lvmpolld|lvpoll' || true
    awk -v d="$LO_PID" '$2 == d && /lvpoll/ && /vg0\/data/ { found = 1 } END { exit !found }' "$BOOT_OUT/ps$n" ||
        g_fail "round $n: no lvpoll child of lvmpolld is polling vg0/data"
}

lo_end_state() {
    local n=$1
    dmsetup table | tee "$BOOT_OUT/dm-table$n-end"
    grep -q '^vg0-data: 0 [0-9]* linear ' "$BOOT_OUT/dm-table$n-end" ||
        g_fail "round $n: data is not plain linear"
    if grep -q -e '-cow:' -e '-real:' -e '^vg0-dsnap:' "$BOOT_OUT/dm-table$n-end"; then
        g_fail "round $n: snapshot devices left"
    fi
    g_sum_dev /dev/mapper/vg0-data "$LO_MIB" >"$OUT/end$n.sum"
    [[ $(cat "$OUT/end$n.sum") == $(cat "$OUT/a$n.sum") ]] || g_fail "round $n: data is not pattern A"
    lo_lvm vgck vg0
    lo_meta "$OUT/meta$n"
    lo_lvm vgs --noheadings -o seqno vg0 | tr -d ' ' >"$OUT/seqno$n"
}

guest_boot_1() {
    local rc i seq
    mkdir -p /run/lock/lvm /run/lvm
    rm -f /run/udev/control # no udevd after switch_root here (see rollback-now.sh)
    lo_config 1
    LVM_SYSTEM_DIR=$LO_CONF lvmpolld -f -t 0 -l all >"$BOOT_OUT/lvmpolld.log" 2>&1 &
    LO_PID=$!
    for ((i = 0; i < 50; i++)); do
        [[ -S /run/lvm/lvmpolld.socket ]] && break
        sleep 0.2
    done
    [[ -S /run/lvm/lvmpolld.socket ]] || g_fail "lvmpolld did not start"
    lo_lvm lvchange -ay vg0/data
    lo_meta "$OUT/meta0"

    # Round 1: lvmpolld finishes first.
    lo_start 1
    local lvs
    for ((i = 0; i < 120; i++)); do
        # lvs can fail while lvpoll holds the VG (a failed lvs is not "dsnap gone").
        if lvs=$(lo_lvm lvs -a --noheadings -o lv_name vg0) && ! grep -qw dsnap <<<"$lvs"; then
            break
        fi
        sleep 1
    done
    g_record round1_lvm_finished_after_s "$i"
    lo_lvm lvs -a --noheadings -o lv_name vg0 | grep -qw dsnap && g_fail "round 1: lvmpolld did not finish the merge"
    seq=$(lo_lvm vgs --noheadings -o seqno vg0 | tr -d ' ')
    rc=0
    rewind poll -v >"$BOOT_OUT/poll1.out" 2>&1 || rc=$?
    cat "$BOOT_OUT/poll1.out"
    [[ $rc == 0 ]] || g_fail "round 1: rewind poll exited $rc after lvmpolld finished"
    grep -q 'metadata committed' "$BOOT_OUT/poll1.out" && g_fail "round 1: rewind committed after LVM had finished"
    [[ $(lo_lvm vgs --noheadings -o seqno vg0 | tr -d ' ') == "$seq" ]] || g_fail "round 1: rewind wrote metadata"
    lo_end_state 1

    # Round 2: rewind finishes first; lvmpolld's lvpoll wakes up 30 s later.
    lo_config 30
    lo_start 2
    # The poller killed during the merge (issue 5), once it has seen the kernel still copying.
    seq=$(lo_lvm vgs --noheadings -o seqno vg0 | tr -d ' ')
    rc=0
    REWIND_FAILPOINT=poll-waiting rewind poll -v >"$BOOT_OUT/poll2-killed.out" 2>&1 || rc=$?
    cat "$BOOT_OUT/poll2-killed.out"
    lo_lvm vgs --noheadings -o seqno vg0 | tr -d ' ' >"$OUT/seqno-at-kill"
    echo "$seq" >"$OUT/seqno-before-kill"
    [[ $rc == 137 ]] || g_fail "round 2: the first rewind poll did not die during the merge (exit $rc)"
    rc=0
    rewind poll -v >"$BOOT_OUT/poll2.out" 2>&1 || rc=$?
    cat "$BOOT_OUT/poll2.out"
    [[ $rc == 0 ]] || g_fail "round 2: rewind poll exited $rc"
    grep -q 'metadata committed without the snapshot' "$BOOT_OUT/poll2.out" ||
        g_fail "round 2: rewind did not finish first"
    seq=$(lo_lvm vgs --noheadings -o seqno vg0 | tr -d ' ')
    # lvmpolld's child for this LV: wait until it has woken up and ended.
    for ((i = 0; i < 90; i++)); do
        pgrep -f 'lvpoll' >/dev/null || break
        sleep 1
    done
    g_record round2_lvpoll_ended_after_s "$i"
    pgrep -f 'lvpoll' >/dev/null && g_fail "round 2: lvmpolld's lvpoll is still running"
    [[ $(lo_lvm vgs --noheadings -o seqno vg0 | tr -d ' ') == "$seq" ]] || g_fail "round 2: LVM wrote after rewind finished"
    lo_end_state 2
    cat "$BOOT_OUT/lvmpolld.log" || true
}

host_check() {
    local n
    for n in 1 2; do
        vm_check_eq "round $n: data equals pattern A" "$(cat "$VM_STATE/a$n.sum")" "$(cat "$VM_STATE/end$n.sum")"
    done
    vm_check "the final metadata of both orders is the same" cmp "$VM_STATE/meta1" "$VM_STATE/meta2"
    vm_check "and the same as before any snapshot" cmp "$VM_STATE/meta0" "$VM_STATE/meta1"
    vm_check "vgck vg0" vm_image_lvm "$WORK/disk.img" vgck vg0
    vm_check "round 1: LVM (not rewind) finished" bash -c "! grep -q 'metadata committed' '$VM_STATE/boot1/poll1.out'"
    vm_check "round 2: rewind finished" grep -q 'metadata committed without the snapshot' "$VM_STATE/boot1/poll2.out"
    vm_check "round 2: the first rewind poll died while the kernel still merged (sectors left > 0)" \
        grep -Eq 'failpoint poll-waiting: exiting as if killed; vg0-data: [1-9][0-9]* sectors left' "$VM_STATE/boot1/poll2-killed.out"
    vm_check_eq "round 2: the killed poll wrote no metadata (seqno)" \
        "$(cat "$VM_STATE/seqno-before-kill")" "$(cat "$VM_STATE/seqno-at-kill")"
}
