//! Shared pieces of the host-tier tests: loop devices over sparse images and stock LVM2
//! restricted to them, in metadata-only mode (no device-mapper needed). Each test calls
//! `require_host!` first, which prints why it is skipped when not root or without lvm2.
#![allow(dead_code)]

use rewind::lvm::model::{Vg, vg_section};
use rewind::lvm::text::{Node, Section, Style, Value, parse, print};
use std::fs::File;
use std::process::{Command, Output};

/// Why the host tier cannot run here, if it cannot.
pub fn skip_reason() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root".into());
    }
    for tool in ["lvm", "losetup"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !found {
            return Some(format!("{tool} not installed"));
        }
    }
    None
}

#[macro_export]
macro_rules! require_host {
    ($name:expr) => {
        if let Some(why) = $crate::common::skip_reason() {
            eprintln!(
                "SKIPPED {}: {why} (host tier needs root, lvm2 and losetup)",
                $name
            );
            return;
        }
    };
}

/// A sparse image attached to a loop device; detached and deleted on drop.
pub struct Loop {
    pub dev: String,
    _dir: tempfile::TempDir,
}

impl Loop {
    pub fn new(size: u64) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let img = dir.path().join("disk.img");
        File::create(&img)
            .and_then(|f| f.set_len(size))
            .expect("sparse image");
        let out = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(&img)
            .output()
            .expect("losetup");
        assert!(
            out.status.success(),
            "losetup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self {
            dev: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            _dir: dir,
        }
    }
}

impl Loop {
    /// The backing image file.
    pub fn image(&self) -> std::path::PathBuf {
        self._dir.path().join("disk.img")
    }

