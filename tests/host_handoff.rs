//! Host tier for `rewind handoff`: real processes that look like LVM's background pollers (an
//! executable named `lvm`, `argv[0]` LVM's `(lvm2)` marker) and like LVM commands (no marker),
//! LVM's lock files held by stock `flock(1)` as an LVM writer holds them, and a VG made by stock
//! LVM2 on a loop device (the scan the hand-off takes its locks by). This host has no
//! device-mapper: the devices are the recording fake (the VM tier boots the real thing).
//!
//! The hand-off scans every process on the machine, so these tests run one at a time.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Mutex;
use std::time::Duration;

mod common;
use common::{Loop, Lvm};
use rewind::config::Config;
use rewind::flow::early::Inputs;
use rewind::flow::handoff::{self, Env, Report};
use rewind::plan::cmdline::Cmdline;
use rewind::plan::decide::Level;
use rewind::plan::dev::UdevRules;
use rewind::plan::table::Table;
use rewind::system::blockdev::BlockDevice;
use rewind::system::dm::{DeviceMapper, FakeDm};
use rewind::system::procs;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const MIB: u64 = 1 << 20;

/// A VG `vg` on a fresh loop device, made by stock LVM2.
fn lab(vg: &str) -> Loop {
    let disk = Loop::new(16 * MIB);
    let lvm = Lvm::new(std::slice::from_ref(&disk));
    lvm.ok(&["vgcreate", "-qq", "-s", "1m", vg, &disk.dev]);
    lvm.ok(&[
        "lvcreate", "-qq", "-an", "-Zn", "-Wn", "-L", "4m", "-n", "root", vg,
    ]);
    disk
}

fn sum(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read image")
}

fn inputs(cmdline: &str) -> Inputs {
    Inputs {
        root: PathBuf::from("/"),
        cmdline: Cmdline::parse(cmdline),
        config: Config::default(),
    }
}

fn env(lock_dir: &Path, lock_ms: u64, settle_ms: u64) -> Env {
    Env {
        lock_dir: lock_dir.to_path_buf(),
        lock_timeout: Duration::from_millis(lock_ms),
        settle_timeout: Duration::from_millis(settle_ms),
        kill_timeout: Duration::from_secs(5),
    }
}

/// Runs the hand-off reading only `disk` (other tests' loop devices may hold VGs too).
fn run(inputs: &Inputs, env: &Env, disk: &Loop, dm: &mut dyn DeviceMapper) -> Report {
    let dev = PathBuf::from(&disk.dev);
    let select = move |d: &BlockDevice| {
        if d.node == dev {
            Ok(())
        } else {
            Err("not this test's disk".to_owned())
        }
    };
    handoff::hand_off(inputs, env, &select, dm)
}

/// A process running an executable named `lvm` (a copy of sleep) with `argv0`.
struct FakeLvm {
    _dir: tempfile::TempDir,
    child: Child,
}

