//! LVM's processes, read from `/proc`, and the one signal rewind ever sends them.
//!
//! An LVM command that has a long-running operation to watch (a merge, a pvmove) and was run
//! without `--sysinit`/`--poll n` forks a background poller (`become_daemon` in LVM2's
//! `tools/toollib.c`): the child calls `setsid()` and overwrites its `argv[0]` with `"(lvm2)"`,
//! cut to the length of the original `argv[0]` (`strncpy` in 2.03.16, `dm_strncpy` later, so
//! `/usr/bin/lvm` shows as `(lvm2)`, a bare `lvm` as `(lv` or `(l`). That marker, together
//! with the executable being LVM's, is how a poller is told from an LVM command.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One process running LVM's binary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LvmProcess {
    pub pid: i32,
    /// The executable (`/proc/PID/exe`), without a ` (deleted)` suffix.
    pub exe: PathBuf,
    /// The command line as `/proc/PID/cmdline` shows it.
    pub args: Vec<String>,
    /// A background poller (LVM's `(lvm2)` marker in `argv[0]`).
    pub poller: bool,
}

/// Whether `argv0` is LVM's background-process marker: a non-empty prefix of `(lvm2)`, as LVM
/// writes it over an `argv[0]` of any length (two characters at least, so a lone `(` is not
/// taken for one).
pub fn is_poller_marker(argv0: &str) -> bool {
    argv0.len() >= 2 && "(lvm2)".starts_with(argv0)
}

/// Whether `exe` is LVM's binary (`lvm`, or `lvm.static` as some distributions ship it).
fn is_lvm_exe(exe: &Path) -> bool {
    exe.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == "lvm" || n == "lvm.static")
}

/// Splits `/proc/PID/cmdline` (NUL-separated, NUL-terminated; LVM's marker leaves NULs
/// inside `argv[0]`'s old space, which come out as empty strings after it and are dropped).
pub fn parse_cmdline(raw: &[u8]) -> Vec<String> {
    raw.split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// The command line of this process's parent, words joined by spaces (the package manager that
/// ran a hook: pacman runs its hooks itself); `None` when it cannot be read or is empty.
pub fn parent_command() -> Option<String> {
    let ppid = std::os::unix::process::parent_id();
    let raw = std::fs::read(format!("/proc/{ppid}/cmdline")).ok()?;
    let words = parse_cmdline(&raw);
    (!words.is_empty()).then(|| words.join(" "))
}

/// Reads one process; `None` when it is gone, a kernel thread, or not LVM.
fn read_one(proc_dir: &Path, pid: i32) -> Option<LvmProcess> {
    let dir = proc_dir.join(pid.to_string());
    let exe = std::fs::read_link(dir.join("exe")).ok()?;
    let exe = match exe.to_str().and_then(|s| s.strip_suffix(" (deleted)")) {
        Some(s) => PathBuf::from(s),
        None => exe,
    };
    if !is_lvm_exe(&exe) {
        return None;
    }
    let raw = std::fs::read(dir.join("cmdline")).ok()?;
    let first = raw.split(|b| *b == 0).next().unwrap_or_default();
    let poller = is_poller_marker(&String::from_utf8_lossy(first));
    Some(LvmProcess {
        pid,
        exe,
        args: parse_cmdline(&raw),
        poller,
    })
}

/// Every live process running LVM's binary, in PID order. Zombies are not live.
pub fn lvm_processes(proc_dir: &Path) -> std::io::Result<Vec<LvmProcess>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(proc_dir)? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if pid <= 0 || !alive(proc_dir, pid) {
            continue;
        }
        if let Some(p) = read_one(proc_dir, pid) {
            out.push(p);
        }
    }
    out.sort_by_key(|p| p.pid);
    Ok(out)
}

/// The state letter of `/proc/PID/stat` (the field after the parenthesised command name).
pub fn stat_state(stat: &str) -> Option<char> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_ascii_whitespace().next()?.chars().next()
}

/// Whether `pid` still runs: its `/proc` entry exists and it is not a zombie (a dead process
/// its parent has not reaped; PID 1 of a busybox initramfs may never reap it).
pub fn alive(proc_dir: &Path, pid: i32) -> bool {
    match std::fs::read_to_string(proc_dir.join(pid.to_string()).join("stat")) {
        Ok(s) => !matches!(stat_state(&s), Some('Z' | 'X')),
        Err(_) => false,
    }
}

