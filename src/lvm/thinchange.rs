//! The metadata change of a deferred thin merge, as stock `lvconvert --merge` writes it when
//! the origin is open (`tools/lvconvert.c` `_lvconvert_merge_thin_snapshot`,
//! `lib/metadata/snapshot_manip.c` `init_snapshot_merge`, `lib/thin/thin.c`
//! `_thin_text_export`): the snapshot's thin segment gains `merge = "<origin>"` after its
//! `origin`, and the snapshot loses `VISIBLE` (so it moves after the visible LVs, where LVM
//! writes hidden ones). `MERGING` is never written: LVM derives it from `merge` on import.
//!
//! The finish of such a merge, as LVM's poller does it (`tools/lvconvert_poll.c`
//! `thin_merge_finish`: `swap_lv_identifiers`, then `lv_remove_single` of the old origin, which
//! queues the pool message `delete <old id>` and raises the pool's `transaction_id` by one,
//! `lib/metadata/thin_manip.c` `attach_thin_pool_message`): [`finish_thin_merge`]. The kernel
//! side (the messages) is `flow::thinfinish`'s. LVM keeps the queued message in memory only;
//! rewind writes it into the same commit as a tag on the pool ([`PendingDelete`]) so that a run
//! killed before the message is sent sends it at its next run, and drops the tag in a second
//! commit once the kernel's transaction id has followed ([`clear_pending_delete`]), where LVM's
//! `update_thin_pool_lv` commits a second time.

use super::change::{ChangeError, Stamp, check_vg, finish, lv_mut, lvm_lv_order, lvs_mut, missing};
use super::model::{SegmentKind, Vg};
use super::text::{Entry, Node, Section, Value};

/// The prefix of the pool tag that records a `delete` owed to the kernel:
/// `rewind_thin_delete_<device id>_tid_<transaction id after it>`.
pub const PENDING_DELETE: &str = "rewind_thin_delete_";

/// A `delete <device_id>` and `set_transaction_id <transaction_id - 1> <transaction_id>` that
/// the metadata has committed and the kernel's pool may not have received yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDelete {
    pub pool: String,
    pub device_id: u64,
    /// The pool's transaction id once the messages are sent (the metadata's).
    pub transaction_id: u64,
}

impl PendingDelete {
    /// The pool tag that records it.
    pub fn tag(&self) -> String {
        format!(
            "{PENDING_DELETE}{}_tid_{}",
            self.device_id, self.transaction_id
        )
    }

    /// Every pending delete the pools of `vg` carry, from their tags.
    pub fn of_vg(vg: &Vg) -> Vec<PendingDelete> {
        let mut out = Vec::new();
        for lv in &vg.lvs {
            if !lv
                .segments
                .iter()
                .any(|s| matches!(s.kind, SegmentKind::ThinPool { .. }))
            {
                continue;
            }
            for t in &lv.tags {
                let Some((dev, tid)) = t
                    .strip_prefix(PENDING_DELETE)
                    .and_then(|r| r.split_once("_tid_"))
                else {
                    continue;
                };
                if let (Ok(device_id), Ok(transaction_id)) = (dev.parse(), tid.parse()) {
                    out.push(PendingDelete {
                        pool: lv.name.clone(),
                        device_id,
                        transaction_id,
                    });
                }
            }
        }
        out
    }
}

/// What [`finish_thin_merge`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThinFinish {
    /// The merged snapshot's name (gone from the metadata).
    pub snapshot: String,
    /// The message the pool is owed (also recorded as a pool tag).
    pub delete: PendingDelete,
    /// Thin snapshots of the old origin whose `origin` was dropped.
    pub orphaned: Vec<String>,
}

fn tags_mut(lv: &mut Section) -> &mut Vec<Value> {
    if !matches!(lv.get("tags"), Some(Node::Value(Value::Array(_)))) {
        // LVM writes `tags` right after `flags` (`lib/format_text/export.c` `_print_lv`).
        let at = lv
            .entries
            .iter()
            .position(|e| e.key == "flags")
            .map_or(lv.entries.len(), |i| i + 1);
        lv.entries.retain(|e| e.key != "tags");
        lv.entries.insert(
            at,
            Entry {
                key: "tags".to_owned(),
                node: Node::Value(Value::Array(Vec::new())),
            },
        );
    }
    match lv.get_mut("tags") {
        Some(Node::Value(Value::Array(a))) => a,
        _ => unreachable!("tags was just made an array"),
    }
}

