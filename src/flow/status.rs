//! `rewind status`: every origin with snapshots, each snapshot's state (a plain snapshot,
//! flagged for the next activation, merging, merged and waiting for `rewind poll`, invalid),
//! merge progress (percent merged as LVM prints it, bytes left, rate, ETA) and snapshot fill;
//! entry point [`run`]. Without device-mapper it is the metadata's view alone: nothing is
//! active.

use super::Error;
use super::env::{Env, System, device, is_merging, live_now};
use crate::exit::Verdict;
use crate::lvm::assemble::FoundVg;
use crate::lvm::model::{Snapshot, Vg};
use crate::plan::steps::Live;
use crate::plan::table::SnapshotStatus;
use crate::system::dm::{DeviceMapper, DmError, RealDm};
use serde::Serialize;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// A snapshot, not flagged.
    Snapshot,
    /// Flagged to merge; starts at the next activation of the origin (the next boot for root).
    Flagged,
    /// The kernel is copying it back.
    Merging,
    /// Copied back; `rewind poll` (or lvm) still has to drop it from the metadata.
    Done,
    /// Invalid (or overflowed): it cannot be merged.
    Invalid,
    /// The merge hit an error and stopped.
    MergeFailed,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fill {
    pub allocated_bytes: u64,
    pub total_bytes: u64,
    pub percent: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Merge {
    /// Merged so far, as LVM prints it (100 - the store's use).
    pub percent: f64,
    pub bytes_left: u64,
    pub rate_bytes_per_s: Option<f64>,
    pub eta_s: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapshotReport {
    pub name: String,
    /// `--mode snapshot`: the name the merged volume will carry (the origin's otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_name: Option<String>,
    pub state: State,
    pub chunk_sectors: u64,
    pub fill: Option<Fill>,
    pub merge: Option<Merge>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OriginReport {
    pub vg: String,
    pub origin: String,
    /// The origin's device-mapper device, when active.
    pub device: Option<String>,
    pub snapshots: Vec<SnapshotReport>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    pub origins: Vec<OriginReport>,
    pub problems: Vec<String>,
    /// Origins rolled back to a snapshot set, as `rewind poll`'s finish recorded it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rolled_back: Vec<RolledBack>,
    /// Thin pools, with their fill when active (absent when there is none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pools: Vec<PoolReport>,
}

/// A thin pool: what the metadata says and, when its `-tpool` device is live, what the
/// kernel reports (`drivers/md/dm-thin.c` `pool_status`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolReport {
    pub vg: String,
    pub pool: String,
    /// The transaction id in the VG metadata.
    pub transaction_id: u64,
    /// The pool's `-tpool` device, when active.
    pub device: Option<String>,
    /// The kernel's view, when active and readable.
    pub kernel: Option<PoolKernel>,
}

/// A live pool's status. A full pool makes every thin volume in it read-only (or error,
/// with `error_if_no_space`): `status` is unhealthy then, and when the kernel failed the pool,
/// put its metadata read-only or flagged it `needs_check`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolKernel {
    /// `Fail`: the kernel stopped the pool.
    pub failed: bool,
    pub transaction_id: Option<u64>,
    /// Data blocks used (`chunk_size` each).
    pub data: Option<Fill>,
    /// Metadata blocks used (4 KiB each).
    pub metadata: Option<Fill>,
    pub read_only: bool,
    pub out_of_data_space: bool,
    pub needs_check: bool,
}

impl PoolKernel {
    fn unhealthy(&self) -> bool {
        self.failed || self.read_only || self.out_of_data_space || self.needs_check
    }
}

/// An origin back at a snapshot set's state (its merge finished at `time`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolledBack {
    pub vg: String,
    pub origin: String,
    pub set: String,
    /// When the merge finished (Unix seconds).
    pub time: i64,
}

impl Report {
    /// Unhealthy when a snapshot is invalid or a merge failed.
    pub fn verdict(&self) -> Verdict {
        let bad = self
            .origins
            .iter()
            .flat_map(|o| &o.snapshots)
            .any(|s| matches!(s.state, State::Invalid | State::MergeFailed))
            || self
                .pools
                .iter()
                .any(|p| p.kernel.as_ref().is_some_and(PoolKernel::unhealthy));
        if bad { Verdict::Unhealthy } else { Verdict::Ok }
    }

