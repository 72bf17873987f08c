//! `rewind poll`: finish merges after switch_root; entry point [`run`]. The way LVM's lvpoll does
//! (`tools/lvconvert_poll.c`, `lvconvert_merge_finish`; `lib/metadata/snapshot_manip.c`).
//!
//! An active merge is a device with an `LVM-` uuid whose live table is `snapshot-merge`. The
//! kernel raises no event when a merge completes, so its status is polled, fast near the end
//! and slower while far from done (from the observed rate), never slower than
//! `interval_max_ms`. When allocated == metadata sectors the merge is done and is finished:
//! under LVM's VG lock, re-read the metadata; commit it without the snapshot
//! (`drop_merged_snapshot`, every mda) unless it is already gone (LVM finished first); reload
//! the origin with the devices LVM's layout wants for the new metadata (plain, or
//! `snapshot-origin` if other snapshots remain); remove the devices no longer wanted
//! (merging snapshot's `error` device, its `-cow`, and `-real` when no snapshot remains).
//! `Invalid` / `Merge failed` stop: nothing is touched, the error is logged, exit 1.
//! Every step can run again (invariant 8): each run plans from what the disks and the kernel
//! show now.

use super::Error;
use super::env::{Env, System, live_now};
use crate::config::Poll as PollConfig;
use crate::exit::Verdict;
use crate::lvm::assemble::FoundVg;
use crate::lvm::change::{ChangeError, drop_merged_snapshot, finish_merge_as_snapshot};
use crate::lvm::layout::{Layer, LvRef, LvmId, LvmUuid};
use crate::lvm::model::{Snapshot, Vg};
use crate::lvm::text::{self, Section, Style};
use crate::plan::dev::UdevRules;
use crate::plan::devices::{DeviceSpec, Role, VgLayout};
use crate::plan::steps::{Live, converge};
use crate::plan::table::{SnapshotStatus, Target};
use crate::system::dm::DeviceMapper;
use crate::system::exec::execute;
use crate::system::failpoint;
use crate::system::lock::VgLock;
use crate::system::scan::Scan;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// A device whose live table is `snapshot-merge`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveMerge {
    pub name: String,
    pub uuid: LvmUuid,
}

/// Every active merge, from the live devices.
pub fn active_merges(live: &[Live]) -> Vec<ActiveMerge> {
    live.iter()
        .filter_map(|l| {
            let uuid = LvmUuid::parse(l.uuid.as_deref()?).ok()?;
            let t = l.table.as_ref()?;
            t.lines
                .iter()
                .any(|line| matches!(line.target, Target::SnapshotMerge(_)))
                .then(|| ActiveMerge {
                    name: l.name.clone(),
                    uuid,
                })
        })
        .collect()
}

/// VG ids with devices a finished merge may have left behind (a run killed between the
/// origin's reload and the removals): an unopened `-real` or `-cow`, or an unopened LVM
/// device with an `error` table.
pub fn leftover_vgs(live: &[Live]) -> Vec<LvmId> {
    let mut out: Vec<LvmId> = Vec::new();
    for l in live {
        let Some(uuid) = l.uuid.as_deref().and_then(|u| LvmUuid::parse(u).ok()) else {
            continue;
        };
        let is_error = l.table.as_ref().is_some_and(|t| {
            !t.lines.is_empty() && t.lines.iter().all(|x| x.target == Target::Error)
        });
        let layered = matches!(uuid.layer, Some(Layer::Real | Layer::Cow));
        if l.open_count == 0 && (layered || is_error) && !out.contains(&uuid.vg_id) {
            out.push(uuid.vg_id);
        }
    }
    out
}

/// The merge status of `name`'s `snapshot-merge` line.
pub fn merge_status(dm: &mut dyn DeviceMapper, name: &str) -> Result<SnapshotStatus, Error> {
    let lines = dm.status(name).map_err(Error::dm_state)?;
    let line = lines
        .iter()
        .find(|l| l.target_type == "snapshot-merge")
        .ok_or_else(|| Error::Device {
            device: name.to_owned(),
            message: "no snapshot-merge target in the live table".into(),
        })?;
    line.snapshot_status()
        .unwrap_or(Ok(SnapshotStatus::Unknown))
        .map_err(|e| Error::Device {
            device: name.to_owned(),
            message: format!("unreadable status: {e}"),
        })
}

