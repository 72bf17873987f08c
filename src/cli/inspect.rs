//! `rewind inspect`: what rewind sees on the disks, read-only. The administrator's first tool
//! when a rollback did not happen: every volume group with its PVs, LVs and snapshots, whether
//! rewind would act on it and, if not, the problem that stops it.
//!
//! Without device arguments every block device the scan selects is read; with arguments only
//! those paths (block devices or image files). Exit status: 0 when every VG found is usable,
//! 1 when a problem blocks a VG or a device or metadata area cannot be read (see
//! [`Report::is_clean`]), 2 for usage errors.
//!
//! # JSON schema (`--json`), version 1
//!
//! The structs below are the schema; field names and meanings are stable within a version.
//! Sizes are in 512-byte sectors unless the name says bytes.
//!
//! ```text
//! {
//!   "schema": 1,
//!   "vgs": [{
//!     "name": str, "id": str (with dashes), "seqno": int,
//!     "usable": bool,                       // rewind would act on this VG
//!     "blocking": str | null,               // the first blocking problem, as text
//!     "extent_size": int | null,            // sectors; null when the metadata is unusable
//!     "pvs": [{ "key": "pv0", "uuid": str (with dashes), "device": str | null }],
//!                                           // device null: missing, or on several devices
//!     "lvs": [{ "name": str, "id": str, "extents": int, "bytes": int, "visible": bool,
//!               "segment_types": [str],     // "linear", "striped", "snapshot", or LVM's name
//!               "out_of_scope": bool }],    // a segment type rewind does not handle
//!     "snapshots": [{ "name": str (the COW LV), "internal": str ("snapshotN"),
//!                     "origin": str, "chunk_size": int (sectors), "merging": bool }],
//!     "problems": [problem]
//!   }],
//!   "problems": [problem],                  // problems that belong to no VG
//!   "orphans": [str],                       // PVs in no VG found here
//!   "not_pvs": [str],                       // devices read that carry no LVM label
//!   "skipped": [{ "device": str, "reason": str }],     // deliberately not read
//!   "unreadable": [{ "device": str, "error": str }]    // could not be read: exit status 1
//! }
//! problem = { "kind": str, "blocking": bool, "message": str, ...the kind's own fields }
//! ```
//!
//! `kind` is one of `bad_label`, `bad_metadata_area`, `bad_text`, `bad_metadata`,
//! `duplicate_pv`, `duplicate_vg_name`, `conflicting_metadata`, `missing_pv`,
//! `outdated_metadata` (see `lvm::assemble::Problem` for each kind's fields).

use crate::lvm::assemble::{Assembly, FoundVg, Problem, assemble};
use crate::lvm::disk::{ScanError, scan_device};
use crate::lvm::model::SegmentKind;
use crate::system::blockdev::BlockDevice;
use crate::system::scan;
use serde::Serialize;
use std::cell::RefCell;
use std::fmt::Write as _;
use std::fs::File;
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

/// Reads exactly these paths (block devices or image files).
pub fn gather_paths(paths: &[PathBuf]) -> Gathered {
    let mut g = Gathered::default();
    let mut pvs = Vec::new();
    let mut bad_labels = Vec::new();
    for path in paths {
        let name = path.display().to_string();
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                g.unreadable.push(Unreadable {
                    device: name,
                    error: format!("cannot open: {e}"),
                });
                continue;
            }
        };
        match scan_device(&mut file, &name) {
            Ok(Some(pv)) => pvs.push(pv),
            Ok(None) => g.not_pvs.push(name),
            Err(ScanError::Label { source, .. }) => bad_labels.push((name, source.to_string())),
            Err(e) => g.unreadable.push(Unreadable {
                device: name,
                error: e.to_string(),
            }),
        }
    }
    g.assembly = assemble(&pvs, &bad_labels);
    g
}

/// Scans every block device under `root` that LVM itself would use (`lvm::devsel`, with the
/// configuration at `root/etc/rewind/rewind.toml`), as `rewind early` does.
pub fn gather_scan(root: &Path) -> Result<Gathered, String> {
    let config = crate::config::Config::load_or_default(
        &root.join(crate::config::DEFAULT_PATH.trim_start_matches('/')),
    );
    let selection = crate::system::devsel::Selected::load(root, &config.scan)
        .map_err(|e| format!("cannot tell which devices lvm would use: {e}"))?;
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
}

