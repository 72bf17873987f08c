# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "sdboot-menu" (long suite; issue 16, docs/BOOTMENU.md "Boot Loader Specification
# entries"): the sets' BLS entries read by a real systemd-boot under UEFI firmware (Debian's
# OVMF, TCG), and `rewind rollback SET --next-boot` on a machine that boots through it.
# The disk (vm-images/build-disk.sh --sdboot-esp): GPT, an EFI system partition (vfat) with
# systemd-boot as EFI/BOOT/BOOTX64.EFI, loader.conf, the kernel and the initramfs under test
# (the guest's own initramfs-tools with rewind's hook) in kernel-install's layout and the
# machine's own entry debian-KVER.conf (sort-key debian); partition 2 the PV, root on LVM.
# The ESP is mounted at /boot/efi ($BOOT: no /boot/loader/entries, no /efi); no GRUB menu
# (the root, flavor sdboot, has no GRUB). rewind installed by install.sh.
# Boot 1: systemd-boot's default entry (the machine's own: LoaderEntrySelected); the set `pre`
#         (`rewind snapshot`, the ESP mounted: rewind copies the usual entry's kernel and initramfs
#         to the ESP's rewind/ and writes loader/entries/rewind-pre.conf booting that copy, read
#         back by the guest's bootctl list: the machine's entry stays the default); the bad
#         upgrade overwrites the data; `rewind rollback nosuch --next-boot` is refused; then
#         `rewind rollback pre --next-boot`: nothing flagged in LVM, systemd's bootctl
#         set-oneshot writes LoaderEntryOneShot=rewind-pre.conf (read back from efivarfs).
# Boot 2: no keys: systemd-boot starts rewind-pre.conf by itself (the one-shot, consumed):
#         rd.rewind=pre on the kernel command line; rewind in the initramfs merges; the old data;
#         `rewind poll` finishes the merge and rewrites the entries (no set: rewind-pre.conf and
#         the copy gone).
# Boot 3: no keys: the next plain boot starts the machine's own entry, no rd.rewind, the old
#         data, a plain root. Then a set `later`: its entry rewind-later.conf is on the ESP.
# Boot 4: no keys, rewind's entry there: systemd-boot still starts the machine's own entry
#         (rewind's sort-key sorts after it); `rewind delete later` removes the entry.
# Host:   the firmware's variables as the guest read them, the entries, the data of boots 2 and 3
#         against the data from before the upgrade; stock vgck and lvs: a plain root.
VM_SCENARIO_SUITE=long
VM_ROOT_FLAVOR=sdboot
VM_SDBOOT_ESP=256MiB
VM_DISK_SIZE=2G
VM_INITRAMFS_ARGS=(--generator initramfs-tools)
RB_POLL=step
RB_MERGE_AT_INIT=any
# shellcheck source=tests/vm/lib/rollback-story.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/rollback-story.sh"
VM_BOOTS=4

# The guest's systemd-boot helpers (sd_setup, sd_var, sd_ls) and SD_GUID.
# shellcheck source=tests/vm/lib/sdboot-guest.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/sdboot-guest.sh"

vm_boot_title() {
    case $1 in
    1) echo "systemd-boot's default entry: the set pre, a bad upgrade, rollback pre --next-boot" ;;
    2) echo "systemd-boot's one-shot entry, by itself: rewind-pre.conf, the rollback" ;;
    3) echo "systemd-boot's default entry again: the machine's own, the old state; a set later" ;;
    4) echo "with rewind's entry of set later there, the machine's own entry still the default" ;;
    esac
}

# sd_copies N: the sets' kernel copies on the ESP (rewind/), each with whether it is byte for
# byte the machine's own entry's kernel or initramfs.
sd_copies() {
    local own f
    own=$(find /boot/efi/loader/entries -name 'debian-*.conf' | head -n 1)
    { find /boot/efi/rewind -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null || true; } |
        sort | tee "$OUT/esp-rewind-$1"
    for f in linux initrd; do
        if cmp -s "/boot/efi$(awk -v k="$f" '$1 == k { print $2 }' "/boot/efi/loader/entries/rewind-pre.conf")" \
            "/boot/efi$(awk -v k="$f" '$1 == k { print $2 }' "$own")"; then
            echo "$f same"
        fi
    done >"$OUT/copy-cmp-$1" 2>&1 || true
}

# sd_record N: this boot's command line and systemd-boot's variables.
sd_record() {
    tee "$OUT/cmdline-$1" </proc/cmdline
    sd_var LoaderEntrySelected | tee "$OUT/selected-$1"
    sd_var LoaderEntryOneShot | tee "$OUT/oneshot-$1"
    sd_var LoaderInfo | tee "$OUT/loader-info-$1"
    sd_ls | tee "$OUT/entries-$1"
}

