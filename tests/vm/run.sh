#!/bin/bash
# Run VM scenarios one at a time: tests/vm/run.sh [SCENARIO...] (default: every scenario of the
# quick suite; VM_SUITE=long adds the ones marked VM_SCENARIO_SUITE=long).
# tests/vm/run.sh --recheck SCENARIO reruns only the host checks on the last run's results.
# Prints PASS/FAIL per scenario with the path of its logs; exits non-zero if any failed.
# Work dirs: target/vm/run/SCENARIO/ (wiped at the start of each scenario's run).
# Environment: VM_TIMEOUT (seconds per boot, default 300), VM_KEEP_GOING=0 to stop at the
# first failure, VM_INITRAMFS_IMAGE=FILE to boot FILE instead of building the scenario's image, VM_SELFTEST_BOOT=0 to skip the runner's self-test boots, VM_KEEP_IMAGES=1 to
# keep a passed scenario's disk images (by default only its logs and state are kept: each
# scenario writes 0.4-0.7 GB, and the whole quick suite would otherwise leave ~7 GB behind).
# Progress (tests/progress.sh): "scenario N of M", its step (build, boot N, checks) and the
# times, as a status line on a terminal, else a line every REWIND_HEARTBEAT seconds (default
# 60); VM_STEP_LINES=1 also prints a line as each step of a scenario starts (the demo does).
set -euo pipefail
TESTS_VM_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=vm-images/lib.sh
. "$TESTS_VM_DIR/../../vm-images/lib.sh"
# shellcheck source=tests/vm/host-lib.sh
. "$TESTS_VM_DIR/host-lib.sh"
# shellcheck source=tests/progress.sh
. "$TESTS_VM_DIR/../progress.sh"

# Defaults a scenario may override (the scenario interface: tests/vm/README.md).
scenario_defaults() {
    VM_BOOTS=1
    VM_DISK_SIZE=3G
    VM_LVS=(root:1200M)
    VM_INITRAMFS_ARGS=(--lvm --no-systemd)
    VM_ROOT_ADD=()
    VM_DISK_ADD=()
    VM_EXTRA_DISKS=()
    VM_CMDLINE='root=/dev/mapper/vg0-root rd.lvm.lv=vg0/root ro'
    VM_ROOT_INIT=shell
    VM_ROOT_FLAVOR='' # another guest root: vm-images/packages-FLAVOR (build-root.sh --flavor)
    VM_GRUB_BOOT=''
    VM_SDBOOT_ESP='' # a size: the disk boots through systemd-boot under OVMF (build-disk.sh --sdboot-esp)
    VM_SSH_PORT='' # the guest's sshd on the host's 127.0.0.1:PORT (run-guest.sh --ssh-port)
    VM_REBOOT=0    # 1: the guest's own reboots restart it within one boot N (run-guest.sh --reboot)
    VM_TIMEOUT=${VM_TIMEOUT:-300}
}
vm_boot_args() { :; }
vm_boot_keys() { :; } # GRUB guests: what to type into the menu at boot N (serial-keys.py steps)
vm_boot_kill() { :; }
vm_boot_disk_opts() { :; }
vm_boot_title() { :; } # what boot N does, in a few words (progress lines)
vm_boot_initrd() { :; } # an initramfs for boot N other than the one built (e.g. the guest's own)
# vm_boot_before N: the host's last step before boot N, its exchange disk packed (e.g. copies of
# the disks for a second guest, ansible-fleet.sh).
vm_boot_before() { :; }
# vm_boot_host N (optional): the host's side of boot N, run in the background while the guest
# runs (e.g. ansible-playbook over VM_SSH_PORT); its output goes to WORK/bootN.host.log and its
# exit status to WORK/bootN.host.rc (killed, status 143, if still running when the guest stops).

# vm_step LOG TEXT: the scenario's next step starts. The runner's progress shows TEXT, its time
# and the last line of LOG (the file the step writes to, - for none); tests/vm/run.sh's main
# reads them from $WORK/steps.
vm_step() {
    VM_STEP=$((VM_STEP + 1))
    vm_log "step $VM_STEP of $VM_STEPS: $2"
    printf '%s\t%s\t%s\t%s\t%s\n' "$VM_STEP" "$VM_STEPS" "$(date +%s)" "$1" "$2" >>"$WORK/steps"
}

