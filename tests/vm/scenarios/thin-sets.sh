# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "thin-sets" (issue 19; docs/THIN.md, docs/SETS.md): a snapshot set with a thin and a
# classic member, taken, refused and rolled back, in two boots of the lean guest (dracut image
# with rewind and no LVM2, shell init).
# Boot 1: stock LVM2 makes a thin pool vg0/pool (64 MiB) with a thin LV vg0/t (ext4); vg0/a is a
#         classic LV (ext4). A stock thin snapshot vg0/ref (`lvcreate -s`) is the reference.
#         `rewind snapshot` of t and a stopped by the fail points `snapshot-in-window` (the
#         guardian resumes, the pool never took its messages) and `snapshot-after-window` (the
#         pool took them): every device resumed, the next command tidies each half-made set,
#         and the pool's transaction id in the metadata equals the kernel's. Then, while the
#         cross-LV writer of the sets scenario appends to t then a, `rewind snapshot --name s1`
#         of t and a: one instant (the writer's last numbers on the snapshots); the thin
#         member read back by stock lvs as ref (attributes, origin, pool, size, activation
#         skip), the next device id, the pool's transaction id one up in the metadata and in
#         `dmsetup status`. ref is removed (stock lvremove). A bad change on both LVs; the pool
#         filled above 80 %: a new set refused, seqno and LVs unchanged, nothing suspended;
#         `rewind list` shows the pool's fill as dmsetup counts it, `rewind watch` warns once.
# Boot 2: rd.rewind=s1: rewind early flags both members (the thin one as `lvconvert --merge`
#         does) and activates both origins through their merges (t's table carries t.s1's
#         device id, a is a snapshot-merge). Both show s1's content; `rewind poll` finishes
#         the classic merge and the thin one (thinfinish: delete and set_transaction_id).
# Host:   s1 is one instant; stock vgck; a, t, pool left, no member; the pool's transaction id in
#         the metadata equals the kernel's at the end.
# The guest's own LVM commands run with thin_check_executable = "" (rewind early's thin_check of
# the pool runs in boot 2; thin-merge proves it).

VM_BOOTS=2
VM_LVS=(root:1200M a:64M)
VM_DISK_SIZE=2G
VM_INITRAMFS_ARGS=(--no-lvm --no-systemd --modules-dir "${VM_REPO_DIR:-}/dracut-module")
VM_ROOT_ADD=(
    "${VM_REPO_DIR:-}/target/x86_64-unknown-linux-gnu/release/rewind:/usr/sbin/rewind"
    "${VM_REPO_DIR:-}/initramfs/rewind-early:/usr/lib/rewind/rewind-early"
)
VM_CMDLINE='root=/dev/mapper/vg0-root rd.lvm.lv=vg0/root ro printk.devkmsg=on'
# shellcheck source=tests/vm/lib/cross-writer.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/cross-writer.sh"

vm_boot_args() { [[ $1 == 2 ]] && echo 'rd.rewind=s1'; }

host_prepare() {
    (cd "$VM_REPO_DIR" && cargo build --release --quiet)
}

# The guest side -------------------------------------------------------------------------------

ts_lvm() {
    mkdir -p /run/lvm /run/lock/lvm
    lvm "$@" --config 'global { use_lvmpolld = 0 thin_check_executable = "" } activation { udev_sync = 0 udev_rules = 0 monitoring = 0 } devices { obtain_device_list_from_udev = 0 }'
}

ts_setup() {
    mkdir -p /run/lock/lvm
    # The initramfs's udevd left its socket; nothing listens after switch_root.
    rm -f /run/udev/control
    modprobe dm-thin-pool
}

# The pool's transaction id: in the metadata (stock lvs), in the kernel (dmsetup status).
ts_tid_meta() { ts_lvm lvs --noheadings -o transaction_id vg0/pool | tr -d ' '; }
ts_tid_kernel() { dmsetup status vg0-pool-tpool | awk '{ print $4 }'; }

# ts_in_step WHAT: the metadata's transaction id is the kernel's, no tag left on the pool.
ts_in_step() {
    local m k tags
    m=$(ts_tid_meta) k=$(ts_tid_kernel)
    tags=$(ts_lvm lvs --noheadings -o lv_tags vg0/pool | tr -d ' ')
    echo "$1: pool transaction id metadata $m, kernel $k, tags '$tags'"
    [[ -n $m && $m == "$k" ]] || g_fail "$1: the pool's transaction id is $m in the metadata, $k in the kernel"
    [[ -z $tags ]] || g_fail "$1: the pool still carries $tags"
}

