//! The label sector and PV header parsers (`lvm::label`) on arbitrary first sectors. The
//! first byte chooses whether the harness fixes up the label CRC, so the fuzzer also reaches
//! the PV header behind a valid checksum.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind::lvm::crc::lvm_crc;
use rewind::lvm::label::{SECTOR_SIZE, find_label, parse_label_sector, parse_pv_header};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    if mode & 1 == 1 {
        for sector in bytes.chunks_mut(SECTOR_SIZE) {
            if sector.len() == SECTOR_SIZE && sector.starts_with(b"LABELONE") {
                let crc = lvm_crc(&sector[20..]);
                sector[16..20].copy_from_slice(&crc.to_le_bytes());
            }
        }
    }
    let _ = find_label(&bytes);
    let sector = u64::from(mode >> 1) % 4;
    let _ = parse_label_sector(&bytes, sector);
    let _ = parse_pv_header(&bytes, sector);
});