/// Sends SIGKILL to `pid` and waits, at most `timeout`, until it no longer runs. Returns
/// whether it is gone.
pub fn kill_and_wait(proc_dir: &Path, pid: i32, timeout: Duration) -> bool {
    let target = nix::unistd::Pid::from_raw(pid);
    if let Err(e) = nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGKILL) {
        // ESRCH: already gone.
        return e == nix::errno::Errno::ESRCH;
    }
    let deadline = Instant::now() + timeout;
    while alive(proc_dir, pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_as_each_lvm_writes_it() {
        // dm_strncpy (LVM 2.03.17+): n - 1 characters and a NUL; strncpy (2.03.16): n.
        for (argv0, want) in [
            ("(lvm2)", true), // /usr/bin/lvm, /sbin/lvm
            ("(lvm", true),   // a five-character argv[0] under dm_strncpy
            ("(l", true),     // `lvm` under dm_strncpy
            ("(lv", true),    // `lvm` under strncpy
            ("(", false),
            ("", false),
            ("lvm", false),
            ("/usr/sbin/lvm", false),
            ("(lvm2)x", false),
            ("(sd-pam)", false),
        ] {
            assert_eq!(is_poller_marker(argv0), want, "{argv0:?}");
        }
    }

    #[test]
    fn cmdline_with_the_marker_padding() {
        // strncpy over "/sbin/lvm" leaves NULs up to the old length.
        let raw = b"(lvm2)\0\0\0\0vgchange\0-aay\0--autoactivation\0event\0vg0\0";
        assert_eq!(
            parse_cmdline(raw),
            [
                "(lvm2)",
                "vgchange",
                "-aay",
                "--autoactivation",
                "event",
                "vg0"
            ]
        );
    }

    #[test]
    fn state_letter_after_a_command_name_with_spaces_and_parens() {
        assert_eq!(stat_state("42 (lvm) S 1 42 42 0 -1"), Some('S'));
        assert_eq!(stat_state("42 (a (b) c) Z 1 42"), Some('Z'));
        assert_eq!(stat_state("garbage"), None);
    }

    /// A process whose executable is named `lvm` and whose argv[0] is LVM's marker: found as
    /// a poller, killed, gone. Another `lvm` without the marker is a command, left alone.
    #[test]
    fn finds_and_kills_a_poller_but_not_a_command() {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let lvm = dir.path().join("lvm");
        std::fs::copy("/bin/sleep", &lvm).expect("copy sleep");
        let mut poller = std::process::Command::new(&lvm)
            .arg0("(lvm2)")
            .arg("30")
            .spawn()
            .expect("spawn poller");
        let mut command = std::process::Command::new(&lvm)
            .arg("30")
            .spawn()
            .expect("spawn command");
        let ppid = i32::try_from(poller.id()).expect("pid");
        let cpid = i32::try_from(command.id()).expect("pid");
        let proc_dir = Path::new("/proc");
        // Right after spawn, /proc may still show this test binary: wait until both children
        // run the program (however loaded the machine is).
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let found = loop {
            let found = lvm_processes(proc_dir).expect("list");
            if [ppid, cpid]
                .iter()
                .all(|pid| found.iter().any(|p| p.pid == *pid))
            {
                break found;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the children never showed up as lvm processes: {found:?}"
            );
            std::thread::sleep(Duration::from_millis(2));
        };
        let p = found.iter().find(|p| p.pid == ppid).expect("poller listed");
        assert!(p.poller, "{p:?}");
        assert_eq!(p.exe, lvm);
        assert_eq!(p.args, ["(lvm2)", "30"]);
        let c = found
            .iter()
            .find(|p| p.pid == cpid)
            .expect("command listed");
        assert!(!c.poller, "{c:?}");
        // Our children stay zombies until waited for: `alive` must not count them.
        assert!(kill_and_wait(proc_dir, ppid, Duration::from_secs(5)));
        assert!(!alive(proc_dir, ppid));
        assert!(alive(proc_dir, cpid));
        let _ = poller.wait();
        let _ = command.kill();
        let _ = command.wait();
    }
}
