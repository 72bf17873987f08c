//! The metadata text (`lvm::text::parse`) and the VG model on it. Whatever parses must print
//! and parse back to the same tree, in both layouts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind::lvm::model::Vg;
use rewind::lvm::text::{Style, parse, print};

fuzz_target!(|data: &[u8]| {
    let Ok(tree) = parse(data) else {
        return;
    };
    for style in [Style::Disk, Style::Backup] {
        let printed = print(&tree, style);
        let again = parse(printed.as_bytes())
            .unwrap_or_else(|e| panic!("printed text does not parse ({style:?}): {e}\n{printed}"));
        assert_eq!(again, tree, "{style:?} round trip\n{printed}");
    }
    if let Ok(vg) = Vg::from_tree(&tree) {
        let _ = vg.check_writable();
        let _ = vg.unknown_status();
    }
});
