# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "rollback-itools-rescue": the reboot-to-rollback story (tests/vm/lib/rollback-story.sh)
# as a rescue, through an initramfs built by the guest's own `update-initramfs` (initramfs-tools,
# with rewind installed by install.sh: its hook, 63-rewind.rules, rewind-early).
# Boot 1: a snapshot `pre`, then a "bad upgrade" that overwrites the data and also breaks the
#         init the kernel execs (here `init=/usr/local/sbin/vm-init`, replaced by /bin/false: it
#         exists and is executable, so the initramfs hands over to it, and PID 1 exits).
#         Nothing is flagged: the admin has not asked for a rollback yet.
# Boot 2: no rd.rewind: the kernel panics ("Attempted to kill init"); the host kills the guest
#         and checks with stock lvs that `pre` is untouched.
# Boot 3: `rd.rewind=vg0/pre` typed at boot: udev runs rewind-early (63-rewind.rules) before
#         lvm2's 69-lvm.rules activates vg0; rewind commits the merge and sets it up; the old
#         init and data are there at once, the system comes up (the init that runs is the old
#         one: the rollback happened before root was mounted); the merge is finished by
#         `rewind poll` or, already, by stock LVM: 69-lvm.rules' `vgchange -aay` (no --sysinit)
#         starts LVM's background poll in the initramfs (with this 30 MiB merge it is done
#         before the root's init runs).
VM_INITRAMFS_ARGS=(--generator initramfs-tools)
RB_POLL=step
RB_MERGE_AT_INIT=any
RB_RESCUE=1
# shellcheck source=tests/vm/lib/rollback-story.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/rollback-story.sh"