/// Finishes the thin merge flagged into `origin`, whose live table already uses the
/// snapshot's device id, as `thin_merge_finish` leaves the metadata: `origin` keeps its name,
/// uuid, status, flags, tags and creation stamp and takes the snapshot's segment (its device
/// id, without `origin` and `merge`); the snapshot's LV goes (LVM removes the struct that,
/// after the swap, holds the old origin's device); the pool's `transaction_id` rises by one
/// for the `delete <old origin's device id>` it is owed. Thin snapshots of the old origin
/// lose their `origin` (LVM's `detach_pool_lv` clears it: the LV they were taken of is the
/// one removed); thin snapshots of the merged snapshot name `origin` as theirs (it is the
/// same LV struct in LVM). The pool also gets the [`PendingDelete`] tag.
pub fn finish_thin_merge(
    root: &Section,
    origin: &str,
    stamp: &Stamp,
) -> Result<(Section, ThinFinish), ChangeError> {
    let vg = Vg::from_tree(root)?;
    check_vg(&vg)?;
    let o = vg.lv(origin).ok_or_else(|| ChangeError::NoSuchSnapshot {
        vg: vg.name.clone(),
        name: origin.to_owned(),
    })?;
    let oseg = o.thin().ok_or_else(|| ChangeError::ThinRefused {
        vg: vg.name.clone(),
        why: format!("{origin} is not a thin volume"),
    })?;
    let snap = vg
        .thin_merge_into(origin)
        .ok_or_else(|| ChangeError::NotMerging {
            vg: vg.name.clone(),
            snapshot: format!("(thin snapshot of {origin})"),
        })?;
    let sseg = snap.thin().ok_or_else(|| ChangeError::NotASnapshot {
        vg: vg.name.clone(),
        lv: snap.name.clone(),
    })?;
    if sseg.pool != oseg.pool {
        return Err(ChangeError::ThinRefused {
            vg: vg.name.clone(),
            why: format!("{} and {origin} are in different pools", snap.name),
        });
    }
    let pool = vg
        .lv(sseg.pool)
        .ok_or_else(|| missing(&vg.name, format!("logical_volumes/{}", sseg.pool)))?;
    let Some((pool_seg_key, tid)) = pool.segments.iter().find_map(|s| match s.kind {
        SegmentKind::ThinPool { transaction_id, .. } => Some((s.key.clone(), transaction_id)),
        _ => None,
    }) else {
        return Err(ChangeError::ThinRefused {
            vg: vg.name.clone(),
            why: format!("{} is not a thin pool", sseg.pool),
        });
    };
    let new_tid = tid.checked_add(1).ok_or_else(|| ChangeError::ThinRefused {
        vg: vg.name.clone(),
        why: format!("pool {}: transaction_id {tid} cannot be raised", sseg.pool),
    })?;
    let delete = PendingDelete {
        pool: sseg.pool.to_owned(),
        device_id: oseg.device_id,
        transaction_id: new_tid,
    };
    let snapshot = snap.name.clone();
    let mut orphaned = Vec::new();

    let mut out = root.clone();
    let lvs = lvs_mut(&mut out, &vg.name)?;
    let Some(Node::Section(snap_sec)) = lvs.remove(&snapshot) else {
        return Err(missing(&vg.name, format!("logical_volumes/{snapshot}")));
    };
    let o_sec = lv_mut(lvs, &vg.name, origin)?;
    // The origin's own segments make way for the snapshot's, where they were.
    let at = o_sec
        .entries
        .iter()
        .position(|e| e.key.starts_with("segment") && matches!(e.node, Node::Section(_)))
        .unwrap_or(o_sec.entries.len());
    o_sec
        .entries
        .retain(|e| !(e.key.starts_with("segment") && matches!(e.node, Node::Section(_))));
    let mut segs: Vec<Entry> = snap_sec
        .entries
        .iter()
        .filter(|e| e.key.starts_with("segment") && matches!(e.node, Node::Section(_)))
        .cloned()
        .collect();
    for e in &mut segs {
        if let Node::Section(s) = &mut e.node {
            s.remove("merge");
            s.remove("origin");
        }
    }
    let count = i64::try_from(segs.len()).unwrap_or(1);
    for (i, e) in segs.into_iter().enumerate() {
        o_sec.entries.insert(at + i, e);
    }
    o_sec.set("segment_count", Value::Int(count));
    // Other thin LVs' `origin`.
    for e in &mut lvs.entries {
        let Node::Section(lv) = &mut e.node else {
            continue;
        };
        let name = e.key.clone();
        for (_, seg) in lv.entries.iter_mut().filter_map(|x| match &mut x.node {
            Node::Section(s) if x.key.starts_with("segment") => Some((x.key.clone(), s)),
            _ => None,
        }) {
            if seg.str("type") != Some("thin") {
                continue;
            }
            match seg.str("origin") {
                Some(o) if o == origin => {
                    seg.remove("origin");
                    orphaned.push(name.clone());
                }
                Some(o) if o == snapshot => seg.set("origin", Value::Str(origin.to_owned())),
                _ => {}
            }
        }
    }
    let pool_sec = lv_mut(lvs, &vg.name, sseg.pool)?;
    tags_mut(pool_sec).push(Value::Str(delete.tag()));
    let ps = pool_sec.section_mut(&pool_seg_key).ok_or_else(|| {
        missing(
            &vg.name,
            format!("logical_volumes/{}/{pool_seg_key}", sseg.pool),
        )
    })?;
    ps.set(
        "transaction_id",
        Value::Int(
            i64::try_from(new_tid).map_err(|_| ChangeError::ThinRefused {
                vg: vg.name.clone(),
                why: format!("pool {}: transaction_id too large", sseg.pool),
            })?,
        ),
    );
    let description = format!(
        "Write from rewind: finish merge of thin snapshot {}/{snapshot} into {}/{origin}.",
        vg.name, vg.name
    );
    finish(&vg, &mut out, &description, stamp)?;

    let new = Vg::from_tree(&out)?;
    let ok = new.lv(&snapshot).is_none()
        && new.thin_merge_into(origin).is_none()
        && new
            .lv(origin)
            .and_then(|l| l.thin())
            .is_some_and(|t| t.device_id == sseg.device_id && t.origin.is_none())
        && new.lv(origin).is_some_and(|l| l.id == o.id)
        && PendingDelete::of_vg(&new).contains(&delete);
    if !ok {
        return Err(ChangeError::SelfCheck {
            vg: vg.name,
            what: format!("{origin} does not read back as carrying {snapshot}'s device"),
        });
    }
    Ok((
        out,
        ThinFinish {
            snapshot,
            delete,
            orphaned,
        },
    ))
}

