//! The recording fake: an in-memory device-mapper for tests (compiled with `cfg(test)` or the
//! `testing` feature only; never a stand-in in the binary).

use std::collections::BTreeMap;
use std::time::Duration;

use super::{DeviceMapper, DeviceState, DmError, Slot, UdevWait};
use crate::plan::dev::{DevNum, UdevRules};
use crate::plan::table::{DevRef, SnapshotStatus, StatusLine, Table, TableError, Target};

/// One call made to the fake, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    List,
    Info { name: String },
    Create { name: String, uuid: String },
    Load { name: String, table: Table },
    Suspend { name: String },
    Clear { name: String },
    Resume { name: String, rules: UdevRules },
    Remove { name: String, rules: UdevRules },
    Table { name: String, slot: Slot },
    Status { name: String },
    Message { name: String, message: String },
    WaitForUdev { timeout: Duration },
}

impl Call {
    fn mutates(&self) -> bool {
        matches!(
            self,
            Call::Create { .. }
                | Call::Load { .. }
                | Call::Suspend { .. }
                | Call::Clear { .. }
                | Call::Resume { .. }
                | Call::Remove { .. }
                | Call::Message { .. }
        )
    }

    fn op_name(&self) -> (&'static str, &str) {
        match self {
            Call::List => ("list", "(all)"),
            Call::Info { name } => ("info", name),
            Call::Create { name, .. } => ("create", name),
            Call::Load { name, .. } => ("load", name),
            Call::Suspend { name } => ("suspend", name),
            Call::Clear { name } => ("clear", name),
            Call::Resume { name, .. } => ("resume", name),
            Call::Remove { name, .. } => ("remove", name),
            Call::Table { name, .. } => ("table", name),
            Call::Status { name } => ("status", name),
            Call::Message { name, .. } => ("message", name),
            Call::WaitForUdev { .. } => ("udev wait", "(all)"),
        }
    }
}

#[derive(Clone, Debug)]
struct FakeDevice {
    uuid: String,
    dev: DevNum,
    live: Table,
    inactive: Option<Table>,
    suspended: bool,
    holders: u32,
    snapshot_status: Option<SnapshotStatus>,
}

/// An in-memory device-mapper that records every call and fails the way the kernel does:
/// unknown devices (ENXIO), duplicate names or UUIDs (EBUSY), tables naming missing devices,
/// resume with no table (EINVAL), and removing an open device (EBUSY). A device is open when
/// something holds it (`set_holders`, e.g. a mount) or when another device's live or inactive
/// table refers to it, as in the kernel, where a loaded table opens its devices. Two snapshot
/// targets on one COW follow dm-snap.c's handover rules: the new one can only be resumed while
/// the old one is suspended, the old one cannot resume while the new one waits, a third is
/// refused at load, and the old one reports `Invalid` after the handover.
#[derive(Clone, Debug)]
pub struct FakeDm {
    devices: BTreeMap<String, FakeDevice>,
    disks: BTreeMap<String, DevNum>,
    next_minor: u32,
    calls: Vec<Call>,
    mutations: usize,
    crash_after: Option<usize>,
    crashed: bool,
    udev: UdevWait,
    /// What a `thin-pool` line reports, by device name (the pool's on-disk metadata, which
    /// outlives the device); `Fail` when not set.
    pool_status: BTreeMap<String, String>,
    /// The thin device ids a pool holds, by pool device name, when a test set them.
    pool_devices: BTreeMap<String, std::collections::BTreeSet<u64>>,
}

/// The major number the fake gives its devices.
pub const FAKE_DM_MAJOR: u32 = 253;

impl Default for FakeDm {
    fn default() -> Self {
        FakeDm {
            devices: BTreeMap::new(),
            disks: BTreeMap::new(),
            next_minor: 0,
            calls: Vec::new(),
            mutations: 0,
            crash_after: None,
            crashed: false,
            udev: UdevWait::NotRunning,
            pool_status: BTreeMap::new(),
            pool_devices: BTreeMap::new(),
        }
    }
}

impl FakeDm {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes a non-dm block device known, by path and number (tables may use either).
    pub fn add_disk(&mut self, path: &str, dev: DevNum) {
        self.disks.insert(path.to_owned(), dev);
    }

    /// Sets how many outside holders (mounts, open files) keep `name` open.
    pub fn set_holders(&mut self, name: &str, holders: u32) {
        if let Some(d) = self.devices.get_mut(name) {
            d.holders = holders;
        }
    }