/// Sectors still to copy (allocated minus metadata), when the status says.
pub fn remaining(status: &SnapshotStatus) -> Option<u64> {
    match status {
        SnapshotStatus::Usage {
            allocated,
            metadata,
            ..
        } => Some(allocated.saturating_sub(*metadata)),
        _ => None,
    }
}

/// Progress of one merge over time, for the rate and the next interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    pub first: (Instant, u64),
    pub last: (Instant, u64),
}

impl Progress {
    pub fn new(at: Instant, remaining: u64) -> Self {
        Progress {
            first: (at, remaining),
            last: (at, remaining),
        }
    }

    pub fn update(&mut self, at: Instant, remaining: u64) {
        if remaining > self.first.1 {
            // A new merge on the same device (or the counter went back): start over.
            *self = Progress::new(at, remaining);
        } else {
            self.last = (at, remaining);
        }
    }

    /// Sectors per second, once something was copied.
    pub fn rate(&self) -> Option<f64> {
        let dt = self.last.0.duration_since(self.first.0).as_secs_f64();
        let done = self.first.1.saturating_sub(self.last.1);
        (dt > 0.0 && done > 0).then(|| done as f64 / dt)
    }

    /// Estimated time left.
    pub fn eta(&self) -> Option<Duration> {
        let rate = self.rate()?;
        Duration::try_from_secs_f64(self.last.1 as f64 / rate).ok()
    }
}

/// The next wait: a quarter of the estimated time left, within the configured bounds (so a
/// finished merge is seen within `interval_max_ms`); without a rate yet, back off from the
/// previous wait by half again.
pub fn next_interval(
    cfg: &PollConfig,
    progress: Option<&Progress>,
    previous: Duration,
) -> Duration {
    let min = Duration::from_millis(cfg.interval_min_ms);
    let max = Duration::from_millis(cfg.interval_max_ms.max(cfg.interval_min_ms));
    let wanted = match progress.and_then(Progress::eta) {
        Some(eta) => eta / 4,
        None => previous + previous / 2,
    };
    wanted.clamp(min, max)
}

/// What finishing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    /// rewind committed the metadata without the snapshot.
    Committed {
        vg: String,
        origin: String,
        snapshot: String,
    },
    /// The metadata had no merging snapshot any more (LVM finished first): devices tidied.
    AlreadyDropped { vg: String, origin: String },
}

/// After the commit that finished a merge into `origin` (classic or thin): early's record of
/// it is dropped, and a set member's rollback is announced in the journal and at login.
pub(super) fn announce_finished(
    env: &Env<'_>,
    vg: &FoundVg,
    model: &Vg,
    origin: &str,
    set: Option<&str>,
) {
    if let Some(o) = model.lv(origin) {
        super::notice::forget(&env.root, &vg.id, &o.id);
    }
    if let Some(set) = set {
        let text = format!(
            "rollback complete: {}/{origin} is back at snapshot set {set} (its merge finished)",
            vg.name
        );
        log::warn!("{text}");
        crate::system::motd::note(&env.root, &text);
    }
}

fn find_vg<'s>(s: &'s Scan, vg_id: &LvmId) -> Option<&'s FoundVg> {
    s.assembly
        .vgs
        .iter()
        .find(|v| LvmId::parse(&v.id).is_ok_and(|id| &id == vg_id))
}

fn no_vg(merge: &ActiveMerge) -> Error {
    Error::NoVgWithId {
        device: merge.name.clone(),
        vg_id: merge.uuid.vg_id.to_string(),
    }
}

fn vg_err(vg: &FoundVg, message: String) -> Error {
    Error::Vg {
        vg: vg.name.clone(),
        message,
    }
}

/// The model of a usable VG, or why it cannot be acted on.
fn usable(vg: &FoundVg) -> Result<&Vg, Error> {
    if let Some(p) = vg.blocking_problem() {
        return Err(vg_err(vg, p.to_string()));
    }
    vg.model
        .as_ref()
        .ok_or_else(|| vg_err(vg, "metadata not usable".into()))
}

