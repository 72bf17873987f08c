//! `rewind rollback VG/SNAPSHOT [--mode origin|snapshot]` in the booted system; entry point
//! [`run`].
//!
//! The same checks as `rewind early` (`check_rollback`: a classic snapshot of a plain origin,
//! no other merge, writable VG, valid COW), then the merge flag is committed under LVM's VG
//! lock (invariant 1, 6). Like `lvconvert --merge`: an active origin that nothing has open
//! (nor its snapshot) is reloaded into the merge layout at once and `rewind poll` finishes it;
//! an origin in use merges at its next activation (the next boot for root); an inactive one at
//! its next activation.

use super::Error;
use super::env::{Env, System, device, is_merging, live_now, usable_vg};
use crate::lvm::assemble::FoundVg;
use crate::lvm::change::{mark_merging, mark_merging_as_snapshot};
use crate::lvm::layout::LvRef;
use crate::lvm::model::{Snapshot, Vg};
use crate::lvm::text::{self, Style};
use crate::plan::decide::check_rollback;
use crate::plan::devices::{DeviceSpec, VgLayout};
use crate::plan::steps::converge;
use crate::system::dm::DeviceMapper;
use crate::system::exec::execute;
use crate::system::failpoint;
use crate::system::scan::Scan;

/// Which name the merged volume takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The result keeps the origin's name and uuid.
    Origin,
    /// The result takes the snapshot's name and uuid; the origin must be unused, the
    /// snapshot may stay mounted; starts at once.
    Snapshot,
}

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

/// `rewind rollback`: on the system's device-mapper when there is one (without it the origin
/// mode only flags the merge; the snapshot mode refuses).
pub fn run(sys: &System, target: &LvRef, mode: Mode) -> Result<Rollback, Error> {
    let mut dm = sys.device_mapper_if_any();
    let dm = dm.as_mut().map(|d| d as &mut dyn DeviceMapper);
    let env = sys.env();
    match mode {
        Mode::Origin => rollback(&env, dm, &target.vg, &target.lv),
        Mode::Snapshot => rollback_snapshot(&env, dm, &target.vg, &target.lv),
    }
}

/// Commits the merge flag(s) of `tree` to `vg` (the caller holds the VG lock).
fn commit_flag(s: &Scan, vg: &FoundVg, tree: &crate::lvm::text::Section) -> Result<(), Error> {
    s.commit(vg, &text::print(tree, Style::Disk), None)
        .map_err(|source| Error::commit(&vg.name, "committing the merge flag", source))?;
    failpoint::hit("rollback-after-commit");
    Ok(())
}

/// `rewind rollback VG/SNAPSHOT --mode origin`.
pub fn rollback(
    env: &Env<'_>,
    dm: Option<&mut dyn DeviceMapper>,
    vg_name: &str,
    name: &str,
) -> Result<Rollback, Error> {
    env.locked(vg_name, |s| {
        let (vg, model) = usable_vg(s, vg_name)?;
        let mut read = |v: &FoundVg, snap: &Snapshot| s.read_cow(v, snap);
        let snap = match check_rollback(vg, model, name, &mut read)? {
            Some(snap) => {
                let snap = snap.clone();
                let tree = mark_merging(&vg.tree, &snap.cow, &crate::system::proc::stamp())?;
                commit_flag(s, vg, &tree)?;
                log::info!("{vg_name}/{}: merge flag committed", snap.cow);
                let new = Vg::from_tree(&tree)?;
                return start(s, vg, &new, &snap, dm);
            }
            None => model
                .snapshot(name)
                .cloned()
                .ok_or_else(|| Error::Lv {
                    lv: format!("{vg_name}/{name}"),
                    message: "no such snapshot".into(),
                })?,
        };
        if model.merges_as_snapshot(&snap) {
            return Err(Error::Lv {
                lv: format!("{vg_name}/{}", snap.cow),
                message: format!(
                    "already flagged to merge with --mode snapshot; run rewind rollback {vg_name}/{} --mode snapshot to start it",
                    snap.cow
                ),
            });
        }
        log::info!("{vg_name}/{}: already flagged to merge", snap.cow);
        start(s, vg, model, &snap, dm)
    })
}

