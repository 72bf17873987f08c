//! Typed device-mapper table and status lines for the targets rewind loads and reads.
//!
//! Formats, from the kernel (`Documentation/admin-guide/device-mapper/{linear,striped,snapshot}.rst`,
//! `drivers/md/dm-linear.c`, `dm-stripe.c`, `dm-snap.c` `snapshot_status`/`origin_status`,
//! `dm-snap-persistent.c` `persistent_status`, `dm-snap-transient.c`):
//!
//! - `linear <dev> <offset>`
//! - `striped <#stripes> <chunk sectors> (<dev> <offset>){#stripes}`
//! - `snapshot-origin <origin>`
//! - `snapshot <origin> <cow> P|PO|N <chunk sectors> [<#features> <feature>...]`; the kernel
//!   reports `PO` when the store supports overflow, and the optional features
//!   `discard_zeroes_cow`, `discard_passdown_origin`. `snapshot-merge` takes the same arguments.
//! - `error`
//!
//! The kernel reports devices as `major:minor` when it prints a table; rewind may load tables
//! naming devices by path. Lengths and offsets are 512-byte sectors.
//!
//! Status (`snapshot_status`, INFO) of `snapshot` and `snapshot-merge`:
//! `<sectors_allocated>/<total_sectors> <metadata_sectors>`, or `Invalid`, `Merge failed`,
//! `Overflow`, `Unknown` (a store without usage). A merge is done when allocated == metadata
//! (LVM: `lib/snapshot/snapshot.c` `_snap_target_percent`, `libdm-targets.c`
//! `dm_get_status_snapshot`). libdm also takes the 2-field `used/total` of kernels before
//! 2.6.33; those kernels have no `snapshot-merge`, so rewind refuses that form.

use std::fmt;
use std::str::FromStr;

/// Errors from parsing table and status lines. They name the text, not the device: the caller
/// that read it from a device adds the device's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error("empty table line")]
    Empty,
    #[error("{target}: missing {field}")]
    Missing {
        target: &'static str,
        field: &'static str,
    },
    #[error("{target}: {field} {value:?} is not a number")]
    BadNumber {
        target: &'static str,
        field: &'static str,
        value: String,
    },
    #[error("{target}: {field} must not be zero")]
    Zero {
        target: &'static str,
        field: &'static str,
    },
    #[error("unknown target type {0:?}")]
    UnknownTarget(String),
    #[error("{target}: unexpected trailing arguments {extra:?}")]
    Trailing { target: &'static str, extra: String },
    #[error("{target}: {value:?} is neither major:minor nor an absolute path")]
    BadDevice { target: &'static str, value: String },
    #[error("snapshot: store type {0:?} is not P, PO or N")]
    BadStore(String),
    #[error("snapshot: unknown feature {0:?}")]
    BadFeature(String),
    #[error("table: line at sector {start} does not follow sector {expected}")]
    Gap { start: u64, expected: u64 },
    #[error("table: line at sector {start} has length zero")]
    ZeroLength { start: u64 },
    #[error("table: sector range overflows at {start}")]
    Overflow { start: u64 },
    #[error("snapshot status {0:?} is not understood")]
    BadStatus(String),
}

type Result<T> = std::result::Result<T, TableError>;

/// A device in a table: `major:minor` (what the kernel prints) or an absolute path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DevRef {
    Number { major: u32, minor: u32 },
    Path(String),
}

impl DevRef {
    fn parse(target: &'static str, s: &str) -> Result<DevRef> {
        let bad = || TableError::BadDevice {
            target,
            value: s.to_owned(),
        };
        if let Some((maj, min)) = s.split_once(':') {
            let num = |p: &str| {
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                p.parse::<u32>().ok()
            };
            return match (num(maj), num(min)) {
                (Some(major), Some(minor)) => Ok(DevRef::Number { major, minor }),
                _ => Err(bad()),
            };
        }
        if s.starts_with('/') && s.len() > 1 && !s.chars().any(char::is_whitespace) {
            Ok(DevRef::Path(s.to_owned()))
        } else {
            Err(bad())
        }
    }
}

impl fmt::Display for DevRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DevRef::Number { major, minor } => write!(f, "{major}:{minor}"),
            DevRef::Path(p) => f.write_str(p),
        }
    }
}

impl FromStr for DevRef {
    type Err = TableError;
    fn from_str(s: &str) -> Result<Self> {
        DevRef::parse("device", s)
    }
}

/// One stripe of a `striped` target.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Stripe {
    pub dev: DevRef,
    pub offset: u64,
}

