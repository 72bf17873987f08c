//! The typed VG model: a read-only view over the metadata text tree, with the snapshot
//! relationships rewind acts on and the checks that make a VG safe to act on.
//!
//! Only `striped` and `snapshot` segments are interpreted. Any other segment type (thin,
//! raid, mirror, cache, vdo, ...) is kept by name and puts its LV outside rewind's scope; it
//! is never an error for the whole VG. The tree stays the source of truth for writing
//! (see `change.rs`), so nothing the model does not know is lost.

use serde::Serialize;
use thiserror::Error;

use super::text::{Node, Section, Value};

/// VG `status` flags LVM2 reads (`lib/format_text/flags.c`, `_vg_flags`, plus `PARTIAL`,
/// which old backups may carry).
pub const KNOWN_VG_STATUS: &[&str] = &[
    "EXPORTED",
    "RESIZEABLE",
    "PVMOVE",
    "READ",
    "WRITE",
    "WRITE_LOCKED",
    "CLUSTERED",
    "SHARED",
    "PARTIAL",
];
/// PV `status` flags LVM2 reads (`_pv_flags`).
pub const KNOWN_PV_STATUS: &[&str] = &["ALLOCATABLE", "EXPORTED", "MISSING"];
/// LV `status` flags LVM2 reads (`_lv_flags` entries of kind STATUS_FLAG or COMPATIBLE_FLAG).
pub const KNOWN_LV_STATUS: &[&str] = &[
    "READ",
    "WRITE",
    "WRITE_LOCKED",
    "FIXED_MINOR",
    "VISIBLE",
    "PVMOVE",
    "LOCKED",
    "NOTSYNCED",
    "REBUILD",
    "WRITEMOSTLY",
    "ACTIVATION_SKIP",
    "ERROR_WHEN_FULL",
];

/// The LV tag on a merging snapshot's COW LV that asks for `--mode snapshot`: the merge runs
/// on the snapshot's own device and the result takes the snapshot's name and UUID. Stock LVM
/// keeps tags it does not know and ignores them; see `docs/MODE-SNAPSHOT.md`. The model reads
/// it ([`Vg::merges_as_snapshot`]); `lvm::change` writes it.
pub const MERGE_AS_SNAPSHOT_TAG: &str = "rewind_merge_as_snapshot";

/// Errors of the VG model.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ModelError {
    #[error("metadata has no volume group section")]
    NoVg,
    #[error("metadata has more than one volume group section: {0:?}")]
    SeveralVgs(Vec<String>),
    #[error("vg {vg}: {path} is missing")]
    Missing { vg: String, path: String },
    #[error("vg {vg}: {path} is not {expected}")]
    BadField {
        vg: String,
        path: String,
        expected: &'static str,
    },
    #[error("vg {vg}: lv {lv} {segment} names pv {pv}, which the vg does not have")]
    UnknownPv {
        vg: String,
        lv: String,
        segment: String,
        pv: String,
    },
    #[error("vg {vg}: lv {lv} {segment} uses extents up to {end} of pv {pv}, which has {pe_count}")]
    ExtentsBeyondPv {
        vg: String,
        lv: String,
        segment: String,
        pv: String,
        end: u64,
        pe_count: u64,
    },
    #[error("vg {vg}: lv {lv} {segment} has {found} stripe entries for stripe_count {count}")]
    StripeMismatch {
        vg: String,
        lv: String,
        segment: String,
        count: u64,
        found: usize,
    },
    #[error(
        "vg {vg}: lv {lv} {segment} has {extents} extents, not a multiple of its {stripes} stripes"
    )]
    UnevenStripes {
        vg: String,
        lv: String,
        segment: String,
        extents: u64,
        stripes: u64,
    },
    #[error("vg {vg}: pv {pv} extent {extent} is used by both {first} and {second}")]
    ExtentOverlap {
        vg: String,
        pv: String,
        extent: u64,
        first: String,
        second: String,
    },
    #[error("vg {vg}: pvs {first} and {second} have the same id {id}")]
    DuplicatePvId {
        vg: String,
        id: String,
        first: String,
        second: String,
    },
    #[error(
        "vg {vg}: snapshot {snapshot} has chunk_size {chunk_size}, not a power of two between 8 and 1024 sectors"
    )]
    BadChunkSize {
        vg: String,
        snapshot: String,
        chunk_size: u64,
    },
    #[error("vg {vg}: snapshot {snapshot} uses {lv} as both origin and cow")]
    OriginIsCow {
        vg: String,
        snapshot: String,
        lv: String,
    },
    #[error("vg {vg}: lv {lv} has segment_count {declared} but {found} segments")]
    SegmentCount {
        vg: String,
        lv: String,
        declared: u64,
        found: usize,
    },
    #[error(
        "vg {vg}: lv {lv} segments do not cover extents 0.. in order ({segment} starts at {start}, expected {expected})"
    )]
    SegmentGap {
        vg: String,
        lv: String,
        segment: String,
        start: u64,
        expected: u64,
    },
    #[error("vg {vg}: snapshot {snapshot} names origin {origin}, which does not exist")]
    NoOrigin {
        vg: String,
        snapshot: String,
        origin: String,
    },
    #[error("vg {vg}: snapshot {snapshot} names cow {cow}, which does not exist")]
    NoCow {
        vg: String,
        snapshot: String,
        cow: String,
    },
    #[error("vg {vg}: lv {cow} is the cow of both {first} and {second}")]
    CowShared {
        vg: String,
        cow: String,
        first: String,
        second: String,
    },
    #[error("vg {vg}: origin {origin} has two merging snapshots, {first} and {second}")]
    TwoMerging {
        vg: String,
        origin: String,
        first: String,
        second: String,
    },
    #[error("vg {vg}: snapshot {snapshot} is not a single snapshot segment")]
    BadSnapshotLv { vg: String, snapshot: String },
    #[error("vg {vg}: {object} has status flags lvm2 does not know: {flags:?}; refusing to write")]
    UnknownStatus {
        vg: String,
        object: String,
        flags: Vec<String>,
    },
}

