# shellcheck shell=bash
# The udev rules' ordering claims, the poller's unit, install.sh's tree, shellcheck.

rule_runs() { grep -E '^RUN\+=' "$1"; }

test_rules_order_before_lvm() {
    local r
    for r in "$REPO/initramfs/63-rewind.rules" "$REPO/dracut-module/90rewind/63-rewind.rules"; do
        # udev reads rule files in name order (C collation) and runs an event's RUN list in
        # that order; blkid (60-persistent-storage) must come first for ID_FS_TYPE.
        eq "${r#"$REPO"/}: between blkid and LVM's rules" \
            "60-persistent-storage.rules 63-rewind.rules 64-lvm.rules 69-dm-lvm.rules 69-lvm.rules" \
            "$(printf '%s\n' 69-lvm.rules 64-lvm.rules 69-dm-lvm.rules 60-persistent-storage.rules \
                "${r##*/}" | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')"
        has "${r#"$REPO"/}: PVs only" '^ENV\{ID_FS_TYPE\}!="LVM2_member", GOTO="rewind_end"$' "$(cat "$r")"
    done
    eq "initramfs-tools/mkinitcpio rule runs the wrapper with the PV" \
        'RUN+="/usr/lib/rewind/rewind-early %k"' "$(rule_runs "$REPO/initramfs/63-rewind.rules")"
    eq "dracut rule records the PV, queues a settled onetime job 00-rewind" \
        "RUN+=\"/bin/sh -c 'mkdir -p /run/rewind/pv && : > /run/rewind/pv/%k'\""$'\n'"RUN+=\"/sbin/initqueue --settled --onetime --unique --name 00-rewind /usr/lib/rewind/rewind-early\"" \
        "$(rule_runs "$REPO/dracut-module/90rewind/63-rewind.rules")"
    # dracut's initqueue runs settled jobs by `for job in settled/*.sh`: glob order
    local l
    for l in C C.UTF-8 en_US.UTF-8; do
        eq "job 00-rewind.sh before lvm_scan.sh ($l)" "00-rewind.sh" \
            "$(printf '%s\n' lvm_scan.sh 51-lvm_scan.sh 00-rewind.sh | LC_ALL=$l sort 2> /dev/null | head -n1)"
    done
    check
}

test_rules_syntax() {
    command -v udevadm > /dev/null || skip "no udevadm (tests/deps.sh installs udev)"
    local r
    if udevadm verify --help > /dev/null 2>&1; then
        udevadm verify "$REPO/initramfs/63-rewind.rules" "$REPO/dracut-module/90rewind/63-rewind.rules" ||
            fail "udevadm verify"
        check
        return
    fi
    # systemd 252 (Debian 12) has no `udevadm verify`; its rule parser runs in `udevadm test`.
    # The parser must see a broken rule (the check can fail), then nothing in ours.
    printf 'ACTION=="add", NO_SUCH_KEY="x"\n' > "$T/bad.rules"
    has "udevadm test reports a broken rule" "bad.rules:1 Invalid key" "$(udev_parse "$T/bad.rules")"
    for r in "$REPO/initramfs/63-rewind.rules" "$REPO/dracut-module/90rewind/63-rewind.rules"; do
        eq "udevadm test's parser on ${r#"$REPO"/}" "" "$(udev_parse "$r")"
    done
    check
}

# udev_parse RULES: what systemd-udevd's rule parser says of the file RULES (its lines that
# name it), from `udevadm test` in a mount namespace where RULES is the only rule file and /run
# is a fresh tmpfs (udevadm test writes its device database there).
udev_parse() {
    local dev
    for dev in /sys/class/mem/null /sys/class/net/lo; do [ -e "$dev" ] && break; done
    mkdir -p "$T/rules.d" "$T/empty"
    rm -f "$T/rules.d/"*
    cp "$1" "$T/rules.d/"
    # shellcheck disable=SC2016 # expanded by the inner shell
    local script='mount -t tmpfs tmpfs /run &&
        for d in /usr/lib/udev/rules.d /lib/udev/rules.d /usr/local/lib/udev/rules.d; do
            if [ -d "$d" ]; then mount --bind "$1/empty" "$d" || exit 1; fi
        done &&
        mkdir -p /etc/udev/rules.d && mount --bind "$1/rules.d" /etc/udev/rules.d &&
        udevadm test --action=add "$2" 2>&1'
    local out
    # root: a mount namespace; otherwise one inside a user namespace, where we are root too
    out=$(unshare -m sh -c "$script" sh "$T" "$dev" 2> /dev/null ||
        unshare -rm sh -c "$script" sh "$T" "$dev" 2> /dev/null) ||
        skip "cannot make a mount namespace for udevadm test"
    grep -F "/etc/udev/rules.d/${1##*/}:" <<< "$out"
}

test_poll_unit() {
    local u="$REPO/systemd/rewind-poll.service" line
    for line in 'DefaultDependencies=no' 'ExecStart=/usr/sbin/rewind poll' 'Restart=on-failure' \
        'Type=exec' 'Conflicts=shutdown.target' 'Before=shutdown.target' 'WantedBy=sysinit.target' \
        'After=local-fs.target lvm2-monitor.service lvm2-lvmpolld.socket dm-event.socket' \
        'ConditionKernelCommandLine=!rd.rewind=0'; do
        grep -qxF -- "$line" "$u" || fail "unit has no line $line"
    done
    if command -v systemd-analyze > /dev/null; then
        mkdir -p "$T/units"
        cp "$u" "$T/units/"
        # verify complains about ExecStart's binary when it is not installed: only that is allowed
        local out
        out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$T/units/rewind-poll.service" 2>&1 |
            grep -v -e '/usr/sbin/rewind' -e 'rewind-poll.service: Failed to create' -e 'Unit rewind-poll.service not found' || true)
        eq "systemd-analyze verify" "" "$out"
    fi
    check
}

