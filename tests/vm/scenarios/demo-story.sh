# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "demo-story" (issue 15 proof 1, issue 21; vm-images/demo.sh runs it and shows its
# records): the product's story on a Debian machine as its installer leaves it: it boots
# through real GRUB from its own disk (grub-pc, BIOS; /boot a plain partition, root on LVM),
# its initramfs made by initramfs-tools with stock LVM2 in it, rewind installed by install.sh
# (the apt hook in apt.conf.d, /etc/grub.d/42_rewind). A local apt repository the host built:
# rwdemo 1 (its command works) and rwdemo 2, whose command fails and which also ships a broken
# /usr/local/sbin/vm-init, the init this guest's kernel starts (init= on its command line): a
# bad upgrade of the init, so the machine no longer boots.
# Boot 1: (GRUB's default entry) update-grub (42_rewind adds the "Roll back with rewind"
#         submenu, as after installing rewind); `apt-get install rwdemo` from the repository
#         (rwdemo 1 only): the hook takes set "install rwdemo 1"; rwdemo 2 is published,
#         `apt-get update`, `apt-get upgrade`: the hook takes a set described "upgrade rwdemo
#         1 -> 2" before dpkg runs; rwdemo 2's command fails. `rewind diff SET` (and --json)
#         shows that upgrade and nothing else. Nothing is flagged.
# Boot 2: (GRUB's default entry) rwdemo 2's init exits, the kernel panics ("Attempted to kill
#         init"); the host kills the guest on that line and checks with stock lvs that the
#         set is untouched and nothing is flagged.
# Boot 3: the harness waits for GRUB's menu on the serial console, goes down to "Roll back with
#         rewind", opens it and picks the entry of the upgrade's set (the newest, first): GRUB
#         boots the set's kernel copy with rd.rewind=SET; rewind in the initramfs merges, the
#         old init comes up; `rewind poll` finishes the merge (or finds stock LVM2 finished it)
#         and leaves the "rollback complete" notice (login note, `rewind status`); dpkg says
#         rwdemo 1 and its files are rwdemo 1's. The install's set is then deleted.
# Host:   the set's description and kind in stock lvs's tags, the diff, the panic, the menu
#         keys and rd.rewind on the console; stock vgck and lvs: root alone, plain.
# Long suite: with the GRUB root's first build (CI has no cache) it costs ~4 min more than
# demo-apt, which stays in the quick suite.
VM_SCENARIO_SUITE=long
VM_BOOTS=3
VM_ROOT_FLAVOR=grub
VM_GRUB_BOOT=256MiB
VM_DISK_SIZE=2G
VM_LVS=(root:1200M)
VM_INITRAMFS_ARGS=(--generator initramfs-tools)
VM_ROOT_ADD=(
    "${VM_REPO_DIR:-}/target/x86_64-unknown-linux-gnu/release/rewind:/usr/sbin/rewind"
    "${VM_REPO_DIR:-}/initramfs/rewind-early:/usr/lib/rewind/rewind-early"
)
VM_CMDLINE='root=/dev/mapper/vg0-root ro printk.devkmsg=on'

# The line rwdemo 2's init prints before it exits (boot 2's console shows it).
DS_BROKEN='rwdemo 2: init cannot start: its configuration is unreadable'

vm_boot_title() {
    case $1 in
    1) echo "apt-get install rwdemo (1), then apt-get upgrade (2): rewind's hook takes a set first" ;;
    2) echo "GRUB's default entry: rwdemo 2's init fails, the kernel panics" ;;
    3) echo "the set's entry picked in GRUB's \"Roll back with rewind\" menu: the rollback" ;;
    esac
}

# Boot 2 ends on the panic (GRUB guests boot with panic=10: the kill wins).
vm_boot_kill() { [[ $1 == 2 ]] && echo 'on Attempted to kill init'; }

