//! `rewind rollback VG/SNAPSHOT` and `rewind cancel VG/SNAPSHOT`, in the booted system.
//!
//! rollback: the same checks as `rewind early` (`check_rollback`: a classic snapshot of a
//! plain origin, no other merge, writable VG, valid COW), then the merge flag is committed
//! under LVM's VG lock (invariant 1, 6). Like `lvconvert --merge`: an active origin that
//! nothing has open (nor its snapshot) is reloaded into the merge layout at once and
//! `rewind poll` finishes it; an origin in use merges at its next activation (the next boot
//! for root); an inactive one at its next activation.
//!
//! cancel: withdraws a flag whose merge has not started. Once the kernel has begun (a live
//! `snapshot-merge` table) the origin already holds part of the snapshot's data, so it is
//! refused; so is an inactive origin, where rewind cannot tell whether a merge began at an
//! earlier activation (invariant 2: never show a half-merged origin).

use crate::flow::poll::{Env, commit_vg};
use crate::lvm::assemble::FoundVg;
use crate::lvm::change::{mark_merging, mark_merging_as_snapshot, unmark_merging};
use crate::lvm::layout::{LvmId, dm_uuid};
use crate::lvm::model::{Snapshot, Vg};
use crate::lvm::text::{self, Style};
use crate::plan::decide::check_rollback;
use crate::plan::devices::VgLayout;
use crate::plan::steps::{Live, converge};
use crate::plan::table::Target;
use crate::system::dm::DeviceMapper;
use crate::system::exec::{execute, live};
use crate::system::lock::VgLock;
use crate::system::scan::{Scan, scan};

/// How a rollback request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollback {
    /// The origin was reloaded into its merge table: the merge runs now.
    Started { origin: String },
    /// Flagged; the origin is open, so the merge starts at its next activation.
    AtNextBoot { origin: String, why: String },
    /// Flagged; the origin is not active: the merge starts when it is activated.
    AtActivation { origin: String },
}

fn scan_env(env: &Env<'_>) -> Result<Scan, String> {
    scan(&env.root, env.select).map_err(|e| format!("cannot list block devices: {e}"))
}

fn find<'s>(s: &'s Scan, vg: &'s str) -> Result<(&'s FoundVg, &'s Vg), String> {
    let mut found = s.assembly.vgs_named(vg);
    let v = found
        .next()
        .ok_or_else(|| format!("no volume group {vg} found"))?;
    if let Some(p) = v.blocking_problem() {
        return Err(format!("vg {vg}: {p}; nothing changed"));
    }
    let model = v
        .model
        .as_ref()
        .ok_or_else(|| format!("vg {vg}: metadata not usable; nothing changed"))?;
    Ok((v, model))
}

fn device<'l>(live: &'l [Live], vg: &FoundVg, model: &Vg, lv: &str) -> Option<&'l Live> {
    let vg_id = LvmId::parse(&vg.id).ok()?;
    let lv_id = LvmId::parse(&model.lv(lv)?.id).ok()?;
    let uuid = dm_uuid(&vg_id, &lv_id, None);
    live.iter()
        .find(|l| l.uuid.as_deref() == Some(uuid.as_str()))
}

fn is_merging(l: &Live) -> bool {
    l.table.as_ref().is_some_and(|t| {
        t.lines
            .iter()
            .any(|x| matches!(x.target, Target::SnapshotMerge(_)))
    })
}

/// Scans, locks the VG, scans again; `f` runs under the lock with the fresh scan.
fn locked<T>(
    env: &Env<'_>,
    vg: &str,
    f: impl FnOnce(&Scan) -> Result<T, String>,
) -> Result<T, String> {
    let first = scan_env(env)?;
    find(&first, vg)?;
    let _lock =
        VgLock::exclusive(&env.lock_dir, vg, env.lock_timeout).map_err(|e| e.to_string())?;
    let s = scan_env(env)?;
    f(&s)
}

/// `rewind rollback VG/SNAPSHOT --mode origin`.
pub fn rollback(
    env: &Env<'_>,
    dm: Option<&mut dyn DeviceMapper>,
    vg_name: &str,
    name: &str,
) -> Result<Rollback, String> {
    locked(env, vg_name, |s| {
        let (vg, model) = find(s, vg_name)?;
        let mut read = |v: &FoundVg, snap: &Snapshot| crate::flow::early::read_cow(s, v, snap);
        let snap = match check_rollback(vg, model, name, &mut read)? {
            Some(snap) => {
                let snap = snap.clone();
                let tree = mark_merging(&vg.tree, &snap.cow, &crate::system::stamp::now())
                    .map_err(|e| e.to_string())?;
                commit_vg(s, vg, &text::print(&tree, Style::Disk), None)
                    .map_err(|e| format!("vg {vg_name}: committing the merge flag failed: {e}"))?;
                log::info!("{vg_name}/{}: merge flag committed", snap.cow);
                let new = Vg::from_tree(&tree).map_err(|e| e.to_string())?;
                return start(s, vg, &new, &snap, dm);
            }
            None => model
                .snapshot(name)
                .cloned()
                .ok_or_else(|| format!("{vg_name}/{name}: no such snapshot"))?,
        };
        if model.merges_as_snapshot(&snap) {
            return Err(format!(
                "{vg_name}/{}: already flagged to merge with --mode snapshot; run rewind rollback {vg_name}/{} --mode snapshot to start it",
                snap.cow, snap.cow
            ));
        }
        log::info!("{vg_name}/{}: already flagged to merge", snap.cow);
        start(s, vg, model, &snap, dm)
    })
}