test_watch_units() {
    local line
    for line in 'Type=oneshot' 'ExecStart=/usr/sbin/rewind watch' 'ConditionKernelCommandLine=!rd.rewind=0'; do
        grep -qxF -- "$line" "$REPO/systemd/rewind-watch.service" || fail "watch unit has no line $line"
    done
    for line in 'OnUnitActiveSec=10min' 'WantedBy=timers.target'; do
        grep -qxF -- "$line" "$REPO/systemd/rewind-watch.timer" || fail "watch timer has no line $line"
    done
    if command -v systemd-analyze > /dev/null; then
        mkdir -p "$T/units"
        cp "$REPO/systemd/rewind-watch.service" "$REPO/systemd/rewind-watch.timer" "$T/units/"
        local out
        out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$T/units/rewind-watch.timer" "$T/units/rewind-watch.service" 2>&1 |
            grep -v -e '/usr/sbin/rewind' -e 'Failed to create' -e 'not found' || true)
        eq "systemd-analyze verify" "" "$out"
    fi
    check
}

test_handoff_unit() {
    local u="$REPO/initramfs/rewind-handoff.service" line
    for line in 'DefaultDependencies=no' 'Type=oneshot' 'ConditionPathExists=/etc/initrd-release' \
        'After=initrd-fs.target' 'Before=initrd.target initrd-cleanup.service' \
        'ExecStart=-/usr/lib/rewind/rewind-early --handoff'; do
        grep -qxF -- "$line" "$u" || fail "unit has no line $line"
    done
    if command -v systemd-analyze > /dev/null; then
        mkdir -p "$T/units"
        cp "$u" "$T/units/"
        local out
        out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$T/units/rewind-handoff.service" 2>&1 |
            grep -v -e '/usr/lib/rewind/rewind-early' -e 'rewind-handoff.service: Failed to create' -e 'Unit rewind-handoff.service not found' || true)
        eq "systemd-analyze verify" "" "$out"
    fi
    check
}

