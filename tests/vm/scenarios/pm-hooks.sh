# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "pm-hooks" (issue 15; docs/HOOKS.md): the real pacman (6.0) and dnf (4.14) as Debian
# packages them, in the "pm" guest flavor, with rewind's alpm hooks in
# /usr/share/libalpm/hooks and its dnf plugin in dnf's plugin directory; test packages the
# host built with makepkg and rpmbuild (rwtest 1 and 2). / is vg0/root, the only member.
# One boot:
#   pacman -U rwtest 1, then 2: a set each before the transaction, described with the
#   targets and the versions they had ("rwtest (new)", "rwtest 1-1"), the post hook's
#   ", ok: rwtest 2-1" appended; pacman -U --needed of what is installed (nothing to do):
#   no set. dnf install rwtest 1, then 2: a set each ("install rwtest 1-1", "upgrade rwtest
#   1-1 -> 2-1", ", ok" after); dnf of what is installed (nothing to do): no set.
#   The VG filled: default policy: pacman -R and dnf remove warn and go on; with
#   on_failure = "stop": pacman -U and dnf install stop before the transaction (nothing
#   installed, pacman's and rpm's databases say so).
# Host: the sets' tags in stock lvs on the disk image (kind auto, the descriptions), vgck.

VM_SCENARIO_SUITE=long
VM_BOOTS=1
VM_ROOT_FLAVOR=pm
VM_TIMEOUT=${PM_HOOKS_TIMEOUT:-900}
VM_DISK_SIZE=4G
VM_LVS=(root:1400M)
VM_INITRAMFS_ARGS=(--no-lvm --no-systemd --modules-dir "${VM_REPO_DIR:-}/dracut-module")
VM_ROOT_ADD=(
    "${VM_REPO_DIR:-}/target/x86_64-unknown-linux-gnu/release/rewind:/usr/sbin/rewind"
    "${VM_REPO_DIR:-}/initramfs/rewind-early:/usr/lib/rewind/rewind-early"
)
VM_CMDLINE='root=/dev/mapper/vg0-root rd.lvm.lv=vg0/root ro printk.devkmsg=on'

host_prepare() {
    (cd "$VM_REPO_DIR" && cargo build --release --quiet)
    bash "$VM_REPO_DIR/tests/pkgs/build.sh" "$WORK/pkgs" rwtest 1 2 ||
        vm_die "pm-hooks: building the test packages failed"
    VM_DISK_ADD+=(
        "$WORK/pkgs:/srv/pkgs"
        "$VM_REPO_DIR/packaging/pacman/05-rewind-pre.hook:/usr/share/libalpm/hooks/05-rewind-pre.hook"
        "$VM_REPO_DIR/packaging/pacman/zz-rewind-post.hook:/usr/share/libalpm/hooks/zz-rewind-post.hook"
        "$VM_REPO_DIR/packaging/dnf/rewind.py:/usr/lib/python3/dist-packages/dnf-plugins/rewind.py"
        "$VM_REPO_DIR/packaging/dnf/rewind.conf:/etc/dnf/plugins/rewind.conf"
    )
}

# The guest side -------------------------------------------------------------------------------

# pm_auto: the automatic sets, oldest first, "NAME<TAB>DESCRIPTION" (rewind list's columns).
pm_auto() {
    rewind list | sed -n 's/^\([^ ]*\) *[^ ]* [^ ]* *auto  *[^ ]*  *[0-9]*  \(.*\)$/\1\t\2/p'
}

# pm_run LOG CMD...: CMD, its output in $BOOT_OUT/LOG and on the console; its exit status.
pm_run() {
    local log=$BOOT_OUT/$1
    shift
    echo "+ $*" | tee "$log"
    "$@" </dev/null >>"$log" 2>&1
    local rc=$?
    cat "$log"
    return "$rc"
}

# pm_rpmq NAME: NAME-VERSION-RELEASE as rpm's database has it, "none" when not installed
# (through python's rpm module, as dnf reads it).
pm_rpmq() {
    /usr/bin/python3 -c 'import rpm, sys
print(" ".join("%s-%s-%s" % (h["name"], h["version"], h["release"])
               for h in rpm.TransactionSet().dbMatch("name", sys.argv[1])) or "none")' "$1"
}

# pm_count N WHAT: exactly N automatic sets now.
pm_count() {
    local n
    n=$(pm_auto | wc -l)
    [[ $n == "$1" ]] || g_fail "$2: $n automatic sets, want $1"
}

