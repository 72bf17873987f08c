# shellcheck shell=bash
# The Ansible scenarios' shared parts (ansible-role, ansible-quick): the host's set-up (rewind
# installed by install.sh onto the disk, an ssh key, the guest's static address, an inventory
# of guest1 on a loopback port forward), the host's side of the boot (the plays of AR_PLAYS,
# FILE[:EXTRA-VARS][:check], each exit status and recap in $WORK/plays/results), and the
# guest's step (sshd up, wait for the host's plays, then what the host checks).

ar_host_prepare() {
    (cd "$VM_REPO_DIR" && cargo build --release --quiet)
    local inst=$WORK/install f
    [[ -x $VM_REPO_DIR/target/ansible-venv/bin/ansible-playbook ]] ||
        vm_die "ansible: no target/ansible-venv (tests/deps.sh makes it)"
    sh "$VM_REPO_DIR/install.sh" DESTDIR="$inst" >"$WORK/install.log"
    while IFS= read -r f; do
        VM_DISK_ADD+=("$inst$f:$f")
    done < <(cd "$inst" && find . \( -type f -o -type l \) | sed 's/^\.//' | sort)
    # A key made for this run; the guest's network: qemu's user network, a static address.
    ssh-keygen -q -t ed25519 -N '' -C rewind-vm -f "$WORK/id" >/dev/null
    mkdir -p "$WORK/net"
    printf '[Match]\nName=en* eth*\n\n[Network]\nAddress=10.0.2.15/24\nGateway=10.0.2.2\n' >"$WORK/net/10-vm.network"
    VM_DISK_ADD+=("$WORK/id.pub:/root/.ssh/authorized_keys" "$WORK/net/10-vm.network:/etc/systemd/network/10-vm.network")
    VM_SSH_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    vm_log "ansible: the guest's sshd on 127.0.0.1:$VM_SSH_PORT"
    cat >"$WORK/inventory" <<EOI
[guests]
guest1 ansible_host=127.0.0.1 ansible_port=$VM_SSH_PORT ansible_user=root ansible_ssh_private_key_file=$WORK/id ansible_python_interpreter=/usr/bin/python3 ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=10'
EOI
}

# ar_ssh COMMAND...: a command on the guest.
ar_ssh() {
    ssh -i "$WORK/id" -p "$VM_SSH_PORT" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o ConnectTimeout=10 -o BatchMode=yes root@127.0.0.1 "$@"
}

# The host's side of the boot: wait for sshd, run the plays, tell the guest's step to finish.
vm_boot_host() {
    local i play file vars check n=0 rc A=$VM_REPO_DIR/target/ansible-venv/bin
    for ((i = 0; i < 120; i++)); do
        ar_ssh true 2>/dev/null && break
        sleep 5
    done
    ar_ssh true || { echo "ansible: no ssh to the guest"; return 1; }
    mkdir -p "$WORK/plays"
    for play in "${AR_PLAYS[@]}"; do
        n=$((n + 1))
        IFS=: read -r file vars check <<<"$play"
        local args=(-i "$WORK/inventory" "tests/$file")
        [[ -z $vars ]] || args+=(-e "$vars")
        [[ $check != check ]] || args+=(--check)
        rc=0
        (cd "$VM_REPO_DIR/packaging/ansible" && ANSIBLE_ROLES_PATH=$PWD/roles ANSIBLE_NOCOLOR=1 \
            ANSIBLE_HOST_KEY_CHECKING=False PATH=$A:$PATH ansible-playbook "${args[@]}") \
            >"$WORK/plays/$n.log" 2>&1 || rc=$?
        printf '%s\t%s\t%s\t%s\n' "$n" "$play" "$rc" \
            "$(grep -E '^guest1 +: ok=' "$WORK/plays/$n.log" | tr -s ' ')" >>"$WORK/plays/results"
        echo "play $n ($play): exit $rc; $(grep -E '^guest1 +: ok=' "$WORK/plays/$n.log" | tr -s ' ')"
    done
    ar_ssh touch /run/vm-host-done
}

# The guest's step, at every boot of the one harness boot: the network and sshd up, then wait
# for the host's plays (a reboot by the role's revert ends this run of it; the next boot's runs
# it again); at the end, what the host checks.
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
    journalctl -b --no-pager -u rewind-poll.service >"$OUT/poll-journal" 2>&1 || true
    dmesg | grep 'rewind' >"$OUT/rewind-early.log" || true
    g_record root_table "$(dmsetup table vg0-root | awk '{ print $3 }')"
    lvs --noheadings -o lv_name,lv_attr,lv_tags vg0 >"$OUT/lvs" 2>&1
    rewind list --json >"$OUT/list.json"
    cat /etc/rwdemo.conf >"$OUT/rwdemo.conf" 2>/dev/null || true
    journalctl --list-boots --no-pager >"$OUT/boots" 2>&1 || true
}

