# shellcheck shell=bash disable=SC2317,SC2030,SC2034 # fakes are called by the code under test
# The generators' build-time pieces, each run against fakes of its generator's functions that
# record what they were asked to add; each test asserts the exact set.

# fake_root [conf] [lvm] [devices]: a build root with the fake rewind and the files named
fake_root() {
    local w
    fake_rewind "$T/root/usr/sbin/rewind"
    for w in "$@"; do
        case $w in
            conf) mkdir -p "$T/root/etc/rewind" && echo '[log]' > "$T/root/etc/rewind/rewind.toml" ;;
            lvm) mkdir -p "$T/root/etc/lvm" && echo 'devices {}' > "$T/root/etc/lvm/lvm.conf" ;;
            devices) mkdir -p "$T/root/etc/lvm/devices" && : > "$T/root/etc/lvm/devices/system.devices" ;;
            thin) fake_exe "$T/root/usr/sbin/thin_check" ;;
        esac
    done
}
# what the hook added, its temporary file's name as TMP
added() { sed "s|$T/tmp/tmp\.[A-Za-z0-9]*|TMP|g" "$T/added" 2> /dev/null; }

# boot_json_cases DIR: the image tree DIR holds etc/rewind/initramfs.json, what check-config
# wrote (the fake writes its arguments), mode 644, alone in etc/rewind; no temporary file left
boot_json_cases() {
    eq "the image's initramfs.json is what check-config wrote" "\"$(calls)\"" \
        "$(sed "s|$T/tmp/tmp\.[A-Za-z0-9]*|TMP|g" "$1/etc/rewind/initramfs.json")"
    eq "mode 644" 644 "$(stat -c %a "$1/etc/rewind/initramfs.json")"
    eq "nothing else in the image's /etc/rewind" initramfs.json "$(ls "$1/etc/rewind")"
    eq "the temporary file removed" "" "$(ls "$T/tmp")"
}
fake_exe() { mkdir -p "${1%/*}" && printf '#!/bin/sh\n' > "$1" && chmod +x "$1"; }

# thin_check_cases CALL WHAT: the thin_check part of a hook, three ways; CALL runs the hook, WHAT
# is the line it adds for a path ("%s" stands for the path).
thin_check_cases() {
    local call=$1 what=$2
    fake_root lvm thin
    $call > /dev/null
    has "thin_check carried when installed" "^${what//%s//usr/sbin/thin_check}\$" "$(added)"
    rm -f "$T/added"
    printf 'global {\n\tthin_check_executable = ""\n}\n' > "$T/root/etc/lvm/lvm.conf"
    $call > /dev/null
    hasnt "not carried when lvm.conf switches the check off" 'thin_check' "$(added)"
    rm -f "$T/added"
    fake_exe "$T/root/opt/tc/thin_check"
    printf 'global {\n    # thin_check_executable = "/nowhere"\n    thin_check_executable = "/opt/tc/thin_check"\n}\n' > "$T/root/etc/lvm/lvm.conf"
    $call > /dev/null
    has "lvm.conf's path carried" "^${what//%s//opt/tc/thin_check}\$" "$(added)"
    hasnt "not the default" '/usr/sbin/thin_check' "$(added)"
    rm -f "$T/added" "$T/root/usr/sbin/thin_check" "$T/root/etc/lvm/lvm.conf"
    $call > /dev/null
    hasnt "not installed: nothing" 'thin_check' "$(added)"
}

# --- mkinitcpio: install/rewind, sourced into bash as mkinitcpio does --------------------------