install_tree() { # install_tree DIR: every path with its mode and link target
    (cd "$1" && find . -mindepth 1 \( -type f -printf '%m %p\n' -o -type l -printf '%m %p -> %l\n' \) |
        sed 's|^\([0-9]*\) \./|\1 /|' | LC_ALL=C sort)
}

install_expected='755 /usr/sbin/rewind
755 /usr/lib/rewind/rewind-early
644 /usr/lib/rewind/63-rewind.rules
755 /usr/lib/dracut/modules.d/90rewind/module-setup.sh
644 /usr/lib/dracut/modules.d/90rewind/63-rewind.rules
755 /usr/lib/dracut/modules.d/90rewind/rewind-early
755 /usr/lib/dracut/modules.d/90rewind/wait-lvm-scan.sh
755 /usr/lib/dracut/modules.d/90rewind/rewind-handoff.sh
755 /usr/share/initramfs-tools/hooks/rewind
755 /usr/share/initramfs-tools/scripts/local-bottom/rewind
644 /usr/lib/initcpio/install/rewind
644 /usr/lib/initcpio/hooks/rewind
644 /usr/lib/systemd/system/rewind-poll.service
644 /usr/lib/systemd/system/rewind-watch.service
644 /usr/lib/systemd/system/rewind-watch.timer
644 /usr/lib/systemd/system/rewind-handoff.service
644 /etc/rewind/rewind.toml
755 /etc/grub.d/42_rewind
755 /usr/lib/kernel/install.d/95-rewind.install
644 /usr/share/man/man5/rewind.toml.5
644 /usr/share/man/man7/rewind-boot.7
644 /usr/share/man/man8/rewind.8
644 /usr/share/man/man8/rewind-poll.8
644 /usr/share/bash-completion/completions/rewind
644 /usr/share/zsh/vendor-completions/_rewind
644 /usr/share/fish/vendor_completions.d/rewind.fish'
install_enabled='777 /etc/systemd/system/sysinit.target.wants/rewind-poll.service -> /usr/lib/systemd/system/rewind-poll.service
777 /etc/systemd/system/timers.target.wants/rewind-watch.timer -> /usr/lib/systemd/system/rewind-watch.timer'

# fake_docs DIR: what rewind-gen-docs writes, in short.
fake_docs() {
    mkdir -p "$1/man" "$1/completions"
    for f in man/rewind.8 man/rewind-poll.8 completions/rewind.bash completions/_rewind completions/rewind.fish; do
        echo "$f" > "$1/$f"
    done
}

test_install_destdir() {
    fake_rewind "$T/bin/rewind"
    fake_docs "$T/docs"
    local out
    out=$(sh "$REPO/install.sh" DESTDIR="$T/dest" REWIND_BIN="$T/bin/rewind" REWIND_DOCS="$T/docs" \
        ZSH_COMPLETIONS=/usr/share/zsh/vendor-completions 2>&1) || fail "install.sh failed: $out"
    same_lines "installed tree" "$install_expected"$'\n'"$install_enabled" "$(install_tree "$T/dest")"
    cmp -s "$T/docs/completions/_rewind" "$T/dest/usr/share/zsh/vendor-completions/_rewind" ||
        fail "zsh completions differ"
    has "says to rebuild the initramfs" 'rebuild the initramfs' "$out"
    cmp -s "$T/bin/rewind" "$T/dest/usr/sbin/rewind" || fail "binary differs"
    cmp -s "$REPO/packaging/rewind.toml" "$T/dest/etc/rewind/rewind.toml" || fail "default config differs"
    cmp -s "$REPO/initramfs/rewind-early" "$T/dest/usr/lib/dracut/modules.d/90rewind/rewind-early" ||
        fail "dracut module's rewind-early differs"
    check
}

