#!/usr/bin/env bash
# The reboot-to-rollback demo, in a qemu guest. Run as root (or with sudo); it installs what it
# needs. Here (2 shared cores, qemu without KVM): 1-2.5 minutes once rewind and the guest root
# are built (53 s to 2 min 8 s measured, by the machine's load), about 6 on the first run of a
# clone.
#
# A Debian guest boots from an LVM root through an initramfs that holds rewind and no LVM2.
# Boot 1: a snapshot of root is taken, 30 MiB of data are overwritten (the "bad upgrade"), and
# `rewind rollback vg0/pre` flags the merge for the next boot (root is in use).
# Boot 2: `rewind early` sets up the merge before root is mounted, so the system comes up in
# its old state at once; `rewind poll` waits for the kernel to finish copying, drops the
# snapshot from LVM's metadata and reloads root as a plain volume. This script then shows what
# happened, step by step, from the run's own records, and ends with a verdict computed from
# them (never printed unconditionally).
#
# How it is put together, for the parts of the story still to come: the boots are a VM
# scenario (tests/vm/scenarios/reboot-rollback.sh, its story in tests/vm/lib/rollback-story.sh);
# this script runs it as one of its steps (at the end), shows one section per record
# (story_sections) and makes one check per claim (verdict_checks). The bad change as a real
# package upgrade taken through the package-manager hook (issue #15), the rollback chosen at
# the boot menu (issue #16) and the poller's "rollback complete" notice come in as a scenario
# that records them, a section each here, and a check each for the verdict.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd -P)

if [[ $(id -u) != 0 ]]; then
    echo "demo: run as root, or with sudo (it builds disk images and boots qemu)" >&2
    exit 2
fi
# shellcheck source=tests/progress.sh
. tests/progress.sh
pg_setup