/// How a snapshot's exception store keeps its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Store {
    /// `P`: persistent (what LVM loads).
    Persistent,
    /// `PO`: persistent, and userspace handles overflow (what newer kernels report).
    PersistentOverflow,
    /// `N`: transient (never used by LVM; accepted when read back).
    Transient,
}

impl Store {
    fn as_str(self) -> &'static str {
        match self {
            Store::Persistent => "P",
            Store::PersistentOverflow => "PO",
            Store::Transient => "N",
        }
    }
}

/// Optional features of `snapshot` / `snapshot-merge`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SnapshotFeature {
    DiscardZeroesCow,
    DiscardPassdownOrigin,
}

impl SnapshotFeature {
    fn as_str(self) -> &'static str {
        match self {
            SnapshotFeature::DiscardZeroesCow => "discard_zeroes_cow",
            SnapshotFeature::DiscardPassdownOrigin => "discard_passdown_origin",
        }
    }
}

/// The arguments shared by `snapshot` and `snapshot-merge`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SnapshotArgs {
    pub origin: DevRef,
    pub cow: DevRef,
    pub store: Store,
    pub chunk_sectors: u64,
    pub features: Vec<SnapshotFeature>,
}

impl SnapshotArgs {
    /// Persistent, no features: what LVM (and rewind) loads.
    pub fn persistent(origin: DevRef, cow: DevRef, chunk_sectors: u64) -> Self {
        SnapshotArgs {
            origin,
            cow,
            store: Store::Persistent,
            chunk_sectors,
            features: Vec::new(),
        }
    }
}

/// A device-mapper target with its arguments.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    Linear {
        dev: DevRef,
        offset: u64,
    },
    Striped {
        chunk_sectors: u64,
        stripes: Vec<Stripe>,
    },
    SnapshotOrigin {
        origin: DevRef,
    },
    Snapshot(SnapshotArgs),
    SnapshotMerge(SnapshotArgs),
    /// `thin-pool <metadata dev> <data dev> <block size> <low water mark> [<#features> <feature>*]`.
    ThinPool(ThinPoolArgs),
    /// `thin <pool dev> <device id>` (no external origin).
    Thin {
        pool: DevRef,
        device_id: u64,
    },
    Error,
}

/// A `thin-pool` feature, in the order the kernel prints them (`dm-thin.c` `emit_flags`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ThinPoolFeature {
    SkipBlockZeroing,
    IgnoreDiscard,
    NoDiscardPassdown,
    ReadOnly,
    ErrorIfNoSpace,
}

impl ThinPoolFeature {
    fn as_str(self) -> &'static str {
        match self {
            ThinPoolFeature::SkipBlockZeroing => "skip_block_zeroing",
            ThinPoolFeature::IgnoreDiscard => "ignore_discard",
            ThinPoolFeature::NoDiscardPassdown => "no_discard_passdown",
            ThinPoolFeature::ReadOnly => "read_only",
            ThinPoolFeature::ErrorIfNoSpace => "error_if_no_space",
        }
    }
}

/// The arguments of a `thin-pool` table line.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ThinPoolArgs {
    pub metadata: DevRef,
    pub data: DevRef,
    /// Data block size in sectors.
    pub block_sectors: u64,
    /// Free data blocks below which the kernel raises an event.
    pub low_water_mark: u64,
    /// Kept in the kernel's order, so a table rewind builds reads back equal.
    pub features: Vec<ThinPoolFeature>,
}

struct Args<'a> {
    target: &'static str,
    words: std::str::SplitAsciiWhitespace<'a>,
}

