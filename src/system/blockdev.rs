//! Block-device discovery through sysfs, under an injectable root (`/` normally; a fixture tree
//! in tests).
//!
//! Every block device the kernel knows is listed with what rewind needs to decide whether to
//! read it: its size, whether it is read-only, and whether it is a device-mapper device that LVM
//! itself created (an LV: LVM does not scan LVs for PVs by default, `devices/scan_lvs = 0`, and
//! neither does rewind, so a snapshot's COW can never pass for a second copy of a PV).

use serde::Serialize;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockDevice {
    /// The kernel name, e.g. `vda`, `nvme0n1p3`, `dm-0`.
    pub name: String,
    /// `/dev/NAME` under the injected root.
    pub node: PathBuf,
    pub major: u32,
    pub minor: u32,
    /// Size in 512-byte sectors.
    pub sectors: u64,
    pub read_only: bool,
    /// The device-mapper name and UUID, for dm devices.
    pub dm: Option<DmInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DmInfo {
    pub name: String,
    pub uuid: String,
}

impl BlockDevice {
    /// An LV (or a layer of one) that LVM created.
    pub fn is_lvm_lv(&self) -> bool {
        self.dm
            .as_ref()
            .is_some_and(|dm| dm.uuid.starts_with("LVM-"))
    }
}

/// Lists the block devices under `root/sys/class/block`, sorted by name. A device whose sysfs
/// entries cannot be read is skipped with a warning (it may have just gone away).
pub fn list(root: &Path) -> io::Result<Vec<BlockDevice>> {
    let class = root.join("sys/class/block");
    let mut devices = Vec::new();
    for entry in fs::read_dir(&class)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        match read_device(root, &entry.path(), &name) {
            Ok(dev) => devices.push(dev),
            Err(e) => log::warn!("skipping block device {name}: {e}"),
        }
    }
    devices.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(devices)
}

/// The text of a sysfs attribute, as it is ([`read_open`]).
pub fn read_sysfs(path: &Path) -> io::Result<String> {
    read_open(fs::File::open(path)?, path)
}

/// A device's sysfs directory, opened once: its attributes are opened relative to it
/// (`openat`), so the kernel walks `sys/class/block/NAME` and its symlink into `/sys/devices`
/// once per device instead of once per attribute.
#[derive(Debug)]
pub struct SysDir {
    fd: std::os::fd::OwnedFd,
    path: PathBuf,
}

