# shellcheck shell=bash
# rewind's Arch Linux package (packaging/arch/PKGBUILD) with the makepkg Debian packages:
# `makepkg --printsrcinfo` reads the PKGBUILD; `makepkg -R` runs its package() under makepkg's
# fakeroot and makes the package, which pacman reads back (file list, backup, dependencies,
# install script). makepkg refuses to run as root, and the Rust toolchain here is root's: the
# test runs makepkg as the unprivileged user nobody, and build()'s step that writes outside
# the tree's release build (the generated man pages and completions) itself beforehand, as
# root, with the same command. Not here: pacman installing it on Arch (no Arch root).

arch_needs() {
    [ "$(id -u)" = 0 ] || skip "not root (makepkg runs as the user nobody)"
    local t
    for t in makepkg fakeroot pacman bsdtar cargo setpriv git; do
        command -v "$t" > /dev/null || skip "no $t (tests/deps.sh installs it)"
    done
    [ -x "${REWIND_RELEASE_BIN:-$REPO/target/x86_64-unknown-linux-gnu/release/rewind}" ] ||
        skip "no release build (cargo build --release)"
}

# arch_tree: a copy of the tree's tracked files and its release binaries in $T/tree, for
# makepkg as nobody (the checkout itself may sit under a directory only root can enter).
arch_tree() {
    local rel=target/x86_64-unknown-linux-gnu/release
    mkdir -p "$T/tree/$rel"
    (cd "$REPO" && git ls-files -z | tar --null -T - -cf -) | tar -xf - -C "$T/tree"
    cp "${REWIND_RELEASE_BIN:-$REPO/$rel/rewind}" "$T/tree/$rel/rewind"
    cp "$(dirname "${REWIND_RELEASE_BIN:-$REPO/$rel/rewind}")/rewind-initramfs" "$T/tree/$rel/"
    chmod -R a+rX "$T/tree"
}

# as_nobody CMD...: CMD in the copy's packaging/arch as the user nobody, every makepkg
# directory in $T/mk.
as_nobody() {
    (cd "$T/tree/packaging/arch" && setpriv --reuid=nobody --regid=nogroup --clear-groups \
        env HOME="$T/mk" BUILDDIR="$T/mk" PKGDEST="$T/mk" SRCDEST="$T/mk" SRCPKGDEST="$T/mk" \
        LOGDEST="$T/mk" "$@")
}

test_arch_pkgbuild() {
    arch_needs
    local out pkg files want page version
    mkdir -p "$T/mk/rewind/src"
    chmod 755 "$T"
    out=$(cd "$REPO" && cargo run -q --offline --locked --features gen-docs --bin rewind-gen-docs -- "$T/mk/rewind/src/docs" 2>&1) ||
        { fail "rewind-gen-docs: $out"; check; return; }
    chown -R nobody "$T/mk"
    arch_tree
    out=$(as_nobody makepkg --printsrcinfo 2>&1) || fail "makepkg --printsrcinfo: $out"
    version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$REPO/Cargo.toml" | head -n 1)
    has "pkgver is Cargo.toml's version" "^	pkgver = $version\$" "$out"
    has "the configuration is kept (backup)" '^	backup = etc/rewind/rewind\.toml$' "$out"
    has "depends on lvm2" '^	depends = lvm2$' "$out"
    has "the install script" '^	install = rewind\.install$' "$out"
    out=$(as_nobody makepkg -R --nodeps 2>&1) || { fail "makepkg -R: $out"; check; return; }
    pkg=$(echo "$T"/mk/rewind-"$version"-1-x86_64.pkg.tar.*)
    [ -f "$pkg" ] || { fail "no package in $T/mk: $out"; check; return; }
    files=$(pacman -Qlp "$pkg" | awk '{ print $2 }' | grep -v '/$')
    want='/etc/grub.d/42_rewind
/etc/rewind/rewind.toml
/usr/bin/rewind
/usr/lib/dracut/modules.d/90rewind/63-rewind.rules
/usr/lib/dracut/modules.d/90rewind/module-setup.sh
/usr/lib/dracut/modules.d/90rewind/rewind-early
/usr/lib/dracut/modules.d/90rewind/rewind-handoff.sh
/usr/lib/dracut/modules.d/90rewind/wait-lvm-scan.sh
/usr/lib/initcpio/hooks/rewind
/usr/lib/initcpio/install/rewind
/usr/lib/kernel/install.d/95-rewind.install
/usr/lib/rewind/63-rewind.rules
/usr/lib/rewind/rewind-early
/usr/lib/rewind/rewind-initramfs
/usr/lib/systemd/system/rewind-handoff.service
/usr/lib/systemd/system/rewind-poll.service
/usr/lib/systemd/system/rewind-watch.service
/usr/lib/systemd/system/rewind-watch.timer
/usr/lib/systemd/system/sysinit.target.wants/rewind-poll.service
/usr/lib/systemd/system/timers.target.wants/rewind-watch.timer
/usr/share/bash-completion/completions/rewind
/usr/share/fish/vendor_completions.d/rewind.fish
/usr/share/libalpm/hooks/05-rewind-pre.hook
/usr/share/libalpm/hooks/zz-rewind-post.hook
/usr/share/man/man5/rewind.toml.5.gz
/usr/share/man/man7/rewind-boot.7.gz
/usr/share/zsh/site-functions/_rewind'
    for page in "$T"/mk/rewind/src/docs/man/*.8; do
        want+=$'\n'"/usr/share/man/man8/${page##*/}.gz"
    done
    same_lines "the package's files" "$want" "$files"
    hasnt "nothing in /usr/sbin (a link to /usr/bin on Arch)" '^/usr/sbin/' "$files"
    out=$(pacman -Qip "$pkg" 2>&1)
    has "pacman: an install script" '^Install Script +: Yes' "$out"
    has "pacman: depends on lvm2" '^Depends On +: lvm2$' "$out"
    out=$(bsdtar -xOf "$pkg" .PKGINFO)
    has "the package's backup file" '^backup = etc/rewind/rewind\.toml$' "$out"
    out=$(bsdtar -xOf "$pkg" .INSTALL)
    has "the install script names the HOOKS line" 'HOOKS' "$out"
    out=$(bsdtar -xOf "$pkg" usr/lib/systemd/system/rewind-poll.service)
    # The units name /usr/sbin/rewind: on Arch that is /usr/bin/rewind through the link.
    has "the poller's unit runs rewind poll" '^ExecStart=/usr/sbin/rewind poll$' "$out"
    check
}
