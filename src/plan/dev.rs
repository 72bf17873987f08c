//! The planner's own words for a device: its number and which udev rules may act on its
//! events. `system/` turns them into what the kernel and the devicemapper crate take.

use std::fmt;

/// A device number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DevNum {
    pub major: u32,
    pub minor: u32,
}

impl fmt::Display for DevNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

/// Which udev rules may act on a device's events (LVM's `_get_udev_flags`, with udev managing
/// the nodes). `system::dm` carries them in the cookie of a resume or remove.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UdevRules {
    /// A visible top-level LV (`vg-root`): every rule runs.
    All,
    /// A visible snapshot (`vg-pre`): every rule, but origins win symlink names.
    LowPriority,
    /// A layer or hidden LV (`-real`, `-cow`): only `/dev/mapper` content.
    DmOnly,
}

/// The device number of the unit tests' VG's one PV (`lvm::testvg`, `/dev/vda`).
#[cfg(test)]
pub const PV_DEV: DevNum = DevNum {
    major: 254,
    minor: 0,
};