# Boot 3: as a person would: down twice to the submenu (after "Debian GNU/Linux" and its
# "Advanced options"), open it, wait for the upgrade's set (the newest: the first entry), take it.
vm_boot_keys() {
    [[ $1 == 3 ]] || return 1
    printf '%s\t%s\n' 'Roll back with rewind' 'down down enter' "$(cat "$VM_STATE/set")" 'enter'
}

# demo_deb DIR VERSION SCRIPT [INIT]: rwdemo VERSION, whose /usr/bin/rwdemo is SCRIPT; with INIT,
# it also ships /usr/local/sbin/vm-init as INIT (the init the kernel starts).
demo_deb() {
    local d=$WORK/pkg/rwdemo-$2
    mkdir -p "$d/DEBIAN" "$d/usr/bin"
    printf 'Package: rwdemo\nVersion: %s\nArchitecture: all\nMaintainer: rewind demo <demo@localhost>\nDescription: the package the rewind demo upgrades\n' \
        "$2" >"$d/DEBIAN/control"
    printf '#!/bin/sh\n%s\n' "$3" >"$d/usr/bin/rwdemo"
    chmod 755 "$d/usr/bin/rwdemo"
    if [[ -n ${4:-} ]]; then
        mkdir -p "$d/usr/local/sbin"
        printf '#!/bin/sh\n%s\n' "$4" >"$d/usr/local/sbin/vm-init"
        chmod 755 "$d/usr/local/sbin/vm-init"
    fi
    dpkg-deb --root-owner-group -Zgzip -b "$d" "$1/rwdemo_${2}_all.deb" >/dev/null
}

host_prepare() {
    (cd "$VM_REPO_DIR" && cargo build --release --quiet)
    local repo=$WORK/repo inst=$WORK/install f
    mkdir -p "$repo/pool" "$repo/next"
    demo_deb "$repo/pool" 1 'echo "rwdemo 1: all good"'
    demo_deb "$repo/pool" 2 'echo "rwdemo 2: cannot start: its configuration is unreadable" >&2; exit 1' \
        "echo '$DS_BROKEN'; exit 1"
    # The repository's index: rwdemo 1 alone; next/Packages (both) is what it publishes later.
    (cd "$repo" && dpkg-scanpackages -m pool /dev/null 2>/dev/null >next/Packages)
    awk 'BEGIN { RS = ""; ORS = "\n\n" } /(^|\n)Version: 1(\n|$)/' "$repo/next/Packages" >"$repo/Packages"
    [[ $(grep -c '^Package: ' "$repo/next/Packages") == 2 && $(grep -c '^Package: ' "$repo/Packages") == 1 ]] ||
        vm_die "demo-story: the repository's indexes are wrong"
    printf 'deb [trusted=yes] file:/srv/rwrepo ./\n' >"$WORK/rwrepo.list"
    VM_DISK_ADD+=("$repo:/srv/rwrepo" "$WORK/rwrepo.list:/etc/apt/sources.list.d/rwrepo.list")
    # rewind as install.sh installs it on a machine with apt and GRUB (the apt hook, 42_rewind).
    mkdir -p "$inst/etc/apt/apt.conf.d"
    sh "$VM_REPO_DIR/install.sh" DESTDIR="$inst" >"$WORK/install.log" 2>&1
    [[ -f $inst/etc/apt/apt.conf.d/80rewind ]] || vm_die "demo-story: install.sh did not install the apt hook"
    [[ -f $inst/etc/grub.d/42_rewind ]] || vm_die "demo-story: install.sh did not install 42_rewind"
    while IFS= read -r f; do
        VM_DISK_ADD+=("$inst$f:$f")
    done < <(cd "$inst" && find . \( -type f -o -type l \) | sed 's/^\.//' | sort)
}

# The guest side: every record goes to $OUT (the demo shows them).

# demo_run NAME: rwdemo's output and exit status into $OUT/NAME.
demo_run() {
    local rc=0
    rwdemo >"$OUT/$1" 2>&1 || rc=$?
    echo "(exit status $rc)" >>"$OUT/$1"
    cat "$OUT/$1"
}

