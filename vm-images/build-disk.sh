#!/bin/bash
# Make a raw disk image holding one PV, a VG and LVs, with the root filesystem on the first LV,
# without device-mapper: LVM2 in metadata-only mode on a loop device, then mkfs.ext4 at the
# LV's byte offset. The VG keeps free space for snapshots.
#
# Usage: vm-images/build-disk.sh --root DIR --out IMG [options]
#   --size SIZE        image size (default 3G)
#   --vg NAME          VG name (default vg0)
#   --lv NAME:SIZE     an LV (repeatable, in order); the first one gets the root filesystem
#                      (default: root:1200M)
#   --add SRC:DEST     put file or directory SRC at DEST in the root filesystem (repeatable); the root
#                      directory itself is not modified (an overlay is used)
#   --grub-boot SIZE   a disk that boots through GRUB (BIOS), as Debian's installer lays it out:
#                      an msdos label, partition 1 (SIZE, e.g. 256MiB, ext4) is /boot (the root's
#                      /boot moves there; an fstab line mounts it), partition 2 the PV. GRUB's
#                      boot.img goes in the MBR and its core image (grub-mkimage from the root's
#                      grub-pc: grub-install cannot probe a loop device) in the gap before
#                      partition 1; the core image puts GRUB on the serial console. /boot gets
#                      GRUB's modules, a grubenv and a first grub.cfg (one entry; the guest's
#                      update-grub replaces it)
#   --grub-boot root   a disk that boots through GRUB (BIOS) with /boot a directory of the root LV:
#                      an msdos label, partition 1 the PV (from sector 2048: the usual gap is
#                      before it). GRUB's directory is the root's /boot/grub: GRUB's lvm module
#                      reads it, the kernel and the initramfs from the LV. This core image
#                      (grub-mkimage as above, with lvm) only bootstraps: the guest's own
#                      grub-install replaces it (tests/vm/scenarios/grub-root-lvm.sh)
#   --sdboot-esp SIZE  a disk that boots through systemd-boot under UEFI firmware (OVMF): a GPT
#                      label, partition 1 (SIZE, e.g. 256MiB) an EFI system partition (vfat, made
#                      on the host with mkfs.vfat and mtools; an fstab line mounts it at
#                      /boot/efi), partition 2 the PV. The ESP holds systemd-boot (the root's, else
#                      the host's) as EFI/BOOT/BOOTX64.EFI (the removable path: no boot entry in
#                      the firmware's variables needed), loader/loader.conf (a 3 s menu), and the
#                      kernel as kernel-install lays it out: debian/KVER/linux, the initramfs
#                      given by --boot-add, and the machine's own entry
#                      loader/entries/debian-KVER.conf (sort-key debian)
#   --boot-add SRC:DEST  with --grub-boot: put file SRC at DEST in the /boot filesystem; with
#                      --sdboot-esp: in the ESP (repeatable)
#   --cmdline TEXT     with --grub-boot: the kernel command line of the first grub.cfg; with
#                      --sdboot-esp: the options of the machine's own entry (default: root= the
#                      first LV, ro)
set -euo pipefail
# shellcheck source=vm-images/lib.sh
. "$(dirname "$0")/lib.sh"

root='' out='' size=3G vg=vg0 grub_boot='' sdboot_esp='' cmdline=''
lvs=() adds=() boot_adds=()
while (($#)); do
    case $1 in
    --root) root=$2; shift ;;
    --out) out=$2; shift ;;
    --size) size=$2; shift ;;
    --vg) vg=$2; shift ;;
    --lv) lvs+=("$2"); shift ;;
    --add) adds+=("$2"); shift ;;
    --grub-boot) grub_boot=$2; shift ;;
    --sdboot-esp) sdboot_esp=$2; shift ;;
    --boot-add) boot_adds+=("$2"); shift ;;
    --cmdline) cmdline=$2; shift ;;
    *) vm_die "build-disk: unknown argument $1" ;;
    esac
    shift
