# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "beside-mkcpio-systemd": the merge-cycles story (tests/vm/lib/merge-cycles-story.sh)
# through a mkinitcpio systemd image with LVM2, HOOKS=(base systemd modconf block rewind lvm2
# filesystems), as the real mkinitcpio v41 builds it (vm-images/mkinitcpio/real/systemd-lvm2.list):
# systemd-udevd runs LVM2's 69-dm-lvm.rules, which starts `lvm vgchange -aay --autoactivation
# event vg0` as a transient unit (systemd-run) right after 63-rewind.rules ran rewind for the PV.
# Shell-init root. 2 small merges (beside-mkcpio-systemd-long: 20).
VM_INITRAMFS_ARGS=(--generator mkinitcpio --listing systemd-lvm2)
MC_CYCLES=${MC_CYCLES:-2}
MC_LVM=1
# shellcheck source=tests/vm/lib/merge-cycles-story.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/merge-cycles-story.sh"