mkinitcpio_build() { # mkinitcpio_build [systemd]: runs build() in a subshell; prints its status
    (
        rec() { echo "$*" >> "$T/added"; }
        add_binary() { rec add_binary "$@"; }
        add_module() { rec add_module "$@"; }
        add_file() { # records; copies a file that exists to DEST with MODE, as mkinitcpio does
            rec add_file "$@"
            if [ -f "$1" ] && [ -n "${3:-}" ]; then
                mkdir -p "$BUILDROOT${2%/*}" && install -m "$3" "$1" "$BUILDROOT$2"
            fi
        }
        add_dir() { rec add_dir "$@"; }
        add_symlink() { rec add_symlink "$@"; }
        add_udev_rule() { rec add_udev_rule "$@"; }
        add_runscript() { rec add_runscript "${BASH_SOURCE[1]##*/}"; }
        add_full_dir() { rec add_full_dir "$@"; }
        map() { local f=$1 r=0; shift; for a; do "$f" "$a" || r=1; done; return $r; }
        error() { rec error "$@"; }
        warning() { rec warning "$@"; }
        msg() { :; }
        plain() { :; }
        [ "${1:-}" = systemd ] && add_systemd_unit() { rec add_systemd_unit "$@"; }
        mkdir -p "$T/tmp"
        export REWIND_BUILD_ROOT=$T/root BUILDROOT=$T/buildroot TMPDIR=$T/tmp
        # shellcheck disable=SC1091
        . "$REPO/mkinitcpio-hook/install/rewind"
        build
        echo "build=$?"
    )
}

mkinitcpio_fixed='add_module dm-mod
add_module dm-snapshot
add_binary /usr/sbin/rewind
add_binary /usr/lib/rewind/rewind-early
add_udev_rule /usr/lib/rewind/63-rewind.rules'

test_mkinitcpio_build_busybox_image() {
    fake_root conf lvm devices
    eq "build status" "build=0" "$(mkinitcpio_build)"
    same_lines "what build() adds (no rewind.toml)" "$mkinitcpio_fixed
add_file TMP /etc/rewind/initramfs.json 644
add_file /etc/lvm/lvm.conf
add_file /etc/lvm/devices/system.devices
add_runscript rewind" "$(added)"
    eq "config checked at build time, its JSON written to a temporary file" \
        "check-config --config $T/root/etc/rewind/rewind.toml --boot-json TMP" "$(calls)"
    boot_json_cases "$T/buildroot"
    check
}

test_mkinitcpio_build_systemd_image() {
    fake_root lvm
    eq "build status" "build=0" "$(mkinitcpio_build systemd)"
    same_lines "what build() adds (no runscript; the hand-off's unit, enabled)" "$mkinitcpio_fixed
add_file /etc/lvm/lvm.conf
add_systemd_unit rewind-handoff.service
add_symlink /usr/lib/systemd/system/initrd.target.wants/rewind-handoff.service ../rewind-handoff.service" "$(added)"
    eq "no config, no check" "" "$(calls)"
    [ -e "$T/buildroot/etc/rewind" ] && fail "no config: nothing written into the image"
    check
}

# fake_dm_rules NAMES...: device-mapper rule files (and dmsetup) in the build root
fake_dm_rules() {
    local r d=$T/root/usr/lib/udev/rules.d
    mkdir -p "$d" "$T/root/usr/sbin"
    for r in "$@"; do echo '# rule' > "$d/$r"; done
    printf '#!/bin/sh\n' > "$T/root/usr/sbin/dmsetup" && chmod +x "$T/root/usr/sbin/dmsetup"
}

test_mkinitcpio_build_adds_dm_rules_arch_names() {
    fake_root
    fake_dm_rules 10-dm.rules 11-dm-lvm.rules 13-dm-disk.rules 95-dm-notify.rules 69-dm-lvm.rules
    eq "build status" "build=0" "$(mkinitcpio_build)"
    same_lines "device-mapper's rules and dmsetup, not LVM's activation rule" "$mkinitcpio_fixed
add_udev_rule 10-dm.rules
add_udev_rule 13-dm-disk.rules
add_udev_rule 95-dm-notify.rules
add_udev_rule 11-dm-lvm.rules
add_binary /usr/sbin/dmsetup
add_runscript rewind" "$(added)"
    check
}

