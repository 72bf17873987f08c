//! The kernel boundary: the only layer that touches the kernel, `/dev`, `/sys` and `/proc`:
//! block devices and the device selection's reading, device-mapper, device nodes, kernel
//! modules, LVM's VG lock, the kernel log, the package managers' tools.

pub mod blockdev;
pub mod bootfile;
pub mod devsel;
pub mod dm;
pub mod exec;
pub mod failpoint;
pub mod kmsg;
pub mod lock;
pub mod lvmtool;
pub mod modules;
pub mod motd;
pub mod mounts;
pub mod nodes;
pub mod pkgdb;
pub mod place;
pub mod proc;
pub mod procs;
pub mod random;
pub mod scan;
pub mod state;
pub mod thincheck;
pub mod window;
