# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "sdboot-pin" (long suite; issue 16, docs/BOOTMENU.md "The default entry after a
# rollback (systemd-boot)"): after a rollback across a kernel update on a real systemd-boot
# (OVMF, TCG; the disk as in sdboot-menu: ESP at /boot/efi in kernel-install's layout, root on
# LVM), the next plain boot starts the rolled-back root's kernel, not the one the upgrade added.
# Boot 1: systemd-boot's default (the machine's own debian-KVER.conf); the set `pre` (its copy
#         of KVER on the ESP); the bad upgrade: the data overwritten, a "new kernel" installed
#         by the guest's own `kernel-install add NEWVER IMAGE INITRD` (the same image and
#         initramfs under a newer version, a modules directory for NEWVER in the root only), and
#         `kernel-install remove KVER` (its entry and files leave the ESP); then `rewind rollback
#         pre --next-boot`.
# Boot 2: no keys: systemd-boot starts rewind-pre.conf (the set's copy of KVER); the merge;
#         `rewind poll` finishes it and, as the usual entry (debian-NEWVER.conf) has no modules
#         in the rolled-back root, writes rewind's pin rewind.conf booting KVER from the set's
#         copy, kept on the ESP while the pin needs it (the set and its record are gone).
# Boot 3: no keys: systemd-boot starts rewind.conf (LoaderEntrySelected): the files it boots
#         are byte for byte KVER's kernel and initramfs from before the upgrade; /lib/modules
#         has KVER only; the old data. Then the upgrade done again: NEWVER's modules back and
#         `kernel-install add NEWVER ...` (its plugin 95-rewind.install runs rewind boot-menu):
#         the pin and its copy go.
# Boot 4: no keys: systemd-boot starts debian-NEWVER.conf again.
# The "new kernel" is the old build renamed (`uname -r` says KVER either way): what is proven
# is which entry systemd-boot started (its variables) and which files that entry names.
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

# shellcheck source=tests/vm/lib/sdboot-guest.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/sdboot-guest.sh"
SP_NEW=6.1.999-1-cloud-amd64

vm_boot_title() {
    case $1 in
    1) echo "set pre, a kernel update by kernel-install (the old kernel removed), rollback pre --next-boot" ;;
    2) echo "systemd-boot's one-shot rewind-pre.conf: the rollback; the poller pins the root's kernel" ;;
    3) echo "the next plain boot: rewind's pin, the old kernel; then the upgrade done again" ;;
    4) echo "the next plain boot: the new kernel's entry again" ;;
    esac
}

# sp_record N: the command line, systemd-boot's variables, the entries, the store, the
# modules directories, bootctl's list.
sp_record() {
    tee "$OUT/cmdline-$1" </proc/cmdline
    sd_var LoaderEntrySelected | tee "$OUT/selected-$1"
    sd_var LoaderEntryOneShot | tee "$OUT/oneshot-$1"
    sd_var LoaderInfo | tee "$OUT/loader-info-$1"
    sd_ls | tee "$OUT/entries-$1"
    { find /boot/efi/rewind -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null || true; } |
        sort | tee "$OUT/store-$1"
    find /lib/modules -mindepth 1 -maxdepth 1 -printf '%f\n' | sort | tee "$OUT/modules-$1"
    bootctl --esp-path=/boot/efi --no-pager list >"$OUT/bootctl-list-$1" 2>&1 || true
}

# sp_files ENTRY: the sha256 of the kernel and the initramfs entry ENTRY boots.
sp_files() {
    local e=/boot/efi/loader/entries/$1 k
    for k in linux initrd; do
        sha256sum <"/boot/efi$(awk -v k="$k" '$1 == k { print $2 }' "$e")" | cut -d' ' -f1
    done
}

