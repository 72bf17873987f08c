# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "reboot-rollback": the whole story, with rewind alone (the demo runs this one).
# Image: dracut, shell init, no LVM2 (rewind activates root itself); root: shell init, so the
# step runs `rewind poll` itself. The story (boots, checks): tests/vm/lib/rollback-story.sh.
# Boot 1: a snapshot `pre`, the "bad upgrade", `rewind rollback vg0/pre` (flagged: root is open).
# Boot 2: `rewind early` sets up the merge before root is mounted: the old data at once;
#         `rewind poll` finishes it. Host: stock vgck/lvs/vgcfgbackup: a plain root.
VM_INITRAMFS_ARGS=(--no-lvm --no-systemd --modules-dir "${VM_REPO_DIR:-}/dracut-module")
RB_POLL=step
# shellcheck source=tests/vm/lib/rollback-story.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/rollback-story.sh"
