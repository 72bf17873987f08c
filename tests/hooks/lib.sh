# shellcheck shell=bash
# Assertions for tests/hooks: each prints why it failed and returns 1; a test function runs in a
# subshell with `set -e` off, so it ends with `check` (non-zero if any assertion failed).

_fails=0
fail() { echo "$*"; _fails=$((_fails + 1)); }
check() { [ "$_fails" -eq 0 ]; }
skip() { echo "$*"; exit 77; }

# eq DESC WANT GOT
eq() {
    if [ "$2" != "$3" ]; then
        fail "$1:"$'\n'"  want: ${2//$'\n'/$'\n'        }"$'\n'"  got:  ${3//$'\n'/$'\n'        }"
    fi
}

# same_lines DESC WANT GOT: equal as sorted sets of lines
same_lines() {
    local w g
    w=$(sort <<< "$2") g=$(sort <<< "$3")
    if [ "$w" != "$g" ]; then
        fail "$1:"$'\n'"$(diff <(echo "$w") <(echo "$g") | sed -n 's/^[<>]/  &/p')"
    fi
}

# has DESC PATTERN TEXT (grep -E)
has() { grep -qE -- "$2" <<< "$3" || fail "$1: no line matches /$2/ in:"$'\n'"$3"; }
hasnt() { ! grep -qE -- "$2" <<< "$3" || fail "$1: a line matches /$2/ in:"$'\n'"$3"; }

# A fake rewind: records "ARGS" lines in $T/rewind.calls. FAKE_REWIND_MODE (read at run time
# from $T/rewind.mode): ok, fail (exit 1), hang (sleep), invalid (check-config exits 1), slow.
# A check-config that does not fail writes its arguments, as a JSON string, to --boot-json's
# file.
fake_rewind() { # fake_rewind PATH
    mkdir -p "$(dirname "$1")"
    cat > "$1" <<FAKE
#!/bin/sh
echo "\$*" >> "$T/rewind.calls"
mode=\$(cat "$T/rewind.mode" 2>/dev/null || echo ok)
case \$mode in
    fail) exit 1 ;;
    hang) exec sleep 1000 ;;
    invalid) [ "\$1" = check-config ] && { echo "bad key" >&2; exit 1; } ;;
    slow) mkdir "$T/running" 2>/dev/null || echo OVERLAP >> "$T/rewind.calls"
          sleep 1; rmdir "$T/running" ;;
esac
if [ "\$1" = check-config ]; then
    args="\$*"
    while [ \$# -gt 0 ]; do
        [ "\$1" = --boot-json ] && printf '"%s"\\n' "\$args" > "\$2"
        shift
    done
fi
exit 0
FAKE
    chmod +x "$1"
}

# the fake's calls; a hook's temporary file ($T/tmp/tmp.*, the hooks run with TMPDIR=$T/tmp) as TMP
calls() { sed "s|$T/tmp/tmp\.[A-Za-z0-9]*|TMP|g" "$T/rewind.calls" 2> /dev/null; }

# busybox applets first on PATH, so scripts meant for the initramfs run with busybox's tools.
busybox_path() {
    local a bb
    if [ ! -d "$T/bb" ]; then
        bb=$(type -P busybox) || skip "busybox not installed"
        mkdir -p "$T/bb"
        for a in $("$bb" --list); do ln -s "$bb" "$T/bb/$a"; done
    fi
    echo "$T/bb"
}
