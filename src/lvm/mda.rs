//! The metadata-area header (`mda_header`, 512 bytes) and the text ring buffer behind it.
//!
//! Layout and rules from `lib/format_text/layout.h` and `format-text.c`
//! (`raw_parse_mda_header`, `_vg_read_raw_area`, `_next_rlocn_offset`, `_vg_write_raw`,
//! `_vg_commit_raw_rlocn`). Pure functions: parsing a header, locating the committed text,
//! verifying it, and planning where and how new text and new headers are written.

use thiserror::Error;

use super::crc::{calc_crc, lvm_crc};
use super::label::{le_u32, le_u64};

/// Size of the header at the start of every metadata area; text starts after it.
pub const MDA_HEADER_SIZE: u64 = 512;
/// `FMTT_MAGIC`: the header's magic.
pub const FMTT_MAGIC: &[u8; 16] = b" LVM2 x[5A%r0N*>";
/// `FMTT_VERSION`.
pub const FMTT_VERSION: u32 = 1;
/// `RAW_LOCN_IGNORED`: flag bit of slot 0 marking an mda that holds no metadata on purpose.
pub const RAW_LOCN_IGNORED: u32 = 1;
/// New copies start on this alignment (`MDA_ORIGINAL_ALIGNMENT`).
const ALIGNMENT: u64 = 512;
const SLOT0: usize = 40;
const RAW_LOCN_SIZE: usize = 24;
const HEADER_LEN: usize = MDA_HEADER_SIZE as usize;

/// What is wrong with a metadata area, its header or its text. `start` is the area's absolute
/// byte offset on the device.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MdaError {
    /// The area lies (partly) outside the device or over the label.
    #[error(
        "metadata area at byte {start} (size {size}) lies outside the usable device (size {device_size})"
    )]
    AreaOutsideDevice {
        /// The area's start.
        start: u64,
        /// The area's size from the PV header.
        size: u64,
        /// The device size.
        device_size: u64,
    },
    /// Fewer than 512 bytes could be read.
    #[error("metadata area header at byte {start} is truncated ({len} of 512 bytes)")]
    Truncated {
        /// The area's start.
        start: u64,
        /// Bytes available.
        len: usize,
    },
    /// The header checksum (over bytes 4..512) does not match.
    #[error(
        "metadata area header at byte {start} has checksum {stored:#010x}, computed {computed:#010x}"
    )]
    BadChecksum {
        /// The area's start.
        start: u64,
        /// As stored.
        stored: u32,
        /// As computed.
        computed: u32,
    },
    /// The magic is not `FMTT_MAGIC`.
    #[error("metadata area header at byte {start} has the wrong magic")]
    BadMagic {
        /// The area's start.
        start: u64,
    },
    /// The version is not 1.
    #[error("metadata area header at byte {start} has version {version}, expected 1")]
    BadVersion {
        /// The area's start.
        start: u64,
        /// As stored.
        version: u32,
    },
    /// The header's `start` is not where it was found.
    #[error("metadata area header at byte {start} says it starts at byte {recorded}")]
    WrongStart {
        /// Where the header was read.
        start: u64,
        /// What the header says.
        recorded: u64,
    },
    /// The header's `size` is under 512 or larger than the area in the PV header.
    #[error("metadata area header at byte {start} has size {size}, outside 512..={area_size}")]
    BadSize {
        /// The area's start.
        start: u64,
        /// As stored in the header.
        size: u64,
        /// The area's size in the PV header.
        area_size: u64,
    },
    /// A raw_locn slot points outside the ring buffer.
    #[error(
        "metadata area at byte {start}: slot {slot} (offset {offset}, size {size}) lies outside the area of {area_size} bytes"
    )]
    LocationOutOfBounds {
        /// The area's start.
        start: u64,
        /// 0 = committed, 1 = precommitted.
        slot: usize,
        /// Offset relative to the area start.
        offset: u64,
        /// Text size.
        size: u64,
        /// The area size.
        area_size: u64,
    },
    /// The text's checksum does not match the one in the slot.
    #[error(
        "metadata text at byte {start}+{offset} ({size} bytes) has checksum {computed:#010x}, slot says {stored:#010x}"
    )]
    TextChecksum {
        /// The area's start.
        start: u64,
        /// Offset of the text relative to the area start.
        offset: u64,
        /// Text size.
        size: u64,
        /// From the slot.
        stored: u32,
        /// Of the bytes read.
        computed: u32,
    },
    /// New text larger than LVM allows for this area: `(size - 512) / 2 - 512`.
    #[error(
        "metadata area at byte {start}: new metadata of {size} bytes exceeds the maximum {max} bytes"
    )]
    TextTooLarge {
        /// The area's start.
        start: u64,
        /// The new text's size including its NUL.
        size: u64,
        /// The largest size LVM accepts.
        max: u64,
    },
    /// The new copy would overlap the committed copy (LVM's sanity check).
    #[error(
        "metadata area at byte {start}: new metadata of {size} bytes would overlap the committed copy"
    )]
    Overlap {
        /// The area's start.
        start: u64,
        /// The new text's size including its NUL.
        size: u64,
    },
    /// Reading or writing the device failed.
    #[error("i/o error at byte {offset}: {message}")]
    Io {
        /// Absolute byte offset of the failed access.
        offset: u64,
        /// The system's message.
        message: String,
    },
}