    /// A second loop device over a byte-for-byte copy of this one's image: a cloned disk.
    pub fn clone_disk(&self) -> Loop {
        let copy = Loop::new(0);
        std::fs::copy(self.image(), copy.image()).expect("copy image");
        let out = Command::new("losetup")
            .args(["-c", &copy.dev])
            .output()
            .expect("losetup -c");
        assert!(out.status.success(), "losetup -c failed");
        copy
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

/// Stock LVM2 restricted to this test's loop devices, metadata only, no backups.
pub struct Lvm {
    config: String,
}

impl Lvm {
    pub fn new(loops: &[Loop]) -> Self {
        let devs: Vec<&str> = loops.iter().map(|l| l.dev.as_str()).collect();
        Self::for_devices(&devs)
    }

    pub fn for_devices(devs: &[&str]) -> Self {
        let accept: Vec<String> = devs.iter().map(|d| format!("\"a|^{d}$|\"")).collect();
        let config = format!(
            "global {{ activation = 0 }} backup {{ backup = 0 archive = 0 }} devices {{ \
             obtain_device_list_from_udev = 0 use_devicesfile = 0 global_filter = [ {}, \"r|.*|\" ] }}",
            accept.join(", ")
        );
        Self { config }
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("lvm")
            .args(args)
            .args(["--config", &self.config])
            .env("LVM_SUPPRESS_FD_WARNINGS", "1")
            .output()
            .expect("run lvm")
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "lvm {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run a checking command (vgck, pvck): success and no warning other than activation's.
    pub fn clean(&self, args: &[&str]) {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let noise: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.contains("Activation disabled") && !l.trim().is_empty())
            .collect();
        assert!(
            out.status.success()
                && noise
                    .iter()
                    .all(|l| !l.contains("WARNING") && !l.contains("rror")),
            "lvm {args:?} not clean: {stderr}{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    pub fn seqno(&self, vg: &str) -> u64 {
        self.ok(&["vgs", "--noheadings", "-o", "seqno", vg])
            .trim()
            .parse()
            .expect("seqno")
    }

    /// The committed text of the first mda as `pvck --dump metadata` prints it.
    pub fn pvck_text(&self, dev: &str) -> String {
        let out = self.ok(&["pvck", "--dump", "metadata", dev]);
        let body = out.split_once("  ---\n").expect("pvck header").1;
        body.rsplit_once("\n  ---")
            .expect("pvck trailer")
            .0
            .to_string()
    }
}

/// Writes a snapshot COW header (magic "SnAp", `valid`, persistent, chunk size 8 sectors) into
/// the first sector of `lv` ("VG/LV") on `disk`, found with stock LVM the way the kernel's
/// device would map it: the PV's `pe_start` plus the LV's first extent times the extent size.
pub fn write_cow_header(disk: &Loop, lvm: &Lvm, lv: &str, valid: u32) {
    use std::io::{Seek, SeekFrom, Write};
    let field = |cmd: &str, fields: &str, of: &str| -> String {
        let args = [
            cmd,
            "--noheadings",
            "--units",
            "b",
            "--nosuffix",
            "-o",
            fields,
            of,
        ];
        lvm.ok(&args).trim().to_owned()
    };
    let bytes = |s: String| -> u64 { s.parse().expect("a number of bytes") };
    // "/dev/loopN:FIRST-LAST": the LV's one segment.
    let ranges = field("lvs", "seg_pe_ranges,vg_extent_size", lv);
    let (ranges, extent) = ranges.split_once(char::is_whitespace).expect("two fields");
    let first: u64 = ranges
        .rsplit(':')
        .next()
        .and_then(|r| r.split('-').next())
        .and_then(|n| n.parse().ok())
        .expect("pe range");
    let pe_start = bytes(field("pvs", "pe_start", &disk.dev));
    let extent = bytes(extent.trim().to_owned());
    let mut header = Vec::new();
    for x in [0x7041_6e53u32, valid, 1, 8] {
        header.extend_from_slice(&x.to_le_bytes());
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&disk.dev)
        .expect("open");
    f.seek(SeekFrom::Start(pe_start + first * extent))
        .expect("seek");
    f.write_all(&header).expect("write");
    f.sync_all().expect("sync");
}

pub fn lvs_section(t: &mut Section) -> &mut Section {
    let name = vg_section(t).expect("vg").0.to_owned();
    t.section_mut(&name)
        .and_then(|v| v.section_mut("logical_volumes"))
        .expect("logical_volumes")
}

/// Makes `cow` a snapshot of `origin` in the text, as `lvcreate -s` would: the COW loses
/// VISIBLE and a `snapshotN` LV ties the two.
pub fn add_snapshot(t: &mut Section, origin: &str, cow: &str, n: usize, merging: bool) {
    let vg = Vg::from_tree(t).expect("vg");
    let extents = vg.lv(origin).expect("origin").extent_count();
    let lvs = lvs_section(t);
    if let Some(Node::Value(Value::Array(st))) =
        lvs.section_mut(cow).expect("cow").get_mut("status")
    {
        st.retain(|v| v.as_str() != Some("VISIBLE"));
    }
    let store = if merging {
        "merging_store"
    } else {
        "cow_store"
    };
    let status: &[&str] = if merging {
        &["READ", "WRITE"]
    } else {
        &["READ", "WRITE", "VISIBLE"]
    };
    let text = format!(
        "snapshot{n} {{\nid = \"Snap{n:02}-aaaa-bbbb-cccc-dddd-eeee-ffff{n:02}\"\nstatus = {}\nflags = []\n\
         creation_time = 1700000000\ncreation_host = \"host\"\nsegment_count = 1\nsegment1 {{\n\
         start_extent = 0\nextent_count = {extents}\ntype = \"snapshot\"\nchunk_size = 8\n\
         origin = \"{origin}\"\n{store} = \"{cow}\"\n}}\n}}\n",
        print_value(&Value::str_array(status))
    );
    let sec = parse(text.as_bytes()).expect("snapshot text");
    lvs.entries.extend(sec.entries);
}

pub fn print_value(v: &Value) -> String {
    let mut t = Section::default();
    t.set("x", v.clone());
    print(&t, Style::Disk)
        .trim_start_matches("x = ")
        .trim_end()
        .to_owned()
}
