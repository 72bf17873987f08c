//! The two metadata changes rewind makes, as pure functions from one metadata tree to the
//! next: flag a snapshot for merging (what `lvconvert --merge` writes) and drop a snapshot
//! whose merge has finished (what the lvpoll merge finish writes).
//!
//! Each change works on the generic tree so everything rewind does not interpret is kept
//! byte-for-byte in meaning; it bumps `seqno` by one, restamps `description`,
//! `creation_host` and `creation_time` (as every LVM write does), and touches nothing else.
//! The result is re-read through the model as a self-check before it is returned.
//!
//! The stamp: LVM writes `description = "Write from <command line>."`, the host's node name
//! and the time. rewind writes `Write from rewind: merge snapshot VG/COW into VG/ORIGIN.` or
//! `Write from rewind: drop snapshot VG/COW merged into VG/ORIGIN.`, and a [`Stamp`].
//! LVM also orders LVs visible-first on every write (`export.c`, `_print_lvs`); marking a
//! snapshot merging hides its COW, so rewind moves that one LV the way LVM would.
//!
//! What LVM2 does, from its source:
//! - `lvconvert --merge` (`lib/metadata/snapshot_manip.c`, `init_snapshot_merge`): sets
//!   MERGING on the snapshot segment and on the origin, and clears VISIBLE on the internal
//!   `snapshotN` LV. MERGING is an internal flag (`lib/format_text/flags.c` has no text for it);
//!   in the text the segment writes `merging_store` instead of `cow_store`
//!   (`lib/snapshot/snapshot.c`). So the text changes in exactly two places.
//! - merge finish (`tools/lvconvert_poll.c`, `lvconvert_merge_finish`) calls
//!   `lv_remove_single` on the COW LV, which goes through `vg_remove_snapshot` (removes
//!   `snapshotN`, clears the origin's in-memory merge state, which has no text) and then
//!   removes the COW LV itself. The text loses the two LV sections; the origin's section is
//!   unchanged (LVM keeps no `lv_count` or origin count in the text).

use thiserror::Error;

use super::model::{MERGE_AS_SNAPSHOT_TAG, ModelError, Snapshot, Vg};
use super::text::{Node, Section, Value};

/// Errors of the metadata changes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChangeError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("vg {vg}: no snapshot called {name}")]
    NoSuchSnapshot { vg: String, name: String },
    #[error("vg {vg}: lv {lv} is not a snapshot")]
    NotASnapshot { vg: String, lv: String },
    #[error("vg {vg}: snapshot {snapshot} of {origin} is already merging")]
    AlreadyMerging {
        vg: String,
        snapshot: String,
        origin: String,
    },
    #[error("vg {vg}: origin {origin} already has a merging snapshot, {other}")]
    OriginAlreadyMerging {
        vg: String,
        origin: String,
        other: String,
    },
    #[error(
        "vg {vg}: snapshot {snapshot} is not the only snapshot of {origin}; --mode snapshot needs that"
    )]
    NotOnlySnapshot {
        vg: String,
        snapshot: String,
        origin: String,
    },
    #[error("vg {vg}: snapshot {snapshot} is not merging")]
    NotMerging { vg: String, snapshot: String },
    #[error("vg {vg}: lv {lv} is not a plain (linear or striped) volume; rewind only merges those")]
    NotPlain { vg: String, lv: String },
    #[error("vg {vg}: not writable by rewind: {why}")]
    VgNotWritable { vg: String, why: String },
    #[error("vg {vg}: seqno {seqno} cannot be increased")]
    SeqnoOverflow { vg: String, seqno: u64 },
    #[error("vg {vg}: metadata has no {path} to change")]
    MissingInTree { vg: String, path: String },
    #[error("vg {vg}: internal check failed after the change: {what}")]
    SelfCheck { vg: String, what: String },
    #[error("vg {vg}: {why}")]
    ThinRefused { vg: String, why: String },
}

/// What every write records about itself: LVM writes the host name (`uname -n`) and the
/// time in seconds since the epoch into `creation_host` and `creation_time`. The flows take
/// this host's from `system::proc::stamp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub host: String,
    pub time: i64,
}

