//! The disks every case starts from, made by stock LVM2 in metadata-only mode on loop devices
//! (pvcreate, vgcreate, lvcreate -an -Zn -Wn, vgcfgrestore for snapshots), once per run, and
//! kept in memory.

use super::image::Disk;
use crate::common::{Loop, Lvm, add_snapshot};
use rewind::lvm::text::{Style, parse, print};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Size of every disk.
pub const DISK: u64 = 16 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tpl {
    /// One PV; LVs root (4 extents), pre (2), data (2, tagged); pre is a snapshot of root.
    Basic,
    /// As `Basic`, with the snapshot merging (what `lvconvert --merge` leaves).
    Merging,
    /// `Basic` made with `pvcreate --labelsector 0` / `3`.
    Label0,
    Label3,
    /// One PV with two metadata areas (`--pvmetadatacopies 2`); LV root.
    TwoMda,
    /// One PV with 32 KiB metadata areas and data at 64 KiB (a ring that wraps soon); LV root.
    SmallMda,
    /// One PV with a bootloader area (`--bootloaderareasize`); LV root.
    Boot,
    /// Two PVs; LV root spans both (20 extents), LV st is striped over both.
    TwoPv,
    /// Two PVs, the second without a metadata area; LV root spans both.
    NoMda,
    /// Two PVs, the second's metadata area ignored (`pvchange --metadataignore y`).
    Ignored,
    /// Two disks, each with its own VG of the same name (two separate vgcreates).
    Twin,
    /// Two disks with two different VGs (the second named "<vg>b").
    TwoVgs,
}

pub struct Template {
    pub vg: String,
    pub disks: Vec<Disk>,
}

fn vg_name(t: Tpl) -> String {
    let tag = format!("{t:?}").to_lowercase();
    format!("crp{}{tag}", std::process::id())
}

/// Templates are built on first use and shared by every case.
pub fn get(t: Tpl) -> Arc<Template> {
    static CACHE: OnceLock<Mutex<HashMap<Tpl, Arc<Template>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    // One build at a time: templates are few and fast, and the lock keeps this simple.
    let mut c = cache.lock().unwrap_or_else(|e| e.into_inner());
    c.entry(t).or_insert_with(|| Arc::new(build(t))).clone()
}

struct Lab {
    loops: Vec<Loop>,
    lvm: Lvm,
    dir: tempfile::TempDir,
}

impl Lab {
    fn new(n: usize) -> Lab {
        let loops: Vec<Loop> = (0..n).map(|_| Loop::new(DISK)).collect();
        Lab {
            lvm: Lvm::new(&loops),
            loops,
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn dev(&self, i: usize) -> &str {
        &self.loops[i].dev
    }

    fn ok(&self, args: &[&str]) {
        self.lvm.ok(args);
    }

    fn lv(&self, vg: &str, name: &str, extra: &[&str]) {
        let mut a = vec!["lvcreate", "-qq", "-an", "-Zn", "-Wn", "-n", name];
        a.extend_from_slice(extra);
        a.push(vg);
        self.ok(&a);
    }

    /// vgcfgbackup, edit the tree, vgcfgrestore.
    fn restore_edited(&self, vg: &str, f: impl FnOnce(&mut rewind::lvm::text::Section)) {
        let p = self.dir.path().join("backup");
        let ps = p.to_str().expect("utf8");
        self.ok(&["vgcfgbackup", "-qq", "-f", ps, vg]);
        let mut t = parse(&std::fs::read(&p).expect("backup")).expect("backup parses");
        f(&mut t);
        std::fs::write(&p, print(&t, Style::Backup)).expect("write");
        self.ok(&["vgcfgrestore", "-qq", "-f", ps, vg]);
    }

    fn images(self) -> Vec<Disk> {
        let Lab { loops, .. } = self;
        loops
            .iter()
            .map(|l| Disk {
                bytes: std::fs::read(&l.dev).expect("read loop device"),
            })
            .collect()
    }
}

fn build(t: Tpl) -> Template {
    let vg = vg_name(t);
    let v = vg.as_str();
    let basic = |lab: &Lab, merging: bool| {
        lab.ok(&["vgcreate", "-qq", "-s", "1M", v, lab.dev(0)]);
        lab.lv(v, "root", &["-l", "4"]);
        lab.lv(v, "pre", &["-l", "2"]);
        lab.lv(v, "data", &["-l", "2", "--addtag", "keep"]);
        lab.restore_edited(v, |t| add_snapshot(t, "root", "pre", 0, merging));
    };
    let lab = match t {
        Tpl::Basic | Tpl::Merging => {
            let lab = Lab::new(1);
            lab.ok(&["pvcreate", "-qq", lab.dev(0)]);
            basic(&lab, t == Tpl::Merging);
            lab
        }
        Tpl::Label0 | Tpl::Label3 => {
            let lab = Lab::new(1);
            let s = if t == Tpl::Label0 { "0" } else { "3" };
            lab.ok(&["pvcreate", "-qq", "--labelsector", s, lab.dev(0)]);
            basic(&lab, false);
            lab
        }
        Tpl::TwoMda | Tpl::SmallMda | Tpl::Boot => {
            let lab = Lab::new(1);
            let extra: &[&str] = match t {
                Tpl::TwoMda => &["--pvmetadatacopies", "2"],
                Tpl::SmallMda => &["--dataalignment", "64k", "--metadatasize", "32k"],
                _ => &["--bootloaderareasize", "256k"],
            };
            let mut a = vec!["pvcreate", "-qq"];
            a.extend_from_slice(extra);
            a.push(lab.dev(0));
            lab.ok(&a);
            lab.ok(&["vgcreate", "-qq", "-s", "1M", v, lab.dev(0)]);
            lab.lv(v, "root", &["-l", "4"]);
            lab
        }
        Tpl::TwoPv | Tpl::NoMda | Tpl::Ignored => {
            let lab = Lab::new(2);
            lab.ok(&["pvcreate", "-qq", lab.dev(0)]);
            if t == Tpl::NoMda {
                lab.ok(&["pvcreate", "-qq", "--pvmetadatacopies", "0", lab.dev(1)]);
            } else {
                lab.ok(&["pvcreate", "-qq", lab.dev(1)]);
            }
            lab.ok(&["vgcreate", "-qq", "-s", "1M", v, lab.dev(0), lab.dev(1)]);
            if t == Tpl::Ignored {
                lab.ok(&["pvchange", "-qq", "--metadataignore", "y", lab.dev(1)]);
            }
            if t == Tpl::TwoPv {
                lab.lv(v, "st", &["-l", "4", "-i", "2", "-I", "64k"]);
            }
            lab.lv(v, "root", &["-l", "20"]);
            lab
        }
        Tpl::Twin | Tpl::TwoVgs => {
            let lab = Lab::new(2);
            for i in 0..2 {
                let one = Lvm::for_devices(&[lab.dev(i)]);
                let name = if t == Tpl::TwoVgs && i == 1 {
                    format!("{v}b")
                } else {
                    v.to_owned()
                };
                one.ok(&["pvcreate", "-qq", lab.dev(i)]);
                one.ok(&["vgcreate", "-qq", "-s", "1M", &name, lab.dev(i)]);
                one.ok(&[
                    "lvcreate", "-qq", "-an", "-Zn", "-Wn", "-n", "root", "-l", "4", &name,
                ]);
            }
            lab
        }
    };
    Template {
        vg,
        disks: lab.images(),
    }
}
