//! The LVM2 on-disk format: labels, metadata areas, the metadata text and the VG model.
//! Pure functions over bytes and text; no ioctls.

pub mod change;
pub mod model;
pub mod text;