# ts_resumed WHAT: no device suspended, both file systems take writes.
ts_resumed() {
    timeout 20 sh -c 'echo x >/mnt/t/probe && sync /mnt/t/probe && echo y >/mnt/a/probe && sync /mnt/a/probe' ||
        g_fail "$1: the origins are still suspended"
    if dmsetup info -c --noheadings -o name,suspended | grep -q Suspended; then
        g_fail "$1: a device is left suspended: $(dmsetup info -c --noheadings -o name,suspended)"
    fi
}

# The LVs of vg0 with their tags (what a refusal must leave as it was).
ts_lvs() { ts_lvm lvs -a --noheadings --separator , -o lv_name,lv_attr,origin,thin_id,lv_tags vg0 | tr -d ' ' | sort; }

# The cross-LV writer (tests/vm/lib/cross-writer.sh): N to /mnt/t/seq, fsync, N to /mnt/a/seq, fsync.
ts_writer_start() { cross_writer_start /mnt/t/seq /mnt/a/seq; }
ts_writer_stop() { cross_writer_stop; }

ts_sums() { sha256sum "$1/seq" "$1/f" "$2/seq" "$2/f" | awk '{ print $1 }'; }

guest_boot_1() {
    local out rc fp before after m k i id maxid
    ts_setup
    ts_lvm lvcreate -q --type thin-pool -L 64M --chunksize 64k -n pool vg0
    ts_lvm lvcreate -q -V 96M -T vg0/pool -n t
    ts_lvm lvchange -q -ay vg0/a
    # No discard of the whole device (slow under TCG, and nothing to discard on a new LV).
    mkfs.ext4 -q -E nodiscard /dev/mapper/vg0-t
    mkfs.ext4 -q -E nodiscard /dev/mapper/vg0-a
    mkdir -p /mnt/t /mnt/a
    mount /dev/mapper/vg0-t /mnt/t
    mount /dev/mapper/vg0-a /mnt/a
    g_fill /mnt/t/f 4 "thin-sets: t's file before"
    g_fill /mnt/a/f 4 "thin-sets: a's file before"
    sync
    # Stock LVM's thin snapshot, the reference for what rewind writes.
    echo "thin-sets: $(g_uptime) s: stock thin snapshot"
    ts_lvm lvcreate -q -s -n ref vg0/t
    ts_in_step "after stock lvcreate -s"

    # A set stopped inside the window and right after it: resumed, tidied, the pool in step.
    for fp in snapshot-in-window snapshot-after-window; do
        before=$(ts_lvs)
        rc=0
        REWIND_FAILPOINT=$fp rewind snapshot -v --name "x-$fp" vg0/t vg0/a >"$BOOT_OUT/$fp.out" 2>&1 || rc=$?
        cat "$BOOT_OUT/$fp.out"
        g_record "rc_$fp" "$rc"
        # Before the tidy: the pool took no message (in the window) or all of them (after).
        g_record "tids_$fp" "$(ts_tid_meta)/$(ts_tid_kernel)"
        ts_resumed "$fp"
        ts_lvs >"$BOOT_OUT/lvs-$fp"
        dmsetup status vg0-pool-tpool | tee "$BOOT_OUT/pool-$fp"
        # The next command tidies the half-made set.
        rewind list >"$BOOT_OUT/list-$fp" 2>&1 || g_fail "rewind list after $fp: $(cat "$BOOT_OUT/list-$fp")"
        cat "$BOOT_OUT/list-$fp"
        after=$(ts_lvs)
        [[ $after == "$before" ]] || g_fail "after $fp and the tidy the LVs are not as before: $after (was $before)"
        ts_in_step "$fp, tidied"
    done

    echo "thin-sets: $(g_uptime) s: s1"
    # s1: one instant across the thin and the classic member.
    m=$(ts_tid_meta)
    maxid=$(ts_lvm lvs -a --noheadings -o thin_id vg0 | awk 'NF && $1 > n { n = $1 } END { print n + 0 }')
    ts_writer_start
    out=$(rewind snapshot -v --name s1 --description "thin and classic" vg0/t vg0/a 2>&1) ||
        g_fail "rewind snapshot s1 failed: $out"
    ts_writer_stop
    echo "$out" | tee "$BOOT_OUT/snapshot.out"
    g_record s1_window_ms "$(sed -n 's/.*writes held for \([0-9.]*\) ms.*/\1/p' <<<"$out")"
    rewind list | tee "$BOOT_OUT/list1"
    ts_lvm lvs -a -o lv_name,lv_attr,origin,pool_lv,thin_id,transaction_id,lv_tags vg0 | tee "$BOOT_OUT/lvs1"
    ts_in_step "after s1"
    g_record tid_before_s1 "$m"
    g_record tid_after_s1 "$(ts_tid_meta)"
    g_record maxid_before_s1 "$maxid"
    id=$(ts_lvm lvs --noheadings -o thin_id vg0/t.s1 | tr -d ' ')
    g_record s1_thin_id "$id"
    # The thin member against stock lvcreate -s's ref, as stock lvs reads them (both inactive).
    ts_lvm lvchange -q -an vg0/ref
    for lv in ref t.s1; do
        ts_lvm lvs --noheadings --separator , -o lv_attr,origin,pool_lv,lv_size,skip_activation,segtype,lv_layout,lv_role "vg0/$lv" | tr -d ' '
    done | tee "$BOOT_OUT/ref-vs-s1"
    [[ $(sort -u "$BOOT_OUT/ref-vs-s1" | wc -l) == 1 ]] || g_fail "t.s1 does not read back as stock lvcreate -s's ref"
    # The segments in the metadata text, ids, times and tags aside; the segment's
    # transaction_id is the pool's before each.
    ts_lvm vgcfgbackup -q -f /run/ts.vg vg0
    for lv in ref t.s1; do
        awk -v n="$lv" '!on && $1 == n && $2 == "{" { on = 1; d = 0 }
            on { o = gsub(/\{/, "{"); c = gsub(/\}/, "}"); d += o - c; print; if (d == 0) exit }' /run/ts.vg |
            grep -vE '^\s*(id|creation_time|creation_host|device_id|transaction_id) =|^\s*tags = |\{$' >"$BOOT_OUT/text-$lv"
    done
    cat "$BOOT_OUT/text-t.s1"
    cmp "$BOOT_OUT/text-ref" "$BOOT_OUT/text-t.s1" || g_fail "t.s1's metadata text differs from ref's: $(diff "$BOOT_OUT/text-ref" "$BOOT_OUT/text-t.s1")"
    g_record s1_seg_tid "$(awk '!on && $1 == "t.s1" { on = 1 } on && $1 == "transaction_id" { print $3; exit }' /run/ts.vg)"
    # s1's content, read from the snapshots.
    ts_lvm lvchange -q -ay -K vg0/t.s1
    mkdir -p /mnt/st /mnt/sa
    mount -o ro,noload /dev/mapper/vg0-t.s1 /mnt/st
    mount -o ro,noload /dev/mapper/vg0-a.s1 /mnt/sa
    g_record s1_t_last "$(tail -n1 /mnt/st/seq)"
    g_record s1_a_last "$(tail -n1 /mnt/sa/seq)"
    ts_sums /mnt/st /mnt/sa >"$OUT/s1.sums"
    umount /mnt/st /mnt/sa
    ts_lvm lvchange -q -an vg0/t.s1
    ts_lvm lvremove -q -f vg0/ref
    ts_in_step "after stock lvremove of ref"

    echo "thin-sets: $(g_uptime) s: bad change, fill"
    # The bad change.
    echo "bad change" >>/mnt/t/seq
    echo "bad change" >>/mnt/a/seq
    g_fill /mnt/t/f 4 "thin-sets: t's file after a bad change"
    g_fill /mnt/a/f 4 "thin-sets: a's file after a bad change"
    sync
    ts_sums /mnt/t /mnt/a >"$OUT/bad.sums"

    # The pool filled past 80 % (the default thin_min_free_percent is 20): refused, nothing
    # changed. Filled to about 85 % in one write and checked: a full pool would queue every
    # write.
    read -r m k < <(dmsetup status vg0-pool-tpool | awk '{ split($6, d, "/"); print d[1], d[2] }')
    # Data blocks of the pool's 64 KiB chunks to 85 %, in MiB (16 blocks each).
    i=$(((k * 85 / 100 - m) / 16))
    ((i > 0)) && dd if=/dev/urandom of=/mnt/t/fill bs=1M count="$i" conv=fsync status=none
    read -r m k < <(dmsetup status vg0-pool-tpool | awk '{ split($6, d, "/"); print d[1], d[2] }')
    ((m * 100 > k * 80)) || g_fail "the pool is only at $m/$k blocks"
    dmsetup status vg0-pool-tpool | tee "$BOOT_OUT/pool-full"
    g_record pool_data_used "$m/$k"
    before="$(ts_lvs) seqno $(ts_lvm vgs --noheadings -o seqno vg0 | tr -d ' ')"
    if out=$(rewind snapshot --name s9 vg0/t vg0/a 2>&1); then
        g_fail "a set was taken on a pool above its threshold: $out"
    fi
    echo "$out" | tee "$BOOT_OUT/refused-full"
    grep -q 'below thin_min_free_percent' <<<"$out" || g_fail "unexpected refusal: $out"
    after="$(ts_lvs) seqno $(ts_lvm vgs --noheadings -o seqno vg0 | tr -d ' ')"
    [[ $after == "$before" ]] || g_fail "the refusal changed vg0: $after (was $before)"
    ts_resumed "refused set"
    ts_in_step "refused set"

    # The pool's fill as `rewind list` shows it beside the set (the kernel's status, the same
    # percent as dmsetup's blocks), and `rewind watch` warning once per crossing.
    out=$(rewind list 2>&1) || g_fail "rewind list failed: $out"
    echo "$out" | tee "$BOOT_OUT/list-full"
    # The percent list shows against dmsetup's blocks read just after (the file system may
    # have taken a block since the refusal).
    shown=$(sed -n 's|.*thin pool vg0/pool (active as vg0-pool-tpool: data \([0-9.]*\)% full.*|\1|p' <<<"$out")
    read -r m k < <(dmsetup status vg0-pool-tpool | awk '{ split($6, d, "/"); print d[1], d[2] }')
    awk -v s="$shown" -v m="$m" -v k="$k" 'BEGIN { d = s - m * 100 / k; exit !(s != "" && s >= 80 && d < 0.2 && d > -0.2) }' ||
        g_fail "rewind list does not show the pool at $m/$k blocks (shown: '$shown'): $out"
    out=$(rewind watch --json 2>&1) || g_fail "rewind watch failed: $out"
    echo "$out" | tee "$BOOT_OUT/watch-1"
    tr -d ' \n' <<<"$out" | grep -q '"action":"pool_warned","pool":"vg0/pool","part":"data","percent":[0-9.]*,"crossed":true' ||
        g_fail "the first watch did not warn of the pool's data: $out"
    out=$(rewind watch --json 2>&1) || g_fail "rewind watch (2) failed: $out"
    echo "$out" | tee "$BOOT_OUT/watch-2"
    tr -d ' \n' <<<"$out" | grep -q '"part":"data","percent":[0-9.]*,"crossed":false' ||
        g_fail "the second watch warned again or forgot the pool: $out"
    umount /mnt/t /mnt/a
}

