//! The LVM2 on-disk format: labels, metadata areas, the metadata text and the VG model.
//! Pure functions over bytes and text; no ioctls.

pub mod assemble;
pub mod change;
pub mod cow;
pub mod crc;
pub mod devsel;
pub mod disk;
pub mod label;
pub mod layout;
pub mod lvmrules;
pub mod mda;
pub mod model;
pub mod setchange;
pub mod sets;
#[cfg(test)]
pub mod testvg;
pub mod text;
pub mod thinchange;
