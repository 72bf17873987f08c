//! Host tier for `rewind poll`'s finisher: the metadata lives on a loop device and is read
//! back by stock LVM2 (`lvs`, `vgck`); the device-mapper side is the recording fake (no
//! device-mapper on the host; the real kernel is the VM tier's). Crash after every
//! device-mapper step and inside the metadata commit, then run again: same end state.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod common;
#[path = "support/jsonschema.rs"]
mod jsonschema;
use common::{Loop, Lvm, add_snapshot};
use rewind::config::Poll as PollConfig;
use rewind::flow::env::Env;
use rewind::flow::notice;
use rewind::flow::poll::{self, ActiveMerge, Finished};
use rewind::lvm::text::{Style, parse, print};
use rewind::plan::dev::DevNum;
use rewind::plan::devices::VgLayout;
use rewind::plan::steps::converge;
use rewind::plan::table::{SnapshotStatus, Table, Target};
use rewind::system::blockdev::BlockDevice;
use rewind::system::dm::FakeDm;
use rewind::system::exec::{execute, live};
use rewind::system::scan::scan;

const MIB: u64 = 1 << 20;

struct Lab {
    disk: Loop,
    lvm: Lvm,
    vg: String,
    locks: tempfile::TempDir,
}

/// A VG with `root` (8 MiB), `pre` merging into it, optionally `other` (a plain snapshot of
/// root), and a plain `data`.
fn lab(tag: &str, other: bool) -> Lab {
    lab_with(tag, other, true)
}

fn lab_with(tag: &str, other: bool, merging: bool) -> Lab {
    lab_in_set(tag, other, merging, None)
}

/// [`lab_with`], `pre` a member of snapshot set `set` when given (its LV tag).
fn lab_in_set(tag: &str, other: bool, merging: bool, set: Option<&str>) -> Lab {
    let vg = format!("{tag}{}", std::process::id());
    let disk = Loop::new(64 * MIB);
    let lvm = Lvm::new(std::slice::from_ref(&disk));
    lvm.ok(&["vgcreate", "-qq", "-s", "1m", &vg, &disk.dev]);
    for (lv, size) in [
        ("root", "8m"),
        ("pre", "4m"),
        ("other", "4m"),
        ("data", "2m"),
    ] {
        lvm.ok(&[
            "lvcreate", "-qq", "-an", "-Zn", "-Wn", "-L", size, "-n", lv, &vg,
        ]);
    }
    if let Some(set) = set {
        let tag = format!("rewind_set_{set}");
        lvm.ok(&["lvchange", "-qq", "--addtag", &tag, &format!("{vg}/pre")]);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("backup");
    let path = file.to_str().expect("utf8");
    lvm.ok(&["vgcfgbackup", "-q", "-f", path, &vg]);
    let mut tree = parse(&std::fs::read(&file).expect("backup")).expect("parse");
    add_snapshot(&mut tree, "root", "pre", 0, merging);
    if other {
        add_snapshot(&mut tree, "root", "other", 1, false);
    }
    std::fs::write(&file, print(&tree, Style::Backup)).expect("write");
    lvm.ok(&["vgcfgrestore", "-q", "-f", path, &vg]);
    Lab {
        disk,
        lvm,
        vg,
        locks: tempfile::tempdir().expect("tempdir"),
    }
}

fn devnum(path: &str) -> DevNum {
    let rdev = std::fs::metadata(path).expect("stat").rdev();
    DevNum {
        major: nix::sys::stat::major(rdev) as u32,
        minor: nix::sys::stat::minor(rdev) as u32,
    }
}

impl Lab {
    fn only(&self) -> impl Fn(&BlockDevice) -> Result<(), String> + '_ {
        move |d: &BlockDevice| {
            if d.node == Path::new(&self.disk.dev) {
                Ok(())
            } else {
                Err("other".into())
            }
        }
    }

    /// The fake with the merge set up as `rewind early` sets it up, root mounted.
    /// `poll::finish` of `m` stopped inside its metadata commit after `stop_at` steps: it
    /// fails saying so, no device was touched, and stock `vgck` finds the VG clean.
    fn finish_stopped_in_commit(&self, dm: &mut FakeDm, m: &ActiveMerge, stop_at: usize) {
        let only = self.only();
        let mut step = 0;
        let mut hook = |_| {
            step += 1;
            step <= stop_at
        };
        let mut env = self.env(&only);
        env.commit_hook = Some(&mut hook);
        let e = poll::finish(&mut env, dm, m).expect_err("stopped");
        assert!(e.to_string().contains("commit stopped"), "{e}");
        assert!(
            dm.mutating_calls().is_empty(),
            "no device touched before the commit"
        );
        self.lvm.clean(&["vgck", &self.vg]);
    }

    /// One `poll::watch` over the lab's PV with the default timing; it must not need to wait.
    fn poll_once(&self, dm: &mut FakeDm) -> poll::Report {
        let only = self.only();
        poll::watch(
            &mut self.env(&only),
            dm,
            &PollConfig::default(),
            &mut |_, _| panic!("this poll should not need to wait"),
        )
    }

    fn merging_fake(&self) -> FakeDm {
        let mut dm = FakeDm::new();
        dm.add_disk(&self.disk.dev, devnum(&self.disk.dev));
        let only = self.only();
        let s = scan(Path::new("/"), &only).expect("scan");
        let vg = s.assembly.vgs_named(&self.vg).next().expect("vg");
        let model = vg.model.as_ref().expect("model");
        let pvs = s.pv_numbers(vg);
        let layout = VgLayout {
            vg: model,
            pv_dev: &pvs,
        };
        let devices = layout.activation("root").expect("layout");
        let steps = converge(&devices, &live(&mut dm).expect("live")).expect("steps");
        execute(&mut dm, &steps).expect("execute");
        let root = self.dm("root");
        assert!(matches!(
            dm.live_table(&root).expect("root").lines[0].target,
            Target::SnapshotMerge(_)
        ));
        dm.set_holders(&root, 1);
        dm.set_snapshot_status(
            &root,
            SnapshotStatus::Usage {
                allocated: 16,
                total: 8192,
                metadata: 16,
            },
        );
        dm.clear_calls();
        dm
    }

    fn dm(&self, lv: &str) -> String {
        format!("{}-{lv}", self.vg)
    }

    fn env<'a>(&'a self, only: &'a (dyn Fn(&BlockDevice) -> Result<(), String> + 'a)) -> Env<'a> {
        Env {
            root: PathBuf::from("/"),
            select: only,
            lock_dir: self.locks.path().to_path_buf(),
            lock_timeout: Duration::from_secs(5),
            commit_hook: None,
        }
    }

    fn lv_names(&self) -> Vec<String> {
        self.lvm
            .ok(&["lvs", "-a", "--noheadings", "-o", "lv_name", &self.vg])
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }
}

