//! `rewind cancel VG/SNAPSHOT`: withdraws a flagged merge that has not started; entry point
//! [`run`].
//!
//! Once the kernel has begun (a live `snapshot-merge` table) the origin already holds part of
//! the snapshot's data, so it is refused; so is an inactive origin, where rewind cannot tell
//! whether a merge began at an earlier activation (invariant 2: never show a half-merged
//! origin).

use super::Error;
use super::env::{Env, System, device, is_merging, live_now, usable_vg};
use super::rollback::activation;
use crate::lvm::change::unmark_merging;
use crate::lvm::layout::LvRef;
use crate::lvm::model::Vg;
use crate::lvm::text::{self, Style};
use crate::plan::decide::Refusal;
use crate::plan::steps::{Live, converge};
use crate::system::dm::DeviceMapper;
use crate::system::exec::execute;
use crate::system::failpoint;

/// `rewind cancel` on the system's device-mapper (without one it refuses: it cannot tell
/// whether the merge has begun).
pub fn run(sys: &System, target: &LvRef) -> Result<(), Error> {
    let mut dm = sys.device_mapper_if_any();
    let dm = dm.as_mut().map(|d| d as &mut dyn DeviceMapper);
    cancel(&sys.env(), dm, &target.vg, &target.lv)
}

/// Withdraws the merge flag of `vg_name/name` (under LVM's VG lock).
pub fn cancel(
    env: &Env<'_>,
    dm: Option<&mut dyn DeviceMapper>,
    vg_name: &str,
    name: &str,
) -> Result<(), Error> {
    let who = format!("{vg_name}/{name}");
    let refused = |message: String| Error::Lv {
        lv: who.clone(),
        message,
    };
    env.locked(vg_name, |s| {
        let (vg, model) = usable_vg(s, vg_name)?;
        let snap = model.snapshot(name).ok_or_else(|| match model.lv(name) {
            Some(_) => Refusal::NotASnapshot { lv: who.clone() },
            None => Refusal::NoSuchLv { lv: who.clone() },
        })?;
        if !snap.merging {
            return Err(Error::NotFlagged { lv: who.clone() });
        }
        let dm = dm.ok_or_else(|| {
            refused("device-mapper is not available, so rewind cannot tell whether the merge has begun; not cancelled".into())
        })?;
        let now = live_now(dm)?;
        not_started(&now, vg, model, snap).map_err(refused)?;
        let tree = unmark_merging(&vg.tree, name, &crate::system::proc::stamp())?;
        s.commit(vg, &text::print(&tree, Style::Disk), None)
            .map_err(|source| Error::commit(vg_name, "committing", source))?;
        failpoint::hit("cancel-after-commit");
        if model.merges_as_snapshot(snap) {
            // A run of `rollback --mode snapshot` stopped between its commit and its tables
            // may have left the origin's device as `error`: give it its snapshot-origin back.
            let new = Vg::from_tree(&tree)?;
            let mut restore = || -> Result<(), Error> {
                let wanted = activation(s, vg, &new, &snap.origin)?;
                execute(dm, &converge(&wanted, &now)?)?;
                Ok(())
            };
            if let Err(e) = restore() {
                return Err(refused(format!(
                    "merge withdrawn, but reloading {vg_name}/{}'s devices failed: {e}; lvchange --refresh {vg_name}/{} restores them",
                    snap.origin, snap.origin
                )));
            }
        }
        Ok(())
    })
}

/// Why the merge of `snap` may have begun, if it may have: its device (snapshot mode) or its
/// origin's shows `snapshot-merge`, or the origin is not active.
fn not_started(
    now: &[Live],
    vg: &crate::lvm::assemble::FoundVg,
    model: &Vg,
    snap: &crate::lvm::model::Snapshot,
) -> Result<(), String> {
    let vg_name = &vg.name;
    if let Some(d) = device(now, vg, model, &snap.cow).filter(|d| is_merging(d)) {
        return Err(format!(
            "the merge has started ({} shows snapshot-merge, snapshot mode): the origin already holds part of the snapshot's data, so it cannot be withdrawn; let it finish (rewind poll)",
            d.name
        ));
    }
    match device(now, vg, model, &snap.origin) {
        Some(d) if is_merging(d) => Err(format!(
            "the merge into {vg_name}/{} has started ({} shows snapshot-merge): the origin already holds part of the snapshot's data, so it cannot be withdrawn; let it finish (rewind poll)",
            snap.origin, d.name
        )),
        Some(_) => Ok(()),
        None => Err(format!(
            "origin {vg_name}/{} is not active, so rewind cannot tell whether a merge began at an earlier activation; not cancelled",
            snap.origin
        )),
    }
}
