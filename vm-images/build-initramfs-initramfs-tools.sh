#!/bin/bash
# Build an initramfs with the guest's own initramfs-tools (`update-initramfs`), in a chroot over
# an overlay of the cached root (the cache is never modified). rewind goes in with
# `install.sh DESTDIR=` (its initramfs-tools hook, udev rule and rewind-early), as on a real
# system. Called by build-initramfs.sh --generator initramfs-tools, or directly.
#
# Usage: vm-images/build-initramfs-initramfs-tools.sh --root DIR --out FILE [--no-lvm] [--add SRC:DEST]...
#   --add SRC:DEST   put file SRC at DEST in the chroot before update-initramfs runs (repeatable)
#   --no-lvm         an image without LVM2: neither lvm2's nor dmsetup's initramfs hook runs (as
#                    on a system without those packages), so only rewind's hook brings
#                    device-mapper's udev rules and dmsetup; the build fails if lvm is in it
# Environment: REWIND_BIN (install.sh's; default the release build).
#
# The cached root has dracut, not initramfs-tools: the packages are fetched with the machine's
# apt configuration (apt-get download, kept in target/vm/debs/initramfs-tools/) and unpacked with
# dpkg into the overlay (dracut conflicts with initramfs-tools; the overlay is thrown away).
# The initramfs is initramfs-tools' default one (MODULES=most, zstd), not trimmed.
set -euo pipefail
# shellcheck source=vm-images/lib.sh
. "$(dirname "$0")/lib.sh"

root='' out='' lvm=1
adds=()
while (($#)); do
    case $1 in
    --root) root=$2; shift ;;
    --out) out=$2; shift ;;
    --add) adds+=("$2"); shift ;;
    --no-lvm) lvm=0 ;;
    *) vm_die "build-initramfs-initramfs-tools: unknown argument $1" ;;
    esac
    shift
done
[[ -d $root && -n $out ]] || vm_die "usage: build-initramfs-initramfs-tools.sh --root DIR --out FILE [--no-lvm] [--add SRC:DEST]..."
root=$(cd "$root" && pwd)
out=$(realpath -m "$out")
mkdir -p "$(dirname "$out")"

start=$(vm_now)
debs=$(vm_itools_debs)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vm-itools.XXXXXX")
merged=$tmp/merged
cleanup() {
    vm_overlay_umount "$merged"
    rm -rf "$tmp"
}
trap cleanup EXIT
vm_overlay_mount "$root" "$tmp" "$merged"

mkdir -p "$merged/tmp/debs"
cp "$debs"/*.deb "$merged/tmp/debs/"
kver=$(vm_root_kver "$merged")
vm_chroot_mount "$merged"
# Every package configured but initramfs-tools itself: its postinst would build an image for
# every kernel now; update-initramfs below is the one build.
chroot "$merged" sh -c 'dpkg --force-all --unpack /tmp/debs/*.deb &&
    dpkg --force-all --configure libklibc klibc-utils busybox zstd initramfs-tools-core' \
    >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log" >&2; vm_die "dpkg could not install initramfs-tools"; }
vm_add_files "$merged" "${adds[@]}"
sh "$VM_REPO_DIR/install.sh" DESTDIR="$merged" ${REWIND_BIN:+"REWIND_BIN=$REWIND_BIN"} >&2
# The root's initramfs is dracut's; replace it with initramfs-tools' own.
rm -f "$merged/boot/initrd.img-$kver"
if ((lvm == 0)); then
    rm -f "$merged/usr/share/initramfs-tools/hooks/lvm2" "$merged/usr/share/initramfs-tools/hooks/dmsetup"
fi
chroot "$merged" update-initramfs -c -k "$kver" >&2
if ((lvm == 0)) && chroot "$merged" lsinitramfs "/boot/initrd.img-$kver" | grep -Eq '(^|/)s?bin/lvm$'; then
    vm_die "--no-lvm: the image still has lvm"
fi
cp "$merged/boot/initrd.img-$kver" "$out"
vm_timing initramfs_build "$(vm_elapsed "$start")"
vm_log "initramfs $out ($(du -h "$out" | cut -f1), initramfs-tools)"