/// Drops the [`PendingDelete`] tag `delete` from its pool (the kernel has the messages), in
/// one commit ([`super::setchange::retag`]: the pool's `tags` go when emptied, as LVM's
/// `_out_list` writes no empty list). The tag must be there: a pool without it owes nothing.
pub fn clear_pending_delete(
    root: &Section,
    delete: &PendingDelete,
    stamp: &Stamp,
) -> Result<Section, ChangeError> {
    let vg = Vg::from_tree(root)?;
    let tag = delete.tag();
    if !vg.lv(&delete.pool).is_some_and(|l| l.tags.contains(&tag)) {
        return Err(missing(
            &vg.name,
            format!("logical_volumes/{}/tags/{tag}", delete.pool),
        ));
    }
    let description = format!(
        "Write from rewind: thin pool {}/{} took delete {} (transaction_id {}).",
        vg.name, delete.pool, delete.device_id, delete.transaction_id
    );
    super::setchange::retag(root, &[], &[(&delete.pool, &tag)], &description, stamp)
}

/// The edit of [`mark_thin_merging`] on `out` in place, with LVM's refusals, no seqno or
/// stamp: `merge = "<origin>"` in `name`'s thin segment, `name` hidden. Returns the origin.
pub(super) fn flag_thin_merge(out: &mut Section, name: &str) -> Result<String, ChangeError> {
    let vg = Vg::from_tree(out)?;
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

    let lvs = lvs_mut(out, &vg.name)?;
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
    let hidden = Vg::from_tree(out)?;
    lvm_lv_order(lvs_mut(out, &vg.name)?, &hidden, "");
    Ok(origin.to_owned())
}

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
    let mut out = root.clone();
    let origin = flag_thin_merge(&mut out, name)?;
    let description = format!(
        "Write from rewind: merge thin snapshot {}/{name} into {}/{origin}.",
        vg.name, vg.name
    );
    finish(&vg, &mut out, &description, stamp)?;

    let new = Vg::from_tree(&out)?;
    let ok = new.thin_merge_into(&origin).map(|l| l.name.as_str()) == Some(name)
        && new.lv(name).is_some_and(|l| !l.visible);
    if !ok {
        return Err(ChangeError::SelfCheck {
            vg: vg.name,
            what: format!("thin snapshot {name} does not read back as merging"),
        });
    }
    Ok(out)
}

/// A thin snapshot to add to a thin LV of the same VG: its name, the LV id to give it (LVM's
/// dashed 38-character form), its origin and its tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewThinSnapshot {
    pub name: String,
    pub id: String,
    pub origin: String,
    pub tags: Vec<String>,
}

/// What one pool is owed once [`add_thin_snapshots`] is committed: `create_snap <new> <origin>`
/// for each new snapshot, in order, then `set_transaction_id <from> <to>`; each origin must
/// be suspended while its `create_snap` is sent (the kernel's thin-provisioning rule).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolCreates {
    pub pool: String,
    /// The pool's transaction id before (the kernel's, when it is in step) and after.
    pub from: u64,
    pub to: u64,
    /// (new device id, origin's device id), in the order the snapshots were asked for.
    pub creates: Vec<(u64, u64)>,
}

impl PoolCreates {
    /// The messages for the pool's `-tpool` device, in the order libdm sends them
    /// (`device_mapper/libdm-deptree.c` `_thin_pool_node_send_messages`: the queued messages,
    /// then the transaction id).
    pub fn messages(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .creates
            .iter()
            .map(|(new, origin)| format!("create_snap {new} {origin}"))
            .collect();
        out.push(format!("set_transaction_id {} {}", self.from, self.to));
        out
    }
}

