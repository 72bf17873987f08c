//! The metadata changes of a snapshot set, as pure functions from one tree to the next, each
//! one commit of one VG (docs/SETS.md section 2):
//!
//! - [`add_snapshots`]: COW LVs made by stock `lvcreate -an` become snapshot stores, what
//!   `lvcreate -s` does after its first commit (`lib/metadata/snapshot_manip.c`,
//!   `vg_add_snapshot`): a new hidden LV `snapshotN` (N one more than the highest in use,
//!   `generate_lv_name`) with one `snapshot` segment over the origin's extent count, and the
//!   COW LV loses `VISIBLE` (`init_snapshot_seg` hides it).
//! - [`retag`]: tags added and removed (the end of a set's creation drops `rewind_pending`).
//! - [`mark_set_merging`]: every member of a set in this VG flagged for merging, as
//!   `lvconvert --merge` flags one, plus the tag `rewind_rollback`.
//!
//! Like the changes in [`super::change`]: seqno + 1, the stamp, LVM's LV order, and a
//! read-back through the model before the tree is returned.

use super::change::{
    ChangeError, Stamp, add_tag, check_vg, finish, lv_mut, lvm_lv_order, lvs_mut, missing,
    remove_tag, rename_store_key,
};
use super::model::Vg;
use super::sets::{ROLLBACK, ROLLED_BACK};
use super::text::{Entry, Node, Section, Value};

/// A snapshot to add: the COW LV (already in the metadata, plain), its origin, the chunk size
/// in sectors, and the id of the new `snapshotN` LV (LVM's dashed 38-character form).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSnapshot {
    pub cow: String,
    pub origin: String,
    pub chunk_size: u64,
    pub internal_id: String,
}

/// The next free `snapshotN` of `root`'s VG (LVM counts from the highest N in use, among the
/// LVs and the historical LVs).
fn next_snapshot_index(vg: &Section) -> u64 {
    let mut high: Option<u64> = None;
    for key in ["logical_volumes", "historical_logical_volumes"] {
        if let Some(lvs) = vg.section(key) {
            for (name, _) in lvs.sections() {
                let n = name
                    .strip_prefix("snapshot")
                    .map(|d| {
                        d.chars()
                            .take_while(char::is_ascii_digit)
                            .collect::<String>()
                    })
                    .and_then(|d| d.parse::<u64>().ok());
                if let Some(n) = n {
                    high = Some(high.map_or(n, |h| h.max(n)));
                }
            }
        }
    }
    high.map_or(0, |h| h + 1)
}

fn entry(key: &str, node: Node) -> Entry {
    Entry {
        key: key.to_owned(),
        node,
    }
}

fn value(key: &str, v: Value) -> Entry {
    entry(key, Node::Value(v))
}

