//! Pure decisions: from the VG model, the requests and the live device-mapper state, a plan.

pub mod bls;
pub mod bootpkgs;
pub mod cmdline;
pub mod decide;
pub mod dev;
pub mod devices;
pub mod kernels;
pub mod pkgdb;
pub mod pkghook;
pub mod set;
pub mod steps;
pub mod table;
pub mod thincheck;
pub mod thinpool;

#[cfg(test)]
pub(crate) mod tests;
