//! rewind: reboot-to-rollback for LVM2. See `DESIGN.md` in the steering repository for the layers.

pub mod cli;
pub mod config;
pub mod exit;
pub mod flow;
pub mod lvm;
pub mod plan;
pub mod system;