guest_boot_2() {
    local rc=0
    ts_setup
    dmesg | grep 'rewind:' | tee "$BOOT_OUT/rewind.log" || true
    dmsetup table | tee "$BOOT_OUT/dm-at-init"
    grep -q '^vg0-a: .* snapshot-merge ' "$BOOT_OUT/dm-at-init" || g_fail "vg0/a is not merging"
    g_record t_table_id "$(awk '$1 == "vg0-t:" && $4 == "thin" { print $6 }' "$BOOT_OUT/dm-at-init")"
    ts_lvm lvs -a -o lv_name,lv_attr,origin,thin_id,lv_tags vg0 | tee "$BOOT_OUT/lvs-flagged"
    dmsetup status vg0-pool-tpool | tee "$BOOT_OUT/pool-before-poll"
    echo "thin-sets: $(g_uptime) s: mount"
    # Both members show s1's content before anything is finished.
    mkdir -p /mnt/t /mnt/a
    mount /dev/mapper/vg0-t /mnt/t
    mount /dev/mapper/vg0-a /mnt/a
    ts_sums /mnt/t /mnt/a >"$BOOT_OUT/at-boot.sums"
    g_record back_t_last "$(tail -n1 /mnt/t/seq)"
    g_record back_a_last "$(tail -n1 /mnt/a/seq)"
    [[ ! -e /mnt/t/fill ]] || g_fail "the pool's fill file survived the rollback"
    cmp "$OUT/s1.sums" "$BOOT_OUT/at-boot.sums" || g_fail "the members are not at s1's instant"
    echo "thin-sets: $(g_uptime) s: poll"
    # The poller finishes both merges: the classic copy, the thin finish.
    RUST_LOG=info rewind poll -v >"$BOOT_OUT/poll.out" 2>&1 || rc=$?
    cat "$BOOT_OUT/poll.out"
    [[ $rc == 0 ]] || g_fail "rewind poll exited $rc"
    ts_lvm lvs -a -o lv_name,lv_attr,origin,thin_id,transaction_id,lv_tags vg0 | tee "$BOOT_OUT/lvs-end"
    dmsetup table | tee "$BOOT_OUT/dm-end"
    dmsetup status vg0-pool-tpool | tee "$OUT/pool-status-end"
    ts_in_step "after rewind poll"
    echo "thin-sets: $(g_uptime) s: end checks"
    ts_sums /mnt/t /mnt/a >"$BOOT_OUT/after-poll.sums"
    cmp "$OUT/s1.sums" "$BOOT_OUT/after-poll.sums" || g_fail "after the finish the members are not at s1's instant"
    umount /mnt/t /mnt/a
    rewind list | tee "$BOOT_OUT/list-end"
    ts_lvm vgck vg0
}

