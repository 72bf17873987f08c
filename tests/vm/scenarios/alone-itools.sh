# shellcheck shell=bash disable=SC2034 # VM_* and MC_* settings are read by tests/vm/run.sh and the story
# Scenario "alone-itools" (long suite): rewind in an initramfs-tools image without LVM2 (neither
# lvm2's nor dmsetup's initramfs hook ran; `--no-lvm` fails the build if lvm is in the image),
# udev running: rewind's own hook brings device-mapper's udev rules and dmsetup, so the volumes
# get their nodes, no volume waits on a udev cookie, and the merge is right (issue #22).
# One merge-cycles boot (lib/merge-cycles-story.sh, MC_LVM=0).
VM_SCENARIO_SUITE=long
VM_INITRAMFS_ARGS=(--generator initramfs-tools --no-lvm)
MC_CYCLES=${MC_CYCLES:-1}
MC_LVM=0
# shellcheck source=tests/vm/lib/merge-cycles-story.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/merge-cycles-story.sh"
