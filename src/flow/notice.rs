//! "Rollback complete" whichever tool finishes a merge (invariant 6); entry point [`run`].
//!
//! `rewind early` leaves a record under `/run/rewind/.merges/` (tmpfs, moved to the booted
//! system at switch_root; a set name cannot start with '.', so no `rewind mount` directory
//! collides) for every merge it sets up or finds running: the VG, origin and snapshot by name
//! and id, and the snapshot's set. When stock LVM2 in the initramfs finishes the merge first
//! (its poller removes the snapshot, tags and all), `rewind poll` finds no merge to finish;
//! this pass, run after its watch, reads the records and, for a merge that LVM finished,
//! writes what poll's own finish writes: the origin's `rewind_rolled_back_TIME_SET` tag (one
//! metadata commit under LVM's VG lock), the journal message and the login note. A record is
//! dropped once its merge is accounted for (finished by either tool, cancelled, or run in
//! snapshot mode); in doubt (VG not found or not usable, origin gone, merge still running)
//! nothing changes and the record stays. Records live in `/run`: a reboot forgets them, and
//! the next `rewind early` records again whatever merge is still flagged.

use super::Error;
use super::env::{Env, is_merging, live_now};
use crate::lvm::assemble::FoundVg;
use crate::lvm::change::Stamp;
use crate::lvm::layout::{LvmId, dm_uuid};
use crate::lvm::model::{Lv, Vg};
use crate::lvm::sets::{ROLLED_BACK, SET, rolled_back};
use crate::lvm::text::{self, Style};
use crate::plan::steps::Live;
use crate::system::dm::DeviceMapper;
use crate::system::lock::VgLock;
use crate::system::state;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The records' directory, under the root.
pub const DIR: &str = "run/rewind/.merges";

/// One merge `rewind early` saw set up: what the poller needs to notice its end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeRecord {
    pub vg: String,
    pub vg_id: String,
    pub origin: String,
    pub origin_id: String,
    /// The snapshot's name (its COW LV, or the thin snapshot LV).
    pub snapshot: String,
    pub snapshot_id: String,
    /// The snapshot set the snapshot belongs to, from its tags.
    pub set: Option<String>,
    /// When `rewind early` recorded it (Unix time).
    pub since: i64,
}

impl MergeRecord {
    /// The record of the merge of `origin` in `vg`, when the metadata flags one.
    pub fn of(vg: &FoundVg, model: &Vg, origin: &str, since: i64) -> Option<MergeRecord> {
        let o = model.lv(origin)?;
        let snapshot = merging_into(model, o)?;
        let snap = model.lv(&snapshot)?;
        let set = snap
            .tags
            .iter()
            .find_map(|t| t.strip_prefix(SET))
            .map(str::to_owned);
        Some(MergeRecord {
            vg: vg.name.clone(),
            vg_id: vg.id.clone(),
            origin: origin.to_owned(),
            origin_id: o.id.clone(),
            snapshot,
            snapshot_id: snap.id.clone(),
            set,
            since,
        })
    }

    /// The file name: one record per origin (an origin merges one snapshot at a time).
    fn file_name(&self) -> String {
        file_name(&self.vg_id, &self.origin_id)
    }
}

fn file_name(vg_id: &str, origin_id: &str) -> String {
    format!("{vg_id}_{origin_id}.json")
}

/// The snapshot merging into `origin`: a classic one (`merging_store`) or a thin one (whose
/// segment's `merge` names `origin`).
fn merging_into(model: &Vg, origin: &Lv) -> Option<String> {
    if let Some(s) = model.merging_snapshot_of(&origin.name) {
        return Some(s.cow.clone());
    }
    model.thin_merge_into(&origin.name).map(|l| l.name.clone())
}

/// Writes `rec` under `root` unless a record of that origin is there already (a rerun of
/// `rewind early` keeps the first one's time). Written whole or not at all.
pub fn write(root: &Path, rec: &MergeRecord) -> std::io::Result<()> {
    let path = root.join(DIR).join(rec.file_name());
    let json = serde_json::to_vec_pretty(rec).map_err(std::io::Error::other)?;
    state::write_new(&path, &json).map(drop)
}

/// Drops the record of `origin_id`'s merge in VG `vg_id`, if any: `rewind poll` finished that
/// merge itself and gave its own notice.
pub fn forget(root: &Path, vg_id: &str, origin_id: &str) {
    drop_record(&root.join(DIR).join(file_name(vg_id, origin_id)));
}