/// A volume group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vg {
    pub name: String,
    pub id: String,
    pub seqno: u64,
    pub status: Vec<String>,
    pub flags: Vec<String>,
    pub tags: Vec<String>,
    /// Extent size in 512-byte sectors.
    pub extent_size: u64,
    pub max_lv: u64,
    pub max_pv: u64,
    pub pvs: Vec<Pv>,
    pub lvs: Vec<Lv>,
    /// Derived: every snapshot, in LV order of the internal `snapshotN` LVs.
    pub snapshots: Vec<Snapshot>,
}

/// A physical volume as the VG metadata records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pv {
    /// The key in `physical_volumes`, e.g. `pv0`; segments refer to PVs by it.
    pub key: String,
    pub id: String,
    /// Device path at the last write: a hint only.
    pub device: Option<String>,
    pub status: Vec<String>,
    pub flags: Vec<String>,
    pub tags: Vec<String>,
    /// Size in sectors.
    pub dev_size: u64,
    /// First extent, in sectors from the start of the device.
    pub pe_start: u64,
    pub pe_count: u64,
}

/// A logical volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lv {
    pub name: String,
    pub id: String,
    pub status: Vec<String>,
    pub flags: Vec<String>,
    pub tags: Vec<String>,
    /// `VISIBLE` is in status.
    pub visible: bool,
    pub segments: Vec<Segment>,
}

impl Lv {
    /// Total length in extents.
    pub fn extent_count(&self) -> u64 {
        self.segments.iter().map(|s| s.extent_count).sum()
    }

    /// True when every segment is `striped` (linear or striped), the only kind rewind
    /// merges into or uses as a COW store.
    pub fn is_plain(&self) -> bool {
        !self.segments.is_empty()
            && self
                .segments
                .iter()
                .all(|s| matches!(s.kind, SegmentKind::Striped { .. }))
    }

    /// The one `thin` segment of a thin LV.
    pub fn thin(&self) -> Option<ThinSeg<'_>> {
        match self.segments.as_slice() {
            [
                Segment {
                    kind:
                        SegmentKind::Thin {
                            pool,
                            device_id,
                            origin,
                            merge,
                            external_origin,
                            ..
                        },
                    extent_count,
                    ..
                },
            ] => Some(ThinSeg {
                pool,
                device_id: *device_id,
                origin: origin.as_deref(),
                merge: merge.as_deref(),
                external_origin: external_origin.as_deref(),
                extent_count: *extent_count,
            }),
            _ => None,
        }
    }

    /// True when some segment is of a type rewind does not interpret.
    pub fn out_of_scope(&self) -> bool {
        self.segments
            .iter()
            .any(|s| matches!(s.kind, SegmentKind::Other { .. }))
    }
}

/// A thin LV's segment, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThinSeg<'a> {
    pub pool: &'a str,
    pub device_id: u64,
    pub origin: Option<&'a str>,
    pub merge: Option<&'a str>,
    pub external_origin: Option<&'a str>,
    pub extent_count: u64,
}

/// One segment of an LV.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Segment {
    /// The key, e.g. `segment1`.
    pub key: String,
    pub start_extent: u64,
    pub extent_count: u64,
    pub kind: SegmentKind,
}