# The packages' way: enabling left to the package (Debian, RPM) or a static link (Arch).
test_install_enable_modes() {
    fake_rewind "$T/bin/rewind"
    fake_docs "$T/docs"
    local out
    out=$(sh "$REPO/install.sh" DESTDIR="$T/no" REWIND_BIN="$T/bin/rewind" REWIND_DOCS="$T/docs" \
        ENABLE=no ZSH_COMPLETIONS=/usr/share/zsh/vendor-completions 2>&1) || fail "ENABLE=no failed: $out"
    same_lines "ENABLE=no: no link" "$install_expected" "$(install_tree "$T/no")"
    out=$(sh "$REPO/install.sh" DESTDIR="$T/static" REWIND_BIN="$T/bin/rewind" REWIND_DOCS="$T/docs" \
        ENABLE=static ZSH_COMPLETIONS=/usr/share/zsh/site-functions 2>&1) || fail "ENABLE=static failed: $out"
    same_lines "ENABLE=static: the link under /usr/lib, zsh's site-functions" \
        "${install_expected//vendor-completions/site-functions}"$'\n''777 /usr/lib/systemd/system/sysinit.target.wants/rewind-poll.service -> ../rewind-poll.service
777 /usr/lib/systemd/system/timers.target.wants/rewind-watch.timer -> ../rewind-watch.timer' \
        "$(install_tree "$T/static")"
    out=$(sh "$REPO/install.sh" DESTDIR="$T/bad" REWIND_BIN="$T/bin/rewind" ENABLE=maybe 2>&1)
    eq "ENABLE=maybe: exit 2" 2 "$?"
    out=$(sh "$REPO/install.sh" DESTDIR="$T/bad" REWIND_BIN="$T/bin/rewind" REWIND_DOCS="$T/none" 2>&1)
    eq "REWIND_DOCS without the pages: exit 1" 1 "$?"
    has "says how to generate them" 'rewind-gen-docs' "$out"
    [ -e "$T/bad" ] && fail "something was installed"
    check
}

test_install_apt_hook_where_apt_is() {
    fake_rewind "$T/bin/rewind"
    mkdir -p "$T/dest/etc/apt/apt.conf.d"
    sh "$REPO/install.sh" DESTDIR="$T/dest" REWIND_BIN="$T/bin/rewind" > /dev/null || fail "install.sh failed"
    cmp -s "$REPO/packaging/apt/80rewind" "$T/dest/etc/apt/apt.conf.d/80rewind" || fail "apt snippet not installed"
    check
}

test_install_pacman_and_dnf_hooks_where_they_are() {
    fake_rewind "$T/bin/rewind"
    sh "$REPO/install.sh" DESTDIR="$T/none" REWIND_BIN="$T/bin/rewind" > /dev/null 2>&1 || fail "install.sh failed"
    [ -e "$T/none/usr/share/libalpm" ] && fail "pacman hooks without pacman"
    [ -e "$T/none/etc/dnf" ] && fail "dnf plugin without dnf"
    mkdir -p "$T/dest/usr/bin" "$T/dest/usr/lib/python3/dist-packages/dnf"
    touch "$T/dest/usr/bin/pacman" && chmod 755 "$T/dest/usr/bin/pacman"
    sh "$REPO/install.sh" DESTDIR="$T/dest" REWIND_BIN="$T/bin/rewind" > /dev/null 2>&1 || fail "install.sh failed"
    local f
    for f in packaging/pacman/05-rewind-pre.hook:usr/share/libalpm/hooks/05-rewind-pre.hook \
        packaging/pacman/zz-rewind-post.hook:usr/share/libalpm/hooks/zz-rewind-post.hook \
        packaging/dnf/rewind.py:usr/lib/python3/dist-packages/dnf-plugins/rewind.py \
        packaging/dnf/rewind.conf:etc/dnf/plugins/rewind.conf; do
        cmp -s "$REPO/${f%%:*}" "$T/dest/${f#*:}" || fail "${f#*:} not installed"
    done
    check
}

