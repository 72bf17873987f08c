# shellcheck shell=bash
# The package-manager hook files run by the real package managers on this host: pacman (the
# alpm hooks), dnf 4 (the plugin) and apt (80rewind). Each run is inside a mount namespace
# whose /etc, /var, /usr/share, /usr/sbin and python's dist-packages are overlays on $T, so the
# host's package databases and files are never changed. /usr/sbin/rewind is a fake that
# records its arguments and standard input (or the real binary, or absent). Proves: each
# hook calls rewind with the transaction's packages; a failing pre hook stops the
# transaction (nothing installed); a removed binary makes every hook a silent success.
# The sets themselves need device-mapper: VM scenario pm-hooks.

# pm_sandbox SCRIPT: runs bash SCRIPT in a new mount namespace over overlays; its output.
pm_sandbox() {
    [ "$(id -u)" = 0 ] || skip "needs root (mount namespaces, overlayfs)"
    grep -qw overlay /proc/filesystems || modprobe overlay 2> /dev/null ||
        skip "no overlayfs in this kernel"
    cat > "$T/sandbox.sh" << SANDBOX
set -u
ov() {
    mkdir -p "$T/ov/\$2/up" "$T/ov/\$2/wk"
    mount -t overlay overlay -o "lowerdir=\$1,upperdir=$T/ov/\$2/up,workdir=$T/ov/\$2/wk" "\$1"
}
mount --make-rprivate /
export HOME=$T/home && mkdir -p "$T/home"
ov /etc etc && ov /var var && ov /usr/share share && ov /usr/sbin sbin &&
    ov /usr/lib/python3/dist-packages py || exit 99
rm -f /usr/sbin/rewind
. "\$1"
SANDBOX
    unshare -m bash "$T/sandbox.sh" "$1" < /dev/null 2>&1
}

# pm_fake: the fake rewind for the sandbox ($T/calls; exit status from $T/rc).
pm_fake() {
    cat << FAKE
cat > /usr/sbin/rewind << 'F'
#!/bin/sh
{ echo "ARGS \$*"; cat; } >> $T/calls
exit \$(cat $T/rc 2> /dev/null || echo 0)
F
chmod +x /usr/sbin/rewind
FAKE
}

pm_pkgs() {
    bash "$REPO/tests/pkgs/build.sh" "$T/pkgs" rwtest 1 2 > "$T/build.log" 2>&1 ||
        { cat "$T/build.log"; return 1; }
}