/// The changed metadata of `vg` and its model; a failure of either names the VG.
fn remodel(vg: &FoundVg, changed: Result<Section, ChangeError>) -> Result<(Section, Vg), Error> {
    let tree = changed.map_err(|e| vg_err(vg, e.to_string()))?;
    let model = Vg::from_tree(&tree).map_err(|e| vg_err(vg, e.to_string()))?;
    Ok((tree, model))
}

/// Only a finished merge is dropped: checked again under the lock.
fn ensure_done(dm: &mut dyn DeviceMapper, merge: &ActiveMerge) -> Result<(), Error> {
    let status = merge_status(dm, &merge.name)?;
    if status.merge_done() {
        Ok(())
    } else {
        Err(Error::Device {
            device: merge.name.clone(),
            message: format!("merge not finished ({status}); not dropping the snapshot"),
        })
    }
}

/// Commits `tree` to `vg` (the caller holds the lock); `what` names the change in errors.
pub(super) fn commit(
    env: &mut Env<'_>,
    s: &Scan,
    vg: &FoundVg,
    tree: &Section,
    what: String,
) -> Result<(), Error> {
    s.commit(vg, &text::print(tree, Style::Disk), env.hook())
        .map_err(|source| Error::commit(&vg.name, what, source))?;
    Ok(())
}

/// Finishes one merge whose status reads done. Safe to run again at any point.
pub fn finish(
    env: &mut Env<'_>,
    dm: &mut dyn DeviceMapper,
    merge: &ActiveMerge,
) -> Result<Finished, Error> {
    let first = env.scan()?;
    let vg_name = find_vg(&first, &merge.uuid.vg_id)
        .ok_or_else(|| no_vg(merge))?
        .name
        .clone();
    let _lock = VgLock::exclusive(&env.lock_dir, &vg_name, env.lock_timeout)?;
    // Under the lock, read again: LVM may have finished (or changed the VG) meanwhile.
    let s = env.scan()?;
    let vg = find_vg(&s, &merge.uuid.vg_id).ok_or_else(|| no_vg(merge))?;
    let model = usable(vg)?;
    let origin = model
        .lvs
        .iter()
        .find(|l| LvmId::parse(&l.id).is_ok_and(|id| id == merge.uuid.lv_id))
        .ok_or_else(|| {
            vg_err(
                vg,
                format!("no logical volume with the id of device {}", merge.name),
            )
        })?
        .name
        .clone();
    // `--mode snapshot`: the merging device is the snapshot's own (its COW LV's id).
    if let Some(snap) = model.snapshot(&origin).filter(|s| s.cow == origin) {
        if !(snap.merging && model.merges_as_snapshot(snap)) {
            return Err(Error::Device {
                device: merge.name.clone(),
                message: format!(
                    "{}/{} shows snapshot-merge but the metadata does not flag it to merge in snapshot mode; left as it is",
                    vg.name, snap.cow
                ),
            });
        }
        let snap = snap.clone();
        return finish_as_snapshot(env, &s, vg, &snap, dm, merge);
    }
    let (model, result) = match model.merging_snapshot_of(&origin) {
        Some(snap) => drop_snapshot(env, &s, vg, model, snap, dm, merge)?,
        None => {
            log::info!(
                "{}/{origin}: the metadata has no merging snapshot any more (lvm or an earlier run finished it); tidying the devices",
                vg.name
            );
            (
                model.clone(),
                Finished::AlreadyDropped {
                    vg: vg.name.clone(),
                    origin: origin.clone(),
                },
            )
        }
    };
    reload_and_tidy(&env.root, &s, vg, &model, &origin, dm)?;
    Ok(result)
}

