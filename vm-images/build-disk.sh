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
set -euo pipefail
# shellcheck source=vm-images/lib.sh
. "$(dirname "$0")/lib.sh"

root='' out='' size=3G vg=vg0
lvs=() adds=()
while (($#)); do
    case $1 in
    --root) root=$2; shift ;;
    --out) out=$2; shift ;;
    --size) size=$2; shift ;;
    --vg) vg=$2; shift ;;
    --lv) lvs+=("$2"); shift ;;
    --add) adds+=("$2"); shift ;;
    *) vm_die "build-disk: unknown argument $1" ;;
    esac
    shift
done
[[ -d $root && -n $out ]] || vm_die "usage: build-disk.sh --root DIR --out IMG [options]"
((${#lvs[@]})) || lvs=(root:1200M)
root=$(cd "$root" && pwd)
out=$(realpath -m "$out")
mkdir -p "$(dirname "$out")"

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
loop=$(losetup -f --show "$out")
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
offset=$((pe_start + first * extent))
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

mkfs.ext4 -q -F -L "$root_lv" -E "offset=$offset" -d "$merged" "$out" "$((lv_bytes / 1024))k" >&2
vm_timing disk_build "$(vm_elapsed "$start")"
vm_log "disk $out: $vg/$root_lv at byte offset $offset, $((lv_bytes / 1048576)) MiB"
