#!/bin/sh
# Installs rewind: the binary, the pieces for dracut, initramfs-tools and mkinitcpio, the poller's
# unit and the snapshot-set watcher's timer, a commented default configuration (only if there is none), the man pages and the shell
# completions. Idempotent. The distribution packages (packaging/) are built from this file's tree.
#
#   ./install.sh [DESTDIR=DIR] [REWIND_BIN=FILE] [REWIND_INITRAMFS_BIN=FILE] [REWIND_DOCS=DIR]
#                [ENABLE=auto|no|static]
#                [UNITDIR=DIR] [ZSH_COMPLETIONS=DIR]
#
# REWIND_BIN defaults to the static release build (cargo build --release); REWIND_INITRAMFS_BIN
# (the initramfs build, src/bin/rewind-initramfs.rs) to rewind-initramfs beside it, left out
# when not there (the initramfs hooks then put the full binary in the image). REWIND_DOCS is what
# `cargo run --features gen-docs --bin rewind-gen-docs -- DIR` wrote (default target/docs; when
# not given and not there, the generated man pages and completions are left out, with a note).
# ENABLE: auto (default) runs `systemctl enable`, or with DESTDIR makes the /etc symlink; no
# leaves enabling to the package's scripts; static makes the symlink in UNITDIR (always on).
# UNITDIR: systemd's unit directory (default /usr/lib/systemd/system; Debian 12's debhelper wants
# /lib/systemd/system). ZSH_COMPLETIONS: zsh's directory (default: vendor-completions on Debian,
# else site-functions). With DESTDIR the tree goes under DIR.
# Either way, rebuild the initramfs afterwards: dracut -f | update-initramfs -u | mkinitcpio -P.
set -eu

for arg in "$@"; do
    case $arg in
        DESTDIR=*) DESTDIR=${arg#DESTDIR=} ;;
        REWIND_BIN=*) REWIND_BIN=${arg#REWIND_BIN=} ;;
        REWIND_INITRAMFS_BIN=*) REWIND_INITRAMFS_BIN=${arg#REWIND_INITRAMFS_BIN=} ;;
        REWIND_DOCS=*) REWIND_DOCS=${arg#REWIND_DOCS=} ;;
        ENABLE=*) ENABLE=${arg#ENABLE=} ;;
        UNITDIR=*) UNITDIR=${arg#UNITDIR=} ;;
        ZSH_COMPLETIONS=*) ZSH_COMPLETIONS=${arg#ZSH_COMPLETIONS=} ;;
        -h | --help)
            sed -n '2,22s/^# \{0,1\}//p' "$0"
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
docs=${REWIND_DOCS:-$src/target/docs}
gen_docs="cargo run --features gen-docs --bin rewind-gen-docs -- target/docs"
if [ ! -f "$docs/man/rewind.8" ] && [ -n "${REWIND_DOCS:-}" ]; then
    echo "install.sh: $docs/man/rewind.8 not found; run '$gen_docs' first" >&2
    exit 1
fi
enable=${ENABLE:-auto}
case $enable in
    auto | no | static) ;;
    *)
        echo "install.sh: ENABLE must be auto, no or static, not '$enable'" >&2
        exit 2
        ;;
esac
if [ -z "${ZSH_COMPLETIONS:-}" ]; then
    ZSH_COMPLETIONS=/usr/share/zsh/site-functions
    [ -e /etc/debian_version ] && ZSH_COMPLETIONS=/usr/share/zsh/vendor-completions
fi

put() { # put MODE SOURCE TARGET
    install -D -m "$1" "$2" "$dest$3"
}

put 755 "$bin" /usr/sbin/rewind
boot_bin=${REWIND_INITRAMFS_BIN:-$(dirname "$bin")/rewind-initramfs}
if [ -f "$boot_bin" ]; then
    put 755 "$boot_bin" /usr/lib/rewind/rewind-initramfs
elif [ -n "${REWIND_INITRAMFS_BIN:-}" ]; then
    echo "install.sh: $boot_bin not found" >&2
    exit 1
fi

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

unitdir=${UNITDIR:-/usr/lib/systemd/system}
unit=$unitdir/rewind-poll.service
put 644 "$src/systemd/rewind-poll.service" "$unit"
# The snapshot-set watcher: the timer starts the service every 10 minutes.
timer=$unitdir/rewind-watch.timer
put 644 "$src/systemd/rewind-watch.service" "$unitdir/rewind-watch.service"
put 644 "$src/systemd/rewind-watch.timer" "$timer"
# Only for systemd initramfs images (mkinitcpio's systemd hook adds it there); it does nothing
# in the booted system (ConditionPathExists=/etc/initrd-release).
put 644 "$src/initramfs/rewind-handoff.service" "$unitdir/rewind-handoff.service"

