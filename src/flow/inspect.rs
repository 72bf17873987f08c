//! `rewind inspect`: what rewind sees on the disks, read-only; entry point [`run`]. The
//! administrator's first tool when a rollback did not happen: every volume group with its PVs,
//! LVs and snapshots, whether rewind would act on it and, if not, the problem that stops it.
//!
//! Without device arguments every block device the scan selects is read; with arguments only
//! those paths (block devices or image files). [`Report`] is the JSON document (its schema is
//! described in `cli::inspect`).

use super::Error;
use crate::exit::Verdict;
use crate::lvm::assemble::{Assembly, FoundVg, Problem};
use crate::lvm::model::SegmentKind;
use crate::system::blockdev::BlockDevice;
use crate::system::devsel::Selected;
use crate::system::scan;
use serde::Serialize;
use std::cell::RefCell;
use std::path::{Path, PathBuf};

/// The version of the JSON document; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// The whole report (the JSON document).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: u32,
    pub vgs: Vec<VgReport>,
    pub problems: Vec<ProblemReport>,
    pub orphans: Vec<String>,
    pub not_pvs: Vec<String>,
    pub skipped: Vec<Skipped>,
    pub unreadable: Vec<Unreadable>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VgReport {
    pub name: String,
    pub id: String,
    pub seqno: u64,
    pub usable: bool,
    pub blocking: Option<String>,
    pub extent_size: Option<u64>,
    pub pvs: Vec<PvReport>,
    pub lvs: Vec<LvReport>,
    pub snapshots: Vec<SnapshotReport>,
    pub problems: Vec<ProblemReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PvReport {
    pub key: String,
    pub uuid: String,
    pub device: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LvReport {
    pub name: String,
    pub id: String,
    pub extents: u64,
    pub bytes: u64,
    pub visible: bool,
    pub segment_types: Vec<String>,
    pub out_of_scope: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SnapshotReport {
    pub name: String,
    pub internal: String,
    pub origin: String,
    pub chunk_size: u64,
    pub merging: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProblemReport {
    pub blocking: bool,
    pub message: String,
    #[serde(flatten)]
    pub problem: Problem,
}

#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub device: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Unreadable {
    pub device: String,
    pub error: String,
}

/// What was read: the assembly and what happened to every device.
#[derive(Debug, Default)]
pub struct Gathered {
    pub assembly: Assembly,
    pub not_pvs: Vec<String>,
    pub skipped: Vec<Skipped>,
    pub unreadable: Vec<Unreadable>,
}

/// Reads exactly these paths (block devices or image files), VGs of other hosts refused by
/// this host's LVM configuration (its system ID).
pub fn gather_paths(paths: &[PathBuf]) -> Gathered {
    let config = crate::config::Config::load_or_default(Path::new(crate::config::DEFAULT_PATH));
    let ids = crate::system::devsel::system_ids(Path::new("/"), &config.scan);
    let found = scan::scan_paths_with(paths, &ids);
    Gathered {
        assembly: found.assembly,
        not_pvs: found.not_pvs,
        skipped: Vec::new(),
        unreadable: found
            .unreadable
            .into_iter()
            .map(|(device, error)| Unreadable { device, error })
            .collect(),
    }
}

/// Scans every block device under `root` that LVM itself would use (`lvm::devsel`, with the
/// configuration at `root/etc/rewind/rewind.toml`), as `rewind early` does.
pub fn gather_scan(root: &Path) -> Result<Gathered, Error> {
    let config = crate::config::Config::load_or_default(
        &root.join(crate::config::DEFAULT_PATH.trim_start_matches('/')),
    );
    let selection = Selected::load(root, &config.scan).map_err(Error::selection)?;
    // Devices turned down on purpose are "skipped"; every other device the scan could not
    // read is "unreadable" (and fails the command).
    let refused: RefCell<Vec<String>> = RefCell::new(Vec::new());
    let select = |dev: &BlockDevice| {
        let verdict = scan::not_an_lv(dev).and_then(|()| selection.check(dev));
        if verdict.is_err() {
            refused.borrow_mut().push(dev.name.clone());
        }
        verdict
    };
    let s = scan::scan_selected(&selection, &select);
    let refused = refused.into_inner();
    let mut g = Gathered::default();
    let bad_label_devices: Vec<&str> = s
        .assembly
        .problems
        .iter()
        .filter_map(|p| match p {
            Problem::BadLabel { device, .. } => Some(device.as_str()),
            _ => None,
        })
        .collect();
    for (i, dev) in s.devices.iter().enumerate() {
        let node = dev.node.display().to_string();
        if let Some((_, why)) = s.skipped.iter().find(|(d, _)| *d == node) {
            if dev.is_lvm_lv() || dev.sectors == 0 || refused.contains(&dev.name) {
                g.skipped.push(Skipped {
                    device: node,
                    reason: why.clone(),
                });
            } else {
                g.unreadable.push(Unreadable {
                    device: node,
                    error: why.clone(),
                });
            }
        } else if !s.pv_device.contains(&i) && !bad_label_devices.contains(&node.as_str()) {
            g.not_pvs.push(node);
        }
    }
    g.assembly = s.assembly;
    Ok(g)
}

fn problem_report(p: &Problem) -> ProblemReport {
    ProblemReport {
        blocking: p.is_blocking(),
        message: p.to_string(),
        problem: p.clone(),
    }
}

fn segment_type(kind: &SegmentKind) -> String {
    match kind {
        SegmentKind::Striped { stripes, .. } if stripes.len() == 1 => "linear".into(),
        SegmentKind::Striped { .. } => "striped".into(),
        SegmentKind::Snapshot { .. } => "snapshot".into(),
        SegmentKind::ThinPool { .. } => "thin-pool".into(),
        SegmentKind::Thin { .. } => "thin".into(),
        SegmentKind::Other { segtype } => segtype.clone(),
    }
}

fn vg_report(vg: &FoundVg) -> VgReport {
    let model = vg.model.as_ref();
    let extent_size = model.map(|m| m.extent_size);
    let pvs = match model {
        Some(m) => m
            .pvs
            .iter()
            .map(|pv| PvReport {
                key: pv.key.clone(),
                uuid: pv.id.clone(),
                device: vg
                    .members
                    .iter()
                    .find(|mb| mb.key == pv.key)
                    .and_then(|mb| mb.device.clone()),
            })
            .collect(),
        None => Vec::new(),
    };
    let lvs = model
        .map(|m| {
            m.lvs
                .iter()
                .map(|lv| {
                    let mut types: Vec<String> = Vec::new();
                    for seg in &lv.segments {
                        let t = segment_type(&seg.kind);
                        if !types.contains(&t) {
                            types.push(t);
                        }
                    }
                    let extents = lv.extent_count();
                    LvReport {
                        name: lv.name.clone(),
                        id: lv.id.clone(),
                        extents,
                        bytes: extents.saturating_mul(m.extent_size).saturating_mul(512),
                        visible: lv.visible,
                        segment_types: types,
                        out_of_scope: lv.out_of_scope(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let snapshots = model
        .map(|m| {
            m.snapshots
                .iter()
                .map(|s| SnapshotReport {
                    name: s.cow.clone(),
                    internal: s.internal.clone(),
                    origin: s.origin.clone(),
                    chunk_size: s.chunk_size,
                    merging: s.merging,
                })
                .collect()
        })
        .unwrap_or_default();
    VgReport {
        name: vg.name.clone(),
        id: vg.id.clone(),
        seqno: vg.seqno,
        usable: vg.is_usable(),
        blocking: vg.blocking_problem().map(ToString::to_string),
        extent_size,
        pvs,
        lvs,
        snapshots,
        problems: vg.problems.iter().map(problem_report).collect(),
    }
}

/// Builds the report from what was gathered.
pub fn report(g: &Gathered) -> Report {
    Report {
        schema: SCHEMA_VERSION,
        vgs: g.assembly.vgs.iter().map(vg_report).collect(),
        problems: g.assembly.problems.iter().map(problem_report).collect(),
        orphans: g.assembly.orphans.clone(),
        not_pvs: g.not_pvs.clone(),
        skipped: g.skipped.clone(),
        unreadable: g.unreadable.clone(),
    }
}

impl Report {
    /// Exit status 0: every VG usable and every device and metadata area read. The problems
    /// outside VGs are damaged labels, unreadable or unparseable metadata areas and duplicate
    /// orphan PVs: each means something on a disk could not be read as LVM wrote it, so each
    /// fails the command. Inside a usable VG only notes remain (older metadata copies).
    pub fn is_clean(&self) -> bool {
        self.vgs.iter().all(|v| v.usable) && self.problems.is_empty() && self.unreadable.is_empty()
    }

    /// Ok when clean, else failed (exit status 1).
    pub fn verdict(&self) -> Verdict {
        Verdict::failed_if(!self.is_clean())
    }
}

/// `rewind inspect`: reads `devices` (every block device the scan selects under `root` when
/// none is given) and reports.
pub fn run(devices: &[PathBuf], root: &Path) -> Result<Report, Error> {
    let gathered = if devices.is_empty() {
        gather_scan(root)?
    } else {
        gather_paths(devices)
    };
    Ok(report(&gathered))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_serialize_flat_with_kind_blocking_and_message() {
        let p = problem_report(&Problem::MissingPv {
            vg: "vg0".into(),
            pv: "pv1".into(),
            uuid: "u".into(),
        });
        let j = serde_json::to_value(&p).expect("json");
        assert_eq!(j["kind"], "missing_pv");
        assert_eq!(j["blocking"], true);
        assert_eq!(j["pv"], "pv1");
        assert_eq!(j["message"], "vg vg0: pv1 (uuid u) is missing: no action");
    }

    #[test]
    fn unreadable_device_fails_the_command() {
        let g = gather_paths(&[PathBuf::from("/nonexistent/rewind-test")]);
        let r = report(&g);
        assert!(!r.is_clean());
        assert_eq!(r.unreadable.len(), 1);
        assert!(r.unreadable[0].error.contains("cannot open"));
    }

    #[test]
    fn scan_sorts_devices_into_skipped_unreadable_and_not_pvs() {
        use crate::system::blockdev::tests::fake_device;
        let root = tempfile::tempdir().expect("tempdir");
        fake_device(root.path(), "vda", "254:0", 4096, None);
        fake_device(root.path(), "vdb", "254:16", 4096, None);
        fake_device(root.path(), "vdc", "254:32", 0, None);
        fake_device(
            root.path(),
            "dm-0",
            "253:0",
            1024,
            Some(("vg0-root", "LVM-aaaabbbb")),
        );
        std::fs::create_dir_all(root.path().join("dev")).expect("dev");
        std::fs::write(root.path().join("dev/vda"), vec![0u8; 4096 * 512]).expect("vda");
        // vdb has no node: it cannot be opened.
        let g = gather_scan(root.path()).expect("scan");
        let node = |n: &str| root.path().join("dev").join(n).display().to_string();
        assert_eq!(g.not_pvs, [node("vda")]);
        assert_eq!(g.unreadable.len(), 1);
        assert_eq!(g.unreadable[0].device, node("vdb"));
        let skipped: Vec<&str> = g.skipped.iter().map(|s| s.device.as_str()).collect();
        assert_eq!(skipped, [node("dm-0"), node("vdc")]);
        assert!(!report(&g).is_clean());
    }
}
