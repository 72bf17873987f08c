# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "bench-activate" (issue 4): `rewind early` against `lvm vgchange -ay --sysinit`, in
# one guest run, on the same VG (`vgb` on an extra disk), alternating the two tools.
# Boot 1 (shell-init root; the root VG was activated by dracut's stock lvm module):
#   phase udev:   systemd-udevd runs as in an initramfs; LVM uses udev_sync (its defaults).
#     layout plain: vgb/lv, one linear LV.
#     layout merge: vgb/snap, a snapshot of vgb/lv flagged by stock `lvconvert --merge` while
#                   vgb was inactive: every activation loads the merge tables (see below).
#   phase noudev: udevd stopped (`udevadm control --exit`); LVM with udev_sync = 0.
#   phase stale:  udevd killed with SIGKILL, so /run/udev/control stays, unconnectable; rewind
#                 only (LVM's own udev check would wait for ever there).
#   floor:        each program started with nothing to do (`rewind --version`, `lvm version`,
#                 `/bin/true`): what a process costs in this guest before any work.
#   Each (phase, layout): one untimed warm-up per tool, then BENCH_ROUNDS rounds of both tools
#   (order alternating), each activation timed with the guest's clock, its dm tables recorded
#   (device numbers replaced by names), then `vgchange -an vgb`.
# With VM_ICOUNT=0 the guest's clock counts instructions (1 ns each): TCG's translation of each
# new process's code, which a real CPU does not pay, is then not in the figures.
# Host: every activation exited 0 and left the tables LVM itself loads (rewind's equal to
# LVM's, per phase and layout); no udev cookie semaphore was left; prints medians and ratios.
#
# What "merge" measures: the snapshot holds a few exceptions, so the kernel finishes copying
# them back during the first (warm-up) activation; the metadata keeps the merge flag (nothing
# polls: `--sysinit` starts no poller), so every later activation by either tool loads the same
# three devices (`vgb-lv` snapshot-merge over `vgb-lv-real` and `vgb-snap-cow`) over a store with
# no exceptions left. That is the cost of setting a merge up, without the kernel's copy.