/// Commits the metadata without `snap`, whose merge into its origin is done (the caller
/// holds the VG lock and re-read the metadata): the new model and what was done.
fn drop_snapshot(
    env: &mut Env<'_>,
    s: &Scan,
    vg: &FoundVg,
    model: &Vg,
    snap: &Snapshot,
    dm: &mut dyn DeviceMapper,
    merge: &ActiveMerge,
) -> Result<(Vg, Finished), Error> {
    let origin = &snap.origin;
    if model.merges_as_snapshot(snap) {
        log::warn!(
            "{}/{}: flagged to merge in snapshot mode, but the merge ran on {origin}'s own device (activated by stock lvm): the result keeps the name {origin}",
            vg.name,
            snap.cow
        );
    }
    ensure_done(dm, merge)?;
    let snapshot = snap.cow.clone();
    let stamp = crate::system::proc::stamp();
    // A member of a set: the origin records which set it is back at, and when (in the same
    // commit; `rewind status` shows it, and the notice below says it).
    let set = model
        .lv(&snapshot)
        .and_then(|l| {
            l.tags
                .iter()
                .find_map(|t| t.strip_prefix(crate::lvm::sets::SET))
        })
        .map(str::to_owned);
    let dropped = drop_merged_snapshot(&vg.tree, &snapshot, &stamp).and_then(|mut t| {
        if let Some(set) = &set {
            crate::lvm::setchange::note_rolled_back(&mut t, &vg.name, origin, set, stamp.time)?;
        }
        Ok(t)
    });
    let (tree, new_model) = remodel(vg, dropped)?;
    commit(
        env,
        s,
        vg,
        &tree,
        format!("committing the metadata without {snapshot}"),
    )?;
    log::info!(
        "{}/{snapshot}: merged into {}/{origin}; metadata committed without the snapshot",
        vg.name,
        vg.name
    );
    announce_finished(env, vg, model, origin, set.as_deref());
    failpoint::hit("poll-after-commit");
    let done = Finished::Committed {
        vg: vg.name.clone(),
        origin: origin.clone(),
        snapshot,
    };
    Ok((new_model, done))
}

/// Finishes a `--mode snapshot` merge (the caller holds the VG lock and re-read the
/// metadata): commit the metadata where the origin's LV takes the snapshot's name and id,
/// then reload the snapshot's device (same name and UUID all along) as the plain segments
/// and remove the origin's `error` device, `-real` and `-cow`.
fn finish_as_snapshot(
    env: &mut Env<'_>,
    s: &Scan,
    vg: &FoundVg,
    snap: &Snapshot,
    dm: &mut dyn DeviceMapper,
    merge: &ActiveMerge,
) -> Result<Finished, Error> {
    ensure_done(dm, merge)?;
    let (tree, new_model) = remodel(
        vg,
        finish_merge_as_snapshot(&vg.tree, &snap.cow, &crate::system::proc::stamp()),
    )?;
    commit(
        env,
        s,
        vg,
        &tree,
        format!(
            "committing the metadata with {} as the merged volume",
            snap.cow
        ),
    )?;
    log::info!(
        "{}/{}: merged; metadata committed without the snapshot, {}/{} now carries the name {} and the snapshot's uuid",
        vg.name,
        snap.cow,
        vg.name,
        snap.origin,
        snap.cow
    );
    if let Some(o) = model_origin_id(vg, &snap.origin) {
        super::notice::forget(&env.root, &vg.id, &o);
    }
    failpoint::hit("poll-after-commit");
    reload_and_tidy(&env.root, s, vg, &new_model, &snap.cow, dm)?;
    Ok(Finished::Committed {
        vg: vg.name.clone(),
        origin: snap.origin.clone(),
        snapshot: snap.cow.clone(),
    })
}

/// The id of LV `name` in `vg`'s metadata as read (before a change).
fn model_origin_id(vg: &FoundVg, name: &str) -> Option<String> {
    vg.model.as_ref()?.lv(name).map(|l| l.id.clone())
}

/// Makes `origin`'s devices what LVM's layout wants for `model`, then removes what is left.
fn reload_and_tidy(
    root: &Path,
    s: &Scan,
    vg: &FoundVg,
    model: &Vg,
    origin: &str,
    dm: &mut dyn DeviceMapper,
) -> Result<(), Error> {
    let pvs = s.pv_numbers(vg);
    let layout = VgLayout {
        vg: model,
        pv_dev: &pvs,
    };
    let wanted = layout
        .activation(origin)
        .map_err(|e| vg_err(vg, e.to_string()))?;
    let origin_dev = wanted.last().map(|w| w.name.clone()).unwrap_or_default();
    let mut now = live_now(dm)?;
    // The origin is open (root is mounted on it). Swapping its finished snapshot-merge for
    // its plain table shows the same data: this reload is exactly what LVM does here.
    for l in &mut now {
        if wanted.iter().any(|w| {
            w.name == l.name && matches!(w.role, Role::Origin | Role::Plain) && w.name == origin_dev
        }) {
            l.open_count = 0;
        }
    }
    let steps = converge(&wanted, &now).map_err(|e| vg_err(vg, e.to_string()))?;
    execute(dm, &steps).map_err(|e| vg_err(vg, format!("reloading {origin}: {e}")))?;
    failpoint::hit("poll-after-reload");
    tidy(root, vg, model, &wanted, dm)
}