    /// Sets what a `snapshot`/`snapshot-merge` line of `name` reports (default `Unknown`).
    pub fn set_snapshot_status(&mut self, name: &str, status: SnapshotStatus) {
        if let Some(d) = self.devices.get_mut(name) {
            d.snapshot_status = Some(status);
        }
    }

    /// Sets what the `thin-pool` line of the device named `name` reports, now or once it
    /// exists (the kernel's status text, e.g. `3 12/4096 0/1600 - rw discard_passdown
    /// queue_if_no_space - 1024`).
    pub fn set_pool_status(&mut self, name: &str, status: &str) {
        self.pool_status.insert(name.to_owned(), status.to_owned());
    }

    /// Sets the thin device ids the pool device `name` holds (its on-disk metadata): a
    /// `delete` of another id fails with ENODATA, as the kernel's does.
    pub fn set_pool_devices(&mut self, name: &str, ids: &[u64]) {
        self.pool_devices
            .insert(name.to_owned(), ids.iter().copied().collect());
    }

    /// The thin device ids the pool device `name` holds, when set.
    pub fn pool_devices(&self, name: &str) -> Option<Vec<u64>> {
        self.pool_devices
            .get(name)
            .map(|s| s.iter().copied().collect())
    }

    /// Whether a live `thin` table uses device `id` of the pool device `pool`.
    fn thin_in_use(&self, pool: &str, id: u64) -> bool {
        self.devices.values().any(|d| {
            d.live.lines.iter().any(|l| {
                matches!(&l.target, Target::Thin { pool: p, device_id } if *device_id == id
                    && self.resolve(p) == Some(Some(pool)))
            })
        })
    }

    /// A thin pool's message, as `drivers/md/dm-thin.c` `pool_message` handles those LVM
    /// sends when a thin LV goes or a thin snapshot is taken: `delete ID`,
    /// `create_snap NEW ORIGIN` (the origin's devices suspended) and
    /// `set_transaction_id OLD NEW`.
    fn pool_message(&mut self, name: &str, message: &str) -> Result<(), DmError> {
        let invalid = |why: &str| DmError::Kernel {
            name: name.to_owned(),
            op: "message",
            message: format!("EINVAL: {why}"),
        };
        let status = self
            .pool_status
            .get(name)
            .cloned()
            .ok_or_else(|| invalid("pool failed"))?;
        let words: Vec<&str> = message.split_ascii_whitespace().collect();
        match words.as_slice() {
            ["delete", id] => {
                let id: u64 = id.parse().map_err(|_| invalid("bad id"))?;
                if self.thin_in_use(name, id) {
                    return Err(DmError::Busy {
                        name: name.to_owned(),
                        open_count: 1,
                    });
                }
                if let Some(ids) = self.pool_devices.get_mut(name)
                    && !ids.remove(&id)
                {
                    return Err(DmError::NoData {
                        name: name.to_owned(),
                        message: message.to_owned(),
                    });
                }
                Ok(())
            }
            ["create_snap", new, origin] => {
                let new: u64 = new.parse().map_err(|_| invalid("bad id"))?;
                let origin: u64 = origin.parse().map_err(|_| invalid("bad id"))?;
                // dm-thin: the origin's active thin devices must be suspended (their I/O
                // quiesced) while the snapshot is taken.
                let running = self.devices.values().any(|d| {
                    !d.suspended
                        && d.live.lines.iter().any(|l| {
                            matches!(&l.target, Target::Thin { pool: p, device_id }
                                if *device_id == origin && self.resolve(p) == Some(Some(name)))
                        })
                });
                if running {
                    return Err(invalid("origin is not suspended"));
                }
                if let Some(ids) = self.pool_devices.get_mut(name) {
                    if !ids.contains(&origin) {
                        return Err(DmError::NoData {
                            name: name.to_owned(),
                            message: message.to_owned(),
                        });
                    }
                    if !ids.insert(new) {
                        return Err(DmError::Kernel {
                            name: name.to_owned(),
                            op: "message",
                            message: "EEXIST: device id in use".into(),
                        });
                    }
                }
                Ok(())
            }
            ["set_transaction_id", old, new] => {
                let (tid, rest) = status.split_once(' ').unwrap_or((status.as_str(), ""));
                if *old != tid {
                    return Err(invalid("mismatched transaction id"));
                }
                let new: u64 = new.parse().map_err(|_| invalid("bad id"))?;
                self.pool_status
                    .insert(name.to_owned(), format!("{new} {rest}"));
                Ok(())
            }
            _ => Err(invalid("unsupported message")),
        }
    }

