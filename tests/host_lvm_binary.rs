//! Host tier: rewind's LVM2 label/metadata reader and writer against stock LVM2 on loop
//! devices (metadata only; no device-mapper needed). Needs root, `losetup` and `lvm`; each
//! test prints why it is skipped when they are missing.

use std::fs::File;

mod common;
use common::{Loop, Lvm};

use rewind::lvm::disk::{CommitError, PvScan, commit, commit_with_hook, scan_device};

fn scan(dev: &str) -> PvScan {
    let mut f = File::open(dev).expect("open loop device");
    scan_device(&mut f, dev).expect("scan").expect("an lvm pv")
}

fn open_rw(dev: &str) -> File {
    File::options()
        .read(true)
        .write(true)
        .open(dev)
        .expect("open loop device read-write")
}

fn committed(pv: &PvScan) -> Vec<u8> {
    pv.committed_text().expect("committed text").text.clone()
}

fn seqno_of(text: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(text);
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("seqno = "))
        .expect("seqno line");
    line.trim_start()["seqno = ".len()..]
        .trim()
        .parse()
        .expect("number")
}

/// Test-only edit: seqno N -> N+1, and a description of varying length so copies move
/// around the ring.
fn bumped(text: &[u8], pad: usize) -> Vec<u8> {
    let n = seqno_of(text);
    let s = String::from_utf8_lossy(text);
    let s = s.replacen(
        &format!("seqno = {n}\n"),
        &format!("seqno = {}\n", n + 1),
        1,
    );
    let s = s.replacen(
        "description = \"",
        &format!("description = \"rewind test {} ", "x".repeat(pad)),
        1,
    );
    s.into_bytes()
}

/// Commit `text` with rewind's writer to the given PVs (scanned fresh).
fn rewind_commit(devs: &[&str], text: &[u8]) -> bool {
    let mut pvs: Vec<(PvScan, File)> = devs.iter().map(|d| (scan(d), open_rw(d))).collect();
    let report = commit(&mut pvs, text).expect("rewind commit");
    report.mdas.iter().any(|m| m.wrapped)
}

fn dev_path(l: &Loop) -> &str {
    &l.dev
}

#[test]
fn loop_scan_matches_stock_lvm() {
    require_host!("loop_scan_matches_stock_lvm");
    let loops: Vec<Loop> = (0..4).map(|_| Loop::new(64 << 20)).collect();
    let lvm = Lvm::new(&loops);
    let devs: Vec<&str> = loops.iter().map(dev_path).collect();
    // 2, 1, 0 and 1 metadata areas.
    for (dev, copies) in devs.iter().zip(["2", "1", "0", "1"]) {
        lvm.ok(&["pvcreate", "-qq", "--pvmetadatacopies", copies, dev]);
    }
    // A lone PV outside any VG, and VGs of 1, 2 and 4 PVs read over time.
    let orphan = scan(devs[2]);
    assert!(orphan.mdas.is_empty());
    let mut vg_args = vec!["vgcreate", "-qq", "hostscan"];
    vg_args.extend(&devs);
    lvm.ok(&vg_args);
    lvm.ok(&[
        "lvcreate", "-qq", "-an", "-Zn", "-Wn", "-l4", "-n", "data", "hostscan",
    ]);
    let seqno = lvm.seqno("hostscan");
    for dev in &devs {
        let pv = scan(dev);
        let pvs = lvm.ok(&[
            "pvs",
            "--noheadings",
            "--nosuffix",
            "--units",
            "b",
            "--separator",
            ",",
            "-o",
            "pv_uuid,dev_size,pv_mda_count,pv_mda_size,pe_start",
            dev,
        ]);
        let f: Vec<&str> = pvs.trim().split(',').collect();
        assert_eq!(pv.pv_header.uuid_formatted(), f[0], "{dev}");
        assert_eq!(pv.device_size.to_string(), f[1], "{dev}");
        assert_eq!(pv.mdas.len().to_string(), f[2], "{dev}");
        let min = pv.mdas.iter().map(|m| m.area.size).min().unwrap_or(0);
        assert_eq!(min.to_string(), f[3], "{dev}");
        assert_eq!(pv.pv_header.data_areas[0].offset.to_string(), f[4], "{dev}");
        for m in &pv.mdas {
            let c = m.content.as_ref().expect("mda readable");
            let text = &c.committed.as_ref().expect("committed").text;
            assert_eq!(seqno_of(text), seqno, "{dev}");
        }
        if !pv.mdas.is_empty() {
            let ours = String::from_utf8_lossy(&committed(&pv)).into_owned();
            assert_eq!(ours.trim_end(), lvm.pvck_text(dev).trim_end(), "{dev}");
        }
    }
}

