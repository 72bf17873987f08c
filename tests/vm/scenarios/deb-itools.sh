# shellcheck shell=bash disable=SC2034 # VM_* settings are read by tests/vm/run.sh
# Scenario "deb-itools" (issue 20's VM proof; the story of issue 21's demo): rewind's Debian
# package (packaging/deb/build.sh) installed with the real apt in a Debian 12 guest that uses
# initramfs-tools and stock LVM2, booted from the initramfs the guest's own update-initramfs
# wrote (taken from the guest's disk by the host: vm_boot_initrd), rolled back with what the
# package installed, then removed and purged. Nothing of rewind is copied in by the harness.
# Boot 1: (a stock dracut image with LVM2; the machine before it has initramfs-tools) apt
#         installs initramfs-tools in place of dracut and rwdemo 1 from a local repository;
#         update-initramfs builds the stock image (LVM2, no rewind). `apt install
#         ./rewind_*.deb`: its trigger rebuilds the image with rewind; the apt hook, the poller's
#         enable link. `apt-get upgrade`: rwdemo 1 -> 2 (v2's command fails: the bad upgrade);
#         the hook takes a set first; `rewind rollback SET`.
# Boot 2: (the guest's image, with rewind) rewind early sets up the merge; `rewind poll`
#         finishes it: rwdemo 1 again, "rollback complete" in the login notice and `rewind
#         status`. `apt remove rewind`: the image rebuilt without rewind, the apt hook gone, apt
#         installs a package; `apt purge rewind`: the root's file list as before the install.
# Boot 3: (the image rebuilt at the removal) stock LVM2 alone brings root up (with the set the
#         removal's own apt run took beside it: the hook ran before dpkg removed rewind); stock
#         lvremove drops that set; apt works.
# Host:   each image the guest built is the one booted (sha256); stock vgck and lvs: root
#         alone, plain.

VM_SCENARIO_SUITE=long
VM_BOOTS=3
VM_TIMEOUT=${DEB_ITOOLS_TIMEOUT:-1200}
VM_DISK_SIZE=3G
VM_LVS=(root:1200M)
VM_INITRAMFS_ARGS=(--lvm --no-systemd)
VM_CMDLINE='root=/dev/mapper/vg0-root rd.lvm.lv=vg0/root ro printk.devkmsg=on'

vm_boot_title() {
    case $1 in
    1) echo "initramfs-tools, apt install ./rewind.deb, apt upgrade (the hook's set), rewind rollback" ;;
    2) echo "the guest's own image: the rollback; then apt remove and purge rewind" ;;
    3) echo "the image rebuilt without rewind: stock LVM2 alone" ;;
    esac
}
vm_boot_initrd() { [[ $1 -gt 1 ]] && echo "$WORK/initrd-boot$1.img"; }

# di_deb DIR NAME VERSION SCRIPT: a tiny package whose /usr/bin/NAME is SCRIPT.
di_deb() {
    local d=$WORK/pkg/$2-$3
    mkdir -p "$d/DEBIAN" "$d/usr/bin"
    printf 'Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: rewind tests <tests@localhost>\nDescription: rewind deb-itools test package\n' \
        "$2" "$3" >"$d/DEBIAN/control"
    printf '#!/bin/sh\n%s\n' "$4" >"$d/usr/bin/$2"
    chmod 755 "$d/usr/bin/$2"
    dpkg-deb --root-owner-group -Zgzip -b "$d" "$1/${2}_${3}_all.deb" >/dev/null
}

host_prepare() {
    local repo=$WORK/repo deb
    REWIND_DEB_OUT=$WORK/deb LINTIAN=0 bash "$VM_REPO_DIR/packaging/deb/build.sh" >"$WORK/deb-build.log" 2>&1 ||
        { tail -n 20 "$WORK/deb-build.log" >&2; vm_die "deb-itools: packaging/deb/build.sh failed"; }
    deb=$(echo "$WORK"/deb/rewind_*_amd64.deb)
    [[ -f $deb ]] || vm_die "deb-itools: no package in $WORK/deb"
    dpkg-deb --field "$deb" Version >"$VM_STATE/deb-version"
    mkdir -p "$repo"
    di_deb "$repo" rwdemo 1 'echo "rwdemo 1: all good"'
    di_deb "$repo" rwdemo 2 'echo "rwdemo 2: cannot start: its configuration is unreadable (the bad upgrade)" >&2; exit 1'
    di_deb "$repo" rwother 1 'echo rwother'
    (cd "$repo" && dpkg-scanpackages -m . /dev/null 2>/dev/null >Packages)
    printf 'deb [trusted=yes] file:/srv/rwrepo ./\n' >"$WORK/rwrepo.list"
    VM_DISK_ADD+=(
        "$(vm_itools_debs):/srv/itools"
        "$deb:/srv/$(basename "$deb")"
        "$repo:/srv/rwrepo"
        "$WORK/rwrepo.list:/etc/apt/sources.list.d/rwrepo.list"
    )
}

