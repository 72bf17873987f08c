#!/usr/bin/env bash
# Installs what building and testing rewind needs on Debian 12, through the machine's own apt
# configuration. Idempotent: does nothing when everything is already there.
set -euo pipefail

packages=(
  # build: the devicemapper crate's bindgen needs libclang; pkg-config finds libdevmapper's headers
  build-essential pkg-config libclang-dev libdevmapper-dev
  # host tier: stock LVM2 in metadata-only mode on loop devices
  lvm2 util-linux e2fsprogs
  # VM tier: guest root, disks, qemu
  mmdebstrap qemu-system-x86 qemu-utils cpio zstd busybox-static
  # lints
  shellcheck
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "deps: no Rust toolchain found; rewind needs Rust 1.95 or newer (install it with rustup)" >&2
  exit 1
fi
