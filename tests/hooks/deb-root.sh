#!/usr/bin/env bash
# The Debian root tests/hooks/t_deb.sh installs rewind's package into with dpkg --root: Debian's
# Essential packages and initramfs-tools, from the machine's own apt sources (mmdebstrap), plus a
# stand-in kernel so that update-initramfs has an image to rebuild: an empty /boot/vmlinuz-V,
# a /boot/config-V, an empty /lib/modules/V, and /boot/initrd.img-V made by update-initramfs
# itself. Built once (~1 min), cached in target/deb/root-KEY (KEY: a hash of this script);
# prints the root's path. Needs root. The tests copy it; nothing changes it.
set -euo pipefail
tree=$(cd "$(dirname "$0")/../.." && pwd)
sources=${VM_APT_SOURCES:-/etc/apt/sources.list.d/debian.sources}
cache=$tree/target/deb
key=$(sha256sum < "$0" | cut -c1-16)
root=$cache/root-$key
if [ -f "$root/.complete" ]; then
    echo "$root"
    exit 0
fi

mkdir -p "$cache"
exec 9> "$cache/.root.lock"
flock 9
if [ -f "$root/.complete" ]; then
    echo "$root"
    exit 0
fi
[ -r "$sources" ] || { echo "deb-root.sh: apt sources $sources not readable" >&2; exit 1; }
# shellcheck source=/dev/null
suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
kver=6.1.0-rewind-test
rm -rf "$root" "$root.tmp"
# The documentation and locales are left out while the root is built, and the setting dropped
# after, so dpkg installs rewind's package whole. The hooks' "$1" is mmdebstrap's (the root).
# shellcheck disable=SC2016
mmdebstrap --variant=essential --mode=root --format=directory --include=initramfs-tools \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --customize-hook='rm "$1"/etc/dpkg/dpkg.cfg.d/99mmdebstrap' \
    --customize-hook="mkdir -p \"\$1/lib/modules/$kver\" && touch \"\$1/boot/vmlinuz-$kver\" \
        \"\$1/lib/modules/$kver/\"modules.order \"\$1/lib/modules/$kver/\"modules.builtin \
        \"\$1/lib/modules/$kver/\"modules.builtin.modinfo && \
        printf 'CONFIG_BLK_DEV_INITRD=y\nCONFIG_RD_GZIP=y\n' > \"\$1/boot/config-$kver\"" \
    --customize-hook="chroot \"\$1\" update-initramfs -c -k $kver" \
    "$suite" "$root.tmp" "$sources" > "$cache/root.log" 2>&1 ||
    { tail -n 30 "$cache/root.log" >&2; echo "deb-root.sh: mmdebstrap failed" >&2; exit 1; }
touch "$root.tmp/.complete"
mv "$root.tmp" "$root"
find "$cache" -maxdepth 1 -name 'root-*' ! -path "$root" -exec rm -rf {} +
echo "$root"