/// Adds thin snapshots of thin LVs, in one commit, as stock `lvcreate -s VG/THIN` writes each
/// (`lib/metadata/lv_manip.c` `_lv_create_an_lv`, `lib/metadata/thin_manip.c`
/// `get_free_pool_device_id`, `attach_thin_pool_message`, `lv_set_activation_skip`): a visible
/// LV `READ, WRITE, VISIBLE` with the flag `ACTIVATION_SKIP` (LVM's default
/// `auto_set_activation_skip`), one `thin` segment over the origin's extent count, in the
/// origin's pool, `transaction_id` = the pool's before the change, `device_id` = one more than
/// the highest device id in the pool, `origin`. The pool's `transaction_id` rises by one per
/// pool, whatever the number of snapshots in it: LVM raises it for the first queued message
/// only, and the kernel's pool takes every `create_snap` and one `set_transaction_id`, so
/// LVM's activation check (the kernel's id equal to the metadata's or one behind) holds if
/// the messages never arrive. One snapshot per pool is byte for byte what one `lvcreate -s`
/// writes.
///
/// Refused: an origin that is not a thin LV, an external origin (a thin LV over a read-only
/// external origin: not handled), an origin flagged to merge or merging into, a pool with a
/// `delete` still owed to the kernel ([`PendingDelete`]: its device id might be the one
/// handed out again), a name in use.
pub fn add_thin_snapshots(
    root: &Section,
    new: &[NewThinSnapshot],
    description: &str,
    stamp: &Stamp,
) -> Result<(Section, Vec<PoolCreates>), ChangeError> {
    let vg = Vg::from_tree(root)?;
    check_vg(&vg)?;
    let refuse = |why: String| ChangeError::ThinRefused {
        vg: vg.name.clone(),
        why,
    };
    let owed = PendingDelete::of_vg(&vg);
    let mut pools: Vec<PoolCreates> = Vec::new();
    let mut next_id: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    let mut planned: Vec<(&NewThinSnapshot, String, u64, u64, u64)> = Vec::new();
    for n in new {
        if vg.lv(&n.name).is_some() || new.iter().filter(|m| m.name == n.name).count() > 1 {
            return Err(refuse(format!("the name {} is in use", n.name)));
        }
        let o = vg
            .lv(&n.origin)
            .ok_or_else(|| missing(&vg.name, format!("logical_volumes/{}", n.origin)))?;
        let seg = o
            .thin()
            .ok_or_else(|| refuse(format!("{} is not a thin volume", n.origin)))?;
        if seg.external_origin.is_some() {
            return Err(refuse(format!(
                "{} has an external origin (not handled)",
                n.origin
            )));
        }
        if seg.merge.is_some() || vg.thin_merge_into(&n.origin).is_some() {
            return Err(refuse(format!("{} is merging", n.origin)));
        }
        if owed.iter().any(|d| d.pool == seg.pool) {
            return Err(refuse(format!(
                "pool {} is still owed a delete by a finished merge (rewind poll sends it)",
                seg.pool
            )));
        }
        let pool = vg
            .lv(seg.pool)
            .ok_or_else(|| missing(&vg.name, format!("logical_volumes/{}", seg.pool)))?;
        let Some(tid) = pool.segments.iter().find_map(|s| match s.kind {
            SegmentKind::ThinPool { transaction_id, .. } => Some(transaction_id),
            _ => None,
        }) else {
            return Err(refuse(format!("{} is not a thin pool", seg.pool)));
        };
        let id = match next_id.get_mut(seg.pool) {
            Some(id) => id,
            None => {
                // `get_free_pool_device_id`: the highest id among the pool's users, plus one.
                let high = vg
                    .lvs
                    .iter()
                    .filter_map(|l| l.thin())
                    .filter(|t| t.pool == seg.pool)
                    .map(|t| t.device_id)
                    .max()
                    .unwrap_or(0);
                next_id.entry(seg.pool.to_owned()).or_insert(high)
            }
        };
        *id += 1;
        // DM_THIN_MAX_DEVICE_ID: device ids are 24 bits.
        if *id >= 1 << 24 {
            return Err(refuse(format!("pool {}: no free device id", seg.pool)));
        }
        let device_id = *id;
        match pools.iter_mut().find(|p| p.pool == seg.pool) {
            Some(p) => p.creates.push((device_id, seg.device_id)),
            None => pools.push(PoolCreates {
                pool: seg.pool.to_owned(),
                from: tid,
                to: tid.checked_add(1).ok_or_else(|| {
                    refuse(format!("pool {}: transaction_id too large", seg.pool))
                })?,
                creates: vec![(device_id, seg.device_id)],
            }),
        }
        planned.push((n, seg.pool.to_owned(), tid, device_id, seg.extent_count));
    }

    let to_i64 = |v: u64| {
        i64::try_from(v).map_err(|_| ChangeError::ThinRefused {
            vg: vg.name.clone(),
            why: format!("{v} is too large"),
        })
    };
    let mut out = root.clone();
    let lvs = lvs_mut(&mut out, &vg.name)?;
    for (n, pool, tid, device_id, extents) in &planned {
        let segment = Section {
            entries: vec![
                value("start_extent", Value::Int(0)),
                value("extent_count", Value::Int(to_i64(*extents)?)),
                value("type", Value::Str("thin".into())),
                value("thin_pool", Value::Str(pool.clone())),
                value("transaction_id", Value::Int(to_i64(*tid)?)),
                value("device_id", Value::Int(to_i64(*device_id)?)),
                value("origin", Value::Str(n.origin.clone())),
            ],
        };
        let mut entries = vec![
            value("id", Value::Str(n.id.clone())),
            value("status", Value::str_array(&["READ", "WRITE", "VISIBLE"])),
            value("flags", Value::str_array(&["ACTIVATION_SKIP"])),
        ];
        if !n.tags.is_empty() {
            let tags: Vec<&str> = n.tags.iter().map(String::as_str).collect();
            entries.push(value("tags", Value::str_array(&tags)));
        }
        entries.extend([
            value("creation_time", Value::Int(stamp.time)),
            value("creation_host", Value::Str(stamp.host.clone())),
            value("segment_count", Value::Int(1)),
            Entry {
                key: "segment1".to_owned(),
                node: Node::Section(segment),
            },
        ]);
        lvs.entries.push(Entry {
            key: n.name.clone(),
            node: Node::Section(Section { entries }),
        });
    }
    for p in &pools {
        let pool_sec = lv_mut(lvs, &vg.name, &p.pool)?;
        set_pool_transaction_id(pool_sec, &vg.name, &p.pool, p.to)?;
    }
    let new_vg = Vg::from_tree(&out)?;
    lvm_lv_order(lvs_mut(&mut out, &vg.name)?, &new_vg, "");
    finish(&vg, &mut out, description, stamp)?;

    let check = Vg::from_tree(&out)?;
    for (n, pool, _, device_id, _) in &planned {
        let ok = check.lv(&n.name).is_some_and(|l| {
            l.visible
                && l.thin().is_some_and(|t| {
                    t.pool == pool && t.device_id == *device_id && t.origin == Some(&n.origin)
                })
        });
        if !ok {
            return Err(ChangeError::SelfCheck {
                vg: vg.name,
                what: format!(
                    "{} does not read back as a thin snapshot of {}",
                    n.name, n.origin
                ),
            });
        }
    }
    Ok((out, pools))
}

