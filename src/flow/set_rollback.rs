//! `rewind rollback SET [--keep-current[=NAME]]`: a whole snapshot set rolled back at the next
//! boot (docs/SETS.md section 5); entry point [`run`].
//!
//! Every member is checked first (the set complete and not being made, no store overflowed,
//! each member as a single rollback is checked): one bad member and nothing is flagged, the
//! message names it. Then, under LVM's VG lock of every VG involved (name order), one commit
//! per VG flags every member there (`merging_store`, as `lvconvert --merge`) with the tag
//! `rewind_rollback`; a crash between two VGs' commits is completed by a rerun or by the
//! next boot (`plan::decide::sets_half_flagged`). The merges start at the next activation of
//! the origins (the next boot): all members together.
//!
//! `--keep-current` first takes a set of the same origins (the current state), each store at
//! least as large as the store of SET's member (the merge copies every chunk SET restores
//! into it first), so a later `rewind rollback NAME` rolls forward.

use std::collections::BTreeMap;

use super::Error;
use super::env::{Env, System};
use super::sets::{self, SetState, Tools};
use super::snapshot::{self, Taken};
use crate::lvm::assemble::FoundVg;
use crate::lvm::model::{SegmentKind, Snapshot, Vg};
use crate::lvm::setchange::mark_set_merging;
use crate::lvm::text::{self, Style};
use crate::lvm::thinchange::{PendingDelete, mark_thin_merging};
use crate::plan::decide::check_rollback;
use crate::plan::thinpool;
use crate::system::dm::DeviceMapper;
use crate::system::lock::VgLock;

/// How a set rollback ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetRollback {
    pub set: String,
    /// `VG/LV` of every member flagged by this run.
    pub flagged: Vec<String>,
    /// `VG/LV` of the members that were flagged already (a rerun).
    pub already: Vec<String>,
    /// The set of the current state taken first (`--keep-current`).
    pub kept: Option<Taken>,
    /// `--keep-current` on a rerun of a rollback cut short after some member was flagged:
    /// the set of the current state that the first run took (no new one can be taken of a
    /// flagged origin).
    pub kept_earlier: Option<String>,
}

/// The description of a `--keep-current` set: also how a rerun finds it.
fn keep_description(set: &str) -> String {
    format!("the state before the rollback to {set}")
}

/// The `--keep-current` set an earlier run of `rewind rollback SET` took before it was cut
/// short: complete, described as such, of the same origins (and named `keep`, if given).
fn earlier_keep(all: &[sets::SetView], view: &sets::SetView, keep: Option<&str>) -> Option<String> {
    let origins = |v: &sets::SetView| {
        let mut o: Vec<(String, Option<String>)> = v
            .members
            .iter()
            .map(|m| (m.vg.clone(), m.origin.clone()))
            .collect();
        o.sort();
        o
    };
    all.iter()
        .filter(|k| k.state == SetState::Ok && k.description == keep_description(&view.name))
        .filter(|k| keep.is_none_or(|n| k.name == n))
        .filter(|k| origins(k) == origins(view))
        .max_by_key(|k| k.time)
        .map(|k| k.name.clone())
}

/// `rewind rollback SET` on this system. `keep`: `--keep-current` (with its name, if given).
pub fn run(sys: &System, name: &str, keep: Option<Option<String>>) -> Result<SetRollback, Error> {
    let cfg = sys.config();
    let done = {
        let mut dm = sys.device_mapper().map_err(Error::dm_state)?;
        let mut tools = Tools::system(sys, &mut dm)?;
        rollback_set(&sys.env(), &mut tools, &cfg.snapshot, name, keep)
    };
    super::bootmenu::refresh(sys);
    done
}

