#!/bin/bash
# Build the guest root directory with mmdebstrap, or reuse the cached one.
# Prints the root's path. The cache key is a hash of the package list and this script.
# Usage: vm-images/build-root.sh [--force] [--flavor NAME]
#   --flavor NAME   the root of vm-images/packages-NAME (default: vm-images/packages); each
#                   flavor has its own cache entry
set -euo pipefail
# shellcheck source=vm-images/lib.sh
. "$(dirname "$0")/lib.sh"

force=0 flavor=''
while (($#)); do
    case $1 in
    --force) force=1 ;;
    --flavor) flavor=$2; shift ;;
    *) vm_die "build-root: unknown argument $1" ;;
    esac
    shift
done
[[ -f $(vm_root_list "$flavor") ]] || vm_die "build-root: no package list $(vm_root_list "$flavor")"

root=$(vm_root_dir "$flavor")
if [[ -f $root/.vm-root-complete && $force == 0 ]]; then
    printf '%s\n' "$root"
    exit 0
fi

mkdir -p "$VM_TARGET_DIR/cache"
exec 9>"$VM_TARGET_DIR/cache/.build-root.lock"
flock 9
if [[ -f $root/.vm-root-complete && $force == 0 ]]; then
    printf '%s\n' "$root"
    exit 0
fi

[[ -r $VM_APT_SOURCES ]] || vm_die "apt sources file $VM_APT_SOURCES not readable"
# shellcheck source=/dev/null
suite=$(. /etc/os-release && printf '%s' "$VERSION_CODENAME")
tmp=$root.tmp
rm -rf "$tmp" "$root"
start=$(vm_now)
vm_log "building guest root $root (suite $suite, packages $(vm_root_packages "$flavor"))"

# dracut's config must exist before the kernel package's postinst runs dracut: hostonly off
# (a chroot's "host" is the build machine), and no compression (faster to unpack under TCG).
dracut_conf='hostonly="no"
hostonly_cmdline="no"
compress="cat"'

# The hooks' "$1" is expanded by mmdebstrap (the chroot path), not here.
# shellcheck disable=SC2016
mmdebstrap --variant=apt --mode=root --format=directory \
    --include="$(vm_root_packages "$flavor")" \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --essential-hook="mkdir -p \"\$1/etc/dracut.conf.d\" && printf '%s\n' '$dracut_conf' >\"\$1/etc/dracut.conf.d/10-vm.conf\"" \
    --customize-hook='rm -f "$1"/boot/initrd.img-*' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    --customize-hook='echo rewind-vm >"$1/etc/hostname"' \
    "$suite" "$tmp" "$VM_APT_SOURCES" >&2

touch "$tmp/.vm-root-complete"
mv "$tmp" "$root"
# Older roots of this flavor (other keys) are stale: drop them.
if [[ -n $flavor ]]; then
    find "$VM_TARGET_DIR/cache" -maxdepth 1 -name "root-$flavor-*" ! -path "$root" -exec rm -rf {} +
else
    find "$VM_TARGET_DIR/cache" -maxdepth 1 -regextype egrep -regex '.*/root-[0-9a-f]{16}' \
        ! -path "$root" -exec rm -rf {} +
fi
vm_timing root_build "$(vm_elapsed "$start")"
vm_log "root size: $(du -sh "$root" | cut -f1)"
printf '%s\n' "$root"
