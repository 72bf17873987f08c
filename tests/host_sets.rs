//! Host tier for snapshot sets (docs/SETS.md): two VGs on loop devices, stock LVM2 in
//! metadata-only mode (it allocates the stores with `lvcreate -an` and reads everything back:
//! `lvs`, `vgck`, `vgcfgbackup`), the recording device-mapper fake with the members active,
//! and a window that goes through the fake. A set is taken, read back by stock LVM, and the
//! flow is stopped at every point of its creation (as if killed) and run again: the half-made
//! set is tidied away and the next set is whole.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod common;
#[path = "support/jsonschema.rs"]
mod jsonschema;
use common::{Loop, Lvm};
use rewind::config::Snapshot as SnapshotConfig;
use rewind::flow::env::Env;
use rewind::flow::sets::{Instant, Tools, all_sets};
use rewind::flow::snapshot::{Request, take};
use rewind::lvm::sets::State;
use rewind::plan::dev::{DevNum, UdevRules};
use rewind::plan::devices::VgLayout;
use rewind::plan::steps::converge;
use rewind::plan::table::Target;
use rewind::system::blockdev::BlockDevice;
use rewind::system::dm::{DeviceMapper, FakeDm};
use rewind::system::exec::{execute, live};
use rewind::system::lvmtool;
use rewind::system::scan::scan;
use rewind::system::window;

const MIB: u64 = 1 << 20;

/// The window through the fake: every origin suspended, the snapshots resumed, the origins
/// resumed; a crash test can make it fail once every origin is suspended (what the guardian
/// leaves: every origin back on its old table).
#[derive(Default)]
struct FakeWindow {
    requests: Vec<window::Request>,
    fail_inside: bool,
    /// Fail the window at its message with this index (the kernel refusing it), after the
    /// messages before it went through.
    fail_message: Option<usize>,
}

impl Instant for FakeWindow {
    fn take(
        &mut self,
        dm: &mut dyn DeviceMapper,
        req: &window::Request,
    ) -> Result<window::Report, window::WindowError> {
        self.requests.push(req.clone());
        let err = |e: rewind::system::dm::DmError| window::WindowError::Setup(e.to_string());
        for o in &req.origins {
            dm.suspend(o).map_err(err)?;
        }
        if self.fail_inside {
            for o in &req.origins {
                dm.clear(o).map_err(err)?;
                dm.resume(o, UdevRules::All).map_err(err)?;
            }
            return Err(window::WindowError::TimedOut { deadline_ms: 1 });
        }
        for s in &req.snapshots {
            dm.resume(s, UdevRules::LowPriority).map_err(err)?;
        }
        for (i, (d, m)) in req.messages.iter().enumerate() {
            let sent = if self.fail_message == Some(i) {
                Err(nix::errno::Errno::EEXIST)
            } else {
                dm.message(d, m).map_err(|_| nix::errno::Errno::EINVAL)
            };
            if let Err(errno) = sent {
                for o in &req.origins {
                    dm.clear(o).map_err(err)?;
                    dm.resume(o, UdevRules::All).map_err(err)?;
                }
                return Err(window::WindowError::Message {
                    name: d.clone(),
                    message: m.clone(),
                    errno,
                });
            }
        }
        for o in &req.origins {
            dm.resume(o, UdevRules::All).map_err(err)?;
        }
        Ok(window::Report {
            window: Duration::from_millis(1),
            suspended_at: vec![Duration::ZERO; req.origins.len()],
            snapshots_live_at: Duration::ZERO,
        })
    }
}

struct Lab {
    disks: Vec<Loop>,
    lvm: Lvm,
    config: String,
    vga: String,
    vgb: String,
    dir: tempfile::TempDir,
}

fn devnum(path: &str) -> DevNum {
    let rdev = std::fs::metadata(path).expect("stat").rdev();
    DevNum {
        major: nix::sys::stat::major(rdev) as u32,
        minor: nix::sys::stat::minor(rdev) as u32,
    }
}

/// vga{pid}: root (8 MiB), var (4 MiB); vgb{pid}: data (4 MiB); 1 MiB extents.
fn lab(tag: &str) -> Lab {
    let pid = std::process::id();
    let (vga, vgb) = (format!("{tag}a{pid}"), format!("{tag}b{pid}"));
    let disks = vec![Loop::new(64 * MIB), Loop::new(64 * MIB)];
    let lvm = Lvm::new(&disks);
    lvm.ok(&["vgcreate", "-qq", "-s", "1m", &vga, &disks[0].dev]);
    lvm.ok(&["vgcreate", "-qq", "-s", "1m", &vgb, &disks[1].dev]);
    for (vg, lv, size) in [
        (&vga, "root", "8m"),
        (&vga, "var", "4m"),
        (&vgb, "data", "4m"),
    ] {
        lvm.ok(&[
            "lvcreate", "-qq", "-an", "-Zn", "-Wn", "-L", size, "-n", lv, vg,
        ]);
    }
    let accept: Vec<String> = disks
        .iter()
        .map(|d| format!("\"a|^{}$|\"", d.dev))
        .collect();
    let config = format!(
        "global {{ activation = 0 }} backup {{ backup = 0 archive = 0 }} devices {{ \
         obtain_device_list_from_udev = 0 use_devicesfile = 0 global_filter = [ {}, \"r|.*|\" ] }}",
        accept.join(", ")
    );
    Lab {
        disks,
        lvm,
        config,
        vga,
        vgb,
        dir: tempfile::tempdir().expect("tempdir"),
    }
}

impl Lab {
    fn only(&self) -> impl Fn(&BlockDevice) -> Result<(), String> + '_ {
        move |d: &BlockDevice| {
            if self.disks.iter().any(|l| d.node == Path::new(&l.dev)) {
                Ok(())
            } else {
                Err("other".into())
            }
        }
    }

    fn env<'a>(&'a self, only: &'a (dyn Fn(&BlockDevice) -> Result<(), String> + 'a)) -> Env<'a> {
        Env {
            root: PathBuf::from("/"),
            select: only,
            lock_dir: self.dir.path().join("locks"),
            lock_timeout: Duration::from_secs(5),
            commit_hook: None,
        }
    }

    /// The fake with every LV of both VGs active (plain), as after boot.
    fn active_fake(&self) -> FakeDm {
        let mut dm = FakeDm::new();
        for d in &self.disks {
            dm.add_disk(&d.dev, devnum(&d.dev));
        }
        std::fs::create_dir_all(self.dir.path().join("locks")).expect("locks");
        let only = self.only();
        let s = scan(Path::new("/"), &only).expect("scan");
        for (vg, lvs) in [
            (&self.vga, &["root", "var"][..]),
            (&self.vgb, &["data"][..]),
        ] {
            let found = s.assembly.vgs_named(vg).next().expect("vg");
            let pvs = s.pv_numbers(found);
            let layout = VgLayout {
                vg: found.model.as_ref().expect("model"),
                pv_dev: &pvs,
            };
            for lv in lvs {
                let devices = layout.activation(lv).expect("layout");
                let steps = converge(&devices, &live(&mut dm).expect("live")).expect("steps");
                execute(&mut dm, &steps).expect("activate");
            }
        }
        dm.set_holders(&format!("{}-root", self.vga), 1);
        dm.clear_calls();
        dm
    }

    fn tools<'a>(&self, dm: &'a mut FakeDm, window: FakeWindow) -> Tools<'a> {
        Tools {
            dm,
            lvm: lvmtool::Lvm {
                binary: PathBuf::from("lvm"),
                config: Some(self.config.clone()),
            },
            window: Box::new(window),
            mounts: Vec::new(),
            nodes_root: None,
            sets_lock: self.dir.path().join("rewind-sets"),
            stop_at: None,
            stopped: false,
        }
    }

    fn request(&self, name: &str) -> Request {
        Request {
            name: Some(name.into()),
            description: "before the upgrade".into(),
            size: Some("2M".parse().expect("size")),
            members: vec![
                format!("{}/root", self.vga),
                format!("{}/var", self.vga),
                format!("{}/data", self.vgb),
            ],
            auto: false,
            pin: false,
            min_extents: Default::default(),
        }
    }

    fn take(&self, dm: &mut FakeDm, name: &str) -> Result<(), String> {
        let only = self.only();
        let env = self.env(&only);
        let mut tools = self.tools(dm, FakeWindow::default());
        take(
            &env,
            &mut tools,
            &SnapshotConfig::default(),
            &self.request(name),
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    }

    /// Stock lvs: name, attr[0], origin, tags, per VG, sorted.
    fn lvs(&self, vg: &str) -> Vec<String> {
        let out = self.lvm.ok(&[
            "lvs",
            "-a",
            "--noheadings",
            "--separator",
            ",",
            "-o",
            "lv_name,lv_attr,origin,lv_tags",
            vg,
        ]);
        let mut v: Vec<String> = out
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.trim().splitn(4, ',').collect();
                format!(
                    "{},{},{},{}",
                    f[0],
                    &f[1][..1],
                    f[2],
                    f.get(3).unwrap_or(&"")
                )
            })
            .collect();
        v.sort();
        v
    }

    fn sets(&self) -> Vec<(String, State)> {
        let only = self.only();
        let s = scan(Path::new("/"), &only).expect("scan");
        all_sets(&s)
            .into_iter()
            .map(|x| {
                let st = x.state();
                (x.name, st)
            })
            .collect()
    }

    fn clean(&self) {
        self.lvm.clean(&["vgck", &self.vga]);
        self.lvm.clean(&["vgck", &self.vgb]);
    }
}