impl FakeLvm {
    fn spawn(argv0: &str) -> FakeLvm {
        let dir = tempfile::tempdir().expect("tempdir");
        let exe = dir.path().join("lvm");
        std::fs::copy("/bin/sleep", &exe).expect("copy sleep");
        let child = Command::new(&exe)
            .arg0(argv0)
            .arg("60")
            .spawn()
            .expect("spawn");
        // Until it has exec'd, /proc shows the test binary. Wait for it however loaded the
        // machine is (a give-up after a second made a loaded run see no poller at all).
        let pid = i32::try_from(child.id()).expect("pid");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut fake = FakeLvm { _dir: dir, child };
        while !procs::lvm_processes(Path::new("/proc"))
            .expect("proc")
            .iter()
            .any(|p| p.pid == pid)
        {
            if std::time::Instant::now() > deadline {
                let _ = fake.child.kill();
                panic!("the fake LVM process {pid} never showed up as one in /proc");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        fake
    }

    fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid")
    }

    fn alive(&self) -> bool {
        procs::alive(Path::new("/proc"), self.pid())
    }
}

impl Drop for FakeLvm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Stock flock(1) holding LVM's lock file of `vg` exclusively for `secs`, as an LVM command
/// holds it while it writes; returns once the lock is held.
fn hold_lock(lock_dir: &Path, vg: &str, secs: &str) -> Child {
    let path = lock_dir.join(format!("V_{vg}"));
    let child = Command::new("flock")
        .arg("-x")
        .arg(&path)
        .args(["sleep", secs])
        .spawn()
        .expect("flock");
    let mut child = child;
    for _ in 0..500 {
        let free = Command::new("flock")
            .args(["-n", "-x"])
            .arg(&path)
            .arg("true")
            .status()
            .expect("flock -n");
        if !free.success() {
            return child;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("flock never took {}", path.display());
}

fn messages(r: &Report, level: Level) -> Vec<&str> {
    r.notes
        .iter()
        .filter(|n| n.level == level)
        .map(|n| n.message.as_str())
        .collect()
}

#[test]
fn a_poller_is_stopped_only_once_the_writer_has_let_go() {
    require_host!("a_poller_is_stopped_only_once_the_writer_has_let_go");
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let disk = lab("hoff1");
    let before = sum(&disk.image());
    let locks = tempfile::tempdir().expect("tempdir");
    let poller = FakeLvm::spawn("(lvm2)");
    let mut writer = hold_lock(locks.path(), "hoff1", "1");
    let mut dm = FakeDm::new();
    let report = run(
        &inputs(""),
        &env(locks.path(), 20_000, 2_000),
        &disk,
        &mut dm,
    );
    // The writer exits once its sleep ends and releases the lock: had the hand-off not waited
    // for it, it would have returned while the writer still ran.
    assert!(
        writer.try_wait().expect("try_wait").is_some(),
        "returned while an lvm writer still held the vg's lock: {report:?}"
    );
    assert_eq!(
        report.stopped.iter().map(|s| s.pid).collect::<Vec<_>>(),
        [poller.pid()],
        "{report:?}"
    );
    assert_eq!(report.stopped[0].args, ["(lvm2)", "60"]);
    assert!(!poller.alive(), "the poller still runs");
    assert_eq!(report.exit_code(), 0, "{report:?}");
    assert!(
        messages(&report, Level::Info)
            .iter()
            .any(|m| m.contains("finished after switch_root")),
        "{report:?}"
    );
    assert!(dm.mutating_calls().is_empty(), "{:?}", dm.calls());
    assert!(
        sum(&disk.image()) == before,
        "the hand-off wrote to the disk"
    );
    assert!(
        !locks.path().join("V_hoff1").exists(),
        "lock file left behind (lvm unlinks it on release)"
    );
}

#[test]
fn an_lvm_command_is_waited_for_and_left_alone() {
    require_host!("an_lvm_command_is_waited_for_and_left_alone");
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let disk = lab("hoff2");
    let locks = tempfile::tempdir().expect("tempdir");
    let command = FakeLvm::spawn("/usr/sbin/lvm");
    let poller = FakeLvm::spawn("(lvm2)");
    let mut dm = FakeDm::new();
    let report = run(&inputs(""), &env(locks.path(), 5_000, 300), &disk, &mut dm);
    assert!(command.alive(), "an lvm command was killed: {report:?}");
    assert!(!poller.alive(), "{report:?}");
    let warn = messages(&report, Level::Warn);
    assert!(
        warn.iter()
            .any(|m| m.starts_with("lvm command(s) still running after")
                && m.contains(&command.pid().to_string())),
        "{report:?}"
    );
}

#[test]
fn pollers_are_left_running_when_a_lock_cannot_be_had() {
    require_host!("pollers_are_left_running_when_a_lock_cannot_be_had");
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let disk = lab("hoff3");
    let locks = tempfile::tempdir().expect("tempdir");
    let poller = FakeLvm::spawn("(lvm2)");
    let mut writer = hold_lock(locks.path(), "hoff3", "30");
    let mut dm = FakeDm::new();
    let report = run(&inputs(""), &env(locks.path(), 300, 300), &disk, &mut dm);
    assert!(poller.alive(), "stopped without the vg's lock: {report:?}");
    assert!(report.stopped.is_empty());
    assert_eq!(report.exit_code(), 1);
    let errors = messages(&report, Level::Error);
    assert!(
        errors
            .iter()
            .any(|m| m.starts_with("vg hoff3: lvm lock ") && m.contains("pollers left running")),
        "{report:?}"
    );
    let _ = writer.kill();
    let _ = writer.wait();
}

#[test]
fn nothing_runs_and_nothing_is_scanned_without_a_poller() {
    require_host!("nothing_runs_and_nothing_is_scanned_without_a_poller");
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let locks = tempfile::tempdir().expect("tempdir");
    let scanned = std::cell::Cell::new(0);
    let select = |_: &BlockDevice| {
        scanned.set(scanned.get() + 1);
        Err("counted".to_owned())
    };
    let mut dm = FakeDm::new();
    let report = handoff::hand_off(&inputs(""), &env(locks.path(), 300, 300), &select, &mut dm);
    assert!(
        report.notes.is_empty() && report.stopped.is_empty(),
        "{report:?}"
    );
    assert_eq!(scanned.get(), 0, "a device was looked at");
    assert!(dm.mutating_calls().is_empty());
}

#[test]
fn rd_rewind_0_leaves_the_pollers() {
    require_host!("rd_rewind_0_leaves_the_pollers");
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let disk = lab("hoff4");
    let locks = tempfile::tempdir().expect("tempdir");
    let poller = FakeLvm::spawn("(lvm2)");
    let mut dm = FakeDm::new();
    let report = run(
        &inputs("rd.rewind=0"),
        &env(locks.path(), 300, 300),
        &disk,
        &mut dm,
    );
    assert!(poller.alive());
    assert!(
        report.notes.is_empty() && report.stopped.is_empty(),
        "{report:?}"
    );
    assert!(dm.calls().is_empty(), "{:?}", dm.calls());
}

const UUID: &str = "LVM-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Suspended devices left behind: LVM's with nothing to swap in are resumed under the locks;
/// one with a table waiting, and a device that is not LVM's, are left alone.
#[test]
fn leftover_suspended_lvm_devices_are_resumed_under_the_locks() {
    require_host!("leftover_suspended_lvm_devices_are_resumed_under_the_locks");
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let disk = lab("hoff5");
    let locks = tempfile::tempdir().expect("tempdir");
    let mut dm = FakeDm::new();
    let table: Table = "0 2048 error".parse().expect("table");
    let other: Table = "0 4096 error".parse().expect("table");
    for (name, uuid) in [
        ("hoff5-root", UUID.to_owned()),
        ("hoff5-root-real", format!("{UUID}-real")),
        ("hoff5-data", UUID.replace("0123", "4567")),
        ("crypt", "CRYPT-LUKS2-x".to_owned()),
    ] {
        dm.create(name, &uuid).expect("create");
        dm.load(name, &table).expect("load");
        dm.resume(name, UdevRules::All).expect("resume");
        dm.suspend(name).expect("suspend");
    }
    dm.load("hoff5-data", &other).expect("inactive table");
    dm.clear_calls();
    let report = run(&inputs(""), &env(locks.path(), 5_000, 300), &disk, &mut dm);
    assert_eq!(
        report.resumed,
        ["hoff5-root", "hoff5-root-real"],
        "{report:?}"
    );
    let states = dm.list().expect("list");
    let suspended = |n: &str| states.iter().any(|s| s.name == n && s.suspended);
    assert!(!suspended("hoff5-root") && !suspended("hoff5-root-real"));
    assert!(
        suspended("hoff5-data"),
        "one with a table waiting was touched"
    );
    assert!(suspended("crypt"), "a device that is not lvm's was touched");
    assert_eq!(dm.live_table("hoff5-root"), Some(&table), "its own table");
    assert_eq!(report.exit_code(), 1);
    assert!(
        messages(&report, Level::Error)
            .iter()
            .any(|m| m.starts_with("hoff5-data is suspended with a table waiting")),
        "{report:?}"
    );
}