fn merge_of(dm: &mut FakeDm) -> ActiveMerge {
    let l = live(dm).expect("live");
    let m = poll::active_merges(&l);
    assert_eq!(m.len(), 1, "one active merge");
    m[0].clone()
}

/// Every device and its live table.
fn state(dm: &mut FakeDm) -> BTreeMap<String, Table> {
    live(dm)
        .expect("live")
        .into_iter()
        .map(|l| (l.name, l.table.unwrap_or_default()))
        .collect()
}

fn assert_plain_end(lab: &Lab, dm: &mut FakeDm) {
    let st = state(dm);
    let names: Vec<_> = st.keys().cloned().collect();
    assert_eq!(names, [lab.dm("root")], "only the origin is left");
    let t = &st[&lab.dm("root")];
    assert!(
        t.lines
            .iter()
            .all(|l| matches!(l.target, Target::Linear { .. })),
        "plain table: {t}"
    );
    assert_eq!(t.length(), 8 * 2048);
    assert_eq!(lab.lv_names(), ["data", "other", "root"]);
    lab.lvm.clean(&["vgck", &lab.vg]);
}

#[test]
fn loop_poll_finishes_a_merge_and_stock_lvm_reads_it_back() {
    require_host!("loop_poll_finishes_a_merge_and_stock_lvm_reads_it_back");
    let lab = lab("pfin", false);
    let mut dm = lab.merging_fake();
    let root = lab.dm("root");
    // Far from done first: the poller waits, then sees it finish.
    dm.set_snapshot_status(
        &root,
        SnapshotStatus::Usage {
            allocated: 4016,
            total: 8192,
            metadata: 16,
        },
    );
    let before = lab.lvm.seqno(&lab.vg);
    let only = lab.only();
    let mut env = lab.env(&only);
    let mut sleeps = Vec::new();
    let cfg = PollConfig::default();
    let report = poll::watch(&mut env, &mut dm, &cfg, &mut |d, dm: &mut FakeDm| {
        sleeps.push(d);
        let left = 4000u64.saturating_sub(1000 * sleeps.len() as u64);
        dm.set_snapshot_status(
            &root,
            SnapshotStatus::Usage {
                allocated: 16 + left,
                total: 8192,
                metadata: 16,
            },
        );
    });
    assert_eq!(report.exit_code(), 0, "{report:?}");
    assert!(
        matches!(&report.finished[..], [Finished::Committed { snapshot, .. }] if snapshot == "pre"),
        "{report:?}"
    );
    assert_eq!(sleeps.len(), 4, "{sleeps:?}");
    assert!(
        sleeps
            .iter()
            .all(|d| *d <= Duration::from_millis(cfg.interval_max_ms))
    );
    assert_eq!(lab.lvm.seqno(&lab.vg), before + 1);
    assert_plain_end(&lab, &mut dm);
    // A second run finds nothing to do and changes nothing.
    dm.clear_calls();
    let again = poll::watch(&mut env, &mut dm, &cfg, &mut |_, _| panic!("no wait"));
    assert_eq!(again, poll::Report::default());
    assert!(dm.mutating_calls().is_empty());
    assert_eq!(lab.lvm.seqno(&lab.vg), before + 1);
}

#[test]
fn loop_poll_killed_after_every_step_converges() {
    require_host!("loop_poll_killed_after_every_step_converges");
    // How many mutating steps a clean finish takes.
    let total = {
        let lab = lab("pcnt", false);
        let mut dm = lab.merging_fake();
        let m = merge_of(&mut dm);
        let only = lab.only();
        poll::finish(&mut lab.env(&only), &mut dm, &m).expect("finish");
        dm.mutating_calls().len()
    };
    assert!(total >= 6, "reload (3) and three removals: {total}");
    for n in 0..total {
        let lab = lab("pcr", false);
        let mut dm = lab.merging_fake();
        let m = merge_of(&mut dm);
        let only = lab.only();
        dm.crash_after(n);
        let first = poll::finish(&mut lab.env(&only), &mut dm, &m);
        assert!(first.is_err(), "crash after {n}");
        dm.restart();
        // The restarted poller plans from what it sees now.
        let report = lab.poll_once(&mut dm);
        assert_eq!(report.exit_code(), 0, "after {n}: {report:?}");
        assert_plain_end(&lab, &mut dm);
    }
}

