# shellcheck shell=bash
# Host-side checks for VM scenarios: compare recorded data, read an image's LVM metadata with
# stock LVM2 (metadata-only, on a loop device). Sourced by tests/vm/run.sh; functions only.

# vm_compare_sums EXPECTED ACTUAL: two "sha256sum" listings. Prints every difference (changed,
# missing or extra file) and returns 1 if there is any.
vm_compare_sums() {
    local expected=$1 actual=$2
    awk '
        FNR == NR { want[$2] = $1; next }
        { got[$2] = $1 }
        END {
            bad = 0
            for (f in want) {
                if (!(f in got)) { printf "checksum mismatch: %s missing (expected %s)\n", f, want[f]; bad = 1 }
                else if (got[f] != want[f]) { printf "checksum mismatch: %s expected %s got %s\n", f, want[f], got[f]; bad = 1 }
            }
            for (f in got) if (!(f in want)) { printf "checksum mismatch: %s unexpected (got %s)\n", f, got[f]; bad = 1 }
            exit bad
        }' "$expected" "$actual" >&2
}

# Checks count their failures in VM_CHECKS_FAILED and carry on, so one run reports every
# failed check; the driver fails the scenario if the count is not zero after its checks.
# (A count, not an exit status: set -e does not hold inside functions called from a condition.)
VM_CHECKS_FAILED=0

# vm_fail MESSAGE: a failed check.
vm_fail() {
    echo "CHECK FAILED: $*" >&2
    VM_CHECKS_FAILED=$((VM_CHECKS_FAILED + 1))
}

# vm_check DESCRIPTION COMMAND...: run COMMAND; if it fails, a failed check.
vm_check() {
    local what=$1
    shift
    if "$@"; then
        echo "check ok: $what" >&2
    else
        vm_fail "$what"
    fi
}

# vm_check_eq DESCRIPTION EXPECTED ACTUAL
vm_check_eq() {
    if [[ $2 == "$3" ]]; then
        echo "check ok: $1 = [$3]" >&2
    else
        vm_fail "$1: expected [$2] got [$3]"
    fi
}

# vm_image_lvm IMAGE LVM-ARGS...: run one stock LVM2 command in metadata-only mode against the
# VG on IMAGE (attached read-only to a loop device for the duration of the command). On a
# partitioned image (a GRUB guest's, a systemd-boot guest's), the PV is its Linux LVM partition
# (type 8e on an msdos label, E6D6D379-... on GPT).
vm_image_lvm() {
    local image=$1 loop rc=0 part
    shift
    # No partition table: sfdisk fails (and with pipefail, so does the pipeline).
    part=$(sfdisk -d "$image" 2>/dev/null | awk '/type=(8e|E6D6D379-F507-44C2-A23C-238F2A3DF928)/ { gsub(/[^0-9]/, "", $4); gsub(/[^0-9]/, "", $6); print $4 * 512, $6 * 512 }') || part=''
    if [[ -n $part ]]; then
        loop=$(losetup -f --show -r -o "${part% *}" --sizelimit "${part#* }" "$image")
    else
        loop=$(losetup -f --show -r "$image")
    fi
    lvm "$@" --config "$(vm_lvm_config_for "$loop")" || rc=$?
    losetup -d "$loop"
    return "$rc"
}

# vm_guest_value NAME: a value the guest recorded with g_record (last one wins).
vm_guest_value() {
    awk -v k="$1" '$1 == k { v = $2 } END { if (v == "") exit 1; print v }' "$VM_STATE/values"
}

vm_files_differ() {
    ! cmp -s "$1" "$2"
}

# vm_file_lacks ERE FILE: no line of FILE matches ERE (the matches are printed otherwise).
vm_file_lacks() {
    ! grep -E "$1" "$2" >&2
}

# vm_check_plain_root IMAGE: the end state of every rollback of vg0/root: vgck clean, root alone
# in vg0 as a plain writable linear LV (attributes 1-4; the rest is activation state, "X" in
# metadata-only mode), no snapshot and no merge flag left in the metadata
# ($WORK/vg0-final.vg keeps vgcfgbackup's text).
vm_check_plain_root() {
    local img=$1 lvs
    vm_check "vgck vg0" vm_image_lvm "$img" vgck vg0
    lvs=$(vm_image_lvm "$img" lvs -a --noheadings --separator , -o lv_name,lv_attr,segtype,origin,lv_merging vg0 | tr -d ' ')
    vm_check_eq "LVs left in vg0 (name,attr[1-4],segtype,origin,merging)" "root,-wi-,linear,," \
        "$(awk -F, '{ printf "%s%s,%s,%s,%s,%s", (NR > 1 ? ";" : ""), $1, substr($2, 1, 4), $3, $4, $5 }' <<<"$lvs")"
    vm_image_lvm "$img" vgcfgbackup -f "$WORK/vg0-final.vg" vg0
    vm_check "no snapshot or merge flag left in the metadata" \
        vm_file_lacks 'snapshot|merging_store|cow_store' "$WORK/vg0-final.vg"
}

# vm_cow_area IMAGE VG/LV: the byte offset in IMAGE of the first exception area (chunk 1, 64 KiB
# chunks) of the snapshot store LV, from stock LVM's view of the image (not while a guest runs).
vm_cow_area() {
    local img=$1 pe_start extent range first
    pe_start=$(vm_image_lvm "$img" pvs --noheadings --units b --nosuffix -o pe_start | tr -d ' ')
    extent=$(vm_image_lvm "$img" vgs --noheadings --units b --nosuffix -o vg_extent_size "${2%/*}" | tr -d ' ')
    range=$(vm_image_lvm "$img" lvs -a --noheadings -o seg_pe_ranges "$2" | tr -d ' ')
    first=${range##*:}
    first=${first%%-*}
    echo $((pe_start + first * extent + 65536))
}

# vm_cow_exceptions IMAGE OFFSET: how many exceptions the store's area at OFFSET holds now
# (tests/vm/cow-exceptions.py; safe while the guest runs).
vm_cow_exceptions() {
    python3 "$TESTS_VM_DIR/cow-exceptions.py" "$1" "$2" 65536
}
