#!/usr/bin/env bash
# The reboot-to-rollback demo, in a qemu guest. Run as root (or with sudo); it installs what it
# needs. Here (2 shared cores, qemu without KVM): 1-2.5 minutes once rewind and the guest root
# are built, about 6 on the first run of a clone.
#
# A Debian guest boots from an LVM root through an initramfs that holds rewind and no LVM2;
# rewind is installed in it as install.sh installs it, with its apt hook.
# Boot 1: rwdemo 1 is installed and works. `apt-get upgrade` brings rwdemo 2, whose command
# fails (the bad upgrade); before dpkg ran, rewind's apt hook took a snapshot set of root,
# described "upgrade rwdemo 1 -> 2". `rewind rollback SET` flags the set's merge for the next
# boot (root is in use).
# Boot 2: `rewind early` sets up the merge before root is mounted, so the system comes up in
# its old state at once; `rewind poll` waits for the kernel to finish copying, drops the
# snapshot from LVM's metadata, reloads root as a plain volume and leaves the "rollback
# complete" notice for the next login. This script then shows what happened, step by step,
# from the run's own records, and ends with a verdict computed from them (never printed
# unconditionally).
#
# How it is put together: the boots are a VM scenario (tests/vm/scenarios/demo-apt.sh); this
# script runs it as one of its steps, shows one section per record (story_sections) and makes
# one check per claim (verdict_checks). The rollback chosen at the boot menu (issue #16) comes
# in as the scenario's DEMO_ROLLBACK (the place is marked there), a section here and a check.
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

scenario=demo-apt
run=$repo/target/vm/run/$scenario
state=$run/state
# The scenario's names: the root LV; the set is the one apt's hook named ($state/set, read
# once the run has written it).
origin=vg0/root
dm_origin=${origin/\//-}
set=''
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
    set=$(cat "$state/set" 2>/dev/null || true)
    section "boot 1: the machine before the upgrade" \
        "rwdemo 1 is installed (dpkg's version and state), and its command works:" \
        version-before run-before
    section "boot 1: the upgrade, through apt" \
        "apt's own output. The \"rewind:\" lines are rewind's apt hook: before dpkg changed anything it took a snapshot set of root (LVM keeps root's old blocks in the set as they change), named and described by the upgrade; after dpkg it recorded how apt ended." \
        upgrade.out
    section "boot 1: the upgrade broke rwdemo" \
        "dpkg's version now, and the command's output:" \
        version-upgraded run-upgraded
    section "boot 1: the rollback points rewind holds" \
        "\`rewind list\`: the set the hook took (KIND auto; MEMBERS: the LVs in it, here root):" \
        list
    section "boot 1: \`rewind rollback ${set:-SET}\`" \
        "rewind checked the set and wrote a merge flag into LVM's metadata; root is in use, so the merge waits for the next boot. Stock LVM's own listing (\`lvs\`) reads the flag: \"merging\" on both means LVM itself would merge the snapshot back into root at root's next activation; the brackets mark a hidden volume (LVM hides a snapshot once it is flagged to merge)." \
        rollback.out lvs-flagged
    section "boot 2: what \`rewind early\` said on the console, before root was mounted" \
        "rewind's lines in the kernel log (seconds since power-on): it found the flag and set up the merge, so root shows the old data from the first moment." \
        rewind-early.log
    section "boot 2: device-mapper tables as root came up (the layout LVM itself uses for a merge)" \
        "The kernel's device tables (\`dmsetup table\`: name: start length target arguments, in 512-byte sectors). $dm_origin is a snapshot-merge target: it reads the snapshot's old data at once while the kernel copies it back into place; $dm_origin-real is root's own blocks and the -cow device the snapshot's store of old blocks (both a linear range of the disk); the snapshot's own device is an \"error\" target because a merging snapshot can no longer be used on its own (LVM sets it up the same way)." \
        dm-table-start
    section "boot 2: \`rewind poll\`, in the booted system" \
        "The poller waited for the kernel to finish the copy, removed the snapshot from LVM's metadata, then replaced the merge tables with a plain one and removed the snapshot's devices:" \
        poll.out
    section "boot 2: afterwards: a plain root, no snapshot" \
        "One linear table for root (a plain range of the disk), and stock lvs lists root alone (attributes -wi-ao----: a writable volume, active and open):" \
        dm-table-end lvs-end
    section "boot 2: the notice at the next login, and \`rewind status\`" \
        "The poller left this note in /run/motd.d/ (shown by pam_motd at login); \`rewind status\` says the same:" \
        motd status
    section "boot 2: rwdemo" \
        "dpkg's version, and the command:" \
        version-after run-after
    printf '\n== rwdemo: before the upgrade, after it, and in boot 2\n'
    echo "dpkg's version and the command's exit status at each point; a rollback makes the last column equal to the first." |
        fold -s -w 100 | sed 's/ *$//'
    local stage
    printf '    %-16s %-14s %s\n' "" "dpkg" "rwdemo's exit status"
    for stage in before:before upgraded:"after upgrade" after:"boot 2"; do
        printf '    %-16s %-14s %s\n' "${stage#*:}" \
            "$(cut -d' ' -f1 "$state/version-${stage%%:*}" 2>/dev/null || echo -)" \
            "$(sed -n 's/^(exit status \(.*\))$/\1/p' "$state/run-${stage%%:*}" 2>/dev/null || echo -)"
    done
}

