# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "grub-menu" (long suite; issue 16, docs/BOOTMENU.md): roll back from GRUB's menu, as
# a person at the console would. A guest that boots through real GRUB from its own disk
# (grub-pc, BIOS;
# vm-images/build-disk.sh --grub-boot: /boot a plain partition, root on LVM), its initramfs
# made by the guest's own initramfs-tools with rewind installed by install.sh (so is
# /etc/grub.d/42_rewind). The rescue story of tests/vm/lib/rollback-story.sh (RB_RESCUE=1,
# RB_SET=1):
# Boot 1: (GRUB's default entry) the snapshot set `pre` (`rewind snapshot`, /boot mounted: it
#         keeps a copy of the running kernel and its initramfs in /boot/rewind/ and writes
#         /boot/grub/rewind.cfg, whose entry boots that copy), the guest's update-grub (real
#         grub-mkconfig: 42_rewind adds the "Roll back with rewind" submenu); then the bad
#         upgrade overwrites the data, breaks the init the kernel execs and installs a "new
#         kernel" (the kernel and initramfs under a newer version name, its modules directory in
#         the root only) that update-grub makes GRUB's default. Nothing is flagged.
# Boot 2: (GRUB's default entry) the kernel panics ("Attempted to kill init"); the host kills
#         the guest and checks with stock lvs that the set's member is untouched.
# Boot 3: the harness waits for GRUB's menu on the serial console, goes down to "Roll back with
#         rewind", opens it and picks the set's entry (tests/vm/serial-keys.py): GRUB boots the
#         set's copy of the kernel with rd.rewind=pre; rewind in the initramfs merges, the old
#         init and data are there; /boot mounted, `rewind poll` finishes the merge, finds that
#         GRUB's default (the new kernel) has no modules in the rolled-back root and pins the
#         default to the old kernel (/boot/grub/rewind-default.cfg), and rewrites the menu file
#         (no set left: empty, so GRUB shows no rollback submenu; the copy is removed).
# Boot 4: no keys: GRUB's default entry after its timeout: the old kernel (whose modules are
#         in the root), not the new one; the old state, a plain root. Then a
#         set `again` and `rewind rollback again --next-boot` (nothing flagged; GRUB's one-shot
#         next_entry names the set's entry).
# Boot 5: no keys: GRUB boots that entry (the set's kernel copy, rd.rewind=again) by itself,
#         the pinned default notwithstanding, and clears next_entry;
#         the rollback runs, `rewind poll` finishes it; no set left.
# Host:   the menu files as GRUB read them: grub.cfg and rewind.cfg pass grub-script-check,
#         rewind.cfg has exactly the sets `rewind list` showed, newest first, each booting
#         rewind_boot SET; boot 3's console shows GRUB's menu and the entry's kernel line; the
#         data of boots 3 and 4 is the data from before the upgrade; stock vgck and lvs: a plain
#         root, no snapshot, no merge flag.
VM_SCENARIO_SUITE=long
VM_ROOT_FLAVOR=grub
VM_GRUB_BOOT=256MiB
VM_DISK_SIZE=2G
VM_INITRAMFS_ARGS=(--generator initramfs-tools)
RB_POLL=step
RB_MERGE_AT_INIT=any
RB_RESCUE=1
RB_SET=1
# shellcheck source=tests/vm/lib/rollback-story.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/rollback-story.sh"
VM_BOOTS=5

# The "new kernel" the bad upgrade installs: sorts after the guest's own (6.1.0-N-cloud-amd64).
GM_NEW_KVER=6.1.999-1-cloud-amd64

# gm_ls DIR: the names in DIR, sorted.
gm_ls() {
    find "$1" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort
}

