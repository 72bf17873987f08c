# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "beside-mkcpio-busybox-long" (long suite): beside-mkcpio-busybox with 20 small merges.
VM_SCENARIO_SUITE=long
VM_INITRAMFS_ARGS=(--generator mkinitcpio --listing busybox-lvm2)
MC_CYCLES=${MC_CYCLES:-20}
MC_LVM=1
# shellcheck source=tests/vm/lib/merge-cycles-story.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/merge-cycles-story.sh"