impl Stamp {
    /// A stamp with a given host and time (tests, reproducible output).
    pub fn new(host: &str, time: i64) -> Stamp {
        Stamp {
            host: host.to_owned(),
            time,
        }
    }
}

/// Renames the store key (`cow_store` <-> `merging_store`) in the snapshot segment of the
/// hidden snapshot LV `internal`; on failure, the tree path that is missing.
pub(super) fn rename_store_key(
    internal: &mut Section,
    name: &str,
    from: &str,
    to: &str,
) -> Result<(), String> {
    let seg_key = internal
        .sections()
        .find(|(_, s)| s.str("type") == Some("snapshot"))
        .map(|(k, _)| k.to_owned())
        .ok_or_else(|| format!("logical_volumes/{name}/segment1"))?;
    let seg = internal
        .section_mut(&seg_key)
        .ok_or_else(|| format!("logical_volumes/{name}/{seg_key}"))?;
    if seg.rename(from, to) {
        Ok(())
    } else {
        Err(format!("logical_volumes/{name}/{seg_key}/{from}"))
    }
}

/// Flags the snapshot `name` (the COW LV's name, as `lvconvert --merge VG/NAME` takes, or the
/// internal `snapshotN`) for merging into its origin: in `snapshotN`'s segment `cow_store`
/// becomes `merging_store`, and `snapshotN` loses `VISIBLE`.
pub fn mark_merging(root: &Section, name: &str, stamp: &Stamp) -> Result<Section, ChangeError> {
    let vg = Vg::from_tree(root)?;
    check_vg(&vg)?;
    let snap = find_snapshot(&vg, name)?.clone();
    if snap.merging {
        return Err(ChangeError::AlreadyMerging {
            vg: vg.name,
            snapshot: snap.cow,
            origin: snap.origin,
        });
    }
    if let Some(other) = vg.merging_snapshot_of(&snap.origin) {
        return Err(ChangeError::OriginAlreadyMerging {
            vg: vg.name.clone(),
            origin: snap.origin,
            other: other.cow.clone(),
        });
    }
    for lv in [&snap.origin, &snap.cow] {
        if !vg.lv(lv).is_some_and(|l| l.is_plain()) {
            return Err(ChangeError::NotPlain {
                vg: vg.name.clone(),
                lv: lv.clone(),
            });
        }
    }

    let mut out = root.clone();
    let lvs = lvs_mut(&mut out, &vg.name)?;
    let internal = lv_mut(lvs, &vg.name, &snap.internal)?;
    if let Some(Node::Value(Value::Array(status))) = internal.get_mut("status") {
        status.retain(|v| v.as_str() != Some("VISIBLE"));
    }
    rename_store_key(internal, &snap.internal, "cow_store", "merging_store")
        .map_err(|path| missing(&vg.name, path))?;
    // LVM writes LVs that are visible to the user first (`lib/format_text/export.c`,
    // `_print_lvs`), and a merging COW no longer is (`lv_is_visible`): it moves after them.
    lvm_lv_order(lvs, &vg, &snap.cow);
    let description = format!(
        "Write from rewind: merge snapshot {}/{} into {}/{}.",
        vg.name, snap.cow, vg.name, snap.origin
    );
    finish(&vg, &mut out, &description, stamp)?;

    let new = Vg::from_tree(&out)?;
    let ok = new
        .snapshot(&snap.cow)
        .is_some_and(|s| s.merging && s.origin == snap.origin)
        && new.lv(&snap.internal).is_some_and(|l| !l.visible);
    if !ok {
        return Err(ChangeError::SelfCheck {
            vg: vg.name,
            what: format!("snapshot {} does not read back as merging", snap.cow),
        });
    }
    Ok(out)
}

