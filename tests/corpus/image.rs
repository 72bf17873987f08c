//! A byte-level editor for disk images made by stock LVM2: finds the label, the PV header's
//! area lists and the metadata areas, and rewrites any of them with their checksums fixed
//! (or deliberately not). Written from LVM2's on-disk layout (`lib/label/label.h`,
//! `lib/format_text/layout.h`), independently of rewind's own parsers, so that a corpus case
//! does not lean on the code it tests; stock LVM2 is the judge of what these edits make.

/// LVM's `calc_crc(INITIAL_CRC, data)`: reflected CRC-32 started from 0xF597A6CF, no inversion.
pub fn lvm_crc(data: &[u8]) -> u32 {
    calc_crc(0xF597_A6CF, data)
}

/// LVM's `calc_crc(initial, data)`, for checksums chained over two pieces.
pub fn calc_crc(initial: u32, data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(!initial);
    h.update(data);
    !h.finalize()
}

pub const SECTOR: usize = 512;

/// One disk image, the whole device in memory.
#[derive(Clone)]
pub struct Disk {
    pub bytes: Vec<u8>,
}

impl Disk {
    pub fn get32(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.bytes[at..at + 4].try_into().expect("4 bytes"))
    }

    pub fn get64(&self, at: usize) -> u64 {
        u64::from_le_bytes(self.bytes[at..at + 8].try_into().expect("8 bytes"))
    }

    pub fn put32(&mut self, at: usize, v: u32) {
        self.bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    pub fn put64(&mut self, at: usize, v: u64) {
        self.bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    pub fn put(&mut self, at: usize, b: &[u8]) {
        self.bytes[at..at + b.len()].copy_from_slice(b);
    }

    /// The first sector 0-3 that starts with LABELONE.
    pub fn label_sector(&self) -> usize {
        (0..4)
            .find(|s| &self.bytes[s * SECTOR..s * SECTOR + 8] == b"LABELONE")
            .expect("a label")
    }

    /// Byte offset of the label.
    pub fn label(&self) -> usize {
        self.label_sector() * SECTOR
    }

    /// Recompute the label's crc (over bytes 20..512 of its sector).
    pub fn fix_label(&mut self) {
        let l = self.label();
        let crc = lvm_crc(&self.bytes[l + 20..l + SECTOR]);
        self.put32(l + 16, crc);
    }

    /// Byte offset of the PV header (label + offset_xl).
    pub fn pvh(&self) -> usize {
        let l = self.label();
        l + self.get32(l + 20) as usize
    }

    /// Byte offset of each disk_locn list: (data areas, metadata areas, extension).
    pub fn lists(&self) -> (usize, usize, usize) {
        let data = self.pvh() + 40;
        let mut p = data;
        while self.get64(p) != 0 {
            p += 16;
        }
        let mdas = p + 16;
        let mut p = mdas;
        while self.get64(p) != 0 {
            p += 16;
        }
        (data, mdas, p + 16)
    }

    /// The metadata areas listed in the PV header: (offset, size).
    pub fn mdas(&self) -> Vec<(u64, u64)> {
        let (_, mut p, _) = self.lists();
        let mut out = Vec::new();
        while self.get64(p) != 0 {
            out.push((self.get64(p), self.get64(p + 8)));
            p += 16;
        }
        out
    }

    /// Recompute the crc of the mda header at `start` (over bytes 4..512).
    pub fn fix_mda(&mut self, start: u64) {
        let s = start as usize;
        let crc = lvm_crc(&self.bytes[s + 4..s + SECTOR]);
        self.put32(s, crc);
    }

    /// The mda header's `size` field.
    pub fn mda_size(&self, start: u64) -> u64 {
        self.get64(start as usize + 32)
    }

    /// Slot `n` of the mda header at `start`: (offset, size, checksum, flags).
    pub fn slot(&self, start: u64, n: usize) -> (u64, u64, u32, u32) {
        let p = start as usize + 40 + 24 * n;
        (
            self.get64(p),
            self.get64(p + 8),
            self.get32(p + 16),
            self.get32(p + 20),
        )
    }

    pub fn set_slot(&mut self, start: u64, n: usize, v: (u64, u64, u32, u32)) {
        let p = start as usize + 40 + 24 * n;
        self.put64(p, v.0);
        self.put64(p + 8, v.1);
        self.put32(p + 16, v.2);
        self.put32(p + 20, v.3);
    }

    /// The committed text of the mda at `start` (wrap included), without trailing NULs.
    pub fn text(&self, start: u64) -> Vec<u8> {
        let (off, size, _, _) = self.slot(start, 0);
        let area = self.mda_size(start);
        let s = start as usize;
        let mut out = Vec::new();
        let first = size.min(area - off) as usize;
        out.extend_from_slice(&self.bytes[s + off as usize..s + off as usize + first]);
        let rest = size as usize - first;
        out.extend_from_slice(&self.bytes[s + SECTOR..s + SECTOR + rest]);
        while out.last() == Some(&0) {
            out.pop();
        }
        out
    }

    /// The committed text of the first metadata area.
    pub fn first_text(&self) -> Vec<u8> {
        self.text(self.mdas()[0].0)
    }

    /// Writes `text` (a NUL is appended) into the ring of the mda at `start`, at ring offset
    /// `at` (wrapping past the end to offset 512), sets slot 0 to it with its (chained)
    /// checksum, clears slot 1 and fixes the header's crc: a committed copy as LVM leaves it.
    pub fn write_text_at(&mut self, start: u64, text: &[u8], at: u64) {
        let mut t = text.to_vec();
        t.push(0);
        let area = self.mda_size(start);
        let s = start as usize;
        let first = (t.len() as u64).min(area - at) as usize;
        let a = s + at as usize;
        self.bytes[a..a + first].copy_from_slice(&t[..first]);
        let rest = &t[first..];
        self.bytes[s + SECTOR..s + SECTOR + rest.len()].copy_from_slice(rest);
        let crc = calc_crc(lvm_crc(&t[..first]), rest);
        self.set_slot(start, 0, (at, t.len() as u64, crc, 0));
        self.set_slot(start, 1, (0, 0, 0, 0));
        self.fix_mda(start);
    }

    /// Writes `text` as the committed copy of every in-use metadata area of this disk, at
    /// ring offset 512 + (the area's previous copy's offset rounded, to keep it plausible).
    pub fn write_text(&mut self, text: &[u8]) {
        for (start, _) in self.mdas() {
            if self.slot(start, 0).3 & 1 != 0 {
                continue;
            }
            // Zero the old copy so nothing of it is left behind the new one.
            let area = self.mda_size(start) as usize;
            let s = start as usize;
            self.bytes[s + SECTOR..s + area].fill(0);
            self.write_text_at(start, text, 512);
        }
    }
}

/// Replace the first occurrence of `from` in `text` by `to`; panics when absent (a case
/// whose edit does not apply is a bug in the case).
pub fn replace(text: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = find(text, from).unwrap_or_else(|| {
        panic!(
            "{:?} not in the metadata text:\n{}",
            String::from_utf8_lossy(from),
            String::from_utf8_lossy(text)
        )
    });
    let mut out = text[..at].to_vec();
    out.extend_from_slice(to);
    out.extend_from_slice(&text[at + from.len()..]);
    out
}

/// Replace the first occurrence of `from` found after `after`.
pub fn replace_after(text: &[u8], after: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let start = find(text, after).expect("anchor") + after.len();
    let mut out = text[..start].to_vec();
    out.extend_from_slice(&replace(&text[start..], from, to));
    out
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The byte offset just after the VG section's closing brace (the first top-level `}`).
pub fn vg_section_end(text: &[u8]) -> usize {
    let mut depth = 0i32;
    let mut in_str = false;
    let mut prev = 0u8;
    for (i, &c) in text.iter().enumerate() {
        if in_str {
            if c == b'"' && prev != b'\\' {
                in_str = false;
            }
        } else if c == b'"' {
            in_str = true;
        } else if c == b'{' {
            depth += 1;
        } else if c == b'}' {
            depth -= 1;
            if depth == 0 {
                return i + 1;
            }
        }
        prev = c;
    }
    panic!("no vg section end")
}

/// The VG's seqno in `text` (the first `seqno = N`).
pub fn seqno(text: &[u8]) -> u64 {
    let at = find(text, b"seqno = ").expect("seqno") + 8;
    let end = at + text[at..].iter().position(|&c| c == b'\n').expect("eol");
    std::str::from_utf8(&text[at..end])
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .expect("a seqno")
}

/// `text` with the VG's seqno set to `n`.
pub fn with_seqno(text: &[u8], n: u64) -> Vec<u8> {
    let old = format!("seqno = {}\n", seqno(text));
    replace(text, old.as_bytes(), format!("seqno = {n}\n").as_bytes())
}
