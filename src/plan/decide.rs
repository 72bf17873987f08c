//! Phase 1 of a plan: what was asked for, and whether it may be done.
//!
//! Requests come from the metadata (merges already flagged, by `lvconvert --merge` or by
//! rewind), from `rd.rewind=` (rollbacks to flag now) and from `rd.lvm.lv=` and the config
//! (volumes to activate). Every check that can refuse a rollback runs here, before anything is
//! written (invariant 3): the VG is complete and unambiguous (7), the name is a classic
//! snapshot of a plain origin with no other merge, the VG can be written, and the COW store
//! is valid (5). A refusal changes nothing and becomes a note saying why.

use crate::lvm::assemble::{Assembly, FoundVg};
use crate::lvm::change::{ChangeError, Stamp};
use crate::lvm::cow::{self, CowError, CowHeader};
use crate::lvm::layout::LvRef;
use crate::lvm::model::{ModelError, Snapshot, Vg};
use crate::lvm::thinchange::mark_thin_merging;
use crate::plan::cmdline::{Cmdline, RollbackTarget};
use serde::Serialize;

/// The LVM tag that puts a snapshot's COW LV into a snapshot set: `rd.rewind=NAME` rolls back
/// every snapshot tagged `rewind_set_NAME` together, or none of them.
pub const SET_TAG_PREFIX: &str = "rewind_set_";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// A message for the console and `rewind plan`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    pub level: Level,
    pub message: String,
}

/// A snapshot to flag for merging: the metadata commit that must precede every table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flag {
    pub vg: String,
    pub vg_id: String,
    /// The snapshot's name (its COW LV).
    pub snapshot: String,
    pub origin: String,
}

/// An LV to activate, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Activate {
    pub vg: String,
    pub vg_id: String,
    pub lv: String,
    pub reason: Reason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The origin of a merge (flagged before, or by this run).
    Merge,
    /// Named by `rd.lvm.lv=` or the config.
    Requested,
}

/// An origin that must not be activated at all (invariant 2): it is flagged, but its merge
/// cannot be set up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hold {
    pub vg: String,
    pub vg_id: String,
    pub origin: String,
    pub why: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub flags: Vec<Flag>,
    pub activate: Vec<Activate>,
    pub hold: Vec<Hold>,
    pub notes: Vec<Note>,
}

impl Decision {
    fn note(&mut self, level: Level, message: String) {
        self.notes.push(Note { level, message });
    }

    /// A snapshot to flag now, and its origin to activate through the merge.
    fn flag(&mut self, vg: &FoundVg, snap: &Snapshot) {
        self.flags.push(Flag {
            vg: vg.name.clone(),
            vg_id: vg.id.clone(),
            snapshot: snap.cow.clone(),
            origin: snap.origin.clone(),
        });
        self.activate(vg, &snap.origin, Reason::Merge);
    }

    fn activate(&mut self, vg: &FoundVg, lv: &str, reason: Reason) {
        if let Some(a) = self
            .activate
            .iter_mut()
            .find(|a| a.vg_id == vg.id && a.lv == lv)
        {
            if reason == Reason::Merge {
                a.reason = Reason::Merge;
            }
            return;
        }
        self.activate.push(Activate {
            vg: vg.name.clone(),
            vg_id: vg.id.clone(),
            lv: lv.to_owned(),
            reason,
        });
    }
}

/// Reads the first bytes of a snapshot's COW store (the executor reads the disk; tests give
/// bytes).
pub type CowReader<'a> = dyn FnMut(&FoundVg, &Snapshot) -> Result<Vec<u8>, String> + 'a;

