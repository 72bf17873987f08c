# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "grub-root-lvm" (long suite; issue 16, docs/BOOTMENU.md "/boot on LVM"): /boot is a
# directory of the root LV, GRUB (BIOS, i386-pc) reads it through its lvm module, and a set of
# the root rolls GRUB's directory back with it. The poller then runs the rolled-back system's
# grub-install on the device debconf's grub-pc/install_devices names, so the boot code in the
# disk's gap matches the rolled-back modules again.
#
# Disk: vm-images/build-disk.sh --grub-boot root: an msdos label, partition 1 the PV from sector
#         2048, /boot in the root filesystem; a bootstrap core image (grub-mkimage, lvm module)
#         in the gap, only for boot 1.
# Boot 1: (the bootstrap's entry) as Debian's installer does: debconf's grub-pc/install_devices
#         set to the disk, the guest's own grub-install on it (Debian's core image, the gap) and
#         update-grub. Then the set `pre` (`rewind show` says its kernels roll back with root, no
#         copy). The "upgrade": grub-install again with another module list
#         (--modules=part_gpt xfs, and --install-modules: GRUB's directory then holds only what
#         that list needs), so both the core image in the gap and /boot/grub/i386-pc change; the
#         data overwritten, the init the kernel execs broken. `rewind rollback pre --next-boot` is
#         refused (GRUB cannot write its environment block on LVM): nothing written (grubenv,
#         the gap, LVM's metadata). `rewind rollback pre` flags the rollback.
# Boot 2: (GRUB's default entry, no help: the upgrade's core image reads the upgrade's
#         grub.cfg from the LV) the rollback is set up in the initramfs; the merge is finished
#         (by stock LVM's poll in the initramfs here, or by `rewind poll`); `rewind poll` runs
#         grub-install on /dev/vda: no problem file; the gap, read back on the
#         host from the disk image after the boot, is the core image the rolled-back system's
#         grub-install wrote (/boot/grub/i386-pc/core.img), not the upgrade's.
# Boot 3: (GRUB's default entry, no help: the reinstalled core image) the old state: the data
#         from before the upgrade, the old init, GRUB's directory with every module again.
#         Then the set `again`, the same GRUB reinstall, the data overwritten and the init
#         broken again; nothing flagged.
# Boot 4: the harness picks set again's entry in GRUB's "Roll back with rewind" menu over the
#         serial console (rd.rewind=again, the kernel read from the LV): the rollback; the
#         poller reinstalls GRUB's boot code again: the gap holds the first install's core image.
# Host:   stock vgck/lvs on the image: a plain root, no snapshot, no merge flag.
# Both core images come from the same GRUB build, so the upgrade's would also load the
# rolled-back modules: what is proven is which boot code the disk holds after the poller, not
# a boot that fails without it (that needs two GRUB builds whose symbols differ).
VM_SCENARIO_SUITE=long
VM_ROOT_FLAVOR=grub
VM_GRUB_BOOT=root
VM_DISK_SIZE=2G
VM_INITRAMFS_ARGS=(--generator initramfs-tools)
RB_POLL=step
RB_MERGE_AT_INIT=any
RB_RESCUE=0
RB_SET=1
# shellcheck source=tests/vm/lib/rollback-story.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/rollback-story.sh"
VM_BOOTS=4

# The upgrade's GRUB: another module list in the core image, and only what it needs installed.
GR_UPGRADE_MODULES='part_gpt xfs'
# ... and the modules (with what they need) that grub.cfg uses: only these are installed.
GR_UPGRADE_INSTALL='biosdisk part_msdos lvm ext2 normal search search_fs_uuid linux echo gzio'
GR_UPGRADE_INSTALL+=' serial terminal test loadenv configfile all_video sleep gettext'

vm_boot_title() {
    case $1 in
    1) echo "grub-install on the disk, the set pre, a GRUB reinstall and a bad upgrade, rollback" ;;
    2) echo "GRUB's default entry: the rollback; the poller reinstalls GRUB's boot code" ;;
    3) echo "GRUB's default entry with the reinstalled boot code, no help: the old state; set again, upgrade" ;;
    4) echo "set again's entry picked in GRUB's menu over the serial console: the rollback" ;;
    esac
}