# The guest side -------------------------------------------------------------------------------

di_setup() {
    mkdir -p /run/lock/lvm
    # The initramfs's udevd left its socket; nothing listens after switch_root.
    rm -f /run/udev/control
    KVER=$(uname -r)
    IMG=/boot/initrd.img-$KVER
}

# di_apt LOG ARGS...: apt-get ARGS, its output in $BOOT_OUT/LOG (and shown); its exit status.
di_apt() {
    local log=$BOOT_OUT/$1 rc=0
    shift
    echo "+ apt-get $*" | tee "$log"
    DEBIAN_FRONTEND=noninteractive apt-get -y -o Dpkg::Use-Pty=0 "$@" >>"$log" 2>&1 || rc=$?
    cat "$log"
    return "$rc"
}

# di_version PKG: "VERSION STATE" as dpkg has it, "none" when it is not installed.
di_version() {
    local v
    v=$(dpkg-query -W -f '${Version} ${db:Status-Status}' "$1" 2>/dev/null) || v=''
    case $v in
    '' | *' not-installed') echo none ;;
    *) echo "$v" ;;
    esac
}

# di_files: every path in the root, the package managers' databases, caches and logs and the
# initramfs images left out (they change with any apt run).
di_files() {
    find / -xdev -mindepth 1 \( -path /var/lib/dpkg -o -path /var/lib/apt -o -path /var/cache \
        -o -path /var/log -o -path /boot -o -path /tmp -o -path /var/tmp -o -path /var/backups \
        -o -path /lost+found \) -prune -o -print | LC_ALL=C sort
}

# di_image NAME: the initramfs's file list into $BOOT_OUT/NAME, its sha256 recorded as NAME.
di_image() {
    lsinitramfs "$IMG" >"$BOOT_OUT/$1"
    g_record "$1" "$(sha256sum "$IMG" | cut -d' ' -f1)"
}

# di_ms T0: milliseconds since T0 (date +%s%N).
di_ms() { echo $((($(date +%s%N) - $1) / 1000000)); }

