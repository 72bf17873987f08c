//! Host tier for thin LVs: metadata with a thin pool, a thin root and two thin snapshots, one
//! flagged to merge exactly as stock `lvconvert --merge` leaves it while root is open
//! (`merge = "root"` in the snapshot's segment, the snapshot hidden), restored and read back
//! by stock LVM2 in metadata-only mode. `rewind plan` must lay root out as LVM would
//! activate it (names, UUIDs from `lvs`, the snapshot's device id) and write nothing.
//! The tables against a real kernel are the VM tier's.

use std::process::Command;

mod common;
#[path = "support/jsonschema.rs"]
mod jsonschema;
use common::{Loop, Lvm, lvs_section};
use rewind::config::Config;
use rewind::config::Poll as PollConfig;
use rewind::flow::early::{self, Inputs, Outcome};
use rewind::flow::env::Env;
use rewind::flow::poll::{self, Finished};
use rewind::lvm::disk::CommitStep;
use rewind::lvm::text::{Node, Style, Value, parse, print};
use rewind::plan::cmdline::Cmdline;
use rewind::plan::dev::DevNum;
use rewind::plan::devices::VgLayout;
use rewind::plan::steps::converge;
use rewind::system::blockdev::BlockDevice;
use rewind::system::dm::{Call, DeviceMapper, FakeDm};
use rewind::system::exec::{execute, live};
use rewind::system::scan::scan;

const MIB: u64 = 1 << 20;

fn thin_lv(name: &str, id: &str, visible: bool, dev: u64, tid: u64, extra: &str) -> String {
    let status = if visible {
        "[\"READ\", \"WRITE\", \"VISIBLE\"]"
    } else {
        "[\"READ\", \"WRITE\"]"
    };
    let flags = if extra.is_empty() {
        "[]"
    } else {
        "[\"ACTIVATION_SKIP\"]"
    };
    format!(
        "{name} {{\nid = \"{id}\"\nstatus = {status}\nflags = {flags}\ncreation_time = 1700000000\n\
         creation_host = \"host\"\nsegment_count = 1\nsegment1 {{\nstart_extent = 0\n\
         extent_count = 10\ntype = \"thin\"\nthin_pool = \"pool\"\ntransaction_id = {tid}\n\
         device_id = {dev}\n{extra}}}\n}}\n"
    )
}

/// A VG `vg` whose `pool_tmeta`, `pool_tdata` (two segments) and `lvol0_pmspare` were made
/// by lvcreate (under other names: LVM reserves those) and turned into a thin pool `pool`
/// with `root` (device 1), `snap1` (2, flagged to merge into root) and `snap2` (3).
fn lab(vg: &str, flagged: bool) -> (Loop, Lvm) {
    let disk = Loop::new(200 * MIB);
    let lvm = Lvm::new(std::slice::from_ref(&disk));
    lvm.ok(&["vgcreate", "-qq", vg, &disk.dev]);
    for (lv, size) in [("tm", "4m"), ("td", "4m"), ("sp", "4m")] {
        lvm.ok(&[
            "lvcreate", "-qq", "-an", "-Zn", "-Wn", "-L", size, "-n", lv, vg,
        ]);
    }
    lvm.ok(&["lvextend", "-qq", "-L", "80m", &format!("{vg}/td")]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("backup");
    let path = file.to_str().expect("utf8");
    lvm.ok(&["vgcfgbackup", "-q", "-f", path, vg]);
    let text = String::from_utf8(std::fs::read(&file).expect("backup")).expect("utf8");
    let mut tree = parse(text.as_bytes()).expect("parse");
    let lvs = lvs_section(&mut tree);
    for (old, new) in [
        ("tm", "pool_tmeta"),
        ("td", "pool_tdata"),
        ("sp", "lvol0_pmspare"),
    ] {
        assert!(lvs.rename(old, new), "{old}");
        if let Some(Node::Section(s)) = lvs
            .entries
            .iter_mut()
            .find(|e| e.key == new)
            .map(|e| &mut e.node)
        {
            s.set("status", Value::str_array(&["READ", "WRITE"]));
        }
    }
    let added = format!(
        "pool {{\nid = \"P00lAA-aaaa-bbbb-cccc-dddd-eeee-ffff00\"\nstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\n\
         flags = []\ncreation_time = 1700000000\ncreation_host = \"host\"\nsegment_count = 1\n\
         segment1 {{\nstart_extent = 0\nextent_count = 20\ntype = \"thin-pool\"\n\
         metadata = \"pool_tmeta\"\npool = \"pool_tdata\"\ntransaction_id = 3\nchunk_size = 128\n\
         discards = \"passdown\"\nzero_new_blocks = 1\n}}\n}}\n{}{}{}",
        thin_lv(
            "root",
            "R00tAA-aaaa-bbbb-cccc-dddd-eeee-ffff00",
            true,
            1,
            0,
            ""
        ),
        thin_lv(
            "snap1",
            "Snap1A-aaaa-bbbb-cccc-dddd-eeee-ffff00",
            !flagged,
            2,
            1,
            if flagged {
                "origin = \"root\"\nmerge = \"root\"\n"
            } else {
                "origin = \"root\"\n"
            }
        ),
        thin_lv(
            "snap2",
            "Snap2A-aaaa-bbbb-cccc-dddd-eeee-ffff00",
            true,
            3,
            2,
            "origin = \"root\"\n"
        ),
    );
    lvs.entries
        .extend(parse(added.as_bytes()).expect("thin text").entries);
    std::fs::write(&file, print(&tree, Style::Backup)).expect("write");
    // LVM refuses to restore thin volumes without --force (it cannot check the pool's
    // kernel metadata here).
    lvm.ok(&["vgcfgrestore", "-q", "--force", "-f", path, vg]);
    lvm.clean(&["vgck", vg]);
    (disk, lvm)
}

fn uuids(lvm: &Lvm, vg: &str) -> std::collections::BTreeMap<String, String> {
    lvm.ok(&["lvs", "-a", "--noheadings", "-o", "lv_name,lv_uuid", vg])
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((
                w.next()?.trim_matches(['[', ']']).to_owned(),
                w.next()?.replace('-', ""),
            ))
        })
        .collect()
}