/// Every record under `root` with its file; an unreadable one is logged and skipped.
pub fn read_all(root: &Path) -> Vec<(PathBuf, MergeRecord)> {
    let mut out: Vec<(PathBuf, MergeRecord)> = Vec::new();
    for path in state::list(&root.join(DIR), "json") {
        match state::read_bytes(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        {
            Ok(r) => out.push((path, r)),
            Err(e) => log::warn!("{}: unreadable merge record: {e}", path.display()),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn drop_record(path: &Path) {
    if let Err(e) = state::remove(path) {
        log::warn!("{}: {e}", path.display());
    }
}

/// What the metadata and the kernel say about a recorded merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// Still merging (or flagged and not started): keep the record, change nothing.
    Pending(String),
    /// In doubt: keep the record, change nothing, say why.
    Doubt(String),
    /// The origin already carries this rollback's tag (poll finished it, or an earlier
    /// pass noticed it): drop the record.
    Noted,
    /// The snapshot is still there and no longer flagged: the merge was cancelled.
    Cancelled,
    /// Merged in snapshot mode (the origin took the snapshot's name and id): poll's finish
    /// of that mode writes no set note; drop the record.
    MergedAsSnapshot,
    /// Finished by another tool (stock LVM2): note it under the current names, then drop.
    FinishedElsewhere { vg: String, origin: String },
}

fn lv_by_id<'m>(model: &'m Vg, id: &str) -> Option<&'m Lv> {
    let want = LvmId::parse(id).ok()?;
    model
        .lvs
        .iter()
        .find(|l| LvmId::parse(&l.id).is_ok_and(|x| x == want))
}

/// Judges `rec` against the VG's metadata (`model`, found by the record's VG id, so a renamed
/// VG is still the same VG) and whether the origin's live device still shows a merge table.
pub fn judge(rec: &MergeRecord, model: &Vg, origin_live_merging: bool) -> Judgement {
    let snap = lv_by_id(model, &rec.snapshot_id);
    let Some(origin) = lv_by_id(model, &rec.origin_id) else {
        if let Some(s) = snap
            && model.snapshot(&s.name).is_none()
            && s.thin().and_then(|t| t.origin).is_none()
        {
            return Judgement::MergedAsSnapshot;
        }
        return Judgement::Doubt(format!(
            "{}/{}: the origin {} is gone from the metadata; the record is kept",
            model.name, rec.snapshot, rec.origin
        ));
    };
    let merging = merging_into(model, origin);
    if let Some(s) = snap {
        return if merging.as_deref() == Some(s.name.as_str()) {
            Judgement::Pending(format!(
                "{}/{}: still merging into {}",
                model.name, s.name, origin.name
            ))
        } else if merging.is_none() {
            Judgement::Cancelled
        } else {
            Judgement::Doubt(format!(
                "{}/{}: another snapshot merges into it now; the record is kept",
                model.name, origin.name
            ))
        };
    }
    if let Some(other) = merging {
        return Judgement::Doubt(format!(
            "{}/{}: {other} merges into it now; the record of {} is kept",
            model.name, origin.name, rec.snapshot
        ));
    }
    if origin_live_merging {
        return Judgement::Pending(format!(
            "{}/{}: the metadata has no snapshot but the device still shows a merge table",
            model.name, origin.name
        ));
    }
    if let Some(set) = &rec.set
        && rolled_back(&origin.tags).is_some_and(|(s, t)| &s == set && t >= rec.since)
    {
        return Judgement::Noted;
    }
    Judgement::FinishedElsewhere {
        vg: model.name.clone(),
        origin: origin.name.clone(),
    }
}

/// What one pass noticed: merges another tool finished, in `VG/ORIGIN` form with the set.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Noticed {
    pub finished_elsewhere: Vec<(String, Option<String>)>,
    /// Records kept (pending or in doubt), with why.
    pub kept: Vec<String>,
    /// Errors (the record is kept for the next pass).
    pub errors: Vec<String>,
}

fn find_by_id<'s>(vgs: &'s [FoundVg], id: &str) -> Option<&'s FoundVg> {
    let want = LvmId::parse(id).ok()?;
    vgs.iter()
        .find(|v| LvmId::parse(&v.id).is_ok_and(|x| x == want))
}