/// What a segment maps to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SegmentKind {
    /// `striped`: linear when there is one stripe.
    Striped {
        /// Stripe size in sectors, present only with more than one stripe.
        stripe_size: Option<u64>,
        stripes: Vec<Stripe>,
    },
    /// `snapshot`, the segment of an internal `snapshotN` LV.
    Snapshot {
        chunk_size: u64,
        origin: String,
        /// The COW LV (`cow_store`, or `merging_store` when merging).
        cow: String,
        merging: bool,
    },
    /// `thin-pool` (`lib/thin/thin.c` `_thin_pool_text_import`): the pool LV's one segment,
    /// naming its hidden metadata (`_tmeta`) and data (`_tdata`) LVs.
    ThinPool {
        metadata: String,
        data: String,
        /// The transaction id the kernel's pool must report (LVM keeps the two in step).
        transaction_id: u64,
        /// Data block size in sectors.
        chunk_size: u64,
        /// `passdown` (LVM's default when written), `nopassdown` or `ignore` (when absent).
        discards: Option<String>,
        zero_new_blocks: bool,
    },
    /// `thin` (`_thin_text_import`): a thin LV, a device id inside a pool.
    Thin {
        pool: String,
        transaction_id: u64,
        device_id: u64,
        /// The thin LV this one is a snapshot of (`origin`).
        origin: Option<String>,
        /// Set on a thin snapshot flagged to merge into this origin (`merge`).
        merge: Option<String>,
        /// An external origin (read-only LV under the thin LV); rewind does not lay those out.
        external_origin: Option<String>,
    },
    /// Any other segment type, kept by name only.
    Other { segtype: String },
}

/// One stripe: a PV key and the first physical extent on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stripe {
    pub pv: String,
    pub start: u64,
}

/// A snapshot as LVM2 models it: a hidden `snapshotN` LV whose snapshot segment ties an
/// origin to a COW LV (the LV the user named).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// The internal LV, e.g. `snapshot0`.
    pub internal: String,
    pub origin: String,
    /// The COW LV: the name users know the snapshot by.
    pub cow: String,
    /// Chunk size in sectors.
    pub chunk_size: u64,
    pub merging: bool,
}

struct Ctx<'a> {
    vg: &'a str,
}

impl Ctx<'_> {
    fn missing(&self, path: &str) -> ModelError {
        ModelError::Missing {
            vg: self.vg.to_owned(),
            path: path.to_owned(),
        }
    }

    fn bad(&self, path: &str, expected: &'static str) -> ModelError {
        ModelError::BadField {
            vg: self.vg.to_owned(),
            path: path.to_owned(),
            expected,
        }
    }

    fn str(&self, s: &Section, key: &str, path: Path<'_>) -> Result<String, ModelError> {
        match s.get(key) {
            None => Err(self.missing(&path.join(key))),
            Some(Node::Value(Value::Str(v))) => Ok(v.clone()),
            Some(_) => Err(self.bad(&path.join(key), "a string")),
        }
    }

    fn opt_str(
        &self,
        s: &Section,
        key: &str,
        path: Path<'_>,
    ) -> Result<Option<String>, ModelError> {
        match s.get(key) {
            None => Ok(None),
            Some(_) => self.str(s, key, path).map(Some),
        }
    }

    fn uint(&self, s: &Section, key: &str, path: Path<'_>) -> Result<u64, ModelError> {
        match s.get(key) {
            None => Err(self.missing(&path.join(key))),
            Some(Node::Value(Value::Int(i))) => {
                u64::try_from(*i).map_err(|_| self.bad(&path.join(key), "a non-negative integer"))
            }
            Some(_) => Err(self.bad(&path.join(key), "an integer")),
        }
    }

    fn opt_uint(&self, s: &Section, key: &str, path: Path<'_>) -> Result<Option<u64>, ModelError> {
        match s.get(key) {
            None => Ok(None),
            Some(_) => self.uint(s, key, path).map(Some),
        }
    }

    /// A string array; absent means empty (LVM treats missing `flags`/`tags` so).
    fn strs(&self, s: &Section, key: &str, path: Path<'_>) -> Result<Vec<String>, ModelError> {
        match s.get(key) {
            None => Ok(Vec::new()),
            Some(Node::Value(v)) => match v {
                Value::Str(x) => Ok(vec![x.clone()]),
                Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map(str::to_owned))
                    .collect::<Option<Vec<String>>>()
                    .ok_or_else(|| self.bad(&path.join(key), "an array of strings")),
                _ => Err(self.bad(&path.join(key), "an array of strings")),
            },
            Some(Node::Section(_)) => Err(self.bad(&path.join(key), "an array of strings")),
        }
    }
}

