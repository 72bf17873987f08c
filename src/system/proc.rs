//! What rewind reads from `/proc`: the kernel command line, and this host's name for the
//! stamp a metadata write carries (`lvm::change::Stamp`).

use crate::lvm::change::Stamp;
use std::path::Path;

/// The kernel command line, `ROOT/proc/cmdline`; empty when unreadable.
pub fn cmdline(root: &Path) -> String {
    std::fs::read_to_string(root.join("proc/cmdline")).unwrap_or_default()
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
    fn system_stamp_has_a_host() {
        let s = super::stamp();
        assert!(!s.host.is_empty());
        assert!(s.time > 1_600_000_000);
    }
}