#[test]
fn loop_flagged_thin_merge_is_planned_as_lvm_activates_it() {
    require_host!("loop_flagged_thin_merge_is_planned_as_lvm_activates_it");
    let vg = format!("thin{}", std::process::id());
    let (disk, lvm) = lab(&vg, true);
    // Stock LVM reads the flag: root a merging origin, snap1 a hidden merging snapshot.
    let attrs = lvm.ok(&["lvs", "-a", "--noheadings", "-o", "lv_name,lv_attr", &vg]);
    assert!(attrs.contains("root            Owi"), "{attrs}");
    assert!(attrs.contains("[snap1]         Swi"), "{attrs}");
    let vg_uuid = lvm
        .ok(&["vgs", "--noheadings", "-o", "vg_uuid", &vg])
        .trim()
        .replace('-', "");
    let ids = uuids(&lvm, &vg);
    let before = lvm.seqno(&vg);
    let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(["plan", "--json", "--cmdline", "", &disk.dev])
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
    // Nothing to commit: the flag is LVM's own; root is activated for the merge.
    assert_eq!(plan["flags_committed"], serde_json::json!([]));
    let volumes = plan["volumes"].as_array().expect("volumes");
    assert_eq!(volumes.len(), 1, "{plan}");
    let v = &volumes[0];
    assert_eq!(v["lv"], "root");
    assert_eq!(v["reason"], "merge");
    assert_eq!(v["thin_pool"]["transaction_id"], 3);
    assert_eq!(v["thin_pool"]["device"], format!("{vg}-pool-tpool"));
    let got: Vec<(String, String, String, Vec<String>)> = v["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap_or("").to_owned(),
                d["uuid"].as_str().unwrap_or("").to_owned(),
                d["role"].as_str().unwrap_or("").to_owned(),
                d["table"]
                    .as_array()
                    .expect("table")
                    .iter()
                    .map(|l| l.as_str().unwrap_or("").to_owned())
                    .collect(),
            )
        })
        .collect();
    let st = std::fs::metadata(&disk.dev).expect("stat");
    let rdev = std::os::unix::fs::MetadataExt::rdev(&st);
    let pv = format!(
        "{}:{}",
        nix::sys::stat::major(rdev),
        nix::sys::stat::minor(rdev)
    );
    let uuid = |lv: &str, suffix: &str| format!("LVM-{vg_uuid}{}{suffix}", ids[lv]);
    let want = vec![
        (
            format!("{vg}-pool_tmeta"),
            uuid("pool_tmeta", "-tmeta"),
            "pool_part".to_owned(),
            vec![format!("0 8192 linear {pv} 2048")],
        ),
        (
            format!("{vg}-pool_tdata"),
            uuid("pool_tdata", "-tdata"),
            "pool_part".to_owned(),
            vec![
                format!("0 8192 linear {pv} 10240"),
                format!("8192 155648 linear {pv} 26624"),
            ],
        ),
        (
            format!("{vg}-pool-tpool"),
            uuid("pool", "-tpool"),
            "thin_pool".to_owned(),
            vec![format!(
                "0 163840 thin-pool /dev/mapper/{vg}-pool_tmeta /dev/mapper/{vg}-pool_tdata 128 0 0"
            )],
        ),
        (
            format!("{vg}-root"),
            uuid("root", ""),
            "thin".to_owned(),
            // snap1's device id: root shows the snapshot's content.
            vec![format!("0 81920 thin /dev/mapper/{vg}-pool-tpool 2")],
        ),
    ];
    assert_eq!(got, want);
    assert_eq!(lvm.seqno(&vg), before, "plan writes nothing");

    // The snapshot flagged to merge is not activated by itself; the sibling keeps its id.
    let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args([
            "plan",
            "--json",
            "--cmdline",
            &format!("rd.lvm.lv={vg}/snap1 rd.lvm.lv={vg}/snap2"),
            &disk.dev,
        ])
        .output()
        .expect("run");
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    jsonschema::assert_valid("plan", &plan);
    let notes = plan["notes"].to_string();
    assert!(
        notes.contains(&format!(
            "{vg}/snap1 not activated: vg {vg}: lv snap1 is a thin snapshot flagged to merge into root"
        )),
        "{notes}"
    );
    let snap2 = plan["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["lv"] == "snap2")
        .expect("snap2 planned");
    assert_eq!(
        snap2["devices"][3]["table"][0],
        format!("0 81920 thin /dev/mapper/{vg}-pool-tpool 3")
    );
}

