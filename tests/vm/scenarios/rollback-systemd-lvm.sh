# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "rollback-systemd-lvm": the reboot-to-rollback story (tests/vm/lib/rollback-story.sh)
# through a dracut *systemd* initramfs WITH dracut's lvm module, into a *systemd* root where
# install.sh installed and enabled rewind-poll.service.
# - rewind's settled initqueue job runs inside dracut-initqueue.service, with udevd running,
#   before dracut's lvm_scan: the rollback completes and the boot does not hang (issue #4, 7).
# - Boot 1 (an ordinary boot) and boot 2 (the rollback): the unit is enabled, starts at boot and
#   exits with success: at once when there is no merge, after finishing it when there is one.
# - In the root, stock LVM's lvm2-monitor/lvmpolld may finish the merge before rewind-poll:
#   the guest records which one did (merge_finished_by); the VG must end the same either way.
# - 99vmtime (vm-images/dracut) logs the initramfs's lvm commands: the host checks rewind was
#   done before LVM2's activation (lvm_scan), which succeeded.
VM_INITRAMFS_ARGS=(--lvm --systemd --modules-dir "${VM_REPO_DIR:-}/dracut-module"
    --modules-dir "${VM_IMAGES_DIR:-}/dracut")
VM_ROOT_INIT=systemd
RB_POLL=unit
RB_LVM_ORDER=1
# shellcheck source=tests/vm/lib/rollback-story.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/rollback-story.sh"