    /// 0 all well, 3 a snapshot is invalid, a merge failed or a thin pool is full or failed.
    pub fn exit_code(&self) -> u8 {
        self.verdict().code()
    }

    /// Merges still copying.
    pub fn merging(&self) -> impl Iterator<Item = (&OriginReport, &SnapshotReport)> {
        self.origins.iter().flat_map(|o| {
            o.snapshots
                .iter()
                .filter(|s| s.state == State::Merging)
                .map(move |s| (o, s))
        })
    }
}

fn status_of(
    dm: &mut Option<&mut dyn DeviceMapper>,
    name: &str,
    target: &str,
) -> Option<SnapshotStatus> {
    let lines = dm.as_mut()?.status(name).ok()?;
    let line = lines.iter().find(|l| l.target_type == target)?;
    line.snapshot_status()?.ok()
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 * 10000.0 / whole as f64).round() / 100.0
    }
}

/// A snapshot's fill, from its `snapshot` status.
fn fill(st: SnapshotStatus) -> Option<Fill> {
    match st {
        SnapshotStatus::Usage {
            allocated, total, ..
        } => Some(Fill {
            allocated_bytes: allocated * 512,
            total_bytes: total * 512,
            percent: pct(allocated, total),
        }),
        _ => None,
    }
}

/// The state of a merge the kernel runs, from its `snapshot-merge` status.
fn merge_state(st: Option<SnapshotStatus>) -> (State, Option<Merge>) {
    match st {
        Some(SnapshotStatus::Invalid | SnapshotStatus::Overflow) => (State::Invalid, None),
        Some(SnapshotStatus::MergeFailed) => (State::MergeFailed, None),
        Some(
            st @ SnapshotStatus::Usage {
                allocated,
                total,
                metadata,
            },
        ) => {
            let merge = Merge {
                percent: 100.0 - pct(allocated, total),
                bytes_left: allocated.saturating_sub(metadata) * 512,
                rate_bytes_per_s: None,
                eta_s: None,
            };
            let state = if st.merge_done() {
                State::Done
            } else {
                State::Merging
            };
            (state, Some(merge))
        }
        _ => (State::Merging, None),
    }
}

/// Thin metadata blocks are 4 KiB (`THIN_METADATA_BLOCK_SIZE`).
const THIN_METADATA_BLOCK: u64 = 4096;

/// Every thin pool of `vg`, with the kernel's view of the live ones.
fn pool_reports(
    vg: &FoundVg,
    model: &Vg,
    live: &[Live],
    dm: &mut Option<&mut dyn DeviceMapper>,
) -> Vec<PoolReport> {
    model
        .lvs
        .iter()
        .filter_map(|lv| pool_report(vg, lv, live, dm))
        .collect()
}

/// The thin pool `lv` of `vg` (none when it is not a pool), with the kernel's view when its
/// `-tpool` device is among `live` and `dm` reads its status (`rewind status`, `list`, `watch`).
pub fn pool_report(
    vg: &FoundVg,
    lv: &crate::lvm::model::Lv,
    live: &[Live],
    dm: &mut Option<&mut dyn DeviceMapper>,
) -> Option<PoolReport> {
    let (transaction_id, chunk) = lv.segments.iter().find_map(|s| match s.kind {
        crate::lvm::model::SegmentKind::ThinPool {
            transaction_id,
            chunk_size,
            ..
        } => Some((transaction_id, chunk_size)),
        _ => None,
    })?;
    let dev = live_layer(live, vg, &lv.id, "tpool");
    let kernel = dev.and_then(|d| {
        let lines = dm.as_mut()?.status(&d.name).ok()?;
        let line = lines.iter().find(|l| l.target_type == "thin-pool")?;
        let st = crate::plan::thinpool::parse_status(&line.params).ok()?;
        Some(match st {
            None => PoolKernel {
                failed: true,
                transaction_id: None,
                data: None,
                metadata: None,
                read_only: false,
                out_of_data_space: false,
                needs_check: false,
            },
            Some(st) => PoolKernel {
                failed: false,
                transaction_id: Some(st.transaction_id),
                data: Some(Fill {
                    allocated_bytes: st.used_data_blocks * chunk * 512,
                    total_bytes: st.total_data_blocks * chunk * 512,
                    percent: pct(st.used_data_blocks, st.total_data_blocks),
                }),
                metadata: Some(Fill {
                    allocated_bytes: st.used_metadata_blocks * THIN_METADATA_BLOCK,
                    total_bytes: st.total_metadata_blocks * THIN_METADATA_BLOCK,
                    percent: pct(st.used_metadata_blocks, st.total_metadata_blocks),
                }),
                read_only: st.read_only,
                out_of_data_space: st.out_of_data_space,
                needs_check: st.needs_check,
            },
        })
    });
    Some(PoolReport {
        vg: vg.name.clone(),
        pool: lv.name.clone(),
        transaction_id,
        device: dev.map(|d| d.name.clone()),
        kernel,
    })
}

