#!/bin/bash
# Builds rewind's Debian package from this tree, then checks it with lintian:
#
#   packaging/deb/build.sh          ->  target/deb/rewind_VERSION_amd64.deb (and lintian.txt)
#
# Offline: the crates must be in cargo's cache already (`cargo fetch` once). Needs the Rust
# toolchain (rustup's cargo on PATH) and Debian's debhelper, dpkg-dev and lintian
# (`apt-get install debhelper lintian`, plus the build's libclang-dev libdevmapper-dev
# pkg-config: tests/deps.sh). The files come from install.sh (debian/rules runs it with
# DESTDIR), so the package holds whatever install.sh installs. packaging/deb/README.md says what
# the package does at install, removal, purge and upgrade, and why each remaining lintian tag is
# there.
#
# Environment: REWIND_DEB_VERSION (default: Cargo.toml's version), DEB_MAINTAINER (the
# Maintainer field, "Name <address>"), REWIND_DEB_OUT (default target/deb), LINTIAN=0 skips
# lintian. tests/hooks/t_deb.sh builds the package this way, then installs, upgrades, removes
# and purges it with dpkg in a Debian root.
set -euo pipefail
tree=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/toolchain.sh
. "$tree/tests/toolchain.sh"

die() {
    echo "packaging/deb/build.sh: $*" >&2
    exit 1
}
for tool in cargo dpkg-buildpackage dh; do
    command -v "$tool" > /dev/null || die "$tool not found (cargo: rustup; the rest: apt-get install debhelper dpkg-dev)"
done

version=${REWIND_DEB_VERSION:-$(sed -n 's/^version = "\(.*\)"$/\1/p' "$tree/Cargo.toml" | head -n 1)}
[[ $version =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || die "version '$version' is not a native Debian version"
maintainer=${DEB_MAINTAINER:-rewind maintainers <rewind@packages.invalid>}
out=${REWIND_DEB_OUT:-$tree/target/deb}
stage=$out/build/rewind-$version
rm -rf "$out/build"
mkdir -p "$stage"
cp -r "$tree/packaging/deb/debian" "$stage/"

# The changelog's date and the man pages' date: the last commit's (reproducible builds).
epoch=$(git -C "$tree" log -1 --format=%ct 2> /dev/null || date +%s)
commit=$(git -C "$tree" describe --always --dirty 2> /dev/null || echo unknown)
# The binary is static: the glibc it was linked with is part of it (Debian policy 7.8).
glibc=$(dpkg-query -W -f='${source:Package} (= ${source:Version})' libc6-dev) ||
    die "libc6-dev is not installed"
sed -i -e "s|@MAINTAINER@|$maintainer|" -e "s|@BUILT_USING@|$glibc|" "$stage/debian/control"
cat > "$stage/debian/changelog" << EOF
rewind ($version) unstable; urgency=medium

  * Built from the rewind tree at $commit by packaging/deb/build.sh.

 -- $maintainer  $(date -u -R -d "@$epoch")
EOF

# debian/copyright: rewind's license, then every crate linked into the static binary (cargo's
# own list of the release build's normal dependencies, proc macros left out).
crates=$(cd "$tree" && cargo tree --offline --locked -q -e normal,no-proc-macro --prefix none \
    --target x86_64-unknown-linux-gnu --format '{p}|{l}' | sed 's/ (\*)$//' | grep -v '^rewind ' |
    LC_ALL=C sort -u | awk -F'|' '{ split($1, p, " "); printf " %s %s: %s\n", p[1], substr(p[2], 2), $2 }')
[[ -n $crates ]] || die "cargo tree listed no crates"
cat > "$stage/debian/copyright" << EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: rewind

Files: *
Copyright: $(date -u +%Y -d "@$epoch") the rewind developers
License: GPL-2+
Comment: /usr/sbin/rewind is statically linked with the GNU C Library (LGPL-2.1+,
 /usr/share/common-licenses/LGPL-2.1) and with these Rust crates, each under its own license
 (MIT, Apache-2.0: /usr/share/common-licenses/Apache-2.0, MPL-2.0:
 /usr/share/common-licenses/MPL-2.0, Unlicense):
$crates

License: GPL-2+
 This program is free software; you can redistribute it and/or modify it under the terms of
 the GNU General Public License as published by the Free Software Foundation; either version 2
 of the License, or (at your option) any later version.
 .
 This program is distributed in the hope that it will be useful, but WITHOUT ANY WARRANTY;
 without even the implied warranty of MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE. See
 the GNU General Public License for more details.
 .
 On Debian systems, the full text of the GNU General Public License version 2 can be found in
 the file /usr/share/common-licenses/GPL-2.
EOF

(cd "$stage" && REWIND_TREE=$tree SOURCE_DATE_EPOCH=$epoch \
    dpkg-buildpackage --build=binary --no-sign -us -uc) > "$out/build.log" 2>&1 ||
    { tail -n 40 "$out/build.log" >&2; die "dpkg-buildpackage failed (log: $out/build.log)"; }
deb=$out/rewind_${version}_amd64.deb
mv "$out/build/rewind_${version}_amd64.deb" "$deb"
echo "built $deb"
dpkg-deb --info "$deb" | sed -n 's/^ \(Package\|Version\|Depends\|Recommends\|Built-Using\|Installed-Size\):/  &/p'

if [[ ${LINTIAN:-1} != 0 ]]; then
    command -v lintian > /dev/null || die "lintian not found (apt-get install lintian), or LINTIAN=0"
    # Errors and warnings fail the build; info and pedantic tags are shown. Overrides (each
    # with its reason) are in debian/rewind.lintian-overrides. spelling-error-in-binary (an
    # info tag) is not shown: lintian reads words out of the static binary's machine code, and
    # a build whose code happens to hold the bytes "wTH" got "wTH -> with"; an override would
    # turn into unused-override with the next build that does not.
    lintian --info --display-info --pedantic --fail-on error,warning \
        --suppress-tags spelling-error-in-binary "$deb" | tee "$out/lintian.txt"
    echo "lintian: $(grep -c '^[EWIPXO]: ' "$out/lintian.txt" || true) tag(s), none an error or a warning"
fi
