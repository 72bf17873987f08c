# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "beside-dracut" (long suite): the merge-cycles story (tests/vm/lib/merge-cycles-story.sh)
# through a dracut image (shell init) with dracut's lvm module: rewind's settled job sets up the
# merge, then lvm_scan runs `lvm lvchange -ay --sysinit` for rd.lvm.lv= (root and data): with
# --sysinit LVM starts no poller. 20 small merges.
VM_SCENARIO_SUITE=long
VM_INITRAMFS_ARGS=(--lvm --no-systemd --modules-dir "${VM_REPO_DIR:-}/dracut-module")
MC_CYCLES=${MC_CYCLES:-20}
MC_LVM=1
# shellcheck source=tests/vm/lib/merge-cycles-story.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/merge-cycles-story.sh"