impl<'a> Args<'a> {
    fn word(&mut self, field: &'static str) -> Result<&'a str> {
        self.words.next().ok_or(TableError::Missing {
            target: self.target,
            field,
        })
    }
    fn num(&mut self, field: &'static str) -> Result<u64> {
        let w = self.word(field)?;
        parse_u64(w).ok_or_else(|| TableError::BadNumber {
            target: self.target,
            field,
            value: w.to_owned(),
        })
    }
    fn dev(&mut self, field: &'static str) -> Result<DevRef> {
        let w = self.word(field)?;
        DevRef::parse(self.target, w)
    }
    /// An optional feature list: a count, then that many words, each named by `feature`
    /// (`None`: a feature this target does not have).
    fn features<F>(&mut self, feature: impl Fn(&str) -> Option<F>) -> Result<Vec<F>> {
        let mut features = Vec::new();
        if let Some(count) = self.words.next() {
            let n = parse_u64(count).ok_or_else(|| TableError::BadNumber {
                target: self.target,
                field: "feature count",
                value: count.to_owned(),
            })?;
            for _ in 0..n {
                let w = self.word("feature")?;
                features.push(feature(w).ok_or_else(|| TableError::BadFeature(w.to_owned()))?);
            }
        }
        Ok(features)
    }
    fn end(mut self) -> Result<()> {
        let rest: Vec<&str> = self.words.by_ref().collect();
        if rest.is_empty() {
            Ok(())
        } else {
            Err(TableError::Trailing {
                target: self.target,
                extra: rest.join(" "),
            })
        }
    }
}

/// Digits only: `u64::from_str` would also take a leading `+`, which the kernel never prints.
fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_snapshot_args(args: &mut Args<'_>) -> Result<SnapshotArgs> {
    let origin = args.dev("origin device")?;
    let cow = args.dev("cow device")?;
    let store_word = args.word("store type")?;
    // dm-exception-store.c matches the first letter case-insensitively and `O` as the second.
    let store = match store_word.to_ascii_uppercase().as_str() {
        "P" => Store::Persistent,
        "PO" => Store::PersistentOverflow,
        "N" => Store::Transient,
        _ => return Err(TableError::BadStore(store_word.to_owned())),
    };
    let chunk_sectors = args.num("chunk size")?;
    if chunk_sectors == 0 {
        return Err(TableError::Zero {
            target: args.target,
            field: "chunk size",
        });
    }
    let features = args.features(|w| match w {
        "discard_zeroes_cow" => Some(SnapshotFeature::DiscardZeroesCow),
        "discard_passdown_origin" => Some(SnapshotFeature::DiscardPassdownOrigin),
        _ => None,
    })?;
    Ok(SnapshotArgs {
        origin,
        cow,
        store,
        chunk_sectors,
        features,
    })
}

fn parse_thin_pool_args(args: &mut Args<'_>) -> Result<ThinPoolArgs> {
    let metadata = args.dev("metadata device")?;
    let data = args.dev("data device")?;
    let block_sectors = args.num("data block size")?;
    if block_sectors == 0 {
        return Err(TableError::Zero {
            target: args.target,
            field: "data block size",
        });
    }
    let low_water_mark = args.num("low water mark")?;
    let features = args.features(|w| match w {
        "skip_block_zeroing" => Some(ThinPoolFeature::SkipBlockZeroing),
        "ignore_discard" => Some(ThinPoolFeature::IgnoreDiscard),
        "no_discard_passdown" => Some(ThinPoolFeature::NoDiscardPassdown),
        "read_only" => Some(ThinPoolFeature::ReadOnly),
        "error_if_no_space" => Some(ThinPoolFeature::ErrorIfNoSpace),
        _ => None,
    })?;
    Ok(ThinPoolArgs {
        metadata,
        data,
        block_sectors,
        low_water_mark,
        features,
    })
}

impl Target {
    /// The kernel's name of the target type.
    pub fn target_type(&self) -> &'static str {
        match self {
            Target::Linear { .. } => "linear",
            Target::Striped { .. } => "striped",
            Target::SnapshotOrigin { .. } => "snapshot-origin",
            Target::Snapshot(_) => "snapshot",
            Target::SnapshotMerge(_) => "snapshot-merge",
            Target::ThinPool(_) => "thin-pool",
            Target::Thin { .. } => "thin",
            Target::Error => "error",
        }
    }

