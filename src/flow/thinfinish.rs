//! `rewind poll`'s finish of thin merges (entry point [`run`]), the way LVM's poller finishes
//! them (`tools/lvconvert_poll.c` `poll_thin_merge_progress`, `thin_merge_finish`,
//! `lib/metadata/lv_manip.c` `lv_remove_single`, `lib/metadata/thin_manip.c`
//! `update_thin_pool_lv`, libdm's `_thin_pool_node_send_messages`). A thin merge has nothing to
//! copy: it is done once the origin's live `thin` table uses the flagged snapshot's device id
//! (what `rewind early` or stock LVM loaded at activation). Then, under LVM's VG lock:
//!
//! 1. commit the metadata where the origin carries the snapshot's device and the snapshot is
//!    gone, the pool's `transaction_id` one up, and the pool tagged with the `delete` it is
//!    owed ([`finish_thin_merge`]; LVM keeps that message in memory only);
//! 2. send the pool `delete <old origin's id>` (ENODATA, already deleted, is fine, as libdm
//!    expects it) and `set_transaction_id <n> <n+1>`, then read the kernel's id back;
//! 3. commit again without the tag ([`clear_pending_delete`]; LVM's second commit).
//!
//! Each step looks at what the disks and the kernel show first, so a run killed between any
//! two of them is taken up at the next run: a flagged merge whose origin shows the
//! snapshot's id is finished (1); a pool tag whose kernel id is one behind gets its messages
//! (2); a tag whose kernel id has followed goes (3). Between 1 and 2 the kernel's id is one
//! behind the metadata's, which LVM and `rewind early` accept. A pool that is not active
//! keeps its tag until a run finds it active. When stock LVM finished the merge first, there
//! is nothing flagged here and `flow::notice` gives the notice.

use super::Error;
use super::env::{Env, live_now};
use super::poll::{Finished, commit};
use crate::lvm::assemble::FoundVg;
use crate::lvm::layout::{Layer, LvmId, dm_uuid};
use crate::lvm::model::Vg;
use crate::lvm::sets::SET;
use crate::lvm::text::Section;
use crate::lvm::thinchange::{PendingDelete, clear_pending_delete, finish_thin_merge};
use crate::plan::steps::Live;
use crate::plan::table::Target;
use crate::plan::thinpool::{self, ThinPoolStatus};
use crate::system::dm::{DeviceMapper, DmError};
use crate::system::failpoint;
use crate::system::lock::VgLock;
use crate::system::scan::Scan;

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ThinReport {
    pub finished: Vec<Finished>,
    /// Pool messages sent, as `VG/POOL: delete ID`.
    pub messages: Vec<String>,
    pub errors: Vec<String>,
}

/// Whether any live device is a thin volume or a thin pool (else there is nothing to do and
/// no scan is made).
pub fn any_thin(live: &[Live]) -> bool {
    live.iter().any(|l| {
        l.table.as_ref().is_some_and(|t| {
            t.lines
                .iter()
                .any(|x| matches!(x.target, Target::Thin { .. } | Target::ThinPool(_)))
        })
    })
}

/// The live device of LV `lv_id` (with `layer`) in VG `vg_id`.
fn live_of<'l>(
    live: &'l [Live],
    vg_id: &str,
    lv_id: &str,
    layer: Option<&str>,
) -> Option<&'l Live> {
    let (vg, lv) = (LvmId::parse(vg_id).ok()?, LvmId::parse(lv_id).ok()?);
    let layer = layer.map(|l| Layer::Other(l.to_owned()));
    let uuid = dm_uuid(&vg, &lv, layer.as_ref());
    live.iter()
        .find(|l| l.uuid.as_deref() == Some(uuid.as_str()))
}

/// The device id the live `thin` table of `l` uses.
fn live_thin_id(l: &Live) -> Option<u64> {
    match l.table.as_ref()?.lines.as_slice() {
        [line] => match line.target {
            Target::Thin { device_id, .. } => Some(device_id),
            _ => None,
        },
        _ => None,
    }
}

/// Origins of `model` whose flagged thin merge is live (the origin's table uses the
/// snapshot's device id), with that id.
fn live_merges(vg: &FoundVg, model: &Vg, live: &[Live]) -> Vec<String> {
    model
        .lvs
        .iter()
        .filter_map(|o| {
            let snap = model.thin_merge_into(&o.name)?.thin()?;
            let l = live_of(live, &vg.id, &o.id, None)?;
            (live_thin_id(l) == Some(snap.device_id)).then(|| o.name.clone())
        })
        .collect()
}

