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
