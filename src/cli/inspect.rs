//! `rewind inspect` printed: tables, or the JSON document (`flow::inspect::Report`). What
//! rewind sees on the disks, read-only. The administrator's first tool
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
//! The structs of `flow::inspect` are the schema; field names and meanings are stable within a version.
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

use super::Error;
use crate::flow::inspect::Report;
use std::fmt::Write as _;

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

/// Prints the report: tables, or JSON with `json`.
pub fn show(r: &Report, json: bool) -> Result<(), Error> {
    if json {
        let text =
            serde_json::to_string_pretty(r).map_err(|e| Error::Message(format!("json: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", render_table(r));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::inspect::{Gathered, report};

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
}