demo_version() {
    dpkg-query -W -f '${Version} ${db:Status-Status}\n' rwdemo 2>/dev/null || echo "none"
}

# demo_apt NAME ARGS...: `apt-get ARGS` as a person runs it, its output into $OUT/NAME.
demo_apt() {
    local name=$1 rc=0
    shift
    echo "# apt-get $*" >"$OUT/$name"
    DEBIAN_FRONTEND=noninteractive apt-get -y -o Dpkg::Use-Pty=0 "$@" >>"$OUT/$name" 2>&1 || rc=$?
    cat "$OUT/$name"
    return "$rc"
}

guest_boot_1() {
    local set
    mkdir -p /run/lock/lvm
    rm -f /run/udev/control
    mount /boot
    sha256sum /usr/local/sbin/vm-init >"$OUT/init-before.sha256"
    # rewind is installed: update-grub puts 42_rewind's submenu into grub.cfg.
    update-grub >"$BOOT_OUT/update-grub.log" 2>&1 || g_fail "update-grub: $(cat "$BOOT_OUT/update-grub.log")"
    rm -f /etc/apt/sources.list /etc/apt/sources.list.d/debian.sources
    find /etc/apt/sources.list.d -type f ! -name rwrepo.list -delete
    apt-get -q update >"$BOOT_OUT/update.log" 2>&1 || g_fail "apt-get update: $(cat "$BOOT_OUT/update.log")"
    demo_apt install.out install rwdemo || g_fail "apt-get install rwdemo failed"
    demo_version | tee "$OUT/version-before"
    demo_run run-before
    # rwdemo 2 is published; the usual update and upgrade.
    cp /srv/rwrepo/next/Packages /srv/rwrepo/Packages
    apt-get -q update >"$BOOT_OUT/update2.log" 2>&1 || g_fail "apt-get update: $(cat "$BOOT_OUT/update2.log")"
    demo_apt upgrade.out upgrade || g_fail "apt-get upgrade failed"
    demo_version | tee "$OUT/version-upgraded"
    demo_run run-upgraded
    sha256sum /usr/local/sbin/vm-init >"$OUT/init-upgraded.sha256"
    rewind list | tee "$OUT/list"
    set=$(sed -n 's/^\(apt-[^ ]*\) .* auto .*upgrade rwdemo 1 -> 2.*$/\1/p' "$OUT/list")
    [[ -n $set && $(wc -l <<<"$set") == 1 ]] || g_fail "not one automatic set for the upgrade: [$set]"
    echo "$set" >"$OUT/set"
    sed -n 's/^\(apt-[^ ]*\) .* auto .*install rwdemo 1.*$/\1/p' "$OUT/list" >"$OUT/set-install"
    g_lvm lvs -o lv_name,lv_tags --noheadings vg0 | tee "$OUT/lvs-set"
    {
        echo "# rewind diff $set"
        rewind diff "$set" 2>&1
    } | tee "$OUT/diff"
    rewind diff "$set" --json >"$OUT/diff.json" 2>&1 || g_fail "rewind diff --json failed"
    cp /boot/grub/rewind.cfg "$OUT/rewind.cfg"
    cp /boot/grub/grub.cfg "$OUT/grub.cfg"
    g_lvm lvs -a -o lv_name,lv_attr,origin,lv_merging vg0 | tee "$OUT/lvs-upgraded"
    sync
    umount /boot
}

guest_boot_2() { g_fail "boot 2 came up although rwdemo 2 replaced the init"; }

