# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "systemd-smoke" (long suite): the harness's systemd variant boots. A systemd
# initramfs with dracut's lvm module activates root; systemd is PID 1 of the root and runs the
# step through vm-step.service. One boot.
VM_SCENARIO_SUITE=long
VM_BOOTS=1
VM_INITRAMFS_ARGS=(--lvm --systemd)
VM_ROOT_INIT=systemd

guest_boot_1() {
    tr -d '\0' </proc/1/comm | tee "$OUT/pid1"
    dmsetup table | tee "$OUT/dm-table"
    systemctl is-enabled dracut-shutdown.service | tee "$OUT/dracut-shutdown" || true
}

host_check() {
    vm_check_eq "PID 1 of the root" systemd "$(cat "$VM_STATE/pid1")"
    vm_check "root active as a linear LV" grep -q '^vg0-root: 0 [0-9]* linear ' "$VM_STATE/dm-table"
    vm_check_eq "dracut-shutdown.service" masked "$(cat "$VM_STATE/dracut-shutdown")"
}