/// `rewind rollback VG/SNAPSHOT --mode snapshot`: the result takes the snapshot's name and
/// UUID. Allowed when it is its origin's only snapshot and the origin's device is not open
/// (the snapshot's may be: it becomes the merging device and shows the same data). Needs
/// device-mapper: the merge starts at once, never at a later activation, because stock LVM
/// activating the origin would lay the merge out on the origin's device instead.
///
/// Order: every check and the whole device plan are made first (invariant 3: a refusal
/// changes nothing); then LVM's merge flag and `rewind_merge_as_snapshot` are committed in
/// one write (invariant 1); then the origin's device becomes `error` and the snapshot's
/// device `snapshot-merge`. A crash after the commit is resumed the same way by running
/// this again, by `rewind early` at the next boot, or by stock LVM (see docs/MODE-SNAPSHOT.md).
pub fn rollback_snapshot(
    env: &Env<'_>,
    dm: Option<&mut dyn DeviceMapper>,
    vg_name: &str,
    name: &str,
) -> Result<Rollback, String> {
    let who = format!("{vg_name}/{name}");
    let dm = dm.ok_or_else(|| {
        format!(
            "{who}: --mode snapshot needs device-mapper (the merge starts at once); nothing changed"
        )
    })?;
    locked(env, vg_name, |s| {
        let (vg, model) = find(s, vg_name)?;
        let mut read = |v: &FoundVg, snap: &Snapshot| crate::flow::early::read_cow(s, v, snap);
        let checked = check_rollback(vg, model, name, &mut read)?.cloned();
        let snap = match &checked {
            Some(snap) => snap.clone(),
            None => {
                let snap = model
                    .snapshot(name)
                    .cloned()
                    .ok_or_else(|| format!("{who}: no such snapshot"))?;
                if !model.merges_as_snapshot(&snap) {
                    return Err(format!(
                        "{vg_name}/{}: already flagged to merge into {vg_name}/{} with --mode origin; nothing changed",
                        snap.cow, snap.origin
                    ));
                }
                snap
            }
        };
        let others = model.snapshots_of(&snap.origin).count() - 1;
        if others > 0 {
            return Err(format!(
                "{who}: {vg_name}/{} has {others} other snapshot(s); --mode snapshot needs the origin's only snapshot; nothing changed",
                snap.origin
            ));
        }
        let now = live(dm).map_err(|e| format!("cannot read device-mapper state: {e}"))?;
        if let Some(d) = device(&now, vg, model, &snap.origin)
            && d.open_count > 0
            && !is_merging(d)
        {
            return Err(format!(
                "{who}: the origin {vg_name}/{} is in use ({} is open {} time(s)); --mode snapshot needs it unused (the snapshot may stay mounted); nothing changed",
                snap.origin, d.name, d.open_count
            ));
        }
        // The new metadata and the device plan, before anything is written.
        let (tree, new) = if checked.is_some() {
            let tree = mark_merging_as_snapshot(&vg.tree, &snap.cow, &crate::system::stamp::now())
                .map_err(|e| format!("{who}: {e}; nothing changed"))?;
            let new = Vg::from_tree(&tree).map_err(|e| e.to_string())?;
            (Some(tree), new)
        } else {
            (None, model.clone())
        };
        let pvs = s.pv_numbers(vg);
        let layout = VgLayout {
            vg: &new,
            pv_dev: &pvs,
        };
        let wanted = layout
            .activation(&snap.origin)
            .map_err(|e| format!("{who}: {e}; nothing changed"))?;
        converge(&wanted, &now).map_err(|e| format!("{who}: {e}; nothing changed"))?;
        if let Some(tree) = tree {
            commit_vg(s, vg, &text::print(&tree, Style::Disk), None)
                .map_err(|e| format!("vg {vg_name}: committing the merge flag failed: {e}"))?;
            log::info!(
                "{who}: merge flag committed (snapshot mode: the result is named {})",
                snap.cow
            );
        } else {
            log::info!("{who}: already flagged to merge in snapshot mode");
        }
        // Plan again from what is live now, right before the steps.
        let now = live(dm).map_err(|e| format!("cannot read device-mapper state: {e}"))?;
        let steps = converge(&wanted, &now).map_err(|e| {
            format!("{who}: {e}; the flag is committed: run this again once that is resolved")
        })?;
        execute(dm, &steps).map_err(|e| {
            format!(
                "{who}: loading the merge failed: {e}; the flag is committed: run this again, or the next boot's rewind early resumes it"
            )
        })?;
        Ok(Rollback::Started {
            origin: snap.origin,
        })
    })
}