fn attrs(lvm: &Lvm, vg: &str) -> String {
    lvm.ok(&["lvs", "-a", "--noheadings", "-o", "lv_name,lv_attr", vg])
}

/// `rd.rewind=VG/snap1` for a thin snapshot: rewind commits the same flag stock
/// `lvconvert --merge` writes (the LVs read back equal to the fixture's, which is LVM's own
/// after that command), stock LVM reads it as a merge, and root is planned with snap1's id.
#[test]
fn loop_rd_rewind_of_a_thin_snapshot_commits_lvms_flag() {
    require_host!("loop_rd_rewind_of_a_thin_snapshot_commits_lvms_flag");
    let vg = format!("thinrd{}", std::process::id());
    let (disk, lvm) = lab(&vg, false);
    let a = attrs(&lvm, &vg);
    assert!(a.contains("  snap1           Vwi"), "{a}");
    let before = lvm.seqno(&vg);
    let only = |d: &rewind::system::blockdev::BlockDevice| {
        if d.node == std::path::Path::new(&disk.dev) {
            Ok(())
        } else {
            Err("other".into())
        }
    };
    let inputs = |c: &str| Inputs {
        root: std::path::PathBuf::from("/"),
        cmdline: Cmdline::parse(c),
        config: Config::default(),
    };
    let run = |c: &str| {
        let i = inputs(c);
        let scan = early::scan_devices(&i, &only).expect("scan");
        let mut prep = early::prepare(&i, scan);
        let mut out = Outcome::default();
        early::commit_flags(&mut prep, &mut out, true);
        (prep, out)
    };
    // Refusals change nothing: the origin itself, the sibling while snap1 is flagged.
    let (_, out) = run(&format!("rd.rewind={vg}/root"));
    assert!(out.flags_committed.is_empty());
    assert_eq!(lvm.seqno(&vg), before);

    let (prep, out) = run(&format!("rd.rewind={vg}/snap1"));
    assert_eq!(
        out.flags_committed,
        [format!("{vg}/snap1")],
        "{:?}",
        out.notes
    );
    assert_eq!(lvm.seqno(&vg), before + 1);
    lvm.clean(&["vgck", &vg]);
    let a = attrs(&lvm, &vg);
    assert!(a.contains("  root            Owi"), "{a}");
    assert!(a.contains("  [snap1]         Swi"), "{a}");
    assert!(a.contains("  snap2           Vwi"), "{a}");
    // The same LVs as stock LVM's own flag (the fixture was written by LVM after it).
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("after");
    lvm.ok(&["vgcfgbackup", "-q", "-f", file.to_str().expect("utf8"), &vg]);
    let ours = rewind::lvm::model::Vg::from_tree(
        &parse(&std::fs::read(&file).expect("read")).expect("parse"),
    )
    .expect("model");
    let stock_text = include_str!("fixtures/text/thin.vg");
    let stock = rewind::lvm::model::Vg::from_tree(&parse(stock_text.as_bytes()).expect("parse"))
        .expect("model");
    let lv_view = |v: &rewind::lvm::model::Vg| -> Vec<(String, Vec<String>, bool, String)> {
        v.lvs
            .iter()
            .filter(|l| l.thin().is_some())
            .map(|l| {
                (
                    l.name.clone(),
                    l.flags.clone(),
                    l.visible,
                    format!("{:?}", l.segments[0].kind),
                )
            })
            .collect()
    };
    assert_eq!(lv_view(&ours), lv_view(&stock));
    assert!(
        prep.decision
            .activate
            .iter()
            .any(|a| a.lv == "root" && a.reason == rewind::plan::decide::Reason::Merge)
    );

    // Again: already flagged, nothing more written; the sibling is refused, nothing written.
    let (_, out) = run(&format!("rd.rewind={vg}/snap1"));
    assert!(out.flags_committed.is_empty());
    let (prep, out) = run(&format!("rd.rewind={vg}/snap2"));
    assert!(out.flags_committed.is_empty());
    assert!(
        prep.decision
            .notes
            .iter()
            .any(|n| n.message.contains("already has a merging snapshot, snap1")),
        "{:?}",
        prep.decision.notes
    );
    assert_eq!(lvm.seqno(&vg), before + 1);
}

