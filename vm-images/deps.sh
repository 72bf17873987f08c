#!/bin/bash
# Install the host packages the VM harness needs (idempotent; a fresh CI machine starts here).
set -euo pipefail

# openssh-client: ssh and ssh-keygen, the controller's side of the ansible-role scenario.
# ovmf, dosfstools, mtools: the systemd-boot guest (build-disk.sh --sdboot-esp: the ESP made
# with mkfs.vfat and mcopy; run-guest.sh --uefi: Debian's OVMF firmware).
pkgs=(qemu-system-x86 mmdebstrap lvm2 e2fsprogs cpio zstd busybox-static file tar util-linux coreutils
    fdisk grub-common openssh-client ovmf dosfstools mtools)
missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    echo "deps: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck source=tests/progress.sh
    . "$(dirname "$0")/../tests/progress.sh"
    pg_setup
    log=$(mktemp)
    apt_install() { { apt-get update -q && apt-get install -y -q --no-install-recommends "$@"; } >"$log" 2>&1; }
    if ! pg_run "deps: apt-get install (${#missing[@]} packages)" apt_install "${missing[@]}"; then
        tail -n 40 "$log" >&2
        exit 1
    fi
    rm -f "$log"
fi