# gr_gap NAME: GRUB's core image as the disk has it (the sectors after the MBR, as long as
# /boot/grub/i386-pc/core.img) and that file, in $OUT/NAME.gap and $OUT/NAME.core.
gr_gap() {
    local len
    cp /boot/grub/i386-pc/core.img "$OUT/$1.core"
    len=$(stat -c %s "$OUT/$1.core")
    dd if=/dev/vda of="$OUT/$1.gap" bs=512 skip=1 count=$(((len + 511) / 512)) status=none
    find /boot/grub/i386-pc -mindepth 1 -printf '%f\n' | sort >"$OUT/$1.modules"
}

guest_boot_1() {
    local i init=/usr/local/sbin/vm-init
    rm -f /run/udev/control
    # What Debian's installer leaves: debconf names the disk GRUB is installed on; GRUB's boot
    # code from the system's own grub-install; the menu from update-grub.
    echo 'grub-pc grub-pc/install_devices multiselect /dev/vda' | debconf-set-selections
    grub-install --target=i386-pc /dev/vda 2>&1 | tee "$OUT/grub-install-1.out"
    update-grub 2>&1 | tee "$OUT/update-grub-1.out"
    cp /boot/grub/grub.cfg "$OUT/grub.cfg"
    sync
    gr_gap installed
    # (grub.cfg sources rewind.cfg, which rewind rewrites: no update-grub needed for the set.)
    rewind snapshot --name pre --description "before the GRUB upgrade" --size 100M 2>&1 |
        tee "$OUT/snapshot.out"
    rewind show pre | tee "$OUT/show-pre"
    cp /boot/grub/rewind.cfg "$OUT/rewind.cfg"
    # The upgrade: GRUB reinstalled with another module list; the data; a broken init.
    grub-install --target=i386-pc --modules="$GR_UPGRADE_MODULES" \
        --install-modules="$GR_UPGRADE_MODULES $GR_UPGRADE_INSTALL" \
        /dev/vda 2>&1 | tee "$OUT/grub-install-upgrade.out"
    for ((i = 1; i <= RB_FILES; i++)); do
        g_fill "$RB_DIR/f$i" 10 "after the bad upgrade: file $i"
    done
    echo "after the bad upgrade" >"$RB_DIR/marker"
    cp /bin/false "$init.new"
    mv "$init.new" "$init"
    sync
    known_sums "$RB_DIR" >"$OUT/after.sha256"
    sha256sum "$init" | tee "$OUT/broken-init.sha256"
    gr_gap upgrade
    # --next-boot is refused: GRUB's directory is on the LV; nothing is written.
    sha256sum /boot/grub/grubenv >"$OUT/grubenv-before"
    local rc=0
    rewind rollback pre --next-boot >"$OUT/next-boot.out" 2>&1 || rc=$?
    echo "$rc" >"$OUT/next-boot.rc"
    cat "$OUT/next-boot.out"
    sha256sum /boot/grub/grubenv >"$OUT/grubenv-after"
    grub-editenv list >"$OUT/grubenv-list" || true
    rb_lvm lvs -a --noheadings -o lv_name,lv_merging vg0 | tee "$OUT/lvs-next-boot"
    sync
    gr_gap refused
    rewind rollback pre 2>&1 | tee "$OUT/rollback.out"
    rb_lvm lvs -a --noheadings -o lv_name,lv_merging vg0 | tee "$OUT/lvs-flagged"
    grep -q 'root.pre.*merging' "$OUT/lvs-flagged" || g_fail "rewind rollback did not flag the merge"
}

guest_boot_2() {
    tee "$OUT/cmdline-2" </proc/cmdline
    rb_rollback_boot
    sync
    gr_gap reinstalled
    ls /boot/grub >"$OUT/grubdir-2"
    rewind status 2>&1 | tee "$OUT/status-2" || true
}

guest_boot_3() {
    rm -f /run/udev/control
    tee "$OUT/cmdline-3" </proc/cmdline
    known_sums "$RB_DIR" | tee "$OUT/boot3.sha256"
    sha256sum /usr/local/sbin/vm-init | tee "$OUT/init3.sha256"
    dmesg | grep -c 'rewind' >"$OUT/rewind-lines-3" || true
    gr_gap booted
    # The second story: a set, the same GRUB reinstall, a bad upgrade; nothing flagged.
    local i init=/usr/local/sbin/vm-init
    rewind snapshot --name again --description "after the rollback" --size 100M 2>&1 |
        tee "$OUT/snapshot-again.out"
    grub-install --target=i386-pc --modules="$GR_UPGRADE_MODULES" \
        --install-modules="$GR_UPGRADE_MODULES $GR_UPGRADE_INSTALL" \
        /dev/vda 2>&1 | tee "$OUT/grub-install-upgrade-2.out"
    for ((i = 1; i <= RB_FILES; i++)); do
        g_fill "$RB_DIR/f$i" 10 "after the second bad upgrade: file $i"
    done
    cp /bin/false "$init.new"
    mv "$init.new" "$init"
    sync
    gr_gap upgrade-2
}

