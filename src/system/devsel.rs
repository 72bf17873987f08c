//! Reads what `lvm::devsel` decides over, all under an injectable root: lvm.conf,
//! lvmlocal.conf and the devices file (`ROOT/etc/lvm`), each block device's ids in sysfs
//! (`ROOT/sys`) and its other names under `ROOT/dev`. The rules are `lvm::devsel`'s.

use crate::lvm::devsel::{
    Accepted, DeviceFacts, DevicesFile, DevselError, Kind, LvmConf, MAX_FILE_BYTES, Rules,
    Selection, Settings, dm_uuid_has_prefix,
};
use crate::lvm::lvmrules::SystemIds;
use crate::plan::thincheck::ThinCheck;
use crate::system::blockdev::{self, BlockDevice, SysDir};
use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Deepest directory level under `/dev` that is searched for aliases.
pub const MAX_DEV_DEPTH: usize = 8;
/// Most entries under `/dev` looked at when searching for aliases.
pub const MAX_DEV_ENTRIES: usize = 100_000;

/// Directories under `/dev` LVM never scans (`dev-cache.c`, `_no_scan`).
const NO_SCAN: [&str; 9] = [
    "bsg", "bus", "char", "cpu", "dma_heap", "dri", "input", "snd", "usb",
];

/// The selection and the block devices it was made over, so a scan reads the same list
/// instead of listing sysfs again. Derefs to the [`Selection`].
#[derive(Debug, Clone)]
pub struct Selected {
    pub selection: Selection,
    pub devices: Vec<BlockDevice>,
    /// This host's system IDs by LVM's configuration (VGs of other hosts are refused).
    pub system_ids: SystemIds,
    /// The thin pool check as LVM's configuration sets it (LVM's defaults when it is not
    /// followed).
    pub thin_check: ThinCheck,
}

impl std::ops::Deref for Selected {
    type Target = Selection;

    fn deref(&self) -> &Selection {
        &self.selection
    }
}

impl Selected {
    /// Reads the configuration under `root` and the facts of every block device, and
    /// decides.
    pub fn load(root: &Path, settings: &Settings) -> Result<Selected, DevselError> {
        let rules = load_rules(root, settings)?;
        let listed = blockdev::list(root).map_err(|source| DevselError::Read {
            path: root.join("sys/class/block").display().to_string(),
            source,
        })?;
        let facts = gather_facts(
            root,
            &listed,
            rules.devices_file.is_some() && rules.use_lvm,
            rules.uses_aliases(),
        );
        let selection = Selection::decide(&rules, &facts);
        log::info!("devices read: {}", selection.summary);
        let thin_check = if rules.use_lvm {
            ThinCheck::from_settings(
                rules.conf.thin_check_executable.as_deref(),
                rules.conf.thin_check_options.as_deref(),
            )
        } else {
            ThinCheck::default()
        };
        Ok(Selected {
            selection,
            devices: listed,
            system_ids: host_system_ids(root, &rules),
            thin_check,
        })
    }

    /// The decision for `dev`, with the reason when it may not be read.
    pub fn decision(&self, dev: &BlockDevice) -> Result<&Accepted, String> {
        self.selection.decision(&dev.name, (dev.major, dev.minor))
    }

    /// Usable as a `scan::Selector`.
    pub fn check(&self, dev: &BlockDevice) -> Result<(), String> {
        self.decision(dev).map(|_| ())
    }

    /// The PV uuid the devices file expects on `dev`, if any.
    pub fn expected_pvid(&self, dev: &BlockDevice) -> Option<&str> {
        self.decision(dev).ok()?.pvid.as_deref()
    }
}

/// This host's system IDs from LVM's configuration under `root` (none when it is not
/// followed): the host name from `root/proc/sys/kernel/hostname` (what `uname` returns),
/// files under `root`.
fn host_system_ids(root: &Path, rules: &Rules) -> SystemIds {
    if !rules.use_lvm {
        return SystemIds::default();
    }
    let nodename = fs::read_to_string(root.join("proc/sys/kernel/hostname"))
        .ok()
        .map(|h| h.trim().to_owned());
    let read = |p: &str| {
        read_bounded(&root.join(p.trim_start_matches('/')))
            .ok()
            .flatten()
    };
    let ids = rules.conf.system_ids(nodename.as_deref(), &read);
    if ids.local.is_some() || !ids.extra.is_empty() {
        log::info!("lvm system id: {:?}, extra {:?}", ids.local, ids.extra);
    }
    ids
}

/// This host's system IDs (see [`Selected::system_ids`]) for reads made without a device
/// selection (`rewind inspect PATH...`); none when the configuration cannot be read.
pub fn system_ids(root: &Path, settings: &Settings) -> SystemIds {
    load_rules(root, settings)
        .map(|rules| host_system_ids(root, &rules))
        .unwrap_or_default()
}

