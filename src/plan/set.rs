//! A snapshot set to take, decided before anything is changed (docs/SETS.md): which LVs, the
//! size of each COW store from the size policy, and every refusal with its message. Pure: the
//! flow hands in the VG models, the members as it resolved them (a mount point or `VG/LV`)
//! and what the filesystems use.

use std::collections::BTreeMap;

use crate::lvm::model::{SegmentKind, Vg};
pub use crate::lvm::sets::SizePolicy;
use crate::lvm::sets::{self, check_set_name, cow_max_extents, cow_min_extents, member_name};

/// `lvcreate -s`'s default chunk size: 4 KiB, in sectors.
pub const CHUNK_SECTORS: u64 = 8;

/// A member as the flow resolved it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// How the user (or the configuration) named it: `/var` or `vg0/var`.
    pub named: String,
    pub vg: String,
    pub lv: String,
    /// The mount point, when the LV is mounted (recorded in the member's tags).
    pub mount: Option<String>,
    /// Bytes the filesystem uses (for `N%USED`).
    pub fs_used: Option<u64>,
    /// The store gets at least this many extents (`--keep-current`: as many as the store of
    /// the set being rolled back to, which the merge copies into this one).
    pub min_extents: u64,
}

/// One member of the set to take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Planned {
    pub named: String,
    pub vg: String,
    pub origin: String,
    /// The snapshot's (COW LV's) name: `ORIGIN.SET`.
    pub cow: String,
    pub extents: u64,
    pub chunk_sectors: u64,
    pub mount: Option<String>,
    /// A thin member: the pool its thin snapshot goes in (no store: `extents` and
    /// `chunk_sectors` are 0, `cow` is the thin snapshot's name).
    pub thin_pool: Option<String>,
}

/// Extents of each allocatable PV not used by any LV, summed.
pub fn free_extents(vg: &Vg) -> u64 {
    let mut used: BTreeMap<&str, u64> = BTreeMap::new();
    for lv in &vg.lvs {
        for seg in &lv.segments {
            if let SegmentKind::Striped { stripes, .. } = &seg.kind {
                let n = u64::try_from(stripes.len().max(1)).unwrap_or(1);
                for s in stripes {
                    *used.entry(s.pv.as_str()).or_default() += seg.extent_count / n;
                }
            }
        }
    }
    vg.pvs
        .iter()
        .filter(|p| p.status.iter().any(|s| s == "ALLOCATABLE"))
        .map(|p| {
            p.pe_count
                .saturating_sub(used.get(p.key.as_str()).copied().unwrap_or(0))
        })
        .sum()
}

/// Why a set cannot be taken. Nothing has been changed when one of these is returned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SetError {
    #[error("{0}")]
    Name(String),
    #[error("a snapshot set named {0} exists already")]
    Exists(String),
    #[error("no members: name them (VG/LV or a mount point) or list them in rewind.toml")]
    NoMembers,
    #[error("{lv} is named twice ({first} and {second})")]
    Duplicate {
        lv: String,
        first: String,
        second: String,
    },
    #[error("{named}: vg {vg} has no logical volume {lv}")]
    NoSuchLv {
        named: String,
        vg: String,
        lv: String,
    },
    #[error("{named}: vg {vg} was not found or cannot be used")]
    NoSuchVg { named: String, vg: String },
    #[error("{named}: {lv}: {why}")]
    Thin {
        named: String,
        lv: String,
        why: String,
    },
    #[error("{named}: {lv} is a snapshot itself: lvm takes no snapshot of a snapshot")]
    Snapshot { named: String, lv: String },
    #[error(
        "{named}: {lv} is a {segtype} volume: rewind snapshots linear and striped volumes only"
    )]
    NotPlain {
        named: String,
        lv: String,
        segtype: String,
    },
    #[error(
        "{named}: {lv} is merging snapshot {snapshot} back: no new snapshot until that merge has finished"
    )]
    Merging {
        named: String,
        lv: String,
        snapshot: String,
    },
    #[error("{named}: vg {vg} already has a logical volume called {name}")]
    NameTaken {
        named: String,
        vg: String,
        name: String,
    },
    #[error("{named}: {policy} needs the filesystem's use, and {lv} has no mounted filesystem")]
    NotMounted {
        named: String,
        lv: String,
        policy: SizePolicy,
    },
    #[error("{vg} needs {need} extents for this set, has {free} free")]
    NoSpace { vg: String, need: u64, free: u64 },
}