/// The devices of a whole set `name` in the fake: each origin a live snapshot-origin, each
/// snapshot device live as a snapshot, nothing suspended, nothing inactive.
fn assert_set_live(lab: &Lab, dm: &mut FakeDm, name: &str) {
    let l = live(dm).expect("live");
    for (vg, origin) in [(&lab.vga, "root"), (&lab.vga, "var"), (&lab.vgb, "data")] {
        let o = l
            .iter()
            .find(|d| d.name == format!("{vg}-{origin}"))
            .expect("origin");
        assert!(!o.suspended, "{} suspended", o.name);
        assert!(
            matches!(
                o.table.as_ref().expect("table").lines[0].target,
                Target::SnapshotOrigin { .. }
            ),
            "{}",
            o.name
        );
        let snap = format!("{vg}-{origin}.{name}");
        let s = l
            .iter()
            .find(|d| d.name == snap)
            .unwrap_or_else(|| panic!("{snap} missing"));
        assert!(matches!(
            s.table.as_ref().expect("snapshot table").lines[0].target,
            Target::Snapshot(_)
        ));
        let info = dm.info(&o.name).expect("info").expect("exists");
        assert!(
            !info.inactive_table,
            "{} has an inactive table left",
            o.name
        );
    }
}

#[test]
fn loop_a_set_across_two_vgs_reads_back_in_stock_lvm() {
    require_host!("loop_a_set_across_two_vgs_reads_back_in_stock_lvm");
    let lab = lab("sset");
    let mut dm = lab.active_fake();
    let only = lab.only();
    let env = lab.env(&only);
    let mut tools = lab.tools(&mut dm, FakeWindow::default());
    let taken = take(
        &env,
        &mut tools,
        &SnapshotConfig::default(),
        &lab.request("pre"),
    )
    .expect("take");
    drop(tools);
    assert_eq!(taken.members.len(), 3);
    assert!(
        taken.members.iter().all(|m| m.extents == 2),
        "{:?}",
        taken.members
    );
    lab.clean();
    let tags = "rewind_desc0_before_the_upgrade,rewind_kind_manual,rewind_members_3,rewind_set_pre,rewind_time_";
    let a = lab.lvs(&lab.vga);
    // `lvs -a` shows the snapshots as LVM's own (the snapshotN LVs stay internal).
    assert_eq!(a.len(), 4, "{a:?}");
    assert_eq!(a[0], "root,o,,", "{a:?}");
    assert!(
        a[1].starts_with(&format!("root.pre,s,root,{tags}")),
        "{a:?}"
    );
    assert!(a[3].starts_with(&format!("var.pre,s,var,{tags}")), "{a:?}");
    let b = lab.lvs(&lab.vgb);
    assert!(
        b[1].starts_with(&format!("data.pre,s,data,{tags}")),
        "{b:?}"
    );
    assert!(!a.iter().chain(&b).any(|l| l.contains("rewind_pending")));
    let backup = lab.dir.path().join("a.vg");
    lab.lvm.ok(&[
        "vgcfgbackup",
        "-q",
        "-f",
        backup.to_str().expect("utf8"),
        &lab.vga,
    ]);
    let text = std::fs::read_to_string(&backup).expect("backup");
    assert!(text.contains("cow_store = \"root.pre\""), "{text}");
    assert_eq!(lab.sets(), [("pre".to_owned(), State::Ok)]);
    assert_set_live(&lab, &mut dm, "pre");

    // A second set of the same members (origins already snapshot-origins) is fine too.
    lab.take(&mut dm, "post").expect("second set");
    lab.clean();
    assert_set_live(&lab, &mut dm, "post");
    let names: Vec<String> = lab.sets().into_iter().map(|s| s.0).collect();
    assert_eq!(names.len(), 2);

    // Stock lvremove of one member: the set is incomplete.
    lab.lvm
        .ok(&["lvremove", "-qq", "-y", &format!("{}/data.pre", lab.vgb)]);
    let sets = lab.sets();
    assert!(
        sets.contains(&("pre".to_owned(), State::Incomplete)),
        "{sets:?}"
    );

    // What `list --json` and `show --json` print for these sets (read back from stock LVM's
    // metadata, the members live in the fake device-mapper) is what docs/json/ pins.
    let only = lab.only();
    let s = scan(Path::new("/"), &only).expect("scan");
    let views = rewind::flow::sets::views(&s, Some(&mut dm)).expect("views");
    let list = serde_json::to_value(&views).expect("json");
    jsonschema::assert_valid("list", &list);
    // Listed by time, then name, and both sets may carry the same second: compared sorted.
    let mut states: Vec<(&str, &str)> = list
        .as_array()
        .expect("sets")
        .iter()
        .filter_map(|v| Some((v["name"].as_str()?, v["state"].as_str()?)))
        .collect();
    states.sort_unstable();
    assert_eq!(states, [("post", "ok"), ("pre", "incomplete")], "{list}");
    for v in &views {
        jsonschema::assert_valid("show", &serde_json::to_value(v).expect("json"));
    }
}

