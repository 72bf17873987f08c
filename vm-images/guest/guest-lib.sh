# shellcheck shell=bash
# Helpers for scenario steps inside the guest (sourced by vm-init; sent on the exchange disk).
# $OUT: survives across boots (exchange disk); $BOOT_OUT: this boot's directory in $OUT.

# LVM2 in a guest without udev or lvmpolld running: LVM creates the device nodes itself.
G_LVM_CONFIG='global { use_lvmpolld = 0 } activation { udev_sync = 0 udev_rules = 0 monitoring = 0 } devices { obtain_device_list_from_udev = 0 }'

g_lvm() {
    mkdir -p /run/lvm /run/lock/lvm
    lvm "$@" --config "$G_LVM_CONFIG"
}

# Seconds since boot (10 ms resolution).
g_uptime() {
    local up _
    read -r up _ </proc/uptime
    printf '%s\n' "$up"
}

# g_since START [END]: seconds from uptime START to END (default: now), two decimals.
g_since() {
    awk -v a="$1" -v b="${2:-$(g_uptime)}" 'BEGIN { printf "%.2f", b - a }'
}

# g_record KEY VALUE: a measured value, collected by the host from $OUT/values.
g_record() {
    printf '%s %s\n' "$1" "$2" >>"$OUT/values"
    echo "record: $1 = $2"
}

g_fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# g_fill_dev DEV MIB TEXT: MIB MiB of repeated TEXT lines written straight to block device DEV
# (O_DIRECT: no page cache stands between the write and what device-mapper sees).
g_fill_dev() {
    { yes "$3" || true; } | head -c $(($2 << 20)) | dd of="$1" bs=1M iflag=fullblock oflag=direct status=none
}

# g_sum_dev DEV MIB: the sha256 of block device DEV's first MIB MiB.
g_sum_dev() {
    head -c $(($2 << 20)) "$1" | sha256sum | cut -d' ' -f1
}

# g_sums_cold DIR OUTFILE: sha256sum of every f* file in DIR read from the device, not the page
# cache (dropped first), into OUTFILE and shown.
g_sums_cold() {
    sync
    echo 3 >/proc/sys/vm/drop_caches
    (cd "$1" && sha256sum f*) >"$2"
    cat "$2"
}

# g_merged STATUS: true when a snapshot-merge status line says the copy is done (allocated
# sectors equal metadata sectors: only the store's own metadata is left).
g_merged() {
    awk '{ split($4, a, "/"); exit !(a[1] == $5) }' <<<"$1"
}

# g_wait_merged DEV LAST_FILE: waits (bounded, 2 min) until the kernel has finished DEV's merge,
# keeping the last status read in LAST_FILE; fails the step if it does not finish.
g_wait_merged() {
    local i st
    for ((i = 0; i < 240; i++)); do
        st=$(dmsetup status "$1")
        echo "$st" >"$2"
        g_merged "$st" && return 0
        sleep 0.5
    done
    g_fail "the kernel did not finish the merge of $1: $st"
}

# g_fill FILE MIB TEXT: overwrite FILE in place with MIB MiB of repeated TEXT lines.
# (One MiB is generated and repeated: generating everything is slow under TCG.)
g_fill() {
    local block=/run/g_fill.block i
    { yes "$3" || true; } | head -c 1048576 >"$block"
    for ((i = 0; i < $2; i++)); do
        cat "$block"
    done | dd of="$1" bs=1M iflag=fullblock conv=notrunc status=none
    rm -f "$block"
}