scenario=reboot-rollback
run=$repo/target/vm/run/$scenario
state=$run/state
# The story's names (tests/vm/lib/rollback-story.sh): the root LV and its snapshot.
origin=vg0/root snap=vg0/pre
dm_origin=${origin/\//-} dm_snap=${snap/\//-}
# section TITLE EXPLANATION FILE...: one record of the run, with a line saying what it is.
section() {
    local title=$1 explain=$2 f
    shift 2
    printf '\n== %s\n' "$title"
    printf '%s\n' "$explain" | fold -s -w 100 | sed 's/ *$//'
    for f in "$@"; do
        if [[ -f $state/$f ]]; then
            sed 's/^/    /' "$state/$f"
        else
            echo "    (not recorded: $state/$f is missing; the run stopped before it)"
        fi
    done
}

story_sections() {
    section "boot 1: \`rewind rollback $snap\`, after the bad upgrade" \
        "Boot 1 took a snapshot $snap of root (LVM keeps root's old blocks in it as they change), then the \"bad upgrade\" overwrote the data. rewind checked the snapshot and wrote a merge flag into LVM's metadata; root was in use, so the merge waits for the next boot. It said:" \
        rollback.out
    section "boot 1: stock LVM2 reads the flag rewind wrote" \
        "LVM's own listing (\`lvs -a -o lv_name,lv_merging\`): \"merging\" on both means LVM itself would merge ${snap#*/} back into ${origin#*/} at root's next activation; the brackets mark a hidden volume (LVM hides a snapshot once it is flagged to merge)." \
        lvs-flagged
    section "boot 2: what \`rewind early\` said on the console, before root was mounted" \
        "rewind's lines in the kernel log (seconds since power-on): it found the flag and set up the merge, so root shows the old data from the first moment." \
        rewind-early.log
    section "boot 2: device-mapper tables as root came up (the layout LVM itself uses for a merge)" \
        "The kernel's device tables (\`dmsetup table\`: name: start length target arguments, in 512-byte sectors). $dm_origin is a snapshot-merge target: it reads the snapshot's old data at once while the kernel copies it back into place; $dm_origin-real is root's own blocks and $dm_snap-cow the snapshot's store of old blocks (both a linear range of the disk); $dm_snap is an \"error\" target because a merging snapshot can no longer be used on its own (LVM sets it up the same way)." \
        dm-table-start
    section "boot 2: \`rewind poll\`, in the booted system" \
        "The poller waited for the kernel to finish the copy, removed the snapshot from LVM's metadata, then replaced the merge tables with a plain one and removed the snapshot's devices:" \
        poll.out
    section "boot 2: afterwards: a plain root, no snapshot" \
        "One linear table for root (a plain range of the disk), and stock lvs lists root alone (attributes -wi-ao----: a writable volume, active and open):" \
        dm-table-end lvs-end
    printf '\n== the data: before the upgrade, after it, and as seen in boot 2\n'
    echo "sha256 of each file (first 12 hex digits): as written before the upgrade, after the bad upgrade in boot 1, and as boot 2 read it; a rollback makes the last column equal to the first." |
        fold -s -w 100 | sed 's/ *$//'
    if [[ -f $state/before.sha256 && -f $state/after.sha256 && -f $state/boot2.sha256 ]]; then
        join -1 2 -2 2 <(sort -k2 "$state/before.sha256") <(sort -k2 "$state/after.sha256") |
            join -a 1 -1 1 -2 2 - <(sort -k2 "$state/boot2.sha256") |
            awk 'BEGIN { printf "    %-8s %-14s %-14s %-14s\n", "file", "before", "after upgrade", "boot 2" }
                 { printf "    %-8s %-14s %-14s %-14s\n", $1, substr($2, 1, 12), substr($3, 1, 12), substr($4 "-", 1, 12) }'
    else
        echo "    (not recorded: the run stopped before the checksums were taken)"
    fi
}

# The verdict's checks, from the records: each prints "ok|FAIL<TAB>what was found".
verdict_checks() {
    local n changed same t
    ok() { printf 'ok\t%s\n' "$1"; }
    bad() { printf 'FAIL\t%s\n' "$1"; }
    if ((scenario_rc == 0)); then
        ok "the scenario's own checks passed (stock vgck, lvs and vgcfgbackup on the disk image; $run/driver.log)"
    else
        bad "the scenario failed (exit $scenario_rc): see $run/driver.log"
    fi
    n=$(wc -l <"$state/before.sha256" 2>/dev/null) || n=0
    changed=$(join -1 2 -2 2 <(sort -k2 "$state/before.sha256" 2>/dev/null) \
        <(sort -k2 "$state/after.sha256" 2>/dev/null) | awk '$2 != $3' | wc -l)
    same=$(join -1 2 -2 2 <(sort -k2 "$state/before.sha256" 2>/dev/null) \
        <(sort -k2 "$state/boot2.sha256" 2>/dev/null) | awk '$2 == $3' | wc -l)
    if ((n > 0 && changed == n)); then
        ok "the bad upgrade changed all $n files"
    else
        bad "the bad upgrade changed $changed of $n files"
    fi
    if ((n > 0 && same == n)); then
        ok "boot 2 read all $n files as they were before the upgrade"
    else
        bad "boot 2 read $same of $n files as they were before the upgrade"
    fi
    t=$(awk -v d="$dm_origin:" '$1 == d { print $4 }' "$state/dm-table-start" 2>/dev/null) || true
    if [[ $t == snapshot-merge ]]; then
        ok "root came up through a snapshot-merge table: the rollback was set up before root was mounted"
    else
        bad "root came up through a ${t:-missing} table, not snapshot-merge"
    fi
    t=$(awk -v d="$dm_origin:" '$1 == d { print $4 }' "$state/dm-table-end" 2>/dev/null) || true
    if [[ $t == linear ]] && ! grep -qE "^($dm_snap|$dm_snap-cow|$dm_origin-real):" "$state/dm-table-end"; then
        ok "after rewind poll, $dm_origin is linear and no snapshot device is left"
    else
        bad "after rewind poll, $dm_origin is ${t:-missing}, or snapshot devices are left ($state/dm-table-end)"
    fi
    t=$(awk '{ print $1 }' "$state/lvs-end" 2>/dev/null) || true
    if [[ $t == "${origin#*/}" ]]; then
        ok "stock lvs lists ${origin#*/} alone: $snap is gone from LVM's metadata"
    else
        bad "stock lvs does not list ${origin#*/} alone ($state/lvs-end)"
    fi
}

verdict() {
    local checks
    checks=$(verdict_checks)
    printf '\n== the verdict, from these checks of the records\n'
    awk -F '\t' '{ printf "    %-4s %s\n", $1, $2 }' <<<"$checks"
    echo
    if ! grep -q '^FAIL' <<<"$checks"; then
        echo "VERDICT: rolled back $origin to $snap: data as before the upgrade, and $origin is a plain volume again"
        return 0
    fi
    # The first failed claim about the data or the devices says most; else the scenario's own.
    local why
    why=$(grep '^FAIL' <<<"$checks" | grep -v 'the scenario failed' | head -n 1 | cut -f2) || true
    [[ -n $why ]] || why=$(grep -m 1 '^FAIL' <<<"$checks" | cut -f2)
    echo "VERDICT: NOT rolled back: $why ($(grep -c '^FAIL' <<<"$checks") of $(wc -l <<<"$checks") checks failed; logs: $run)"
    return 1
}

# step N TEXT: the demo's next step starts.
steps=4
step() {
    printf '\n'
    pg_line "step $1 of $steps: $2"
}

echo "rewind demo: the reboot-to-rollback of an LVM root, in a qemu guest"
echo "(1-2.5 minutes; about 6 the first time, which builds rewind and a Debian guest root)"

step 1 "the host packages the demo needs (apt; nothing to do when they are installed)"
bash tests/deps.sh

step 2 "building rewind (cargo build --release; a minute or two the first time)"
# cargo draws its own progress bar on a terminal; in a log it would only add lines.
if pg_tty; then
    cargo build --release
else
    cargo build --release --quiet
fi

step 3 "the two boots in a qemu guest (scenario $scenario; 1-2 minutes, 3-4 the first time)"
scenario_rc=0
VM_SELFTEST_BOOT=0 VM_STEP_LINES=1 bash tests/vm/run.sh "$scenario" || scenario_rc=$?

step 4 "what happened, from the run's own records"
story_sections
printf "\nAll of this run's logs: %s\n" "$run"
echo "    driver.log: the harness; boot1.serial.log, boot2.serial.log: the guest's console;"
echo "    state/: what the guest recorded (the files shown above)"
verdict
