#!/bin/sh
# Installs rewind: the binary, the pieces for dracut, initramfs-tools and mkinitcpio, the poller's
# unit and a commented default configuration (only if there is none). Idempotent.
#
#   ./install.sh [DESTDIR=DIR] [REWIND_BIN=FILE]
#
# REWIND_BIN defaults to the static release build (cargo build --release). With DESTDIR the tree
# goes under DIR and the poller is enabled by its symlink only; without it, `systemctl enable`.
# Either way, rebuild the initramfs afterwards: dracut -f | update-initramfs -u | mkinitcpio -P.
set -eu

for arg in "$@"; do
    case $arg in
        DESTDIR=*) DESTDIR=${arg#DESTDIR=} ;;
        REWIND_BIN=*) REWIND_BIN=${arg#REWIND_BIN=} ;;
        -h | --help)
            sed -n '2,9s/^# \{0,1\}//p' "$0"
            exit 0
            ;;
        *)
            echo "install.sh: unknown argument: $arg (try --help)" >&2
            exit 2
            ;;
    esac
done

src=$(cd "$(dirname "$0")" && pwd)
dest=${DESTDIR:-}
bin=${REWIND_BIN:-$src/target/x86_64-unknown-linux-gnu/release/rewind}
if [ ! -f "$bin" ]; then
    echo "install.sh: $bin not found; run 'cargo build --release' first (or pass REWIND_BIN=FILE)" >&2
    exit 1
fi

put() { # put MODE SOURCE TARGET
    install -D -m "$1" "$2" "$dest$3"
}

put 755 "$bin" /usr/sbin/rewind

# Shared by the generators; not in the booted system's udev rules on purpose.
put 755 "$src/initramfs/rewind-early" /usr/lib/rewind/rewind-early
put 644 "$src/initramfs/63-rewind.rules" /usr/lib/rewind/63-rewind.rules

dracut=/usr/lib/dracut/modules.d/90rewind
put 755 "$src/dracut-module/90rewind/module-setup.sh" "$dracut/module-setup.sh"
put 644 "$src/dracut-module/90rewind/63-rewind.rules" "$dracut/63-rewind.rules"
put 755 "$src/initramfs/rewind-early" "$dracut/rewind-early"
put 755 "$src/dracut-module/90rewind/wait-lvm-scan.sh" "$dracut/wait-lvm-scan.sh"

put 755 "$src/dracut-module/90rewind/rewind-handoff.sh" "$dracut/rewind-handoff.sh"

put 755 "$src/initramfs-tools/hooks/rewind" /usr/share/initramfs-tools/hooks/rewind
put 755 "$src/initramfs-tools/scripts/local-bottom/rewind" \
    /usr/share/initramfs-tools/scripts/local-bottom/rewind

put 644 "$src/mkinitcpio-hook/install/rewind" /usr/lib/initcpio/install/rewind
put 644 "$src/mkinitcpio-hook/hooks/rewind" /usr/lib/initcpio/hooks/rewind

unit=/usr/lib/systemd/system/rewind-poll.service
put 644 "$src/systemd/rewind-poll.service" "$unit"
timer=/usr/lib/systemd/system/rewind-watch.timer
put 644 "$src/systemd/rewind-watch.service" /usr/lib/systemd/system/rewind-watch.service
put 644 "$src/systemd/rewind-watch.timer" "$timer"
# Only for systemd initramfs images (mkinitcpio's systemd hook adds it there); it does nothing
# in the booted system (ConditionPathExists=/etc/initrd-release).
put 644 "$src/initramfs/rewind-handoff.service" /usr/lib/systemd/system/rewind-handoff.service

# The apt hook (docs/HOOKS.md), on systems with apt.
if [ -d "$dest/etc/apt/apt.conf.d" ]; then
    put 644 "$src/packaging/apt/80rewind" /etc/apt/apt.conf.d/80rewind
fi

if [ ! -e "$dest/etc/rewind/rewind.toml" ]; then
    put 644 "$src/packaging/rewind.toml" /etc/rewind/rewind.toml
fi

if [ -n "$dest" ]; then
    mkdir -p "$dest/etc/systemd/system/sysinit.target.wants"
    ln -sfn "$unit" "$dest/etc/systemd/system/sysinit.target.wants/rewind-poll.service"
    mkdir -p "$dest/etc/systemd/system/timers.target.wants"
    ln -sfn "$timer" "$dest/etc/systemd/system/timers.target.wants/rewind-watch.timer"
elif command -v systemctl > /dev/null 2>&1; then
    systemctl enable rewind-poll.service rewind-watch.timer
else
    echo "install.sh: no systemctl; start '/usr/sbin/rewind poll' at boot some other way" >&2
fi

echo "rewind installed${dest:+ under $dest}. Now rebuild the initramfs:"
echo "  dracut -f  |  update-initramfs -u  |  mkinitcpio -P (add 'rewind' before 'lvm2' in HOOKS)"
