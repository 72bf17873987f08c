# shellcheck shell=bash
# rewind-early (initramfs/rewind-early) and mkinitcpio's runtime hook, under busybox ash with
# busybox's tools, as in an initramfs; a fake rewind records how it was called.

# early_env CMDLINE: the environment rewind-early reads, all under $T
early_env() {
    fake_rewind "$T/bin/rewind"
    printf '%s\n' "$1" > "$T/cmdline"
    printf '#!/bin/sh\necho "$*" >> "%s/modprobe.calls"\n' "$T" > "$T/modprobe"
    chmod +x "$T/modprobe"
    export REWIND_MODPROBE=$T/modprobe REWIND_BIN=$T/bin/rewind REWIND_RUN=$T/run REWIND_CMDLINE=$T/cmdline \
        REWIND_KMSG=$T/kmsg REWIND_TIMEOUT=${REWIND_TIMEOUT:-5}
    local bb
    bb=$(busybox_path) || exit 77
    case :$PATH: in *:"$bb":*) ;; *) PATH=$bb:$PATH ;; esac
}

# early [DEVICE]: run the wrapper as udev or the initqueue would; bounded so a hang fails
early() {
    timeout 30 busybox ash "$REPO/initramfs/rewind-early" "$@"
}

test_early_runs_rewind_early_once() {
    early_env 'root=/dev/mapper/vg0-root rd.rewind=vg0/pre quiet'
    early; eq "exit status" 0 "$?"
    early; eq "second exit status" 0 "$?"
    eq "rewind called once, as 'rewind early'" "early" "$(calls)"
    eq "device-mapper modules loaded first" $'-q dm_mod\n-q dm_snapshot' "$(cat "$T/modprobe.calls")"
    check
}

test_early_disabled_by_rd_rewind_0() {
    local v
    for v in 0 no off false; do
        rm -rf "$T/run" "$T/rewind.calls"
        early_env "root=/dev/vda rd.rewind=vg0/pre rd.rewind=$v"
        early sda; eq "rd.rewind=$v: exit status" 0 "$?"
        eq "rd.rewind=$v: rewind not called" "" "$(calls)"
        [ -e "$T/modprobe.calls" ] && fail "rd.rewind=$v: modprobe called"
        [ -e "$T/run" ] && fail "rd.rewind=$v: $T/run created"
    done
    rm -rf "$T/run"
    early_env 'rd.rewind=0 rd.rewind.debug rd.rewind=vg0/pre'
    early sda
    eq "the last rd.rewind= wins" "early" "$(calls)"
    check
}

test_early_reruns_only_for_new_pvs() {
    early_env 'root=/dev/mapper/vg0-root'
    early sda
    early sda
    eq "same PV again: one run" "early" "$(calls)"
    early sdb
    eq "a new PV: a second run" $'early\nearly' "$(calls)"
    early
    eq "no device, nothing new: no run" $'early\nearly' "$(calls)"
    early ../etc
    eq "not a kernel name: ignored" $'early\nearly' "$(calls)"
    eq "marker lists the PVs" "sda sdb" "$(cat "$T/run/early.done")"
    [ -d "$T/run/lock" ] && fail "lock left behind"
    check
}

test_early_failing_rewind_does_not_fail() {
    early_env 'root=/dev/mapper/vg0-root'
    echo fail > "$T/rewind.mode"
    early sda; eq "exit status" 0 "$?"
    eq "rewind called" "early" "$(calls)"
    has "kmsg explains" '^<5>rewind: early: a volume asked for \(flagged, rd.rewind= or rd.lvm.lv=\) was not activated' "$(cat "$T/kmsg")"
    check
}

test_early_hanging_rewind_is_bounded() {
    REWIND_TIMEOUT=1 early_env 'root=/dev/mapper/vg0-root'
    echo hang > "$T/rewind.mode"
    local start=$SECONDS
    early sda; eq "exit status" 0 "$?"
    [ $((SECONDS - start)) -le 10 ] || fail "took $((SECONDS - start))s with REWIND_TIMEOUT=1"
    has "kmsg says it was stopped" '^<5>rewind: early: stopped after 1s' "$(cat "$T/kmsg")"
    check
}

test_early_missing_binary() {
    early_env 'root=/dev/mapper/vg0-root'
    export REWIND_BIN=$T/nowhere/rewind
    early sda; eq "exit status" 0 "$?"
    has "kmsg says so" 'rewind: .*nowhere/rewind missing' "$(cat "$T/kmsg")"
    check
}

test_early_serialises_parallel_runs() {
    early_env 'root=/dev/mapper/vg0-root'
    echo slow > "$T/rewind.mode"
    early sda & early sdb & early sdc &
    wait
    hasnt "no two rewinds at once" OVERLAP "$(calls)"
    has "ran at least once" early "$(calls)"
    eq "marker lists every PV" "sda sdb sdc" "$(cat "$T/run/early.done")"
    check
}

test_early_takes_over_a_stale_lock() {
    REWIND_LOCK_WAIT=1 early_env 'root=/dev/mapper/vg0-root'
    mkdir -p "$T/run/lock"
    early sda; eq "exit status" 0 "$?"
    eq "rewind called" "early" "$(calls)"
    has "kmsg says so" 'stale lock' "$(cat "$T/kmsg")"
    check
}