# pm_last KEY: records the newest automatic set's name and description (spaces as ~).
pm_last() {
    local last
    last=$(pm_auto | tail -n1)
    g_record "${1}_set" "$(cut -f1 <<<"$last")"
    g_record "${1}_desc" "$(cut -f2 <<<"$last" | tr ' ' '~')"
}

guest_boot_1() {
    mkdir -p /run/lock/lvm /var/lib/pacman
    rm -f /run/udev/control
    export HOME=/root # rpm's database is ~/.rpmdb on Debian
    local p=/srv/pkgs
    [[ -z $(pm_auto) ]] || g_fail "a set before any transaction"

    # pacman
    pm_run pac1.log pacman --noconfirm -U "$p/rwtest-1-1-any.pkg.tar.zst" || g_fail "pacman -U rwtest 1 failed"
    grep -q 'rewind: snapshot set pacman-.* taken' "$BOOT_OUT/pac1.log" || g_fail "pacman: no set taken"
    pm_count 1 "pacman install"
    pm_last pac_install
    pm_run pac2.log pacman --noconfirm -U "$p/rwtest-2-1-any.pkg.tar.zst" || g_fail "pacman -U rwtest 2 failed"
    pm_count 2 "pacman upgrade"
    pm_last pac_upgrade
    g_record pac_after "$(pacman -Q rwtest | tr ' ' '~')"
    pm_run pac3.log pacman --noconfirm --needed -U "$p/rwtest-2-1-any.pkg.tar.zst" || g_fail "pacman --needed failed"
    grep -q 'there is nothing to do' "$BOOT_OUT/pac3.log" || g_fail "pacman did something"
    pm_count 2 "pacman with nothing to do"
    # rewind diff: each set's pacman database (the snapshot mounted read-only) against now.
    local up
    up=$(pm_auto | tail -n1 | cut -f1)
    rewind diff "$up" | tee "$BOOT_OUT/diff-upgrade" || g_fail "rewind diff $up failed"
    rewind diff --json "$(pm_auto | head -n1 | cut -f1)" | tee "$BOOT_OUT/diff-install.json" ||
        g_fail "rewind diff --json failed"
    rewind list | tee "$BOOT_OUT/list-after-diff"
    [[ -z $(ls -A /run/rewind/"$up" 2>/dev/null) ]] || g_fail "rewind diff left the set mounted"

    # dnf
    local dnf=(dnf -y --releasever=12)
    pm_run dnf1.log "${dnf[@]}" install "$p/rwtest-1-1.noarch.rpm" || g_fail "dnf install rwtest 1 failed"
    grep -q 'rewind: snapshot set dnf-.* taken' "$BOOT_OUT/dnf1.log" || g_fail "dnf: no set taken"
    pm_count 3 "dnf install"
    pm_last dnf_install
    pm_run dnf2.log "${dnf[@]}" install "$p/rwtest-2-1.noarch.rpm" || g_fail "dnf upgrade to rwtest 2 failed"
    pm_count 4 "dnf upgrade"
    pm_last dnf_upgrade
    g_record dnf_after "$(pm_rpmq rwtest)"
    pm_run dnf3.log "${dnf[@]}" install "$p/rwtest-2-1.noarch.rpm" || g_fail "dnf (nothing to do) failed"
    grep -q 'Nothing to do' "$BOOT_OUT/dnf3.log" || g_fail "dnf did something"
    pm_count 4 "dnf with nothing to do"
    # rewind diff of the dnf upgrade's set: rpm's database (at rpm's %_dbpath, ~/.rpmdb as
    # Debian builds rpm) read with the rpm command from the snapshot and now.
    up=$(pm_auto | tail -n1 | cut -f1)
    rewind diff "$up" | tee "$BOOT_OUT/diff-dnf-upgrade" || g_fail "rewind diff $up (rpm) failed"
    g_lvm lvs -o lv_name,lv_tags --noheadings vg0 | tee "$BOOT_OUT/lvs"

    # Where the hook's time goes (issue 15's benchmark; printed by the host, not asserted):
    # stock lvcreate -s of vg0/root, rewind snapshot (a set of vg0/root), and the pacman hook
    # (pre + post), three times each; one rewind snapshot -vv kept for its timestamps.
    local t0 i keep
    keep=$(pm_auto | cut -f1)
    # The hook's own sets here must not prune the four above (retention keeps the last 5).
    mkdir -p /etc/rewind
    printf '[prune]\nkeep_last = 50\n' >/etc/rewind/rewind.toml
    for i in 1 2 3; do
        t0=$(date +%s%N)
        g_lvm lvcreate -q -s -L 64M -n bench vg0/root >/dev/null || g_fail "lvcreate -s failed"
        echo $((($(date +%s%N) - t0) / 1000000)) >>"$OUT/ms-lvcreate"
        g_lvm lvremove -q -y vg0/bench >/dev/null
        t0=$(date +%s%N)
        rewind snapshot --name "bench$i" >/dev/null || g_fail "rewind snapshot failed"
        echo $((($(date +%s%N) - t0) / 1000000)) >>"$OUT/ms-snapshot"
        rewind delete "bench$i" >/dev/null
        t0=$(date +%s%N)
        echo rwtest | rewind hook pacman pre
        rewind hook pacman post
        echo $((($(date +%s%N) - t0) / 1000000)) >>"$OUT/ms-hook"
        sleep 1 # the hook's sets are named by the second
    done
    rewind snapshot -vv --name benchv 2>"$BOOT_OUT/snapshot-vv.log" >/dev/null
    rewind delete benchv >/dev/null
    cat "$BOOT_OUT/snapshot-vv.log"
    while read -r i _; do
        grep -qx "$i" <<<"$keep" || rewind delete "$i" >/dev/null
    done < <(pm_auto)
    rm /etc/rewind/rewind.toml
    pm_count 4 "after the benchmark"

    # The VG too full for a set. Default policy: warn, go on.
    g_lvm lvcreate -q -n filler -l 100%FREE vg0 >/dev/null
    pm_run pac-warn.log pacman --noconfirm -R rwtest || g_fail "pacman -R stopped under the default policy"
    grep -q 'rewind: warning: no rollback point was taken: .*pacman goes on' "$BOOT_OUT/pac-warn.log" ||
        g_fail "pacman: no warning"
    pm_run dnf-warn.log "${dnf[@]}" remove rwtest || g_fail "dnf remove stopped under the default policy"
    grep -q 'rewind: warning: no rollback point was taken: .*dnf goes on' "$BOOT_OUT/dnf-warn.log" ||
        g_fail "dnf: no warning"
    # Strict: both stop before the transaction.
    mkdir -p /etc/rewind
    printf '[hooks]\non_failure = "stop"\n' >/etc/rewind/rewind.toml
    if pm_run pac-stop.log pacman --noconfirm -U "$p/rwtest-1-1-any.pkg.tar.zst"; then
        g_fail "pacman went on under on_failure = stop"
    fi
    grep -q 'rewind: no rollback point could be taken: .*stopping pacman before the transaction' "$BOOT_OUT/pac-stop.log" ||
        g_fail "pacman: no stop message"
    g_record pac_strict "$(pacman -Q rwtest 2>&1 | tr ' ' '~')"
    if pm_run dnf-stop.log "${dnf[@]}" install "$p/rwtest-1-1.noarch.rpm"; then
        g_fail "dnf went on under on_failure = stop"
    fi
    grep -q 'rewind: no rollback point could be taken: .*stopping dnf before the transaction' "$BOOT_OUT/dnf-stop.log" ||
        g_fail "dnf: no stop message"
    g_record dnf_strict "$(pm_rpmq rwtest)"
    [[ -e /usr/share/rwtest/version ]] && g_fail "a stopped transaction installed rwtest's file"
    rm /etc/rewind/rewind.toml
    g_lvm lvremove -q -y vg0/filler >/dev/null
    pm_count 4 "after the full VG"
}

