//! The kernel boundary: block devices, device-mapper, device nodes, kernel log.

pub mod blockdev;
pub mod dm;
pub mod exec;
pub mod kmsg;
pub mod lock;
pub mod lvmtool;
pub mod mounts;
pub mod nodes;
pub mod procs;
pub mod random;
pub mod scan;
pub mod window;
