#!/bin/bash
# Builds rewind's RPM package from this tree with rpmbuild (Debian's `rpm` package has it):
#
#   packaging/rpm/build.sh          ->  target/rpm/RPMS/x86_64/rewind-VERSION-1.x86_64.rpm
#
# rpmbuild --build-in-place: the tree is the build directory (packaging/rpm/rewind.spec runs
# cargo there, offline, and install.sh into the build root). On a host that is not Fedora
# (this project's Debian machines), the macros Fedora's python-rpm-macros would define are
# given here: python3_sitelib as Fedora 40 has it. Dependencies are not checked (--nodeps): the
# build host is not the target distribution.
# Environment: REWIND_RPM_OUT (default target/rpm).
set -euo pipefail
tree=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/toolchain.sh
. "$tree/tests/toolchain.sh"
command -v rpmbuild >/dev/null || { echo "packaging/rpm/build.sh: rpmbuild not found (apt-get install rpm)" >&2; exit 1; }
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$tree/Cargo.toml" | head -n 1)
out=${REWIND_RPM_OUT:-$tree/target/rpm}
rm -rf "$out"
mkdir -p "$out"
defines=(-D "_topdir $out" -D "rewind_version $version")
[[ -n $(rpm --eval '%{?python3_sitelib}') ]] || defines+=(-D "python3_sitelib /usr/lib/python3.12/site-packages")
(cd "$tree" && rpmbuild -bb --build-in-place --nodeps "${defines[@]}" packaging/rpm/rewind.spec) >"$out/build.log" 2>&1 ||
    { tail -n 40 "$out/build.log" >&2; echo "packaging/rpm/build.sh: rpmbuild failed (log: $out/build.log)" >&2; exit 1; }
rpm=$(echo "$out"/RPMS/x86_64/rewind-"$version"-1*.x86_64.rpm)
[[ -f $rpm ]] || { echo "packaging/rpm/build.sh: no package in $out/RPMS" >&2; exit 1; }
echo "built $rpm"
