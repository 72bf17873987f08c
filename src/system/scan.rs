//! The scan every front end starts with: list the block devices, keep the ones rewind may
//! read, read their LVM labels and metadata, and assemble the volume groups.

use crate::lvm::assemble::{Assembly, FoundVg, assemble_with};
use crate::lvm::disk::{CommitError, CommitStep, PvScan, ScanError, commit_with_hook, scan_device};
use crate::lvm::lvmrules::SystemIds;
use crate::lvm::model::Snapshot;
use crate::lvm::text;
use crate::plan::dev::DevNum;
use crate::plan::devices::first_sector;
use crate::system::blockdev::{self, BlockDevice};
use crate::system::devsel::Selected;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// What a scan read, and what it skipped and why.
#[derive(Debug)]
pub struct Scan {
    pub devices: Vec<BlockDevice>,
    /// Scans of the devices that carry an LVM label, in `devices` order.
    pub pvs: Vec<PvScan>,
    /// For each entry of `pvs`, its index in `devices`.
    pub pv_device: Vec<usize>,
    pub assembly: Assembly,
    /// Devices not read, with the reason (an LV, filtered out, unreadable).
    pub skipped: Vec<(String, String)>,
}

/// A block device (or image file) opened for a metadata commit: synced with `fdatasync`.
impl crate::lvm::disk::BlockDevice for File {
    fn sync(&mut self) -> std::io::Result<()> {
        self.sync_data()
    }
}

