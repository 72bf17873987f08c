# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "apt-hook" (issue 15; docs/HOOKS.md): real apt and dpkg in the lean guest, with
# packaging/apt/80rewind in /etc/apt/apt.conf.d and a local repository the host built
# (dpkg-deb, dpkg-scanpackages): rwtest 1 and 2, rwother 1. / is vg0/root, the only member.
# Boot 1: a manual set keepme. apt-get install rwtest=1: one automatic set, described with the
#         package and version, ", ok" appended after the transaction. The same command again
#         (nothing to do: apt never runs dpkg) and a configure-only transaction (rwother
#         unpacked by dpkg, configured by apt-get -f: the hook says it changes nothing): no set.
#         rwextra installed, removed, installed; a second manual set keepme2.
#         apt-get upgrade: one set "upgrade rwtest 1 -> 2". The VG filled (a filler LV):
#         default policy: apt warns that no rollback point was taken and installs rwother;
#         on_failure = "stop": `apt-get remove rwother` stops before dpkg runs (dpkg's status
#         file byte-identical, rwother still installed). Four more transactions: ten
#         automatic ones in all (issue 15 proof 4): five automatic sets stay (stock lvs counts
#         the tags), keepme and keepme2 stay. The other sets deleted; `rewind
#         rollback` to the upgrade's set.
# Boot 2: the merge finishes (rewind poll): rwtest 1 again for dpkg and on disk, rwother not
#         installed (the state before the upgrade).
#         (Also: three transactions timed with and three without the hook, and one whose
#         package's postinst fails: the set says ", failed: rwbad 1 (half-configured)".)
# Host:   the sets' descriptions and kinds in stock lvs's tags (boot 1), one set per
#         transaction, the packages, vgck, no snapshot left.

VM_SCENARIO_SUITE=long
VM_BOOTS=2
VM_TIMEOUT=${APT_HOOK_TIMEOUT:-900}
VM_DISK_SIZE=4G # root, five automatic sets and two manual ones (240 MiB each), and the sixth taken before the oldest is pruned
VM_LVS=(root:1200M)
VM_INITRAMFS_ARGS=(--no-lvm --no-systemd --modules-dir "${VM_REPO_DIR:-}/dracut-module")
VM_ROOT_ADD=(
    "${VM_REPO_DIR:-}/target/x86_64-unknown-linux-gnu/release/rewind:/usr/sbin/rewind"
    "${VM_REPO_DIR:-}/initramfs/rewind-early:/usr/lib/rewind/rewind-early"
)
VM_CMDLINE='root=/dev/mapper/vg0-root rd.lvm.lv=vg0/root ro printk.devkmsg=on'

# ah_deb DIR NAME VERSION [POSTINST]: a tiny package whose file says its version.
ah_deb() {
    local d=$WORK/pkg/$2-$3
    mkdir -p "$d/DEBIAN" "$d/usr/share/$2"
    printf 'Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: rewind tests <tests@localhost>\nDescription: rewind apt-hook test package\n' \
        "$2" "$3" >"$d/DEBIAN/control"
    if [[ -n ${4:-} ]]; then
        printf '#!/bin/sh\n%s\n' "$4" >"$d/DEBIAN/postinst"
        chmod 755 "$d/DEBIAN/postinst"
    fi
    printf '%s %s\n' "$2" "$3" >"$d/usr/share/$2/version"
    dpkg-deb --root-owner-group -Zgzip -b "$d" "$1/${2}_${3}_all.deb" >/dev/null
}

host_prepare() {
    (cd "$VM_REPO_DIR" && cargo build --release --quiet)
    local repo=$WORK/repo
    mkdir -p "$repo"
    ah_deb "$repo" rwtest 1
    ah_deb "$repo" rwtest 2
    ah_deb "$repo" rwother 1
    ah_deb "$repo" rwextra 1
    ah_deb "$repo" rwbad 1 'echo "rwbad: postinst fails on purpose" >&2; exit 1'
    (cd "$repo" && dpkg-scanpackages -m . /dev/null 2>/dev/null >Packages)
    grep -c '^Package: ' "$repo/Packages" | grep -qx 5 || vm_die "apt-hook: the repository lacks a package"
    printf 'deb [trusted=yes] file:/srv/rwrepo ./\n' >"$WORK/rwrepo.list"
    VM_DISK_ADD+=(
        "$repo:/srv/rwrepo"
        "$WORK/rwrepo.list:/etc/apt/sources.list.d/rwrepo.list"
        "$VM_REPO_DIR/packaging/apt/80rewind:/etc/apt/apt.conf.d/80rewind"
    )
}

