//! The flows: one module per command, each with one entry point (`run`). A flow reads through
//! `system/`, decides through `plan/`, applies through `system/`, and returns [`Error`], the
//! flows' one error type; `cli` prints the outcome and maps it to an exit code.

pub mod cancel;
pub mod check_config;
pub mod early;
pub mod env;
mod error;
pub mod failpoint;
pub mod handoff;
pub mod inspect;
pub mod plan;
pub mod poll;
pub mod rollback;
pub mod status;

pub use error::Error;