VM_SCENARIO_SUITE=long
VM_BOOTS=1
# At least 900 s: the runner has already set its default of 300 when a scenario is read.
VM_TIMEOUT=$((${VM_TIMEOUT:-0} > 900 ? VM_TIMEOUT : 900))
# The build that goes into the initramfs (`rewind-initramfs`: `early` and `--version` are all
# this scenario runs), as /usr/sbin/rewind; BENCH_BUILD=rewind times the full binary instead.
# BENCH_BIN=FILE times that binary instead (built elsewhere: nothing is built then).
VM_ROOT_ADD=("${BENCH_BIN:-${VM_REPO_DIR:-}/target/x86_64-unknown-linux-gnu/release/${BENCH_BUILD:-rewind-initramfs}}:/usr/sbin/rewind")
# BENCH_BASE=FILE[:FILE...]: other builds of rewind (say main's, to compare a change against)
# as /usr/sbin/rewind-base1, -base2 ..., timed as the tools "base1", "base2" ... beside the two
# others in the noudev phase (the phase of issue 17's goal), same rounds, same checks of their
# tables.
BENCH_BASES=()
[[ -z ${BENCH_BASE:-} ]] || IFS=: read -r -a BENCH_BASES <<<"$BENCH_BASE"
for ((b_i = 0; b_i < ${#BENCH_BASES[@]}; b_i++)); do
    VM_ROOT_ADD+=("${BENCH_BASES[b_i]}:/usr/sbin/rewind-base$((b_i + 1))")
done

BENCH_ROUNDS=${BENCH_ROUNDS:-5}
BENCH_STALE_ROUNDS=2
# LVM in the booted root with no lvmpolld or dmeventd running; every device scanned (no devices
# file), as in an initramfs.
BENCH_LVM_UDEV='global { use_lvmpolld = 0 } activation { monitoring = 0 } devices { use_devicesfile = 0 obtain_device_list_from_udev = 0 }'
BENCH_LVM_NOUDEV='global { use_lvmpolld = 0 } activation { udev_sync = 0 udev_rules = 0 monitoring = 0 } devices { use_devicesfile = 0 obtain_device_list_from_udev = 0 }'

host_prepare() {
    [[ -n ${BENCH_BIN:-} ]] || (cd "$VM_REPO_DIR" && cargo build --release --quiet)
    truncate -s 256M "$WORK/bench.img"
    VM_EXTRA_DISKS+=("$WORK/bench.img:vmbench")
    echo "$BENCH_ROUNDS" >"$VM_STATE/rounds"
}

# The guest side -------------------------------------------------------------------------------

b_lvm() {
    local cfg=$BENCH_LVM_UDEV
    [[ $B_PHASE == udev ]] || cfg=$BENCH_LVM_NOUDEV
    mkdir -p /run/lvm /run/lock/lvm
    lvm "$@" --config "$cfg"
}

b_disk() {
    local s
    for s in /sys/block/*/serial; do
        if [[ $(cat "$s" 2>/dev/null) == vmbench ]]; then
            echo "/dev/$(basename "$(dirname "$s")")"
            return
        fi
    done
    g_fail "no disk with serial vmbench"
}

# The live tables of vgb's devices, sorted, with MAJOR:MINOR replaced by device names.
b_tables() {
    local name maj min sed_args=()
    while read -r name maj min; do
        [[ -n $name ]] && sed_args+=(-e "s/ $maj:$min\( \|$\)/ $name\1/g")
    done < <(dmsetup info -c --noheadings --separator ' ' -o name,major,minor 2>/dev/null || true)
    dmsetup table 2>/dev/null | grep '^vgb-' | sed "${sed_args[@]}" | sort || true
}

b_cookies() {
    # dm udev cookies are SysV semaphores keyed 0x0D4Dxxxx (libdm's DM_COOKIE_MAGIC).
    awk 'NR > 1 && int($1 / 65536) == 3405 { n++ } END { print n + 0 }' /proc/sysvipc/sem
}

b_none_active() {
    if dmsetup ls 2>/dev/null | grep -q '^vgb-'; then
        g_fail "vgb still has active devices: $(dmsetup ls | grep '^vgb-' | tr '\n' ' ')"
    fi
}

# b_activate TOOL ROUND: one timed activation, its checks, then deactivation.
b_activate() {
    local tool=$1 round=$2 t0 t1 rc=0 tag
    tag=$B_PHASE-$B_LAYOUT-$tool-$round
    b_none_active
    t0=$EPOCHREALTIME
    case $tool in
    rewind) rewind early --cmdline 'rd.lvm.lv=vgb/lv' >"$B_DIR/$tag.out" 2>&1 || rc=$? ;;
    base*) "rewind-$tool" early --cmdline 'rd.lvm.lv=vgb/lv' >"$B_DIR/$tag.out" 2>&1 || rc=$? ;;
    lvm) b_lvm vgchange -ay --sysinit vgb >"$B_DIR/$tag.out" 2>&1 || rc=$? ;;
    esac
    t1=$EPOCHREALTIME
    b_tables >"$B_DIR/$tag.tables"
    local node=no
    [[ -b /dev/mapper/vgb-lv ]] && node=yes
    if [[ $round != w ]]; then
        printf '%s %s %s %s %s %s %s\n' "$B_PHASE" "$B_LAYOUT" "$tool" "$round" \
            "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')" "$rc" "$node" \
            >>"$OUT/bench.tsv"
    fi
    b_lvm vgchange -an vgb >>"$B_DIR/$tag.out" 2>&1 || g_fail "vgchange -an vgb after $tag failed"
    echo "$tag $(b_cookies)" >>"$OUT/cookies"
    b_none_active
}

# b_rounds TOOLS...: warm-up of each tool, then BENCH rounds alternating the order.
b_rounds() {
    local n=$1 i j tool
    shift
    for tool in "$@"; do
        b_activate "$tool" w
    done
    for ((i = 1; i <= n; i++)); do
        if ((i % 2)); then
            for tool in "$@"; do b_activate "$tool" "$i"; done
        else
            for ((j = $#; j >= 1; j--)); do b_activate "${!j}" "$i"; done
        fi
    done
}

# One debug run of rewind per layout: its kmsg lines carry kernel timestamps for each step.
b_debug_run() {
    local mark="bench-debug $B_PHASE-$B_LAYOUT"
    # Every line, not 10 per 5 s per writer (the kernel's default ratelimit on /dev/kmsg).
    echo on >/proc/sys/kernel/printk_devkmsg
    echo "$mark" >/dev/kmsg
    rewind early --cmdline 'rd.lvm.lv=vgb/lv rd.rewind.debug' >/dev/null 2>&1 || true
    dmesg | awk -v m="$mark" 'index($0, m) { on = 1 } on' >"$OUT/debug-$B_PHASE-$B_LAYOUT.log" || true
    echo ratelimit >/proc/sys/kernel/printk_devkmsg
    b_lvm vgchange -an vgb >/dev/null 2>&1
}

# A snapshot of vgb/lv with a few exceptions, flagged to merge while vgb is inactive.
b_make_merge() {
    b_lvm vgchange -ay --poll n vgb
    b_lvm lvcreate -q -y -s -n snap -L 16M --chunksize 64k vgb/lv
    dd if=/dev/urandom of=/dev/mapper/vgb-lv bs=64k count=32 oflag=direct status=none
    b_lvm vgchange -an vgb
    b_lvm lvconvert --merge vgb/snap 2>&1 | tee "$OUT/lvconvert-$B_PHASE.out"
    b_lvm lvs -a -o lv_name,lv_attr vgb | tee "$OUT/lvs-$B_PHASE-merge"
}

# Finishes the merge the stock way (the kernel has copied everything by now): vgb/lv plain again.
b_finish_merge() {
    b_lvm vgchange -ay --poll n vgb
    b_lvm lvpoll --polloperation merge --interval 1 vgb/lv
    b_lvm vgchange -an vgb
    b_lvm lvs -a -o lv_name,lv_attr vgb | tee "$OUT/lvs-$B_PHASE-plain"
}

# b_floor ROUNDS: what starting each program costs with no work to do (`rewind --version`,
# `lvm version`, a dynamically linked `/bin/true`): the floor under each activation time.
b_floor() {
    local i tool t0 t1 rc
    for ((i = 0; i <= $1; i++)); do
        for tool in rewind lvm true; do
            rc=0
            t0=$EPOCHREALTIME
            case $tool in
            rewind) rewind --version >/dev/null 2>&1 || rc=$? ;;
            lvm) lvm version >/dev/null 2>&1 || rc=$? ;;
            true) /bin/true || rc=$? ;;
            esac
            t1=$EPOCHREALTIME
            ((i == 0)) && continue
            printf 'floor start %s %s %s %s yes\n' "$tool" "$i" \
                "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')" "$rc" >>"$OUT/bench.tsv"
        done
    done
}

# b_phase ROUNDS: the plain layout, then the merge layout.
b_phase() {
    local tools=(rewind) b
    if [[ $B_PHASE == noudev ]]; then
        for b in /usr/sbin/rewind-base*; do
            [[ -x $b ]] && tools+=("${b#/usr/sbin/rewind-}")
        done
    fi
    tools+=(lvm)
    B_LAYOUT=plain
    b_rounds "$1" "${tools[@]}"
    b_debug_run
    b_make_merge
    B_LAYOUT=merge
    b_rounds "$1" "${tools[@]}"
    b_debug_run
    b_finish_merge
}

guest_boot_1() {
    local disk rounds
    disk=$(b_disk)
    rounds=$(cat "$OUT/rounds")
    B_DIR=$OUT/runs
    mkdir -p "$B_DIR"
    : >"$OUT/bench.tsv"

    B_PHASE=udev
    /lib/systemd/systemd-udevd --daemon
    udevadm trigger --action=add --subsystem-match=block
    udevadm settle --timeout=60 || true
    [[ -S /run/udev/control ]] || g_fail "udevd did not start"
    b_lvm pvcreate -q -y "$disk"
    b_lvm vgcreate -q -y vgb "$disk"
    b_lvm lvcreate -q -y -n lv -L 64M vgb
    b_lvm vgchange -an vgb
    b_phase "$rounds"

    B_PHASE=noudev
    udevadm control --exit
    for _ in $(seq 50); do [[ -e /run/udev/control ]] || break; sleep 0.1; done
    if [[ -e /run/udev/control ]]; then echo yes; else echo no; fi >"$OUT/noudev-control-left"
    rm -f /run/udev/control
    b_phase "$rounds"
    b_floor "$rounds"

    # udevd killed: its control socket stays behind with nobody listening.
    B_PHASE=stale
    /lib/systemd/systemd-udevd --daemon
    udevadm settle --timeout=60 || true
    pkill -KILL -x systemd-udevd || true
    sleep 0.5
    if [[ -S /run/udev/control ]]; then echo yes; else echo no; fi >"$OUT/stale-control"
    B_LAYOUT=plain
    b_rounds "$BENCH_STALE_ROUNDS" rewind
    b_debug_run
    rm -f /run/udev/control
    cat /proc/sysvipc/sem >"$OUT/sem-end"
    uname -r >"$OUT/kernel"
    lvm version | head -n 1 >"$OUT/lvm-version"
}

# The host side --------------------------------------------------------------------------------

# b_median FILE-of-numbers
b_median() {
    sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) { print "-"; exit } if (NR % 2) print a[(NR + 1) / 2]; else printf "%.4f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

host_check() {
    local tsv=$VM_STATE/bench.tsv rounds=$BENCH_ROUNDS
    vm_check "the guest recorded timings" test -s "$tsv"
    [[ -s $tsv ]] || return 0
    local bad
    bad=$(awk '$6 != 0 || $7 != "yes"' "$tsv")
    vm_check_eq "every activation exited 0 and made /dev/mapper/vgb-lv" "" "$bad"
    local phase layout tool want
    for phase in udev noudev; do
        for layout in plain merge; do
            for tool in rewind lvm; do
                vm_check_eq "$phase/$layout/$tool: $rounds timed activations" "$rounds" \
                    "$(awk -v p="$phase" -v l="$layout" -v t="$tool" '$1 == p && $2 == l && $3 == t' "$tsv" | wc -l)"
            done
        done
    done
    local b_n
    for ((b_n = 1; b_n <= ${#BENCH_BASES[@]}; b_n++)); do
        for layout in plain merge; do
            vm_check_eq "noudev/$layout/base$b_n: $rounds timed activations" "$rounds" \
                "$(awk -v l="$layout" -v t="base$b_n" '$1 == "noudev" && $2 == l && $3 == t' "$tsv" | wc -l)"
        done
    done
    for tool in rewind lvm true; do
        vm_check_eq "floor/$tool: $rounds timed starts" "$rounds" \
            "$(awk -v t="$tool" '$1 == "floor" && $3 == t' "$tsv" | wc -l)"
    done
    vm_check_eq "stale/plain/rewind: $BENCH_STALE_ROUNDS timed activations" "$BENCH_STALE_ROUNDS" \
        "$(awk '$1 == "stale" && $3 == "rewind"' "$tsv" | wc -l)"
    # The tables: LVM's own activation is the reference for each layout.
    local runs=$VM_STATE/runs ref f
    for layout in plain merge; do
        ref=$runs/udev-$layout-lvm-w.tables
        vm_check "udev/$layout: LVM's warm-up left tables" test -s "$ref"
        case $layout in
        plain) want='^vgb-lv: 0 131072 linear [0-9]+:[0-9]+ 2048$' ;;
        merge) want='^vgb-lv: 0 131072 snapshot-merge vgb-lv-real vgb-snap-cow P 128$' ;;
        esac
        vm_check "udev/$layout: LVM's table is the expected one ($(head -c 200 "$ref" | tr '\n' ';'))" \
            grep -Eq "$want" "$ref"
        for f in "$runs"/*-"$layout"-*.tables; do
            vm_check_eq "$(basename "$f" .tables): same tables as LVM's" "$(cat "$ref")" "$(cat "$f")"
        done
    done
    vm_check_eq "no udev cookie semaphore left after any activation" "" \
        "$(awk '$2 != 0' "$VM_STATE/cookies")"
    vm_check_eq "the stale phase had a stale /run/udev/control" yes "$(cat "$VM_STATE/stale-control")"

    # The table of medians (information only: nothing here is asserted).
    local summary=$WORK/bench-summary.md r l
    {
        echo "| phase | layout | rewind early median (s) | lvm vgchange -ay --sysinit median (s) | ratio | rewind runs | lvm runs |"
        echo "|---|---|---|---|---|---|---|"
        for phase in udev noudev stale floor; do
            for layout in plain merge start; do
                r=$(awk -v p="$phase" -v l="$layout" '$1 == p && $2 == l && $3 == "rewind" { print $5 }' "$tsv" | b_median)
                l=$(awk -v p="$phase" -v l="$layout" '$1 == p && $2 == l && $3 == "lvm" { print $5 }' "$tsv" | b_median)
                [[ $r == - && $l == - ]] && continue
                printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$phase" "$layout" "$r" "$l" \
                    "$(awk -v a="$r" -v b="$l" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else print "-" }')" \
                    "$(awk -v p="$phase" -v l="$layout" '$1 == p && $2 == l && $3 == "rewind" { printf "%s%s", s, $5; s = ", " }' "$tsv")" \
                    "$(awk -v p="$phase" -v l="$layout" '$1 == p && $2 == l && $3 == "lvm" { printf "%s%s", s, $5; s = ", " }' "$tsv")"
            done
        done
        if ((${#BENCH_BASES[@]})); then
            printf '\nBENCH_BASE builds beside rewind (noudev, same rounds; rewind itself above):\n\n'
            echo "| tool | binary | layout | median (s) | ratio to lvm | rewind / it | runs |"
            echo "|---|---|---|---|---|---|---|"
            local t bm
            for ((b_n = 1; b_n <= ${#BENCH_BASES[@]}; b_n++)); do
                t=base$b_n
                for layout in plain merge; do
                    bm=$(awk -v l="$layout" -v t="$t" '$1 == "noudev" && $2 == l && $3 == t { print $5 }' "$tsv" | b_median)
                    r=$(awk -v l="$layout" '$1 == "noudev" && $2 == l && $3 == "rewind" { print $5 }' "$tsv" | b_median)
                    l=$(awk -v l="$layout" '$1 == "noudev" && $2 == l && $3 == "lvm" { print $5 }' "$tsv" | b_median)
                    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$t" "${BENCH_BASES[b_n - 1]}" "$layout" "$bm" \
                        "$(awk -v a="$bm" -v c="$l" 'BEGIN { if (c + 0 > 0) printf "%.3f", a / c; else print "-" }')" \
                        "$(awk -v a="$r" -v c="$bm" 'BEGIN { if (c + 0 > 0) printf "%.3f", a / c; else print "-" }')" \
                        "$(awk -v l="$layout" -v t="$t" '$1 == "noudev" && $2 == l && $3 == t { printf "%s%s", s, $5; s = ", " }' "$tsv")"
                done
            done
        fi
        printf '\n/bin/true (dynamic, no work) median: %s s\n' \
            "$(awk '$1 == "floor" && $3 == "true" { print $5 }' "$tsv" | b_median)"
    } >"$summary"
    cat "$summary"
}
