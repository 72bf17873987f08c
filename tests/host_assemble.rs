//! Host tier: assembling VGs from many devices, with stock LVM2 making the disks. Every
//! ambiguity of invariant 7 must block the VG; an interrupted commit must not.

use std::fs::File;

mod common;
use common::{Loop, Lvm};
use rewind::lvm::assemble::{Assembly, Problem, assemble};
use rewind::lvm::disk::{PvScan, commit, scan_device};

const MIB: u64 = 1 << 20;

fn scan_all(devs: &[&str]) -> Vec<PvScan> {
    devs.iter()
        .map(|d| {
            let mut f = File::open(d).expect("open");
            scan_device(&mut f, d).expect("scan").expect("a pv")
        })
        .collect()
}

fn assemble_devs(devs: &[&str]) -> Assembly {
    assemble(&scan_all(devs), &[])
}

/// Commits `text` to the metadata areas of exactly these devices.
fn commit_to(devs: &[&str], text: &[u8]) {
    let mut pvs: Vec<(PvScan, File)> = scan_all(devs)
        .into_iter()
        .zip(devs)
        .map(|(s, d)| {
            let f = File::options().read(true).write(true).open(d).expect("rw");
            (s, f)
        })
        .collect();
    commit(&mut pvs, text).expect("commit");
}

fn with_seqno(text: &[u8], from: u64, to: u64, note: &str) -> Vec<u8> {
    String::from_utf8_lossy(text)
        .replacen(&format!("seqno = {from}\n"), &format!("seqno = {to}\n"), 1)
        .replacen("description = \"", &format!("description = \"{note} "), 1)
        .into_bytes()
}

fn two_pv_vg(name: &str) -> (Loop, Loop, Lvm) {
    let (a, b) = (Loop::new(16 * MIB), Loop::new(16 * MIB));
    let lvm = Lvm::for_devices(&[&a.dev, &b.dev]);
    lvm.ok(&["vgcreate", "-qq", "-s", "1m", name, &a.dev, &b.dev]);
    lvm.ok(&[
        "lvcreate", "-qq", "-an", "-Zn", "-Wn", "-L", "20m", "-n", "lv", name,
    ]);
    (a, b, lvm)
}

#[test]
fn loop_two_pv_vg_is_usable_and_matches_lvm() {
    require_host!("loop_two_pv_vg_is_usable_and_matches_lvm");
    let (a, b, lvm) = two_pv_vg("asm1");
    let found = assemble_devs(&[&a.dev, &b.dev]);
    assert_eq!(found.vgs.len(), 1, "{found:?}");
    let vg = &found.vgs[0];
    assert!(vg.is_usable(), "{:?}", vg.problems);
    assert_eq!(vg.name, "asm1");
    assert_eq!(vg.seqno, lvm.seqno("asm1"));
    let uuid = lvm.ok(&["vgs", "--noheadings", "-o", "vg_uuid", "asm1"]);
    assert_eq!(vg.id, uuid.trim());
    let mut devices: Vec<_> = vg.members.iter().filter_map(|m| m.device.clone()).collect();
    devices.sort();
    let mut expected = vec![a.dev.clone(), b.dev.clone()];
    expected.sort();
    assert_eq!(devices, expected);
    assert!(found.problems.is_empty() && found.orphans.is_empty());
}

#[test]
fn loop_cloned_disk_blocks_the_vg() {
    require_host!("loop_cloned_disk_blocks_the_vg");
    let a = Loop::new(16 * MIB);
    let lvm = Lvm::new(std::slice::from_ref(&a));
    lvm.ok(&["vgcreate", "-qq", "-s", "1m", "asm2", &a.dev]);
    let clone = a.clone_disk();
    let found = assemble_devs(&[&a.dev, &clone.dev]);
    let vg = &found.vgs[0];
    assert!(!vg.is_usable());
    match vg.blocking_problem() {
        Some(Problem::DuplicatePv { devices, .. }) => {
            assert_eq!(devices.len(), 2);
            assert!(devices.contains(&clone.dev));
        }
        other => panic!("expected a duplicate pv, got {other:?}"),
    }
    let message = vg
        .blocking_problem()
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(message.contains("cloned disk"), "{message}");
}

#[test]
fn loop_missing_pv_blocks_the_vg() {
    require_host!("loop_missing_pv_blocks_the_vg");
    let (a, _b, _lvm) = two_pv_vg("asm3");
    let found = assemble_devs(&[&a.dev]);
    let vg = &found.vgs[0];
    assert!(!vg.is_usable());
    assert!(
        matches!(vg.blocking_problem(), Some(Problem::MissingPv { vg, .. }) if vg == "asm3"),
        "{:?}",
        vg.problems
    );
}