/// A PV with `copies` metadata areas, small ones (data at 64 KiB: 60 KiB areas, LVM's minimum is
/// 32 KiB), so that a few dozen commits wrap the ring.
fn pvcreate_small(lvm: &Lvm, dev: &str, copies: &str) {
    lvm.ok(&[
        "pvcreate",
        "-qq",
        "--dataalignment",
        "64k",
        "--metadatasize",
        "32k",
        "--pvmetadatacopies",
        copies,
        dev,
    ]);
}

#[test]
fn loop_commit_interleaved_with_stock_lvm_wraps_the_ring() {
    require_host!("loop_commit_interleaved_with_stock_lvm_wraps_the_ring");
    let loops: Vec<Loop> = (0..2).map(|_| Loop::new(16 << 20)).collect();
    let lvm = Lvm::new(&loops);
    let devs: Vec<&str> = loops.iter().map(dev_path).collect();
    pvcreate_small(&lvm, devs[0], "2");
    pvcreate_small(&lvm, devs[1], "1");
    lvm.ok(&["vgcreate", "-qq", "-s", "64k", "hostring", devs[0], devs[1]]);
    lvm.ok(&[
        "lvcreate", "-qq", "-an", "-Zn", "-Wn", "-l1", "-n", "lv0", "hostring",
    ]);
    let (mut ours_wrapped, mut lvm_wrapped) = (0, 0);
    for round in 0..40 {
        let before = scan(devs[0]);
        let n = seqno_of(&committed(&before));
        assert_eq!(lvm.seqno("hostring"), n);
        let new = bumped(&committed(&before), round * 613 % 8000);
        if rewind_commit(&devs, &new) {
            ours_wrapped += 1;
        }
        lvm.clean(&["vgck", "hostring"]);
        for dev in &devs {
            lvm.clean(&["pvck", dev]);
        }
        assert_eq!(lvm.seqno("hostring"), n + 1, "round {round}");
        assert_eq!(
            lvm.pvck_text(devs[0]).trim_end(),
            String::from_utf8_lossy(&new).trim_end()
        );
        // Stock LVM writes on top of what rewind wrote.
        let name = format!("lv{}", round + 1);
        lvm.ok(&["lvrename", "-qq", "hostring", &format!("lv{round}"), &name]);
        for dev in &devs {
            let pv = scan(dev);
            for m in &pv.mdas {
                let c = m.content.as_ref().expect("mda readable after lvm write");
                let t = c.committed.as_ref().expect("committed");
                assert_eq!(seqno_of(&t.text), n + 2, "round {round} {dev}");
                assert!(String::from_utf8_lossy(&t.text).contains(&format!("{name} {{")));
                lvm_wrapped += usize::from(t.wrapped);
            }
        }
    }
    eprintln!("ring wrapped: {ours_wrapped} rewind commits, {lvm_wrapped} lvm copies read");
    assert!(
        ours_wrapped > 0 && lvm_wrapped > 0,
        "the ring never wrapped"
    );
}