    /// Parses a target from its type and its argument string (the two halves the ioctl uses).
    pub fn from_parts(target_type: &str, params: &str) -> Result<Target> {
        let target: &'static str = match target_type {
            "linear" => "linear",
            "striped" => "striped",
            "snapshot-origin" => "snapshot-origin",
            "snapshot" => "snapshot",
            "snapshot-merge" => "snapshot-merge",
            "thin-pool" => "thin-pool",
            "thin" => "thin",
            "error" => "error",
            other => return Err(TableError::UnknownTarget(other.to_owned())),
        };
        let mut args = Args {
            target,
            words: params.split_ascii_whitespace(),
        };
        let t = match target {
            "linear" => Target::Linear {
                dev: args.dev("device")?,
                offset: args.num("offset")?,
            },
            "striped" => {
                let n = args.num("stripe count")?;
                if n == 0 {
                    return Err(TableError::Zero {
                        target,
                        field: "stripe count",
                    });
                }
                let chunk_sectors = args.num("chunk size")?;
                if chunk_sectors == 0 {
                    return Err(TableError::Zero {
                        target,
                        field: "chunk size",
                    });
                }
                let mut stripes = Vec::new();
                for _ in 0..n {
                    stripes.push(Stripe {
                        dev: args.dev("stripe device")?,
                        offset: args.num("stripe offset")?,
                    });
                }
                Target::Striped {
                    chunk_sectors,
                    stripes,
                }
            }
            "snapshot-origin" => Target::SnapshotOrigin {
                origin: args.dev("origin device")?,
            },
            "snapshot" => Target::Snapshot(parse_snapshot_args(&mut args)?),
            "snapshot-merge" => Target::SnapshotMerge(parse_snapshot_args(&mut args)?),
            "thin-pool" => Target::ThinPool(parse_thin_pool_args(&mut args)?),
            "thin" => Target::Thin {
                pool: args.dev("pool device")?,
                device_id: args.num("device id")?,
            },
            _ => Target::Error,
        };
        args.end()?;
        Ok(t)
    }

    /// The argument string, without the target type.
    pub fn params(&self) -> String {
        match self {
            Target::Linear { dev, offset } => format!("{dev} {offset}"),
            Target::Striped {
                chunk_sectors,
                stripes,
            } => {
                let mut s = format!("{} {chunk_sectors}", stripes.len());
                for st in stripes {
                    s.push_str(&format!(" {} {}", st.dev, st.offset));
                }
                s
            }
            Target::SnapshotOrigin { origin } => origin.to_string(),
            Target::Snapshot(a) | Target::SnapshotMerge(a) => {
                let mut s = format!(
                    "{} {} {} {}",
                    a.origin,
                    a.cow,
                    a.store.as_str(),
                    a.chunk_sectors
                );
                if !a.features.is_empty() {
                    s.push_str(&format!(" {}", a.features.len()));
                    for f in &a.features {
                        s.push(' ');
                        s.push_str(f.as_str());
                    }
                }
                s
            }
            Target::ThinPool(a) => {
                let mut s = format!(
                    "{} {} {} {} {}",
                    a.metadata,
                    a.data,
                    a.block_sectors,
                    a.low_water_mark,
                    a.features.len()
                );
                for f in &a.features {
                    s.push(' ');
                    s.push_str(f.as_str());
                }
                s
            }
            Target::Thin { pool, device_id } => format!("{pool} {device_id}"),
            Target::Error => String::new(),
        }
    }

    /// The devices this target opens, in order.
    pub fn devices(&self) -> Vec<&DevRef> {
        match self {
            Target::Linear { dev, .. } => vec![dev],
            Target::Striped { stripes, .. } => stripes.iter().map(|s| &s.dev).collect(),
            Target::SnapshotOrigin { origin } => vec![origin],
            Target::Snapshot(a) | Target::SnapshotMerge(a) => vec![&a.origin, &a.cow],
            Target::ThinPool(a) => vec![&a.metadata, &a.data],
            Target::Thin { pool, .. } => vec![pool],
            Target::Error => Vec::new(),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let params = self.params();
        if params.is_empty() {
            f.write_str(self.target_type())
        } else {
            write!(f, "{} {params}", self.target_type())
        }
    }
}

impl FromStr for Target {
    type Err = TableError;
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim_start_matches(|c: char| c.is_ascii_whitespace());
        let (ty, params) = s
            .split_once(|c: char| c.is_ascii_whitespace())
            .unwrap_or((s, ""));
        if ty.is_empty() {
            return Err(TableError::Empty);
        }
        Target::from_parts(ty, params)
    }
}

/// One line of a table: `<start> <length> <target> <args>`, in sectors (dmsetup's format).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TableLine {
    pub start: u64,
    pub length: u64,
    pub target: Target,
}

fn split_start_length<'a>(s: &'a str, what: &'static str) -> Result<(u64, u64, &'a str)> {
    let mut it = s.trim().splitn(3, |c: char| c.is_ascii_whitespace());
    let start_w = it
        .next()
        .filter(|w| !w.is_empty())
        .ok_or(TableError::Empty)?;
    let length_w = it.next().ok_or(TableError::Missing {
        target: what,
        field: "length",
    })?;
    let rest = it.next().unwrap_or("");
    let num = |field, w: &str| {
        parse_u64(w).ok_or_else(|| TableError::BadNumber {
            target: what,
            field,
            value: w.to_owned(),
        })
    };
    Ok((num("start", start_w)?, num("length", length_w)?, rest))
}

impl fmt::Display for TableLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.start, self.length, self.target)
    }
}

impl FromStr for TableLine {
    type Err = TableError;
    fn from_str(s: &str) -> Result<Self> {
        let (start, length, rest) = split_start_length(s, "table line")?;
        if rest.trim().is_empty() {
            return Err(TableError::Missing {
                target: "table line",
                field: "target type",
            });
        }
        Ok(TableLine {
            start,
            length,
            target: rest.parse()?,
        })
    }
}

/// A whole table: lines that start at sector 0 and follow each other without gaps.
/// An empty table stands for "no table".
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Table {
    pub lines: Vec<TableLine>,
}