/// Decides a set: every member checked, every COW sized, every VG's space checked.
/// `vgs` are the usable VGs (by name); `existing` every set already in the metadata.
pub fn plan(
    vgs: &BTreeMap<String, &Vg>,
    existing: &[sets::Set],
    name: &str,
    requests: &[Request],
    policy: SizePolicy,
) -> Result<Vec<Planned>, SetError> {
    check_set_name(name).map_err(SetError::Name)?;
    if existing.iter().any(|s| s.name == name) {
        return Err(SetError::Exists(name.to_owned()));
    }
    if requests.is_empty() {
        return Err(SetError::NoMembers);
    }
    let mut seen: BTreeMap<(String, String), &str> = BTreeMap::new();
    let mut out = Vec::new();
    for r in requests {
        let key = (r.vg.clone(), r.lv.clone());
        if let Some(first) = seen.insert(key, &r.named) {
            return Err(SetError::Duplicate {
                lv: format!("{}/{}", r.vg, r.lv),
                first: first.to_owned(),
                second: r.named.clone(),
            });
        }
        let vg = vgs.get(&r.vg).ok_or_else(|| SetError::NoSuchVg {
            named: r.named.clone(),
            vg: r.vg.clone(),
        })?;
        let full = format!("{}/{}", r.vg, r.lv);
        let lv = vg.lv(&r.lv).ok_or_else(|| SetError::NoSuchLv {
            named: r.named.clone(),
            vg: r.vg.clone(),
            lv: r.lv.clone(),
        })?;
        if vg.snapshot(&r.lv).is_some() || vg.snapshots.iter().any(|s| s.internal == r.lv) {
            return Err(SetError::Snapshot {
                named: r.named.clone(),
                lv: full,
            });
        }
        if let Some(t) = lv.thin() {
            out.push(plan_thin(vg, r, name, t)?);
            continue;
        }
        if let Some(other) = lv.segments.iter().find_map(|s| match &s.kind {
            SegmentKind::Other { segtype } => Some(segtype.clone()),
            SegmentKind::Thin { .. } => Some("thin".to_owned()),
            SegmentKind::ThinPool { .. } => Some("thin-pool".to_owned()),
            _ => None,
        }) {
            return Err(SetError::NotPlain {
                named: r.named.clone(),
                lv: full,
                segtype: other,
            });
        }
        if let Some(m) = vg.merging_snapshot_of(&r.lv) {
            return Err(SetError::Merging {
                named: r.named.clone(),
                lv: full,
                snapshot: format!("{}/{}", r.vg, m.cow),
            });
        }
        let cow = member_name(&r.lv, name).map_err(SetError::Name)?;
        crate::lvm::layout::dm_name(&r.vg, &cow, Some(&crate::lvm::layout::Layer::Cow))
            .map_err(|e| SetError::Name(e.to_string()))?;
        if vg.lv(&cow).is_some() {
            return Err(SetError::NameTaken {
                named: r.named.clone(),
                vg: r.vg.clone(),
                name: cow,
            });
        }
        let es = vg.extent_size.max(1);
        let origin_sectors = lv.extent_count() * es;
        let sectors = match policy {
            SizePolicy::Fixed(bytes) => bytes.div_ceil(512),
            SizePolicy::OfSize(p) => (u128::from(origin_sectors) * u128::from(p))
                .div_ceil(100)
                .try_into()
                .unwrap_or(u64::MAX),
            SizePolicy::OfFree(p) => (u128::from(free_extents(vg) * es) * u128::from(p))
                .div_ceil(100)
                .try_into()
                .unwrap_or(u64::MAX),
            SizePolicy::OfUsed(p) => {
                let used = r.fs_used.ok_or_else(|| SetError::NotMounted {
                    named: r.named.clone(),
                    lv: full.clone(),
                    policy,
                })?;
                (u128::from(used.div_ceil(512)) * u128::from(p))
                    .div_ceil(100)
                    .try_into()
                    .unwrap_or(u64::MAX)
            }
        };
        let extents = sectors.div_ceil(es).max(r.min_extents).clamp(
            cow_min_extents(CHUNK_SECTORS, es),
            cow_max_extents(origin_sectors, CHUNK_SECTORS, es),
        );
        out.push(Planned {
            named: r.named.clone(),
            vg: r.vg.clone(),
            origin: r.lv.clone(),
            cow,
            extents,
            chunk_sectors: CHUNK_SECTORS,
            mount: r.mount.clone(),
            thin_pool: None,
        });
    }
    let mut need: BTreeMap<&str, u64> = BTreeMap::new();
    for p in &out {
        *need.entry(p.vg.as_str()).or_default() += p.extents;
    }
    for (vg, need) in need {
        let free = vgs.get(vg).map_or(0, |v| free_extents(v));
        if need > free {
            return Err(SetError::NoSpace {
                vg: vg.to_owned(),
                need,
                free,
            });
        }
    }
    Ok(out)
}

