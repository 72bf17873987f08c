# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Known data for a scenario: files f1..fN of 10 MiB, every line "TEXT: file I", and a file
# `marker` holding "TEXT". They are made on the host (seconds, against a minute of TCG) and put
# on the new disk; their checksums stay on the host ($VM_STATE/before.sha256) and never pass
# through the guest.

# known_sums DIR: the checksum list of the known files in DIR (host and guest).
known_sums() {
    (cd "$1" && sha256sum f* marker)
}

# known_data NAME GUEST_DIR COUNT TEXT (host, in host_prepare): makes the files in
# $WORK/NAME-data, records their checksums and adds them to the disk at GUEST_DIR.
known_data() {
    local data=$WORK/$1-data i
    mkdir -p "$data"
    for ((i = 1; i <= $3; i++)); do
        { yes "$4: file $i" || true; } | head -c 10485760 >"$data/f$i"
    done
    echo "$4" >"$data/marker"
    known_sums "$data" >"$VM_STATE/before.sha256"
    VM_DISK_ADD+=("$data:$2")
}
