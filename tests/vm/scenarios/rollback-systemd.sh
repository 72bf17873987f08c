# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "rollback-systemd": the reboot-to-rollback story (tests/vm/lib/rollback-story.sh)
# through a dracut *systemd* initramfs WITHOUT dracut's lvm module: rewind's settled job, inside
# dracut-initqueue.service with udevd running, sets up the merge and activates root itself
# (rd.lvm.lv=vg0/root); sysroot.mount waits for root's device unit. Shell-init root: the step
# runs `rewind poll`.
VM_INITRAMFS_ARGS=(--no-lvm --systemd --modules-dir "${VM_REPO_DIR:-}/dracut-module")
RB_POLL=step
# shellcheck source=tests/vm/lib/rollback-story.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/rollback-story.sh"