/// Removes the thin LV `name`, as stock `lvremove` of an inactive thin LV commits it
/// (`lib/metadata/lv_manip.c` `lv_remove_single` → `detach_pool_lv`, which queues
/// `delete <device id>` and raises the pool's `transaction_id` by one): the LV goes, thin
/// snapshots of it lose their `origin`, and the pool records the owed message as a
/// [`PendingDelete`] tag, so that `rewind poll` (or the caller) sends it and a kill before
/// that leaves it owed, not lost. Refused for a thin LV flagged to merge or merged into.
pub fn remove_thin_lv(
    root: &Section,
    name: &str,
    description: &str,
    stamp: &Stamp,
) -> Result<(Section, PendingDelete), ChangeError> {
    let vg = Vg::from_tree(root)?;
    check_vg(&vg)?;
    let refuse = |why: String| ChangeError::ThinRefused {
        vg: vg.name.clone(),
        why,
    };
    let t = vg
        .lv(name)
        .and_then(|l| l.thin())
        .ok_or_else(|| refuse(format!("{name} is not a thin volume")))?;
    if t.merge.is_some() || vg.thin_merge_into(name).is_some() {
        return Err(refuse(format!("{name} is merging")));
    }
    let pool = t.pool.to_owned();
    let tid = vg
        .lv(&pool)
        .and_then(|l| {
            l.segments.iter().find_map(|s| match s.kind {
                SegmentKind::ThinPool { transaction_id, .. } => Some(transaction_id),
                _ => None,
            })
        })
        .ok_or_else(|| refuse(format!("{pool} is not a thin pool")))?;
    if PendingDelete::of_vg(&vg).iter().any(|d| d.pool == pool) {
        return Err(refuse(format!("pool {pool} is still owed a delete")));
    }
    let delete = PendingDelete {
        pool: pool.clone(),
        device_id: t.device_id,
        transaction_id: tid
            .checked_add(1)
            .ok_or_else(|| refuse(format!("pool {pool}: transaction_id too large")))?,
    };
    let mut out = root.clone();
    let lvs = lvs_mut(&mut out, &vg.name)?;
    lvs.remove(name);
    for e in &mut lvs.entries {
        let Node::Section(lv) = &mut e.node else {
            continue;
        };
        for x in &mut lv.entries {
            if let Node::Section(seg) = &mut x.node
                && x.key.starts_with("segment")
                && seg.str("type") == Some("thin")
                && seg.str("origin") == Some(name)
            {
                seg.remove("origin");
            }
        }
    }
    let pool_sec = lv_mut(lvs, &vg.name, &pool)?;
    tags_mut(pool_sec).push(Value::Str(delete.tag()));
    set_pool_transaction_id(pool_sec, &vg.name, &pool, delete.transaction_id)?;
    finish(&vg, &mut out, description, stamp)?;
    let check = Vg::from_tree(&out)?;
    if check.lv(name).is_some() || !PendingDelete::of_vg(&check).contains(&delete) {
        return Err(ChangeError::SelfCheck {
            vg: vg.name,
            what: format!("{name} does not read back as removed"),
        });
    }
    Ok((out, delete))
}

