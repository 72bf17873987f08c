//! The device-mapper devices LVM itself creates to activate a logical volume
//! (`lib/activate/dev_manager.c`, `_add_new_lv_to_dtree`), with LVM's names, UUIDs and tables.
//!
//! - a plain LV: one device with its `linear`/`striped` segments;
//! - an origin with snapshots: `VG-LV-real` (the segments), `VG-LV` as `snapshot-origin`, and
//!   for every snapshot `VG-COW-cow` (the COW LV's segments) and `VG-COW` as `snapshot`;
//! - a merging origin: the same, except `VG-LV` is `snapshot-merge` over `-real` and the
//!   merging snapshot's `-cow`, and the merging snapshot's own device is an `error` target.
//!   Every other snapshot of that origin stays active as `snapshot` (invariant 4): the kernel
//!   copies each chunk into them before the merge overwrites it.
//! - a merge in `--mode snapshot` (the COW LV carries `rewind_merge_as_snapshot`; only
//!   snapshot of its origin): the roles swap. `VG-LV` (the origin) is an `error` target and
//!   the snapshot's own device `VG-COW` is `snapshot-merge` over `-real` and `-cow`, so the
//!   device that showed the snapshot keeps showing it (the kernel hands the exception store
//!   over when a `snapshot` table is replaced by a `snapshot-merge` one on the same COW).
//!   The origin's `error` table comes first, so nothing can write to `-real` through it
//!   once the merge runs. Stock LVM finds the origin device active (it does not reload
//!   it) and its poll cannot read merge progress from an `error` target, so it aborts its
//!   poll without touching the metadata.
//!
//! Tables name the planned devices they stack on as `/dev/mapper/NAME`; the executor replaces
//! those with device numbers, so no device node is needed.

use crate::lvm::layout::{self, Layer, LvmId};
use crate::lvm::model::{Lv, SegmentKind, Vg};
use crate::plan::dev::{DevNum, UdevRules};
use crate::plan::table::{DevRef, SnapshotArgs, Stripe, Table, TableLine, Target};
use serde::Serialize;
use std::collections::BTreeMap;

mod thin;

/// What a device is for, in LVM's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A plain LV's own device.
    Plain,
    /// `-real`: the origin's segments under its snapshots.
    Real,
    /// `-cow`: a snapshot's exception store.
    Cow,
    /// The origin's visible device: `snapshot-origin` or `snapshot-merge`.
    Origin,
    /// A snapshot's visible device.
    Snapshot,
    /// The merging snapshot's device: an `error` target while the merge runs.
    MergingSnapshot,
    /// `--mode snapshot`: the snapshot's own device, `snapshot-merge` while the merge runs
    /// (the view it showed as a `snapshot` stays the same; it may stay mounted).
    MergingAsSnapshot,
    /// `--mode snapshot`: the origin's device, an `error` target while the merge runs (it
    /// must not be in use: writes to it would change the snapshot's view).
    RetiredOrigin,
    /// A thin pool's hidden metadata (`_tmeta`) or data (`_tdata`) LV.
    PoolPart,
    /// `-tpool`: the `thin-pool` target over `_tmeta` and `_tdata`.
    ThinPool,
    /// A thin LV: `thin` over `-tpool` (with a merging thin snapshot's device id when one is
    /// flagged to merge into it).
    Thin,
}

/// One device to have, with the table it must show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceSpec {
    pub name: String,
    pub uuid: String,
    #[serde(serialize_with = "ser_table")]
    pub table: Table,
    pub role: Role,
    /// `VG/LV` for the devices that get a `/dev/VG/LV` link.
    pub link: Option<(String, String)>,
    #[serde(skip)]
    pub rules: UdevRules,
}

