# shellcheck shell=bash disable=SC2034,SC2153 # VM_* settings are read by tests/vm/run.sh; VM_BOOT, OUT are set by vm-init
# The reboot-to-rollback story, shared by the scenarios that tell it through different
# initramfs images and roots. A scenario sets what differs, then sources this file:
#
#   VM_INITRAMFS_ARGS, VM_ROOT_INIT, VM_SCENARIO_SUITE   as in any scenario (the image, the root)
#   RB_POLL=step    the step runs `rewind poll` itself (a shell-init root: nothing else would)
#   RB_POLL=unit    a systemd root with rewind-poll.service installed and enabled by install.sh;
#                   the step waits for the unit (or stock LVM's lvmpolld) to finish the merge
#   RB_RESCUE=0     boot 1 flags the rollback with `rewind rollback`; boot 2 rolls back
#   RB_RESCUE=1     boot 1's "bad upgrade" also breaks the init the kernel execs; nothing is
#                   flagged. Boot 2 (no rd.rewind) must panic ("Attempted to kill init"); boot 3
#                   with `rd.rewind=vg0/pre` typed at boot rolls back and comes up.
#   RB_SET=1        (a GRUB guest, VM_GRUB_BOOT) boot 1 takes the snapshot set `pre` with
#                   `rewind snapshot` (member vg0/root.pre) instead of a plain snapshot, with
#                   /boot mounted, then runs the guest's update-grub (42_rewind writes the
#                   "Roll back with rewind" submenu); the rescue boot picks the set's entry in
#                   GRUB's menu (the scenario's vm_boot_keys) instead of typing rd.rewind.
#   RB_MERGE_AT_INIT=required   (step only) root must still be a snapshot-merge table when the
#                   root's init runs. `any`: stock LVM in the initramfs may have finished the
#                   merge already (initramfs-tools: 69-lvm.rules' `vgchange -aay` polls it in
#                   the background); the guest records which (merge_at_init) and the LVM
#                   processes still running (a poll that outlived switch_root).
#   RB_LVM_ORDER=1  a dracut image with the lvm module and vm-images/dracut (99vmtime, which logs
#                   each initramfs lvm command to kmsg): the host checks from the kernel's
#                   timestamps that rewind had finished before LVM2's first activation command
#                   started, and that this command succeeded (it found root set up and ready).
#
#   # shellcheck source=tests/vm/lib/rollback-story.sh
#   . "${TESTS_VM_DIR:-/run/xchg/harness}/lib/rollback-story.sh"
#
# Host:   known data in /var/lib/rb on the new disk; its checksums stay on the host. rewind is
#         installed into the disk's root with `install.sh DESTDIR=` (binary, generator pieces,
#         rewind-poll.service enabled), as on a real system.
# Boot 1: a snapshot `pre`, then the "bad upgrade" overwrites the data.
# Boot R: (the rollback boot) the old data at once; the merge is finished (by rewind poll, or in
#         a systemd root by whichever of rewind-poll.service and stock lvmpolld gets there first);
#         root ends as plain linear with no snapshot devices.
# Host:   the old data in boot R; stock vgck, lvs and vgcfgbackup on the image: a plain root,
#         no snapshot, no merge flag left.

RB_POLL=${RB_POLL:-step}
RB_RESCUE=${RB_RESCUE:-0}
RB_MERGE_AT_INIT=${RB_MERGE_AT_INIT:-required}
RB_LVM_ORDER=${RB_LVM_ORDER:-0}
RB_SET=${RB_SET:-0}
# The snapshot's LV: a plain one, or the set's member.
RB_SNAP=$( ((RB_SET)) && echo root.pre || echo pre)
RB_DIR=/var/lib/rb
RB_FILES=3 # of 10 MiB each
# The boot that rolls back.
RB_BOOT=$((RB_RESCUE ? 3 : 2))

VM_BOOTS=$RB_BOOT
VM_LVS=(root:1200M)
VM_ROOT_ADD=(
    "${VM_REPO_DIR:-}/target/x86_64-unknown-linux-gnu/release/rewind:/usr/sbin/rewind"
    "${VM_REPO_DIR:-}/initramfs/rewind-early:/usr/lib/rewind/rewind-early"
)

