//! A whole device image through `disk::scan_device` and `assemble`: every offset and size
//! read from disk must be bounded, whatever the image says. The harness fixes the label CRC
//! and the metadata-area header checksums so the fuzzer reaches the geometry behind them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind::lvm::assemble::assemble;
use rewind::lvm::crc::lvm_crc;
use rewind::lvm::disk::scan_device;
use rewind::lvm::label::find_label;
use std::io::Cursor;

fuzz_target!(|data: &[u8]| {
    let mut img = data.to_vec();
    for sector in img.chunks_mut(512).take(4) {
        if sector.len() == 512 && sector.starts_with(b"LABELONE") {
            let crc = lvm_crc(&sector[20..]);
            sector[16..20].copy_from_slice(&crc.to_le_bytes());
        }
    }
    let head = img.len().min(2048);
    if let Ok(Some(found)) = find_label(&img[..head]) {
        for area in &found.pv_header.metadata_areas {
            let Ok(at) = usize::try_from(area.offset) else {
                continue;
            };
            if let Some(h) = img.get_mut(at..at.saturating_add(512)) {
                if h.len() == 512 {
                    let crc = lvm_crc(&h[4..]);
                    h[..4].copy_from_slice(&crc.to_le_bytes());
                }
            }
        }
    }
    if let Ok(Some(pv)) = scan_device(&mut Cursor::new(img), "fuzz") {
        let twice = [pv.clone(), pv];
        let _ = assemble(&twice[..1], &[]);
        let _ = assemble(&twice, &[]);
    }
});
