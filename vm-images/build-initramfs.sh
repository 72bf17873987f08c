#!/bin/bash
# Build an initramfs with the guest root's own dracut, in a chroot over an overlay of the root
# (the cached root is never modified).
#
# Usage: vm-images/build-initramfs.sh --root DIR --out FILE [options]
#   --lvm | --no-lvm          include dracut's lvm module (default: include)
#   --systemd | --no-systemd  systemd initramfs or dracut's shell init (default: no systemd)
#   --modules-dir DIR         copy every dracut module in DIR (NNname/ dirs) into
#                             /usr/lib/dracut/modules.d and include them (repeatable)
#   --add SRC:DEST            put file SRC at DEST in the chroot before dracut runs (repeatable)
#   --dracut-arg ARG          pass ARG to dracut (repeatable)
#   --generator NAME          dracut (default), or another generator: the other arguments
#                             go to vm-images/build-initramfs-NAME.sh
set -euo pipefail
# shellcheck source=vm-images/lib.sh
. "$(dirname "$0")/lib.sh"

# --generator may come anywhere (tests/vm/run.sh puts --root and --out first); it is taken out.
gen=dracut rest=()
while (($#)); do
    if [[ $1 == --generator ]]; then
        gen=${2:?--generator needs a name}
        shift 2
    else
        rest+=("$1")
        shift
    fi
done
set -- "${rest[@]}"
if [[ $gen != dracut ]]; then
    [[ -x $VM_IMAGES_DIR/build-initramfs-$gen.sh ]] || vm_die "build-initramfs: no generator $gen"
    exec "$VM_IMAGES_DIR/build-initramfs-$gen.sh" "$@"
fi

root='' out='' lvm=1 systemd=0
modules_dirs=() adds=() dracut_args=()
while (($#)); do
    case $1 in
    --root) root=$2; shift ;;
    --out) out=$2; shift ;;
    --lvm) lvm=1 ;;
    --no-lvm) lvm=0 ;;
    --systemd) systemd=1 ;;
    --no-systemd) systemd=0 ;;
    --modules-dir) modules_dirs+=("$2"); shift ;;
    --add) adds+=("$2"); shift ;;
    --dracut-arg) dracut_args+=("$2"); shift ;;
    *) vm_die "build-initramfs: unknown argument $1" ;;
    esac
    shift
done
[[ -d $root && -n $out ]] || vm_die "usage: build-initramfs.sh --root DIR --out FILE [options]"
root=$(cd "$root" && pwd)
out=$(realpath -m "$out")
mkdir -p "$(dirname "$out")"

start=$(vm_now)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vm-initramfs.XXXXXX")
merged=$tmp/merged
cleanup() {
    vm_overlay_umount "$merged"
    rm -rf "$tmp"
}
trap cleanup EXIT
vm_overlay_mount "$root" "$tmp" "$merged"

# A lean, exclusive module list: what a root on an LV needs, nothing hostonly.
modules=(bash base fs-lib rootfs-block udev-rules kernel-modules)
((lvm)) && modules+=(dm lvm)
((systemd)) && modules+=(systemd systemd-initrd dracut-systemd)
for dir in "${modules_dirs[@]}"; do
    for m in "$dir"/[0-9][0-9]*/; do
        [[ -d $m ]] || continue
        name=$(basename "$m")
        cp -a "${m%/}" "$merged/usr/lib/dracut/modules.d/$name"
        modules+=("${name:2}")
    done
done
vm_add_files "$merged" "${adds[@]}"

kver=$(vm_root_kver "$merged")
vm_chroot_mount "$merged"
# Only the drivers a virtio guest with an LVM root needs (dependencies follow).
chroot "$merged" dracut --force --quiet --no-hostonly --no-hostonly-cmdline --no-compress \
    --modules "${modules[*]}" \
    --drivers "virtio_blk virtio_pci ext4 dm_mod dm_snapshot dm_bufio" \
    "${dracut_args[@]}" \
    --kver "$kver" /tmp/vm-initramfs.img >&2
cp "$merged/tmp/vm-initramfs.img" "$out"
vm_timing initramfs_build "$(vm_elapsed "$start")"
vm_log "initramfs $out ($(du -h "$out" | cut -f1), modules: ${modules[*]})"