/// Refuses the set as a whole, naming what is wrong.
fn check_set(env: &Env<'_>, tools: &mut Tools<'_>, name: &str) -> Result<sets::SetView, Error> {
    let s = env.scan()?;
    sets::tidy(env, tools, &s, None)?;
    let s = env.scan()?;
    let view = sets::views(&s, Some(tools.dm))?
        .into_iter()
        .find(|v| v.name == name)
        .ok_or_else(|| Error::Set(format!("no snapshot set {name} (rewind list shows them)")))?;
    let refuse = |why: String| {
        Error::Set(format!(
            "snapshot set {name} cannot be rolled back to: {why}; nothing flagged"
        ))
    };
    match view.state {
        SetState::Pending => return Err(refuse("it is still being made".into())),
        SetState::Incomplete => {
            return Err(refuse(format!(
                "it has {} of its {} members (one was removed, or its volume group is missing)",
                view.members.len(),
                view.members_declared.unwrap_or(0)
            )));
        }
        SetState::Lost => {
            let m = view
                .members
                .iter()
                .find(|m| m.state == sets::MemberState::Overflowed)
                .map(|m| format!("{}/{}", m.vg, m.snapshot))
                .unwrap_or_default();
            return Err(refuse(format!(
                "member {m} overflowed (its store filled up): the set is lost; rewind delete {name} frees its space"
            )));
        }
        SetState::Ok | SetState::Merging => {}
    }
    Ok(view)
}

fn is_thin(model: &Vg, lv: &str) -> bool {
    model.lv(lv).and_then(|l| l.thin()).is_some()
}

/// A thin member: refused as stock `lvconvert --merge` refuses it (`mark_thin_merging` tried
/// on the metadata; one flagged already passes), and when its pool is active, as a pool the
/// flag could not be carried out on: failed, `needs_check`, read-only, or its kernel
/// transaction id not the metadata's (one behind: a message LVM or rewind still owes it),
/// or a `delete` still owed by a thin finish (the pool tag).
fn check_thin_member(
    dm: &mut dyn DeviceMapper,
    vg: &FoundVg,
    model: &Vg,
    lv: &str,
) -> Result<(), String> {
    let who = format!("{}/{lv}", vg.name);
    let thin = model
        .lv(lv)
        .and_then(|l| l.thin())
        .ok_or_else(|| format!("{who} is not a thin volume"))?;
    if thin.merge.is_none() {
        let stamp = crate::lvm::change::Stamp {
            host: String::new(),
            time: 0,
        };
        mark_thin_merging(&vg.tree, lv, &stamp).map_err(|e| format!("{who}: {e}"))?;
    }
    let pool = thin.pool;
    if let Some(d) = PendingDelete::of_vg(model).iter().find(|d| d.pool == pool) {
        return Err(format!(
            "{who}: its thin pool {}/{pool} is still owed delete {} (rewind poll sends it)",
            vg.name, d.device_id
        ));
    }
    let tid = model
        .lv(pool)
        .and_then(|l| {
            l.segments.iter().find_map(|seg| match seg.kind {
                SegmentKind::ThinPool { transaction_id, .. } => Some(transaction_id),
                _ => None,
            })
        })
        .ok_or_else(|| format!("{who}: {}/{pool} is not a thin pool", vg.name))?;
    let tpool = super::snapshot::tpool_name(&vg.name, pool).map_err(|e| e.to_string())?;
    let live = super::env::live_now(dm).map_err(|e| e.to_string())?;
    if !live.iter().any(|l| l.name == tpool && l.table.is_some()) {
        // Not active: the boot that carries the merge out checks the pool as it lays it out.
        return Ok(());
    }
    let status = super::snapshot::pool_status(dm, &tpool).map_err(|e| e.to_string())?;
    let refused = |e: String| format!("{who}: its thin pool {}/{pool}: {e}", vg.name);
    thinpool::check(status.as_ref(), tid).map_err(|e| refused(e.to_string()))?;
    if let Some(s) = &status
        && s.transaction_id != tid
    {
        return Err(refused(format!(
            "its transaction id is {}, one behind the volume group metadata's {tid} (a message it is still owed)",
            s.transaction_id
        )));
    }
    Ok(())
}