/// One `raw_locn`: where a copy of the text is in the ring, relative to the area start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawLocn {
    /// Offset of the text from the area start.
    pub offset: u64,
    /// Text size in bytes, including the trailing NUL LVM writes.
    pub size: u64,
    /// `calc_crc(INITIAL_CRC, text)` over `size` bytes.
    pub checksum: u32,
    /// Flags; bit 0 = ignored mda.
    pub flags: u32,
}

impl RawLocn {
    /// Flag bit 0: the mda is ignored (`pvchange --metadataignore y`).
    pub fn is_ignored(&self) -> bool {
        self.flags & RAW_LOCN_IGNORED != 0
    }

    /// No metadata recorded in this slot.
    pub fn is_empty(&self) -> bool {
        self.offset == 0 && self.size == 0
    }

    fn parse(bytes: &[u8], at: usize) -> Option<Self> {
        Some(Self {
            offset: le_u64(bytes, at)?,
            size: le_u64(bytes, at + 8)?,
            checksum: le_u32(bytes, at + 16)?,
            flags: le_u32(bytes, at + 20)?,
        })
    }

    fn store(&self, bytes: &mut [u8], at: usize) {
        let mut put = |pos: usize, val: &[u8]| {
            if let Some(dst) = bytes.get_mut(at + pos..at + pos + val.len()) {
                dst.copy_from_slice(val);
            }
        };
        put(0, &self.offset.to_le_bytes());
        put(8, &self.size.to_le_bytes());
        put(16, &self.checksum.to_le_bytes());
        put(20, &self.flags.to_le_bytes());
    }
}

/// A parsed, verified metadata-area header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdaHeader {
    /// The stored checksum (verified).
    pub checksum: u32,
    /// The format version (1).
    pub version: u32,
    /// Absolute byte offset of the area (verified equal to where it was read).
    pub start: u64,
    /// Size of the whole area including this header.
    pub size: u64,
    /// Slot 0 (committed) and slot 1 (precommitted).
    pub slots: [RawLocn; 2],
    /// The 512 bytes as read; rewrites keep every byte they do not change.
    pub raw: Vec<u8>,
}

impl MdaHeader {
    /// The committed slot.
    pub fn committed(&self) -> &RawLocn {
        &self.slots[0]
    }

    /// The precommitted slot.
    pub fn precommitted(&self) -> &RawLocn {
        &self.slots[1]
    }

    /// The mda is ignored: LVM neither reads nor writes metadata here.
    pub fn is_ignored(&self) -> bool {
        self.slots[0].is_ignored()
    }

    /// LVM's largest text (including NUL) for this area: `(size - 512) / 2 - 512`.
    pub fn max_text_size(&self) -> u64 {
        ((self.size.saturating_sub(MDA_HEADER_SIZE)) / 2).saturating_sub(512)
    }
}