#[test]
fn loop_crash_at_every_step_leaves_lvm_a_consistent_vg() {
    require_host!("loop_crash_at_every_step_leaves_lvm_a_consistent_vg");
    let loops: Vec<Loop> = (0..2).map(|_| Loop::new(16 << 20)).collect();
    let lvm = Lvm::new(&loops);
    let devs: Vec<&str> = loops.iter().map(dev_path).collect();
    pvcreate_small(&lvm, devs[0], "2");
    pvcreate_small(&lvm, devs[1], "1");
    lvm.ok(&["vgcreate", "-qq", "hostcrash", devs[0], devs[1]]);
    let mut stop = 0;
    loop {
        let text = committed(&scan(devs[0]));
        let n = seqno_of(&text);
        let new = bumped(&text, stop * 50);
        let mut pvs: Vec<(PvScan, File)> = devs.iter().map(|d| (scan(d), open_rw(d))).collect();
        let mut count = 0;
        let r = commit_with_hook(&mut pvs, &new, &mut |_| {
            count += 1;
            count <= stop
        });
        drop(pvs);
        // Every area holds the old or the new text, never garbage.
        for dev in &devs {
            for m in scan(dev).mdas {
                let t = m
                    .content
                    .expect("readable")
                    .committed
                    .expect("committed")
                    .text;
                assert!(t == text || t == new, "stop {stop} {dev}");
            }
        }
        match r {
            Ok(_) => {
                lvm.clean(&["vgck", "hostcrash"]);
                assert_eq!(lvm.seqno("hostcrash"), n + 1);
                break;
            }
            Err(CommitError::Stopped { .. }) => {
                // LVM sees one of the two versions; running the commit again finishes it.
                let seen = lvm.seqno("hostcrash");
                assert!(seen == n || seen == n + 1, "stop {stop}: seqno {seen}");
                let fresh = committed(&scan(devs[1]));
                let target = if seqno_of(&fresh) == n + 1 {
                    fresh
                } else {
                    new.clone()
                };
                rewind_commit(&devs, &target);
                lvm.clean(&["vgck", "hostcrash"]);
                assert_eq!(lvm.seqno("hostcrash"), n + 1, "stop {stop}");
            }
            Err(e) => panic!("stop {stop}: {e}"),
        }
        stop += 1;
    }
    assert_eq!(stop, 9, "3 areas x 3 phases");
}

