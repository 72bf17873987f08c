//! The device-mapper boundary: the `DeviceMapper` trait a plan executes against, the real
//! implementation over the devicemapper crate, and a recording fake for tests (compiled only
//! for them: `cfg(test)` or the `testing` feature the integration tests turn on).
//!
//! The pieces: `dm/real.rs` (the devicemapper crate's ioctls), `dm/udev.rs` (how `RealDm`
//! takes, waits for and completes udev cookies, bounded) and `dm/fake.rs`.
//!
//! # What a VM test must check (this host has no device-mapper)
//!
//! - `RealDm` create/load/suspend/resume/remove/table/status against a real kernel, for each
//!   target in `plan::table`, and that `table(Live)` parses back equal to what was loaded once
//!   paths are replaced by `major:minor` (the kernel prints numbers; `PO` for persistent stores).
//! - The merge layout (`-real`, `-cow`, `error`, `snapshot-merge`) reads back as LVM's own:
//!   `dmsetup info -c -o name,uuid` and `lvs -a` in the guest agree with rewind's names/UUIDs.
//! - `status` of a merging origin moves to `allocated == metadata`, and `Invalid` after the COW
//!   is corrupted.
//! - No udev (busybox initramfs): resume/remove return at once, no SysV semaphore is left in
//!   `/proc/sysvipc/sem`, and `strace` shows no read of `/dev/random`.
//! - udev with dm rules: a plan's resumes return when the kernel is done, `execute` returns
//!   after udev completes all of them, and `/dev/mapper/NAME` and `/dev/VG/LV` exist afterwards
//!   (checked by `bench-activate`, phase udev: tables equal LVM's, no cookie left).
//! - A stale `/run/udev/control` (udevd killed): resume returns at once, rewind makes the nodes,
//!   no cookie is left (`bench-activate`, phase stale).
//! - udev without `95-dm-notify.rules`: resume returns after about `udev_timeout` with success
//!   (cookie completed by rewind), and the semaphore is gone afterwards.
//! - Remove of a mounted device returns `Busy` with its open count after the crate's retries.

#[cfg(any(test, feature = "testing"))]
mod fake;
mod real;
mod udev;

#[cfg(any(test, feature = "testing"))]
pub use fake::{Call, FAKE_DM_MAJOR, FakeDm};
pub use real::RealDm;
pub use udev::{UdevPresence, udev_presence};

use std::time::Duration;

use crate::plan::dev::{DevNum, UdevRules};
use crate::plan::table::{StatusLine, Table, TableError};

/// What the kernel says about one device-mapper device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceState {
    pub name: String,
    pub uuid: Option<String>,
    pub dev: DevNum,
    pub open_count: u32,
    pub suspended: bool,
    pub live_table: bool,
    pub inactive_table: bool,
}

/// Which of a device's two table slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Live,
    Inactive,
}

/// How a wait for udev ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UdevWait {
    /// No udev (`/run/udev/control` absent): nothing to wait for.
    NotRunning,
    /// udev's event queue is empty.
    Settled,
    /// The queue was still busy at the deadline.
    TimedOut,
}

/// Device-mapper errors, each naming the device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DmError {
    #[error("cannot open /dev/mapper/control: {0}")]
    Control(String),
    #[error("device-mapper device {name} does not exist")]
    NoSuchDevice { name: String },
    #[error("device-mapper device {name} (uuid {uuid}) cannot be created: name or uuid in use")]
    Exists { name: String, uuid: String },
    #[error("device-mapper device {name} is open {open_count} time(s)")]
    Busy { name: String, open_count: u32 },
    /// ENODATA from a target message: a thin pool's `delete` of a device it does not have.
    #[error("device-mapper message \"{message}\" to {name}: no such data (ENODATA)")]
    NoData { name: String, message: String },
    #[error("device-mapper device {name} has no table to resume")]
    NoTable { name: String },
    #[error("device-mapper table for {name} is invalid: {source}")]
    BadTable { name: String, source: TableError },
    #[error("device-mapper table for {name} refers to missing device {dev}")]
    MissingDevice { name: String, dev: String },
    #[error("device-mapper device {name} reported a table rewind cannot read: {source}")]
    ReadTable { name: String, source: TableError },
    #[error("device-mapper {op} of {name} failed: {message}")]
    Kernel {
        name: String,
        op: &'static str,
        message: String,
    },
    #[error("device-mapper {op} of {name}: udev did not complete within {waited_ms} ms")]
    UdevTimeout {
        name: String,
        op: &'static str,
        waited_ms: u128,
    },
    #[error("device-mapper {op} of {name}: injected crash")]
    Injected { name: String, op: &'static str },
}

/// The operations a plan executes. Names are device-mapper names (`vg-root-real`).
pub trait DeviceMapper {
    /// Every device-mapper device, sorted by name.
    fn list(&mut self) -> Result<Vec<DeviceState>, DmError>;
    /// One device, or `None` if there is none of that name.
    fn info(&mut self, name: &str) -> Result<Option<DeviceState>, DmError>;
    /// A new device with no table (the kernel creates it suspended).
    fn create(&mut self, name: &str, uuid: &str) -> Result<DevNum, DmError>;
    /// Loads `table` into the inactive slot.
    fn load(&mut self, name: &str, table: &Table) -> Result<(), DmError>;
    /// Suspends (flushing I/O).
    fn suspend(&mut self, name: &str) -> Result<(), DmError>;
    /// Drops the table in the inactive slot, if any (`dmsetup clear`).
    fn clear(&mut self, name: &str) -> Result<(), DmError>;
    /// Swaps in the inactive table, if any, and resumes.
    fn resume(&mut self, name: &str, rules: UdevRules) -> Result<(), DmError>;
    /// Removes the device; fails if it is open.
    fn remove(&mut self, name: &str, rules: UdevRules) -> Result<(), DmError>;
    /// The live or inactive table (empty when there is none).
    fn table(&mut self, name: &str, slot: Slot) -> Result<Table, DmError>;
    /// The live table's status lines.
    fn status(&mut self, name: &str) -> Result<Vec<StatusLine>, DmError>;
    /// Sends `message` to sector 0 of the live table (`dmsetup message NAME 0 MESSAGE`), as
    /// libdm sends a thin pool's `delete` and `set_transaction_id`.
    fn message(&mut self, name: &str, message: &str) -> Result<(), DmError>;
    /// Waits, at most `timeout`, for udev to finish its queued events.
    fn wait_for_udev(&mut self, timeout: Duration) -> Result<UdevWait, DmError>;
    /// Waits (bounded) until udev has processed every resume made so far whose wait was left
    /// pending, and returns the first failure among them. Implementations that never leave a
    /// wait pending have nothing to do.
    fn udev_sync(&mut self) -> Result<(), DmError> {
        Ok(())
    }
}