/// What is left of the lab after a thin merge's finish, as stock LVM reads it: the LVs with
/// their attributes, origin, device id and the pool's transaction id and tags.
fn stock_view(lvm: &Lvm, vg: &str) -> String {
    lvm.ok(&[
        "lvs",
        "-a",
        "--noheadings",
        "--separator",
        ",",
        "-o",
        "lv_name,lv_uuid,lv_attr,origin,thin_id,transaction_id,lv_tags",
        vg,
    ])
    .lines()
    .map(|l| l.trim().to_owned())
    .collect::<Vec<_>>()
    .join("\n")
}

struct ThinLab {
    disk: Loop,
    lvm: Lvm,
    vg: String,
    locks: tempfile::TempDir,
}

impl ThinLab {
    fn new(tag: &str) -> ThinLab {
        let vg = format!("{tag}{}", std::process::id());
        let (disk, lvm) = lab(&vg, true);
        ThinLab {
            disk,
            lvm,
            vg,
            locks: tempfile::tempdir().expect("locks"),
        }
    }

    fn only(&self) -> impl Fn(&BlockDevice) -> Result<(), String> + '_ {
        move |d: &BlockDevice| {
            if d.node == std::path::Path::new(&self.disk.dev) {
                Ok(())
            } else {
                Err("other".into())
            }
        }
    }

    fn pool(&self) -> String {
        format!("{}-pool-tpool", self.vg)
    }

    /// The fake with root activated for the flagged merge as `rewind early` activates it
    /// (snap1's device id), root mounted, the pool at transaction 3 holding devices 1 to 3.
    fn booted(&self) -> FakeDm {
        self.booted_with("3", &[1, 2, 3], &["root"])
    }

    /// The fake with `lvs` activated as `rewind early` activates them (a flagged merge's
    /// origin with its snapshot's device id), the pool at transaction `tid` holding `devices`.
    fn booted_with(&self, tid: &str, devices: &[u64], lvs: &[&str]) -> FakeDm {
        let mut dm = FakeDm::new();
        let rdev =
            std::os::unix::fs::MetadataExt::rdev(&std::fs::metadata(&self.disk.dev).expect("stat"));
        dm.add_disk(
            &self.disk.dev,
            DevNum {
                major: nix::sys::stat::major(rdev) as u32,
                minor: nix::sys::stat::minor(rdev) as u32,
            },
        );
        dm.set_pool_status(
            &self.pool(),
            &format!("{tid} 12/1024 40/1280 - rw discard_passdown queue_if_no_space - 256"),
        );
        dm.set_pool_devices(&self.pool(), devices);
        let only = self.only();
        let s = scan(std::path::Path::new("/"), &only).expect("scan");
        let vg = s.assembly.vgs_named(&self.vg).next().expect("vg");
        let pvs = s.pv_numbers(vg);
        let layout = VgLayout {
            vg: vg.model.as_ref().expect("model"),
            pv_dev: &pvs,
        };
        for lv in lvs {
            let devices = layout.activation(lv).expect("layout");
            let steps = converge(&devices, &live(&mut dm).expect("live")).expect("steps");
            execute(&mut dm, &steps).expect("execute");
            dm.set_holders(&format!("{}-{lv}", self.vg), 1);
        }
        dm.clear_calls();
        dm
    }

    fn poll<'a>(
        &self,
        only: &'a (dyn Fn(&BlockDevice) -> Result<(), String> + 'a),
        dm: &mut FakeDm,
        hook: Option<&'a mut dyn FnMut(CommitStep) -> bool>,
    ) -> poll::Report {
        let mut env = Env {
            root: std::path::PathBuf::from("/"),
            select: only,
            lock_dir: self.locks.path().to_path_buf(),
            lock_timeout: std::time::Duration::from_secs(5),
            commit_hook: hook,
        };
        poll::watch(&mut env, dm, &PollConfig::default(), &mut |_, _| {
            panic!("a thin finish never waits")
        })
    }

    fn messages(dm: &FakeDm) -> Vec<String> {
        dm.calls()
            .iter()
            .filter_map(|c| match c {
                Call::Message { message, .. } => Some(message.clone()),
                _ => None,
            })
            .collect()
    }

    /// The end every run converges to: root carries snap1's device (2) under its own name and
    /// uuid, snap1 gone, snap2 kept without an origin, the pool's transaction id 4 in the
    /// metadata and in the kernel, device 1 deleted from the pool, no tag, vgck clean; root's
    /// live table untouched.
    fn assert_end(&self, dm: &mut FakeDm, root_uuid: &str) {
        self.lvm.clean(&["vgck", &self.vg]);
        let v = stock_view(&self.lvm, &self.vg);
        let rows: Vec<&str> = v.lines().collect();
        let row = |name: &str| -> Vec<String> {
            rows.iter()
                .find(|r| r.split(',').next() == Some(name))
                .unwrap_or_else(|| panic!("no {name} in {v}"))
                .split(',')
                .map(str::to_owned)
                .collect()
        };
        assert!(!v.contains("snap1"), "{v}");
        let root = row("root");
        assert_eq!(root[1], root_uuid, "{v}");
        assert_eq!(&root[2][..1], "V", "{v}");
        assert_eq!((root[3].as_str(), root[4].as_str()), ("", "2"), "{v}");
        let snap2 = row("snap2");
        assert_eq!((snap2[3].as_str(), snap2[4].as_str()), ("", "3"), "{v}");
        let pool = row("pool");
        assert_eq!((pool[5].as_str(), pool[6].as_str()), ("4", ""), "{v}");
        let st = dm.status(&self.pool()).expect("status");
        assert!(st[0].params.starts_with("4 "), "{:?}", st[0].params);
        assert_eq!(dm.pool_devices(&self.pool()), Some(vec![2, 3]));
        let root = dm
            .live_table(&format!("{}-root", self.vg))
            .expect("root")
            .to_string();
        let w: Vec<&str> = root.split_whitespace().collect();
        assert_eq!(
            (w[..3].to_vec(), w.len(), w[4]),
            (vec!["0", "81920", "thin"], 5, "2"),
            "{root}"
        );
    }

    fn root_uuid(&self) -> String {
        stock_view(&self.lvm, &self.vg)
            .lines()
            .find(|r| r.starts_with("root,"))
            .and_then(|r| r.split(',').nth(1))
            .expect("root")
            .to_owned()
    }
}

