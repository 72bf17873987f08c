//! Link options for one binary only (issue 17, BENCHMARKS.md "Issue 17, session 8").
//!
//! `rewind-initramfs` (the build that goes into the initramfs) is linked without
//! `.eh_frame_hdr` (`--no-eh-frame-hdr`, -24 KB) in the release profile, whose `panic = "abort"`
//! never unwinds: that table only serves the unwinder's search for a frame's unwind entry,
//! which a panic needs only to print a `RUST_BACKTRACE` trace. That trace is all that goes: the
//! panic message and the abort stay. In this stripped, ASLR-loaded binary the trace was a list
//! of random addresses marked `<unknown>`. Not in `.cargo/config.toml`: test binaries unwind
//! (`panic = "unwind"`), and unwinding needs the table; not for the dev profile either (it
//! unwinds too).

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var("PROFILE").as_deref() == Ok("release") {
        println!("cargo::rustc-link-arg-bin=rewind-initramfs=-Wl,--no-eh-frame-hdr");
    }
}
