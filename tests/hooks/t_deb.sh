# shellcheck shell=bash
# rewind's Debian package (packaging/deb/build.sh: dpkg-buildpackage and debhelper) checked by
# lintian, then installed, upgraded, removed and purged by the real dpkg in a Debian root
# (tests/hooks/deb-root.sh: Debian's Essential packages, initramfs-tools and a stand-in kernel).
# Asserted: the package database (status, file list, conffiles), the files in the root, the
# poller's unit enabled by the maintainer scripts, the initramfs rebuilt by initramfs-tools' own
# trigger (with rewind in it after the install, without it after the removal), the installed
# man pages rendered by man, the admin's configuration kept on upgrade and removal, nothing of
# rewind left after the purge. Needs root (dpkg runs the maintainer scripts chrooted).

deb_needs() {
    [ "$(id -u)" = 0 ] || skip "not root (dpkg --root runs the maintainer scripts in a chroot)"
    local t
    for t in dpkg-buildpackage dh lintian mmdebstrap cargo man; do
        command -v "$t" > /dev/null || skip "no $t (tests/deps.sh installs it)"
    done
}

# deb_build: builds the package into $T/deb with packaging/deb/build.sh (lintian included);
# prints the .deb's path.
deb_build() {
    REWIND_DEB_OUT="$T/deb" bash "$REPO/packaging/deb/build.sh" > "$T/build.out" 2>&1 ||
        { cat "$T/build.out"; return 1; }
    echo "$T"/deb/rewind_*_amd64.deb
}

# deb_root: a copy of the cached Debian root in $T/root.
deb_root() {
    local root
    root=$(bash "$REPO/tests/hooks/deb-root.sh" 2> "$T/root.err") || { cat "$T/root.err"; return 1; }
    cp -a "$root" "$T/root"
}

# dpkg and dpkg-query on the root ($T/root); dpkg logs to the root's own log.
d() { dpkg --root="$T/root" --log="$T/root/var/log/dpkg.log" "$@" < /dev/null; }
q() { dpkg-query --root="$T/root" "$@"; }

# root_files: every path in the root, dpkg's own database and log left out.
root_files() {
    (cd "$T/root" && find . -mindepth 1 | sed 's|^\.||' |
        grep -v -e '^/var/lib/dpkg/' -e '^/var/log/dpkg\.log$' | LC_ALL=C sort)
}

# image: the files in the root's initramfs image (lsinitramfs, the root's own).
image() { chroot "$T/root" sh -c 'lsinitramfs /boot/initrd.img-*'; }

