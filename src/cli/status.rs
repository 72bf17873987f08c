//! `rewind status`: every origin with snapshots, each snapshot's state (a plain snapshot,
//! flagged for the next activation, merging, merged and waiting for `rewind poll`, invalid),
//! merge progress (percent merged as LVM prints it, bytes left, rate, ETA) and snapshot fill.
//!
//! Exit codes: 0 all well, 1 the state could not be read, 3 a snapshot is invalid or a merge
//! failed (see the messages).

use crate::lvm::assemble::FoundVg;
use crate::lvm::layout::{LvmId, dm_uuid};
use crate::plan::steps::Live;
use crate::plan::table::{SnapshotStatus, Target};
use crate::system::dm::DeviceMapper;
use serde::Serialize;
use std::time::Duration;

/// Exit code: a snapshot is invalid or a merge failed.
pub const EXIT_UNHEALTHY: u8 = 3;

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
}

impl Report {
    pub fn exit_code(&self) -> u8 {
        let bad = self
            .origins
            .iter()
            .flat_map(|o| &o.snapshots)
            .any(|s| matches!(s.state, State::Invalid | State::MergeFailed));
        if bad { EXIT_UNHEALTHY } else { 0 }
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

fn device_of<'l>(live: &'l [Live], vg: &FoundVg, lv_id: &str) -> Option<&'l Live> {
    let vg_id = LvmId::parse(&vg.id).ok()?;
    let lv_id = LvmId::parse(lv_id).ok()?;
    let uuid = dm_uuid(&vg_id, &lv_id, None);
    live.iter()
        .find(|l| l.uuid.as_deref() == Some(uuid.as_str()))
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
        let mut origins: Vec<&str> = Vec::new();
        for s in &model.snapshots {
            if !origins.contains(&s.origin.as_str()) {
                origins.push(&s.origin);
            }
        }
        for origin in origins {
            let Some(origin_lv) = model.lv(origin) else {
                continue;
            };
            let dev = device_of(live, vg, &origin_lv.id);
            let is_merge = |d: &Option<&Live>| {
                d.and_then(|d| d.table.as_ref()).is_some_and(|t| {
                    t.lines
                        .iter()
                        .any(|l| matches!(l.target, Target::SnapshotMerge(_)))
                })
            };
            let mut snaps = Vec::new();
            for s in model.snapshots_of(origin) {
                let mut fill = None;
                let mut merge = None;
                // `--mode snapshot`: the merge runs on the snapshot's own device (or on the
                // origin's, when stock LVM activated it).
                let as_snapshot = s.merging && model.merges_as_snapshot(s);
                let snap_dev = model
                    .lv(&s.cow)
                    .and_then(|cow| device_of(live, vg, &cow.id));
                let (merge_live, dev) = if as_snapshot && is_merge(&snap_dev) {
                    (true, snap_dev)
                } else {
                    (is_merge(&dev), dev)
                };
                let state = if s.merging {
                    if merge_live {
                        match dev.and_then(|d| status_of(&mut dm, &d.name, "snapshot-merge")) {
                            Some(SnapshotStatus::Invalid | SnapshotStatus::Overflow) => {
                                State::Invalid
                            }
                            Some(SnapshotStatus::MergeFailed) => State::MergeFailed,
                            Some(
                                st @ SnapshotStatus::Usage {
                                    allocated,
                                    total,
                                    metadata,
                                },
                            ) => {
                                merge = Some(Merge {
                                    percent: 100.0 - pct(allocated, total),
                                    bytes_left: allocated.saturating_sub(metadata) * 512,
                                    rate_bytes_per_s: None,
                                    eta_s: None,
                                });
                                if st.merge_done() {
                                    State::Done
                                } else {
                                    State::Merging
                                }
                            }
                            _ => State::Merging,
                        }
                    } else {
                        // Still active as a plain snapshot until the next activation.
                        fill = model
                            .lv(&s.cow)
                            .and_then(|cow| device_of(live, vg, &cow.id))
                            .and_then(|d| status_of(&mut dm, &d.name, "snapshot"))
                            .and_then(|st| match st {
                                SnapshotStatus::Usage {
                                    allocated, total, ..
                                } => Some(Fill {
                                    allocated_bytes: allocated * 512,
                                    total_bytes: total * 512,
                                    percent: pct(allocated, total),
                                }),
                                _ => None,
                            });
                        State::Flagged
                    }
                } else {
                    let cow_dev = model
                        .lv(&s.cow)
                        .and_then(|cow| device_of(live, vg, &cow.id));
                    match cow_dev.and_then(|d| status_of(&mut dm, &d.name, "snapshot")) {
                        Some(SnapshotStatus::Invalid | SnapshotStatus::Overflow) => State::Invalid,
                        Some(SnapshotStatus::Usage {
                            allocated, total, ..
                        }) => {
                            fill = Some(Fill {
                                allocated_bytes: allocated * 512,
                                total_bytes: total * 512,
                                percent: pct(allocated, total),
                            });
                            State::Snapshot
                        }
                        _ => State::Snapshot,
                    }
                };
                snaps.push(SnapshotReport {
                    name: s.cow.clone(),
                    result_name: as_snapshot.then(|| s.cow.clone()),
                    state,
                    chunk_sectors: s.chunk_size,
                    fill,
                    merge,
                });
            }
            report.origins.push(OriginReport {
                vg: vg.name.clone(),
                origin: origin.to_owned(),
                device: dev.map(|d| d.name.clone()),
                snapshots: snaps,
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

/// `rewind status --watch` without a terminal (progress bars need one): after each sample, one
/// line per running merge (`VG/ORIGIN <- SNAP: P% merged, N left[, rate][, time left]`), and one
/// line when a merge stops running (done, failed, invalid or gone). Returns when no merge is
/// running any more, or with the error when a sample cannot be taken. `take` samples the
/// state again; `sleep` waits between samples (one second in the command); `clock` is the clock
/// the rate is measured with (a sample can take longer than the wait).
pub fn watch(
    report: &mut Report,
    take: &mut dyn FnMut() -> Result<Report, String>,
    sleep: &mut dyn FnMut(Duration),
    clock: &mut dyn FnMut() -> std::time::Instant,
    out: &mut dyn std::io::Write,
) -> Result<(), String> {
    let key = |o: &OriginReport, s: &SnapshotReport| format!("{}/{} <- {}", o.vg, o.origin, s.name);
    let mut running: Vec<String> = Vec::new();
    let io = |e: std::io::Error| e.to_string();
    loop {
        let now: Vec<String> = report.merging().map(|(o, s)| key(o, s)).collect();
        for k in running.iter().filter(|k| !now.contains(k)) {
            let state = report
                .origins
                .iter()
                .flat_map(|o| o.snapshots.iter().map(move |s| (o, s)))
                .find(|(o, s)| key(o, s) == *k)
                .map(|(_, s)| match s.state {
                    State::Done => "merged; rewind poll drops it from the metadata",
                    State::MergeFailed => "MERGE FAILED",
                    State::Invalid => "INVALID",
                    State::Flagged | State::Merging | State::Snapshot => "not merging",
                })
                .unwrap_or("finished (the snapshot is gone from the metadata)");
            writeln!(out, "{k}: {state}").map_err(io)?;
        }
        for (o, s) in report.merging() {
            let mut line = format!("{}: merging", key(o, s));
            if let Some(m) = &s.merge {
                line.push_str(&format!(
                    ", {:.2}% merged, {} left",
                    m.percent,
                    human(m.bytes_left)
                ));
                if let Some(rate) = m.rate_bytes_per_s {
                    line.push_str(&format!(", {}/s", human(rate as u64)));
                }
                if let Some(eta) = m.eta_s {
                    line.push_str(&format!(", about {eta:.0} s to go"));
                }
            }
            writeln!(out, "{line}").map_err(io)?;
        }
        out.flush().map_err(io)?;
        if now.is_empty() {
            return Ok(());
        }
        running = now;
        let t0 = clock();
        sleep(Duration::from_secs(1));
        let mut again = take()?;
        add_rates(&mut again, report, clock().saturating_duration_since(t0));
        *report = again;
    }
}

fn human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// The text form.
pub fn print_text(r: &Report) -> String {
    let mut out = String::new();
    for p in &r.problems {
        out.push_str(&format!("warning: {p}\n"));
    }
    if r.origins.is_empty() {
        out.push_str("no snapshots\n");
    }
    for o in &r.origins {
        let active = o
            .device
            .as_deref()
            .map_or("inactive".to_owned(), |d| format!("active as {d}"));
        out.push_str(&format!("{}/{} ({active})\n", o.vg, o.origin));
        for s in &o.snapshots {
            let what = match s.state {
                State::Snapshot => match &s.fill {
                    Some(f) => format!(
                        "snapshot, {:.2}% full ({} of {})",
                        f.percent,
                        human(f.allocated_bytes),
                        human(f.total_bytes)
                    ),
                    None => "snapshot (inactive)".to_owned(),
                },
                State::Flagged => {
                    "flagged: merges back at the next activation of its origin (the next boot for root)"
                        .to_owned()
                }
                State::Merging => match &s.merge {
                    Some(m) => {
                        let mut t = format!("merging, {:.2}% done, {} left", m.percent, human(m.bytes_left));
                        if let Some(rate) = m.rate_bytes_per_s {
                            t.push_str(&format!(", {}/s", human(rate as u64)));
                        }
                        if let Some(eta) = m.eta_s {
                            t.push_str(&format!(", about {eta:.0} s to go"));
                        }
                        t
                    }
                    None => "merging".to_owned(),
                },
                State::Done => "merged; rewind poll drops it from the metadata".to_owned(),
                State::Invalid => "INVALID: cannot be merged; lvremove it".to_owned(),
                State::MergeFailed => {
                    "MERGE FAILED: left as it is; check the kernel log and dmsetup status".to_owned()
                }
            };
            let mode = match &s.result_name {
                Some(n) => format!(" (snapshot mode: the result is named {n})"),
                None => String::new(),
            };
            out.push_str(&format!("  {}: {what}{mode}\n", s.name));
        }
    }
    out
}

#[cfg(test)]
mod tests;
