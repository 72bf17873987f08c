//! The flows: one module per command, each with one entry point. A flow reads through
//! `system/`, decides through `plan/`, applies through `system/`, and returns a typed error.

pub mod early;
pub mod poll;
pub mod rollback;