fn read_bounded(path: &Path) -> Result<Option<Vec<u8>>, DevselError> {
    use std::io::Read;
    let shown = path.display().to_string();
    let read_err = |source| DevselError::Read {
        path: shown.clone(),
        source,
    };
    // One open, then the size of what was opened (no second walk of the path).
    let mut file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_err(e)),
    };
    let len = file.metadata().map_err(read_err)?.len();
    if len > MAX_FILE_BYTES {
        return Err(DevselError::TooLarge { path: shown });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.read_to_end(&mut bytes).map_err(read_err)?;
    Ok(Some(bytes))
}

/// Reads lvm.conf, lvmlocal.conf and the devices file under `root`.
pub fn load_rules(root: &Path, settings: &Settings) -> Result<Rules, DevselError> {
    if !settings.use_lvm_config {
        return Rules::without_lvm(&settings.devices);
    }
    let etc = root.join(settings.lvm_config_dir.trim_start_matches('/'));
    let mut conf = LvmConf::default();
    for file in ["lvm.conf", "lvmlocal.conf"] {
        let path = etc.join(file);
        let Some(bytes) = read_bounded(&path)? else {
            continue;
        };
        let tagfile = || {
            fs::read_dir(&etc).ok().and_then(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .find(|n| n.starts_with("lvm_") && n.ends_with(".conf"))
            })
        };
        conf.read(&bytes, &path.display().to_string(), tagfile)?;
    }
    let devices_file = match conf.devices_file_name() {
        None => None,
        Some(name) => {
            let path = etc.join("devices").join(name);
            read_bounded(&path)?.map(|bytes| {
                DevicesFile::parse(
                    path.display().to_string(),
                    &bytes,
                    conf.use_devicesfile == Some(true),
                )
            })
        }
    };
    Rules::from_lvm(conf, devices_file, &settings.devices)
}

/// One sysfs attribute read, trailing newline removed; `None` when absent or empty.
fn attr_text(read: io::Result<String>) -> Option<String> {
    let mut s = read.ok()?;
    while s.ends_with('\n') {
        s.pop();
    }
    (!s.is_empty()).then_some(s)
}

/// One sysfs attribute of a device directory (`None` also when the directory could not be
/// opened: the device went away).
fn sys_attr(dir: Option<&SysDir>, attr: &str) -> Option<String> {
    attr_text(dir?.read(attr))
}

/// One sysfs attribute by its path (a directory of which only this one is read).
fn sys_attr_path(dir: &Path, attr: &str) -> Option<String> {
    attr_text(blockdev::read_sysfs(&dir.join(attr)))
}

/// An attribute of the device or, failing that, of its whole device (`read_sys_block`).
fn sys_attr_or_primary(
    dir: Option<&SysDir>,
    primary: Option<&SysDir>,
    attr: &str,
) -> Option<String> {
    sys_attr(dir, attr).or_else(|| sys_attr(primary, attr))
}

/// The facts of every listed device; sysfs ids only when `ids` (a devices file is in use),
/// other names under `/dev` only when `aliases` (else just `/dev/NAME`).
pub fn gather_facts(
    root: &Path,
    devices: &[BlockDevice],
    ids: bool,
    aliases: bool,
) -> Vec<DeviceFacts> {
    let aliases = if aliases {
        find_aliases(root, devices)
    } else {
        devices
            .iter()
            .map(|d| vec![format!("/dev/{}", d.name)])
            .collect()
    };
    devices
        .iter()
        .zip(aliases)
        .map(|(d, aliases)| {
            let dir = root.join("sys/class/block").join(&d.name);
            let sysdir = SysDir::open(&dir).ok();
            let part = sys_attr(sysdir.as_ref(), "partition")
                .and_then(|p| p.trim().parse().ok())
                .unwrap_or(0);
            let primary = (part != 0)
                .then(|| fs::canonicalize(&dir).ok())
                .flatten()
                .and_then(|p| p.parent().and_then(|p| SysDir::open(p).ok()));
            let kind = if d.dm.is_some() {
                Kind::Dm
            } else if d.major == 9 {
                Kind::Md
            } else if d.major == 7 {
                Kind::Loop
            } else {
                Kind::Other
            };
            let mut f = DeviceFacts {
                name: d.name.clone(),
                devno: Some((d.major, d.minor)),
                aliases,
                kind: Some(kind),
                part,
                dm_name: d.dm.as_ref().map(|dm| dm.name.clone()),
                dm_uuid: d.dm.as_ref().map(|dm| dm.uuid.clone()),
                ..DeviceFacts::default()
            };
            // LVM looks at a partition's whole device (`_dev_is_mpath_component_sysfs`).
            f.component_of = sysdir
                .as_ref()
                .and_then(|d| component_of(root, d))
                .or_else(|| primary.as_ref().and_then(|p| component_of(root, p)));
            if ids {
                let (dir, p) = (sysdir.as_ref(), primary.as_ref());
                f.wwid = sys_attr_or_primary(dir, p, "device/wwid")
                    .or_else(|| sys_attr_or_primary(dir, p, "wwid"));
                f.serial = sys_attr_or_primary(dir, p, "device/serial").or_else(|| {
                    // Virtio disks (`/dev/vdX`) have `serial` on the block device itself.
                    let base: String = d
                        .name
                        .strip_prefix("vd")
                        .map(|_| d.name.chars().take_while(|c| !c.is_ascii_digit()).collect())?;
                    sys_attr_path(&root.join("sys/class/block").join(base), "serial")
                });
                f.loop_file = sys_attr_or_primary(dir, p, "loop/backing_file");
                f.md_uuid = sys_attr_or_primary(dir, p, "md/uuid");
            }
            f
        })
        .collect()
}