#[test]
fn loop_poll_interrupted_commit_converges() {
    require_host!("loop_poll_interrupted_commit_converges");
    for stop_at in 0..3 {
        let lab = lab("pcm", false);
        let mut dm = lab.merging_fake();
        let m = merge_of(&mut dm);
        lab.finish_stopped_in_commit(&mut dm, &m, stop_at);
        let report = lab.poll_once(&mut dm);
        assert_eq!(report.exit_code(), 0, "stop at {stop_at}: {report:?}");
        assert_plain_end(&lab, &mut dm);
    }
}

#[test]
fn loop_poll_lvm_finished_first_only_tidies() {
    require_host!("loop_poll_lvm_finished_first_only_tidies");
    let lab = lab("plvm", false);
    let mut dm = lab.merging_fake();
    // Stock LVM drops the snapshot itself (as its lvpoll would): metadata without it.
    lab.lvm
        .ok(&["lvremove", "-f", "-qq", &format!("{}/pre", lab.vg)]);
    let seqno = lab.lvm.seqno(&lab.vg);
    let report = lab.poll_once(&mut dm);
    assert!(
        matches!(&report.finished[..], [Finished::AlreadyDropped { origin, .. }] if origin == "root"),
        "{report:?}"
    );
    assert_eq!(lab.lvm.seqno(&lab.vg), seqno, "rewind wrote nothing");
    assert_plain_end(&lab, &mut dm);
}

#[test]
fn loop_poll_other_snapshot_stays() {
    require_host!("loop_poll_other_snapshot_stays");
    let lab = lab("poth", true);
    let mut dm = lab.merging_fake();
    let report = lab.poll_once(&mut dm);
    assert_eq!(report.exit_code(), 0, "{report:?}");
    let st = state(&mut dm);
    let names: Vec<_> = st.keys().cloned().collect();
    let mut want = vec![
        lab.dm("other"),
        lab.dm("other-cow"),
        lab.dm("root"),
        lab.dm("root-real"),
    ];
    want.sort();
    assert_eq!(names, want);
    assert!(matches!(
        st[&lab.dm("root")].lines[0].target,
        Target::SnapshotOrigin { .. }
    ));
    assert!(matches!(
        st[&lab.dm("other")].lines[0].target,
        Target::Snapshot(_)
    ));
    let attrs = lab
        .lvm
        .ok(&["lvs", "--noheadings", "-o", "lv_name,lv_attr", &lab.vg]);
    assert!(
        attrs.contains("other") && !attrs.contains(" pre "),
        "{attrs}"
    );
    lab.lvm.clean(&["vgck", &lab.vg]);
}

#[test]
fn loop_poll_failed_merge_is_left_alone() {
    require_host!("loop_poll_failed_merge_is_left_alone");
    for bad in [SnapshotStatus::Invalid, SnapshotStatus::MergeFailed] {
        let lab = lab("pbad", false);
        let mut dm = lab.merging_fake();
        dm.set_snapshot_status(&lab.dm("root"), bad);
        let before = state(&mut dm);
        let seqno = lab.lvm.seqno(&lab.vg);
        let report = lab.poll_once(&mut dm);
        assert_eq!(report.exit_code(), 1);
        assert_eq!(report.failed, [lab.dm("root")]);
        assert!(dm.mutating_calls().is_empty());
        assert_eq!(state(&mut dm), before);
        assert_eq!(lab.lvm.seqno(&lab.vg), seqno);
    }
}

#[test]
fn loop_poll_waits_for_lvms_lock() {
    require_host!("loop_poll_waits_for_lvms_lock");
    let lab = lab("plck", false);
    let mut dm = lab.merging_fake();
    let m = merge_of(&mut dm);
    let held =
        rewind::system::lock::VgLock::exclusive(lab.locks.path(), &lab.vg, Duration::from_secs(1))
            .expect("held");
    let only = lab.only();
    let mut env = lab.env(&only);
    env.lock_timeout = Duration::from_millis(200);
    let e = poll::finish(&mut env, &mut dm, &m).expect_err("locked");
    assert!(
        e.to_string().contains(&format!("vg {}: lvm lock", lab.vg)),
        "{e}"
    );
    assert!(dm.mutating_calls().is_empty());
    drop(held);
    poll::finish(&mut env, &mut dm, &m).expect("after release");
    assert_plain_end(&lab, &mut dm);
}

impl Lab {
    /// Writes a COW header into `pre`'s first sector.
    fn cow_header(&self, valid: u32) {
        common::write_cow_header(&self.disk, &self.lvm, &format!("{}/pre", self.vg), valid);
    }

    fn attr(&self, lv: &str) -> String {
        self.lvm
            .ok(&[
                "lvs",
                "-a",
                "--noheadings",
                "-o",
                "lv_name,lv_attr",
                &self.vg,
            ])
            .lines()
            .find_map(|l| {
                let mut w = l.split_whitespace();
                (w.next()? == lv).then(|| w.next().map(str::to_owned))?
            })
            .unwrap_or_default()
    }

    /// The fake with root active as plain snapshots (not merging).
    fn snapshot_fake(&self) -> FakeDm {
        let mut dm = FakeDm::new();
        dm.add_disk(&self.disk.dev, devnum(&self.disk.dev));
        let only = self.only();
        let s = scan(Path::new("/"), &only).expect("scan");
        let vg = s.assembly.vgs_named(&self.vg).next().expect("vg");
        let pvs = s.pv_numbers(vg);
        let layout = VgLayout {
            vg: vg.model.as_ref().expect("model"),
            pv_dev: &pvs,
        };
        let devices = layout.activation("root").expect("layout");
        let steps = converge(&devices, &live(&mut dm).expect("live")).expect("steps");
        execute(&mut dm, &steps).expect("execute");
        dm.clear_calls();
        dm
    }
}