# Boot 4: as a person would: down twice to the submenu (after "Debian GNU/Linux" and its
# "Advanced options"), open it, take its first entry (the set again).
vm_boot_keys() {
    [[ $1 == 4 ]] || return 1
    printf '%s\t%s\n' 'Roll back with rewind' 'down down enter' 'after the rollback' 'enter'
}

guest_boot_4() {
    tee "$OUT/cmdline-4" </proc/cmdline
    rb_rollback_boot
    cp "$OUT/poll.out" "$OUT/poll-4.out"
    sync
    gr_gap reinstalled-4
    ls /boot/grub >"$OUT/grubdir-4"
    sha256sum /usr/local/sbin/vm-init | tee "$OUT/init4.sha256"
    rewind list --json >"$OUT/list-4.json"
}

host_check_boot_4() {
    vm_check "boot 4: the harness pressed the keys" grep -q 'pressing enter' "$WORK/boot4.serial.log.keys"
    vm_check "boot 4: GRUB started the kernel from the LV with rd.rewind=again" \
        grep -q '^BOOT_IMAGE=/boot/vmlinuz-.* rd.rewind=again' "$VM_STATE/cmdline-4"
    vm_check "boot 3's upgrade had embedded its core image again" \
        cmp "$VM_STATE/upgrade.core" "$VM_STATE/upgrade-2.core"
    vm_check "boot 4: the poller reinstalled GRUB's boot code on /dev/vda" \
        grep -q "GRUB's boot code reinstalled on /dev/vda (grub-install --target=i386-pc)" "$VM_STATE/poll-4.out"
    vm_check "boot 4: no problem file" vm_file_lacks 'rewind-grub-install.problem' "$VM_STATE/grubdir-4"
    vm_check "boot 4: the disk's gap (read on the host) holds the first install's core image" \
        gr_embedded_is "$VM_STATE/installed.core"
    vm_check "boot 4: GRUB's modules rolled back" cmp "$VM_STATE/installed.modules" "$VM_STATE/reinstalled-4.modules"
    vm_check "boot 4 sees the data from before the upgrade" \
        vm_compare_sums "$VM_STATE/before.sha256" "$VM_STATE/boot4.sha256"
    vm_check "boot 4 ran the init from before the upgrade" \
        vm_files_differ "$VM_STATE/broken-init.sha256" "$VM_STATE/init4.sha256"
    vm_check_eq "after boot 4 no set is left" "[]" "$(tr -d ' \n' <"$VM_STATE/list-4.json")"
}

# gr_disk_gap BYTES: the sectors after the MBR of the disk image, BYTES long (as the host reads
# them after the boot, the guest stopped).
gr_disk_gap() {
    dd if="$WORK/disk.img" bs=512 skip=1 count=$((($1 + 511) / 512)) status=none
}

# gr_embedded_is CORE: the disk image's gap holds the core image CORE (from its third sector on:
# grub-install's setup patches a block list in the first and the partition fields in the second).
gr_embedded_is() {
    local len
    len=$(stat -c %s "$1")
    cmp <(tail -c +1025 "$1") <(gr_disk_gap "$len" | head -c "$len" | tail -c +1025)
}

# gr_menu_without_sets LOG: GRUB's menu is on the console, without the rollback submenu.
gr_menu_without_sets() {
    grep -aq 'Advanced options for Debian GNU/Linux' "$1" && ! grep -aq 'Roll back with rewind' "$1"
}

