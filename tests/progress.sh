# shellcheck shell=bash
# Progress for the long commands (tests/run.sh, tests/vm/run.sh, tests/fuzz.sh,
# vm-images/demo.sh): what runs now, how far, for how long. Sourced; defines functions only.
#
# Two forms, chosen once by the first script of a run and handed to the scripts it starts
# through the environment:
#   terminal  (stderr is a terminal): a status line redrawn in place every second, written
#             straight to that terminal ($REWIND_PROGRESS_TTY), so that it never reaches a log
#             a script keeps of its output and survives a `| tee`
#   plain     (stderr is a pipe or a file, as in CI): no redraws and no control sequences;
#             while something runs, one "still running" line every $REWIND_HEARTBEAT seconds
#             (default 60), so that a slow run can be told from a hung one in a log
# REWIND_PROGRESS=plain forces the plain form.
#
# No progress bar is drawn here: what these commands wait for (a boot, a scenario, a fuzz
# target) has no measurable fraction done, only "N of M" and a time. cargo draws its own bar
# while it compiles, in the terminal form (the scripts leave out --quiet there).

# pg_setup: picks the form (once per run; a child inherits the parent's choice).
pg_setup() {
    if [[ -z ${REWIND_PROGRESS:-} ]]; then
        REWIND_PROGRESS='plain'
        if [[ -t 2 && ${TERM:-} != dumb ]]; then
            REWIND_PROGRESS_TTY=$(readlink /proc/self/fd/2)
            [[ -w $REWIND_PROGRESS_TTY ]] && REWIND_PROGRESS='tty'
        fi
    fi
    if [[ $REWIND_PROGRESS == tty && ! -w ${REWIND_PROGRESS_TTY:-} ]]; then
        REWIND_PROGRESS='plain'
    fi
    [[ $REWIND_PROGRESS == tty ]] || REWIND_PROGRESS_TTY=''
    # The start of the whole run (epoch milliseconds), for "[m:ss]" stamps that agree across
    # the scripts of one run.
    REWIND_PROGRESS_T0=${REWIND_PROGRESS_T0:-$(date +%s%3N)}
    export REWIND_PROGRESS REWIND_PROGRESS_TTY REWIND_PROGRESS_T0
}

pg_tty() { [[ ${REWIND_PROGRESS:-plain} == tty ]]; }

# pg_fmt SECONDS: m:ss, or h:mm:ss from an hour on.
pg_fmt() {
    local s=$1
    if ((s >= 3600)); then
        printf '%d:%02d:%02d' $((s / 3600)) $((s % 3600 / 60)) $((s % 60))
    else
        printf '%d:%02d' $((s / 60)) $((s % 60))
    fi
}

# pg_since EPOCH: m:ss since EPOCH.
pg_since() { pg_fmt $(($(date +%s) - $1)); }

# pg_stamp: "[m:ss]", the time since the run started.
pg_stamp() { printf '[%s]' "$(pg_fmt $((($(date +%s%3N) - ${REWIND_PROGRESS_T0:-$(date +%s%3N)}) / 1000)))"; }

# pg_line TEXT...: a permanent line on stderr, stamped (clears a status line first).
pg_line() {
    pg_clear
    printf '%s %s\n' "$(pg_stamp)" "$*" >&2
}

# pg_status TEXT: (terminal form) redraws the status line, cut to the terminal's width.
pg_status() {
    pg_tty || return 0
    local cols
    cols=$(stty size <"$REWIND_PROGRESS_TTY" 2>/dev/null | cut -d' ' -f2)
    # A terminal that does not say its width (0): assume a wide one.
    [[ $cols =~ ^[0-9]+$ ]] && ((cols > 20)) || cols=${COLUMNS:-100}
    printf '\r\033[K%s' "${1:0:cols-1}" >"$REWIND_PROGRESS_TTY"
    PG_STATUS_SHOWN=1
}

# pg_clear: (terminal form) erases the status line, if one is shown.
pg_clear() {
    if pg_tty && [[ ${PG_STATUS_SHOWN:-0} == 1 ]]; then
        printf '\r\033[K' >"$REWIND_PROGRESS_TTY"
    fi
    PG_STATUS_SHOWN=0
}

# pg_last_line FILE: the last non-blank line of FILE, printable characters only.
pg_last_line() {
    [[ -f $1 ]] || return 0
    tail -c 4096 "$1" | tr '\r' '\n' | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g' | tr -cd '[:print:]\n' |
        grep -v '^[[:space:]]*$' | tail -n 1 | sed 's/^[[:space:]]*//' || true
}

# pg_watch_start LABEL [STATUS_FUNCTION]: while the caller runs something in the foreground
# (its output sent to a file), a ticker in the background says what runs and for how long:
# terminal form, "[m:ss] LABEL (m:ss)STATUS" redrawn each second; plain form, "LABEL: still
# running after m:ss STATUS" every $REWIND_HEARTBEAT seconds. STATUS_FUNCTION, if given, is
# called each second in the ticker's process: it sets PG_STATUS (shown after the time; start it
# with " | ") and may print permanent lines with pg_line; it is called once more at the end
# with the argument "last". pg_watch_stop ends the ticker.
pg_watch_start() {
    pg_watch_stop
    local label=$1 status_fn=${2:-} parent=$BASHPID
    PG_WATCH_STOP=$(mktemp -u "${TMPDIR:-/tmp}/rewind-progress.XXXXXX")
    (
        set +e
        beat=${REWIND_HEARTBEAT:-60}
        t0=$(date +%s)
        next=$((t0 + beat))
        while [[ ! -e $PG_WATCH_STOP ]] && kill -0 "$parent" 2>/dev/null; do
            now=$(date +%s)
            PG_STATUS=''
            [[ -z $status_fn ]] || "$status_fn"
            if pg_tty; then
                pg_status "$(pg_stamp) $label ($(pg_fmt $((now - t0))))$PG_STATUS"
            elif ((now >= next)); then
                printf '%s %s: still running after %s%s\n' "$(pg_stamp)" "$label" \
                    "$(pg_fmt $((now - t0)))" "$PG_STATUS" >&2
                next=$((next + beat))
            fi
            sleep 1
        done
        [[ -z $status_fn ]] || "$status_fn" last
        pg_clear
    ) &
    PG_WATCH_PID=$!
}

# pg_watch_stop: ends the ticker pg_watch_start started (it finishes its second, at most).
pg_watch_stop() {
    [[ -n ${PG_WATCH_PID:-} ]] || return 0
    touch "$PG_WATCH_STOP"
    wait "$PG_WATCH_PID" 2>/dev/null || true
    rm -f "$PG_WATCH_STOP"
    PG_WATCH_PID=''
}

# pg_run LABEL COMMAND...: runs COMMAND under a ticker; returns COMMAND's status. COMMAND's
# output should go to a file: in the terminal form it would land in the status line.
pg_run() {
    local label=$1 rc=0
    shift
    pg_watch_start "$label"
    "$@" || rc=$?
    pg_watch_stop
    return "$rc"
}