/// Parse the 512-byte header of the metadata area at `start` whose size in the PV header is
/// `area_size`. Checks, like `raw_parse_mda_header`: checksum, magic, version, start, size;
/// and also that the size does not exceed the area (so writes stay inside it).
pub fn parse_mda_header(bytes: &[u8], start: u64, area_size: u64) -> Result<MdaHeader, MdaError> {
    let raw = bytes.get(..HEADER_LEN).ok_or(MdaError::Truncated {
        start,
        len: bytes.len(),
    })?;
    let truncated = MdaError::Truncated {
        start,
        len: bytes.len(),
    };
    let stored = le_u32(raw, 0).ok_or(truncated.clone())?;
    let computed = lvm_crc(raw.get(4..).unwrap_or_default());
    if stored != computed {
        return Err(MdaError::BadChecksum {
            start,
            stored,
            computed,
        });
    }
    if raw.get(4..20) != Some(&FMTT_MAGIC[..]) {
        return Err(MdaError::BadMagic { start });
    }
    let version = le_u32(raw, 20).ok_or(truncated.clone())?;
    if version != FMTT_VERSION {
        return Err(MdaError::BadVersion { start, version });
    }
    let recorded = le_u64(raw, 24).ok_or(truncated.clone())?;
    if recorded != start {
        return Err(MdaError::WrongStart { start, recorded });
    }
    let size = le_u64(raw, 32).ok_or(truncated.clone())?;
    if size < MDA_HEADER_SIZE || size > area_size {
        return Err(MdaError::BadSize {
            start,
            size,
            area_size,
        });
    }
    let slot0 = RawLocn::parse(raw, SLOT0).ok_or(truncated.clone())?;
    let slot1 = RawLocn::parse(raw, SLOT0 + RAW_LOCN_SIZE).ok_or(truncated)?;
    Ok(MdaHeader {
        checksum: stored,
        version,
        start,
        size,
        slots: [slot0, slot1],
        raw: raw.to_vec(),
    })
}

/// Where a copy of the text lies in the ring: one or two pieces, offsets relative to the area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextSpan {
    /// The slot it came from.
    pub locn: RawLocn,
    /// Bytes from `locn.offset` to the end of the piece (up to the area end).
    pub first_len: u64,
    /// Bytes continued at offset 512 after wrapping (0 if the text does not wrap).
    pub wrap_len: u64,
}

impl TextSpan {
    /// Absolute offset and length of each piece on the device.
    pub fn pieces(&self, area_start: u64) -> [(u64, u64); 2] {
        [
            (area_start.saturating_add(self.locn.offset), self.first_len),
            (area_start.saturating_add(MDA_HEADER_SIZE), self.wrap_len),
        ]
    }
}

/// Largest area start or size handled; keeps every offset sum far from overflowing even for a
/// hand-built [`MdaHeader`] (parsed ones are already bounded by the device size).
const GEOMETRY_LIMIT: u64 = 1 << 60;

fn check_geometry(header: &MdaHeader) -> Result<(), MdaError> {
    if header.size < MDA_HEADER_SIZE
        || header.size > GEOMETRY_LIMIT
        || header.start > GEOMETRY_LIMIT
    {
        return Err(MdaError::BadSize {
            start: header.start,
            size: header.size,
            area_size: GEOMETRY_LIMIT,
        });
    }
    Ok(())
}

/// Locate the text of slot `slot` (0 or 1). `Ok(None)` when the slot is empty. Bounds, like
/// `_vg_read_raw_area`: offset inside the area (and past the header), size at most the ring's
/// size and at most `u32::MAX`.
pub fn text_span(header: &MdaHeader, slot: usize) -> Result<Option<TextSpan>, MdaError> {
    let Some(locn) = header.slots.get(slot).copied() else {
        return Ok(None);
    };
    if locn.is_empty() {
        return Ok(None);
    }
    check_geometry(header)?;
    let ring = header.size - MDA_HEADER_SIZE;
    if locn.offset < MDA_HEADER_SIZE
        || locn.offset >= header.size
        || locn.size == 0
        || locn.size > ring
        || locn.size > u64::from(u32::MAX)
    {
        return Err(MdaError::LocationOutOfBounds {
            start: header.start,
            slot,
            offset: locn.offset,
            size: locn.size,
            area_size: header.size,
        });
    }
    let end = locn.offset + locn.size;
    let wrap_len = end.saturating_sub(header.size);
    Ok(Some(TextSpan {
        locn,
        first_len: locn.size - wrap_len,
        wrap_len,
    }))
}