# Boot 1 as the rescue story has it, then the new kernel: /boot/vmlinuz and initrd.img under a
# newer version, its modules directory (index files) in the root only; update-grub makes it
# the default.
eval "$(declare -f guest_boot_1 | sed '1s/guest_boot_1/gm_story_boot_1/')"
guest_boot_1() {
    gm_story_boot_1
    local old
    old=$(uname -r)
    echo "$old" >"$OUT/kver-old"
    mount /boot
    rewind show pre | tee "$OUT/show-pre"
    gm_ls /boot/rewind | tee "$OUT/store-1"
    cp "/boot/vmlinuz-$old" "/boot/vmlinuz-$GM_NEW_KVER"
    cp "/boot/initrd.img-$old" "/boot/initrd.img-$GM_NEW_KVER"
    # Its modules directory: the index files only (the 90 MB of modules would overflow the
    # set's 100 MB store; what counts is which version has a directory).
    mkdir "/lib/modules/$GM_NEW_KVER"
    cp -a "/lib/modules/$old"/modules.* "/lib/modules/$GM_NEW_KVER/"
    update-grub 2>&1 | tee "$OUT/update-grub-new.out"
    cp /boot/grub/grub.cfg "$OUT/grub-new.cfg"
    cp /boot/grub/rewind.cfg "$OUT/rewind-new.cfg"
    # The verdicts of the check that an entry's initramfs carries rewind (the guest's lsinitramfs).
    cp /boot/grub/rewind-initramfs.checked "$OUT/initramfs-checked" || true
    sync
    umount /boot
}

vm_boot_title() {
    case $1 in
    1) echo "the set pre, update-grub, then a bad upgrade that also breaks the init" ;;
    2) echo "GRUB's default entry: the broken init panics" ;;
    3) echo "the set's entry picked in GRUB's menu over the serial console: the rollback" ;;
    4) echo "GRUB's default entry again, no help: the old state; a set, rollback --next-boot" ;;
    5) echo "GRUB's one-shot next_entry: the set's entry, by itself" ;;
    esac
}

# Boot 3: as a person would: down twice to the submenu (after "Debian GNU/Linux" and its
# "Advanced options"), open it, take its first entry (the newest set).
vm_boot_keys() {
    [[ $1 == 3 ]] || return 1
    printf '%s\t%s\n' 'Roll back with rewind' 'down down enter' 'before the bad upgrade' 'enter'
}

guest_boot_3() {
    # /boot as the booted system has it, so the poller can rewrite the menu file.
    mount /boot
    tee "$OUT/cmdline-3" </proc/cmdline
    rb_rollback_boot
    cp /boot/grub/rewind.cfg "$OUT/rewind-after.cfg"
    cp /boot/grub/rewind-default.cfg "$OUT/rewind-default.cfg" || true
    gm_ls /boot/rewind | tee "$OUT/store-3" || true
    gm_ls /lib/modules | tee "$OUT/modules-3"
    rewind list --json >"$OUT/list-after.json"
    umount /boot
}

guest_boot_4() {
    rm -f /run/udev/control
    known_sums "$RB_DIR" | tee "$OUT/boot4.sha256"
    sha256sum /usr/local/sbin/vm-init | tee "$OUT/init4.sha256"
    dmsetup table | tee "$OUT/dm-table-4"
    tr ' ' '\n' </proc/cmdline | grep rd.rewind | tee "$OUT/cmdline-rewind-4" || true
    tee "$OUT/cmdline-4" </proc/cmdline
    gm_ls /lib/modules | tee "$OUT/modules-4"
    mount /boot
    rewind snapshot --name again --description "after the rollback" --size 100M
    cp /boot/grub/rewind.cfg "$OUT/rewind-4.cfg"
    rewind rollback again --next-boot 2>&1 | tee "$OUT/next-boot.out"
    grub-editenv list | tee "$OUT/grubenv-4"
    rb_lvm lvs -a --noheadings -o lv_name,lv_merging vg0 | tee "$OUT/lvs-4"
    umount /boot
}

guest_boot_5() {
    rm -f /run/udev/control
    tr ' ' '\n' </proc/cmdline | grep rd.rewind | tee "$OUT/cmdline-rewind-5" || true
    tee "$OUT/cmdline-5" </proc/cmdline
    mount /boot
    grub-editenv list | tee "$OUT/grubenv-5"
    known_sums "$RB_DIR" | tee "$OUT/boot5.sha256"
    rewind poll -v >"$OUT/poll5.out" 2>&1 || g_fail "rewind poll exited $?"
    rewind list --json | tee "$OUT/list-5.json"
    cp /boot/grub/rewind.cfg "$OUT/rewind-5.cfg"
    umount /boot
}

