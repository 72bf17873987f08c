#!/usr/bin/env bash
# The reboot-to-rollback demo, in a qemu guest. Run as root (or with sudo); it installs what it
# needs. Here (2 shared cores, qemu without KVM): 2.5-3.5 minutes once rewind and the guest root
# are built, about 7 on the first run of a clone.
#
# A Debian guest as its installer leaves it: GRUB on its disk, /boot a plain partition, root on
# LVM, an initramfs made by initramfs-tools with stock LVM2; rewind installed in it as
# install.sh installs it, with its apt hook and its GRUB menu script.
# Boot 1: `apt-get install rwdemo` brings rwdemo 1, which works. rwdemo 2 is published;
# `apt-get upgrade` installs it: its command fails and it replaces the init the kernel starts
# (the bad upgrade). Before dpkg ran, rewind's apt hook took a snapshot set of root, described
# "upgrade rwdemo 1 -> 2"; `rewind diff SET` shows that upgrade. Nothing is flagged.
# Boot 2: GRUB's default entry: the broken init exits, the kernel panics (the machine no
# longer boots).
# Boot 3: at GRUB's menu, "Roll back with rewind", the upgrade's set is picked (the script
# types the keys on the serial console, as a person would): `rewind early` sets up the merge
# before root is mounted, so the system comes up in its old state at once; `rewind poll`
# finishes the merge and leaves the "rollback complete" notice for the next login. This script
# then shows what happened, step by step, from the run's own records, and ends with a verdict
# computed from them (never printed unconditionally).
#
# How it is put together: the boots are a VM scenario (tests/vm/scenarios/demo-story.sh); this
# script runs it as one of its steps, shows one section per record (story_sections) and makes
# one check per claim (verdict_checks).
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

scenario=demo-story
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

# console N ERE: the lines of boot N's console that match ERE (the escape sequences GRUB and
# the kernel write left out).
console() {
    local log=$run/boot$1.serial.log
    if [[ -f $log ]]; then
        tr -d '\r' <"$log" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g' | grep -aE "$2" | sed 's/^/    /' || true
    else
        echo "    (not recorded: $log is missing; the run stopped before it)"
    fi
}