/// Why a snapshot cannot be rolled back (or merged); each names it as `VG/LV`. Nothing is
/// changed when one is found (invariant 3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "{lv} is an origin, not a snapshot: name the snapshot to roll back to (lvs -o name,origin {vg})"
    )]
    IsOrigin { lv: String, vg: String },
    #[error("{lv} is not a snapshot")]
    NotASnapshot { lv: String },
    #[error("{lv}: no such logical volume")]
    NoSuchLv { lv: String },
    #[error("{lv}: origin {origin} is already merging snapshot {other}; one merge at a time")]
    OriginMerging {
        lv: String,
        origin: String,
        other: String,
    },
    #[error(
        "{lv}: {part} is not a plain (linear or striped) volume; rewind merges classic snapshots only"
    )]
    NotPlain { lv: String, part: String },
    /// Stock LVM reads a snapshot whose COW is itself an origin as that origin, not as a
    /// snapshot, and `lvconvert --merge` refuses it ("Failed to find logical volume").
    #[error(
        "{lv} is itself the origin of snapshot {other}; stock LVM does not merge it (lvconvert --merge refuses it)"
    )]
    CowIsOrigin { lv: String, other: String },
    #[error("{lv}: {part} is missing")]
    Missing { lv: String, part: String },
    #[error("{lv}: the volume group cannot be written: {source}")]
    NotWritable { lv: String, source: Box<ModelError> },
    #[error("{lv}: cannot read the snapshot's store: {why}")]
    CowUnreadable { lv: String, why: String },
    /// Invariant 5: an invalid snapshot is never merged.
    #[error("{lv}: {source}")]
    BadCow { lv: String, source: CowError },
}

/// Checks the COW store of `snap` (invariant 5).
fn cow_ok(vg: &FoundVg, snap: &Snapshot, read: &mut CowReader<'_>) -> Result<CowHeader, Refusal> {
    let lv = format!("{}/{}", vg.name, snap.cow);
    let bytes = match read(vg, snap) {
        Ok(b) => b,
        Err(why) => return Err(Refusal::CowUnreadable { lv, why }),
    };
    let chunk = u32::try_from(snap.chunk_size).unwrap_or(u32::MAX);
    cow::check(&bytes, chunk).map_err(|source| Refusal::BadCow { lv, source })
}

/// Why `name` in `vg` cannot be rolled back, or the snapshot to flag (None: already flagged).
pub fn check_rollback<'v>(
    vg: &'v FoundVg,
    model: &'v Vg,
    name: &str,
    read: &mut CowReader<'_>,
) -> Result<Option<&'v Snapshot>, Refusal> {
    let who = format!("{}/{name}", vg.name);
    let snap = model.snapshot(name).ok_or_else(|| match model.lv(name) {
        Some(_) if model.is_origin(name) => Refusal::IsOrigin {
            lv: who.clone(),
            vg: vg.name.clone(),
        },
        Some(_) => Refusal::NotASnapshot { lv: who.clone() },
        None => Refusal::NoSuchLv { lv: who.clone() },
    })?;
    if snap.merging {
        return Ok(None);
    }
    if let Some(other) = model.merging_snapshot_of(&snap.origin) {
        return Err(Refusal::OriginMerging {
            lv: who,
            origin: snap.origin.clone(),
            other: other.cow.clone(),
        });
    }
    if let Some(other) = model.snapshots_of(&snap.cow).next() {
        return Err(Refusal::CowIsOrigin {
            lv: who,
            other: format!("{}/{}", vg.name, other.cow),
        });
    }
    for lv in [&snap.origin, &snap.cow] {
        let part = format!("{}/{lv}", vg.name);
        match model.lv(lv) {
            Some(l) if l.is_plain() => {}
            Some(_) => return Err(Refusal::NotPlain { lv: who, part }),
            None => return Err(Refusal::Missing { lv: who, part }),
        }
    }
    model
        .check_writable()
        .map_err(|source| Refusal::NotWritable {
            lv: who.clone(),
            source: Box::new(source),
        })?;
    cow_ok(vg, snap, read)?;
    Ok(Some(snap))
}

/// True when `vg/lv` names a thin snapshot (a thin LV with an origin) in a VG of that name.
fn is_thin_snapshot(assembly: &Assembly, vg: &str, lv: &str) -> bool {
    assembly.vgs_named(vg).any(|v| {
        v.model
            .as_ref()
            .and_then(|m| m.lv(lv))
            .and_then(|l| l.thin())
            .is_some_and(|t| t.origin.is_some())
    })
}