guest_boot_1() {
    local t0 out set
    di_setup
    g_record kver "$KVER"
    # Only the local repository.
    rm -f /etc/apt/sources.list /etc/apt/sources.list.d/debian.sources
    find /etc/apt/sources.list.d -type f ! -name rwrepo.list -delete
    di_apt update.log update || g_fail "apt-get update failed"

    # The machine before rewind: initramfs-tools (apt removes dracut), its image built by
    # update-initramfs as Debian's installer leaves it, rwdemo 1.
    di_apt itools.log install /srv/itools/*.deb rwdemo=1 || g_fail "apt could not install initramfs-tools"
    g_record dracut "$(di_version dracut | tr ' ' '~')"
    t0=$(date +%s%N)
    if [[ -e $IMG ]]; then
        update-initramfs -u -k "$KVER"
    else
        update-initramfs -c -k "$KVER"
    fi
    g_record ms_update_initramfs "$(di_ms "$t0")"
    di_image image-stock
    grep -Eq '(^|/)s?bin/lvm$' "$BOOT_OUT/image-stock" || g_fail "the stock image has no lvm"
    ! grep -q rewind "$BOOT_OUT/image-stock" || g_fail "the stock image has rewind"
    rwdemo | tee "$BOOT_OUT/rwdemo-before" || g_fail "rwdemo 1 does not run"
    di_files >"$OUT/files-before"

    # The package, with apt.
    t0=$(date +%s%N)
    di_apt install.log install "$(echo /srv/rewind_*_amd64.deb)" || g_fail "apt install ./rewind.deb failed"
    g_record ms_apt_install "$(di_ms "$t0")"
    g_record installed "$(di_version rewind | tr ' ' '~')"
    grep -q 'Processing triggers for initramfs-tools' "$BOOT_OUT/install.log" ||
        g_fail "initramfs-tools' trigger did not run"
    di_image image-rewind
    for f in usr/sbin/rewind usr/lib/udev/rules.d/63-rewind.rules scripts/local-bottom/rewind \
        etc/rewind/initramfs.json; do
        grep -qx "$f" "$BOOT_OUT/image-rewind" || g_fail "the rebuilt image lacks $f"
    done
    ! grep -q 'rewind\.toml' "$BOOT_OUT/image-rewind" || g_fail "the image carries rewind.toml (only its JSON belongs there)"
    grep -Eq '(^|/)s?bin/lvm$' "$BOOT_OUT/image-rewind" || g_fail "the rebuilt image lost lvm"
    g_record poll_enabled "$(readlink /etc/systemd/system/sysinit.target.wants/rewind-poll.service)"
    apt-config dump | grep rewind | tee "$BOOT_OUT/apt-config-rewind"
    # The guarded forms (packaging/apt): apt hands the pre hook its protocol-3 package list.
    grep -q '^DPkg::Pre-Install-Pkgs:: "REWIND_APT_HOOK=3 .*/usr/sbin/rewind hook apt pre' "$BOOT_OUT/apt-config-rewind" ||
        g_fail "apt does not read rewind's pre hook"
    grep -q '^DPkg::Post-Invoke:: ".*/usr/sbin/rewind hook apt post' "$BOOT_OUT/apt-config-rewind" ||
        g_fail "apt does not read rewind's post hook"

    # The bad upgrade, through apt: the hook takes a set before dpkg runs.
    di_apt upgrade.log upgrade || g_fail "apt-get upgrade failed"
    g_record upgraded "$(di_version rwdemo | tr ' ' '~')"
    out=$(rwdemo 2>&1) && g_fail "rwdemo 2 runs: the bad upgrade broke nothing"
    echo "$out" | tee "$BOOT_OUT/rwdemo-broken"
    rewind list | tee "$BOOT_OUT/list"
    set=$(sed -n 's/^\(apt-[^ ]*\) .* auto .*upgrade rwdemo 1 -> 2.*$/\1/p' "$BOOT_OUT/list")
    [[ -n $set && $(wc -l <<<"$set") == 1 ]] || g_fail "not one automatic set for the upgrade: [$set]"
    g_record set "$set"
    g_lvm lvs -o lv_name,lv_tags --noheadings vg0 | tee "$BOOT_OUT/lvs-set"
    rewind rollback "$set" 2>&1 | tee "$BOOT_OUT/rollback.out"
    g_lvm lvs -a --noheadings -o lv_name,lv_merging vg0 | tee "$BOOT_OUT/lvs-flagged"
    grep -q 'merging' "$BOOT_OUT/lvs-flagged" || g_fail "rewind rollback did not flag the merge"
}