story_sections() {
    set=$(cat "$state/set" 2>/dev/null || true)
    section "boot 1: apt installs rwdemo 1" \
        "apt's own output. The \"rewind:\" lines are rewind's apt hook: before dpkg changed anything it took a snapshot set of root (LVM keeps root's old blocks in the set as they change), named and described by the transaction; after dpkg it recorded how apt ended. Then dpkg's version and the command:" \
        install.out version-before run-before
    section "boot 1: rwdemo 2 is published; apt upgrades to it" \
        "The hook took another set, described by the upgrade (both versions):" \
        upgrade.out
    section "boot 1: the upgrade broke rwdemo, and the machine's init" \
        "dpkg's version now, and the command's output; rwdemo 2 also replaced /usr/local/sbin/vm-init, the program this machine's kernel starts first (its init):" \
        version-upgraded run-upgraded
    section "boot 1: the rollback points rewind holds, and what changed since the newest" \
        "\`rewind list\` (KIND auto: taken by the hook; MEMBERS: the LVs in the set, here root), then \`rewind diff\`: the package database inside the set's snapshot against the running system's, the way to choose a set:" \
        list diff
    printf '\n== boot 2: the machine no longer boots\n'
    echo "GRUB started its default entry; the kernel's console: rwdemo 2's init printed its error and exited, so the kernel panicked (the demo stops the guest there):" |
        fold -s -w 100 | sed 's/ *$//'
    console 2 'rwdemo 2: init|Kernel panic|Attempted to kill init'
    printf '\n== boot 3: at the boot menu, "Roll back with rewind"\n'
    echo "GRUB's menu has rewind's submenu, one entry per set (time, name, description), newest first, written by rewind to /boot/grub/rewind.cfg:" |
        fold -s -w 100 | sed 's/ *$//'
    sed -n "s/^menuentry '\(.*\)' --id .*/    \1/p" "$state/rewind.cfg" 2>/dev/null || true
    echo "The keys this script typed on the serial console, as a person at the console would (down to the submenu, open it, take the upgrade's set), and the kernel command line GRUB then booted:" |
        fold -s -w 100 | sed 's/ *$//'
    sed 's/^/    /' "$run/boot3.serial.log.keys" 2>/dev/null || echo "    (no keys recorded)"
    sed 's/^/    /' "$state/cmdline-3" 2>/dev/null || echo "    (not recorded: $state/cmdline-3)"
    section "boot 3: what \`rewind early\` said on the console, before root was mounted" \
        "rewind's lines in the kernel log (seconds since power-on): it found rd.rewind=SET and set up the merge, so root shows the old data from the first moment." \
        rewind-early.log
    section "boot 3: device-mapper tables as root came up" \
        "The kernel's device tables (\`dmsetup table\`: name: start length target arguments, in 512-byte sectors). While the merge runs $dm_origin is a snapshot-merge target, which reads the snapshot's old data at once while the kernel copies it back into place. No snapshot-merge and no device of the upgrade's set here means stock LVM2 in the initramfs, which saw the merge rewind had started, already finished it; $dm_origin is a snapshot-origin (its own blocks in $dm_origin-real) because the install's older set still keeps root's old blocks in its -cow store." \
        dm-table-start
    section "boot 3: \`rewind poll\`, in the booted system" \
        "The poller finished the merge (or found stock LVM2 had: \"no active merge\"), so the set is gone from LVM's metadata, left the notice, and rewrote the boot menu (the set's kernel copy in /boot goes with it):" \
        poll.out
    section "boot 3: the notice at the next login, and \`rewind status\`" \
        "The poller left this note in /run/motd.d/ (shown by pam_motd at login); \`rewind status\` says the same:" \
        motd status
    section "boot 3: rwdemo" \
        "dpkg's version, and the command:" \
        version-after run-after
    section "boot 3: the sets left" \
        "The install's set is still there (a rollback to a newer set keeps the older ones); the demo deletes it, then stock lvs lists root alone and root's table is one plain linear range of the disk:" \
        list-after delete.out lvs-end dm-table-final
    printf '\n== rwdemo and the init: before the upgrade, after it, and after the rollback\n'
    echo "dpkg's version, the command's exit status and whether the init is the original at each point; a rollback makes the last row equal to the first." |
        fold -s -w 100 | sed 's/ *$//'
    local stage init
    printf '    %-16s %-8s %-22s %s\n' "" "dpkg" "rwdemo's exit status" "init"
    for stage in before:before upgraded:"after upgrade" after:"after rollback"; do
        init=-
        if [[ -f $state/init-${stage%%:*}.sha256 && -f $state/init-before.sha256 ]]; then
            if cmp -s "$state/init-${stage%%:*}.sha256" "$state/init-before.sha256"; then
                init=original
            else
                init="replaced (broken)"
            fi
        fi
        printf '    %-16s %-8s %-22s %s\n' "${stage#*:}" \
            "$(cut -d' ' -f1 "$state/version-${stage%%:*}" 2>/dev/null || echo -)" \
            "$(sed -n 's/^(exit status \(.*\))$/\1/p' "$state/run-${stage%%:*}" 2>/dev/null || echo -)" "$init"
    done
}

