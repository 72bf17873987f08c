# shellcheck shell=bash disable=SC2034,SC2153 # VM_* settings are read by tests/vm/run.sh; VM_BOOT, OUT, BOOT_OUT are set by vm-init
# The "beside LVM2" story (issue #22): K cycles of a SMALL merge of a data LV, each flagged in one
# boot and carried out at the next, through an initramfs that may also hold LVM2's own event
# activation. A small merge is done before LVM's activation in the initramfs looks at it, so an
# LVM poller started there would finish it there, where switch_root can cut it off. A scenario
# sets the image (VM_INITRAMFS_ARGS, VM_SCENARIO_SUITE) and then:
#
#   MC_CYCLES=K     cycles (boots: K + 1). Cycle c is flagged in boot c and checked in boot c+1;
#                   odd cycles are flagged by stock `lvconvert --merge`, even ones by
#                   `rewind rollback`, so both tools start merges.
#   MC_LVM=1        LVM2 is in the image (its activation runs next to rewind's)
#   MC_LVM=0        rewind alone with udev running: the host also checks that no volume waited
#                   on a udev cookie (no "udev has not completed", every `rewind early` done in
#                   under MC_EARLY_MAX seconds by the kernel's timestamps)
#
#   # shellcheck source=tests/vm/lib/merge-cycles-story.sh
#   . "${TESTS_VM_DIR:-/run/xchg/harness}/lib/merge-cycles-story.sh"
#
# vg0 holds root and `data` (64 MiB, no filesystem). Each cycle: 8 MiB of known content
# ("cycle c good") at the start of data, a stock `lvcreate -s` snapshot `snap`, the bad change
# (4 MiB of "cycle c bad"), then the flag, with data held open so that both tools defer the
# merge to the next activation. The root is a shell-init root: nothing finishes a merge after
# switch_root but what the initramfs left running and the step's `rewind poll`.
#
# Each boot, first thing in the booted root (before anything touches vg0): the wall-clock time
# (switch_root ~ vm-init's start), every dm device's suspended state, tables and status, every
# process (an LVM process of the initramfs that outlived switch_root, and what it waits in),
# /proc/locks and who holds an LVM lock file, leftover udev cookies, device links whose device
# is gone, the initramfs's journal (systemd images) and kernel log, the VG's metadata read by
# stock pvck from the disk (no lock, no LV opened: one may be suspended) and whether vg0's LVM
# lock is free. Then it checks the previous cycle (data right, read past the page cache), waits
# for the VG lock (a holder still there after 30 s is killed, and recorded), lets `rewind poll`
# finish, checks stock `vgck`, and sets up the next cycle. A suspended device, a half-finished
# LVM finish (the snapshot's store left as a plain LV `snap`) or a stale link is recorded and
# repaired (dmsetup resume, lvremove, rm) and the story goes on, so one run counts every
# failure; the host's final check fails on any.
#
# Host, after each boot: the metadata ring of the disk image dumped by stock `pvck --dump
# metadata_all` (every commit still in the ring: seqno, description = the command that made it,
# creation_time); at the end, who finished each cycle's merge (the commit that dropped the
# merging flag) and when, relative to switch_root; a table of every cycle in driver.log and
# $WORK/cycles.txt.

MC_CYCLES=${MC_CYCLES:-3}
# The host's count (MC_CYCLES=K tests/vm/run.sh ... overrides a scenario's) reaches the guest
# in the state.
if [[ -n ${OUT:-} && -f ${OUT:-}/mc_cycles ]]; then
    MC_CYCLES=$(cat "$OUT/mc_cycles")
fi
MC_LVM=${MC_LVM:-1}
MC_EARLY_MAX=${MC_EARLY_MAX:-8}
VM_BOOTS=$((MC_CYCLES + 1))
VM_LVS=(root:1200M data:64M)
# printk.devkmsg=on: every kmsg line kept (rewind's debug log); rd.lvm.lv=vg0/data: the
# generators that activate only named LVs (dracut) activate data too, with its merge.
VM_CMDLINE='root=/dev/mapper/vg0-root rd.lvm.lv=vg0/root rd.lvm.lv=vg0/data ro printk.devkmsg=on rd.rewind.debug'
VM_ROOT_ADD=(
    "${VM_REPO_DIR:-}/target/x86_64-unknown-linux-gnu/release/rewind:/usr/sbin/rewind"
    "${VM_REPO_DIR:-}/initramfs/rewind-early:/usr/lib/rewind/rewind-early"
)

