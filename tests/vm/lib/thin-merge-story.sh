# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# The thin-merge story, shared by thin-merge (quick), thin-merge-crash and thin-merge-random
# (long): a thin LV rolled back to a thin snapshot by `rewind early` in an initramfs with no
# LVM2 (dracut, shell init, module 90rewind), the flag written by stock `lvconvert --merge`
# while the LV is open, and the merge finished by `rewind poll`.
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
#         With TM_SEEDS (thin-merge-random) the guest is killed at seeded moments of the
#         poll instead, and each next boot checks what the kill left and flags a fresh merge
#         (tr_check_kill, tr_next_merge below).
# Last:   stock LVM activates snap2 (the pool's transaction id must match) and it is unchanged
#         (its `origin` cleared, as stock LVM's own finish does: the LV it was taken of is the
#         one deleted); thin's data is the snapshot's.
# Host:   the data from before; snap2 the same; stock vgck and lvs on the image: a plain thin
#         LV, no snap1, snap2 still a snapshot, no tag on the pool; the pool's transaction id in
#         the metadata equals what the kernel reported after the finish.
# thin_check (issue 19, docs/THIN.md), thin-merge only (no kills): boot 1 also makes a
#         second pool vg0/pool2 with a thin LV vg0/t2, deactivates them and damages pool2's
#         metadata where only a walk of its btrees finds it (bytes in its data mapping tree's
#         root node; the superblock the kernel checks at load is untouched): stock thin_check
#         on the read-only component fails. Boot 2 names vg0/t2 (rd.lvm.lv): rewind early runs
#         thin_check (carried into the image by 90rewind) on vg0/pool's metadata (fine: its
#         merge goes on) and on pool2's (fails): pool2 and t2 not activated, no pool2 device
#         left, the console says so and names lvconvert --repair, pool2's metadata unchanged.
# The guest's own LVM commands run with thin_check_executable = "" (as before the guest had
# thin-provisioning-tools).
# Not the issue's thin *root* (the disk is built on the host without device-mapper, so a thin
# root would need a first boot to copy root into a pool); the thin LV here is an ordinary
# volume rewind activates in the initramfs, which is the same code path.

