#!/bin/bash
# shellcheck disable=SC2154 # moddir is set by dracut
# dracut module 90rewind: `rewind early` before LVM activates anything, with or without dracut's
# lvm module, in shell-init and systemd images alike.
#
# Where it hooks in, and why (dracut 059, the version Debian 12 ships):
# - dracut's lvm module activates LVs from the initqueue: its 64-lvm.rules queues
#   `/sbin/initqueue --settled --onetime --unique /sbin/lvm_scan` for each PV (job file
#   initqueue/settled/lvm_scan.sh), and lvm_scan runs `lvm lvchange -ay` / `vgchange -ay`.
# - Settled jobs run in a `for job in "$hookdir"/initqueue/settled/*.sh` loop, that is in file
#   name order, after `udevadm settle` (99base/init.sh for shell init; the same loop in
#   98dracut-systemd/dracut-initqueue.sh, which dracut-initqueue.service runs in a systemd image).
# - Our 63-rewind.rules queues `rewind-early` for the same events as settled job 00-rewind.sh:
#   RUN lists execute in rule-file order (63 before 64), so whenever lvm_scan.sh exists,
#   00-rewind.sh exists too, and "00-rewind.sh" sorts before "lvm_scan.sh" in the loop. Both are
#   --onetime: a PV arriving later queues both again, in the same order.
# - The loop checks the "finished" hooks after every job and stops as soon as they hold.
#   00-rewind.sh brings root up (rewind activates the rd.lvm.lv= LVs on every boot, and a
#   flagged root through its merge), so without more the loop would stop before lvm_scan.sh
#   ever ran (seen in the VM: no lvm command at all, ordinary and rollback boots alike), and
#   LVs that only LVM2 would activate (rd.lvm.lv= in the image's /etc/cmdline.d, which rewind does
#   not read; rd.lvm.vg=; a whole VG when nothing is named; a split /usr) would stay inactive.
#   wait-lvm-scan.sh, a finished hook, holds the loop while a lvm_scan job is queued: LVM2 then
#   runs exactly as on an ordinary boot and finds root already active with its merge (VM:
#   tests/vm/scenarios/rollback-lvm.sh checks it ran after rewind and succeeded). Without the lvm
#   module no lvm_scan job ever exists and the hook always holds.
# - So one mechanism covers both image kinds, and needs no unit: a unit ordered before
#   dracut-initqueue.service would run before the disks are there, one ordered after it would
#   run after lvm_scan. Without the lvm module, rewind activates root itself (rd.lvm.lv=, or
#   [activate] lvs in rewind.toml, carried as /etc/rewind/initramfs.json) from the same job, and rootfs-block's wait for root= (or
#   systemd's wait for the root device) picks it up.
# - Issue #6 asked, for systemd images, for "a unit that runs rewind early after the disks appear
#   and before anything activates or mounts the root, with deliberate ordering,
#   DefaultDependencies=no, and a deliberate failure policy". Checked against dracut 059's systemd
#   flow, the job is that unit's only correct form:
#   * "after the disks appear" is a udev event, not a point in the unit graph. Nothing but udev
#     rules and the initqueue sees a PV appear; dracut-initqueue.service (DefaultDependencies=no,
#     After=systemd-udev-trigger.service, ExecStart=-/bin/dracut-initqueue) runs the loop above
#     until root is there, re-running settled jobs as late disks turn up.
#   * "before anything activates the root": in a systemd image the lvm module installs only
#     64-lvm.rules and lvm_scan (no 69-dm-lvm.rules, no lvm2-pvscan@, no lvm2-activation
#     generator), so the only activation is lvm_scan, inside that same service. A separate unit
#     can be ordered only before the whole service (then the PVs are not there yet; waiting for
#     systemd-udev-settle.service instead is deprecated, slows every boot and still misses PVs
#     that appear after it) or after it (then lvm_scan has already run). Without the lvm module
#     rewind activates root from the job, and sysroot.mount waits for root's device unit, so
#     nothing mounts root before rewind has run.
#   * Failure policy: rewind-early bounds rewind with `timeout` and always exits 0, and the
#     service's ExecStart=- ignores failures anyway: a failing or stuck rewind costs at most
#     REWIND_TIMEOUT seconds and never stops the boot (rd.rewind=0 turns it off).
#   Proven in the VM with udevd running: tests/vm/scenarios/rollback-systemd-lvm.sh (systemd
#   image with the lvm module) and rollback-systemd.sh (without it).
# - rewind-handoff.sh, a pre-pivot hook, runs `rewind handoff` after root is mounted: dracut's lvm
#   module activates with --sysinit and starts no LVM poller, so it normally finds nothing to do;
#   it stops LVM's background pollers where some image's LVM2 activates from 69-dm-lvm.rules,
#   so that no merge's finish is cut off by switch_root (see initramfs/rewind-early).
# - rewind-early runs rewind once per set of PVs seen (marker /run/rewind/early.done), returns
#   at once on rd.rewind=0, bounds rewind with `timeout`, and always exits 0: a failing or stuck
#   rewind never stops the initqueue.

