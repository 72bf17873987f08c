//! The kernel command line (`plan::cmdline::Cmdline::parse`): never panics, and every target
//! it returns prints as something the parser reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rewind::lvm::layout::LvRef;
use rewind::plan::cmdline::Cmdline;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let c = Cmdline::parse(s);
    for lv in &c.activate {
        assert_eq!(LvRef::parse(&lv.to_string()).as_ref(), Ok(lv));
    }
});