/// Check the text read from a span (`first` then `wrapped`) against the slot's checksum,
/// chained over both pieces as LVM does. Returns the text without its trailing NUL bytes.
pub fn verify_text(
    header: &MdaHeader,
    span: &TextSpan,
    first: &[u8],
    wrapped: &[u8],
) -> Result<Vec<u8>, MdaError> {
    let computed = calc_crc(lvm_crc(first), wrapped);
    let whole_len = first.len() as u64 + wrapped.len() as u64;
    if computed != span.locn.checksum || whole_len != span.locn.size {
        return Err(MdaError::TextChecksum {
            start: header.start,
            offset: span.locn.offset,
            size: span.locn.size,
            stored: span.locn.checksum,
            computed,
        });
    }
    let mut text = Vec::with_capacity(first.len() + wrapped.len());
    text.extend_from_slice(first);
    text.extend_from_slice(wrapped);
    while text.last() == Some(&0) {
        text.pop();
    }
    Ok(text)
}

/// The new text's place in the ring and the exact bytes to write there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextWrite {
    /// The new slot value (offset, size, checksum; flags 0).
    pub locn: RawLocn,
    /// Absolute offset and bytes of each write (one, or two when the text wraps), the last
    /// one zero-padded to a 512-byte boundary but never past the area's end.
    pub writes: Vec<(u64, Vec<u8>)>,
}

/// Plan writing `text` (already ending in its NUL) into this area, as `_vg_write_raw` does:
/// refuse text over `max_text_size`; place it after the committed copy's end rounded up to
/// 512 (`_next_rlocn_offset`), or at 512 when fewer than 512 bytes remain or nothing is
/// committed (or the mda is ignored); wrap the part past the end to offset 512; refuse an
/// overlap with the committed copy.
pub fn plan_text_write(header: &MdaHeader, text: &[u8]) -> Result<TextWrite, MdaError> {
    check_geometry(header)?;
    let size = header.size;
    let new_size = text.len() as u64;
    let max = header.max_text_size();
    if new_size > max || new_size == 0 {
        return Err(MdaError::TextTooLarge {
            start: header.start,
            size: new_size,
            max,
        });
    }
    let old = header.slots[0];
    let old_in_use = !old.is_ignored() && !old.is_empty();
    let (old_start, old_last, old_wrap) = if old_in_use {
        // Validated like a read: a corrupt slot 0 must not steer the write.
        let span = text_span(header, 0)?.ok_or(MdaError::Overlap {
            start: header.start,
            size: new_size,
        })?;
        if span.wrap_len > 0 {
            (
                old.offset,
                span.wrap_len + MDA_HEADER_SIZE - 1,
                span.wrap_len,
            )
        } else {
            (old.offset, old.offset + old.size - 1, 0)
        }
    } else {
        (0, 0, 0)
    };
    let new_start = if !old_in_use || size - old_last < ALIGNMENT {
        MDA_HEADER_SIZE
    } else {
        let next = old_last + 1;
        let aligned = next.div_ceil(ALIGNMENT) * ALIGNMENT;
        if aligned > size - ALIGNMENT {
            MDA_HEADER_SIZE
        } else {
            aligned
        }
    };
    let (new_wrap, new_last) = if new_start + new_size > size {
        let wrap = new_start + new_size - size;
        (wrap, wrap + MDA_HEADER_SIZE - 1)
    } else {
        (0, new_start + new_size - 1)
    };
    let overlap = if !old_in_use {
        false
    } else if new_wrap > 0 && old_wrap > 0 {
        true
    } else if new_wrap == 0 && old_wrap == 0 {
        !((new_start > old_last && new_last > new_start)
            || (new_start < old_start && new_last < old_start))
    } else if old_wrap > 0 {
        !(old_last < new_start && new_start < new_last && new_last < old_start)
    } else {
        !(new_last < old_start && old_start < old_last && old_last < new_start)
    };
    if overlap {
        return Err(MdaError::Overlap {
            start: header.start,
            size: new_size,
        });
    }
    let area_end = header.start + size;
    let padded = |abs: u64, bytes: &[u8]| -> Vec<u8> {
        let end = abs + bytes.len() as u64;
        let rounded = end.div_ceil(ALIGNMENT) * ALIGNMENT;
        let pad_end = rounded.min(area_end).max(end);
        let mut out = bytes.to_vec();
        out.resize((pad_end - abs) as usize, 0);
        out
    };
    let first_len = (new_size - new_wrap) as usize;
    let (first, second) = text.split_at(first_len.min(text.len()));
    let mut writes = Vec::with_capacity(2);
    let first_abs = header.start + new_start;
    if new_wrap == 0 {
        writes.push((first_abs, padded(first_abs, first)));
    } else {
        writes.push((first_abs, first.to_vec()));
        let second_abs = header.start + MDA_HEADER_SIZE;
        writes.push((second_abs, padded(second_abs, second)));
    }
    Ok(TextWrite {
        locn: RawLocn {
            offset: new_start,
            size: new_size,
            checksum: lvm_crc(text),
            flags: 0,
        },
        writes,
    })
}

