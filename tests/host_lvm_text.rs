//! Host tier for the metadata text: stock LVM2 in metadata-only mode on loop devices writes
//! VGs; rewind's parser and model must read them the way `lvs`/`vgs` report them, and what
//! rewind's printer and changes write must pass `vgck` and read back the same in LVM.
//!
//! Tests named `loop_*` need root, `losetup` and lvm2; without them they print SKIP and
//! return. Each test uses its own VG name and an LVM `filter` that admits only its own loop
//! devices, so tests can run in parallel and never touch other disks.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use rewind::lvm::change::{Stamp, drop_merged_snapshot, mark_merging};
use rewind::lvm::model::{SegmentKind, Vg, vg_section};
use rewind::lvm::text::{Entry, Node, Section, Style, TextError, Value, parse, print};
use serde_json::Value as Json;

mod common;
use common::{Loop, Lvm, add_snapshot, lvs_section};

/// Skips the test (with the reason) when not root or without lvm2 and losetup.
macro_rules! need_root_lvm {
    () => {
        // libtest names each test's thread after the test.
        require_host!(std::thread::current().name().unwrap_or("host_lvm_text"))
    };
}

/// One VG of stock LVM2 on its own loop devices (tests/common's `Loop` and `Lvm`), with a
/// scratch directory for backup and restore files.
struct Lab {
    _loops: Vec<Loop>,
    lvm: Lvm,
    dir: tempfile::TempDir,
    vg: String,
    n: std::cell::Cell<u32>,
    /// vgcfgrestore needs --force for VGs with thin volumes.
    force: std::cell::Cell<bool>,
}

impl Lab {
    fn new(vg: &str, pvs: usize, mib: u64) -> Lab {
        let loops: Vec<Loop> = (0..pvs).map(|_| Loop::new(mib << 20)).collect();
        let lab = Lab {
            lvm: Lvm::new(&loops),
            _loops: loops,
            dir: tempfile::tempdir().expect("tempdir"),
            vg: format!("{vg}-{}", std::process::id()),
            n: std::cell::Cell::new(0),
            force: std::cell::Cell::new(false),
        };
        let devs: Vec<&str> = lab._loops.iter().map(|l| l.dev.as_str()).collect();
        for d in &devs {
            lab.ok(&["pvcreate", "-q", d]);
        }
        let mut args = vec!["vgcreate", "-q", &lab.vg];
        args.extend(&devs);
        lab.ok(&args);
        lab
    }

    fn run(&self, args: &[&str]) -> Output {
        self.lvm.run(args)
    }

    fn ok(&self, args: &[&str]) -> String {
        self.lvm.ok(args)
    }

    fn lvcreate(&self, extra: &[&str]) {
        let mut a = vec!["lvcreate", "-q", "-an", "-Zn", "-Wn"];
        a.extend_from_slice(extra);
        a.push(&self.vg);
        self.ok(&a);
    }

    fn path(&self, name: &str) -> PathBuf {
        let k = self.n.get();
        self.n.set(k + 1);
        self.dir.path().join(format!("{k:03}-{name}"))
    }

    /// `vgcfgbackup` text.
    fn backup(&self) -> Vec<u8> {
        let p = self.path("backup");
        self.ok(&[
            "vgcfgbackup",
            "-q",
            "-f",
            p.to_str().expect("utf8"),
            &self.vg,
        ]);
        std::fs::read(&p).expect("read backup")
    }

    fn restore_out(&self, text: &str) -> Output {
        let p = self.path("restore");
        std::fs::write(&p, text).expect("write");
        let mut a = vec!["vgcfgrestore", "-f", p.to_str().expect("utf8"), &self.vg];
        if self.force.get() {
            a.push("--force");
        }
        self.run(&a)
    }