impl Table {
    /// A checked table.
    pub fn new(lines: Vec<TableLine>) -> Result<Table> {
        let t = Table { lines };
        t.check()?;
        Ok(t)
    }

    /// A one-line table of `length` sectors.
    pub fn single(length: u64, target: Target) -> Table {
        Table {
            lines: vec![TableLine {
                start: 0,
                length,
                target,
            }],
        }
    }

    /// Lines start at 0, have non-zero lengths and follow each other (the kernel refuses gaps).
    pub fn check(&self) -> Result<()> {
        let mut expected = 0u64;
        for l in &self.lines {
            if l.start != expected {
                return Err(TableError::Gap {
                    start: l.start,
                    expected,
                });
            }
            if l.length == 0 {
                return Err(TableError::ZeroLength { start: l.start });
            }
            expected = l
                .start
                .checked_add(l.length)
                .ok_or(TableError::Overflow { start: l.start })?;
        }
        Ok(())
    }

    /// Total length in sectors.
    pub fn length(&self) -> u64 {
        self.lines
            .iter()
            .fold(0u64, |acc, l| acc.saturating_add(l.length))
    }

    /// The `(start, length, type, params)` tuples the devicemapper crate's `table_load` takes.
    pub fn to_tuples(&self) -> Vec<(u64, u64, String, String)> {
        self.lines
            .iter()
            .map(|l| {
                (
                    l.start,
                    l.length,
                    l.target.target_type().to_owned(),
                    l.target.params(),
                )
            })
            .collect()
    }

    /// A table from the tuples the devicemapper crate's `table_status` returns.
    pub fn from_tuples(tuples: &[(u64, u64, String, String)]) -> Result<Table> {
        let lines = tuples
            .iter()
            .map(|(start, length, ty, params)| {
                Ok(TableLine {
                    start: *start,
                    length: *length,
                    target: Target::from_parts(ty, params)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Table::new(lines)
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for l in &self.lines {
            writeln!(f, "{l}")?;
        }
        Ok(())
    }
}

impl FromStr for Table {
    type Err = TableError;
    /// One line per target; blank lines are skipped.
    fn from_str(s: &str) -> Result<Self> {
        let lines = s
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::parse)
            .collect::<Result<Vec<_>>>()?;
        Table::new(lines)
    }
}

/// One line of a device's status: `<start> <length> <type> <status text>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StatusLine {
    pub start: u64,
    pub length: u64,
    pub target_type: String,
    pub params: String,
}

impl StatusLine {
    /// The snapshot status, if this is a `snapshot` or `snapshot-merge` line.
    pub fn snapshot_status(&self) -> Option<Result<SnapshotStatus>> {
        matches!(self.target_type.as_str(), "snapshot" | "snapshot-merge")
            .then(|| self.params.parse())
    }
}

impl fmt::Display for StatusLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.start, self.length, self.target_type)?;
        if !self.params.is_empty() {
            write!(f, " {}", self.params)?;
        }
        Ok(())
    }
}

impl FromStr for StatusLine {
    type Err = TableError;
    fn from_str(s: &str) -> Result<Self> {
        let (start, length, rest) = split_start_length(s, "status line")?;
        let rest = rest.trim();
        let (ty, params) = rest
            .split_once(|c: char| c.is_ascii_whitespace())
            .unwrap_or((rest, ""));
        if ty.is_empty() {
            return Err(TableError::Missing {
                target: "status line",
                field: "target type",
            });
        }
        Ok(StatusLine {
            start,
            length,
            target_type: ty.to_owned(),
            params: params.trim().to_owned(),
        })
    }
}

/// The status of a `snapshot` or `snapshot-merge` target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SnapshotStatus {
    /// `<allocated>/<total> <metadata>`, in sectors.
    Usage {
        allocated: u64,
        total: u64,
        metadata: u64,
    },
    /// The snapshot was invalidated (I/O error or full without overflow support).
    Invalid,
    /// A merge hit an error and stopped.
    MergeFailed,
    /// The COW filled up (persistent store with overflow support).
    Overflow,
    /// A store without usage reporting.
    Unknown,
}

impl SnapshotStatus {
    /// For `snapshot-merge`: every chunk has been merged back (only metadata is left).
    pub fn merge_done(&self) -> bool {
        matches!(self, SnapshotStatus::Usage { allocated, metadata, .. } if allocated == metadata)
    }

    /// Invalid, merge failed or overflowed: never merge it, stop polling it.
    pub fn is_failed(&self) -> bool {
        matches!(
            self,
            SnapshotStatus::Invalid | SnapshotStatus::MergeFailed | SnapshotStatus::Overflow
        )
    }
}

