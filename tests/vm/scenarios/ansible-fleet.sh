# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "ansible-fleet" (issue 20's proof 3, two guests; long suite): ansible-playbook
# (ansible-core from PyPI, target/ansible-venv) drives the role (packaging/ansible/roles/rewind)
# against two guests at once, each over ssh on its own loopback port forward of qemu's user
# network (restricted: no way out). The harness boots guest 1 (its one boot, VM_REBOOT: the
# revert's reboot restarts it within that boot); vm_boot_before copies its disk and exchange
# disk for guest 2, which vm_boot_host boots with the same kernel, initramfs and command line
# (VM_BOOT_HOW), as its own qemu (run-guest.sh --reboot), before the plays. Both qemus run under
# the one VM slot the run holds (`vm-slot bash tests/vm/run.sh ansible-fleet`).
# The guests are the ansible-role scenario's (the "ansible" flavor: openssh-server, python3;
# rewind as install.sh installs it; dracut with rewind's module and LVM2; a systemd root);
# /etc/rwfleet.conf holds "good v1".
# The play, packaging/ansible/tests/tests_fleet.yml, run twice over an inventory of both:
#   run 1: on each host a set (fleet), the change (the host's rw_fleet_conf: guest1 "broken",
#          guest2 "good v2"), the health check; guest1's fails: revert (rewind rollback,
#          reboot, rewind status --wait), the refusal recorded; guest2 keeps the change and set
#   run 2: changes nothing on either host (guest1 has refused the change; guest2 has it)
# Host: both recaps of each run; each guest's boot id before and after the plays (ssh) and
# its boots on the serial console (guest1: two, guest2: one); what each guest recorded at
# the end (root's table, rewind list, the configuration) and stock LVM2 on each disk image.

VM_SCENARIO_SUITE=long
VM_ROOT_FLAVOR=ansible
VM_ROOT_INIT=systemd
VM_REBOOT=1
VM_BOOTS=1
VM_TIMEOUT=${ANSIBLE_FLEET_TIMEOUT:-2400}
VM_LVS=(root:1200M)
VM_INITRAMFS_ARGS=(--lvm --no-systemd --modules-dir "${VM_REPO_DIR:-}/dracut-module")
VM_ROOT_ADD=(
    "${VM_REPO_DIR:-}/target/x86_64-unknown-linux-gnu/release/rewind:/usr/sbin/rewind"
    "${VM_REPO_DIR:-}/initramfs/rewind-early:/usr/lib/rewind/rewind-early"
)
AF_RUNS=2

vm_boot_title() { echo "two guests, sshd up; the host's ansible-playbook runs (guest1 reboots: the rollback)"; }

# af_port: a free port on the host's loopback.
af_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# shellcheck source=tests/vm/lib/ansible-story.sh
. "${TESTS_VM_DIR:-/run/xchg/harness}/lib/ansible-story.sh"

host_prepare() {
    # rewind installed onto the disk, the key, the network, guest1's port (VM_SSH_PORT); the
    # inventory is rewritten below for both guests.
    ar_host_prepare
    printf 'good v1\n' >"$WORK/rwfleet.conf"
    VM_DISK_ADD+=("$WORK/rwfleet.conf:/etc/rwfleet.conf")
    # Guest 1 is the harness's guest; guest 2 this scenario's own qemu (vm_boot_host).
    local port2
    port2=$(af_port)
    while [[ $port2 == "$VM_SSH_PORT" ]]; do port2=$(af_port); done
    printf '%s\n%s\n' "$VM_SSH_PORT" "$port2" >"$WORK/ports"
    vm_log "ansible-fleet: guest1's sshd on 127.0.0.1:$VM_SSH_PORT, guest2's on 127.0.0.1:$port2"
    cat >"$WORK/inventory" <<EOI
[fleet]
guest1 ansible_port=$VM_SSH_PORT rw_fleet_conf=broken
guest2 ansible_port=$port2 rw_fleet_conf='good v2'

[fleet:vars]
ansible_host=127.0.0.1
ansible_user=root
ansible_ssh_private_key_file=$WORK/id
ansible_python_interpreter=/usr/bin/python3
ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=10'
EOI
}

# af_ssh GUEST COMMAND...: a command on guest 1 or 2.
af_ssh() {
    local port
    port=$(sed -n "$1p" "$WORK/ports")
    shift
    ssh -i "$WORK/id" -p "$port" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o ConnectTimeout=10 -o BatchMode=yes root@127.0.0.1 "$@"
}