# pm_tags LV: LV's tags in stock lvs on the disk image, one a line.
pm_tags() {
    vm_image_lvm "$WORK/disk.img" lvs --noheadings -o lv_name,lv_tags vg0 |
        awk -v lv="$1" '$1 == lv { print $2 }' | tr ',' '\n'
}

host_check() {
    local set
    vm_check_eq "pacman install's set" \
        "before~pacman~(pacman~--noconfirm~-U~/srv/pkgs/rwtest-1-1-any.pkg.tar.zst):~rwtest~(new),~ok:~rwtest~1-1" \
        "$(vm_guest_value pac_install_desc)"
    vm_check_eq "pacman upgrade's set" \
        "before~pacman~(pacman~--noconfirm~-U~/srv/pkgs/rwtest-2-1-any.pkg.tar.zst):~rwtest~1-1,~ok:~rwtest~2-1" \
        "$(vm_guest_value pac_upgrade_desc)"
    vm_check_eq "pacman: rwtest 2-1 installed" "rwtest~2-1" "$(vm_guest_value pac_after)"
    vm_check_eq "dnf install's set" \
        "before~dnf~(/usr/bin/dnf~-y~--releasever=12~install~/srv/pkgs/rwtest-1-1.noarch.rpm):~install~rwtest~1-1,~ok" \
        "$(vm_guest_value dnf_install_desc)"
    vm_check_eq "dnf upgrade's set" \
        "before~dnf~(/usr/bin/dnf~-y~--releasever=12~install~/srv/pkgs/rwtest-2-1.noarch.rpm):~upgrade~rwtest~1-1~->~2-1,~ok" \
        "$(vm_guest_value dnf_upgrade_desc)"
    vm_check_eq "dnf: rwtest 2-1 installed" "rwtest-2-1" "$(vm_guest_value dnf_after)"
    vm_check_eq "strict: pacman installed nothing" "error:~package~'rwtest'~was~not~found" "$(vm_guest_value pac_strict)"
    vm_check_eq "strict: dnf installed nothing" "none" "$(vm_guest_value dnf_strict)"
    # Stock LVM2 reads the sets back from the disk.
    for set in pac_install pac_upgrade dnf_install dnf_upgrade; do
        local lv
        lv=root.$(vm_guest_value "${set}_set")
        vm_check "stock lvs: $lv is an automatic set's member" grep -qx rewind_kind_auto <(pm_tags "$lv")
    done
    vm_check "stock lvs: the pacman upgrade's set names rwtest 1-1" \
        grep -q '^rewind_desc0_before_pacman_.*:_rwtest_1-1$' <(pm_tags "root.$(vm_guest_value pac_upgrade_set)")
    vm_check "stock lvs: the dnf upgrade's set names both versions (the description goes on in the next tag)" \
        grep -q '^rewind_desc0_.*:_upgrade_rwtest_1-1_-#3E_2' <(pm_tags "root.$(vm_guest_value dnf_upgrade_set)")
    # rewind diff after the pacman upgrade: the upgrade's set had rwtest 1-1, now 2-1; the
    # install's set had no rwtest; dpkg's database the same in both.
    local d=$VM_STATE/boot1
    vm_check_eq "rewind diff of the upgrade's set" \
        "dpkg (snapshot set $(vm_guest_value pac_upgrade_set) -> now): 0 package(s) differ
pacman (snapshot set $(vm_guest_value pac_upgrade_set) -> now): 1 package(s) differ
  upgraded   rwtest  1-1 -> 2-1" "$(cat "$d/diff-upgrade")"
    vm_check_eq "rewind diff --json of the install's set: pacman" \
        '[{"name":"rwtest","kind":"installed","set":null,"now":"2-1"}]' \
        "$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps([x["packages"] for x in d["databases"] if x["manager"]=="pacman"][0], separators=(",", ":")))' <"$d/diff-install.json")"
    local u
    u=$(vm_guest_value dnf_upgrade_set)
    vm_check_eq "rewind diff of the dnf upgrade's set: rpm's database" \
        "dpkg (snapshot set $u -> now): 0 package(s) differ
pacman (snapshot set $u -> now): 0 package(s) differ
rpm (snapshot set $u -> now): 1 package(s) differ
  upgraded   rwtest  1-1 -> 2-1" "$(cat "$d/diff-dnf-upgrade")"
    printf 'pm-hooks benchmark (ms, median of 3): lvcreate -s %s, rewind snapshot %s, pacman hook pre+post %s (runs: %s / %s / %s)\n' \
        "$(sort -n "$VM_STATE/ms-lvcreate" | sed -n 2p)" "$(sort -n "$VM_STATE/ms-snapshot" | sed -n 2p)" \
        "$(sort -n "$VM_STATE/ms-hook" | sed -n 2p)" "$(paste -sd' ' "$VM_STATE/ms-lvcreate")" \
        "$(paste -sd' ' "$VM_STATE/ms-snapshot")" "$(paste -sd' ' "$VM_STATE/ms-hook")"
    vm_check "vgck vg0" vm_image_lvm "$WORK/disk.img" vgck vg0
    local n
    n=$(vm_image_lvm "$WORK/disk.img" lvs -a --noheadings -o lv_name vg0 | grep -c 'root\.')
    vm_check_eq "four sets of vg0/root on the disk" 4 "$n"
}