guest_boot_1() {
    local i
    sd_setup
    sd_record 1
    bootctl --esp-path=/boot/efi --no-pager list >"$OUT/bootctl-list-0" 2>&1 || true
    rewind snapshot --name pre --description "before the bad upgrade" --size 100M 2>&1 |
        tee "$OUT/snapshot.out"
    sd_ls | tee "$OUT/entries-1b"
    cp /boot/efi/loader/entries/rewind-pre.conf "$OUT/rewind-pre.conf" || true
    sd_copies 1
    cp /boot/efi/loader/rewind-initramfs.checked "$OUT/initramfs-checked" || true
    bootctl --esp-path=/boot/efi --no-pager list >"$OUT/bootctl-list-1" 2>&1 ||
        g_fail "bootctl list exited $?"
    rewind list --json >"$OUT/list.json"
    for ((i = 1; i <= RB_FILES; i++)); do
        g_fill "$RB_DIR/f$i" 10 "after the bad upgrade: file $i"
    done
    echo "after the bad upgrade" >"$RB_DIR/marker"
    sync
    known_sums "$RB_DIR" >"$OUT/after.sha256"
    local rc=0
    rewind rollback nosuch --next-boot >"$OUT/next-boot-nosuch.out" 2>&1 || rc=$?
    echo "$rc" >"$OUT/next-boot-nosuch.rc"
    sd_var LoaderEntryOneShot >"$OUT/oneshot-1a"
    rewind rollback pre --next-boot 2>&1 | tee "$OUT/next-boot.out"
    sd_var LoaderEntryOneShot | tee "$OUT/oneshot-1b"
    bootctl --esp-path=/boot/efi --no-pager status >"$OUT/bootctl-status-1" 2>&1 || true
    rb_lvm lvs -a --noheadings -o lv_name,lv_merging vg0 | tee "$OUT/lvs-1"
    sync
    umount /boot/efi
}

guest_boot_2() {
    sd_setup
    sd_record 2
    rb_rollback_boot
    sd_ls | tee "$OUT/entries-2b"
    { find /boot/efi/rewind -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null || true; } |
        sort | tee "$OUT/esp-rewind-2b"
    rewind list --json | tee "$OUT/list-2.json"
    sync
    umount /boot/efi
}

guest_boot_3() {
    sd_setup
    sd_record 3
    known_sums "$RB_DIR" | tee "$OUT/boot3.sha256"
    dmsetup table | tee "$OUT/dm-table-3"
    rb_lvm lvs -a --noheadings -o lv_name,lv_merging vg0 | tee "$OUT/lvs-3"
    rewind snapshot --name later --description "after the rollback" --size 100M
    sd_ls | tee "$OUT/entries-3b"
    sync
    umount /boot/efi
}

guest_boot_4() {
    sd_setup
    sd_record 4
    rewind delete later 2>&1 | tee "$OUT/delete.out"
    sd_ls | tee "$OUT/entries-4b"
    sync
    umount /boot/efi
}

# sd_own: the machine's own entry's id (build-disk.sh: debian-KVER.conf).
sd_own() {
    grep -x 'debian-.*\.conf' "$VM_STATE/entries-1"
}

