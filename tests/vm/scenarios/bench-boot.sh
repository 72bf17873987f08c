# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "bench-boot" (issue 17, long suite): kernel start to switch_root, the same root in the
# same guest, booted alternately from two dracut images (non-systemd, udev, shell init):
#   rewind: rewind's dracut module and its initramfs build, no LVM2 (as rewind-cmdline boots);
#   lvm:    dracut's stock lvm module, no rewind.
# Boots 1, 3, 5 ... rewind's image, 2, 4, 6 ... LVM2's (BENCH_BOOT_ROUNDS pairs, default 3), each
# a fresh guest with `rd.lvm.lv=vg0/root`, nothing to roll back.
# Each boot records the guest's clock (/proc/uptime, read first thing by vm-init right after
# switch_root: `t_init`) and the kernel's timestamp of "Run /init" (where the initramfs starts).
# With VM_ICOUNT=0 the guest's clock counts instructions (1 ns each), the figure of issue 17;
# without it, the TCG wall clock (reported beside).
# Host: every boot ran its step, the right image booted each time (rewind's lines in the kernel
# log of its boots and none in LVM2's, `lvm` in LVM2's image only), the root is vg0/root;
# prints medians and the ratio rewind / LVM2 (information only: nothing about the speed is
# asserted).

VM_SCENARIO_SUITE=long
BENCH_BOOT_ROUNDS=${BENCH_BOOT_ROUNDS:-3}
VM_BOOTS=$((2 * BENCH_BOOT_ROUNDS))
# At least 600 s: the runner has already set its default of 300 when a scenario is read.
VM_TIMEOUT=$((${VM_TIMEOUT:-0} > 600 ? VM_TIMEOUT : 600))
VM_LVS=(root:1200M)
VM_INITRAMFS_ARGS=(--no-lvm --no-systemd --modules-dir "${VM_REPO_DIR:-}/dracut-module")
VM_ROOT_ADD=(
    "${VM_REPO_DIR:-}/target/x86_64-unknown-linux-gnu/release/rewind:/usr/sbin/rewind"
    "${VM_REPO_DIR:-}/initramfs/rewind-early:/usr/lib/rewind/rewind-early"
)

host_prepare() {
    (cd "$VM_REPO_DIR" && cargo build --release --quiet)
    local root
    root=$("$VM_IMAGES_DIR/build-root.sh" ${VM_ROOT_FLAVOR:+--flavor "$VM_ROOT_FLAVOR"})
    # LVM2's image: the runner's default arguments, the same root.
    "$VM_IMAGES_DIR/build-initramfs.sh" --lvm --no-systemd --root "$root" \
        --out "$WORK/initramfs-lvm.img"
}

# Even boots start from LVM2's image; odd ones from the image the runner built (rewind's).
vm_boot_initrd() { ((($1 % 2) == 0)) && echo "$WORK/initramfs-lvm.img"; }
vm_boot_title() { if (($1 % 2)); then echo "rewind's image"; else echo "LVM2's image"; fi; }

# The guest side -------------------------------------------------------------------------------

bb_record() {
    local kind=lvm run_init
    # shellcheck disable=SC2153 # VM_BOOT is set by vm-init
    ((VM_BOOT % 2)) && kind=rewind
    # The kernel's timestamp of the initramfs's start, e.g. "[    2.345678] Run /init as init process".
    run_init=$(dmesg | sed -n 's/^\[ *\([0-9.]*\)\] Run \/init as init process.*/\1/p' | head -n 1)
    printf '%s %s %s %s\n' "$VM_BOOT" "$kind" "$VM_T_INIT" "${run_init:--}" >>"$OUT/boot-times"
    dmesg | grep -c 'rewind' >"$BOOT_OUT/rewind-lines" || true
    findmnt -n -o SOURCE / >"$BOOT_OUT/root-source"
}

for ((bb_n = 1; bb_n <= VM_BOOTS; bb_n++)); do
    eval "guest_boot_$bb_n() { bb_record; }"