#[test]
fn loop_rollback_flags_and_starts_when_origin_unused() {
    require_host!("loop_rollback_flags_and_starts_when_origin_unused");
    use rewind::flow::cancel::cancel;
    use rewind::flow::rollback::{Rollback, rollback};
    // Origin inactive: flagged, starts at activation.
    let lab = lab_with("rbi", false, false);
    lab.cow_header(1);
    let only = lab.only();
    let seqno = lab.lvm.seqno(&lab.vg);
    let mut dm = FakeDm::new();
    let r = rollback(&lab.env(&only), Some(&mut dm), &lab.vg, "pre").expect("rollback");
    assert_eq!(
        r,
        Rollback::AtActivation {
            origin: "root".into()
        }
    );
    assert_eq!(lab.lvm.seqno(&lab.vg), seqno + 1);
    assert!(
        lab.attr("[pre]").starts_with('S'),
        "merging: {}",
        lab.attr("[pre]")
    );
    assert!(lab.attr("root").starts_with('O'));
    lab.lvm.clean(&["vgck", &lab.vg]);
    // Twice: already flagged, nothing more written.
    rollback(&lab.env(&only), Some(&mut dm), &lab.vg, "pre").expect("again");
    assert_eq!(lab.lvm.seqno(&lab.vg), seqno + 1);

    // Origin active and unused: the merge starts now.
    let lab = lab_with("rbs", true, false);
    lab.cow_header(1);
    let only = lab.only();
    let mut dm = lab.snapshot_fake();
    let r = rollback(&lab.env(&only), Some(&mut dm), &lab.vg, "pre").expect("rollback");
    assert_eq!(
        r,
        Rollback::Started {
            origin: "root".into()
        }
    );
    let st = state(&mut dm);
    assert!(matches!(
        st[&lab.dm("root")].lines[0].target,
        Target::SnapshotMerge(_)
    ));
    assert_eq!(st[&lab.dm("pre")].lines[0].target, Target::Error);
    assert!(matches!(
        st[&lab.dm("other")].lines[0].target,
        Target::Snapshot(_)
    ));
    // Cancel after the start is refused and writes nothing.
    let seqno = lab.lvm.seqno(&lab.vg);
    let e = cancel(&lab.env(&only), Some(&mut dm), &lab.vg, "pre")
        .expect_err("started")
        .to_string();
    assert!(
        e.contains("has started") && e.contains("cannot be withdrawn"),
        "{e}"
    );
    assert_eq!(lab.lvm.seqno(&lab.vg), seqno);

    // Origin in use (mounted): flagged for the next boot, devices untouched; cancel works.
    let lab = lab_with("rbu", false, false);
    lab.cow_header(1);
    let only = lab.only();
    let mut dm = lab.snapshot_fake();
    dm.set_holders(&lab.dm("root"), 1);
    let before = state(&mut dm);
    let r = rollback(&lab.env(&only), Some(&mut dm), &lab.vg, "pre").expect("rollback");
    assert!(matches!(r, Rollback::AtNextBoot { .. }), "{r:?}");
    assert!(dm.mutating_calls().is_empty());
    assert_eq!(state(&mut dm), before);
    let seqno = lab.lvm.seqno(&lab.vg);
    cancel(&lab.env(&only), Some(&mut dm), &lab.vg, "pre").expect("cancel");
    assert_eq!(lab.lvm.seqno(&lab.vg), seqno + 1);
    assert!(
        lab.attr("pre").starts_with('s'),
        "plain snapshot again: {}",
        lab.attr("pre")
    );
    assert!(lab.attr("root").starts_with('o'));
    lab.lvm.clean(&["vgck", &lab.vg]);
    let e = cancel(&lab.env(&only), Some(&mut dm), &lab.vg, "pre")
        .expect_err("not flagged")
        .to_string();
    assert!(e.contains("not flagged"), "{e}");
}

#[test]
fn loop_rollback_refusals_change_nothing() {
    require_host!("loop_rollback_refusals_change_nothing");
    use rewind::flow::cancel::cancel;
    use rewind::flow::rollback::rollback;
    let lab = lab_with("rbr", false, false);
    lab.cow_header(0);
    let only = lab.only();
    let seqno = lab.lvm.seqno(&lab.vg);
    let mut dm = FakeDm::new();
    let e = rollback(&lab.env(&only), Some(&mut dm), &lab.vg, "pre")
        .expect_err("invalid")
        .to_string();
    assert!(e.contains("invalid"), "{e}");
    for (name, needle) in [
        ("root", "is an origin"),
        ("data", "is not a snapshot"),
        ("nope", "no such logical volume"),
    ] {
        let e = rollback(&lab.env(&only), Some(&mut dm), &lab.vg, name)
            .expect_err(name)
            .to_string();
        assert!(e.contains(needle), "{name}: {e}");
    }
    let e = rollback(&lab.env(&only), Some(&mut dm), "novg", "pre")
        .expect_err("no vg")
        .to_string();
    assert_eq!(e, "no volume group novg found");
    // Cancel of a flag on an inactive origin: cannot tell whether it began; refused.
    let lab2 = lab_with("rbc", false, true);
    let only2 = lab2.only();
    let e = cancel(&lab2.env(&only2), Some(&mut dm), &lab2.vg, "pre")
        .expect_err("inactive")
        .to_string();
    assert!(e.contains("not active"), "{e}");
    assert_eq!(lab.lvm.seqno(&lab.vg), seqno);
    assert!(dm.mutating_calls().is_empty());
}