/// `rd.rewind=VG/SNAP` for a thin snapshot: the checks are those of the metadata change
/// itself (`mark_thin_merging`, LVM's own refusals), tried on the metadata read; no COW to
/// check (a thin snapshot cannot be invalid or overflow on its own).
fn decide_thin(assembly: &Assembly, r: &LvRef, d: &mut Decision) {
    let (vg, model) = match usable_vg(assembly, &r.vg) {
        Ok(v) => v,
        Err(why) => {
            return d.note(
                Level::Warn,
                format!("rd.rewind={r} ignored, nothing changed: {why}"),
            );
        }
    };
    let stamp = Stamp {
        host: String::new(),
        time: 0,
    };
    match mark_thin_merging(&vg.tree, &r.lv, &stamp) {
        Ok(_) => {
            let origin = model
                .lv(&r.lv)
                .and_then(|l| l.thin())
                .and_then(|t| t.origin)
                .unwrap_or_default()
                .to_owned();
            d.flags.push(Flag {
                vg: vg.name.clone(),
                vg_id: vg.id.clone(),
                snapshot: r.lv.clone(),
                origin: origin.clone(),
            });
            d.activate(vg, &origin, Reason::Merge);
        }
        Err(ChangeError::AlreadyMerging { .. }) => d.note(
            Level::Info,
            format!("rd.rewind={r}: already flagged to merge"),
        ),
        Err(e) => d.note(
            Level::Warn,
            format!("rd.rewind={r} ignored, nothing changed: {e}"),
        ),
    }
}

/// The one usable VG with this name, or why there is none.
fn usable_vg<'a>(assembly: &'a Assembly, name: &'a str) -> Result<(&'a FoundVg, &'a Vg), String> {
    let mut found = assembly.vgs_named(name);
    let vg = found
        .next()
        .ok_or_else(|| format!("no volume group {name} found"))?;
    if let Some(problem) = vg.blocking_problem() {
        return Err(problem.to_string());
    }
    match &vg.model {
        Some(model) => Ok((vg, model)),
        None => Err(format!("vg {name}: metadata not usable")),
    }
}