/// Undoes [`add_thin_snapshots`] whose messages the kernel's pool did not take (its
/// transaction id still the one before): the thin snapshots `names` removed and their pool's
/// `transaction_id` put back to `kernel_tid`, in one commit, as LVM's `_lv_create_an_lv`
/// restores the pool's id when the origin's suspend (which sends the messages) failed. Every
/// LV named must be a thin LV in `pool`; the caller has sent the pool `delete` of each
/// device id first (a `create_snap` that got through before a later message failed).
pub fn revert_thin_snapshots(
    root: &Section,
    pool: &str,
    names: &[String],
    kernel_tid: u64,
    description: &str,
    stamp: &Stamp,
) -> Result<Section, ChangeError> {
    let vg = Vg::from_tree(root)?;
    check_vg(&vg)?;
    let refuse = |why: String| ChangeError::ThinRefused {
        vg: vg.name.clone(),
        why,
    };
    for n in names {
        let ok = vg
            .lv(n)
            .and_then(|l| l.thin())
            .is_some_and(|t| t.pool == pool);
        if !ok {
            return Err(refuse(format!("{n} is not a thin volume of pool {pool}")));
        }
    }
    let tid = vg
        .lv(pool)
        .and_then(|l| {
            l.segments.iter().find_map(|s| match s.kind {
                SegmentKind::ThinPool { transaction_id, .. } => Some(transaction_id),
                _ => None,
            })
        })
        .ok_or_else(|| refuse(format!("{pool} is not a thin pool")))?;
    if kernel_tid.checked_add(1) != Some(tid) {
        return Err(refuse(format!(
            "pool {pool}: transaction_id {tid} is not one ahead of the kernel's {kernel_tid}"
        )));
    }
    let mut out = root.clone();
    let lvs = lvs_mut(&mut out, &vg.name)?;
    for n in names {
        lvs.remove(n);
    }
    let pool_sec = lv_mut(lvs, &vg.name, pool)?;
    set_pool_transaction_id(pool_sec, &vg.name, pool, kernel_tid)?;
    finish(&vg, &mut out, description, stamp)?;
    let check = Vg::from_tree(&out)?;
    if names.iter().any(|n| check.lv(n).is_some()) {
        return Err(ChangeError::SelfCheck {
            vg: vg.name,
            what: "a reverted thin snapshot is still there".into(),
        });
    }
    Ok(out)
}

/// Sets the `transaction_id` of the thin-pool segment of `pool_sec`, pool `pool`'s LV section.
fn set_pool_transaction_id(
    pool_sec: &mut Section,
    vg: &str,
    pool: &str,
    tid: u64,
) -> Result<(), ChangeError> {
    let key = pool_sec
        .entries
        .iter()
        .find_map(|e| match &e.node {
            Node::Section(s)
                if e.key.starts_with("segment") && s.str("type") == Some("thin-pool") =>
            {
                Some(e.key.clone())
            }
            _ => None,
        })
        .ok_or_else(|| missing(vg, format!("logical_volumes/{pool}/segment1")))?;
    let tid = i64::try_from(tid).map_err(|_| ChangeError::ThinRefused {
        vg: vg.to_owned(),
        why: format!("pool {pool}: transaction_id too large"),
    })?;
    pool_sec
        .section_mut(&key)
        .ok_or_else(|| missing(vg, format!("logical_volumes/{pool}/{key}")))?
        .set("transaction_id", Value::Int(tid));
    Ok(())
}

