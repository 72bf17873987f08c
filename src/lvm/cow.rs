//! The dm-snapshot persistent exception store header in chunk 0 of a COW volume
//! (`drivers/md/dm-snap-persistent.c`, `struct disk_header`, `read_header`): four little-endian
//! u32 values `magic`, `valid`, `version`, `chunk_size`.
//!
//! rewind reads it before flagging a merge (invariant 5): the kernel refuses to merge an invalid
//! snapshot ("Snapshot is invalid: can't merge"), and an overflowed snapshot is marked invalid
//! here by the kernel when it drops it.

use serde::Serialize;

/// "SnAp" little-endian.
pub const SNAP_MAGIC: u32 = 0x7041_6e53;
/// The only on-disk version the kernel writes.
pub const SNAPSHOT_DISK_VERSION: u32 = 1;
/// How many bytes of chunk 0 the header takes.
pub const HEADER_LEN: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CowHeader {
    /// Magic 0: a store the kernel has never initialised (a snapshot that was never active).
    /// Merging it changes nothing.
    New,
    /// A valid store with this chunk size (sectors).
    Valid { chunk_size: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CowError {
    #[error("cow header too short: {0} bytes, need {HEADER_LEN}")]
    Short(usize),
    #[error("not a snapshot store: magic {0:#010x}, expected {SNAP_MAGIC:#010x}")]
    BadMagic(u32),
    #[error("snapshot is invalid (overflowed or dropped by the kernel); it cannot be merged")]
    Invalid,
    #[error("unsupported snapshot store version {0}")]
    Version(u32),
    #[error("chunk size {found} sectors in the store differs from {expected} in the metadata")]
    ChunkSize { found: u32, expected: u32 },
}

fn le32(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

/// Parses the header and checks it against the chunk size the LVM metadata records.
pub fn check(bytes: &[u8], expected_chunk_size: u32) -> Result<CowHeader, CowError> {
    let h = bytes
        .get(..HEADER_LEN)
        .ok_or(CowError::Short(bytes.len()))?;
    let (magic, valid, version, chunk_size) = (le32(h, 0), le32(h, 4), le32(h, 8), le32(h, 12));
    if magic == 0 {
        return Ok(CowHeader::New);
    }
    if magic != SNAP_MAGIC {
        return Err(CowError::BadMagic(magic));
    }
    if valid == 0 {
        return Err(CowError::Invalid);
    }
    if version != SNAPSHOT_DISK_VERSION {
        return Err(CowError::Version(version));
    }
    if chunk_size != expected_chunk_size {
        return Err(CowError::ChunkSize {
            found: chunk_size,
            expected: expected_chunk_size,
        });
    }
    Ok(CowHeader::Valid { chunk_size })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(magic: u32, valid: u32, version: u32, chunk: u32) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [magic, valid, version, chunk] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v.resize(512, 0xAA); // exceptions follow in the real store; they must not matter
        v
    }

    #[test]
    fn magic_spells_snap() {
        assert_eq!(&SNAP_MAGIC.to_le_bytes(), b"SnAp");
    }

    #[test]
    fn valid_store() {
        assert_eq!(
            check(&header(SNAP_MAGIC, 1, 1, 8), 8),
            Ok(CowHeader::Valid { chunk_size: 8 })
        );
    }

    #[test]
    fn zeroed_store_is_new() {
        assert_eq!(check(&[0u8; 512], 8), Ok(CowHeader::New));
    }

    #[test]
    fn every_defect_is_named() {
        assert_eq!(
            check(&header(SNAP_MAGIC, 0, 1, 8), 8),
            Err(CowError::Invalid)
        );
        assert_eq!(
            check(&header(0xdead_beef, 1, 1, 8), 8),
            Err(CowError::BadMagic(0xdead_beef))
        );
        assert_eq!(
            check(&header(SNAP_MAGIC, 1, 2, 8), 8),
            Err(CowError::Version(2))
        );
        assert_eq!(
            check(&header(SNAP_MAGIC, 1, 1, 16), 8),
            Err(CowError::ChunkSize {
                found: 16,
                expected: 8
            })
        );
        assert_eq!(check(&[0u8; 15], 8), Err(CowError::Short(15)));
        assert!(CowError::Invalid.to_string().contains("cannot be merged"));
    }
}