fn ser_table<S: serde::Serializer>(t: &Table, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(t.lines.iter().map(ToString::to_string))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DevicesError {
    #[error("vg {vg}: no logical volume {lv}")]
    NoSuchLv { vg: String, lv: String },
    #[error(
        "vg {vg}: lv {lv} has segments of type {segtype}, which rewind does not activate; leave it to lvm2"
    )]
    OutOfScope {
        vg: String,
        lv: String,
        segtype: String,
    },
    #[error("vg {vg}: lv {lv} is a snapshot's store; activate its origin {origin} instead")]
    SnapshotPart {
        vg: String,
        lv: String,
        origin: String,
    },
    #[error("vg {vg}: pv {pv} has no device")]
    NoPvDevice { vg: String, pv: String },
    #[error("vg {vg}: {message}")]
    Layout { vg: String, message: String },
    #[error("vg {vg}: lv {lv} has no segments")]
    Empty { vg: String, lv: String },
}

/// How a plan names a device it stacks on; the executor turns it into a device number.
fn mapper(name: &str) -> String {
    format!("/dev/mapper/{name}")
}

/// Everything the planner needs to know about one VG to lay out its devices.
#[derive(Debug)]
pub struct VgLayout<'a> {
    pub vg: &'a Vg,
    /// The device number of each PV present, by its key in the metadata (`pv0`).
    pub pv_dev: &'a BTreeMap<String, DevNum>,
}