host_check_boot_1() {
    vm_check "boot 1 (the bootstrap) ran the guest's grub-install on /dev/vda" \
        grep -q 'Installation finished. No error reported.' "$VM_STATE/grub-install-1.out"
    vm_check "grub.cfg reads the kernel from the LV (insmod lvm)" grep -q 'insmod lvm' "$VM_STATE/grub.cfg"
    vm_check "grub.cfg boots /boot/vmlinuz from the root filesystem" \
        grep -q 'linux[[:space:]]*/boot/vmlinuz-' "$VM_STATE/grub.cfg"
    vm_check "rewind.cfg has set pre's entry" grep -q "rewind_boot 'pre'" "$VM_STATE/rewind.cfg"
    vm_check "rewind show pre: the kernels roll back with root, no copy" \
        grep -q 'boot: /boot is in the set: its kernels and initramfs roll back with it (no copy kept)' "$VM_STATE/show-pre"
    vm_check "the upgrade's grub-install worked" \
        grep -q 'Installation finished. No error reported.' "$VM_STATE/grub-install-upgrade.out"
    vm_check "the upgrade changed the core image" vm_files_differ "$VM_STATE/installed.core" "$VM_STATE/upgrade.core"
    vm_check "the upgrade changed GRUB's modules directory" \
        vm_files_differ "$VM_STATE/installed.modules" "$VM_STATE/upgrade.modules"
    vm_check "after boot 1 the disk's gap holds the upgrade's core image" gr_embedded_is "$VM_STATE/upgrade.core"
    vm_check "--next-boot was refused (non-zero exit)" test "$(cat "$VM_STATE/next-boot.rc")" != 0
    vm_check "--next-boot: GRUB cannot write its environment block on LVM" \
        grep -q 'GRUB cannot write its environment block on LVM' "$VM_STATE/next-boot.out"
    vm_check "--next-boot: grubenv unchanged" cmp "$VM_STATE/grubenv-before" "$VM_STATE/grubenv-after"
    vm_check "--next-boot: no next_entry" vm_file_lacks 'next_entry=.' "$VM_STATE/grubenv-list"
    vm_check "--next-boot: nothing flagged" vm_file_lacks 'merging' "$VM_STATE/lvs-next-boot"
    vm_check "--next-boot: the gap unchanged" cmp "$VM_STATE/upgrade.gap" "$VM_STATE/refused.gap"
}

host_check_boot_2() {
    vm_check "boot 2's GRUB (the upgrade's core image) read the set's menu from the LV" \
        grep -aq 'Roll back with rewind' "$WORK/boot2.serial.log"
    vm_check "boot 2 came through GRUB's default entry (no rd.rewind)" \
        vm_file_lacks 'rd.rewind' "$VM_STATE/cmdline-2"
    vm_check "the poller reinstalled GRUB's boot code on /dev/vda" \
        grep -q "GRUB's boot code reinstalled on /dev/vda (grub-install --target=i386-pc)" "$VM_STATE/poll.out"
    vm_check "no problem file" vm_file_lacks 'rewind-grub-install.problem' "$VM_STATE/grubdir-2"
    vm_check "rewind status says nothing of GRUB" vm_file_lacks 'grub-install' "$VM_STATE/status-2"
    vm_check "GRUB's modules rolled back with the root" cmp "$VM_STATE/installed.modules" "$VM_STATE/reinstalled.modules"
    vm_check "the disk's gap (read on the host) holds the rolled-back grub-install's core image" \
        gr_embedded_is "$VM_STATE/reinstalled.core"
    vm_check "... which is not the upgrade's" vm_files_differ "$VM_STATE/upgrade.core" "$VM_STATE/reinstalled.core"
    vm_check "... and is the one the first grub-install wrote" cmp "$VM_STATE/installed.core" "$VM_STATE/reinstalled.core"
    vm_check "the gap the guest read equals the installer's" cmp "$VM_STATE/installed.gap" "$VM_STATE/reinstalled.gap"
}

eval "$(declare -f host_check | sed '1s/host_check/gr_story_check/')"
host_check() {
    vm_check "boot 3 came through GRUB's default entry (no rd.rewind)" vm_file_lacks 'rd.rewind' "$VM_STATE/cmdline-3"
    vm_check "boot 3 sees the data from before the upgrade" \
        vm_compare_sums "$VM_STATE/before.sha256" "$VM_STATE/boot3.sha256"
    vm_check "boot 3 ran the init from before the upgrade" \
        vm_files_differ "$VM_STATE/broken-init.sha256" "$VM_STATE/init3.sha256"
    vm_check "boot 3: the gap as the poller left it" cmp "$VM_STATE/reinstalled.gap" "$VM_STATE/booted.gap"
    vm_check "boot 3's GRUB (the reinstalled core image) showed its menu, no set left in it" \
        gr_menu_without_sets "$WORK/boot3.serial.log"
    gr_story_check
}