    fn restore(&self, text: &str) {
        let out = self.restore_out(text);
        assert!(
            out.status.success(),
            "vgcfgrestore failed: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn report(&self, cmd: &str, key: &str, extra: &[&str], fields: &str) -> Vec<Json> {
        let mut a = vec![cmd, "--reportformat", "json", "--units", "s", "--nosuffix"];
        a.extend_from_slice(extra);
        a.extend_from_slice(&["-o", fields, &self.vg]);
        let out = self.ok(&a);
        let j: Json = serde_json::from_str(&out).expect("json report");
        j["report"][0][key].as_array().cloned().unwrap_or_default()
    }

    fn model(&self) -> (Section, Vg) {
        let t = parse(&self.backup()).expect("lvm's backup parses");
        let vg = Vg::from_tree(&t).expect("lvm's backup is a valid vg");
        (t, vg)
    }
}

fn s(j: &Json, k: &str) -> String {
    j[k].as_str().unwrap_or_default().to_owned()
}

/// The model agrees with `vgs`, `lvs` and `lvs --segments`.
fn check_against_lvm(lab: &Lab, vg: &Vg) {
    let vgs = lab.report(
        "vgs",
        "vg",
        &[],
        "vg_name,vg_uuid,pv_count,lv_count,snap_count,vg_seqno,vg_extent_size",
    );
    assert_eq!(vgs.len(), 1);
    let r = &vgs[0];
    assert_eq!(s(r, "vg_name"), vg.name);
    assert_eq!(s(r, "vg_uuid"), vg.id);
    assert_eq!(s(r, "pv_count"), vg.pvs.len().to_string());
    assert_eq!(s(r, "vg_seqno"), vg.seqno.to_string());
    assert_eq!(s(r, "vg_extent_size"), vg.extent_size.to_string());
    assert_eq!(s(r, "snap_count"), vg.snapshots.len().to_string());
    // LVM counts the LVs a user sees: visible ones and the COWs of snapshots (which are the
    // snapshots to the user) unless merging (`lv_is_visible`), never the snapshotN LVs.
    let internal: Vec<&str> = vg.snapshots.iter().map(|x| x.internal.as_str()).collect();
    let user_lvs = vg
        .lvs
        .iter()
        .filter(|l| !internal.contains(&l.name.as_str()))
        .filter(|l| l.visible || vg.snapshot(&l.name).is_some_and(|x| !x.merging))
        .count();
    assert_eq!(s(r, "lv_count"), user_lvs.to_string(), "lv_count");

    let lvs = lab.report(
        "lvs",
        "lv",
        &["-a"],
        "lv_name,lv_uuid,lv_attr,origin,lv_merging,seg_count,lv_size",
    );
    let mut seen = Vec::new();
    for r in &lvs {
        let name = s(r, "lv_name").trim_matches(['[', ']']).to_owned();
        let lv = vg
            .lv(&name)
            .unwrap_or_else(|| panic!("lvs shows {name}, model lacks it"));
        seen.push(name.clone());
        assert_eq!(s(r, "lv_uuid"), lv.id, "{name} uuid");
        assert_eq!(
            s(r, "seg_count"),
            lv.segments.len().to_string(),
            "{name} seg_count"
        );
        assert_eq!(
            s(r, "lv_size"),
            (lv.extent_count() * vg.extent_size).to_string(),
            "{name} size"
        );
        let attr = s(r, "lv_attr");
        match vg.snapshot(&name) {
            Some(sn) => {
                assert_eq!(s(r, "origin"), sn.origin, "{name} origin");
                let want = if sn.merging { 'S' } else { 's' };
                assert_eq!(attr.chars().next(), Some(want), "{name} attr {attr}");
            }
            None if vg.is_origin(&name) => {
                let merging = vg.merging_snapshot_of(&name).is_some();
                let want = if merging { 'O' } else { 'o' };
                assert_eq!(attr.chars().next(), Some(want), "{name} attr {attr}");
                assert_eq!(s(r, "origin"), "");
            }
            None => assert_eq!(s(r, "origin"), "", "{name}"),
        }
    }
    // Every LV but the internal snapshotN ones is listed by `lvs -a`.
    for lv in &vg.lvs {
        if !internal.contains(&lv.name.as_str()) {
            assert!(seen.contains(&lv.name), "lvs -a lacks {}", lv.name);
        }
    }

    let segs = lab.report(
        "lvs",
        "seg",
        &["-a", "--segments"],
        "lv_name,segtype,seg_start_pe,seg_size_pe,stripes,stripe_size,devices",
    );
    for r in &segs {
        let name = s(r, "lv_name").trim_matches(['[', ']']).to_owned();
        let lv = vg.lv(&name).expect("lv");
        let start: u64 = s(r, "seg_start_pe").parse().expect("num");
        let seg = lv
            .segments
            .iter()
            .find(|x| x.start_extent == start)
            .unwrap_or_else(|| panic!("{name}: no segment at {start}"));
        assert_eq!(s(r, "seg_size_pe"), seg.extent_count.to_string(), "{name}");
        match &seg.kind {
            SegmentKind::Striped {
                stripe_size,
                stripes,
            } => {
                let want_type = if stripes.len() == 1 {
                    "linear"
                } else {
                    "striped"
                };
                assert_eq!(s(r, "segtype"), want_type, "{name}");
                assert_eq!(s(r, "stripes"), stripes.len().to_string());
                assert_eq!(s(r, "stripe_size"), stripe_size.unwrap_or(0).to_string());
                let devices: Vec<String> = stripes
                    .iter()
                    .map(|st| {
                        let dev = vg.pv(&st.pv).and_then(|p| p.device.clone()).expect("dev");
                        format!("{dev}({})", st.start)
                    })
                    .collect();
                assert_eq!(s(r, "devices"), devices.join(","), "{name} devices");
            }
            SegmentKind::Snapshot { .. } => assert_eq!(s(r, "segtype"), "snapshot"),
            SegmentKind::ThinPool { .. } => assert_eq!(s(r, "segtype"), "thin-pool"),
            SegmentKind::Thin { .. } => assert_eq!(s(r, "segtype"), "thin"),
            SegmentKind::Other { segtype } => assert_eq!(&s(r, "segtype"), segtype, "{name}"),
        }
    }
}

/// The printed tree re-parses to itself, and LVM restores it to the same model.
fn check_round_trip(lab: &Lab, t: &Section) {
    for style in [Style::Backup, Style::Disk] {
        let printed = print(t, style);
        assert_eq!(
            &parse(printed.as_bytes()).expect("reparses"),
            t,
            "{style:?}"
        );
    }
    let before = Vg::from_tree(t).expect("vg");
    lab.restore(&print(t, Style::Backup));
    lab.ok(&["vgck", &lab.vg]);
    let (_, mut after) = lab.model();
    // vgcfgrestore commits the restored metadata with seqno + 1.
    assert_eq!(after.seqno, before.seqno + 1);
    after.seqno = before.seqno;
    assert_eq!(
        after, before,
        "vgcfgrestore of rewind's print reads back the same"
    );
}

/// A tree without what every write restamps.
fn strip_stamps(t: &Section) -> Section {
    let mut t = t.clone();
    for k in ["description", "creation_host", "creation_time"] {
        t.remove(k);
    }
    let name = vg_section(&t).expect("vg").0.to_owned();
    t.section_mut(&name).expect("vg").remove("seqno");
    t
}

#[test]
fn loop_one_pv_names_with_dashes() {
    need_root_lvm!();
    let lab = Lab::new("rw-text-one", 1, 64);
    lab.lvcreate(&["-L", "8M", "-n", "my-root"]);
    lab.lvcreate(&["-L", "4M", "-n", "a-b--c"]);
    lab.lvcreate(&[
        "-L", "4M", "-n", "plain", "--addtag", "keep_me", "--addtag", "t2",
    ]);
    lab.ok(&["vgchange", "-q", "--addtag", "vgtag", &lab.vg]);
    let (t, vg) = lab.model();
    assert_eq!(vg.lvs.len(), 3);
    assert_eq!(vg.tags, ["vgtag"]);
    assert_eq!(vg.lv("plain").expect("plain").tags, ["keep_me", "t2"]);
    check_against_lvm(&lab, &vg);
    check_round_trip(&lab, &t);
}

#[test]
fn loop_two_and_four_pvs_striped() {
    need_root_lvm!();
    for (pvs, stripes) in [(2usize, "2"), (4, "4")] {
        let lab = Lab::new(&format!("rw-text-{pvs}pv"), pvs, 64);
        lab.lvcreate(&["-i", stripes, "-I", "64", "-L", "32M", "-n", "striped"]);
        lab.lvcreate(&["-L", "8M", "-n", "lin"]);
        // Two segments: extend the linear LV after another LV took the next extents.
        lab.lvcreate(&["-L", "4M", "-n", "gap"]);
        lab.ok(&["lvextend", "-q", "-L", "+8M", &format!("{}/lin", lab.vg)]);
        let (t, vg) = lab.model();
        let st = vg.lv("striped").expect("striped");
        match &st.segments[0].kind {
            SegmentKind::Striped {
                stripe_size,
                stripes: s,
            } => {
                assert_eq!(s.len(), pvs);
                assert_eq!(*stripe_size, Some(128));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(vg.lv("lin").expect("lin").segments.len(), 2);
        check_against_lvm(&lab, &vg);
        check_round_trip(&lab, &t);
    }
}

/// A VG with an origin, three snapshots of it and a plain LV, restored from text.
fn snapshot_lab(name: &str) -> (Lab, Section) {
    let lab = Lab::new(name, 1, 128);
    lab.lvcreate(&["-L", "16M", "-n", "root"]);
    for cow in ["pre-1", "pre-2", "pre-3"] {
        lab.lvcreate(&["-L", "8M", "-n", cow]);
    }
    lab.lvcreate(&["-L", "4M", "-n", "home"]);
    let (mut t, _) = lab.model();
    for (n, cow) in ["pre-1", "pre-2", "pre-3"].into_iter().enumerate() {
        add_snapshot(&mut t, "root", cow, n, false);
    }
    lab.restore(&print(&t, Style::Backup));
    lab.ok(&["vgck", &lab.vg]);
    let (t, _) = lab.model();
    (lab, t)
}

#[test]
fn loop_snapshots_model_matches_lvs() {
    need_root_lvm!();
    let (lab, t) = snapshot_lab("rw-text-snaps");
    let vg = Vg::from_tree(&t).expect("vg");
    assert_eq!(vg.snapshots.len(), 3);
    assert_eq!(vg.snapshots_of("root").count(), 3);
    assert!(vg.snapshots.iter().all(|s| !s.merging && s.chunk_size == 8));
    check_against_lvm(&lab, &vg);
    check_round_trip(&lab, &t);
}

#[test]
fn loop_mark_merging_accepted_by_lvm() {
    need_root_lvm!();
    let (lab, t) = snapshot_lab("rw-text-merge");
    let stamp = Stamp::new("rewind-test", 1_800_000_000);
    let ours = mark_merging(&t, "pre-2", &stamp).expect("mark");
    lab.restore(&print(&ours, Style::Backup));
    lab.ok(&["vgck", &lab.vg]);
    let lvs = lab.report("lvs", "lv", &["-a"], "lv_name,lv_attr,lv_merging,origin");
    let name = |r: &&Json| s(r, "lv_name").trim_matches(['[', ']']).to_owned();
    // A merging COW is hidden, so `lvs -a` shows it in brackets.
    let pre2 = lvs.iter().find(|r| name(r) == "pre-2").expect("pre-2");
    assert!(s(pre2, "lv_attr").starts_with('S'), "{pre2}");
    let root = lvs.iter().find(|r| name(r) == "root").expect("root");
    assert!(s(root, "lv_attr").starts_with('O'), "{root}");
    let (back, vg) = lab.model();
    let mut want = Vg::from_tree(&ours).expect("vg");
    want.seqno += 1; // vgcfgrestore's own commit
    assert_eq!(vg, want, "reads back the same model");
    assert!(vg.snapshot("pre-2").expect("snap").merging);
    check_against_lvm(&lab, &vg);
    // LVM's own rewrite of our metadata differs only in the stamps: same keys, same values,
    // same order (including the merging COW moved after the visible LVs, as LVM does).
    assert_eq!(strip_stamps(&back), strip_stamps(&ours));

    // Stock LVM for the same change, from the same starting metadata.
    lab.restore(&print(&t, Style::Backup));
    let out = lab.run(&["lvconvert", "--merge", &format!("{}/pre-2", lab.vg)]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        let (stock, _) = lab.model();
        assert_eq!(
            strip_stamps(&stock),
            strip_stamps(&ours),
            "stock lvconvert --merge writes what rewind writes"
        );
        eprintln!("stock lvconvert --merge ran metadata-only and matches");
    } else {
        eprintln!("NOTE stock lvconvert --merge refuses metadata-only: {err}");
    }
}

#[test]
fn loop_drop_merged_snapshot_accepted_by_lvm() {
    need_root_lvm!();
    let (lab, t) = snapshot_lab("rw-text-drop");
    let stamp = Stamp::new("rewind-test", 1_800_000_000);
    let merging = mark_merging(&t, "pre-1", &stamp).expect("mark");
    let ours = drop_merged_snapshot(&merging, "pre-1", &stamp).expect("drop");
    lab.restore(&print(&ours, Style::Backup));
    lab.ok(&["vgck", &lab.vg]);
    let (back, vg) = lab.model();
    assert!(vg.lv("pre-1").is_none() && vg.lv("snapshot0").is_none());
    assert_eq!(vg.snapshots_of("root").count(), 2);
    check_against_lvm(&lab, &vg);
    assert_eq!(strip_stamps(&back), strip_stamps(&ours));

    // Stock LVM: removing the merging snapshot's COW is what lvconvert_merge_finish does
    // (lv_remove_single on the COW). Metadata-only, lvremove is the closest stock command.
    lab.restore(&print(&merging, Style::Backup));
    let out = lab.run(&["lvremove", "-f", &format!("{}/pre-1", lab.vg)]);
    if out.status.success() {
        let (stock, _) = lab.model();
        assert_eq!(
            strip_stamps(&stock),
            strip_stamps(&ours),
            "stock lvremove of the merged snapshot writes what rewind writes"
        );
        eprintln!("stock lvremove of the merging snapshot ran metadata-only and matches");
    } else {
        eprintln!(
            "NOTE stock lvremove of a merging snapshot refuses metadata-only: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn loop_lvm_reads_merging_metadata_written_by_hand() {
    need_root_lvm!();
    // A merging snapshot restored directly (as if written by rewind in the initramfs).
    let lab = Lab::new("rw-text-hand", 1, 64);
    lab.lvcreate(&["-L", "8M", "-n", "root"]);
    lab.lvcreate(&["-L", "8M", "-n", "pre"]);
    let (mut t, _) = lab.model();
    add_snapshot(&mut t, "root", "pre", 0, true);
    lab.restore(&print(&t, Style::Disk));
    lab.ok(&["vgck", &lab.vg]);
    let (_, vg) = lab.model();
    assert!(vg.merging_snapshot_of("root").is_some());
    check_against_lvm(&lab, &vg);
}

#[test]
fn loop_thin_pool_kept_through_writes() {
    need_root_lvm!();
    let lab = Lab::new("rw-text-thin", 1, 128);
    lab.lvcreate(&["-L", "8M", "-n", "root"]);
    lab.force.set(true);
    let made = lab
        .run(&[
            "lvcreate",
            "-q",
            "-an",
            "-Zn",
            "-Wn",
            "--type",
            "thin-pool",
            "-L",
            "16M",
            "-n",
            "pool",
            &lab.vg,
        ])
        .status
        .success();
    if !made {
        eprintln!("NOTE lvcreate --type thin-pool refuses metadata-only; restoring hand-written");
        let (mut t, _) = lab.model();
        let vg = Vg::from_tree(&t).expect("vg");
        let base = vg.lv("root").expect("root").extent_count();
        let text = format!(
            "pool {{\nid = \"Poolaa-aaaa-bbbb-cccc-dddd-eeee-ffff00\"\nstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\n\
             flags = []\nsegment_count = 1\nsegment1 {{\nstart_extent = 0\nextent_count = 4\ntype = \"thin-pool\"\n\
             metadata = \"pool_tmeta\"\npool = \"pool_tdata\"\ntransaction_id = 0\nchunk_size = 128\n\
             discards = \"passdown\"\nzero_new_blocks = 0\n}}\n}}\n\
             pool_tmeta {{\nid = \"Poolaa-aaaa-bbbb-cccc-dddd-eeee-ffff01\"\nstatus = [\"READ\", \"WRITE\"]\n\
             flags = []\nsegment_count = 1\nsegment1 {{\nstart_extent = 0\nextent_count = 1\ntype = \"striped\"\n\
             stripe_count = 1\nstripes = [\"pv0\", {}]\n}}\n}}\n\
             pool_tdata {{\nid = \"Poolaa-aaaa-bbbb-cccc-dddd-eeee-ffff02\"\nstatus = [\"READ\", \"WRITE\"]\n\
             flags = []\nsegment_count = 1\nsegment1 {{\nstart_extent = 0\nextent_count = 4\ntype = \"striped\"\n\
             stripe_count = 1\nstripes = [\"pv0\", {}]\n}}\n}}\n",
            base,
            base + 1
        );
        lvs_section(&mut t)
            .entries
            .extend(parse(text.as_bytes()).expect("thin text").entries);
        lab.restore(&print(&t, Style::Backup));
    }
    let thin_made = lab
        .run(&[
            "lvcreate",
            "-q",
            "-an",
            "-Zn",
            "-Wn",
            "-V",
            "16M",
            "-T",
            &format!("{}/pool", lab.vg),
            "-n",
            "thinvol",
        ])
        .status
        .success();
    if !thin_made {
        eprintln!("NOTE lvcreate -T refuses metadata-only; restoring a hand-written thin volume");
        let (mut t, _) = lab.model();
        let text = "thinvol {\nid = \"Thinaa-aaaa-bbbb-cccc-dddd-eeee-ffff00\"\n\
                    status = [\"READ\", \"WRITE\", \"VISIBLE\"]\nflags = []\nsegment_count = 1\n\
                    segment1 {\nstart_extent = 0\nextent_count = 4\ntype = \"thin\"\n\
                    thin_pool = \"pool\"\ntransaction_id = 0\ndevice_id = 1\n}\n}\n";
        lvs_section(&mut t)
            .entries
            .extend(parse(text.as_bytes()).expect("thin text").entries);
        lab.restore(&print(&t, Style::Backup));
    }
    let (t, vg) = lab.model();
    // Read as thin segments now (rewind lays thin LVs out), and kept as they are by every
    // write below; never plain.
    let pool = vg.lv("pool").expect("pool");
    assert!(!pool.is_plain());
    assert!(matches!(
        pool.segments[0].kind,
        SegmentKind::ThinPool {
            transaction_id: 0,
            chunk_size: 128,
            ..
        }
    ));
    let thin = vg.lv("thinvol").expect("thin");
    assert!(!thin.is_plain());
    assert_eq!(
        thin.thin().map(|t| (t.pool, t.device_id)),
        Some(("pool", 1))
    );
    assert!(vg.lv("root").expect("root").is_plain());
    check_against_lvm(&lab, &vg);
    check_round_trip(&lab, &t);

    // A snapshot of the plain LV in the same VG is merged and dropped with the thin LVs kept
    // exactly as they were.
    lab.lvcreate(&["-L", "8M", "-n", "pre"]);
    let (mut t, _) = lab.model();
    add_snapshot(&mut t, "root", "pre", 0, false);
    lab.restore(&print(&t, Style::Backup));
    let (t, _) = lab.model();
    let stamp = Stamp::new("rewind-test", 1_800_000_000);
    let merging = mark_merging(&t, "pre", &stamp).expect("mark");
    lab.restore(&print(&merging, Style::Disk));
    lab.ok(&["vgck", &lab.vg]);
    let (back, vg) = lab.model();
    assert!(vg.merging_snapshot_of("root").is_some());
    assert_eq!(strip_stamps(&back), strip_stamps(&merging));
    check_against_lvm(&lab, &vg);
    let dropped = drop_merged_snapshot(&back, "pre", &stamp).expect("drop");
    lab.restore(&print(&dropped, Style::Backup));
    lab.ok(&["vgck", &lab.vg]);
    let (back, vg) = lab.model();
    assert_eq!(strip_stamps(&back), strip_stamps(&dropped));
    assert_eq!(
        vg.lv("thinvol").and_then(|l| l.thin()).map(|t| t.device_id),
        Some(1)
    );
    check_against_lvm(&lab, &vg);
}

#[test]
fn loop_thousand_lvs() {
    need_root_lvm!();
    let lab = Lab::new("rw-text-1k", 1, 4200);
    lab.lvcreate(&["-L", "4M", "-n", "lv0"]);
    let (mut t, _) = lab.model();
    let lvs = lvs_section(&mut t);
    let template = lvs.section("lv0").expect("lv0").clone();
    for i in 1..1000u32 {
        let mut lv = template.clone();
        lv.set(
            "id",
            Value::Str(format!(
                "Many{:02}-aaaa-bbbb-cccc-dddd-eeee-ff{i:04}",
                i % 100
            )),
        );
        let seg = lv.section_mut("segment1").expect("seg");
        seg.set(
            "stripes",
            Value::Array(vec![Value::Str("pv0".into()), Value::Int(i64::from(i))]),
        );
        lvs.entries.push(Entry {
            key: format!("lv-{i}"),
            node: Node::Section(lv),
        });
    }
    let start = Instant::now();
    let printed = print(&t, Style::Backup);
    assert_eq!(parse(printed.as_bytes()).expect("reparses"), t);
    eprintln!(
        "print+parse of 1000 LVs ({} bytes): {:?}",
        printed.len(),
        start.elapsed()
    );
    lab.restore(&printed);
    let (back, vg) = lab.model();
    assert_eq!(vg.lvs.len(), 1000);
    check_against_lvm(&lab, &vg);
    assert_eq!(strip_stamps(&back), strip_stamps(&t));
}

#[test]
fn loop_lvm_duplicate_keys_behaviour() {
    need_root_lvm!();
    // LVM accepts a repeated key (last value wins, with a warning); rewind refuses it.
    let lab = Lab::new("rw-text-dup", 1, 64);
    lab.lvcreate(&["-L", "4M", "-n", "x"]);
    let text = String::from_utf8(lab.backup()).expect("utf8");
    let dup = text.replacen(
        "\textent_size = ",
        "\textent_size = 8192\n\textent_size = ",
        1,
    );
    let e = parse(dup.as_bytes()).expect_err("rewind refuses");
    assert!(
        e.to_string().contains("duplicate key \"extent_size\""),
        "{e}"
    );
    let out = lab.restore_out(&dup);
    eprintln!(
        "stock vgcfgrestore with a duplicate key: success={} stderr={}",
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// Bad input against text LVM itself wrote: every truncation, corrupted bytes, deep nesting,
/// a huge text. Typed errors, no panic, bounded time. Needs no root.
#[test]
fn text_bad_input_is_typed_and_bounded() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/text/backup.vg");
    let good = std::fs::read(fixture).expect("fixture");
    let start = Instant::now();
    for end in 0..good.len() {
        match parse(&good[..end]) {
            Ok(t) => {
                let _ = Vg::from_tree(&t);
            }
            Err(TextError::Syntax { line, column, .. }) => assert!(line >= 1 && column >= 1),
            Err(e) => panic!("{e}"),
        }
    }
    let unbalanced = [&good[..], b"}\n"].concat();
    assert!(parse(&unbalanced).is_err());
    let bad_escape = b"a = \"abc\\\"\n";
    assert!(
        parse(bad_escape).is_err(),
        "an escaped closing quote leaves the string open"
    );
    let non_utf8 = [&good[..100], b"\xff\xfe", &good[100..]].concat();
    let _ = parse(&non_utf8);
    let deep = "x {".repeat(100_000);
    assert!(parse(deep.as_bytes()).is_err());
    let deep_arr = format!("x = {}", "[".repeat(100_000));
    assert!(parse(deep_arr.as_bytes()).is_err());
    // About 60 MB of valid text parses (or is refused by size) in bounded time.
    let mut huge = String::with_capacity(61 << 20);
    huge.push_str("v {\n");
    let mut i = 0u64;
    while huge.len() < 60 << 20 {
        huge.push_str(&format!("k{i} = [\"some string\", {i}, 'x']\n"));
        i += 1;
    }
    huge.push_str("}\n");
    let t0 = Instant::now();
    assert!(parse(huge.as_bytes()).is_ok());
    let too_big = vec![b' '; rewind::lvm::text::MAX_TEXT_BYTES + 1];
    assert!(matches!(parse(&too_big), Err(TextError::TooLarge { .. })));
    eprintln!(
        "60 MB parse: {:?}; all bad input: {:?}",
        t0.elapsed(),
        start.elapsed()
    );
    assert!(start.elapsed() < Duration::from_secs(300));
}

#[test]
fn loop_lvm_non_utf8_behaviour() {
    need_root_lvm!();
    // LVM takes bytes: a free-text string such as an LV's creation_host may hold any byte
    // and is written back unchanged (names and tags are restricted to ASCII by LVM itself).
    // rewind refuses such text with a typed error, so it takes no action on that VG.
    let lab = Lab::new("rw-text-u8", 1, 64);
    lab.lvcreate(&["-L", "4M", "-n", "x"]);
    let text = lab.backup();
    let needle = b"\t\t\tcreation_host = \"";
    let at = text
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("lv creation_host")
        + needle.len();
    let bad = [&text[..at], b"\xff", &text[at..]].concat();
    let e = parse(&bad).expect_err("rewind refuses");
    assert!(e.to_string().ends_with("text is not valid utf-8"), "{e}");
    let p = lab.path("bad");
    std::fs::write(&p, &bad).expect("write");
    let out = lab.run(&["vgcfgrestore", "-f", p.to_str().expect("utf8"), &lab.vg]);
    eprintln!(
        "stock vgcfgrestore with a non-utf-8 creation_host: success={}",
        out.status.success()
    );
    if out.status.success() {
        let back = lab.backup();
        assert!(back.contains(&0xff), "lvm keeps the byte");
    }
}
