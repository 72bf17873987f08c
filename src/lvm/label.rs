//! The LVM2 label (`LABELONE`, one of sectors 0-3) and the PV header that follows it.
//!
//! Layout from `lib/label/label.c` (`_find_lvm_header`) and `lib/format_text/layout.h`,
//! `text_label.c` (`label_check_pv_layout`, `_text_read`). All integers are little-endian.
//! These are pure parsers over the bytes of the first sectors of a device.

use thiserror::Error;

use super::crc::lvm_crc;

/// Bytes per sector in every LVM2 on-disk structure.
pub const SECTOR_SIZE: usize = 512;
/// LVM looks for a label in sectors `0..LABEL_SCAN_SECTORS`.
pub const LABEL_SCAN_SECTORS: usize = 4;
/// Bytes that hold the label sectors.
pub const LABEL_SCAN_BYTES: usize = SECTOR_SIZE * LABEL_SCAN_SECTORS;
/// Bytes a caller should read from the start of a device to find the label and its PV
/// header: LVM reads the first 128 KiB in one block when it scans (`lib/label/label.c`, a
/// bcache block of 256 sectors) and follows `offset_xl` and the area lists anywhere in it.
pub const LVM_SCAN_BYTES: usize = 128 << 10;
/// The label's `id`.
pub const LABEL_ID: &[u8; 8] = b"LABELONE";
/// The label's `type` for LVM2 text-format PVs.
pub const LVM2_LABEL_TYPE: &[u8; 8] = b"LVM2 001";
/// Size of the label header (`id`, `sector_xl`, `crc_xl`, `offset_xl`, `type`).
pub const LABEL_HEADER_SIZE: usize = 32;
/// Length of a PV or VG id on disk (no dashes).
pub const ID_LEN: usize = 32;
/// `sizeof(struct pv_header)` without its flexible array: uuid + device size.
const PV_HEADER_FIXED: usize = ID_LEN + 8;
/// `sizeof(struct disk_locn)`.
const DISK_LOCN_SIZE: usize = 16;
/// The byte where the label's checksum coverage starts (`offset_xl`).
const CRC_START: usize = 20;

/// What is wrong with a label sector or the PV header inside it.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LabelError {
    /// The sector is shorter than 512 bytes.
    #[error("label sector {sector} is truncated ({len} of 512 bytes)")]
    Truncated {
        /// The sector number.
        sector: u64,
        /// Bytes available.
        len: usize,
    },
    /// The sector does not start with `LABELONE`.
    #[error("sector {sector} has no LABELONE label")]
    NotALabel {
        /// The sector number.
        sector: u64,
    },
    /// `sector_xl` names another sector (a copied or shifted label).
    #[error("label in sector {sector} says it belongs in sector {recorded}")]
    WrongSector {
        /// Where the label was found.
        sector: u64,
        /// What `sector_xl` says.
        recorded: u64,
    },
    /// `crc_xl` does not match bytes 20..512.
    #[error("label in sector {sector} has checksum {stored:#010x}, computed {computed:#010x}")]
    BadChecksum {
        /// The sector number.
        sector: u64,
        /// `crc_xl` as stored.
        stored: u32,
        /// The checksum of bytes 20..512.
        computed: u32,
    },
    /// The label's `type` is not `LVM2 001`.
    #[error("label in sector {sector} has type {found:?}, not \"LVM2 001\"")]
    WrongType {
        /// The sector number.
        sector: u64,
        /// The type bytes, lossily decoded.
        found: String,
    },
    /// `offset_xl` would put the PV header over the label header or past the sector.
    #[error("label in sector {sector} puts the pv header at offset {offset}, outside 32..={max}")]
    BadOffset {
        /// The sector number.
        sector: u64,
        /// `offset_xl` as stored.
        offset: u32,
        /// The largest offset that leaves room for a PV header.
        max: usize,
    },
    /// The PV uuid holds bytes that cannot be part of an LVM id.
    #[error("pv header in sector {sector} has a pv uuid that is not printable ascii")]
    BadUuid {
        /// The sector number.
        sector: u64,
    },
    /// A 0-terminated area list runs past the end of the label sector.
    #[error("pv header in sector {sector}: the {list} list runs past the end of the sector")]
    AreaListOverflow {
        /// The sector number.
        sector: u64,
        /// Which list: "data area", "metadata area" or "bootloader area".
        list: &'static str,
    },
}