#[test]
fn loop_refusals_change_nothing() {
    require_host!("loop_refusals_change_nothing");
    let lab = lab("sref");
    let mut dm = lab.active_fake();
    let before = (lab.lvs(&lab.vga), lab.lvs(&lab.vgb));
    let run = |dm: &mut FakeDm, members: Vec<String>, size: &str| {
        let only = lab.only();
        let env = lab.env(&only);
        let mut tools = lab.tools(dm, FakeWindow::default());
        let mut r = lab.request("x");
        r.members = members;
        r.size = Some(size.parse().expect("size"));
        take(&env, &mut tools, &SnapshotConfig::default(), &r)
            .expect_err("refused")
            .to_string()
    };
    let root = format!("{}/root", lab.vga);
    let e = run(&mut dm, vec![root.clone(), root.clone()], "1M");
    assert_eq!((lab.lvs(&lab.vga), lab.lvs(&lab.vgb)), before);
    assert!(e.contains("named twice"), "{e}");
    lab.lvm.ok(&[
        "lvcreate", "-qq", "-an", "-Zn", "-Wn", "-l", "100%FREE", "-n", "fill", &lab.vga,
    ]);
    let before = (lab.lvs(&lab.vga), lab.lvs(&lab.vgb));
    let e = run(&mut dm, vec![root.clone()], "1M");
    assert!(
        e.contains("needs 1 extents for this set, has 0 free"),
        "{e}"
    );
    let e = run(&mut dm, vec![format!("{}/nope", lab.vga)], "1M");
    assert!(e.contains("no logical volume nope"), "{e}");
    let e = run(&mut dm, vec!["nothing/here".into()], "1M");
    assert!(
        e.contains("no volume group") || e.contains("not found"),
        "{e}"
    );
    // Mount points: one on a device that is no LV (a partition, 8:1), one where nothing
    // is mounted; a default member on a non-LVM device is left out instead.
    let only = lab.only();
    let env = lab.env(&only);
    let srv = rewind::system::mounts::parse_mountinfo(
        "40 1 8:1 / /srv rw,relatime - ext4 /dev/sda1 rw\n",
    );
    let refuse = |dm: &mut FakeDm, members: Vec<String>| {
        let mut tools = lab.tools(dm, FakeWindow::default());
        tools.mounts = srv.clone();
        let mut r = lab.request("m");
        r.members = members;
        take(&env, &mut tools, &SnapshotConfig::default(), &r)
            .expect_err("refused")
            .to_string()
    };
    let e = refuse(&mut dm, vec!["/srv".into()]);
    assert!(
        e.contains("/srv")
            && e.contains("mounted from /dev/sda1 (8:1), which is not an lvm logical volume"),
        "{e}"
    );
    let e = refuse(&mut dm, vec!["/nowhere".into()]);
    assert!(
        e.contains("/nowhere") && e.contains("nothing is mounted there"),
        "{e}"
    );
    let defaults = SnapshotConfig {
        members: vec!["/srv".into(), "/nowhere".into()],
        ..SnapshotConfig::default()
    };
    let mut tools = lab.tools(&mut dm, FakeWindow::default());
    tools.mounts = srv.clone();
    let mut r = lab.request("d");
    r.members = Vec::new();
    let e = take(&env, &mut tools, &defaults, &r)
        .expect_err("no member")
        .to_string();
    drop(tools);
    assert!(e.contains("no members"), "{e}");
    assert_eq!((lab.lvs(&lab.vga), lab.lvs(&lab.vgb)), before);
    assert!(dm.mutating_calls().is_empty());
}

/// Every crash point of the creation, each a fresh lab: stopped there (nothing after it
/// runs), then another `rewind snapshot`: the half-made set is gone, the new one is whole,
/// stock vgck is clean, no device of the first is left.
#[test]
fn loop_a_set_cut_short_anywhere_is_tidied_and_the_next_is_whole() {
    require_host!("loop_a_set_cut_short_anywhere_is_tidied_and_the_next_is_whole");
    let points = [
        ("snapshot-after-lvcreate", 1),
        ("snapshot-after-lvcreate", 3),
        ("snapshot-after-commit", 1),
        ("snapshot-after-commit", 2),
        ("snapshot-before-window", 1),
        ("snapshot-after-window", 1),
        ("snapshot-after-complete", 1),
        ("snapshot-after-complete", 2),
    ];
    for (point, nth) in points {
        let lab = lab("scut");
        let mut dm = lab.active_fake();
        let only = lab.only();
        let env = lab.env(&only);
        let mut tools = lab.tools(&mut dm, FakeWindow::default());
        tools.stop_at = Some((point.to_owned(), nth));
        let e = take(
            &env,
            &mut tools,
            &SnapshotConfig::default(),
            &lab.request("first"),
        )
        .expect_err("stopped");
        assert!(e.to_string().contains("stopped at"), "{point}: {e}");
        drop(tools);
        lab.clean();
        let whole = point == "snapshot-after-complete" && nth == 2;
        lab.take(&mut dm, "second")
            .unwrap_or_else(|e| panic!("{point} {nth}: {e}"));
        lab.clean();
        let sets = lab.sets();
        let want: Vec<(String, State)> = if whole {
            vec![("first".into(), State::Ok), ("second".into(), State::Ok)]
        } else {
            vec![("second".into(), State::Ok)]
        };
        let mut got = sets.clone();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(got, want, "{point} {nth}");
        assert_set_live(&lab, &mut dm, "second");
        // After the window the cut set's snapshots are live: stock `lvremove` takes them
        // away with their devices on a real system (the VM tier); metadata-only LVM here
        // leaves the fake's devices alone.
        let went_live = matches!(point, "snapshot-after-window" | "snapshot-after-complete");
        if !whole && !went_live {
            let l = live(&mut dm).expect("live");
            assert!(
                !l.iter().any(|d| d.name.contains(".first")),
                "{point} {nth}: devices of the cut set left: {:?}",
                l.iter().map(|d| &d.name).collect::<Vec<_>>()
            );
        }
    }
}

/// The window aborted (every origin back on its old table, as the guardian leaves it): the
/// command fails, nothing of the set is kept.
#[test]
fn loop_an_aborted_window_keeps_nothing() {
    require_host!("loop_an_aborted_window_keeps_nothing");
    let lab = lab("swin");
    let mut dm = lab.active_fake();
    let before = (lab.lvs(&lab.vga), lab.lvs(&lab.vgb));
    let only = lab.only();
    let env = lab.env(&only);
    let mut tools = lab.tools(
        &mut dm,
        FakeWindow {
            fail_inside: true,
            ..FakeWindow::default()
        },
    );
    let e = take(
        &env,
        &mut tools,
        &SnapshotConfig::default(),
        &lab.request("w"),
    )
    .expect_err("aborted");
    assert!(
        e.to_string().contains("guardian") || e.to_string().contains("window"),
        "{e}"
    );
    drop(tools);
    lab.clean();
    assert_eq!((lab.lvs(&lab.vga), lab.lvs(&lab.vgb)), before);
    let l = live(&mut dm).expect("live");
    let names: Vec<&str> = l.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names.len(), 3, "only the three plain LVs: {names:?}");
    assert!(l.iter().all(|d| !d.suspended
        && matches!(
            d.table.as_ref().expect("t").lines[0].target,
            Target::Linear { .. }
        )));
}

fn rollback(
    lab: &Lab,
    dm: &mut FakeDm,
    name: &str,
    keep: Option<Option<String>>,
    stop: Option<(&str, usize)>,
) -> Result<rewind::flow::set_rollback::SetRollback, String> {
    let only = lab.only();
    let env = lab.env(&only);
    let mut tools = lab.tools(dm, FakeWindow::default());
    tools.stop_at = stop.map(|(p, n)| (p.to_owned(), n));
    rewind::flow::set_rollback::rollback_set(
        &env,
        &mut tools,
        &SnapshotConfig::default(),
        name,
        keep,
    )
    .map_err(|e| e.to_string())
}

/// `merging` per member of set `name` from stock lvs (`lv_merging`... shown as the snapshot's
/// attr `S`): name -> flagged.
fn flagged(lab: &Lab) -> Vec<String> {
    let mut v = Vec::new();
    for vg in [&lab.vga, &lab.vgb] {
        let out = lab.lvm.ok(&[
            "lvs",
            "-a",
            "--noheadings",
            "--separator",
            ",",
            "-o",
            "lv_name,lv_attr,lv_tags",
            vg,
        ]);
        for l in out.lines() {
            let f: Vec<&str> = l.trim().splitn(3, ',').collect();
            if f[1].starts_with('S') {
                v.push(format!(
                    "{}/{}",
                    vg,
                    f[0].trim_matches(|c| c == '[' || c == ']')
                ));
            }
        }
    }
    v.sort();
    v
}

/// Writes an invalid (overflowed) COW header over `vg/lv`'s first sector, as the kernel
/// leaves a store that filled up.
fn overflow(lab: &Lab, disk: &Loop, vg: &str, lv: &str) {
    let out = lab.lvm.ok(&[
        "lvs",
        "--noheadings",
        "--units",
        "b",
        "--nosuffix",
        "-o",
        "seg_pe_ranges,vg_extent_size",
        &format!("{vg}/{lv}"),
    ]);
    let f: Vec<&str> = out.split_whitespace().collect();
    let first: u64 = f[0]
        .split(':')
        .nth(1)
        .expect("range")
        .split('-')
        .next()
        .expect("pe")
        .parse()
        .expect("pe");
    let extent: u64 = f[1].parse().expect("extent");
    let pe_start: u64 = lab
        .lvm
        .ok(&[
            "pvs",
            "--noheadings",
            "--units",
            "b",
            "--nosuffix",
            "-o",
            "pe_start",
            &disk.dev,
        ])
        .trim()
        .parse()
        .expect("pe_start");
    let mut h = Vec::new();
    for x in [0x7041_6e53u32, 0, 1, 8] {
        h.extend_from_slice(&x.to_le_bytes());
    }
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&disk.dev)
        .expect("open");
    f.write_all_at(&h, pe_start + first * extent)
        .expect("write");
    f.sync_all().expect("sync");
}

