# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "ansible-quick" (issue 20's proof 3, the quick suite's one-guest run; the long
# ansible-role and ansible-fleet cover the rest): a play written as for linux-system-roles/
# snapshot (snapshot_lvm_set, its volumes and percent_space_required), the role's name changed,
# driven by ansible-playbook (ansible-core from PyPI, target/ansible-venv, made by tests/deps.sh)
# against one guest over ssh on a loopback port forward (the set-up is ansible-role's:
# tests/vm/lib/ansible-story.sh). packaging/ansible/tests/tests_quick.yml, three runs:
#   1  the set of vg0/root at 10% of root (the play reads its size back from stock lvs), check,
#      list, then the change to /etc/rwquick.conf: changed
#   2  the same play: changed=0
#   3  the same play with rw_quick_revert: the revert (rewind rollback, reboot, rewind status
#      --wait), then /etc/rwquick.conf as before the change
# Host: each run's exit status and recap; two boots on the console; at the end root is no
# longer an origin, no set is left, stock LVM2 on the disk image: root alone.

VM_ROOT_FLAVOR=ansible
VM_ROOT_INIT=systemd
VM_REBOOT=1
VM_BOOTS=1
VM_TIMEOUT=${ANSIBLE_QUICK_TIMEOUT:-900}
VM_LVS=(root:1200M)
VM_INITRAMFS_ARGS=(--lvm --no-systemd --modules-dir "${VM_REPO_DIR:-}/dracut-module")
VM_ROOT_ADD=(
    "${VM_REPO_DIR:-}/target/x86_64-unknown-linux-gnu/release/rewind:/usr/sbin/rewind"
    "${VM_REPO_DIR:-}/initramfs/rewind-early:/usr/lib/rewind/rewind-early"
)
AR_PLAYS=(
    tests_quick.yml
    tests_quick.yml
    tests_quick.yml:rw_quick_revert=true
)

vm_boot_title() { echo "sshd up; the host's ansible-playbook runs (one reboot: the revert)"; }

# The set-up, the host's plays (AR_PLAYS) and the guest's step: shared with ansible-role.
# shellcheck source=tests/vm/lib/ansible-story.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/ansible-story.sh"

host_prepare() {
    ar_host_prepare
    # The configuration the play changes (and the revert brings back).
    printf 'good\n' >"$WORK/rwquick.conf"
    VM_DISK_ADD+=("$WORK/rwquick.conf:/etc/rwquick.conf")
}

host_check() {
    local n play rc recap
    [[ -f $WORK/boot1.host.rc ]] || vm_die "ansible-quick: the host's side did not run"
    vm_check_eq "the host's side (ansible-playbook runs) finished" 0 "$(cat "$WORK/boot1.host.rc")"
    while IFS=$'\t' read -r n play rc recap; do
        vm_check_eq "play $n ($play) succeeded" 0 "$rc"
        vm_check "play $n ($play): nothing failed or unreachable" grep -q 'failed=0 *skipped=[0-9]* *rescued=0' <<<"$recap"
        case $n in
        1 | 3) vm_check "play $n ($play) changed the host" grep -Eq 'changed=[1-9]' <<<"$recap" ;;
        2) vm_check "play 2 ($play) changed nothing (idempotent)" grep -q 'changed=0' <<<"$recap" ;;
        esac
    done <"$WORK/plays/results"
    vm_check_eq "every play ran" "${#AR_PLAYS[@]}" "$(wc -l <"$WORK/plays/results")"
    vm_check_eq "the guest booted twice (the revert's reboot)" 2 "$(grep -c 'vm-init: started' "$WORK/boot1.serial.log")"
    vm_check "the revert's boot: rewind early set up root's merge" grep -q 'rewind: vg0/root merging' "$VM_STATE/rewind-early.log"
    vm_check_eq "at the end root is a plain linear LV again" linear "$(vm_guest_value root_table)"
    vm_check "no set left after the merge" python3 -c '
import json, sys
sys.exit(json.load(open(sys.argv[1])) != [])' "$VM_STATE/list.json"
    vm_check "stock vgck: vg0 is consistent" vm_image_lvm "$WORK/disk.img" vgck vg0
    vm_check_eq "stock lvs: root alone" root \
        "$(vm_image_lvm "$WORK/disk.img" lvs --noheadings -o lv_name vg0 2>/dev/null | xargs)"
}