test_mkinitcpio_build_adds_dm_rules_debian_names() {
    fake_root
    fake_dm_rules 55-dm.rules 56-lvm.rules 60-persistent-storage-dm.rules 95-dm-notify.rules 69-lvm.rules
    eq "build status" "build=0" "$(mkinitcpio_build systemd)"
    same_lines "Debian's names" "$mkinitcpio_fixed
add_udev_rule 95-dm-notify.rules
add_udev_rule 55-dm.rules
add_udev_rule 60-persistent-storage-dm.rules
add_udev_rule 56-lvm.rules
add_binary /usr/sbin/dmsetup
add_systemd_unit rewind-handoff.service
add_symlink /usr/lib/systemd/system/initrd.target.wants/rewind-handoff.service ../rewind-handoff.service" "$(added)"
    check
}

test_mkinitcpio_build_refuses_invalid_config() {
    fake_root conf lvm
    echo invalid > "$T/rewind.mode"
    eq "build fails" "build=1" "$(mkinitcpio_build 2> /dev/null)"
    same_lines "only the error" "error rewind: %s is invalid (see above); fix it, then run mkinitcpio again /etc/rewind/rewind.toml" "$(added)"
    eq "the temporary file removed" "" "$(ls "$T/tmp")"
    check
}

test_mkinitcpio_build_thin_check() {
    thin_check_cases mkinitcpio_build 'add_binary %s'
    check
}

test_mkinitcpio_help() {
    local text
    # shellcheck disable=SC1091
    text=$(. "$REPO/mkinitcpio-hook/install/rewind" && help)
    has "help says where to put it" 'before lvm2 in HOOKS' "$text"
    has "help shows a HOOKS line" 'HOOKS=\(.*block rewind lvm2' "$text"
    check
}

# --- initramfs-tools: hooks/rewind, run by sh with a fake hook-functions --------------------

itools_hook() { # itools_hook [ARG]: runs the hook; prints its status
    cat > "$T/hook-functions" << 'FAKE'
rec() { echo "$*" >> "$T/added"; }
copy_exec() { rec copy_exec "$@"; }
copy_file() { # records; copies a file that exists to TARGET, as hook-functions does (cp -p)
    rec copy_file "$@"
    if [ -f "$2" ] && [ -n "${3:-}" ]; then
        mkdir -p "$DESTDIR/${3%/*}" && cp -p "$2" "$DESTDIR/$3"
    fi
}
manual_add_modules() { rec manual_add_modules "$@"; }
force_load() { rec force_load "$@"; }
FAKE
    mkdir -p "$T/tmp"
    REWIND_HOOK_FUNCTIONS=$T/hook-functions REWIND_BUILD_ROOT=$T/root DESTDIR=$T/dest TMPDIR=$T/tmp \
        sh "$REPO/initramfs-tools/hooks/rewind" "$@"
    echo "hook=$?"
}

test_itools_prereqs() {
    eq "prereqs: none, nothing added" $'\nhook=0' "$(itools_hook prereqs)"
    eq "nothing added" "" "$(added)"
    check
}

test_itools_hook() {
    fake_root conf lvm devices
    eq "hook status" "hook=0" "$(itools_hook)"
    same_lines "what the hook adds (no rewind.toml)" "copy_file config TMP /etc/rewind/initramfs.json
copy_file config $T/root/etc/lvm/lvm.conf /etc/lvm/lvm.conf
copy_file config $T/root/etc/lvm/devices/system.devices /etc/lvm/devices/system.devices
copy_exec /usr/sbin/rewind /usr/sbin
copy_file script /usr/lib/rewind/rewind-early /usr/lib/rewind/rewind-early
copy_exec /usr/bin/timeout /usr/bin
copy_file rules /usr/lib/rewind/63-rewind.rules /lib/udev/rules.d/63-rewind.rules
manual_add_modules dm_mod
manual_add_modules dm_snapshot
manual_add_modules dm_thin_pool" "$(added)"
    eq "config checked, its JSON written to a temporary file" \
        "check-config --config $T/root/etc/rewind/rewind.toml --boot-json TMP" "$(calls)"
    boot_json_cases "$T/dest"
    check
}