# called by dracut
check() {
    [[ -x ${dracutsysrootdir-}/usr/sbin/rewind ]] || return 1
    return 0
}

# called by dracut
depends() {
    # dm: dmsetup and the device-mapper udev rules rewind's devices need. Not lvm: rewind works
    # with and without it.
    echo dm
    return 0
}

# called by dracut
installkernel() {
    # dm-thin-pool: thin pools and thin LVs (the kernel loads it when a thin table is loaded).
    hostonly='' instmods dm-mod dm-snapshot dm-thin-pool
}

# The wrapper: next to this file when the module is used from a checkout, else where install.sh
# put it.
_rewind_early_src() {
    if [[ -f $moddir/rewind-early ]]; then
        echo "$moddir/rewind-early"
    else
        echo "${dracutsysrootdir-}/usr/lib/rewind/rewind-early"
    fi
}

# called by dracut
install() {
    local conf=/etc/rewind/rewind.toml f

    # An invalid configuration is an error now, not a surprise at the next boot. The image
    # carries it as checked, in JSON: check-config writes /etc/rewind/initramfs.json straight
    # into the image's tree (rewind's initramfs build has no TOML parser; dracut-install would
    # look for a source file under --sysroot). No rewind.toml: nothing, the defaults apply.
    if [[ -f ${dracutsysrootdir-}$conf ]]; then
        inst_dir /etc/rewind
        if ! "${dracutsysrootdir-}/usr/sbin/rewind" check-config --config "${dracutsysrootdir-}$conf" \
            --boot-json "$initdir/etc/rewind/initramfs.json"; then
            dfatal "rewind: $conf is invalid (see above); fix it, then run dracut again"
            exit 1
        fi
    fi
    for f in /etc/lvm/lvm.conf /etc/lvm/devices/system.devices; do
        [[ -f ${dracutsysrootdir-}$f ]] && inst_simple "$f"
    done

    # The initramfs build (early and handoff only, src/bin/rewind-initramfs.rs) when installed,
    # under the name the scripts call; the full binary otherwise.
    if [[ -x ${dracutsysrootdir-}/usr/lib/rewind/rewind-initramfs ]]; then
        inst_binary /usr/lib/rewind/rewind-initramfs /usr/sbin/rewind
    else
        inst_binary /usr/sbin/rewind
    fi
    # thin_check (thin-provisioning-tools), when installed: rewind early runs it on a thin
    # pool's metadata before it loads the pool, as LVM does (docs/THIN.md). Always carried when
    # installed (whether the system has a thin pool is not known here without running LVM, and
    # a pool made later must not boot unchecked); the path is lvm.conf's
    # global/thin_check_executable when set ("" switches the check off: nothing carried), else
    # LVM's default. inst_binary brings its libraries.
    local thin_check=/usr/sbin/thin_check
    for f in /etc/lvm/lvm.conf /etc/lvm/lvmlocal.conf; do
        if [[ -f ${dracutsysrootdir-}$f ]] && grep -q '^[[:space:]]*thin_check_executable[[:space:]]*=' "${dracutsysrootdir-}$f"; then
            thin_check=$(sed -n 's/^[[:space:]]*thin_check_executable[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' "${dracutsysrootdir-}$f" | tail -n 1)
        fi
    done
    if [[ -n $thin_check && -x ${dracutsysrootdir-}$thin_check ]]; then
        inst_binary "$thin_check"
    fi
    inst_script "$(_rewind_early_src)" /usr/lib/rewind/rewind-early
    inst_multiple -o timeout
    inst_rules "$moddir/63-rewind.rules"
    inst_hook initqueue/finished 90 "$moddir/wait-lvm-scan.sh"
    inst_hook pre-pivot 90 "$moddir/rewind-handoff.sh"
    dracut_need_initqueue
}