/// Starts a flagged merge now if the origin is active and nothing holds it or its snapshot.
fn start(
    s: &Scan,
    vg: &FoundVg,
    model: &Vg,
    snap: &Snapshot,
    dm: Option<&mut dyn DeviceMapper>,
) -> Result<Rollback, String> {
    let origin = snap.origin.clone();
    let Some(dm) = dm else {
        return Ok(Rollback::AtActivation { origin });
    };
    let now = live(dm).map_err(|e| e.to_string())?;
    let Some(odev) = device(&now, vg, model, &origin) else {
        return Ok(Rollback::AtActivation { origin });
    };
    if is_merging(odev) {
        return Ok(Rollback::Started { origin });
    }
    let sdev = device(&now, vg, model, &snap.cow);
    let busy = [Some(odev), sdev]
        .into_iter()
        .flatten()
        .find(|d| d.open_count > 0);
    if let Some(d) = busy {
        return Ok(Rollback::AtNextBoot {
            origin,
            why: format!("{} is open {} time(s)", d.name, d.open_count),
        });
    }
    let pvs = s.pv_numbers(vg);
    let layout = VgLayout {
        vg: model,
        pv_dev: &pvs,
    };
    let wanted = layout.activation(&origin).map_err(|e| e.to_string())?;
    let steps = converge(&wanted, &now).map_err(|e| e.to_string())?;
    execute(dm, &steps).map_err(|e| {
        format!(
            "{}/{origin}: loading the merge failed: {e}; the flag is committed, so the merge starts at the next activation",
            vg.name
        )
    })?;
    Ok(Rollback::Started { origin })
}

/// `rewind cancel VG/SNAPSHOT`.
pub fn cancel(
    env: &Env<'_>,
    dm: Option<&mut dyn DeviceMapper>,
    vg_name: &str,
    name: &str,
) -> Result<(), String> {
    locked(env, vg_name, |s| {
        let (vg, model) = find(s, vg_name)?;
        let who = format!("{vg_name}/{name}");
        let snap = model.snapshot(name).ok_or_else(|| match model.lv(name) {
            Some(_) => format!("{who} is not a snapshot"),
            None => format!("{who}: no such logical volume"),
        })?;
        if !snap.merging {
            return Err(format!("{who} is not flagged to merge; nothing to cancel"));
        }
        let dm = dm.ok_or_else(|| {
            format!("{who}: device-mapper is not available, so rewind cannot tell whether the merge has begun; not cancelled")
        })?;
        let now = live(dm).map_err(|e| format!("cannot read device-mapper state: {e}"))?;
        let as_snapshot = model.merges_as_snapshot(snap);
        if let Some(d) = device(&now, vg, model, &snap.cow).filter(|d| is_merging(d)) {
            return Err(format!(
                "{who}: the merge has started ({} shows snapshot-merge, snapshot mode): the origin already holds part of the snapshot's data, so it cannot be withdrawn; let it finish (rewind poll)",
                d.name
            ));
        }
        match device(&now, vg, model, &snap.origin) {
            Some(d) if is_merging(d) => {
                return Err(format!(
                    "{who}: the merge into {vg_name}/{} has started ({} shows snapshot-merge): the origin already holds part of the snapshot's data, so it cannot be withdrawn; let it finish (rewind poll)",
                    snap.origin, d.name
                ));
            }
            Some(_) => {}
            None => {
                return Err(format!(
                    "{who}: origin {vg_name}/{} is not active, so rewind cannot tell whether a merge began at an earlier activation; not cancelled",
                    snap.origin
                ));
            }
        }
        let tree = unmark_merging(&vg.tree, name, &crate::system::stamp::now())
            .map_err(|e| e.to_string())?;
        commit_vg(s, vg, &text::print(&tree, Style::Disk), None)
            .map_err(|e| format!("vg {vg_name}: committing failed: {e}"))?;
        if as_snapshot {
            // A run of `rollback --mode snapshot` stopped between its commit and its tables
            // may have left the origin's device as `error`: give it its snapshot-origin back.
            let new = Vg::from_tree(&tree).map_err(|e| e.to_string())?;
            let pvs = s.pv_numbers(vg);
            let layout = VgLayout {
                vg: &new,
                pv_dev: &pvs,
            };
            let restore = layout
                .activation(&snap.origin)
                .map_err(|e| e.to_string())
                .and_then(|w| converge(&w, &now).map_err(|e| e.to_string()))
                .and_then(|steps| execute(dm, &steps).map_err(|e| e.to_string()));
            if let Err(e) = restore {
                return Err(format!(
                    "{who}: merge withdrawn, but reloading {vg_name}/{}'s devices failed: {e}; lvchange --refresh {vg_name}/{} restores them",
                    snap.origin, snap.origin
                ));
            }
        }
        Ok(())
    })
}
