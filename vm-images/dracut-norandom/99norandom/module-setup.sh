#!/bin/bash
# shellcheck disable=SC2154 # moddir is set by dracut
# dracut module (test harness only): boot with no random-number device nodes. A pre-udev hook
# removes /dev/random and /dev/urandom before udevd starts (so before any udev rule, initqueue
# job or `rewind early` runs); a pre-mount hook (after the initqueue, where rewind runs) writes
# to the kernel log which of them exist then and whether rewind-early has run. The booted
# system inherits the same devtmpfs, so the guest can check the nodes are still absent there.

check() {
    # Only when asked for (--modules-dir / --add norandom).
    return 255
}

depends() {
    return 0
}

install() {
    inst_hook pre-udev 00 "$moddir/norandom-remove.sh"
    inst_hook pre-mount 00 "$moddir/norandom-check.sh"
}