/// Where a field is in the tree, for messages: the keys of the sections above it. Built
/// as a string only when a message needs it.
#[derive(Clone, Copy)]
struct Path<'a>(&'a [&'a str]);

impl Path<'_> {
    /// The VG section itself.
    const VG: Path<'static> = Path(&[]);

    /// `key` under this path, as a string (`logical_volumes/lv0/segment1/type`).
    fn join(self, key: &str) -> String {
        let mut parts = self.0.to_vec();
        parts.push(key);
        parts.join("/")
    }
}

/// The VG section of a metadata tree: the only section at the top level.
pub fn vg_section(root: &Section) -> Result<(&str, &Section), ModelError> {
    let mut it = root.sections();
    let first = it.next().ok_or(ModelError::NoVg)?;
    let rest: Vec<&str> = it.map(|(k, _)| k).collect();
    if !rest.is_empty() {
        let mut all = vec![first.0.to_owned()];
        all.extend(rest.into_iter().map(str::to_owned));
        return Err(ModelError::SeveralVgs(all));
    }
    Ok(first)
}

impl Vg {
    /// Builds and validates the model from a parsed metadata tree (backup or disk layout).
    pub fn from_tree(root: &Section) -> Result<Vg, ModelError> {
        let (name, s) = vg_section(root)?;
        let cx = Ctx { vg: name };
        let mut pvs = Vec::new();
        if let Some(pv_sec) = s.get("physical_volumes") {
            let Node::Section(pv_sec) = pv_sec else {
                return Err(cx.bad("physical_volumes", "a section"));
            };
            for (key, p) in pv_sec.sections() {
                let path = Path(&["physical_volumes", key]);
                pvs.push(Pv {
                    key: key.to_owned(),
                    id: cx.str(p, "id", path)?,
                    device: cx.opt_str(p, "device", path)?,
                    status: cx.strs(p, "status", path)?,
                    flags: cx.strs(p, "flags", path)?,
                    tags: cx.strs(p, "tags", path)?,
                    dev_size: cx.opt_uint(p, "dev_size", path)?.unwrap_or(0),
                    pe_start: cx.uint(p, "pe_start", path)?,
                    pe_count: cx.uint(p, "pe_count", path)?,
                });
            }
        }
        let mut lvs = Vec::new();
        if let Some(lv_sec) = s.get("logical_volumes") {
            let Node::Section(lv_sec) = lv_sec else {
                return Err(cx.bad("logical_volumes", "a section"));
            };
            for (lv_name, l) in lv_sec.sections() {
                lvs.push(read_lv(&cx, lv_name, l)?);
            }
        }
        let mut vg = Vg {
            name: name.to_owned(),
            id: cx.str(s, "id", Path::VG)?,
            seqno: cx.uint(s, "seqno", Path::VG)?,
            status: cx.strs(s, "status", Path::VG)?,
            flags: cx.strs(s, "flags", Path::VG)?,
            tags: cx.strs(s, "tags", Path::VG)?,
            extent_size: cx.uint(s, "extent_size", Path::VG)?,
            max_lv: cx.opt_uint(s, "max_lv", Path::VG)?.unwrap_or(0),
            max_pv: cx.opt_uint(s, "max_pv", Path::VG)?.unwrap_or(0),
            pvs,
            lvs,
            snapshots: Vec::new(),
        };
        vg.snapshots = vg.derive_snapshots()?;
        vg.validate()?;
        Ok(vg)
    }

    /// The LV called `name`.
    pub fn lv(&self, name: &str) -> Option<&Lv> {
        self.lvs.iter().find(|l| l.name == name)
    }

    /// The PV with key `key` (e.g. `pv0`).
    pub fn pv(&self, key: &str) -> Option<&Pv> {
        self.pvs.iter().find(|p| p.key == key)
    }

    /// Snapshots of `origin`.
    pub fn snapshots_of<'a>(&'a self, origin: &'a str) -> impl Iterator<Item = &'a Snapshot> {
        self.snapshots.iter().filter(move |s| s.origin == origin)
    }

    /// The merging snapshot of `origin`, if any.
    pub fn merging_snapshot_of(&self, origin: &str) -> Option<&Snapshot> {
        self.snapshots
            .iter()
            .find(|s| s.origin == origin && s.merging)
    }

    /// The thin snapshot flagged to merge into the thin LV `origin` (its segment has
    /// `merge = "<origin>"`, LVM's `init_snapshot_merge` for thin), if any.
    pub fn thin_merge_into(&self, origin: &str) -> Option<&Lv> {
        self.lvs
            .iter()
            .find(|l| l.thin().is_some_and(|t| t.merge == Some(origin)))
    }

    /// The snapshot known by `name`: the COW LV's name (what users type) or the internal
    /// `snapshotN` name.
    pub fn snapshot(&self, name: &str) -> Option<&Snapshot> {
        self.snapshots
            .iter()
            .find(|s| s.cow == name)
            .or_else(|| self.snapshots.iter().find(|s| s.internal == name))
    }