impl VgLayout<'_> {
    fn ids(&self, lv: &Lv) -> Result<(LvmId, LvmId), DevicesError> {
        let err = |e: layout::LayoutError| DevicesError::Layout {
            vg: self.vg.name.clone(),
            message: e.to_string(),
        };
        Ok((
            LvmId::parse(&self.vg.id).map_err(err)?,
            LvmId::parse(&lv.id).map_err(err)?,
        ))
    }

    fn device(&self, lv: &Lv, layer: Option<&Layer>) -> Result<(String, String), DevicesError> {
        let (vg_id, lv_id) = self.ids(lv)?;
        let d =
            layout::LvDevice::new(&self.vg.name, &vg_id, &lv.name, &lv_id, layer).map_err(|e| {
                DevicesError::Layout {
                    vg: self.vg.name.clone(),
                    message: e.to_string(),
                }
            })?;
        Ok((d.name, d.uuid))
    }

    fn lv(&self, name: &str) -> Result<&Lv, DevicesError> {
        self.vg.lv(name).ok_or_else(|| DevicesError::NoSuchLv {
            vg: self.vg.name.clone(),
            lv: name.to_owned(),
        })
    }

    /// The LV's own segments as table lines (`linear` for one stripe, as LVM's default
    /// `use_linear_target = 1`).
    pub fn segment_table(&self, lv: &Lv) -> Result<Table, DevicesError> {
        let es = self.vg.extent_size;
        let mut lines = Vec::new();
        for seg in &lv.segments {
            let SegmentKind::Striped {
                stripe_size,
                stripes,
            } = &seg.kind
            else {
                return Err(self.out_of_scope(lv));
            };
            let mut devs = Vec::new();
            for s in stripes {
                let pv = self.vg.pv(&s.pv).ok_or_else(|| DevicesError::NoPvDevice {
                    vg: self.vg.name.clone(),
                    pv: s.pv.clone(),
                })?;
                let num = *self
                    .pv_dev
                    .get(&s.pv)
                    .ok_or_else(|| DevicesError::NoPvDevice {
                        vg: self.vg.name.clone(),
                        pv: s.pv.clone(),
                    })?;
                devs.push(Stripe {
                    dev: DevRef::Number {
                        major: num.major,
                        minor: num.minor,
                    },
                    offset: pv.pe_start + s.start * es,
                });
            }
            let target = match (devs.len(), stripe_size) {
                (1, _) => {
                    let s = devs.remove(0);
                    Target::Linear {
                        dev: s.dev,
                        offset: s.offset,
                    }
                }
                (_, Some(size)) => Target::Striped {
                    chunk_sectors: *size,
                    stripes: devs,
                },
                _ => return Err(self.out_of_scope(lv)),
            };
            lines.push(TableLine {
                start: seg.start_extent * es,
                length: seg.extent_count * es,
                target,
            });
        }
        if lines.is_empty() {
            return Err(DevicesError::Empty {
                vg: self.vg.name.clone(),
                lv: lv.name.clone(),
            });
        }
        Table::new(lines).map_err(|e| DevicesError::Layout {
            vg: self.vg.name.clone(),
            message: format!("lv {}: {e}", lv.name),
        })
    }

    fn out_of_scope(&self, lv: &Lv) -> DevicesError {
        let segtype = lv
            .segments
            .iter()
            .find_map(|s| match &s.kind {
                SegmentKind::Other { segtype } => Some(segtype.clone()),
                SegmentKind::Striped { .. } => None,
                SegmentKind::Snapshot { .. } => Some("snapshot".into()),
                SegmentKind::ThinPool { .. } => Some("thin-pool".into()),
                SegmentKind::Thin { .. } => Some("thin".into()),
            })
            .unwrap_or_else(|| "striped without a stripe size".into());
        DevicesError::OutOfScope {
            vg: self.vg.name.clone(),
            lv: lv.name.clone(),
            segtype,
        }
    }

    /// The devices that activate `lv_name`, leaves first (the order to create them in).
    pub fn activation(&self, lv_name: &str) -> Result<Vec<DeviceSpec>, DevicesError> {
        let lv = self.lv(lv_name)?;
        if let Some(snap) = self
            .vg
            .snapshots
            .iter()
            .find(|s| s.cow == lv.name || s.internal == lv.name)
        {
            return Err(DevicesError::SnapshotPart {
                vg: self.vg.name.clone(),
                lv: lv.name.clone(),
                origin: snap.origin.clone(),
            });
        }
        if lv.thin().is_some() {
            return self.thin_activation(lv);
        }
        if lv.out_of_scope() || !lv.is_plain() {
            return Err(self.out_of_scope(lv));
        }
        let table = self.segment_table(lv)?;
        let size = table.length();
        let link = Some((self.vg.name.clone(), lv.name.clone()));
        let snapshots: Vec<_> = self.vg.snapshots_of(&lv.name).collect();
        if snapshots.is_empty() {
            let (name, uuid) = self.device(lv, None)?;
            return Ok(vec![DeviceSpec {
                name,
                uuid,
                table,
                role: Role::Plain,
                link: lv.visible.then_some(()).and(link),
                rules: UdevRules::All,
            }]);
        }

        let mut out = Vec::new();
        let (real_name, real_uuid) = self.device(lv, Some(&Layer::Real))?;
        let real = DevRef::Path(mapper(&real_name));
        out.push(DeviceSpec {
            name: real_name,
            uuid: real_uuid,
            table,
            role: Role::Real,
            link: None,
            rules: UdevRules::DmOnly,
        });
        let mut merge = None;
        for snap in &snapshots {
            let cow_lv = self.lv(&snap.cow)?;
            if !cow_lv.is_plain() {
                return Err(self.out_of_scope(cow_lv));
            }
            let (cow_name, cow_uuid) = self.device(cow_lv, Some(&Layer::Cow))?;
            let cow = DevRef::Path(mapper(&cow_name));
            out.push(DeviceSpec {
                name: cow_name,
                uuid: cow_uuid,
                table: self.segment_table(cow_lv)?,
                role: Role::Cow,
                link: None,
                rules: UdevRules::DmOnly,
            });
            let args = SnapshotArgs::persistent(real.clone(), cow, snap.chunk_size);
            if snap.merging {
                merge = Some(args);
            }
        }
        if let Some(snap) = snapshots
            .iter()
            .find(|s| s.merging && self.vg.merges_as_snapshot(s))
        {
            return self.snapshot_mode(lv, snap, &snapshots, out, size, link);
        }
        // The snapshot devices after every store, so each stacks on devices that exist.
        for snap in &snapshots {
            let cow_lv = self.lv(&snap.cow)?;
            let (name, uuid) = self.device(cow_lv, None)?;
            // LVM's `_get_udev_flags`: a device that is not visible gets only the
            // /dev/mapper rules; a merging snapshot is not (its snapshotN lost VISIBLE), and
            // probing its error target would only log I/O errors.
            let (target, role, link, rules) = if snap.merging {
                (
                    Target::Error,
                    Role::MergingSnapshot,
                    None,
                    UdevRules::DmOnly,
                )
            } else {
                let (cow_name, _) = self.device(cow_lv, Some(&Layer::Cow))?;
                (
                    Target::Snapshot(SnapshotArgs::persistent(
                        real.clone(),
                        DevRef::Path(mapper(&cow_name)),
                        snap.chunk_size,
                    )),
                    Role::Snapshot,
                    Some((self.vg.name.clone(), snap.cow.clone())),
                    UdevRules::LowPriority,
                )
            };
            out.push(DeviceSpec {
                name,
                uuid,
                table: Table::single(size, target),
                role,
                link,
                rules,
            });
        }
        let (name, uuid) = self.device(lv, None)?;
        let target = match merge {
            Some(args) => Target::SnapshotMerge(args),
            None => Target::SnapshotOrigin { origin: real },
        };
        out.push(DeviceSpec {
            name,
            uuid,
            table: Table::single(size, target),
            role: Role::Origin,
            link,
            rules: UdevRules::All,
        });
        Ok(out)
    }
}

