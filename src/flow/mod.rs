//! The flows: one module per command, each with one entry point (`run`). A flow reads through
//! `system/`, decides through `plan/`, applies through `system/`, and returns [`Error`], the
//! flows' one error type; `cli` prints the outcome and maps it to an exit code.

pub mod bootmenu;
pub mod bootpkgs;
pub mod cancel;
pub mod check_config;
pub mod diff;
pub mod early;
pub mod env;
mod error;
pub mod handoff;
pub mod inspect;
pub mod notice;
pub mod pkghook;
pub mod plan;
pub mod poll;
pub mod rollback;
pub mod set_rollback;
pub mod setkernel;
pub mod setmount;
pub mod sets;
pub mod snapshot;
pub mod status;
pub mod thinfinish;
pub mod watch;

pub use error::Error;

use crate::exit::Verdict;
use crate::plan::decide::{Level, Note};

/// Logs `message` at its level and keeps it as a note: what the initramfs flows (early,
/// handoff) did and why, for their outcome and the kernel log alike.
fn note(notes: &mut Vec<Note>, level: Level, message: String) {
    match level {
        Level::Error => log::error!("{message}"),
        Level::Warn => log::warn!("{message}"),
        Level::Info => log::info!("{message}"),
    }
    notes.push(Note { level, message });
}

/// Failed when a note is an error: something asked for could not be done safely.
fn verdict_of(notes: &[Note]) -> Verdict {
    Verdict::failed_if(notes.iter().any(|n| n.level == Level::Error))
}
