//! Host tier: rewind's device selection (`lvm::devsel`) against stock LVM2 on loop devices.
//! For each lvm.conf (filters, devices file), stock `pvs` run with `LVM_SYSTEM_DIR` on the same
//! configuration must see exactly the loop devices rewind accepts.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{Loop, Lvm};
use rewind::config;
use rewind::system::devsel::Selected;
use rewind::system::{blockdev, scan};

const MIB: u64 = 1 << 20;

/// A root whose `sys` and `dev` are the real ones and whose `etc/lvm` is the test's.
struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    fn new() -> Root {
        let dir = tempfile::tempdir().expect("tempdir");
        symlink("/sys", dir.path().join("sys")).expect("sys link");
        symlink("/dev", dir.path().join("dev")).expect("dev link");
        fs::create_dir_all(dir.path().join("etc/lvm")).expect("etc/lvm");
        Root { dir }
    }

    fn etc(&self) -> PathBuf {
        self.dir.path().join("etc/lvm")
    }

    fn lvm_conf(&self, devices: &str) {
        let text = format!(
            "global {{ activation = 0 }}\nbackup {{ backup = 0 archive = 0 }}\n\
             devices {{\n obtain_device_list_from_udev = 0\n{devices}\n}}\n"
        );
        fs::write(self.etc().join("lvm.conf"), text).expect("lvm.conf");
    }

    /// Stock LVM with this root's configuration.
    fn lvm(&self, args: &[&str]) -> Output {
        Command::new("lvm")
            .args(args)
            .env("LVM_SYSTEM_DIR", self.etc())
            .env("LVM_SUPPRESS_FD_WARNINGS", "1")
            .output()
            .expect("run lvm")
    }

    /// The kernel names of the loop devices among `loops` that stock `pvs` shows.
    fn stock(&self, loops: &[Loop]) -> Result<BTreeSet<String>, String> {
        let out = self.lvm(&["pvs", "--noheadings", "-o", "pv_name"]);
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let shown: BTreeSet<PathBuf> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| fs::canonicalize(l.trim()).ok())
            .collect();
        Ok(loops
            .iter()
            .filter(|l| shown.contains(Path::new(&l.dev)))
            .map(|l| kernel_name(&l.dev))
            .collect())
    }

    fn rewind(&self, loops: &[Loop]) -> Result<BTreeSet<String>, String> {
        let sel =
            Selected::load(self.dir.path(), &config::Scan::default()).map_err(|e| e.to_string())?;
        let listed = blockdev::list(self.dir.path()).expect("list");
        Ok(loops
            .iter()
            .map(|l| kernel_name(&l.dev))
            .filter(|n| {
                let d = listed.iter().find(|d| &d.name == n).expect("listed");
                sel.check(d).is_ok()
            })
            .collect())
    }

    fn same(&self, loops: &[Loop], what: &str) -> BTreeSet<String> {
        let stock = self
            .stock(loops)
            .unwrap_or_else(|e| panic!("{what}: pvs failed: {e}"));
        let ours = self
            .rewind(loops)
            .unwrap_or_else(|e| panic!("{what}: selection failed: {e}"));
        assert_eq!(ours, stock, "{what}: rewind vs stock pvs");
        ours
    }
}

fn kernel_name(dev: &str) -> String {
    dev.trim_start_matches("/dev/").to_owned()
}

fn three_pvs() -> Vec<Loop> {
    let loops: Vec<Loop> = (0..3).map(|_| Loop::new(8 * MIB)).collect();
    let lvm = Lvm::new(&loops);
    for l in &loops {
        lvm.ok(&["pvcreate", "-qq", &l.dev]);
    }
    loops
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|d| kernel_name(d)).collect()
}

/// A directory of extra symlinks under /dev (a second alias for a loop device), removed on
/// drop.
struct DevLinks(PathBuf);