# Guest 2 starts from the disks guest 1 starts from: copies made before guest 1 boots.
vm_boot_before() {
    cp --sparse=always "$WORK/disk.img" "$WORK/disk2.img"
    cp --sparse=always "$WORK/xchg.img" "$WORK/xchg2.img"
}

# The host's side of the boot: guest 2 up, both sshd, the plays, each guest told to finish
# (guest 2 first: the harness stops this side when guest 1 powers off).
vm_boot_host() {
    local g i run n rc A=$VM_REPO_DIR/target/ansible-venv/bin g2pid g2rc=0
    "$VM_IMAGES_DIR/run-guest.sh" "${VM_BOOT_HOW[@]}" --log "$WORK/boot1.guest2.serial.log" \
        --timeout "$VM_TIMEOUT" --pidfile "$WORK/qemu2.pid" \
        --disk "$WORK/disk2.img:vmroot" --disk "$WORK/xchg2.img:vmxchg" \
        --ssh-port "$(sed -n 2p "$WORK/ports")" >"$WORK/guest2.run.log" 2>&1 &
    g2pid=$!
    # shellcheck disable=SC2064 # the pid now
    trap "kill $g2pid 2>/dev/null" EXIT
    for g in 1 2; do
        for ((i = 0; i < 120; i++)); do
            af_ssh "$g" true 2>/dev/null && break
            sleep 5
        done
        af_ssh "$g" true || { echo "ansible-fleet: no ssh to guest $g"; return 1; }
        af_ssh "$g" cat /proc/sys/kernel/random/boot_id >"$WORK/guest$g.bootid.before"
    done
    mkdir -p "$WORK/plays"
    for ((run = 1; run <= AF_RUNS; run++)); do
        rc=0
        (cd "$VM_REPO_DIR/packaging/ansible" && ANSIBLE_ROLES_PATH=$PWD/roles ANSIBLE_NOCOLOR=1 \
            ANSIBLE_HOST_KEY_CHECKING=False PATH=$A:$PATH ansible-playbook -i "$WORK/inventory" tests/tests_fleet.yml) \
            >"$WORK/plays/$run.log" 2>&1 || rc=$?
        for g in 1 2; do
            printf '%s\tguest%s\t%s\t%s\n' "$run" "$g" "$rc" \
                "$(grep -E "^guest$g +: ok=" "$WORK/plays/$run.log" | tr -s ' ')" >>"$WORK/plays/results"
        done
        echo "run $run: exit $rc; $(grep -E '^guest[12] +: ok=' "$WORK/plays/$run.log" | tr -s ' ' | paste -sd ';')"
    done
    for g in 1 2; do
        af_ssh "$g" cat /proc/sys/kernel/random/boot_id >"$WORK/guest$g.bootid.after"
    done
    af_ssh 2 touch /run/vm-host-done
    wait "$g2pid" || g2rc=$?
    trap - EXIT
    echo "$g2rc" >"$WORK/guest2.rc"
    echo "guest 2: run-guest.sh exited with $g2rc"
    if ((g2rc == 0)); then
        mkdir -p "$WORK/guest2"
        tar xf "$WORK/xchg2.img" -C "$WORK/guest2"
    fi
    af_ssh 1 touch /run/vm-host-done
}

# Each guest's step, at every boot of the one harness boot: the network and sshd up, then wait
# for the host's plays; at the end, what the host checks.
guest_boot_1() {
    local i
    chmod 700 /root/.ssh
    chmod 600 /root/.ssh/authorized_keys
    systemctl start systemd-networkd ssh
    for ((i = 0; i < 2400; i++)); do
        [[ -e /run/vm-host-done ]] && break
        sleep 1
    done
    [[ -e /run/vm-host-done ]] || g_fail "the host's plays did not finish"
    dmesg | grep 'rewind' >"$OUT/rewind-early.log" || true
    g_record root_table "$(dmsetup table vg0-root | awk '{ print $3 }')"
    rewind list --json >"$OUT/list.json"
    cat /etc/rwfleet.conf >"$OUT/rwfleet.conf"
    [[ ! -e /var/lib/rwfleet-refused ]] || cp /var/lib/rwfleet-refused "$OUT/refused"
}

