# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "rollback-itools-systemd" (long suite): the reboot-to-rollback story
# (tests/vm/lib/rollback-story.sh) through an initramfs-tools image (the guest's own
# `update-initramfs`) into a systemd root with rewind-poll.service enabled by install.sh.
# The other order of finishing: in an initramfs-tools image stock LVM's event activation
# (69-lvm.rules, `vgchange -aay` without --sysinit) polls the merge in the background, so it may
# finish before the root's poller looks; rewind-poll.service must then exit cleanly, and the VG
# must end as in rollback-systemd-lvm (where rewind-poll finished it). Records who finished.
VM_SCENARIO_SUITE=long
VM_INITRAMFS_ARGS=(--generator initramfs-tools)
VM_ROOT_INIT=systemd
RB_POLL=unit
# shellcheck source=tests/vm/lib/rollback-story.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/rollback-story.sh"
