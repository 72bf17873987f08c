//! The metadata-area header (`lvm::mda`): parse, locate slot texts, plan a new write and
//! rebuild the header. The harness fixes the header checksum so the geometry checks behind
//! it are reached; the area's start and size come from the header itself, as for a real PV.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind::lvm::crc::lvm_crc;
use rewind::lvm::mda::{
    SlotUpdate, parse_mda_header, plan_text_write, text_span, updated_header_bytes,
};

fuzz_target!(|data: &[u8]| {
    if data.len() < 512 {
        return;
    }
    let (head, text) = data.split_at(512);
    let mut raw = head.to_vec();
    let crc = lvm_crc(&raw[4..]);
    raw[..4].copy_from_slice(&crc.to_le_bytes());
    let le64 = |at: usize| u64::from_le_bytes(raw[at..at + 8].try_into().expect("8 bytes"));
    let (start, size) = (le64(24), le64(32));
    let Ok(header) = parse_mda_header(&raw, start, size) else {
        return;
    };
    let _ = header.max_text_size();
    for slot in 0..2 {
        if let Ok(Some(span)) = text_span(&header, slot) {
            let [(o1, l1), (o2, l2)] = span.pieces(header.start);
            assert!(o1.checked_add(l1).is_some() && o2.checked_add(l2).is_some());
        }
    }
    if let Ok(write) = plan_text_write(&header, text) {
        // Every write stays inside the ring, after the header.
        for (offset, bytes) in &write.writes {
            let end = offset + bytes.len() as u64;
            assert!(*offset >= header.start + 512 && end <= header.start + header.size);
        }
        for update in [SlotUpdate::Precommit, SlotUpdate::Commit] {
            let bytes = updated_header_bytes(&header, &write.locn, update);
            let again = parse_mda_header(&bytes, start, size).expect("rebuilt header parses");
            assert_eq!(again.start, header.start);
        }
    }
});