/// Removes the devices of `vg` that a finished merge leaves behind: `error` devices and
/// `-cow`s of LVs the metadata no longer has, and `-real`s of LVs without snapshots. Only
/// unopened devices; devices that stack on others go first. Where no udev manages the nodes
/// (a root without udev), their `/dev/mapper` node and `/dev/VG/LV` link go too, as udev would
/// drop them: left behind, stock LVM fails to create a snapshot of the same name.
fn tidy(
    root: &Path,
    vg: &FoundVg,
    model: &Vg,
    wanted: &[DeviceSpec],
    dm: &mut dyn DeviceMapper,
) -> Result<(), Error> {
    let Ok(vg_id) = LvmId::parse(&vg.id) else {
        return Ok(());
    };
    let lv_by_id = |id: &LvmId| {
        model
            .lvs
            .iter()
            .find(|l| LvmId::parse(&l.id).is_ok_and(|x| &x == id))
    };
    // At most one pass per device: each pass removes at least one or stops.
    for _ in 0..64 {
        let now = live_now(dm)?;
        let mut candidates: Vec<(u8, &Live)> = Vec::new();
        for l in &now {
            let Some(uuid) = l.uuid.as_deref().and_then(|u| LvmUuid::parse(u).ok()) else {
                continue;
            };
            if uuid.vg_id != vg_id || wanted.iter().any(|w| w.name == l.name) {
                continue;
            }
            let lv = lv_by_id(&uuid.lv_id);
            let is_error = l.table.as_ref().is_some_and(|t| {
                !t.lines.is_empty() && t.lines.iter().all(|x| x.target == Target::Error)
            });
            let order = match (&uuid.layer, lv) {
                (None, None) if is_error => 0,
                (Some(Layer::Cow), None) => 1,
                (Some(Layer::Cow), Some(lv)) if model.snapshot(&lv.name).is_none() => 1,
                (Some(Layer::Real), None) => 2,
                (Some(Layer::Real), Some(lv)) if model.snapshots_of(&lv.name).next().is_none() => 2,
                _ => continue,
            };
            candidates.push((order, l));
        }
        candidates.sort_by_key(|(o, _)| *o);
        let Some((_, l)) = candidates.iter().find(|(_, l)| l.open_count == 0) else {
            for (_, l) in &candidates {
                log::warn!(
                    "{}: left in place, still open {} time(s)",
                    l.name,
                    l.open_count
                );
            }
            return Ok(());
        };
        let name = l.name.clone();
        let rules = if matches!(
            LvmUuid::parse(l.uuid.as_deref().unwrap_or_default()).map(|u| u.layer),
            Ok(Some(_))
        ) {
            UdevRules::DmOnly
        } else {
            UdevRules::LowPriority
        };
        dm.remove(&name, rules).map_err(Error::dm_state)?;
        log::info!("{name}: removed");
        if !crate::system::nodes::udev_makes_dm_nodes(root) {
            crate::system::nodes::remove(root, &name, &vg.name);
        }
    }
    Ok(())
}

/// Tidies what a killed run left in `vg_id` (no active merge there). Takes the VG lock.
pub fn tidy_leftovers(
    env: &mut Env<'_>,
    dm: &mut dyn DeviceMapper,
    vg_id: &LvmId,
) -> Result<(), Error> {
    let first = env.scan()?;
    let Some(vg) = find_vg(&first, vg_id) else {
        return Ok(());
    };
    let _lock = VgLock::exclusive(&env.lock_dir, &vg.name, env.lock_timeout)?;
    let s = env.scan()?;
    let Some(vg) = find_vg(&s, vg_id) else {
        return Ok(());
    };
    let model = usable(vg)?;
    // The wanted devices of every LV that has active devices in this VG.
    let now = live_now(dm)?;
    let pvs = s.pv_numbers(vg);
    let layout = VgLayout {
        vg: model,
        pv_dev: &pvs,
    };
    let mut wanted = Vec::new();
    for lv in &model.lvs {
        let Ok(lv_id) = LvmId::parse(&lv.id) else {
            continue;
        };
        let active = now.iter().any(|l| {
            l.uuid
                .as_deref()
                .and_then(|u| LvmUuid::parse(u).ok())
                .is_some_and(|u| u.vg_id == *vg_id && u.lv_id == lv_id && u.layer.is_none())
        });
        if active && let Ok(devs) = layout.activation(&lv.name) {
            wanted.extend(devs);
        }
    }
    tidy(&env.root, vg, model, &wanted, dm)
}