guest_boot_1() {
    local i kver
    sd_setup
    sp_record 1
    kver=$(uname -r)
    echo "$kver" >"$OUT/kver"
    sha256sum <"/boot/efi/debian/$kver/linux" | cut -d' ' -f1 >"$OUT/old-files"
    sha256sum <"/boot/efi/debian/$kver/initrd.img-$kver" | cut -d' ' -f1 >>"$OUT/old-files"
    rewind snapshot --name pre --description "before the kernel update" --size 100M 2>&1 |
        tee "$OUT/snapshot.out"
    for ((i = 1; i <= RB_FILES; i++)); do
        g_fill "$RB_DIR/f$i" 10 "after the bad upgrade: file $i"
    done
    echo "after the bad upgrade" >"$RB_DIR/marker"
    known_sums "$RB_DIR" >"$OUT/after.sha256"
    # The kernel update, as the distribution's package would run it (kernel-install's own
    # plugins: depmod, the entry; rewind's 95-rewind.install).
    # The entry token the disk's entries use (what `bootctl install --entry-token=os-id`
    # writes): the guest has no machine-id, so kernel-install would pick a new one each time.
    echo debian >/etc/kernel/entry-token
    cp "/boot/efi/debian/$kver/linux" "/tmp/vmlinuz-$SP_NEW"
    cp "/boot/efi/debian/$kver/initrd.img-$kver" "/tmp/initrd.img-$SP_NEW"
    mkdir "/lib/modules/$SP_NEW"
    cp -a "/lib/modules/$kver"/modules.* "/lib/modules/$SP_NEW/"
    kernel-install -v add "$SP_NEW" "/tmp/vmlinuz-$SP_NEW" "/tmp/initrd.img-$SP_NEW" \
        >"$OUT/kernel-install-add-1" 2>&1 || g_fail "kernel-install add exited $?"
    kernel-install -v remove "$kver" >"$OUT/kernel-install-remove-1" 2>&1 ||
        g_fail "kernel-install remove exited $?"
    find /boot/efi/loader/entries -mindepth 1 -maxdepth 1 -printf '%f\n' | sort | tee "$OUT/entries-1b"
    bootctl --esp-path=/boot/efi --no-pager list >"$OUT/bootctl-list-1b" 2>&1 || true
    rewind rollback pre --next-boot 2>&1 | tee "$OUT/next-boot.out"
    cp /boot/efi/loader/entries/rewind-pre.conf "$OUT/rewind-pre.conf" || true
    sd_var LoaderEntryOneShot | tee "$OUT/oneshot-1b"
    sync
    umount /boot/efi
}

guest_boot_2() {
    sd_setup
    sp_record 2
    rb_rollback_boot
    sp_record 2b
    cp /boot/efi/loader/entries/rewind.conf "$OUT/rewind.conf" || true
    sp_files rewind.conf >"$OUT/pin-files-2" 2>&1 || true
    cp /run/motd.d/rewind "$OUT/motd-2" 2>/dev/null || true
    rewind status >"$OUT/status-2" 2>&1 || true
    rewind list --json >"$OUT/list-2.json"
    sync
    umount /boot/efi
}

guest_boot_3() {
    local sel
    sd_setup
    sp_record 3
    known_sums "$RB_DIR" | tee "$OUT/boot3.sha256"
    sel=$(cat "$OUT/selected-3")
    sp_files "$sel" >"$OUT/booted-files-3" 2>&1 || true
    # The upgrade done again: the new kernel's modules and its kernel-install run.
    mkdir "/lib/modules/$SP_NEW"
    cp -a "/lib/modules/$(uname -r)"/modules.* "/lib/modules/$SP_NEW/"
    cp "/boot/efi/debian/$SP_NEW/linux" "/tmp/vmlinuz-$SP_NEW"
    cp "/boot/efi/debian/$SP_NEW/initrd.img-$SP_NEW" "/tmp/initrd.img-$SP_NEW"
    kernel-install -v add "$SP_NEW" "/tmp/vmlinuz-$SP_NEW" "/tmp/initrd.img-$SP_NEW" \
        >"$OUT/kernel-install-add-3" 2>&1 || g_fail "kernel-install add exited $?"
    sp_record 3b
    sync
    umount /boot/efi
}

guest_boot_4() {
    sd_setup
    sp_record 4
    umount /boot/efi
}

host_check_boot_1() {
    local kver
    kver=$(cat "$VM_STATE/kver")
    vm_check "boot 1: the firmware ran systemd-boot" grep -q '^systemd-boot ' "$VM_STATE/loader-info-1"
    vm_check_eq "boot 1: systemd-boot started the machine's own entry" "debian-$kver.conf" "$(cat "$VM_STATE/selected-1")"
    vm_check_eq "kernel-install replaced the old kernel's entry by the new one's (beside the set's)" \
        "debian-$SP_NEW.conf rewind-pre.conf" "$(grep -v '^$' "$VM_STATE/entries-1b" | paste -sd ' ')"
    vm_check "bootctl list: the new kernel's entry is the default" \
        grep -Eq "^ *title: .*\(default\)" <(grep -B1 -A2 "id: debian-$SP_NEW.conf" "$VM_STATE/bootctl-list-1b")
    vm_check "the set's entry boots its copy of $kver (its own files left the ESP)" \
        grep -Eqx "linux /rewind/linux-$kver\.[0-9a-f]{8}" "$VM_STATE/rewind-pre.conf"
    vm_check_eq "--next-boot set systemd-boot's one-shot entry" rewind-pre.conf "$(cat "$VM_STATE/oneshot-1b")"
}