done
[[ -d $root && -n $out ]] || vm_die "usage: build-disk.sh --root DIR --out IMG [options]"
((${#lvs[@]})) || lvs=(root:1200M)
root=$(cd "$root" && pwd)
out=$(realpath -m "$out")
mkdir -p "$(dirname "$out")"

# grub_disk TREE: partition 1 becomes /boot (TREE's /boot moves there, TREE's /etc/fstab mounts
# it), GRUB goes into the MBR and the gap before partition 1 (see --grub-boot).
# With --grub-boot root, /boot stays in TREE (the root LV's filesystem, UUID $root_uuid).
grub_disk() {
    local tree=$1 bootfs=$tmp/bootfs grubdir=/usr/lib/grub/i386-pc uuid kver core
    local rel='' mods=(biosdisk part_msdos ext2 search search_fs_uuid serial terminal)
    [[ -n $tree && -d $tree/boot ]] || vm_die "build-disk: no tree"
    kver=$(vm_root_kver "$tree")
    if [[ $grub_boot == root ]]; then
        uuid=$root_uuid bootfs=$tree/boot rel=/boot
        mods+=(lvm)
    else
        uuid=$(cat /proc/sys/kernel/random/uuid)
        mkdir -p "$bootfs"
        cp -a "$tree/boot/." "$bootfs/"
        find "$tree/boot" -mindepth 1 -delete
        printf 'UUID=%s /boot ext4 defaults 0 2\n' "$uuid" >>"$tree/etc/fstab"
    fi
    vm_add_files "$bootfs" "${boot_adds[@]}"
    [[ -f $bootfs/vmlinuz-$kver && -f $bootfs/initrd.img-$kver ]] ||
        vm_die "build-disk: /boot lacks vmlinuz-$kver or initrd.img-$kver (give the initramfs with --boot-add)"
    # What grub-install puts in /boot/grub: the modules and lists, an environment block.
    mkdir -p "$bootfs/grub/i386-pc"
    cp "$tree$grubdir"/*.mod "$tree$grubdir"/*.lst "$bootfs/grub/i386-pc/"
    chroot "$tree" grub-editenv /tmp/grubenv create
    mv "$tree/tmp/grubenv" "$bootfs/grub/grubenv"
    cat >"$bootfs/grub/grub.cfg" <<EOF
# The first boot's menu, written by build-disk.sh; the guest's update-grub replaces it.
set timeout=5
menuentry 'Debian GNU/Linux (build-disk.sh)' {
    linux $rel/vmlinuz-$kver root=/dev/mapper/$vg-${lvs[0]%%:*} ro $cmdline
    initrd $rel/initrd.img-$kver
}
EOF
    # GRUB is silent on the serial line until a config sets the terminal up: do it first thing.
    cat >"$tree/tmp/early.cfg" <<EOF
serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
search --no-floppy --fs-uuid --set=root $uuid
set prefix=(\$root)$rel/grub
EOF
    chroot "$tree" grub-mkimage -O i386-pc -d "$grubdir" -o /tmp/core.img -c /tmp/early.cfg \
        -p "$rel/grub" "${mods[@]}" >&2
    core=$tree/tmp/core.img
    (($(stat -c %s "$core") <= (p1_start - 1) * 512)) || vm_die "build-disk: GRUB's core image does not fit before partition 1"
    # boot.img's code only (440 bytes): the disk signature and the partition table stay. Its
    # default kernel sector (1) is where the core image goes; diskboot.img's block list (made
    # by grub-mkimage) loads the rest from sector 2 on.
    dd if="$tree$grubdir/boot.img" of="$out" bs=440 count=1 conv=notrunc status=none
    dd if="$core" of="$out" bs=512 seek=1 conv=notrunc status=none
    rm -f "$core" "$tree/tmp/early.cfg"
    if [[ $grub_boot == root ]]; then
        vm_log "disk $out: /boot a directory of the root LV (filesystem UUID $uuid), GRUB in the MBR (serial console, lvm module)"
        return 0
    fi
    mkfs.ext4 -q -F -L boot -U "$uuid" -E "offset=$((p1_start * 512))" -d "$bootfs" "$out" "$((p1_size / 2))k" >&2
    vm_log "disk $out: /boot on partition 1 (UUID $uuid), GRUB in the MBR (serial console)"
}

# sdboot_disk TREE: partition 1 becomes the EFI system partition, mounted at /boot/efi (see
# --sdboot-esp); TREE's own /boot stays a directory of the root.
sdboot_disk() {
    local tree=$1 esp=$tmp/esp esp_img=$tmp/esp.img volid uuid kver efi
    [[ -n $tree && -d $tree/boot ]] || vm_die "build-disk: no tree"
    kver=$(vm_root_kver "$tree")
    efi=$tree/usr/lib/systemd/boot/efi/systemd-bootx64.efi
    [[ -f $efi ]] || efi=/usr/lib/systemd/boot/efi/systemd-bootx64.efi
    [[ -f $efi ]] || vm_die "build-disk: no systemd-bootx64.efi (the root's or the host's systemd-boot)"
    [[ -f $tree/boot/vmlinuz-$kver ]] || vm_die "build-disk: the root has no /boot/vmlinuz-$kver"
    mkdir -p "$esp/EFI/BOOT" "$esp/loader/entries" "$esp/debian/$kver"
    cp "$efi" "$esp/EFI/BOOT/BOOTX64.EFI"
    cp "$tree/boot/vmlinuz-$kver" "$esp/debian/$kver/linux"
    vm_add_files "$esp" "${boot_adds[@]}"
    [[ -f $esp/debian/$kver/initrd.img-$kver ]] ||
        vm_die "build-disk: the ESP lacks debian/$kver/initrd.img-$kver (give the initramfs with --boot-add)"
    printf 'timeout 3\neditor no\n' >"$esp/loader/loader.conf"
    cat >"$esp/loader/entries/debian-$kver.conf" <<EOF
title Debian GNU/Linux 12 (bookworm)
version $kver
sort-key debian
linux /debian/$kver/linux
initrd /debian/$kver/initrd.img-$kver
options ${cmdline:-root=/dev/mapper/$vg-${lvs[0]%%:*} ro}
EOF
    volid=$(od -An -N4 -tx4 /dev/urandom | tr -d ' ' | tr '[:lower:]' '[:upper:]')
    uuid=${volid:0:4}-${volid:4:4}
    mkdir -p "$tree/boot/efi"
    printf 'UUID=%s /boot/efi vfat umask=0077 0 2\n' "$uuid" >>"$tree/etc/fstab"
    truncate -s "$((p1_size * 512))" "$esp_img"
    mkfs.vfat -F 32 -n ESP -i "$volid" "$esp_img" >&2
    MTOOLS_SKIP_CHECK=1 mcopy -s -Q -i "$esp_img" "$esp"/* ::/
    dd if="$esp_img" of="$out" bs=1M seek="$((p1_start * 512))" oflag=seek_bytes conv=notrunc status=none
    rm -f "$esp_img"
    vm_log "disk $out: ESP on partition 1 (UUID $uuid): systemd-boot, kernel $kver, entry debian-$kver.conf"
}

start=$(vm_now)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vm-disk.XXXXXX")
merged=$tmp/merged
loop=''
cleanup() {
    if [[ -n $loop ]]; then
        losetup -d "$loop" || true
    fi
    vm_overlay_umount "$merged"
    rm -rf "$tmp"
}
trap cleanup EXIT

lvm_q() {
    lvm "$@" --config "$(vm_lvm_config_for "$loop")"
}

rm -f "$out"
truncate -s "$size" "$out"
# The PV's byte offset in the image: 0, or partition 2's start on a GRUB disk.
pv_offset=0
root_uuid=$(cat /proc/sys/kernel/random/uuid)
[[ -z $grub_boot || -z $sdboot_esp ]] || vm_die "build-disk: --grub-boot or --sdboot-esp, not both"
if [[ $grub_boot == root ]]; then
    sfdisk -q "$out" >&2 <<EOF
label: dos
start=2048, type=8e, bootable
EOF
    # "IMG1 : start=2048, size=N, type=8e, bootable" -> "2048 N"
    read -r p1_start p1_size < <(sfdisk -d "$out" | awk -v p="${out}1" '$1 == p { gsub(/[^0-9]/, "", $4); gsub(/[^0-9]/, "", $6); print $4, $6 }')
    [[ -n $p1_start ]] || vm_die "build-disk: cannot read back the partition of $out"
    pv_offset=$((p1_start * 512))
    loop=$(losetup -f --show -o "$pv_offset" --sizelimit "$((p1_size * 512))" "$out")
elif [[ -n $grub_boot || -n $sdboot_esp ]]; then
    if [[ -n $grub_boot ]]; then
        sfdisk -q "$out" >&2 <<EOF
label: dos
start=2048, size=$grub_boot, type=83, bootable
type=8e
EOF
    else
        # The EFI system partition, then an LVM PV.
        sfdisk -q "$out" >&2 <<EOF
label: gpt
start=2048, size=$sdboot_esp, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="ESP"
type=E6D6D379-F507-44C2-A23C-238F2A3DF928, name="pv"
EOF
    fi
    # "IMG1 : start=2048, size=524288, type=83, bootable" -> "2048 524288"
    part() {
        sfdisk -d "$out" | awk -v p="$out$1" '$1 == p { gsub(/[^0-9]/, "", $4); gsub(/[^0-9]/, "", $6); print $4, $6 }'
    }
    read -r p1_start p1_size < <(part 1)
    read -r p2_start p2_size < <(part 2)
    [[ -n $p1_start && -n $p2_start ]] || vm_die "build-disk: cannot read back the partitions of $out"
    pv_offset=$((p2_start * 512))
    loop=$(losetup -f --show -o "$pv_offset" --sizelimit "$((p2_size * 512))" "$out")
else
    loop=$(losetup -f --show "$out")
fi
lvm_q pvcreate -q -y "$loop" >&2
lvm_q vgcreate -q -y "$vg" "$loop" >&2
for spec in "${lvs[@]}"; do
    lvm_q lvcreate -q -y -an -Zn -Wn -n "${spec%%:*}" -L "${spec#*:}" "$vg" >&2
done

root_lv=${lvs[0]%%:*}
pe_start=$(lvm_q pvs --noheadings --units b --nosuffix -o pe_start "$loop" | tr -d ' ')
extent=$(lvm_q vgs --noheadings --units b --nosuffix -o vg_extent_size "$vg" | tr -d ' ')
lv_bytes=$(lvm_q lvs --noheadings --units b --nosuffix -o lv_size "$vg/$root_lv" | tr -d ' ')
# One segment "/dev/loopN:FIRST-LAST" is expected for a fresh VG.
ranges=$(lvm_q lvs --noheadings -o seg_pe_ranges "$vg/$root_lv" | tr -d ' ')
[[ $ranges =~ ^[^:]+:([0-9]+)-[0-9]+$ ]] || vm_die "unexpected segments for $vg/$root_lv: $ranges"
first=${BASH_REMATCH[1]}
offset=$((pv_offset + pe_start + first * extent))
losetup -d "$loop"
loop=''

vm_overlay_mount "$root" "$tmp" "$merged"
vm_add_files "$merged" "${adds[@]}"
# The cache's marker file is not part of the guest.
rm -f "$merged/.vm-root-complete"
# For a systemd root: run the harness's step unit; skip dracut's shutdown unpacking (10 s a boot).
if [[ -f $merged/etc/systemd/system/vm-step.service ]]; then
    mkdir -p "$merged/etc/systemd/system/multi-user.target.wants"
    ln -sf ../vm-step.service "$merged/etc/systemd/system/multi-user.target.wants/vm-step.service"
fi
ln -sf /dev/null "$merged/etc/systemd/system/dracut-shutdown.service"

if [[ -n $grub_boot ]]; then
    grub_disk "$merged"
fi
if [[ -n $sdboot_esp ]]; then
    sdboot_disk "$merged"
fi
mkfs.ext4 -q -F -L "$root_lv" -U "$root_uuid" -E "offset=$offset" -d "$merged" "$out" "$((lv_bytes / 1024))k" >&2
vm_timing disk_build "$(vm_elapsed "$start")"
vm_log "disk $out: $vg/$root_lv at byte offset $offset, $((lv_bytes / 1048576)) MiB"