fn vg_err(vg: &str, message: String) -> Error {
    Error::Vg {
        vg: vg.to_owned(),
        message,
    }
}

fn find_vg<'s>(s: &'s Scan, vg_id: &str) -> Option<&'s FoundVg> {
    let want = LvmId::parse(vg_id).ok()?;
    s.assembly
        .vgs
        .iter()
        .find(|v| LvmId::parse(&v.id).is_ok_and(|id| id == want))
}

/// The VG `vg_id` from a fresh scan, usable for a change.
fn fresh(env: &Env<'_>, vg_id: &str, name: &str) -> Result<(Scan, FoundVg, Vg), Error> {
    let s = env.scan()?;
    let vg = find_vg(&s, vg_id)
        .ok_or_else(|| vg_err(name, "gone from the scan".into()))?
        .clone();
    if let Some(p) = vg.blocking_problem() {
        return Err(vg_err(&vg.name, p.to_string()));
    }
    let model = vg
        .model
        .clone()
        .ok_or_else(|| vg_err(&vg.name, "metadata not usable".into()))?;
    Ok((s, vg, model))
}

/// Finds the thin merges to finish and the pool messages owed in every VG, and does them.
pub fn run(env: &mut Env<'_>, dm: &mut dyn DeviceMapper, live: &[Live]) -> ThinReport {
    let mut report = ThinReport::default();
    if !any_thin(live) {
        return report;
    }
    let s = match env.scan() {
        Ok(s) => s,
        Err(e) => {
            report.errors.push(e.to_string());
            return report;
        }
    };
    for vg in &s.assembly.vgs {
        let Some(model) = vg.model.as_ref() else {
            continue;
        };
        if live_merges(vg, model, live).is_empty() && PendingDelete::of_vg(model).is_empty() {
            continue;
        }
        if let Err(e) = finish_vg(env, dm, &vg.id, &vg.name, &mut report) {
            log::error!("{}: finishing thin merges: {e}", vg.name);
            report.errors.push(format!("{}: {e}", vg.name));
        }
    }
    report
}

/// Steps 1 to 3 for every thin merge and owed message of one VG, under its lock: first what a
/// killed run left owed, then one merge at a time, each commit followed by its own messages
/// and second commit before the next merge is committed. LVM's poller finishes one origin per
/// `lvpoll` the same way, and a pool takes one transaction at a time: the kernel's id may be
/// one behind the metadata's (LVM accepts that at activation), never two. Two merges in one
/// pool (a thin set's members) committed back to back would leave the kernel two behind,
/// which neither LVM nor [`send_owed`] accepts.
fn finish_vg(
    env: &mut Env<'_>,
    dm: &mut dyn DeviceMapper,
    vg_id: &str,
    name: &str,
    report: &mut ThinReport,
) -> Result<(), Error> {
    let _lock = VgLock::exclusive(&env.lock_dir, name, env.lock_timeout)?;
    loop {
        // Steps 2 and 3 for every owed message; the pools left owing (not active).
        let owing = settle_owed(env, dm, vg_id, name, report)?;
        // Step 1 for the next merge whose pool owes nothing.
        let (s, vg, model) = fresh(env, vg_id, name)?;
        let live = live_now(dm)?;
        let Some(origin) = live_merges(&vg, &model, &live).into_iter().find(|o| {
            model
                .lv(o)
                .and_then(|l| l.thin())
                .is_some_and(|t| !owing.iter().any(|p| p == t.pool))
        }) else {
            break;
        };
        report
            .finished
            .push(commit_finish(env, &s, &vg, &model, &origin)?);
    }
    Ok(())
}

