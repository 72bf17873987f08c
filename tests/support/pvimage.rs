//! PV images built in memory: a label, PV header and one metadata area laid out as `pvcreate`
//! does (checked field by field against `lvm::label` and `lvm::mda`), with the metadata text
//! committed by rewind's own writer (`disk::commit`). Shared by the inspect tests and the
//! parse benchmark (`#[path]`-included; not every user needs every function).
#![allow(dead_code)]

use rewind::lvm::crc::lvm_crc;
use rewind::lvm::disk::{commit, scan_device};
use rewind::lvm::mda::FMTT_MAGIC;
use std::io::Cursor;

/// Where the metadata area starts, as pvcreate puts it.
pub const MDA_OFFSET: u64 = 4096;

/// A blank PV: label in sector 1, one metadata area at 4 KiB of `mda_size` bytes with an
/// empty ring, data from the end of the area. `uuid` is the PV id with or without dashes.
pub fn blank_pv(uuid: &str, dev_size: u64, mda_size: u64) -> Vec<u8> {
    let uuid: Vec<u8> = uuid.bytes().filter(|&b| b != b'-').collect();
    assert_eq!(uuid.len(), 32, "pv uuid");
    let mut img = vec![0u8; usize::try_from(dev_size).expect("size")];
    let label = &mut img[512..1024];
    label[..8].copy_from_slice(b"LABELONE");
    label[8..16].copy_from_slice(&1u64.to_le_bytes());
    label[20..24].copy_from_slice(&32u32.to_le_bytes());
    label[24..32].copy_from_slice(b"LVM2 001");
    label[32..64].copy_from_slice(&uuid);
    label[64..72].copy_from_slice(&dev_size.to_le_bytes());
    // Data area {pe_start, 0}, end; metadata area {4096, size}, end; extension v2; end.
    let words: [u64; 8] = [MDA_OFFSET + mda_size, 0, 0, 0, MDA_OFFSET, mda_size, 0, 0];
    for (i, w) in words.iter().enumerate() {
        label[72 + 8 * i..80 + 8 * i].copy_from_slice(&w.to_le_bytes());
    }
    label[136..140].copy_from_slice(&2u32.to_le_bytes());
    let crc = lvm_crc(&label[20..512]);
    label[16..20].copy_from_slice(&crc.to_le_bytes());

    let at = usize::try_from(MDA_OFFSET).expect("offset");
    let mda = &mut img[at..at + 512];
    mda[4..20].copy_from_slice(FMTT_MAGIC);
    mda[20..24].copy_from_slice(&1u32.to_le_bytes());
    mda[24..32].copy_from_slice(&MDA_OFFSET.to_le_bytes());
    mda[32..40].copy_from_slice(&mda_size.to_le_bytes());
    let crc = lvm_crc(&mda[4..512]);
    mda[..4].copy_from_slice(&crc.to_le_bytes());
    img
}

/// Commits `text` to the image's metadata area with rewind's writer.
pub fn commit_text(img: Vec<u8>, text: &[u8]) -> Vec<u8> {
    let mut dev = Cursor::new(img);
    let scan = scan_device(&mut dev, "image").expect("scan").expect("a pv");
    let mut pvs = vec![(scan, dev)];
    commit(&mut pvs, text).expect("commit");
    pvs.pop().expect("one").1.into_inner()
}

/// A PV carrying `text` (a whole VG metadata text in the disk layout).
pub fn pv_with_text(uuid: &str, dev_size: u64, mda_size: u64, text: &[u8]) -> Vec<u8> {
    commit_text(blank_pv(uuid, dev_size, mda_size), text)
}