    /// What `wait_for_udev` answers.
    pub fn set_udev(&mut self, udev: UdevWait) {
        self.udev = udev;
    }

    /// After `n` more successful mutating calls, the next one fails with `Injected` and is not
    /// applied; every call then fails until `restart`. Models killing the executor at step N.
    pub fn crash_after(&mut self, n: usize) {
        self.crash_after = Some(self.mutations + n);
    }

    /// A new process starts: the crash is over, the kernel state stays.
    pub fn restart(&mut self) {
        self.crash_after = None;
        self.crashed = false;
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> &[Call] {
        &self.calls
    }

    /// Only the calls that change state.
    pub fn mutating_calls(&self) -> Vec<&Call> {
        self.calls.iter().filter(|c| c.mutates()).collect()
    }

    /// Forgets the recorded calls (the state stays).
    pub fn clear_calls(&mut self) {
        self.calls.clear();
    }

    /// The live table of `name`, if the device exists.
    pub fn live_table(&self, name: &str) -> Option<&Table> {
        self.devices.get(name).map(|d| &d.live)
    }

    fn record(&mut self, call: Call) -> Result<(), DmError> {
        let (op, name) = call.op_name();
        let injected = DmError::Injected {
            name: name.to_owned(),
            op,
        };
        let mutates = call.mutates();
        self.calls.push(call);
        if self.crashed {
            return Err(injected);
        }
        if mutates {
            if self.crash_after == Some(self.mutations) {
                self.crashed = true;
                return Err(injected);
            }
            self.mutations += 1;
        }
        Ok(())
    }

    fn get(&self, name: &str) -> Result<&FakeDevice, DmError> {
        self.devices.get(name).ok_or_else(|| DmError::NoSuchDevice {
            name: name.to_owned(),
        })
    }

    /// The dm device (by name) a table reference points at, or `Ok(None)` for a known disk.
    fn resolve(&self, r: &DevRef) -> Option<Option<&str>> {
        match r {
            DevRef::Number { major, minor } => {
                let n = DevNum {
                    major: *major,
                    minor: *minor,
                };
                if let Some((name, _)) = self.devices.iter().find(|(_, d)| d.dev == n) {
                    return Some(Some(name));
                }
                self.disks.values().any(|d| *d == n).then_some(None)
            }
            DevRef::Path(p) => {
                let dm = p
                    .strip_prefix("/dev/mapper/")
                    .and_then(|n| self.devices.get_key_value(n).map(|(k, _)| k.as_str()))
                    .or_else(|| {
                        let minor = p.strip_prefix("/dev/dm-")?.parse::<u32>().ok()?;
                        self.devices
                            .iter()
                            .find(|(_, d)| d.dev.minor == minor)
                            .map(|(k, _)| k.as_str())
                    });
                match dm {
                    Some(n) => Some(Some(n)),
                    None => self.disks.contains_key(p).then_some(None),
                }
            }
        }
    }

    /// A canonical key for the device a reference points at (`dm:NAME` or the disk's number).
    fn dev_key(&self, r: &DevRef) -> Option<String> {
        match self.resolve(r)? {
            Some(name) => Some(format!("dm:{name}")),
            None => Some(match r {
                DevRef::Path(p) => self
                    .disks
                    .get(p)
                    .map_or_else(|| p.clone(), |d| d.to_string()),
                DevRef::Number { major, minor } => format!("{major}:{minor}"),
            }),
        }
    }

    /// The COW device of a table's `snapshot`/`snapshot-merge` line, if it has one.
    fn snapshot_cow(&self, t: &Table) -> Option<String> {
        t.lines.iter().find_map(|l| match &l.target {
            Target::Snapshot(a) | Target::SnapshotMerge(a) => self.dev_key(&a.cow),
            _ => None,
        })
    }

    /// Other devices whose live (`live == true`) or inactive table is a snapshot of `cow`.
    fn sharing_cow(&self, name: &str, cow: &str, live: bool) -> Vec<String> {
        self.devices
            .iter()
            .filter(|(n, _)| n.as_str() != name)
            .filter(|(_, d)| {
                let t = if live {
                    Some(&d.live)
                } else {
                    d.inactive.as_ref()
                };
                t.and_then(|t| self.snapshot_cow(t)).as_deref() == Some(cow)
            })
            .map(|(n, _)| n.clone())
            .collect()
    }

    fn open_count(&self, name: &str) -> u32 {
        let Some(dev) = self.devices.get(name) else {
            return 0;
        };
        let mut count = dev.holders;
        for (other, d) in &self.devices {
            if other == name {
                continue;
            }
            for t in std::iter::once(&d.live).chain(d.inactive.as_ref()) {
                for line in &t.lines {
                    for r in line.target.devices() {
                        if self.resolve(r) == Some(Some(name)) {
                            count += 1;
                        }
                    }
                }
            }
        }
        count
    }

    fn state(&self, name: &str, d: &FakeDevice) -> DeviceState {
        DeviceState {
            name: name.to_owned(),
            uuid: (!d.uuid.is_empty()).then(|| d.uuid.clone()),
            dev: d.dev,
            open_count: self.open_count(name),
            suspended: d.suspended,
            live_table: !d.live.lines.is_empty(),
            inactive_table: d.inactive.is_some(),
        }
    }
}

impl DeviceMapper for FakeDm {
    fn list(&mut self) -> Result<Vec<DeviceState>, DmError> {
        self.record(Call::List)?;
        Ok(self.devices.iter().map(|(n, d)| self.state(n, d)).collect())
    }