MC_DEV=/dev/mapper/vg0-data
# Stock LVM in the booted root reading the disks only: it never opens an LV (a suspended one
# would hang it), does not wait for a VG lock (one still held is a finding); no udev, no
# lvmpolld.
MC_LVM_DISKS='global { use_lvmpolld = 0 wait_for_locks = 0 } activation { udev_sync = 0 udev_rules = 0 monitoring = 0 } devices { obtain_device_list_from_udev = 0 filter = [ "a|^/dev/vd[a-z]$|", "r|.*|" ] }'

host_prepare() {
    echo "$MC_CYCLES" >"$VM_STATE/mc_cycles"
    (cd "$VM_REPO_DIR" && cargo build --release --quiet)
    # rewind as install.sh installs it, into the disk's root (the binary, the generator pieces).
    local inst=$WORK/mc-install f
    sh "$VM_REPO_DIR/install.sh" DESTDIR="$inst" >"$WORK/install.log"
    while IFS= read -r f; do
        VM_DISK_ADD+=("$inst$f:$f")
    done < <(cd "$inst" && find . \( -type f -o -type l \) | sed 's/^\.//' | sort)
}

mc_lvm() {
    mkdir -p /run/lvm /run/lock/lvm
    timeout 240 lvm "$@" --config "$MC_LVM_DISKS"
}