/// `rewind poll` finishes a thin merge that `rewind early` made live: two commits around the
/// pool's `delete 1` and `set_transaction_id 3 4`, and stock LVM reads the result as it
/// reads its own finish (the VM scenario thin-merge shows LVM 2.03.16's: the origin with the
/// snapshot's id, the sibling without an origin, the pool's id one up). A second run does
/// nothing.
#[test]
fn loop_poll_finishes_a_thin_merge_as_lvm_does() {
    require_host!("loop_poll_finishes_a_thin_merge_as_lvm_does");
    let lab = ThinLab::new("thinfin");
    let root_uuid = lab.root_uuid();
    let before = lab.lvm.seqno(&lab.vg);
    let mut dm = lab.booted();
    let r = lab.poll(&lab.only(), &mut dm, None);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(
        r.finished,
        [Finished::Committed {
            vg: lab.vg.clone(),
            origin: "root".into(),
            snapshot: "snap1".into(),
        }]
    );
    assert_eq!(
        ThinLab::messages(&dm),
        ["delete 1", "set_transaction_id 3 4"]
    );
    assert_eq!(lab.lvm.seqno(&lab.vg), before + 2, "two commits, as LVM's");
    lab.assert_end(&mut dm, &root_uuid);
    dm.clear_calls();
    let again = lab.poll(&lab.only(), &mut dm, None);
    assert_eq!(again, poll::Report::default());
    assert!(ThinLab::messages(&dm).is_empty());
    assert_eq!(lab.lvm.seqno(&lab.vg), before + 2);
}

