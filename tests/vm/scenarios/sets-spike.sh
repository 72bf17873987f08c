# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "sets-spike" (issue 14, step 1; docs/SETS.md): one instant of several LVs in two
# VGs taken with device-mapper directly (examples/set_spike.rs over rewind::system::window),
# against stock serial `lvcreate -s` of the same LVs, same guest, same run.
# Boot 1 (lean shell-init guest, no udev): vg0/a, vg0/c on the root disk, vgb/b, vgb/d on an
#   extra disk, ext4 each, mounted. A writer appends 1, 2, ... to a file on A then on B (each
#   fsynced) throughout. kprobes on dm_suspend (entry) and dm_resume (return) time every
#   suspend window in the kernel.
#   round stock:  `lvcreate -s` of a, b, c, d, one after another.
#   round window: the COW LVs made by stock `lvcreate -an -Zn -Wn` and activated plain; then
#                 `set_spike instant` lays out LVM's snapshot devices for all four and takes the
#                 window (suspend all with lockfs, resume the snapshots, resume the origins).
#   round root:   the same with vg0/root among the members (the process runs from the root it
#                 freezes), plus a and b.
#   Each round: the snapshots of A and B mounted read-only, their last numbers read.
# Host: the window rounds are one instant (B's last number is A's or A's minus one) and
#   succeeded; the stock round's pair is reported (not asserted: it is what the benchmark
#   compares); the kernel's suspend windows and the totals are printed.

VM_SCENARIO_SUITE=long
VM_BOOTS=1
# run.sh has set VM_TIMEOUT (default 300) before this file is read: the rounds need more.
VM_TIMEOUT=${SPIKE_TIMEOUT:-1200}
VM_LVS=(root:1200M a:96M c:96M)
VM_DISK_SIZE=2G
VM_ROOT_ADD=("${VM_REPO_DIR:-}/target/x86_64-unknown-linux-gnu/release/examples/set_spike:/usr/local/sbin/set_spike")

SPIKE_ROUNDS=${SPIKE_ROUNDS:-2}

host_prepare() {
    (cd "$VM_REPO_DIR" && cargo build --release --quiet --example set_spike)
    truncate -s 512M "$WORK/vgb.img"
    VM_EXTRA_DISKS+=("$WORK/vgb.img:vmvgb")
    echo "$SPIKE_ROUNDS" >"$VM_STATE/rounds"
}

# The guest side -------------------------------------------------------------------------------

s_disk() {
    local s
    for s in /sys/block/*/serial; do
        if [[ $(cat "$s" 2>/dev/null) == "$1" ]]; then
            echo "/dev/$(basename "$(dirname "$s")")"
            return
        fi
    done
    g_fail "no disk with serial $1"
}

s_now_ms() {
    local t
    t=$(date +%s%N)
    echo $((t / 1000000))
}

S_TRACE=/sys/kernel/tracing

s_trace_setup() {
    mountpoint -q $S_TRACE || mount -t tracefs tracefs $S_TRACE
    echo 0 >$S_TRACE/tracing_on
    echo >$S_TRACE/kprobe_events
    echo 'p:rwsus dm_mod:dm_suspend' >>$S_TRACE/kprobe_events
    echo 'r:rwres dm_mod:dm_resume' >>$S_TRACE/kprobe_events
    echo 1 >$S_TRACE/events/kprobes/enable
    echo 4096 >$S_TRACE/buffer_size_kb
}

s_trace_start() {
    echo >$S_TRACE/trace
    echo 1 >$S_TRACE/tracing_on
}

# s_trace_stop FILE: the events as "COMM PID TIMESTAMP EVENT" lines.
s_trace_stop() {
    echo 0 >$S_TRACE/tracing_on
    sed -n 's/^ *\(.*\)-\([0-9][0-9]*\) *\[[0-9]*\][^0-9]*\([0-9][0-9]*\.[0-9]*\): \(rwsus\|rwres\):.*/\1 \2 \3 \4/p' \
        $S_TRACE/trace >"$1"
}

# s_windows EVENTS COMM: for each process named COMM, its window in microseconds: from its first
# suspend's entry to the return of its last resume after it.
s_windows() {
    awk -v comm="$2" '$1 == comm {
        if ($4 == "rwsus" && !($2 in first)) { first[$2] = $3; order[++n] = $2 }
        if ($4 == "rwres" && ($2 in first)) last[$2] = $3
    } END {
        for (i = 1; i <= n; i++) { p = order[i]; printf "%d\n", (last[p] - first[p]) * 1000000 }
    }' "$1"
}