/// Removes a snapshot whose merge has finished: the internal `snapshotN` LV and the COW LV.
/// `name` is the COW LV's name or `snapshotN`. Refuses a snapshot that is not merging: removing
/// one that is not merged would lose its data, and that is `lvremove`'s job, not rewind's.
pub fn drop_merged_snapshot(
    root: &Section,
    name: &str,
    stamp: &Stamp,
) -> Result<Section, ChangeError> {
    let (vg, snap) = merging_snapshot(root, name, |_, _| true)?;
    let mut out = root.clone();
    let lvs = lvs_mut(&mut out, &vg.name)?;
    remove_snapshot_lvs(lvs, &vg.name, &snap)?;
    let description = format!(
        "Write from rewind: drop snapshot {}/{} merged into {}/{}.",
        vg.name, snap.cow, vg.name, snap.origin
    );
    finish(&vg, &mut out, &description, stamp)?;

    let new = Vg::from_tree(&out)?;
    if new.lv(&snap.cow).is_some() || new.lv(&snap.internal).is_some() {
        return Err(ChangeError::SelfCheck {
            vg: vg.name,
            what: format!("snapshot {} is still there", snap.cow),
        });
    }
    Ok(out)
}

/// Withdraws a merge flag that has not started (`rewind cancel`): the inverse of
/// [`mark_merging`]. `merging_store` becomes `cow_store` again and `snapshotN` gets `VISIBLE`
/// back (after `READ`/`WRITE`, where LVM's `lib/format_text/flags.c` order puts it); the COW
/// LV moves back among the user-visible LVs in LVM's export order. Stock LVM has no command
/// for this; the caller must make sure the kernel has not begun merging.
pub fn unmark_merging(root: &Section, name: &str, stamp: &Stamp) -> Result<Section, ChangeError> {
    let (vg, snap) = merging_snapshot(root, name, |_, _| true)?;
    let mut out = root.clone();
    let lvs = lvs_mut(&mut out, &vg.name)?;
    let internal = lv_mut(lvs, &vg.name, &snap.internal)?;
    if let Some(Node::Value(Value::Array(status))) = internal.get_mut("status")
        && !status.iter().any(|v| v.as_str() == Some("VISIBLE"))
    {
        let at = status
            .iter()
            .position(|v| !matches!(v.as_str(), Some("READ" | "WRITE")))
            .unwrap_or(status.len());
        status.insert(at, Value::Str("VISIBLE".to_owned()));
    }
    rename_store_key(internal, &snap.internal, "merging_store", "cow_store")
        .map_err(|path| missing(&vg.name, path))?;
    remove_tag(
        lvs_mut(&mut out, &vg.name)?,
        &snap.cow,
        MERGE_AS_SNAPSHOT_TAG,
    );
    let description = format!(
        "Write from rewind: cancel merge of snapshot {}/{} into {}/{}.",
        vg.name, snap.cow, vg.name, snap.origin
    );
    finish(&vg, &mut out, &description, stamp)?;
    let new = Vg::from_tree(&out)?;
    // Visible-first order as LVM's export writes it, now that the COW is a plain snapshot.
    lvm_lv_order(lvs_mut(&mut out, &new.name)?, &new, "");
    let new = Vg::from_tree(&out)?;
    let ok = new
        .snapshot(&snap.cow)
        .is_some_and(|s| !s.merging && s.origin == snap.origin)
        && new.lv(&snap.internal).is_some_and(|l| l.visible);
    if !ok {
        return Err(ChangeError::SelfCheck {
            vg: vg.name,
            what: format!("snapshot {} still reads back as merging", snap.cow),
        });
    }
    Ok(out)
}

/// Adds `tag` to the LV section `lv` (after `flags`, where LVM's export writes `tags`).
pub(super) fn add_tag(lvs: &mut Section, lv: &str, tag: &str) -> bool {
    let Some(sec) = lvs.section_mut(lv) else {
        return false;
    };
    match sec.get_mut("tags") {
        Some(Node::Value(Value::Array(tags))) => {
            if !tags.iter().any(|t| t.as_str() == Some(tag)) {
                tags.push(Value::Str(tag.to_owned()));
            }
        }
        Some(_) => return false,
        None => {
            let at = sec
                .entries
                .iter()
                .position(|e| e.key == "flags")
                .map_or(sec.entries.len(), |i| i + 1);
            sec.entries.insert(
                at,
                super::text::Entry {
                    key: "tags".to_owned(),
                    node: Node::Value(Value::str_array(&[tag])),
                },
            );
        }
    }
    true
}