test_itools_hook_adds_dm_rules() {
    fake_root
    fake_dm_rules 55-dm.rules 56-lvm.rules 60-persistent-storage-dm.rules 95-dm-notify.rules 69-lvm.rules
    eq "hook status" "hook=0" "$(itools_hook)"
    local d=$T/root/usr/lib/udev/rules.d
    same_lines "device-mapper's rules and dmsetup, not LVM's activation rule" "copy_file rules $d/55-dm.rules /lib/udev/rules.d/55-dm.rules
copy_file rules $d/60-persistent-storage-dm.rules /lib/udev/rules.d/60-persistent-storage-dm.rules
copy_file rules $d/95-dm-notify.rules /lib/udev/rules.d/95-dm-notify.rules
copy_file rules $d/56-lvm.rules /lib/udev/rules.d/56-lvm.rules
copy_exec /usr/sbin/dmsetup /sbin" "$(added | grep -E '(dm|lvm)[^ /]*\.rules |dmsetup')"
    check
}

test_itools_hook_thin_check() {
    thin_check_cases itools_hook 'copy_exec %s %s'
    check
}

test_itools_hook_minimal() {
    fake_root
    eq "hook status" "hook=0" "$(itools_hook)"
    eq "without config or LVM files: 7 items" 7 "$(added | wc -l)"
    hasnt "no config files" 'copy_file config' "$(added)"
    [ -e "$T/dest/etc/rewind" ] && fail "no config: nothing written into the image"
    check
}

test_itools_hook_refuses_invalid_config() {
    fake_root conf
    echo invalid > "$T/rewind.mode"
    local out
    out=$(itools_hook 2>&1)
    has "fails the build" '^hook=1$' "$out"
    has "says why" '^E: rewind: /etc/rewind/rewind.toml is invalid' "$out"
    eq "adds nothing" "" "$(added)"
    eq "the temporary file removed" "" "$(ls "$T/tmp")"
    check
}

test_itools_hook_without_binary() {
    local out
    out=$(itools_hook 2>&1)
    has "does not fail the build" '^hook=0$' "$out"
    has "warns" '^W: rewind: /usr/sbin/rewind is missing' "$out"
    eq "adds nothing" "" "$(added)"
    check
}

# --- dracut: 90rewind/module-setup.sh, sourced into bash as dracut does ---------------------

dracut_call() { # dracut_call FUNCTION: runs it with dracut's variables and fakes; prints status
    (
        rec() { echo "$*" >> "$T/added"; }
        inst_binary() { rec inst_binary "$@"; }
        inst_simple() { rec inst_simple "$@"; }
        inst_script() { rec inst_script "$@"; }
        inst_multiple() { rec inst_multiple "$@"; }
        inst_rules() { rec inst_rules "$@"; }
        inst_hook() { rec inst_hook "$@"; }
        instmods() { rec "instmods(hostonly=${hostonly-unset})" "$@"; }
        inst_dir() { rec inst_dir "$@"; mkdir -p "$initdir$1"; }
        dracut_need_initqueue() { rec dracut_need_initqueue; }
        dfatal() { rec dfatal "$@"; }
        require_binaries() { rec require_binaries "$@"; }
        moddir=$REPO/dracut-module/90rewind
        dracutsysrootdir=$T/root
        initdir=$T/initdir
        hostonly=yes
        # shellcheck disable=SC1091
        . "$moddir/module-setup.sh"
        "$1"
        echo "$1=$?"
    )
}

test_dracut_check_and_depends() {
    eq "check without the binary" "check=1" "$(dracut_call check)"
    fake_root
    eq "check with the binary" "check=0" "$(dracut_call check)"
    eq "depends: dm only, not lvm" $'dm\ndepends=0' "$(dracut_call depends)"
    check
}

test_dracut_installkernel() {
    eq "status" "installkernel=0" "$(dracut_call installkernel)"
    eq "modules, also in hostonly mode" "instmods(hostonly=) dm-mod dm-snapshot dm-thin-pool" "$(added)"
    check
}

