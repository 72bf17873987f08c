# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "demo-apt" (quick suite): the demo's story told lean (vm-images/demo.sh tells the
# whole one, with the failed boot and the boot menu: demo-story, long suite): a package upgrade
# that breaks the machine, taken through apt with rewind's apt hook, rolled back at the next
# boot. Image: dracut, shell init, no LVM2 (as reboot-rollback.sh); rewind
# installed into the root by install.sh (on a machine with apt: the apt hook too). A local apt
# repository the host built: rwdemo 1 (its command works) and 2 (its command fails).
# Boot 1: rwdemo 1 is on the machine (dpkg -i). `apt-get upgrade`: the hook takes a snapshot
#         set of root before dpkg runs, described "upgrade rwdemo 1 -> 2"; rwdemo 2's command
#         fails. `rewind rollback SET` flags the set's merge (root is open: at the next boot).
# Boot 2: rewind early sets up the merge before root is mounted; `rewind poll` finishes it and
#         leaves the "rollback complete" notice for the next login; dpkg and the command are
#         rwdemo 1's again.
# Host:   the set in stock lvs's tags; stock vgck and lvs: root alone, plain.

VM_BOOTS=2
VM_LVS=(root:1200M)
VM_INITRAMFS_ARGS=(--no-lvm --no-systemd --modules-dir "${VM_REPO_DIR:-}/dracut-module")
VM_ROOT_ADD=(
    "${VM_REPO_DIR:-}/target/x86_64-unknown-linux-gnu/release/rewind:/usr/sbin/rewind"
    "${VM_REPO_DIR:-}/initramfs/rewind-early:/usr/lib/rewind/rewind-early"
)
VM_CMDLINE='root=/dev/mapper/vg0-root rd.lvm.lv=vg0/root ro printk.devkmsg=on'

vm_boot_title() {
    case $1 in
    1) echo "apt-get upgrade (rewind's hook takes a set first), then rewind rollback SET" ;;
    2) echo "the rollback, set up before root is mounted; then the merge is finished" ;;
    esac
}

# demo_deb DIR VERSION SCRIPT: rwdemo VERSION, whose /usr/bin/rwdemo is SCRIPT.
demo_deb() {
    local d=$WORK/pkg/rwdemo-$2
    mkdir -p "$d/DEBIAN" "$d/usr/bin"
    printf 'Package: rwdemo\nVersion: %s\nArchitecture: all\nMaintainer: rewind demo <demo@localhost>\nDescription: the package the rewind demo upgrades\n' \
        "$2" >"$d/DEBIAN/control"
    printf '#!/bin/sh\n%s\n' "$3" >"$d/usr/bin/rwdemo"
    chmod 755 "$d/usr/bin/rwdemo"
    dpkg-deb --root-owner-group -Zgzip -b "$d" "$1/rwdemo_${2}_all.deb" >/dev/null
}

