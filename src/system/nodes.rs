//! Device nodes for the devices rewind creates, when no udev is running to make them:
//! `/dev/mapper/NAME` and LVM's `/dev/VG/LV` links. With udev running, the device-mapper
//! udev rules make them (the devicemapper crate's cookie waits for that, bounded in `dm`).

use nix::sys::stat::{Mode, SFlag, makedev, mknod};
use std::io;
use std::path::Path;

/// Whether udev runs under `root`: something listens on its control socket. A socket file
/// left by a udevd that is gone does not count (then rewind makes the nodes itself).
pub fn udev_running(root: &Path) -> bool {
    crate::system::dm::udev_presence(&root.join("run/udev/control"))
        == crate::system::dm::UdevPresence::Listening
}

/// Makes `root/dev/mapper/NAME` for device `major:minor` (replacing a stale node) and, when
/// given, the link `root/dev/VG/LV -> ../mapper/NAME`.
pub fn make(
    root: &Path,
    name: &str,
    major: u32,
    minor: u32,
    link: Option<(&str, &str)>,
) -> io::Result<()> {
    let mapper = root.join("dev/mapper");
    std::fs::create_dir_all(&mapper)?;
    let node = mapper.join(name);
    let _ = std::fs::remove_file(&node);
    mknod(
        &node,
        SFlag::S_IFBLK,
        Mode::from_bits_truncate(0o600),
        makedev(u64::from(major), u64::from(minor)),
    )
    .map_err(io::Error::from)?;
    if let Some((vg, lv)) = link {
        let dir = root.join("dev").join(vg);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(lv);
        let _ = std::fs::remove_file(&path);
        std::os::unix::fs::symlink(format!("../mapper/{name}"), &path)?;
    }
    Ok(())
}