# gm_menu_sets FILE: the set names of rewind.cfg's entries, in order.
gm_menu_sets() {
    sed -n "s/^menuentry .* --id 'rewind-\(.*\)' {$/\1/p" "$1"
}

# gm_list_sets FILE: the set names in `rewind list --json`, newest first.
gm_list_sets() {
    python3 -c 'import json, sys
for s in sorted(json.load(open(sys.argv[1])), key=lambda s: -(s["time"] or 0)):
    print(s["name"])' "$1"
}

host_check_boot_1() {
    vm_check "grub.cfg from the guest's update-grub passes grub-script-check" \
        grub-script-check "$VM_STATE/grub.cfg"
    vm_check "rewind.cfg passes grub-script-check" grub-script-check "$VM_STATE/rewind.cfg"
    # shellcheck disable=SC2016 # GRUB's variables, literally
    vm_check "grub.cfg has 42_rewind's submenu, sourcing rewind.cfg" \
        grep -q 'source "${prefix}/rewind.cfg"' "$VM_STATE/grub.cfg"
    # shellcheck disable=SC2016
    vm_check "42_rewind's rewind_boot adds rd.rewind to the kernel line" \
        grep -q 'linux .*root=/dev/mapper/vg0-root .*rd.rewind="$1"' "$VM_STATE/grub.cfg"
    vm_check_eq "rewind.cfg lists the sets rewind list shows, newest first" \
        "$(gm_list_sets "$VM_STATE/list.json" | paste -sd ' ')" \
        "$(gm_menu_sets "$VM_STATE/rewind.cfg" | paste -sd ' ')"
    vm_check_eq "the entry of set pre boots it" "1" "$(grep -c "rewind_boot 'pre'" "$VM_STATE/rewind.cfg")"
    local old
    old=$(cat "$VM_STATE/kver-old")
    vm_check "the guest's lsinitramfs found rewind in the initramfs of set pre's copy" \
        grep -q "/boot/rewind/initrd\.img-$old\.[0-9a-f]\{8\}	ok\$" "$VM_STATE/initramfs-checked"
    vm_check "set pre keeps a copy of the running kernel and its initramfs in /boot/rewind" \
        grep -qx "vmlinuz-$old\.[0-9a-f]\{8\}" "$VM_STATE/store-1"
    vm_check "... and of its initramfs, and a record" grep -qx "initrd.img-$old\.[0-9a-f]\{8\}" "$VM_STATE/store-1"
    vm_check "... and a record of set pre" grep -qx "pre.kernel" "$VM_STATE/store-1"
    vm_check "set pre's entry boots its copy" \
        grep -q "rewind_boot 'pre' 'rewind/vmlinuz-$old\.[0-9a-f]\{8\}' 'rewind/initrd.img-$old\.[0-9a-f]\{8\}'" "$VM_STATE/rewind-new.cfg"
    vm_check "rewind show pre says so" grep -q "boot: its entry in the boot menu boots its copy of kernel $old" "$VM_STATE/show-pre"
    vm_check "grub-script-check accepts grub.cfg with the new kernel" grub-script-check "$VM_STATE/grub-new.cfg"
    vm_check_eq "the new kernel is GRUB's default (its first entry)" "/vmlinuz-$GM_NEW_KVER" \
        "$(awk '$1 == "linux" { print $2; exit }' "$VM_STATE/grub-new.cfg")"
}

