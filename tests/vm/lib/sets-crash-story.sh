# shellcheck shell=bash disable=SC2034,SC2153 # VM_* settings are read by tests/vm/run.sh; VM_BOOT, OUT, WORK are set by the harness
# The guest killed at random moments during `rewind snapshot` (issue 14, proof 2; docs/SETS.md
# section 4). A scenario sets SC_SEEDS (how many kills) and sources this file:
#
#   # shellcheck source=tests/vm/lib/sets-crash-story.sh
#   . "${TESTS_VM_DIR:-/run/xchg/harness}/lib/sets-crash-story.sh"
#
# Members: vg0/a on the root disk and vgb/b on a second disk, ext4, known data.
# Boot k (1..SC_SEEDS): first the checks of the kill before it (from boot 2): nothing suspended,
#   the data intact, and after `rewind list` either the whole set (its snapshots show the data)
#   or nothing of it (no member, no plain store, no device left); then `rewind snapshot` and
#   `rewind delete` in a loop until the host kills the guest: SEED's delay after the loop's
#   marker on the console (printed per boot; reproducible from the seed).
# Boot SC_SEEDS+1: the same checks; then `rewind snapshot` with the fail point
#   `snapshot-in-window` (the process exits once every origin is suspended): the guardian must
#   have resumed both (a write lands on each within seconds), and the next `rewind list`
#   removes the cut set.
# Host: every kill printed with its seed and delay; stock vgck of both disks at the end.

SC_SEEDS=${SC_SEEDS:-3}
# One loop turn (snapshot + delete) takes about this long under TCG: the delays spread over it.
SC_SPREAD_MS=${SC_SPREAD_MS:-9000}
VM_BOOTS=$((SC_SEEDS + 1))
VM_LVS=(root:1200M a:64M)
VM_DISK_SIZE=2G
VM_INITRAMFS_ARGS=(--no-lvm --no-systemd --modules-dir "${VM_REPO_DIR:-}/dracut-module")
VM_ROOT_ADD=(
    "${VM_REPO_DIR:-}/target/x86_64-unknown-linux-gnu/release/rewind:/usr/sbin/rewind"
    "${VM_REPO_DIR:-}/initramfs/rewind-early:/usr/lib/rewind/rewind-early"
)

host_prepare() {
    (cd "$VM_REPO_DIR" && cargo build --release --quiet)
    truncate -s 256M "$WORK/vgb.img"
    VM_EXTRA_DISKS+=("$WORK/vgb.img:vmvgb")
    echo "$SC_SEEDS" >"$VM_STATE/seeds"
}

# The delay of boot K's kill, in ms after the loop's marker: from the seed K.
sc_delay_ms() {
    echo $((($1 * 7919 + 1237) % SC_SPREAD_MS))
}

vm_boot_kill() {
    (($1 <= SC_SEEDS)) || return 0
    local d log=$WORK/boot$1.serial.log stamp=$WORK/kill$1.marker
    d=$(sc_delay_ms "$1")
    echo "seed $1: kill ${d} ms after the snapshot loop starts" >>"$WORK/kills"
    # Run by bash every 0.2 s: note when the marker shows, then wait out the delay.
    echo "when { [ -e '$stamp' ] || { grep -q 'sets-crash: loop' '$log' 2>/dev/null && date +%s%3N >'$stamp'; }; } && [ \$((\$(date +%s%3N) - \$(cat '$stamp'))) -ge $d ]"
}