impl VgLayout<'_> {
    /// The `--mode snapshot` layout: `-real` and `-cow` as usual (already in `out`), the
    /// origin's device as `error`, then the snapshot's device as `snapshot-merge`.
    fn snapshot_mode(
        &self,
        lv: &Lv,
        snap: &crate::lvm::model::Snapshot,
        snapshots: &[&crate::lvm::model::Snapshot],
        mut out: Vec<DeviceSpec>,
        size: u64,
        link: Option<(String, String)>,
    ) -> Result<Vec<DeviceSpec>, DevicesError> {
        if snapshots.len() != 1 {
            return Err(DevicesError::Layout {
                vg: self.vg.name.clone(),
                message: format!(
                    "{} merges in snapshot mode but {} has other snapshots; rewind does not lay that out",
                    snap.cow, lv.name
                ),
            });
        }
        let cow_lv = self.lv(&snap.cow)?;
        let (real_name, _) = self.device(lv, Some(&Layer::Real))?;
        let (cow_name, _) = self.device(cow_lv, Some(&Layer::Cow))?;
        let (name, uuid) = self.device(lv, None)?;
        out.push(DeviceSpec {
            name,
            uuid,
            table: Table::single(size, Target::Error),
            role: Role::RetiredOrigin,
            link: None,
            rules: UdevRules::DmOnly,
        });
        let (name, uuid) = self.device(cow_lv, None)?;
        out.push(DeviceSpec {
            name,
            uuid,
            table: Table::single(
                size,
                Target::SnapshotMerge(SnapshotArgs::persistent(
                    DevRef::Path(mapper(&real_name)),
                    DevRef::Path(mapper(&cow_name)),
                    snap.chunk_size,
                )),
            ),
            role: Role::MergingAsSnapshot,
            link: link.map(|(vg, _)| (vg, snap.cow.clone())),
            rules: UdevRules::All,
        });
        Ok(out)
    }
}

/// Where an LV's first sector is: the PV key and the byte offset on that PV (the first stripe
/// of the segment that starts at extent 0). Used to read a COW store's header.
pub fn first_sector(vg: &Vg, lv: &Lv) -> Option<(String, u64)> {
    let seg = lv.segments.iter().find(|s| s.start_extent == 0)?;
    let SegmentKind::Striped { stripes, .. } = &seg.kind else {
        return None;
    };
    let stripe = stripes.first()?;
    let pv = vg.pv(&stripe.pv)?;
    let sector = pv
        .pe_start
        .checked_add(stripe.start.checked_mul(vg.extent_size)?)?;
    Some((stripe.pv.clone(), sector.checked_mul(512)?))
}