# What boot N does, for the progress lines (tests/vm/run.sh, vm-images/demo.sh).
vm_boot_title() {
    case $((RB_RESCUE)):$1 in
    0:1) echo "a snapshot vg0/pre, the bad upgrade, rewind rollback vg0/pre" ;;
    1:1) echo "a snapshot vg0/pre, then a bad upgrade that also breaks the init" ;;
    1:2) echo "the broken init panics (nothing asked for a rollback)" ;;
    *) echo "the rollback, set up before root is mounted; then the merge is finished" ;;
    esac
}

if ((RB_RESCUE)); then
    # Boot 2 must not reboot by itself after the panic (panic=1 would race the kill).
    vm_boot_args() {
        case $1 in
        2) echo 'panic=0' ;;
        3) echo 'rd.rewind=vg0/pre' ;;
        *) return 1 ;;
        esac
    }
    vm_boot_kill() { [[ $1 == 2 ]] && echo 'on Attempted to kill init'; }
fi

# shellcheck source=tests/vm/lib/known-data.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/known-data.sh"

host_prepare() {
    (cd "$VM_REPO_DIR" && cargo build --release --quiet)
    local inst=$WORK/rb-install f
    known_data rb "$RB_DIR" "$RB_FILES" "before the upgrade"
    # rewind as install.sh installs it (the poller's unit enabled by its symlink).
    sh "$VM_REPO_DIR/install.sh" DESTDIR="$inst" >"$WORK/install.log"
    while IFS= read -r f; do
        VM_DISK_ADD+=("$inst$f:$f")
    done < <(cd "$inst" && find . \( -type f -o -type l \) | sed 's/^\.//' | sort)
}

# Stock LVM as the root runs it: with udevd and lvmpolld in a systemd root; without (g_lvm's
# configuration) under the shell init.
rb_lvm() {
    if [[ ${VM_ROOT_INIT:-shell} == systemd ]]; then
        lvm "$@"
    else
        g_lvm "$@"
    fi
}

# What rewind-poll.service did this boot (systemd root only).
rb_record_unit() {
    systemctl is-enabled rewind-poll.service >"$OUT/unit-enabled.$VM_BOOT" || true
    systemctl show rewind-poll.service -p ActiveState -p Result -p ExecMainStatus \
        -p ExecMainStartTimestampMonotonic -p ExecMainExitTimestampMonotonic -p NRestarts |
        tee "$OUT/unit.$VM_BOOT"
    journalctl -b -o short-monotonic --no-pager -u rewind-poll.service >"$OUT/unit-journal.$VM_BOOT" || true
}

guest_boot_1() {
    local i
    # The shell-init guest has no udevd after switch_root; the initramfs's socket is stale.
    [[ ${VM_ROOT_INIT:-shell} == systemd ]] || rm -f /run/udev/control
    if [[ ${VM_ROOT_INIT:-shell} == systemd ]]; then
        # An ordinary boot: the poller ran and exited at once (no merge).
        rb_wait_unit
        rb_record_unit
    fi
    if ((RB_SET)); then
        rb_take_set
    else
        rb_lvm lvcreate -s -n pre -L 100M --chunksize 64k vg0/root
    fi
    for ((i = 1; i <= RB_FILES; i++)); do
        g_fill "$RB_DIR/f$i" 10 "after the bad upgrade: file $i"
    done
    echo "after the bad upgrade" >"$RB_DIR/marker"
    sync
    known_sums "$RB_DIR" >"$OUT/after.sha256"
    if ((RB_RESCUE)); then
        # The upgrade also breaks the init the kernel execs: it now exits at once, so PID 1
        # dies ("Attempted to kill init"). A rename: this very script is being read by bash.
        local init=/usr/local/sbin/vm-init
        cp /bin/false "$init.new"
        mv "$init.new" "$init"
        sync
        sha256sum "$init" | tee "$OUT/broken-init.sha256"
        return 0
    fi
    rewind rollback vg0/pre 2>&1 | tee "$OUT/rollback.out"
    rb_lvm lvs -a --noheadings -o lv_name,lv_merging vg0 | tee "$OUT/lvs-flagged"
    grep -q 'pre.*merging' "$OUT/lvs-flagged" || g_fail "rewind rollback did not flag the merge"
}