    fn info(&mut self, name: &str) -> Result<Option<DeviceState>, DmError> {
        self.record(Call::Info {
            name: name.to_owned(),
        })?;
        Ok(self.devices.get(name).map(|d| self.state(name, d)))
    }

    fn create(&mut self, name: &str, uuid: &str) -> Result<DevNum, DmError> {
        self.record(Call::Create {
            name: name.to_owned(),
            uuid: uuid.to_owned(),
        })?;
        if name.is_empty() || name.len() > 127 || name.contains('/') || uuid.len() > 128 {
            return Err(DmError::Kernel {
                name: name.to_owned(),
                op: "create",
                message: "EINVAL: bad name or uuid".into(),
            });
        }
        if self.devices.contains_key(name)
            || (!uuid.is_empty() && self.devices.values().any(|d| d.uuid == uuid))
        {
            return Err(DmError::Exists {
                name: name.to_owned(),
                uuid: uuid.to_owned(),
            });
        }
        let dev = DevNum {
            major: FAKE_DM_MAJOR,
            minor: self.next_minor,
        };
        self.next_minor += 1;
        self.devices.insert(
            name.to_owned(),
            FakeDevice {
                uuid: uuid.to_owned(),
                dev,
                live: Table::default(),
                inactive: None,
                suspended: true,
                holders: 0,
                snapshot_status: None,
            },
        );
        Ok(dev)
    }

    fn load(&mut self, name: &str, table: &Table) -> Result<(), DmError> {
        self.record(Call::Load {
            name: name.to_owned(),
            table: table.clone(),
        })?;
        self.get(name)?;
        let bad = |source| DmError::BadTable {
            name: name.to_owned(),
            source,
        };
        if table.lines.is_empty() {
            return Err(bad(TableError::Empty));
        }
        table.check().map_err(bad)?;
        for line in &table.lines {
            for r in line.target.devices() {
                match self.resolve(r) {
                    None => {
                        return Err(DmError::MissingDevice {
                            name: name.to_owned(),
                            dev: r.to_string(),
                        });
                    }
                    Some(Some(n)) if n == name => {
                        return Err(DmError::Kernel {
                            name: name.to_owned(),
                            op: "load",
                            message: "EINVAL: table refers to the device itself".into(),
                        });
                    }
                    Some(_) => {}
                }
            }
        }
        if let Some(cow) = self.snapshot_cow(table)
            && !self.sharing_cow(name, &cow, false).is_empty()
        {
            // dm-snap.c register_snapshot: a COW can pass from one snapshot to one other only.
            return Err(DmError::Kernel {
                name: name.to_owned(),
                op: "load",
                message: "EINVAL: more than one snapshot is being handed over".into(),
            });
        }
        if let Some(d) = self.devices.get_mut(name) {
            d.inactive = Some(table.clone());
        }
        Ok(())
    }

    fn suspend(&mut self, name: &str) -> Result<(), DmError> {
        self.record(Call::Suspend {
            name: name.to_owned(),
        })?;
        self.get(name)?;
        if let Some(d) = self.devices.get_mut(name) {
            d.suspended = true;
        }
        Ok(())
    }

    fn clear(&mut self, name: &str) -> Result<(), DmError> {
        self.record(Call::Clear {
            name: name.to_owned(),
        })?;
        self.get(name)?;
        if let Some(d) = self.devices.get_mut(name) {
            d.inactive = None;
        }
        Ok(())
    }

