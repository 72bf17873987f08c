# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "alone-mkcpio-systemd": the merge-cycles story (tests/vm/lib/merge-cycles-story.sh)
# through a mkinitcpio systemd image WITHOUT LVM2's hook, HOOKS=(base systemd modconf block
# rewind filesystems), as the real mkinitcpio v41 builds it (vm-images/mkinitcpio/real/systemd.list):
# systemd-udevd runs, and nothing in the image but rewind's hook knows device-mapper; systemd
# mounts root= only once udev made /dev/mapper/vg0-root. Boot 1 boots, boot 2 merges; no volume
# may wait on a udev cookie.
VM_INITRAMFS_ARGS=(--generator mkinitcpio --listing systemd)
MC_CYCLES=${MC_CYCLES:-1}
MC_LVM=0
# shellcheck source=tests/vm/lib/merge-cycles-story.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/merge-cycles-story.sh"
