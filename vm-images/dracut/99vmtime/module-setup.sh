#!/bin/bash
# shellcheck disable=SC2154 # initdir and moddir are set by dracut
# dracut module (test harness only): wrap the initramfs's lvm binary so that every LVM2 command
# logs its start and end to /dev/kmsg ("vmtime: lvm-start"/"vmtime: lvm-end" with the
# arguments). The kernel timestamps those lines; the guest reads them back from dmesg to
# measure how long LVM2's activation took.

check() {
    # Only when asked for (--add vmtime / --modules).
    return 255
}

depends() {
    echo lvm
}

install() {
    local lvm
    lvm=$(find_binary lvm) || return 1
    # The real binary keeps the basename "lvm": LVM2 picks the command from argv[0].
    mkdir -p "$initdir/usr/lib/vmtime"
    mv "$initdir$lvm" "$initdir/usr/lib/vmtime/lvm"
    inst_simple "$moddir/lvm-wrapper.sh" "$lvm"
    chmod 0755 "$initdir$lvm"
}