/// The 32-byte label header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// The sector the label is in (0-3); equals `sector_xl`.
    pub sector: u64,
    /// `crc_xl`, verified.
    pub crc: u32,
    /// `offset_xl`: where the PV header starts inside the sector (pvcreate writes 32).
    pub offset: u32,
}

/// One `disk_locn`: an area of the device in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskLocn {
    /// Absolute byte offset on the device.
    pub offset: u64,
    /// Size in bytes; for data areas 0 means "to the end of the device".
    pub size: u64,
}

/// The PV header extension (version 2 adds bootloader areas).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvHeaderExtension {
    /// Extension version (LVM writes 2).
    pub version: u32,
    /// Extension flags (bit 0 = PV_EXT_USED: the PV belongs to a VG).
    pub flags: u32,
    /// Bootloader areas.
    pub bootloader_areas: Vec<DiskLocn>,
}

/// The PV header that follows the label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvHeader {
    /// The PV uuid as stored: 32 characters, no dashes.
    pub uuid: String,
    /// `device_size_xl` in bytes (as recorded by LVM, not necessarily the current size).
    pub device_size: u64,
    /// Data areas (LVM uses one: from `pe_start`, size 0).
    pub data_areas: Vec<DiskLocn>,
    /// Metadata areas: absolute offset and size of each, in on-disk order (0, 1 or 2).
    pub metadata_areas: Vec<DiskLocn>,
    /// The extension, when present and its version is not 0.
    pub extension: Option<PvHeaderExtension>,
}

impl PvHeader {
    /// The uuid in LVM's printed form, `xxxxxx-xxxx-xxxx-xxxx-xxxx-xxxx-xxxxxx`.
    pub fn uuid_formatted(&self) -> String {
        format_id(&self.uuid)
    }
}

/// A label and the PV header behind it, as found on a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSector {
    /// The label header.
    pub label: Label,
    /// The PV header.
    pub pv_header: PvHeader,
}

/// Insert LVM's dashes into a 32-character id (6-4-4-4-4-4-6). Other lengths are returned as is.
pub fn format_id(id: &str) -> String {
    if id.len() != ID_LEN || !id.is_ascii() {
        return id.to_string();
    }
    let mut out = String::with_capacity(ID_LEN + 6);
    let mut pos = 0;
    for (i, len) in [6usize, 4, 4, 4, 4, 4, 6].into_iter().enumerate() {
        if i > 0 {
            out.push('-');
        }
        out.push_str(id.get(pos..pos + len).unwrap_or_default());
        pos += len;
    }
    out
}

pub(crate) fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

pub(crate) fn le_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let b = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

/// Parse one 512-byte sector as an LVM2 label plus PV header. `sector` is its number on the
/// device; `bytes` starts at that sector and may go on past it (up to the end of what LVM
/// reads at scan, [`LVM_SCAN_BYTES`]), since the PV header and its lists are read from there.
/// Checks, in LVM's order: `LABELONE`, `sector_xl`, the checksum over bytes 20..512, the type
/// `LVM2 001`, then the PV header layout.
pub fn parse_label_sector(bytes: &[u8], sector: u64) -> Result<LabelSector, LabelError> {
    label_at(bytes, sector, true)
}