s_mount_all() {
    local lv
    for lv in vg0/a vgb/b vg0/c vgb/d; do
        mkdir -p "/mnt/${lv#*/}"
        mount "/dev/$lv" "/mnt/${lv#*/}"
    done
}

s_writer_start() {
    rm -f /run/spike.stop
    set_spike writer /mnt/a/seq /mnt/b/seq /run/spike.stop >"$BOOT_OUT/writer.$1" 2>&1 &
    S_WRITER=$!
    sleep 2
}

s_writer_stop() {
    sleep 1
    touch /run/spike.stop
    wait "$S_WRITER" || g_fail "the writer failed: $(cat "$BOOT_OUT/writer.$1")"
    cat "$BOOT_OUT/writer.$1"
}

# s_pair ROUND DEV_A DEV_B: the last numbers on the snapshots of A and B (read-only mounts:
# ext4 replays its journal, if the snapshot needs it, into the snapshot).
s_pair() {
    local a b
    mkdir -p /mnt/sa /mnt/sb
    mount -o ro "$2" /mnt/sa
    mount -o ro "$3" /mnt/sb
    a=$(tail -n1 /mnt/sa/seq)
    b=$(tail -n1 /mnt/sb/seq)
    umount /mnt/sa /mnt/sb
    g_record "$1_a_last" "$a"
    g_record "$1_b_last" "$b"
    g_record "$1_b_minus_a" $((b - a))
}

s_round_stock() {
    local r=$1 lv t0 t1 sum=0 w
    s_writer_start "stock$r"
    s_trace_start
    t0=$(s_now_ms)
    for lv in vg0/a vgb/b vg0/c vgb/d; do
        t1=$(s_now_ms)
        g_lvm lvcreate -q -s -n "s${lv#*/}" -L 24M "$lv" >/dev/null
        g_record "stock${r}_lvcreate_${lv#*/}_ms" $(($(s_now_ms) - t1))
    done
    g_record "stock${r}_total_ms" $(($(s_now_ms) - t0))
    s_writer_stop "stock$r"
    s_trace_stop "$BOOT_OUT/trace.stock$r"
    while read -r w; do
        sum=$((sum + w))
        g_record "stock${r}_window_us" "$w"
    done < <(s_windows "$BOOT_OUT/trace.stock$r" lvm)
    g_record "stock${r}_windows_sum_us" "$sum"
    s_pair "stock$r" /dev/mapper/vg0-sa /dev/mapper/vgb-sb
    g_lvm lvremove -q -f vg0/sa vgb/sb vg0/sc vgb/sd >/dev/null
}

# s_prepare_cows SUFFIX LV...: a plain COW LV per member (stock LVM allocates it, inactive and
# not zeroed, as rewind snapshot does), then activated plain for set_spike to zero and reuse.
s_prepare_cows() {
    local sfx=$1 lv
    shift
    for lv in "$@"; do
        g_lvm lvcreate -q -an -Zn -Wn -n "i${lv#*/}$sfx" -L 24M "${lv%/*}" >/dev/null
        g_lvm lvchange -q -ay "${lv%/*}/i${lv#*/}$sfx"
    done
}

