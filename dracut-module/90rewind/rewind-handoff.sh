#!/bin/sh
# shellcheck shell=sh
# rewind's hand-off as a dracut pre-pivot hook (after root and /usr are mounted, before the
# cleanup stops udev; dracut-pre-pivot.service in systemd images). dracut's lvm module activates
# with --sysinit and starts no poller, so this usually has nothing to do; it is here for images
# whose LVM2 activates from 69-dm-lvm.rules (see `rewind handoff --help`). Never fails the boot.
/usr/lib/rewind/rewind-early --handoff || :
