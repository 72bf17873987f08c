//! Unit-test VGs: metadata text for a VG on one PV (`pv0`, `/dev/vda`, 255 extents of 4 MiB),
//! written the way LVM writes it, and the `FoundVg` the scan would make of it. Each LV's id is
//! its six-character prefix followed by `-aaaa-bbbb-cccc-dddd-eeee-ffffff`.

use crate::lvm::assemble::{FoundVg, Member};
use crate::lvm::model::Vg;
use crate::lvm::text;
use std::fmt::Write as _;

fn id(prefix: &str) -> String {
    format!("{prefix}-aaaa-bbbb-cccc-dddd-eeee-ffffff")
}

/// A striped (linear) LV; `segments` are `(start_extent, extent_count, first pv0 extent)`.
pub fn linear(
    name: &str,
    id6: &str,
    visible: bool,
    tags: &[&str],
    segments: &[(u64, u64, u64)],
) -> String {
    let status = if visible {
        r#"["READ", "WRITE", "VISIBLE"]"#
    } else {
        r#"["READ", "WRITE"]"#
    };
    let mut s = format!(
        "{name} {{\nid = \"{}\"\nstatus = {status}\nflags = []\n",
        id(id6)
    );
    if !tags.is_empty() {
        let list: Vec<String> = tags.iter().map(|t| format!("\"{t}\"")).collect();
        let _ = writeln!(s, "tags = [{}]", list.join(", "));
    }
    let _ = writeln!(s, "segment_count = {}", segments.len());
    for (n, (start, count, pe)) in segments.iter().enumerate() {
        let _ = write!(
            s,
            "segment{} {{\nstart_extent = {start}\nextent_count = {count}\ntype = \"striped\"\n\
             stripe_count = 1\nstripes = [\"pv0\", {pe}]\n}}\n",
            n + 1
        );
    }
    s + "}\n"
}

/// The hidden snapshot LV `name` of `origin` (`extent_count` extents) with its COW in `store`;
/// merging (LVM's `merging_store`, not visible) when `merging`.
pub fn snapshot(
    name: &str,
    id6: &str,
    origin: &str,
    extent_count: u64,
    chunk_size: u64,
    store: &str,
    merging: bool,
) -> String {
    let (key, status) = if merging {
        ("merging_store", r#"["READ", "WRITE"]"#)
    } else {
        ("cow_store", r#"["READ", "WRITE", "VISIBLE"]"#)
    };
    format!(
        "{name} {{\nid = \"{}\"\nstatus = {status}\nflags = []\nsegment_count = 1\nsegment1 {{\n\
         start_extent = 0\nextent_count = {extent_count}\ntype = \"snapshot\"\n\
         chunk_size = {chunk_size}\norigin = \"{origin}\"\n{key} = \"{store}\"\n}}\n}}\n",
        id(id6)
    )
}

/// The whole text of VG `name` at `seqno` with the LVs `lvs` (from [`linear`] and [`snapshot`]).
pub fn vg_text(name: &str, seqno: u64, lvs: &[String]) -> String {
    format!(
        "{name} {{\nid = \"{}\"\nseqno = {seqno}\nformat = \"lvm2\"\n\
         status = [\"RESIZEABLE\", \"READ\", \"WRITE\"]\nflags = []\nextent_size = 8192\n\
         max_lv = 0\nmax_pv = 0\nmetadata_copies = 0\nphysical_volumes {{\npv0 {{\n\
         id = \"{}\"\ndevice = \"/dev/vda\"\nstatus = [\"ALLOCATABLE\"]\nflags = []\n\
         dev_size = 2097152\npe_start = 2048\npe_count = 255\n}}\n}}\n\
         logical_volumes {{\n{}}}\n}}\ncontents = \"Text Format Volume Group\"\nversion = 1\n",
        id("Vg0000"),
        id("Pv0000"),
        lvs.concat()
    )
}

/// The VG as the scan finds it: parsed, modelled, its one PV present as scanned device 0.
pub fn found(text: String) -> FoundVg {
    let tree = text::parse(text.as_bytes()).expect("parse");
    let model = Vg::from_tree(&tree).expect("model");
    FoundVg {
        name: model.name.clone(),
        id: model.id.clone(),
        seqno: model.seqno,
        text: text.into_bytes(),
        tree,
        members: vec![Member {
            key: "pv0".into(),
            uuid: "Pv0000aaaabbbbccccddddeeeeffffff".into(),
            scan: Some(0),
            device: Some("/dev/vda".into()),
        }],
        model: Some(model),
        problems: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stock_shaped_text_reads_back_as_written() {
        let t = vg_text(
            "vg-0",
            7,
            &[
                linear("my-root", "Root00", true, &[], &[(0, 10, 0), (10, 5, 40)]),
                linear("pre", "Pre000", false, &["a", "b"], &[(0, 4, 10)]),
                snapshot("snapshot0", "Snap00", "my-root", 15, 8, "pre", true),
            ],
        );
        let vg = found(t);
        let m = vg.model.expect("model");
        assert_eq!((m.name.as_str(), m.seqno), ("vg-0", 7));
        assert_eq!(m.id, "Vg0000-aaaa-bbbb-cccc-dddd-eeee-ffffff");
        let root = m.lvs.iter().find(|l| l.name == "my-root").expect("my-root");
        assert_eq!(root.segments.len(), 2);
        assert!(root.visible);
        let pre = m.lvs.iter().find(|l| l.name == "pre").expect("pre");
        assert_eq!(pre.tags, ["a", "b"]);
        assert!(!pre.visible);
        let s = &m.snapshots[0];
        let got = (s.internal.as_str(), s.origin.as_str(), s.cow.as_str());
        assert_eq!(got, ("snapshot0", "my-root", "pre"));
        assert_eq!((s.chunk_size, s.merging), (8, true));
    }
}