/// How a poll run ended.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub finished: Vec<Finished>,
    /// Devices whose merge failed or is invalid: left as they are.
    pub failed: Vec<String>,
    /// Errors finishing a merge (retried until `max_attempts`).
    pub errors: Vec<String>,
}

impl Report {
    /// Ok when every merge finished (or none was active).
    pub fn verdict(&self) -> Verdict {
        Verdict::failed_if(!self.failed.is_empty() || !self.errors.is_empty())
    }

    /// 0 when every merge finished (or none was active), else 1.
    pub fn exit_code(&self) -> u8 {
        self.verdict().code()
    }
}

/// Attempts at finishing one merge before giving up on it in this run.
const MAX_ATTEMPTS: u32 = 3;

/// `rewind poll` on the system's device-mapper, waiting with `std::thread::sleep`; logs what
/// was finished. Without device-mapper there is no merge to finish.
pub fn run(sys: &System) -> Report {
    let cfg = sys.config();
    let Some(mut dm) = sys.device_mapper_if_any() else {
        log::info!("no device-mapper: no merge to finish");
        return Report::default();
    };
    let mut report = watch(&mut sys.env(), &mut dm, &cfg.poll, &mut |d, _| {
        std::thread::sleep(d)
    });
    for f in &report.finished {
        match f {
            Finished::Committed {
                vg,
                origin,
                snapshot,
            } => {
                log::info!(
                    "{vg}/{origin}: rolled back to {snapshot}; snapshot dropped, origin on its own device"
                )
            }
            Finished::AlreadyDropped { vg, origin } => {
                log::info!(
                    "{vg}/{origin}: merge already dropped from the metadata (by lvm or an earlier run); devices tidied"
                )
            }
        }
    }
    if report.finished.is_empty() && report.verdict() == Verdict::Ok {
        log::info!("no active merge");
    }
    // Merges `rewind early` recorded that stock LVM finished first get their notice too.
    let noticed = super::notice::run(&mut sys.env(), &mut dm, &sys.root);
    report.errors.extend(noticed.errors);
    // A set rolled back to is gone (finished here, or by stock LVM before this run): its entry
    // goes too, where /boot is mounted by now. The file is only written when it changes.
    drop(dm);
    // GRUB's next plain boot starts a kernel whose modules are in this root (a kernel a
    // rolled-back upgrade added must not win), before the menu's refresh tidies the copies.
    super::setkernel::after_rollback(&sys.root);
    // The same on systemd-boot: its usual entry may boot a kernel the rollback took the
    // modules of; rewind's pin entry boots the root's kernel (from a set's copy if need be).
    super::setkernel::bls_after_rollback(&sys.root);
    // GRUB's directory rolled back with its LV: its boot code is made to match it again.
    let rolled_back: Vec<LvRef> = report
        .finished
        .iter()
        .map(|f| match f {
            Finished::Committed { vg, origin, .. } | Finished::AlreadyDropped { vg, origin } => {
                LvRef {
                    vg: vg.clone(),
                    lv: origin.clone(),
                }
            }
        })
        .chain(
            noticed
                .finished_elsewhere
                .iter()
                .filter_map(|(lv, _)| LvRef::parse(lv).ok()),
        )
        .collect();
    super::setkernel::grub_after_rollback(sys, &rolled_back);
    // What the sets' copies could not put back into /boot is said now, while it matters.
    if !rolled_back.is_empty() {
        super::bootpkgs::after_rollback(&sys.root);
    }
    super::bootmenu::refresh(sys);
    report
}

/// What one watch keeps between looks.
#[derive(Default)]
struct Watch {
    report: Report,
    progress: BTreeMap<String, Progress>,
    attempts: BTreeMap<String, u32>,
    done_at: BTreeMap<String, Instant>,
}

