# shellcheck shell=bash
# rewind's RPM package (packaging/rpm/rewind.spec, built by packaging/rpm/build.sh with the real
# rpmbuild that Debian packages) read back with rpm: its file list (rpm -qlp), the configuration
# files marked %config(noreplace), the units' enable links, the dependencies and the scriptlets
# that rebuild the initramfs with dracut. Not here: installing it on Fedora (no Fedora root on
# these machines).

rpm_needs() {
    local t
    for t in rpmbuild rpm rpm2cpio bsdtar cargo; do
        command -v "$t" > /dev/null || skip "no $t (tests/deps.sh installs it)"
    done
}

test_rpm_package_contents() {
    rpm_needs
    local out rpm files want page
    out=$(REWIND_RPM_OUT="$T/rpm" bash "$REPO/packaging/rpm/build.sh" 2>&1) || { fail "build.sh: $out"; check; return; }
    rpm=$(echo "$T"/rpm/RPMS/x86_64/rewind-*.x86_64.rpm)
    [ -f "$rpm" ] || { fail "no package: $out"; check; return; }
    files=$(rpm -qlp "$rpm" | grep -v '^/usr/lib/.build-id')
    want='/etc/dnf/plugins/rewind.conf
/etc/grub.d/42_rewind
/etc/rewind
/etc/rewind/rewind.toml
/usr/lib/dracut/modules.d/90rewind
/usr/lib/dracut/modules.d/90rewind/63-rewind.rules
/usr/lib/dracut/modules.d/90rewind/module-setup.sh
/usr/lib/dracut/modules.d/90rewind/rewind-early
/usr/lib/dracut/modules.d/90rewind/rewind-handoff.sh
/usr/lib/dracut/modules.d/90rewind/wait-lvm-scan.sh
/usr/lib/kernel/install.d/95-rewind.install
/usr/lib/python3.12/site-packages/dnf-plugins/rewind.py
/usr/lib/rewind
/usr/lib/rewind/63-rewind.rules
/usr/lib/rewind/rewind-early
/usr/lib/rewind/rewind-initramfs
/usr/lib/systemd/system/rewind-handoff.service
/usr/lib/systemd/system/rewind-poll.service
/usr/lib/systemd/system/rewind-watch.service
/usr/lib/systemd/system/rewind-watch.timer
/usr/lib/systemd/system/sysinit.target.wants/rewind-poll.service
/usr/lib/systemd/system/timers.target.wants/rewind-watch.timer
/usr/sbin/rewind
/usr/share/bash-completion/completions/rewind
/usr/share/fish/vendor_completions.d/rewind.fish
/usr/share/man/man5/rewind.toml.5
/usr/share/man/man7/rewind-boot.7
/usr/share/zsh/site-functions/_rewind'
    # One page per subcommand, from the same clap definitions as --help (rewind-gen-docs).
    for page in "$T"/rpm/docs-generated/man/*.8; do
        want+=$'\n'"/usr/share/man/man8/${page##*/}"
    done
    same_lines "the package's files" "$want" "$files"
    has "a page for rollback" '^/usr/share/man/man8/rewind-rollback\.8$' "$files"
    hasnt "no initramfs-tools or mkinitcpio piece" 'initramfs-tools|initcpio' "$files"
    # %config(noreplace): rpm's flags c (config) and n (noreplace).
    out=$(rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpm")
    has "rewind.toml is %config(noreplace)" '^cn /etc/rewind/rewind\.toml$' "$out"
    has "the dnf plugin's configuration is %config(noreplace)" '^cn /etc/dnf/plugins/rewind\.conf$' "$out"
    eq "the configuration files" $'/etc/dnf/plugins/rewind.conf\n/etc/rewind/rewind.toml' "$(rpm -qpc "$rpm")"
    # The enable links point at the units.
    out=$(rpm -qp --qf '[%{FILENAMES} -> %{FILELINKTOS}\n]' "$rpm")
    has "the poller enabled (sysinit.target)" '^/usr/lib/systemd/system/sysinit\.target\.wants/rewind-poll\.service -> \.\./rewind-poll\.service$' "$out"
    has "the watcher's timer enabled" '^/usr/lib/systemd/system/timers\.target\.wants/rewind-watch\.timer -> \.\./rewind-watch\.timer$' "$out"
    out=$(rpm -qpR "$rpm")
    has "requires lvm2" '^lvm2$' "$out"
    has "requires dracut" '^dracut$' "$out"
    out=$(rpm -qp --scripts "$rpm")
    has "posttrans rebuilds the images with dracut" 'dracut -f --regenerate-all' "$out"
    # shellcheck disable=SC2016 # the scriptlet's own $1
    has "postun: only at removal" 'if \[ "\$1" -eq 0 \]' "$out"
    # The binary is the static release build.
    mkdir -p "$T/x"
    rpm2cpio "$rpm" | bsdtar -xf - -C "$T/x" ./usr/sbin/rewind ||
        fail "cannot unpack the binary"
    out=$("$T/x/usr/sbin/rewind" --version 2>&1) || fail "the packaged rewind does not run: $out"
    has "the packaged binary's version" "^rewind $(rpm -qp --qf '%{VERSION}' "$rpm")\$" "$out"
    check
}