guest_boot_2() {
    local out f
    di_setup
    dmesg | grep 'rewind' >"$BOOT_OUT/rewind-early.log" || true
    dmsetup table | tee "$BOOT_OUT/dm-table-start"
    g_record merge_at_init "$(awk '$1 == "vg0-root:" { print $4 }' "$BOOT_OUT/dm-table-start")"
    pgrep -a lvm | tee "$BOOT_OUT/lvm-processes" || true
    rewind poll -v >"$BOOT_OUT/poll.out" 2>&1 || g_fail "rewind poll failed: $(cat "$BOOT_OUT/poll.out")"
    cat "$BOOT_OUT/poll.out"
    dmsetup table | tee "$BOOT_OUT/dm-table-end"
    grep -q '^vg0-root: 0 [0-9]* linear ' "$BOOT_OUT/dm-table-end" || g_fail "root is not plain linear"
    rewind status | tee "$BOOT_OUT/status"
    cat /run/motd.d/rewind >"$BOOT_OUT/motd" 2>/dev/null || true
    g_record rolled_back "$(di_version rwdemo | tr ' ' '~')"
    rwdemo | tee "$BOOT_OUT/rwdemo-after" || g_fail "rwdemo does not run after the rollback"
    g_lvm lvs -a --noheadings -o lv_name,lv_attr vg0 | tee "$BOOT_OUT/lvs-after"

    # Removal: the image rebuilt without rewind, the hook gone, apt still works.
    di_apt remove.log remove rewind || g_fail "apt remove rewind failed"
    g_record removed "$(di_version rewind | tr ' ' '~')"
    grep -q 'Processing triggers for initramfs-tools' "$BOOT_OUT/remove.log" ||
        g_fail "initramfs-tools' trigger did not run at the removal"
    di_image image-removed
    ! grep -q rewind "$BOOT_OUT/image-removed" || g_fail "the image still has rewind"
    grep -Eq '(^|/)s?bin/lvm$' "$BOOT_OUT/image-removed" || g_fail "the image lost lvm"
    [[ ! -e /etc/apt/apt.conf.d/80rewind && ! -L /etc/apt/apt.conf.d/80rewind ]] || g_fail "80rewind left"
    ! apt-config dump | grep -q rewind || g_fail "apt still reads a rewind hook"
    di_apt after-remove.log install rwother || g_fail "apt fails after rewind's removal"
    g_lvm lvs -o lv_name,lv_tags --noheadings vg0 | tee "$BOOT_OUT/lvs-removed"

    # Purge: the configuration goes; the root's files as before the install.
    di_apt purge.log purge rewind rwother || g_fail "apt purge failed"
    g_record purged "$(di_version rewind | tr ' ' '~')"
    for f in /usr/sbin/rewind /etc/rewind /etc/rewind/rewind.toml /usr/lib/rewind; do
        out=$(dpkg -S "$f" 2>&1) && g_fail "dpkg -S $f: $out"
        [[ ! -e $f ]] || g_fail "$f left after the purge"
    done
    di_files >"$OUT/files-after"
    di_image image-purged
}

guest_boot_3() {
    local n
    di_setup
    dmesg | grep -c 'rewind' >"$BOOT_OUT/kmsg-rewind" || true
    dmsetup table | tee "$BOOT_OUT/dm-table"
    g_record boot3_root "$(awk '$1 == "vg0-root:" { print $4 }' "$BOOT_OUT/dm-table")"
    ! command -v rewind || g_fail "rewind is still installed"
    rwdemo | tee "$BOOT_OUT/rwdemo" || g_fail "rwdemo does not run"
    g_lvm lvs -a --noheadings -o lv_name,lv_attr,origin vg0 | tee "$BOOT_OUT/lvs"
    # The set the removal's own apt run took: stock LVM2 drops it.
    while read -r n _; do
        [[ $n == root ]] || g_lvm lvremove -y "vg0/$n"
    done < <(g_lvm lvs --noheadings -o lv_name vg0)
    g_record boot3_root_end "$(dmsetup table vg0-root | awk '{ print $3 }')"
    di_apt check.log install rwother || g_fail "apt fails"
    g_record boot3_rwother "$(di_version rwother | tr ' ' '~')"
}

# di_extract IMAGE NAME OUT: the guest's /boot/initrd.img-KVER, read from the root LV's
# filesystem on the disk image (debugfs, read-only: no device-mapper on the host), to OUT;
# checked against the sha256 the guest recorded as NAME.
di_extract() {
    local img=$1 out=$3 kver pe_start extent range first loop rc=0
    kver=$(vm_guest_value kver)
    pe_start=$(vm_image_lvm "$img" pvs --noheadings --units b --nosuffix -o pe_start | tr -d ' ')
    extent=$(vm_image_lvm "$img" vgs --noheadings --units b --nosuffix -o vg_extent_size vg0 | tr -d ' ')
    range=$(vm_image_lvm "$img" lvs --noheadings -o seg_pe_ranges vg0/root | tr -d ' ')
    [[ $range =~ ^[^:]+:([0-9]+)-[0-9]+$ ]] || vm_die "deb-itools: unexpected segments for vg0/root: $range"
    first=${BASH_REMATCH[1]}
    loop=$(losetup -f --show -r -o $((pe_start + first * extent)) "$img")
    debugfs -R "dump /boot/initrd.img-$kver $out" "$loop" 2>"$WORK/debugfs.err" || rc=$?
    losetup -d "$loop"
    [[ $rc == 0 && -s $out ]] || vm_die "deb-itools: cannot read the guest's initramfs: $(cat "$WORK/debugfs.err")"
    vm_check_eq "the image booted next is the one the guest's update-initramfs wrote ($2)" \
        "$(vm_guest_value "$2")" "$(sha256sum "$out" | cut -d' ' -f1)"
}