/// Why new metadata could not be committed to a VG's PVs.
#[derive(Debug, thiserror::Error)]
pub enum CommitVgError {
    #[error("pv {key} has no device")]
    NoDevice { key: String },
    #[error("{device}: {source}")]
    Open {
        device: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Commit(#[from] CommitError),
}

impl Scan {
    /// The PV scan and the block device of `vg`'s member with PV key `key`.
    fn member(&self, vg: &FoundVg, key: &str) -> Option<(&PvScan, &BlockDevice)> {
        let i = vg.members.iter().find(|m| m.key == key)?.scan?;
        let dev = self.devices.get(*self.pv_device.get(i)?)?;
        Some((self.pvs.get(i)?, dev))
    }

    /// The first 512 bytes of a snapshot's COW store, read from its PV.
    pub fn read_cow(&self, vg: &FoundVg, snap: &Snapshot) -> Result<Vec<u8>, String> {
        let model = vg.model.as_ref().ok_or("no model")?;
        let cow = model.lv(&snap.cow).ok_or("the store is missing")?;
        let (key, offset) = first_sector(model, cow).ok_or("the store has no linear start")?;
        let (_, dev) = self
            .member(vg, &key)
            .ok_or_else(|| format!("{key} has no device"))?;
        let node = &dev.node;
        let mut f = open_for_reading(node).map_err(|e| format!("{}: {e}", node.display()))?;
        let mut buf = vec![0u8; 512];
        f.seek(SeekFrom::Start(offset))
            .and_then(|_| f.read_exact(&mut buf))
            .map_err(|e| format!("{} at byte {offset}: {e}", node.display()))?;
        Ok(buf)
    }

    /// Writes `len` zero bytes over the start of LV `lv` of `vg`, on its PV (the first stripe
    /// of its first segment), synced: a new snapshot store's header, before any device of it
    /// exists (the extents are the LV's; nothing else maps them).
    pub fn zero_lv_head(&self, vg: &FoundVg, lv: &str, len: usize) -> Result<(), String> {
        use std::io::Write;
        let model = vg.model.as_ref().ok_or("no model")?;
        let l = model.lv(lv).ok_or("no such lv")?;
        let (key, offset) = first_sector(model, l).ok_or("the lv has no linear start")?;
        let first = l
            .segments
            .iter()
            .find(|s| s.start_extent == 0)
            .ok_or("no first segment")?;
        let room = first
            .extent_count
            .saturating_mul(model.extent_size)
            .saturating_mul(512);
        if let crate::lvm::model::SegmentKind::Striped {
            stripes,
            stripe_size,
        } = &first.kind
            && stripes.len() > 1
            && stripe_size.unwrap_or(0).saturating_mul(512) < len as u64
        {
            return Err("the lv's first stripe is smaller than its header".into());
        }
        if room < len as u64 {
            return Err("the lv's first segment is smaller than its header".into());
        }
        let (_, dev) = self
            .member(vg, &key)
            .ok_or_else(|| format!("{key} has no device"))?;
        let node = &dev.node;
        let mut f = File::options()
            .write(true)
            .open(node)
            .map_err(|e| format!("{}: {e}", node.display()))?;
        f.seek(SeekFrom::Start(offset))
            .and_then(|_| f.write_all(&vec![0u8; len]))
            .and_then(|()| f.sync_data())
            .map_err(|e| format!("{} at byte {offset}: {e}", node.display()))
    }

    /// Commits `new_text` (as [`crate::lvm::text::print`] makes it; the characters that stand
    /// for bytes that are not UTF-8 are written as those bytes, [`text::raw_bytes`]) to
    /// every metadata area of `vg` (the caller holds the VG lock, or
    /// runs where nothing else can: the initramfs). `hook` is called before each step and
    /// stops the commit when it returns `false` (crash tests). Returns the PVs' new state, in
    /// `vg.members` order.
    pub fn commit(
        &self,
        vg: &FoundVg,
        new_text: &str,
        hook: Option<&mut dyn FnMut(CommitStep) -> bool>,
    ) -> Result<Vec<PvScan>, CommitVgError> {
        let mut pvs: Vec<(PvScan, File)> = Vec::new();
        for m in &vg.members {
            let (pv, dev) = self
                .member(vg, &m.key)
                .ok_or_else(|| CommitVgError::NoDevice { key: m.key.clone() })?;
            let node = &dev.node;
            let f = File::options()
                .read(true)
                .write(true)
                .open(node)
                .map_err(|source| CommitVgError::Open {
                    device: node.display().to_string(),
                    source,
                })?;
            pvs.push((pv.clone(), f));
        }
        let mut always = |_: CommitStep| true;
        let hook: &mut dyn FnMut(CommitStep) -> bool = match hook {
            Some(h) => h,
            None => &mut always,
        };
        commit_with_hook(&mut pvs, &text::raw_bytes(new_text), hook)?;
        Ok(pvs.into_iter().map(|(pv, _)| pv).collect())
    }

    /// The device numbers of `vg`'s PVs found by this scan, by PV key (`pv0`, ...).
    pub fn pv_numbers(&self, vg: &FoundVg) -> BTreeMap<String, DevNum> {
        vg.members
            .iter()
            .filter_map(|m| {
                let d = self.devices.get(*self.pv_device.get(m.scan?)?)?;
                Some((
                    m.key.clone(),
                    DevNum {
                        major: d.major,
                        minor: d.minor,
                    },
                ))
            })
            .collect()
    }
}

/// Decides whether a device may be read; `Err` carries the reason it may not.
pub type Selector<'a> = dyn Fn(&BlockDevice) -> Result<(), String> + 'a;

/// The rule LVM's own default applies (`devices/scan_lvs = 0`): never read an LV for PVs.
pub fn not_an_lv(dev: &BlockDevice) -> Result<(), String> {
    if dev.is_lvm_lv() {
        Err("an lvm logical volume".into())
    } else {
        Ok(())
    }
}

/// Scans `root` (the real root is `/`; tests pass a fixture tree). The node of each device
/// is `root/dev/NAME`; `open` lets tests substitute a file for a node.
pub fn scan_with(
    root: &Path,
    select: &Selector<'_>,
    open: &dyn Fn(&BlockDevice) -> std::io::Result<File>,
) -> std::io::Result<Scan> {
    Ok(scan_checked(
        blockdev::list(root)?,
        select,
        open,
        &|_, _| Ok(()),
        &SystemIds::default(),
    ))
}

/// Opens a device (or image file) to read LVM's label, metadata or a snapshot store's header,
/// with the kernel's readahead off (`POSIX_FADV_RANDOM`): each read then goes to the disk as
/// one request of the bytes asked for (the scan's first 128 KiB, as LVM reads them), not as a
/// small synchronous window followed by further windows and an asynchronous one beyond. The
/// metadata that lies inside those 128 KiB is then read from the page cache while the file is
/// open. Advice only: a device that refuses it is read all the same.
pub fn open_for_reading(path: &Path) -> std::io::Result<File> {
    use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};
    let f = File::open(path)?;
    let _ = posix_fadvise(&f, 0, 0, PosixFadviseAdvice::POSIX_FADV_RANDOM);
    Ok(f)
}

/// What a PV found on a device must satisfy; `Err` says why it is skipped.
type PvCheck<'a> = dyn Fn(&BlockDevice, &PvScan) -> Result<(), String> + 'a;

fn scan_checked(
    devices: Vec<BlockDevice>,
    select: &Selector<'_>,
    open: &dyn Fn(&BlockDevice) -> std::io::Result<File>,
    pv_check: &PvCheck<'_>,
    system_ids: &SystemIds,
) -> Scan {
    let mut pvs = Vec::new();
    let mut pv_device = Vec::new();
    let mut skipped = Vec::new();
    let mut bad_labels = Vec::new();
    for (i, dev) in devices.iter().enumerate() {
        let path = dev.node.display().to_string();
        if let Err(why) = not_an_lv(dev).and_then(|()| select(dev)) {
            skipped.push((path, why));
            continue;
        }
        if dev.sectors == 0 {
            skipped.push((path, "empty".into()));
            continue;
        }
        let mut file = match open(dev) {
            Ok(f) => f,
            Err(e) => {
                skipped.push((path, format!("cannot open: {e}")));
                continue;
            }
        };
        match scan_device(&mut file, &path) {
            Ok(Some(pv)) => {
                if let Err(why) = pv_check(dev, &pv) {
                    skipped.push((path, why));
                    continue;
                }
                pvs.push(pv);
                pv_device.push(i);
            }
            Ok(None) => {}
            Err(ScanError::Label { source, .. }) => bad_labels.push((path, source.to_string())),
            Err(e) => skipped.push((path, e.to_string())),
        }
    }
    let assembly = assemble_with(&pvs, &bad_labels, system_ids);
    Scan {
        devices,
        pvs,
        pv_device,
        assembly,
        skipped,
    }
}

/// Scans with the device nodes under `root/dev`.
pub fn scan(root: &Path, select: &Selector<'_>) -> std::io::Result<Scan> {
    scan_with(root, select, &|dev| open_for_reading(&dev.node))
}

/// Scans the devices LVM itself would use (see `lvm::devsel` and `system::devsel`), from the list the selection
/// was made over. A PV whose uuid is not the one its devices-file entry names is skipped, so
/// it can only make its VG incomplete.
pub fn scan_selected(selection: &Selected, also: &Selector<'_>) -> Scan {
    scan_checked(
        selection.devices.clone(),
        &|dev| selection.check(dev).and_then(|()| also(dev)),
        &|dev| open_for_reading(&dev.node),
        &|dev, pv| match selection.expected_pvid(dev) {
            Some(want) if want != pv.pv_header.uuid => Err(format!(
                "pv uuid {} is not {want}, the one the lvm devices file names",
                pv.pv_header.uuid
            )),
            _ => Ok(()),
        },
        &selection.system_ids,
    )
}

/// What reading a list of paths (block devices or image files) found.
#[derive(Debug, Default)]
pub struct PathScan {
    pub assembly: Assembly,
    /// Paths that carry no LVM label.
    pub not_pvs: Vec<String>,
    /// Paths that could not be read, with the error.
    pub unreadable: Vec<(String, String)>,
}

/// Reads exactly these paths (block devices or image files), no selection applied; VGs with
/// a system ID are read as on a host with none ([`scan_paths_with`]).
pub fn scan_paths(paths: &[PathBuf]) -> PathScan {
    scan_paths_with(paths, &SystemIds::default())
}

/// [`scan_paths`], with this host's system IDs.
pub fn scan_paths_with(paths: &[PathBuf], system_ids: &SystemIds) -> PathScan {
    let mut out = PathScan::default();
    let mut pvs = Vec::new();
    let mut bad_labels = Vec::new();
    for path in paths {
        let name = path.display().to_string();
        let mut file = match open_for_reading(path) {
            Ok(f) => f,
            Err(e) => {
                out.unreadable.push((name, format!("cannot open: {e}")));
                continue;
            }
        };
        match scan_device(&mut file, &name) {
            Ok(Some(pv)) => pvs.push(pv),
            Ok(None) => out.not_pvs.push(name),
            Err(ScanError::Label { source, .. }) => bad_labels.push((name, source.to_string())),
            Err(e) => out.unreadable.push((name, e.to_string())),
        }
    }
    out.assembly = assemble_with(&pvs, &bad_labels, system_ids);
    out
}
