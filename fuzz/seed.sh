#!/usr/bin/env bash
# Writes the seed corpora for the fuzz targets into fuzz/corpus/TARGET/ from the repository's
# fixtures (nothing large is committed). Safe to run again: seeds are overwritten in place.
set -euo pipefail
cd "$(dirname "$0")/.."
c=fuzz/corpus
mkdir -p "$c"/{label,mda,scan,text,table,cmdline,config,cow}

# Binary seeds from the stock-LVM fixture images (stored sparsely, see sectors.py).
python3 - "$c" tests/fixtures/lvm/*.sectors <<'PY'
import struct, sys, os
out = sys.argv[1]
for path in sys.argv[2:]:
    name = os.path.basename(path).split(".")[0]
    data = open(path, "rb").read()
    size = struct.unpack_from("<Q", data, 0)[0]
    sectors = {}
    for i in range(8, len(data), 520):
        sectors[struct.unpack_from("<Q", data, i)[0]] = data[i + 8:i + 520]
    def read(off, n):
        b = bytearray()
        for s in range(off // 512, (off + n + 511) // 512):
            b += sectors.get(s, bytes(512))
        return bytes(b[off % 512:off % 512 + n])
    open(f"{out}/label/{name}", "wb").write(b"\x01" + read(0, 2048))
    # The mda header plus the start of its ring (the text committed there).
    open(f"{out}/mda/{name}", "wb").write(read(4096, 512 + 2048))
    open(f"{out}/text/{name}", "wb").write(read(4096 + 512, 1536).split(b"\0")[0])
    # A whole small PV: shrink the image to 64 KiB (the fuzzer's size limit) keeping the label,
    # the first mda header and its ring start.
    img = bytearray(read(0, 65536))
    struct.pack_into("<Q", img, 512 + 64, len(img))  # device_size
    pos = 512 + 72
    while struct.unpack_from("<QQ", img, pos) != (0, 0):  # data areas
        pos += 16
    pos += 16
    offset = struct.unpack_from("<Q", img, pos)[0]  # the first metadata area
    if offset == 4096:
        struct.pack_into("<Q", img, pos + 8, len(img) - 4096)
        struct.pack_into("<Q", img, 4096 + 32, len(img) - 4096)
    open(f"{out}/scan/{name}", "wb").write(bytes(img))
PY
cp tests/fixtures/text/backup.vg "$c/text/backup.vg"
cp tests/fixtures/text/disk.vg "$c/text/disk.vg"

printf '%s\n' "0 2097152 linear 8:2 2048" "0 409600 striped 2 128 8:16 2048 8:32 2048" \
  "0 2097152 snapshot-origin 253:1" "0 2097152 snapshot 253:1 253:2 P 8" \
  "0 2097152 snapshot-merge 253:1 253:2 P 8" "0 2097152 error" >"$c/table/tables"
printf '%s\n' "0 2097152 snapshot 16/2097152 16" "0 2097152 snapshot-merge 32/2097152 16" \
  "0 8 snapshot Invalid" "0 8 snapshot-merge Merge failed" "0 8 snapshot Overflow" >"$c/table/status"

printf '%s' "BOOT_IMAGE=/vmlinuz root=/dev/vg0/root ro quiet rd.rewind=vg0/pre rd.lvm.lv=vg0/root" \
  >"$c/cmdline/rollback"
printf '%s' 'rd.rewind=0 rd.rewind.debug "rd.lvm.lv=vg-a/b c" rd.rewind=set1,vg/x' >"$c/cmdline/mixed"

# shellcheck disable=SC2016 # the backquotes are sed patterns
sed -n '/^```toml$/,/^```$/p' README.md | sed '1d;$d' >"$c/config/readme.toml"
printf '[log]\nlevel = "debug"\n[activate]\nlvs = ["vg0/root"]\n' >"$c/config/small.toml"

printf '\x08\x00\x00\x00SnAp\x01\x00\x00\x00\x01\x00\x00\x00\x08\x00\x00\x00' >"$c/cow/valid"
printf '\x08\x00\x00\x00SnAp\x00\x00\x00\x00\x01\x00\x00\x00\x08\x00\x00\x00' >"$c/cow/invalid"
printf '\x08\x00\x00\x00%016d' 0 | tr '0' '\0' >"$c/cow/new"
