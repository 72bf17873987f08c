# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "beside-dracut-systemd" (long suite): the merge-cycles story
# (tests/vm/lib/merge-cycles-story.sh) through a dracut systemd image with dracut's lvm module
# (lvm_scan from dracut-initqueue.service, `lvchange -ay --sysinit`). Shell-init root. 20 small
# merges.
VM_SCENARIO_SUITE=long
VM_INITRAMFS_ARGS=(--lvm --systemd --modules-dir "${VM_REPO_DIR:-}/dracut-module")
MC_CYCLES=${MC_CYCLES:-20}
MC_LVM=1
# shellcheck source=tests/vm/lib/merge-cycles-story.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/merge-cycles-story.sh"
