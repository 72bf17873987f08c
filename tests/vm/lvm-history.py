#!/usr/bin/env python3
"""The commits of one VG still held in a PV's metadata ring, oldest first.

Usage: lvm-history.py VG DUMP...

DUMP is what stock `pvck --dump metadata_all -f DUMP PV` writes: every metadata text found in
the ring, one after the other. Each text is a VG section followed by the commit's stamp
(`description`, `creation_time`): LVM writes "Write from <command line>." and rewind "Write
from rewind: ...", so the stamp says which program made each commit and when (seconds since
the epoch). Prints one line per distinct seqno of VG, tab-separated:

    seqno  creation_time  LVs (sorted, comma-separated)  merging (1 if a merging_store is
    left)  description
"""
import re
import sys


def texts(data):
    """Splits a dump into metadata texts: each starts at a line `NAME {` at depth 0."""
    out, cur, depth = [], [], 0
    for line in data.splitlines():
        s = line.strip()
        if depth == 0 and re.fullmatch(r"[A-Za-z0-9_.+-]+ \{", s) and cur:
            if any(x.startswith("creation_time") for x in cur):
                out.append(cur)
                cur = []
        cur.append(s)
        depth += s.count("{") - s.count("}")
        depth = max(depth, 0)
    if cur:
        out.append(cur)
    return out


def parse(lines, vg):
    """seqno, time, LV names, merging, description of one text (None if not VG's)."""
    if not lines or lines[0] != vg + " {":
        return None
    seqno = time = desc = None
    lvs, merging, path = [], 0, []
    for s in lines:
        # Section names: depth 1 = the VG, 2 = logical_volumes, 3 = an LV.
        m = re.fullmatch(r"([A-Za-z0-9_.+-]+) \{", s)
        if m:
            path.append(m.group(1))
            if len(path) == 3 and path[1] == "logical_volumes":
                lvs.append(m.group(1))
            continue
        if s.startswith("}"):
            if path:
                path.pop()
            continue
        if len(path) == 1 and s.startswith("seqno ="):
            seqno = int(s.split("=", 1)[1])
        if not path and s.startswith("description ="):
            desc = s.split("=", 1)[1].strip().strip('"')
        if not path and s.startswith("creation_time ="):
            time = int(s.split("=", 1)[1].split("#")[0])
        if s.startswith("merging_store"):
            merging = 1
    if seqno is None:
        return None
    return seqno, time, ",".join(sorted(lvs)) or "-", merging, desc or ""


def main():
    vg = sys.argv[1]
    seen = {}
    for f in sys.argv[2:]:
        with open(f, encoding="utf-8", errors="replace") as fh:
            for t in texts(fh.read()):
                r = parse(t, vg)
                if r:
                    seen[r[0]] = r
    for seqno in sorted(seen):
        print("\t".join(str(x) for x in seen[seqno]))


if __name__ == "__main__":
    main()