# One scenario, in a subshell; its output goes to $work/driver.log.
run_scenario() {
    local file=$1 work=$2
    scenario_defaults
    # shellcheck source=/dev/null
    . "$file"
    export VM_ROOT_FLAVOR
    local name root kver kernel initrd n adds=() a
    name=$(basename "$file" .sh)
    VM_TIMINGS_FILE=$work/timings
    export VM_TIMINGS_FILE
    WORK=$work # for the scenario's host checks
    export WORK
    VM_STATE=$work/state
    mkdir -p "$VM_STATE"
    # Steps: the host's preparation, the root, the initramfs, the disk, each boot, the checks.
    VM_STEP=0 VM_STEPS=$((VM_BOOTS + 4))
    if declare -F host_prepare >/dev/null; then
        VM_STEPS=$((VM_STEPS + 1))
    fi

    # The scenario's host-side preparation (data to put on the disk, expected checksums...).
    if declare -F host_prepare >/dev/null; then
        vm_step "$work/driver.log" "preparing the data on the host"
        host_prepare
    fi
    if [[ -f $(vm_root_dir "$VM_ROOT_FLAVOR")/.vm-root-complete ]]; then
        vm_step - "the guest root (cached in $(vm_root_dir "$VM_ROOT_FLAVOR"))"
    else
        vm_step "$work/driver.log" "building the guest root with mmdebstrap (once; 1-2 min; cached in target/vm/cache)"
    fi
    root=$("$VM_IMAGES_DIR/build-root.sh" ${VM_ROOT_FLAVOR:+--flavor "$VM_ROOT_FLAVOR"})
    kver=$(vm_root_kver "$root")
    kernel=$root/boot/vmlinuz-$kver
    initrd=$work/initramfs.img
    vm_step "$work/driver.log" "building the initramfs under test"
    for a in "${VM_ROOT_ADD[@]}"; do
        adds+=(--add "$a")
        # rewind's initramfs build beside the binary a scenario installs (install.sh's layout):
        # the initramfs hooks then put it into the image, as on an installed system.
        if [[ ${a##*:} == /usr/sbin/rewind && -f ${a%:*}-initramfs ]]; then
            adds+=(--add "${a%:*}-initramfs:/usr/lib/rewind/rewind-initramfs")
        fi
    done
    if [[ -n ${VM_INITRAMFS_IMAGE:-} ]]; then
        # An image made elsewhere (the real mkinitcpio, say): booted as it is, nothing is built.
        cp "$VM_INITRAMFS_IMAGE" "$initrd"
        vm_log "$name: initramfs $VM_INITRAMFS_IMAGE as given (VM_INITRAMFS_IMAGE), not built"
    else
        # The scenario's switches first: --generator NAME must lead.
        "$VM_IMAGES_DIR/build-initramfs.sh" "${VM_INITRAMFS_ARGS[@]}" --root "$root" --out "$initrd" \
            "${adds[@]}"
    fi
    local lv_args=()
    for a in "${VM_LVS[@]}"; do
        lv_args+=(--lv "$a")
    done
    for a in "${VM_DISK_ADD[@]}"; do
        adds+=(--add "$a")
    done
    # shell: vm-init is PID 1 (lean, ~20 s less per boot); systemd: systemd runs vm-step.service.
    local init_arg=init=/usr/local/sbin/vm-init
    case $VM_ROOT_INIT in
    shell) ;;
    systemd) init_arg='' ;;
    *) vm_die "$name: VM_ROOT_INIT must be shell or systemd" ;;
    esac
    local boot_common="$init_arg printk.time=1 panic=1 nowatchdog rd.skipfsck rd.shell=0"
    if [[ -n $VM_GRUB_BOOT ]]; then
        # The kernel command line is GRUB's (the first grub.cfg, then the guest's update-grub
        # from /etc/default/grub): vm_boot_args does not apply; the boot number is on the
        # exchange disk. panic=10: a kill on a panic's message (vm_boot_kill) wins the race with
        # the reboot.
        local grub_cmdline="$VM_CMDLINE console=ttyS0 ${boot_common/panic=1/panic=10}"
        grub_default "$grub_cmdline" >"$work/default-grub"
        adds+=(--add "$work/default-grub:/etc/default/grub" --grub-boot "$VM_GRUB_BOOT"
            --boot-add "$initrd:/initrd.img-$kver" --cmdline "$grub_cmdline")
    fi
    if [[ -n $VM_SDBOOT_ESP ]]; then
        # As for GRUB: the kernel command line is the machine's own BLS entry's (written by
        # build-disk.sh), so vm_boot_args does not apply; the firmware's variables live in one
        # file for all boots (a one-shot entry set at boot N is seen at boot N+1).
        adds+=(--sdboot-esp "$VM_SDBOOT_ESP" --boot-add "$initrd:/debian/$kver/initrd.img-$kver"
            --cmdline "$VM_CMDLINE console=ttyS0 ${boot_common/panic=1/panic=10}")
        cp /usr/share/OVMF/OVMF_VARS_4M.fd "$work/efivars.fd"
    fi
    vm_step "$work/driver.log" "building the disk image (LVM volume group vg0, root filesystem)"
    "$VM_IMAGES_DIR/build-disk.sh" --root "$root" --out "$work/disk.img" --size "$VM_DISK_SIZE" \
        "${lv_args[@]}" "${adds[@]}" --add "$VM_IMAGES_DIR/guest/vm-init:/usr/local/sbin/vm-init" \
        --add "$VM_IMAGES_DIR/guest/vm-step.service:/etc/systemd/system/vm-step.service"

    for ((n = 1; n <= VM_BOOTS; n++)); do
        # The exchange disk: harness, scenario, boot number, and the state of earlier boots.
        local x=$work/xchg-in
        rm -rf "$x"
        mkdir -p "$x/harness"
        cp "$VM_IMAGES_DIR/guest/guest-lib.sh" "$x/harness/"
        # Files the scenarios share (sourced as ${TESTS_VM_DIR:-/run/xchg/harness}/lib/FILE).
        cp -r "$TESTS_VM_DIR/lib" "$x/harness/"
        cp "$file" "$x/scenario.sh"
        echo "$n" >"$x/boot"
        cp -a "$VM_STATE" "$x/state"
        tar cf "$work/xchg.img" -C "$x" .
        truncate -s 64M "$work/xchg.img"

        local kill_args=() rc=0 t spec
        # `[[ $1 == 2 ]] && echo ...` returns 1 on the other boots: not an error.
        spec=$(vm_boot_kill "$n") || true
        local disk_opts extra=()
        disk_opts=$(vm_boot_disk_opts "$n") || true
        for a in "${VM_EXTRA_DISKS[@]}"; do
            extra+=(--disk "$a")
        done
        case $spec in
        '') ;;
        on\ *) kill_args=(--kill-on "${spec#on }") ;;
        after\ *) kill_args=(--kill-after "${spec#after }") ;;
        when\ *) kill_args=(--kill-when "${spec#when }") ;;
        *) vm_die "$name: vm_boot_kill $n printed [$spec]; want 'on STRING', 'after SECONDS' or 'when COMMAND'" ;;
        esac
        local title boot_initrd
        title=$(vm_boot_title "$n") || true
        boot_initrd=$(vm_boot_initrd "$n") || true
        [[ -z $boot_initrd || -f $boot_initrd ]] || vm_die "$name: boot $n: no initramfs $boot_initrd"
        vm_step "$work/boot$n.serial.log" "boot $n of $VM_BOOTS${title:+: $title}"
        vm_log "$name: boot $n"
        local how=(--kernel "$kernel" --initrd "${boot_initrd:-$initrd}"
            --append "$VM_CMDLINE $boot_common vm.boot=$n $(vm_boot_args "$n")")
        if [[ -n $VM_GRUB_BOOT || -n $VM_SDBOOT_ESP ]]; then
            how=(--disk-boot)
            [[ -z $VM_SDBOOT_ESP ]] || how+=(--uefi "$work/efivars.fd")
            vm_boot_keys "$n" >"$work/boot$n.keys" || true
            [[ ! -s $work/boot$n.keys ]] || how+=(--keys "$work/boot$n.keys")
        fi
        ((VM_REBOOT)) && how+=(--reboot)
        # run-guest.sh's arguments of this boot (kernel, initramfs, command line), for a
        # scenario that boots a second guest the same way from vm_boot_host.
        # shellcheck disable=SC2034 # read by the scenario's vm_boot_host
        VM_BOOT_HOW=("${how[@]}")
        vm_boot_before "$n"
        t=$(vm_now)
        local hpid='' hrc=0
        if declare -F vm_boot_host >/dev/null; then
            vm_boot_host "$n" >"$work/boot$n.host.log" 2>&1 &
            hpid=$!
        fi
        "$VM_IMAGES_DIR/run-guest.sh" "${how[@]}" \
            --log "$work/boot$n.serial.log" --timeout "$VM_TIMEOUT" --pidfile "$work/qemu.pid" \
            --disk "$work/disk.img:vmroot${disk_opts:+:$disk_opts}" --disk "$work/xchg.img:vmxchg" \
            "${extra[@]}" ${VM_SSH_PORT:+--ssh-port "$VM_SSH_PORT"} \
            "${kill_args[@]}" ${VM_ICOUNT:+--icount "$VM_ICOUNT"} || rc=$?
        vm_timing "boot${n}_wall" "$(vm_elapsed "$t")"
        if [[ -n $hpid ]]; then
            kill -0 "$hpid" 2>/dev/null && kill "$hpid" 2>/dev/null
            wait "$hpid" || hrc=$?
            echo "$hrc" >"$work/boot$n.host.rc"
            vm_log "$name: boot $n: the host's side exited with $hrc (log $work/boot$n.host.log)"
        fi
        if ((rc == 3)); then
            vm_log "$name: boot $n killed as the scenario asked; state of earlier boots kept"
            echo killed >"$work/boot$n.result"
        elif ((rc != 0)); then
            vm_die "$name: boot $n failed (serial log $work/boot$n.serial.log)"
        else
            rm -rf "$work/xchg-out"
            mkdir -p "$work/xchg-out"
            tar xf "$work/xchg.img" -C "$work/xchg-out" ||
                vm_die "$name: boot $n left no results on the exchange disk (serial log $work/boot$n.serial.log)"
            [[ -f $work/xchg-out/state/boot$n/rc ]] ||
                vm_die "$name: boot $n did not run its step (serial log $work/boot$n.serial.log)"
            rm -rf "$VM_STATE"
            cp -a "$work/xchg-out/state" "$VM_STATE"
            local grc
            grc=$(cat "$VM_STATE/boot$n/rc")
            echo "$grc" >"$work/boot$n.result"
            ((grc == 0)) || vm_die "$name: guest_boot_$n failed with $grc: see $VM_STATE/boot$n/log"
        fi
        if declare -F "host_check_boot_$n" >/dev/null; then
            "host_check_boot_$n"
            ((VM_CHECKS_FAILED == 0)) || vm_die "$name: $VM_CHECKS_FAILED host check(s) after boot $n failed"
        fi
    done
    vm_step "$work/driver.log" "host checks (stock LVM2 on the disk image, the recorded data)"
    run_final_checks "$name"
}