# packaging/apt/80rewind as real apt reads it: the pre hook gets protocol 3 (apt looks the
# version up by the command's first word), both are guarded (tests/hooks/t_pkgmgr.sh runs them); both shellcheck-clean
# (apt runs each with /bin/sh -c).
test_apt_snippet() {
    command -v apt-config > /dev/null || skip "no apt-config"
    local dump pre post
    dump=$(apt-config dump -c "$REPO/packaging/apt/80rewind") || fail "apt-config cannot read it"
    pre=$(sed -n 's/^DPkg::Pre-Install-Pkgs:: "\(.*rewind.*\)";$/\1/p' <<< "$dump")
    post=$(sed -n 's/^DPkg::Post-Invoke:: "\(.*rewind.*\)";$/\1/p' <<< "$dump")
    eq "pre-install command" "REWIND_APT_HOOK=3 sh -c 'test ! -x /usr/sbin/rewind || exec /usr/sbin/rewind hook apt pre'" "$pre"
    # apt-config dump quotes the key's "=" as %3d.
    has "protocol 3 for the pre command's first word" "^DPkg::Tools::Options::${pre%%=*}%3d3::Version \"3\";$" "$dump"
    has "post command" "rewind hook apt post" "$post"
    if command -v shellcheck > /dev/null; then
        printf '%s\n' "$pre" "$post" > "$T/apt-hooks.sh"
        shellcheck -s sh -S style "$T/apt-hooks.sh" || fail "shellcheck of the snippet's commands"
    fi
    check
}

test_install_is_idempotent_and_keeps_config() {
    fake_rewind "$T/bin/rewind"
    fake_docs "$T/docs"
    sh "$REPO/install.sh" DESTDIR="$T/dest" REWIND_BIN="$T/bin/rewind" REWIND_DOCS="$T/docs" > /dev/null
    echo '[log]' > "$T/dest/etc/rewind/rewind.toml"
    local before
    before=$(install_tree "$T/dest")
    sh "$REPO/install.sh" DESTDIR="$T/dest" REWIND_BIN="$T/bin/rewind" REWIND_DOCS="$T/docs" > /dev/null ||
        fail "second run failed"
    eq "same tree after a second run" "$before" "$(install_tree "$T/dest")"
    eq "an existing config is kept" "[log]" "$(cat "$T/dest/etc/rewind/rewind.toml")"
    check
}

test_install_errors() {
    local out
    out=$(sh "$REPO/install.sh" DESTDIR="$T/dest" REWIND_BIN="$T/none" 2>&1)
    eq "missing binary: exit 1" 1 "$?"
    has "says how to build it" 'cargo build --release' "$out"
    out=$(sh "$REPO/install.sh" BOGUS=1 2>&1)
    eq "unknown argument: exit 2" 2 "$?"
    [ -e "$T/dest" ] && fail "something was installed"
    check
}

test_default_config_is_valid() {
    local bin=${REWIND_RELEASE_BIN:-$REPO/target/x86_64-unknown-linux-gnu/release/rewind}
    [ -x "$bin" ] || skip "no release binary ($bin)"
    "$bin" check-config --help > /dev/null 2>&1 || skip "$bin has no check-config"
    "$bin" check-config --config "$REPO/packaging/rewind.toml" || fail "packaging/rewind.toml invalid"
    check
}

test_shellcheck() {
    command -v shellcheck > /dev/null || skip "shellcheck not installed"
    local f
    cd "$REPO" || return 1
    # what runs in an initramfs or under /bin/sh: POSIX sh
    for f in initramfs/rewind-early mkinitcpio-hook/hooks/rewind initramfs-tools/hooks/rewind install.sh; do
        shellcheck -s sh -S style "$REPO/$f" || fail "shellcheck (sh): $f"
    done
    # what dracut and mkinitcpio source into bash
    for f in dracut-module/90rewind/module-setup.sh mkinitcpio-hook/install/rewind \
        tests/hooks/run.sh tests/hooks/lib.sh tests/hooks/t_*.sh; do
        shellcheck -s bash -S style -x "$REPO/$f" || fail "shellcheck (bash): $f"
    done
    check
}