# RB_SET: the set `pre` of the root, taken with /boot mounted (so rewind writes the menu file),
# then the guest's own update-grub; what GRUB will read is kept in $OUT.
rb_take_set() {
    mount /boot
    rewind snapshot --name pre --description "before the bad upgrade" --size 100M 2>&1 |
        tee "$OUT/snapshot.out"
    update-grub 2>&1 | tee "$OUT/update-grub.out"
    cp /boot/grub/grub.cfg "$OUT/grub.cfg"
    cp /boot/grub/rewind.cfg "$OUT/rewind.cfg"
    rewind list --json >"$OUT/list.json"
    umount /boot
}

# Wait (bounded) until rewind-poll.service is no longer starting or running.
rb_wait_unit() {
    local i state
    for ((i = 0; i < 300; i++)); do
        state=$(systemctl show -p ActiveState --value rewind-poll.service)
        case $state in
        activating | active | reloading | deactivating) sleep 1 ;;
        *) return 0 ;;
        esac
    done
    g_fail "rewind-poll.service still $state after 300 s"
}

rb_rollback_boot() {
    [[ ${VM_ROOT_INIT:-shell} == systemd ]] || rm -f /run/udev/control
    dmesg | grep 'rewind' | tee "$OUT/rewind-early.log" || true
    dmesg | grep -E 'rewind: done|vmtime: lvm-' >"$OUT/initramfs-order" || true
    dmsetup table | tee "$OUT/dm-table-start"
    # LVM processes still running (a background poll started in the initramfs survives
    # switch_root).
    pgrep -a lvm | tee "$OUT/lvm-processes" || true
    known_sums "$RB_DIR" | tee "$OUT/boot$VM_BOOT.sha256"
    sha256sum /usr/local/sbin/vm-init | tee "$OUT/init.sha256"
    if [[ $RB_POLL == step ]]; then
        if grep -q '^vg0-root: 0 [0-9]* snapshot-merge ' "$OUT/dm-table-start"; then
            g_record merge_at_init snapshot-merge
        elif [[ $RB_MERGE_AT_INIT == required ]]; then
            g_fail "root is not active through a snapshot-merge table"
        else
            g_record merge_at_init "$(awk '$1 == "vg0-root:" { print $4 }' "$OUT/dm-table-start")"
        fi
        local rc=0
        rewind poll -v >"$OUT/poll.out" 2>&1 || rc=$?
        [[ $rc == 0 ]] || g_fail "rewind poll exited $rc"
    else
        # A systemd root: the merge may be finished already (by rewind-poll.service or by
        # stock LVM's lvmpolld, started by lvm2-monitor.service); record who did it.
        rb_wait_unit
        rb_record_unit
        journalctl -b -o short-monotonic --no-pager -u lvm2-monitor.service -u lvm2-lvmpolld.service \
            -u dm-event.service >"$OUT/lvm-journal" || true
        journalctl -b -o short-monotonic --no-pager | grep -E '(^| )rewind[:[]|[Mm]erg|lvmpolld' \
            >"$OUT/journal-merge" || true
        # Did stock LVM's poll daemon run at all this boot?
        systemctl show lvm2-lvmpolld.service -p ActiveState -p ExecMainStartTimestampMonotonic |
            tee "$OUT/lvmpolld.$VM_BOOT"
        local who=none
        if grep -q 'rolled back to' "$OUT/unit-journal.$VM_BOOT"; then
            who=rewind-poll
        elif grep -q -e 'already dropped' -e 'no active merge' "$OUT/unit-journal.$VM_BOOT"; then
            who=lvm
        fi
        g_record merge_finished_by "$who"
        if grep -Eq '^ExecMainStartTimestampMonotonic=[1-9]' "$OUT/lvmpolld.$VM_BOOT"; then
            g_record lvmpolld_ran yes
        else
            g_record lvmpolld_ran no
        fi
    fi
    dmsetup table | tee "$OUT/dm-table-end"
    grep -q '^vg0-root: 0 [0-9]* linear ' "$OUT/dm-table-end" ||
        g_fail "root is not plain linear after the merge was finished"
    if grep -q -e '-cow:' -e '-real:' -e "^vg0-$RB_SNAP:" "$OUT/dm-table-end"; then
        g_fail "snapshot devices left after the merge was finished"
    fi
    rb_lvm lvs -a --noheadings -o lv_name,lv_attr vg0 | tee "$OUT/lvs-end"
}