# grub_default CMDLINE: the guest's /etc/default/grub (Debian's, with GRUB on the serial console
# so the harness sees and drives the menu, and the harness's kernel command line).
grub_default() {
    cat <<EOF
# Written by tests/vm/run.sh for a GRUB guest; update-grub reads it.
GRUB_DEFAULT=0
GRUB_TIMEOUT=5
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="$1"
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
GRUB_DISABLE_OS_PROBER=true
EOF
}

run_final_checks() {
    if declare -F host_check >/dev/null; then
        host_check
        ((VM_CHECKS_FAILED == 0)) || vm_die "$1: $VM_CHECKS_FAILED host check(s) failed"
    fi
    vm_log "$1: all host checks passed"
}

# Only the final host checks, against the results of an earlier run (no build, no boot).
recheck_scenario() {
    local file=$1 work=$2
    scenario_defaults
    # shellcheck source=/dev/null
    . "$file"
    WORK=$work VM_STATE=$work/state
    export WORK VM_STATE
    [[ -d $VM_STATE ]] || vm_die "no earlier run in $work"
    [[ -f $work/disk.img ]] ||
        vm_die "$work has no disk image: a passed run's images are removed; rerun with VM_KEEP_IMAGES=1"
    run_final_checks "$(basename "$file" .sh)"
}

