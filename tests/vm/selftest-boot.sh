#!/bin/bash
# Self-test of vm-images/run-guest.sh with a tiny busybox initramfs (a few seconds a boot):
# a guest that powers off -> 0; --kill-on a console string -> 3; --kill-after -> 3;
# a guest that never stops -> timeout -> 1. Needs the cached guest root for its kernel.
set -euo pipefail
TESTS_VM_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=vm-images/lib.sh
. "$TESTS_VM_DIR/../../vm-images/lib.sh"

root=$("$VM_IMAGES_DIR/build-root.sh")
kernel=$root/boot/vmlinuz-$(vm_root_kver "$root")
work=$VM_TARGET_DIR/run/selftest-boot
rm -rf "$work"
mkdir -p "$work/initramfs/bin" "$work/initramfs/dev" "$work/initramfs/proc"
cp /bin/busybox "$work/initramfs/bin/busybox"
mknod -m 600 "$work/initramfs/dev/console" c 5 1
cat >"$work/initramfs/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox echo "selftest: ready"
if /bin/busybox grep -q selftest=poweroff /proc/cmdline; then
    echo o >/proc/sysrq-trigger
fi
while :; do /bin/busybox sleep 1; done
INIT
chmod +x "$work/initramfs/init"
(cd "$work/initramfs" && find . | cpio -o -H newc --quiet) >"$work/initramfs.img"

fail() {
    echo "selftest-boot: FAIL: $*" >&2
    exit 1
}
boot() {
    local rc=0
    "$VM_IMAGES_DIR/run-guest.sh" --kernel "$kernel" --initrd "$work/initramfs.img" --mem 256 \
        --log "$work/serial.log" "$@" || rc=$?
    echo "$rc"
}
[[ $(boot --append "selftest=poweroff" --timeout 120) == 0 ]] || fail "a guest that powers off did not give 0"
grep -q 'selftest: ready' "$work/serial.log" || fail "serial console not captured"
[[ $(boot --kill-on "selftest: ready" --timeout 120) == 3 ]] || fail "--kill-on did not give 3"
[[ $(boot --kill-after 2 --timeout 120) == 3 ]] || fail "--kill-after did not give 3"
[[ $(boot --timeout 8) == 1 ]] || fail "a guest that never stops did not time out with 1"
[[ ! -e $work/serial.log.pid ]] || fail "pid file left behind"
echo "selftest-boot: ok (power off, kill-on, kill-after, timeout)" >&2