/// Whether the origin of `rec` has a live device with a merge table.
fn origin_live_merging(rec: &MergeRecord, live: &[Live]) -> bool {
    let (Ok(vg), Ok(lv)) = (LvmId::parse(&rec.vg_id), LvmId::parse(&rec.origin_id)) else {
        return false;
    };
    let uuid = dm_uuid(&vg, &lv, None);
    live.iter()
        .any(|l| l.uuid.as_deref() == Some(uuid.as_str()) && is_merging(l))
}

/// The judgement of `rec` from a scan: `Doubt` when its VG is not there or not usable.
fn judge_in(vgs: &[FoundVg], rec: &MergeRecord, live: &[Live]) -> (Judgement, Option<String>) {
    let Some(vg) = find_by_id(vgs, &rec.vg_id) else {
        return (
            Judgement::Doubt(format!(
                "{}: no volume group with id {} (removed, or a PV missing); the record of {}/{} is kept",
                rec.vg, rec.vg_id, rec.origin, rec.snapshot
            )),
            None,
        );
    };
    if let Some(p) = vg.blocking_problem() {
        return (
            Judgement::Doubt(format!("{}: {p}; nothing changed", vg.name)),
            None,
        );
    }
    let Some(model) = vg.model.as_ref() else {
        return (
            Judgement::Doubt(format!("{}: metadata not usable; nothing changed", vg.name)),
            None,
        );
    };
    (
        judge(rec, model, origin_live_merging(rec, live)),
        Some(vg.name.clone()),
    )
}

/// The notice of a merge another tool finished: the journal, and the login note for a set.
fn announce(root: &Path, vg: &str, origin: &str, rec: &MergeRecord) {
    match &rec.set {
        Some(set) => {
            let text = format!(
                "rollback complete: {vg}/{origin} is back at snapshot set {set} (its merge was finished by lvm)"
            );
            log::warn!("{text}");
            crate::system::motd::note(root, &text);
        }
        None => log::info!(
            "{vg}/{origin}: the merge of {} is finished (the metadata no longer has the snapshot)",
            rec.snapshot
        ),
    }
}

/// Writes the rolled-back tag for `rec` under LVM's lock on `vg` (the VG's current name):
/// scan again, judge again, one commit. Returns whether the note was written now (false: the
/// fresh look no longer says "finished elsewhere", nothing was changed).
fn note_under_lock(
    env: &mut Env<'_>,
    dm: &mut dyn DeviceMapper,
    vg_name: &str,
    rec: &MergeRecord,
    set: &str,
) -> Result<bool, Error> {
    let _lock = VgLock::exclusive(&env.lock_dir, vg_name, env.lock_timeout)?;
    let s = env.scan()?;
    let live = live_now(dm)?;
    let (j, _) = judge_in(&s.assembly.vgs, rec, &live);
    let Judgement::FinishedElsewhere { vg: name, origin } = j else {
        log::info!(
            "{vg_name}/{}: under the lock: {j:?}; nothing written",
            rec.origin
        );
        return Ok(false);
    };
    let Some(vg) = find_by_id(&s.assembly.vgs, &rec.vg_id) else {
        return Ok(false);
    };
    let model = vg.model.as_ref().ok_or_else(|| Error::Vg {
        vg: name.clone(),
        message: "metadata not usable".into(),
    })?;
    let stamp = crate::system::proc::stamp();
    let tree = note_tree(vg, model, &origin, set, &stamp)?;
    s.commit(vg, &text::print(&tree, Style::Disk), env.hook())
        .map_err(|source| {
            Error::commit(
                &name,
                format!("noting on {origin} its rollback to set {set}"),
                source,
            )
        })?;
    Ok(true)
}