if ((RB_RESCUE)); then
    guest_boot_2() { g_fail "boot 2 came up with the broken init"; }
    guest_boot_3() { rb_rollback_boot; }
else
    guest_boot_2() { rb_rollback_boot; }
fi

# Rescue: boot 2 died on the broken init and nothing touched the snapshot.
host_check_boot_2() {
    ((RB_RESCUE)) || return 0
    vm_check_eq "boot 2 (broken init, no rd.rewind) was killed on the panic" killed \
        "$(cat "$WORK/boot2.result")"
    vm_check "boot 2's console shows the panic" grep -aq 'Attempted to kill init' "$WORK/boot2.serial.log"
    local lvs
    lvs=$(vm_image_lvm "$WORK/disk.img" lvs -a --noheadings --separator , -o lv_name,origin,lv_merging vg0 | tr -d ' ')
    vm_check_eq "after boot 2: $RB_SNAP still a plain snapshot of root (name,origin,merging)" \
        "$(printf '%s\n' "$RB_SNAP,root," root,, | sort | paste -sd ';')" "$(sort <<<"$lvs" | paste -sd ';')"
}

host_check() {
    vm_check "the bad upgrade changed the data" \
        vm_files_differ "$VM_STATE/before.sha256" "$VM_STATE/after.sha256"
    vm_check "boot $RB_BOOT sees the data from before the upgrade" \
        vm_compare_sums "$VM_STATE/before.sha256" "$VM_STATE/boot$RB_BOOT.sha256"
    if ((RB_RESCUE)); then
        vm_check "boot $RB_BOOT ran the init from before the upgrade, not the broken one" \
            vm_files_differ "$VM_STATE/broken-init.sha256" "$VM_STATE/init.sha256"
    fi
    vm_check_plain_root "$WORK/disk.img"
    if ((RB_LVM_ORDER)); then
        vm_check "initramfs: rewind done before LVM2's first activation, which succeeded" \
            rb_lvm_after_rewind "$VM_STATE/initramfs-order"
    fi
    if [[ $RB_POLL == step ]]; then
        vm_log "root's table when the root's init ran: $(vm_guest_value merge_at_init)"
    fi
    if [[ $RB_POLL == unit ]]; then
        local b
        for b in 1 "$RB_BOOT"; do
            vm_check_eq "boot $b: rewind-poll.service enabled" enabled "$(cat "$VM_STATE/unit-enabled.$b")"
            vm_check "boot $b: rewind-poll.service started at boot" \
                grep -Eq '^ExecMainStartTimestampMonotonic=[1-9]' "$VM_STATE/unit.$b"
            vm_check "boot $b: rewind-poll.service exited (success, status 0)" \
                rb_unit_exited_ok "$VM_STATE/unit.$b"
        done
        vm_log "merge finished by: $(vm_guest_value merge_finished_by); lvmpolld ran: $(vm_guest_value lvmpolld_ran)"
    fi
}

# rb_lvm_after_rewind FILE: in the kmsg lines (rewind's "done", vmtime's lvm-start/lvm-end),
# the first LVM2 activation (lvchange/vgchange -ay) starts after rewind is done, and succeeds.
rb_lvm_after_rewind() {
    awk '
        { t = $0; sub(/^\[ */, "", t); sub(/\].*/, "", t); t += 0 }
        /rewind: done/ && done == "" { done = t }
        /vmtime: lvm-start/ && / -a?ay / && start == "" { start = t }
        /vmtime: lvm-end/ && / -a?ay / && end == "" { end = $0 }
        END {
            printf "rewind done at %s, first activation started at %s; %s\n", done, start, end
            exit !(done != "" && start != "" && done + 0 < start + 0 && end ~ /rc=0 /)
        }' "$1"
}

# rb_unit_exited_ok FILE: `systemctl show` says the service ran to its end and succeeded.
rb_unit_exited_ok() {
    grep -qx 'ActiveState=inactive' "$1" && grep -qx 'Result=success' "$1" &&
        grep -qx 'ExecMainStatus=0' "$1" && grep -Eq '^ExecMainExitTimestampMonotonic=[1-9]' "$1"
}
