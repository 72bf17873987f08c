# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "ansible-role" (issue 20's proof 3): the Ansible role (packaging/ansible/roles/rewind)
# driven by ansible-playbook (ansible-core from PyPI, target/ansible-venv) against a guest over
# ssh, on a loopback port forward of qemu's user network (restricted: no way out). One guest:
# the machine's two VM slots are shared by several sessions. The guest root is the "ansible"
# flavor (vm-images/packages-ansible: openssh-server, python3); rewind as install.sh installs it
# (the poller's unit enabled); a dracut image with rewind's module and LVM2; a systemd root;
# vg0 has root and data, ~0.3 GB free.
# The guest's own reboots (the role's revert) restart it within the one boot of the harness.
# One boot (its step brings up the network and sshd, then waits for the host's plays):
#   packaging/ansible/tests/, each run by the host in order, each recap read:
#   tests_failures.yml   no space, the same LV twice, an unknown action, a bad size, a bad set
#                        name, a missing VG, a missing LV, check/revert/mount of a missing set,
#                        no name: each fails with rewind's (or the argument spec's) message,
#                        nothing made
#   tests_check_mode.yml --check: no set made
#   tests_mount.yml x2   the set mounted read-only holds the file as before; run 2: changed=0
#   tests_extend.yml x2  a set of root with a 16 MiB store, extended to 10% of root (stock
#                        lvextend: 120 MiB, read back by lvs); --check at 15% and 60% (more
#                        than vg0 has: lvextend's "Insufficient free space") leave it; run 2
#                        (the system role's snapshot_lvm_set form): changed=0
#   tests_umount.yml x2  unmounted, removed (and the extend set); run 2: changed=0
#   tests_rollback.yml   set, bad change, health check fails, revert: rewind rollback, reboot,
#                        rewind status --wait; the file as before, the added file gone
#   tests_converge.yml x2  run 2: changed=0
# Host: every play's exit status and recap; the guest's boots (the serial log: two), root's
# table and stock LVM2's view at the end (after the rollback: root and the converge set).

VM_SCENARIO_SUITE=long
VM_ROOT_FLAVOR=ansible
VM_ROOT_INIT=systemd
VM_REBOOT=1
VM_BOOTS=1
VM_TIMEOUT=${ANSIBLE_ROLE_TIMEOUT:-2400}
# data: fills most of vg0, so that a set of root can be refused for want of space.
VM_LVS=(root:1200M data:1500M)
VM_INITRAMFS_ARGS=(--lvm --no-systemd --modules-dir "${VM_REPO_DIR:-}/dracut-module")
VM_ROOT_ADD=(
    "${VM_REPO_DIR:-}/target/x86_64-unknown-linux-gnu/release/rewind:/usr/sbin/rewind"
    "${VM_REPO_DIR:-}/initramfs/rewind-early:/usr/lib/rewind/rewind-early"
)
# The plays, in order: FILE[:EXTRA-VARS][:check].
AR_PLAYS=(
    tests_failures.yml
    tests_check_mode.yml::check
    tests_mount.yml
    tests_mount.yml:rw_first_run=false
    tests_extend.yml
    tests_extend.yml:rw_first_run=false
    tests_umount.yml
    tests_umount.yml
    tests_rollback.yml
    tests_converge.yml
    tests_converge.yml
)

vm_boot_title() { echo "sshd up; the host's ansible-playbook runs (one reboot: the rollback)"; }

# The set-up, the host's plays (AR_PLAYS) and the guest's step: shared with ansible-quick.
# shellcheck source=tests/vm/lib/ansible-story.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/ansible-story.sh"

host_prepare() { ar_host_prepare; }

host_check() {
    local n play rc recap
    [[ -f $WORK/boot1.host.rc ]] || vm_die "ansible-role: the host's side did not run"
    vm_check_eq "the host's side (ansible-playbook runs) finished" 0 "$(cat "$WORK/boot1.host.rc")"
    while IFS=$'\t' read -r n play rc recap; do
        vm_check_eq "play $n ($play) succeeded" 0 "$rc"
        vm_check "play $n ($play): nothing failed or unreachable" grep -q 'failed=0' <<<"$recap"
        case $n in
        1) vm_check "play 1: every expected failure rescued (11)" grep -q 'rescued=11' <<<"$recap" ;;
        3 | 5 | 7 | 9 | 10) vm_check "play $n ($play) changed the host" grep -Eq 'changed=[1-9]' <<<"$recap" ;;
        2 | 4 | 6 | 8 | 11) vm_check "play $n ($play) changed nothing" grep -q 'changed=0' <<<"$recap" ;;
        esac
        case $n in
        5 | 6) vm_check "play $n ($play): the no-space failure rescued (1)" grep -q 'rescued=1' <<<"$recap" ;;
        esac
    done <"$WORK/plays/results"
    vm_check_eq "every play ran" "${#AR_PLAYS[@]}" "$(wc -l <"$WORK/plays/results")"
    vm_check "the rollback play rolled back (a rescue ran)" grep -q 'rescued=1' <<<"$(sed -n 9p "$WORK/plays/results")"
    # One qemu run: the serial log holds every boot the guest made.
    vm_check_eq "the guest booted twice (the revert's reboot)" 2 "$(grep -c 'vm-init: started' "$WORK/boot1.serial.log")"
    vm_check "the rollback boot: rewind early set up root's merge" grep -q 'rewind: vg0/root merging' "$VM_STATE/rewind-early.log"
    vm_check_eq "at the end root is a snapshot origin (the converge set)" snapshot-origin "$(vm_guest_value root_table)"
    vm_check_eq "at the end the configuration is the converged one" $'good\nconverged' "$(cat "$VM_STATE/rwdemo.conf")"
    vm_check "the sets at the end: converge alone" python3 -c '
import json, sys
names = [s["name"] for s in json.load(open(sys.argv[1]))]
sys.exit(names != ["converge"])' "$VM_STATE/list.json"
    # Stock LVM2 on the disk image: the VG is consistent, root has converge's snapshot.
    vm_check "stock vgck: vg0 is consistent" vm_image_lvm "$WORK/disk.img" vgck vg0
    vm_check_eq "stock lvs: data, root and converge's snapshot of root" 'data root root.converge' \
        "$(vm_image_lvm "$WORK/disk.img" lvs --noheadings -o lv_name vg0 2>/dev/null | xargs)"
}