/// Turns the plain COW LVs of `new` into snapshot stores of their origins, in one commit.
pub fn add_snapshots(
    root: &Section,
    new: &[NewSnapshot],
    description: &str,
    stamp: &Stamp,
) -> Result<Section, ChangeError> {
    let vg = Vg::from_tree(root)?;
    check_vg(&vg)?;
    for n in new {
        let lv = |name: &str| {
            vg.lv(name)
                .ok_or_else(|| missing(&vg.name, format!("logical_volumes/{name}")))
        };
        let (origin, cow) = (lv(&n.origin)?, lv(&n.cow)?);
        for lv in [origin, cow] {
            if !lv.is_plain() {
                return Err(ChangeError::NotPlain {
                    vg: vg.name.clone(),
                    lv: lv.name.clone(),
                });
            }
        }
        let in_use = vg
            .snapshots
            .iter()
            .any(|s| s.cow == n.cow || s.origin == n.cow || s.cow == n.origin || n.cow == n.origin);
        if in_use || n.cow == n.origin {
            return Err(ChangeError::SelfCheck {
                vg: vg.name.clone(),
                what: format!("{} cannot become a snapshot of {}", n.cow, n.origin),
            });
        }
        if let Some(m) = vg.merging_snapshot_of(&n.origin) {
            return Err(ChangeError::OriginAlreadyMerging {
                vg: vg.name.clone(),
                origin: n.origin.clone(),
                other: m.cow.clone(),
            });
        }
    }

    let mut out = root.clone();
    let first = {
        let vgs = out
            .section(&vg.name)
            .ok_or_else(|| missing(&vg.name, vg.name.clone()))?;
        next_snapshot_index(vgs)
    };
    let lvs = lvs_mut(&mut out, &vg.name)?;
    for (index, n) in (first..).zip(new) {
        let extent_count = vg.lv(&n.origin).map_or(0, |l| l.extent_count());
        let cow = lv_mut(lvs, &vg.name, &n.cow)?;
        if let Some(Node::Value(Value::Array(status))) = cow.get_mut("status") {
            status.retain(|v| v.as_str() != Some("VISIBLE"));
        }
        let to_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let segment = Section {
            entries: vec![
                value("start_extent", Value::Int(0)),
                value("extent_count", Value::Int(to_i64(extent_count))),
                value("type", Value::Str("snapshot".into())),
                value("chunk_size", Value::Int(to_i64(n.chunk_size))),
                value("origin", Value::Str(n.origin.clone())),
                value("cow_store", Value::Str(n.cow.clone())),
            ],
        };
        let internal = Section {
            entries: vec![
                value("id", Value::Str(n.internal_id.clone())),
                value("status", Value::str_array(&["READ", "WRITE", "VISIBLE"])),
                value("flags", Value::Array(Vec::new())),
                value("creation_time", Value::Int(stamp.time)),
                value("creation_host", Value::Str(stamp.host.clone())),
                value("segment_count", Value::Int(1)),
                entry("segment1", Node::Section(segment)),
            ],
        };
        lvs.entries
            .push(entry(&format!("snapshot{index}"), Node::Section(internal)));
    }
    let new_vg = Vg::from_tree(&out)?;
    lvm_lv_order(lvs_mut(&mut out, &vg.name)?, &new_vg, "");
    finish(&vg, &mut out, description, stamp)?;

    let check = Vg::from_tree(&out)?;
    for n in new {
        let ok = check
            .snapshot(&n.cow)
            .is_some_and(|s| s.origin == n.origin && !s.merging && s.chunk_size == n.chunk_size)
            && check.lv(&n.cow).is_some_and(|l| !l.visible);
        if !ok {
            return Err(ChangeError::SelfCheck {
                vg: vg.name,
                what: format!("{} does not read back as a snapshot of {}", n.cow, n.origin),
            });
        }
    }
    Ok(out)
}

/// Adds and removes LV tags, in one commit. Removing a tag that is not there is not an error
/// (a rerun after a crash finds it gone).
pub fn retag(
    root: &Section,
    add: &[(&str, &str)],
    remove: &[(&str, &str)],
    description: &str,
    stamp: &Stamp,
) -> Result<Section, ChangeError> {
    let vg = Vg::from_tree(root)?;
    check_vg(&vg)?;
    let mut out = root.clone();
    let lvs = lvs_mut(&mut out, &vg.name)?;
    for (lv, tag) in remove {
        lv_mut(lvs, &vg.name, lv)?;
        remove_tag(lvs, lv, tag);
    }
    for (lv, tag) in add {
        lv_mut(lvs, &vg.name, lv)?;
        if !add_tag(lvs, lv, tag) {
            return Err(missing(&vg.name, format!("logical_volumes/{lv}/tags")));
        }
    }
    finish(&vg, &mut out, description, stamp)?;
    let check = Vg::from_tree(&out)?;
    let ok = add.iter().all(|(lv, tag)| {
        check
            .lv(lv)
            .is_some_and(|l| l.tags.iter().any(|t| t == tag))
    }) && remove.iter().all(|(lv, tag)| {
        check
            .lv(lv)
            .is_some_and(|l| !l.tags.iter().any(|t| t == tag))
    });
    if !ok {
        return Err(ChangeError::SelfCheck {
            vg: vg.name,
            what: "tags do not read back as written".into(),
        });
    }
    Ok(out)
}