/// Decides what this boot does. `activate` is `rd.lvm.lv=` plus the config's volumes.
pub fn decide(
    assembly: &Assembly,
    cmdline: &Cmdline,
    activate: &[LvRef],
    read_cow: &mut CowReader<'_>,
) -> Decision {
    let mut d = Decision::default();
    for problem in &cmdline.problems {
        d.note(Level::Warn, problem.clone());
    }
    if cmdline.disabled {
        d.note(
            Level::Info,
            "rd.rewind=0: rewind does nothing at this boot".into(),
        );
        return d;
    }
    for p in &assembly.problems {
        d.note(Level::Warn, p.to_string());
    }

    // Merges already flagged in the metadata.
    for vg in &assembly.vgs {
        let Some(model) = &vg.model else { continue };
        for snap in model.snapshots.iter().filter(|s| s.merging) {
            if let Some(problem) = vg.blocking_problem() {
                d.note(
                    Level::Error,
                    format!(
                        "{}/{} is flagged to merge into {}, but the volume group is not usable: {problem}",
                        vg.name, snap.cow, snap.origin
                    ),
                );
                continue;
            }
            match cow_ok(vg, snap, read_cow) {
                Ok(_) => d.activate(vg, &snap.origin, Reason::Merge),
                Err(refusal) => {
                    let why = refusal.to_string();
                    d.note(
                        Level::Error,
                        format!(
                            "{why}; {}/{} stays inactive so its half-merged state is never shown; \
                             to keep the current data instead: lvconvert --splitsnapshot or lvremove {}/{}",
                            vg.name, snap.origin, vg.name, snap.cow
                        ),
                    );
                    d.hold.push(Hold {
                        vg: vg.name.clone(),
                        vg_id: vg.id.clone(),
                        origin: snap.origin.clone(),
                        why,
                    });
                }
            }
        }
    }

    // Thin merges flagged in the metadata (`merge = "<origin>"` in a thin snapshot's
    // segment, as stock `lvconvert --merge` writes it): activating the origin carries the
    // merge out (its table takes the snapshot's device id), so the origin is activated.
    for vg in &assembly.vgs {
        let Some(model) = &vg.model else { continue };
        for lv in &model.lvs {
            let Some(origin) = lv.thin().and_then(|t| t.merge) else {
                continue;
            };
            if let Some(problem) = vg.blocking_problem() {
                d.note(
                    Level::Error,
                    format!(
                        "{}/{} is flagged to merge into {origin}, but the volume group is not usable: {problem}",
                        vg.name, lv.name
                    ),
                );
                continue;
            }
            d.activate(vg, origin, Reason::Merge);
        }
    }

    // A set rollback committed in some VGs only (cut short between its commits): completed,
    // with the same checks, as if asked for again.
    for name in sets_half_flagged(assembly) {
        if !cmdline
            .rollbacks
            .iter()
            .any(|t| matches!(t, RollbackTarget::Set(n) if *n == name))
        {
            d.note(
                Level::Info,
                format!("snapshot set {name}: its rollback was cut short; completing it"),
            );
            decide_set(assembly, &name, read_cow, &mut d);
        }
    }

    // Rollbacks asked for on the command line.
    for target in &cmdline.rollbacks {
        match target {
            RollbackTarget::Snapshot(r) if is_thin_snapshot(assembly, &r.vg, &r.lv) => {
                decide_thin(assembly, r, &mut d);
            }
            RollbackTarget::Snapshot(r) => {
                match usable_vg(assembly, &r.vg).and_then(|(vg, model)| {
                    check_rollback(vg, model, &r.lv, read_cow)
                        .map(|s| (vg, s))
                        .map_err(|e| e.to_string())
                }) {
                    Ok((vg, Some(snap))) => d.flag(vg, snap),
                    Ok((_, None)) => d.note(
                        Level::Info,
                        format!("rd.rewind={r}: already flagged to merge"),
                    ),
                    Err(why) => d.note(
                        Level::Warn,
                        format!("rd.rewind={r} ignored, nothing changed: {why}"),
                    ),
                }
            }
            RollbackTarget::Set(name) => decide_set(assembly, name, read_cow, &mut d),
        }
    }

    // Volumes to activate.
    for r in activate {
        match usable_vg(assembly, &r.vg) {
            Ok((vg, model)) => {
                if model.lv(&r.lv).is_none() {
                    d.note(
                        Level::Warn,
                        format!("rd.lvm.lv={r}: no such logical volume"),
                    );
                } else {
                    d.activate(vg, &r.lv, Reason::Requested);
                }
            }
            Err(why) => d.note(Level::Warn, format!("rd.lvm.lv={r} not activated: {why}")),
        }
    }
    d.activate.retain(|a| {
        !d.hold
            .iter()
            .any(|h| h.vg_id == a.vg_id && h.origin == a.lv)
    });
    d
}