# af_names STATE: the set names in a guest's rewind list --json.
af_names() {
    python3 -c 'import json, sys; print(" ".join(s["name"] for s in json.load(open(sys.argv[1]))))' "$1/list.json"
}

host_check() {
    local run g rc recap s2=$WORK/guest2/state
    [[ -f $WORK/boot1.host.rc ]] || vm_die "ansible-fleet: the host's side did not run"
    vm_check_eq "the host's side (both guests, the ansible-playbook runs) finished" 0 "$(cat "$WORK/boot1.host.rc")"
    vm_check_eq "guest 2 powered off cleanly" 0 "$(cat "$WORK/guest2.rc" 2>/dev/null)"
    vm_check_eq "both runs' recaps, both hosts" $((2 * AF_RUNS)) "$(wc -l <"$WORK/plays/results")"
    while IFS=$'\t' read -r run g rc recap; do
        vm_check_eq "run $run succeeded" 0 "$rc"
        vm_check "run $run, $g: nothing failed or unreachable" grep -q 'unreachable=0 failed=0' <<<"$recap"
        case $run/$g in
        1/guest1)
            vm_check "run 1, guest1: changed (set, change, rollback)" grep -Eq 'changed=[1-9]' <<<"$recap"
            vm_check "run 1, guest1: its health check failed and was rescued (the rollback)" grep -q 'rescued=1' <<<"$recap"
            ;;
        1/guest2)
            vm_check "run 1, guest2: changed (set, change)" grep -Eq 'changed=[1-9]' <<<"$recap"
            vm_check "run 1, guest2: nothing rescued (healthy)" grep -q 'rescued=0' <<<"$recap"
            ;;
        2/*) vm_check "run 2, $g: changed nothing" grep -q 'changed=0' <<<"$recap" ;;
        esac
    done <"$WORK/plays/results"
    # guest 1 rolled back: a reboot (a new boot id, two boots on its console), the merge.
    vm_check "guest1: a new boot id after the plays (the rollback's reboot)" \
        test "$(cat "$WORK/guest1.bootid.before")" != "$(cat "$WORK/guest1.bootid.after")"
    vm_check_eq "guest1 booted twice" 2 "$(grep -c 'vm-init: started' "$WORK/boot1.serial.log")"
    vm_check "guest1's rollback boot: rewind early set up root's merge" grep -q 'rewind: vg0/root merging' "$VM_STATE/rewind-early.log"
    vm_check_eq "guest1: root linear at the end (merged)" linear "$(vm_guest_value root_table)"
    vm_check_eq "guest1: the configuration from before the change" 'good v1' "$(cat "$VM_STATE/rwfleet.conf")"
    vm_check_eq "guest1: no set left" '' "$(af_names "$VM_STATE")"
    vm_check "guest1: the refusal recorded" test -s "$VM_STATE/refused"
    vm_check "stock vgck: guest1's vg0 is consistent" vm_image_lvm "$WORK/disk.img" vgck vg0
    vm_check_eq "stock lvs: guest1's vg0 holds root alone" root \
        "$(vm_image_lvm "$WORK/disk.img" lvs --noheadings -o lv_name vg0 2>/dev/null | xargs)"
    # guest 2 untouched by guest 1's rollback: same boot, the change and its set kept.
    vm_check_eq "guest2: the same boot id before and after the plays (no reboot)" \
        "$(cat "$WORK/guest2.bootid.before")" "$(cat "$WORK/guest2.bootid.after")"
    vm_check_eq "guest2 booted once" 1 "$(grep -c 'vm-init: started' "$WORK/boot1.guest2.serial.log")"
    vm_check_eq "guest2: root is the set's origin" snapshot-origin "$(VM_STATE=$s2 vm_guest_value root_table)"
    vm_check_eq "guest2: the changed configuration" 'good v2' "$(cat "$s2/rwfleet.conf")"
    vm_check_eq "guest2: its set still there" fleet "$(af_names "$s2")"
    vm_check "guest2: no refusal" test ! -e "$s2/refused"
    vm_check "stock vgck: guest2's vg0 is consistent" vm_image_lvm "$WORK/disk2.img" vgck vg0
    vm_check_eq "stock lvs: guest2's vg0 holds root and the set's snapshot" 'root root.fleet' \
        "$(vm_image_lvm "$WORK/disk2.img" lvs --noheadings -o lv_name vg0 2>/dev/null | xargs)"
}