#[test]
fn loop_cli_rollback_then_status_shows_flagged() {
    require_host!("loop_cli_rollback_then_status_shows_flagged");
    let lab = lab_with("rbcli", false, false);
    lab.cow_header(1);
    let locks = lab.locks.path().to_str().expect("utf8").to_owned();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_rewind"))
            .args(args)
            .args(["--lock-dir", &locks])
            .output()
            .expect("run")
    };
    let target = format!("{}/pre", lab.vg);
    let o = run(&["rollback", &target]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("is flagged: the merge starts when"), "{out}");
    assert!(lab.attr("[pre]").starts_with('S'));
    let o = run(&["status", "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    jsonschema::assert_valid("status", &v);
    let origin = v["origins"]
        .as_array()
        .expect("origins")
        .iter()
        .find(|o| o["vg"] == lab.vg.as_str())
        .expect("our vg")
        .clone();
    assert_eq!(origin["origin"], "root");
    assert_eq!(origin["snapshots"][0]["name"], "pre");
    assert_eq!(origin["snapshots"][0]["state"], "flagged");
    // --watch without a terminal and without a running merge: prints the state and ends.
    let o = run(&["status", "--watch"]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&format!("{}/root (inactive)", lab.vg)),
        "{out}"
    );
    assert!(out.contains("  pre: flagged"), "{out}");
    // No device-mapper here: cancel cannot tell whether the merge began, and refuses.
    let o = run(&["cancel", &target]);
    assert_eq!(o.status.code(), Some(1));
    assert!(lab.attr("[pre]").starts_with('S'));
}

// --- `rewind rollback --mode snapshot` -------------------------------------------------------

impl Lab {
    fn uuid(&self, lv: &str) -> String {
        self.lvm
            .ok(&[
                "lvs",
                "--noheadings",
                "-o",
                "lv_uuid",
                &format!("{}/{lv}", self.vg),
            ])
            .trim()
            .to_owned()
    }

    /// Stock `lvs -a`: name, uuid, tags and the first four attribute characters, sorted.
    fn stock_lvs(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .lvm
            .ok(&[
                "lvs",
                "-a",
                "--noheadings",
                "--separator",
                ",",
                "-o",
                "lv_name,lv_uuid,lv_tags,lv_attr",
                &self.vg,
            ])
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.trim().split(',').collect();
                format!("{},{},{},{}", f[0], f[1], f[2], &f[3][..4])
            })
            .collect();
        v.sort();
        v
    }

    /// `root` active with its only snapshot `pre` mounted; `pre`'s merge flagged in snapshot
    /// mode and started; the kernel reports it done.
    fn snapshot_mode_merging(&self) -> FakeDm {
        self.cow_header(1);
        let mut dm = self.snapshot_fake();
        dm.set_holders(&self.dm("pre"), 1);
        let only = self.only();
        let r = rewind::flow::rollback::rollback_snapshot(
            &self.env(&only),
            Some(&mut dm),
            &self.vg,
            "pre",
        )
        .expect("rollback --mode snapshot");
        assert_eq!(
            r,
            rewind::flow::rollback::Rollback::Started {
                origin: "root".into()
            }
        );
        dm.set_snapshot_status(
            &self.dm("pre"),
            SnapshotStatus::Usage {
                allocated: 16,
                total: 8192,
                metadata: 16,
            },
        );
        dm.clear_calls();
        dm
    }
}

/// The end of a snapshot-mode merge: stock LVM shows `pre` (with the uuid it had as a
/// snapshot) as a plain LV, no `root`; only `VG-pre` is live, as `root`'s plain segments.
fn assert_snapshot_mode_end(lab: &Lab, dm: &mut FakeDm, pre_uuid: &str) {
    assert_eq!(
        lab.stock_lvs(),
        [
            format!("data,{},,-wi-", lab.uuid("data")),
            format!("other,{},,-wi-", lab.uuid("other")),
            format!("pre,{pre_uuid},,-wi-"),
        ]
    );
    lab.lvm.clean(&["vgck", &lab.vg]);
    let st = state(dm);
    let names: Vec<_> = st.keys().cloned().collect();
    assert_eq!(names, [lab.dm("pre")], "only the result is left");
    let t = &st[&lab.dm("pre")];
    assert!(
        t.lines
            .iter()
            .all(|l| matches!(l.target, Target::Linear { .. })),
        "plain table: {t}"
    );
    assert_eq!(t.length(), 8 * 2048, "root's size");
    // root's first extent: the result is root's segments (extent 0 of the PV).
    assert!(
        matches!(&t.lines[0].target, Target::Linear { offset, .. } if *offset == 2048),
        "{t}"
    );
}

#[test]
fn loop_rollback_snapshot_mode_merges_and_finishes_under_the_snapshots_name() {
    require_host!("loop_rollback_snapshot_mode_merges_and_finishes_under_the_snapshots_name");
    let lab = lab_with("smode", false, false);
    let pre_uuid = lab.uuid("pre");
    let seqno = lab.lvm.seqno(&lab.vg);
    let mut dm = lab.snapshot_mode_merging();
    // Stock LVM reads the flag and the tag: pre merging, root its merging origin.
    assert_eq!(lab.lvm.seqno(&lab.vg), seqno + 1);
    lab.lvm.clean(&["vgck", &lab.vg]);
    let lvs = lab.stock_lvs();
    assert!(
        lvs.iter()
            .any(|l| l.starts_with(&format!("[pre],{pre_uuid},rewind_merge_as_snapshot,S"))),
        "{lvs:?}"
    );
    assert!(
        lvs.iter()
            .any(|l| l.starts_with("root,") && l.ends_with(",Owi-")),
        "{lvs:?}"
    );
    let st = state(&mut dm);
    assert_eq!(st[&lab.dm("root")].lines[0].target, Target::Error);
    assert!(matches!(
        st[&lab.dm("pre")].lines[0].target,
        Target::SnapshotMerge(_)
    ));
    // Status names the mode.
    let only = lab.only();
    let s = scan(Path::new("/"), &only).expect("scan");
    let report = rewind::flow::status::collect(
        &s.assembly.vgs,
        &live(&mut dm).expect("live"),
        Some(&mut dm),
    );
    let text = rewind::cli::status::print_text(&report);
    assert!(
        text.contains("pre: merged; rewind poll drops it from the metadata (snapshot mode: the result is named pre)"),
        "{text}"
    );
    // The poller finishes it.
    let report = lab.poll_once(&mut dm);
    assert_eq!(report.exit_code(), 0, "{report:?}");
    assert!(
        matches!(&report.finished[..], [Finished::Committed { origin, snapshot, .. }] if origin == "root" && snapshot == "pre"),
        "{report:?}"
    );
    assert_eq!(lab.lvm.seqno(&lab.vg), seqno + 2);
    assert_snapshot_mode_end(&lab, &mut dm, &pre_uuid);
    // Nothing more to do.
    dm.clear_calls();
    let again = lab.poll_once(&mut dm);
    assert_eq!(again, poll::Report::default());
    assert!(dm.mutating_calls().is_empty());
}