# The guest side -------------------------------------------------------------------------------

ah_setup() {
    mkdir -p /run/lock/lvm
    # The initramfs's udevd left its socket; nothing listens after switch_root.
    rm -f /run/udev/control
}

# ah_auto: the automatic sets, oldest first, one "NAME<TAB>DESCRIPTION" line each (rewind
# list's columns: SET, TIME (two words), KIND, STATE, MEMBERS, DESCRIPTION).
ah_auto() {
    rewind list | sed -n 's/^\([^ ]*\) *[^ ]* [^ ]* *auto  *[^ ]*  *[0-9]*  \(.*\)$/\1\t\2/p'
}

# ah_apt LOG ARGS...: apt-get ARGS, its output in $BOOT_OUT/LOG; its exit status.
ah_apt() {
    local log=$BOOT_OUT/$1
    shift
    echo "+ apt-get $*" | tee "$log"
    DEBIAN_FRONTEND=noninteractive apt-get -y -o Dpkg::Use-Pty=0 "$@" >>"$log" 2>&1
    local rc=$?
    cat "$log"
    return "$rc"
}

# ah_version PKG: "VERSION STATE" as dpkg has it, "none" when it is not installed.
ah_version() {
    local v
    v=$(dpkg-query -W -f '${Version} ${db:Status-Status}' "$1" 2>/dev/null) || v=''
    case $v in
    '' | *' not-installed' | *' config-files') echo none ;;
    *) echo "$v" ;;
    esac
}

