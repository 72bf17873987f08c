#!/bin/bash
# The `--generator mkinitcpio` builder: a busybox initramfs assembled the way mkinitcpio
# assembles one, from what each hook's install script declares. mkinitcpio itself is not
# packaged for Debian, so this script sources each install/NAME into bash and implements
# mkinitcpio's documented build functions (add_binary, add_module, add_file, add_dir,
# add_symlink, add_udev_rule, add_runscript, map, msg/warning/error) over a build root; then it
# adds a minimal mkinitcpio-like /init for busybox ash (vm-images/mkinitcpio/init).
#
# Usage: vm-images/build-initramfs.sh --generator mkinitcpio --root DIR --out FILE [options]
#   --hooks-dir DIR   where install/NAME and hooks/NAME live (default: the repo's mkinitcpio-hook)
#   --hook NAME       a HOOKS entry after `base` (repeatable, in order; default: rewind)
#   --module NAME     an entry of mkinitcpio.conf's MODULES: added with its dependencies and
#                     loaded by /init before the runtime hooks (repeatable; default: virtio_pci
#                     virtio_blk, which a busybox image with no udev needs to see its disks)
#   --add SRC:DEST    put SRC at DEST in the build root before the hooks run (rewind itself...)
#
# What `base` is here: the host's static busybox (/bin/busybox, Debian's busybox-static) with a
# link per applet in /usr/bin, merged-/usr links, /init and /config. No udev daemon: rules that
# hooks add are recorded in the image (usr/lib/udev/rules.d) and listed in /manifest, and nothing
# runs them. Everything a hook adds is listed in /manifest ("KIND PATH"), so tests can check it.
set -euo pipefail
# shellcheck source=vm-images/lib.sh
. "$(dirname "$0")/lib.sh"

root='' out='' hooks_dir=$VM_REPO_DIR/mkinitcpio-hook
hooks=() modules=() adds=()
while (($#)); do
    case $1 in
    --root) root=$2; shift ;;
    --out) out=$2; shift ;;
    --hooks-dir) hooks_dir=$2; shift ;;
    --hook) hooks+=("$2"); shift ;;
    --module) modules+=("$2"); shift ;;
    --add) adds+=("$2"); shift ;;
    *) vm_die "build-initramfs-mkinitcpio: unknown argument $1" ;;
    esac
    shift