/// Killed between every two steps (inside either commit, before each message, before the
/// tag goes): the next run converges to the same end, and stock LVM reads every
/// intermediate state (vgck clean; between the commit and the messages the kernel's id is
/// one behind, which LVM accepts).
#[test]
fn loop_thin_finish_killed_anywhere_converges() {
    require_host!("loop_thin_finish_killed_anywhere_converges");
    // The number of steps of one commit, from a whole run.
    let steps_per_commit = {
        let lab = ThinLab::new("thinsteps");
        let mut dm = lab.booted();
        let mut n = 0;
        let mut count = |_: CommitStep| {
            n += 1;
            true
        };
        let r = lab.poll(&lab.only(), &mut dm, Some(&mut count));
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(n % 2, 0, "two commits of the same steps");
        n / 2
    };
    assert!(steps_per_commit > 0);
    // Inside either commit.
    for stop_at in 0..2 * steps_per_commit {
        let lab = ThinLab::new(&format!("thinc{stop_at}x"));
        let root_uuid = lab.root_uuid();
        let mut dm = lab.booted();
        let mut step = 0;
        let mut hook = |_: CommitStep| {
            step += 1;
            step <= stop_at
        };
        let r = lab.poll(&lab.only(), &mut dm, Some(&mut hook));
        assert!(!r.errors.is_empty(), "stopped at {stop_at}");
        lab.lvm.clean(&["vgck", &lab.vg]);
        let r = lab.poll(&lab.only(), &mut dm, None);
        assert!(r.errors.is_empty(), "{stop_at}: {:?}", r.errors);
        lab.assert_end(&mut dm, &root_uuid);
    }
    // Before the delete, before set_transaction_id.
    for crash in 0..2 {
        let lab = ThinLab::new(&format!("thinm{crash}x"));
        let root_uuid = lab.root_uuid();
        let mut dm = lab.booted();
        dm.crash_after(crash);
        let r = lab.poll(&lab.only(), &mut dm, None);
        assert!(!r.errors.is_empty(), "crash {crash}");
        lab.lvm.clean(&["vgck", &lab.vg]);
        let v = stock_view(&lab.lvm, &lab.vg);
        assert!(v.contains("rewind_thin_delete_1_tid_4"), "{v}");
        dm.restart();
        dm.clear_calls();
        let r = lab.poll(&lab.only(), &mut dm, None);
        assert!(r.errors.is_empty(), "{crash}: {:?}", r.errors);
        // The delete again (ENODATA when it had gone through), then the id.
        assert_eq!(
            ThinLab::messages(&dm),
            ["delete 1", "set_transaction_id 3 4"]
        );
        lab.assert_end(&mut dm, &root_uuid);
    }
}

