#!/usr/bin/env bash
# Boot-order smoke test in qemu: does each generator's image run `rewind early` before LVM has
# activated root, and does the boot go on? A fake rewind logs, to the kernel log, the devices in
# /dev/mapper and the PVs rewind-early recorded at the moment it runs; the guest's init is
# /usr/bin/false, so the boot ends in a panic right after switch_root (the "boot went on" sign).
# Not run by tests/hooks/run.sh: it needs root, qemu and the VM tier's scripts (vm-images/) and
# cached guest root. Takes about 2 minutes.
#
#   sudo tests/hooks/vm-smoke.sh ROOT_DIR     (a guest root from vm-images/build-root.sh)
#
# Images: dracut shell init + lvm module, dracut systemd + lvm module (both built by
# vm-images/build-initramfs.sh with --modules-dir dracut-module), and initramfs-tools (its
# packages installed into an overlay of ROOT_DIR with apt-get download + dpkg, rewind installed
# with install.sh DESTDIR=, then update-initramfs).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
root=$(cd "${1:?usage: vm-smoke.sh ROOT_DIR}" && pwd)
images=${VM_IMAGES_DIR:-$repo/vm-images}
[ -x "$images/run-guest.sh" ] || { echo "vm-smoke: no $images/run-guest.sh" >&2; exit 2; }
kernels=("$root"/boot/vmlinuz-*)
kernel=${kernels[0]}
work=$(mktemp -d "${TMPDIR:-/tmp}/rewind-vm-smoke.XXXXXX")
ov=$work/overlay
cleanup() {
    if mountpoint -q "$ov/m"; then
        umount -R "$ov/m" 2> /dev/null || umount -R -l "$ov/m" 2> /dev/null || :
    fi
}
trap cleanup EXIT

cat > "$work/fake-rewind" << 'EOF'
#!/bin/sh
echo "<5>rewind-fake: $* mapper=[$(ls /dev/mapper 2>/dev/null | tr '\n' ' ')] pv=[$(ls /run/rewind/pv 2>/dev/null | tr '\n' ' ')]" > /dev/kmsg
exit 0
EOF
chmod +x "$work/fake-rewind"

bash "$images/build-disk.sh" --root "$root" --out "$work/disk.img" > "$work/disk.log" 2>&1

build_dracut() { # build_dracut OUT ARGS...
    local out=$1
    shift
    bash "$images/build-initramfs.sh" --root "$root" --out "$out" "$@" \
        --modules-dir "$repo/dracut-module" --add "$work/fake-rewind:/usr/sbin/rewind" \
        --add "$repo/initramfs/rewind-early:/usr/lib/rewind/rewind-early" > "$out.log" 2>&1
}

build_itools() { # build_itools OUT
    mkdir -p "$ov/upper" "$ov/work" "$ov/m" "$ov/debs"
    mount -t overlay overlay -o "lowerdir=$root,upperdir=$ov/upper,workdir=$ov/work" "$ov/m"
    for d in proc sys dev; do mount --rbind "/$d" "$ov/m/$d"; done
    (cd "$ov/debs" && apt-get download initramfs-tools initramfs-tools-core klibc-utils libklibc \
        busybox zstd > /dev/null 2>&1)
    cp "$ov"/debs/*.deb "$ov/m/tmp/"
    # dracut conflicts with initramfs-tools; this overlay is thrown away
    chroot "$ov/m" sh -c 'dpkg --force-all -i /tmp/*.deb' > "$1.log" 2>&1
    sh "$repo/install.sh" DESTDIR="$ov/m" REWIND_BIN="$work/fake-rewind" >> "$1.log"
    chroot "$ov/m" update-initramfs -u -k all >> "$1.log" 2>&1
    cp "$ov/m/boot/initrd.img-${kernel##*/vmlinuz-}" "$1"
}

failed=0 passed=0
boot() { # boot NAME INITRD CMDLINE
    local log=$work/$1.serial.log line
    bash "$images/run-guest.sh" --kernel "$kernel" --initrd "$2" --log "$log" \
        --disk "$work/disk.img:vmroot" --append "$3 ro panic=1 init=/usr/bin/false printk.time=1" \
        --timeout 300 --kill-on "Attempted to kill init" > "$work/$1.run.log" 2>&1 || :
    line=$(grep -a 'rewind-fake: early' "$log" | head -n1 || :)
    if [[ $line == *"pv=[vda ]"* && $line != *vg0-root* ]] && grep -aq 'Attempted to kill init' "$log" &&
        [ "$(grep -ac 'rewind-fake: early' "$log")" = 1 ]; then
        echo "ok   $1: ${line#*] }"
        passed=$((passed + 1))
    else
        echo "FAIL $1: ${line:-rewind never ran} (log: $log)"
        failed=$((failed + 1))
    fi
}

build_dracut "$work/dracut-shell.img" --lvm --no-systemd
boot dracut-shell "$work/dracut-shell.img" "root=/dev/mapper/vg0-root rd.lvm.lv=vg0/root rd.shell=0"
build_dracut "$work/dracut-systemd.img" --lvm --systemd
boot dracut-systemd "$work/dracut-systemd.img" "root=/dev/mapper/vg0-root rd.lvm.lv=vg0/root rd.shell=0"
build_itools "$work/itools.img"
boot initramfs-tools "$work/itools.img" "root=/dev/mapper/vg0-root"

echo "$passed passed, $failed failed"
cleanup
if [ "$failed" -eq 0 ] && ! grep -q "$work" /proc/mounts; then
    rm -rf --one-file-system "$work"
fi
[ "$failed" -eq 0 ]