/// Removes `tag` from the LV section `lv` (and an emptied `tags` key, as LVM prints none).
pub(super) fn remove_tag(lvs: &mut Section, lv: &str, tag: &str) {
    let Some(sec) = lvs.section_mut(lv) else {
        return;
    };
    let empty = match sec.get_mut("tags") {
        Some(Node::Value(Value::Array(tags))) => {
            tags.retain(|t| t.as_str() != Some(tag));
            tags.is_empty()
        }
        _ => false,
    };
    if empty {
        sec.remove("tags");
    }
}

/// Flags the snapshot `name` for merging in `--mode snapshot`: LVM's own merge flag (as
/// [`mark_merging`]) plus [`MERGE_AS_SNAPSHOT_TAG`] on the COW LV, in one write. Refused
/// unless it is its origin's only snapshot.
pub fn mark_merging_as_snapshot(
    root: &Section,
    name: &str,
    stamp: &Stamp,
) -> Result<Section, ChangeError> {
    let vg = Vg::from_tree(root)?;
    let snap = find_snapshot(&vg, name)?.clone();
    if vg.snapshots_of(&snap.origin).count() != 1 {
        return Err(ChangeError::NotOnlySnapshot {
            vg: vg.name,
            snapshot: snap.cow,
            origin: snap.origin,
        });
    }
    let mut out = mark_merging(root, name, stamp)?;
    let lvs = lvs_mut(&mut out, &vg.name)?;
    if !add_tag(lvs, &snap.cow, MERGE_AS_SNAPSHOT_TAG) {
        return Err(missing(
            &vg.name,
            format!("logical_volumes/{}/tags", snap.cow),
        ));
    }
    out.set(
        "description",
        Value::Str(format!(
            "Write from rewind: merge snapshot {}/{} into {}/{}, result named {}.",
            vg.name, snap.cow, vg.name, snap.origin, snap.cow
        )),
    );
    let new = Vg::from_tree(&out)?;
    let ok = new
        .snapshot(&snap.cow)
        .is_some_and(|s| s.merging && new.merges_as_snapshot(s));
    if !ok {
        return Err(ChangeError::SelfCheck {
            vg: vg.name,
            what: format!(
                "snapshot {} does not read back as merging in snapshot mode",
                snap.cow
            ),
        });
    }
    Ok(out)
}

/// Finishes a `--mode snapshot` merge in the metadata: the internal `snapshotN` and the COW LV
/// go, and the origin's LV (its segments now hold the snapshot's data) takes the COW LV's name
/// and `id`. Everything else of the origin's section is kept.
pub fn finish_merge_as_snapshot(
    root: &Section,
    name: &str,
    stamp: &Stamp,
) -> Result<Section, ChangeError> {
    let (vg, snap) = merging_snapshot(root, name, Vg::merges_as_snapshot)?;
    let cow_id = vg
        .lv(&snap.cow)
        .map(|l| l.id.clone())
        .ok_or_else(|| missing(&vg.name, format!("logical_volumes/{}", snap.cow)))?;
    let mut out = root.clone();
    let lvs = lvs_mut(&mut out, &vg.name)?;
    remove_snapshot_lvs(lvs, &vg.name, &snap)?;
    let origin = lv_mut(lvs, &vg.name, &snap.origin)?;
    origin.set("id", Value::Str(cow_id.clone()));
    lvs.rename(&snap.origin, &snap.cow);
    let description = format!(
        "Write from rewind: drop snapshot {}/{} merged into {}/{}, result named {}.",
        vg.name, snap.cow, vg.name, snap.origin, snap.cow
    );
    finish(&vg, &mut out, &description, stamp)?;
    let new = Vg::from_tree(&out)?;
    let ok = new.lv(&snap.origin).is_none()
        && new.lv(&snap.internal).is_none()
        && new
            .lv(&snap.cow)
            .is_some_and(|l| l.id == cow_id && l.visible && new.snapshot(&l.name).is_none());
    if !ok {
        return Err(ChangeError::SelfCheck {
            vg: vg.name,
            what: format!("{} does not read back as the merged volume", snap.cow),
        });
    }
    Ok(out)
}

