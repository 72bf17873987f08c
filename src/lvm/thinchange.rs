//! The metadata change of a deferred thin merge, as stock `lvconvert --merge` writes it when
//! the origin is open (`tools/lvconvert.c` `_lvconvert_merge_thin_snapshot`,
//! `lib/metadata/snapshot_manip.c` `init_snapshot_merge`, `lib/thin/thin.c`
//! `_thin_text_export`): the snapshot's thin segment gains `merge = "<origin>"` after its
//! `origin`, and the snapshot loses `VISIBLE` (so it moves after the visible LVs, where LVM
//! writes hidden ones). `MERGING` is never written: LVM derives it from `merge` on import.

use super::change::{ChangeError, Stamp, check_vg, finish, lv_mut, lvm_lv_order, lvs_mut, missing};
use super::model::Vg;
use super::text::{Entry, Node, Section, Value};

/// Flags the thin snapshot `name` to merge into its origin at the origin's next activation.
/// Refused as LVM refuses it: not a thin snapshot, already flagged, an origin that already
/// merges something, an external origin, or an origin that has classic snapshots.
pub fn mark_thin_merging(
    root: &Section,
    name: &str,
    stamp: &Stamp,
) -> Result<Section, ChangeError> {
    let vg = Vg::from_tree(root)?;
    check_vg(&vg)?;
    let refuse = |why: String| ChangeError::ThinRefused {
        vg: vg.name.clone(),
        why,
    };
    let lv = vg.lv(name).ok_or_else(|| ChangeError::NoSuchSnapshot {
        vg: vg.name.clone(),
        name: name.to_owned(),
    })?;
    let seg = lv.thin().ok_or_else(|| ChangeError::NotASnapshot {
        vg: vg.name.clone(),
        lv: name.to_owned(),
    })?;
    let origin = seg.origin.ok_or_else(|| ChangeError::NotASnapshot {
        vg: vg.name.clone(),
        lv: name.to_owned(),
    })?;
    if let Some(o) = seg.merge {
        return Err(ChangeError::AlreadyMerging {
            vg: vg.name.clone(),
            snapshot: name.to_owned(),
            origin: o.to_owned(),
        });
    }
    let o = vg
        .lv(origin)
        .ok_or_else(|| missing(&vg.name, format!("logical_volumes/{origin}")))?;
    let Some(oseg) = o.thin() else {
        return Err(refuse(format!(
            "{name}'s origin {origin} is not a thin volume (an external origin is read-only)"
        )));
    };
    if oseg.pool != seg.pool {
        return Err(refuse(format!(
            "{name} and {origin} are in different pools"
        )));
    }
    if let Some(other) = vg
        .thin_merge_into(origin)
        .map(|l| l.name.clone())
        .or_else(|| vg.merging_snapshot_of(origin).map(|s| s.cow.clone()))
    {
        return Err(ChangeError::OriginAlreadyMerging {
            vg: vg.name.clone(),
            origin: origin.to_owned(),
            other,
        });
    }
    if vg.is_origin(origin) {
        return Err(refuse(format!(
            "{origin} has classic snapshots; lvm2 does not merge into it (\"Merging into the old snapshot origin ... is not supported\")"
        )));
    }

    let mut out = root.clone();
    let lvs = lvs_mut(&mut out, &vg.name)?;
    let snap = lv_mut(lvs, &vg.name, name)?;
    if let Some(Node::Value(Value::Array(status))) = snap.get_mut("status") {
        status.retain(|v| v.as_str() != Some("VISIBLE"));
    }
    let seg_key = lv
        .segments
        .first()
        .map(|s| s.key.clone())
        .ok_or_else(|| missing(&vg.name, format!("logical_volumes/{name}/segment1")))?;
    let s = snap
        .section_mut(&seg_key)
        .ok_or_else(|| missing(&vg.name, format!("logical_volumes/{name}/{seg_key}")))?;
    let at = s
        .entries
        .iter()
        .position(|e| e.key == "origin")
        .map_or(s.entries.len(), |i| i + 1);
    s.entries.insert(
        at,
        Entry {
            key: "merge".to_owned(),
            node: Node::Value(Value::Str(origin.to_owned())),
        },
    );
    let hidden = Vg::from_tree(&out)?;
    lvm_lv_order(lvs_mut(&mut out, &vg.name)?, &hidden, "");
    let description = format!(
        "Write from rewind: merge thin snapshot {}/{name} into {}/{origin}.",
        vg.name, vg.name
    );
    finish(&vg, &mut out, &description, stamp)?;

    let new = Vg::from_tree(&out)?;
    let ok = new.thin_merge_into(origin).map(|l| l.name.as_str()) == Some(name)
        && new.lv(name).is_some_and(|l| !l.visible);
    if !ok {
        return Err(ChangeError::SelfCheck {
            vg: vg.name,
            what: format!("thin snapshot {name} does not read back as merging"),
        });
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::lvm::text::parse;

    const THIN: &str = include_str!("../../tests/fixtures/text/thin.vg");

    fn stamp() -> Stamp {
        Stamp {
            host: "test".into(),
            time: 1_700_000_000,
        }
    }

    /// The fixture as it was before `lvconvert --merge vg/snap1`.
    fn unflagged() -> Section {
        let t = THIN.replace("\t\t\t\tmerge = \"root\"\n", "").replacen(
            "Snap1A-aaaa-bbbb-cccc-dddd-eeee-ffff00\"\n\t\t\tstatus = [\"READ\", \"WRITE\"]",
            "Snap1A-aaaa-bbbb-cccc-dddd-eeee-ffff00\"\n\t\t\tstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]",
            1,
        );
        parse(t.as_bytes()).unwrap()
    }

    #[test]
    fn flag_is_what_lvconvert_writes() {
        let before = unflagged();
        let out = mark_thin_merging(&before, "snap1", &stamp()).unwrap();
        let got = Vg::from_tree(&out).unwrap();
        let lvm = Vg::from_tree(&parse(THIN.as_bytes()).unwrap()).unwrap();
        // Every LV as stock LVM wrote it after its own lvconvert --merge.
        assert_eq!(got.lvs, lvm.lvs);
        assert_eq!(
            got.seqno,
            Vg::from_tree(&before).unwrap().seqno + 1,
            "one commit"
        );
        // The order of the LVs too: visible first, then the hidden ones as LVM prints them.
        let names: Vec<&str> = got.lvs.iter().map(|l| l.name.as_str()).collect();
        let lvm_names: Vec<&str> = lvm.lvs.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, lvm_names);
    }

    #[test]
    fn refusals() {
        let flagged = parse(THIN.as_bytes()).unwrap();
        for (tree, name, want) in [
            (&flagged, "snap1", "already merging"),
            (&flagged, "snap2", "already has a merging snapshot"),
            (&flagged, "root", "is not a snapshot"),
            (&flagged, "pool", "is not a snapshot"),
            (&flagged, "nosuch", "no snapshot called nosuch"),
        ] {
            let e = mark_thin_merging(tree, name, &stamp())
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{name}: {e}");
        }
    }
}
