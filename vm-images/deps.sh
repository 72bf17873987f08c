#!/bin/bash
# Install the host packages the VM harness needs (idempotent; a fresh CI machine starts here).
set -euo pipefail

pkgs=(qemu-system-x86 mmdebstrap lvm2 e2fsprogs cpio zstd busybox-static file tar util-linux coreutils)
missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    echo "deps: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