# The verdict's checks, from the records: each prints "ok|FAIL<TAB>what was found".
verdict_checks() {
    local t
    ok() { printf 'ok\t%s\n' "$1"; }
    bad() { printf 'FAIL\t%s\n' "$1"; }
    if ((scenario_rc == 0)); then
        ok "the scenario's own checks passed (stock lvs tags, vgck and vgcfgbackup on the disk image; $run/driver.log)"
    else
        bad "the scenario failed (exit $scenario_rc): see $run/driver.log"
    fi
    if [[ -n $set ]] && grep -q "rewind: snapshot set $set taken (.*upgrade rwdemo 1 -> 2)" "$state/upgrade.out" 2>/dev/null; then
        ok "apt's hook took set $set before dpkg ran, described \"upgrade rwdemo 1 -> 2\""
    else
        bad "apt's hook took no set for the upgrade ($state/upgrade.out)"
    fi
    if grep -qE '^ *upgraded +rwdemo +1 -> 2$' "$state/diff" 2>/dev/null && [[ $(grep -c '^ ' "$state/diff") == 1 ]]; then
        ok "rewind diff showed exactly the upgrade"
    else
        bad "rewind diff did not show exactly the upgrade ($state/diff)"
    fi
    if grep -q '^2 ' "$state/version-upgraded" 2>/dev/null && grep -qx '(exit status 1)' "$state/run-upgraded" 2>/dev/null &&
        ! cmp -s "$state/init-before.sha256" "$state/init-upgraded.sha256"; then
        ok "the upgrade installed rwdemo 2: its command failed and it replaced the init"
    else
        bad "the upgrade did not leave a broken rwdemo 2 ($state/version-upgraded, run-upgraded, init-upgraded.sha256)"
    fi
    if [[ $(cat "$run/boot2.result" 2>/dev/null) == killed ]] && grep -aq 'Attempted to kill init' "$run/boot2.serial.log"; then
        ok "the next boot failed: the kernel panicked on the broken init"
    else
        bad "boot 2 did not fail as the broken init should make it ($run/boot2.serial.log)"
    fi
    if [[ -n $set ]] && grep -q 'pressing enter' "$run/boot3.serial.log.keys" 2>/dev/null &&
        grep -q "rd.rewind=$set\( \|$\)" "$state/cmdline-3" 2>/dev/null; then
        ok "the rollback was picked in GRUB's menu: GRUB booted with rd.rewind=$set"
    else
        bad "the boot menu's entry was not picked, or GRUB did not boot with rd.rewind=SET ($state/cmdline-3)"
    fi
    if [[ -s $state/dm-table-end ]] && ! grep -qE -e "snapshot-merge|^$dm_origin\.${set//-/--}" "$state/dm-table-end"; then
        ok "after rewind poll, no merge runs and no device of set $set is left"
    else
        bad "after rewind poll, a merge or a device of set ${set:-SET} is left ($state/dm-table-end)"
    fi
    t=$(awk -v d="$dm_origin:" '$1 == d { print $4 }' "$state/dm-table-final" 2>/dev/null) || true
    if [[ $t == linear ]] && ! grep -qE -e '-(real|cow):' "$state/dm-table-final"; then
        ok "with the install's set deleted, $dm_origin is linear and no snapshot device is left"
    else
        bad "at the end, $dm_origin is ${t:-missing}, or snapshot devices are left ($state/dm-table-final)"
    fi
    if [[ -n $set ]] && grep -q "rollback complete: $origin is back at snapshot set $set" "$state/motd" 2>/dev/null &&
        grep -q "$set" "$state/status" 2>/dev/null; then
        ok "the login notice and rewind status say the rollback is complete"
    else
        bad "no \"rollback complete\" notice ($state/motd, $state/status)"
    fi
    if grep -q '^1 installed$' "$state/version-after" 2>/dev/null && grep -qx '(exit status 0)' "$state/run-after" 2>/dev/null &&
        cmp -s "$state/init-before.sha256" "$state/init-after.sha256"; then
        ok "after the rollback: dpkg says rwdemo 1, its command works, the init is the original"
    else
        bad "after the rollback: rwdemo is not 1 and working, or the init is not the original ($state/version-after, run-after)"
    fi
    if [[ $(awk 'NR > 1 { print $1 }' "$state/lvs-end" 2>/dev/null) == "${origin#*/}" ]]; then
        ok "stock lvs lists ${origin#*/} alone at the end"
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
        echo "VERDICT: rolled back $origin to set $set, picked at the boot menu after the upgrade broke the boot: rwdemo 1 and the machine work again, and $origin is a plain volume"
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

echo "rewind demo: an apt upgrade breaks a machine so it no longer boots; rewind rolls its LVM root back from the boot menu (a qemu guest)"
echo "(2.5-3.5 minutes; about 7 the first time, which builds rewind and a Debian guest root)"

step 1 "the host packages the demo needs (apt; nothing to do when they are installed)"
REWIND_DEPS_ANSIBLE=0 bash tests/deps.sh

step 2 "building rewind (cargo build --release; a minute or two the first time)"
# cargo draws its own progress bar on a terminal; in a log it would only add lines.
if pg_tty; then
    cargo build --release
else
    cargo build --release --quiet
fi

step 3 "three boots in a qemu guest: the upgrade, the failed boot, the rollback from the boot menu (scenario $scenario; about 3 minutes, 5 the first time, which builds the guest root)"
scenario_rc=0
VM_SELFTEST_BOOT=0 VM_STEP_LINES=1 bash tests/vm/run.sh "$scenario" || scenario_rc=$?

step 4 "what happened, from the run's own records"
story_sections
printf "\nAll of this run's logs: %s\n" "$run"
echo "    driver.log: the harness; boot1.serial.log ... boot3.serial.log: the guest's console;"
echo "    state/: what the guest recorded (the files shown above)"
verdict