/// `checked`: the sector must start with `LABELONE`, name itself in `sector_xl` and pass its
/// checksum; without it only the type is checked (what LVM does with a sector that does not
/// start with `LABELONE`).
fn label_at(bytes: &[u8], sector: u64, checked: bool) -> Result<LabelSector, LabelError> {
    let buf = bytes.get(..SECTOR_SIZE).ok_or(LabelError::Truncated {
        sector,
        len: bytes.len(),
    })?;
    let truncated = LabelError::Truncated {
        sector,
        len: bytes.len(),
    };
    let stored = le_u32(buf, 16).ok_or(truncated.clone())?;
    if checked {
        if buf.get(..8) != Some(&LABEL_ID[..]) {
            return Err(LabelError::NotALabel { sector });
        }
        let recorded = le_u64(buf, 8).ok_or(truncated.clone())?;
        if recorded != sector {
            return Err(LabelError::WrongSector { sector, recorded });
        }
        let computed = lvm_crc(buf.get(CRC_START..).unwrap_or_default());
        if stored != computed {
            return Err(LabelError::BadChecksum {
                sector,
                stored,
                computed,
            });
        }
    }
    let type_bytes = buf.get(24..32).ok_or(truncated.clone())?;
    if type_bytes != LVM2_LABEL_TYPE {
        return Err(LabelError::WrongType {
            sector,
            found: String::from_utf8_lossy(type_bytes).into_owned(),
        });
    }
    let offset = le_u32(buf, 20).ok_or(truncated)?;
    let max = bytes.len().max(SECTOR_SIZE) - PV_HEADER_FIXED;
    let start = usize::try_from(offset).unwrap_or(usize::MAX);
    if !(LABEL_HEADER_SIZE..=max).contains(&start) {
        return Err(LabelError::BadOffset {
            sector,
            offset,
            max,
        });
    }
    let pv_header = parse_pv_header(bytes.get(start..).unwrap_or_default(), sector)?;
    Ok(LabelSector {
        label: Label {
            sector,
            crc: stored,
            offset,
        },
        pv_header,
    })
}

/// Read a 0-terminated (offset 0 ends it, as in `_text_read`) `disk_locn` list starting at
/// `*pos`; leaves `*pos` after the terminator.
fn parse_locn_list(
    bytes: &[u8],
    pos: &mut usize,
    sector: u64,
    list: &'static str,
) -> Result<Vec<DiskLocn>, LabelError> {
    let overflow = LabelError::AreaListOverflow { sector, list };
    let mut out = Vec::new();
    loop {
        let offset = le_u64(bytes, *pos).ok_or(overflow.clone())?;
        let size = le_u64(bytes, *pos + 8).ok_or(overflow.clone())?;
        *pos += DISK_LOCN_SIZE;
        if offset == 0 {
            return Ok(out);
        }
        out.push(DiskLocn { offset, size });
    }
}

/// Parse a PV header from `bytes` (the rest of the label sector, starting at `offset_xl`).
pub fn parse_pv_header(bytes: &[u8], sector: u64) -> Result<PvHeader, LabelError> {
    let uuid_bytes = bytes.get(..ID_LEN).ok_or(LabelError::AreaListOverflow {
        sector,
        list: "data area",
    })?;
    if !uuid_bytes.iter().all(|b| b.is_ascii_graphic()) {
        return Err(LabelError::BadUuid { sector });
    }
    let uuid = String::from_utf8_lossy(uuid_bytes).into_owned();
    let device_size = le_u64(bytes, ID_LEN).ok_or(LabelError::AreaListOverflow {
        sector,
        list: "data area",
    })?;
    let mut pos = PV_HEADER_FIXED;
    let data_areas = parse_locn_list(bytes, &mut pos, sector, "data area")?;
    let metadata_areas = parse_locn_list(bytes, &mut pos, sector, "metadata area")?;
    // Like label_check_pv_layout: the extension exists only if its 8-byte head fits.
    let extension = match (le_u32(bytes, pos), le_u32(bytes, pos + 4)) {
        (Some(version), Some(flags)) if version != 0 => {
            pos += 8;
            let bootloader_areas = parse_locn_list(bytes, &mut pos, sector, "bootloader area")?;
            Some(PvHeaderExtension {
                version,
                flags,
                bootloader_areas,
            })
        }
        _ => None,
    };
    Ok(PvHeader {
        uuid,
        device_size,
        data_areas,
        metadata_areas,
        extension,
    })
}