#[test]
fn loop_snapshot_mode_finish_killed_anywhere_converges() {
    require_host!("loop_snapshot_mode_finish_killed_anywhere_converges");
    let total = {
        let lab = lab_with("scnt", false, false);
        let mut dm = lab.snapshot_mode_merging();
        let m = merge_of(&mut dm);
        assert_eq!(m.name, lab.dm("pre"), "the snapshot's device merges");
        let only = lab.only();
        poll::finish(&mut lab.env(&only), &mut dm, &m).expect("finish");
        dm.mutating_calls().len()
    };
    assert!(total >= 6, "reload (3) and three removals: {total}");
    for n in 0..total {
        let lab = lab_with("scr", false, false);
        let pre_uuid = lab.uuid("pre");
        let mut dm = lab.snapshot_mode_merging();
        let m = merge_of(&mut dm);
        let only = lab.only();
        dm.crash_after(n);
        assert!(
            poll::finish(&mut lab.env(&only), &mut dm, &m).is_err(),
            "crash after {n}"
        );
        dm.restart();
        let report = lab.poll_once(&mut dm);
        assert_eq!(report.exit_code(), 0, "after {n}: {report:?}");
        assert_snapshot_mode_end(&lab, &mut dm, &pre_uuid);
    }
    // Stopped inside the metadata commit: no device touched, stock LVM clean, a rerun ends
    // the same way.
    for stop_at in 0..3 {
        let lab = lab_with("scm", false, false);
        let pre_uuid = lab.uuid("pre");
        let mut dm = lab.snapshot_mode_merging();
        let m = merge_of(&mut dm);
        lab.finish_stopped_in_commit(&mut dm, &m, stop_at);
        let report = lab.poll_once(&mut dm);
        assert_eq!(report.exit_code(), 0, "stop at {stop_at}: {report:?}");
        assert_snapshot_mode_end(&lab, &mut dm, &pre_uuid);
    }
}

#[test]
fn loop_snapshot_mode_refusals_change_nothing() {
    require_host!("loop_snapshot_mode_refusals_change_nothing");
    use rewind::flow::rollback::{rollback, rollback_snapshot};
    // The origin in use.
    let lab = lab_with("srf", false, false);
    lab.cow_header(1);
    let only = lab.only();
    let seqno = lab.lvm.seqno(&lab.vg);
    let mut dm = lab.snapshot_fake();
    dm.set_holders(&lab.dm("root"), 1);
    let e = rollback_snapshot(&lab.env(&only), Some(&mut dm), &lab.vg, "pre")
        .expect_err("in use")
        .to_string();
    assert!(
        e.contains("is in use") && e.contains("nothing changed"),
        "{e}"
    );
    // No device-mapper.
    let e = rollback_snapshot(&lab.env(&only), None, &lab.vg, "pre")
        .expect_err("no dm")
        .to_string();
    assert!(e.contains("needs device-mapper"), "{e}");
    assert_eq!(lab.lvm.seqno(&lab.vg), seqno);
    assert!(dm.mutating_calls().is_empty());
    // Another snapshot of the origin.
    let lab = lab_with("sro", true, false);
    lab.cow_header(1);
    let only = lab.only();
    let seqno = lab.lvm.seqno(&lab.vg);
    let mut dm = lab.snapshot_fake();
    let e = rollback_snapshot(&lab.env(&only), Some(&mut dm), &lab.vg, "pre")
        .expect_err("other")
        .to_string();
    assert!(e.contains("other snapshot"), "{e}");
    assert_eq!(lab.lvm.seqno(&lab.vg), seqno);
    assert!(dm.mutating_calls().is_empty());
    // Flagged in one mode, asked in the other: refused both ways, nothing written.
    let lab = lab_with("srm", false, false);
    lab.cow_header(1);
    let only = lab.only();
    let mut dm = FakeDm::new();
    rollback(&lab.env(&only), Some(&mut dm), &lab.vg, "pre").expect("origin mode");
    let seqno = lab.lvm.seqno(&lab.vg);
    let mut dm = lab.snapshot_fake();
    let e = rollback_snapshot(&lab.env(&only), Some(&mut dm), &lab.vg, "pre")
        .expect_err("mode")
        .to_string();
    assert!(e.contains("with --mode origin"), "{e}");
    assert_eq!(lab.lvm.seqno(&lab.vg), seqno);
    let lab = lab_with("srn", false, false);
    let mut dm = lab.snapshot_mode_merging();
    let only = lab.only();
    let seqno = lab.lvm.seqno(&lab.vg);
    let e = rollback(&lab.env(&only), Some(&mut dm), &lab.vg, "pre")
        .expect_err("mode")
        .to_string();
    assert!(e.contains("--mode snapshot"), "{e}");
    assert_eq!(lab.lvm.seqno(&lab.vg), seqno);
    assert!(dm.mutating_calls().is_empty());
}