#[test]
fn loop_a_set_rolls_back_whole_or_not_at_all() {
    require_host!("loop_a_set_rolls_back_whole_or_not_at_all");
    let lab = lab("srb");
    let mut dm = lab.active_fake();
    lab.take(&mut dm, "pre").expect("pre");

    // One member's store overflowed: refused, naming it, nothing written.
    overflow(&lab, &lab.disks[1], &lab.vgb, "data.pre");
    let seq = (lab.lvm.seqno(&lab.vga), lab.lvm.seqno(&lab.vgb));
    let e = rollback(&lab, &mut dm, "pre", None, None).expect_err("lost");
    assert!(
        e.contains(&format!("{}/data.pre", lab.vgb)) && e.contains("nothing flagged"),
        "{e}"
    );
    assert_eq!((lab.lvm.seqno(&lab.vga), lab.lvm.seqno(&lab.vgb)), seq);
    assert!(flagged(&lab).is_empty());

    // A good set, cut after its first VG's commit: the rerun completes it.
    lab.take(&mut dm, "good").expect("good");
    let e = rollback(
        &lab,
        &mut dm,
        "good",
        None,
        Some(("rollback-set-after-commit", 1)),
    )
    .expect_err("stopped");
    assert!(e.contains("stopped at"), "{e}");
    assert_eq!(
        flagged(&lab),
        [
            format!("{}/root.good", lab.vga),
            format!("{}/var.good", lab.vga)
        ]
    );
    let r = rollback(&lab, &mut dm, "good", None, None).expect("rerun");
    assert_eq!(r.flagged, [format!("{}/data.good", lab.vgb)]);
    assert_eq!(r.already.len(), 2);
    let mut want = vec![
        format!("{}/data.good", lab.vgb),
        format!("{}/root.good", lab.vga),
        format!("{}/var.good", lab.vga),
    ];
    want.sort();
    assert_eq!(flagged(&lab), want);
    lab.clean();
    // A third run has nothing to do.
    let r = rollback(&lab, &mut dm, "good", None, None).expect("again");
    assert!(r.flagged.is_empty() && r.already.len() == 3);
}

#[test]
fn loop_keep_current_takes_the_current_state_first() {
    require_host!("loop_keep_current_takes_the_current_state_first");
    let lab = lab("skc");
    let mut dm = lab.active_fake();
    lab.take(&mut dm, "a").expect("a");
    let r = rollback(&lab, &mut dm, "a", Some(Some("b".into())), None).expect("rollback");
    let kept = r.kept.expect("kept");
    assert_eq!(kept.name, "b");
    assert_eq!(kept.members.len(), 3);
    // At least as large as a's stores (2 extents each).
    assert!(
        kept.members.iter().all(|m| m.extents >= 2),
        "{:?}",
        kept.members
    );
    assert_eq!(r.flagged.len(), 3);
    lab.clean();
    let sets = lab.sets();
    assert!(sets.contains(&("b".to_owned(), State::Ok)), "{sets:?}");
    assert!(sets.contains(&("a".to_owned(), State::Merging)), "{sets:?}");
}

#[test]
fn loop_an_incomplete_set_is_refused() {
    require_host!("loop_an_incomplete_set_is_refused");
    let lab = lab("sinc");
    let mut dm = lab.active_fake();
    lab.take(&mut dm, "pre").expect("pre");
    lab.lvm
        .ok(&["lvremove", "-qq", "-y", &format!("{}/var.pre", lab.vga)]);
    let e = rollback(&lab, &mut dm, "pre", None, None).expect_err("incomplete");
    assert!(e.contains("2 of its 3 members"), "{e}");
    assert!(flagged(&lab).is_empty());
}

#[test]
fn loop_delete_removes_every_member() {
    require_host!("loop_delete_removes_every_member");
    let lab = lab("sdel");
    let mut dm = lab.active_fake();
    lab.take(&mut dm, "pre").expect("pre");
    let only = lab.only();
    let env = lab.env(&only);
    let mut tools = lab.tools(&mut dm, FakeWindow::default());
    let n = rewind::flow::sets::delete_set(&env, &mut tools, "pre").expect("delete");
    assert_eq!(n, 3);
    drop(tools);
    lab.clean();
    assert!(lab.sets().is_empty());
    let names: Vec<String> = lab
        .lvs(&lab.vga)
        .into_iter()
        .chain(lab.lvs(&lab.vgb))
        .collect();
    assert_eq!(names, ["root,-,,", "var,-,,", "data,-,,"]);
}

/// `--keep-current` cut short between two VGs' flag commits, then rerun with the same
/// arguments (the keep set named, or by default): the same end (the cut run's set of the
/// current state is the one kept, every member of the set rolled back to is flagged, stock
/// vgck clean). Cut after the keep set was taken and before any flag: nothing is flagged;
/// a rerun naming the same keep set is refused with nothing changed (that name is taken),
/// one with another name ends as the first would have.
#[test]
fn loop_keep_current_cut_short_reruns_to_the_same_end() {
    require_host!("loop_keep_current_cut_short_reruns_to_the_same_end");
    let want = |lab: &Lab| {
        let mut w = vec![
            format!("{}/data.a", lab.vgb),
            format!("{}/root.a", lab.vga),
            format!("{}/var.a", lab.vga),
        ];
        w.sort();
        w
    };
    for keep in [Some("b"), None] {
        let lab = lab("skcc");
        let mut dm = lab.active_fake();
        lab.take(&mut dm, "a").expect("a");
        let keep = keep.map(str::to_owned);
        let stop = Some(("rollback-set-after-commit", 1));
        let e = rollback(&lab, &mut dm, "a", Some(keep.clone()), stop).expect_err("stopped");
        assert!(e.contains("stopped at"), "{keep:?}: {e}");
        lab.clean();
        let r = rollback(&lab, &mut dm, "a", Some(keep.clone()), None)
            .unwrap_or_else(|e| panic!("{keep:?}: rerun: {e}"));
        lab.clean();
        let sets = lab.sets();
        assert_eq!(sets.len(), 2, "{keep:?}: {sets:?}");
        let kept = r.kept_earlier.clone().expect("the cut run's set");
        if let Some(k) = &keep {
            assert_eq!(&kept, k);
        }
        assert!(r.kept.is_none());
        assert!(sets.contains(&(kept, State::Ok)), "{sets:?}");
        assert!(sets.contains(&("a".to_owned(), State::Merging)), "{sets:?}");
        assert_eq!(r.flagged, [format!("{}/data.a", lab.vgb)]);
        assert_eq!(flagged(&lab), want(&lab), "{keep:?}");
    }

    let lab = lab("skcd");
    let mut dm = lab.active_fake();
    lab.take(&mut dm, "a").expect("a");
    let stop = Some(("snapshot-after-complete", 2));
    let e = rollback(&lab, &mut dm, "a", Some(Some("b".into())), stop).expect_err("stopped");
    assert!(e.contains("stopped at"), "{e}");
    lab.clean();
    assert!(flagged(&lab).is_empty());
    let seq = (lab.lvm.seqno(&lab.vga), lab.lvm.seqno(&lab.vgb));
    let e = rollback(&lab, &mut dm, "a", Some(Some("b".into())), None).expect_err("name taken");
    assert!(e.contains("named b exists already"), "{e}");
    assert_eq!((lab.lvm.seqno(&lab.vga), lab.lvm.seqno(&lab.vgb)), seq);
    let r = rollback(&lab, &mut dm, "a", Some(Some("c".into())), None).expect("rerun");
    assert_eq!(r.kept.expect("kept").name, "c");
    lab.clean();
    assert_eq!(flagged(&lab), want(&lab));
}