/// Orders `logical_volumes` as LVM's export does: LVs visible to the user first, then the
/// others, each group in its present order (a stable partition, so metadata LVM wrote keeps
/// its order). `merging_cow` is the COW that has just started merging.
pub(super) fn lvm_lv_order(lvs: &mut Section, vg: &Vg, merging_cow: &str) {
    let user_visible = |name: &str| -> bool {
        if vg.snapshots.iter().any(|s| s.internal == name) {
            return false;
        }
        if let Some(s) = vg.snapshot(name) {
            if s.merging || name == merging_cow {
                return false;
            }
            return vg.lv(&s.origin).is_some_and(|o| o.visible);
        }
        vg.lv(name).is_none_or(|l| l.visible)
    };
    let (front, back): (Vec<_>, Vec<_>) = std::mem::take(&mut lvs.entries)
        .into_iter()
        .partition(|e| user_visible(&e.key));
    lvs.entries = front;
    lvs.entries.extend(back);
}

/// Refuses VGs that rewind must not write: status flags LVM2 does not know, an exported VG,
/// a VG without WRITE, and shared or clustered VGs (those need a lock manager).
pub(super) fn check_vg(vg: &Vg) -> Result<(), ChangeError> {
    vg.check_writable()?;
    let has = |f: &str| vg.status.iter().any(|s| s == f);
    let why = if has("EXPORTED") {
        Some("it is exported")
    } else if !has("WRITE") {
        Some("its status has no WRITE")
    } else if has("CLUSTERED") || has("SHARED") || has("WRITE_LOCKED") {
        Some("it is shared or clustered and needs a lock manager")
    } else {
        None
    };
    match why {
        Some(why) => Err(ChangeError::VgNotWritable {
            vg: vg.name.clone(),
            why: why.to_owned(),
        }),
        None => Ok(()),
    }
}

/// The checked VG of `root` and its snapshot `name`, which must be merging and pass `mode`;
/// `NotMerging` otherwise.
fn merging_snapshot(
    root: &Section,
    name: &str,
    mode: impl Fn(&Vg, &super::model::Snapshot) -> bool,
) -> Result<(Vg, super::model::Snapshot), ChangeError> {
    let vg = Vg::from_tree(root)?;
    check_vg(&vg)?;
    let snap = find_snapshot(&vg, name)?.clone();
    if !snap.merging || !mode(&vg, &snap) {
        return Err(ChangeError::NotMerging {
            vg: vg.name,
            snapshot: snap.cow,
        });
    }
    Ok((vg, snap))
}

fn find_snapshot<'a>(vg: &'a Vg, name: &str) -> Result<&'a Snapshot, ChangeError> {
    match vg.snapshot(name) {
        Some(s) => Ok(s),
        None if vg.lv(name).is_some() => Err(ChangeError::NotASnapshot {
            vg: vg.name.clone(),
            lv: name.to_owned(),
        }),
        None => Err(ChangeError::NoSuchSnapshot {
            vg: vg.name.clone(),
            name: name.to_owned(),
        }),
    }
}

pub(super) fn missing(vg: &str, path: String) -> ChangeError {
    ChangeError::MissingInTree {
        vg: vg.to_owned(),
        path,
    }
}

fn vg_mut<'a>(root: &'a mut Section, vg: &str) -> Result<&'a mut Section, ChangeError> {
    root.section_mut(vg)
        .ok_or_else(|| missing(vg, vg.to_owned()))
}

pub(super) fn lvs_mut<'a>(root: &'a mut Section, vg: &str) -> Result<&'a mut Section, ChangeError> {
    vg_mut(root, vg)?
        .section_mut("logical_volumes")
        .ok_or_else(|| missing(vg, "logical_volumes".to_owned()))
}

/// LV `lv`'s section in `lvs`, the VG's `logical_volumes`.
pub(super) fn lv_mut<'a>(
    lvs: &'a mut Section,
    vg: &str,
    lv: &str,
) -> Result<&'a mut Section, ChangeError> {
    lvs.section_mut(lv)
        .ok_or_else(|| missing(vg, format!("logical_volumes/{lv}")))
}