/// A thin member: a thin snapshot in the origin's pool (docs/THIN.md), no store to size. The
/// pool's free space is the flow's to check (the kernel's status).
fn plan_thin(
    vg: &Vg,
    r: &Request,
    name: &str,
    t: crate::lvm::model::ThinSeg<'_>,
) -> Result<Planned, SetError> {
    let full = format!("{}/{}", r.vg, r.lv);
    let refuse = |why: String| SetError::Thin {
        named: r.named.clone(),
        lv: full.clone(),
        why,
    };
    if t.external_origin.is_some() {
        return Err(refuse(
            "a thin volume with an external origin: not handled".into(),
        ));
    }
    if t.merge.is_some() {
        return Err(refuse("flagged to merge: it takes no snapshot".into()));
    }
    if let Some(m) = vg.thin_merge_into(&r.lv) {
        return Err(SetError::Merging {
            named: r.named.clone(),
            lv: full,
            snapshot: format!("{}/{}", r.vg, m.name),
        });
    }
    if vg.snapshots.iter().any(|s| s.origin == r.lv) {
        // Its live device is then a snapshot-origin over the thin device (`-real`): the
        // window would suspend the one above, not the thin device create_snap wants still.
        return Err(refuse(
            "a thin volume with classic (COW) snapshots: not handled".into(),
        ));
    }
    if crate::lvm::thinchange::PendingDelete::of_vg(vg)
        .iter()
        .any(|d| d.pool == t.pool)
    {
        return Err(refuse(format!(
            "its pool {} is still owed the end of a finished merge (rewind poll sends it)",
            t.pool
        )));
    }
    let snap = member_name(&r.lv, name).map_err(SetError::Name)?;
    crate::lvm::layout::dm_name(&r.vg, &snap, None).map_err(|e| SetError::Name(e.to_string()))?;
    if vg.lv(&snap).is_some() {
        return Err(SetError::NameTaken {
            named: r.named.clone(),
            vg: r.vg.clone(),
            name: snap,
        });
    }
    Ok(Planned {
        named: r.named.clone(),
        vg: r.vg.clone(),
        origin: r.lv.clone(),
        cow: snap,
        extents: 0,
        chunk_sectors: 0,
        mount: r.mount.clone(),
        thin_pool: Some(t.pool.to_owned()),
    })
}

/// What the window of a set needs from device-mapper: the steps before it (the `-real` and
/// `-cow` devices made live, each new snapshot device made and loaded but not resumed, each
/// origin's `snapshot-origin` loaded into its inactive slot), then the origins to suspend and
/// resume and the new snapshot devices to resume inside the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowPlan {
    pub before: Vec<crate::plan::steps::Step>,
    pub origins: Vec<String>,
    pub snapshots: Vec<String>,
}