fn value(key: &str, v: Value) -> Entry {
    Entry {
        key: key.to_owned(),
        node: Node::Value(v),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::lvm::text::{self, parse};

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

    #[test]
    fn finish_is_what_lvms_poller_leaves() {
        let flagged = parse(THIN.as_bytes()).unwrap();
        let (out, done) = finish_thin_merge(&flagged, "root", &stamp()).unwrap();
        assert_eq!(done.snapshot, "snap1");
        assert_eq!(
            done.delete,
            PendingDelete {
                pool: "pool".into(),
                device_id: 1,
                transaction_id: 4,
            }
        );
        assert_eq!(done.orphaned, ["snap2"]);
        let before = Vg::from_tree(&flagged).unwrap();
        let got = Vg::from_tree(&out).unwrap();
        assert_eq!(got.seqno, before.seqno + 1, "one commit");
        assert!(got.lv("snap1").is_none());
        // root: its own name, uuid, status and flags; snap1's device id and segment (as
        // stock LVM 2.03.16 showed in the VM scenario thin-merge: thin ThId 2, TransId 1).
        let root = got.lv("root").unwrap();
        let old = before.lv("root").unwrap();
        assert_eq!(
            (&root.id, &root.status, &root.flags),
            (&old.id, &old.status, &old.flags)
        );
        let t = root.thin().unwrap();
        assert_eq!((t.device_id, t.origin, t.merge), (2, None, None));
        assert!(matches!(
            root.segments[0].kind,
            SegmentKind::Thin {
                transaction_id: 1,
                ..
            }
        ));
        // snap2 keeps its device, loses its origin; the pool's id is one up, with the tag.
        let s2 = got.lv("snap2").unwrap().thin().unwrap();
        assert_eq!((s2.device_id, s2.origin), (3, None));
        let pool = got.lv("pool").unwrap();
        assert!(matches!(
            pool.segments[0].kind,
            SegmentKind::ThinPool {
                transaction_id: 4,
                ..
            }
        ));
        assert_eq!(pool.tags, ["rewind_thin_delete_1_tid_4"]);
        assert_eq!(
            PendingDelete::of_vg(&got),
            std::slice::from_ref(&done.delete)
        );
        // The second commit drops the tag, and only that.
        let cleared = clear_pending_delete(&out, &done.delete, &stamp()).unwrap();
        let c = Vg::from_tree(&cleared).unwrap();
        assert_eq!(c.seqno, got.seqno + 1);
        assert!(c.lv("pool").unwrap().tags.is_empty());
        assert!(!text::print(&cleared, text::Style::Disk).contains("tags"));
        let mut same = c.lvs.clone();
        for l in &mut same {
            l.tags.clear();
        }
        let mut want = got.lvs.clone();
        for l in &mut want {
            l.tags.clear();
        }
        assert_eq!(same, want);
        assert!(PendingDelete::of_vg(&c).is_empty());
        // Again: nothing to drop.
        assert!(clear_pending_delete(&cleared, &done.delete, &stamp()).is_err());
        // A finished merge cannot be finished again.
        assert!(matches!(
            finish_thin_merge(&out, "root", &stamp()),
            Err(ChangeError::NotMerging { .. })
        ));
    }

    #[test]
    fn snapshots_of_the_merged_snapshot_follow_it() {
        // snap2 taken of snap1 (not of root): after the swap its origin is root's name.
        let t = THIN.replacen(
            "device_id = 3\n\t\t\t\torigin = \"root\"",
            "device_id = 3\n\t\t\t\torigin = \"snap1\"",
            1,
        );
        assert_ne!(t, THIN);
        let (out, done) =
            finish_thin_merge(&parse(t.as_bytes()).unwrap(), "root", &stamp()).unwrap();
        assert!(done.orphaned.is_empty());
        let got = Vg::from_tree(&out).unwrap();
        assert_eq!(
            got.lv("snap2").unwrap().thin().unwrap().origin,
            Some("root")
        );
    }

    #[test]
    fn pool_tags_are_kept_beside_the_pending_one() {
        let t = THIN.replacen(
            "ffff00\"\n\t\t\tstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\n\t\t\tflags = []",
            "ffff00\"\n\t\t\tstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\n\t\t\tflags = []\n\t\t\ttags = [\"mine\"]",
            1,
        );
        assert_ne!(t, THIN);
        let (out, done) =
            finish_thin_merge(&parse(t.as_bytes()).unwrap(), "root", &stamp()).unwrap();
        let got = Vg::from_tree(&out).unwrap();
        assert_eq!(
            got.lv("pool").unwrap().tags,
            ["mine", "rewind_thin_delete_1_tid_4"]
        );
        let c = clear_pending_delete(&out, &done.delete, &stamp()).unwrap();
        assert_eq!(
            Vg::from_tree(&c).unwrap().lv("pool").unwrap().tags,
            ["mine"]
        );
    }

    fn snap(name: &str, origin: &str) -> NewThinSnapshot {
        NewThinSnapshot {
            name: name.into(),
            id: format!("{:0<6}-aaaa-bbbb-cccc-dddd-eeee-ffff00", name),
            origin: origin.into(),
            tags: vec!["rewind_set_s1".into(), "rewind_pending".into()],
        }
    }

    #[test]
    fn a_thin_snapshot_is_what_lvcreate_s_writes() {
        let before = unflagged();
        let (out, pools) =
            add_thin_snapshots(&before, &[snap("snap3", "root")], "d", &stamp()).unwrap();
        // The pool was at 3 with devices 1-3: the new device is 4, taken at transaction 3.
        assert_eq!(
            pools,
            vec![PoolCreates {
                pool: "pool".into(),
                from: 3,
                to: 4,
                creates: vec![(4, 1)],
            }]
        );
        assert_eq!(
            pools[0].messages(),
            ["create_snap 4 1", "set_transaction_id 3 4"]
        );
        let text = text::print(&out, text::Style::Disk);
        let expected = "snap3 {\nid = \"snap30-aaaa-bbbb-cccc-dddd-eeee-ffff00\"\n\
            status = [\"READ\", \"WRITE\", \"VISIBLE\"]\nflags = [\"ACTIVATION_SKIP\"]\n\
            tags = [\"rewind_set_s1\", \"rewind_pending\"]\ncreation_time = 1700000000\n\
            creation_host = \"test\"\nsegment_count = 1\n\nsegment1 {\nstart_extent = 0\n\
            extent_count = 10\n\ntype = \"thin\"\nthin_pool = \"pool\"\ntransaction_id = 3\n\
            device_id = 4\norigin = \"root\"\n}\n}\n";
        assert!(text.contains(expected), "{text}");
        let vg = Vg::from_tree(&out).unwrap();
        let names: Vec<&str> = vg.lvs.iter().map(|l| l.name.as_str()).collect();
        // Visible LVs first, the new one last among them (LVM appends and prints visible
        // LVs first).
        assert_eq!(&names[..5], ["pool", "root", "snap2", "snap1", "snap3"]);
        assert!(vg.lvs[5..].iter().all(|l| !l.visible));
        let pool_tid = vg.lvs[0].segments.iter().find_map(|s| match s.kind {
            SegmentKind::ThinPool { transaction_id, .. } => Some(transaction_id),
            _ => None,
        });
        assert_eq!(pool_tid, Some(4));
        // Everything else as it was.
        let old = Vg::from_tree(&before).unwrap();
        for l in &old.lvs {
            if l.name != "pool" {
                assert_eq!(Some(l), vg.lv(&l.name), "{}", l.name);
            }
        }
    }

    #[test]
    fn several_snapshots_in_one_pool_take_one_transaction() {
        let (out, pools) = add_thin_snapshots(
            &unflagged(),
            &[snap("a", "root"), snap("b", "snap2")],
            "d",
            &stamp(),
        )
        .unwrap();
        assert_eq!(
            pools[0].messages(),
            [
                "create_snap 4 1",
                "create_snap 5 3",
                "set_transaction_id 3 4"
            ]
        );
        let vg = Vg::from_tree(&out).unwrap();
        let t = |n: &str| vg.lv(n).unwrap().thin().unwrap().device_id;
        assert_eq!((t("a"), t("b")), (4, 5));
    }

    #[test]
    fn thin_snapshots_are_refused_where_lvm_would_go_wrong() {
        let flagged = parse(THIN.as_bytes()).unwrap();
        let refused = |root: &Section, n: NewThinSnapshot| {
            let e = add_thin_snapshots(root, &[n], "d", &stamp()).unwrap_err();
            e.to_string()
        };
        assert!(refused(&flagged, snap("x", "root")).contains("merging"));
        assert!(refused(&unflagged(), snap("snap2", "root")).contains("in use"));
        assert!(refused(&unflagged(), snap("x", "pool")).contains("not a thin volume"));
        let (done, _) = finish_thin_merge(&flagged, "root", &stamp()).unwrap();
        assert!(refused(&done, snap("x", "root")).contains("owed a delete"));
    }

    #[test]
    fn a_thin_snapshot_the_pool_never_took_is_reverted_to_the_metadata_before() {
        let before = unflagged();
        let (added, _) = add_thin_snapshots(
            &before,
            &[snap("a", "root"), snap("b", "snap2")],
            "d",
            &stamp(),
        )
        .unwrap();
        let names = ["a".to_owned(), "b".to_owned()];
        let out = revert_thin_snapshots(&added, "pool", &names, 3, "d", &stamp()).unwrap();
        let (old, new) = (
            Vg::from_tree(&before).unwrap(),
            Vg::from_tree(&out).unwrap(),
        );
        assert_eq!(
            old.lvs, new.lvs,
            "every LV, the pool's transaction id 3 again"
        );
        assert_eq!(new.seqno, old.seqno + 2);
        // Only when the kernel is exactly one behind, and only thin LVs of that pool.
        assert!(revert_thin_snapshots(&added, "pool", &names, 4, "d", &stamp()).is_err());
        assert!(revert_thin_snapshots(&added, "pool", &names, 2, "d", &stamp()).is_err());
        let wrong = ["pool_tmeta".to_owned()];
        assert!(revert_thin_snapshots(&added, "pool", &wrong, 3, "d", &stamp()).is_err());
    }

    #[test]
    fn a_thin_lv_is_removed_as_lvremove_commits_it_with_its_delete_owed() {
        let before = unflagged();
        let (out, d) = remove_thin_lv(&before, "snap2", "d", &stamp()).unwrap();
        assert_eq!(
            d,
            PendingDelete {
                pool: "pool".into(),
                device_id: 3,
                transaction_id: 4
            }
        );
        let vg = Vg::from_tree(&out).unwrap();
        assert!(vg.lv("snap2").is_none());
        assert_eq!(PendingDelete::of_vg(&vg), std::slice::from_ref(&d));
        // The tag dropped once the kernel took it: the pool as stock lvremove leaves it.
        let done = clear_pending_delete(&out, &d, &stamp()).unwrap();
        let vg = Vg::from_tree(&done).unwrap();
        let pool = vg.lv("pool").unwrap();
        assert!(pool.tags.is_empty());
        assert!(pool.segments.iter().any(|s| matches!(
            s.kind,
            SegmentKind::ThinPool {
                transaction_id: 4,
                ..
            }
        )));
        // The origin of snapshots goes with it; a second delete waits for the first.
        let (out2, _) = remove_thin_lv(&before, "root", "d", &stamp()).unwrap();
        let vg2 = Vg::from_tree(&out2).unwrap();
        assert!(vg2.lv("snap2").unwrap().thin().unwrap().origin.is_none());
        assert!(remove_thin_lv(&out, "root", "d", &stamp()).is_err());
        assert!(remove_thin_lv(&before, "pool", "d", &stamp()).is_err());
    }
}