guest_boot_1() {
    local out n
    ah_setup
    # Only the local repository.
    rm -f /etc/apt/sources.list /etc/apt/sources.list.d/debian.sources
    find /etc/apt/sources.list.d -type f ! -name rwrepo.list -delete
    ah_apt update.log update || g_fail "apt-get update failed"
    [[ -z $(ah_auto) ]] || g_fail "a set before any transaction"

    out=$(rewind snapshot --name keepme --description "by hand" 2>&1) || g_fail "manual set: $out"

    # 1. A transaction: one set, named for what it does; how it ended appended.
    ah_apt install1.log install rwtest=1 || g_fail "apt-get install rwtest=1 failed"
    grep -q 'rewind: snapshot set apt-.* taken (before apt (apt-get -y -o Dpkg::Use-Pty=0 install rwtest=1): install rwtest 1)' \
        "$BOOT_OUT/install1.log" || g_fail "the hook did not say it took a set"
    grep -q 'rewind: snapshot set apt-.*: apt finished as planned' "$BOOT_OUT/install1.log" ||
        g_fail "the post hook did not record the end"
    ah_auto | tee "$BOOT_OUT/auto1"
    [[ $(wc -l <"$BOOT_OUT/auto1") == 1 ]] || g_fail "not one set for one transaction"
    g_lvm lvs -o lv_name,lv_tags --noheadings vg0 | tee "$BOOT_OUT/lvs1"

    # 2. Nothing to do: apt runs no dpkg, the hook does not run.
    ah_apt noop.log install rwtest=1 || g_fail "apt-get install (no-op) failed"
    # 3. Configure only: dpkg unpacked rwother, apt configures it: changes no package.
    dpkg --unpack /srv/rwrepo/rwother_1_all.deb
    ah_apt configure.log install -f || g_fail "apt-get install -f failed"
    grep -q 'rewind: no snapshot set taken: this transaction changes no package' "$BOOT_OUT/configure.log" ||
        g_fail "no skip message for a configure-only transaction"
    [[ $(ah_version rwother) == "1 installed" ]] || g_fail "rwother not configured: $(ah_version rwother)"
    ah_apt purge-other.log purge rwother || g_fail "apt-get purge rwother failed"
    ah_auto | tee "$BOOT_OUT/auto2"
    [[ $(wc -l <"$BOOT_OUT/auto2") == 2 ]] || g_fail "the no-op and configure-only runs took sets (or the purge none)"

    # Three more (rwextra in, out, in again), and a second manual set.
    ah_apt extra1.log install rwextra || g_fail "apt-get install rwextra failed"
    ah_apt extra2.log remove rwextra || g_fail "apt-get remove rwextra failed"
    ah_apt extra3.log install rwextra || g_fail "apt-get install rwextra (again) failed"
    out=$(rewind snapshot --name keepme2 --description "by hand, later" 2>&1) || g_fail "manual set 2: $out"
    ah_auto | tee "$BOOT_OUT/auto2b"
    [[ $(wc -l <"$BOOT_OUT/auto2b") == 5 ]] || g_fail "not one set for each of five transactions"

    # 4. The upgrade: the sixth automatic set; the oldest (install rwtest 1) is pruned.
    ah_apt upgrade.log upgrade || g_fail "apt-get upgrade failed"
    [[ $(ah_version rwtest) == "2 installed" ]] || g_fail "rwtest not upgraded: $(ah_version rwtest)"
    ah_auto | tee "$BOOT_OUT/auto3"
    [[ $(wc -l <"$BOOT_OUT/auto3") == 5 ]] || g_fail "not five automatic sets after the sixth transaction"
    tail -n1 "$BOOT_OUT/auto3" | grep -q 'upgrade rwtest 1 -> 2' || g_fail "the newest set is not the upgrade's"
    grep -q 'install rwtest 1' "$BOOT_OUT/auto3" && g_fail "the oldest automatic set was not pruned at the sixth"
    UP=$(tail -n1 "$BOOT_OUT/auto3" | cut -f1)
    g_record upgrade_set "$UP"
    g_record upgrade_desc "$(tail -n1 "$BOOT_OUT/auto3" | cut -f2 | tr ' ' '~')"
    g_lvm lvs -o lv_name,lv_tags --noheadings vg0 | tee "$BOOT_OUT/lvs-upgrade"

    # 5. The VG too full for the set. Default policy: warn, apt goes on.
    g_lvm lvcreate -q -n filler -l 100%FREE vg0 >/dev/null
    ah_apt full-warn.log install rwother || g_fail "apt stopped under the default policy"
    grep -q 'rewind: warning: no rollback point was taken: .*apt goes on' "$BOOT_OUT/full-warn.log" ||
        g_fail "no warning that no rollback point was taken"
    [[ $(ah_version rwother) == "1 installed" ]] || g_fail "rwother not installed: $(ah_version rwother)"
    # Strict: apt stops before dpkg runs.
    mkdir -p /etc/rewind
    printf '[hooks]\non_failure = "stop"\n' >/etc/rewind/rewind.toml
    sha256sum /var/lib/dpkg/status >"$BOOT_OUT/status.before"
    if ah_apt full-stop.log remove rwother; then
        g_fail "apt went on under on_failure = stop"
    fi
    grep -q 'rewind: no rollback point could be taken: .*stopping apt before dpkg runs' "$BOOT_OUT/full-stop.log" ||
        g_fail "no stop message"
    sha256sum -c "$BOOT_OUT/status.before" || g_fail "dpkg's status changed although apt stopped"
    [[ $(ah_version rwother) == "1 installed" ]] || g_fail "rwother changed: $(ah_version rwother)"
    g_record strict_rwother "$(ah_version rwother | tr ' ' '~')"
    rm /etc/rewind/rewind.toml
    g_lvm lvremove -q -y vg0/filler >/dev/null
    ah_auto | tee "$BOOT_OUT/auto4"
    [[ $(wc -l <"$BOOT_OUT/auto4") == 5 ]] || g_fail "a set was taken with the VG full (or one lost)"
    cmp -s "$BOOT_OUT/auto3" "$BOOT_OUT/auto4" || g_fail "the automatic sets changed with the VG full"

    # 6. Three more transactions, timed; three without the hook (the snippet moved away),
    #    timed (the benchmark: medians printed by the host); one whose package's postinst
    #    fails: ", failed: ..." appended. Retention (issue 15 proof 4): ten automatic
    #    transactions in all, the five oldest pruned, five stay (the upgrade's the oldest),
    #    both manual sets stay.
    local t0 verb i=0
    for verb in remove install remove; do
        t0=$(date +%s%N) i=$((i + 1))
        ah_apt "more-$i-$verb.log" "$verb" rwother || g_fail "apt-get $verb rwother failed"
        echo $((($(date +%s%N) - t0) / 1000000)) >>"$OUT/ms-hook"
    done
    mv /etc/apt/apt.conf.d/80rewind /root/80rewind
    # Keep what apt hands a protocol-3 hook (the last run's), to time the hook alone below.
    printf '%s\n' 'DPkg::Pre-Install-Pkgs { "/usr/bin/tee /run/apt-input >/dev/null"; };' \
        'DPkg::Tools::Options::/usr/bin/tee::Version "3";' >/etc/apt/apt.conf.d/81capture
    for verb in install remove install; do
        t0=$(date +%s%N) i=$((i + 1))
        ah_apt "bare-$i-$verb.log" "$verb" rwother || g_fail "apt-get $verb rwother (no hook) failed"
        echo $((($(date +%s%N) - t0) / 1000000)) >>"$OUT/ms-bare"
    done
    mv /root/80rewind /etc/apt/apt.conf.d/80rewind
    rm /etc/apt/apt.conf.d/81capture
    grep -q '^rwother - - none < 1 all ' /run/apt-input || g_fail "apt's protocol-3 input not captured"
    grep -q 'rewind:' "$BOOT_OUT"/bare-*.log && g_fail "the hook ran with the snippet away"
    if ah_apt bad.log install rwbad; then
        g_fail "rwbad's failing postinst did not fail apt"
    fi
    grep -q 'rewind: snapshot set apt-.*: apt did not finish as planned (rwbad 1 (half-configured))' "$BOOT_OUT/bad.log" ||
        g_fail "the post hook did not say the transaction failed"
    ah_auto | tee "$BOOT_OUT/auto5"
    g_record auto_sets "$(wc -l <"$BOOT_OUT/auto5")"
    g_record bad_desc "$(tail -n1 "$BOOT_OUT/auto5" | cut -f2 | tr ' ' '~')"
    grep -q 'install rwtest 1' "$BOOT_OUT/auto5" && g_fail "the oldest automatic set was not pruned"
    [[ $(head -n1 "$BOOT_OUT/auto5" | cut -f1) == "$UP" ]] || g_fail "the upgrade's set is not the oldest kept"
    rewind list | tee "$BOOT_OUT/list5"
    grep -q '^keepme .* manual ' "$BOOT_OUT/list5" || g_fail "the manual set was pruned"
    grep -q '^keepme2 .* manual ' "$BOOT_OUT/list5" || g_fail "the second manual set was pruned"
    grep -h '^rewind: snapshot set apt-.* taken' "$BOOT_OUT"/*.log | sort -u >"$BOOT_OUT/taken"
    g_record auto_taken "$(wc -l <"$BOOT_OUT/taken")"
    g_lvm lvs -o lv_name,lv_tags --noheadings vg0 | tee "$BOOT_OUT/lvs5"

    # 7. Back to before the upgrade: the other sets go, the upgrade's set is flagged.
    while read -r n _; do
        [[ $n == "$UP" ]] || rewind delete "$n" >/dev/null
    done < <(ah_auto)
    rewind delete keepme >/dev/null
    rewind delete keepme2 >/dev/null
    # The hook alone (pre: a set of vg0/root; post: dpkg asked, the outcome tagged), three
    # times on apt's own input from above; then those sets deleted again.
    for n in 1 2 3; do
        t0=$(date +%s%N)
        rewind hook apt pre </run/apt-input
        rewind hook apt post
        echo $((($(date +%s%N) - t0) / 1000000)) >>"$OUT/ms-hook-alone"
    done
    while read -r n _; do
        [[ $n == "$UP" ]] || rewind delete "$n" >/dev/null
    done < <(ah_auto)
    out=$(rewind rollback "$UP" 2>&1) || g_fail "rewind rollback $UP: $out"
    echo "$out"
    g_record before_rollback "$(ah_version rwtest | tr ' ' '~')"
}

guest_boot_2() {
    ah_setup
    RUST_LOG=info rewind poll -v 2>&1 | tee "$BOOT_OUT/poll.out"
    g_record after_rwtest "$(ah_version rwtest | tr ' ' '~')"
    g_record after_rwother "$(ah_version rwother | tr ' ' '~')"
    g_record after_file "$(tr ' ' '~' </usr/share/rwtest/version)"
    g_lvm lvs -a -o lv_name,lv_attr,lv_tags vg0 | tee "$BOOT_OUT/lvs"
    rewind list | tee "$BOOT_OUT/list"
}

# ah_tags FILE LV: LV's tags in stock lvs's output FILE, one a line.
ah_tags() {
    awk -v lv="$2" '$1 == lv { print $2 }' "$1" | tr ',' '\n'
}

host_check() {
    local s=$VM_STATE/boot1 first
    first=$(awk '$1 ~ /^root\.apt-/ { print $1; exit }' "$s/lvs1")
    vm_check "boot 1: stock lvs: the install's set is automatic" grep -qx rewind_kind_auto <(ah_tags "$s/lvs1" "$first")
    vm_check "boot 1: stock lvs: the install's set names the command and the package" \
        grep -qx 'rewind_desc0_before_apt_#28apt-get_-y_-o_Dpkg::Use-Pty=0_install_rwtest=1#29:_install_rwtest_1' <(ah_tags "$s/lvs1" "$first")
    vm_check "boot 1: stock lvs: how it ended, appended" grep -qx 'rewind_desc1_#2C_ok' <(ah_tags "$s/lvs1" "$first")
    vm_check "boot 1: stock lvs: the manual set is manual" grep -qx rewind_kind_manual <(ah_tags "$s/lvs1" root.keepme)
    vm_check_eq "the upgrade's set's description" \
        "before~apt~(apt-get~-y~-o~Dpkg::Use-Pty=0~upgrade):~upgrade~rwtest~1~->~2,~ok" "$(vm_guest_value upgrade_desc)"
    vm_check "stock lvs: the upgrade's set names both versions" \
        grep -q 'upgrade_rwtest_1_-#3E_2' <(ah_tags "$s/lvs-upgrade" "root.$(vm_guest_value upgrade_set)")
    vm_check_eq "strict policy: rwother untouched" "1~installed" "$(vm_guest_value strict_rwother)"
    vm_check_eq "retention: ten automatic transactions took a set each" 10 "$(vm_guest_value auto_taken)"
    vm_check_eq "retention: five automatic sets left (rewind list)" 5 "$(vm_guest_value auto_sets)"
    vm_check_eq "retention: stock lvs: five members tagged automatic" 5 \
        "$(awk '{ print $2 }' "$s/lvs5" | tr ',' '\n' | grep -cx rewind_kind_auto)"
    vm_check_eq "retention: stock lvs: both manual sets kept" "root.keepme root.keepme2" \
        "$(awk '$2 ~ /(^|,)rewind_kind_manual(,|$)/ { print $1 }' "$s/lvs5" | sort | paste -sd ' ')"
    vm_check_eq "a failed transaction's set says so" \
        "before~apt~(apt-get~-y~-o~Dpkg::Use-Pty=0~install~rwbad):~install~rwbad~1,~failed:~rwbad~1~(half-configured)" \
        "$(vm_guest_value bad_desc)"
    # The benchmark (not asserted: TESTING.md): apt-get remove/install of one tiny package,
    # median of three, with the hook (a set of vg0/root taken and pruned) and without.
    local hook bare
    hook=$(sort -n "$VM_STATE/ms-hook" | sed -n 2p) bare=$(sort -n "$VM_STATE/ms-bare" | sed -n 2p)
    printf 'apt-hook benchmark: apt-get with the hook %s ms, without %s ms (median of 3); the hook alone (pre + post) %s ms (median of 3: %s)\n' \
        "$hook" "$bare" "$(sort -n "$VM_STATE/ms-hook-alone" | sed -n 2p)" "$(paste -sd' ' "$VM_STATE/ms-hook-alone")"
    vm_check_eq "before the rollback: rwtest 2" "2~installed" "$(vm_guest_value before_rollback)"
    vm_check_eq "after the rollback: dpkg says rwtest 1" "1~installed" "$(vm_guest_value after_rwtest)"
    vm_check_eq "after the rollback: rwtest's file is version 1's" "rwtest~1" "$(vm_guest_value after_file)"
    vm_check_eq "after the rollback: rwother not installed (as before the upgrade)" "none" "$(vm_guest_value after_rwother)"
    vm_check "vgck vg0" vm_image_lvm "$WORK/disk.img" vgck vg0
    local left
    left=$(vm_image_lvm "$WORK/disk.img" lvs -a --noheadings -o lv_name vg0 | tr -d ' ' | sort | paste -sd,)
    vm_check_eq "vg0's LVs at the end" "root" "$left"
}