/// Which header update to make (`_vg_commit_raw_rlocn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotUpdate {
    /// Slot 1 = the new location; slot 0 unchanged.
    Precommit,
    /// Slot 0 = the new location; slot 1 cleared.
    Commit,
}

/// The 512 header bytes after a precommit or commit of `new`, as `_vg_commit_raw_rlocn`
/// makes them: slots cleared first if slot 0 was empty or ignored, the slot(s) set, the
/// ignored bit of slot 0 cleared (rewind only writes in-use mdas), magic, version and start
/// rewritten, the checksum recomputed; every other byte kept.
pub fn updated_header_bytes(header: &MdaHeader, new: &RawLocn, update: SlotUpdate) -> Vec<u8> {
    let mut raw = header.raw.clone();
    raw.resize(HEADER_LEN, 0);
    let [mut slot0, mut slot1] = header.slots;
    let clear = |slot: &mut RawLocn| {
        slot.offset = 0;
        slot.size = 0;
        slot.checksum = 0;
    };
    if slot0.is_ignored() || slot0.is_empty() {
        clear(&mut slot0);
        clear(&mut slot1);
    }
    match update {
        SlotUpdate::Precommit => {
            slot1.offset = new.offset;
            slot1.size = new.size;
            slot1.checksum = new.checksum;
        }
        SlotUpdate::Commit => {
            slot0.offset = new.offset;
            slot0.size = new.size;
            slot0.checksum = new.checksum;
            clear(&mut slot1);
        }
    }
    slot0.flags &= !RAW_LOCN_IGNORED;
    slot0.store(&mut raw, SLOT0);
    slot1.store(&mut raw, SLOT0 + RAW_LOCN_SIZE);
    if let Some(dst) = raw.get_mut(4..20) {
        dst.copy_from_slice(FMTT_MAGIC);
    }
    if let Some(dst) = raw.get_mut(20..24) {
        dst.copy_from_slice(&FMTT_VERSION.to_le_bytes());
    }
    if let Some(dst) = raw.get_mut(24..32) {
        dst.copy_from_slice(&header.start.to_le_bytes());
    }
    let crc = lvm_crc(raw.get(4..).unwrap_or_default());
    if let Some(dst) = raw.get_mut(0..4) {
        dst.copy_from_slice(&crc.to_le_bytes());
    }
    raw
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fresh header as pvcreate/vgcreate leave it, with slot 0 set to `slot0`.
    pub(crate) fn make_header(start: u64, size: u64, slot0: RawLocn) -> MdaHeader {
        let mut raw = vec![0u8; HEADER_LEN];
        raw[4..20].copy_from_slice(FMTT_MAGIC);
        raw[20..24].copy_from_slice(&1u32.to_le_bytes());
        raw[24..32].copy_from_slice(&start.to_le_bytes());
        raw[32..40].copy_from_slice(&size.to_le_bytes());
        slot0.store(&mut raw, SLOT0);
        let crc = lvm_crc(&raw[4..]);
        raw[..4].copy_from_slice(&crc.to_le_bytes());
        parse_mda_header(&raw, start, size).expect("valid header")
    }

    fn refix(raw: &mut [u8]) {
        let crc = lvm_crc(&raw[4..]);
        raw[..4].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn header_checks() {
        let h = make_header(4096, 1 << 20, RawLocn::default());
        assert_eq!(h.size, 1 << 20);
        assert_eq!(h.max_text_size(), ((1 << 20) - 512) / 2 - 512);
        assert_eq!(text_span(&h, 0), Ok(None));

        let mut raw = h.raw.clone();
        raw[100] ^= 1;
        assert!(matches!(
            parse_mda_header(&raw, 4096, 1 << 20),
            Err(MdaError::BadChecksum { start: 4096, .. })
        ));
        let mut raw = h.raw.clone();
        raw[5] = b'X';
        refix(&mut raw);
        assert_eq!(
            parse_mda_header(&raw, 4096, 1 << 20),
            Err(MdaError::BadMagic { start: 4096 })
        );
        let mut raw = h.raw.clone();
        raw[20] = 2;
        refix(&mut raw);
        assert_eq!(
            parse_mda_header(&raw, 4096, 1 << 20),
            Err(MdaError::BadVersion {
                start: 4096,
                version: 2
            })
        );
        assert_eq!(
            parse_mda_header(&h.raw, 8192, 1 << 20),
            Err(MdaError::WrongStart {
                start: 8192,
                recorded: 4096
            })
        );
        let err = parse_mda_header(&h.raw, 4096, 1 << 19).expect_err("too big for area");
        assert_eq!(
            err.to_string(),
            "metadata area header at byte 4096 has size 1048576, outside 512..=524288"
        );
        let mut raw = h.raw.clone();
        raw[32..40].copy_from_slice(&100u64.to_le_bytes());
        refix(&mut raw);
        assert!(matches!(
            parse_mda_header(&raw, 4096, 1 << 20),
            Err(MdaError::BadSize { size: 100, .. })
        ));
        assert_eq!(
            parse_mda_header(&h.raw[..511], 4096, 1 << 20),
            Err(MdaError::Truncated {
                start: 4096,
                len: 511
            })
        );
    }

    #[test]
    fn slot_bounds() {
        let size = 8192;
        for (offset, s) in [
            (0, 10),
            (100, 10),
            (8192, 10),
            (600, 8192 - 511),
            (600, u64::MAX),
            (u64::MAX, 1),
            (600, 0),
        ] {
            let h = make_header(
                4096,
                size,
                RawLocn {
                    offset,
                    size: s,
                    checksum: 0,
                    flags: 0,
                },
            );
            assert!(
                matches!(
                    text_span(&h, 0),
                    Err(MdaError::LocationOutOfBounds { slot: 0, .. })
                ),
                "offset {offset} size {s}"
            );
        }
        let h = make_header(
            4096,
            size,
            RawLocn {
                offset: 7680,
                size: 1000,
                checksum: 0,
                flags: 0,
            },
        );
        let span = text_span(&h, 0).expect("ok").expect("some");
        assert_eq!((span.first_len, span.wrap_len), (512, 488));
        assert_eq!(span.pieces(4096), [(4096 + 7680, 512), (4096 + 512, 488)]);
    }

    #[test]
    fn wrapped_text_checksum_is_chained() {
        let text: Vec<u8> = b"vg { seqno = 3 }\n\0".to_vec();
        let locn = RawLocn {
            offset: 8192 - 7,
            size: text.len() as u64,
            checksum: lvm_crc(&text),
            flags: 0,
        };
        let h = make_header(4096, 8192, locn);
        let span = text_span(&h, 0).expect("ok").expect("some");
        assert_eq!(span.first_len, 7);
        let got = verify_text(&h, &span, &text[..7], &text[7..]).expect("valid");
        assert_eq!(got, b"vg { seqno = 3 }\n");
        let mut bad = text.clone();
        bad[3] ^= 0x20;
        assert!(matches!(
            verify_text(&h, &span, &bad[..7], &bad[7..]),
            Err(MdaError::TextChecksum { start: 4096, .. })
        ));
    }

    fn text_of(len: usize) -> Vec<u8> {
        let mut t: Vec<u8> = (0..len - 1).map(|i| b'a' + (i % 26) as u8).collect();
        t.push(0);
        t
    }

    #[test]
    fn placement_follows_lvm() {
        // Empty area: first copy at 512.
        let h = make_header(4096, 8192, RawLocn::default());
        let w = plan_text_write(&h, &text_of(1000)).expect("fits");
        assert_eq!(w.locn.offset, 512);
        assert_eq!(w.writes.len(), 1);
        assert_eq!(w.writes[0].0, 4096 + 512);
        assert_eq!(w.writes[0].1.len(), 1024, "padded to 512");

        // Where the next copy of a 1000-byte text goes after an old copy in slot 0:
        // (old offset, old size, old flags, new offset, why).
        let cases = [
            (512, 1000, 0, 1536, "after a copy at 512..1512"),
            (
                7168,
                700,
                0,
                512,
                "old copy ends within 512 of the end: restart",
            ),
            (
                6144,
                2600,
                0,
                1536,
                "old copy wrapped: after its wrapped end",
            ),
            (
                4096,
                2000,
                RAW_LOCN_IGNORED,
                512,
                "ignored mda: 512 whatever the slot says",
            ),
        ];
        for (offset, size, flags, want, why) in cases {
            let old = RawLocn {
                offset,
                size,
                checksum: 0,
                flags,
            };
            let h = make_header(4096, 8192, old);
            let w = plan_text_write(&h, &text_of(1000)).expect("fits");
            assert_eq!(w.locn.offset, want, "{why}");
        }

        // New copy passes the end: it wraps, second piece at 512 padded.
        let old = RawLocn {
            offset: 4096,
            size: 2000,
            checksum: 0,
            flags: 0,
        };
        let h = make_header(4096, 8192, old);
        let text = text_of(2500);
        let w = plan_text_write(&h, &text).expect("fits");
        assert_eq!(w.locn.offset, 6144);
        assert_eq!(w.writes.len(), 2);
        assert_eq!(w.writes[0], (4096 + 6144, text[..2048].to_vec()));
        assert_eq!(w.writes[1].0, 4096 + 512);
        assert_eq!(w.writes[1].1.len(), 512);
        assert_eq!(&w.writes[1].1[..452], &text[2048..]);
        assert!(w.writes[1].1[452..].iter().all(|&b| b == 0));
    }

    #[test]
    fn too_large_and_overlap() {
        let h = make_header(4096, 8192, RawLocn::default());
        let max = h.max_text_size();
        assert_eq!(max, 3328);
        assert!(plan_text_write(&h, &text_of(max as usize)).is_ok());
        let err = plan_text_write(&h, &text_of(max as usize + 1)).expect_err("too large");
        assert_eq!(
            err.to_string(),
            "metadata area at byte 4096: new metadata of 3329 bytes exceeds the maximum 3328 bytes"
        );
        // A committed copy larger than max (written by someone else) can force an overlap.
        let old = RawLocn {
            offset: 512,
            size: 7000,
            checksum: 0,
            flags: 0,
        };
        let h = make_header(4096, 8192, old);
        assert!(matches!(
            plan_text_write(&h, &text_of(3000)),
            Err(MdaError::Overlap { .. })
        ));
    }

    #[test]
    fn max_size_never_overlaps_anywhere_in_the_ring() {
        // Every old placement and size with a legal new size either fits without overlap.
        let size = 8192u64;
        let h0 = make_header(4096, size, RawLocn::default());
        let max = h0.max_text_size();
        for old_off in (512..size).step_by(512) {
            for old_size in [2, 511, 512, 513, 1500, max] {
                let h = make_header(
                    4096,
                    size,
                    RawLocn {
                        offset: old_off,
                        size: old_size,
                        checksum: 0,
                        flags: 0,
                    },
                );
                for new_size in [2, 700, max] {
                    let w = plan_text_write(&h, &text_of(new_size as usize));
                    assert!(w.is_ok(), "old {old_off}+{old_size} new {new_size}: {w:?}");
                }
            }
        }
    }

    #[test]
    fn hand_built_headers_with_absurd_geometry_are_refused() {
        for (start, size) in [(u64::MAX - 10, 8192), (4096, u64::MAX), (4096, 100)] {
            let mut h = make_header(
                4096,
                8192,
                RawLocn {
                    offset: 512,
                    size: 10,
                    checksum: 0,
                    flags: 0,
                },
            );
            h.start = start;
            h.size = size;
            assert!(matches!(text_span(&h, 0), Err(MdaError::BadSize { .. })));
            assert!(plan_text_write(&h, b"x\0").is_err());
        }
    }

    #[test]
    fn header_updates() {
        let old = RawLocn {
            offset: 512,
            size: 1000,
            checksum: 7,
            flags: 0,
        };
        let h = make_header(4096, 8192, old);
        let new = RawLocn {
            offset: 1536,
            size: 900,
            checksum: 9,
            flags: 0,
        };
        let pre = updated_header_bytes(&h, &new, SlotUpdate::Precommit);
        let ph = parse_mda_header(&pre, 4096, 8192).expect("valid");
        assert_eq!(ph.slots[0], old);
        assert_eq!(ph.slots[1], new);
        let com = updated_header_bytes(&ph, &new, SlotUpdate::Commit);
        let ch = parse_mda_header(&com, 4096, 8192).expect("valid");
        assert_eq!(ch.slots[0], new);
        assert_eq!(ch.slots[1], RawLocn::default());
        assert_eq!(&com[88..], &h.raw[88..]);
    }
}