host_check() {
    local t a d
    t=$(vm_guest_value s1_t_last) a=$(vm_guest_value s1_a_last)
    d=$((a - t))
    vm_check "s1 is one instant (a's last ${a} is t's ${t} or t's minus one)" test "$d" -le 0 -a "$d" -ge -1
    printf 'thin-sets: B - A = %s, window %s ms, pool filled to %s blocks\n' \
        "$d" "$(vm_guest_value s1_window_ms)" "$(vm_guest_value pool_data_used)"
    vm_check_eq "a set killed inside the window exited as killed" 137 "$(vm_guest_value rc_snapshot-in-window)"
    vm_check_eq "a set killed after the window exited as killed" 137 "$(vm_guest_value rc_snapshot-after-window)"
    local mk
    mk=$(vm_guest_value tids_snapshot-in-window)
    vm_check_eq "killed inside the window: the pool took no message (metadata one ahead, $mk)" \
        "$((${mk#*/} + 1))" "${mk%/*}"
    mk=$(vm_guest_value tids_snapshot-after-window)
    vm_check_eq "killed after the window: the pool took its messages (in step, $mk)" "${mk#*/}" "${mk%/*}"
    vm_check_eq "t.s1: the next device id" "$(($(vm_guest_value maxid_before_s1) + 1))" "$(vm_guest_value s1_thin_id)"
    vm_check_eq "t.s1: its segment's transaction_id the pool's before" \
        "$(vm_guest_value tid_before_s1)" "$(vm_guest_value s1_seg_tid)"
    vm_check_eq "s1 raised the pool's transaction id by one" \
        "$(($(vm_guest_value tid_before_s1) + 1))" "$(vm_guest_value tid_after_s1)"
    vm_check_eq "boot 2: t's thin table carries t.s1's device id" \
        "$(vm_guest_value s1_thin_id)" "$(vm_guest_value t_table_id)"
    vm_check_eq "the bad change changed every member file (seq and f of t and a)" 4 \
        "$(paste "$VM_STATE/s1.sums" "$VM_STATE/bad.sums" | awk '$1 != $2' | wc -l)"
    vm_check_eq "after the rollback t shows s1's last number" "$t" "$(vm_guest_value back_t_last)"
    vm_check_eq "after the rollback a shows s1's last number" "$a" "$(vm_guest_value back_a_last)"
    vm_check "boot 2: rd.rewind=s1 flagged the thin member" grep -q 'vg0/t.s1: merge flag committed' "$WORK/boot2.serial.log"
    vm_check "boot 2: rd.rewind=s1 flagged the classic member" grep -q 'vg0/a.s1: merge flag committed' "$WORK/boot2.serial.log"
    vm_check "rewind poll finished the thin merge" grep -q 'thin merge into vg0/t finished in the metadata' "$VM_STATE/boot2/poll.out"
    local img=$WORK/disk.img lvs tid
    vm_check "vgck vg0" vm_image_lvm "$img" vgck vg0
    lvs=$(vm_image_lvm "$img" lvs --noheadings -o lv_name vg0 | tr -d ' ' | sort | paste -sd,)
    vm_check_eq "vg0's LVs at the end" "a,pool,root,t" "$lvs"
    tid=$(vm_image_lvm "$img" lvs --noheadings -o transaction_id vg0/pool | tr -d ' ')
    vm_check_eq "pool transaction id: metadata = kernel" "$tid" "$(awk '{ print $4 }' "$VM_STATE/pool-status-end")"
}