/// Steps 2 and 3 for every message the VG's pools are owed (this run's and a killed run's),
/// oldest transaction first. Returns the pools whose messages wait for the pool to be active.
fn settle_owed(
    env: &mut Env<'_>,
    dm: &mut dyn DeviceMapper,
    vg_id: &str,
    name: &str,
    report: &mut ThinReport,
) -> Result<Vec<String>, Error> {
    let mut owing = Vec::new();
    let (_, _, model) = fresh(env, vg_id, name)?;
    let mut owed = PendingDelete::of_vg(&model);
    owed.sort_by_key(|d| d.transaction_id);
    for delete in owed {
        let (_, _, model) = fresh(env, vg_id, name)?;
        match send_owed(dm, vg_id, name, &model, &delete)? {
            Owed::Sent => report.messages.push(format!(
                "{name}/{}: delete {}",
                delete.pool, delete.device_id
            )),
            Owed::AlreadyThere => {}
            Owed::Inactive => {
                log::warn!(
                    "{name}/{}: thin pool not active; its delete {} is sent by a run that finds it active (the next boot's)",
                    delete.pool,
                    delete.device_id
                );
                owing.push(delete.pool.clone());
                continue;
            }
        }
        let (s, vg, _) = fresh(env, vg_id, name)?;
        let (tree, _) = remodel(&vg, clear_pending_delete(&vg.tree, &delete, &stamp()))?;
        commit(
            env,
            &s,
            &vg,
            &tree,
            format!("committing pool {} without its owed delete", delete.pool),
        )?;
        log::info!(
            "{name}/{}: the kernel's transaction id is {}, as the metadata's",
            delete.pool,
            delete.transaction_id
        );
    }
    Ok(owing)
}

fn stamp() -> crate::lvm::change::Stamp {
    crate::system::proc::stamp()
}

fn remodel(
    vg: &FoundVg,
    changed: Result<Section, crate::lvm::change::ChangeError>,
) -> Result<(Section, Vg), Error> {
    let tree = changed.map_err(|e| vg_err(&vg.name, e.to_string()))?;
    let model = Vg::from_tree(&tree).map_err(|e| vg_err(&vg.name, e.to_string()))?;
    Ok((tree, model))
}

/// Step 1 for `origin`: one commit, with the set's rolled-back note when the snapshot was a
/// set member.
fn commit_finish(
    env: &mut Env<'_>,
    s: &Scan,
    vg: &FoundVg,
    model: &Vg,
    origin: &str,
) -> Result<Finished, Error> {
    let stamp = stamp();
    let set = model
        .thin_merge_into(origin)
        .and_then(|l| l.tags.iter().find_map(|t| t.strip_prefix(SET)))
        .map(str::to_owned);
    let changed = finish_thin_merge(&vg.tree, origin, &stamp).and_then(|(mut t, done)| {
        if let Some(set) = &set {
            crate::lvm::setchange::note_rolled_back(&mut t, &vg.name, origin, set, stamp.time)?;
        }
        Ok((t, done))
    });
    let (tree, done) = changed.map_err(|e| vg_err(&vg.name, e.to_string()))?;
    commit(
        env,
        s,
        vg,
        &tree,
        format!("committing {origin} with {}'s device", done.snapshot),
    )?;
    log::info!(
        "{}/{}: thin merge into {}/{origin} finished in the metadata: {origin} carries its device, {} is gone; the pool owes delete {}{}",
        vg.name,
        done.snapshot,
        vg.name,
        done.snapshot,
        done.delete.device_id,
        if done.orphaned.is_empty() {
            String::new()
        } else {
            format!(
                " ({} no longer name {origin} as their origin: the volume they were taken of is the one deleted)",
                done.orphaned.join(", ")
            )
        }
    );
    super::poll::announce_finished(env, vg, model, origin, set.as_deref());
    failpoint::hit("thin-after-commit");
    Ok(Finished::Committed {
        vg: vg.name.clone(),
        origin: origin.to_owned(),
        snapshot: done.snapshot,
    })
}

fn pool_status(dm: &mut dyn DeviceMapper, device: &str) -> Result<Option<ThinPoolStatus>, Error> {
    let lines = dm.status(device).map_err(Error::dm_state)?;
    let line = lines
        .first()
        .filter(|l| l.target_type == "thin-pool")
        .ok_or_else(|| Error::Device {
            device: device.to_owned(),
            message: "no thin-pool status".into(),
        })?;
    thinpool::parse_status(&line.params).map_err(|e| Error::Device {
        device: device.to_owned(),
        message: e.to_string(),
    })
}

/// What step 2 found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owed {
    /// `delete` and `set_transaction_id` sent now.
    Sent,
    /// The kernel's id has followed already (a killed run sent them).
    AlreadyThere,
    /// The pool's `-tpool` device is not live: nothing to send to.
    Inactive,
}

