# shellcheck shell=bash
# The Rust toolchain under sudo: sudo's secure_path leaves out the ~/.cargo/bin that rustup
# installs into, so when cargo is not on PATH, the toolchain of the user who ran sudo is used
# (read only: what cargo downloads and installs goes to root's own CARGO_HOME). Sourced by
# tests/deps.sh, tests/run.sh and vm-images/demo.sh; a cargo already on PATH wins.
if ! command -v cargo >/dev/null 2>&1 && [[ -n ${SUDO_USER:-} && $SUDO_USER != root ]]; then
    rewind_sudo_home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
    if [[ -n $rewind_sudo_home && -x $rewind_sudo_home/.cargo/bin/cargo ]]; then
        PATH=$rewind_sudo_home/.cargo/bin:$PATH
        RUSTUP_HOME=${RUSTUP_HOME:-$rewind_sudo_home/.rustup}
        CARGO_HOME=${CARGO_HOME:-$(getent passwd root | cut -d: -f6)/.cargo}
        export PATH RUSTUP_HOME CARGO_HOME
    fi
fi
