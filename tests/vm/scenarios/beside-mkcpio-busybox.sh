# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "beside-mkcpio-busybox": the merge-cycles story (tests/vm/lib/merge-cycles-story.sh)
# through a mkinitcpio busybox image with udev and LVM2, HOOKS=(base udev modconf block rewind
# lvm2 filesystems), as the real mkinitcpio v41 builds it
# (vm-images/mkinitcpio/real/busybox-lvm2.list): udevd runs, LVM2's rule activates the VG with
# `lvm pvscan --background --cache --activate ay` right after 63-rewind.rules ran rewind for the
# same PV. 2 small merges (beside-mkcpio-busybox-long: 20).
VM_INITRAMFS_ARGS=(--generator mkinitcpio --listing busybox-lvm2)
MC_CYCLES=${MC_CYCLES:-2}
MC_LVM=1
# shellcheck source=tests/vm/lib/merge-cycles-story.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/merge-cycles-story.sh"