guest_boot_3() {
    mkdir -p /run/lock/lvm
    rm -f /run/udev/control
    mount /boot
    tee "$OUT/cmdline-3" </proc/cmdline
    dmesg | grep 'rewind:' | tee "$OUT/rewind-early.log" || true
    dmsetup table | tee "$OUT/dm-table-start"
    rewind poll -v >"$OUT/poll.out" 2>&1 || g_fail "rewind poll failed: $(cat "$OUT/poll.out")"
    cat "$OUT/poll.out"
    dmsetup table | tee "$OUT/dm-table-end"
    cat /run/motd.d/rewind >"$OUT/motd" 2>&1 || true
    {
        echo "# rewind status"
        rewind status 2>&1
    } | tee "$OUT/status"
    demo_version | tee "$OUT/version-after"
    demo_run run-after
    sha256sum /usr/local/sbin/vm-init >"$OUT/init-after.sha256"
    dpkg -L rwdemo >"$OUT/files-after" 2>&1 || true
    rewind list | tee "$OUT/list-after"
    g_lvm lvs -a -o lv_name,lv_attr,origin vg0 | tee "$OUT/lvs-after"
    # The install's set is still there, a plain snapshot of root; it goes too: root alone.
    rewind delete "$(cat "$OUT/set-install")" 2>&1 | tee "$OUT/delete.out"
    g_lvm lvs -a -o lv_name,lv_attr vg0 | tee "$OUT/lvs-end"
    dmsetup table | tee "$OUT/dm-table-final"
    sync
    umount /boot
}

# ds_tags LV: LV's tags in boot 1's stock lvs output, one a line.
ds_tags() {
    awk -v lv="$1" '$1 == lv { print $2 }' "$VM_STATE/lvs-set" | tr ',' '\n'
}