/// Left-aligned columns two spaces apart, trailing blanks trimmed, each line indented.
fn columns(out: &mut String, indent: &str, rows: &[Vec<String>]) {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::from(indent);
        for (c, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < row.len() {
                let pad = widths[c] - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

/// The human-readable form.
pub fn render_table(r: &Report) -> String {
    let mut out = String::new();
    if r.vgs.is_empty() {
        out.push_str("no volume groups found\n");
    }
    for vg in &r.vgs {
        let state = match &vg.blocking {
            None if vg.usable => "usable".to_owned(),
            None => "NOT USABLE".to_owned(),
            Some(why) => format!("NOT USABLE: {why}"),
        };
        let _ = writeln!(out, "VG {}  seqno {}  {state}", vg.name, vg.seqno);
        let _ = writeln!(out, "  id {}", vg.id);
        if let Some(es) = vg.extent_size {
            let _ = writeln!(
                out,
                "  extent size {es} sectors ({} bytes)",
                es.saturating_mul(512)
            );
        }
        if !vg.pvs.is_empty() {
            let mut rows = vec![vec!["PV".into(), "UUID".into(), "DEVICE".into()]];
            for pv in &vg.pvs {
                rows.push(vec![
                    pv.key.clone(),
                    pv.uuid.clone(),
                    pv.device.clone().unwrap_or_else(|| "MISSING".into()),
                ]);
            }
            out.push('\n');
            columns(&mut out, "  ", &rows);
        }
        if !vg.lvs.is_empty() {
            let mut rows = vec![vec![
                "LV".into(),
                "EXTENTS".into(),
                "BYTES".into(),
                "VISIBLE".into(),
                "SEGMENTS".into(),
                "NOTE".into(),
            ]];
            for lv in &vg.lvs {
                rows.push(vec![
                    lv.name.clone(),
                    lv.extents.to_string(),
                    lv.bytes.to_string(),
                    yes_no(lv.visible),
                    lv.segment_types.join(","),
                    if lv.out_of_scope {
                        "out of scope".into()
                    } else {
                        String::new()
                    },
                ]);
            }
            out.push('\n');
            columns(&mut out, "  ", &rows);
        }
        if !vg.snapshots.is_empty() {
            let mut rows = vec![vec![
                "SNAPSHOT".into(),
                "ORIGIN".into(),
                "INTERNAL".into(),
                "CHUNK".into(),
                "MERGING".into(),
            ]];
            for s in &vg.snapshots {
                rows.push(vec![
                    s.name.clone(),
                    s.origin.clone(),
                    s.internal.clone(),
                    format!("{} sectors", s.chunk_size),
                    yes_no(s.merging),
                ]);
            }
            out.push('\n');
            columns(&mut out, "  ", &rows);
        }
        if !vg.problems.is_empty() {
            out.push('\n');
            out.push_str("  problems:\n");
            for p in &vg.problems {
                let tag = if p.blocking { "BLOCKING" } else { "note" };
                let _ = writeln!(out, "    {tag}: {}", p.message);
            }
        }
        out.push('\n');
    }
    let mut section = |title: &str, lines: Vec<String>| {
        if !lines.is_empty() {
            let _ = writeln!(out, "{title}:");
            for l in lines {
                let _ = writeln!(out, "  {l}");
            }
        }
    };
    section(
        "Other problems",
        r.problems
            .iter()
            .map(|p| {
                let tag = if p.blocking { "BLOCKING" } else { "note" };
                format!("{tag}: {}", p.message)
            })
            .collect(),
    );
    section("Orphan PVs (in no volume group found)", r.orphans.clone());
    section(
        "Unreadable devices",
        r.unreadable
            .iter()
            .map(|u| format!("{}: {}", u.device, u.error))
            .collect(),
    );
    section(
        "Skipped devices",
        r.skipped
            .iter()
            .map(|s| format!("{}: {}", s.device, s.reason))
            .collect(),
    );
    section("Devices without an LVM label", r.not_pvs.clone());
    out
}

/// Runs the command; `Ok(true)` when everything found is usable.
pub fn run(devices: &[PathBuf], json: bool, root: &Path) -> Result<bool, String> {
    let gathered = if devices.is_empty() {
        gather_scan(root)?
    } else {
        gather_paths(devices)
    };
    let r = report(&gathered);
    if json {
        let text = serde_json::to_string_pretty(&r).map_err(|e| format!("json: {e}"))?;
        println!("{text}");
    } else {
        print!("{}", render_table(&r));
    }
    Ok(r.is_clean())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_trim() {
        let mut out = String::new();
        columns(
            &mut out,
            "  ",
            &[
                vec!["A".into(), "BB".into(), String::new()],
                vec!["ccc".into(), "d".into(), "e".into()],
            ],
        );
        assert_eq!(out, "  A    BB\n  ccc  d   e\n");
    }

    #[test]
    fn nothing_found_is_clean_and_says_so() {
        let r = report(&Gathered::default());
        assert!(r.is_clean());
        assert_eq!(render_table(&r), "no volume groups found\n");
        let j = serde_json::to_value(&r).expect("json");
        assert_eq!(j["schema"], 1);
        for k in [
            "vgs",
            "problems",
            "orphans",
            "not_pvs",
            "skipped",
            "unreadable",
        ] {
            assert!(j[k].as_array().is_some_and(Vec::is_empty), "{k}");
        }
    }

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
