//! The metadata text (`lvm::text::parse` and LVM's reading, `parse_lvm`), the VG model and
//! LVM's rules (`lvm::lvmrules`) on it. Whatever parses must print and parse back to the same
//! tree, in both layouts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind::lvm::lvmrules;
use rewind::lvm::model::Vg;
use rewind::lvm::text::{Style, parse, parse_lvm, print, print_bytes};

fuzz_target!(|data: &[u8]| {
    let _ = lvmrules::check_text_start(data);
    if let Ok(tree) = parse_lvm(data) {
        for style in [Style::Disk, Style::Backup] {
            let printed = print_bytes(&tree, style);
            let again = parse_lvm(&printed).unwrap_or_else(|e| {
                panic!(
                    "printed text does not parse ({style:?}): {e}\n{}",
                    String::from_utf8_lossy(&printed)
                )
            });
            assert_eq!(again, tree, "{style:?} round trip (LVM's reading)");
        }
        let _ = lvmrules::check_copy(&tree);
        let _ = lvmrules::check_vg(&tree);
        let _ = lvmrules::check_access(&tree, &lvmrules::SystemIds::default());
    }
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