#[test]
fn loop_snapshot_mode_cut_between_commit_and_tables() {
    require_host!("loop_snapshot_mode_cut_between_commit_and_tables");
    use rewind::flow::cancel::cancel;
    use rewind::flow::rollback::{Rollback, rollback_snapshot};
    // Killed after the origin became `error` but before the snapshot's reload (3 steps).
    for then_cancel in [false, true] {
        let lab = lab_with("scut", false, false);
        lab.cow_header(1);
        let only = lab.only();
        let mut dm = lab.snapshot_fake();
        dm.set_holders(&lab.dm("pre"), 1);
        dm.crash_after(3);
        let e = rollback_snapshot(&lab.env(&only), Some(&mut dm), &lab.vg, "pre")
            .expect_err("cut")
            .to_string();
        assert!(e.contains("the flag is committed"), "{e}");
        dm.restart();
        let st = state(&mut dm);
        assert_eq!(st[&lab.dm("root")].lines[0].target, Target::Error);
        assert!(matches!(
            st[&lab.dm("pre")].lines[0].target,
            Target::Snapshot(_)
        ));
        lab.lvm.clean(&["vgck", &lab.vg]);
        let seqno = lab.lvm.seqno(&lab.vg);
        if then_cancel {
            // Not started yet: cancel withdraws it and gives root its snapshot-origin back.
            cancel(&lab.env(&only), Some(&mut dm), &lab.vg, "pre").expect("cancel");
            assert_eq!(lab.lvm.seqno(&lab.vg), seqno + 1);
            let st = state(&mut dm);
            assert!(matches!(
                st[&lab.dm("root")].lines[0].target,
                Target::SnapshotOrigin { .. }
            ));
            assert!(lab.attr("pre").starts_with('s'), "{}", lab.attr("pre"));
            let lvs = lab.stock_lvs();
            assert!(
                !lvs.iter().any(|l| l.contains("rewind_merge_as_snapshot")),
                "{lvs:?}"
            );
            lab.lvm.clean(&["vgck", &lab.vg]);
        } else {
            // Run again: already flagged, the tables are completed, nothing more written.
            let r =
                rollback_snapshot(&lab.env(&only), Some(&mut dm), &lab.vg, "pre").expect("again");
            assert_eq!(
                r,
                Rollback::Started {
                    origin: "root".into()
                }
            );
            assert_eq!(lab.lvm.seqno(&lab.vg), seqno);
            let st = state(&mut dm);
            assert!(matches!(
                st[&lab.dm("pre")].lines[0].target,
                Target::SnapshotMerge(_)
            ));
            let e = cancel(&lab.env(&only), Some(&mut dm), &lab.vg, "pre")
                .expect_err("started")
                .to_string();
            assert!(e.contains("has started"), "{e}");
        }
    }
}

#[test]
fn loop_snapshot_mode_next_boot_lays_out_the_same_merge() {
    require_host!("loop_snapshot_mode_next_boot_lays_out_the_same_merge");
    // A reboot mid-merge: the metadata carries the flag and the mode tag; rewind early (its
    // planner and executor, on a fresh fake) brings back the snapshot-mode devices.
    let lab = lab_with("sboot", false, false);
    let mut before = lab.snapshot_mode_merging();
    let want = state(&mut before);
    let only = lab.only();
    let inputs = rewind::flow::early::Inputs {
        root: PathBuf::from("/"),
        cmdline: rewind::plan::cmdline::Cmdline::parse(""),
        config: rewind::config::Config::default(),
    };
    let scan = rewind::flow::early::scan_devices(&inputs, &only).expect("scan");
    let prep = rewind::flow::early::prepare(&inputs, scan);
    let mut dm = FakeDm::new();
    dm.add_disk(&lab.disk.dev, devnum(&lab.disk.dev));
    let mut out = rewind::flow::early::Outcome::default();
    rewind::flow::early::plan_devices(&prep, &live(&mut dm).expect("live"), &mut out);
    assert_eq!(out.exit_code(), 0, "{:?}", out.notes);
    let vol = out
        .volumes
        .iter()
        .find(|v| v.vg == lab.vg)
        .expect("our vg planned");
    assert_eq!(vol.lv, "root");
    execute(&mut dm, &vol.steps).expect("execute");
    let got = state(&mut dm);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    assert_eq!(got[&lab.dm("root")].lines[0].target, Target::Error);
    assert!(matches!(
        got[&lab.dm("pre")].lines[0].target,
        Target::SnapshotMerge(_)
    ));
    assert_eq!(got[&lab.dm("pre")].length(), 8 * 2048);
}

/// The record `rewind early` leaves for the merge of `root` in the lab's VG, written under
/// `state`.
fn record_merge(lab: &Lab, state: &Path) -> notice::MergeRecord {
    let only = lab.only();
    let s = scan(Path::new("/"), &only).expect("scan");
    let vg = s.assembly.vgs_named(&lab.vg).next().expect("vg");
    let model = vg.model.as_ref().expect("model");
    let rec = notice::MergeRecord::of(vg, model, "root", 1_000).expect("a merge to record");
    notice::write(state, &rec).expect("write the record");
    rec
}

fn tags(lab: &Lab, lv: &str) -> String {
    lab.lvm
        .ok(&[
            "lvs",
            "--noheadings",
            "-o",
            "lv_tags",
            &format!("{}/{lv}", lab.vg),
        ])
        .trim()
        .to_owned()
}