#[test]
fn loop_two_vgs_with_one_name_both_blocked() {
    require_host!("loop_two_vgs_with_one_name_both_blocked");
    let (a, b) = (Loop::new(16 * MIB), Loop::new(16 * MIB));
    Lvm::new(std::slice::from_ref(&a)).ok(&["vgcreate", "-qq", "twin", &a.dev]);
    Lvm::new(std::slice::from_ref(&b)).ok(&["vgcreate", "-qq", "twin", &b.dev]);
    let found = assemble_devs(&[&a.dev, &b.dev]);
    assert_eq!(found.vgs.len(), 2);
    for vg in &found.vgs {
        assert!(
            matches!(vg.blocking_problem(), Some(Problem::DuplicateVgName { ids, .. }) if ids.len() == 2),
            "{:?}",
            vg.problems
        );
    }
    assert_eq!(found.vgs_named("twin").count(), 2);
}

#[test]
fn loop_interrupted_commit_is_reported_not_blocking_and_repaired() {
    require_host!("loop_interrupted_commit_is_reported_not_blocking_and_repaired");
    let (a, b, lvm) = two_pv_vg("asm4");
    let before = assemble_devs(&[&a.dev, &b.dev]).vgs[0].clone();
    let n = before.seqno;
    // As if the machine died after one PV's areas had the new metadata.
    commit_to(&[&a.dev], &with_seqno(&before.text, n, n + 1, "half"));
    let found = assemble_devs(&[&a.dev, &b.dev]);
    let vg = &found.vgs[0];
    assert_eq!(vg.seqno, n + 1);
    assert!(vg.is_usable(), "{:?}", vg.problems);
    assert!(
        vg.problems.iter().any(|p| matches!(p,
            Problem::OutdatedMetadata { seqno, devices, .. } if *seqno == n && devices.as_slice() == std::slice::from_ref(&b.dev))),
        "{:?}",
        vg.problems
    );
    assert_eq!(lvm.seqno("asm4"), n + 1, "stock lvm also takes the newest");
    // A full commit writes every area again: clean for rewind and for vgck.
    commit_to(
        &[&a.dev, &b.dev],
        &with_seqno(&vg.text, n + 1, n + 2, "full"),
    );
    let found = assemble_devs(&[&a.dev, &b.dev]);
    assert!(
        found.vgs[0].problems.is_empty(),
        "{:?}",
        found.vgs[0].problems
    );
    lvm.clean(&["vgck", "asm4"]);
}

#[test]
fn loop_same_seqno_different_text_blocks() {
    require_host!("loop_same_seqno_different_text_blocks");
    let (a, b, _lvm) = two_pv_vg("asm5");
    let before = assemble_devs(&[&a.dev, &b.dev]).vgs[0].clone();
    let n = before.seqno;
    commit_to(&[&a.dev], &with_seqno(&before.text, n, n + 1, "one"));
    commit_to(&[&b.dev], &with_seqno(&before.text, n, n + 1, "other"));
    let vg = assemble_devs(&[&a.dev, &b.dev]).vgs[0].clone();
    assert!(!vg.is_usable());
    assert!(
        matches!(vg.blocking_problem(), Some(Problem::ConflictingMetadata { seqno, .. }) if *seqno == n + 1),
        "{:?}",
        vg.problems
    );
}

#[test]
fn loop_pv_without_metadata_area_is_found_by_uuid() {
    require_host!("loop_pv_without_metadata_area_is_found_by_uuid");
    let (a, b) = (Loop::new(16 * MIB), Loop::new(16 * MIB));
    let lvm = Lvm::for_devices(&[&a.dev, &b.dev]);
    lvm.ok(&["pvcreate", "-qq", "--pvmetadatacopies", "0", &b.dev]);
    lvm.ok(&["vgcreate", "-qq", "asm6", &a.dev, &b.dev]);
    let found = assemble_devs(&[&a.dev, &b.dev]);
    let vg = &found.vgs[0];
    assert!(vg.is_usable(), "{:?}", vg.problems);
    assert!(vg.members.iter().all(|m| m.device.is_some()));
    // Without the PV that has the metadata, nothing says the other one belongs to a VG.
    let alone = assemble_devs(&[&b.dev]);
    assert!(alone.vgs.is_empty());
    assert_eq!(alone.orphans, vec![b.dev.clone()]);
}