host_check_boot_3() {
    vm_check "boot 3's console showed GRUB's menu with the rollback submenu" \
        grep -aq 'Roll back with rewind' "$WORK/boot3.serial.log"
    vm_check "boot 3: the harness pressed the keys" grep -q 'pressing enter' "$WORK/boot3.serial.log.keys"
    vm_check "boot 3: the kernel ran with rd.rewind=pre" grep -aq 'rd.rewind=pre' "$WORK/boot3.serial.log"
    vm_check_eq "after the rollback the menu file is empty (no set left: no submenu)" "0" \
        "$(stat -c %s "$VM_STATE/rewind-after.cfg")"
    local old
    old=$(cat "$VM_STATE/kver-old")
    vm_check "boot 3 started the set's copy of the old kernel" \
        grep -q "BOOT_IMAGE=/rewind/vmlinuz-$old\.[0-9a-f]\{8\} .*rd.rewind=pre" "$VM_STATE/cmdline-3"
    vm_check_eq "the rolled-back root has only the old kernel's modules" "$old" "$(cat "$VM_STATE/modules-3")"
    vm_check "the poller pinned GRUB's default to the old kernel" \
        grep -q "rewind_boot '' 'vmlinuz-$old' 'initrd.img-$old'" "$VM_STATE/rewind-default.cfg"
    vm_check "the pin names the kernel without modules" grep -q "($GM_NEW_KVER) has no" "$VM_STATE/rewind-default.cfg"
    vm_check "the pin passes grub-script-check" grub-script-check "$VM_STATE/rewind-default.cfg"
    vm_check_eq "the set's copies went with the set" "" "$(cat "$VM_STATE/store-3")"
}

host_check_boot_4() {
    vm_check "boot 4 (GRUB's default entry) sees the data from before the upgrade" \
        vm_compare_sums "$VM_STATE/before.sha256" "$VM_STATE/boot4.sha256"
    vm_check "boot 4 ran the init from before the upgrade" \
        vm_files_differ "$VM_STATE/broken-init.sha256" "$VM_STATE/init4.sha256"
    vm_check_eq "boot 4 had no rd.rewind" "" "$(cat "$VM_STATE/cmdline-rewind-4")"
    vm_check "boot 4: root is plain linear" grep -q '^vg0-root: 0 [0-9]* linear ' "$VM_STATE/dm-table-4"
    vm_check_eq "boot 4: --next-boot set GRUB's one-shot entry" "next_entry=rewind>rewind-again" \
        "$(cat "$VM_STATE/grubenv-4")"
    vm_check "boot 4: --next-boot flagged nothing" vm_file_lacks 'merging' "$VM_STATE/lvs-4"
    local old
    old=$(cat "$VM_STATE/kver-old")
    vm_check "boot 4 (GRUB's default) started the old kernel, not the new one" \
        grep -q "^BOOT_IMAGE=/vmlinuz-$old " "$VM_STATE/cmdline-4"
    vm_check_eq "boot 4: its modules are in the root (and only its)" "$old" "$(cat "$VM_STATE/modules-4")"
    vm_check "boot 4: set again's entry boots its own copy" \
        grep -q "rewind_boot 'again' 'rewind/vmlinuz-$old\." "$VM_STATE/rewind-4.cfg"
}

host_check_boot_5() {
    vm_check_eq "boot 5 (no keys) ran the set's entry by itself" "rd.rewind=again" \
        "$(cat "$VM_STATE/cmdline-rewind-5")"
    # GRUB's save_env writes the variable back empty.
    vm_check_eq "GRUB cleared next_entry when it booted it (one boot only)" "" \
        "$(sed -n 's/^next_entry=//p' "$VM_STATE/grubenv-5")"
    vm_check "boot 5 sees the data from before the upgrade" \
        vm_compare_sums "$VM_STATE/before.sha256" "$VM_STATE/boot5.sha256"
    vm_check_eq "after boot 5 no set is left" "[]" "$(tr -d ' \n' <"$VM_STATE/list-5.json")"
    vm_check_eq "and the menu file is empty" "0" "$(stat -c %s "$VM_STATE/rewind-5.cfg")"
    vm_check "boot 5 (next_entry beats the pinned default) started set again's kernel copy" \
        grep -q "^BOOT_IMAGE=/rewind/vmlinuz-$(cat "$VM_STATE/kver-old")\." "$VM_STATE/cmdline-5"
}