    /// True when `snap` carries rewind's `--mode snapshot` tag on its COW LV
    /// ([`MERGE_AS_SNAPSHOT_TAG`]): while it merges, the snapshot's own
    /// device is the merging one, and the result takes the snapshot's name and UUID.
    pub fn merges_as_snapshot(&self, snap: &Snapshot) -> bool {
        self.lv(&snap.cow)
            .is_some_and(|l| l.tags.iter().any(|t| t == MERGE_AS_SNAPSHOT_TAG))
    }

    /// True when `name` is the origin of at least one snapshot.
    pub fn is_origin(&self, name: &str) -> bool {
        self.snapshots.iter().any(|s| s.origin == name)
    }

    /// Status flags LVM2 would refuse, by object (`vg NAME`, `pv pvN`, `lv NAME`).
    pub fn unknown_status(&self) -> Vec<(String, Vec<String>)> {
        let unknown = |flags: &[String], known: &[&str]| -> Vec<String> {
            flags
                .iter()
                .filter(|f| !known.contains(&f.as_str()))
                .cloned()
                .collect()
        };
        let mut out = Vec::new();
        let mut push = |object: String, u: Vec<String>| {
            if !u.is_empty() {
                out.push((object, u));
            }
        };
        push(
            format!("vg {}", self.name),
            unknown(&self.status, KNOWN_VG_STATUS),
        );
        for p in &self.pvs {
            push(format!("pv {}", p.key), unknown(&p.status, KNOWN_PV_STATUS));
        }
        for l in &self.lvs {
            push(
                format!("lv {}", l.name),
                unknown(&l.status, KNOWN_LV_STATUS),
            );
        }
        out
    }

    /// Refuses a VG rewind must not write: one with status flags LVM2 does not know (LVM
    /// itself refuses to read such metadata, so rewind reads it but will not rewrite it).
    pub fn check_writable(&self) -> Result<(), ModelError> {
        match self.unknown_status().into_iter().next() {
            None => Ok(()),
            Some((object, flags)) => Err(ModelError::UnknownStatus {
                vg: self.name.clone(),
                object,
                flags,
            }),
        }
    }

    fn derive_snapshots(&self) -> Result<Vec<Snapshot>, ModelError> {
        let mut out: Vec<Snapshot> = Vec::new();
        for lv in &self.lvs {
            let snap_segs: Vec<&Segment> = lv
                .segments
                .iter()
                .filter(|s| matches!(s.kind, SegmentKind::Snapshot { .. }))
                .collect();
            if snap_segs.is_empty() {
                continue;
            }
            if lv.segments.len() != 1 {
                return Err(ModelError::BadSnapshotLv {
                    vg: self.name.clone(),
                    snapshot: lv.name.clone(),
                });
            }
            let SegmentKind::Snapshot {
                chunk_size,
                origin,
                cow,
                merging,
            } = &lv.segments[0].kind
            else {
                continue;
            };
            if origin == cow {
                return Err(ModelError::OriginIsCow {
                    vg: self.name.clone(),
                    snapshot: lv.name.clone(),
                    lv: origin.clone(),
                });
            }
            if self.lv(origin).is_none() {
                return Err(ModelError::NoOrigin {
                    vg: self.name.clone(),
                    snapshot: lv.name.clone(),
                    origin: origin.clone(),
                });
            }
            if self.lv(cow).is_none() {
                return Err(ModelError::NoCow {
                    vg: self.name.clone(),
                    snapshot: lv.name.clone(),
                    cow: cow.clone(),
                });
            }
            if let Some(other) = out.iter().find(|s| &s.cow == cow) {
                return Err(ModelError::CowShared {
                    vg: self.name.clone(),
                    cow: cow.clone(),
                    first: other.internal.clone(),
                    second: lv.name.clone(),
                });
            }
            if *merging && let Some(other) = out.iter().find(|s| &s.origin == origin && s.merging) {
                {
                    return Err(ModelError::TwoMerging {
                        vg: self.name.clone(),
                        origin: origin.clone(),
                        first: other.cow.clone(),
                        second: cow.clone(),
                    });
                }
            }
            out.push(Snapshot {
                internal: lv.name.clone(),
                origin: origin.clone(),
                cow: cow.clone(),
                chunk_size: *chunk_size,
                merging: *merging,
            });
        }
        Ok(out)
    }