impl Watch {
    /// The active merges still to look at: not failed, not given up on.
    fn pending(&self, live: &[Live]) -> Vec<ActiveMerge> {
        active_merges(live)
            .into_iter()
            .filter(|m| !self.report.failed.contains(&m.name))
            .filter(|m| self.attempts.get(&m.name).copied().unwrap_or(0) < MAX_ATTEMPTS)
            .collect()
    }

    /// One more failed attempt at `name`.
    fn retry(&mut self, name: &str, error: String) {
        *self.attempts.entry(name.to_owned()).or_default() += 1;
        self.report.errors.push(error);
    }

    /// Looks at one merge: a failed one is left as it is, a done one is finished. Returns the
    /// longest wait before the next look this merge allows, or `None` when it needs no more.
    fn look(
        &mut self,
        env: &mut Env<'_>,
        dm: &mut dyn DeviceMapper,
        cfg: &PollConfig,
        m: &ActiveMerge,
        interval: Duration,
    ) -> Option<Duration> {
        let max = Duration::from_millis(cfg.interval_max_ms);
        let status = match merge_status(dm, &m.name) {
            Ok(s) => s,
            Err(e) => {
                log::warn!("{e}");
                self.retry(&m.name, e.to_string());
                return Some(max);
            }
        };
        if status.is_failed() {
            log::error!(
                "{}: merge stopped: {status}; left exactly as it is. Inspect with dmsetup status {} and lvs -a; nothing was changed",
                m.name,
                m.name
            );
            self.report.failed.push(m.name.clone());
            return None;
        }
        if status.merge_done() {
            let seen = *self
                .done_at
                .entry(m.name.clone())
                .or_insert_with(Instant::now);
            return match finish(env, dm, m) {
                Ok(f) => {
                    log::info!(
                        "{}: merge finished, cleaned up {} ms after it was seen done",
                        m.name,
                        seen.elapsed().as_millis()
                    );
                    self.report.finished.push(f);
                    None
                }
                Err(e) => {
                    log::error!("{}: finishing the merge failed: {e}; will retry", m.name);
                    self.retry(&m.name, e.to_string());
                    Some(max)
                }
            };
        }
        let Some(left) = remaining(&status) else {
            // A merge always reports its usage; do not wait on one that does not forever.
            self.retry(
                &m.name,
                format!("{}: merge status without usage: {status}", m.name),
            );
            return Some(max);
        };
        let p = self
            .progress
            .entry(m.name.clone())
            .or_insert_with(|| Progress::new(Instant::now(), left));
        p.update(Instant::now(), left);
        // "Killed during the merge": the poller has seen this merge still copying.
        failpoint::hit_with("poll-waiting", || {
            format!("{}: {left} sectors left to merge", m.name)
        });
        let next = next_interval(cfg, Some(p), interval);
        log::debug!(
            "{}: {left} sectors left, {:.0} sectors/s, next look in {} ms",
            m.name,
            p.rate().unwrap_or(0.0),
            next.as_millis()
        );
        Some(next)
    }
}

/// Tidies what killed runs left behind in VGs with no active merge.
fn tidy_all_leftovers(env: &mut Env<'_>, dm: &mut dyn DeviceMapper, live: &[Live]) {
    for vg_id in leftover_vgs(live) {
        if active_merges(live).iter().any(|m| m.uuid.vg_id == vg_id) {
            continue;
        }
        if let Err(e) = tidy_leftovers(env, dm, &vg_id) {
            log::warn!("tidying devices of vg id {vg_id}: {e}");
        }
    }
}

