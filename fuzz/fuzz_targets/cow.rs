//! The dm-snapshot COW header (`lvm::cow::check`); the first four bytes are the chunk size
//! the metadata would expect.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind::lvm::cow::check;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let expected = u32::from_le_bytes(data[..4].try_into().expect("4 bytes"));
    let _ = check(&data[4..], expected);
});
