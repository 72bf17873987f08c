# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "rollback-lvm": the reboot-to-rollback story (tests/vm/lib/rollback-story.sh) through
# a dracut non-systemd initramfs WITH dracut's lvm module: rewind's settled job runs first and
# sets up the merge; lvm_scan then finds root active (with its merge) and leaves it so. Shell
# init root: the step runs `rewind poll`.
VM_INITRAMFS_ARGS=(--lvm --no-systemd --modules-dir "${VM_REPO_DIR:-}/dracut-module")
RB_POLL=step
# shellcheck source=tests/vm/lib/rollback-story.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/rollback-story.sh"
