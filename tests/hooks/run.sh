#!/usr/bin/env bash
# Harness tests for the initramfs and boot pieces: the dracut module, the mkinitcpio hook, the
# initramfs-tools hook, the shared rewind-early wrapper (under busybox ash), the rule files,
# the poller's unit and install.sh; the man pages and completions; the Debian package (root:
# dpkg installs it into a Debian root; skipped otherwise). No VM. Prints 'N passed, N failed'
# last.
#
#   tests/hooks/run.sh [PATTERN]     run the test functions whose name contains PATTERN
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$here/../.." && pwd)
export REPO

# shellcheck source=tests/hooks/lib.sh disable=SC1091
. "$here/lib.sh"
for f in "$here"/t_*.sh; do
    # shellcheck disable=SC1090
    . "$f"
done

pattern=${1:-}
passed=0 failed=0 skipped=0
while read -r _ _ name; do
    [[ $name == test_* && $name == *"$pattern"* ]] || continue
    T=$(mktemp -d "${TMPDIR:-/tmp}/rewind-hooks.XXXXXX")
    out=$( (export T; cd "$T" && "$name") 2>&1)
    rc=$?
    case $rc in
        0) passed=$((passed + 1)); echo "ok   $name" ;;
        77) skipped=$((skipped + 1)); echo "skip $name${out:+: $out}" ;;
        *) failed=$((failed + 1)); echo "FAIL $name"; echo "${out//$'\n'/$'\n'    }" | sed '1s/^/    /' ;;
    esac
    rm -rf "$T"
done < <(declare -F)

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
