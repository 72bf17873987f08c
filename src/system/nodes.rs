//! Device nodes for the devices rewind creates, when no udev will make them: no udev running,
//! or a udev without device-mapper's rules (an initramfs built without LVM2's hook):
//! `/dev/mapper/NAME` and LVM's `/dev/VG/LV` links. With udev and the device-mapper rules
//! running, the rules make them (the devicemapper crate's cookie waits for that, bounded in
//! `dm`).

use nix::sys::stat::{Mode, SFlag, makedev, mknod};
use std::io;
use std::path::Path;

/// Whether udev runs under `root`: something listens on its control socket. A socket file
/// left by a udevd that is gone does not count (then rewind makes the nodes itself).
pub fn udev_running(root: &Path) -> bool {
    crate::system::dm::udev_presence(&root.join("run/udev/control"))
        == crate::system::dm::UdevPresence::Listening
}

/// udev's rules directories, highest precedence first: a file in an earlier one hides a file
/// of the same name in a later one (systemd's `udev(7)`).
const RULES_DIRS: [&str; 5] = [
    "etc/udev/rules.d",
    "run/udev/rules.d",
    "usr/local/lib/udev/rules.d",
    "usr/lib/udev/rules.d",
    "lib/udev/rules.d",
];

/// Whether udev under `root` has a rule that completes device-mapper's udev cookies (LVM's and
/// device-mapper's `95-dm-notify.rules`, whatever a distribution names it: a rule that runs
/// `dmsetup udevcomplete`). Without one, a cookie is never completed and `/dev/mapper` nodes
/// are not made: the dm rules come together (`10-dm.rules`/`55-dm.rules` make the nodes), so
/// rewind then completes its own cookies and makes the nodes itself. A file hidden by a
/// same-named one earlier in the search path, or masked (a link to `/dev/null`, empty), does
/// not count. An initramfs image built without LVM2's hook has udev but none of these rules.
pub fn dm_rules_installed(root: &Path) -> bool {
    let mut seen = std::collections::BTreeSet::new();
    for dir in RULES_DIRS {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        let mut names: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .filter(|n| n.to_string_lossy().ends_with(".rules"))
            .collect();
        names.sort();
        for name in names {
            if !seen.insert(name.clone()) {
                continue;
            }
            let path = root.join(dir).join(&name);
            // `/dev/null` reads as empty, like an empty masking file.
            if let Ok(text) = std::fs::read(&path)
                && memchr::memmem::find(&text, b"udevcomplete").is_some()
            {
                return true;
            }
        }
    }
    false
}

/// Whether udev makes the device nodes of the devices rewind creates: a udev listens under
/// `root` and has device-mapper's rules. Otherwise rewind makes them ([`make`]).
pub fn udev_makes_dm_nodes(root: &Path) -> bool {
    udev_running(root) && dm_rules_installed(root)
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

/// Removes what [`make`] (or a udev that is gone) left for the removed device `name` of VG
/// `vg`: `root/dev/mapper/NAME` (a node or a link), and the links in `root/dev/VG/` that point
/// to it or to nothing any more (udev's point to `../dm-N`, which went with the device). An
/// empty `root/dev/VG` goes too. Best effort: a node that cannot be removed stays.
pub fn remove(root: &Path, name: &str, vg: &str) {
    let node = root.join("dev/mapper").join(name);
    if std::fs::symlink_metadata(&node).is_ok() {
        let _ = std::fs::remove_file(&node);
    }
    let dir = root.join("dev").join(vg);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let path = e.path();
        let Ok(target) = std::fs::read_link(&path) else {
            continue;
        };
        let to_it = target.file_name().is_some_and(|f| f == name);
        let dangling = std::fs::metadata(&path).is_err();
        if to_it || dangling {
            let _ = std::fs::remove_file(&path);
        }
    }
    let _ = std::fs::remove_dir(&dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    const NOTIFY: &str =
        "ENV{DM_COOKIE}==\"?*\", RUN+=\"/usr/sbin/dmsetup udevcomplete $env{DM_COOKIE}\"\n";

    #[test]
    fn dm_rules_found_by_content_in_any_rules_dir() {
        let d = tempfile::tempdir().expect("tempdir");
        assert!(!dm_rules_installed(d.path()), "no rules at all");
        write(
            d.path(),
            "usr/lib/udev/rules.d/60-persistent-storage.rules",
            "# blkid\n",
        );
        assert!(!dm_rules_installed(d.path()), "udev's own rules only");
        write(d.path(), "lib/udev/rules.d/95-dm-notify.rules", NOTIFY);
        assert!(dm_rules_installed(d.path()), "Debian's /lib path");
        let e = tempfile::tempdir().expect("tempdir");
        write(
            e.path(),
            "usr/lib/udev/rules.d/95-custom-name.rules",
            NOTIFY,
        );
        assert!(
            dm_rules_installed(e.path()),
            "found by what it does, not its name"
        );
    }

    #[test]
    fn a_masked_or_hidden_notify_rule_does_not_count() {
        let d = tempfile::tempdir().expect("tempdir");
        write(d.path(), "usr/lib/udev/rules.d/95-dm-notify.rules", NOTIFY);
        write(d.path(), "etc/udev/rules.d/95-dm-notify.rules", "");
        assert!(
            !dm_rules_installed(d.path()),
            "masked by an empty /etc file"
        );
        std::fs::remove_file(d.path().join("etc/udev/rules.d/95-dm-notify.rules")).expect("rm");
        std::os::unix::fs::symlink(
            "/dev/null",
            d.path().join("etc/udev/rules.d/95-dm-notify.rules"),
        )
        .expect("symlink");
        assert!(
            !dm_rules_installed(d.path()),
            "masked by a link to /dev/null"
        );
    }

    #[test]
    fn remove_takes_the_node_and_the_links_to_it_or_to_nothing() {
        let d = tempfile::tempdir().expect("tempdir");
        let root = d.path();
        for dir in ["dev/mapper", "dev/vg0"] {
            std::fs::create_dir_all(root.join(dir)).expect("mkdir");
        }
        std::fs::write(root.join("dev/mapper/vg0-pre"), "").expect("node");
        std::fs::write(root.join("dev/mapper/vg0-root"), "").expect("node");
        std::fs::write(root.join("dev/dm-0"), "").expect("node");
        let link = |target: &str, at: &str| {
            std::os::unix::fs::symlink(target, root.join(at)).expect("symlink");
        };
        link("../mapper/vg0-pre", "dev/vg0/pre"); // rewind's own link
        link("../dm-3", "dev/vg0/old"); // udev's, to a device that is gone
        link("../dm-0", "dev/vg0/root"); // udev's, to a device that is there
        remove(root, "vg0-pre", "vg0");
        assert!(!root.join("dev/mapper/vg0-pre").exists());
        assert!(std::fs::symlink_metadata(root.join("dev/vg0/pre")).is_err());
        assert!(std::fs::symlink_metadata(root.join("dev/vg0/old")).is_err());
        assert!(
            root.join("dev/vg0/root").exists(),
            "a live device's link stays"
        );
        assert!(
            root.join("dev/mapper/vg0-root").exists(),
            "another node stays"
        );
        std::fs::remove_file(root.join("dev/vg0/root")).expect("rm");
        remove(root, "vg0-none", "vg0");
        assert!(
            !root.join("dev/vg0").exists(),
            "the empty vg directory goes"
        );
    }
}