/// Watches every active merge until each has finished or failed. `sleep` waits (tests advance
/// the fake's status there); it is given the device-mapper so tests can change it.
pub fn watch<D: DeviceMapper>(
    env: &mut Env<'_>,
    dm: &mut D,
    cfg: &PollConfig,
    sleep: &mut dyn FnMut(Duration, &mut D),
) -> Report {
    let mut w = Watch::default();
    let min = Duration::from_millis(cfg.interval_min_ms);
    let mut interval = min;
    let mut first = true;
    loop {
        let now = match live_now(dm) {
            Ok(l) => l,
            Err(e) => {
                w.report.errors.push(e.to_string());
                return w.report;
            }
        };
        if first {
            tidy_all_leftovers(env, dm, &now);
            // Thin merges are done once live: finished (or their pool messages sent) here.
            let thin = super::thinfinish::run(env, dm, &now);
            w.report.finished.extend(thin.finished);
            w.report.errors.extend(thin.errors);
            first = false;
        }
        let merges = w.pending(&now);
        if merges.is_empty() {
            return w.report;
        }
        // Wait only while some merge is still copying or a finish is to be retried.
        let waits: Vec<Duration> = merges
            .iter()
            .filter_map(|m| w.look(env, dm, cfg, m, interval))
            .collect();
        let Some(shortest) = waits.into_iter().min() else {
            continue;
        };
        interval = shortest.max(min);
        sleep(interval, dm);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::dev::DevNum;

    fn cfg() -> PollConfig {
        PollConfig {
            interval_min_ms: 100,
            interval_max_ms: 1000,
        }
    }

    #[test]
    fn interval_backs_off_without_a_rate_and_follows_the_eta() {
        let ms = Duration::from_millis;
        // No rate yet: half again each time, up to the maximum.
        assert_eq!(next_interval(&cfg(), None, ms(100)), ms(150));
        assert_eq!(next_interval(&cfg(), None, ms(900)), ms(1000));
        let t0 = Instant::now();
        let mut p = Progress::new(t0, 10_000);
        assert_eq!(p.rate(), None);
        // 1000 sectors/s, 9000 left: far from done, the maximum (never above it).
        p.update(t0 + Duration::from_secs(1), 9_000);
        assert_eq!(p.rate(), Some(1000.0));
        assert_eq!(p.eta(), Some(Duration::from_secs(9)));
        assert_eq!(next_interval(&cfg(), Some(&p), ms(100)), ms(1000));
        // 400 left at 1000/s: a quarter of the 0.4 s to go.
        p.update(t0 + Duration::from_millis(9600), 400);
        let i = next_interval(&cfg(), Some(&p), ms(1000));
        assert!(i >= ms(100) && i <= ms(110), "{i:?}");
        // Nearly done: the minimum.
        p.update(t0 + Duration::from_secs(10), 1);
        assert_eq!(next_interval(&cfg(), Some(&p), ms(1000)), ms(100));
        // A counter that goes up again starts a new measurement.
        p.update(t0 + Duration::from_secs(11), 50_000);
        assert_eq!(p.rate(), None);
    }

    fn live_dev(name: &str, uuid: &str, table: &str, open: u32) -> Live {
        Live {
            name: name.into(),
            uuid: Some(uuid.into()),
            dev: DevNum {
                major: 253,
                minor: 0,
            },
            open_count: open,
            suspended: false,
            table: Some(table.parse().expect("table")),
        }
    }

    const VG: &str = "LVM-Vg0000aaaabbbbccccddddeeeeffffffRoot00aaaabbbbccccddddeeeeffffff";

    #[test]
    fn finds_merges_and_leftovers_from_live_devices() {
        let merge = live_dev("vg0-root", VG, "0 8 snapshot-merge 253:1 253:2 P 8", 1);
        let origin = live_dev("vg0-root", VG, "0 8 snapshot-origin 253:1", 1);
        let real = live_dev(
            "vg0-root-real",
            &format!("{VG}-real"),
            "0 8 linear 8:0 0",
            1,
        );
        let foreign = live_dev(
            "crypt",
            "CRYPT-xyz",
            "0 8 snapshot-merge 253:1 253:2 P 8",
            0,
        );
        let m = active_merges(&[merge.clone(), real.clone(), foreign.clone(), origin.clone()]);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].name, "vg0-root");
        assert!(active_merges(&[origin.clone(), real.clone()]).is_empty());
        // An open -real is in use; an unopened one is left over.
        assert!(leftover_vgs(&[origin.clone(), real.clone()]).is_empty());
        let mut stale = real;
        stale.open_count = 0;
        assert_eq!(leftover_vgs(&[origin, stale]).len(), 1);
        assert!(leftover_vgs(&[foreign]).is_empty());
    }

    #[test]
    fn remaining_sectors() {
        let u = SnapshotStatus::Usage {
            allocated: 100,
            total: 1000,
            metadata: 16,
        };
        assert_eq!(remaining(&u), Some(84));
        assert_eq!(remaining(&SnapshotStatus::Invalid), None);
    }
}
