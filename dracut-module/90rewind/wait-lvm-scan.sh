#!/bin/sh
# shellcheck shell=sh
# rewind (dracut): an initqueue "finished" hook: the initqueue is not finished while dracut's
# lvm_scan job is still queued. rewind's 00-rewind job brings root up (rd.lvm.lv=, or through a
# merge) before lvm_scan's turn; without this hook the loop would stop there and LVM2 would
# never run, leaving every LV rewind was not asked to activate (rd.lvm.lv= in the image's
# /etc/cmdline.d, rd.lvm.vg=, a whole VG) inactive. See module-setup.sh.
[ ! -e "${hookdir:-/lib/dracut/hooks}/initqueue/settled/lvm_scan.sh" ]