# The boot menu's rollback submenu (docs/BOOTMENU.md): grub-mkconfig runs it on systems with
# GRUB; elsewhere it is never run.
put 755 "$src/packaging/grub.d/42_rewind" /etc/grub.d/42_rewind
# The same for kernel-install (systemd-boot machines): after a kernel is added or removed.
put 755 "$src/packaging/kernel-install/95-rewind.install" /usr/lib/kernel/install.d/95-rewind.install

# The apt hook (docs/HOOKS.md), on systems with apt.
if [ -d "$dest/etc/apt/apt.conf.d" ]; then
    put 644 "$src/packaging/apt/80rewind" /etc/apt/apt.conf.d/80rewind
fi
# The pacman hooks, on systems with pacman (libalpm's system hook directory).
if [ -x "$dest/usr/bin/pacman" ] || [ -d "$dest/usr/share/libalpm/hooks" ]; then
    put 644 "$src/packaging/pacman/05-rewind-pre.hook" /usr/share/libalpm/hooks/05-rewind-pre.hook
    put 644 "$src/packaging/pacman/zz-rewind-post.hook" /usr/share/libalpm/hooks/zz-rewind-post.hook
fi
# The dnf 4 plugin, beside each python's dnf module (dnf-plugins is dnf.const.PLUGINPATH).
for dnfmod in "$dest"/usr/lib/python3*/site-packages/dnf "$dest"/usr/lib/python3/dist-packages/dnf; do
    [ -d "$dnfmod" ] || continue
    put 644 "$src/packaging/dnf/rewind.py" "${dnfmod#"$dest"}-plugins/rewind.py"
    put 644 "$src/packaging/dnf/rewind.conf" /etc/dnf/plugins/rewind.conf
done

if [ ! -e "$dest/etc/rewind/rewind.toml" ]; then
    put 644 "$src/packaging/rewind.toml" /etc/rewind/rewind.toml
fi

# The pages written by hand; those of the command and its subcommands, and the completions,
# come from the clap definitions (rewind-gen-docs), so a new subcommand gets its page.
put 644 "$src/docs/man/rewind.toml.5" /usr/share/man/man5/rewind.toml.5
put 644 "$src/docs/man/rewind-boot.7" /usr/share/man/man7/rewind-boot.7
if [ -f "$docs/man/rewind.8" ]; then
    for page in "$docs"/man/*.8; do
        put 644 "$page" "/usr/share/man/man8/${page##*/}"
    done
    put 644 "$docs/completions/rewind.bash" /usr/share/bash-completion/completions/rewind
    put 644 "$docs/completions/_rewind" "$ZSH_COMPLETIONS/_rewind"
    put 644 "$docs/completions/rewind.fish" /usr/share/fish/vendor_completions.d/rewind.fish
else
    echo "install.sh: no generated man pages or completions in $docs (run '$gen_docs'); left out" >&2
fi

wants=sysinit.target.wants/rewind-poll.service
twants=timers.target.wants/rewind-watch.timer
case $enable in
    no) ;;
    static)
        mkdir -p "$dest$unitdir/sysinit.target.wants" "$dest$unitdir/timers.target.wants"
        ln -sfn ../rewind-poll.service "$dest$unitdir/$wants"
        ln -sfn ../rewind-watch.timer "$dest$unitdir/$twants"
        ;;
    auto)
        if [ -n "$dest" ]; then
            mkdir -p "$dest/etc/systemd/system/sysinit.target.wants" "$dest/etc/systemd/system/timers.target.wants"
            ln -sfn "$unit" "$dest/etc/systemd/system/$wants"
            ln -sfn "$timer" "$dest/etc/systemd/system/$twants"
        elif command -v systemctl > /dev/null 2>&1; then
            systemctl enable rewind-poll.service rewind-watch.timer
        else
            echo "install.sh: no systemctl; start '/usr/sbin/rewind poll' at boot some other way" >&2
        fi
        ;;
esac

echo "rewind installed${dest:+ under $dest}. Now rebuild the initramfs:"
echo "  dracut -f  |  update-initramfs -u  |  mkinitcpio -P (add 'rewind' before 'lvm2' in HOOKS)"