/// A snapshot set rolls back whole or not at all (invariant 10): it must be complete (as many
/// members as it records, none still being made) and every member must pass the checks of a
/// single rollback; otherwise nothing is flagged and the note names the member.
fn decide_set(assembly: &Assembly, name: &str, read_cow: &mut CowReader<'_>, d: &mut Decision) {
    let tag = format!("{SET_TAG_PREFIX}{name}");
    let mut members = Vec::new();
    for vg in &assembly.vgs {
        let Some(model) = &vg.model else { continue };
        for lv in &model.lvs {
            if lv.tags.contains(&tag) {
                members.push((vg, model, lv.name.clone()));
            }
        }
    }
    if members.is_empty() {
        d.note(
            Level::Warn,
            format!("rd.rewind={name} ignored: no snapshot carries the tag {tag}"),
        );
        return;
    }
    let refuse = |d: &mut Decision, why: String| {
        d.note(
            Level::Warn,
            format!("rd.rewind={name} ignored, nothing changed: {why}"),
        );
    };
    let models = assembly.vgs.iter().filter_map(|v| v.model.as_ref());
    let set = crate::lvm::sets::sets(models)
        .into_iter()
        .find(|s| s.name == name);
    if let Some(set) = &set {
        match set.state() {
            crate::lvm::sets::State::Pending => {
                return refuse(
                    d,
                    format!("snapshot set {name} was cut short while it was being made"),
                );
            }
            crate::lvm::sets::State::Incomplete => {
                return refuse(
                    d,
                    format!(
                        "snapshot set {name} has {} of its {} members (one was removed, or its volume group is missing)",
                        set.members.len(),
                        set.declared
                            .map_or_else(|| "?".to_owned(), |n| n.to_string())
                    ),
                );
            }
            _ => {}
        }
    }
    // An overflowed store is the reason worth naming first (before, say, an origin that
    // merges another snapshot).
    for (vg, model, lv) in &members {
        if let Some(snap) = model.snapshot(lv)
            && let Err(e) = cow_ok(vg, snap, read_cow)
        {
            return refuse(d, format!("snapshot set member {e}"));
        }
    }
    let mut flags = Vec::new();
    let mut thin_flags = Vec::new();
    for (vg, model, lv) in &members {
        if model.lv(lv).and_then(|l| l.thin()).is_some() {
            let checked = match vg.blocking_problem() {
                Some(p) => Err(format!("{}/{lv}: {p}", vg.name)),
                None => thin_member(vg, model, lv),
            };
            match checked {
                Ok(Some(origin)) => thin_flags.push((*vg, lv.clone(), origin)),
                Ok(None) => {}
                Err(why) => return refuse(d, format!("snapshot set member {why}")),
            }
            continue;
        }
        let checked = match vg.blocking_problem() {
            Some(p) => Err(format!("{}/{lv}: {p}", vg.name)),
            None => check_rollback(vg, model, lv, read_cow).map_err(|e| e.to_string()),
        };
        match checked {
            Ok(Some(s)) => flags.push((*vg, s)),
            Ok(None) => {}
            Err(why) => {
                return refuse(d, format!("snapshot set member {why}"));
            }
        }
    }
    for (vg, snap) in flags {
        d.flag(vg, snap);
    }
    for (vg, snapshot, origin) in thin_flags {
        d.flags.push(Flag {
            vg: vg.name.clone(),
            vg_id: vg.id.clone(),
            snapshot,
            origin: origin.clone(),
        });
        d.activate(vg, &origin, Reason::Merge);
    }
}

/// A thin member of a set to roll back: its origin to flag it into (`None`: flagged already),
/// or why not, with the refusals of stock `lvconvert --merge` (`mark_thin_merging`) tried on
/// the metadata read. The pool's kernel state is checked when the pool is laid out
/// (`pool_gate`); the booted system's `rewind rollback SET` checks it before flagging.
fn thin_member(vg: &FoundVg, model: &Vg, lv: &str) -> Result<Option<String>, String> {
    if model
        .lv(lv)
        .and_then(|l| l.thin())
        .and_then(|t| t.merge)
        .is_some()
    {
        return Ok(None);
    }
    let stamp = Stamp {
        host: String::new(),
        time: 0,
    };
    mark_thin_merging(&vg.tree, lv, &stamp).map_err(|e| format!("{}/{lv}: {e}", vg.name))?;
    Ok(model
        .lv(lv)
        .and_then(|l| l.thin())
        .and_then(|t| t.origin)
        .map(str::to_owned))
}

/// Sets whose rollback `rewind rollback SET` committed in some VGs but not yet in all (a
/// crash between its commits): their names, to be completed like `rd.rewind=SET`.
pub fn sets_half_flagged(assembly: &Assembly) -> Vec<String> {
    let models = assembly.vgs.iter().filter_map(|v| v.model.as_ref());
    crate::lvm::sets::sets(models)
        .into_iter()
        .filter(|s| {
            s.members.iter().any(|m| m.merging && m.rollback)
                && s.members.iter().any(|m| !m.merging)
        })
        .map(|s| s.name)
        .collect()
}
