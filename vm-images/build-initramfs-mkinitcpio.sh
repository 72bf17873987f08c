#!/bin/bash
# The `--generator mkinitcpio` builder: mkinitcpio images made from the Debian guest root alone
# (mkinitcpio itself is not packaged for Debian, and CI cannot fetch it). Two kinds:
#
# --listing NAME   an image like the one the real mkinitcpio v41 built for a HOOKS line: the
#                  committed listing vm-images/mkinitcpio/real/NAME.list (every entry of that
#                  image: the hook that added it, type, mode, path, link target) is rebuilt
#                  entry by entry from the guest root (a listed file missing there is an error),
#                  except three kinds of entries: rewind's own, which come from running the
#                  repository's install/rewind through this script's implementation of
#                  mkinitcpio's build functions (so a change to the hook shows); the files the
#                  tool itself generates (/config, depmod's, ldconfig's, lvm2's lvm.conf, ...),
#                  generated here the same way; and mkinitcpio's own code in a busybox image
#                  (init, init_functions, hooks/udev, its 69-dm-lvm.rules), which is this
#                  project's (vm-images/mkinitcpio/). Then the image's listing is compared with
#                  NAME.list: any difference outside rewind's entries fails the build; the
#                  comparison is kept next to the image (FILE.listing-diff). Listings:
#                    busybox-lvm2  HOOKS=(base udev modconf block rewind lvm2 filesystems)
#                    busybox       HOOKS=(base udev modconf block rewind filesystems)
#                    systemd-lvm2  HOOKS=(base systemd modconf block rewind lvm2 filesystems)
#                    systemd       HOOKS=(base systemd modconf block rewind filesystems)
#                  rewind goes into the build root with install.sh DESTDIR= (REWIND_BIN, as
#                  install.sh takes it), as on a real system.
# (no --listing)   the small busybox image with no udev and no LVM2 (mkinitcpio-busybox): base
#                  is the host's static busybox with a link per applet, /init and
#                  /init_functions from vm-images/mkinitcpio/, then each --hook's build().
#
# Usage: vm-images/build-initramfs.sh --generator mkinitcpio --root DIR --out FILE [options]
#   --listing NAME    (see above)
#   --hooks-dir DIR   where install/NAME and hooks/NAME live (default: the repo's mkinitcpio-hook)
#   --hook NAME       (no --listing) a HOOKS entry after `base` (repeatable; default: rewind)
#   --module NAME     (no --listing) mkinitcpio.conf's MODULES: added with their dependencies and
#                     loaded by /init before the runtime hooks (default: virtio_pci virtio_blk,
#                     which a busybox image with no udev needs to see its disks)
#   --add SRC:DEST    put SRC at DEST in the build root before the hooks run
#
# How the real images were made, the compatibility layer that let mkinitcpio run on Debian, and
# what differs between a real image and this script's: tests/vm/README.md, "mkinitcpio images".
set -euo pipefail
# shellcheck source=vm-images/lib.sh
. "$(dirname "$0")/lib.sh"

root='' out='' listing='' hooks_dir=$VM_REPO_DIR/mkinitcpio-hook
hooks=() modules=() adds=()
while (($#)); do
    case $1 in
    --root) root=$2; shift ;;
    --out) out=$2; shift ;;
    --listing) listing=$2; shift ;;
    --hooks-dir) hooks_dir=$2; shift ;;
    --hook) hooks+=("$2"); shift ;;
    --module) modules+=("$2"); shift ;;
    --add) adds+=("$2"); shift ;;
    *) vm_die "build-initramfs-mkinitcpio: unknown argument $1" ;;
    esac
    shift
done
[[ -d $root && -n $out ]] || vm_die "usage: build-initramfs-mkinitcpio.sh --root DIR --out FILE [options]"
root=$(cd "$root" && pwd)
out=$(realpath -m "$out")
mkdir -p "$(dirname "$out")"
busybox=/bin/busybox
if [[ ! -x $busybox ]] || ! file -b "$busybox" | grep -q 'statically linked'; then
    vm_die "need a static $busybox on the host (Debian: busybox-static)"