/// Look for the label in the first sectors of a device (`bytes` = the start of the device, up
/// to [`LVM_SCAN_BYTES`]; at least the first 2048 bytes to see every label sector).
///
/// As LVM's `_find_lvm_header` (`lib/label/label.c`): a sector that starts with `LABELONE`
/// is skipped when `sector_xl` or the checksum is wrong, or when its type is not `LVM2 001`;
/// a sector that does not start with `LABELONE` is taken as a label when its type is
/// `LVM2 001`, with neither `sector_xl` nor the checksum checked (LVM's text labeller only
/// looks at the type); the first label found wins. `Ok(None)`: no sector is a label (not a
/// PV). If sectors start with `LABELONE` but none is valid, the error of the first one is
/// returned (LVM ignores such a device; the caller decides whether to say so). The error of
/// the label found, if its PV header is unusable.
pub fn find_label(bytes: &[u8]) -> Result<Option<LabelSector>, LabelError> {
    let mut first_error = None;
    for sector in 0..LABEL_SCAN_SECTORS {
        let start = sector * SECTOR_SIZE;
        let Some(buf) = bytes.get(start..) else {
            break;
        };
        let Some(head) = buf.get(..SECTOR_SIZE) else {
            break;
        };
        let labelone = head.get(..8) == Some(&LABEL_ID[..]);
        if !labelone && head.get(24..32) != Some(&LVM2_LABEL_TYPE[..]) {
            continue;
        }
        match label_at(buf, sector as u64, labelone) {
            Ok(found) => return Ok(Some(found)),
            // The sector is a label by LVM's rule: its PV header is what LVM uses.
            Err(
                e @ (LabelError::BadOffset { .. }
                | LabelError::BadUuid { .. }
                | LabelError::AreaListOverflow { .. }),
            ) => return Err(e),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(None),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Build a label sector by hand (as pvcreate lays it out) for tests.
    pub(crate) fn make_label_sector(
        sector: u64,
        uuid: &[u8; 32],
        dev_size: u64,
        data: &[(u64, u64)],
        mdas: &[(u64, u64)],
        ext: Option<(u32, u32)>,
    ) -> Vec<u8> {
        let mut b = vec![0u8; SECTOR_SIZE];
        b[..8].copy_from_slice(LABEL_ID);
        b[8..16].copy_from_slice(&sector.to_le_bytes());
        b[20..24].copy_from_slice(&32u32.to_le_bytes());
        b[24..32].copy_from_slice(LVM2_LABEL_TYPE);
        b[32..64].copy_from_slice(uuid);
        b[64..72].copy_from_slice(&dev_size.to_le_bytes());
        let mut pos = 72;
        for list in [data, mdas] {
            for &(o, s) in list {
                b[pos..pos + 8].copy_from_slice(&o.to_le_bytes());
                b[pos + 8..pos + 16].copy_from_slice(&s.to_le_bytes());
                pos += 16;
            }
            pos += 16;
        }
        if let Some((v, f)) = ext {
            b[pos..pos + 4].copy_from_slice(&v.to_le_bytes());
            b[pos + 4..pos + 8].copy_from_slice(&f.to_le_bytes());
        }
        fix_crc(&mut b);
        b
    }

    pub(crate) fn fix_crc(b: &mut [u8]) {
        let crc = lvm_crc(&b[20..512]);
        b[16..20].copy_from_slice(&crc.to_le_bytes());
    }

    const UUID: &[u8; 32] = b"abcdefABCDEF0123456789abcdefABCD";

    #[test]
    fn parses_a_built_label() {
        let b = make_label_sector(
            1,
            UUID,
            8 << 20,
            &[(1 << 20, 0)],
            &[(4096, (1 << 20) - 4096)],
            Some((2, 1)),
        );
        let found = parse_label_sector(&b, 1).expect("valid");
        assert_eq!(found.label.sector, 1);
        assert_eq!(found.pv_header.uuid, "abcdefABCDEF0123456789abcdefABCD");
        assert_eq!(
            found.pv_header.uuid_formatted(),
            "abcdef-ABCD-EF01-2345-6789-abcd-efABCD"
        );
        assert_eq!(found.pv_header.device_size, 8 << 20);
        assert_eq!(
            found.pv_header.data_areas,
            vec![DiskLocn {
                offset: 1 << 20,
                size: 0
            }]
        );
        assert_eq!(found.pv_header.metadata_areas.len(), 1);
        let ext = found.pv_header.extension.expect("extension");
        assert_eq!((ext.version, ext.flags), (2, 1));
        assert!(ext.bootloader_areas.is_empty());
    }

    #[test]
    fn find_label_skips_other_sectors() {
        let mut dev = vec![0u8; LABEL_SCAN_BYTES];
        let b = make_label_sector(2, UUID, 1 << 30, &[(1 << 20, 0)], &[], None);
        dev[1024..1536].copy_from_slice(&b);
        let found = find_label(&dev).expect("ok").expect("some");
        assert_eq!(found.label.sector, 2);
        assert!(found.pv_header.metadata_areas.is_empty());
        assert!(found.pv_header.extension.is_none());
        assert_eq!(find_label(&[0u8; LABEL_SCAN_BYTES]), Ok(None));
        assert_eq!(find_label(&[]), Ok(None));
    }

    #[test]
    fn label_copied_to_another_sector_is_rejected() {
        let b = make_label_sector(1, UUID, 1 << 30, &[(1 << 20, 0)], &[], None);
        let mut dev = vec![0u8; LABEL_SCAN_BYTES];
        dev[..512].copy_from_slice(&b);
        assert_eq!(
            find_label(&dev),
            Err(LabelError::WrongSector {
                sector: 0,
                recorded: 1
            })
        );
    }

    #[test]
    fn every_bit_flip_in_the_checked_range_is_caught() {
        let good = make_label_sector(
            1,
            UUID,
            1 << 30,
            &[(1 << 20, 0)],
            &[(4096, 1 << 19)],
            Some((2, 1)),
        );
        for byte in 16..512 {
            for bit in 0..8 {
                let mut b = good.clone();
                b[byte] ^= 1 << bit;
                let err = parse_label_sector(&b, 1).expect_err("flip must be caught");
                assert!(
                    matches!(err, LabelError::BadChecksum { sector: 1, .. }),
                    "byte {byte} bit {bit}: {err}"
                );
            }
        }
    }

    #[test]
    fn truncated_and_wrong_type() {
        let good = make_label_sector(1, UUID, 1 << 30, &[(1 << 20, 0)], &[], None);
        assert_eq!(
            parse_label_sector(&good[..100], 1),
            Err(LabelError::Truncated {
                sector: 1,
                len: 100
            })
        );
        let mut b = good.clone();
        b[24..32].copy_from_slice(b"LVM1 001");
        fix_crc(&mut b);
        let err = parse_label_sector(&b, 1).expect_err("wrong type");
        assert_eq!(
            err.to_string(),
            "label in sector 1 has type \"LVM1 001\", not \"LVM2 001\""
        );
    }

    #[test]
    fn bad_pv_header_offset() {
        for off in [0u32, 31, 473, u32::MAX] {
            let mut b = make_label_sector(1, UUID, 1 << 30, &[(1 << 20, 0)], &[], None);
            b[20..24].copy_from_slice(&off.to_le_bytes());
            fix_crc(&mut b);
            assert!(
                matches!(parse_label_sector(&b, 1), Err(LabelError::BadOffset { offset, .. }) if offset == off),
                "offset {off}"
            );
        }
    }

    #[test]
    fn unterminated_area_lists_are_caught() {
        // Fill the whole sector after the fixed header with non-zero locations.
        let mut b = make_label_sector(1, UUID, 1 << 30, &[], &[], None);
        for chunk in b[72..512].chunks_mut(8) {
            chunk.copy_from_slice(&4096u64.to_le_bytes()[..chunk.len()]);
        }
        fix_crc(&mut b);
        assert_eq!(
            parse_label_sector(&b, 1),
            Err(LabelError::AreaListOverflow {
                sector: 1,
                list: "data area"
            })
        );
        // Data list terminated, metadata list not.
        let mut b = make_label_sector(1, UUID, 1 << 30, &[(1 << 20, 0)], &[], None);
        for chunk in b[104..512].chunks_mut(8) {
            chunk.copy_from_slice(&4096u64.to_le_bytes()[..chunk.len()]);
        }
        fix_crc(&mut b);
        let err = parse_label_sector(&b, 1).expect_err("overflow");
        assert_eq!(
            err.to_string(),
            "pv header in sector 1: the metadata area list runs past the end of the sector"
        );
    }

    #[test]
    fn non_printable_uuid() {
        let mut uuid = *UUID;
        uuid[5] = 0;
        let b = make_label_sector(1, &uuid, 1 << 30, &[(1 << 20, 0)], &[], None);
        assert_eq!(
            parse_label_sector(&b, 1),
            Err(LabelError::BadUuid { sector: 1 })
        );
    }

    #[test]
    fn a_sector_without_labelone_is_a_label_by_its_type_alone() {
        // LVM's _find_lvm_header checks sector_xl and the crc only behind LABELONE; its text
        // labeller takes any sector whose type is "LVM2 001".
        let mut b = make_label_sector(1, UUID, 1 << 30, &[(1 << 20, 0)], &[(4096, 8192)], None);
        b[..8].copy_from_slice(b"labelone");
        b[8..16].copy_from_slice(&7u64.to_le_bytes());
        b[16] ^= 0xff;
        let mut dev = vec![0u8; LABEL_SCAN_BYTES];
        dev[512..1024].copy_from_slice(&b);
        let found = find_label(&dev).expect("ok").expect("a label");
        assert_eq!(found.label.sector, 1);
        assert_eq!(found.pv_header.uuid, "abcdefABCDEF0123456789abcdefABCD");
        // Without the type it is not a label; parse_label_sector still wants all of it.
        assert!(matches!(
            parse_label_sector(&b, 1),
            Err(LabelError::NotALabel { sector: 1 })
        ));
        dev[512 + 24] = b'X';
        assert_eq!(find_label(&dev), Ok(None));
        // A sector with only the type, before the real label, wins (as in LVM).
        let mut dev = vec![0u8; LABEL_SCAN_BYTES];
        dev[24..32].copy_from_slice(LVM2_LABEL_TYPE);
        dev[20..24].copy_from_slice(&32u32.to_le_bytes());
        let good = make_label_sector(1, UUID, 1 << 30, &[(1 << 20, 0)], &[], None);
        dev[512..1024].copy_from_slice(&good);
        assert_eq!(find_label(&dev), Err(LabelError::BadUuid { sector: 0 }));
    }

    #[test]
    fn the_pv_header_may_lie_past_the_label_sector() {
        // offset_xl and the lists are followed into the bytes after the sector, as far as
        // LVM's scan block reaches.
        let hdr = make_label_sector(1, UUID, 1 << 30, &[(1 << 20, 0)], &[(4096, 8192)], None);
        let mut dev = vec![0u8; LVM_SCAN_BYTES];
        dev[512..512 + 32].copy_from_slice(&hdr[..32]);
        dev[512 + 3000..512 + 3000 + 200].copy_from_slice(&hdr[32..232]);
        dev[512 + 20..512 + 24].copy_from_slice(&3000u32.to_le_bytes());
        fix_crc(&mut dev[512..1024]);
        let found = find_label(&dev).expect("ok").expect("a label");
        assert_eq!(found.label.offset, 3000);
        assert_eq!(found.pv_header.metadata_areas.len(), 1);
        // Only the first 2048 bytes: the header is out of reach.
        assert!(matches!(
            find_label(&dev[..LABEL_SCAN_BYTES]),
            Err(LabelError::BadOffset { offset: 3000, .. })
        ));
        // Lists that run past the sector go on in the next one.
        let mut b = make_label_sector(1, UUID, 1 << 30, &[], &[], None);
        for chunk in b[72..512].chunks_mut(16) {
            chunk[..8].copy_from_slice(&(1u64 << 20).to_le_bytes());
        }
        fix_crc(&mut b);
        let mut dev = vec![0u8; LVM_SCAN_BYTES];
        dev[512..1024].copy_from_slice(&b);
        let found = find_label(&dev).expect("ok").expect("a label");
        assert_eq!(
            found.pv_header.data_areas.len(),
            (512 - 72usize).div_ceil(16)
        );
        assert!(found.pv_header.metadata_areas.is_empty());
    }
}