/// Flags every snapshot in `cows` for merging and tags it `rewind_rollback`, in one commit.
/// A member already flagged by rewind is left as it is (a rerun); the caller has checked that
/// none of the origins merges another snapshot.
pub fn mark_set_merging(
    root: &Section,
    cows: &[&str],
    description: &str,
    stamp: &Stamp,
) -> Result<Section, ChangeError> {
    let vg = Vg::from_tree(root)?;
    check_vg(&vg)?;
    let is_thin = |name: &str| vg.lv(name).and_then(|l| l.thin()).is_some();
    let mut todo = Vec::new();
    let mut thin = Vec::new();
    for cow in cows {
        if is_thin(cow) {
            thin.push(*cow);
            continue;
        }
        let snap = vg
            .snapshot(cow)
            .ok_or_else(|| ChangeError::NoSuchSnapshot {
                vg: vg.name.clone(),
                name: (*cow).to_owned(),
            })?
            .clone();
        if let Some(other) = vg.merging_snapshot_of(&snap.origin)
            && other.cow != snap.cow
        {
            return Err(ChangeError::OriginAlreadyMerging {
                vg: vg.name.clone(),
                origin: snap.origin.clone(),
                other: other.cow.clone(),
            });
        }
        todo.push(snap);
    }
    let mut out = root.clone();
    // Thin members: flagged as stock `lvconvert --merge` flags a thin snapshot (`merge` in its
    // segment, hidden); one flagged already (a rerun) keeps its flag.
    let mut thin_origins = Vec::new();
    for name in &thin {
        let origin = match vg.lv(name).and_then(|l| l.thin()).and_then(|t| t.merge) {
            Some(o) => o.to_owned(),
            None => super::thinchange::flag_thin_merge(&mut out, name)?,
        };
        thin_origins.push((*name, origin));
    }
    let lvs = lvs_mut(&mut out, &vg.name)?;
    for snap in &todo {
        if !snap.merging {
            let internal = lv_mut(lvs, &vg.name, &snap.internal)?;
            if let Some(Node::Value(Value::Array(status))) = internal.get_mut("status") {
                status.retain(|v| v.as_str() != Some("VISIBLE"));
            }
            rename_store_key(internal, &snap.internal, "cow_store", "merging_store")
                .map_err(|path| missing(&vg.name, path))?;
        }
    }
    for name in todo
        .iter()
        .map(|s| s.cow.as_str())
        .chain(thin.iter().copied())
    {
        if !add_tag(lvs, name, ROLLBACK) {
            return Err(missing(&vg.name, format!("logical_volumes/{name}/tags")));
        }
    }
    let new_vg = Vg::from_tree(&out)?;
    lvm_lv_order(lvs_mut(&mut out, &vg.name)?, &new_vg, "");
    finish(&vg, &mut out, description, stamp)?;
    let check = Vg::from_tree(&out)?;
    let tagged = |name: &str| {
        check
            .lv(name)
            .is_some_and(|l| l.tags.iter().any(|t| t == ROLLBACK))
    };
    for snap in &todo {
        let ok = check.snapshot(&snap.cow).is_some_and(|s| s.merging) && tagged(&snap.cow);
        if !ok {
            return Err(ChangeError::SelfCheck {
                vg: vg.name,
                what: format!("{} does not read back as merging", snap.cow),
            });
        }
    }
    for (name, origin) in &thin_origins {
        let ok = check.thin_merge_into(origin).map(|l| l.name.as_str()) == Some(*name)
            && check.lv(name).is_some_and(|l| !l.visible)
            && tagged(name);
        if !ok {
            return Err(ChangeError::SelfCheck {
                vg: vg.name,
                what: format!("thin snapshot {name} does not read back as merging"),
            });
        }
    }
    Ok(out)
}