/// The boot menu (docs/BOOTMENU.md) written from what `rewind list` shows: one entry per set,
/// in the order of `render` (newest first), a usable set's entry booting it with
/// `rewind_boot SET`, a lost one listed but not bootable; GRUB's own grub-script-check
/// accepts the file.
#[test]
fn loop_boot_menu_lists_the_sets_and_passes_grub_script_check() {
    require_host!("loop_boot_menu_lists_the_sets_and_passes_grub_script_check");
    let lab = lab("smenu");
    let mut dm = lab.active_fake();
    lab.take(&mut dm, "old").expect("old");
    lab.take(&mut dm, "new").expect("new");
    lab.take(&mut dm, "gone").expect("gone");
    overflow(&lab, &lab.disks[1], &lab.vgb, "data.gone");
    let only = lab.only();
    let s = scan(Path::new("/"), &only).expect("scan");
    // As `rewind list` sees them without device-mapper: each store's header read from disk.
    let views = rewind::flow::sets::views(&s, None).expect("views");
    let mut names: Vec<&str> = views.iter().map(|v| v.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["gone", "new", "old"]);

    let text = rewind::flow::bootmenu::render(&views);
    let path = lab.dir.path().join("rewind.cfg");
    rewind::system::bootfile::replace(&path, &text, None).expect("write");
    let out = std::process::Command::new("grub-script-check")
        .arg(&path)
        .output()
        .expect("grub-script-check (grub-common, tests/deps.sh)");
    assert!(
        out.status.success(),
        "grub-script-check: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Exactly the sets rewind list shows, each once.
    let mut ids: Vec<String> = text
        .lines()
        .filter_map(|l| l.split(" --id 'rewind-").nth(1))
        .map(|r| r.trim_end_matches("' {").to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, ["gone", "new", "old"]);
    for v in &views {
        let boots = text.contains(&format!("\trewind_boot '{}'\n", v.name));
        assert_eq!(boots, v.usable(), "{}: {:?}", v.name, v.state);
    }
    assert!(!text.contains("rewind_boot 'gone'"), "{text}");
    assert!(
        text.contains("gone  before the upgrade  (NOT BOOTABLE, lost"),
        "{text}"
    );

    // The same check in the writer: a file GRUB would reject never replaces the menu.
    let checker = rewind::system::bootfile::script_checker().expect("grub-script-check");
    rewind::system::bootfile::replace(&path, &text, Some(&checker)).expect("accepted");
    let e = rewind::system::bootfile::replace(&path, "menuentry 'x' {\n", Some(&checker))
        .expect_err("an unclosed entry");
    assert!(e.to_string().contains("rejects"), "{e}");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), text);
}

/// `rewind rollback SET --next-boot`: GRUB's one-shot next_entry names the set's entry in the
/// submenu (read back with GRUB's own grub-editenv); a lost set, an unknown one, or a grub.cfg
/// without 42_rewind's submenu is refused with the environment block unchanged.
#[test]
fn loop_next_boot_sets_grubs_one_shot_entry() {
    require_host!("loop_next_boot_sets_grubs_one_shot_entry");
    let lab = lab("snext");
    let mut dm = lab.active_fake();
    lab.take(&mut dm, "pre").expect("pre");
    lab.take(&mut dm, "gone").expect("gone");
    overflow(&lab, &lab.disks[0], &lab.vga, "root.gone");
    let only = lab.only();
    let s = scan(Path::new("/"), &only).expect("scan");
    let views = rewind::flow::sets::views(&s, None).expect("views");

    let grub = lab.dir.path().join("grub");
    std::fs::create_dir_all(&grub).expect("mkdir");
    let env = grub.join("grubenv");
    let editenv = |args: &[&str]| {
        let out = std::process::Command::new("grub-editenv")
            .arg(&env)
            .args(args)
            .output()
            .expect("grub-editenv (grub-common, tests/deps.sh)");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    editenv(&["create"]);
    let next = |dir: &Path, name: &str| {
        rewind::flow::bootmenu::next_boot_in(&views, &Default::default(), dir, None, name)
    };

    // No submenu in grub.cfg yet: refused, nothing set.
    std::fs::write(grub.join("grub.cfg"), "menuentry 'Debian' { true }\n").expect("cfg");
    let e = next(&grub, "pre").expect_err("no submenu").to_string();
    assert!(e.contains("update-grub"), "{e}");
    assert_eq!(editenv(&["list"]), "");

    std::fs::write(
        grub.join("grub.cfg"),
        "submenu 'Roll back with rewind' --id rewind {\n\tsource \"${prefix}/rewind.cfg\"\n}\n",
    )
    .expect("cfg");
    let e = next(&grub, "gone").expect_err("lost").to_string();
    assert!(e.contains("lost") && e.contains("nothing changed"), "{e}");
    let e = next(&grub, "nosuch").expect_err("unknown").to_string();
    assert!(e.contains("no snapshot set nosuch"), "{e}");
    assert_eq!(editenv(&["list"]), "");

    let entry = next(&grub, "pre").expect("next boot");
    assert_eq!(entry, "rewind>rewind-pre");
    assert_eq!(editenv(&["list"]), "next_entry=rewind>rewind-pre\n");
    // The entry it names is in the menu file, booting the set.
    let menu = std::fs::read_to_string(grub.join("rewind.cfg")).expect("menu");
    assert!(
        menu.contains("--id 'rewind-pre' {\n\trewind_boot 'pre'\n}"),
        "{menu}"
    );
    assert_eq!(std::fs::metadata(&env).expect("grubenv").len(), 1024);
}

// ---------------------------------------------------------------------------------------------
// Thin members (docs/THIN.md, issue 19).

/// The thin pool `pool` (16 MiB of data, transaction 1) with the thin LV `thin` (device 1)
/// added to vgb, as host_thin's lab does it: the pool's parts made by stock lvcreate under
/// other names, renamed and turned into a pool in the text, restored with `--force` (stock
/// LVM cannot make a pool without device-mapper).
fn add_thin_pool(lab: &Lab) {
    let vg = &lab.vgb;
    for (lv, size) in [("tm", "4m"), ("td", "16m"), ("sp", "4m")] {
        lab.lvm.ok(&[
            "lvcreate", "-qq", "-an", "-Zn", "-Wn", "-L", size, "-n", lv, vg,
        ]);
    }
    let file = lab.dir.path().join("thin-backup");
    let path = file.to_str().expect("utf8");
    lab.lvm.ok(&["vgcfgbackup", "-q", "-f", path, vg]);
    let text = std::fs::read(&file).expect("backup");
    let mut tree = rewind::lvm::text::parse(&text).expect("parse");
    let lvs = common::lvs_section(&mut tree);
    for (old, new) in [
        ("tm", "pool_tmeta"),
        ("td", "pool_tdata"),
        ("sp", "lvol0_pmspare"),
    ] {
        assert!(lvs.rename(old, new), "{old}");
        if let Some(rewind::lvm::text::Node::Section(s)) = lvs
            .entries
            .iter_mut()
            .find(|e| e.key == new)
            .map(|e| &mut e.node)
        {
            s.set(
                "status",
                rewind::lvm::text::Value::str_array(&["READ", "WRITE"]),
            );
        }
    }
    let added = "pool {\nid = \"P00lAA-aaaa-bbbb-cccc-dddd-eeee-ffff00\"\n\
        status = [\"READ\", \"WRITE\", \"VISIBLE\"]\nflags = []\ncreation_time = 1700000000\n\
        creation_host = \"host\"\nsegment_count = 1\nsegment1 {\nstart_extent = 0\n\
        extent_count = 16\ntype = \"thin-pool\"\nmetadata = \"pool_tmeta\"\npool = \"pool_tdata\"\n\
        transaction_id = 1\nchunk_size = 128\ndiscards = \"passdown\"\nzero_new_blocks = 1\n}\n}\n\
        thin {\nid = \"Th1nAA-aaaa-bbbb-cccc-dddd-eeee-ffff00\"\n\
        status = [\"READ\", \"WRITE\", \"VISIBLE\"]\nflags = []\ncreation_time = 1700000000\n\
        creation_host = \"host\"\nsegment_count = 1\nsegment1 {\nstart_extent = 0\n\
        extent_count = 8\ntype = \"thin\"\nthin_pool = \"pool\"\ntransaction_id = 0\n\
        device_id = 1\n}\n}\n";
    lvs.entries.extend(
        rewind::lvm::text::parse(added.as_bytes())
            .expect("thin text")
            .entries,
    );
    // LVM writes visible LVs first.
    let (visible, hidden): (Vec<_>, Vec<_>) = lvs.entries.drain(..).partition(|e| {
        !matches!(
            e.key.as_str(),
            "pool_tmeta" | "pool_tdata" | "lvol0_pmspare"
        )
    });
    lvs.entries.extend(visible);
    lvs.entries.extend(hidden);
    std::fs::write(
        &file,
        rewind::lvm::text::print(&tree, rewind::lvm::text::Style::Backup),
    )
    .expect("write");
    lab.lvm
        .ok(&["vgcfgrestore", "-q", "--force", "-f", path, vg]);
    lab.lvm.clean(&["vgck", vg]);
}

const POOL_OK: &str = "1 12/1024 40/256 - rw discard_passdown queue_if_no_space - 256";

/// active_fake plus vgb/thin active (its pool's parts, `-tpool`, the thin device) on a pool
/// at transaction 1 holding device 1, with `status`.
fn thin_fake(lab: &Lab, status: &str) -> FakeDm {
    let mut dm = lab.active_fake();
    let tpool = format!("{}-pool-tpool", lab.vgb);
    dm.set_pool_status(&tpool, status);
    dm.set_pool_devices(&tpool, &[1]);
    let only = lab.only();
    let s = scan(Path::new("/"), &only).expect("scan");
    let found = s.assembly.vgs_named(&lab.vgb).next().expect("vg");
    let pvs = s.pv_numbers(found);
    let layout = VgLayout {
        vg: found.model.as_ref().expect("model"),
        pv_dev: &pvs,
    };
    let devices = layout.activation("thin").expect("layout");
    let steps = converge(&devices, &live(&mut dm).expect("live")).expect("steps");
    execute(&mut dm, &steps).expect("activate");
    dm.clear_calls();
    dm
}

fn thin_request(lab: &Lab, name: &str) -> Request {
    Request {
        members: vec![
            format!("{}/root", lab.vga),
            format!("{}/thin", lab.vgb),
            format!("{}/data", lab.vgb),
        ],
        ..lab.request(name)
    }
}

/// Stock lvs of vgb's thin LVs: name, attr, origin, pool, thin id, pool transaction id,
/// activation skip.
fn thin_lvs(lab: &Lab) -> Vec<String> {
    let out = lab.lvm.ok(&[
        "lvs",
        "-a",
        "--noheadings",
        "--separator",
        ",",
        "-o",
        "lv_name,lv_attr,origin,pool_lv,thin_id,transaction_id,skip_activation",
        &lab.vgb,
    ]);
    let mut v: Vec<String> = out
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| l.starts_with("thin") || l.starts_with("pool,"))
        .collect();
    v.sort();
    v
}