/// Removes a snapshot's two LVs, the internal `snapshotN` and the COW LV.
fn remove_snapshot_lvs(lvs: &mut Section, vg: &str, snap: &Snapshot) -> Result<(), ChangeError> {
    for lv in [&snap.internal, &snap.cow] {
        if lvs.remove(lv).is_none() {
            return Err(missing(vg, format!("logical_volumes/{lv}")));
        }
    }
    Ok(())
}

/// seqno + 1 and the write stamp. The stamp keys live at the top level next to `contents`;
/// they are updated where they are, or added in LVM's on-disk order when absent.
pub(super) fn finish(
    vg: &Vg,
    root: &mut Section,
    description: &str,
    stamp: &Stamp,
) -> Result<(), ChangeError> {
    let seqno = vg
        .seqno
        .checked_add(1)
        .and_then(|s| i64::try_from(s).ok())
        .ok_or_else(|| ChangeError::SeqnoOverflow {
            vg: vg.name.clone(),
            seqno: vg.seqno,
        })?;
    vg_mut(root, &vg.name)?.set("seqno", Value::Int(seqno));
    root.set("description", Value::Str(description.to_owned()));
    root.set("creation_host", Value::Str(stamp.host.clone()));
    root.set("creation_time", Value::Int(stamp.time));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lvm::model::vg_section;
    use crate::lvm::text::{Entry, parse};

    const FIXTURE: &str = include_str!("../../tests/fixtures/text/backup.vg");

    fn tree(text: &str) -> Section {
        parse(text.as_bytes()).expect("parses")
    }

    fn stamp() -> Stamp {
        Stamp::new("testhost", 1_700_000_123)
    }

    /// Every leaf path and value, for diffing two trees.
    fn leaves(s: &Section, prefix: &str, out: &mut Vec<(String, Value)>) {
        for Entry { key, node } in &s.entries {
            let p = format!("{prefix}/{key}");
            match node {
                Node::Value(v) => out.push((p, v.clone())),
                Node::Section(c) => leaves(c, &p, out),
            }
        }
    }

    type Leaves = Vec<(String, Value)>;

    fn diff(a: &Section, b: &Section) -> (Leaves, Leaves) {
        let (mut la, mut lb) = (Vec::new(), Vec::new());
        leaves(a, "", &mut la);
        leaves(b, "", &mut lb);
        let only_a = la.iter().filter(|x| !lb.contains(x)).cloned().collect();
        let only_b = lb.iter().filter(|x| !la.contains(x)).cloned().collect();
        (only_a, only_b)
    }

    #[test]
    fn mark_merging_changes_exactly_what_lvconvert_does() {
        let before = tree(FIXTURE);
        let after = mark_merging(&before, "pre", &stamp()).expect("marks");
        let (gone, new) = diff(&before, &after);
        let gone: Vec<_> = gone.into_iter().map(|(p, _)| p).collect();
        let new_paths: Vec<_> = new.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            gone,
            [
                "/description",
                "/creation_host",
                "/creation_time",
                "/test-vg/seqno",
                "/test-vg/logical_volumes/snapshot0/status",
                "/test-vg/logical_volumes/snapshot0/segment1/cow_store",
            ]
        );
        assert_eq!(
            new_paths,
            [
                "/description",
                "/creation_host",
                "/creation_time",
                "/test-vg/seqno",
                "/test-vg/logical_volumes/snapshot0/status",
                "/test-vg/logical_volumes/snapshot0/segment1/merging_store",
            ]
        );
        assert_eq!(new[3].1, Value::Int(6));
        assert_eq!(new[4].1, Value::str_array(&["READ", "WRITE"]));
        assert_eq!(new[5].1, Value::Str("pre".into()));
        assert_eq!(
            new[0].1,
            Value::Str(
                "Write from rewind: merge snapshot test-vg/pre into test-vg/my-root.".into()
            )
        );
        // Order of keys is kept: merging_store sits where cow_store was.
        let seg = after
            .section("test-vg")
            .and_then(|v| v.section("logical_volumes"))
            .and_then(|l| l.section("snapshot0"))
            .and_then(|s| s.section("segment1"))
            .expect("segment");
        assert_eq!(
            seg.entries.last().map(|e| e.key.as_str()),
            Some("merging_store")
        );
        let vg = Vg::from_tree(&after).expect("valid");
        assert!(vg.snapshot("pre").expect("snap").merging);
        // The merging COW moves after the user-visible LVs, as LVM's export orders them.
        let names: Vec<_> = vg.lvs.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["my-root", "data", "pre", "snapshot0"]);
        // By the internal name too, with the same result.
        assert_eq!(mark_merging(&before, "snapshot0", &stamp()), Ok(after));
    }

    #[test]
    fn mark_merging_refusals() {
        let t = tree(FIXTURE);
        let merged = mark_merging(&t, "pre", &stamp()).expect("marks");
        assert!(matches!(
            mark_merging(&merged, "pre", &stamp()),
            Err(ChangeError::AlreadyMerging { .. })
        ));
        assert!(matches!(
            mark_merging(&t, "data", &stamp()),
            Err(ChangeError::NotASnapshot { .. })
        ));
        let e = mark_merging(&t, "nope", &stamp()).expect_err("absent");
        assert_eq!(e.to_string(), "vg test-vg: no snapshot called nope");
        let exported = FIXTURE.replacen("\"RESIZEABLE\", \"READ\"", "\"EXPORTED\", \"READ\"", 1);
        assert!(matches!(
            mark_merging(&tree(&exported), "pre", &stamp()),
            Err(ChangeError::VgNotWritable { .. })
        ));
        let unknown = FIXTURE.replacen(
            "\"READ\", \"WRITE\", \"VISIBLE\"",
            "\"READ\", \"WRITE\", \"VISIBLE\", \"NEWFLAG\"",
            1,
        );
        assert!(matches!(
            mark_merging(&tree(&unknown), "pre", &stamp()),
            Err(ChangeError::Model(ModelError::UnknownStatus { .. }))
        ));
        let thin_origin = FIXTURE.replacen(
            "type = \"striped\"\n\t\t\t\tstripe_count = 1",
            "type = \"thin\"\n\t\t\t\tthin_pool = \"pool\"\n\t\t\t\ttransaction_id = 0\n\t\t\t\tdevice_id = 1",
            1,
        );
        assert!(matches!(
            mark_merging(&tree(&thin_origin), "pre", &stamp()),
            Err(ChangeError::NotPlain { .. })
        ));
    }

    #[test]
    fn origin_with_a_merging_snapshot_refuses_another() {
        // A second snapshot "data" of my-root, then merge "pre", then try "data".
        let second = "\t\tsnapshot1 {\n\t\t\tid = \"x\"\n\t\t\tstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\n\t\t\tsegment_count = 1\n\t\t\tsegment1 {\n\t\t\t\tstart_extent = 0\n\t\t\t\textent_count = 2\n\t\t\t\ttype = \"snapshot\"\n\t\t\t\tchunk_size = 8\n\t\t\t\torigin = \"my-root\"\n\t\t\t\tcow_store = \"data\"\n\t\t\t}\n\t\t}\n\n\t\tsnapshot0 {";
        let t = tree(&FIXTURE.replacen("\t\tsnapshot0 {", second, 1));
        let merged = mark_merging(&t, "pre", &stamp()).expect("marks");
        let e = mark_merging(&merged, "data", &stamp()).expect_err("refuses");
        assert_eq!(
            e,
            ChangeError::OriginAlreadyMerging {
                vg: "test-vg".into(),
                origin: "my-root".into(),
                other: "pre".into()
            }
        );
        // Dropping the merged one keeps the other snapshot intact.
        let dropped = drop_merged_snapshot(&merged, "pre", &stamp()).expect("drops");
        let vg = Vg::from_tree(&dropped).expect("valid");
        assert_eq!(vg.snapshots.len(), 1);
        assert_eq!(vg.snapshots[0].cow, "data");
    }

    #[test]
    fn drop_removes_exactly_the_two_lvs() {
        let t = tree(FIXTURE);
        assert!(matches!(
            drop_merged_snapshot(&t, "pre", &stamp()),
            Err(ChangeError::NotMerging { .. })
        ));
        let merged = mark_merging(&t, "pre", &stamp()).expect("marks");
        let dropped = drop_merged_snapshot(&merged, "pre", &stamp()).expect("drops");
        let vg = Vg::from_tree(&dropped).expect("valid");
        let names: Vec<_> = vg.lvs.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["my-root", "data"]);
        assert_eq!(vg.seqno, 7);
        assert!(vg.snapshots.is_empty());
        // The origin's section is untouched.
        let lv = |s: &Section| {
            s.section("test-vg")
                .and_then(|v| v.section("logical_volumes"))
                .and_then(|l| l.section("my-root"))
                .cloned()
        };
        assert_eq!(lv(&t), lv(&dropped));
    }

    #[test]
    fn unmark_is_the_inverse_of_mark() {
        let before = tree(FIXTURE);
        let merged = mark_merging(&before, "pre", &stamp()).expect("marks");
        let back = unmark_merging(&merged, "pre", &stamp()).expect("unmarks");
        let (gone, new) = diff(&before, &back);
        let gone: Vec<_> = gone.into_iter().map(|(p, _)| p).collect();
        let new: Vec<_> = new.into_iter().map(|(p, _)| p).collect();
        // Only the stamp and seqno differ from the never-flagged metadata.
        let expect = [
            "/description",
            "/creation_host",
            "/creation_time",
            "/test-vg/seqno",
        ];
        assert_eq!(gone, expect);
        assert_eq!(new, expect);
        let vg = Vg::from_tree(&back).expect("valid");
        assert_eq!(vg.seqno, 7);
        // The order LVM would write now: user-visible LVs first, each group as it was.
        let names: Vec<_> = vg.lvs.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["my-root", "data", "pre", "snapshot0"]);
        assert!(matches!(
            unmark_merging(&before, "pre", &stamp()),
            Err(ChangeError::NotMerging { .. })
        ));
        assert!(matches!(
            unmark_merging(&merged, "data", &stamp()),
            Err(ChangeError::NotASnapshot { .. })
        ));
        assert!(matches!(
            unmark_merging(&merged, "nope", &stamp()),
            Err(ChangeError::NoSuchSnapshot { .. })
        ));
        // By the internal name, and mark again gives the same flag.
        let back2 = unmark_merging(&merged, "snapshot0", &stamp()).expect("by internal");
        assert_eq!(back, back2);
        assert!(mark_merging(&back, "pre", &stamp()).is_ok());
    }

    #[test]
    fn mutated_metadata_never_panics() {
        let mut b = FIXTURE.as_bytes().to_vec();
        let mut x: u32 = 99;
        let mut parsed = 0;
        for _ in 0..3000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let i = (x as usize >> 3) % b.len();
            let old = b[i];
            b[i] = b"0123456789\"{}[]=, -#abpsVISBLE"[(x >> 16) as usize % 30];
            if let Ok(t) = parse(&b) {
                parsed += 1;
                let _ = Vg::from_tree(&t);
                let _ = mark_merging(&t, "pre", &stamp());
                let _ = drop_merged_snapshot(&t, "pre", &stamp());
                let _ = unmark_merging(&t, "pre", &stamp());
            }
            b[i] = old;
        }
        assert!(
            parsed > 100,
            "enough mutants parse to exercise the model: {parsed}"
        );
    }

    #[test]
    fn stamp_keys_added_when_absent() {
        let (name, vg) = {
            let t = tree(FIXTURE);
            let (n, v) = vg_section(&t).expect("vg");
            (n.to_owned(), v.clone())
        };
        let mut bare = Section::default();
        bare.entries.push(Entry {
            key: name,
            node: Node::Section(vg),
        });
        let out = mark_merging(&bare, "pre", &stamp()).expect("marks");
        let keys: Vec<_> = out.entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            ["test-vg", "description", "creation_host", "creation_time"]
        );
    }
}