/// The snapshot `--mode snapshot` merges: checked as for the origin mode (`Some` when it is
/// still to be flagged), or already flagged in snapshot mode (`None`).
fn snapshot_to_merge(
    s: &Scan,
    vg: &FoundVg,
    model: &Vg,
    name: &str,
) -> Result<(Snapshot, bool), Error> {
    let who = format!("{}/{name}", vg.name);
    let mut read = |v: &FoundVg, snap: &Snapshot| s.read_cow(v, snap);
    if let Some(snap) = check_rollback(vg, model, name, &mut read)? {
        return Ok((snap.clone(), true));
    }
    let snap = model.snapshot(name).cloned().ok_or_else(|| Error::Lv {
        lv: who,
        message: "no such snapshot".into(),
    })?;
    if !model.merges_as_snapshot(&snap) {
        return Err(Error::Lv {
            lv: format!("{}/{}", vg.name, snap.cow),
            message: format!(
                "already flagged to merge into {}/{} with --mode origin; nothing changed",
                vg.name, snap.origin
            ),
        });
    }
    Ok((snap, false))
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
) -> Result<Rollback, Error> {
    let who = format!("{vg_name}/{name}");
    let refused = |message: String| Error::Lv {
        lv: who.clone(),
        message,
    };
    let dm = dm.ok_or_else(|| {
        refused(
            "--mode snapshot needs device-mapper (the merge starts at once); nothing changed"
                .into(),
        )
    })?;
    env.locked(vg_name, |s| {
        let (vg, model) = usable_vg(s, vg_name)?;
        let (snap, to_flag) = snapshot_to_merge(s, vg, model, name)?;
        let others = model.snapshots_of(&snap.origin).count() - 1;
        if others > 0 {
            return Err(refused(format!(
                "{vg_name}/{} has {others} other snapshot(s); --mode snapshot needs the origin's only snapshot; nothing changed",
                snap.origin
            )));
        }
        let now = live_now(dm)?;
        if let Some(d) = device(&now, vg, model, &snap.origin)
            && d.open_count > 0
            && !is_merging(d)
        {
            return Err(refused(format!(
                "the origin {vg_name}/{} is in use ({} is open {} time(s)); --mode snapshot needs it unused (the snapshot may stay mounted); nothing changed",
                snap.origin, d.name, d.open_count
            )));
        }
        // The new metadata and the device plan, before anything is written.
        let (tree, new) = if to_flag {
            let tree = mark_merging_as_snapshot(&vg.tree, &snap.cow, &crate::system::proc::stamp())
                .map_err(|e| refused(format!("{e}; nothing changed")))?;
            let new = Vg::from_tree(&tree)?;
            (Some(tree), new)
        } else {
            (None, model.clone())
        };
        let wanted = activation(s, vg, &new, &snap.origin)
            .map_err(|e| refused(format!("{e}; nothing changed")))?;
        converge(&wanted, &now).map_err(|e| refused(format!("{e}; nothing changed")))?;
        if let Some(tree) = tree {
            commit_flag(s, vg, &tree)?;
            log::info!(
                "{who}: merge flag committed (snapshot mode: the result is named {})",
                snap.cow
            );
        } else {
            log::info!("{who}: already flagged to merge in snapshot mode");
        }
        // Plan again from what is live now, right before the steps.
        let now = live_now(dm)?;
        let steps = converge(&wanted, &now).map_err(|e| {
            refused(format!(
                "{e}; the flag is committed: run this again once that is resolved"
            ))
        })?;
        execute(dm, &steps).map_err(|e| {
            refused(format!(
                "loading the merge failed: {e}; the flag is committed: run this again, or the next boot's rewind early resumes it"
            ))
        })?;
        failpoint::hit("rollback-after-tables");
        Ok(Rollback::Started {
            origin: snap.origin,
        })
    })
}

/// The devices LVM's layout wants for `lv` of `model`, on the PVs the scan found.
pub(super) fn activation(
    s: &Scan,
    vg: &FoundVg,
    model: &Vg,
    lv: &str,
) -> Result<Vec<DeviceSpec>, crate::plan::devices::DevicesError> {
    let pvs = s.pv_numbers(vg);
    VgLayout {
        vg: model,
        pv_dev: &pvs,
    }
    .activation(lv)
}

/// Starts a flagged merge now if the origin is active and nothing holds it or its snapshot.
fn start(
    s: &Scan,
    vg: &FoundVg,
    model: &Vg,
    snap: &Snapshot,
    dm: Option<&mut dyn DeviceMapper>,
) -> Result<Rollback, Error> {
    let origin = snap.origin.clone();
    let Some(dm) = dm else {
        return Ok(Rollback::AtActivation { origin });
    };
    let now = live_now(dm)?;
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
    let wanted = activation(s, vg, model, &origin)?;
    let steps = converge(&wanted, &now)?;
    execute(dm, &steps).map_err(|e| Error::Lv {
        lv: format!("{}/{origin}", vg.name),
        message: format!(
            "loading the merge failed: {e}; the flag is committed, so the merge starts at the next activation"
        ),
    })?;
    failpoint::hit("rollback-after-tables");
    Ok(Rollback::Started { origin })
}