host_check_boot_1() {
    di_extract "$WORK/disk.img" image-rewind "$WORK/initrd-boot2.img"
}

host_check_boot_2() {
    di_extract "$WORK/disk.img" image-purged "$WORK/initrd-boot3.img"
}

host_check() {
    local v
    v=$(cat "$VM_STATE/deb-version")
    vm_check "boot 1: apt removed dracut for initramfs-tools ($(vm_guest_value dracut))" \
        grep -Eqx 'none|.*~config-files' <<<"$(vm_guest_value dracut)"
    vm_check_eq "boot 1: dpkg: rewind installed" "$v~installed" "$(vm_guest_value installed)"
    vm_check_eq "boot 1: the poller's unit enabled" /lib/systemd/system/rewind-poll.service "$(vm_guest_value poll_enabled)"
    vm_check_eq "boot 1: rwdemo upgraded" "2~installed" "$(vm_guest_value upgraded)"
    vm_check "boot 1: the hook's set is described by the upgrade" \
        grep -q "root.$(vm_guest_value set) .*upgrade_rwdemo_1_-#3E_2" "$VM_STATE/boot1/lvs-set"
    vm_check "boot 2: rewind early (the package's, in the guest's image) set up root's merge" \
        grep -q 'rewind: vg0/root merging' "$VM_STATE/boot2/rewind-early.log"
    vm_log "boot 2: root's table when the root's init ran: $(vm_guest_value merge_at_init)"
    vm_check_eq "boot 2: dpkg: rwdemo back at 1" "1~installed" "$(vm_guest_value rolled_back)"
    vm_check "boot 2: rwdemo 1 runs" grep -qx 'rwdemo 1: all good' "$VM_STATE/boot2/rwdemo-after"
    # Stock LVM2 in this image (69-lvm.rules' vgchange -aay) polls the merge too; a small one is
    # often done before the root's init runs, and LVM's finish drops the snapshot with the set's
    # tags. Either way the notice is given: rewind poll finishes the merge itself, or it finds
    # rewind early's record of the merge (/run/rewind/.merges) and notes the rollback from it.
    if [[ $(vm_guest_value merge_at_init) != snapshot-merge ]]; then
        vm_check "boot 2: stock LVM2 finished the merge first: rewind poll noticed it from the record" \
            grep -q 'its merge was finished by lvm' "$VM_STATE/boot2/poll.out"
    fi
    vm_check "boot 2: the login notice says the rollback is complete" \
        grep -q "rollback complete: vg0/root is back at snapshot set $(vm_guest_value set)" "$VM_STATE/boot2/motd"
    vm_check "boot 2: rewind status names the set" grep -q "$(vm_guest_value set)" "$VM_STATE/boot2/status"
    vm_check_eq "boot 2: apt remove: config-files left" "$v~config-files" "$(vm_guest_value removed)"
    vm_check_eq "boot 2: apt purge: rewind unknown to dpkg" none "$(vm_guest_value purged)"
    # (LVM2's own metadata backups, /etc/lvm/archive and backup, written by the stock LVM2
    # commands the hook's sets ran, are LVM's files, not rewind's.)
    vm_check "boot 2: after the purge, the root's files as before the install" \
        diff <(grep -Ev '^/etc/lvm/(archive|backup)(/|$)' "$VM_STATE/files-before") \
        <(grep -Ev '^/etc/lvm/(archive|backup)(/|$)' "$VM_STATE/files-after")
    vm_check_eq "boot 3: stock LVM2 brought root up, with the removal's set beside it" snapshot-origin \
        "$(vm_guest_value boot3_root)"
    vm_check_eq "boot 3: after stock lvremove of that set, root is linear" linear "$(vm_guest_value boot3_root_end)"
    vm_check_eq "boot 3: no rewind line in the kernel log" 0 "$(cat "$VM_STATE/boot3/kmsg-rewind")"
    vm_check_eq "boot 3: apt installs" "1~installed" "$(vm_guest_value boot3_rwother)"
    vm_check_plain_root "$WORK/disk.img"
    printf 'deb-itools timings (ms): update-initramfs (stock image) %s, apt install ./rewind.deb (its trigger rebuilding the image) %s\n' \
        "$(vm_guest_value ms_update_initramfs)" "$(vm_guest_value ms_apt_install)"
}
