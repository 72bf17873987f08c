#!/bin/sh
# Test harness: time one LVM2 command (see module-setup.sh).
echo "vmtime: lvm-start $*" >/dev/kmsg
/usr/lib/vmtime/lvm "$@"
rc=$?
echo "vmtime: lvm-end rc=$rc $*" >/dev/kmsg
exit $rc
