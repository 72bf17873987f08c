# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "rollback-lvm": the reboot-to-rollback story (tests/vm/lib/rollback-story.sh) through
# a dracut non-systemd initramfs WITH dracut's lvm module: rewind's settled job runs first and
# sets up the merge; lvm_scan then finds root active (with its merge) and leaves it so. Shell
# init root: the step runs `rewind poll`. 99vmtime (vm-images/dracut) logs the initramfs's lvm
# commands: the host checks rewind was done before LVM2's activation, which succeeded.
VM_INITRAMFS_ARGS=(--lvm --no-systemd --modules-dir "${VM_REPO_DIR:-}/dracut-module"
    --modules-dir "${VM_IMAGES_DIR:-}/dracut")
RB_POLL=step
RB_LVM_ORDER=1
# shellcheck source=tests/vm/lib/rollback-story.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/rollback-story.sh"