/// The metadata of `vg` with `origin` tagged as rolled back to `set` now (the earlier
/// rolled-back tags replaced), seqno + 1.
fn note_tree(
    vg: &FoundVg,
    model: &Vg,
    origin: &str,
    set: &str,
    stamp: &Stamp,
) -> Result<text::Section, Error> {
    let vg_err = |e: crate::lvm::change::ChangeError| Error::Vg {
        vg: vg.name.clone(),
        message: e.to_string(),
    };
    let old: Vec<String> = model
        .lv(origin)
        .map(|l| {
            l.tags
                .iter()
                .filter(|t| t.starts_with(ROLLED_BACK))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let tag = format!("{ROLLED_BACK}{}_{set}", stamp.time);
    let remove: Vec<(&str, &str)> = old.iter().map(|t| (origin, t.as_str())).collect();
    crate::lvm::setchange::retag(
        &vg.tree,
        &[(origin, tag.as_str())],
        &remove,
        &format!("rewind poll: {origin} rolled back to set {set} (merge finished by lvm)"),
        stamp,
    )
    .map_err(vg_err)
}

/// Goes over every record under `state` once (no scan when there is none); the login note
/// goes under `state` too (the booted system's root; tests give a directory of their own).
pub fn run(env: &mut Env<'_>, dm: &mut dyn DeviceMapper, state: &Path) -> Noticed {
    let mut out = Noticed::default();
    let records = read_all(state);
    if records.is_empty() {
        return out;
    }
    let (s, live) = match env.scan().and_then(|s| Ok((s, live_now(dm)?))) {
        Ok(x) => x,
        Err(e) => {
            out.errors.push(e.to_string());
            return out;
        }
    };
    for (path, rec) in records {
        let (j, vg_name) = judge_in(&s.assembly.vgs, &rec, &live);
        match j {
            Judgement::Pending(why) | Judgement::Doubt(why) => {
                log::info!("{why}");
                out.kept.push(why);
            }
            Judgement::Noted => drop_record(&path),
            Judgement::Cancelled => {
                log::info!(
                    "{}/{}: its merge into {} was cancelled; record dropped",
                    rec.vg,
                    rec.snapshot,
                    rec.origin
                );
                drop_record(&path);
            }
            Judgement::MergedAsSnapshot => {
                log::info!(
                    "{}/{}: merged in snapshot mode; record dropped",
                    rec.vg,
                    rec.snapshot
                );
                drop_record(&path);
            }
            Judgement::FinishedElsewhere { vg, origin } => {
                let written = match &rec.set {
                    None => Ok(true),
                    Some(set) => {
                        note_under_lock(env, dm, vg_name.as_deref().unwrap_or(&vg), &rec, set)
                    }
                };
                match written {
                    Ok(true) => {
                        announce(state, &vg, &origin, &rec);
                        out.finished_elsewhere
                            .push((format!("{vg}/{origin}"), rec.set.clone()));
                        drop_record(&path);
                    }
                    Ok(false) => out.kept.push(format!("{vg}/{origin}: looked again")),
                    Err(e) => {
                        log::error!("{vg}/{origin}: noting the finished rollback failed: {e}");
                        out.errors.push(e.to_string());
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lvm::testvg::{found, linear, snapshot, vg_text};

    const ROOT: &str = "Root00-aaaa-bbbb-cccc-dddd-eeee-ffffff";
    const PRE: &str = "Pre000-aaaa-bbbb-cccc-dddd-eeee-ffffff";

    fn model(lvs: &[String]) -> Vg {
        found(vg_text("vg0", 7, lvs)).model.expect("model")
    }

    fn root(tags: &[&str]) -> String {
        linear("root", "Root00", true, tags, &[(0, 10, 0)])
    }

    fn pre() -> String {
        linear("pre", "Pre000", false, &["rewind_set_s1"], &[(0, 2, 10)])
    }

    fn merging() -> Vec<String> {
        vec![
            root(&[]),
            pre(),
            snapshot("snapshot0", "Snap00", "root", 10, 8, "pre", true),
        ]
    }

    fn rec() -> MergeRecord {
        let m = model(&merging());
        let vg = found(vg_text("vg0", 7, &merging()));
        MergeRecord::of(&vg, &m, "root", 1000).expect("record")
    }

    #[test]
    fn record_names_the_merge_by_name_id_and_set() {
        let r = rec();
        assert_eq!(
            (
                r.vg.as_str(),
                r.origin.as_str(),
                r.origin_id.as_str(),
                r.snapshot.as_str()
            ),
            ("vg0", "root", ROOT, "pre")
        );
        assert_eq!(r.snapshot_id, PRE);
        assert_eq!(r.set.as_deref(), Some("s1"));
        // No merge flagged: no record.
        let plain = vec![root(&[]), pre()];
        let vg = found(vg_text("vg0", 7, &plain));
        assert_eq!(MergeRecord::of(&vg, &model(&plain), "root", 1), None);
    }

    #[test]
    fn records_round_trip_and_a_rerun_keeps_the_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = rec();
        write(dir.path(), &r).expect("write");
        let mut later = r.clone();
        later.since = 2000;
        write(dir.path(), &later).expect("write again");
        std::fs::write(dir.path().join(DIR).join("junk.json"), "{").expect("junk");
        let all = read_all(dir.path());
        assert_eq!(all.len(), 1, "{all:?}");
        assert_eq!(all[0].1, r);
        drop_record(&all[0].0);
        drop_record(&all[0].0);
        assert!(read_all(dir.path()).is_empty());
        // Poll's own finish forgets the record of the origin it finished.
        write(dir.path(), &r).expect("write");
        forget(
            dir.path(),
            &r.vg_id,
            "Other0-aaaa-bbbb-cccc-dddd-eeee-ffffff",
        );
        assert_eq!(
            read_all(dir.path()).len(),
            1,
            "another origin's record stays"
        );
        forget(dir.path(), &r.vg_id, &r.origin_id);
        assert!(read_all(dir.path()).is_empty());
    }

    #[test]
    fn a_running_merge_is_pending_and_a_cancelled_one_dropped() {
        let r = rec();
        assert!(matches!(
            judge(&r, &model(&merging()), true),
            Judgement::Pending(_)
        ));
        let cancelled = vec![
            root(&[]),
            pre(),
            snapshot("snapshot0", "Snap00", "root", 10, 8, "pre", false),
        ];
        assert_eq!(judge(&r, &model(&cancelled), false), Judgement::Cancelled);
    }

    #[test]
    fn lvm_finished_first_is_noticed_under_the_current_names() {
        let r = rec();
        // Stock LVM dropped the snapshot (and its tags): finished elsewhere.
        assert_eq!(
            judge(&r, &model(&[root(&[])]), false),
            Judgement::FinishedElsewhere {
                vg: "vg0".into(),
                origin: "root".into()
            }
        );
        // Renamed VG and origin: found by id, named as they are now.
        let renamed = vg_text(
            "vg1",
            9,
            &[linear("sys", "Root00", true, &[], &[(0, 10, 0)])],
        );
        let m = found(renamed).model.expect("model");
        assert_eq!(
            judge(&r, &m, false),
            Judgement::FinishedElsewhere {
                vg: "vg1".into(),
                origin: "sys".into()
            }
        );
        // The kernel still shows the merge table: wait for poll's tidy-up.
        assert!(matches!(
            judge(&r, &model(&[root(&[])]), true),
            Judgement::Pending(_)
        ));
    }

    #[test]
    fn poll_finished_it_or_the_tag_was_written_already() {
        let r = rec();
        let noted = [root(&["rewind_rolled_back_1500_s1"])];
        assert_eq!(judge(&r, &model(&noted), false), Judgement::Noted);
        // A tag of an earlier rollback (older than the record, or another set) is not this one.
        for tag in ["rewind_rolled_back_900_s1", "rewind_rolled_back_1500_s0"] {
            assert!(matches!(
                judge(&r, &model(&[root(&[tag])]), false),
                Judgement::FinishedElsewhere { .. }
            ));
        }
    }

    #[test]
    fn doubt_keeps_the_record() {
        let r = rec();
        // The origin is gone (removed by hand): nothing to note on.
        let gone = [linear("data", "Data00", true, &[], &[(0, 1, 0)])];
        assert!(matches!(
            judge(&r, &model(&gone), false),
            Judgement::Doubt(_)
        ));
        // Another snapshot merges into the origin now.
        let other = vec![
            root(&[]),
            linear("other", "Other0", false, &[], &[(0, 2, 10)]),
            snapshot("snapshot1", "Snap01", "root", 10, 8, "other", true),
        ];
        assert!(matches!(
            judge(&r, &model(&other), false),
            Judgement::Doubt(_)
        ));
        // The VG is not there at all.
        let (j, _) = judge_in(&[], &r, &[]);
        assert!(matches!(j, Judgement::Doubt(_)));
    }

    #[test]
    fn snapshot_mode_result_drops_the_record() {
        let r = rec();
        // The origin's LV took the snapshot's name and id.
        let m = model(&[linear("pre", "Pre000", true, &[], &[(0, 10, 0)])]);
        assert_eq!(judge(&r, &m, false), Judgement::MergedAsSnapshot);
    }

    #[test]
    fn the_note_is_one_commit_replacing_older_notes() {
        let lvs = [root(&["rewind_rolled_back_5_old", "keep"])];
        let vg = found(vg_text("vg0", 7, &lvs));
        let m = vg.model.clone().expect("model");
        let tree = note_tree(&vg, &m, "root", "s1", &Stamp::new("h", 1234)).expect("tree");
        let after = Vg::from_tree(&tree).expect("model");
        assert_eq!(after.seqno, 8);
        assert_eq!(
            after.lv("root").expect("root").tags,
            ["keep", "rewind_rolled_back_1234_s1"]
        );
    }
}
