//! Device-mapper table and status lines (`plan::table`): whatever parses must print and parse
//! back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind::plan::table::{SnapshotStatus, StatusLine, Table, TableLine, Target};

fn round_trip<T>(s: &str)
where
    T: std::str::FromStr + std::fmt::Display + PartialEq + std::fmt::Debug,
{
    if let Ok(v) = s.parse::<T>() {
        let printed = v.to_string();
        match printed.parse::<T>() {
            Ok(again) => assert_eq!(again, v, "{s:?} printed as {printed:?}"),
            Err(_) => panic!("{s:?} printed as {printed:?}, which does not parse"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    round_trip::<Table>(s);
    for line in s.lines() {
        round_trip::<TableLine>(line);
        round_trip::<StatusLine>(line);
        round_trip::<Target>(line);
        round_trip::<SnapshotStatus>(line);
        if let Ok(st) = line.parse::<StatusLine>() {
            let _ = st.snapshot_status();
        }
    }
});