# s_teardown ORIGIN_DM:COW_DM...: by hand, what rewind delete will do: origin back to its plain
# table, the snapshot's devices removed, the COW LV removed from the metadata by stock LVM.
s_teardown() {
    local m o c
    for m in "$@"; do
        o=${m%%:*} c=${m#*:}
        dmsetup table "$o-real" | dmsetup load "$o"
        dmsetup suspend "$o"
        dmsetup resume "$o"
        dmsetup remove "$c" "$c-cow" "$o-real"
        g_lvm lvremove -q -f "${c%%-*}/${c#*-}" >/dev/null
    done
}

s_round_window() {
    local r=$1 out w
    local members=(vg0-a:vg0-ia"$r" vgb-b:vgb-ib"$r" vg0-c:vg0-ic"$r" vgb-d:vgb-id"$r")
    s_prepare_cows "$r" vg0/a vgb/b vg0/c vgb/d
    s_writer_start "window$r"
    s_trace_start
    out=$(set_spike instant 5000 "${members[@]}") || g_fail "set_spike instant failed: $out"
    s_trace_stop "$BOOT_OUT/trace.window$r"
    s_writer_stop "window$r"
    echo "$out"
    g_record "window${r}_internal_us" "$(awk '{ print $2 }' <<<"$out")"
    w=$(s_windows "$BOOT_OUT/trace.window$r" set_spike)
    g_record "window${r}_kernel_us" "$w"
    dmsetup mknodes
    dmsetup table | tee "$BOOT_OUT/tables.window$r"
    s_pair "window$r" "/dev/mapper/vg0-ia$r" "/dev/mapper/vgb-ib$r"
    s_teardown "${members[@]}"
}

guest_boot_1() {
    local vgb r
    mkdir -p /run/lock/lvm
    rm -f /run/udev/control
    vgb=$(s_disk vmvgb)
    g_lvm pvcreate -q "$vgb" >/dev/null
    g_lvm vgcreate -q vgb "$vgb" >/dev/null
    g_lvm lvcreate -q -n b -L 96M vgb >/dev/null
    g_lvm lvcreate -q -n d -L 96M vgb >/dev/null
    g_lvm vgchange -q -ay vg0 >/dev/null
    for lv in vg0/a vgb/b vg0/c vgb/d; do
        mkfs.ext4 -q "/dev/$lv"
    done
    s_mount_all
    s_trace_setup
    for ((r = 1; r <= $(cat "$OUT/rounds"); r++)); do
        s_round_stock "$r"
        s_round_window "$r"
    done

    # The root among the members: the process that freezes it runs from it.
    local members=(vg0-root:vg0-ir vg0-a:vg0-iar vgb-b:vgb-ibr) out
    s_prepare_cows "" vg0/r # vg0/ir, the root's store
    s_prepare_cows r vg0/a vgb/b
    s_writer_start root
    s_trace_start
    out=$(set_spike instant 5000 "${members[@]}") || g_fail "set_spike instant with root failed: $out"
    s_trace_stop "$BOOT_OUT/trace.root"
    echo "root-written-after-the-window" >/root-after
    sync
    s_writer_stop root
    echo "$out"
    g_record root_internal_us "$(awk '{ print $2 }' <<<"$out")"
    g_record root_kernel_us "$(s_windows "$BOOT_OUT/trace.root" set_spike)"
    dmsetup mknodes
    s_pair root /dev/mapper/vg0-iar /dev/mapper/vgb-ibr
    mkdir -p /mnt/sr
    mount -o ro /dev/mapper/vg0-ir /mnt/sr
    [[ -x /mnt/sr/usr/local/sbin/set_spike ]] || g_fail "the root's snapshot does not show the root"
    [[ ! -e /mnt/sr/root-after ]] || g_fail "the root's snapshot shows a file written after the window"
    umount /mnt/sr
    g_record root_done 1
    dmesg | grep -i -e 'device-mapper' -e 'freez' -e 'thaw' | tail -n 40 || true
}

host_check() {
    local r n
    n=$(cat "$VM_STATE/rounds")
    for ((r = 1; r <= n; r++)); do
        vm_check "round $r: the window's set is one instant (B last = A last or A last - 1)" \
            test "$(vm_guest_value "window${r}_b_minus_a")" -le 0 -a "$(vm_guest_value "window${r}_b_minus_a")" -ge -1
        printf 'round %s: stock B-A %s (windows sum %s us, total %s ms); window B-A %s (window %s us inside, %s us in the kernel)\n' \
            "$r" "$(vm_guest_value "stock${r}_b_minus_a")" "$(vm_guest_value "stock${r}_windows_sum_us")" \
            "$(vm_guest_value "stock${r}_total_ms")" "$(vm_guest_value "window${r}_b_minus_a")" \
            "$(vm_guest_value "window${r}_internal_us")" "$(vm_guest_value "window${r}_kernel_us")"
    done
    vm_check "root among the members: the window ended and the root's snapshot is the instant's" \
        test "$(vm_guest_value root_done)" = 1
    vm_check "root round: one instant" \
        test "$(vm_guest_value root_b_minus_a)" -le 0 -a "$(vm_guest_value root_b_minus_a)" -ge -1
}