#[test]
fn loop_ignored_mdas_and_bootloader_areas() {
    require_host!("loop_ignored_mdas_and_bootloader_areas");
    let loops: Vec<Loop> = (0..2).map(|_| Loop::new(32 << 20)).collect();
    let lvm = Lvm::new(&loops);
    let devs: Vec<&str> = loops.iter().map(dev_path).collect();
    lvm.ok(&[
        "pvcreate",
        "-qq",
        "--pvmetadatacopies",
        "2",
        "--bootloaderareasize",
        "1m",
        devs[0],
    ]);
    lvm.ok(&["pvcreate", "-qq", devs[1]]);
    lvm.ok(&["vgcreate", "-qq", "hostign", devs[0], devs[1]]);
    lvm.ok(&["pvchange", "-qq", "--metadataignore", "y", devs[1]]);

    // The bootloader area, from the PV header extension, as pvs reports it.
    let a = scan(devs[0]);
    let ba = lvm.ok(&[
        "pvs",
        "--noheadings",
        "--nosuffix",
        "--units",
        "b",
        "--separator",
        ",",
        "-o",
        "pv_ba_start,pv_ba_size",
        devs[0],
    ]);
    let ext = a.pv_header.extension.as_ref().expect("extension");
    assert_eq!(ext.bootloader_areas.len(), 1);
    let got = format!(
        "{},{}",
        ext.bootloader_areas[0].offset, ext.bootloader_areas[0].size
    );
    assert_eq!(got, ba.trim());
    // Both areas of the first PV hold what pvck prints for each.
    for (i, m) in a.mdas.iter().enumerate() {
        let setting = format!("mda_num={}", i + 1);
        let out = lvm.ok(&[
            "pvck",
            "--dump",
            "metadata",
            "--settings",
            &setting,
            devs[0],
        ]);
        let body = out.split_once("  ---\n").expect("header").1;
        let body = body.rsplit_once("\n  ---").expect("trailer").0;
        let text = &m
            .content
            .as_ref()
            .expect("ok")
            .committed
            .as_ref()
            .expect("text")
            .text;
        assert_eq!(
            String::from_utf8_lossy(text).trim_end(),
            body.trim_end(),
            "mda {i}"
        );
    }
    // The second PV's only area is ignored: no text is read from it, none is written to it.
    let b = scan(devs[1]);
    let b_mda = b.mdas[0].content.as_ref().expect("ok");
    assert!(b_mda.header.is_ignored() && b_mda.committed.is_none());
    let n = lvm.seqno("hostign");
    let new = bumped(&committed(&a), 10);
    let mut pvs: Vec<(PvScan, File)> = devs.iter().map(|d| (scan(d), open_rw(d))).collect();
    let report = commit(&mut pvs, &new).expect("commit");
    drop(pvs);
    assert_eq!(report.mdas.len(), 2);
    assert_eq!(
        report.ignored,
        vec![(devs[1].to_string(), b.mdas[0].area.offset)]
    );
    assert_eq!(scan(devs[1]), b, "ignored area untouched");
    lvm.clean(&["vgck", "hostign"]);
    assert_eq!(lvm.seqno("hostign"), n + 1);

    // LVM brings the area back into use; rewind then writes it too.
    lvm.ok(&["pvchange", "-qq", "--metadataignore", "n", devs[1]]);
    let b = scan(devs[1]);
    let t = committed(&b);
    assert_eq!(seqno_of(&t), n + 2);
    rewind_commit(&devs, &bumped(&t, 0));
    lvm.clean(&["vgck", "hostign"]);
    assert_eq!(lvm.seqno("hostign"), n + 3);
    for dev in &devs {
        for m in scan(dev).mdas {
            let text = m.content.expect("ok").committed.expect("text").text;
            assert_eq!(seqno_of(&text), n + 3, "{dev}");
        }
    }
}

#[test]
fn loop_single_pv_vg_reads_back_in_vgcfgbackup() {
    require_host!("loop_single_pv_vg_reads_back_in_vgcfgbackup");
    let loops = vec![Loop::new(16 << 20)];
    let lvm = Lvm::new(&loops);
    let dev = loops[0].dev.as_str();
    lvm.ok(&["pvcreate", "-qq", dev]);
    lvm.ok(&["vgcreate", "-qq", "hostone", dev]);
    lvm.ok(&[
        "lvcreate", "-qq", "-an", "-Zn", "-Wn", "-l2", "-n", "root", "hostone",
    ]);
    let backup = tempfile::tempdir().expect("tempdir");
    for round in 0..5 {
        let text = committed(&scan(dev));
        let n = seqno_of(&text);
        rewind_commit(&[dev], &bumped(&text, round));
        lvm.clean(&["vgck", "hostone"]);
        lvm.clean(&["pvck", dev]);
        let file = backup.path().join(format!("hostone.{round}"));
        let file = file.to_str().expect("utf-8 path");
        lvm.ok(&["vgcfgbackup", "-q", "-f", file, "hostone"]);
        let saved = std::fs::read_to_string(file).expect("backup file");
        assert!(
            saved.contains(&format!("\tseqno = {}\n", n + 1)),
            "round {round}: {saved}"
        );
        assert!(saved.contains("\t\troot {\n"), "round {round}");
        let lvs = lvm.ok(&["lvs", "--noheadings", "-o", "lv_name", "hostone"]);
        assert_eq!(lvs.trim(), "root");
    }
}