/// Step 2: sends the pool what it is owed when its kernel id is one behind. An error leaves
/// the tag for the next run.
pub(crate) fn send_owed(
    dm: &mut dyn DeviceMapper,
    vg_id: &str,
    vg: &str,
    model: &Vg,
    delete: &PendingDelete,
) -> Result<Owed, Error> {
    let pool = model
        .lv(&delete.pool)
        .ok_or_else(|| vg_err(vg, format!("no pool {}", delete.pool)))?;
    let live = live_now(dm)?;
    let Some(device) = live_of(&live, vg_id, &pool.id, Some("tpool")).map(|l| l.name.clone())
    else {
        return Ok(Owed::Inactive);
    };
    let metadata = pool
        .segments
        .iter()
        .find_map(|s| match s.kind {
            crate::lvm::model::SegmentKind::ThinPool { transaction_id, .. } => Some(transaction_id),
            _ => None,
        })
        .unwrap_or_default();
    let status = pool_status(dm, &device)?;
    let Some(st) = status.as_ref() else {
        return Err(Error::Device {
            device,
            message: "the kernel reports the pool failed; nothing sent".into(),
        });
    };
    if st.transaction_id >= delete.transaction_id {
        return Ok(Owed::AlreadyThere);
    }
    if st.transaction_id + 1 != delete.transaction_id || metadata != delete.transaction_id {
        return Err(Error::Device {
            device,
            message: format!(
                "kernel transaction id {}, metadata {metadata}, owed delete {} for {}: not in step as lvm keeps them; nothing sent",
                st.transaction_id, delete.device_id, delete.transaction_id
            ),
        });
    }
    thinpool::check(status.as_ref(), metadata).map_err(|e| Error::Device {
        device: device.clone(),
        message: format!("{e}; nothing sent"),
    })?;
    match dm.message(&device, &format!("delete {}", delete.device_id)) {
        Ok(()) | Err(DmError::NoData { .. }) => {}
        Err(e) => return Err(Error::dm_state(e)),
    }
    failpoint::hit("thin-after-delete");
    dm.message(
        &device,
        &format!(
            "set_transaction_id {} {}",
            st.transaction_id, delete.transaction_id
        ),
    )
    .map_err(Error::dm_state)?;
    let after = pool_status(dm, &device)?;
    if after.as_ref().map(|s| s.transaction_id) != Some(delete.transaction_id) {
        return Err(Error::Device {
            device,
            message: format!(
                "transaction id does not read back as {}",
                delete.transaction_id
            ),
        });
    }
    log::info!(
        "{device}: delete {} and set_transaction_id {} {} sent",
        delete.device_id,
        st.transaction_id,
        delete.transaction_id
    );
    failpoint::hit("thin-after-messages");
    Ok(Owed::Sent)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::flow::notice::{Judgement, MergeRecord, judge};
    use crate::lvm::change::Stamp;
    use crate::lvm::model::Vg;
    use crate::lvm::text::parse;
    use crate::lvm::thinchange::{clear_pending_delete, finish_thin_merge};

    const THIN: &str = include_str!("../../tests/fixtures/text/thin.vg");

    fn found(text: &str) -> crate::lvm::assemble::FoundVg {
        let tree = parse(text.as_bytes()).unwrap();
        let model = Vg::from_tree(&tree).unwrap();
        crate::lvm::assemble::FoundVg {
            name: model.name.clone(),
            id: model.id.clone(),
            seqno: model.seqno,
            text: text.as_bytes().to_vec(),
            tree,
            model: Some(model),
            members: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// `rewind early`'s record of a flagged thin merge, judged against the metadata: pending
    /// while flagged, finished elsewhere once the merge is finished (by stock LVM: its finish
    /// leaves what rewind's leaves once the pool's tag is dropped).
    #[test]
    fn a_thin_merge_is_recorded_and_noticed_when_finished() {
        let vg = found(THIN);
        let model = vg.model.clone().unwrap();
        let rec = MergeRecord::of(&vg, &model, "root", 1).expect("a thin merge is recorded");
        assert_eq!(
            (rec.origin.as_str(), rec.snapshot.as_str()),
            ("root", "snap1")
        );
        assert!(matches!(judge(&rec, &model, false), Judgement::Pending(_)));
        let stamp = Stamp::new("t", 2);
        let (t, done) = finish_thin_merge(&vg.tree, "root", &stamp).unwrap();
        let t = clear_pending_delete(&t, &done.delete, &stamp).unwrap();
        let finished = Vg::from_tree(&t).unwrap();
        assert_eq!(
            judge(&rec, &finished, false),
            Judgement::FinishedElsewhere {
                vg: "tvg".into(),
                origin: "root".into()
            }
        );
        // Nothing flagged: no record.
        assert!(MergeRecord::of(&vg, &finished, "root", 1).is_none());
    }
}