    fn resume(&mut self, name: &str, rules: UdevRules) -> Result<(), DmError> {
        self.record(Call::Resume {
            name: name.to_owned(),
            rules,
        })?;
        let d = self.get(name)?;
        if d.inactive.is_none() && d.live.lines.is_empty() {
            return Err(DmError::NoTable {
                name: name.to_owned(),
            });
        }
        // dm-snap.c snapshot_preresume/snapshot_resume: two snapshot targets on one COW hand
        // the exceptions over from the active one (source) to the new one (destination).
        let einval = |message: &str| DmError::Kernel {
            name: name.to_owned(),
            op: "resume",
            message: format!("EINVAL: {message}"),
        };
        let mut sources = Vec::new();
        match &d.inactive {
            Some(new) => {
                if let Some(cow) = self.snapshot_cow(new) {
                    sources = self.sharing_cow(name, &cow, true);
                    if sources
                        .iter()
                        .any(|s| self.devices.get(s).is_some_and(|d| !d.suspended))
                    {
                        return Err(einval(
                            "unable to perform snapshot handover until source is suspended",
                        ));
                    }
                }
            }
            None => {
                if let Some(cow) = self.snapshot_cow(&d.live)
                    && !self.sharing_cow(name, &cow, false).is_empty()
                {
                    return Err(einval(
                        "unable to resume snapshot source until handover completes",
                    ));
                }
            }
        }
        for src in sources {
            // __handover_exceptions leaves the source invalid.
            if let Some(d) = self.devices.get_mut(&src) {
                d.snapshot_status = Some(SnapshotStatus::Invalid);
            }
        }
        if let Some(d) = self.devices.get_mut(name) {
            if let Some(t) = d.inactive.take() {
                d.live = t;
            }
            d.suspended = false;
        }
        Ok(())
    }

    fn remove(&mut self, name: &str, rules: UdevRules) -> Result<(), DmError> {
        self.record(Call::Remove {
            name: name.to_owned(),
            rules,
        })?;
        self.get(name)?;
        let open_count = self.open_count(name);
        if open_count > 0 {
            return Err(DmError::Busy {
                name: name.to_owned(),
                open_count,
            });
        }
        self.devices.remove(name);
        Ok(())
    }

    fn table(&mut self, name: &str, slot: Slot) -> Result<Table, DmError> {
        self.record(Call::Table {
            name: name.to_owned(),
            slot,
        })?;
        let d = self.get(name)?;
        Ok(match slot {
            Slot::Live => d.live.clone(),
            Slot::Inactive => d.inactive.clone().unwrap_or_default(),
        })
    }

    fn status(&mut self, name: &str) -> Result<Vec<StatusLine>, DmError> {
        self.record(Call::Status {
            name: name.to_owned(),
        })?;
        let d = self.get(name)?;
        Ok(d.live
            .lines
            .iter()
            .map(|l| {
                let ty = l.target.target_type();
                let params = match ty {
                    "snapshot" | "snapshot-merge" => d
                        .snapshot_status
                        .unwrap_or(SnapshotStatus::Unknown)
                        .to_string(),
                    "thin-pool" => self
                        .pool_status
                        .get(name)
                        .cloned()
                        .unwrap_or_else(|| "Fail".to_owned()),
                    _ => String::new(),
                };
                StatusLine {
                    start: l.start,
                    length: l.length,
                    target_type: ty.to_owned(),
                    params,
                }
            })
            .collect())
    }

    fn message(&mut self, name: &str, message: &str) -> Result<(), DmError> {
        self.record(Call::Message {
            name: name.to_owned(),
            message: message.to_owned(),
        })?;
        let d = self.get(name)?;
        if d.live
            .lines
            .first()
            .is_some_and(|l| l.target.target_type() == "thin-pool")
        {
            self.pool_message(name, message)
        } else {
            Err(DmError::Kernel {
                name: name.to_owned(),
                op: "message",
                message: "EINVAL: target takes no messages".into(),
            })
        }
    }