impl fmt::Display for SnapshotStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotStatus::Usage {
                allocated,
                total,
                metadata,
            } => write!(f, "{allocated}/{total} {metadata}"),
            SnapshotStatus::Invalid => f.write_str("Invalid"),
            SnapshotStatus::MergeFailed => f.write_str("Merge failed"),
            SnapshotStatus::Overflow => f.write_str("Overflow"),
            SnapshotStatus::Unknown => f.write_str("Unknown"),
        }
    }
}

impl FromStr for SnapshotStatus {
    type Err = TableError;
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim();
        let bad = || TableError::BadStatus(s.to_owned());
        // A proposed kernel patch prints "Invalid <cause>"; treat any "Invalid..." as invalid.
        if t == "Invalid" || t.starts_with("Invalid ") {
            return Ok(SnapshotStatus::Invalid);
        }
        match t {
            "Merge failed" => return Ok(SnapshotStatus::MergeFailed),
            "Overflow" => return Ok(SnapshotStatus::Overflow),
            "Unknown" => return Ok(SnapshotStatus::Unknown),
            _ => {}
        }
        let mut words = t.split_ascii_whitespace();
        let (Some(ratio), Some(meta), None) = (words.next(), words.next(), words.next()) else {
            return Err(bad());
        };
        let (alloc, total) = ratio.split_once('/').ok_or_else(bad)?;
        Ok(SnapshotStatus::Usage {
            allocated: parse_u64(alloc).ok_or_else(bad)?,
            total: parse_u64(total).ok_or_else(bad)?,
            metadata: parse_u64(meta).ok_or_else(bad)?,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn num(major: u32, minor: u32) -> DevRef {
        DevRef::Number { major, minor }
    }

    #[test]
    fn kernel_lines_round_trip() {
        for line in [
            "0 2097152 linear 8:2 2048",
            "0 409600 striped 2 128 8:16 2048 8:32 2048",
            "0 2097152 snapshot-origin 253:1",
            "0 2097152 snapshot 253:1 253:2 P 8",
            "0 2097152 snapshot 253:1 253:2 PO 8",
            "0 2097152 snapshot 253:1 253:2 N 16",
            "0 2097152 snapshot 253:1 253:2 PO 8 2 discard_zeroes_cow discard_passdown_origin",
            "0 2097152 snapshot-merge 253:1 253:2 P 8",
            "0 2097152 error",
            "0 8 linear /dev/sda2 0",
            "0 163840 thin-pool 253:0 253:1 128 0 0",
            "0 163840 thin-pool 253:0 253:1 128 0 2 skip_block_zeroing ignore_discard",
            "0 163840 thin-pool 253:0 253:1 1024 1638 1 error_if_no_space",
            "0 81920 thin 253:2 7",
        ] {
            let parsed: TableLine = line.parse().unwrap();
            assert_eq!(parsed.to_string(), line);
        }
    }

    #[test]
    fn typed_values() {
        let l: TableLine = "2048 100 snapshot-merge 253:1 253:2 p 8".parse().unwrap();
        assert_eq!(l.start, 2048);
        assert_eq!(
            l.target,
            Target::SnapshotMerge(SnapshotArgs::persistent(num(253, 1), num(253, 2), 8))
        );
        // canonical upper case on the way out
        assert_eq!(l.to_string(), "2048 100 snapshot-merge 253:1 253:2 P 8");
        assert_eq!(l.target.devices(), vec![&num(253, 1), &num(253, 2)]);
    }

    #[test]
    fn table_checks_and_tuples() {
        let t: Table = "0 10 linear 8:1 0\n10 20 linear 8:2 0\n".parse().unwrap();
        assert_eq!(t.length(), 30);
        assert_eq!(t.to_string(), "0 10 linear 8:1 0\n10 20 linear 8:2 0\n");
        let tuples = t.to_tuples();
        assert_eq!(tuples[1], (10, 20, "linear".into(), "8:2 0".into()));
        assert_eq!(Table::from_tuples(&tuples).unwrap(), t);
        assert_eq!(
            "0 10 linear 8:1 0\n11 20 linear 8:2 0".parse::<Table>(),
            Err(TableError::Gap {
                start: 11,
                expected: 10
            })
        );
        assert_eq!(
            "5 10 error".parse::<Table>(),
            Err(TableError::Gap {
                start: 5,
                expected: 0
            })
        );
        assert_eq!(
            "0 0 error".parse::<Table>(),
            Err(TableError::ZeroLength { start: 0 })
        );
        assert!(
            format!("0 {} error\n{} 2 error", u64::MAX, u64::MAX)
                .parse::<Table>()
                .is_err()
        );
        assert_eq!("".parse::<Table>().unwrap(), Table::default());
    }

    #[test]
    fn bad_lines_give_typed_errors() {
        let cases: &[(&str, TableError)] = &[
            ("", TableError::Empty),
            (
                "0",
                TableError::Missing {
                    target: "table line",
                    field: "length",
                },
            ),
            (
                "0 10",
                TableError::Missing {
                    target: "table line",
                    field: "target type",
                },
            ),
            (
                "x 10 error",
                TableError::BadNumber {
                    target: "table line",
                    field: "start",
                    value: "x".into(),
                },
            ),
            ("0 10 raid 1", TableError::UnknownTarget("raid".into())),
            (
                "0 10 thin 253:0",
                TableError::Missing {
                    target: "thin",
                    field: "device id",
                },
            ),
            (
                "0 10 error x",
                TableError::Trailing {
                    target: "error",
                    extra: "x".into(),
                },
            ),
            (
                "0 10 linear 8:1",
                TableError::Missing {
                    target: "linear",
                    field: "offset",
                },
            ),
            (
                "0 10 linear sda 0",
                TableError::BadDevice {
                    target: "linear",
                    value: "sda".into(),
                },
            ),
            (
                "0 10 linear 8:-1 0",
                TableError::BadDevice {
                    target: "linear",
                    value: "8:-1".into(),
                },
            ),
            (
                "0 10 linear 8:1 +5",
                TableError::BadNumber {
                    target: "linear",
                    field: "offset",
                    value: "+5".into(),
                },
            ),
            (
                "0 10 striped 0 128",
                TableError::Zero {
                    target: "striped",
                    field: "stripe count",
                },
            ),
            (
                "0 10 striped 2 128 8:1 0",
                TableError::Missing {
                    target: "striped",
                    field: "stripe device",
                },
            ),
            (
                "0 10 snapshot 8:1 8:2 X 8",
                TableError::BadStore("X".into()),
            ),
            (
                "0 10 snapshot 8:1 8:2 P 0",
                TableError::Zero {
                    target: "snapshot",
                    field: "chunk size",
                },
            ),
            (
                "0 10 snapshot 8:1 8:2 P 8 1 foo",
                TableError::BadFeature("foo".into()),
            ),
            (
                "0 10 snapshot 8:1 8:2 P 8 2 discard_zeroes_cow",
                TableError::Missing {
                    target: "snapshot",
                    field: "feature",
                },
            ),
            (
                "0 10 snapshot-origin",
                TableError::Missing {
                    target: "snapshot-origin",
                    field: "origin device",
                },
            ),
        ];
        for (line, want) in cases {
            assert_eq!(line.parse::<TableLine>().as_ref(), Err(want), "{line:?}");
        }
        assert_eq!(
            TableError::BadStore("X".into()).to_string(),
            "snapshot: store type \"X\" is not P, PO or N"
        );
    }

    #[test]
    fn snapshot_status() {
        let s: SnapshotStatus = "16/2097152 16".parse().unwrap();
        assert!(s.merge_done());
        let s: SnapshotStatus = "1024/2097152 16".parse().unwrap();
        assert_eq!(
            s,
            SnapshotStatus::Usage {
                allocated: 1024,
                total: 2097152,
                metadata: 16
            }
        );
        assert!(!s.merge_done());
        assert!(!s.is_failed());
        for (text, want) in [
            ("Invalid", SnapshotStatus::Invalid),
            ("Invalid cow device error", SnapshotStatus::Invalid),
            ("Merge failed", SnapshotStatus::MergeFailed),
            ("Overflow", SnapshotStatus::Overflow),
            ("Unknown", SnapshotStatus::Unknown),
        ] {
            let got: SnapshotStatus = text.parse().unwrap();
            assert_eq!(got, want);
            assert!(!got.merge_done());
        }
        for bad in [
            "",
            "16/",
            "/16 16",
            "16/32",
            "16/32 16 1",
            "a/b c",
            "Invalidx",
            "merge failed",
        ] {
            assert!(
                matches!(bad.parse::<SnapshotStatus>(), Err(TableError::BadStatus(_))),
                "{bad:?}"
            );
        }
        let line: StatusLine = "0 2097152 snapshot-merge 16/2097152 16".parse().unwrap();
        assert_eq!(
            line.snapshot_status(),
            Some(Ok(SnapshotStatus::Usage {
                allocated: 16,
                total: 2097152,
                metadata: 16
            }))
        );
        assert_eq!(line.to_string(), "0 2097152 snapshot-merge 16/2097152 16");
        let line: StatusLine = "0 2097152 snapshot Merge failed".parse().unwrap();
        assert_eq!(
            line.snapshot_status(),
            Some(Ok(SnapshotStatus::MergeFailed))
        );
        let line: StatusLine = "0 2097152 linear".parse().unwrap();
        assert_eq!(line.snapshot_status(), None);
        assert_eq!(line.to_string(), "0 2097152 linear");
    }

    /// A small deterministic generator (xorshift64*), so the property tests need no extra crate.
    struct Gen(u64);
    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn num(&mut self) -> u64 {
            match self.below(4) {
                0 => 0,
                1 => u64::MAX,
                2 => self.below(1 << 20),
                _ => self.next(),
            }
        }
        fn dev(&mut self) -> DevRef {
            if self.below(3) == 0 {
                DevRef::Path(format!("/dev/disk/by-id/x{}", self.below(1000)))
            } else {
                num(self.next() as u32, self.next() as u32)
            }
        }
        fn snap(&mut self) -> SnapshotArgs {
            let store = [
                Store::Persistent,
                Store::PersistentOverflow,
                Store::Transient,
            ][self.below(3) as usize];
            let features = match self.below(3) {
                0 => vec![],
                1 => vec![SnapshotFeature::DiscardZeroesCow],
                _ => vec![
                    SnapshotFeature::DiscardZeroesCow,
                    SnapshotFeature::DiscardPassdownOrigin,
                ],
            };
            SnapshotArgs {
                origin: self.dev(),
                cow: self.dev(),
                store,
                chunk_sectors: self.num().max(1),
                features,
            }
        }
        fn target(&mut self) -> Target {
            match self.below(6) {
                0 => Target::Linear {
                    dev: self.dev(),
                    offset: self.num(),
                },
                1 => Target::Striped {
                    chunk_sectors: self.num().max(1),
                    stripes: (0..1 + self.below(8))
                        .map(|_| Stripe {
                            dev: self.dev(),
                            offset: self.num(),
                        })
                        .collect(),
                },
                2 => Target::SnapshotOrigin { origin: self.dev() },
                3 => Target::Snapshot(self.snap()),
                4 => Target::SnapshotMerge(self.snap()),
                _ => Target::Error,
            }
        }
    }

    #[test]
    fn property_generated_lines_round_trip() {
        let mut g = Gen(0x9E37_79B9_7F4A_7C15);
        for _ in 0..5000 {
            let line = TableLine {
                start: g.num(),
                length: g.num(),
                target: g.target(),
            };
            let text = line.to_string();
            assert_eq!(text.parse::<TableLine>().as_ref(), Ok(&line), "{text}");
            let (ty, params) = (line.target.target_type(), line.target.params());
            assert_eq!(Target::from_parts(ty, &params).as_ref(), Ok(&line.target));
        }
    }

    #[test]
    fn property_generated_tables_and_status_round_trip() {
        let mut g = Gen(42);
        for _ in 0..500 {
            let mut start = 0u64;
            let lines: Vec<TableLine> = (0..g.below(5))
                .map(|_| {
                    let length = 1 + g.below(1 << 30);
                    let l = TableLine {
                        start,
                        length,
                        target: g.target(),
                    };
                    start += length;
                    l
                })
                .collect();
            let t = Table::new(lines).unwrap();
            assert_eq!(t.to_string().parse::<Table>().as_ref(), Ok(&t));
            assert_eq!(Table::from_tuples(&t.to_tuples()).as_ref(), Ok(&t));

            let s = SnapshotStatus::Usage {
                allocated: g.num(),
                total: g.num(),
                metadata: g.num(),
            };
            assert_eq!(s.to_string().parse::<SnapshotStatus>(), Ok(s));
        }
    }

    #[test]
    fn property_no_panic_on_garbage() {
        let alphabet: Vec<char> = "0123456789 :/-PONabcdeilnorstpgmx\t\n\u{e9}+"
            .chars()
            .collect();
        let words = [
            "linear",
            "striped",
            "snapshot",
            "snapshot-merge",
            "snapshot-origin",
            "error",
            "P",
            "PO",
            "8:1",
            "2",
            "discard_zeroes_cow",
        ];
        let mut g = Gen(7);
        for _ in 0..20000 {
            let mut s = String::new();
            for _ in 0..g.below(40) {
                if g.below(4) == 0 {
                    s.push_str(words[g.below(words.len() as u64) as usize]);
                    s.push(' ');
                } else {
                    s.push(alphabet[g.below(alphabet.len() as u64) as usize]);
                }
            }
            let _ = s.parse::<TableLine>();
            let _ = s.parse::<Table>();
            let _ = s.parse::<StatusLine>();
            let _ = s.parse::<SnapshotStatus>();
            let _ = s.parse::<Target>();
        }
    }
}
