//! Mounted filesystems, for a snapshot set: which device a mount point is on
//! (`/proc/self/mountinfo`), how much its filesystem uses (`statvfs`, for `N%USED`), and a
//! `syncfs` of it before the window so the freeze has little left to write; `rewind mount
//! SET`'s read-only mounts of a set's snapshots (sys-mount), their block devices set
//! read-only first so not even a read-only mount writes (ext4 replays no journal and cleans
//! no orphans on a read-only device).

use std::path::{Path, PathBuf};

/// One line of `mountinfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// The device's major and minor number.
    pub dev: (u32, u32),
    /// The directory of the filesystem that is mounted (`/` unless a bind mount).
    pub root: String,
    pub mount_point: String,
    pub fstype: String,
    pub source: String,
}

/// `mountinfo`'s octal escapes (`\\040` for a space, `\\011`, `\\012`, `\\134`).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && let Some(v) = s
                .get(i + 1..i + 4)
                .and_then(|o| u8::from_str_radix(o, 8).ok())
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `mountinfo` (proc(5)): `ID PARENT MAJ:MIN ROOT POINT OPTIONS [TAGS...] - TYPE SOURCE
/// SUPER`. Lines it cannot read are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            let (maj, min) = f.get(2)?.split_once(':')?;
            Some(Mount {
                dev: (maj.parse().ok()?, min.parse().ok()?),
                root: unescape(f.get(3)?),
                mount_point: unescape(f.get(4)?),
                fstype: unescape(r.first()?),
                source: unescape(r.get(1).unwrap_or(&"")),
            })
        })
        .collect()
}

/// The mount that is visible at `point` (the last one mounted there).
pub fn mounted_at<'m>(mounts: &'m [Mount], point: &str) -> Option<&'m Mount> {
    let point = if point.len() > 1 {
        point.trim_end_matches('/')
    } else {
        point
    };
    mounts.iter().rev().find(|m| m.mount_point == point)
}

/// Every mount of ROOT's process view (`ROOT/proc/self/mountinfo`).
pub fn read(root: &Path) -> std::io::Result<Vec<Mount>> {
    std::fs::read_to_string(root.join("proc/self/mountinfo")).map(|t| parse_mountinfo(&t))
}

/// Bytes the filesystem mounted at `path` uses.
pub fn used_bytes(path: &Path) -> nix::Result<u64> {
    let s = nix::sys::statvfs::statvfs(path)?;
    let blocks = s.blocks().saturating_sub(s.blocks_free());
    Ok(blocks.saturating_mul(s.fragment_size()))
}

/// Writes the filesystem mounted at `path` out (`syncfs`).
pub fn sync_fs(path: &Path) -> std::io::Result<()> {
    let dir = std::fs::File::open(path)?;
    nix::unistd::syncfs(&dir).map_err(std::io::Error::from)
}

// BLKROSET (linux/fs.h `_IO(0x12, 93)`): its argument is a pointer to an int, 1 for read-only.
nix::ioctl_write_ptr_bad!(blkroset, 0x125d, nix::libc::c_int);

/// Sets block device `dev` read-only (`ro`) or writable again (`blockdev --setro/--setrw`).
pub fn set_read_only(dev: &Path, ro: bool) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(dev)?;
    let v: nix::libc::c_int = ro.into();
    // SAFETY: BLKROSET reads one int through the pointer, which lives across the call; the
    // descriptor is open for the whole call.
    unsafe { blkroset(f.as_raw_fd(), &raw const v) }
        .map(drop)
        .map_err(std::io::Error::from)
}

/// Mounts `dev` read-only at `target` (which must exist), its type found by trying each of
/// the kernel's block filesystems. Returns the type.
pub fn mount_read_only(dev: &Path, target: &Path) -> std::io::Result<String> {
    use sys_mount::{Mount as SysMount, MountFlags, SupportedFilesystems};
    let supported = SupportedFilesystems::new()?;
    let m = SysMount::builder()
        .fstype(&supported)
        .flags(MountFlags::RDONLY | MountFlags::NODEV | MountFlags::NOSUID | MountFlags::NOEXEC)
        .mount(dev, target)?;
    Ok(m.get_fstype().to_owned())
}

/// Unmounts `target`.
pub fn unmount(target: &Path) -> std::io::Result<()> {
    sys_mount::unmount(target, sys_mount::UnmountFlags::empty())
}

/// Makes the directory a mount goes on (and its parents).
pub fn make_mount_point(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// Removes `top` and the directories under it down to `depth` levels, deepest first, each only
/// when empty: what is not empty (or still mounted on) stays, and nothing below `depth` is
/// looked into.
pub fn remove_empty_dirs(top: &Path, depth: usize) {
    if depth > 0
        && let Ok(entries) = std::fs::read_dir(top)
    {
        for e in entries.flatten() {
            remove_empty_dirs(&e.path(), depth - 1);
        }
    }
    let _ = std::fs::remove_dir(top);
}

/// The path of `point` under `root` (the flows take an injectable root).
pub fn under(root: &Path, point: &str) -> PathBuf {
    root.join(point.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_empty_directories_down_to_the_depth_are_removed() {
        let d = tempfile::tempdir().expect("test io");
        let top = d.path().join("set");
        std::fs::create_dir_all(top.join("vg0/root")).expect("test io");
        std::fs::create_dir_all(top.join("vg0/var/deeper")).expect("test io");
        std::fs::create_dir_all(top.join("vg1/home")).expect("test io");
        std::fs::write(top.join("vg1/home/file"), "kept").expect("test io");
        remove_empty_dirs(&top, 2);
        assert!(!top.join("vg0/root").exists());
        assert!(
            top.join("vg0/var/deeper").is_dir(),
            "below the depth: not looked into"
        );
        assert!(top.join("vg1/home/file").is_file());
        remove_empty_dirs(&top, 3);
        assert!(!top.join("vg0").exists());
        assert!(top.join("vg1/home/file").is_file(), "not empty: stays");
    }

    const INFO: &str = "\
22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/mapper/vg0-root rw
23 22 0:21 / /proc rw,nosuid - proc proc rw
30 22 253:3 / /var rw,relatime shared:5 - ext4 /dev/mapper/vg0-var rw
31 22 253:4 / /srv/my\\040data rw - xfs /dev/mapper/vg1-data rw
32 30 253:5 / /var rw - ext4 /dev/mapper/vg0-var2 rw
bad line
";

    #[test]
    fn mountinfo_is_read_with_its_escapes_and_the_top_mount_wins() {
        let m = parse_mountinfo(INFO);
        assert_eq!(m.len(), 5);
        assert_eq!(mounted_at(&m, "/").map(|m| m.dev), Some((253, 0)));
        assert_eq!(mounted_at(&m, "/var/").map(|m| m.dev), Some((253, 5)));
        let d = mounted_at(&m, "/srv/my data").expect("escaped");
        assert_eq!(
            (d.fstype.as_str(), d.source.as_str()),
            ("xfs", "/dev/mapper/vg1-data")
        );
        assert!(mounted_at(&m, "/usr").is_none());
    }

    #[test]
    fn the_filesystem_under_the_tests_uses_some_bytes() {
        let used = used_bytes(Path::new("/")).expect("statvfs");
        assert!(used > 0);
        sync_fs(Path::new(env!("CARGO_MANIFEST_DIR"))).expect("syncfs");
    }
}