done

# The host side --------------------------------------------------------------------------------

bb_absent() { ! LC_ALL=C grep -aqP "$1" "$2"; }

bb_median() {
    sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) { print "-"; exit } if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

host_check() {
    local times=$VM_STATE/boot-times n kind
    vm_check_eq "every boot recorded its times" "$VM_BOOTS" "$(wc -l <"$times" 2>/dev/null || echo 0)"
    for ((n = 1; n <= VM_BOOTS; n++)); do
        kind=lvm
        ((n % 2)) && kind=rewind
        vm_check_eq "boot $n: the root is vg0/root" /dev/mapper/vg0-root \
            "$(cat "$VM_STATE/boot$n/root-source" 2>/dev/null)"
        if [[ $kind == rewind ]]; then
            vm_check "boot $n: rewind's image (rewind in the kernel log)" \
                test "$(cat "$VM_STATE/boot$n/rewind-lines" 2>/dev/null || echo 0)" -gt 0
        else
            vm_check_eq "boot $n: LVM2's image (no rewind in the kernel log)" 0 \
                "$(cat "$VM_STATE/boot$n/rewind-lines" 2>/dev/null)"
        fi
    done
    # The images are uncompressed cpio archives: a file's name ends with a NUL in its header.
    vm_check "LVM2's image holds usr/sbin/lvm" env LC_ALL=C grep -aqP 'usr/sbin/lvm\x00' "$WORK/initramfs-lvm.img"
    vm_check "rewind's image holds no usr/sbin/lvm" bb_absent 'usr/sbin/lvm\x00' "$WORK/initramfs.img"

    local summary=$WORK/bench-summary.md r l
    {
        echo "| measured (s) | rewind's image median | LVM2's image median | ratio | rewind's boots | LVM2's boots |"
        echo "|---|---|---|---|---|---|"
        for col in 3 4; do
            r=$(awk -v c="$col" '$2 == "rewind" && $c != "-" { print $c }' "$times" | bb_median)
            l=$(awk -v c="$col" '$2 == "lvm" && $c != "-" { print $c }' "$times" | bb_median)
            printf '| %s | %s | %s | %s | %s | %s |\n' \
                "$([[ $col == 3 ]] && echo 'kernel start to switch_root (uptime at init)' || echo 'kernel start to the initramfs /init')" \
                "$r" "$l" "$(awk -v a="$r" -v b="$l" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else print "-" }')" \
                "$(awk -v c="$col" '$2 == "rewind" { printf "%s%s", s, $c; s = ", " }' "$times")" \
                "$(awk -v c="$col" '$2 == "lvm" { printf "%s%s", s, $c; s = ", " }' "$times")"
        done
        # The initramfs's own part: switch_root minus "Run /init", per boot.
        r=$(awk '$2 == "rewind" && $4 != "-" { print $3 - $4 }' "$times" | bb_median)
        l=$(awk '$2 == "lvm" && $4 != "-" { print $3 - $4 }' "$times" | bb_median)
        printf '| initramfs /init to switch_root | %s | %s | %s | %s | %s |\n' "$r" "$l" \
            "$(awk -v a="$r" -v b="$l" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else print "-" }')" \
            "$(awk '$2 == "rewind" && $4 != "-" { printf "%s%.3f", s, $3 - $4; s = ", " }' "$times")" \
            "$(awk '$2 == "lvm" && $4 != "-" { printf "%s%.3f", s, $3 - $4; s = ", " }' "$times")"
        local clock='TCG (wall)'
        [[ -z ${VM_ICOUNT:-} ]] || clock="instructions (icount shift=$VM_ICOUNT)"
        printf '\nguest clock: %s; image sizes (bytes, uncompressed): rewind %s, LVM2 %s\n' \
            "$clock" "$(stat -c %s "$WORK/initramfs.img")" \
            "$(stat -c %s "$WORK/initramfs-lvm.img")"
    } >"$summary"
    cat "$summary"
}