#[test]
fn loop_a_mixed_set_takes_thin_snapshots_as_lvcreate_s_in_the_one_window() {
    require_host!("loop_a_mixed_set_takes_thin_snapshots_as_lvcreate_s_in_the_one_window");
    let lab = lab("sthin");
    add_thin_pool(&lab);
    let before = thin_lvs(&lab);
    assert_eq!(
        before,
        ["pool,twi-XXtz--,,,,1,", "thin,Vwi-XXtz--,,pool,1,0,"]
    );
    let mut dm = thin_fake(&lab, POOL_OK);
    let only = lab.only();
    let env = lab.env(&only);
    let mut tools = lab.tools(&mut dm, FakeWindow::default());
    let taken = take(
        &env,
        &mut tools,
        &SnapshotConfig::default(),
        &thin_request(&lab, "pre"),
    )
    .expect("take");
    drop(tools);
    assert_eq!(taken.members.len(), 3);
    lab.clean();
    // Stock LVM reads the thin snapshot back as lvcreate -s leaves one: a thin volume of the
    // pool whose origin is thin, the next device id (2), the segment's transaction id the
    // pool's before (1), activation skipped (k, "skip activation"); the pool one transaction
    // on. (X: activation disabled in this metadata-only lab.)
    let got = thin_lvs(&lab);
    assert_eq!(
        got,
        [
            "pool,twi-XXtz--,,,,2,",
            "thin,Vwi-XXtz--,,pool,1,0,",
            "thin.pre,Vwi-XXtz-k,thin,pool,2,1,skip activation",
        ]
    );
    // The classic members beside it, in both VGs.
    let b = lab.lvs(&lab.vgb);
    assert!(b.iter().any(|l| l.starts_with("data.pre,s,data,")), "{b:?}");
    let a = lab.lvs(&lab.vga);
    assert!(a.iter().any(|l| l.starts_with("root.pre,s,root,")), "{a:?}");
    // Its segment as _lv_create_an_lv writes it: transaction_id the pool's before.
    let file = lab.dir.path().join("after");
    lab.lvm.ok(&[
        "vgcfgbackup",
        "-q",
        "-f",
        file.to_str().expect("utf8"),
        &lab.vgb,
    ]);
    let vg = rewind::lvm::model::Vg::from_tree(
        &rewind::lvm::text::parse(&std::fs::read(&file).expect("read")).expect("parse"),
    )
    .expect("model");
    let snap = vg.lv("thin.pre").expect("thin.pre");
    assert!(snap.tags.iter().any(|t| t == "rewind_set_pre"));
    assert!(!snap.tags.iter().any(|t| t == "rewind_pending"), "complete");
    match &snap.segments[0].kind {
        rewind::lvm::model::SegmentKind::Thin {
            transaction_id,
            device_id,
            origin,
            ..
        } => assert_eq!(
            (*transaction_id, *device_id, origin.as_deref()),
            (1, 2, Some("thin"))
        ),
        k => panic!("{k:?}"),
    }
    // The kernel's side: the pool took create_snap 2 1 and the transaction id, inside the one
    // window with every origin (vgb-thin among them) suspended; the pool is at 2 and holds 2.
    let tpool = format!("{}-pool-tpool", lab.vgb);
    assert_eq!(dm.pool_devices(&tpool), Some(vec![1, 2]));
    let st = dm.status(&tpool).expect("status");
    assert!(st[0].params.starts_with("2 "), "{}", st[0].params);
    assert_eq!(lab.sets(), [("pre".to_owned(), State::Ok)]);
    // Rollback of the mixed set: refused, nothing flagged, while the thin member's pool is
    // one the flag could not be carried out on (needs_check; one transaction behind).
    let seqnos = (lab.lvm.seqno(&lab.vga), lab.lvm.seqno(&lab.vgb));
    for (status, why) in [
        (
            "2 12/1024 40/256 - rw discard_passdown queue_if_no_space needs_check 256",
            "needs_check",
        ),
        (
            "1 12/1024 40/256 - rw discard_passdown queue_if_no_space - 256",
            "one behind",
        ),
        ("Fail", "failed"),
    ] {
        dm.set_pool_status(&tpool, status);
        let e = rollback(&lab, &mut dm, "pre", None, None).expect_err("refused");
        assert!(e.contains("nothing flagged") && e.contains(why), "{e}");
        assert!(e.contains("thin.pre"), "{e}");
        assert_eq!(
            (lab.lvm.seqno(&lab.vga), lab.lvm.seqno(&lab.vgb)),
            seqnos,
            "{e}"
        );
        assert!(flagged(&lab).is_empty());
    }
    // The pool in step: every member flagged, one commit per VG; the thin member as stock
    // `lvconvert --merge` flags a thin snapshot of an open origin (stock lvs: the snapshot
    // hidden and merging `[thin.pre] Swi`, its origin `Owi`).
    dm.set_pool_status(
        &tpool,
        "2 12/1024 40/256 - rw discard_passdown queue_if_no_space - 256",
    );
    let done = rollback(&lab, &mut dm, "pre", None, None).expect("rollback");
    assert_eq!(done.flagged.len(), 3, "{done:?}");
    assert_eq!(
        (lab.lvm.seqno(&lab.vga), lab.lvm.seqno(&lab.vgb)),
        (seqnos.0 + 1, seqnos.1 + 1)
    );
    lab.clean();
    let mut want = vec![
        format!("{}/root.pre", lab.vga),
        format!("{}/data.pre", lab.vgb),
        format!("{}/thin.pre", lab.vgb),
    ];
    want.sort();
    assert_eq!(flagged(&lab), want);
    let attrs = lab.lvm.ok(&[
        "lvs",
        "-a",
        "--noheadings",
        "-o",
        "lv_name,lv_attr",
        &lab.vgb,
    ]);
    let attr = |name: &str| {
        attrs
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.first() == Some(&name))
            .and_then(|f| f.get(1).map(|a| a.to_string()))
            .unwrap_or_default()
    };
    assert!(attr("[thin.pre]").starts_with("Swi"), "{attrs}");
    assert!(attr("thin").starts_with("Owi"), "{attrs}");
    lab.lvm.ok(&[
        "vgcfgbackup",
        "-q",
        "-f",
        file.to_str().expect("utf8"),
        &lab.vgb,
    ]);
    let vg = rewind::lvm::model::Vg::from_tree(
        &rewind::lvm::text::parse(&std::fs::read(&file).expect("read")).expect("parse"),
    )
    .expect("model");
    let snap = vg.lv("thin.pre").expect("thin.pre");
    assert!(!snap.visible);
    assert!(snap.tags.iter().any(|t| t == "rewind_rollback"));
    assert_eq!(snap.thin().and_then(|t| t.merge), Some("thin"));
    // The pool and the kernel untouched by the flag (the merge is an activation's).
    assert_eq!(dm.pool_devices(&tpool), Some(vec![1, 2]));
    // A rerun flags nothing more.
    let again = rollback(&lab, &mut dm, "pre", None, None).expect("rerun");
    assert!(again.flagged.is_empty(), "{again:?}");
    assert_eq!(again.already.len(), 3, "{again:?}");
    assert_eq!(
        (lab.lvm.seqno(&lab.vga), lab.lvm.seqno(&lab.vgb)),
        (seqnos.0 + 1, seqnos.1 + 1)
    );
}