/// The live device of LV id `lv_id`'s layer `layer` in `vg`.
fn live_layer<'l>(live: &'l [Live], vg: &FoundVg, lv_id: &str, layer: &str) -> Option<&'l Live> {
    use crate::lvm::layout::{Layer, LvmId, dm_uuid};
    let (v, l) = (LvmId::parse(&vg.id).ok()?, LvmId::parse(lv_id).ok()?);
    let uuid = dm_uuid(&v, &l, Some(&Layer::Other(layer.to_owned())));
    live.iter()
        .find(|d| d.uuid.as_deref() == Some(uuid.as_str()))
}

/// One snapshot of an origin whose device is `origin_dev` (if active).
fn snapshot_report(
    vg: &FoundVg,
    model: &Vg,
    s: &Snapshot,
    origin_dev: Option<&Live>,
    live: &[Live],
    dm: &mut Option<&mut dyn DeviceMapper>,
) -> SnapshotReport {
    let mut fill_now = None;
    let mut merge = None;
    let snap_dev = device(live, vg, model, &s.cow);
    // `--mode snapshot`: the merge runs on the snapshot's own device (or on the origin's,
    // when stock LVM activated it).
    let as_snapshot = s.merging && model.merges_as_snapshot(s);
    let (merge_live, dev) = if as_snapshot && snap_dev.is_some_and(is_merging) {
        (true, snap_dev)
    } else {
        (origin_dev.is_some_and(is_merging), origin_dev)
    };
    let state = if s.merging && merge_live {
        let (state, m) = merge_state(dev.and_then(|d| status_of(dm, &d.name, "snapshot-merge")));
        merge = m;
        state
    } else if s.merging {
        // Still active as a plain snapshot until the next activation.
        fill_now = snap_dev
            .and_then(|d| status_of(dm, &d.name, "snapshot"))
            .and_then(fill);
        State::Flagged
    } else {
        match snap_dev.and_then(|d| status_of(dm, &d.name, "snapshot")) {
            Some(SnapshotStatus::Invalid | SnapshotStatus::Overflow) => State::Invalid,
            Some(st) => {
                fill_now = fill(st);
                State::Snapshot
            }
            None => State::Snapshot,
        }
    };
    SnapshotReport {
        name: s.cow.clone(),
        result_name: as_snapshot.then(|| s.cow.clone()),
        state,
        chunk_sectors: s.chunk_size,
        fill: fill_now,
        merge,
    }
}

