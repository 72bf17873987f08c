#!/bin/bash
# Boot a qemu TCG guest and wait for it to power off, time out, or be killed on purpose.
#
# Usage: vm-images/run-guest.sh --kernel FILE --initrd FILE --log FILE [options]
#        vm-images/run-guest.sh --disk-boot --log FILE [options]
#   --disk-boot            no -kernel: the firmware (SeaBIOS) boots the first disk, through the
#                          boot loader on it (vm-images/build-disk.sh --grub-boot)
#   --uefi VARS            with --disk-boot: UEFI firmware (Debian's OVMF, the code read-only) instead
#                          of SeaBIOS, its variables kept in the file VARS (a copy of OVMF_VARS_4M.fd
#                          the caller makes once and passes at every boot: the boot loader's
#                          one-shot entry outlives the reboot; vm-images/build-disk.sh --sdboot-esp)
#   --keys FILE            type into the serial console as a person would: FILE's steps
#                          (TEXT<TAB>KEYS a line, tests/vm/serial-keys.py) wait for TEXT on the
#                          console, then press KEYS (e.g. GRUB's menu); the serial port is then a
#                          unix socket beside the log (LOG.sock), the log qemu's logfile of it
#   --disk FILE[:SERIAL[:OPTS]]  a raw virtio disk (repeatable, in order: vda, vdb, ...); the
#                          guest finds a disk by its serial in /sys/block/*/serial; OPTS are
#                          extra -drive options, e.g. throttling.bps-total=8388608
#   --append CMDLINE       kernel command line (console=ttyS0 is added)
#   --timeout SECONDS      kill qemu and fail after this long (default 300)
#   --kill-on STRING       kill qemu as soon as STRING appears on the serial console
#   --kill-after SECONDS   kill qemu this long after start
#   --kill-when COMMAND    kill qemu as soon as COMMAND (run by bash every 0.2 s) exits 0, e.g. a
#                          check of the disk image's bytes (qemu writes it through the host's page
#                          cache, so the host sees what the guest has written to its disk)
#   --mem MIB              guest memory (default 1024)
#   --cpu MODEL            qemu CPU model (default qemu64: with "max" the kernel uses rep stosb/movsb,
#                          which TCG emulates slowly enough for kcopyd to trip soft-lockup warnings)
#   --pidfile FILE         where qemu's pid is kept (a stale qemu found there is killed first)
#   --icount SHIFT         the guest's clock counts instructions (2^SHIFT ns each) instead of following
#                          the host's: TCG's own cost of translating code is then not charged to the
#                          guest (for benchmarks; boots are no faster)
#   --ssh-port PORT        a virtio NIC on qemu's user network, restricted (no way out of the
#                          host), with the host's 127.0.0.1:PORT forwarded to the guest's port 22
#   --reboot               the guest's reboots restart it (same kernel, initramfs and command line)
#                          instead of ending the run; the disks stay as the guest left them
# Exit status: 0 the guest powered off; 3 killed as asked (--kill-on/--kill-after/--kill-when);
#              1 timeout or qemu failure (the log path is printed).
set -euo pipefail
# shellcheck source=vm-images/lib.sh
. "$(dirname "$0")/lib.sh"

kernel='' initrd='' log='' disk_boot=0 uefi='' keys='' append='' timeout=300 kill_on='' kill_after='' kill_when='' mem=1024 cpu=qemu64 pidfile='' icount='' ssh_port='' reboot=0
disks=()
while (($#)); do
    case $1 in
    --kernel) kernel=$2; shift ;;
    --initrd) initrd=$2; shift ;;
    --log) log=$2; shift ;;
    --disk-boot) disk_boot=1 ;;
    --uefi) uefi=$2; shift ;;
    --keys) keys=$2; shift ;;
    --disk) disks+=("$2"); shift ;;
    --append) append=$2; shift ;;
    --timeout) timeout=$2; shift ;;
    --kill-on) kill_on=$2; shift ;;
    --kill-after) kill_after=$2; shift ;;
    --kill-when) kill_when=$2; shift ;;
    --mem) mem=$2; shift ;;
    --cpu) cpu=$2; shift ;;
    --pidfile) pidfile=$2; shift ;;
    --icount) icount=$2; shift ;;
    --ssh-port) ssh_port=$2; shift ;;
    --reboot) reboot=1 ;;
    *) vm_die "run-guest: unknown argument $1" ;;
    esac
    shift
done
[[ ($disk_boot == 1 || (-f $kernel && -f $initrd)) && -n $log ]] ||
    vm_die "usage: run-guest.sh --kernel F --initrd F --log F [options] | --disk-boot --log F [options]"
