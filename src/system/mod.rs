//! The kernel boundary: block devices, device-mapper, device nodes, kernel log.

pub mod dm;