host_check_boot_1() {
    local set
    set=$(cat "$VM_STATE/set")
    vm_check "boot 1: apt installed rwdemo 1" grep -qx '1 installed' "$VM_STATE/version-before"
    vm_check "boot 1: the hook said it took the set before the upgrade" \
        grep -q "rewind: snapshot set $set taken (before apt (apt-get -y -o Dpkg::Use-Pty=0 upgrade): upgrade rwdemo 1 -> 2)" "$VM_STATE/upgrade.out"
    vm_check "stock lvs: the set's member is described by the upgrade, with both versions" \
        grep -qx 'rewind_desc0_before_apt_#28apt-get_-y_-o_Dpkg::Use-Pty=0_upgrade#29:_upgrade_rwdemo_1_-#3E_2' <(ds_tags "root.$set")
    vm_check "stock lvs: the set's member is automatic" grep -qx rewind_kind_auto <(ds_tags "root.$set")
    vm_check "stock lvs: the install took its own automatic set" \
        grep -q 'install_rwdemo_1' <(ds_tags "root.$(cat "$VM_STATE/set-install")")
    vm_check_eq "boot 1: dpkg: rwdemo" "2 installed" "$(cat "$VM_STATE/version-upgraded")"
    vm_check "boot 1: rwdemo 2 fails" grep -qx '(exit status 1)' "$VM_STATE/run-upgraded"
    vm_check "boot 1: rwdemo 2 replaced the init" vm_files_differ "$VM_STATE/init-before.sha256" "$VM_STATE/init-upgraded.sha256"
    vm_check_eq "rewind diff: exactly the upgrade" \
        "dpkg (snapshot set $set -> now): 1 package(s) differ|upgraded rwdemo 1 -> 2" \
        "$(sed 1d "$VM_STATE/diff" | sed 's/^ *//; s/  */ /g' | paste -sd '|')"
    vm_check_eq "rewind diff --json: exactly the upgrade" "$set: dpkg upgraded rwdemo 1 2" \
        "$(python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
for db in d["databases"]:
    for p in db["packages"]:
        print(d["set"] + ":", db["manager"], p["kind"], p["name"], p["set"], p["now"])' "$VM_STATE/diff.json" 2>&1)"
    vm_check "rewind.cfg passes grub-script-check" grub-script-check "$VM_STATE/rewind.cfg"
    vm_check "grub.cfg has 42_rewind's submenu" grep -q 'Roll back with rewind' "$VM_STATE/grub.cfg"
    vm_check_eq "the boot menu's first entry is the upgrade's set" "$set" \
        "$(sed -n "s/^menuentry .* --id 'rewind-\(.*\)' {$/\1/p" "$VM_STATE/rewind.cfg" | head -n 1)"
    # The hook's post step rewrote the menu: the entry's title ends with how apt ended.
    vm_check "the upgrade's entry shows how apt ended (\", ok\")" \
        grep -q "^menuentry '[^']*, ok[^']*' .*--id 'rewind-$set' {$" "$VM_STATE/rewind.cfg"
}

host_check_boot_2() {
    local set lvs
    set=$(cat "$VM_STATE/set")
    vm_check_eq "boot 2 (rwdemo 2's init) was killed on the panic" killed "$(cat "$WORK/boot2.result")"
    vm_check "boot 2's console shows rwdemo 2's init failing" grep -aq "$DS_BROKEN" "$WORK/boot2.serial.log"
    vm_check "boot 2's console shows the panic" grep -aq 'Attempted to kill init' "$WORK/boot2.serial.log"
    lvs=$(vm_image_lvm "$WORK/disk.img" lvs -a --noheadings --separator , -o lv_name,origin,lv_merging vg0 | tr -d ' ')
    vm_check_eq "after boot 2: both sets still plain snapshots of root, nothing merging" \
        "$(printf '%s\n' "root.$set,root," "root.$(cat "$VM_STATE/set-install"),root," root,, | sort | paste -sd ';')" \
        "$(sort <<<"$lvs" | paste -sd ';')"
}

host_check() {
    local set
    set=$(cat "$VM_STATE/set")
    vm_check "boot 3's console showed GRUB's menu with the rollback submenu" \
        grep -aq 'Roll back with rewind' "$WORK/boot3.serial.log"
    vm_check "boot 3: the harness pressed the keys" grep -q 'pressing enter' "$WORK/boot3.serial.log.keys"
    vm_check "boot 3: the kernel ran with rd.rewind=$set" grep -q "rd.rewind=$set" "$VM_STATE/cmdline-3"
    vm_check "boot 3: rewind in the initramfs flagged the set's merge" \
        grep -q "rewind: vg0/root.$set: merge flag committed" "$VM_STATE/rewind-early.log"
    vm_check "boot 3: ... and set up root's merge before root was mounted" \
        grep -q "rewind: done: 1 flag(s) committed, 1 volume(s) set up" "$VM_STATE/rewind-early.log"
    # After the poll root is still an origin: the install's (older) set watches it.
    vm_check "boot 3: no merge and no device of the upgrade's set after rewind poll" \
        vm_file_lacks "snapshot-merge|^vg0-root\.${set//-/--}" "$VM_STATE/dm-table-end"
    vm_check "boot 3: root plain linear once the install's set is deleted" \
        grep -q '^vg0-root: 0 [0-9]* linear ' "$VM_STATE/dm-table-final"
    vm_check_eq "boot 3: dpkg: rwdemo" "1 installed" "$(cat "$VM_STATE/version-after")"
    vm_check_eq "boot 3: rwdemo runs" "rwdemo 1: all good
(exit status 0)" "$(cat "$VM_STATE/run-after")"
    vm_check "boot 3: the init is the one from before the upgrade" \
        vm_compare_sums "$VM_STATE/init-before.sha256" "$VM_STATE/init-after.sha256"
    vm_check_eq "boot 3: dpkg's file list is rwdemo 1's (no vm-init)" "" "$(grep vm-init "$VM_STATE/files-after" || true)"
    vm_check "boot 3: the login notice" grep -q "rollback complete: vg0/root is back at snapshot set $set" "$VM_STATE/motd"
    vm_check "boot 3: rewind status names the set" grep -q "$set" "$VM_STATE/status"
    vm_check "boot 3: the install's set is still listed" grep -q "^$(cat "$VM_STATE/set-install") " "$VM_STATE/list-after"
    vm_check_plain_root "$WORK/disk.img"
}