test_pacman_hooks_real_pacman() {
    { command -v pacman && command -v makepkg; } > /dev/null || skip "no pacman/makepkg"
    pm_pkgs || return 1
    local out
    cat > "$T/run.sh" << RUN
mkdir -p /etc/pacman.d/hooks /var/lib/pacman
cp "$REPO"/packaging/pacman/*.hook /etc/pacman.d/hooks/
$(pm_fake)
p() { pacman --noconfirm "\$@" > "$T/pacman.log" 2>&1; echo "\$* rc=\$?"; }
p -U $T/pkgs/rwtest-1-1-any.pkg.tar.zst
p -U $T/pkgs/rwtest-2-1-any.pkg.tar.zst
echo 1 > $T/rc
p -R rwtest
echo "after the refused remove: \$(pacman -Q rwtest) \$(cat /usr/share/rwtest/version)"
rm /usr/sbin/rewind
p -R rwtest
echo "without the binary: \$(pacman -Q rwtest 2>&1)"
cp "${REWIND_RELEASE_BIN:-$REPO/target/x86_64-unknown-linux-gnu/release/rewind}" /usr/sbin/rewind
p -U $T/pkgs/rwtest-1-1-any.pkg.tar.zst
cat "$T/pacman.log"
RUN
    out=$(pm_sandbox "$T/run.sh")
    has "installed" "^-U .*rwtest-1-1-any.pkg.tar.zst rc=0$" "$out"
    has "upgraded" "^-U .*rwtest-2-1-any.pkg.tar.zst rc=0$" "$out"
    has "a failing pre hook stops pacman" "^-R rwtest rc=1$" "$out"
    has "nothing removed" "^after the refused remove: rwtest 2-1 rwtest 2$" "$out"
    has "no binary: pacman goes on" "^-R rwtest rc=0$" "$out"
    has "and removes" "^without the binary: error: package 'rwtest' was not found" "$out"
    eq "what rewind was given" "ARGS hook pacman pre
rwtest
ARGS hook pacman post
ARGS hook pacman pre
rwtest
ARGS hook pacman post
ARGS hook pacman pre
rwtest" "$(cat "$T/calls")"
    # The real binary on a host whose / is no LVM volume (or a container): a message, no set.
    has "the real binary says why no set" "rewind: no snapshot set taken: " "$out"
    check
}

test_dnf_plugin_real_dnf() {
    { command -v dnf && command -v rpmbuild; } > /dev/null || skip "no dnf/rpmbuild"
    pm_pkgs || return 1
    local out
    cat > "$T/run.sh" << RUN
mkdir -p /usr/lib/python3/dist-packages/dnf-plugins /etc/dnf/plugins
cp "$REPO/packaging/dnf/rewind.py" /usr/lib/python3/dist-packages/dnf-plugins/
cp "$REPO/packaging/dnf/rewind.conf" /etc/dnf/plugins/
$(pm_fake)
d() { dnf -y --releasever=12 "\$@" > "$T/dnf.log" 2>&1; echo "\$* rc=\$?"; }
d install $T/pkgs/rwtest-1-1.noarch.rpm
d install $T/pkgs/rwtest-2-1.noarch.rpm
echo 1 > $T/rc
d remove rwtest
echo "after the refused remove: \$(rpm -q rwtest) \$(cat /usr/share/rwtest/version)"
grep -o 'rewind: no rollback point could be taken.*' "$T/dnf.log"
rm /usr/sbin/rewind
d remove rwtest
echo "without the binary: \$(rpm -q rwtest)"
cp "${REWIND_RELEASE_BIN:-$REPO/target/x86_64-unknown-linux-gnu/release/rewind}" /usr/sbin/rewind
d install $T/pkgs/rwtest-1-1.noarch.rpm
cat "$T/dnf.log"
RUN
    out=$(pm_sandbox "$T/run.sh")
    has "installed" "^install .*rwtest-1-1.noarch.rpm rc=0$" "$out"
    has "upgraded" "^install .*rwtest-2-1.noarch.rpm rc=0$" "$out"
    has "a failing pre hook stops dnf" "^remove rwtest rc=1$" "$out"
    has "nothing removed" "^after the refused remove: rwtest-2-1.noarch rwtest 2$" "$out"
    has "dnf says why" "rewind: no rollback point could be taken \(see above\); dnf stops" "$out"
    has "no binary: dnf goes on" "^remove rwtest rc=0$" "$out"
    has "and removes" "^without the binary: package rwtest is not installed$" "$out"
    eq "what rewind was given" "ARGS hook dnf pre
command /usr/bin/dnf -y --releasever=12 install $T/pkgs/rwtest-1-1.noarch.rpm
in install rwtest 1-1
ARGS hook dnf post
now rwtest 1-1
ARGS hook dnf pre
command /usr/bin/dnf -y --releasever=12 install $T/pkgs/rwtest-2-1.noarch.rpm
in upgrade rwtest 2-1
out upgraded rwtest 1-1
ARGS hook dnf post
now rwtest 2-1
ARGS hook dnf pre
command /usr/bin/dnf -y --releasever=12 remove rwtest
out remove rwtest 2-1" "$(cat "$T/calls")"
    has "the real binary says why no set" "rewind: no snapshot set taken: " "$out"
    check
}

# A tiny .deb for apt.
pm_deb() { # pm_deb NAME VERSION
    local d=$T/deb/$1-$2
    mkdir -p "$d/DEBIAN" "$d/usr/share/$1"
    printf 'Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: rewind tests <tests@localhost>\nDescription: rewind hook test package\n' \
        "$1" "$2" > "$d/DEBIAN/control"
    echo "$1 $2" > "$d/usr/share/$1/version"
    dpkg-deb --root-owner-group -Zgzip -b "$d" "$T/${1}_${2}_all.deb" > /dev/null
}

test_apt_snippet_real_apt() {
    { command -v apt-get && command -v dpkg-deb; } > /dev/null || skip "no apt/dpkg-deb"
    pm_deb rwdeb 1
    pm_deb rwdeb 2
    local out
    cat > "$T/run.sh" << RUN
cp "$REPO/packaging/apt/80rewind" /etc/apt/apt.conf.d/80rewind
$(pm_fake)
a() {
    DEBIAN_FRONTEND=noninteractive apt-get -y -o Dpkg::Use-Pty=0 -o APT::Sandbox::User=root \
        "\$@" > "$T/apt.log" 2>&1
    echo "\$* rc=\$?"
}
a install $T/rwdeb_1_all.deb
a install $T/rwdeb_2_all.deb
echo 1 > $T/rc
a remove rwdeb
echo "after the refused remove: \$(dpkg-query -W -f '\${Version}' rwdeb) \$(cat /usr/share/rwdeb/version)"
rm /usr/sbin/rewind
a remove rwdeb
echo "without the binary: \$(dpkg-query -W -f '\${db:Status-Status}' rwdeb 2>&1) \$(ls /usr/share/rwdeb 2>&1)"
cat "$T/apt.log"
RUN
    out=$(pm_sandbox "$T/run.sh")
    has "installed" "^install .*rwdeb_1_all.deb rc=0$" "$out"
    has "upgraded" "^install .*rwdeb_2_all.deb rc=0$" "$out"
    has "a failing pre hook stops apt" "^remove rwdeb rc=100$" "$out"
    has "nothing removed" "^after the refused remove: 2 rwdeb 2$" "$out"
    has "no binary: apt goes on" "^remove rwdeb rc=0$" "$out"
    has "and removes" "^without the binary: dpkg-query: no packages found matching rwdeb ls: cannot access '/usr/share/rwdeb'" "$out"
    local calls
    calls=$(cat "$T/calls")
    # Protocol 3 reached the guarded command (apt looks the version up by its first word).
    eq "pre calls get VERSION 3" 3 "$(grep -c '^VERSION 3$' <<< "$calls")"
    has "the upgrade's line" "^rwdeb 1 all none < 2 all none .*rwdeb_2_all.deb$" "$calls"
    eq "pre, post, pre, post, pre (refused: no post)" "hook apt pre
hook apt post
hook apt pre
hook apt post
hook apt pre" "$(sed -n 's/^ARGS //p' <<< "$calls")"
    check
}