pidfile=${pidfile:-$log.pid}
vm_kill_stale_qemu "$pidfile"

args=(-accel tcg -cpu "$cpu" -m "$mem" -smp 1 -nodefaults -no-user-config -display none)
((reboot)) || args+=(-no-reboot)
if [[ -n $ssh_port ]]; then
    net="user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:$ssh_port-:22"
    args+=(-netdev "$net" -device "virtio-net-pci,netdev=net0")
fi
sock=$log.sock
if [[ -n $keys ]]; then
    rm -f "$sock"
    # wait=on: the guest starts only once serial-keys.py is connected, so it sees GRUB's menu
    # from its first byte (with wait=off a late connect on a loaded host missed the menu).
    args+=(-chardev "socket,id=ser0,path=$sock,server=on,wait=on,logfile=$log" -serial chardev:ser0)
else
    args+=(-serial "file:$log")
fi
if [[ -n $uefi ]]; then
    code=/usr/share/OVMF/OVMF_CODE_4M.fd
    [[ -f $code && -f $uefi ]] || vm_die "run-guest: --uefi needs $code (package ovmf) and the variables file $uefi"
    args+=(-drive "if=pflash,format=raw,unit=0,readonly=on,file=$code"
        -drive "if=pflash,format=raw,unit=1,file=$uefi")
fi
if ((disk_boot == 0)); then
    args+=(-kernel "$kernel" -initrd "$initrd" -append "console=ttyS0 $append")
fi
[[ -n $icount ]] && args+=(-icount "shift=$icount,sleep=on")
i=0
for d in "${disks[@]}"; do
    file=${d%%:*} serial='' opts=''
    [[ $d == *:* ]] && serial=${d#*:}
    if [[ $serial == *:* ]]; then
        opts=${serial#*:}
        serial=${serial%%:*}
    fi
    [[ -f $file ]] || vm_die "disk image $file not found"
    args+=(-drive "file=$file,format=raw,if=none,id=disk$i,cache=unsafe,discard=unmap${opts:+,$opts}"
        -device "virtio-blk-pci,drive=disk$i${serial:+,serial=$serial}")
    i=$((i + 1))
done

: >"$log"
start=$(vm_now)
qemu-system-x86_64 "${args[@]}" </dev/null >"$log.qemu" 2>&1 &
qpid=$!
echo "$qpid" >"$pidfile"
kpid=''
if [[ -n $keys ]]; then
    python3 "$VM_REPO_DIR/tests/vm/serial-keys.py" "$log" "$sock" "$keys" 2>>"$log.keys" &
    kpid=$!
fi
stop() {
    if kill -0 "$qpid" 2>/dev/null; then
        kill "$qpid" 2>/dev/null || true
        wait "$qpid" 2>/dev/null || true
    fi
    if [[ -n $kpid ]] && kill -0 "$kpid" 2>/dev/null; then
        kill "$kpid" 2>/dev/null || true
    fi
    rm -f "$pidfile" "$sock"
}
trap stop EXIT

result=''
while kill -0 "$qpid" 2>/dev/null; do
    now=$(vm_elapsed "$start")
    if [[ -n $kill_on ]] && grep -qF -- "$kill_on" "$log"; then
        result="killed: \"$kill_on\" seen on the console after ${now} s"
        break
    fi
    if [[ -n $kill_when ]] && bash -c "$kill_when" </dev/null >/dev/null 2>&1; then
        result="killed: [$kill_when] held after ${now} s"
        break
    fi
    if [[ -n $kill_after ]] && awk -v n="$now" -v k="$kill_after" 'BEGIN { exit !(n >= k) }'; then
        result="killed: after ${now} s as asked"
        break
    fi
    if awk -v n="$now" -v t="$timeout" 'BEGIN { exit !(n >= t) }'; then
        stop
        vm_log "guest timed out after $timeout s; serial log: $log"
        exit 1
    fi
    sleep 0.2
done

if [[ -n $result ]]; then
    kill -9 "$qpid" 2>/dev/null || true
    wait "$qpid" 2>/dev/null || true
    rm -f "$pidfile"
    vm_log "guest $result; serial log: $log"
    exit 3
fi
rc=0
wait "$qpid" || rc=$?
rm -f "$pidfile"
vm_log "guest powered off after $(vm_elapsed "$start") s"
if ((rc != 0)); then
    vm_log "qemu exited with $rc (see $log.qemu); serial log: $log"
    exit 1
fi