impl SysDir {
    /// Opens the directory `path` (following the `sys/class/block` symlink) for lookups only.
    pub fn open(path: &Path) -> io::Result<SysDir> {
        use nix::fcntl::{OFlag, open};
        use nix::sys::stat::Mode;
        let fd = open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(SysDir {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The directory's path, as it was opened.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The text of the attribute `attr` (a path relative to the directory, e.g. `dm/uuid`),
    /// as [`read_sysfs`] of `path/attr` reads it.
    pub fn read(&self, attr: &str) -> io::Result<String> {
        use nix::fcntl::{OFlag, openat};
        use nix::sys::stat::Mode;
        let fd = openat(
            &self.fd,
            attr,
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        read_open(fs::File::from(fd), &self.path.join(attr))
    }

    /// The names in the subdirectory `sub` (e.g. `holders`), at most `max`, in the order the
    /// kernel lists them (without `.` and `..`; an entry that cannot be read is left out, as
    /// `read_dir(..).flatten()` does).
    pub fn entries(&self, sub: &str, max: usize) -> io::Result<Vec<String>> {
        use nix::dir::Dir;
        use nix::fcntl::OFlag;
        use nix::sys::stat::Mode;
        let mut dir = Dir::openat(
            &self.fd,
            sub,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(dir
            .iter()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "." && n != "..")
            .take(max)
            .collect())
    }
}

/// The whole text of an open sysfs attribute. Sysfs hands an attribute over whole in the first
/// read (at most a page), so a read that does not fill the buffer is the end (the same holds
/// for the small regular files of test fixtures). `fs::read_to_string` would also `statx` and
/// read once more to see the end, which at boot, for every attribute of every device, adds up.
/// The attributes rewind reads (a device number, a size, a dm uuid of at most 128 characters)
/// fit the first buffer on the stack; a longer one continues on the heap. `path` names the
/// attribute in an error.
fn read_open(mut file: fs::File, path: &Path) -> io::Result<String> {
    use std::io::Read;
    let mut first = [0u8; 256];
    let n = loop {
        match file.read(&mut first) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    };
    let mut buf = first[..n].to_vec();
    if n == first.len() {
        // A full buffer: there may be more.
        let mut len = buf.len();
        loop {
            buf.resize(len * 2, 0);
            match file.read(&mut buf[len..]) {
                Ok(n) => {
                    len += n;
                    if len < buf.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(len);
    }
    String::from_utf8(buf).map_err(|_| invalid(format!("{} is not UTF-8", path.display())))
}

fn read_attr(dir: &SysDir, attr: &str) -> io::Result<String> {
    Ok(dir.read(attr)?.trim().to_owned())
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

fn read_device(root: &Path, dir: &Path, name: &str) -> io::Result<BlockDevice> {
    let dir = &SysDir::open(dir)?;
    let dev = read_attr(dir, "dev")?;
    let (major, minor) = dev
        .split_once(':')
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        .ok_or_else(|| invalid(format!("bad dev attribute '{dev}'")))?;
    let size = read_attr(dir, "size")?;
    let sectors = size
        .parse()
        .map_err(|_| invalid(format!("bad size attribute '{size}'")))?;
    let read_only = read_attr(dir, "ro").map(|v| v == "1").unwrap_or(false);
    // A device without `dm/name` is no dm device: its `dm/uuid` is not looked for.
    let dm = read_attr(dir, "dm/name")
        .and_then(|name| {
            Ok(DmInfo {
                name,
                uuid: read_attr(dir, "dm/uuid")?,
            })
        })
        .ok();
    Ok(BlockDevice {
        name: name.to_owned(),
        node: root.join("dev").join(name),
        major,
        minor,
        sectors,
        read_only,
        dm,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn read_sysfs_reads_whole_files_of_any_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = |n: &str| dir.path().join(n);
        fs::write(p("empty"), "").expect("write");
        assert_eq!(read_sysfs(&p("empty")).expect("empty"), "");
        fs::write(p("dev"), "253:0\n").expect("write");
        assert_eq!(read_sysfs(&p("dev")).expect("dev"), "253:0\n");
        // Exactly one buffer, and more than one: the buffer grows and nothing is lost.
        for len in [255, 256, 257, 512, 4096, 4097, 10_000] {
            let text: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            fs::write(p("big"), &text).expect("write");
            assert_eq!(read_sysfs(&p("big")).expect("big"), text, "{len} bytes");
        }
        fs::write(p("bin"), [0xff, 0xfe]).expect("write");
        let e = read_sysfs(&p("bin")).expect_err("not utf-8");
        assert!(e.to_string().contains("not UTF-8"), "{e}");
        assert_eq!(
            read_sysfs(&p("missing")).expect_err("missing").kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn sysdir_reads_attributes_like_read_sysfs() {
        let root = tempfile::tempdir().expect("tempdir");
        fake_device(root.path(), "dm-0", "253:0", 1024, Some(("vg-lv", "LVM-x")));
        // Opened through the class symlink as the kernel's sysfs has it.
        let real = root.path().join("devices/virtual/block/vdb");
        fs::create_dir_all(real.join("dm")).expect("mkdir");
        fs::write(real.join("dev"), "254:16\n").expect("dev");
        fs::write(real.join("dm/uuid"), "x".repeat(300)).expect("uuid");
        let link = root.path().join("sys/class/block/vdb");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        for (dir, attrs) in [
            (
                root.path().join("sys/class/block/dm-0"),
                &["dev", "size", "ro", "dm/name", "dm/uuid"][..],
            ),
            (link.clone(), &["dev", "dm/uuid"][..]),
        ] {
            let sd = SysDir::open(&dir).expect("open");
            assert_eq!(sd.path(), dir.as_path());
            for attr in attrs {
                let by_path = read_sysfs(&dir.join(attr)).expect("by path");
                assert_eq!(sd.read(attr).expect("at"), by_path, "{attr}");
            }
            let e = sd.read("dm/missing").expect_err("missing");
            assert_eq!(e.kind(), io::ErrorKind::NotFound);
        }
        assert_eq!(
            SysDir::open(&link)
                .expect("open")
                .read("dm/uuid")
                .expect("long")
                .len(),
            300
        );
        fs::write(real.join("bin"), [0xff]).expect("bin");
        let e = SysDir::open(&link)
            .expect("open")
            .read("bin")
            .expect_err("not utf-8");
        assert!(e.to_string().contains("vdb/bin is not UTF-8"), "{e}");
        assert_eq!(
            SysDir::open(&root.path().join("sys/class/block/sdz"))
                .expect_err("no device")
                .kind(),
            io::ErrorKind::NotFound
        );
        // Subdirectories listed relative to the directory, as read_dir lists them.
        for n in ["dm-3", "md0"] {
            fs::create_dir_all(real.join("holders").join(n)).expect("holder");
        }
        let mut held = SysDir::open(&link)
            .expect("open")
            .entries("holders", 64)
            .expect("ls");
        held.sort();
        assert_eq!(held, ["dm-3", "md0"]);
        assert_eq!(
            SysDir::open(&link)
                .expect("open")
                .entries("holders", 1)
                .expect("ls")
                .len(),
            1
        );
        let empty = SysDir::open(&dir_of(&root, "dm-0")).expect("open");
        fs::create_dir_all(root.path().join("sys/class/block/dm-0/holders")).expect("mkdir");
        assert!(empty.entries("holders", 64).expect("ls").is_empty());
        assert_eq!(
            empty.entries("slaves", 64).expect_err("none").kind(),
            io::ErrorKind::NotFound
        );
        // A file is not a device directory.
        assert!(SysDir::open(&real.join("dev")).is_err());
    }

    fn dir_of(root: &tempfile::TempDir, name: &str) -> PathBuf {
        root.path().join("sys/class/block").join(name)
    }

    #[test]
    fn a_dm_device_needs_both_name_and_uuid() {
        let root = tempfile::tempdir().expect("tempdir");
        fake_device(root.path(), "dm-0", "253:0", 8, Some(("a", "LVM-a")));
        fake_device(root.path(), "dm-1", "253:1", 8, Some(("b", "LVM-b")));
        fake_device(root.path(), "dm-2", "253:2", 8, Some(("c", "LVM-c")));
        let class = root.path().join("sys/class/block");
        fs::remove_file(class.join("dm-1/dm/name")).expect("rm name");
        fs::remove_file(class.join("dm-2/dm/uuid")).expect("rm uuid");
        let dm: Vec<_> = list(root.path())
            .expect("list")
            .into_iter()
            .map(|d| d.dm.map(|dm| (dm.name, dm.uuid)))
            .collect();
        assert_eq!(dm, [Some(("a".to_owned(), "LVM-a".to_owned())), None, None]);
    }

    /// Writes a fake sysfs entry for one device.
    pub(crate) fn fake_device(
        root: &Path,
        name: &str,
        dev: &str,
        size: u64,
        dm: Option<(&str, &str)>,
    ) {
        let dir = root.join("sys/class/block").join(name);
        fs::create_dir_all(&dir).expect("mkdir");
        fs::write(dir.join("dev"), format!("{dev}\n")).expect("dev");
        fs::write(dir.join("size"), format!("{size}\n")).expect("size");
        fs::write(dir.join("ro"), "0\n").expect("ro");
        if let Some((n, u)) = dm {
            fs::create_dir_all(dir.join("dm")).expect("mkdir dm");
            fs::write(dir.join("dm/name"), format!("{n}\n")).expect("name");
            fs::write(dir.join("dm/uuid"), format!("{u}\n")).expect("uuid");
        }
    }

    #[test]
    fn lists_devices_with_dm_details_sorted() {
        let root = tempfile::tempdir().expect("tempdir");
        fake_device(root.path(), "vdb", "254:16", 2048, None);
        fake_device(root.path(), "vda", "254:0", 4096, None);
        fake_device(
            root.path(),
            "dm-0",
            "253:0",
            1024,
            Some(("vg0-root", "LVM-aaaabbbb")),
        );
        fake_device(
            root.path(),
            "dm-1",
            "253:1",
            1024,
            Some(("luks-1", "CRYPT-LUKS2-x")),
        );
        let devs = list(root.path()).expect("list");
        let names: Vec<_> = devs.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["dm-0", "dm-1", "vda", "vdb"]);
        assert!(devs[0].is_lvm_lv());
        assert!(!devs[1].is_lvm_lv());
        assert_eq!(
            (devs[2].major, devs[2].minor, devs[2].sectors),
            (254, 0, 4096)
        );
        assert_eq!(devs[2].node, root.path().join("dev/vda"));
        assert_eq!(devs[3].dm, None);
    }

    #[test]
    fn unreadable_entry_is_skipped_not_fatal() {
        let root = tempfile::tempdir().expect("tempdir");
        fake_device(root.path(), "vda", "254:0", 4096, None);
        fake_device(root.path(), "vdb", "garbage", 4096, None);
        let devs = list(root.path()).expect("list");
        assert_eq!(devs.len(), 1);
        assert_eq!(devs[0].name, "vda");
    }

    #[test]
    fn missing_sysfs_is_an_error() {
        let root = tempfile::tempdir().expect("tempdir");
        assert!(list(root.path()).is_err());
    }
}
