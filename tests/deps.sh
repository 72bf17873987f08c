#!/usr/bin/env bash
# Installs what building and testing rewind needs on Debian 12, through the machine's own apt
# configuration: the build and lint packages here, the VM harness's in vm-images/deps.sh.
# Idempotent: does nothing when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  # build: the devicemapper crate's bindgen needs libclang; pkg-config finds libdevmapper's headers
  build-essential pkg-config libclang-dev libdevmapper-dev
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
# The host tier's stock LVM2 and loop devices, and the VM tier.
bash vm-images/deps.sh

if ! command -v cargo >/dev/null 2>&1; then
  echo "deps: no Rust toolchain found; rewind needs Rust 1.95 or newer (install it with rustup)" >&2
  exit 1
fi