/// Notes on `origin` that its merge from set `set` finished at `time`: the tag
/// `rewind_rolled_back_TIME_SET`, replacing an earlier note. Edits `root` in place and adds no
/// seqno: it rides on the finish's own commit (`change::drop_merged_snapshot`).
pub fn note_rolled_back(
    root: &mut Section,
    vg: &str,
    origin: &str,
    set: &str,
    time: i64,
) -> Result<(), ChangeError> {
    let lvs = lvs_mut(root, vg)?;
    let old: Vec<String> = match lv_mut(lvs, vg, origin)?.value("tags") {
        Some(Value::Array(tags)) => tags
            .iter()
            .filter_map(|t| t.as_str())
            .filter(|t| t.starts_with(ROLLED_BACK))
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    for t in old {
        remove_tag(lvs, origin, &t);
    }
    let tag = format!("{ROLLED_BACK}{time}_{set}");
    if !add_tag(lvs, origin, &tag) {
        return Err(missing(vg, format!("logical_volumes/{origin}/tags")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lvm::sets::{self, PENDING, State};
    use crate::lvm::testvg::{found, linear, snapshot, vg_text};
    use crate::lvm::text::{self, Style};

    fn stamp() -> Stamp {
        Stamp::new("host", 1_764_860_000)
    }

    fn base() -> Section {
        let tags = ["rewind_set_pre", "rewind_members_2", PENDING];
        let text = vg_text(
            "vg0",
            5,
            &[
                linear("root", "Root00", true, &[], &[(0, 50, 0)]),
                linear("var", "Var000", true, &[], &[(0, 20, 50)]),
                snapshot("snapshot3", "Snap03", "var", 20, 8, "old", false),
                linear("old", "Old000", false, &[], &[(0, 2, 90)]),
                linear("root.pre", "Rpre00", true, &tags, &[(0, 5, 70)]),
                linear("var.pre", "Vpre00", true, &tags, &[(0, 5, 75)]),
            ],
        );
        found(text).tree
    }

    fn new(cow: &str, origin: &str) -> NewSnapshot {
        NewSnapshot {
            cow: cow.into(),
            origin: origin.into(),
            chunk_size: 8,
            internal_id: "Abcdef-aaaa-bbbb-cccc-dddd-eeee-ffffff".into(),
        }
    }

    #[test]
    fn cow_lvs_become_snapshots_numbered_after_the_highest_in_use() {
        let out = add_snapshots(
            &base(),
            &[new("root.pre", "root"), new("var.pre", "var")],
            "Write from rewind: snapshot set pre.",
            &stamp(),
        )
        .expect("change");
        let vg = Vg::from_tree(&out).expect("model");
        assert_eq!(vg.seqno, 6);
        let r = vg.snapshot("root.pre").expect("root.pre");
        assert_eq!(
            (r.internal.as_str(), r.origin.as_str()),
            ("snapshot4", "root")
        );
        assert_eq!(vg.snapshot("var.pre").expect("var").internal, "snapshot5");
        assert!(!vg.lv("root.pre").expect("lv").visible);
        let internal = vg.lv("snapshot4").expect("snapshot4");
        assert_eq!(internal.extent_count(), 50);
        // LVM's order: LVs the user sees first (origins and the COWs of visible origins),
        // then the hidden snapshotN LVs.
        let names: Vec<&str> = vg.lvs.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "root",
                "var",
                "old",
                "root.pre",
                "var.pre",
                "snapshot3",
                "snapshot4",
                "snapshot5"
            ]
        );
        let printed = text::print(&out, Style::Disk);
        assert!(printed.contains("snapshot4 {\nid = \"Abcdef-aaaa-bbbb-cccc-dddd-eeee-ffffff\"\nstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\nflags = []\ncreation_time = 1764860000\ncreation_host = \"host\"\nsegment_count = 1\n"), "{printed}");
        // Still pending: the set is not usable yet.
        assert_eq!(sets::sets([&vg])[0].state(), State::Pending);

        let done = retag(
            &out,
            &[],
            &[("root.pre", PENDING), ("var.pre", PENDING)],
            "Write from rewind: snapshot set pre complete.",
            &stamp(),
        )
        .expect("retag");
        let vg = Vg::from_tree(&done).expect("model");
        assert_eq!(vg.seqno, 7);
        assert_eq!(sets::sets([&vg])[0].state(), State::Ok);
        // A rerun of the same retag changes nothing but the seqno.
        let again = retag(&done, &[], &[("root.pre", PENDING)], "x", &stamp()).expect("rerun");
        assert_eq!(
            Vg::from_tree(&again)
                .expect("m")
                .lv("root.pre")
                .expect("lv")
                .tags,
            vg.lv("root.pre").expect("lv").tags
        );
    }

    #[test]
    fn refuses_a_cow_in_use_a_merging_origin_or_a_missing_lv() {
        assert!(add_snapshots(&base(), &[new("old", "root")], "x", &stamp()).is_err());
        assert!(add_snapshots(&base(), &[new("nope", "root")], "x", &stamp()).is_err());
        assert!(add_snapshots(&base(), &[new("root.pre", "root.pre")], "x", &stamp()).is_err());
        let merging = crate::lvm::change::mark_merging(&base(), "old", &stamp()).expect("flag");
        assert!(matches!(
            add_snapshots(&merging, &[new("var.pre", "var")], "x", &stamp()),
            Err(ChangeError::OriginAlreadyMerging { .. })
        ));
    }

    #[test]
    fn a_set_is_flagged_in_one_commit_with_the_rollback_tag() {
        let out = add_snapshots(
            &base(),
            &[new("root.pre", "root"), new("var.pre", "var")],
            "x",
            &stamp(),
        )
        .expect("add");
        // var already has a snapshot, old: flagging var.pre is fine while old does not merge.
        let flagged = mark_set_merging(&out, &["root.pre", "var.pre"], "merge set pre", &stamp())
            .expect("flag");
        let vg = Vg::from_tree(&flagged).expect("model");
        assert_eq!(vg.seqno, out_seqno(&out) + 1);
        for cow in ["root.pre", "var.pre"] {
            assert!(vg.snapshot(cow).expect(cow).merging);
            assert!(vg.lv(cow).expect(cow).tags.iter().any(|t| t == ROLLBACK));
        }
        // A rerun keeps the flags and the tag.
        let again = mark_set_merging(&flagged, &["root.pre"], "again", &stamp()).expect("rerun");
        assert!(
            Vg::from_tree(&again)
                .expect("m")
                .snapshot("root.pre")
                .expect("s")
                .merging
        );
    }

    #[test]
    fn the_finish_of_a_set_member_notes_the_set_on_its_origin() {
        let mut tree = base();
        note_rolled_back(&mut tree, "vg0", "root", "old-set", 1).expect("note");
        note_rolled_back(&mut tree, "vg0", "root", "pre", 1_764_860_000).expect("note");
        let vg = Vg::from_tree(&tree).expect("model");
        assert_eq!(vg.seqno, 5, "no commit of its own");
        let root = vg.lv("root").expect("root");
        assert_eq!(root.tags, ["rewind_rolled_back_1764860000_pre"]);
        assert_eq!(
            crate::lvm::sets::rolled_back(&root.tags),
            Some(("pre".to_owned(), 1_764_860_000))
        );
    }

    fn out_seqno(root: &Section) -> u64 {
        Vg::from_tree(root).expect("model").seqno
    }
}