/// `rd.rewind=SET` at boot for a mixed set whose thin member is flagged already (by
/// `rd.rewind=VG/SNAP`, as stock `lvconvert --merge` flags it): the other members flagged,
/// every origin activated through its merge, a rerun writes nothing.
#[test]
fn loop_rd_rewind_of_a_mixed_set_flags_every_member() {
    require_host!("loop_rd_rewind_of_a_mixed_set_flags_every_member");
    let lab = lab("rthin");
    add_thin_pool(&lab);
    let mut dm = thin_fake(&lab, POOL_OK);
    {
        let only = lab.only();
        let env = lab.env(&only);
        let mut tools = lab.tools(&mut dm, FakeWindow::default());
        take(
            &env,
            &mut tools,
            &SnapshotConfig::default(),
            &thin_request(&lab, "pre"),
        )
        .expect("take");
    }
    lab.clean();
    let only = lab.only();
    let run = |c: &str| {
        let i = rewind::flow::early::Inputs {
            root: PathBuf::from("/"),
            cmdline: rewind::plan::cmdline::Cmdline::parse(c),
            config: rewind::config::Config::default(),
        };
        let scan = rewind::flow::early::scan_devices(&i, &only).expect("scan");
        let mut prep = rewind::flow::early::prepare(&i, scan);
        let mut out = rewind::flow::early::Outcome::default();
        rewind::flow::early::commit_flags(&mut prep, &mut out, true);
        (prep, out)
    };
    // The thin member flagged alone first (stock lvconvert --merge's flag, as rewind writes
    // it for rd.rewind=VG/SNAP).
    let seqnos = (lab.lvm.seqno(&lab.vga), lab.lvm.seqno(&lab.vgb));
    let (_, out) = run(&format!("rd.rewind={}/thin.pre", lab.vgb));
    assert_eq!(out.flags_committed, [format!("{}/thin.pre", lab.vgb)]);
    assert_eq!(lab.lvm.seqno(&lab.vgb), seqnos.1 + 1);
    // ... which is the set's own member: rd.rewind=pre takes it as flagged and flags the rest.
    let (prep, out) = run("rd.rewind=pre");
    let mut got = out.flags_committed.clone();
    got.sort();
    let mut want = vec![
        format!("{}/root.pre", lab.vga),
        format!("{}/data.pre", lab.vgb),
    ];
    want.sort();
    assert_eq!(got, want, "{:?}", prep.decision.notes);
    lab.clean();
    let mut all = want.clone();
    all.push(format!("{}/thin.pre", lab.vgb));
    all.sort();
    assert_eq!(flagged(&lab), all);
    for lv in ["root", "thin", "data"] {
        assert!(
            prep.decision
                .activate
                .iter()
                .any(|a| a.lv == lv && a.reason == rewind::plan::decide::Reason::Merge),
            "{lv}: {:?}",
            prep.decision.activate
        );
    }
    // Again: nothing more written.
    let seqnos = (lab.lvm.seqno(&lab.vga), lab.lvm.seqno(&lab.vgb));
    let (_, out) = run("rd.rewind=pre");
    assert!(out.flags_committed.is_empty(), "{:?}", out.notes);
    assert_eq!((lab.lvm.seqno(&lab.vga), lab.lvm.seqno(&lab.vgb)), seqnos);
}

#[test]
fn loop_a_thin_pool_too_full_refuses_the_set_with_nothing_changed() {
    require_host!("loop_a_thin_pool_too_full_refuses_the_set_with_nothing_changed");
    let lab = lab("sthinf");
    add_thin_pool(&lab);
    let before = (
        lab.lvs(&lab.vga),
        lab.lvs(&lab.vgb),
        lab.lvm.seqno(&lab.vga),
        lab.lvm.seqno(&lab.vgb),
    );
    // 256 data blocks, 210 used: 17% free, below the default 20%.
    let mut dm = thin_fake(
        &lab,
        "1 12/1024 210/256 - rw discard_passdown queue_if_no_space - 256",
    );
    let only = lab.only();
    let env = lab.env(&only);
    let mut tools = lab.tools(&mut dm, FakeWindow::default());
    let e = take(
        &env,
        &mut tools,
        &SnapshotConfig::default(),
        &thin_request(&lab, "full"),
    )
    .expect_err("refused")
    .to_string();
    drop(tools);
    assert!(
        e.contains("only 17% of its data is free (210/256 blocks used)")
            && e.contains(&format!("{}/thin", lab.vgb)),
        "{e}"
    );
    let after = (
        lab.lvs(&lab.vga),
        lab.lvs(&lab.vgb),
        lab.lvm.seqno(&lab.vga),
        lab.lvm.seqno(&lab.vgb),
    );
    assert_eq!(after, before, "no LV, tag or seqno changed");
    let tpool = format!("{}-pool-tpool", lab.vgb);
    assert_eq!(dm.pool_devices(&tpool), Some(vec![1]));
    assert!(
        !dm.calls()
            .iter()
            .any(|c| format!("{c:?}").contains("Suspend") || format!("{c:?}").contains("Message")),
        "{:?}",
        dm.calls()
    );
    // A pool one transaction behind its metadata (a message LVM never sent): refused too.
    let mut behind = thin_fake(
        &lab,
        "0 12/1024 40/256 - rw discard_passdown queue_if_no_space - 256",
    );
    let mut tools = lab.tools(&mut behind, FakeWindow::default());
    let e = take(
        &env,
        &mut tools,
        &SnapshotConfig::default(),
        &thin_request(&lab, "behind"),
    )
    .expect_err("refused")
    .to_string();
    drop(tools);
    assert!(
        e.contains("its transaction id is 0, the volume group metadata expects 1"),
        "{e}"
    );
    assert_eq!(
        (lab.lvm.seqno(&lab.vga), lab.lvm.seqno(&lab.vgb)),
        (before.2, before.3)
    );
    // With a lower threshold the same pool takes it.
    let mut tools = lab.tools(&mut dm, FakeWindow::default());
    let cfg = SnapshotConfig {
        thin_min_free_percent: 15,
        ..SnapshotConfig::default()
    };
    take(&env, &mut tools, &cfg, &thin_request(&lab, "ok")).expect("taken at 15%");
    drop(tools);
    lab.clean();
    assert_eq!(lab.sets(), [("ok".to_owned(), State::Ok)]);
}

