//! Where a process runs: the booted system, a chroot or a container (the package-manager
//! hooks snapshot only the booted system's volumes).

use std::path::Path;

/// Where the hook runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// The booted system: its volumes are the ones to snapshot.
    Host,
    /// A chroot (its `/` is not PID 1's), or no `/proc` to tell: the volumes mounted are
    /// not this tree's.
    Chroot(String),
    /// A container: the volumes are the host's.
    Container(String),
}

/// Where the process whose root is `root` runs (`root`: `/`, or a test's tree).
pub fn place(root: &Path) -> Place {
    use std::os::unix::fs::MetadataExt;
    for marker in [".dockerenv", "run/.containerenv"] {
        if root.join(marker).exists() {
            return Place::Container(format!("/{marker} exists"));
        }
    }
    if let Ok(env) = std::fs::read(root.join("proc/1/environ"))
        && let Some(c) = env
            .split(|&b| b == 0)
            .find_map(|v| v.strip_prefix(b"container="))
    {
        return Place::Container(format!(
            "process 1 runs with container={}",
            String::from_utf8_lossy(c)
        ));
    }
    let ours = std::fs::metadata(root);
    let init = std::fs::metadata(root.join("proc/1/root"));
    match (ours, init) {
        (Ok(a), Ok(b)) if (a.dev(), a.ino()) == (b.dev(), b.ino()) => Place::Host,
        (Ok(_), Ok(_)) => Place::Chroot("/ is not the root of process 1".into()),
        (_, Err(e)) => Place::Chroot(format!("cannot read /proc/1/root ({e})")),
        (Err(e), _) => Place::Chroot(format!("cannot read / ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn place_tells_host_chroot_and_container() {
        let t = tempfile::tempdir().expect("tmp");
        let root = t.path();
        std::fs::create_dir_all(root.join("proc/1")).expect("mkdir");
        // No /proc/1/root: cannot tell, so not the booted system.
        assert!(matches!(place(root), Place::Chroot(_)));
        std::os::unix::fs::symlink(root, root.join("proc/1/root")).expect("link");
        assert_eq!(place(root), Place::Host);
        let other = tempfile::tempdir().expect("tmp");
        std::fs::remove_file(root.join("proc/1/root")).expect("rm");
        std::os::unix::fs::symlink(other.path(), root.join("proc/1/root")).expect("link");
        assert!(matches!(place(root), Place::Chroot(_)));
        std::fs::write(root.join("proc/1/environ"), b"HOME=/\0container=podman\0").expect("w");
        assert_eq!(
            place(root),
            Place::Container("process 1 runs with container=podman".into())
        );
        std::fs::remove_file(root.join("proc/1/environ")).expect("rm");
        std::fs::write(root.join(".dockerenv"), b"").expect("w");
        assert!(matches!(place(root), Place::Container(_)));
    }
}
