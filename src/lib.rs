//! rewind: reboot-to-rollback for LVM2. See `DESIGN.md` in the steering repository for the layers.

pub mod cli;
pub mod config;
pub mod early;
pub mod handoff;
pub mod lvm;
pub mod plan;
pub mod poll;
pub mod system;
