# shellcheck shell=bash
# The snapshot sets issue's cross-LV writer (guest side): appends 1, 2, ... to FILE_A, then the
# same number to FILE_B, each synced, until cross_writer_stop. A set of both LVs taken meanwhile
# is one instant when, read from the set, B's last number is A's or one less.

# cross_writer_start FILE_A FILE_B: starts the writer (after A's last number, if any) and lets
# it run for 3 s.
cross_writer_start() {
    local a=$1 b=$2
    rm -f /run/cross-writer.stop
    (
        n=$(($(tail -n1 "$a" 2>/dev/null || echo 0) + 1))
        while [[ ! -e /run/cross-writer.stop ]]; do
            echo "$n" >>"$a"
            sync "$a"
            echo "$n" >>"$b"
            sync "$b"
            n=$((n + 1))
        done
    ) &
    CROSS_WRITER=$!
    sleep 3
}

# cross_writer_stop: 2 s more, then the writer ends.
cross_writer_stop() {
    sleep 2
    touch /run/cross-writer.stop
    wait "$CROSS_WRITER"
}