/// Why the devices of a set cannot be laid out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WindowPlanError {
    #[error(
        "device-mapper device {name} is in the way (left by an earlier attempt?): it has {what}; nothing changed"
    )]
    InTheWay { name: String, what: String },
    #[error("origin device {name} is not active")]
    OriginInactive { name: String },
    #[error(transparent)]
    Steps(#[from] crate::plan::steps::StepsError),
}

/// Lays out one active origin's devices for the window: `wanted` is its whole activation
/// (`VgLayout::activation`, with the new snapshots already in the metadata), `new` the
/// device-mapper names of its new snapshot devices.
pub fn window_plan(
    wanted: &[crate::plan::devices::DeviceSpec],
    live: &[crate::plan::steps::Live],
    new: &[String],
    plan: &mut WindowPlan,
) -> Result<(), WindowPlanError> {
    use crate::plan::devices::Role;
    use crate::plan::steps::{Step, same_table};
    let numbers: std::collections::HashMap<String, _> =
        live.iter().map(|l| (l.name.clone(), l.dev)).collect();
    for spec in wanted {
        if let Some(other) = live
            .iter()
            .find(|l| l.uuid.as_deref() == Some(spec.uuid.as_str()) && l.name != spec.name)
        {
            return Err(crate::plan::steps::StepsError::ForeignUuid {
                uuid: spec.uuid.clone(),
                found: other.name.clone(),
                wanted: spec.name.clone(),
            }
            .into());
        }
        let current = live.iter().find(|l| l.name == spec.name);
        if let Some(c) = current
            && c.uuid.as_deref() != Some(spec.uuid.as_str())
        {
            return Err(crate::plan::steps::StepsError::ForeignName {
                name: spec.name.clone(),
                found: c.uuid.clone(),
                wanted: spec.uuid.clone(),
            }
            .into());
        }
        let shows_wanted = current.is_some_and(|c| {
            match (&c.table, crate::plan::steps::resolve(&spec.table, &numbers)) {
                (Some(have), Some(want)) => same_table(have, &want),
                _ => false,
            }
        });
        let is_new = new.contains(&spec.name);
        match (spec.role, current) {
            (Role::Origin, None) => {
                return Err(WindowPlanError::OriginInactive {
                    name: spec.name.clone(),
                });
            }
            (Role::Origin, Some(_)) => {
                if !shows_wanted {
                    plan.before.push(Step::Load {
                        name: spec.name.clone(),
                        table: spec.table.clone(),
                    });
                }
                plan.origins.push(spec.name.clone());
            }
            (Role::Snapshot, None) if is_new => {
                plan.before.push(Step::Create {
                    name: spec.name.clone(),
                    uuid: spec.uuid.clone(),
                });
                plan.before.push(Step::Load {
                    name: spec.name.clone(),
                    table: spec.table.clone(),
                });
                plan.snapshots.push(spec.name.clone());
            }
            (_, Some(c)) if is_new => {
                return Err(WindowPlanError::InTheWay {
                    name: spec.name.clone(),
                    what: if c.table.is_some() {
                        "a live table".into()
                    } else {
                        "no live table".into()
                    },
                });
            }
            (_, None) => {
                plan.before.push(Step::Create {
                    name: spec.name.clone(),
                    uuid: spec.uuid.clone(),
                });
                plan.before.push(Step::Load {
                    name: spec.name.clone(),
                    table: spec.table.clone(),
                });
                plan.before.push(Step::Resume {
                    name: spec.name.clone(),
                    rules: spec.rules,
                });
            }
            (_, Some(c)) => {
                // A layer or an older snapshot of this origin: it must already be what the
                // layout says (a new `-cow` of the same name would be a leftover).
                if !shows_wanted || c.suspended {
                    return Err(WindowPlanError::InTheWay {
                        name: spec.name.clone(),
                        what: if c.suspended {
                            "been left suspended".into()
                        } else {
                            "a different table".into()
                        },
                    });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lvm::testvg::{found, linear, snapshot, vg_text};

    fn vg() -> Vg {
        // 255 extents of 4 MiB on pv0: root 100, var 50, pre (a snapshot of var) 5: 100 free.
        let text = vg_text(
            "vg0",
            3,
            &[
                linear("root", "Root00", true, &[], &[(0, 100, 0)]),
                linear("var", "Var000", true, &[], &[(0, 50, 100)]),
                linear("pre", "Pre000", false, &[], &[(0, 5, 150)]),
                snapshot("snapshot0", "Snap00", "var", 50, 8, "pre", false),
            ],
        );
        found(text).model.expect("model")
    }

    fn req(named: &str, lv: &str) -> Request {
        Request {
            named: named.into(),
            vg: "vg0".into(),
            lv: lv.into(),
            mount: Some(named.into()).filter(|n: &String| n.starts_with('/')),
            fs_used: Some(10 << 20),
            min_extents: 0,
        }
    }

    fn run(requests: &[Request], policy: &str) -> Result<Vec<Planned>, SetError> {
        let v = vg();
        let vgs = BTreeMap::from([("vg0".to_owned(), &v)]);
        plan(
            &vgs,
            &[],
            "pre-up",
            requests,
            policy.parse().expect("policy"),
        )
    }

    #[test]
    fn each_policy_sizes_the_members_in_extents() {
        let two = [req("/", "root"), req("/var", "var")];
        let ext = |p: &str| -> Vec<u64> {
            run(&two, p)
                .expect("plan")
                .iter()
                .map(|m| m.extents)
                .collect()
        };
        assert_eq!(ext("20%SIZE"), [20, 10]);
        assert_eq!(ext("9M"), [3, 3]);
        assert_eq!(ext("10%FREE"), [10, 10]);
        assert_eq!(ext("100%USED"), [3, 3]);
        // Capped at what a snapshot of the whole origin can use, at least 3 chunks.
        let m = run(&[req("/var", "var")], "1G").expect("plan");
        assert_eq!(m[0].extents, cow_max_extents(50 * 8192, 8, 8192));
        assert_eq!(m[0].extents, 51);
        let m = &run(&[req("/", "root")], "1K").expect("plan")[0];
        assert_eq!((m.extents, m.cow.as_str()), (1, "root.pre-up"));
        assert_eq!(m.mount.as_deref(), Some("/"));
    }

    #[test]
    fn every_refusal_comes_before_any_change_with_its_message() {
        let e = |r: &[Request], p: &str| run(r, p).expect_err("refused").to_string();
        assert_eq!(
            e(&[req("/", "root"), req("/var", "var")], "55%FREE"),
            "vg0 needs 106 extents for this set, has 100 free"
        );
        assert_eq!(
            e(&[req("/", "root"), req("vg0/root", "root")], "1G"),
            "vg0/root is named twice (/ and vg0/root)"
        );
        assert_eq!(
            e(&[req("vg0/x", "x")], "1G"),
            "vg0/x: vg vg0 has no logical volume x"
        );
        assert_eq!(
            e(&[req("vg0/pre", "pre")], "1G"),
            "vg0/pre: vg0/pre is a snapshot itself: lvm takes no snapshot of a snapshot"
        );
        let mut nomount = req("vg0/root", "root");
        nomount.fs_used = None;
        assert!(e(&[nomount], "50%USED").contains("has no mounted filesystem"));
        assert_eq!(e(&[], "1G"), SetError::NoMembers.to_string());

        let v = vg();
        let vgs = BTreeMap::from([("vg0".to_owned(), &v)]);
        let merging = crate::lvm::change::mark_merging(
            &found(crate::lvm::text::print(
                &found_text(),
                crate::lvm::text::Style::Disk,
            ))
            .tree,
            "pre",
            &crate::lvm::change::Stamp::new("h", 1),
        )
        .expect("flag");
        let mv = Vg::from_tree(&merging).expect("model");
        let mvgs = BTreeMap::from([("vg0".to_owned(), &mv)]);
        let err = plan(
            &mvgs,
            &[],
            "x",
            &[req("/var", "var")],
            SizePolicy::OfSize(10),
        )
        .expect_err("merging");
        assert_eq!(
            err.to_string(),
            "/var: vg0/var is merging snapshot vg0/pre back: no new snapshot until that merge has finished"
        );
        let existing = crate::lvm::sets::sets([&v]);
        assert!(existing.is_empty());
        assert!(matches!(
            plan(
                &vgs,
                &[],
                "bad/name",
                &[req("/", "root")],
                SizePolicy::OfSize(10)
            ),
            Err(SetError::Name(_))
        ));
    }

    fn found_text() -> crate::lvm::text::Section {
        let text = vg_text(
            "vg0",
            3,
            &[
                linear("root", "Root00", true, &[], &[(0, 100, 0)]),
                linear("var", "Var000", true, &[], &[(0, 50, 100)]),
                linear("pre", "Pre000", false, &[], &[(0, 5, 150)]),
                snapshot("snapshot0", "Snap00", "var", 50, 8, "pre", false),
            ],
        );
        found(text).tree
    }

    const THIN: &str = include_str!("../../tests/fixtures/text/thin.vg");

    fn thin_vg(flagged: bool) -> Vg {
        let text = if flagged {
            THIN.to_owned()
        } else {
            THIN.replace("\t\t\t\tmerge = \"root\"\n", "")
        };
        found(text).model.expect("model")
    }

    #[test]
    fn thin_members_are_thin_snapshots_in_their_pool_beside_classic_ones() {
        let (classic, thin) = (vg(), thin_vg(false));
        let vgs = BTreeMap::from([("vg0".to_owned(), &classic), ("tvg".to_owned(), &thin)]);
        let p = plan(
            &vgs,
            &[],
            "s1",
            &[req("vg0/root", "root"), tvg_req("tvg/root", "root")],
            SizePolicy::OfSize(10),
        )
        .expect("mixed set");
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].thin_pool.as_deref(), p[0].extents), (None, 10));
        assert_eq!(
            (
                p[1].thin_pool.as_deref(),
                p[1].cow.as_str(),
                p[1].extents,
                p[1].chunk_sectors
            ),
            (Some("pool"), "root.s1", 0, 0)
        );
        // A thin member needs no extents of its VG: a VG with none free still takes it.
        let p = plan(
            &vgs,
            &[],
            "s1",
            &[tvg_req("tvg/root", "root")],
            SizePolicy::Fixed(1 << 40),
        )
        .expect("thin only");
        assert_eq!(p[0].extents, 0);
    }

    fn tvg_req(named: &str, lv: &str) -> Request {
        Request {
            vg: "tvg".into(),
            ..req(named, lv)
        }
    }

    #[test]
    fn thin_members_that_cannot_take_a_snapshot_are_refused_by_name() {
        let flagged = thin_vg(true);
        let vgs = BTreeMap::from([("tvg".to_owned(), &flagged)]);
        let refused = |lv: &str| {
            plan(
                &vgs,
                &[],
                "s",
                &[tvg_req(&format!("tvg/{lv}"), lv)],
                SizePolicy::OfSize(10),
            )
            .expect_err(lv)
            .to_string()
        };
        let e = refused("root");
        assert!(e.contains("merging snapshot tvg/snap1"), "{e}");
        let e = refused("snap1");
        assert!(e.contains("flagged to merge"), "{e}");
        let e = refused("pool");
        assert!(e.contains("thin-pool volume"), "{e}");
        // A thin LV that has a classic snapshot (LVM allows it).
        let extra = format!(
            "{}{}",
            crate::lvm::testvg::linear("cow", "Cow000", false, &[], &[(0, 2, 40)]),
            snapshot("snapshot0", "Snap00", "root", 10, 8, "cow", false)
        );
        let text = THIN.replace("\t\t\t\tmerge = \"root\"\n", "").replacen(
            "\t\tpool_tmeta {",
            &format!("{extra}\t\tpool_tmeta {{"),
            1,
        );
        let with_cow = found(text).model.expect("model");
        assert_eq!(with_cow.snapshots.len(), 1);
        let vgs = BTreeMap::from([("tvg".to_owned(), &with_cow)]);
        let e = plan(
            &vgs,
            &[],
            "s",
            &[tvg_req("tvg/root", "root")],
            SizePolicy::OfSize(10),
        )
        .expect_err("refused")
        .to_string();
        assert!(e.contains("classic (COW) snapshots"), "{e}");
    }
}