# The state the initramfs left, before anything in the root touches vg0.
mc_record_early() {
    local b=$BOOT_OUT p
    date +%s.%N >"$b/t_init_epoch"
    g_uptime >"$b/t_init_uptime"
    dmsetup info -c --noheadings --separator ' ' -o name,uuid,suspended,open >"$b/dm-info" 2>&1 || true
    dmsetup table >"$b/dm-table" 2>&1 || true
    dmsetup status >"$b/dm-status" 2>&1 || true
    # Every process (an LVM poller started in the initramfs outlives switch_root), the file
    # locks held (LVM's VG lock is a flock on /run/lock/lvm/V_VG; /run came from the
    # initramfs) and which process holds an LVM lock file open.
    # processes: PID COMM STATE PPID WCHAN CMDLINE (an LVM child renames its argv[0] "(lvm2)").
    for p in /proc/[0-9]*; do
        printf '%s %s %s %s %s\n' "${p#/proc/}" "$(cat "$p/comm" 2>/dev/null)" \
            "$(awk '{ print $3, $4 }' "$p/stat" 2>/dev/null)" "$(cat "$p/wchan" 2>/dev/null)" \
            "$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)"
    done >"$b/processes"
    awk '$2 == "lvm"' "$b/processes" >"$b/lvm-processes"
    dmsetup udevcookies >"$b/udevcookies" 2>&1 || true
    # Device links whose device is gone (udev exited before it handled a removal).
    find -L /dev/mapper /dev/vg0 -maxdepth 1 -type l 2>/dev/null >"$b/stale-links" || true
    cat /proc/locks >"$b/locks" 2>&1 || true
    local fd target
    for fd in /proc/[0-9]*/fd/*; do
        target=$(readlink "$fd" 2>/dev/null) || continue
        [[ $target == */lock/lvm/* ]] && printf '%s holds %s\n' "$fd" "$target"
    done >"$b/lvm-lock-holders"
    dmesg >"$b/dmesg-early" 2>&1 || true
    if [[ -d /run/log/journal ]]; then
        journalctl -D /run/log/journal -o short-monotonic --no-pager >"$b/initrd-journal" 2>&1 || true
    fi
    # The committed metadata, read by stock pvck from the disk (no VG lock, no LV opened), then
    # LVM's view without waiting for a lock (a lock still held is itself a finding).
    timeout 240 lvm pvck --dump metadata -f "$b/vg0-early.vg" /dev/vda >/dev/null 2>&1 ||
        echo "pvck failed" >"$b/vg0-early.vg"
    if mc_lvm lvs -a --noheadings --separator , -o lv_name,lv_attr,origin,lv_merging,segtype vg0 >"$b/lvs-early" 2>&1; then
        g_record "b${VM_BOOT}_vg_lock_at_init" free
    else
        g_record "b${VM_BOOT}_vg_lock_at_init" held
    fi
    cat "$b/dm-info" "$b/dm-table" "$b/lvm-processes" "$b/lvm-lock-holders" "$b/locks" \
        "$b/udevcookies" "$b/lvs-early"
}

# Devices left suspended (names), from dm-info.
mc_suspended() {
    awk '$3 == "Suspended" { print $1 }' "$1" | paste -sd, -
}

# The metadata state of vg0 at init: merging (the flag is still there), finished (snap gone),
# half (the merging flag gone but the store `snap` left as a plain LV: LVM's two-commit finish
# cut between its commits).
mc_meta_state() {
    if grep -q merging_store "$1"; then
        echo merging
    elif grep -Eq '^[[:space:]]*snap \{' "$1"; then
        echo half
    else
        echo finished
    fi
}

# Resume every suspended device, lower layers first (-cow, -real), so the story can go on.
mc_resume_all() {
    local n
    for n in $(awk '$3 == "Suspended" && $1 ~ /-(cow|real)$/ { print $1 }' "$1") \
        $(awk '$3 == "Suspended" && $1 !~ /-(cow|real)$/ { print $1 }' "$1"); do
        echo "resuming $n (left suspended by the initramfs)"
        timeout 30 dmsetup resume "$n" || echo "cannot resume $n"
    done
}

# Check cycle c (flagged in the previous boot), then let the poller finish.
mc_check_cycle() {
    local c=$1 b=$BOOT_OUT susp state table rc=0
    susp=$(mc_suspended "$b/dm-info")
    state=$(mc_meta_state "$b/vg0-early.vg")
    table=$(awk '$1 == "vg0-data:" { print $4 }' "$b/dm-table")
    g_record "c${c}_suspended" "${susp:-none}"
    g_record "c${c}_meta_at_init" "$state"
    g_record "c${c}_table_at_init" "${table:-none}"
    g_record "c${c}_lvm_procs_at_init" "$(wc -l <"$b/lvm-processes")"
    g_record "c${c}_stale_links" "$(paste -sd, "$b/stale-links" | grep . || echo none)"
    [[ -z $susp ]] || mc_resume_all "$b/dm-info"
    # This root has no udev: LVM here makes its own nodes and trips over a stale link.
    xargs -r rm -f <"$b/stale-links"

    # The data: the snapshot's content, read past the page cache.
    if [[ -b $MC_DEV ]]; then
        sync
        echo 3 >/proc/sys/vm/drop_caches
        # No device is suspended any more (resumed above): the bound is only against a hang, wide
        # enough for a host so loaded that the guest's clock skips (seen: 60 s was not).
        timeout 240 head -c 8388608 "$MC_DEV" | sha256sum | cut -d' ' -f1 >"$b/data.sha256"
    else
        echo missing >"$b/data.sha256"
    fi
    if cmp -s "$b/data.sha256" "$OUT/c$c.good"; then
        g_record "c${c}_data" ok
    else
        g_record "c${c}_data" "bad:$(cat "$b/data.sha256")"
    fi

    # LVM's VG lock must be free for the finish (a holder from the initramfs blocks every LVM
    # command here): waited for, bounded, and the wait recorded.
    # A holder still there after 30 s (an initramfs LVM process blocked for good: its udev is
    # gone) is killed, and recorded, so that the story can go on.
    local i fd
    for ((i = 0; i < 30; i++)); do
        mc_lvm vgs vg0 >/dev/null 2>&1 && break
        sleep 1
    done
    g_record "c${c}_vg_lock_wait_s" "$i"
    g_record "c${c}_lock_holder_killed" none
    if ((i == 30)); then
        for fd in /proc/[0-9]*/fd/*; do
            [[ $(readlink "$fd" 2>/dev/null) == */lock/lvm/V_vg0 ]] || continue
            fd=${fd#/proc/}
            g_record "c${c}_lock_holder_killed" "$(tr '\0 ' '_' <"/proc/${fd%%/*}/cmdline")"
            kill -9 "${fd%%/*}" || true
        done
        sleep 1
        mc_lvm vgs vg0 >/dev/null 2>&1 || g_fail "cycle $c: vg0's LVM lock still held"
    fi

    # The finish in the booted system: rewind's poller (a shell-init root runs nothing else).
    rm -f /run/udev/control
    timeout 240 rewind poll -v >"$b/poll.out" 2>&1 || rc=$?
    cat "$b/poll.out"
    g_record "c${c}_poll_rc" "$rc"
    dmsetup table | tee "$b/dm-table-end"
    # A half-finished LVM finish leaves `snap` as a plain LV: removed so the story can go on.
    if g_lvm lvs --noheadings -o lv_name vg0/snap >/dev/null 2>&1; then
        g_record "c${c}_leftover" snap
        g_lvm lvs -a vg0 || true
        g_lvm lvremove -y vg0/snap || true
    else
        g_record "c${c}_leftover" none
    fi
    # Links the finish left to devices it removed: this root has no udev to drop them (rewind
    # poll removes the devices, not udev's links); LVM here trips over them. Recorded, removed.
    find -L /dev/mapper /dev/vg0 -maxdepth 1 -type l 2>/dev/null >"$b/links-after-poll" || true
    g_record "c${c}_links_after_poll" "$(paste -sd, "$b/links-after-poll" | grep . || echo none)"
    xargs -r rm -f <"$b/links-after-poll"
    if g_lvm vgck vg0 >"$b/vgck.out" 2>&1; then
        g_record "c${c}_vgck" ok
    else
        g_record "c${c}_vgck" failed
        cat "$b/vgck.out"
    fi
    g_lvm lvs -a --noheadings --separator , -o lv_name,segtype vg0 | tr -d ' ' | LC_ALL=C sort |
        paste -sd';' >"$b/lvs-end"
    g_record "c${c}_lvs_end" "$(cat "$b/lvs-end")"
    grep -q '^vg0-data: 0 [0-9]* linear ' "$b/dm-table-end" ||
        g_fail "cycle $c: data is not plain linear after rewind poll: the story cannot go on"
}

# Flag cycle c: known content, a stock snapshot, the bad change, the flag (deferred: data open).
mc_setup_cycle() {
    local c=$1 b=$BOOT_OUT fd
    [[ -b $MC_DEV ]] || g_lvm lvchange -ay vg0/data
    g_fill_dev "$MC_DEV" 8 "cycle $c good"
    g_sum_dev "$MC_DEV" 8 >"$OUT/c$c.good"
    g_lvm lvcreate -s -n snap -L 16M --chunksize 64k vg0/data
    g_fill_dev "$MC_DEV" 4 "cycle $c bad"
    g_sum_dev "$MC_DEV" 8 >"$OUT/c$c.bad"
    ! cmp -s "$OUT/c$c.good" "$OUT/c$c.bad" || g_fail "cycle $c: the bad change changed nothing"
    sync
    exec {fd}<"$MC_DEV"
    if ((c % 2)); then
        g_record "c${c}_tool" lvconvert
        g_lvm lvconvert --merge vg0/snap 2>&1 | tee "$b/flag.out"
    else
        g_record "c${c}_tool" rewind
        rm -f /run/udev/control
        rewind rollback vg0/snap 2>&1 | tee "$b/flag.out"
    fi
    exec {fd}<&-
    g_lvm lvs -a --noheadings -o lv_name,lv_merging vg0 | tee "$b/lvs-flagged"
    grep -q 'snap.*merging' "$b/lvs-flagged" || g_fail "cycle $c: the merge is not flagged"
    if dmsetup table | grep -q '^vg0-data: 0 [0-9]* snapshot-merge '; then
        g_fail "cycle $c: the merge started now (data was open: it must wait for the next boot)"
    fi
}

mc_boot() {
    local n=$VM_BOOT
    mc_record_early
    ((n == 1)) || mc_check_cycle $((n - 1))
    ((n > MC_CYCLES)) || mc_setup_cycle "$n"
}

for ((mc_n = 1; mc_n <= VM_BOOTS; mc_n++)); do
    eval "guest_boot_$mc_n() { mc_boot; }"
    eval "host_check_boot_$mc_n() { mc_host_dump $mc_n; }"
done

# After each boot: the metadata ring of the disk image, by stock LVM (every commit still in it).
mc_host_dump() {
    local loop
    loop=$(losetup -f --show -r "$WORK/disk.img")
    lvm pvck --dump metadata_all -f "$WORK/ring.boot$1" "$loop" \
        --config "$(vm_lvm_config_for "$loop")" >"$WORK/ring.boot$1.log" 2>&1 || true
    losetup -d "$loop"
}

# The history of vg0 from every dump: seqno, time, LVs, merging, description.
mc_history() {
    python3 "$TESTS_VM_DIR/lvm-history.py" vg0 "$WORK"/ring.boot* >"$WORK/history"
}

# Who made a commit, from its description.
mc_who() {
    case $1 in
    *'rewind: drop'*) echo rewind-poll ;;
    *'rewind: merge'*) echo rewind-rollback ;;
    *pvscan*) echo lvm-pvscan ;;
    *vgchange*) echo lvm-vgchange ;;
    *lvchange*) echo lvm-lvchange ;;
    *lvpoll*) echo lvm-lvpoll ;;
    *lvremove*) echo lvremove ;;
    *) echo other ;;
    esac
}

# cycles.txt: for each cycle, who finished it (the commit that dropped the merging flag), when
# relative to switch_root (vm-init's start in the boot that carried the cycle out, whole
# seconds: negative = in the initramfs), whether that finish was cut (LVM's finish is two
# commits by one command: the first leaves the store `snap` as a plain LV, the second removes
# it; "cut" = no second commit by the same command), and what the guest saw at init.
mc_cycle_table() {
    local -a seq tim lvs mer des
    local i=0 n c=0 t_init who rel cut
    while IFS=$'\t' read -r 'seq[i]' 'tim[i]' 'lvs[i]' 'mer[i]' 'des[i]'; do
        i=$((i + 1))
    done <"$WORK/history"
    n=$i
    declare -A fin_who fin_rel fin_cut
    for ((i = 1; i < n; i++)); do
        if ((mer[i] == 1 && mer[i - 1] == 0)); then
            c=$((c + 1))
        elif ((mer[i] == 0 && mer[i - 1] == 1)); then
            t_init=$(cut -d. -f1 "$VM_STATE/boot$((c + 1))/t_init_epoch" 2>/dev/null || echo 0)
            who=$(mc_who "${des[i]}")
            rel=$((tim[i] - t_init))
            cut=no
            if [[ ,${lvs[i]}, == *,snap,* ]]; then
                # LVM stamps the second commit of one command "Write[2] from ...".
                if ((i + 1 >= n)) || [[ ${des[i + 1]/#Write\[2\] /Write } != "${des[i]}" ||
                    ,${lvs[i + 1]}, == *,snap,* ]]; then
                    cut=yes
                fi
            fi
            fin_who[$c]=$who fin_rel[$c]=$rel fin_cut[$c]=$cut
        fi
    done
    printf '%-5s %-10s %-13s %-6s %-4s %-9s %-10s %-5s %-5s %-6s %-5s %-4s %s\n' cycle flagged_by \
        finished_by at_s cut meta@init suspended procs lock data vgck poll table@init
    for ((c = 1; c <= MC_CYCLES; c++)); do
        printf '%-5s %-10s %-13s %-6s %-4s %-9s %-10s %-5s %-5s %-6s %-5s %-4s %s\n' "$c" \
            "$(mc_value "c${c}_tool")" "${fin_who[$c]:-none}" "${fin_rel[$c]:-}" "${fin_cut[$c]:-}" \
            "$(mc_value "c${c}_meta_at_init")" "$(mc_value "c${c}_suspended")" \
            "$(mc_value "c${c}_lvm_procs_at_init")" "$(mc_value "b$((c + 1))_vg_lock_at_init")" \
            "$(mc_value "c${c}_data")" \
            "$(mc_value "c${c}_vgck")" "$(mc_value "c${c}_poll_rc")" "$(mc_value "c${c}_table_at_init")"
    done
}

mc_value() {
    vm_guest_value "$1" 2>/dev/null || echo '?'
}

host_check() {
    local c
    # The count this run used (a --recheck may come without the MC_CYCLES it ran with).
    [[ ! -f $VM_STATE/mc_cycles ]] || MC_CYCLES=$(cat "$VM_STATE/mc_cycles")
    mc_history
    mc_cycle_table | tee "$WORK/cycles.txt" >&2
    for ((c = 1; c <= MC_CYCLES; c++)); do
        vm_check_eq "cycle $c: no device left suspended after switch_root" none "$(mc_value "c${c}_suspended")"
        vm_check "cycle $c: no half-finished merge in the metadata at init (meta@init)" \
            test "$(mc_value "c${c}_meta_at_init")" != half
        vm_check_eq "cycle $c: no leftover store LV after the finish" none "$(mc_value "c${c}_leftover")"
        vm_check_eq "cycle $c: data is the snapshot's (checksum past the page cache)" ok "$(mc_value "c${c}_data")"
        vm_check_eq "cycle $c: no LVM process of the initramfs still running after switch_root" 0 \
            "$(mc_value "c${c}_lvm_procs_at_init")"
        vm_check_eq "cycle $c: no device link left for a device that is gone" none \
            "$(mc_value "c${c}_stale_links")"
        vm_check_eq "cycle $c: vg0's LVM lock free after switch_root" free \
            "$(mc_value "b$((c + 1))_vg_lock_at_init")"
        vm_check_eq "cycle $c: rewind poll exit status" 0 "$(mc_value "c${c}_poll_rc")"
        vm_check_eq "cycle $c: stock vgck vg0 in the guest" ok "$(mc_value "c${c}_vgck")"
        vm_check_eq "cycle $c: LVs at the end (name,segtype)" "data,linear;root,linear" "$(mc_value "c${c}_lvs_end")"
    done
    vm_check "no merge finish cut between its commits (the ring's history, column cut)" \
        mc_none_cut "$WORK/cycles.txt"
    mc_check_plain_data "$WORK/disk.img"
    if ((MC_LVM == 0)); then
        local n
        for ((n = 1; n <= VM_BOOTS; n++)); do
            vm_check "boot $n: no volume waited on a udev cookie" \
                vm_file_lacks 'udev has not completed' "$WORK/boot$n.serial.log"
            vm_check "boot $n: every rewind early done within ${MC_EARLY_MAX}s of its start" \
                mc_early_quick "$VM_STATE/boot$n/dmesg-early"
        done
    fi
}

# No cycle of the table has cut = yes.
mc_none_cut() {
    awk 'NR > 1 && $5 == "yes" { print "cut finish: " $0; bad = 1 } END { exit bad }' "$1" >&2
}

# The end state: vgck clean, vg0 holds root and data alone, plain linear, no snapshot or flag.
mc_check_plain_data() {
    local img=$1
    vm_check "vgck vg0 (stock, on the image)" vm_image_lvm "$img" vgck vg0
    vm_check_eq "LVs in vg0 at the end (name,segtype,origin,merging)" "data,linear,,;root,linear,," \
        "$(vm_image_lvm "$img" lvs -a --noheadings --separator , -o lv_name,segtype,origin,lv_merging vg0 |
            tr -d ' ' | LC_ALL=C sort | paste -sd';')"
    vm_image_lvm "$img" vgcfgbackup -f "$WORK/vg0-final.vg" vg0
    vm_check "no snapshot or merge flag left in the metadata" \
        vm_file_lacks 'snapshot|merging_store|cow_store' "$WORK/vg0-final.vg"
}

# Every `rewind early` run in this boot's kernel log reached "done" within MC_EARLY_MAX seconds
# of its "started" (rd.rewind.debug), and at least one ran.
mc_early_quick() {
    awk -v max="$MC_EARLY_MAX" '
        { t = $0; sub(/^\[ */, "", t); sub(/\].*/, "", t); t += 0 }
        /rewind: rewind early .*: started/ { start = t; runs++ }
        /rewind: done:/ && start != "" { d = t - start; if (d > worst) worst = d; start = "" }
        END {
            printf "rewind early runs: %d, longest %.2fs\n", runs, worst
            exit !(runs > 0 && worst <= max)
        }' "$1" >&2
}
