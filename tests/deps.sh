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
  # the hook tests: udevadm (the rules' syntax), systemd-analyze (the poller's unit)
  udev systemd
  # the fuzz seeds (fuzz/seed.sh) and the VM checks' COW reader (tests/vm/cow-exceptions.py);
  # the --json outputs validated against docs/json/ (tests/json_schema.rs)
  python3 python3-jsonschema
  # the man pages and completions (tests/hooks/t_docs.sh): man renders, the shells complete
  man-db zsh fish
  # the Debian package (packaging/deb/build.sh, tests/hooks/t_deb.sh): built with debhelper,
  # checked by lintian, installed by dpkg into a root mmdebstrap builds; objcopy (binutils)
  debhelper dpkg-dev lintian mmdebstrap binutils
  # the Ansible role's checks (tests/hooks/t_ansible.sh): a venv for ansible-core from PyPI
  python3-venv
  # the pacman and dnf hooks (tests/hooks/t_pkgmgr.sh, VM scenario pm-hooks): the real package
  # managers, and makepkg (bsdtar, zstd) and rpmbuild for the test packages
  pacman-package-manager makepkg libarchive-tools zstd dnf rpm
  # the boot menu's files checked by GRUB's own grub-script-check (tests/host_sets.rs);
  # sfdisk (fdisk) partitions the GRUB guest's disk (vm-images/build-disk.sh --grub-boot)
  grub-common fdisk
  # the GRUB reinstall after a rollback of GRUB's directory (tests/host_grubboot.rs): the real
  # grub-install (grub2-common) and its BIOS modules (grub-pc-bin), on loop disks
  grub2-common grub-pc-bin
  # the check that a boot entry's initramfs carries rewind (tests/host_bootkernel.rs): the
  # distribution's lister, lsinitramfs
  initramfs-tools-core
  # Boot Loader Specification entries read back by systemd-boot's bootctl (tests/host_bootkernel.rs)
  systemd-boot
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck source=tests/progress.sh
  . tests/progress.sh
  pg_setup
  log=$(mktemp)
  apt_install() { { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@"; } >"$log" 2>&1; }
  if ! pg_run "deps: apt-get install (${#missing[@]} packages)" apt_install "${missing[@]}"; then
    tail -n 40 "$log" >&2
    exit 1
  fi
  rm -f "$log"
fi
# ansible-core and ansible-lint (PyPI, pinned) in a venv under target/ (tests/hooks/t_ansible.sh);
# REWIND_DEPS_ANSIBLE=0 leaves them out (the demo does not need them).
venv=target/ansible-venv
if [ "${REWIND_DEPS_ANSIBLE:-1}" != 0 ] && ! [ -x "$venv/bin/ansible-lint" ]; then
  echo "deps: ansible-core and ansible-lint into $venv (pip)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'ansible-core==2.19.14' 'ansible-lint==26.10.1'
fi
# The host tier's stock LVM2 and loop devices, and the VM tier.
bash vm-images/deps.sh

# shellcheck source=tests/toolchain.sh
. tests/toolchain.sh
if ! command -v cargo >/dev/null 2>&1; then
  echo "deps: no Rust toolchain found${SUDO_USER:+ (nor in ~$SUDO_USER/.cargo/bin)}; rewind needs Rust 1.95 or newer (install it with rustup)" >&2
  exit 1
fi
