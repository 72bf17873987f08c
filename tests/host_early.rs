//! Host tier for `rewind plan` and the merge-flag commit of `rewind early`, on loop devices
//! with stock LVM2 (no device-mapper here: the device steps are proven in the VM tier).
//! The metadata rewind writes is read back by stock LVM: `lvs` must show the merge, `vgck`
//! must be clean; a refused rollback must leave the seqno alone.

use std::path::PathBuf;
use std::process::Command;

mod common;
#[path = "support/jsonschema.rs"]
mod jsonschema;
use common::{Loop, Lvm, add_snapshot, write_cow_header};
use rewind::config::Config;
use rewind::flow::early::{self, Inputs, Outcome};
use rewind::lvm::text::{Style, parse, print};
use rewind::plan::cmdline::Cmdline;

const MIB: u64 = 1 << 20;

/// A VG with `root` (8 MiB), snapshots `pre` and `other` of it, and a plain `data`.
fn lab(vg: &str) -> (Loop, Lvm) {
    let disk = Loop::new(64 * MIB);
    let lvm = Lvm::new(std::slice::from_ref(&disk));
    lvm.ok(&["vgcreate", "-qq", "-s", "1m", vg, &disk.dev]);
    for (lv, size) in [
        ("root", "8m"),
        ("pre", "4m"),
        ("other", "4m"),
        ("data", "2m"),
    ] {
        lvm.ok(&[
            "lvcreate", "-qq", "-an", "-Zn", "-Wn", "-L", size, "-n", lv, vg,
        ]);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("backup");
    let path = file.to_str().expect("utf8");
    lvm.ok(&["vgcfgbackup", "-q", "-f", path, vg]);
    let mut tree = parse(&std::fs::read(&file).expect("backup")).expect("parse");
    add_snapshot(&mut tree, "root", "pre", 0, false);
    add_snapshot(&mut tree, "root", "other", 1, false);
    std::fs::write(&file, print(&tree, Style::Backup)).expect("write");
    lvm.ok(&["vgcfgrestore", "-q", "-f", path, vg]);
    (disk, lvm)
}

fn attrs(lvm: &Lvm, vg: &str) -> Vec<(String, String)> {
    lvm.ok(&["lvs", "-a", "--noheadings", "-o", "lv_name,lv_attr", vg])
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.to_owned(), w.next()?.to_owned()))
        })
        .collect()
}

fn inputs(cmdline: &str) -> Inputs {
    Inputs {
        root: PathBuf::from("/"),
        cmdline: Cmdline::parse(cmdline),
        config: Config::default(),
    }
}

#[test]
fn loop_commit_flag_is_what_stock_lvm_reads_as_merging() {
    require_host!("loop_commit_flag_is_what_stock_lvm_reads_as_merging");
    let vg = format!("early{}", std::process::id());
    let (disk, lvm) = lab(&vg);
    write_cow_header(&disk, &lvm, &format!("{vg}/pre"), 1);
    let before = lvm.seqno(&vg);
    let only = |d: &rewind::system::blockdev::BlockDevice| {
        if d.node == std::path::Path::new(&disk.dev) {
            Ok(())
        } else {
            Err("other".into())
        }
    };
    let mut prep = {
        let i = inputs(&format!("rd.rewind={vg}/pre"));
        let scan = early::scan_devices(&i, &only).expect("scan");
        early::prepare(&i, scan)
    };
    assert_eq!(prep.decision.flags.len(), 1, "{:?}", prep.decision.notes);
    let mut out = Outcome::default();
    early::commit_flags(&mut prep, &mut out, true);
    assert_eq!(out.exit_code(), 0, "{:?}", out.notes);
    assert_eq!(lvm.seqno(&vg), before + 1);
    lvm.clean(&["vgck", &vg]);
    let a = attrs(&lvm, &vg);
    let get = |n: &str| {
        a.iter()
            .find(|(l, _)| l == n)
            .map(|(_, x)| x.clone())
            .unwrap_or_default()
    };
    assert!(get("root").starts_with('O'), "merging origin: {a:?}");
    assert!(get("[pre]").starts_with('S'), "merging snapshot: {a:?}");
    assert!(
        get("other").starts_with('s'),
        "other snapshot untouched: {a:?}"
    );
    // Run again: already flagged, nothing more written.
    let mut prep = {
        let i = inputs(&format!("rd.rewind={vg}/pre"));
        let scan = early::scan_devices(&i, &only).expect("scan");
        early::prepare(&i, scan)
    };
    assert!(prep.decision.flags.is_empty());
    early::commit_flags(&mut prep, &mut Outcome::default(), true);
    assert_eq!(lvm.seqno(&vg), before + 1);
}

#[test]
fn loop_invalid_snapshot_is_refused_and_nothing_written() {
    require_host!("loop_invalid_snapshot_is_refused_and_nothing_written");
    let vg = format!("inval{}", std::process::id());
    let (disk, lvm) = lab(&vg);
    write_cow_header(&disk, &lvm, &format!("{vg}/pre"), 0);
    let before = lvm.seqno(&vg);
    let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args([
            "plan",
            "--cmdline",
            &format!("rd.rewind={vg}/pre"),
            &disk.dev,
        ])
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("snapshot is invalid"), "{stdout}");
    assert!(stdout.contains("metadata: no change"), "{stdout}");
    assert_eq!(lvm.seqno(&vg), before);
}

#[test]
fn loop_plan_prints_the_steps_and_changes_nothing() {
    require_host!("loop_plan_prints_the_steps_and_changes_nothing");
    let vg = format!("plan{}", std::process::id());
    let (disk, lvm) = lab(&vg);
    write_cow_header(&disk, &lvm, &format!("{vg}/pre"), 1);
    let before = lvm.seqno(&vg);
    let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args([
            "plan",
            "--json",
            "--cmdline",
            &format!("rd.rewind={vg}/pre"),
            &disk.dev,
        ])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    jsonschema::assert_valid("plan", &plan);
    assert_eq!(
        plan["flags_committed"],
        serde_json::json!([format!("{vg}/pre")])
    );
    let volume = &plan["volumes"][0];
    assert_eq!(volume["lv"], "root");
    let devices: Vec<String> = volume["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .map(|d| {
            format!(
                "{} {}",
                d["name"].as_str().unwrap_or(""),
                d["role"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        devices,
        [
            format!("{vg}-root-real real"),
            format!("{vg}-pre-cow cow"),
            format!("{vg}-other-cow cow"),
            format!("{vg}-pre merging_snapshot"),
            format!("{vg}-other snapshot"),
            format!("{vg}-root origin"),
        ]
    );
    let root_table = volume["devices"][5]["table"][0].as_str().unwrap_or("");
    assert_eq!(
        root_table,
        format!("0 16384 snapshot-merge /dev/mapper/{vg}-root-real /dev/mapper/{vg}-pre-cow P 8")
    );
    // The lv uuids are LVM's.
    let uuid = lvm.ok(&[
        "lvs",
        "--noheadings",
        "-o",
        "lv_uuid",
        &format!("{vg}/root"),
    ]);
    let vg_uuid = lvm.ok(&["vgs", "--noheadings", "-o", "vg_uuid", &vg]);
    let strip = |s: &str| s.trim().replace('-', "");
    assert_eq!(
        volume["devices"][5]["uuid"].as_str().unwrap_or(""),
        format!("LVM-{}{}", strip(&vg_uuid), strip(&uuid))
    );
    assert_eq!(lvm.seqno(&vg), before, "plan writes nothing");
}