    fn wait_for_udev(&mut self, timeout: Duration) -> Result<UdevWait, DmError> {
        self.record(Call::WaitForUdev { timeout })?;
        Ok(self.udev)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::plan::table::SnapshotArgs;

    const SDA: DevNum = DevNum { major: 8, minor: 0 };

    fn linear(dev: DevRef, len: u64) -> Table {
        Table::single(len, Target::Linear { dev, offset: 2048 })
    }

    fn num(d: DevNum) -> DevRef {
        DevRef::Number {
            major: d.major,
            minor: d.minor,
        }
    }

    fn fake() -> FakeDm {
        let mut f = FakeDm::new();
        f.add_disk("/dev/sda", SDA);
        f
    }

    /// The merge layout of LVM-NOTES.md: root-real, pre-cow, pre (error), root (snapshot-merge).
    fn merge_layout(f: &mut FakeDm) -> (DevNum, DevNum) {
        let real = f.create("vg-root-real", "LVM-a-real").unwrap();
        f.load("vg-root-real", &linear(num(SDA), 100)).unwrap();
        f.resume("vg-root-real", UdevRules::DmOnly).unwrap();
        let cow = f.create("vg-pre-cow", "LVM-b-cow").unwrap();
        f.load("vg-pre-cow", &linear(DevRef::Path("/dev/sda".into()), 10))
            .unwrap();
        f.resume("vg-pre-cow", UdevRules::DmOnly).unwrap();
        f.create("vg-pre", "LVM-b").unwrap();
        f.load("vg-pre", &Table::single(100, Target::Error))
            .unwrap();
        f.resume("vg-pre", UdevRules::LowPriority).unwrap();
        f.create("vg-root", "LVM-a").unwrap();
        let merge = Target::SnapshotMerge(SnapshotArgs::persistent(num(real), num(cow), 8));
        f.load("vg-root", &Table::single(100, merge)).unwrap();
        f.resume("vg-root", UdevRules::All).unwrap();
        (real, cow)
    }

    #[test]
    fn create_load_resume_swaps_tables() {
        let mut f = fake();
        let dev = f.create("vg-root", "LVM-x").unwrap();
        assert_eq!(
            dev,
            DevNum {
                major: 253,
                minor: 0
            }
        );
        let st = f.info("vg-root").unwrap().unwrap();
        assert!(st.suspended && !st.live_table && !st.inactive_table);
        let t = linear(num(SDA), 100);
        f.load("vg-root", &t).unwrap();
        assert_eq!(f.table("vg-root", Slot::Inactive).unwrap(), t);
        assert_eq!(f.table("vg-root", Slot::Live).unwrap(), Table::default());
        f.resume("vg-root", UdevRules::All).unwrap();
        assert_eq!(f.table("vg-root", Slot::Live).unwrap(), t);
        let st = f.info("vg-root").unwrap().unwrap();
        assert!(!st.suspended && st.live_table && !st.inactive_table);
        assert_eq!(st.uuid.as_deref(), Some("LVM-x"));
        // resume again with only a live table: fine, like the kernel
        f.resume("vg-root", UdevRules::All).unwrap();
        assert_eq!(f.info("nope").unwrap(), None);
    }

    #[test]
    fn kernel_like_failures() {
        let mut f = fake();
        f.create("a", "U1").unwrap();
        assert_eq!(
            f.create("a", "U2"),
            Err(DmError::Exists {
                name: "a".into(),
                uuid: "U2".into()
            })
        );
        assert!(matches!(f.create("b", "U1"), Err(DmError::Exists { .. })));
        assert!(matches!(f.create("", "U3"), Err(DmError::Kernel { .. })));
        assert_eq!(
            f.load("ghost", &linear(num(SDA), 1)),
            Err(DmError::NoSuchDevice {
                name: "ghost".into()
            })
        );
        assert_eq!(
            f.resume("a", UdevRules::All),
            Err(DmError::NoTable { name: "a".into() })
        );
        assert!(matches!(
            f.load("a", &Table::default()),
            Err(DmError::BadTable { .. })
        ));
        let gap = Table {
            lines: vec![crate::plan::table::TableLine {
                start: 1,
                length: 1,
                target: Target::Error,
            }],
        };
        assert!(matches!(f.load("a", &gap), Err(DmError::BadTable { .. })));
        assert_eq!(
            f.load("a", &linear(DevRef::Number { major: 8, minor: 9 }, 1)),
            Err(DmError::MissingDevice {
                name: "a".into(),
                dev: "8:9".into()
            })
        );
        assert!(matches!(
            f.load("a", &linear(DevRef::Path("/dev/mapper/a".into()), 1)),
            Err(DmError::Kernel { .. })
        ));
        assert!(matches!(
            f.suspend("ghost"),
            Err(DmError::NoSuchDevice { .. })
        ));
        assert!(matches!(
            f.remove("ghost", UdevRules::All),
            Err(DmError::NoSuchDevice { .. })
        ));
        assert_eq!(
            DmError::Busy {
                name: "vg-root".into(),
                open_count: 2
            }
            .to_string(),
            "device-mapper device vg-root is open 2 time(s)"
        );
    }

    #[test]
    fn open_counts_follow_tables_and_holders() {
        let mut f = fake();
        let (real, cow) = merge_layout(&mut f);
        assert_eq!(f.info("vg-root-real").unwrap().unwrap().open_count, 1);
        assert_eq!(f.info("vg-pre-cow").unwrap().unwrap().open_count, 1);
        assert_eq!(
            f.remove("vg-pre-cow", UdevRules::DmOnly),
            Err(DmError::Busy {
                name: "vg-pre-cow".into(),
                open_count: 1
            })
        );
        f.set_holders("vg-root", 1);
        assert!(matches!(
            f.remove("vg-root", UdevRules::All),
            Err(DmError::Busy { .. })
        ));
        // an inactive table holds its devices too: reload root as plain linear over sda
        f.set_holders("vg-root", 0);
        f.load(
            "vg-root",
            &Table::single(100, Target::SnapshotOrigin { origin: num(real) }),
        )
        .unwrap();
        assert_eq!(f.info("vg-root-real").unwrap().unwrap().open_count, 2);
        f.load("vg-root", &linear(num(SDA), 100)).unwrap();
        f.resume("vg-root", UdevRules::All).unwrap();
        assert_eq!(f.info("vg-root-real").unwrap().unwrap().open_count, 0);
        assert_eq!(f.info("vg-pre-cow").unwrap().unwrap().open_count, 0);
        f.remove("vg-pre", UdevRules::LowPriority).unwrap();
        f.remove("vg-pre-cow", UdevRules::DmOnly).unwrap();
        f.remove("vg-root-real", UdevRules::DmOnly).unwrap();
        let names: Vec<String> = f.list().unwrap().into_iter().map(|d| d.name).collect();
        assert_eq!(names, ["vg-root"]);
        let _ = cow;
    }

    #[test]
    fn snapshot_handover_follows_the_kernel() {
        let mut f = fake();
        // Booted system: root = snapshot-origin, pre = snapshot, both active.
        let real = f.create("vg-root-real", "R").unwrap();
        f.load("vg-root-real", &linear(num(SDA), 100)).unwrap();
        f.resume("vg-root-real", UdevRules::DmOnly).unwrap();
        let cow = f.create("vg-pre-cow", "C").unwrap();
        f.load("vg-pre-cow", &linear(num(SDA), 10)).unwrap();
        f.resume("vg-pre-cow", UdevRules::DmOnly).unwrap();
        let args = SnapshotArgs::persistent(num(real), num(cow), 8);
        f.create("vg-pre", "P").unwrap();
        f.load(
            "vg-pre",
            &Table::single(100, Target::Snapshot(args.clone())),
        )
        .unwrap();
        f.resume("vg-pre", UdevRules::LowPriority).unwrap();
        f.create("vg-root", "O").unwrap();
        f.load(
            "vg-root",
            &Table::single(100, Target::SnapshotOrigin { origin: num(real) }),
        )
        .unwrap();
        f.resume("vg-root", UdevRules::All).unwrap();

        // Start the merge: root's new table shares pre's COW.
        f.load(
            "vg-root",
            &Table::single(100, Target::SnapshotMerge(args.clone())),
        )
        .unwrap();
        // a third snapshot on the same COW is refused at load
        f.create("other", "X").unwrap();
        assert!(matches!(
            f.load("other", &Table::single(100, Target::Snapshot(args.clone()))),
            Err(DmError::Kernel { op: "load", .. })
        ));
        // the source cannot resume while the handover waits
        assert!(matches!(
            f.resume("vg-pre", UdevRules::LowPriority),
            Err(DmError::Kernel { op: "resume", .. })
        ));
        // the destination needs the source suspended
        assert!(matches!(
            f.resume("vg-root", UdevRules::All),
            Err(DmError::Kernel { op: "resume", .. })
        ));
        f.suspend("vg-pre").unwrap();
        f.resume("vg-root", UdevRules::All).unwrap();
        assert_eq!(
            f.status("vg-pre").unwrap()[0].snapshot_status(),
            Some(Ok(SnapshotStatus::Invalid))
        );
        f.load("vg-pre", &Table::single(100, Target::Error))
            .unwrap();
        f.resume("vg-pre", UdevRules::LowPriority).unwrap();
    }

    #[test]
    fn status_of_snapshot_lines() {
        let mut f = fake();
        merge_layout(&mut f);
        let st = f.status("vg-root").unwrap();
        assert_eq!(st[0].snapshot_status(), Some(Ok(SnapshotStatus::Unknown)));
        f.set_snapshot_status(
            "vg-root",
            SnapshotStatus::Usage {
                allocated: 16,
                total: 1024,
                metadata: 16,
            },
        );
        let st = f.status("vg-root").unwrap();
        assert_eq!(st[0].to_string(), "0 100 snapshot-merge 16/1024 16");
        assert!(st[0].snapshot_status().unwrap().unwrap().merge_done());
        assert_eq!(f.status("vg-root-real").unwrap()[0].params, "");
    }

    #[test]
    fn records_calls_and_crashes_at_step_n() {
        let mut f = fake();
        f.crash_after(5);
        let mut steps = 0;
        let run = |f: &mut FakeDm, steps: &mut usize| -> Result<(), DmError> {
            for (name, uuid) in [("a", "UA"), ("b", "UB")] {
                if f.info(name)?.is_none() {
                    f.create(name, uuid)?;
                    *steps += 1;
                }
                f.load(name, &linear(num(SDA), 10))?;
                *steps += 1;
                f.resume(name, UdevRules::All)?;
                *steps += 1;
            }
            Ok(())
        };
        let err = run(&mut f, &mut steps).unwrap_err();
        assert_eq!(
            err,
            DmError::Injected {
                name: "b".into(),
                op: "resume"
            }
        );
        assert_eq!(steps, 5);
        // not applied
        assert!(f.info("b").is_err());
        f.restart();
        assert!(f.info("b").unwrap().unwrap().inactive_table);
        f.clear_calls();
        run(&mut f, &mut steps).unwrap();
        assert_eq!(
            f.mutating_calls(),
            vec![
                &Call::Load {
                    name: "a".into(),
                    table: linear(num(SDA), 10)
                },
                &Call::Resume {
                    name: "a".into(),
                    rules: UdevRules::All
                },
                &Call::Load {
                    name: "b".into(),
                    table: linear(num(SDA), 10)
                },
                &Call::Resume {
                    name: "b".into(),
                    rules: UdevRules::All
                },
            ]
        );
        assert_eq!(f.calls()[0], Call::Info { name: "a".into() });
    }

    #[test]
    fn udev_wait_is_configurable() {
        let mut f = fake();
        assert_eq!(
            f.wait_for_udev(Duration::from_secs(1)).unwrap(),
            UdevWait::NotRunning
        );
        f.set_udev(UdevWait::TimedOut);
        assert_eq!(
            f.wait_for_udev(Duration::from_secs(1)).unwrap(),
            UdevWait::TimedOut
        );
        assert_eq!(f.calls().len(), 2);
    }

    /// A thin pool's messages as the kernel takes them: `delete` of an unknown id is ENODATA,
    /// of a device a live thin table uses EBUSY; `set_transaction_id` needs the current id.
    #[test]
    fn thin_pool_messages() {
        let mut f = fake();
        f.set_pool_status(
            "vg-pool-tpool",
            "3 1/10 1/10 - rw discard_passdown queue_if_no_space - 1",
        );
        f.set_pool_devices("vg-pool-tpool", &[1, 2]);
        f.create("vg-pool-tpool", "LVM-p-tpool").unwrap();
        let pool = Target::ThinPool(crate::plan::table::ThinPoolArgs {
            metadata: num(SDA),
            data: num(SDA),
            block_sectors: 128,
            low_water_mark: 0,
            features: Vec::new(),
        });
        f.load("vg-pool-tpool", &Table::single(100, pool)).unwrap();
        f.resume("vg-pool-tpool", UdevRules::DmOnly).unwrap();
        f.create("vg-thin", "LVM-t").unwrap();
        let thin = Target::Thin {
            pool: DevRef::Path("/dev/mapper/vg-pool-tpool".into()),
            device_id: 2,
        };
        f.load("vg-thin", &Table::single(100, thin)).unwrap();
        f.resume("vg-thin", UdevRules::All).unwrap();
        assert!(matches!(
            f.message("vg-pool-tpool", "delete 2"),
            Err(DmError::Busy { .. })
        ));
        f.message("vg-pool-tpool", "delete 1").unwrap();
        assert!(matches!(
            f.message("vg-pool-tpool", "delete 1"),
            Err(DmError::NoData { .. })
        ));
        assert_eq!(f.pool_devices("vg-pool-tpool"), Some(vec![2]));
        assert!(
            f.message("vg-pool-tpool", "set_transaction_id 2 3")
                .is_err()
        );
        f.message("vg-pool-tpool", "set_transaction_id 3 4")
            .unwrap();
        assert!(
            f.status("vg-pool-tpool").unwrap()[0]
                .params
                .starts_with("4 1/10 ")
        );
        assert!(f.message("vg-thin", "delete 1").is_err(), "not a pool");
    }
}
