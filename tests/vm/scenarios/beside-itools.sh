# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "beside-itools" (long suite): the merge-cycles story (tests/vm/lib/merge-cycles-story.sh)
# through Debian's initramfs-tools image (the guest's own `update-initramfs`, LVM2's hook): udev's
# 69-lvm.rules runs `lvm vgchange -aay --autoactivation event vg0` (no --sysinit: LVM polls
# merges in the background) right after 63-rewind.rules ran rewind for the PV. 20 small merges.
VM_SCENARIO_SUITE=long
VM_INITRAMFS_ARGS=(--generator initramfs-tools)
MC_CYCLES=${MC_CYCLES:-20}
MC_LVM=1
# shellcheck source=tests/vm/lib/merge-cycles-story.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/merge-cycles-story.sh"