host_check_boot_1() {
    local own
    own=$(sd_own)
    vm_check "boot 1: the firmware ran systemd-boot (LoaderInfo)" grep -q '^systemd-boot ' "$VM_STATE/loader-info-1"
    vm_check_eq "boot 1: systemd-boot started the machine's own entry" "$own" "$(cat "$VM_STATE/selected-1")"
    vm_check "boot 1: no rd.rewind" vm_file_lacks 'rd.rewind' "$VM_STATE/cmdline-1"
    vm_check_eq "rewind snapshot wrote the set's entry beside the machine's" \
        "$(printf '%s\n' "$own" rewind-pre.conf | sort | paste -sd ' ')" \
        "$(sort "$VM_STATE/entries-1b" | grep -v '^$' | paste -sd ' ')"
    vm_check "the set's entry boots with rd.rewind=pre" grep -q '^options .* rd.rewind=pre$' "$VM_STATE/rewind-pre.conf"
    # The machine's entry as bootctl read it: the set's boots its kernel, its options + rd.rewind.
    local usual_linux usual_options
    usual_linux=$(awk '$1 == "linux:" { print $2; exit }' "$VM_STATE/bootctl-list-1")
    usual_options=$(sed -n 's/^ *options: //p' "$VM_STATE/bootctl-list-1" | head -n 1)
    # The ESP is never in a set: the set keeps its copy of the usual entry's kernel and
    # initramfs there (docs/BOOTMENU.md, "The set's kernel where $BOOT is the ESP").
    local kver=${own#debian-}
    kver=${kver%.conf}
    vm_check "... its copy on the ESP of the usual entry's kernel ($usual_linux)" \
        grep -Eqx "linux /rewind/linux-$kver\.[0-9a-f]{8}" "$VM_STATE/rewind-pre.conf"
    vm_check "... and of its initramfs" grep -Eqx "initrd /rewind/initrd-$kver\.[0-9a-f]{8}" "$VM_STATE/rewind-pre.conf"
    vm_check_eq "... byte for byte" "linux same initrd same" "$(paste -sd ' ' "$VM_STATE/copy-cmp-1")"
    vm_check_eq "... with the set's record" "3" \
        "$(grep -cE "^(linux-$kver|initrd-$kver)\.[0-9a-f]{8}\$|^pre\.kernel\$" "$VM_STATE/esp-rewind-1")"
    vm_check_eq "... the usual entry's options and rd.rewind=pre" "options $usual_options rd.rewind=pre" \
        "$(grep '^options ' "$VM_STATE/rewind-pre.conf")"
    vm_check "... and rewind's sort-key" grep -qx 'sort-key zzzz-rewind' "$VM_STATE/rewind-pre.conf"
    vm_check "the guest's lsinitramfs found rewind in the entry's initramfs" grep -q '/rewind/initrd-.*	ok$' "$VM_STATE/initramfs-checked"
    vm_check "bootctl list: the machine's entry is the default" \
        grep -Eq "^ *title: Debian GNU/Linux 12 \(bookworm\) \((default|default\) \(selected)\)" "$VM_STATE/bootctl-list-1"
    vm_check "bootctl list: rewind's entry is listed" grep -q 'id: rewind-pre.conf' "$VM_STATE/bootctl-list-1"
    vm_check "rewind rollback nosuch --next-boot is refused" test "$(cat "$VM_STATE/next-boot-nosuch.rc")" != 0
    vm_check "... with the reason" grep -q 'no snapshot set nosuch' "$VM_STATE/next-boot-nosuch.out"
    vm_check_eq "... and no one-shot entry" "" "$(cat "$VM_STATE/oneshot-1a")"
    vm_check_eq "--next-boot set systemd-boot's one-shot entry" rewind-pre.conf "$(cat "$VM_STATE/oneshot-1b")"
    vm_check "--next-boot flagged nothing in LVM" vm_file_lacks 'merging' "$VM_STATE/lvs-1"
}

host_check_boot_2() {
    vm_check_eq "boot 2 (no keys): systemd-boot started the set's entry" rewind-pre.conf "$(cat "$VM_STATE/selected-2")"
    vm_check_eq "... and consumed the one-shot" "" "$(cat "$VM_STATE/oneshot-2")"
    vm_check "boot 2: the kernel ran with rd.rewind=pre" grep -q 'rd.rewind=pre' "$VM_STATE/cmdline-2"
    vm_check "boot 2's console shows systemd-boot's menu" grep -aq 'Roll back with rewind: pre' "$WORK/boot2.serial.log"
    vm_check_eq "after the rollback only the machine's entry is left" "$(sd_own)" \
        "$(grep -v '^$' "$VM_STATE/entries-2b" | paste -sd ' ')"
    vm_check_eq "after the rollback no set is left" "[]" "$(tr -d ' \n' <"$VM_STATE/list-2.json")"
    vm_check_eq "... nor its kernel copy on the ESP" "" "$(cat "$VM_STATE/esp-rewind-2b")"
}

host_check_boot_3() {
    vm_check_eq "boot 3: systemd-boot started the machine's own entry again" "$(sd_own)" "$(cat "$VM_STATE/selected-3")"
    vm_check "boot 3: no rd.rewind" vm_file_lacks 'rd.rewind' "$VM_STATE/cmdline-3"
    vm_check_eq "boot 3: no one-shot entry" "" "$(cat "$VM_STATE/oneshot-3")"
    vm_check "boot 3 sees the data from before the upgrade" \
        vm_compare_sums "$VM_STATE/before.sha256" "$VM_STATE/boot3.sha256"
    vm_check "boot 3: root is plain linear" grep -q '^vg0-root: 0 [0-9]* linear ' "$VM_STATE/dm-table-3"
    vm_check_eq "boot 3: the set later has its entry" "$(printf '%s\n' "$(sd_own)" rewind-later.conf | sort | paste -sd ' ')" \
        "$(grep -v '^$' "$VM_STATE/entries-3b" | sort | paste -sd ' ')"
}

host_check_boot_4() {
    vm_check "boot 4 began with rewind's entry on the ESP" grep -qx rewind-later.conf "$VM_STATE/entries-4"
    vm_check_eq "boot 4 (no keys): systemd-boot started the machine's own entry, not rewind's" \
        "$(sd_own)" "$(cat "$VM_STATE/selected-4")"
    vm_check "boot 4: no rd.rewind" vm_file_lacks 'rd.rewind' "$VM_STATE/cmdline-4"
    vm_check_eq "rewind delete later removed its entry" "$(sd_own)" \
        "$(grep -v '^$' "$VM_STATE/entries-4b" | paste -sd ' ')"
}