/// Two thin merges in one pool, as a thin set of two members rolled back leaves them (the VM
/// scenario thin-root, boot 5): each merge's commit is followed by its own messages and
/// second commit before the next merge is committed, so the kernel's transaction id is never
/// two behind the metadata's. (Committing both first left a real pool two behind, which
/// neither LVM nor rewind sends messages to.)
#[test]
fn loop_two_thin_merges_in_one_pool_finish_one_transaction_at_a_time() {
    require_host!("loop_two_thin_merges_in_one_pool_finish_one_transaction_at_a_time");
    let lab = ThinLab::new("thintwo");
    // data (device 4) and dsnap (5), flagged to merge into data; the pool at transaction 5.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("backup");
    let path = file.to_str().expect("utf8");
    lab.lvm.ok(&["vgcfgbackup", "-q", "-f", path, &lab.vg]);
    let mut tree = parse(&std::fs::read(&file).expect("backup")).expect("parse");
    let lvs = lvs_section(&mut tree);
    lvs.section_mut("pool")
        .and_then(|p| p.section_mut("segment1"))
        .expect("pool segment")
        .set("transaction_id", Value::Int(5));
    let added = format!(
        "{}{}",
        thin_lv(
            "data",
            "DataAA-aaaa-bbbb-cccc-dddd-eeee-ffff00",
            true,
            4,
            3,
            ""
        ),
        thin_lv(
            "dsnap",
            "DsnapA-aaaa-bbbb-cccc-dddd-eeee-ffff00",
            false,
            5,
            4,
            "origin = \"data\"\nmerge = \"data\"\n"
        ),
    );
    lvs.entries
        .extend(parse(added.as_bytes()).expect("thin text").entries);
    std::fs::write(&file, print(&tree, Style::Backup)).expect("write");
    lab.lvm
        .ok(&["vgcfgrestore", "-q", "--force", "-f", path, &lab.vg]);
    lab.lvm.clean(&["vgck", &lab.vg]);
    let before = lab.lvm.seqno(&lab.vg);

    let mut dm = lab.booted_with("5", &[1, 2, 3, 4, 5], &["root", "data"]);
    let r = lab.poll(&lab.only(), &mut dm, None);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let mut origins: Vec<_> = r
        .finished
        .iter()
        .map(|f| match f {
            Finished::Committed {
                origin, snapshot, ..
            } => format!("{origin}<-{snapshot}"),
            other => format!("{other:?}"),
        })
        .collect();
    origins.sort();
    assert_eq!(origins, ["data<-dsnap", "root<-snap1"]);
    // One transaction at a time: each delete with its own set_transaction_id.
    let m = ThinLab::messages(&dm);
    assert!(
        m == [
            "delete 1",
            "set_transaction_id 5 6",
            "delete 4",
            "set_transaction_id 6 7"
        ] || m
            == [
                "delete 4",
                "set_transaction_id 5 6",
                "delete 1",
                "set_transaction_id 6 7"
            ],
        "{m:?}"
    );
    assert_eq!(
        lab.lvm.seqno(&lab.vg),
        before + 4,
        "two commits per merge, as LVM's"
    );
    lab.lvm.clean(&["vgck", &lab.vg]);
    let v = stock_view(&lab.lvm, &lab.vg);
    assert!(!v.contains("snap1") && !v.contains("dsnap"), "{v}");
    let row = |name: &str| -> Vec<String> {
        v.lines()
            .find(|r| r.split(',').next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} in {v}"))
            .split(',')
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(row("root")[4], "2", "{v}");
    assert_eq!(row("data")[4], "5", "{v}");
    let pool = row("pool");
    assert_eq!((pool[5].as_str(), pool[6].as_str()), ("7", ""), "{v}");
    let st = dm.status(&lab.pool()).expect("status");
    assert!(st[0].params.starts_with("7 "), "{:?}", st[0].params);
    assert_eq!(dm.pool_devices(&lab.pool()), Some(vec![2, 3, 5]));
    dm.clear_calls();
    let again = lab.poll(&lab.only(), &mut dm, None);
    assert_eq!(again, poll::Report::default());
    assert!(ThinLab::messages(&dm).is_empty());
}

fn backup_model(lvm: &Lvm, vg: &str) -> rewind::lvm::model::Vg {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("b");
    lvm.ok(&["vgcfgbackup", "-q", "-f", file.to_str().expect("utf8"), vg]);
    rewind::lvm::model::Vg::from_tree(&parse(&std::fs::read(&file).expect("read")).expect("parse"))
        .expect("model")
}

/// Stock LVM's own finish, for comparison: `lvconvert --merge` of snap1 while root is not
/// active merges at once (`thin_merge_finish`); in metadata-only mode it commits the swap
/// and the removal, then fails to activate the pool for its `delete` message. What it
/// committed is what rewind's finish leaves (the pool's tag dropped, the messages sent): the
/// same LVs, in the same order, with the same ids, flags, tags and segments.
#[test]
fn loop_thin_finish_metadata_equals_stock_lvms() {
    require_host!("loop_thin_finish_metadata_equals_stock_lvms");
    let ours_lab = ThinLab::new("thinours");
    let mut dm = ours_lab.booted();
    let r = ours_lab.poll(&ours_lab.only(), &mut dm, None);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let ours = backup_model(&ours_lab.lvm, &ours_lab.vg);

    let vg = format!("thinstock{}", std::process::id());
    let (_disk, lvm) = lab(&vg, false);
    let out = lvm.run(&["lvconvert", "--merge", &format!("{vg}/snap1")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Cannot activate thin pool"), "{err}");
    lvm.clean(&["vgck", &vg]);
    let stock = backup_model(&lvm, &vg);
    let view = |v: &rewind::lvm::model::Vg| -> Vec<String> {
        v.lvs
            .iter()
            .map(|l| {
                if l.name.starts_with("pool_") || l.name.starts_with("lvol0") {
                    // Made by lvcreate in each lab: their own ids and extents.
                    l.name.clone()
                } else {
                    format!("{l:?}")
                }
            })
            .collect()
    };
    assert_eq!(view(&ours), view(&stock));
    assert!(view(&ours).iter().any(|l| l.contains("device_id: 2")));
}

/// `rewind list` of a set with a thin member (snap2 tagged into set `thin1` by stock
/// `lvchange --addtag`, as a set tagged by hand): the member names its pool with the
/// transaction id stock `lvs` reads; with no device-mapper (this host) the pool is not active
/// and no fill is shown (`kernel` absent, "inactive" in the text); with the pool live (the
/// fake, as `rewind early` lays it out) the fill is the kernel's status in the metadata's
/// chunk size.
#[test]
fn loop_list_shows_a_thin_members_pool() {
    require_host!("loop_list_shows_a_thin_members_pool");
    let vg = format!("tlist{}", std::process::id());
    let (disk, lvm) = lab(&vg, false);
    lvm.ok(&[
        "lvchange",
        "-qq",
        "--addtag",
        "rewind_set_thin1",
        &format!("{vg}/snap2"),
    ]);
    let tid: u64 = lvm
        .ok(&[
            "lvs",
            "--noheadings",
            "-o",
            "transaction_id",
            &format!("{vg}/pool"),
        ])
        .trim()
        .parse()
        .expect("transaction_id");
    let only = |d: &BlockDevice| {
        if d.node == std::path::Path::new(&disk.dev) {
            Ok(())
        } else {
            Err("other".into())
        }
    };
    let s = scan(std::path::Path::new("/"), &only).expect("scan");
    let views = rewind::flow::sets::views(&s, None).expect("views");
    let set = views.iter().find(|v| v.name == "thin1").expect("set thin1");
    assert_eq!(set.members.len(), 1);
    let m = &set.members[0];
    assert_eq!(m.snapshot, "snap2");
    let p = m.pool.as_ref().expect("its pool");
    assert_eq!(
        (p.vg.as_str(), p.pool.as_str(), p.transaction_id),
        (vg.as_str(), "pool", tid)
    );
    assert_eq!((&p.device, &p.kernel), (&None, &None));
    let j = serde_json::to_value(&views).expect("json");
    assert!(j[0]["members"][0]["pool"]["kernel"].is_null(), "{j}");

    // The pool live: its fill from the kernel's status.
    let mut dm = FakeDm::new();
    let rdev = std::os::unix::fs::MetadataExt::rdev(&std::fs::metadata(&disk.dev).expect("stat"));
    dm.add_disk(
        &disk.dev,
        DevNum {
            major: nix::sys::stat::major(rdev) as u32,
            minor: nix::sys::stat::minor(rdev) as u32,
        },
    );
    let tpool = format!("{vg}-pool-tpool");
    dm.set_pool_status(
        &tpool,
        "3 12/1024 640/1280 - rw discard_passdown queue_if_no_space - 256",
    );
    let found = s.assembly.vgs_named(&vg).next().expect("vg");
    let pvs = s.pv_numbers(found);
    let layout = VgLayout {
        vg: found.model.as_ref().expect("model"),
        pv_dev: &pvs,
    };
    let devices = layout.activation("snap2").expect("layout");
    let steps = converge(&devices, &live(&mut dm).expect("live")).expect("steps");
    execute(&mut dm, &steps).expect("execute");
    let views = rewind::flow::sets::views(&s, Some(&mut dm)).expect("views");
    let p = views[0].members[0].pool.as_ref().expect("its pool");
    assert_eq!(p.device.as_deref(), Some(tpool.as_str()));
    let k = p.kernel.as_ref().expect("kernel");
    let data = k.data.as_ref().expect("data");
    // 640 of 1280 64 KiB chunks: the pool's 80 MiB as stock LVM sized it.
    assert_eq!(
        (data.allocated_bytes, data.total_bytes, data.percent),
        (40 * MIB, 80 * MIB, 50.0)
    );
    let pool_bytes: u64 = lvm
        .ok(&[
            "lvs",
            "--noheadings",
            "--units",
            "b",
            "--nosuffix",
            "-o",
            "lv_size",
            &format!("{vg}/pool"),
        ])
        .trim()
        .parse()
        .expect("lv_size");
    assert_eq!(data.total_bytes, pool_bytes);
    assert_eq!(k.metadata.as_ref().expect("metadata").percent, 1.17);
}
