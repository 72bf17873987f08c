//! What the booted-system flows (poll, status, rollback, cancel) take from outside, and the
//! steps they share: scan, find a VG, take LVM's VG lock and scan again under it, find an
//! LV's live device.

use super::Error;
use crate::config::{self, Config};
use crate::lvm::assemble::FoundVg;
use crate::lvm::disk::CommitStep;
use crate::lvm::layout::{LvmId, dm_uuid};
use crate::lvm::model::Vg;
use crate::plan::steps::Live;
use crate::plan::table::Target;
use crate::system::blockdev::BlockDevice;
use crate::system::dm::{DeviceMapper, DmError, RealDm};
use crate::system::exec::live;
use crate::system::lock::VgLock;
use crate::system::scan::{Scan, Selector, scan};
use std::path::PathBuf;
use std::time::Duration;

pub use crate::system::lock::DEFAULT_LOCK_DIR;

/// How long one udev wait may take.
pub const UDEV_TIMEOUT: Duration = Duration::from_secs(10);
/// How long rewind waits for LVM's VG lock.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// The booted system as the command line names it.
#[derive(Debug, Clone)]
pub struct System {
    /// The root that holds /sys, /dev and /etc.
    pub root: PathBuf,
    /// The configuration file (default: ROOT/etc/rewind/rewind.toml).
    pub config: Option<PathBuf>,
    /// LVM's locking directory (lvm.conf global/locking_dir).
    pub lock_dir: PathBuf,
}

fn all(_: &BlockDevice) -> Result<(), String> {
    Ok(())
}

impl System {
    /// The configuration; a bad file is logged and the defaults are used.
    pub fn config(&self) -> Config {
        let path = self
            .config
            .clone()
            .unwrap_or_else(|| self.root.join(config::DEFAULT_PATH.trim_start_matches('/')));
        Config::load_or_default(&path)
    }

    /// Every block device, LVM's VG lock in `lock_dir`.
    pub fn env(&self) -> Env<'static> {
        Env {
            root: self.root.clone(),
            select: &all,
            lock_dir: self.lock_dir.clone(),
            lock_timeout: LOCK_TIMEOUT,
            commit_hook: None,
        }
    }

    /// The kernel's device-mapper.
    pub fn device_mapper(&self) -> Result<RealDm, DmError> {
        RealDm::new(UDEV_TIMEOUT)
    }

    /// The kernel's device-mapper when there is one; without it (no module, not root) the
    /// flows that can go on without it do, and say so.
    pub fn device_mapper_if_any(&self) -> Option<RealDm> {
        match self.device_mapper() {
            Ok(dm) => Some(dm),
            Err(e) => {
                log::info!("device-mapper not available: {e}");
                None
            }
        }
    }
}

/// Where the metadata is read and how the VG lock is taken; every outside input injectable.
pub struct Env<'a> {
    /// The root holding /sys and /dev.
    pub root: PathBuf,
    pub select: &'a Selector<'a>,
    /// LVM's `global/locking_dir`.
    pub lock_dir: PathBuf,
    pub lock_timeout: Duration,
    /// Called before each step of a metadata commit; `false` stops it there (crash tests).
    pub commit_hook: Option<&'a mut dyn FnMut(CommitStep) -> bool>,
}

impl std::fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("root", &self.root)
            .field("lock_dir", &self.lock_dir)
            .finish_non_exhaustive()
    }
}

impl Env<'_> {
    /// Scans the devices `select` allows.
    pub fn scan(&self) -> Result<Scan, Error> {
        scan(&self.root, self.select).map_err(Error::ListDevices)
    }

    /// The commit hook, reborrowed for one commit.
    pub fn hook(&mut self) -> Option<&mut dyn FnMut(CommitStep) -> bool> {
        match self.commit_hook {
            Some(ref mut h) => Some(&mut **h),
            None => None,
        }
    }

    /// Scans, takes LVM's lock on `vg`, scans again: `f` runs under the lock with the fresh
    /// scan (LVM may have changed the VG meanwhile).
    pub fn locked<T>(
        &self,
        vg: &str,
        f: impl FnOnce(&Scan) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let first = self.scan()?;
        usable_vg(&first, vg)?;
        let _lock = VgLock::exclusive(&self.lock_dir, vg, self.lock_timeout)?;
        let s = self.scan()?;
        f(&s)
    }
}

/// The one VG named `vg` in a scan, usable (not ambiguous, no PV missing, metadata read).
pub fn usable_vg<'s>(s: &'s Scan, vg: &'s str) -> Result<(&'s FoundVg, &'s Vg), Error> {
    let v = s
        .assembly
        .vgs_named(vg)
        .next()
        .ok_or_else(|| Error::NoVg { vg: vg.to_owned() })?;
    if let Some(p) = v.blocking_problem() {
        return Err(Error::Vg {
            vg: vg.to_owned(),
            message: format!("{p}; nothing changed"),
        });
    }
    let model = v.model.as_ref().ok_or_else(|| Error::Vg {
        vg: vg.to_owned(),
        message: "metadata not usable; nothing changed".into(),
    })?;
    Ok((v, model))
}

/// The live device of LV `lv` of `vg` (by LVM's dm uuid), if active.
pub fn device<'l>(live: &'l [Live], vg: &FoundVg, model: &Vg, lv: &str) -> Option<&'l Live> {
    let vg_id = LvmId::parse(&vg.id).ok()?;
    let lv_id = LvmId::parse(&model.lv(lv)?.id).ok()?;
    let uuid = dm_uuid(&vg_id, &lv_id, None);
    live.iter()
        .find(|l| l.uuid.as_deref() == Some(uuid.as_str()))
}

/// Whether a live device's table is `snapshot-merge`: the kernel is merging.
pub fn is_merging(l: &Live) -> bool {
    l.table.as_ref().is_some_and(|t| {
        t.lines
            .iter()
            .any(|x| matches!(x.target, Target::SnapshotMerge(_)))
    })
}

/// What is live now.
pub fn live_now(dm: &mut dyn DeviceMapper) -> Result<Vec<Live>, Error> {
    live(dm).map_err(Error::dm_state)
}
