#!/usr/bin/env bash
# Tiny test packages for the pacman and dnf hooks, built with the real tools: makepkg (as an
# unprivileged user: makepkg refuses root) and rpmbuild. Each installs
# /usr/share/NAME/version holding "NAME VERSION".
#   tests/pkgs/build.sh OUTDIR NAME VERSION...
# writes OUTDIR/NAME-VERSION-1-any.pkg.tar.zst and OUTDIR/NAME-VERSION-1.noarch.rpm.
set -euo pipefail
out=$1 name=$2
shift 2
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/rewind-pkgs.XXXXXX")
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
for version in "$@"; do
    # pacman
    d=$work/pacman-$version
    mkdir -p "$d"
    cat > "$d/PKGBUILD" << PKGBUILD
pkgname=$name
pkgver=$version
pkgrel=1
pkgdesc='rewind hook test package'
arch=(any)
license=(custom)
package() {
    mkdir -p "\$pkgdir/usr/share/$name"
    echo "$name $version" > "\$pkgdir/usr/share/$name/version"
}
PKGBUILD
    chown -R 65534:65534 "$d"
    (cd "$d" && setpriv --reuid=65534 --regid=65534 --clear-groups env HOME="$d" \
        PKGEXT=.pkg.tar.zst makepkg --nodeps --noconfirm --nocheck > "$d/log" 2>&1) ||
        { cat "$d/log" >&2; exit 1; }
    cp "$d/$name-$version-1-any.pkg.tar.zst" "$out/"
    # rpm
    r=$work/rpm-$version
    mkdir -p "$r/SPECS"
    cat > "$r/SPECS/$name.spec" << SPEC
Name: $name
Version: $version
Release: 1
Summary: rewind hook test package
License: MIT
BuildArch: noarch

%description
rewind hook test package.

%install
mkdir -p %{buildroot}/usr/share/$name
echo "$name $version" > %{buildroot}/usr/share/$name/version

%files
/usr/share/$name/version
SPEC
    rpmbuild --quiet --define "_topdir $r" --define '_build_id_links none' \
        -bb "$r/SPECS/$name.spec" > "$r/log" 2>&1 || { cat "$r/log" >&2; exit 1; }
    cp "$r/RPMS/noarch/$name-$version-1.noarch.rpm" "$out/"
done