    fn validate(&self) -> Result<(), ModelError> {
        for (i, p) in self.pvs.iter().enumerate() {
            if let Some(q) = self.pvs[..i].iter().find(|q| q.id == p.id) {
                return Err(ModelError::DuplicatePvId {
                    vg: self.name.clone(),
                    id: p.id.clone(),
                    first: q.key.clone(),
                    second: p.key.clone(),
                });
            }
        }
        for sn in &self.snapshots {
            // LVM accepts 4 KiB to 512 KiB, powers of two (`tools/lvconvert.c`, `lvcreate.c`).
            if !sn.chunk_size.is_power_of_two() || !(8..=1024).contains(&sn.chunk_size) {
                return Err(ModelError::BadChunkSize {
                    vg: self.name.clone(),
                    snapshot: sn.cow.clone(),
                    chunk_size: sn.chunk_size,
                });
            }
        }
        // (pv, first extent, length, lv) for every stripe, to find extents used twice.
        let mut used: Vec<(&str, u64, u64, &str)> = Vec::new();
        for lv in &self.lvs {
            let mut expected = 0u64;
            for seg in &lv.segments {
                if seg.start_extent != expected {
                    return Err(ModelError::SegmentGap {
                        vg: self.name.clone(),
                        lv: lv.name.clone(),
                        segment: seg.key.clone(),
                        start: seg.start_extent,
                        expected,
                    });
                }
                expected = expected.saturating_add(seg.extent_count);
                let SegmentKind::Striped { stripes, .. } = &seg.kind else {
                    continue;
                };
                let n = stripes.len().max(1) as u64;
                if seg.extent_count % n != 0 {
                    return Err(ModelError::UnevenStripes {
                        vg: self.name.clone(),
                        lv: lv.name.clone(),
                        segment: seg.key.clone(),
                        extents: seg.extent_count,
                        stripes: n,
                    });
                }
                let per_stripe = seg.extent_count / n;
                for st in stripes {
                    let Some(pv) = self.pv(&st.pv) else {
                        return Err(ModelError::UnknownPv {
                            vg: self.name.clone(),
                            lv: lv.name.clone(),
                            segment: seg.key.clone(),
                            pv: st.pv.clone(),
                        });
                    };
                    used.push((&st.pv, st.start, per_stripe, &lv.name));
                    let end = st.start.saturating_add(per_stripe);
                    if end > pv.pe_count {
                        return Err(ModelError::ExtentsBeyondPv {
                            vg: self.name.clone(),
                            lv: lv.name.clone(),
                            segment: seg.key.clone(),
                            pv: st.pv.clone(),
                            end,
                            pe_count: pv.pe_count,
                        });
                    }
                }
            }
        }
        used.sort_unstable();
        for w in used.windows(2) {
            let ((pv, start, len, first), (pv2, start2, _, second)) = (w[0], w[1]);
            if pv == pv2 && start2 < start.saturating_add(len) {
                return Err(ModelError::ExtentOverlap {
                    vg: self.name.clone(),
                    pv: pv.to_owned(),
                    extent: start2,
                    first: first.to_owned(),
                    second: second.to_owned(),
                });
            }
        }
        Ok(())
    }
}

fn read_lv(cx: &Ctx<'_>, name: &str, l: &Section) -> Result<Lv, ModelError> {
    let path = Path(&["logical_volumes", name]);
    let status = cx.strs(l, "status", path)?;
    let mut segments = Vec::new();
    for (key, seg) in l.sections() {
        if !key.starts_with("segment") {
            continue;
        }
        segments.push(read_segment(
            cx,
            name,
            Path(&["logical_volumes", name, key]),
            key,
            seg,
        )?);
    }
    // LVM reads segment1..segmentN by number, so order by the number, not text order.
    segments.sort_by_key(|s| s.key["segment".len()..].parse::<u64>().unwrap_or(u64::MAX));
    if let Some(declared) = cx.opt_uint(l, "segment_count", path)?
        && declared != segments.len() as u64
    {
        {
            return Err(ModelError::SegmentCount {
                vg: cx.vg.to_owned(),
                lv: name.to_owned(),
                declared,
                found: segments.len(),
            });
        }
    }
    Ok(Lv {
        name: name.to_owned(),
        id: cx.str(l, "id", path)?,
        visible: status.iter().any(|s| s == "VISIBLE"),
        status,
        flags: cx.strs(l, "flags", path)?,
        tags: cx.strs(l, "tags", path)?,
        segments,
    })
}

