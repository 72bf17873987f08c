//! The scan every front end starts with: list the block devices, keep the ones rewind may
//! read, read their LVM labels and metadata, and assemble the volume groups.

use crate::lvm::assemble::{Assembly, FoundVg, assemble};
use crate::lvm::disk::{PvScan, ScanError, scan_device};
use crate::plan::dev::DevNum;
use crate::system::blockdev::{self, BlockDevice};
use crate::system::devsel::Selected;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

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

impl Scan {
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
    ))
}

/// What a PV found on a device must satisfy; `Err` says why it is skipped.
type PvCheck<'a> = dyn Fn(&BlockDevice, &PvScan) -> Result<(), String> + 'a;

fn scan_checked(
    devices: Vec<BlockDevice>,
    select: &Selector<'_>,
    open: &dyn Fn(&BlockDevice) -> std::io::Result<File>,
    pv_check: &PvCheck<'_>,
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
    let assembly = assemble(&pvs, &bad_labels);
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
    scan_with(root, select, &|dev| File::open(&dev.node))
}

/// Scans the devices LVM itself would use (see `lvm::devsel` and `system::devsel`), from the list the selection
/// was made over. A PV whose uuid is not the one its devices-file entry names is skipped, so
/// it can only make its VG incomplete.
pub fn scan_selected(selection: &Selected, also: &Selector<'_>) -> Scan {
    scan_checked(
        selection.devices.clone(),
        &|dev| selection.check(dev).and_then(|()| also(dev)),
        &|dev| File::open(&dev.node),
        &|dev, pv| match selection.expected_pvid(dev) {
            Some(want) if want != pv.pv_header.uuid => Err(format!(
                "pv uuid {} is not {want}, the one the lvm devices file names",
                pv.pv_header.uuid
            )),
            _ => Ok(()),
        },
    )
}