host_check_boot_2() {
    local kver
    kver=$(cat "$VM_STATE/kver")
    vm_check_eq "boot 2: systemd-boot started the set's entry" rewind-pre.conf "$(cat "$VM_STATE/selected-2")"
    vm_check "boot 2: rd.rewind=pre" grep -q 'rd.rewind=pre' "$VM_STATE/cmdline-2"
    vm_check_eq "the rolled-back root has only the old kernel's modules" "$kver" "$(grep -v '^$' "$VM_STATE/modules-2b" | paste -sd ' ')"
    vm_check_eq "after the rollback: the new kernel's entry and rewind's pin" \
        "debian-$SP_NEW.conf rewind.conf" "$(grep -v '^$' "$VM_STATE/entries-2b" | paste -sd ' ')"
    vm_check_eq "no set is left" "[]" "$(tr -d ' \n' <"$VM_STATE/list-2.json")"
    vm_check "the pin boots version $kver" grep -qx "version $kver" "$VM_STATE/rewind.conf"
    vm_check "... the set's copy, kept for it" grep -Eqx "linux /rewind/linux-$kver\.[0-9a-f]{8}" "$VM_STATE/rewind.conf"
    vm_check "... sorting first" grep -qx 'sort-key 0-rewind' "$VM_STATE/rewind.conf"
    vm_check "... no rd.rewind" vm_file_lacks 'rd.rewind' "$VM_STATE/rewind.conf"
    vm_check_eq "... byte for byte the old kernel and initramfs" "$(paste -sd ' ' "$VM_STATE/old-files")" \
        "$(paste -sd ' ' "$VM_STATE/pin-files-2")"
    vm_check_eq "the store holds the pin's copy only (the set's record gone)" 2 \
        "$(grep -cE "^(linux|initrd)-$kver\.[0-9a-f]{8}\$" "$VM_STATE/store-2b")"
    vm_check_eq "... nothing else" 2 "$(grep -vc '^$' "$VM_STATE/store-2b")"
    vm_check "bootctl list: the pin is the default" \
        grep -Eq "^ *title: .*pinned by rewind.*\(default\)" "$VM_STATE/bootctl-list-2b"
    vm_check "the login note says so" grep -q "systemd-boot's default entry now boots kernel $kver" "$VM_STATE/motd-2"
}

host_check_boot_3() {
    local kver
    kver=$(cat "$VM_STATE/kver")
    vm_check_eq "boot 3 (no keys): systemd-boot started rewind's pin" rewind.conf "$(cat "$VM_STATE/selected-3")"
    vm_check "boot 3: no rd.rewind" vm_file_lacks 'rd.rewind' "$VM_STATE/cmdline-3"
    vm_check_eq "boot 3 booted the old kernel and initramfs, byte for byte" \
        "$(paste -sd ' ' "$VM_STATE/old-files")" "$(paste -sd ' ' "$VM_STATE/booted-files-3")"
    vm_check_eq "boot 3: the root has its kernel's modules" "$kver" "$(grep -v '^$' "$VM_STATE/modules-3" | paste -sd ' ')"
    vm_check "boot 3 sees the data from before the upgrade" \
        vm_compare_sums "$VM_STATE/before.sha256" "$VM_STATE/boot3.sha256"
    vm_check "the upgrade done again ran rewind's kernel-install plugin" \
        grep -q '95-rewind.install' "$VM_STATE/kernel-install-add-3"
    vm_check_eq "... and the pin went" "debian-$SP_NEW.conf" "$(grep -v '^$' "$VM_STATE/entries-3b" | paste -sd ' ')"
    vm_check_eq "... with its copy" "" "$(grep -v '^$' "$VM_STATE/store-3b" | paste -sd ' ')"
}

host_check_boot_4() {
    vm_check_eq "boot 4 (no keys): the new kernel's entry again" "debian-$SP_NEW.conf" "$(cat "$VM_STATE/selected-4")"
    vm_check_eq "boot 4: both kernels' modules" "$(cat "$VM_STATE/kver") $SP_NEW" "$(grep -v '^$' "$VM_STATE/modules-4" | paste -sd ' ')"
}
