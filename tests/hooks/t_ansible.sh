# shellcheck shell=bash
# The Ansible role (packaging/ansible/roles/rewind) and its example playbook: ansible-playbook's
# --syntax-check, ansible-lint's production profile, and the configuration the role's template
# writes accepted by `rewind check-config` (and a bad value refused by it, as the template
# task's validate does). ansible-core and ansible-lint come from PyPI into a venv that
# tests/deps.sh makes (target/ansible-venv). The role against a guest over ssh: the long VM
# scenario ansible-role (its plays are packaging/ansible/tests/, syntax-checked and linted here).

ansible_venv() {
    A=$REPO/target/ansible-venv/bin
    [ -x "$A/ansible-lint" ] || { echo "no $A/ansible-lint: run tests/deps.sh"; return 1; }
}

test_ansible_role_syntax_lint() {
    ansible_venv || return 1
    local out
    local play
    for play in "$REPO"/packaging/ansible/example-playbook.yml "$REPO"/packaging/ansible/tests/tests_*.yml; do
        play=${play#"$REPO"/packaging/ansible/}
        out=$(cd "$REPO/packaging/ansible" && PATH=$A:$PATH ansible-playbook -i localhost, --syntax-check "$play" 2>&1) ||
            fail "ansible-playbook --syntax-check $play: $out"
    done
    out=$(cd "$REPO/packaging/ansible" && PATH=$A:$PATH ansible-lint --nocolor --profile production example-playbook.yml roles/rewind tests 2>&1) ||
        fail "ansible-lint: $out"
    check
}

test_ansible_role_config_template() {
    ansible_venv || return 1
    local bin=${REWIND_RELEASE_BIN:-$REPO/target/x86_64-unknown-linux-gnu/release/rewind} out
    [ -x "$bin" ] || { echo "no $bin: cargo build --release"; return 1; }
    # shellcheck disable=SC2016 # the template's own variables
    out=$(cd "$REPO/packaging/ansible" && PATH=$A:$PATH ansible localhost -c local -i localhost, -e "ansible_python_interpreter=$A/python3" -m template \
        -a "src=roles/rewind/templates/rewind.toml.j2 dest=$T/rewind.toml" \
        -e '{"rewind_config": {"snapshot": {"members": ["/", "/var"], "size": "10%SIZE"}, "hooks": {"on_failure": "stop"}, "prune": {"keep_last": 3}}}' 2>&1) ||
        fail "ansible template: $out"
    out=$("$bin" check-config --config "$T/rewind.toml" 2>&1) || fail "rewind check-config refused the role's file: $out"$'\n'"$(cat "$T/rewind.toml")"
    has "the members" '^members = \["/", "/var"\]$' "$(cat "$T/rewind.toml")"
    has "a number stays a number" '^keep_last = 3$' "$(cat "$T/rewind.toml")"
    out=$(cd "$REPO/packaging/ansible" && PATH=$A:$PATH ansible localhost -c local -i localhost, -e "ansible_python_interpreter=$A/python3" -m template \
        -a "src=roles/rewind/templates/rewind.toml.j2 dest=$T/bad.toml" \
        -e '{"rewind_config": {"hooks": {"on_failure": "explode"}}}' 2>&1) || fail "ansible template: $out"
    "$bin" check-config --config "$T/bad.toml" > /dev/null 2>&1 && fail "rewind check-config took on_failure = explode"
    check
}

# ar_resolve OUT EXTRA-VARS-JSON: the role's mapping of the system role's variables
# (tasks/resolve.yml, controller-only) run on localhost; its facts as JSON in OUT; the exit
# status and output of ansible-playbook in $T/resolve.log.
ar_resolve() {
    cat > "$T/resolve.yml" << 'EOP'
- name: Resolve
  hosts: localhost
  gather_facts: false
  tasks:
    - name: The role's mapping
      ansible.builtin.include_role:
        name: rewind
        tasks_from: resolve
    - name: Its facts
      ansible.builtin.copy:
        content: "{{ {'name': rewind_set_name, 'members': rewind_members_eff, 'size': rewind_size_eff, 'pcts': rewind_pcts} | to_json }}"
        dest: "{{ rw_out }}"
        mode: "0644"
EOP
    rm -f "$1"
    (cd "$REPO/packaging/ansible" && PATH=$A:$PATH ANSIBLE_ROLES_PATH=$PWD/roles ANSIBLE_NOCOLOR=1 ansible-playbook -c local -i localhost, \
        -e "ansible_python_interpreter=$A/python3" -e "rw_out=$1" -e "$2" "$T/resolve.yml") > "$T/resolve.log" 2>&1
}

# ar_json FILE: name|members|size|pcts, one line.
ar_json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%s|%s|%s|%s" % (d["name"], " ".join(d["members"]), d["size"], " ".join("%g" % p for p in d["pcts"])))' "$1"; }

test_ansible_role_system_role_vars() {
    ansible_venv || return 1
    local o=$T/facts.json
    # The system role's set: its name, its volumes as members, one percent as N%SIZE.
    ar_resolve "$o" '{"snapshot_lvm_action": "snapshot", "snapshot_lvm_set": {"name": "s1", "volumes": [{"name": "r", "vg": "vg0", "lv": "root", "percent_space_required": 15}, {"name": "d", "vg": "vg1", "lv": "data", "percent_space_required": 15}]}}' ||
        fail "the set form: $(cat "$T/resolve.log")"
    eq "snapshot_lvm_set" "s1|vg0/root vg1/data|15%SIZE|15 15" "$(ar_json "$o")"
    # Percents that differ: the smallest (rounded up); snapshot.yml extends the others.
    ar_resolve "$o" '{"snapshot_lvm_set": {"name": "s2", "volumes": [{"vg": "vg0", "lv": "root", "percent_space_required": 12.5}, {"vg": "vg0", "lv": "var", "percent_space_required": 30}]}}' ||
        fail "differing percents: $(cat "$T/resolve.log")"
    eq "differing percents" "s2|vg0/root vg0/var|13%SIZE|12.5 30" "$(ar_json "$o")"
    # A volume without its own percent takes snapshot_lvm_percent_space_required.
    ar_resolve "$o" '{"snapshot_lvm_percent_space_required": 20, "snapshot_lvm_set": {"name": "s3", "volumes": [{"vg": "vg0", "lv": "root"}]}}' ||
        fail "the role-wide percent: $(cat "$T/resolve.log")"
    eq "the role-wide percent" "s3|vg0/root|20%SIZE|20" "$(ar_json "$o")"
    # snapshot_lvm_vg and snapshot_lvm_lv, with snapshot_lvm_snapset_name.
    ar_resolve "$o" '{"snapshot_lvm_snapset_name": "s4", "snapshot_lvm_vg": "vg0", "snapshot_lvm_lv": "root", "snapshot_lvm_percent_space_required": 10}' ||
        fail "vg and lv: $(cat "$T/resolve.log")"
    eq "snapshot_lvm_vg/snapshot_lvm_lv" "s4|vg0/root|10%SIZE|10" "$(ar_json "$o")"
    # rewind's own variables still work; nothing given: the configuration's members and size.
    ar_resolve "$o" '{"snapshot_lvm_snapset_name": "s5", "rewind_members": ["/", "vg0/var"], "rewind_size": "2G"}' ||
        fail "rewind's own: $(cat "$T/resolve.log")"
    eq "rewind_members/rewind_size" "s5|/ vg0/var|2G|" "$(ar_json "$o")"
    ar_resolve "$o" '{"snapshot_lvm_snapset_name": "s6"}' || fail "nothing given: $(cat "$T/resolve.log")"
    eq "the configuration's" "s6|||" "$(ar_json "$o")"
    # Refused, each with its message, no facts written.
    local bad
    while IFS='|' read -r bad want; do
        ar_resolve "$o" "$bad" && fail "took $bad: $(ar_json "$o")"
        [ ! -e "$o" ] || fail "facts written for $bad"
        has "refused $bad" "$want" "$(cat "$T/resolve.log")"
    done << 'EOB'
{"snapshot_lvm_snapset_name": "a", "snapshot_lvm_set": {"name": "b", "volumes": [{"vg": "vg0", "lv": "root"}]}}|conflicting variables: the set's name
{"snapshot_lvm_set": {"name": "a", "volumes": [{"vg": "vg0", "lv": "root"}]}, "rewind_members": ["/"]}|conflicting variables
{"snapshot_lvm_snapset_name": "a", "snapshot_lvm_vg": "vg0", "snapshot_lvm_lv": "root", "rewind_members": ["/"]}|conflicting variables
{"snapshot_lvm_snapset_name": "a", "snapshot_lvm_percent_space_required": 10, "rewind_size": "2G"}|the size from both rewind_size
{"snapshot_lvm_snapset_name": "a", "snapshot_lvm_all_vgs": true}|not supported by rewind's role: snapshot_lvm_all_vgs
{"snapshot_lvm_snapset_name": "a", "snapshot_lvm_vg": "vg0"}|snapshot_lvm_vg without snapshot_lvm_lv
{"snapshot_lvm_snapset_name": "a", "snapshot_lvm_lv": "root"}|snapshot_lvm_lv without
{"snapshot_lvm_snapset_name": "a", "snapshot_lvm_mountpoint": "/mnt"}|snapshot_lvm_mountpoint
{"snapshot_lvm_set": {"name": "a", "volumes": [{"vg": "vg0"}]}}|each volume needs vg and lv
{"snapshot_lvm_set": {"name": "a", "volumes": [{"vg": "vg0", "lv": "root", "percent_space_required": 150}]}}|percent_space_required must be 1 to 100
EOB
    check
}
