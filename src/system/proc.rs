//! What rewind reads from `/proc`: the kernel command line, the running kernel's release, and
//! this host's name for the stamp a metadata write carries (`lvm::change::Stamp`).

use crate::lvm::change::Stamp;
use std::path::Path;

/// The kernel command line, `ROOT/proc/cmdline`; empty when unreadable.
pub fn cmdline(root: &Path) -> String {
    std::fs::read_to_string(root.join("proc/cmdline")).unwrap_or_default()
}

/// The running kernel's release (`uname -r`), `ROOT/proc/sys/kernel/osrelease`; `None` when
/// unreadable.
pub fn os_release(root: &Path) -> Option<String> {
    std::fs::read_to_string(root.join("proc/sys/kernel/osrelease"))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// This host's name and the current time. The host name comes from
/// `/proc/sys/kernel/hostname` (what `uname -n` shows); `localhost` when unreadable, as in
/// an initramfs before /proc is mounted.
pub fn stamp() -> Stamp {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Stamp { host, time }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_release_is_trimmed() {
        let d = tempfile::tempdir().expect("test io");
        assert_eq!(super::os_release(d.path()), None);
        std::fs::create_dir_all(d.path().join("proc/sys/kernel")).expect("test io");
        std::fs::write(
            d.path().join("proc/sys/kernel/osrelease"),
            "6.1.0-9-amd64\n",
        )
        .expect("io");
        assert_eq!(
            super::os_release(d.path()).as_deref(),
            Some("6.1.0-9-amd64")
        );
    }

    #[test]
    fn system_stamp_has_a_host() {
        let s = super::stamp();
        assert!(!s.host.is_empty());
        assert!(s.time > 1_600_000_000);
    }
}