/// The multipath or md device holding the device whose sysfs directory is `dir`
/// (`filter-mpath.c` looks at the same `holders/`).
fn component_of(root: &Path, dir: &SysDir) -> Option<String> {
    let holders = dir.entries("holders", 64).ok()?;
    holders.into_iter().find_map(|name| {
        let class = root.join("sys/class/block").join(&name);
        if sys_attr_path(&class, "dm/uuid").is_some_and(|u| dm_uuid_has_prefix(&u, "mpath-")) {
            let dm = sys_attr_path(&class, "dm/name").unwrap_or_default();
            Some(format!("multipath device {name} ({dm})"))
        } else if name.starts_with("md") {
            Some(format!("md device {name}"))
        } else {
            None
        }
    })
}

/// For each device, `/dev/NAME` and every other path under `ROOT/dev` that resolves to it.
fn find_aliases(root: &Path, devices: &[BlockDevice]) -> Vec<Vec<String>> {
    let dev_dir = root.join("dev");
    let by_devno: HashMap<(u32, u32), usize> = devices
        .iter()
        .enumerate()
        .map(|(i, d)| ((d.major, d.minor), i))
        .collect();
    let by_path: HashMap<PathBuf, usize> = devices
        .iter()
        .enumerate()
        .filter_map(|(i, d)| Some((fs::canonicalize(&d.node).ok()?, i)))
        .collect();
    let mut out: Vec<Vec<String>> = devices
        .iter()
        .map(|d| vec![format!("/dev/{}", d.name)])
        .collect();
    let Ok(top) = fs::metadata(&dev_dir) else {
        return out;
    };
    let mut budget = MAX_DEV_ENTRIES;
    let mut stack = vec![(dev_dir.clone(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(rd) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in rd.flatten() {
            if budget == 0 {
                log::warn!(
                    "more than {MAX_DEV_ENTRIES} entries under {}; aliases may be missing",
                    dev_dir.display()
                );
                return out;
            }
            budget -= 1;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || (depth == 0 && NO_SCAN.contains(&name.as_ref())) {
                continue;
            }
            let path = entry.path();
            let Ok(meta) = fs::metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
                if !is_link && meta.dev() == top.dev() && depth + 1 < MAX_DEV_DEPTH {
                    stack.push((path, depth + 1));
                }
                continue;
            }
            let owner = if meta.file_type().is_block_device() {
                let rdev = meta.rdev();
                by_devno.get(&(libc_major(rdev), libc_minor(rdev))).copied()
            } else {
                fs::canonicalize(&path)
                    .ok()
                    .and_then(|p| by_path.get(&p).copied())
            };
            let Some(i) = owner else {
                continue;
            };
            let Ok(rel) = path.strip_prefix(&dev_dir) else {
                continue;
            };
            let alias = format!("/dev/{}", rel.to_string_lossy());
            if !out[i].contains(&alias) {
                out[i].push(alias);
            }
        }
    }
    for a in &mut out {
        a[1..].sort();
    }
    out
}

/// `major(3)` and `minor(3)` of a Linux `dev_t`.
fn libc_major(dev: u64) -> u32 {
    (((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0xfff)) as u32
}

fn libc_minor(dev: u64) -> u32 {
    (((dev >> 12) & 0xffff_ff00) | (dev & 0xff)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    // --- fake roots -------------------------------------------------------------------------

    struct Root(tempfile::TempDir);

    impl Root {
        fn new() -> Root {
            Root(tempfile::tempdir().expect("tempdir"))
        }
        fn p(&self) -> &Path {
            self.0.path()
        }
        fn write(&self, rel: &str, text: &str) {
            let path = self.p().join(rel);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(path, text).expect("write");
        }
        /// A whole device in sysfs (`sys/block/NAME`, linked from `sys/class/block`) with a
        /// stand-in node `dev/NAME`.
        fn disk(&self, name: &str, devno: &str, attrs: &[(&str, &str)]) {
            self.sysfs(&format!("sys/block/{name}"), name, devno, attrs);
        }
        /// A partition of `disk`, nested under it like the kernel does.
        fn part(&self, disk: &str, name: &str, devno: &str, n: u32) {
            let partition = n.to_string();
            self.sysfs(
                &format!("sys/block/{disk}/{name}"),
                name,
                devno,
                &[("partition", &partition)],
            );
        }
        fn sysfs(&self, rel: &str, name: &str, devno: &str, attrs: &[(&str, &str)]) {
            self.write(&format!("{rel}/dev"), &format!("{devno}\n"));
            self.write(&format!("{rel}/size"), "2048\n");
            for (k, v) in attrs {
                self.write(&format!("{rel}/{k}"), &format!("{v}\n"));
            }
            let class = self.p().join("sys/class/block");
            fs::create_dir_all(&class).expect("mkdir class");
            symlink(format!("../../{rel}").replace("sys/", ""), class.join(name))
                .expect("class link");
            self.write(&format!("dev/{name}"), "");
        }
        fn link(&self, rel: &str, target: &str) {
            let path = self.p().join(rel);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            symlink(target, path).expect("symlink");
        }
        fn select(&self, scan: &Settings) -> Result<Selected, DevselError> {
            Selected::load(self.p(), scan)
        }
        fn accepted(&self) -> Vec<String> {
            self.accepted_with(&Settings::default())
        }
        fn accepted_with(&self, scan: &Settings) -> Vec<String> {
            let sel = self.select(scan).expect("selection");
            blockdev::list(self.p())
                .expect("list")
                .iter()
                .filter(|d| sel.check(d).is_ok())
                .map(|d| d.name.clone())
                .collect()
        }
    }

    fn three_disks() -> Root {
        let r = Root::new();
        r.disk("sda", "8:0", &[]);
        r.disk("sdb", "8:16", &[]);
        r.disk("vda", "254:0", &[]);
        r
    }

    #[test]
    fn sysfs_fixture_resolves_like_the_kernel() {
        let r = three_disks();
        r.part("sda", "sda1", "8:1", 1);
        let listed = blockdev::list(r.p()).expect("list");
        assert_eq!(listed.len(), 4);
        let facts = gather_facts(r.p(), &listed, true, true);
        assert_eq!(facts[1].name, "sda1");
        assert_eq!(facts[1].part, 1);
    }

    #[test]
    fn no_lvm_conf_means_every_device() {
        let r = three_disks();
        assert_eq!(r.accepted(), ["sda", "sdb", "vda"]);
        let sel = r.select(&Settings::default()).expect("sel");
        assert_eq!(sel.summary, "every device (lvm defaults)");
    }

    #[test]
    fn global_filter_and_filter_both_apply() {
        let r = three_disks();
        r.write(
            "etc/lvm/lvm.conf",
            "devices {\n global_filter = [ \"r|/dev/sda|\" ]\n filter = [ \"a|/dev/sd|\", \"r|.*|\" ]\n}\n",
        );
        assert_eq!(r.accepted(), ["sdb"]);
        let sel = r.select(&Settings::default()).expect("sel");
        let sda = &blockdev::list(r.p()).expect("list")[0];
        let why = sel.check(sda).expect_err("sda rejected");
        assert!(why.contains("devices/global_filter"), "{why}");
    }

    #[test]
    fn a_single_string_filter_and_lvmlocal_override() {
        let r = three_disks();
        r.write("etc/lvm/lvm.conf", "devices { filter = \"r|/dev/sd|\" }\n");
        assert_eq!(r.accepted(), ["vda"]);
        r.write(
            "etc/lvm/lvmlocal.conf",
            "devices { filter = [ \"r|vda|\" ] }\n",
        );
        assert_eq!(r.accepted(), ["sda", "sdb"]);
    }

    #[test]
    fn aliases_under_dev_count() {
        let r = three_disks();
        r.link("dev/disk/by-id/wwn-0x5000", "../../sdb");
        r.link("dev/disk/by-id/virtio-abc", "../../vda");
        r.link("dev/block/8:0", "../sda");
        r.link("dev/.hidden/x", "../sda");
        r.link("dev/snd/by-id/x", "../../sda");
        let listed = blockdev::list(r.p()).expect("list");
        let facts = gather_facts(r.p(), &listed, false, true);
        assert_eq!(facts[0].aliases, ["/dev/sda", "/dev/block/8:0"]);
        assert_eq!(facts[1].aliases, ["/dev/sdb", "/dev/disk/by-id/wwn-0x5000"]);
        assert_eq!(facts[2].aliases, ["/dev/vda", "/dev/disk/by-id/virtio-abc"]);
        // Accept by a link name although the node name is rejected later in the list.
        r.write(
            "etc/lvm/lvm.conf",
            "devices { filter = [ \"a|/dev/disk/by-id/wwn-|\", \"r|.*|\" ] }\n",
        );
        assert_eq!(r.accepted(), ["sdb"]);
        // Rejected through one alias, none accepted.
        r.write(
            "etc/lvm/lvm.conf",
            "devices { filter = [ \"r|virtio-|\" ] }\n",
        );
        assert_eq!(r.accepted(), ["sda", "sdb"]);
    }

    #[test]
    fn aliases_are_looked_for_only_when_a_rule_uses_them() {
        let r = three_disks();
        r.link("dev/disk/by-id/virtio-abc", "../../vda");
        let uses =
            |r: &Root, scan: &Settings| load_rules(r.p(), scan).expect("rules").uses_aliases();
        assert!(!uses(&r, &Settings::default()));
        let listed = blockdev::list(r.p()).expect("list");
        let facts = gather_facts(r.p(), &listed, false, false);
        assert_eq!(facts[2].aliases, ["/dev/vda"]);
        // A filter, a devices file or a scan.devices glob each make the walk happen.
        r.write("etc/lvm/lvm.conf", "devices { filter = [ \"a|.*|\" ] }\n");
        assert!(uses(&r, &Settings::default()));
        r.write(
            "etc/lvm/lvm.conf",
            "devices { global_filter = [ \"a|.*|\" ] }\n",
        );
        assert!(uses(&r, &Settings::default()));
        r.write("etc/lvm/lvm.conf", "devices { }\n");
        r.write("etc/lvm/devices/system.devices", "VERSION=1.1.1\n");
        assert!(uses(&r, &Settings::default()));
        std::fs::remove_file(r.p().join("etc/lvm/devices/system.devices")).expect("rm");
        assert!(!uses(&r, &Settings::default()));
        let globs = Settings {
            devices: vec!["/dev/disk/by-id/virtio-*".into()],
            ..Settings::default()
        };
        assert!(uses(&r, &globs));
        // And the glob still sees the alias through Selected::load.
        assert_eq!(r.select(&globs).expect("sel").check(&listed[2]), Ok(()));
    }

    #[test]
    fn alias_walk_is_bounded_in_depth() {
        let r = three_disks();
        let deep = (0..MAX_DEV_DEPTH + 2)
            .map(|i| format!("d{i}"))
            .collect::<Vec<_>>();
        r.link(&format!("dev/{}/x", deep.join("/")), "/nonexistent");
        r.link(&format!("dev/{}/sda", deep[..2].join("/")), "../../sda");
        let listed = blockdev::list(r.p()).expect("list");
        let facts = gather_facts(r.p(), &listed, false, true);
        assert_eq!(facts[0].aliases, ["/dev/sda", "/dev/d0/d1/sda"]);
    }

    #[test]
    fn use_lvm_config_false_and_globs() {
        let r = three_disks();
        r.write("etc/lvm/lvm.conf", "devices { filter = [ \"r|.*|\" ] }\n");
        assert!(r.accepted().is_empty());
        let mut scan = Settings {
            use_lvm_config: false,
            ..Settings::default()
        };
        assert_eq!(r.accepted_with(&scan), ["sda", "sdb", "vda"]);
        scan.devices = vec!["/dev/sd[!a]".into(), "/dev/v?a".into()];
        assert_eq!(r.accepted_with(&scan), ["sdb", "vda"]);
        // Globs add to LVM's rules, never replace them.
        r.write("etc/lvm/lvm.conf", "devices { filter = [ \"r|vda|\" ] }\n");
        scan.use_lvm_config = true;
        assert_eq!(r.accepted_with(&scan), ["sdb"]);
        scan.devices = vec!["/dev/sd[a".into()];
        let e = r.select(&scan).expect_err("bad glob").to_string();
        assert!(e.contains("/dev/sd[a"), "{e}");
    }

    #[test]
    fn lvs_are_never_selected_by_scan() {
        // The selection itself may accept a dm device; scan::not_an_lv refuses LVs first.
        let r = three_disks();
        let lv = BlockDevice {
            name: "dm-0".into(),
            node: r.p().join("dev/dm-0"),
            major: 253,
            minor: 0,
            sectors: 8,
            read_only: false,
            dm: Some(blockdev::DmInfo {
                name: "vg-lv".into(),
                uuid: "LVM-x".into(),
            }),
        };
        assert!(crate::system::scan::not_an_lv(&lv).is_err());
    }

    #[test]
    fn bad_lvm_conf_is_an_error_naming_file_and_line() {
        let r = three_disks();
        r.write("etc/lvm/lvm.conf", "devices {\n filter = [ \"a|x|\" \n");
        let e = r.select(&Settings::default()).expect_err("bad").to_string();
        assert!(e.contains("etc/lvm/lvm.conf"), "{e}");
        assert!(e.contains("line"), "{e}");
        r.write(
            "etc/lvm/lvm.conf",
            "devices {\n filter = [ \"a|ok|\", \"a|(|\" ]\n}\n",
        );
        let e = r.select(&Settings::default()).expect_err("bad").to_string();
        assert!(e.contains("devices/filter: pattern \"a|(|\""), "{e}");
        for (text, needle) in [
            ("devices { use_devicesfile = \"maybe\" }", "use_devicesfile"),
            ("devices { devicesfile = \"../x\" }", "devicesfile"),
            ("devices { filter = [ 1 ] }", "quotes"),
            ("devices { global_filter = [ ] }", "empty"),
        ] {
            r.write("etc/lvm/lvm.conf", text);
            let e = r.select(&Settings::default()).expect_err(text).to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    const PV_A: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    const PV_B: &str = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";

    fn devices_file(r: &Root, lines: &[&str]) {
        let mut text = "# LVM uses devices listed in this file.\nVERSION=1.1.1\n".to_owned();
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        r.write("etc/lvm/devices/system.devices", &text);
    }

    #[test]
    fn host_tag_configs_are_refused() {
        let r = three_disks();
        r.write("etc/lvm/lvm.conf", "tags { hosttags = 1 }\n");
        assert_eq!(r.accepted().len(), 3);
        r.write(
            "etc/lvm/lvm_myhost.conf",
            "devices { filter = [ \"r|.*|\" ] }\n",
        );
        let e = r
            .select(&Settings::default())
            .expect_err("tags")
            .to_string();
        assert!(e.contains("lvm_myhost.conf"), "{e}");
    }

    #[test]
    fn devices_file_when_present_and_its_pvid() {
        let r = three_disks();
        devices_file(
            &r,
            &[&format!(
                "IDTYPE=devname IDNAME=/dev/sdb DEVNAME=/dev/sdb PVID={PV_A}"
            )],
        );
        assert_eq!(r.accepted(), ["sdb"]);
        let sel = r.select(&Settings::default()).expect("sel");
        let listed = blockdev::list(r.p()).expect("list");
        assert_eq!(sel.expected_pvid(&listed[1]), Some(PV_A));
        assert_eq!(sel.expected_pvid(&listed[0]), None);
        assert!(
            sel.check(&listed[0])
                .expect_err("sda")
                .contains("devices file")
        );
        assert!(sel.summary.contains("not set"), "{}", sel.summary);
        // Inferred use: the filters still apply.
        r.write("etc/lvm/lvm.conf", "devices { filter = [ \"r|sdb|\" ] }\n");
        assert!(r.accepted().is_empty());
        // Explicit use: LVM ignores the filters, so does rewind.
        r.write(
            "etc/lvm/lvm.conf",
            "devices { use_devicesfile = 1 filter = [ \"r|sdb|\" ] }\n",
        );
        assert_eq!(r.accepted(), ["sdb"]);
        // Explicitly off: the file is not used.
        r.write("etc/lvm/lvm.conf", "devices { use_devicesfile = 0 }\n");
        assert_eq!(r.accepted(), ["sda", "sdb", "vda"]);
        // Another file name.
        r.write(
            "etc/lvm/lvm.conf",
            "devices { use_devicesfile = 1 devicesfile = \"other.devices\" }\n",
        );
        assert_eq!(r.accepted(), ["sda", "sdb", "vda"], "named file missing");
        r.write(
            "etc/lvm/devices/other.devices",
            "IDTYPE=devname IDNAME=/dev/vda DEVNAME=/dev/vda PVID=.\n",
        );
        assert_eq!(r.accepted(), ["vda"]);
    }

    #[test]
    fn devices_file_sysfs_id_types() {
        let r = Root::new();
        r.disk("sda", "8:0", &[("device/wwid", "naa.5000c500a1b2c3d4")]);
        r.part("sda", "sda1", "8:1", 1);
        r.disk(
            "sdb",
            "8:16",
            &[("device/wwid", "t10.ATA     VBOX HARDDISK   VB01  ")],
        );
        r.disk("sdc", "8:32", &[("device/serial", "  S3Z9NB0K ")]);
        r.disk("vda", "254:0", &[("serial", "virt-1")]);
        r.part("vda", "vda2", "254:2", 2);
        r.disk("loop0", "7:0", &[("loop/backing_file", "/var/img/a b.img")]);
        r.disk(
            "loop1",
            "7:1",
            &[("loop/backing_file", "/var/img/gone.img (deleted)")],
        );
        r.disk(
            "md0",
            "9:0",
            &[("md/uuid", "1a2b3c4d:5e6f7a8b:9c0d1e2f:3a4b5c6d")],
        );
        r.disk(
            "dm-3",
            "253:3",
            &[
                ("dm/name", "luks-1"),
                ("dm/uuid", "CRYPT-LUKS2-0123-luks-1"),
            ],
        );
        r.disk("nvme0n1", "259:0", &[("wwid", "eui.0025388b")]);
        r.disk("sdz", "65:144", &[]);
        devices_file(
            &r,
            &[
                // Partition 1 of the disk with this wwid (read from the whole disk).
                &format!(
                    "IDTYPE=sys_wwid IDNAME=naa.5000c500a1b2c3d4 DEVNAME=/dev/sda1 PVID={PV_A} PART=1"
                ),
                // Written by LVM 2.03.16: spaces replaced one by one.
                "IDTYPE=sys_wwid IDNAME=t10.ATA_____VBOX_HARDDISK___VB01__ DEVNAME=/dev/sdb PVID=.",
                "IDTYPE=sys_serial IDNAME=S3Z9NB0K DEVNAME=/dev/sdx PVID=.",
                "IDTYPE=sys_serial IDNAME=virt-1 DEVNAME=/dev/vda2 PVID=. PART=2",
                "IDTYPE=loop_file IDNAME=/var/img/a_b.img DEVNAME=/dev/loop0 PVID=.",
                "IDTYPE=loop_file IDNAME=/var/img/gone.img_(deleted) DEVNAME=/dev/loop1 PVID=.",
                "IDTYPE=md_uuid IDNAME=1a2b3c4d:5e6f7a8b:9c0d1e2f:3a4b5c6d DEVNAME=/dev/md0 PVID=.",
                "IDTYPE=crypt_uuid IDNAME=CRYPT-LUKS2-0123-luks-1 DEVNAME=/dev/dm-3 PVID=.",
                // Not read by rewind: DEVNAME and PVID.
                &format!("IDTYPE=nvme_eui64 IDNAME=eui.0025388b DEVNAME=/dev/nvme0n1 PVID={PV_B}"),
                // Same, but without a PVID: not accepted.
                "IDTYPE=wwid_naa IDNAME=naa.1 DEVNAME=/dev/sdz PVID=.",
                // A wwid cannot name a loop device.
                "IDTYPE=sys_wwid IDNAME=/var/img/a_b.img DEVNAME=/dev/loop0 PVID=.",
            ],
        );
        assert_eq!(
            r.accepted(),
            [
                "dm-3", "loop0", "md0", "nvme0n1", "sda1", "sdb", "sdc", "vda2"
            ]
        );
        let sel = r.select(&Settings::default()).expect("sel");
        let listed = blockdev::list(r.p()).expect("list");
        let by = |n: &str| listed.iter().find(|d| d.name == n).expect(n);
        assert_eq!(sel.expected_pvid(by("sda1")), Some(PV_A));
        assert_eq!(sel.expected_pvid(by("nvme0n1")), Some(PV_B));
        assert_eq!(
            sel.decision(by("sdc")).expect("sdc").entry.as_deref(),
            Some("sys_serial=S3Z9NB0K")
        );
    }

    #[test]
    fn one_entry_one_device() {
        let r = Root::new();
        r.disk("sda", "8:0", &[("device/serial", "SAME")]);
        r.disk("sdb", "8:16", &[("device/serial", "SAME")]);
        devices_file(
            &r,
            &["IDTYPE=sys_serial IDNAME=SAME DEVNAME=/dev/sdb PVID=."],
        );
        // The DEVNAME's device is tried first.
        assert_eq!(r.accepted(), ["sdb"]);
        devices_file(
            &r,
            &[
                "IDTYPE=sys_serial IDNAME=SAME DEVNAME=/dev/sdb PVID=.",
                "IDTYPE=sys_serial IDNAME=SAME DEVNAME=/dev/sdb PVID=.",
            ],
        );
        assert_eq!(r.accepted(), ["sda", "sdb"]);
        // A devname entry does not take a device a real id already took.
        devices_file(
            &r,
            &[
                "IDTYPE=devname IDNAME=/dev/sdb DEVNAME=/dev/sdb PVID=.",
                "IDTYPE=sys_serial IDNAME=SAME DEVNAME=/dev/sdb PVID=.",
            ],
        );
        assert_eq!(r.accepted(), ["sdb"]);
    }

    #[test]
    fn devname_of_a_dm_device_by_mapper_name_and_partitions() {
        let r = Root::new();
        r.disk(
            "dm-1",
            "253:1",
            &[("dm/name", "mpatha"), ("dm/uuid", "mpath-3600")],
        );
        r.disk("sda", "8:0", &[]);
        r.part("sda", "sda1", "8:1", 1);
        r.link("dev/mapper/mpatha", "../dm-1");
        devices_file(
            &r,
            &[
                "IDTYPE=devname IDNAME=/dev/mapper/mpatha DEVNAME=/dev/mapper/mpatha PVID=.",
                // A devname entry without PART=1 cannot name a partition.
                "IDTYPE=devname IDNAME=/dev/sda1 DEVNAME=/dev/sda1 PVID=.",
            ],
        );
        assert_eq!(r.accepted(), ["dm-1"]);
        devices_file(
            &r,
            &[
                "IDTYPE=mpath_uuid IDNAME=mpath-3600 DEVNAME=/dev/dm-1 PVID=.",
                "IDTYPE=devname IDNAME=/dev/sda1 DEVNAME=/dev/sda1 PVID=. PART=1",
            ],
        );
        assert_eq!(r.accepted(), ["dm-1", "sda1"]);
    }

    #[test]
    fn multipath_paths_and_md_members_are_skipped() {
        let r = Root::new();
        r.disk("sda", "8:0", &[]);
        r.disk("sdb", "8:16", &[]);
        r.disk("sdc", "8:32", &[]);
        r.disk("sdd", "8:48", &[]);
        r.disk(
            "dm-0",
            "253:0",
            &[("dm/name", "mpatha"), ("dm/uuid", "mpath-3600a")],
        );
        r.disk(
            "dm-1",
            "253:1",
            &[("dm/name", "vg-lv"), ("dm/uuid", "LVM-xyz")],
        );
        r.disk("md0", "9:0", &[]);
        r.link("sys/block/sda/holders/dm-0", "../../dm-0");
        r.link("sys/block/sdb/holders/dm-0", "../../dm-0");
        r.link("sys/block/sdc/holders/md0", "../../md0");
        r.part("sda", "sda1", "8:1", 1);
        // A PV with an active LV is held by the LV: still read.
        r.link("sys/block/sdd/holders/dm-1", "../../dm-1");
        assert_eq!(r.accepted(), ["dm-0", "dm-1", "md0", "sdd"]);
        let sel = r.select(&Settings::default()).expect("sel");
        let listed = blockdev::list(r.p()).expect("list");
        let sda = listed.iter().find(|d| d.name == "sda").expect("sda");
        let why = sel.check(sda).expect_err("component");
        assert!(why.contains("multipath device dm-0 (mpatha)"), "{why}");
        let scan = Settings {
            use_lvm_config: false,
            ..Settings::default()
        };
        assert_eq!(r.accepted_with(&scan).len(), 8);
    }

    #[test]
    fn an_empty_devices_file_admits_nothing() {
        let r = three_disks();
        devices_file(&r, &[]);
        assert!(r.accepted().is_empty());
        r.write("etc/lvm/lvm.conf", "devices { use_devicesfile = \"no\" }\n");
        assert_eq!(r.accepted().len(), 3);
    }

    #[test]
    fn unreadable_devices_file_is_an_error() {
        let r = three_disks();
        fs::create_dir_all(r.p().join("etc/lvm/devices/system.devices")).expect("dir");
        let e = r.select(&Settings::default()).expect_err("dir").to_string();
        assert!(e.contains("system.devices"), "{e}");
    }

    #[test]
    fn a_device_that_appears_later_is_not_read() {
        let r = three_disks();
        let sel = r.select(&Settings::default()).expect("sel");
        r.disk("sdq", "65:0", &[]);
        let listed = blockdev::list(r.p()).expect("list");
        let sdq = listed.iter().find(|d| d.name == "sdq").expect("sdq");
        assert!(sel.check(sdq).expect_err("late").contains("appeared after"));
        let mut sda = listed[0].clone();
        assert!(sel.check(&sda).is_ok());
        sda.minor = 99;
        assert!(
            sel.check(&sda)
                .expect_err("other")
                .contains("changed after")
        );
    }
}