# vm_failed_console DRIVER_LOG: when a boot failed (no power-off in time, no results), what its
# console said last, so that a run whose logs are not kept (CI) still shows why: from the kernel's
# first report of a stuck or failing task (a hung task, a soft lockup, an RCU stall, an oops, a
# warning, the OOM killer) its next 40 lines, else the console's last 25 lines.
vm_failed_console() {
    local serial first
    serial=$(sed -nE 's/.*boot [0-9]+ (failed|left no results|did not run).*serial log ([^)]*)\).*/\2/p' "$1" | tail -n 1)
    [[ -n $serial && -f $serial ]] || return 0
    first=$(grep -nE 'blocked for more than|soft lockup|rcu.*(stall|detected)|BUG:|Oops|WARNING:|invoked oom-killer|Kernel panic' \
        "$serial" | head -n 1 | cut -d: -f1)
    if [[ -n $first ]]; then
        echo "    the kernel's report in $serial (line $first, 40 lines):"
        tail -n "+$first" "$serial" | head -n 40 | sed 's/^/      /'
    else
        echo "    the last 25 lines of $serial:"
        tail -n 25 "$serial" | sed 's/^/      /'
    fi
}

main() {
    [[ $(id -u) == 0 ]] || vm_die "the VM tier needs root (loop devices, mounts)"
    "$VM_IMAGES_DIR/deps.sh"
    "$TESTS_VM_DIR/selftest.sh" || vm_die "harness self-test failed"
    # run-guest.sh's power-off, kill and timeout paths, with a busybox initramfs (~20 s).
    mkdir -p "$VM_TARGET_DIR"
    # Free space is the first thing to look at when a scenario fails to write its disk.
    df -h "$VM_TARGET_DIR" | awk -v dir="$VM_TARGET_DIR" 'NR == 2 { print "vm: " $4 " free on " $6 " for " dir }'
    pg_setup
    if [[ ${VM_SELFTEST_BOOT:-1} == 1 ]]; then
        pg_tty || pg_line "vm: self-test of run-guest.sh (short busybox boots, about 30 s)"
        pg_run "vm: self-test of run-guest.sh (short busybox boots)" \
            "$TESTS_VM_DIR/selftest-boot.sh" 2>"$VM_TARGET_DIR/selftest-boot.log" ||
            vm_die "run-guest.sh self-test failed: see $VM_TARGET_DIR/selftest-boot.log"
    fi

    local scenarios=() s failed=0 file work i=0 passed=0 nfailed=0 t_tier
    if (($#)); then
        scenarios=("$@")
    elif [[ -n ${VM_SCENARIOS:-} ]]; then
        read -ra scenarios <<<"$VM_SCENARIOS"
    else
        # The quick suite by default; VM_SUITE=long adds scenarios marked VM_SCENARIO_SUITE=long.
        for s in "$TESTS_VM_DIR"/scenarios/*.sh; do
            if [[ ${VM_SUITE:-quick} == long ]] || ! grep -q '^VM_SCENARIO_SUITE=long' "$s"; then
                scenarios+=("$(basename "$s" .sh)")
            fi
        done
    fi
    for s in "${scenarios[@]}"; do
        [[ -f $TESTS_VM_DIR/scenarios/$s.sh ]] || vm_die "no scenario $TESTS_VM_DIR/scenarios/$s.sh"
    done
    t_tier=$(date +%s)
    for s in "${scenarios[@]}"; do
        i=$((i + 1))
        file=$TESTS_VM_DIR/scenarios/$s.sh
        work=$VM_TARGET_DIR/run/$s
        vm_kill_stale_qemu "$work/qemu.pid"
        rm -rf "$work"
        mkdir -p "$work"
        local t rc=0
        t=$(vm_now)
        pg_tty || pg_line "vm: scenario $i of ${#scenarios[@]}: $s (logs: $work)"
        VM_W_STEPS=$work/steps VM_W_SHOWN=0
        pg_watch_start "scenario $i of ${#scenarios[@]}: $s" vm_watch_status
        # A separate process, so that set -e holds inside the scenario run.
        "$0" --one "$file" "$work" >"$work/driver.log" 2>&1 || rc=$?
        pg_watch_stop
        if ((rc == 0)); then
            passed=$((passed + 1))
            printf 'PASS %s (%ss, logs: %s)\n' "$s" "$(vm_elapsed "$t")" "$work"
            # Disk images, the initramfs and data prepared on the host: everything large.
            [[ ${VM_KEEP_IMAGES:-0} == 1 ]] ||
                find "$work" -type f \( -name '*.img' -o -size +1M \) -delete
        else
            failed=1 nfailed=$((nfailed + 1))
            printf 'FAIL %s (%ss, logs: %s)\n' "$s" "$(vm_elapsed "$t")" "$work"
            grep -E 'CHECK FAILED|checksum mismatch|error:|FAIL:' "$work/driver.log" "$work"/state/boot*/log 2>/dev/null |
                sed 's/^/    /' | tail -n 20 || true
            vm_failed_console "$work/driver.log"
            [[ ${VM_KEEP_GOING:-1} == 1 ]] || break
        fi
    done
    printf 'vm: %s scenario%s: %s passed, %s failed, %s not run, in %s\n' "${#scenarios[@]}" \
        "$( ((${#scenarios[@]} == 1)) || echo s)" "$passed" "$nfailed" \
        $((${#scenarios[@]} - passed - nfailed)) "$(pg_since "$t_tier")"
    return "$failed"
}

# The progress line's part for the scenario under way (a pg_watch_start status function, run
# each second in the ticker): its step (from $VM_W_STEPS, written by vm_step), the step's time
# and the last line of its log (the serial console during a boot). With VM_STEP_LINES=1, a
# permanent line for each step as it starts.
vm_watch_status() {
    local n k m t log text last
    [[ -s $VM_W_STEPS ]] || return 0
    n=$(wc -l <"$VM_W_STEPS")
    if ((n > VM_W_SHOWN)); then
        if [[ ${VM_STEP_LINES:-0} == 1 ]]; then
            while IFS=$'\t' read -r k m t log text; do
                pg_line "  step $k of $m: $text"
            done < <(tail -n "+$((VM_W_SHOWN + 1))" "$VM_W_STEPS" | head -n "$((n - VM_W_SHOWN))")
        fi
        VM_W_SHOWN=$n
    fi
    [[ ${1:-} != last ]] || return 0
    IFS=$'\t' read -r k m t log text < <(sed -n "${n}p" "$VM_W_STEPS")
    text=${text%%:*}
    PG_STATUS=" | step $k/$m: ${text%% (*} ($(pg_since "$t"))"
    if [[ $log != - ]]; then
        last=$(pg_last_line "$log")
        # The kernel's timestamp, "[   12.345678] ", takes room the message needs.
        [[ $last != \[*\]\ * ]] || last=${last#*\] }
        PG_STATUS+=${last:+ | $last}
    fi
}

if [[ ${1:-} == --one ]]; then
    run_scenario "$2" "$3"
elif [[ ${1:-} == --recheck ]]; then
    # tests/vm/run.sh --recheck SCENARIO: rerun the host checks on the last run's results.
    recheck_scenario "$TESTS_VM_DIR/scenarios/$2.sh" "$VM_TARGET_DIR/run/$2"
else
    main "$@"
fi