#[test]
fn loop_a_thin_set_whose_window_fails_at_a_message_is_undone() {
    require_host!("loop_a_thin_set_whose_window_fails_at_a_message_is_undone");
    let lab = lab("sthinm");
    add_thin_pool(&lab);
    let before = (lab.lvs(&lab.vga), lab.lvs(&lab.vgb), thin_lvs(&lab));
    let mut dm = thin_fake(&lab, POOL_OK);
    let only = lab.only();
    let env = lab.env(&only);
    // The window's messages: 0 `create_snap 2 1`, 1 `set_transaction_id 1 2`. The second
    // fails: the pool holds the new device 2 but stays at transaction 1.
    let mut tools = lab.tools(
        &mut dm,
        FakeWindow {
            fail_message: Some(1),
            ..FakeWindow::default()
        },
    );
    let e = take(
        &env,
        &mut tools,
        &SnapshotConfig::default(),
        &thin_request(&lab, "cut"),
    )
    .expect_err("window failed")
    .to_string();
    drop(tools);
    assert!(e.contains("set_transaction_id 1 2"), "{e}");
    // Undone: the classic members by stock lvremove, the thin snapshot by rewind (the pool
    // told to delete device 2, its transaction id back to the kernel's 1).
    lab.clean();
    let after = (lab.lvs(&lab.vga), lab.lvs(&lab.vgb), thin_lvs(&lab));
    assert_eq!(after, before);
    let tpool = format!("{}-pool-tpool", lab.vgb);
    assert_eq!(dm.pool_devices(&tpool), Some(vec![1]));
    assert!(
        dm.status(&tpool).expect("status")[0]
            .params
            .starts_with("1 ")
    );
    assert!(lab.sets().is_empty());
    // And the next set is whole.
    let mut tools = lab.tools(&mut dm, FakeWindow::default());
    take(
        &env,
        &mut tools,
        &SnapshotConfig::default(),
        &thin_request(&lab, "next"),
    )
    .expect("next");
    drop(tools);
    lab.clean();
    assert_eq!(lab.sets(), [("next".to_owned(), State::Ok)]);
    assert_eq!(dm.pool_devices(&tpool), Some(vec![1, 2]));
}

/// `rewind snapshot` of a mixed set stopped (as if killed) at each point of its creation,
/// then run again: the cut set is gone (the thin snapshot undone by rewind when its pool never
/// took the messages) and the next one is whole, read back clean by stock vgck; the pool's
/// kernel transaction id and devices in step with the metadata at the end.
#[test]
fn loop_a_mixed_set_cut_short_anywhere_is_tidied_and_the_next_is_whole() {
    require_host!("loop_a_mixed_set_cut_short_anywhere_is_tidied_and_the_next_is_whole");
    // The pool's transaction id the next set starts from: 1 when the cut set's messages
    // never reached the pool (its commit undone), 3 when they did (create 1 -> 2, then the
    // removal's delete 2 -> 3). Device 2 is free again either way.
    for (point, n, from) in [
        ("snapshot-after-lvcreate", 1, 1),
        ("snapshot-after-lvcreate", 2, 1),
        ("snapshot-after-commit", 1, 1),
        ("snapshot-after-commit", 2, 1),
        ("snapshot-before-window", 1, 1),
        ("snapshot-after-window", 1, 3),
    ] {
        let lab = lab("sthinc");
        add_thin_pool(&lab);
        let mut dm = thin_fake(&lab, POOL_OK);
        let only = lab.only();
        let env = lab.env(&only);
        let mut tools = lab.tools(&mut dm, FakeWindow::default());
        tools.stop_at = Some((point.to_owned(), n));
        let e = take(
            &env,
            &mut tools,
            &SnapshotConfig::default(),
            &thin_request(&lab, "cut"),
        )
        .expect_err("stopped");
        drop(tools);
        assert!(e.to_string().contains("stopped at"), "{point} {n}: {e}");
        let mut tools = lab.tools(&mut dm, FakeWindow::default());
        take(
            &env,
            &mut tools,
            &SnapshotConfig::default(),
            &thin_request(&lab, "next"),
        )
        .unwrap_or_else(|e| panic!("{point} {n}: rerun: {e}"));
        drop(tools);
        lab.clean();
        assert_eq!(lab.sets(), [("next".to_owned(), State::Ok)], "{point} {n}");
        let tpool = format!("{}-pool-tpool", lab.vgb);
        let got = thin_lvs(&lab);
        let to = from + 1;
        assert!(
            got.iter()
                .any(|l| l.starts_with("pool,") && l.ends_with(&format!(",,,,{to},"))),
            "{point} {n}: {got:?}"
        );
        assert!(
            got.iter().any(
                |l| l.starts_with("thin.next,") && l.contains(&format!(",thin,pool,2,{from},"))
            ),
            "{point} {n}: {got:?}"
        );
        assert_eq!(got.len(), 3, "{point} {n}: nothing else: {got:?}");
        assert_eq!(dm.pool_devices(&tpool), Some(vec![1, 2]), "{point} {n}");
        let st = dm.status(&tpool).expect("status");
        assert!(
            st[0].params.starts_with(&format!("{to} ")),
            "{point} {n}: {}",
            st[0].params
        );
    }
}

/// `rewind rollback SET --keep-current=NAME` of a mixed set: NAME takes the current state of
/// every member first (a thin snapshot of the thin one, the next device id, in the one
/// window), then SET's members are flagged; stock LVM reads both back (NAME whole, SET's
/// members merging).
#[test]
fn loop_keep_current_of_a_mixed_set_keeps_the_thin_member_too() {
    require_host!("loop_keep_current_of_a_mixed_set_keeps_the_thin_member_too");
    let lab = lab("kthin");
    add_thin_pool(&lab);
    let mut dm = thin_fake(&lab, POOL_OK);
    {
        let only = lab.only();
        let env = lab.env(&only);
        let mut tools = lab.tools(&mut dm, FakeWindow::default());
        take(
            &env,
            &mut tools,
            &SnapshotConfig::default(),
            &thin_request(&lab, "pre"),
        )
        .expect("take");
    }
    let tpool = format!("{}-pool-tpool", lab.vgb);
    let r = rollback(&lab, &mut dm, "pre", Some(Some("now".into())), None).expect("rollback");
    assert_eq!(r.flagged.len(), 3, "{r:?}");
    assert_eq!(r.kept.as_ref().map(|k| k.members.len()), Some(3), "{r:?}");
    lab.clean();
    // The pool took create_snap 3 1 for thin.now: devices 1 (thin), 2 (thin.pre), 3.
    assert_eq!(dm.pool_devices(&tpool), Some(vec![1, 2, 3]));
    let got = thin_lvs(&lab);
    assert!(
        got.iter()
            .any(|l| l.starts_with("thin.now,Vwi-XXtz-k,thin,pool,3,2,")),
        "{got:?}"
    );
    assert!(
        got.iter().any(|l| l.starts_with("pool,twi-XXtz--,,,,3,")),
        "{got:?}"
    );
    let mut want = vec![
        format!("{}/root.pre", lab.vga),
        format!("{}/data.pre", lab.vgb),
        format!("{}/thin.pre", lab.vgb),
    ];
    want.sort();
    assert_eq!(flagged(&lab), want);
    let sets = lab.sets();
    assert!(sets.contains(&("now".to_owned(), State::Ok)), "{sets:?}");
}