# TM_KILLS (set by the scenario before sourcing): failpoints, one boot each from boot 2.
TM_KILLS=(${TM_KILLS[@]+"${TM_KILLS[@]}"})
# TM_SEEDS (thin-merge-random; not with TM_KILLS): kills at random moments, one boot each from
# boot 2, the kill of seed S (boot S+1) tm_delay_ms S after the console marker printed right
# before `rewind poll`. Each killed boot from boot 3 first checks what the kill before it left
# (tr_check_kill), then flags and activates a fresh merge with stock LVM (tr_next_merge).
TM_SEEDS=${TM_SEEDS:-0}
# The delays spread over TM_SPREAD_MS ms from TM_DELAY_BASE_MS (the part of the poll that
# writes, measured under TCG: docs/THIN.md).
TM_SPREAD_MS=${TM_SPREAD_MS:-1000}
TM_DELAY_BASE_MS=${TM_DELAY_BASE_MS:-0}
TM_LAST=$((2 + ${#TM_KILLS[@]} + TM_SEEDS))
# tm_killing: the boots from 2 are killed (thin-merge-crash, thin-merge-random).
tm_killing() { ((${#TM_KILLS[@]} + TM_SEEDS)); }

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

# tc_meta_region: "PV OFFSET BYTES" of vg0/pool2's metadata LV (one segment).
tc_meta_region() {
    local pv pe pe_start ext size
    read -r pv pe < <(th_lvm lvs -a --noheadings -o devices vg0/pool2_tmeta | tr -d ' ' | sed -E 's/^(.*)\(([0-9]+)\)$/\1 \2/')
    pe_start=$(th_lvm pvs --noheadings --units b --nosuffix -o pe_start "$pv" | tr -d ' ')
    ext=$(th_lvm vgs --noheadings --units b --nosuffix -o vg_extent_size vg0 | tr -d ' ')
    size=$(th_lvm lvs -a --noheadings --units b --nosuffix -o lv_size vg0/pool2_tmeta | tr -d ' ')
    echo "$pv $((pe_start + pe * ext)) $size"
}

# tc_meta_sum: sha256 of pool2's metadata, read from the PV.
tc_meta_sum() {
    local pv off size
    read -r pv off size <"$OUT/tc-region"
    dd if="$pv" iflag=skip_bytes,count_bytes,direct skip="$off" count="$size" bs=1M 2>/dev/null |
        sha256sum | cut -d' ' -f1
}

# tc_damage: pool2 made, used, deactivated, its data mapping tree's root node damaged.
tc_damage() {
    local pv off size magic root
    th_lvm lvcreate -q --type thin-pool -L 16M --chunksize 64k -n pool2 vg0
    th_lvm lvcreate -q -V 16M -T vg0/pool2 -n t2
    dd if=/dev/urandom of=/dev/vg0/t2 bs=1M count=2 oflag=direct 2>/dev/null
    th_lvm lvchange -q -an vg0/t2 vg0/pool2
    tc_meta_region | tee "$OUT/tc-region"
    read -r pv off size <"$OUT/tc-region"
    # The superblock (dm-thin-metadata.c thin_disk_superblock): magic at 32, data_mapping_root
    # (a 4 KiB block number) at 320.
    magic=$(od -An -t u8 -j $((off + 32)) -N 8 "$pv" | tr -d ' ')
    [[ $magic == 27022010 ]] || g_fail "no thin superblock at $pv+$off (magic $magic)"
    root=$(od -An -t u8 -j $((off + 320)) -N 8 "$pv" | tr -d ' ')
    ((root > 0 && root * 4096 < size)) || g_fail "data mapping root $root out of range"
    printf 'rewind thin_check test: damaged btree node' |
        dd of="$pv" bs=1 seek=$((off + root * 4096 + 100)) conv=notrunc,fsync 2>/dev/null
    blockdev --flushbufs "$pv"
    tc_meta_sum | tee "$OUT/tc-meta-boot1"
    # Stock thin_check on the component (read-only) finds it; LVM would refuse the pool too.
    th_lvm lvchange -q -ay -y vg0/pool2_tmeta
    if thin_check /dev/mapper/vg0-pool2_tmeta >"$BOOT_OUT/thin_check.out" 2>&1; then
        cat "$BOOT_OUT/thin_check.out"
        g_fail "stock thin_check passed the damaged metadata"
    fi
    cat "$BOOT_OUT/thin_check.out"
    th_lvm lvchange -q -an vg0/pool2_tmeta
}

# tc_observe (boot 2): what rewind early left of pool2, its metadata.
tc_observe() {
    dmesg | grep -E 'rewind: .*(thin_check|thin pool|pool2|t2|done:)' | tee "$BOOT_OUT/thin-check.log" || true
    dmsetup info -c --noheadings -o name | tee "$BOOT_OUT/dm-names"
    tc_meta_sum | tee "$OUT/tc-meta-boot2"
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
    tm_killing || tc_damage
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
    tm_killing || tc_observe
    mkdir -p /run/lock/lvm
    if ((TM_SEEDS)); then
        tr_killed_poll 2 snap1
    elif ((${#TM_KILLS[@]})); then
        tm_killed_poll 2
    else
        tm_finish
    fi
}

vm_boot_kill() {
    (($1 >= 2 && $1 < TM_LAST)) || return 0
    if ((TM_SEEDS)); then
        tr_kill_when "$1"
    else
        echo "on failpoint ${TM_KILLS[$(($1 - 2))]}: exiting as if killed"
    fi
}

# After the first kill the merge is no longer flagged: vg0/thin is named for rewind early.
# thin-merge's boot 2 names vg0/t2, whose pool's metadata is damaged.
vm_boot_args() {
    if (($1 >= 3)); then
        echo "rd.lvm.lv=vg0/thin"
    elif (($1 == 2)) && ! tm_killing; then
        echo "rd.lvm.lv=vg0/t2"
    fi
}

# Boots 3 .. TM_LAST (thin-merge-crash, thin-merge-random).
tm_later_boot() {
    mkdir -p /run/lock/lvm
    ((TM_SEEDS == 0)) || tr_check_kill "$1"
    if (($1 == TM_LAST)); then
        tm_finish
    elif ((TM_SEEDS)); then
        tr_next_merge "$1"
        tr_killed_poll "$1" "r$1"
    else
        tm_killed_poll "$1"
    fi
}
for ((tm_n = 3; tm_n <= TM_LAST; tm_n++)); do
    eval "guest_boot_$tm_n() { tm_later_boot $tm_n; }"
done

# tm_delay_ms SEED: the kill's delay after the marker, from the seed (reproducible).
tm_delay_ms() {
    echo $((TM_DELAY_BASE_MS + ($1 * 7919 + 1237) % TM_SPREAD_MS))
}

# tr_kill_when N: boot N (seed N-1) killed tm_delay_ms after its marker shows on the console.
# The host follows the console (tail -f, inotify) rather than looking every 0.2 s, so the delay
# counts from the marker itself: one look lasts up to 90 s (the marker comes some 20-30 s after
# qemu starts), so the marker does not fall in the 0.2 s between two looks.
tr_kill_when() {
    local s=$(($1 - 1)) d log=$WORK/boot$1.serial.log
    d=$(tm_delay_ms "$s")
    echo "when timeout 90 grep -q -m1 -F 'thin-random: polling, seed $s ' <(tail --pid=\$\$ -n +1 -f '$log') && sleep $((d / 1000)).$(printf %03d $((d % 1000)))"
}

# tr_killed_poll N NAME: the marker, then `rewind poll` of the flagged merge of NAME (activated
# with NAME's device id), killed by the host somewhere in it or after it.
tr_killed_poll() {
    local s=$(($1 - 1)) id start
    id=$(th_lvm lvs -a --noheadings -o lv_name,thin_id vg0 | awk -v n="[$2]" '$1 == n { print $2 }')
    [[ -n $id ]] || g_fail "$2 is not a flagged (hidden) thin snapshot"
    [[ $(dmsetup table vg0-thin | awk '{ print $5 }') == "$id" ]] ||
        g_fail "vg0/thin does not show $2's device $id: $(dmsetup table vg0-thin)"
    # Killed boots keep nothing on the exchange disk: the next boot reads this from the root.
    echo "$2 $id" >/var/tmp/tr-merge
    sync /var/tmp/tr-merge
    g_record "merge_boot$1" "$2 $id"
    dmsetup status vg0-pool-tpool
    start=$(date +%s%N)
    # The guest's wall clock, as rewind's log lines show it: the host gives each step's time
    # after the marker.
    echo "thin-random: polling, seed $s at $(date -u +%T.%3N) (kill $(tm_delay_ms "$s") ms after this)" >/dev/kmsg
    rewind poll -v 2>&1 || true
    echo "thin-random: poll exited after $((($(date +%s%N) - start) / 1000000)) ms" >/dev/kmsg
    sleep 300
    g_fail "the host did not kill the guest (seed $s)"
}

# tr_check_kill N: what the kill in boot N-1 left (vg0/thin activated by rewind early,
# rd.lvm.lv): thin shows the merged snapshot's device and data; the pool's transaction id in
# the metadata equals the kernel's, or is one ahead with the owed tag (docs/THIN.md); stock
# vgck is clean; `rewind poll` then finishes and leaves no tag, equal ids, vgck clean.
tr_check_kill() {
    local n=$1 name id lvs tid ktid tag where rc=0
    read -r name id </var/tmp/tr-merge
    lvs=$(th_lvm lvs -a --noheadings -o lv_name vg0 | tr -d ' ')
    tid=$(th_lvm lvs --noheadings -o transaction_id vg0/pool | tr -d ' ')
    tag=$(th_lvm lvs --noheadings -o lv_tags vg0/pool | tr -d ' ')
    ktid=$(dmsetup status vg0-pool-tpool | awk '{ print $4 }')
    echo "boot $n: $name (device $id): metadata transaction id $tid, kernel's $ktid, pool tag [$tag]"
    [[ $(dmsetup table vg0-thin | awk '{ print $5 }') == "$id" ]] ||
        g_fail "vg0/thin does not show $name's device $id: $(dmsetup table vg0-thin)"
    if grep -qxF "[$name]" <<<"$lvs"; then
        [[ -z $tag && $tid == "$ktid" ]] || g_fail "$name still flagged but tag [$tag], ids $tid/$ktid"
        where="before the first commit ($name still flagged, ids $tid = $ktid)"
    elif [[ -n $tag ]]; then
        [[ $tag =~ ^rewind_thin_delete_[0-9]+_tid_${tid}$ ]] || g_fail "pool tag [$tag] with metadata id $tid"
        if ((tid == ktid + 1)); then
            where="after the first commit, set_transaction_id not taken (ids $tid = $ktid + 1, $tag)"
        elif ((tid == ktid)); then
            where="after set_transaction_id, before the second commit (ids $tid = $ktid, $tag)"
        else
            g_fail "pool tag [$tag] with metadata id $tid, kernel's $ktid"
        fi
    else
        ((tid == ktid)) || g_fail "no tag, metadata transaction id $tid, kernel's $ktid"
        grep -qE "^$name$" <<<"$lvs" && g_fail "$name is visible again"
        where="after the finish (ids $tid = $ktid, nothing owed)"
    fi
    g_record "landed_boot$((n - 1))" "$where"
    mkdir -p "$TH_DIR"
    mount -o ro,noload /dev/mapper/vg0-thin "$TH_DIR"
    th_sums >"/run/tr-sums"
    umount "$TH_DIR"
    cmp -s "$OUT/before.sha256" /run/tr-sums || g_fail "vg0/thin does not show $name's data"
    th_lvm vgck vg0 || g_fail "stock vgck after the kill"
    rewind poll -v 2>&1 || rc=$?
    ((rc == 0)) || g_fail "rewind poll after the kill exited $rc"
    tid=$(th_lvm lvs --noheadings -o transaction_id vg0/pool | tr -d ' ')
    tag=$(th_lvm lvs --noheadings -o lv_tags vg0/pool | tr -d ' ')
    ktid=$(dmsetup status vg0-pool-tpool | awk '{ print $4 }')
    [[ -z $tag && $tid == "$ktid" ]] || g_fail "after rewind poll: tag [$tag], ids $tid/$ktid"
    th_lvm lvs -a --noheadings -o lv_name vg0 | tr -d ' ' | grep -qxF "[$name]" &&
        g_fail "$name still flagged after rewind poll"
    th_lvm vgck vg0 || g_fail "stock vgck after rewind poll"
    g_record "converged_boot$n" "ids $tid = $ktid, no tag, vgck clean"
}

# tr_next_merge N: a fresh merge for boot N's kill, made by stock LVM: thin snapshot rN of
# vg0/thin, the bad change, `lvconvert --merge` (deferred: mounted), then vg0/thin deactivated
# and activated with --poll n (LVM's merge at activation: the origin shows rN's device, the
# metadata is left to the poller, as in LVM's own test of the reboot case).
tr_next_merge() {
    local name=r$1 i
    mount /dev/mapper/vg0-thin "$TH_DIR"
    th_lvm lvcreate -q -s -n "$name" vg0/thin
    for ((i = 1; i <= TH_FILES; i++)); do
        g_fill "$TH_DIR/f$i" 4 "thin after: file $i (boot $1)"
    done
    echo "thin after (boot $1)" >"$TH_DIR/marker"
    sync
    th_lvm lvconvert --merge "vg0/$name" 2>&1 | grep -q 'will occur on next activation' ||
        g_fail "lvconvert --merge vg0/$name did not defer"
    umount "$TH_DIR"
    th_lvm lvchange -q -an vg0/thin
    th_lvm lvchange -q -ay --poll n vg0/thin
    dmsetup table vg0-thin
}

# tr_check_seeds (host): every seeded boot killed after its marker; what the next boot found.
tr_check_seeds() {
    local n s d log next landed exited step
    : >"$WORK/kills"
    for ((n = 2; n < TM_LAST; n++)); do
        s=$((n - 1)) log=$WORK/boot$n.serial.log next=$WORK/boot$((n + 1)).serial.log
        d=$(tm_delay_ms "$s")
        vm_check_eq "boot $n (seed $s) was killed" killed "$(cat "$WORK/boot$n.result" 2>/dev/null)"
        vm_check "boot $n printed its marker" grep -q "thin-random: polling, seed $s " "$log"
        exited=$(grep -o 'poll exited after [0-9]* ms' "$log" | head -n1 || true)
        # (after the marker: the boot's own poll of what the kill before it left comes first)
        step=$(sed -n '/thin-random: polling/,$p' "$log" | grep -oE 'rewind::flow::thinfinish\] .{0,90}' | tail -n1 || true)
        # Each finish step's time after the marker (ms, the guest's clock).
        grep -E 'thin-random: polling|rewind::flow::thinfinish\]' "$log" | sed -E 's/\r//' |
            awk '/thin-random: polling/ { split($0, a, " at "); split(a[2], t, /[: ]/); m = ((t[1] * 60 + t[2]) * 60 + t[3]) * 1000; next }
                 m && match($0, /T[0-9:.]+Z/) { split(substr($0, RSTART + 1, RLENGTH - 2), t, ":")
                     printf "  seed %s: +%d ms: %s\n", s, ((t[1] * 60 + t[2]) * 60 + t[3]) * 1000 - m, substr($0, index($0, "] ") + 2, 70) }' s="$s" |
            tee -a "$WORK/kills" || true
        landed=$(sed -n "s/^record: landed_boot$n = //p" "$next" | tail -n1 | tr -d '\r')
        printf 'seed %s: kill %s ms after the marker; %s; last finish step on the console: %s; the next boot found: %s\n' \
            "$s" "$d" "${exited:-poll still running}" "${step:-none}" "${landed:-nothing recorded}" | tee -a "$WORK/kills"
        vm_check "boot $((n + 1)) found boot $n's kill in a known state" test -n "$landed"
        vm_check "boot $((n + 1)) converged (rewind poll, ids equal, no tag, stock vgck)" \
            grep -q "^record: converged_boot$((n + 1)) = " "$next"
    done
}

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
    tc_check
}

# tc_check: thin_check ran in the initramfs, on both pools (boot 2).
tc_check() {
    local log=$VM_STATE/boot2/thin-check.log
    vm_check "stock thin_check failed on pool2's damaged metadata (boot 1)" \
        test -s "$VM_STATE/boot1/thin_check.out"
    vm_check "rewind early: vg0/pool's metadata passed thin_check" \
        grep -q 'thin pool vg0/pool: metadata checked by thin_check: fine' "$log"
    vm_check "rewind early: vg0/pool2's metadata failed thin_check, t2 not activated" \
        grep -q 'vg0/t2 is not activated: thin pool vg0/pool2: metadata check failed: ./usr/sbin/thin_check -q --clear-needs-check-flag /dev/mapper/vg0-pool2_tmeta. failed' "$log"
    vm_check "the console names the repair" grep -q 'lvconvert --repair vg0/pool2' "$log"
    vm_check "its parts were removed" grep -q 'pool2.*were removed' "$log"
    vm_check "the summary does not count t2 as set up" \
        grep -q 'rewind: done: [0-9]* flag(s) committed, [0-9]* volume(s) set up, 1 not; see the errors above' "$log"
    vm_check_eq "no device of pool2 or t2 left" "" "$(grep -E 'pool2|t2' "$VM_STATE/boot2/dm-names")"
    vm_check "vg0/thin came up" grep -qx 'vg0-thin' "$VM_STATE/boot2/dm-names"
    vm_check_eq "pool2's metadata not written" "$(cat "$VM_STATE/tc-meta-boot1")" "$(cat "$VM_STATE/tc-meta-boot2")"
}

host_check() {
    ((${#TM_KILLS[@]} == 0)) || tm_check_kills
    ((TM_SEEDS == 0)) || tr_check_seeds
    vm_check "boot 1 changed the data" \
        vm_files_differ "$VM_STATE/before.sha256" "$VM_STATE/after.sha256"
    vm_check "after the finish the data is still the snapshot's" \
        vm_compare_sums "$VM_STATE/before.sha256" "$VM_STATE/boot2-after-poll.sha256"
    vm_check_eq "snap2 unchanged" "$(cat "$VM_STATE/snap2-before")" "$(cat "$VM_STATE/snap2-after")"
    local last=$VM_STATE/boot$TM_LAST/poll.out
    if ((TM_SEEDS)); then
        : # where each kill landed is tr_check_seeds'
    elif ((${#TM_KILLS[@]})); then
        # The first kill came right after the finish's commit: the merge is finished in the
        # metadata, the delete is owed; the last boot only sends what is owed.
        vm_check "the last poll took up the owed delete" grep -q 'the kernel.s transaction id is 4, as the metadata.s' "$last"
    else
        vm_check "rewind poll finished the thin merge" grep -q 'thin merge into vg0/thin finished in the metadata' "$last"
        vm_check "rewind poll sent the pool its messages" grep -q 'delete 1 and set_transaction_id 3 4 sent' "$last"
    fi
    if ((TM_SEEDS)); then
        vm_check "rewind said it set up the merge (boot 2's console)" \
            grep -q 'rewind: vg0/thin merged: ' "$WORK/boot2.serial.log"
    elif ((${#TM_KILLS[@]})); then
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
    local want_id=2
    if ((TM_SEEDS)); then
        # The last merge: the last killed boot's.
        want_id=$(sed -n "s/^record: merge_boot$((TM_LAST - 1)) = [^ ]* //p" "$WORK/boot$((TM_LAST - 1)).serial.log" | tail -n1 | tr -d '\r')
        vm_check_eq "no rN snapshot left" "" "$(grep -E '^r[0-9]+,' <<<"$lvs")"
    fi
    vm_check_eq "thin carries the last merged snapshot's device id" "$want_id" \
        "$(vm_image_lvm "$img" lvs --noheadings -o thin_id vg0/thin | tr -d ' ')"
    tid=$(vm_image_lvm "$img" lvs --noheadings -o transaction_id vg0/pool | tr -d ' ')
    kernel_tid=$(awk '{ print $4 }' "$VM_STATE/pool-status")
    vm_check_eq "pool transaction id: metadata = kernel" "$tid" "$kernel_tid"
}