test_handoff_runs_rewind_handoff_bounded() {
    REWIND_TIMEOUT=1 early_env 'root=/dev/mapper/vg0-root'
    early --handoff; eq "exit status" 0 "$?"
    eq "rewind called as 'rewind handoff'" "handoff" "$(calls)"
    [ -e "$T/modprobe.calls" ] && fail "modprobe called"
    [ -e "$T/run/pv" ] && fail "--handoff taken for a PV"
    echo hang > "$T/rewind.mode"
    local start=$SECONDS
    early --handoff; eq "hung rewind: exit status" 0 "$?"
    [ $((SECONDS - start)) -le 10 ] || fail "took $((SECONDS - start))s with REWIND_TIMEOUT=1"
    has "kmsg says it was stopped" '^<5>rewind: handoff: stopped after 1s' "$(cat "$T/kmsg")"
    echo fail > "$T/rewind.mode"
    early --handoff; eq "failing rewind: exit status" 0 "$?"
    has "kmsg explains" '^<5>rewind: handoff: a step could not be made safe' "$(cat "$T/kmsg")"
    check
}

test_handoff_disabled_by_rd_rewind_0() {
    early_env 'root=/dev/mapper/vg0-root rd.rewind=0'
    early --handoff; eq "exit status" 0 "$?"
    eq "rewind not called" "" "$(calls)"
    check
}

# initramfs-tools' local-bottom script, run by busybox ash as initramfs-tools' init does.
test_itools_local_bottom_hands_off() {
    early_env 'root=/dev/mapper/vg0-root'
    local out
    out=$(REWIND_EARLY="$REPO/initramfs/rewind-early" timeout 30 busybox ash \
        "$REPO/initramfs-tools/scripts/local-bottom/rewind"; echo "rc=$?")
    eq "exits 0" "rc=0" "$out"
    eq "rewind handoff called" "handoff" "$(calls)"
    eq "prereqs: none" $'\nrc=0' "$(busybox ash "$REPO/initramfs-tools/scripts/local-bottom/rewind" prereqs; echo "rc=$?")"
    check
}

# mkinitcpio's runtime hook, sourced by busybox ash as mkinitcpio's init does.
run_hook_ash() {
    # shellcheck disable=SC2016 # expanded by ash
    REWIND_EARLY="$REPO/initramfs/rewind-early" timeout 30 busybox ash -c \
        '. "$1"; run_hook; echo "run_hook=$?"' ash "$REPO/mkinitcpio-hook/hooks/rewind"
}

test_mkinitcpio_run_hook() {
    early_env 'root=/dev/mapper/vg0-root rd.rewind=vg0/pre'
    eq "run_hook returns 0" "run_hook=0" "$(run_hook_ash)"
    eq "rewind early called" "early" "$(calls)"
    eq "again: nothing new, no second run" "run_hook=0" "$(run_hook_ash)"
    eq "still one call" "early" "$(calls)"
    check
}

test_mkinitcpio_run_hook_after_udev_runs() {
    early_env 'root=/dev/mapper/vg0-root'
    early sda # what 63-rewind.rules did during the udev hook
    run_hook_ash > /dev/null
    eq "run_hook adds no run" "early" "$(calls)"
    check
}

test_mkinitcpio_run_hook_never_fails() {
    local mode
    for mode in fail hang; do
        rm -rf "$T/run" "$T/rewind.calls"
        REWIND_TIMEOUT=1 early_env 'root=/dev/mapper/vg0-root'
        echo "$mode" > "$T/rewind.mode"
        eq "$mode: run_hook returns 0" "run_hook=0" "$(run_hook_ash)"
    done
    rm -rf "$T/run" "$T/rewind.calls"
    early_env 'rd.rewind=0'
    eq "rd.rewind=0: run_hook returns 0" "run_hook=0" "$(run_hook_ash)"
    eq "rd.rewind=0: not called" "" "$(calls)"
    check
}

test_mkinitcpio_run_latehook_hands_off() {
    early_env 'root=/dev/mapper/vg0-root'
    local out
    # shellcheck disable=SC2016 # expanded by ash
    out=$(REWIND_EARLY="$REPO/initramfs/rewind-early" timeout 30 busybox ash -c \
        '. "$1"; run_latehook; echo "run_latehook=$?"' ash "$REPO/mkinitcpio-hook/hooks/rewind")
    eq "run_latehook returns 0" "run_latehook=0" "$out"
    eq "rewind handoff called" "handoff" "$(calls)"
    echo fail > "$T/rewind.mode"
    # shellcheck disable=SC2016 # expanded by ash
    out=$(REWIND_EARLY="$REPO/initramfs/rewind-early" timeout 30 busybox ash -c \
        '. "$1"; run_latehook; echo "run_latehook=$?"' ash "$REPO/mkinitcpio-hook/hooks/rewind")
    eq "failing rewind: run_latehook still returns 0" "run_latehook=0" "$out"
    check
}