sc_disk() {
    local s
    for s in /sys/block/*/serial; do
        if [[ $(cat "$s" 2>/dev/null) == "$1" ]]; then
            echo "/dev/$(basename "$(dirname "$s")")"
            return
        fi
    done
    g_fail "no disk with serial $1"
}

SC_SUMS=/var/tmp/sets-crash.sums

sc_sums() {
    sha256sum "$1/f" "$2/f" | awk '{ print $1 }'
}

# The aftermath of the kill in boot $1 - 1.
sc_check() {
    local n=$1 out name
    dmsetup info | tee "$BOOT_OUT/dm-info"
    if grep -q 'State: *SUSPENDED' "$BOOT_OUT/dm-info"; then
        g_fail "a device is suspended after the reboot"
    fi
    g_lvm lvchange -ay vg0/a vgb/b
    name=$(cat /var/tmp/last-set 2>/dev/null || true)
    rewind list --json >"$BOOT_OUT/list.json"
    cat "$BOOT_OUT/list.json"
    g_lvm lvs -a --noheadings -o lv_name,lv_tags vg0 vgb | tee "$BOOT_OUT/lvs"
    if grep -q rewind_pending "$BOOT_OUT/lvs"; then
        g_fail "a pending member is left after rewind list"
    fi
    mkdir -p /mnt/a /mnt/b /mnt/sa /mnt/sb
    mount /dev/mapper/vg0-a /mnt/a
    mount /dev/mapper/vgb-b /mnt/b
    sc_sums /mnt/a /mnt/b >"$BOOT_OUT/data.sums"
    cmp "$SC_SUMS" "$BOOT_OUT/data.sums" || g_fail "the data changed"
    if [[ -n $name ]] && grep -q "\"name\": \"$name\"" "$BOOT_OUT/list.json"; then
        grep -A6 "\"name\": \"$name\"" "$BOOT_OUT/list.json" | grep -q '"state": "ok"' ||
            g_fail "set $name is there but not whole"
        mount -o ro "/dev/mapper/vg0-a.$name" /mnt/sa
        mount -o ro "/dev/mapper/vgb-b.$name" /mnt/sb
        sc_sums /mnt/sa /mnt/sb | cmp - "$SC_SUMS" || g_fail "set $name does not show the data"
        umount /mnt/sa /mnt/sb
        g_record "boot${n}_found" "whole set $name"
        rewind delete "$name"
    else
        if grep -q "\.$name" "$BOOT_OUT/lvs" 2>/dev/null && [[ -n $name ]]; then
            g_fail "members of the cut set $name are left"
        fi
        g_record "boot${n}_found" "nothing of ${name:-any set}"
    fi
    if dmsetup ls | grep -q -e "\.$name" && [[ -n $name ]]; then
        g_fail "devices of $name are left"
    fi
}

sc_boot() {
    local n=$VM_BOOT i seeds
    seeds=$(cat "$OUT/seeds")
    mkdir -p /run/lock/lvm
    rm -f /run/udev/control
    if ((n == 1)); then
        g_lvm pvcreate -q "$(sc_disk vmvgb)" >/dev/null
        g_lvm vgcreate -q vgb "$(sc_disk vmvgb)" >/dev/null
        g_lvm lvcreate -q -n b -L 64M vgb >/dev/null
        g_lvm lvchange -ay vg0/a
        mkfs.ext4 -q /dev/mapper/vg0-a
        mkfs.ext4 -q /dev/mapper/vgb-b
        mkdir -p /mnt/a /mnt/b
        mount /dev/mapper/vg0-a /mnt/a
        mount /dev/mapper/vgb-b /mnt/b
        g_fill /mnt/a/f 8 "sets-crash: a"
        g_fill /mnt/b/f 8 "sets-crash: b"
        sync
        # A killed boot writes nothing to the exchange disk: what later boots compare with
        # lives on the root.
        sc_sums /mnt/a /mnt/b >"$SC_SUMS"
        sync "$SC_SUMS"
    else
        sc_check "$n"
    fi
    if ((n <= seeds)); then
        # Killed somewhere in here by the host.
        echo "sets-crash: loop (seed $n, $(sc_delay_ms "$n") ms)" >/dev/kmsg
        for ((i = 1; ; i++)); do
            # The exchange disk is only written at power-off: the name goes to the root.
            echo "k$n-$i" >/var/tmp/last-set
            sync /var/tmp/last-set
            # -v: the console shows each step, so the host can say where the kill landed.
            rewind snapshot -v --name "k$n-$i" --size 8M vg0/a vgb/b
            rewind delete -v "k$n-$i"
        done
    fi
    # The guardian: the process exits inside the window.
    local rc=0
    REWIND_FAILPOINT=snapshot-in-window rewind snapshot --name guard --size 8M vg0/a vgb/b || rc=$?
    g_record guard_rc "$rc"
    dmsetup info | tee "$BOOT_OUT/dm-after-guard"
    timeout 20 sh -c 'echo x >/mnt/a/after && sync /mnt/a/after && echo y >/mnt/b/after && sync /mnt/b/after' ||
        g_fail "the origins are still suspended after the guardian's deadline"
    rewind list | tee "$BOOT_OUT/list-after-guard"
    grep -q '^guard ' "$BOOT_OUT/list-after-guard" && g_fail "the cut set guard was offered"
    umount /mnt/a /mnt/b
    g_lvm vgck vg0
    g_lvm vgck vgb
}

# Every boot runs the same step (the harness calls guest_boot_N).
for ((sc_n = 1; sc_n <= VM_BOOTS; sc_n++)); do
    eval "guest_boot_$sc_n() { sc_boot; }"
done

host_check() {
    cat "$WORK/kills" 2>/dev/null || true
    local n
    # A boot that is killed later writes no exchange disk: its findings are on its console.
    for ((n = 2; n <= VM_BOOTS; n++)); do
        printf 'boot %s killed after: %s\n' $((n - 1)) \
            "$(grep -E 'rewind::flow|snapshot set|member\(s\) removed' "$WORK/boot$((n - 1)).serial.log" | tail -n1 | cut -c1-150)"
        printf 'after the kill in boot %s: %s\n' $((n - 1)) \
            "$(sed -n "s/^record: boot${n}_found = //p" "$WORK/boot$n.serial.log" | tail -n1)"
        vm_check "boot $n checked the kill before it" grep -q "^record: boot${n}_found = " "$WORK/boot$n.serial.log"
    done
    vm_check_eq "the process killed inside the window exited as killed" 137 "$(vm_guest_value guard_rc)"
    vm_check "vgck vg0" vm_image_lvm "$WORK/disk.img" vgck vg0
    vm_check "vgck vgb" vm_image_lvm "$WORK/vgb.img" vgck vgb
}