/// The set rollback with `tools` (the host tests' fakes or the system's).
pub fn rollback_set(
    env: &Env<'_>,
    tools: &mut Tools<'_>,
    settings: &crate::config::Snapshot,
    name: &str,
    keep: Option<Option<String>>,
) -> Result<SetRollback, Error> {
    let view = check_set(env, tools, name)?;
    // Each member as a single rollback would be checked (the store's header, the origin).
    {
        let s = env.scan()?;
        for m in &view.members {
            let (vg, model) = super::env::usable_vg(&s, &m.vg)?;
            if is_thin(model, &m.snapshot) {
                check_thin_member(tools.dm, vg, model, &m.snapshot).map_err(|e| {
                    Error::Set(format!(
                        "snapshot set {name} cannot be rolled back to: member {e}; nothing flagged"
                    ))
                })?;
                continue;
            }
            let mut read = |v: &FoundVg, snap: &Snapshot| s.read_cow(v, snap);
            check_rollback(vg, model, &m.snapshot, &mut read).map_err(|e| {
                Error::Set(format!(
                    "snapshot set {name} cannot be rolled back to: member {e}; nothing flagged"
                ))
            })?;
        }
    }
    let mut kept = None;
    let mut kept_earlier = None;
    let to_flag: Vec<&sets::MemberView> = view
        .members
        .iter()
        .filter(|m| m.state != sets::MemberState::Merging)
        .collect();
    let some_flagged = to_flag.len() < view.members.len();
    if let Some(keep_name) = &keep
        && !to_flag.is_empty()
        && some_flagged
    {
        // Cut short between two VGs' commits: the flagged origins take no new snapshot; the
        // set of the current state is the one the cut run took.
        let all = sets::views(&env.scan()?, Some(tools.dm))?;
        let Some(k) = earlier_keep(&all, &view, keep_name.as_deref()) else {
            return Err(Error::Set(format!(
                "snapshot set {name} is partly flagged already and no set of the current state (--keep-current) from that run was found; run rewind rollback {name} without --keep-current to finish flagging it"
            )));
        };
        log::info!("snapshot set {k}, taken by the run cut short, keeps the current state");
        kept_earlier = Some(k);
    } else if let Some(keep_name) = keep
        && !to_flag.is_empty()
    {
        let mut min_extents = BTreeMap::new();
        let mut members = Vec::new();
        for m in &view.members {
            let origin = m.origin.clone().unwrap_or_default();
            let extent_bytes = {
                let s = env.scan()?;
                let (_, model) = super::env::usable_vg(&s, &m.vg)?;
                model.extent_size * 512
            };
            min_extents.insert(
                format!("{}/{origin}", m.vg),
                m.size_bytes / extent_bytes.max(1),
            );
            members.push(format!("{}/{origin}", m.vg));
        }
        let req = snapshot::Request {
            name: keep_name,
            description: keep_description(name),
            size: None,
            members,
            auto: false,
            pin: false,
            min_extents,
        };
        kept = Some(snapshot::take(env, tools, settings, &req)?);
    }

    // One commit per VG, in name order, under every VG's lock.
    let mut by_vg: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for m in &to_flag {
        by_vg
            .entry(m.vg.as_str())
            .or_default()
            .push(m.snapshot.as_str());
    }
    let mut _locks = Vec::new();
    for vg in by_vg.keys() {
        _locks.push(VgLock::exclusive(&env.lock_dir, vg, env.lock_timeout)?);
    }
    let s = env.scan()?;
    let stamp = crate::system::proc::stamp();
    let mut flagged = Vec::new();
    for (vg_name, cows) in &by_vg {
        let (vg, model) = super::env::usable_vg(&s, vg_name)?;
        for cow in cows {
            if is_thin(model, cow) {
                check_thin_member(tools.dm, vg, model, cow)
                    .map_err(|e| Error::Set(format!("snapshot set {name}: member {e}; stopped")))?;
                continue;
            }
            let mut read = |v: &FoundVg, snap: &Snapshot| s.read_cow(v, snap);
            check_rollback(vg, model, cow, &mut read)
                .map_err(|e| Error::Set(format!("snapshot set {name}: member {e}; stopped")))?;
        }
        let description = format!("Write from rewind: roll back to snapshot set {name}.");
        let tree = mark_set_merging(&vg.tree, cows, &description, &stamp)?;
        s.commit(vg, &text::print(&tree, Style::Disk), None)
            .map_err(|e| Error::commit(vg_name, "flagging the snapshot set's members", e))?;
        flagged.extend(cows.iter().map(|c| format!("{vg_name}/{c}")));
        tools.point("rollback-set-after-commit")?;
    }
    Ok(SetRollback {
        set: name.to_owned(),
        flagged,
        already: view
            .members
            .iter()
            .filter(|m| m.state == sets::MemberState::Merging)
            .map(|m| format!("{}/{}", m.vg, m.snapshot))
            .collect(),
        kept,
        kept_earlier,
    })
}