fi
fixture=''
if [[ -n $listing ]]; then
    fixture=$VM_IMAGES_DIR/mkinitcpio/real/$listing.list
    [[ -f $fixture ]] || vm_die "no listing $fixture"
    ((${#hooks[@]} + ${#modules[@]} == 0)) || vm_die "--listing takes HOOKS from the listing: no --hook/--module"
    read -ra hooks < <(awk '$1 == "HOOKS" { $1 = ""; print; exit }' "$fixture")
else
    ((${#hooks[@]})) || hooks=(rewind)
    ((${#modules[@]})) || modules=(virtio_pci virtio_blk)
fi

start=$(vm_now)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vm-mkinitcpio.XXXXXX")
sysroot=$tmp/sysroot # the build root: an overlay of the cached guest root plus --add files
cleanup() {
    vm_overlay_umount "$sysroot"
    rm -rf "$tmp"
}
trap cleanup EXIT
vm_overlay_mount "$root" "$tmp" "$sysroot"
kver=$(vm_root_kver "$sysroot")
# The image tree lives inside the build root, so that the guest's own tools (ldd, modinfo,
# depmod, ldconfig) work on it from a chroot.
img_in=/tmp/vm-initcpio-image
img=$sysroot$img_in
mkdir -p "$img"

if [[ -n $listing ]]; then
    # thin-provisioning-tools (lvm2's hook adds pdata_tools) and its libexpat1 are not in the
    # guest root: fetched with the machine's apt once (target/vm/debs/mkinitcpio/), unpacked.
    debs=$VM_TARGET_DIR/debs/mkinitcpio
    if ! [[ -f $debs/.complete ]]; then
        rm -rf "$debs"
        mkdir -p "$debs"
        if ! (cd "$debs" && apt-get download thin-provisioning-tools libexpat1 >&2); then
            apt-get update -q >&2
            (cd "$debs" && apt-get download thin-provisioning-tools libexpat1 >&2)
        fi
        touch "$debs/.complete"
    fi
    mkdir -p "$sysroot/tmp/debs"
    cp "$debs"/*.deb "$sysroot/tmp/debs/"
    chroot "$sysroot" sh -c 'dpkg --force-all -i /tmp/debs/*.deb' >"$tmp/dpkg.log" 2>&1 ||
        { cat "$tmp/dpkg.log" >&2; vm_die "dpkg could not install thin-provisioning-tools"; }
    rm -rf "$sysroot/tmp/debs"
    # LVM2's udev rules under Arch's names, as mkinitcpio's lvm2 hook asks for them and as a hook
    # that looks for either name (rewind's) finds them on Arch: Debian's files renamed.
    r=$sysroot/usr/lib/udev/rules.d
    mv "$r/55-dm.rules" "$r/10-dm.rules"
    mv "$r/56-lvm.rules" "$r/11-dm-lvm.rules"
    mv "$r/60-persistent-storage-dm.rules" "$r/13-dm-disk.rules"
    mv "$r/69-lvm.rules" "$r/69-dm-lvm.rules"
    sh "$VM_REPO_DIR/install.sh" DESTDIR="$sysroot" ${REWIND_BIN:+"REWIND_BIN=$REWIND_BIN"} >&2
fi
vm_add_files "$sysroot" "${adds[@]}"
vm_chroot_mount "$sysroot"
in_root() { chroot "$sysroot" env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin "$@"; }

systemd=0
grep -Eq '^[a-z0-9]+ l [0-7]+ init usr/lib/systemd/systemd$' "${fixture:-/dev/null}" && systemd=1
written=$tmp/written # every image path rewind's (or a --hook's) build() wrote
: >"$written"

# build_api SCRIPT [ARG...]: runs bash SCRIPT (with ARGs as "$@") in a chroot of the build root,
# with this project's implementation of mkinitcpio's build functions loaded
# (vm-images/mkinitcpio/build-functions.sh) over the image tree, as the real tool runs in a root.
build_api() {
    local w=$sysroot/tmp/vm-build script=$1
    shift
    rm -rf "$w"
    mkdir -p "$w/hooks-dir"
    cp "$VM_IMAGES_DIR/mkinitcpio/build-functions.sh" "$w/"
    cp -r "$hooks_dir/." "$w/hooks-dir/"
    : >"$w/written"
    chroot "$sysroot" env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin BUILDROOT="$img_in" \
        KERNELVERSION="$kver" HOOKS_DIR=/tmp/vm-build/hooks-dir WRITTEN=/tmp/vm-build/written \
        SYSTEMD_IMAGE="$systemd" bash -c ". /tmp/vm-build/build-functions.sh && $script" build-api "$@" ||
        vm_die "in the build root: $script $* failed"
    cat "$w/written" >>"$written"
    rm -rf "$w"
}
# shellcheck disable=SC2016 # expanded by the chroot's bash
run_build_hooks() { build_api 'for h; do run_build_hook "$h" || exit 1; done' "$@"; }

# /config: the runtime hooks by kind, in HOOKS order, from the run_* functions each /hooks/NAME
# defines (cleanup and emergency hooks in reverse order, as mkinitcpio writes them).
write_config() {
    local h early='' run='' late='' clean='' emerg=''
    for h in "${hooks[@]}"; do
        [[ -f $img/hooks/$h ]] || continue
        grep -Eq '^[[:space:]]*run_earlyhook\(\)' "$img/hooks/$h" && early+=" $h"
        grep -Eq '^[[:space:]]*run_hook\(\)' "$img/hooks/$h" && run+=" $h"
        grep -Eq '^[[:space:]]*run_latehook\(\)' "$img/hooks/$h" && late+=" $h"
        grep -Eq '^[[:space:]]*run_cleanuphook\(\)' "$img/hooks/$h" && clean="$h $clean"
        grep -Eq '^[[:space:]]*run_emergencyhook\(\)' "$img/hooks/$h" && emerg="$h $emerg"
    done
    {
        ((${#modules[@]} == 0)) || printf 'MODULES="%s"\n' "${modules[*]}"
        printf '%s="%s"\n' EARLYHOOKS "${early# }" HOOKS "${run# }" LATEHOOKS "${late# }" \
            CLEANUPHOOKS "${clean% }" EMERGENCYHOOKS "${emerg% }"
    } >"$img/config"
}

image_cpio() { # image_cpio DIR: DIR as a newc cpio on stdout, sorted, owned by root, time 0
    (cd "$1" && find . -mindepth 1 -exec touch -hcd @0 {} + &&
        find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet)
}

if [[ -z $listing ]]; then
    # --- the small no-udev busybox image --------------------------------------------------------
    mkdir -p "$img"/{usr/bin,usr/lib,dev,proc,sys,run,new_root,tmp,hooks}
    ln -s usr/bin "$img/bin"
    ln -s usr/bin "$img/sbin"
    ln -s bin "$img/usr/sbin"
    ln -s usr/lib "$img/lib"
    ln -s usr/lib "$img/lib64"
    cp "$busybox" "$img/usr/bin/busybox"
    for applet in $("$busybox" --list); do
        [[ -e $img/usr/bin/$applet ]] || ln -s busybox "$img/usr/bin/$applet"
    done
    mknod -m 600 "$img/dev/console" c 5 1
    mknod -m 666 "$img/dev/null" c 1 3
    # shellcheck disable=SC2016 # expanded by the chroot's bash
    build_api 'map add_module "$@"' "${modules[@]}"
    run_build_hooks "${hooks[@]}"
    # busybox's modprobe reads modules.dep; the root's kmod files (.bin) are not for it.
    "$busybox" depmod -b "$img" "$kver"
    write_config
    install -m755 "$VM_IMAGES_DIR/mkinitcpio/init" "$img/init"
    install -m644 "$VM_IMAGES_DIR/mkinitcpio/init_functions" "$img/init_functions"
    image_cpio "$img" >"$out"
    vm_timing initramfs_build "$(vm_elapsed "$start")"
    vm_log "initramfs $out ($(du -h "$out" | cut -f1), mkinitcpio-like without udev, HOOKS: base ${hooks[*]})"
    exit 0
fi

# --- an image like the real tool's: NAME.list, entry by entry -------------------------------------
gen=$tmp/gen # the files generated here, by image path
mkdir -p "$gen"

# The files mkinitcpio generates or brings itself, made the same way from the guest root, and its
# own code, which in a busybox image is this project's.
generate() {
    local m=$gen/usr/lib/modules/$kver
    mkdir -p "$gen/etc/lvm" "$gen/etc/modules-load.d" "$gen/hooks" "$gen/usr/lib/udev/rules.d" "$m"
    printf '1\n' >"$gen/early_cpio"
    printf '41' >"$gen/VERSION"
    printf 'MODULES=()\nBINARIES=()\nFILES=()\nHOOKS=(%s)\nCOMPRESSION="cat"\n' "${hooks[*]}" >"$gen/buildconfig"
    : >"$gen/etc/fstab"
    : >"$gen/etc/ld.so.conf"
    : >"$gen/etc/ld.so.cache" # replaced by ldconfig's at the end
    : >"$gen/config"          # written by write_config at the end
    # lvm2's hook: the root's lvm.conf without comments and blank lines, dmeventd monitoring off.
    awk '/^[[:space:]#]*monitoring = [0-9]+[[:space:]]*$/ { print "\tmonitoring = 0"; next }
        /^[[:space:]]*#/ || /^[[:space:]]*$/ { next }
        { print }' "$sysroot/etc/lvm/lvm.conf" >"$gen/etc/lvm/lvm.conf"
    # depmod's files: made at the end (depmod over the image's modules).
    for f in modules.alias.bin modules.builtin.alias.bin modules.builtin.bin modules.dep.bin \
        modules.devname modules.softdep modules.symbols.bin; do
        : >"$m/$f"
    done
    if ((systemd)); then
        printf '%s\n' 'passwd: files' 'group: files' 'shadow: files' >"$gen/etc/nsswitch.conf"
        printf 'root:x:0:0:root:/root:/bin/sh\n' >"$gen/etc/passwd"
        printf 'root:*:::::::\n' >"$gen/etc/shadow"
        awk -F: 'BEGIN { n = split("root adm audio clock disk input kmem kvm lp optical render sgx storage systemd-journal tty utmp uucp video wheel", w, " "); for (i = 1; i <= n; i++) want[w[i]] = i }
            $1 in want { line[want[$1]] = $1 ":x:" $3 ":" }
            END { for (i = 1; i <= n; i++) if (i in line) print line[i] }' "$sysroot/etc/group" >"$gen/etc/group"
        printf '\n' >"$gen/etc/modules-load.d/MODULES.conf"
    else
        install -m755 "$VM_IMAGES_DIR/mkinitcpio/init" "$gen/init"
        install -m755 "$VM_IMAGES_DIR/mkinitcpio/hooks/udev" "$gen/hooks/udev"
        # mkinitcpio's own 69-dm-lvm.rules for busybox images: LVM2's rule (Debian's
        # 69-lvm.rules, less Debian's two SYSTEMD_READY lines for md and loop devices) with its
        # scan action replaced by a background pvscan that activates the PV's VG, as
        # mkinitcpio's copy has it: the same rules, comments aside.
        awk '/^LABEL="lvm_scan"/ {
                print
                print "RUN+=\"/usr/bin/lvm pvscan --background --cache --activate ay --major $major --minor $minor\", ENV{LVM_SCANNED}=\"1\""
                print "GOTO=\"lvm_end\""
                skip = 1; next
            }
            /^LABEL="lvm_direct_vgchange"/ { skip = 0 }
            skip || /_PV_ACTIVATED}!="1", ENV{SYSTEMD_READY}="0"$/ { next }
            { print }' "$sysroot/usr/lib/udev/rules.d/69-dm-lvm.rules" |
            sed 's@/sbin/lvm @/usr/bin/lvm @g' >"$gen/usr/lib/udev/rules.d/69-dm-lvm.rules"
    fi
    # base adds init_functions to every image (a systemd one never reads it).
    install -m644 "$VM_IMAGES_DIR/mkinitcpio/init_functions" "$gen/init_functions"
}

# Where the file at image path P comes from in the guest root, when not from P itself (or from
# /usr/sbin for /usr/bin: the image merges them): the systemd hook copies kmod to
# /usr/bin/modprobe.
declare -A renamed=(
    [usr/bin/modprobe]=usr/bin/kmod
)
source_of() {
    local p=$1 c
    if [[ -e $gen/$p ]]; then
        echo "$gen/$p"
        return
    fi
    [[ $p == usr/bin/busybox ]] && { echo "$busybox"; return; }
    for c in "${renamed[$p]:-}" "$p" "${p/#usr\/bin\//usr\/sbin\/}"; do
        [[ -n $c && -f $sysroot/$c ]] && { echo "$sysroot/$c"; return; }
    done
    return 1
}

# make_entry TYPE MODE PATH [TARGET]: one listed entry in the image.
make_entry() {
    local type=$1 mode=$2 p=$3 target=${4:-} src
    case $type in
    d) mkdir -p "$dir/$p" && chmod "$mode" "$dir/$p" ;;
    l)
        mkdir -p "$(dirname "$dir/$p")"
        ln -sfn "$target" "$dir/$p"
        ;;
    f)
        src=$(source_of "$p") || vm_die "$listing.list: $p (hook $hook) is not in the guest root"
        mkdir -p "$(dirname "$dir/$p")"
        rm -f "$dir/$p"
        cp -L "$src" "$dir/$p"
        chmod "$mode" "$dir/$p"
        ;;
    *) vm_die "$listing.list: bad entry $type $mode $p" ;;
    esac
}

generate
entries=$tmp/entries # HOOK TYPE MODE PATH [TARGET], kernel version filled in
sed -e '/^#/d' -e '/^HOOKS /d' -e "s/@KVER@/$kver/g" "$fixture" >"$entries"
early=$tmp/early
mkdir -p "$early"
# The tool's build root first (directories and links), each hook in HOOKS order (rewind's through
# its install script), then what the tool makes after the hooks; overwrites happen as in the
# real build because each path is listed once, with the last hook that wrote it.
dir=$img
while read -r hook type mode p target; do
    [[ $hook == mkinitcpio && $type != f ]] && make_entry "$type" "$mode" "$p" "$target"
done <"$entries"
for h in "${hooks[@]}"; do
    if [[ $h == rewind ]]; then
        run_build_hooks rewind
        continue
    fi
    while read -r hook type mode p target; do
        [[ $hook == "$h" ]] && make_entry "$type" "$mode" "$p" "$target"
    done <"$entries"
done
while read -r hook type mode p target; do
    if [[ $hook == mkinitcpio && $type == f ]]; then
        make_entry "$type" "$mode" "$p" "$target"
    elif [[ $hook == early ]]; then
        dir=$early make_entry "$type" "$mode" "$p" "$target"
    fi
done <"$entries"
write_config
# depmod's files (the listed ones are kept, as mkinitcpio keeps *.bin, devname and softdep).
for f in modules.builtin modules.builtin.modinfo modules.order; do
    cp "$sysroot/usr/lib/modules/$kver/$f" "$img/usr/lib/modules/$kver/"
done
in_root depmod -b "$img_in" "$kver"
for f in "$img/usr/lib/modules/$kver"/modules.*; do
    grep -Fqx "mkinitcpio f 644 usr/lib/modules/$kver/${f##*/}" "$entries" || rm -f "$f"
done
in_root ldconfig -X -r "$img_in"
chmod 644 "$img/etc/ld.so.cache"

# --- the image's listing against the real one ------------------------------------------------------
listing_of() { # TYPE MODE PATH [TARGET] per entry, sorted by path
    (cd "$1" && find . -mindepth 1 -printf '%y %m %P %l\n') | sed 's/ $//' | LC_ALL=C sort -k3,3
}
{
    awk '$1 == "early" { $1 = ""; sub(/^ /, ""); print }' "$entries" | LC_ALL=C sort -k3,3 >"$tmp/want.early"
    listing_of "$early" >"$tmp/got.early"
    awk '$1 != "early" && $1 != "rewind" { $1 = ""; sub(/^ /, ""); print }' "$entries" |
        LC_ALL=C sort -k3,3 >"$tmp/want.main"
    # rewind's entries: what its hook wrote and no later hook owns (lvm2 rewrites lvm.conf).
    awk '$1 == "rewind" { print $4 }' "$entries" | LC_ALL=C sort >"$tmp/rewind.listed"
    awk '{ print $3 }' "$tmp/want.main" | LC_ALL=C sort >"$tmp/owned"
    sed 's@^/@@' "$written" | LC_ALL=C sort -u | comm -23 - "$tmp/owned" >"$tmp/rewind.now"
    listing_of "$img" | awk 'NR == FNR { r[$0] = 1; next } !($3 in r)' "$tmp/rewind.now" - >"$tmp/got.main"
}
diff_file=$out.listing-diff
{
    echo "# $listing: the image's listing against vm-images/mkinitcpio/real/$listing.list"
    echo "# (- real only, + this image only; rewind's entries are reported apart)"
    diff "$tmp/want.early" "$tmp/got.early" | grep '^[<>]' | sed 's/^</- early/; s/^>/+ early/' || true
    diff "$tmp/want.main" "$tmp/got.main" | grep '^[<>]' | sed 's/^</-/; s/^>/+/' || true
    echo "# rewind's hook: added now and not in the real image / in the real image and not added now"
    comm -13 "$tmp/rewind.listed" "$tmp/rewind.now" | sed 's/^/+ rewind /'
    comm -23 "$tmp/rewind.listed" "$tmp/rewind.now" | sed 's/^/- rewind /'
} >"$diff_file"
if grep -q '^[-+] [^r]' "$diff_file" || grep -q '^[-+] early' "$diff_file"; then
    cat "$diff_file" >&2
    vm_die "the image differs from the real mkinitcpio's ($listing.list) outside rewind's entries"
fi
if grep -q '^[-+] rewind' "$diff_file"; then
    vm_log "rewind's hook adds other entries than in the real image ($diff_file):"
    grep '^[-+] rewind' "$diff_file" >&2
fi

{
    image_cpio "$early"
    image_cpio "$img"
} >"$out"
vm_timing initramfs_build "$(vm_elapsed "$start")"
vm_log "initramfs $out ($(du -h "$out" | cut -f1), like the real mkinitcpio's $listing: HOOKS=(${hooks[*]}); runtime: $(tr '\n' ' ' <"$img/config"))"