# where module-setup.sh takes rewind-early from: its own dir if it has a copy (installed by
# install.sh), else the build root (a module used straight from a checkout)
dracut_wrapper_src() {
    if [ -f "$REPO/dracut-module/90rewind/rewind-early" ]; then
        echo "$REPO/dracut-module/90rewind/rewind-early"
    else
        echo "$T/root/usr/lib/rewind/rewind-early"
    fi
}

test_dracut_install() {
    fake_root conf lvm devices
    eq "status" "install=0" "$(dracut_call install)"
    same_lines "what install() adds (no rewind.toml)" "inst_dir /etc/rewind
inst_simple /etc/lvm/lvm.conf
inst_simple /etc/lvm/devices/system.devices
inst_binary /usr/sbin/rewind
inst_script $(dracut_wrapper_src) /usr/lib/rewind/rewind-early
inst_multiple -o timeout
inst_rules $REPO/dracut-module/90rewind/63-rewind.rules
inst_hook initqueue/finished 90 $REPO/dracut-module/90rewind/wait-lvm-scan.sh
inst_hook pre-pivot 90 $REPO/dracut-module/90rewind/rewind-handoff.sh
dracut_need_initqueue" "$(added)"
    eq "config checked, its JSON written into the image" \
        "check-config --config $T/root/etc/rewind/rewind.toml --boot-json $T/initdir/etc/rewind/initramfs.json" "$(calls)"
    eq "the image's initramfs.json is what check-config wrote" \
        "\"$(calls)\"" "$(cat "$T/initdir/etc/rewind/initramfs.json")"
    eq "nothing else in the image's /etc/rewind" initramfs.json "$(ls "$T/initdir/etc/rewind")"
    check
}

test_dracut_install_without_config() {
    fake_root lvm
    eq "status" "install=0" "$(dracut_call install)"
    hasnt "no config: no /etc/rewind" '/etc/rewind' "$(added)"
    eq "no config, no check" "" "$(calls)"
    [ -e "$T/initdir/etc/rewind" ] && fail "no config: nothing written into the image"
    check
}

dracut_install() { dracut_call install; }

test_dracut_install_thin_check() {
    thin_check_cases dracut_install 'inst_binary %s'
    check
}

# the finished hook, sourced in a subshell as dracut's check_finished does: holds while lvm_scan
# is queued
finished_hook() {
    # shellcheck source=dracut-module/90rewind/wait-lvm-scan.sh
    (hookdir=$T/hooks && . "$REPO/dracut-module/90rewind/wait-lvm-scan.sh")
}

test_dracut_finished_hook_waits_for_lvm_scan() {
    local rc
    mkdir -p "$T/hooks/initqueue/settled"
    finished_hook || fail "not finished with no lvm_scan job (no lvm module, or it ran)"
    echo /sbin/lvm_scan > "$T/hooks/initqueue/settled/lvm_scan.sh"
    finished_hook
    rc=$?
    eq "not finished while the lvm_scan job is queued" 1 "$rc"
    rm "$T/hooks/initqueue/settled/lvm_scan.sh"
    echo /usr/lib/rewind/rewind-early > "$T/hooks/initqueue/settled/00-rewind.sh"
    finished_hook || fail "rewind's own job must not hold the loop"
    check
}

test_dracut_install_refuses_invalid_config() {
    fake_root conf
    echo invalid > "$T/rewind.mode"
    local out rc
    out=$(dracut_call install 2> /dev/null)
    rc=$?
    eq "dracut exits 1" 1 "$rc"
    hasnt "install() does not return: dracut stops" '^install=' "$out"
    has "dfatal says why" '^dfatal rewind: /etc/rewind/rewind.toml is invalid' "$(added)"
    hasnt "nothing installed but the directory" '^inst_[^d]' "$(added)"
    eq "no initramfs.json" "" "$(ls "$T/initdir/etc/rewind")"
    check
}