#[test]
fn loop_notice_lvm_finished_first_gets_the_rollback_note() {
    require_host!("loop_notice_lvm_finished_first_gets_the_rollback_note");
    let lab = lab_in_set("nlvm", false, true, Some("s1"));
    let state = tempfile::tempdir().expect("tempdir");
    let rec = record_merge(&lab, state.path());
    assert_eq!(rec.set.as_deref(), Some("s1"));
    assert_eq!(rec.snapshot, "pre");
    let only = lab.only();
    let mut dm = FakeDm::new();
    // Still merging: the record stays, nothing is written.
    let seqno = lab.lvm.seqno(&lab.vg);
    let n = notice::run(&mut lab.env(&only), &mut dm, state.path());
    assert!(
        n.finished_elsewhere.is_empty() && n.errors.is_empty(),
        "{n:?}"
    );
    assert_eq!(n.kept.len(), 1, "{n:?}");
    assert_eq!(lab.lvm.seqno(&lab.vg), seqno);
    assert_eq!(notice::read_all(state.path()).len(), 1);
    // Stock LVM finishes the merge: the snapshot and its set tag are gone.
    lab.lvm
        .ok(&["lvremove", "-f", "-qq", &format!("{}/pre", lab.vg)]);
    let seqno = lab.lvm.seqno(&lab.vg);
    let n = notice::run(&mut lab.env(&only), &mut dm, state.path());
    assert_eq!(
        n.finished_elsewhere,
        [(format!("{}/root", lab.vg), Some("s1".to_owned()))],
        "{n:?}"
    );
    assert!(n.errors.is_empty(), "{n:?}");
    // One commit, read back by stock LVM: the origin names the set.
    assert_eq!(lab.lvm.seqno(&lab.vg), seqno + 1);
    lab.lvm.clean(&["vgck", &lab.vg]);
    let t = tags(&lab, "root");
    assert!(
        t.starts_with("rewind_rolled_back_") && t.ends_with("_s1") && !t.contains(','),
        "{t}"
    );
    let motd = std::fs::read_to_string(state.path().join("run/motd.d/rewind")).expect("motd");
    assert!(
        motd.contains(&format!(
            "rollback complete: {}/root is back at snapshot set s1",
            lab.vg
        )),
        "{motd}"
    );
    assert!(notice::read_all(state.path()).is_empty(), "record dropped");
    // Again: nothing left to notice, nothing written.
    let n = notice::run(&mut lab.env(&only), &mut dm, state.path());
    assert_eq!(n, notice::Noticed::default());
    assert_eq!(lab.lvm.seqno(&lab.vg), seqno + 1);
    // The record written again (a rerun of early that raced): the tag is there, dropped quietly.
    notice::write(state.path(), &rec).expect("write");
    let n = notice::run(&mut lab.env(&only), &mut dm, state.path());
    assert!(n.finished_elsewhere.is_empty(), "{n:?}");
    assert!(notice::read_all(state.path()).is_empty());
    assert_eq!(lab.lvm.seqno(&lab.vg), seqno + 1);
}

#[test]
fn loop_notice_follows_a_renamed_vg_and_origin() {
    require_host!("loop_notice_follows_a_renamed_vg_and_origin");
    let lab = lab_in_set("nren", false, true, Some("s2"));
    let state = tempfile::tempdir().expect("tempdir");
    record_merge(&lab, state.path());
    lab.lvm
        .ok(&["lvremove", "-f", "-qq", &format!("{}/pre", lab.vg)]);
    let new_vg = format!("{}x", lab.vg);
    lab.lvm.ok(&["vgrename", "-qq", &lab.vg, &new_vg]);
    lab.lvm.ok(&["lvrename", "-qq", &new_vg, "root", "sys"]);
    let only = lab.only();
    let mut dm = FakeDm::new();
    let n = notice::run(&mut lab.env(&only), &mut dm, state.path());
    assert_eq!(
        n.finished_elsewhere,
        [(format!("{new_vg}/sys"), Some("s2".to_owned()))],
        "{n:?}"
    );
    lab.lvm.clean(&["vgck", &new_vg]);
    let t = lab.lvm.ok(&[
        "lvs",
        "--noheadings",
        "-o",
        "lv_tags",
        &format!("{new_vg}/sys"),
    ]);
    assert!(t.trim().ends_with("_s2"), "{t}");
}

#[test]
fn loop_notice_cancelled_merge_drops_the_record_and_writes_nothing() {
    require_host!("loop_notice_cancelled_merge_drops_the_record_and_writes_nothing");
    let lab = lab_in_set("ncan", false, true, Some("s3"));
    let state = tempfile::tempdir().expect("tempdir");
    record_merge(&lab, state.path());
    // The merge flag taken back (the metadata as before the rollback was asked for).
    let only = lab.only();
    let s = scan(Path::new("/"), &only).expect("scan");
    let vg = s.assembly.vgs_named(&lab.vg).next().expect("vg");
    let tree = rewind::lvm::change::unmark_merging(
        &vg.tree,
        "pre",
        &rewind::lvm::change::Stamp::new("h", 1),
    )
    .expect("unmark");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("backup");
    std::fs::write(&file, print(&tree, Style::Backup)).expect("write");
    lab.lvm.ok(&[
        "vgcfgrestore",
        "-q",
        "-f",
        file.to_str().expect("utf8"),
        &lab.vg,
    ]);
    let seqno = lab.lvm.seqno(&lab.vg);
    let mut dm = FakeDm::new();
    let n = notice::run(&mut lab.env(&only), &mut dm, state.path());
    assert_eq!(n, notice::Noticed::default());
    assert!(notice::read_all(state.path()).is_empty(), "record dropped");
    assert_eq!(lab.lvm.seqno(&lab.vg), seqno, "nothing written");
    assert!(!tags(&lab, "root").contains("rolled_back"));
}
