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

# s_windows EVENTS COMM: for each process named COMM (in the order they started), its window in
# microseconds: the longest stretch during which that process had at least one device
# suspended (from a suspend's entry while none was, to the return of the resume that left none).
# A new device's own activation is a suspend and a resume a fraction of a millisecond apart.
s_windows() {
    awk -v comm="$2" '$1 == comm {
        p = $2
        if (!(p in seen)) { seen[p] = 1; order[++n] = p }
        if ($4 == "rwsus") { if (depth[p] == 0) since[p] = $3; depth[p]++ }
        else if (depth[p] > 0) {
            depth[p]--
            if (depth[p] == 0 && $3 - since[p] > longest[p]) longest[p] = $3 - since[p]
        }
    } END {
        for (i = 1; i <= n; i++) printf "%d\n", longest[order[i]] * 1000000
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

# s_round_window ROUND KIND [--parallel]: KIND names the round (window: one suspend after
# another; windowp: every suspend at once).
s_round_window() {
    local r=$1 k=$2 out
    shift 2
    local members=(vg0-a:vg0-ia"$r" vgb-b:vgb-ib"$r" vg0-c:vg0-ic"$r" vgb-d:vgb-id"$r")
    s_prepare_cows "$r" vg0/a vgb/b vg0/c vgb/d
    s_writer_start "$k$r"
    s_trace_start
    out=$(set_spike instant "$@" 5000 "${members[@]}") || g_fail "set_spike instant failed: $out"
    s_trace_stop "$BOOT_OUT/trace.$k$r"
    s_writer_stop "$k$r"
    echo "$out"
    g_record "$k${r}_internal_us" "$(awk '{ print $2 }' <<<"$out")"
    g_record "$k${r}_suspended_at_us" "$(awk '{ print $4 }' <<<"$out")"
    g_record "$k${r}_kernel_us" "$(s_windows "$BOOT_OUT/trace.$k$r" set_spike | sort -n | tail -n1)"
    dmsetup mknodes
    dmsetup table >"$BOOT_OUT/tables.$k$r"
    s_pair "$k$r" "/dev/mapper/vg0-ia$r" "/dev/mapper/vgb-ib$r"
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
        s_round_window "$r" window
        s_round_window "$((r + 10))" windowp --parallel
    done

    # The root among the members: the process that freezes it runs from it.
    local members=(vg0-root:vg0-ir vg0-a:vg0-iar vgb-b:vgb-ibr) out
    s_prepare_cows "" vg0/r # vg0/ir, the root's store
    s_prepare_cows r vg0/a vgb/b
    s_writer_start root
    s_trace_start
    out=$(set_spike instant --parallel 5000 "${members[@]}") || g_fail "set_spike instant with root failed: $out"
    s_trace_stop "$BOOT_OUT/trace.root"
    echo "root-written-after-the-window" >/root-after
    sync
    s_writer_stop root
    echo "$out"
    g_record root_internal_us "$(awk '{ print $2 }' <<<"$out")"
    g_record root_kernel_us "$(s_windows "$BOOT_OUT/trace.root" set_spike | sort -n | tail -n1)"
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
    local k d
    for ((r = 1; r <= n; r++)); do
        for k in "window$r" "windowp$((r + 10))"; do
            d=$(vm_guest_value "${k}_b_minus_a")
            vm_check "$k: the set is one instant (B last = A last or A last - 1)" test "$d" -le 0 -a "$d" -ge -1
        done
        printf 'round %s: stock B-A %s (windows sum %s us, total %s ms); sequential B-A %s (window %s us inside, %s us in the kernel); parallel B-A %s (%s us, %s us)\n' \
            "$r" "$(vm_guest_value "stock${r}_b_minus_a")" "$(vm_guest_value "stock${r}_windows_sum_us")" \
            "$(vm_guest_value "stock${r}_total_ms")" "$(vm_guest_value "window${r}_b_minus_a")" \
            "$(vm_guest_value "window${r}_internal_us")" "$(vm_guest_value "window${r}_kernel_us")" \
            "$(vm_guest_value "windowp$((r + 10))_b_minus_a")" "$(vm_guest_value "windowp$((r + 10))_internal_us")" \
            "$(vm_guest_value "windowp$((r + 10))_kernel_us")"
    done
    vm_check "root among the members: the window ended and the root's snapshot is the instant's" \
        test "$(vm_guest_value root_done)" = 1
    vm_check "root round: one instant" \
        test "$(vm_guest_value root_b_minus_a)" -le 0 -a "$(vm_guest_value root_b_minus_a)" -ge -1
}
