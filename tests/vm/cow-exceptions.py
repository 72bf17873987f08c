#!/usr/bin/env python3
"""Count the exceptions in a dm-snapshot persistent store's first metadata area.

Usage: cow-exceptions.py IMAGE OFFSET CHUNK_BYTES
OFFSET is the byte offset of the COW LV's chunk 1 in IMAGE (chunk 0 is the header). The area
holds 16-byte {old_chunk, new_chunk} little-endian entries, ended by new_chunk == 0
(dm-snap-persistent.c). A merge clears entries from the end and commits as it goes, so the
count falls as the merge proceeds.
"""
import struct
import sys

img, offset, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(img, "rb") as f:
    f.seek(offset)
    area = f.read(size)
n = 0
for i in range(0, len(area) - 15, 16):
    _old, new = struct.unpack_from("<QQ", area, i)
    if new == 0:
        break
    n += 1
print(n)