impl DevLinks {
    fn new(links: &[(&str, &str)]) -> DevLinks {
        let dir = PathBuf::from(format!("/dev/rewind-devsel-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("mkdir under /dev");
        for (name, target) in links {
            symlink(target, dir.join(name)).expect("link under /dev");
        }
        DevLinks(dir)
    }
}

impl Drop for DevLinks {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn loop_filters_select_what_stock_lvm_sees() {
    require_host!("loop_filters_select_what_stock_lvm_sees");
    let loops = three_pvs();
    let (a, b, c) = (&loops[0].dev, &loops[1].dev, &loops[2].dev);
    let links = DevLinks::new(&[("second", &format!("..{}", &b[4..]))]);
    let alias = format!("{}/second", links.0.display());
    let root = Root::new();
    let cases: Vec<(String, BTreeSet<String>)> = vec![
        ("use_devicesfile = 0".into(), set(&[a, b, c])),
        (
            format!("use_devicesfile = 0 filter = [ \"r|^{a}$|\" ]"),
            set(&[b, c]),
        ),
        (
            format!("use_devicesfile = 0 global_filter = [ \"a|^{b}$|\", \"r|.*|\" ]"),
            set(&[b]),
        ),
        (
            format!(
                "use_devicesfile = 0 filter = [ \"a(^{c}$)\", \"a[^{a}$]\", \"a{{^{b}$}}\", \"r#.*#\" ]"
            ),
            set(&[a, b, c]),
        ),
        (
            format!("use_devicesfile = 0 filter = [ \"a(^{c}$)\", \"r{{.*}}\" ]"),
            set(&[c]),
        ),
        (
            format!(
                "use_devicesfile = 0 global_filter = [ \"r|^{a}$|\" ] filter = [ \"r|^{b}$|\" ]"
            ),
            set(&[c]),
        ),
        // LVM's `.` also matches the end of the name: "^A." rejects A itself.
        (
            format!("use_devicesfile = 0 filter = [ \"r|^{a}.|\" ]"),
            set(&[b, c]),
        ),
        // Accepted by a second name (a symlink) although the node name is rejected.
        (
            format!("use_devicesfile = 0 filter = [ \"a|^{alias}$|\", \"r|.*|\" ]"),
            set(&[b]),
        ),
        // Rejected by the second name, accepted by none.
        (
            format!("use_devicesfile = 0 filter = [ \"r|{alias}|\" ]"),
            set(&[a, c]),
        ),
    ];
    for (devices, want) in cases {
        root.lvm_conf(&devices);
        let got = root.same(&loops, &devices);
        assert_eq!(got, want, "{devices}");
    }
}

#[test]
fn loop_bad_patterns_fail_both() {
    require_host!("loop_bad_patterns_fail_both");
    let loops = three_pvs();
    let root = Root::new();
    for devices in [
        "use_devicesfile = 0 filter = [ \"a|(|\" ]",
        "use_devicesfile = 0 global_filter = [ \"x|a|\" ]",
        "use_devicesfile = 0 filter = [ \"a|b\" ]",
    ] {
        root.lvm_conf(devices);
        assert!(
            root.stock(&loops).is_err(),
            "{devices}: stock pvs accepted it"
        );
        let e = root.rewind(&loops).expect_err(devices);
        assert!(e.contains("pattern"), "{devices}: {e}");
    }
}

#[test]
fn loop_devices_file_made_by_lvmdevices() {
    require_host!("loop_devices_file_made_by_lvmdevices");
    let loops = three_pvs();
    let (a, b, c) = (&loops[0].dev, &loops[1].dev, &loops[2].dev);
    let root = Root::new();
    root.lvm_conf("use_devicesfile = 1");
    for dev in [a, c] {
        let out = root.lvm(&["lvmdevices", "-y", "--adddev", dev]);
        assert!(
            out.status.success(),
            "lvmdevices --adddev {dev}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let file = root.etc().join("devices/system.devices");
    let text = fs::read_to_string(&file).expect("system.devices");
    assert!(text.contains("IDTYPE=loop_file"), "{text}");
    assert_eq!(root.same(&loops, "use_devicesfile = 1"), set(&[a, c]));

    // Filters are ignored by LVM with the devices file on; rewind does the same.
    root.lvm_conf(&format!("use_devicesfile = 1 filter = [ \"r|^{a}$|\" ]"));
    assert_eq!(
        root.same(&loops, "use_devicesfile = 1 + filter"),
        set(&[a, c])
    );

    // A devname entry.
    root.lvm_conf("use_devicesfile = 1");
    let out = root.lvm(&[
        "lvmdevices",
        "-y",
        "--adddev",
        b,
        "--deviceidtype",
        "devname",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = fs::read_to_string(&file).expect("system.devices");
    assert!(
        text.contains(&format!("IDTYPE=devname IDNAME={b} ")),
        "{text}"
    );
    assert_eq!(root.same(&loops, "devname entry"), set(&[a, b, c]));
    let out = root.lvm(&["lvmdevices", "-y", "--deldev", b]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(root.same(&loops, "devname entry removed"), set(&[a, c]));
    let text = fs::read_to_string(&file).expect("system.devices");

    // Not set: rewind uses the file when it exists, so it never sees more than LVM.
    root.lvm_conf("");
    let stock = root.stock(&loops).expect("pvs");
    let ours = root.rewind(&loops).expect("selection");
    assert_eq!(ours, set(&[a, c]));
    assert!(ours.is_subset(&stock), "{ours:?} vs {stock:?}");

    // A device whose PV uuid is not the one its entry names is not read.
    root.lvm_conf("use_devicesfile = 1");
    let pvid = |dev: &str| {
        text.lines()
            .find(|l| l.contains(&format!("DEVNAME={dev} ")))
            .and_then(|l| l.split_whitespace().find_map(|f| f.strip_prefix("PVID=")))
            .expect("pvid")
            .to_owned()
    };
    let (pa, pc) = (pvid(a), pvid(c));
    let swapped = text
        .replace(&pa, "@A@")
        .replace(&pc, &pa)
        .replace("@A@", &pc);
    fs::write(&file, swapped).expect("write");
    let sel = Selected::load(root.dir.path(), &config::Scan::default()).expect("selection");
    let found = scan::scan_selected(&sel, &|_| Ok(()));
    let pv_names: Vec<&str> = found.pvs.iter().map(|p| p.device.as_str()).collect();
    for dev in [a, c] {
        let node = root.dir.path().join(&dev[1..]).display().to_string();
        assert!(
            !pv_names.contains(&node.as_str()),
            "{dev} read: {pv_names:?}"
        );
        let why = found
            .skipped
            .iter()
            .find(|(p, _)| p == &node)
            .map(|(_, w)| w.as_str())
            .unwrap_or_default();
        assert!(why.contains("devices file"), "{dev}: {why}");
    }
}

#[test]
fn loop_the_installed_lvm_conf_is_read() {
    require_host!("loop_the_installed_lvm_conf_is_read");
    // The distribution's own lvm.conf and lvmlocal.conf (comments, every section) must parse,
    // or rewind would read no device on a stock system.
    let root = Root::new();
    for f in ["lvm.conf", "lvmlocal.conf"] {
        let src = Path::new("/etc/lvm").join(f);
        if src.exists() {
            fs::copy(&src, root.etc().join(f)).expect("copy");
        }
    }
    let sel = Selected::load(root.dir.path(), &config::Scan::default())
        .unwrap_or_else(|e| panic!("installed lvm config: {e}"));
    assert!(!sel.summary.is_empty());
}