/// Builds the report from the VGs found and what is live now. Without device-mapper (`dm`
/// `None`, `live` empty) it is the metadata's view alone: nothing is active.
pub fn collect(vgs: &[FoundVg], live: &[Live], mut dm: Option<&mut dyn DeviceMapper>) -> Report {
    let mut report = Report::default();
    for vg in vgs {
        let Some(model) = &vg.model else {
            report
                .problems
                .push(format!("vg {}: metadata not usable", vg.name));
            continue;
        };
        if let Some(p) = vg.blocking_problem() {
            report.problems.push(p.to_string());
        }
        for lv in &model.lvs {
            if let Some((set, time)) = crate::lvm::sets::rolled_back(&lv.tags) {
                report.rolled_back.push(RolledBack {
                    vg: vg.name.clone(),
                    origin: lv.name.clone(),
                    set,
                    time,
                });
            }
        }
        report.pools.extend(pool_reports(vg, model, live, &mut dm));
        let mut origins: Vec<&str> = Vec::new();
        for s in &model.snapshots {
            if !origins.contains(&s.origin.as_str()) {
                origins.push(&s.origin);
            }
        }
        for origin in origins {
            if model.lv(origin).is_none() {
                continue;
            }
            let dev = device(live, vg, model, origin);
            let snapshots = model
                .snapshots_of(origin)
                .map(|s| snapshot_report(vg, model, s, dev, live, &mut dm))
                .collect();
            report.origins.push(OriginReport {
                vg: vg.name.clone(),
                origin: origin.to_owned(),
                device: dev.map(|d| d.name.clone()),
                snapshots,
            });
        }
    }
    report
}

/// Fills in rate and ETA from an earlier report taken `elapsed` before `now`.
pub fn add_rates(now: &mut Report, before: &Report, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return;
    }
    for o in &mut now.origins {
        for s in &mut o.snapshots {
            let Some(m) = &mut s.merge else { continue };
            let prev = before
                .origins
                .iter()
                .find(|p| p.vg == o.vg && p.origin == o.origin)
                .and_then(|p| p.snapshots.iter().find(|p| p.name == s.name))
                .and_then(|p| p.merge.as_ref());
            if let Some(prev) = prev
                && prev.bytes_left >= m.bytes_left
            {
                let rate = (prev.bytes_left - m.bytes_left) as f64 / secs;
                m.rate_bytes_per_s = Some(rate.round());
                if rate > 0.0 {
                    m.eta_s = Some((m.bytes_left as f64 / rate * 10.0).round() / 10.0);
                }
            }
        }
    }
}

/// Takes reports of the system: a scan with device-mapper's view when there is one.
pub struct Sampler {
    env: Env<'static>,
    dm: Option<RealDm>,
    /// Why there is no device-mapper, when there is none (the report then shows the
    /// metadata's view alone).
    pub no_device_mapper: Option<DmError>,
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampler")
            .field("env", &self.env)
            .field("no_device_mapper", &self.no_device_mapper)
            .finish_non_exhaustive()
    }
}

impl Sampler {
    /// One report of what is there now.
    pub fn sample(&mut self) -> Result<Report, Error> {
        let s = self.env.scan()?;
        match &mut self.dm {
            Some(d) => {
                let l = live_now(d)?;
                Ok(collect(&s.assembly.vgs, &l, Some(d)))
            }
            None => Ok(collect(&s.assembly.vgs, &[], None)),
        }
    }
}

/// Samples once a second until no merge is running or waiting for its finish (a merge
/// flagged for the next activation is not waited for: nothing runs it now).
pub fn wait_until_merged(sampler: &mut Sampler, mut report: Report) -> Result<Report, Error> {
    while report
        .origins
        .iter()
        .flat_map(|o| &o.snapshots)
        .any(|s| matches!(s.state, State::Merging | State::Done))
    {
        std::thread::sleep(Duration::from_secs(1));
        report = sampler.sample()?;
    }
    Ok(report)
}

/// `rewind status`: a report of the system; with a merge running, a second one a second
/// later gives its rate and time left. The sampler takes more (`--watch`).
pub fn run(sys: &System) -> Result<(Report, Sampler), Error> {
    let (dm, no_device_mapper) = match sys.device_mapper() {
        Ok(dm) => (Some(dm), None),
        Err(e) => (None, Some(e)),
    };
    let mut sampler = Sampler {
        env: sys.env(),
        dm,
        no_device_mapper,
    };
    let mut report = sampler.sample()?;
    if report.merging().next().is_some() {
        let t = Instant::now();
        std::thread::sleep(Duration::from_secs(1));
        if let Ok(mut again) = sampler.sample() {
            add_rates(&mut again, &report, t.elapsed());
            report = again;
        }
    }
    report
        .problems
        .extend(super::setkernel::boot_problem(&sys.root));
    report.problems.extend(super::bootpkgs::problems(&sys.root));
    Ok((report, sampler))
}