# The verdict's checks, from the records: each prints "ok|FAIL<TAB>what was found".
verdict_checks() {
    local t
    ok() { printf 'ok\t%s\n' "$1"; }
    bad() { printf 'FAIL\t%s\n' "$1"; }
    if ((scenario_rc == 0)); then
        ok "the scenario's own checks passed (stock vgck, lvs and vgcfgbackup on the disk image; $run/driver.log)"
    else
        bad "the scenario failed (exit $scenario_rc): see $run/driver.log"
    fi
    if [[ -n $set ]] && grep -q "rewind: snapshot set $set taken" "$state/upgrade.out" 2>/dev/null; then
        ok "apt's hook took set $set before dpkg ran"
    else
        bad "apt's hook took no set for the upgrade ($state/upgrade.out)"
    fi
    if grep -q '^2 ' "$state/version-upgraded" 2>/dev/null && grep -qx '(exit status 1)' "$state/run-upgraded" 2>/dev/null; then
        ok "the upgrade installed rwdemo 2, and its command failed"
    else
        bad "the upgrade did not leave a broken rwdemo 2 ($state/version-upgraded, run-upgraded)"
    fi
    t=$(awk -v d="$dm_origin:" '$1 == d { print $4 }' "$state/dm-table-start" 2>/dev/null) || true
    if [[ $t == snapshot-merge ]]; then
        ok "root came up through a snapshot-merge table: the rollback was set up before root was mounted"
    else
        bad "root came up through a ${t:-missing} table, not snapshot-merge"
    fi
    t=$(awk -v d="$dm_origin:" '$1 == d { print $4 }' "$state/dm-table-end" 2>/dev/null) || true
    if [[ $t == linear ]] && ! grep -qE -e '-(real|cow):' "$state/dm-table-end"; then
        ok "after rewind poll, $dm_origin is linear and no snapshot device is left"
    else
        bad "after rewind poll, $dm_origin is ${t:-missing}, or snapshot devices are left ($state/dm-table-end)"
    fi
    if [[ $(awk 'NR > 1 { print $1 }' "$state/lvs-end" 2>/dev/null) == "${origin#*/}" ]]; then
        ok "stock lvs lists ${origin#*/} alone: the set's snapshot is gone from LVM's metadata"
    else
        bad "stock lvs does not list ${origin#*/} alone ($state/lvs-end)"
    fi
    if [[ -n $set ]] && grep -q "rollback complete: $origin is back at snapshot set $set" "$state/motd" 2>/dev/null; then
        ok "the login notice says the rollback is complete"
    else
        bad "no \"rollback complete\" notice ($state/motd)"
    fi
    if grep -q '^1 installed$' "$state/version-after" 2>/dev/null && grep -qx '(exit status 0)' "$state/run-after" 2>/dev/null; then
        ok "boot 2: dpkg says rwdemo 1, and its command works"
    else
        bad "boot 2: rwdemo is not 1 and working ($state/version-after, run-after)"
    fi
}

verdict() {
    local checks
    checks=$(verdict_checks)
    printf '\n== the verdict, from these checks of the records\n'
    awk -F '\t' '{ printf "    %-4s %s\n", $1, $2 }' <<<"$checks"
    echo
    if ! grep -q '^FAIL' <<<"$checks"; then
        echo "VERDICT: rolled back $origin to set $set, taken by apt's hook before the upgrade: rwdemo 1 works again, and $origin is a plain volume"
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

echo "rewind demo: a package upgrade breaks a machine; rewind rolls its LVM root back at the next boot (a qemu guest)"
echo "(1-2.5 minutes; about 6 the first time, which builds rewind and a Debian guest root)"

step 1 "the host packages the demo needs (apt; nothing to do when they are installed)"
REWIND_DEPS_ANSIBLE=0 bash tests/deps.sh

step 2 "building rewind (cargo build --release; a minute or two the first time)"
# cargo draws its own progress bar on a terminal; in a log it would only add lines.
if pg_tty; then
    cargo build --release
else
    cargo build --release --quiet
fi

step 3 "the two boots in a qemu guest: the upgrade, then the rollback (scenario $scenario; 1-2 minutes, 3-4 the first time)"
scenario_rc=0
VM_SELFTEST_BOOT=0 VM_STEP_LINES=1 bash tests/vm/run.sh "$scenario" || scenario_rc=$?

step 4 "what happened, from the run's own records"
story_sections
printf "\nAll of this run's logs: %s\n" "$run"
echo "    driver.log: the harness; boot1.serial.log, boot2.serial.log: the guest's console;"
echo "    state/: what the guest recorded (the files shown above)"
verdict