fn read_segment(
    cx: &Ctx<'_>,
    lv: &str,
    path: Path<'_>,
    key: &str,
    s: &Section,
) -> Result<Segment, ModelError> {
    let segtype = cx.str(s, "type", path)?;
    let start_extent = cx.uint(s, "start_extent", path)?;
    let extent_count = cx.uint(s, "extent_count", path)?;
    let kind = match segtype.as_str() {
        "striped" => {
            let count = cx.uint(s, "stripe_count", path)?;
            let stripe_size = cx.opt_uint(s, "stripe_size", path)?;
            let arr = match s.value("stripes") {
                Some(Value::Array(a)) => a,
                Some(_) => return Err(cx.bad(&path.join("stripes"), "an array")),
                None => return Err(cx.missing(&path.join("stripes"))),
            };
            if arr.len() % 2 != 0 || arr.len() as u64 != count.saturating_mul(2) || count == 0 {
                return Err(ModelError::StripeMismatch {
                    vg: cx.vg.to_owned(),
                    lv: lv.to_owned(),
                    segment: key.to_owned(),
                    count,
                    found: arr.len() / 2,
                });
            }
            let mut stripes = Vec::new();
            for pair in arr.chunks(2) {
                match (&pair[0], &pair[1]) {
                    (Value::Str(pv), Value::Int(start)) if *start >= 0 => stripes.push(Stripe {
                        pv: pv.clone(),
                        start: *start as u64,
                    }),
                    _ => {
                        return Err(cx.bad(
                            &path.join("stripes"),
                            "pairs of a pv name and a start extent",
                        ));
                    }
                }
            }
            SegmentKind::Striped {
                stripe_size,
                stripes,
            }
        }
        "snapshot" => {
            let (cow, merging) = match (s.get("cow_store"), s.get("merging_store")) {
                (Some(_), None) => (cx.str(s, "cow_store", path)?, false),
                (None, Some(_)) => (cx.str(s, "merging_store", path)?, true),
                (None, None) => return Err(cx.missing(&path.join("cow_store"))),
                (Some(_), Some(_)) => {
                    return Err(cx.bad(
                        &path.join("cow_store"),
                        "alone (both cow_store and merging_store are set)",
                    ));
                }
            };
            SegmentKind::Snapshot {
                chunk_size: cx.uint(s, "chunk_size", path)?,
                origin: cx.str(s, "origin", path)?,
                cow,
                merging,
            }
        }
        "thin-pool" => SegmentKind::ThinPool {
            metadata: cx.str(s, "metadata", path)?,
            data: cx.str(s, "pool", path)?,
            transaction_id: cx.uint(s, "transaction_id", path)?,
            chunk_size: cx.uint(s, "chunk_size", path)?,
            discards: cx.opt_str(s, "discards", path)?,
            zero_new_blocks: cx.opt_uint(s, "zero_new_blocks", path)?.unwrap_or(0) != 0,
        },
        "thin" => SegmentKind::Thin {
            pool: cx.str(s, "thin_pool", path)?,
            transaction_id: cx.uint(s, "transaction_id", path)?,
            device_id: cx.uint(s, "device_id", path)?,
            origin: cx.opt_str(s, "origin", path)?,
            merge: cx.opt_str(s, "merge", path)?,
            external_origin: cx.opt_str(s, "external_origin", path)?,
        },
        _ => SegmentKind::Other { segtype },
    };
    Ok(Segment {
        key: key.to_owned(),
        start_extent,
        extent_count,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lvm::text::parse;

    fn vg(text: &str) -> Result<Vg, ModelError> {
        Vg::from_tree(&parse(text.as_bytes()).expect("parses"))
    }

    const FIXTURE: &str = include_str!("../../tests/fixtures/text/backup.vg");

    #[test]
    fn fixture_model() {
        let v = vg(FIXTURE).expect("valid");
        assert_eq!(v.name, "test-vg");
        assert_eq!(v.extent_size, 8192);
        assert_eq!(v.pvs.len(), 1);
        assert_eq!(v.pvs[0].key, "pv0");
        let names: Vec<_> = v.lvs.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["my-root", "pre", "data", "snapshot0"]);
        assert_eq!(
            v.snapshots,
            [Snapshot {
                internal: "snapshot0".into(),
                origin: "my-root".into(),
                cow: "pre".into(),
                chunk_size: 8,
                merging: false
            }]
        );
        assert!(v.is_origin("my-root"));
        assert!(!v.lv("pre").expect("pre").visible);
        assert_eq!(v.snapshot("pre"), v.snapshot("snapshot0"));
        assert!(v.check_writable().is_ok());
        assert!(serde_json::to_string(&v).is_ok());
    }

    fn edit(from: &str, to: &str) -> String {
        assert!(FIXTURE.contains(from), "{from}");
        FIXTURE.replacen(from, to, 1)
    }

    #[test]
    fn validation_errors() {
        let e = vg(&edit("\"pv0\", 0", "\"pv7\", 0")).expect_err("bad pv");
        assert!(
            matches!(e, ModelError::UnknownPv { ref pv, .. } if pv == "pv7"),
            "{e}"
        );
        assert!(e.to_string().starts_with("vg test-vg: lv my-root"), "{e}");
        let e = vg(&edit("\"pv0\", 0", "\"pv0\", 14")).expect_err("beyond");
        assert!(
            matches!(
                e,
                ModelError::ExtentsBeyondPv {
                    end: 16,
                    pe_count: 15,
                    ..
                }
            ),
            "{e}"
        );
        let e = vg(&edit("origin = \"my-root\"", "origin = \"nope\"")).expect_err("origin");
        assert!(matches!(e, ModelError::NoOrigin { .. }), "{e}");
        let e = vg(&edit("cow_store = \"pre\"", "cow_store = \"nope\"")).expect_err("cow");
        assert!(matches!(e, ModelError::NoCow { .. }), "{e}");
        let e = vg(&edit("segment_count = 1", "segment_count = 2")).expect_err("count");
        assert!(matches!(e, ModelError::SegmentCount { .. }), "{e}");
        let e = vg(&edit("cow_store = \"pre\"", "cow_store = \"my-root\"")).expect_err("same");
        assert!(matches!(e, ModelError::OriginIsCow { .. }), "{e}");
        let two = edit(
            "stripe_count = 1\t# linear\n\n\t\t\t\tstripes = [\n\t\t\t\t\t\"pv0\", 0\n",
            "stripe_count = 2\n\t\t\t\tstripe_size = 128\n\t\t\t\tstripes = [\"pv0\", 0, \"pv0\", 5\n",
        );
        let v = vg(&two).expect("2 extents over 2 stripes");
        assert!(matches!(
            &v.lv("my-root").expect("lv").segments[0].kind,
            SegmentKind::Striped { stripes, stripe_size: Some(128) } if stripes.len() == 2
        ));
        let uneven = two.replacen("extent_count = 2", "extent_count = 3", 1);
        let e = vg(&uneven).expect_err("uneven");
        assert!(matches!(e, ModelError::UnevenStripes { .. }), "{e}");
        let e = vg(&edit("\"pv0\", 2", "\"pv0\", 1")).expect_err("overlap");
        assert_eq!(
            e.to_string(),
            "vg test-vg: pv pv0 extent 1 is used by both my-root and pre"
        );
        let e = vg(&edit("chunk_size = 8", "chunk_size = 12")).expect_err("chunk");
        assert!(
            matches!(e, ModelError::BadChunkSize { chunk_size: 12, .. }),
            "{e}"
        );
        let e = vg(&edit("seqno = ", "seqno = -")).expect_err("negative");
        assert!(matches!(e, ModelError::BadField { .. }), "{e}");
    }

    #[test]
    fn two_merging_snapshots_refused() {
        let second = "\t\tsnapshot1 {\n\t\t\tid = \"x\"\n\t\t\tstatus = [\"READ\", \"WRITE\"]\n\t\t\tsegment_count = 1\n\t\t\tsegment1 {\n\t\t\t\tstart_extent = 0\n\t\t\t\textent_count = 2\n\t\t\t\ttype = \"snapshot\"\n\t\t\t\tchunk_size = 8\n\t\t\t\torigin = \"my-root\"\n\t\t\t\tmerging_store = \"data\"\n\t\t\t}\n\t\t}\n\n\t\tsnapshot0 {";
        let text = edit("\t\tsnapshot0 {", second).replacen("cow_store", "merging_store", 1);
        let e = vg(&text).expect_err("two merging");
        assert!(matches!(e, ModelError::TwoMerging { .. }), "{e}");
    }

    #[test]
    fn unknown_segment_type_is_out_of_scope_not_an_error() {
        let text = edit(
            "type = \"striped\"\n\t\t\t\tstripe_count = 1",
            "type = \"raid1\"\n\t\t\t\tregion_size = 1024",
        );
        let v = vg(&text).expect("valid");
        assert!(v.lv("my-root").expect("lv").out_of_scope());
        assert!(!v.lv("my-root").expect("lv").is_plain());
    }

    #[test]
    fn unknown_status_read_but_not_written() {
        let v = vg(&edit(
            "\"READ\", \"WRITE\", \"VISIBLE\"",
            "\"READ\", \"WRITE\", \"VISIBLE\", \"FUTURE\"",
        ))
        .expect("reads");
        let e = v.check_writable().expect_err("refuses");
        assert_eq!(
            e.to_string(),
            "vg test-vg: lv my-root has status flags lvm2 does not know: [\"FUTURE\"]; refusing to write"
        );
    }

    #[test]
    fn not_a_vg() {
        assert_eq!(vg("a = 1\n"), Err(ModelError::NoVg));
        assert!(matches!(
            vg("a { }\nb { }\n"),
            Err(ModelError::SeveralVgs(_))
        ));
    }
}
