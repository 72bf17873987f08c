# shellcheck shell=bash
# Shared helpers for the VM harness: paths, logging, the cached guest root.
# Sourced by the scripts in vm-images/ and tests/vm/; defines functions only.

VM_IMAGES_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VM_REPO_DIR=$(cd "$VM_IMAGES_DIR/.." && pwd)
# Everything generated lives under target/vm/ (gitignored): the root cache and per-run work dirs.
VM_TARGET_DIR=${VM_TARGET_DIR:-$VM_REPO_DIR/target/vm}
# The machine's own apt sources: mmdebstrap's mirror argument (never a host name in the repo).
VM_APT_SOURCES=${VM_APT_SOURCES:-/etc/apt/sources.list.d/debian.sources}
# LVM2 complains about every inherited file descriptor; they are harmless here.
export LVM_SUPPRESS_FD_WARNINGS=1
# LVM2 on the host has no device-mapper: metadata only, no udev, no devices file.
# shellcheck disable=SC2034 # used by the scripts that source this file
VM_LVM_HOST_CONFIG='global { activation = 0 } devices { obtain_device_list_from_udev = 0 use_devicesfile = 0 }'

# The same, restricted to one device: other loop devices on the machine (other tests) may hold
# VGs with the same names.
vm_lvm_config_for() {
    printf 'global { activation = 0 } devices { obtain_device_list_from_udev = 0 use_devicesfile = 0 filter = [ "a|^%s$|", "r|.*|" ] }' "$1"
}

vm_log() {
    printf '%s vm: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2
}

vm_die() {
    vm_log "error: $*"
    exit 1
}

# Seconds since the epoch with milliseconds, for build/boot timings.
vm_now() {
    date +%s.%3N
}

# vm_elapsed START: seconds since START (as printed by vm_now), two decimals.
vm_elapsed() {
    awk -v a="$1" -v b="$(vm_now)" 'BEGIN { printf "%.2f", b - a }'
}

# Append "KEY VALUE" to the timings file of the current run, if one is set.
vm_timing() {
    vm_log "timing: $1 = $2 s"
    if [[ -n "${VM_TIMINGS_FILE:-}" ]]; then
        printf '%s %s\n' "$1" "$2" >>"$VM_TIMINGS_FILE"
    fi
}

# A guest root's package list: vm-images/packages, or vm-images/packages-FLAVOR for another
# kind of guest (`grub`: a Debian machine booting through GRUB from its own disk; `pm`: pacman
# and dnf beside apt). Each flavor's file is a whole list.
vm_root_list() {
    printf '%s/packages%s\n' "$VM_IMAGES_DIR" "${1:+-$1}"
}

# vm_root_packages [FLAVOR]: the package list, comma separated, comments dropped.
vm_root_packages() {
    grep -v -e '^#' -e '^[[:space:]]*$' "$(vm_root_list "${1:-}")" | paste -sd, -
}

# vm_root_key [FLAVOR]: cache key, the package list and the script that builds the root.
vm_root_key() {
    cat "$(vm_root_list "${1:-}")" "$VM_IMAGES_DIR/build-root.sh" | sha256sum | cut -c1-16
}

# vm_root_dir [FLAVOR]: where the root is cached (root-KEY, root-FLAVOR-KEY).
vm_root_dir() {
    printf '%s/cache/root-%s%s\n' "$VM_TARGET_DIR" "${1:+$1-}" "$(vm_root_key "${1:-}")"
}

# The one kernel version installed in a root.
vm_root_kver() {
    local root=$1 kvers
    kvers=$(ls "$root/lib/modules")
    [[ $(wc -w <<<"$kvers") == 1 ]] || vm_die "expected one kernel in $root/lib/modules, found: $kvers"
    printf '%s\n' "$kvers"
}

# vm_itools_debs: the directory of initramfs-tools' packages (and what the cached root lacks
# of their dependencies), fetched once with the machine's apt configuration (apt-get download);
# prints its path.
vm_itools_debs() {
    local debs=$VM_TARGET_DIR/debs/initramfs-tools
    local pkgs=(initramfs-tools initramfs-tools-core klibc-utils libklibc busybox zstd)
    if ! [[ -f $debs/.complete ]]; then
        rm -rf "$debs"
        mkdir -p "$debs"
        # A machine whose package lists were never fetched (or are stale) gets them once.
        if ! (cd "$debs" && apt-get download "${pkgs[@]}" >&2); then
            apt-get update -q >&2
            (cd "$debs" && apt-get download "${pkgs[@]}" >&2)
        fi
        touch "$debs/.complete"
    fi
    printf '%s\n' "$debs"
}

# Bind-mount /proc, /sys, /dev into a root for chroot use; vm_chroot_umount undoes it.
vm_chroot_mount() {
    local root=$1 d
    for d in proc sys dev; do
        mkdir -p "$root/$d"
        mount --bind "/$d" "$root/$d"
    done
}

vm_chroot_umount() {
    local root=$1 d
    for d in dev sys proc; do
        if mountpoint -q "$root/$d"; then
            umount -l "$root/$d" || true
        fi
    done
}

# An overlay of LOWER (the cached guest root, never written) at MERGED, its upper and work
# directories in SCRATCH: what a build adds to the root goes away with SCRATCH.
vm_overlay_mount() {
    local lower=$1 scratch=$2 merged=$3
    mkdir -p "$scratch/upper" "$scratch/work" "$merged"
    mount -t overlay overlay -o "lowerdir=$lower,upperdir=$scratch/upper,workdir=$scratch/work" "$merged"
}

# Undoes vm_overlay_mount and vm_chroot_mount; does nothing where nothing is mounted.
vm_overlay_umount() {
    local merged=$1
    vm_chroot_umount "$merged"
    if mountpoint -q "$merged"; then
        umount "$merged" || umount -l "$merged" || true
    fi
}

# Copies each SRC:/ABSOLUTE/DEST (a build script's --add) into the tree at ROOT, replacing what
# is there. A symlink is copied as it is (it may point into the guest's tree: systemd's enable
# links).
vm_add_files() {
    local root=$1 a src dest
    shift
    for a in "$@"; do
        src=${a%%:*} dest=${a#*:}
        [[ (-e $src || -L $src) && $dest == /* ]] || vm_die "bad --add $a (want SRC:/ABSOLUTE/DEST)"
        mkdir -p "$root$(dirname "$dest")"
        rm -rf "$root$dest"
        cp -a "$src" "$root$dest"
    done
}

# Kill a qemu we started earlier whose pid file is still around (a run that was interrupted).
vm_kill_stale_qemu() {
    local pidfile=$1 pid
    [[ -f $pidfile ]] || return 0
    pid=$(cat "$pidfile")
    if [[ -n $pid ]] && grep -q qemu "/proc/$pid/cmdline" 2>/dev/null; then
        vm_log "killing stale qemu $pid"
        kill "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}