host_prepare() {
    (cd "$VM_REPO_DIR" && cargo build --release --quiet)
    local repo=$WORK/repo inst=$WORK/install f
    mkdir -p "$repo"
    demo_deb "$repo" 1 'echo "rwdemo 1: all good"'
    demo_deb "$repo" 2 'echo "rwdemo 2: cannot start: its configuration is unreadable" >&2; exit 1'
    (cd "$repo" && dpkg-scanpackages -m . /dev/null 2>/dev/null >Packages)
    printf 'deb [trusted=yes] file:/srv/rwrepo ./\n' >"$WORK/rwrepo.list"
    VM_DISK_ADD+=("$repo:/srv/rwrepo" "$WORK/rwrepo.list:/etc/apt/sources.list.d/rwrepo.list")
    # rewind as install.sh installs it on a machine with apt (the hook in apt.conf.d).
    mkdir -p "$inst/etc/apt/apt.conf.d"
    sh "$VM_REPO_DIR/install.sh" DESTDIR="$inst" >"$WORK/install.log" 2>&1
    [[ -f $inst/etc/apt/apt.conf.d/80rewind ]] || vm_die "demo-apt: install.sh did not install the apt hook"
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

guest_boot_1() {
    local set
    mkdir -p /run/lock/lvm
    rm -f /run/udev/control
    rm -f /etc/apt/sources.list /etc/apt/sources.list.d/debian.sources
    find /etc/apt/sources.list.d -type f ! -name rwrepo.list -delete
    apt-get -q update >"$BOOT_OUT/update.log" 2>&1 || g_fail "apt-get update: $(cat "$BOOT_OUT/update.log")"
    # The machine as it was: rwdemo 1 installed (dpkg alone: no apt run, no set).
    dpkg -i /srv/rwrepo/rwdemo_1_all.deb >"$BOOT_OUT/dpkg.log" 2>&1 || g_fail "dpkg -i rwdemo 1 failed"
    demo_version | tee "$OUT/version-before"
    demo_run run-before
    # The upgrade, through apt.
    {
        echo "# apt-get upgrade"
        DEBIAN_FRONTEND=noninteractive apt-get -y -o Dpkg::Use-Pty=0 upgrade 2>&1
    } | tee "$OUT/upgrade.out"
    demo_version | tee "$OUT/version-upgraded"
    demo_run run-upgraded
    rewind list | tee "$OUT/list"
    set=$(sed -n 's/^\(apt-[^ ]*\) .* auto .*upgrade rwdemo 1 -> 2.*$/\1/p' "$OUT/list")
    [[ -n $set && $(wc -l <<<"$set") == 1 ]] || g_fail "not one automatic set for the upgrade: [$set]"
    echo "$set" >"$OUT/set"
    g_lvm lvs -o lv_name,lv_tags --noheadings vg0 >"$OUT/lvs-set"
    {
        echo "# rewind rollback $set"
        rewind rollback "$set" 2>&1
    } | tee "$OUT/rollback.out"
    g_lvm lvs -a -o lv_name,lv_attr,lv_merging vg0 | tee "$OUT/lvs-flagged"
    grep -q 'merging' "$OUT/lvs-flagged" || g_fail "rewind rollback did not flag the merge"
}

guest_boot_2() {
    rm -f /run/udev/control
    dmesg | grep 'rewind' | tee "$OUT/rewind-early.log" || true
    dmsetup table | tee "$OUT/dm-table-start"
    rewind poll -v >"$OUT/poll.out" 2>&1 || g_fail "rewind poll failed: $(cat "$OUT/poll.out")"
    cat "$OUT/poll.out"
    dmsetup table | tee "$OUT/dm-table-end"
    g_lvm lvs -a -o lv_name,lv_attr vg0 | tee "$OUT/lvs-end"
    cat /run/motd.d/rewind >"$OUT/motd" 2>&1 || true
    {
        echo "# rewind status"
        rewind status 2>&1
    } | tee "$OUT/status"
    demo_version | tee "$OUT/version-after"
    demo_run run-after
}

host_check() {
    local set
    set=$(cat "$VM_STATE/set")
    vm_check "boot 1: the hook said it took the set" \
        grep -q "rewind: snapshot set $set taken (before apt (apt-get -y -o Dpkg::Use-Pty=0 upgrade): upgrade rwdemo 1 -> 2)" "$VM_STATE/upgrade.out"
    vm_check "stock lvs: the set's member is described by the upgrade" \
        grep -q "root.$set .*upgrade_rwdemo_1_-#3E_2" "$VM_STATE/lvs-set"
    vm_check "stock lvs: the set's member is automatic" grep -q "root.$set .*rewind_kind_auto" "$VM_STATE/lvs-set"
    vm_check "boot 1: rwdemo 2 fails" grep -qx '(exit status 1)' "$VM_STATE/run-upgraded"
    vm_check "boot 2: root came up through a snapshot-merge table" \
        grep -q '^vg0-root: 0 [0-9]* snapshot-merge ' "$VM_STATE/dm-table-start"
    vm_check "boot 2: root plain linear after rewind poll" grep -q '^vg0-root: 0 [0-9]* linear ' "$VM_STATE/dm-table-end"
    vm_check_eq "boot 2: dpkg: rwdemo" "1 installed" "$(cat "$VM_STATE/version-after")"
    vm_check_eq "boot 2: rwdemo runs" "rwdemo 1: all good
(exit status 0)" "$(cat "$VM_STATE/run-after")"
    vm_check "boot 2: the login notice" grep -q "rollback complete: vg0/root is back at snapshot set $set" "$VM_STATE/motd"
    vm_check "boot 2: rewind status names the set" grep -q "$set" "$VM_STATE/status"
    vm_check_plain_root "$WORK/disk.img"
}