done
[[ -d $root && -n $out ]] || vm_die "usage: build-initramfs-mkinitcpio.sh --root DIR --out FILE [options]"
((${#hooks[@]})) || hooks=(rewind)
((${#modules[@]})) || modules=(virtio_pci virtio_blk)
root=$(cd "$root" && pwd)
out=$(realpath -m "$out")
mkdir -p "$(dirname "$out")"
busybox=/bin/busybox
if [[ ! -x $busybox ]] || ! file -b "$busybox" | grep -q 'statically linked'; then
    vm_die "need a static $busybox on the host (Debian: busybox-static)"
fi

start=$(vm_now)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vm-mkinitcpio.XXXXXX")
sysroot=$tmp/sysroot # the build root: an overlay of the cached guest root plus --add files
img=$tmp/image       # the initramfs tree
cleanup() {
    vm_overlay_umount "$sysroot"
    rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$img"
vm_overlay_mount "$root" "$tmp" "$sysroot"
vm_add_files "$sysroot" "${adds[@]}"
kver=$(vm_root_kver "$sysroot")
moddir=/lib/modules/$kver

# --- base: busybox, merged /usr, the directories /init mounts on --------------------------------
mkdir -p "$img"/{usr/bin,usr/lib,dev,proc,sys,run,new_root,tmp,hooks}
ln -s usr/bin "$img/bin"
ln -s usr/bin "$img/sbin"
ln -s bin "$img/usr/sbin"
ln -s usr/lib "$img/lib"
ln -s usr/lib "$img/lib64"
cp "$busybox" "$img/usr/bin/busybox"
for applet in $("$busybox" --list); do
    [[ -e $img/usr/bin/$applet ]] || ln -s busybox "$img/usr/bin/$applet"
done
mknod -m 600 "$img/dev/console" c 5 1
mknod -m 666 "$img/dev/null" c 1 3
: >"$img/manifest"

# --- mkinitcpio's build functions, over $sysroot -> $img ----------------------------------------
# msg, warning and error take a printf format and arguments, as mkinitcpio's do.
fmt() {
    # shellcheck disable=SC2059
    printf "$@"
}
msg() { printf '==> %s\n' "$(fmt "$@")" >&2; }
plain() { printf '    %s\n' "$(fmt "$@")" >&2; }
warning() { printf '==> WARNING: %s\n' "$(fmt "$@")" >&2; }
error() {
    printf '==> ERROR: %s\n' "$(fmt "$@")" >&2
    build_errors=$((build_errors + 1))
    return 1
}
build_errors=0
manifest() { echo "$*" >>"$img/manifest"; }

map() {
    local f=$1 r=0 a
    shift
    for a in "$@"; do
        "$f" "$a" || r=1
    done
    return "$r"
}

add_dir() {
    [[ $1 == /* ]] || { error "add_dir: %s is not absolute" "$1"; return; }
    mkdir -p "$img$1"
    [[ -z ${2:-} ]] || chmod "$2" "$img$1"
}

add_symlink() { # add_symlink NAME [TARGET]
    local name=$1 target=${2:-}
    [[ -n $target ]] || target=$(readlink -f "$sysroot$1" | sed "s|^$sysroot||")
    mkdir -p "$img$(dirname "$name")"
    ln -sfn "$target" "$img$name"
    manifest symlink "$name"
}

add_file() { # add_file SRC [DEST [MODE]]
    local src=$1 dest=${2:-$1} mode=${3:-}
    [[ -f $sysroot$src ]] || { error "file not found: %s" "$src"; return; }
    mkdir -p "$img$(dirname "$dest")"
    cp -L "$sysroot$src" "$img$dest"
    [[ -z $mode ]] || chmod "$mode" "$img$dest"
    manifest file "$dest"
}

add_binary() { # add_binary SRC [DEST]: a static ELF or a script (its interpreter is busybox's)
    local src=$1 dest=${2:-$1} kind
    [[ -f $sysroot$src ]] || { error "binary not found: %s" "$src"; return; }
    kind=$(file -b -L "$sysroot$src")
    if [[ $kind == *ELF* && $kind == *dynamically* ]]; then
        error "%s is dynamically linked: this test generator copies no libraries" "$src"
        return
    fi
    mkdir -p "$img$(dirname "$dest")"
    cp -L "$sysroot$src" "$img$dest"
    chmod 0755 "$img$dest"
    manifest binary "$dest"
}

# add_module NAME[?]: the module file and its dependencies, from the build root's modules.dep
# (dashes and underscores are the same in a module name; a trailing ? makes it optional).
add_module() {
    local name=${1%\?} optional=0 path dep
    [[ $1 == *\? ]] && optional=1
    name=${name//-/_}
    path=$(awk -F: -v n="$name" '{
            b = $1; sub(/.*\//, "", b); sub(/\.ko(\.(xz|zst|gz))?$/, "", b); gsub(/-/, "_", b)
            if (b == n) { print $1; exit }
        }' "$sysroot$moddir/modules.dep")
    if [[ -z $path ]]; then
        ((optional)) && return 0
        error "module not found: %s" "$1"
        return
    fi
    for dep in $path $(awk -F: -v p="$path" '$1 == p { print $2 }' "$sysroot$moddir/modules.dep"); do
        [[ -e $img$moddir/$dep ]] && continue
        mkdir -p "$img$moddir/$(dirname "$dep")"
        cp "$sysroot$moddir/$dep" "$img$moddir/$dep"
        manifest module "$moddir/$dep"
    done
}

add_udev_rule() { # recorded; this image has no udev daemon to run it
    local src=$1
    [[ $src == /* ]] || src=/usr/lib/udev/rules.d/$src
    add_file "$src" "/usr/lib/udev/rules.d/${src##*/}" 0644 || return
    manifest udev_rule "/usr/lib/udev/rules.d/${src##*/}"
}

add_runscript() { # the runtime part of the hook being built: hooks/NAME -> /hooks/NAME
    [[ -f $hooks_dir/hooks/$hook ]] || { error "no runtime hook %s" "$hooks_dir/hooks/$hook"; return; }
    cp "$hooks_dir/hooks/$hook" "$img/hooks/$hook"
    chmod 0755 "$img/hooks/$hook"
    run_hooks+=("$hook")
    manifest runscript "/hooks/$hook"
}

add_full_dir() { error "add_full_dir is not implemented by this test generator (%s)" "$1"; }

# --- MODULES, then each hook's build() in HOOKS order --------------------------------------------
run_hooks=()
map add_module "${modules[@]}" || vm_die "a MODULES entry is missing"
for hook in "${hooks[@]}"; do
    [[ -f $hooks_dir/install/$hook ]] || vm_die "no install hook $hooks_dir/install/$hook"
    unset -f build
    # shellcheck source=/dev/null
    . "$hooks_dir/install/$hook"
    declare -F build >/dev/null || vm_die "install/$hook defines no build()"
    msg "Running build hook: [%s]" "$hook"
    build || vm_die "build() of hook $hook failed"
    ((build_errors == 0)) || vm_die "hook $hook: $build_errors error(s)"
done
# busybox's modprobe reads modules.dep; the root's kmod files (.bin) are not for it.
"$busybox" depmod -b "$img" "$kver"

{
    echo "HOOKS='base ${hooks[*]}'"
    echo "RUNHOOKS='${run_hooks[*]}'"
    echo "MODULES='${modules[*]}'"
} >"$img/config"
cp "$VM_IMAGES_DIR/mkinitcpio/init" "$img/init"
chmod 0755 "$img/init"

(cd "$img" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >"$out"
vm_timing initramfs_build "$(vm_elapsed "$start")"
vm_log "initramfs $out ($(du -h "$out" | cut -f1), mkinitcpio-like, HOOKS: base ${hooks[*]}; runtime hooks: ${run_hooks[*]})"