# shellcheck disable=SC2016 # dpkg-query's ${Field}s
test_deb_build_install_upgrade_remove_purge() {
    deb_needs
    local deb version out f sub subs want conf wants=/etc/systemd/system/sysinit.target.wants/rewind-poll.service
    deb=$(deb_build) || return 1
    # build.sh fails on any lintian error or warning (--pedantic --info); what is left is the
    # info tags packaging/deb/README.md explains, each by name (an override no longer needed
    # would show as unused-override here).
    same_lines "lintian's tags" \
        "I: rewind: package-supports-alternative-init-but-no-init.d-script [lib/systemd/system/rewind-handoff.service]
I: rewind: package-supports-alternative-init-but-no-init.d-script [lib/systemd/system/rewind-poll.service]" \
        "$(grep -E '^[EWIPXO]: ' "$T/deb/lintian.txt")"
    deb_root || return 1
    version=$(dpkg-deb --field "$deb" Version)
    hasnt "the root's initramfs before: no rewind" '^usr/sbin/rewind$' "$(image)"
    root_files > "$T/before"

    # Install.
    out=$(d -i "$deb" 2>&1) || fail "dpkg -i failed: $out"
    eq "dpkg -s rewind" "install ok installed $version" "$(q -W -f='${Status} ${Version}' rewind)"
    has "initramfs-tools' trigger ran" ' trigproc initramfs-tools:all ' "$(cat "$T/root/var/log/dpkg.log")"
    out=$(image)
    for f in usr/sbin/rewind usr/lib/rewind/rewind-early usr/lib/udev/rules.d/63-rewind.rules \
        scripts/local-bottom/rewind etc/rewind/initramfs.json; do
        has "the rebuilt initramfs holds $f" "^${f//./\\.}\$" "$out"
    done
    hasnt "the configuration only as JSON: no rewind.toml in the image" 'rewind\.toml' "$out"
    has "the static binary runs in the root" "^rewind $version\$" "$(chroot "$T/root" /usr/sbin/rewind --version)"
    # The package's files (dpkg -L, directories left out): the man pages of the subcommands the
    # installed binary lists, clap's `help` aside.
    subs=$(chroot "$T/root" /usr/sbin/rewind --help | sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p' | grep -vx help)
    [ -n "$subs" ] || fail "no subcommand in rewind --help"
    want='/etc/apt/apt.conf.d/80rewind
/etc/grub.d/42_rewind
/etc/rewind/rewind.toml
/lib/systemd/system/rewind-handoff.service
/lib/systemd/system/rewind-poll.service
/lib/systemd/system/rewind-watch.service
/lib/systemd/system/rewind-watch.timer
/usr/lib/dracut/modules.d/90rewind/63-rewind.rules
/usr/lib/dracut/modules.d/90rewind/module-setup.sh
/usr/lib/dracut/modules.d/90rewind/rewind-early
/usr/lib/dracut/modules.d/90rewind/rewind-handoff.sh
/usr/lib/dracut/modules.d/90rewind/wait-lvm-scan.sh
/usr/lib/kernel/install.d/95-rewind.install
/usr/lib/rewind/63-rewind.rules
/usr/lib/rewind/apt.conf
/usr/lib/rewind/rewind-early
/usr/lib/rewind/rewind-initramfs
/usr/sbin/rewind
/usr/share/bash-completion/completions/rewind
/usr/share/doc/rewind/changelog.gz
/usr/share/doc/rewind/copyright
/usr/share/fish/vendor_completions.d/rewind.fish
/usr/share/initramfs-tools/hooks/rewind
/usr/share/initramfs-tools/scripts/local-bottom/rewind
/usr/share/lintian/overrides/rewind
/usr/share/man/man5/rewind.toml.5.gz
/usr/share/man/man7/rewind-boot.7.gz
/usr/share/man/man8/rewind.8.gz
/usr/share/zsh/vendor-completions/_rewind'
    for sub in $subs; do want+=$'\n'"/usr/share/man/man8/rewind-$sub.8.gz"; done
    q -L rewind > "$T/listed"
    same_lines "dpkg -L rewind (files)" "$want" "$(while read -r f; do [ -d "$T/root$f" ] || echo "$f"; done < "$T/listed")"
    while read -r f; do [ -e "$T/root$f" ] || [ -L "$T/root$f" ] || fail "listed, not in the root: $f"; done < "$T/listed"
    # The apt hook: a link (no conffile, so it goes at removal) to the tree's file.
    eq "the apt hook's link" /usr/lib/rewind/apt.conf "$(readlink "$T/root/etc/apt/apt.conf.d/80rewind")"
    cmp -s "$REPO/packaging/apt/80rewind" "$T/root/usr/lib/rewind/apt.conf" || fail "the apt hook is not the tree's"
    # dh_strip drops sections (.comment): the code is the tree's release build's.
    if ! { objcopy -O binary --only-section=.text "$REPO/target/x86_64-unknown-linux-gnu/release/rewind" "$T/text.tree" &&
        objcopy -O binary --only-section=.text "$T/root/usr/sbin/rewind" "$T/text.deb" &&
        cmp -s "$T/text.tree" "$T/text.deb"; }; then
        fail "/usr/sbin/rewind's code is not the tree's release build's"
    fi
    # The image carries the initramfs build (early and handoff only) as usr/sbin/rewind.
    if ! { objcopy -O binary --only-section=.text "$REPO/target/x86_64-unknown-linux-gnu/release/rewind-initramfs" "$T/itext.tree" &&
        chroot "$T/root" sh -c 'unmkinitramfs /boot/initrd.img-* /tmp/unpacked' &&
        objcopy -O binary --only-section=.text "$T/root/tmp/unpacked/usr/sbin/rewind" "$T/itext.image" &&
        cmp -s "$T/itext.tree" "$T/itext.image"; }; then
        fail "the image's usr/sbin/rewind is not the tree's rewind-initramfs"
    fi
    # Its configuration: the root's rewind.toml as `rewind check-config --boot-json` writes it.
    chroot "$T/root" /usr/sbin/rewind check-config --boot-json /tmp/want.json > /dev/null ||
        fail "check-config --boot-json failed in the root"
    cmp -s "$T/root/tmp/want.json" "$T/root/tmp/unpacked/etc/rewind/initramfs.json" ||
        fail "the image's etc/rewind/initramfs.json is not check-config's JSON of the root's rewind.toml"
    rm -rf "$T/root/tmp/unpacked" "$T/root/tmp/want.json"
    eq "the image's rewind is the initramfs build" "rewind $version (initramfs build)" \
        "$(chroot "$T/root" /usr/lib/rewind/rewind-initramfs --version)"
    cmp -s "$REPO/initramfs-tools/hooks/rewind" "$T/root/usr/share/initramfs-tools/hooks/rewind" ||
        fail "the initramfs-tools hook is not the tree's"
    cmp -s "$REPO/dracut-module/90rewind/module-setup.sh" "$T/root/usr/lib/dracut/modules.d/90rewind/module-setup.sh" ||
        fail "the dracut module is not the tree's"
    # The configuration: a conffile (dpkg keeps the admin's changes), the tree's default.
    conf=$(q -W -f='${Conffiles}' rewind)
    eq "the conffiles" " /etc/grub.d/42_rewind $(md5sum < "$REPO/packaging/grub.d/42_rewind" | cut -d' ' -f1)
 /etc/rewind/rewind.toml $(md5sum < "$REPO/packaging/rewind.toml" | cut -d' ' -f1)" "$conf"
    cmp -s "$REPO/packaging/grub.d/42_rewind" "$T/root/etc/grub.d/42_rewind" || fail "42_rewind is not the tree's"
    cmp -s "$REPO/packaging/rewind.toml" "$T/root/etc/rewind/rewind.toml" || fail "the default config differs"
    # The poller: enabled by deb-systemd-helper (the root's, from postinst).
    eq "rewind-poll.service enabled" /lib/systemd/system/rewind-poll.service "$(readlink "$T/root$wants")"
    eq "rewind-watch.timer enabled" /lib/systemd/system/rewind-watch.timer \
        "$(readlink "$T/root/etc/systemd/system/timers.target.wants/rewind-watch.timer")"
    # The installed pages render without a warning.
    while read -r f; do
        case $f in /usr/share/man/*.gz) ;; *) continue ;; esac
        out=$(MANWIDTH=80 man --warnings -l "$T/root$f" 2>&1 > "$T/page") || fail "man -l $f failed"
        eq "man --warnings -l $f" "" "$out"
        [ -s "$T/page" ] || fail "$f renders empty"
    done < "$T/listed"
    # shellcheck disable=SC2016 # expanded by the inner bash
    has "bash loads the installed completion" '^complete .*-F [_a-z]+ rewind$' \
        "$(bash --norc --noprofile -c '. "$1" && complete -p rewind' bash "$T/root/usr/share/bash-completion/completions/rewind" 2>&1)"

    # Upgrade, the admin having changed the configuration: dpkg keeps it (dpkg reads no answer
    # from stdin here: a prompt would fail the upgrade).
    echo '# changed by the admin' >> "$T/root/etc/rewind/rewind.toml"
    dpkg-deb -R "$deb" "$T/v2"
    sed -i "s/^Version: .*/Version: $version+up1/" "$T/v2/DEBIAN/control"
    dpkg-deb -b --root-owner-group "$T/v2" "$T/rewind_up1.deb" > /dev/null
    out=$(d -i "$T/rewind_up1.deb" 2>&1) || fail "dpkg -i (upgrade) failed: $out"
    eq "dpkg -s rewind after the upgrade" "install ok installed $version+up1" "$(q -W -f='${Status} ${Version}' rewind)"
    has "upgrade: the admin's configuration kept" '^# changed by the admin$' "$(cat "$T/root/etc/rewind/rewind.toml")"
    eq "upgrade: nothing beside the configuration (no .dpkg-dist, .dpkg-new)" /etc/rewind/rewind.toml \
        "$(cd "$T/root" && find etc/rewind -mindepth 1 | sed 's|^|/|')"

    # Remove: the files go, the configuration stays, the initramfs is rebuilt without rewind.
    out=$(d -r rewind 2>&1) || fail "dpkg -r failed: $out"
    eq "dpkg -s rewind after dpkg -r" "deinstall ok config-files" "$(q -W -f='${Status}' rewind)"
    while read -r f; do
        # The conffiles stay (42_rewind then does nothing: no /usr/sbin/rewind).
        [ -d "$T/root$f" ] || [ "$f" = /etc/rewind/rewind.toml ] || [ "$f" = /etc/grub.d/42_rewind ] ||
            { [ ! -e "$T/root$f" ] && [ ! -L "$T/root$f" ]; } || fail "left after dpkg -r: $f"
    done < "$T/listed"
    has "remove: the admin's configuration kept" '^# changed by the admin$' "$(cat "$T/root/etc/rewind/rewind.toml")"
    eq "initramfs-tools' trigger ran at install, upgrade, removal" 3 \
        "$(grep -c ' trigproc initramfs-tools:all ' "$T/root/var/log/dpkg.log")"
    # (the stand-in kernel's modules directory has "rewind" in its name)
    hasnt "the initramfs rebuilt without rewind" 'rewind' "$(image | grep -v '^usr/lib/modules/')"

    # Purge: nothing of rewind left, the root's file list as before the install.
    out=$(d -P rewind 2>&1) || fail "dpkg -P failed: $out"
    out=$(q -W rewind 2>&1) && fail "dpkg-query still knows rewind after the purge: $out"
    [ -e "$T/root/etc/rewind" ] && fail "/etc/rewind left after the purge"
    [ -L "$T/root$wants" ] && fail "$wants left after the purge"
    same_lines "the root's files: after the purge as before the install" "$(cat "$T/before")" "$(root_files)"
    check
}
