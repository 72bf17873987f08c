//! The device-mapper boundary: the `DeviceMapper` trait a plan executes against, the real
//! implementation over the devicemapper crate, and a recording fake for tests.
//!
//! # What the devicemapper crate (0.34.8) does with udev, and how rewind bounds it
//!
//! Read in `src/core/dm.rs` (`do_ioctl`) and `src/core/dm_udev_sync.rs` (`UdevSync::begin/end`):
//! - Only `DM_DEV_REMOVE`, `DM_DEV_RENAME` and `DM_DEV_SUSPEND` *without* `DM_SUSPEND` (a resume)
//!   take a udev cookie. Create, load, suspend, info, status and list never wait.
//! - A cookie is taken when SysV semaphores work (`semctl(SEM_INFO)`, checked once) **and**
//!   `access("/run/udev/control", F_OK)` succeeds. There is no feature, environment variable or
//!   flag to turn it off: `DmUdevFlags` (`DM_UDEV_DISABLE_*`) only travel to the udev rules in
//!   the cookie; they do not stop the wait.
//! - With a cookie, after the ioctl the crate blocks in `semop(sem_op = 0)` with no timeout
//!   until udev's `95-dm-notify.rules` runs `dmsetup udevcomplete`. If udev runs without the dm
//!   rules, it blocks forever. (libdm's `_udev_wait` is unbounded too.)
//! - The cookie's low 16 bits come from `rand::rng()`, seeded through the `getrandom` crate.
//!   Its `getrandom(2)` backend sleeps until the kernel's CRNG is ready (~1.2 s early in boot
//!   under qemu TCG). This binary selects getrandom's custom backend instead
//!   (`system::random`: `GRND_NONBLOCK`, then `GRND_INSECURE`), so a cookie never waits for the
//!   random pool; the key only has to differ from other live cookies.
//!
//! # How `RealDm` uses it
//!
//! - **Is udev there?** The crate takes a cookie when `/run/udev/control` *exists*. A socket
//!   left behind by a udevd that is gone (killed, or stopped by an initramfs before
//!   switch_root: in the guest even `udevadm control --exit` left the file) would make every
//!   cookie wait for nobody. `RealDm` probes the socket with a non-blocking `connect()`
//!   ([`udev_presence`]: `Absent`, `Listening` or `Stale`; probed again when the file appears
//!   or goes away, or while it is stale). The crate itself still only checks existence, so
//!   with a stale socket it still takes cookies; `RealDm` then completes its own cookies as
//!   soon as the crate waits on them (what `dmsetup udevcomplete` would do).
//! - **One wait per plan, not per device** (what libdm does: LVM takes one cookie for a whole
//!   activation tree and waits once, `dm_udev_wait`). The crate's calls cannot share a cookie:
//!   each resume or remove issues its ioctl and then blocks until udev is done with that one
//!   device. So `resume` runs the crate call on a worker thread and returns as soon as the
//!   *kernel* has resumed the device (`info`: not suspended, no inactive table) or the call
//!   failed; the worker keeps waiting for udev meanwhile. The ioctls therefore still run one at
//!   a time in plan order; only the udev waits overlap. [`DeviceMapper::udev_sync`] (called
//!   by the executor at the end of each plan, and by `remove`, `wait_for_udev` and `drop`)
//!   waits for all of them; so does `suspend`, so udev never probes a device while it is
//!   suspended. A resume whose device was already live with nothing to swap in
//!   waits for its worker at once, so no ioctl can ever run after the call returned.
//! - **Bounded.** Each wait has a deadline of `udev_timeout` from its start; past it `RealDm`
//!   completes this process's own waiting cookies itself, which lets the crate return; if even
//!   that does not free the worker, `DmError::UdevTimeout` and the thread is left behind.
//!
//! Without `/run/udev/control` (an initramfs without udev) nothing waits and no thread starts;
//! `/dev/mapper` nodes must then be made by rewind itself (not in this module; also when the
//! socket is stale, see `nodes::udev_running`).
//!
//! # What a VM test must check (this host has no device-mapper)
//!
//! - `RealDm` create/load/suspend/resume/remove/table/status against a real kernel, for each
//!   target in `plan::table`, and that `table(Live)` parses back equal to what was loaded once
//!   paths are replaced by `major:minor` (the kernel prints numbers; `PO` for persistent stores).
//! - The merge layout (`-real`, `-cow`, `error`, `snapshot-merge`) reads back as LVM's own:
//!   `dmsetup info -c -o name,uuid` and `lvs -a` in the guest agree with rewind's names/UUIDs.
//! - `status` of a merging origin moves to `allocated == metadata`, and `Invalid` after the COW
//!   is corrupted.
//! - No udev (busybox initramfs): resume/remove return at once, no SysV semaphore is left in
//!   `/proc/sysvipc/sem`, and `strace` shows no read of `/dev/random`.
//! - udev with dm rules: a plan's resumes return when the kernel is done, `execute` returns
//!   after udev completes all of them, and `/dev/mapper/NAME` and `/dev/VG/LV` exist afterwards
//!   (checked by `bench-activate`, phase udev: tables equal LVM's, no cookie left).
//! - A stale `/run/udev/control` (udevd killed): resume returns at once, rewind makes the nodes,
//!   no cookie is left (`bench-activate`, phase stale).
//! - udev without `95-dm-notify.rules`: resume returns after about `udev_timeout` with success
//!   (cookie completed by rewind), and the semaphore is gone afterwards.
//! - Remove of a mounted device returns `Busy` with its open count after the crate's retries.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use crate::plan::table::{DevRef, SnapshotStatus, StatusLine, Table, TableError, Target};

/// A device number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DevNum {
    pub major: u32,
    pub minor: u32,
}

impl fmt::Display for DevNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

/// What the kernel says about one device-mapper device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceState {
    pub name: String,
    pub uuid: Option<String>,
    pub dev: DevNum,
    pub open_count: u32,
    pub suspended: bool,
    pub live_table: bool,
    pub inactive_table: bool,
}

/// Which of a device's two table slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Live,
    Inactive,
}

/// Which udev rules may act on a device's events (LVM's `_get_udev_flags`, with udev managing
/// the nodes). Carried in the cookie of a resume or remove.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UdevRules {
    /// A visible top-level LV (`vg-root`): every rule runs.
    All,
    /// A visible snapshot (`vg-pre`): every rule, but origins win symlink names.
    LowPriority,
    /// A layer or hidden LV (`-real`, `-cow`): only `/dev/mapper` content.
    DmOnly,
}

/// How a wait for udev ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UdevWait {
    /// No udev (`/run/udev/control` absent): nothing to wait for.
    NotRunning,
    /// udev's event queue is empty.
    Settled,
    /// The queue was still busy at the deadline.
    TimedOut,
}

/// Device-mapper errors, each naming the device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DmError {
    #[error("cannot open /dev/mapper/control: {0}")]
    Control(String),
    #[error("device-mapper device {name} does not exist")]
    NoSuchDevice { name: String },
    #[error("device-mapper device {name} (uuid {uuid}) cannot be created: name or uuid in use")]
    Exists { name: String, uuid: String },
    #[error("device-mapper device {name} is open {open_count} time(s)")]
    Busy { name: String, open_count: u32 },
    #[error("device-mapper device {name} has no table to resume")]
    NoTable { name: String },
    #[error("device-mapper table for {name} is invalid: {source}")]
    BadTable { name: String, source: TableError },
    #[error("device-mapper table for {name} refers to missing device {dev}")]
    MissingDevice { name: String, dev: String },
    #[error("device-mapper device {name} reported a table rewind cannot read: {source}")]
    ReadTable { name: String, source: TableError },
    #[error("device-mapper {op} of {name} failed: {message}")]
    Kernel {
        name: String,
        op: &'static str,
        message: String,
    },
    #[error("device-mapper {op} of {name}: udev did not complete within {waited_ms} ms")]
    UdevTimeout {
        name: String,
        op: &'static str,
        waited_ms: u128,
    },
    #[error("device-mapper {op} of {name}: injected crash")]
    Injected { name: String, op: &'static str },
}

/// The operations a plan executes. Names are device-mapper names (`vg-root-real`).
pub trait DeviceMapper {
    /// Every device-mapper device, sorted by name.
    fn list(&mut self) -> Result<Vec<DeviceState>, DmError>;
    /// One device, or `None` if there is none of that name.
    fn info(&mut self, name: &str) -> Result<Option<DeviceState>, DmError>;
    /// A new device with no table (the kernel creates it suspended).
    fn create(&mut self, name: &str, uuid: &str) -> Result<DevNum, DmError>;
    /// Loads `table` into the inactive slot.
    fn load(&mut self, name: &str, table: &Table) -> Result<(), DmError>;
    /// Suspends (flushing I/O).
    fn suspend(&mut self, name: &str) -> Result<(), DmError>;
    /// Swaps in the inactive table, if any, and resumes.
    fn resume(&mut self, name: &str, rules: UdevRules) -> Result<(), DmError>;
    /// Removes the device; fails if it is open.
    fn remove(&mut self, name: &str, rules: UdevRules) -> Result<(), DmError>;
    /// The live or inactive table (empty when there is none).
    fn table(&mut self, name: &str, slot: Slot) -> Result<Table, DmError>;
    /// The live table's status lines.
    fn status(&mut self, name: &str) -> Result<Vec<StatusLine>, DmError>;
    /// Waits, at most `timeout`, for udev to finish its queued events.
    fn wait_for_udev(&mut self, timeout: Duration) -> Result<UdevWait, DmError>;
    /// Waits (bounded) until udev has processed every resume made so far whose wait was left
    /// pending, and returns the first failure among them. Implementations that never leave a
    /// wait pending have nothing to do.
    fn udev_sync(&mut self) -> Result<(), DmError> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The real implementation.

const UDEV_CONTROL: &str = "/run/udev/control";
const UDEV_QUEUE: &str = "/run/udev/queue";
const SYSVIPC_SEM: &str = "/proc/sysvipc/sem";
/// `DM_COOKIE_MAGIC` (libdm `libdevmapper.h`): the high 16 bits of every cookie's IPC key.
const DM_COOKIE_MAGIC: u32 = 0x0D4D;

/// The kernel's device-mapper, through the devicemapper crate.
pub struct RealDm {
    dm: Arc<devicemapper::DM>,
    udev_timeout: Duration,
    /// What the probe of `/run/udev/control` found (at the first cookie call; again when the
    /// file appears or goes away).
    udev: Option<UdevPresence>,
    /// Resumes done by the kernel whose udev wait is still running on a worker thread.
    pending: Vec<PendingWait>,
    /// Whether udev has device-mapper's rules (`nodes::dm_rules_installed`), read at the first
    /// cookie call that finds udev listening.
    dm_rules: Option<bool>,
}

/// A crate call still waiting for udev on its worker thread.
struct PendingWait {
    name: String,
    op: &'static str,
    rx: mpsc::Receiver<devicemapper::DmResult<()>>,
    started: Instant,
}

impl fmt::Debug for RealDm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RealDm")
            .field("udev_timeout", &self.udev_timeout)
            .field("udev", &self.udev)
            .field("pending", &self.pending.len())
            .field("dm_rules", &self.dm_rules)
            .finish_non_exhaustive()
    }
}

/// The errno of a failed ioctl, if that is what failed.
fn errno_of(e: &devicemapper::DmError) -> Option<nix::errno::Errno> {
    match e {
        devicemapper::DmError::Core(devicemapper::errors::Error::Ioctl(_, _, _, errno)) => {
            Some(**errno)
        }
        _ => None,
    }
}

fn kernel_err(name: &str, op: &'static str, e: &devicemapper::DmError) -> DmError {
    match errno_of(e) {
        Some(nix::errno::Errno::ENXIO) => {
            return DmError::NoSuchDevice {
                name: name.to_owned(),
            };
        }
        Some(nix::errno::Errno::EBUSY) if op == "remove" => {
            // The open count is filled in by the caller.
            return DmError::Busy {
                name: name.to_owned(),
                open_count: 0,
            };
        }
        _ => {}
    }
    DmError::Kernel {
        name: name.to_owned(),
        op,
        message: e.to_string(),
    }
}

/// Whether a udev daemon listens on its control socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UdevPresence {
    /// No socket file: no udev.
    Absent,
    /// Something accepts connections on it (or the probe could not tell: then we wait, bounded).
    Listening,
    /// The file is there but nobody listens (`ECONNREFUSED`): a udevd that is gone.
    Stale,
}

/// What a failed `connect()` to the control socket says about udev.
fn presence_from_connect_errno(errno: i32) -> UdevPresence {
    use nix::libc;
    match errno {
        libc::ECONNREFUSED => UdevPresence::Stale,
        libc::ENOENT | libc::ENOTDIR => UdevPresence::Absent,
        // EAGAIN: the listen backlog is full, EINPROGRESS/EINTR: accepted later, EPROTOTYPE:
        // bound to another socket type, EACCES: not ours to use; in every case something is
        // bound there. Anything else: assume udev and keep the bounded wait.
        _ => UdevPresence::Listening,
    }
}

/// Probes the udev control socket at `path` with a non-blocking `connect()` (`SOCK_SEQPACKET`,
/// as systemd-udevd and eudev listen); returns at once. Connecting is harmless: udevd reads a
/// control message from the connection, finds it closed and drops it.
pub fn udev_presence(path: &Path) -> UdevPresence {
    use nix::libc;
    use std::os::unix::ffi::OsStrExt;
    if std::fs::symlink_metadata(path).is_err() {
        return UdevPresence::Absent;
    }
    // SAFETY: zeroed is a valid bit pattern for sockaddr_un (plain integers and bytes).
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() >= addr.sun_path.len() {
        return UdevPresence::Listening;
    }
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    // SAFETY: socket() has no memory arguments; the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return UdevPresence::Listening;
    }
    // SAFETY: `addr` is a valid sockaddr_un and the length passed is its size; `fd` is ours.
    let r = unsafe {
        libc::connect(
            fd,
            std::ptr::from_ref(&addr).cast(),
            std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
        )
    };
    let presence = if r == 0 {
        UdevPresence::Listening
    } else {
        presence_from_connect_errno(nix::errno::Errno::last_raw())
    };
    // SAFETY: `fd` is a descriptor this function opened and nothing else uses.
    unsafe { libc::close(fd) };
    presence
}

fn udev_flags(rules: UdevRules) -> devicemapper::DmUdevFlags {
    use devicemapper::DmUdevFlags as F;
    // LVM sets LIBRARY_FALLBACK off-switch when udev manages nodes (its default).
    let base = F::DM_UDEV_DISABLE_LIBRARY_FALLBACK;
    match rules {
        UdevRules::All => base,
        UdevRules::LowPriority => base | F::DM_UDEV_LOW_PRIORITY_FLAG,
        UdevRules::DmOnly => {
            base | F::DM_UDEV_DISABLE_SUBSYSTEM_RULES_FLAG
                | F::DM_UDEV_DISABLE_DISK_RULES_FLAG
                | F::DM_UDEV_DISABLE_OTHER_RULES_FLAG
        }
    }
}

/// One row of `/proc/sysvipc/sem`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SemRow {
    key: u32,
    semid: i32,
    cuid: u32,
}

/// Parses `/proc/sysvipc/sem` (`key semid perms nsems uid gid cuid cgid otime ctime`).
fn parse_sysvipc_sem(text: &str) -> Vec<SemRow> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_ascii_whitespace().collect();
            let key = f.first()?.parse::<i64>().ok()?;
            Some(SemRow {
                // keys are printed as signed ints; the cookie magic makes them positive anyway
                key: key as u32,
                semid: f.get(1)?.parse().ok()?,
                cuid: f.get(6)?.parse().ok()?,
            })
        })
        .collect()
}

/// This process's dm cookies still waiting for udev.
fn own_cookies(rows: &[SemRow], euid: u32) -> impl Iterator<Item = &SemRow> {
    rows.iter()
        .filter(move |r| r.key >> 16 == DM_COOKIE_MAGIC && r.cuid == euid)
}

/// Completes this process's pending dm cookies, as `dmsetup udevcomplete` would. Only
/// semaphores last touched by this process (`GETPID`) and that a thread is waiting on
/// (`GETZCNT`: the crate's final `semop(0)`) are completed, so another process's cookie (lvm
/// running beside us) is left alone, and a cookie is never decremented before the crate's own
/// decrement (which would make that one fail). Returns how many were completed.
fn complete_own_cookies() -> usize {
    let Ok(text) = std::fs::read_to_string(SYSVIPC_SEM) else {
        return 0;
    };
    let rows = parse_sysvipc_sem(&text);
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { nix::libc::geteuid() };
    let pid = i32::try_from(std::process::id()).unwrap_or(-1);
    let mut done = 0;
    for row in own_cookies(&rows, euid) {
        // SAFETY: GETPID, GETVAL and GETZCNT take no fourth argument and only read the set;
        // a stale or foreign semid makes the call fail with -1, which is checked.
        let (last_pid, val, waiting) = unsafe {
            (
                nix::libc::semctl(row.semid, 0, nix::libc::GETPID),
                nix::libc::semctl(row.semid, 0, nix::libc::GETVAL),
                nix::libc::semctl(row.semid, 0, nix::libc::GETZCNT),
            )
        };
        if last_pid != pid || val <= 0 || waiting <= 0 {
            continue;
        }
        let mut op = nix::libc::sembuf {
            sem_num: 0,
            sem_op: -1,
            sem_flg: nix::libc::IPC_NOWAIT as i16,
        };
        // SAFETY: `op` is one valid sembuf and we pass a count of 1; IPC_NOWAIT keeps the call
        // from blocking; failure (-1) is tolerated: the semaphore may be gone already.
        if unsafe { nix::libc::semop(row.semid, &mut op, 1) } == 0 {
            log::warn!(
                "completed udev cookie 0x{:x} ourselves: udev did not",
                row.key
            );
            done += 1;
        }
    }
    done
}

type CookieCall = fn(
    &devicemapper::DM,
    &devicemapper::DmName,
    devicemapper::DmOptions,
) -> devicemapper::DmResult<()>;

/// How often a wait looks again (the kernel's part of a resume takes about a millisecond).
const POLL: Duration = Duration::from_millis(1);

impl RealDm {
    /// Opens `/dev/mapper/control`. `udev_timeout` bounds each wait for udev.
    pub fn new(udev_timeout: Duration) -> Result<Self, DmError> {
        let dm = devicemapper::DM::new().map_err(|e| DmError::Control(e.to_string()))?;
        Ok(RealDm {
            dm: Arc::new(dm),
            udev_timeout,
            udev: None,
            pending: Vec::new(),
            dm_rules: None,
        })
    }

    fn id(name: &str) -> Result<&devicemapper::DmName, DmError> {
        devicemapper::DmName::new(name).map_err(|e| DmError::Kernel {
            name: name.to_owned(),
            op: "name check",
            message: e.to_string(),
        })
    }

    fn state(info: &devicemapper::DeviceInfo, fallback: &str) -> DeviceState {
        use devicemapper::DmFlags as F;
        let flags = info.flags();
        DeviceState {
            name: info
                .name()
                .map_or_else(|| fallback.to_owned(), |n| n.to_string()),
            uuid: info.uuid().map(|u| u.to_string()),
            dev: DevNum {
                major: info.device().major,
                minor: info.device().minor,
            },
            open_count: u32::try_from(info.open_count()).unwrap_or(0),
            suspended: flags.contains(F::DM_SUSPEND),
            live_table: flags.contains(F::DM_ACTIVE_PRESENT),
            inactive_table: flags.contains(F::DM_INACTIVE_PRESENT),
        }
    }

    /// How a cookie call treats udev: as [`Self::probe`] found it, except that a listening
    /// udev without device-mapper's rules is treated as a stale one (no rule would ever
    /// complete the cookie, so rewind completes its own at once: an initramfs built without
    /// LVM2's hook has udev but not these rules).
    fn presence(&mut self) -> UdevPresence {
        let p = self.probe();
        if p != UdevPresence::Listening {
            return p;
        }
        let rules = *self.dm_rules.get_or_insert_with(|| {
            let found = crate::system::nodes::dm_rules_installed(Path::new("/"));
            if !found {
                log::info!(
                    "udev runs without device-mapper's rules (none runs `dmsetup udevcomplete`): rewind completes its own udev cookies and makes the device nodes"
                );
            }
            found
        });
        if rules { p } else { UdevPresence::Stale }
    }

    /// The probe's answer, cached; probed again when the socket file appeared or went away
    /// since, and on every call while it is stale (a long-running `rewind poll` may see udev
    /// start or stop).
    fn probe(&mut self) -> UdevPresence {
        let exists = std::fs::symlink_metadata(UDEV_CONTROL).is_ok();
        match self.udev {
            Some(p) if p != UdevPresence::Stale && (p != UdevPresence::Absent) == exists => p,
            _ => {
                let p = udev_presence(Path::new(UDEV_CONTROL));
                if p == UdevPresence::Stale && self.udev != Some(UdevPresence::Stale) {
                    log::info!(
                        "{UDEV_CONTROL} is left from a udev that is gone: completing udev cookies at once"
                    );
                }
                self.udev = Some(p);
                p
            }
        }
    }

    /// Starts the crate call on a worker thread.
    fn spawn(
        &self,
        name: &str,
        op: &'static str,
        rules: UdevRules,
        call: CookieCall,
    ) -> Result<PendingWait, DmError> {
        let options = devicemapper::DmOptions::default().set_udev_flags(udev_flags(rules));
        let dm_name = Self::id(name)?.to_owned();
        let (tx, rx) = mpsc::channel();
        let dm = Arc::clone(&self.dm);
        std::thread::Builder::new()
            .name(format!("dm-{op}"))
            .spawn(move || {
                let _ = tx.send(call(&dm, &dm_name, options));
            })
            .map_err(|e| DmError::Kernel {
                name: name.to_owned(),
                op,
                message: format!("cannot start worker thread: {e}"),
            })?;
        Ok(PendingWait {
            name: name.to_owned(),
            op,
            rx,
            started: Instant::now(),
        })
    }

    /// Waits for a worker until it returns, bounded by `udev_timeout` from its start; with a
    /// stale udev socket, completes our cookies as soon as the crate waits on them.
    fn finish(&self, w: &PendingWait, stale: bool) -> Result<(), DmError> {
        let deadline = w.started + self.udev_timeout;
        let result = loop {
            let now = Instant::now();
            if now >= deadline {
                break None;
            }
            let step = if stale {
                POLL
            } else {
                deadline.saturating_duration_since(now)
            };
            match w.rx.recv_timeout(step) {
                Ok(r) => break Some(r),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(DmError::Kernel {
                        name: w.name.clone(),
                        op: w.op,
                        message: "worker thread ended without a result".into(),
                    });
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if stale {
                        complete_own_cookies();
                    }
                }
            }
        };
        let result = match result {
            Some(r) => r,
            None => {
                log::warn!(
                    "{} of {}: udev has not completed after {:?}",
                    w.op,
                    w.name,
                    self.udev_timeout
                );
                complete_own_cookies();
                match w.rx.recv_timeout(Duration::from_secs(2)) {
                    Ok(r) => r,
                    Err(_) => {
                        return Err(DmError::UdevTimeout {
                            name: w.name.clone(),
                            op: w.op,
                            waited_ms: w.started.elapsed().as_millis(),
                        });
                    }
                }
            }
        };
        result.map_err(|e| kernel_err(&w.name, w.op, &e))
    }

    /// Runs a call that may take a udev cookie and waits for udev, as the module
    /// documentation describes.
    fn cookie_call(
        &mut self,
        name: &str,
        op: &'static str,
        rules: UdevRules,
        call: CookieCall,
    ) -> Result<(), DmError> {
        let presence = self.presence();
        if presence == UdevPresence::Absent {
            let options = devicemapper::DmOptions::default().set_udev_flags(udev_flags(rules));
            return call(&self.dm, Self::id(name)?, options).map_err(|e| kernel_err(name, op, &e));
        }
        let w = self.spawn(name, op, rules, call)?;
        self.finish(&w, presence == UdevPresence::Stale)
    }

    /// Whether the kernel has finished resuming `name` (live, nothing left to swap in).
    fn kernel_resumed(&self, name: &str) -> Result<bool, DmError> {
        match self
            .dm
            .device_info(&devicemapper::DevId::Name(Self::id(name)?))
        {
            Ok(info) => {
                let s = Self::state(&info, name);
                Ok(!s.suspended && !s.inactive_table)
            }
            Err(e) => Err(kernel_err(name, "info", &e)),
        }
    }

    /// A resume whose udev wait may be left pending (see the module documentation).
    fn resume_deferred(&mut self, name: &str, rules: UdevRules) -> Result<(), DmError> {
        let presence = self.presence();
        if presence != UdevPresence::Listening || self.kernel_resumed(name)? {
            // No udev, a stale socket (completed at once), or nothing for the kernel to do:
            // wait for the call itself, so no ioctl of it can run after we return.
            return self.cookie_call(name, "resume", rules, resume_call);
        }
        let w = self.spawn(name, "resume", rules, resume_call)?;
        let deadline = w.started + self.udev_timeout;
        loop {
            match w.rx.try_recv() {
                // The call ended (udev was quick, or the ioctl failed): nothing pending.
                Ok(r) => return r.map_err(|e| kernel_err(name, "resume", &e)),
                Err(mpsc::TryRecvError::Disconnected) => {
                    return Err(DmError::Kernel {
                        name: name.to_owned(),
                        op: "resume",
                        message: "worker thread ended without a result".into(),
                    });
                }
                Err(mpsc::TryRecvError::Empty) => {}
            }
            if self.kernel_resumed(name)? {
                log::debug!("resume of {name}: done by the kernel; udev's part left pending");
                self.pending.push(w);
                return Ok(());
            }
            if Instant::now() >= deadline {
                // The ioctl itself has not finished in time: wait for it as a whole, bounded.
                return self.finish(&w, false);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits for every pending udev wait; the first failure is returned after all were waited.
    fn sync_pending(&mut self) -> Result<(), DmError> {
        let stale = self.udev == Some(UdevPresence::Stale);
        let mut first = None;
        for w in std::mem::take(&mut self.pending) {
            match self.finish(&w, stale) {
                Ok(()) => log::debug!(
                    "{} of {}: udev done {} ms after the call",
                    w.op,
                    w.name,
                    w.started.elapsed().as_millis()
                ),
                Err(e) => {
                    log::warn!("{e}");
                    first.get_or_insert(e);
                }
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Drop for RealDm {
    fn drop(&mut self) {
        // Never leave a cookie behind: wait (bounded) for udev's part of earlier resumes.
        let _ = self.sync_pending();
    }
}

fn resume_call(
    dm: &devicemapper::DM,
    name: &devicemapper::DmName,
    options: devicemapper::DmOptions,
) -> devicemapper::DmResult<()> {
    dm.device_suspend(&devicemapper::DevId::Name(name), options)
        .map(|_| ())
}

fn remove_call(
    dm: &devicemapper::DM,
    name: &devicemapper::DmName,
    options: devicemapper::DmOptions,
) -> devicemapper::DmResult<()> {
    // The crate retries EBUSY 4 more times, 200 ms apart.
    dm.device_remove(&devicemapper::DevId::Name(name), options)
        .map(|_| ())
}

impl DeviceMapper for RealDm {
    fn list(&mut self) -> Result<Vec<DeviceState>, DmError> {
        let names = self
            .dm
            .list_devices()
            .map_err(|e| kernel_err("(all)", "list", &e))?;
        let mut out = Vec::new();
        for (name, _, _) in names {
            // A device removed between list and info is simply skipped.
            if let Some(s) = self.info(&name.to_string())? {
                out.push(s);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn info(&mut self, name: &str) -> Result<Option<DeviceState>, DmError> {
        match self
            .dm
            .device_info(&devicemapper::DevId::Name(Self::id(name)?))
        {
            Ok(info) => Ok(Some(Self::state(&info, name))),
            Err(e) => match kernel_err(name, "info", &e) {
                DmError::NoSuchDevice { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    fn create(&mut self, name: &str, uuid: &str) -> Result<DevNum, DmError> {
        let dm_uuid = devicemapper::DmUuid::new(uuid).map_err(|e| DmError::Kernel {
            name: name.to_owned(),
            op: "uuid check",
            message: e.to_string(),
        })?;
        let info = self
            .dm
            .device_create(
                Self::id(name)?,
                Some(dm_uuid),
                devicemapper::DmOptions::default(),
            )
            .map_err(|e| {
                if errno_of(&e) == Some(nix::errno::Errno::EBUSY) {
                    DmError::Exists {
                        name: name.to_owned(),
                        uuid: uuid.to_owned(),
                    }
                } else {
                    kernel_err(name, "create", &e)
                }
            })?;
        Ok(DevNum {
            major: info.device().major,
            minor: info.device().minor,
        })
    }

    fn load(&mut self, name: &str, table: &Table) -> Result<(), DmError> {
        table.check().map_err(|source| DmError::BadTable {
            name: name.to_owned(),
            source,
        })?;
        self.dm
            .table_load(
                &devicemapper::DevId::Name(Self::id(name)?),
                &table.to_tuples(),
                devicemapper::DmOptions::default(),
            )
            .map(|_| ())
            .map_err(|e| kernel_err(name, "load", &e))
    }

    fn suspend(&mut self, name: &str) -> Result<(), DmError> {
        // udev must not be reading a device while it is suspended (its blkid would hang until
        // the resume): finish udev's part of earlier resumes first, as LVM syncs its device
        // names before suspending.
        self.sync_pending()?;
        // With DM_SUSPEND set the crate takes no udev cookie.
        let options =
            devicemapper::DmOptions::default().set_flags(devicemapper::DmFlags::DM_SUSPEND);
        self.dm
            .device_suspend(&devicemapper::DevId::Name(Self::id(name)?), options)
            .map(|_| ())
            .map_err(|e| kernel_err(name, "suspend", &e))
    }

    fn resume(&mut self, name: &str, rules: UdevRules) -> Result<(), DmError> {
        self.resume_deferred(name, rules)
    }

    fn remove(&mut self, name: &str, rules: UdevRules) -> Result<(), DmError> {
        // udev may still be reading a device resumed earlier: let it finish first.
        self.sync_pending()?;
        match self.cookie_call(name, "remove", rules, remove_call) {
            Err(DmError::Busy { .. }) => {
                // Still open after the crate's retries: report who holds it, as far as we know.
                let open_count = self.info(name)?.map_or(0, |s| s.open_count);
                Err(DmError::Busy {
                    name: name.to_owned(),
                    open_count,
                })
            }
            other => other,
        }
    }

    fn table(&mut self, name: &str, slot: Slot) -> Result<Table, DmError> {
        use devicemapper::DmFlags as F;
        let flags = match slot {
            Slot::Live => F::DM_STATUS_TABLE,
            Slot::Inactive => F::DM_STATUS_TABLE | F::DM_QUERY_INACTIVE_TABLE,
        };
        let (_, lines) = self
            .dm
            .table_status(
                &devicemapper::DevId::Name(Self::id(name)?),
                devicemapper::DmOptions::default().set_flags(flags),
            )
            .map_err(|e| kernel_err(name, "table", &e))?;
        Table::from_tuples(&lines).map_err(|source| DmError::ReadTable {
            name: name.to_owned(),
            source,
        })
    }

    fn status(&mut self, name: &str) -> Result<Vec<StatusLine>, DmError> {
        let (_, lines) = self
            .dm
            .table_status(
                &devicemapper::DevId::Name(Self::id(name)?),
                devicemapper::DmOptions::default().set_flags(devicemapper::DmFlags::DM_NOFLUSH),
            )
            .map_err(|e| kernel_err(name, "status", &e))?;
        Ok(lines
            .into_iter()
            .map(|(start, length, target_type, params)| StatusLine {
                start,
                length,
                target_type,
                params,
            })
            .collect())
    }

    fn wait_for_udev(&mut self, timeout: Duration) -> Result<UdevWait, DmError> {
        // systemd-udevd keeps /run/udev/queue while events are queued (what `udevadm settle`
        // checks). Our own events are waited for through their cookies first.
        self.sync_pending()?;
        if self.presence() != UdevPresence::Listening {
            return Ok(UdevWait::NotRunning);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if !Path::new(UDEV_QUEUE).exists() {
                return Ok(UdevWait::Settled);
            }
            if Instant::now() >= deadline {
                return Ok(UdevWait::TimedOut);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn udev_sync(&mut self) -> Result<(), DmError> {
        self.sync_pending()
    }
}

// ---------------------------------------------------------------------------------------------
// The recording fake.

/// One call made to the fake, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    List,
    Info { name: String },
    Create { name: String, uuid: String },
    Load { name: String, table: Table },
    Suspend { name: String },
    Resume { name: String, rules: UdevRules },
    Remove { name: String, rules: UdevRules },
    Table { name: String, slot: Slot },
    Status { name: String },
    WaitForUdev { timeout: Duration },
}

impl Call {
    fn mutates(&self) -> bool {
        matches!(
            self,
            Call::Create { .. }
                | Call::Load { .. }
                | Call::Suspend { .. }
                | Call::Resume { .. }
                | Call::Remove { .. }
        )
    }

    fn op_name(&self) -> (&'static str, &str) {
        match self {
            Call::List => ("list", "(all)"),
            Call::Info { name } => ("info", name),
            Call::Create { name, .. } => ("create", name),
            Call::Load { name, .. } => ("load", name),
            Call::Suspend { name } => ("suspend", name),
            Call::Resume { name, .. } => ("resume", name),
            Call::Remove { name, .. } => ("remove", name),
            Call::Table { name, .. } => ("table", name),
            Call::Status { name } => ("status", name),
            Call::WaitForUdev { .. } => ("udev wait", "(all)"),
        }
    }
}

#[derive(Clone, Debug)]
struct FakeDevice {
    uuid: String,
    dev: DevNum,
    live: Table,
    inactive: Option<Table>,
    suspended: bool,
    holders: u32,
    snapshot_status: Option<SnapshotStatus>,
}

/// An in-memory device-mapper that records every call and fails the way the kernel does:
/// unknown devices (ENXIO), duplicate names or UUIDs (EBUSY), tables naming missing devices,
/// resume with no table (EINVAL), and removing an open device (EBUSY). A device is open when
/// something holds it (`set_holders`, e.g. a mount) or when another device's live or inactive
/// table refers to it, as in the kernel, where a loaded table opens its devices. Two snapshot
/// targets on one COW follow dm-snap.c's handover rules: the new one can only be resumed while
/// the old one is suspended, the old one cannot resume while the new one waits, a third is
/// refused at load, and the old one reports `Invalid` after the handover.
#[derive(Clone, Debug)]
pub struct FakeDm {
    devices: BTreeMap<String, FakeDevice>,
    disks: BTreeMap<String, DevNum>,
    next_minor: u32,
    calls: Vec<Call>,
    mutations: usize,
    crash_after: Option<usize>,
    crashed: bool,
    udev: UdevWait,
}

/// The major number the fake gives its devices.
pub const FAKE_DM_MAJOR: u32 = 253;

impl Default for FakeDm {
    fn default() -> Self {
        FakeDm {
            devices: BTreeMap::new(),
            disks: BTreeMap::new(),
            next_minor: 0,
            calls: Vec::new(),
            mutations: 0,
            crash_after: None,
            crashed: false,
            udev: UdevWait::NotRunning,
        }
    }
}

impl FakeDm {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes a non-dm block device known, by path and number (tables may use either).
    pub fn add_disk(&mut self, path: &str, dev: DevNum) {
        self.disks.insert(path.to_owned(), dev);
    }

    /// Sets how many outside holders (mounts, open files) keep `name` open.
    pub fn set_holders(&mut self, name: &str, holders: u32) {
        if let Some(d) = self.devices.get_mut(name) {
            d.holders = holders;
        }
    }

    /// Sets what a `snapshot`/`snapshot-merge` line of `name` reports (default `Unknown`).
    pub fn set_snapshot_status(&mut self, name: &str, status: SnapshotStatus) {
        if let Some(d) = self.devices.get_mut(name) {
            d.snapshot_status = Some(status);
        }
    }

    /// What `wait_for_udev` answers.
    pub fn set_udev(&mut self, udev: UdevWait) {
        self.udev = udev;
    }

    /// After `n` more successful mutating calls, the next one fails with `Injected` and is not
    /// applied; every call then fails until `restart`. Models killing the executor at step N.
    pub fn crash_after(&mut self, n: usize) {
        self.crash_after = Some(self.mutations + n);
    }

    /// A new process starts: the crash is over, the kernel state stays.
    pub fn restart(&mut self) {
        self.crash_after = None;
        self.crashed = false;
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> &[Call] {
        &self.calls
    }

    /// Only the calls that change state.
    pub fn mutating_calls(&self) -> Vec<&Call> {
        self.calls.iter().filter(|c| c.mutates()).collect()
    }

    /// Forgets the recorded calls (the state stays).
    pub fn clear_calls(&mut self) {
        self.calls.clear();
    }

    /// The live table of `name`, if the device exists.
    pub fn live_table(&self, name: &str) -> Option<&Table> {
        self.devices.get(name).map(|d| &d.live)
    }

    fn record(&mut self, call: Call) -> Result<(), DmError> {
        let (op, name) = call.op_name();
        let injected = DmError::Injected {
            name: name.to_owned(),
            op,
        };
        let mutates = call.mutates();
        self.calls.push(call);
        if self.crashed {
            return Err(injected);
        }
        if mutates {
            if self.crash_after == Some(self.mutations) {
                self.crashed = true;
                return Err(injected);
            }
            self.mutations += 1;
        }
        Ok(())
    }

    fn get(&self, name: &str) -> Result<&FakeDevice, DmError> {
        self.devices.get(name).ok_or_else(|| DmError::NoSuchDevice {
            name: name.to_owned(),
        })
    }

    /// The dm device (by name) a table reference points at, or `Ok(None)` for a known disk.
    fn resolve(&self, r: &DevRef) -> Option<Option<&str>> {
        match r {
            DevRef::Number { major, minor } => {
                let n = DevNum {
                    major: *major,
                    minor: *minor,
                };
                if let Some((name, _)) = self.devices.iter().find(|(_, d)| d.dev == n) {
                    return Some(Some(name));
                }
                self.disks.values().any(|d| *d == n).then_some(None)
            }
            DevRef::Path(p) => {
                let dm = p
                    .strip_prefix("/dev/mapper/")
                    .and_then(|n| self.devices.get_key_value(n).map(|(k, _)| k.as_str()))
                    .or_else(|| {
                        let minor = p.strip_prefix("/dev/dm-")?.parse::<u32>().ok()?;
                        self.devices
                            .iter()
                            .find(|(_, d)| d.dev.minor == minor)
                            .map(|(k, _)| k.as_str())
                    });
                match dm {
                    Some(n) => Some(Some(n)),
                    None => self.disks.contains_key(p).then_some(None),
                }
            }
        }
    }

    /// A canonical key for the device a reference points at (`dm:NAME` or the disk's number).
    fn dev_key(&self, r: &DevRef) -> Option<String> {
        match self.resolve(r)? {
            Some(name) => Some(format!("dm:{name}")),
            None => Some(match r {
                DevRef::Path(p) => self
                    .disks
                    .get(p)
                    .map_or_else(|| p.clone(), |d| d.to_string()),
                DevRef::Number { major, minor } => format!("{major}:{minor}"),
            }),
        }
    }

    /// The COW device of a table's `snapshot`/`snapshot-merge` line, if it has one.
    fn snapshot_cow(&self, t: &Table) -> Option<String> {
        t.lines.iter().find_map(|l| match &l.target {
            Target::Snapshot(a) | Target::SnapshotMerge(a) => self.dev_key(&a.cow),
            _ => None,
        })
    }

    /// Other devices whose live (`live == true`) or inactive table is a snapshot of `cow`.
    fn sharing_cow(&self, name: &str, cow: &str, live: bool) -> Vec<String> {
        self.devices
            .iter()
            .filter(|(n, _)| n.as_str() != name)
            .filter(|(_, d)| {
                let t = if live {
                    Some(&d.live)
                } else {
                    d.inactive.as_ref()
                };
                t.and_then(|t| self.snapshot_cow(t)).as_deref() == Some(cow)
            })
            .map(|(n, _)| n.clone())
            .collect()
    }

    fn open_count(&self, name: &str) -> u32 {
        let Some(dev) = self.devices.get(name) else {
            return 0;
        };
        let mut count = dev.holders;
        for (other, d) in &self.devices {
            if other == name {
                continue;
            }
            for t in std::iter::once(&d.live).chain(d.inactive.as_ref()) {
                for line in &t.lines {
                    for r in line.target.devices() {
                        if self.resolve(r) == Some(Some(name)) {
                            count += 1;
                        }
                    }
                }
            }
        }
        count
    }

    fn state(&self, name: &str, d: &FakeDevice) -> DeviceState {
        DeviceState {
            name: name.to_owned(),
            uuid: (!d.uuid.is_empty()).then(|| d.uuid.clone()),
            dev: d.dev,
            open_count: self.open_count(name),
            suspended: d.suspended,
            live_table: !d.live.lines.is_empty(),
            inactive_table: d.inactive.is_some(),
        }
    }
}

impl DeviceMapper for FakeDm {
    fn list(&mut self) -> Result<Vec<DeviceState>, DmError> {
        self.record(Call::List)?;
        Ok(self.devices.iter().map(|(n, d)| self.state(n, d)).collect())
    }

    fn info(&mut self, name: &str) -> Result<Option<DeviceState>, DmError> {
        self.record(Call::Info {
            name: name.to_owned(),
        })?;
        Ok(self.devices.get(name).map(|d| self.state(name, d)))
    }

    fn create(&mut self, name: &str, uuid: &str) -> Result<DevNum, DmError> {
        self.record(Call::Create {
            name: name.to_owned(),
            uuid: uuid.to_owned(),
        })?;
        if name.is_empty() || name.len() > 127 || name.contains('/') || uuid.len() > 128 {
            return Err(DmError::Kernel {
                name: name.to_owned(),
                op: "create",
                message: "EINVAL: bad name or uuid".into(),
            });
        }
        if self.devices.contains_key(name)
            || (!uuid.is_empty() && self.devices.values().any(|d| d.uuid == uuid))
        {
            return Err(DmError::Exists {
                name: name.to_owned(),
                uuid: uuid.to_owned(),
            });
        }
        let dev = DevNum {
            major: FAKE_DM_MAJOR,
            minor: self.next_minor,
        };
        self.next_minor += 1;
        self.devices.insert(
            name.to_owned(),
            FakeDevice {
                uuid: uuid.to_owned(),
                dev,
                live: Table::default(),
                inactive: None,
                suspended: true,
                holders: 0,
                snapshot_status: None,
            },
        );
        Ok(dev)
    }

    fn load(&mut self, name: &str, table: &Table) -> Result<(), DmError> {
        self.record(Call::Load {
            name: name.to_owned(),
            table: table.clone(),
        })?;
        self.get(name)?;
        let bad = |source| DmError::BadTable {
            name: name.to_owned(),
            source,
        };
        if table.lines.is_empty() {
            return Err(bad(TableError::Empty));
        }
        table.check().map_err(bad)?;
        for line in &table.lines {
            for r in line.target.devices() {
                match self.resolve(r) {
                    None => {
                        return Err(DmError::MissingDevice {
                            name: name.to_owned(),
                            dev: r.to_string(),
                        });
                    }
                    Some(Some(n)) if n == name => {
                        return Err(DmError::Kernel {
                            name: name.to_owned(),
                            op: "load",
                            message: "EINVAL: table refers to the device itself".into(),
                        });
                    }
                    Some(_) => {}
                }
            }
        }
        if let Some(cow) = self.snapshot_cow(table)
            && !self.sharing_cow(name, &cow, false).is_empty()
        {
            // dm-snap.c register_snapshot: a COW can pass from one snapshot to one other only.
            return Err(DmError::Kernel {
                name: name.to_owned(),
                op: "load",
                message: "EINVAL: more than one snapshot is being handed over".into(),
            });
        }
        if let Some(d) = self.devices.get_mut(name) {
            d.inactive = Some(table.clone());
        }
        Ok(())
    }

    fn suspend(&mut self, name: &str) -> Result<(), DmError> {
        self.record(Call::Suspend {
            name: name.to_owned(),
        })?;
        self.get(name)?;
        if let Some(d) = self.devices.get_mut(name) {
            d.suspended = true;
        }
        Ok(())
    }

    fn resume(&mut self, name: &str, rules: UdevRules) -> Result<(), DmError> {
        self.record(Call::Resume {
            name: name.to_owned(),
            rules,
        })?;
        let d = self.get(name)?;
        if d.inactive.is_none() && d.live.lines.is_empty() {
            return Err(DmError::NoTable {
                name: name.to_owned(),
            });
        }
        // dm-snap.c snapshot_preresume/snapshot_resume: two snapshot targets on one COW hand
        // the exceptions over from the active one (source) to the new one (destination).
        let einval = |message: &str| DmError::Kernel {
            name: name.to_owned(),
            op: "resume",
            message: format!("EINVAL: {message}"),
        };
        let mut sources = Vec::new();
        match &d.inactive {
            Some(new) => {
                if let Some(cow) = self.snapshot_cow(new) {
                    sources = self.sharing_cow(name, &cow, true);
                    if sources
                        .iter()
                        .any(|s| self.devices.get(s).is_some_and(|d| !d.suspended))
                    {
                        return Err(einval(
                            "unable to perform snapshot handover until source is suspended",
                        ));
                    }
                }
            }
            None => {
                if let Some(cow) = self.snapshot_cow(&d.live)
                    && !self.sharing_cow(name, &cow, false).is_empty()
                {
                    return Err(einval(
                        "unable to resume snapshot source until handover completes",
                    ));
                }
            }
        }
        for src in sources {
            // __handover_exceptions leaves the source invalid.
            if let Some(d) = self.devices.get_mut(&src) {
                d.snapshot_status = Some(SnapshotStatus::Invalid);
            }
        }
        if let Some(d) = self.devices.get_mut(name) {
            if let Some(t) = d.inactive.take() {
                d.live = t;
            }
            d.suspended = false;
        }
        Ok(())
    }

    fn remove(&mut self, name: &str, rules: UdevRules) -> Result<(), DmError> {
        self.record(Call::Remove {
            name: name.to_owned(),
            rules,
        })?;
        self.get(name)?;
        let open_count = self.open_count(name);
        if open_count > 0 {
            return Err(DmError::Busy {
                name: name.to_owned(),
                open_count,
            });
        }
        self.devices.remove(name);
        Ok(())
    }

    fn table(&mut self, name: &str, slot: Slot) -> Result<Table, DmError> {
        self.record(Call::Table {
            name: name.to_owned(),
            slot,
        })?;
        let d = self.get(name)?;
        Ok(match slot {
            Slot::Live => d.live.clone(),
            Slot::Inactive => d.inactive.clone().unwrap_or_default(),
        })
    }

    fn status(&mut self, name: &str) -> Result<Vec<StatusLine>, DmError> {
        self.record(Call::Status {
            name: name.to_owned(),
        })?;
        let d = self.get(name)?;
        Ok(d.live
            .lines
            .iter()
            .map(|l| {
                let ty = l.target.target_type();
                let params = match ty {
                    "snapshot" | "snapshot-merge" => d
                        .snapshot_status
                        .unwrap_or(SnapshotStatus::Unknown)
                        .to_string(),
                    _ => String::new(),
                };
                StatusLine {
                    start: l.start,
                    length: l.length,
                    target_type: ty.to_owned(),
                    params,
                }
            })
            .collect())
    }

    fn wait_for_udev(&mut self, timeout: Duration) -> Result<UdevWait, DmError> {
        self.record(Call::WaitForUdev { timeout })?;
        Ok(self.udev)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::plan::table::SnapshotArgs;

    const SDA: DevNum = DevNum { major: 8, minor: 0 };

    fn linear(dev: DevRef, len: u64) -> Table {
        Table::single(len, Target::Linear { dev, offset: 2048 })
    }

    fn num(d: DevNum) -> DevRef {
        DevRef::Number {
            major: d.major,
            minor: d.minor,
        }
    }

    fn fake() -> FakeDm {
        let mut f = FakeDm::new();
        f.add_disk("/dev/sda", SDA);
        f
    }

    /// The merge layout of LVM-NOTES.md: root-real, pre-cow, pre (error), root (snapshot-merge).
    fn merge_layout(f: &mut FakeDm) -> (DevNum, DevNum) {
        let real = f.create("vg-root-real", "LVM-a-real").unwrap();
        f.load("vg-root-real", &linear(num(SDA), 100)).unwrap();
        f.resume("vg-root-real", UdevRules::DmOnly).unwrap();
        let cow = f.create("vg-pre-cow", "LVM-b-cow").unwrap();
        f.load("vg-pre-cow", &linear(DevRef::Path("/dev/sda".into()), 10))
            .unwrap();
        f.resume("vg-pre-cow", UdevRules::DmOnly).unwrap();
        f.create("vg-pre", "LVM-b").unwrap();
        f.load("vg-pre", &Table::single(100, Target::Error))
            .unwrap();
        f.resume("vg-pre", UdevRules::LowPriority).unwrap();
        f.create("vg-root", "LVM-a").unwrap();
        let merge = Target::SnapshotMerge(SnapshotArgs::persistent(num(real), num(cow), 8));
        f.load("vg-root", &Table::single(100, merge)).unwrap();
        f.resume("vg-root", UdevRules::All).unwrap();
        (real, cow)
    }

    #[test]
    fn create_load_resume_swaps_tables() {
        let mut f = fake();
        let dev = f.create("vg-root", "LVM-x").unwrap();
        assert_eq!(
            dev,
            DevNum {
                major: 253,
                minor: 0
            }
        );
        let st = f.info("vg-root").unwrap().unwrap();
        assert!(st.suspended && !st.live_table && !st.inactive_table);
        let t = linear(num(SDA), 100);
        f.load("vg-root", &t).unwrap();
        assert_eq!(f.table("vg-root", Slot::Inactive).unwrap(), t);
        assert_eq!(f.table("vg-root", Slot::Live).unwrap(), Table::default());
        f.resume("vg-root", UdevRules::All).unwrap();
        assert_eq!(f.table("vg-root", Slot::Live).unwrap(), t);
        let st = f.info("vg-root").unwrap().unwrap();
        assert!(!st.suspended && st.live_table && !st.inactive_table);
        assert_eq!(st.uuid.as_deref(), Some("LVM-x"));
        // resume again with only a live table: fine, like the kernel
        f.resume("vg-root", UdevRules::All).unwrap();
        assert_eq!(f.info("nope").unwrap(), None);
    }

    #[test]
    fn kernel_like_failures() {
        let mut f = fake();
        f.create("a", "U1").unwrap();
        assert_eq!(
            f.create("a", "U2"),
            Err(DmError::Exists {
                name: "a".into(),
                uuid: "U2".into()
            })
        );
        assert!(matches!(f.create("b", "U1"), Err(DmError::Exists { .. })));
        assert!(matches!(f.create("", "U3"), Err(DmError::Kernel { .. })));
        assert_eq!(
            f.load("ghost", &linear(num(SDA), 1)),
            Err(DmError::NoSuchDevice {
                name: "ghost".into()
            })
        );
        assert_eq!(
            f.resume("a", UdevRules::All),
            Err(DmError::NoTable { name: "a".into() })
        );
        assert!(matches!(
            f.load("a", &Table::default()),
            Err(DmError::BadTable { .. })
        ));
        let gap = Table {
            lines: vec![crate::plan::table::TableLine {
                start: 1,
                length: 1,
                target: Target::Error,
            }],
        };
        assert!(matches!(f.load("a", &gap), Err(DmError::BadTable { .. })));
        assert_eq!(
            f.load("a", &linear(DevRef::Number { major: 8, minor: 9 }, 1)),
            Err(DmError::MissingDevice {
                name: "a".into(),
                dev: "8:9".into()
            })
        );
        assert!(matches!(
            f.load("a", &linear(DevRef::Path("/dev/mapper/a".into()), 1)),
            Err(DmError::Kernel { .. })
        ));
        assert!(matches!(
            f.suspend("ghost"),
            Err(DmError::NoSuchDevice { .. })
        ));
        assert!(matches!(
            f.remove("ghost", UdevRules::All),
            Err(DmError::NoSuchDevice { .. })
        ));
        assert_eq!(
            DmError::Busy {
                name: "vg-root".into(),
                open_count: 2
            }
            .to_string(),
            "device-mapper device vg-root is open 2 time(s)"
        );
    }

    #[test]
    fn open_counts_follow_tables_and_holders() {
        let mut f = fake();
        let (real, cow) = merge_layout(&mut f);
        assert_eq!(f.info("vg-root-real").unwrap().unwrap().open_count, 1);
        assert_eq!(f.info("vg-pre-cow").unwrap().unwrap().open_count, 1);
        assert_eq!(
            f.remove("vg-pre-cow", UdevRules::DmOnly),
            Err(DmError::Busy {
                name: "vg-pre-cow".into(),
                open_count: 1
            })
        );
        f.set_holders("vg-root", 1);
        assert!(matches!(
            f.remove("vg-root", UdevRules::All),
            Err(DmError::Busy { .. })
        ));
        // an inactive table holds its devices too: reload root as plain linear over sda
        f.set_holders("vg-root", 0);
        f.load(
            "vg-root",
            &Table::single(100, Target::SnapshotOrigin { origin: num(real) }),
        )
        .unwrap();
        assert_eq!(f.info("vg-root-real").unwrap().unwrap().open_count, 2);
        f.load("vg-root", &linear(num(SDA), 100)).unwrap();
        f.resume("vg-root", UdevRules::All).unwrap();
        assert_eq!(f.info("vg-root-real").unwrap().unwrap().open_count, 0);
        assert_eq!(f.info("vg-pre-cow").unwrap().unwrap().open_count, 0);
        f.remove("vg-pre", UdevRules::LowPriority).unwrap();
        f.remove("vg-pre-cow", UdevRules::DmOnly).unwrap();
        f.remove("vg-root-real", UdevRules::DmOnly).unwrap();
        let names: Vec<String> = f.list().unwrap().into_iter().map(|d| d.name).collect();
        assert_eq!(names, ["vg-root"]);
        let _ = cow;
    }

    #[test]
    fn snapshot_handover_follows_the_kernel() {
        let mut f = fake();
        // Booted system: root = snapshot-origin, pre = snapshot, both active.
        let real = f.create("vg-root-real", "R").unwrap();
        f.load("vg-root-real", &linear(num(SDA), 100)).unwrap();
        f.resume("vg-root-real", UdevRules::DmOnly).unwrap();
        let cow = f.create("vg-pre-cow", "C").unwrap();
        f.load("vg-pre-cow", &linear(num(SDA), 10)).unwrap();
        f.resume("vg-pre-cow", UdevRules::DmOnly).unwrap();
        let args = SnapshotArgs::persistent(num(real), num(cow), 8);
        f.create("vg-pre", "P").unwrap();
        f.load(
            "vg-pre",
            &Table::single(100, Target::Snapshot(args.clone())),
        )
        .unwrap();
        f.resume("vg-pre", UdevRules::LowPriority).unwrap();
        f.create("vg-root", "O").unwrap();
        f.load(
            "vg-root",
            &Table::single(100, Target::SnapshotOrigin { origin: num(real) }),
        )
        .unwrap();
        f.resume("vg-root", UdevRules::All).unwrap();

        // Start the merge: root's new table shares pre's COW.
        f.load(
            "vg-root",
            &Table::single(100, Target::SnapshotMerge(args.clone())),
        )
        .unwrap();
        // a third snapshot on the same COW is refused at load
        f.create("other", "X").unwrap();
        assert!(matches!(
            f.load("other", &Table::single(100, Target::Snapshot(args.clone()))),
            Err(DmError::Kernel { op: "load", .. })
        ));
        // the source cannot resume while the handover waits
        assert!(matches!(
            f.resume("vg-pre", UdevRules::LowPriority),
            Err(DmError::Kernel { op: "resume", .. })
        ));
        // the destination needs the source suspended
        assert!(matches!(
            f.resume("vg-root", UdevRules::All),
            Err(DmError::Kernel { op: "resume", .. })
        ));
        f.suspend("vg-pre").unwrap();
        f.resume("vg-root", UdevRules::All).unwrap();
        assert_eq!(
            f.status("vg-pre").unwrap()[0].snapshot_status(),
            Some(Ok(SnapshotStatus::Invalid))
        );
        f.load("vg-pre", &Table::single(100, Target::Error))
            .unwrap();
        f.resume("vg-pre", UdevRules::LowPriority).unwrap();
    }

    #[test]
    fn status_of_snapshot_lines() {
        let mut f = fake();
        merge_layout(&mut f);
        let st = f.status("vg-root").unwrap();
        assert_eq!(st[0].snapshot_status(), Some(Ok(SnapshotStatus::Unknown)));
        f.set_snapshot_status(
            "vg-root",
            SnapshotStatus::Usage {
                allocated: 16,
                total: 1024,
                metadata: 16,
            },
        );
        let st = f.status("vg-root").unwrap();
        assert_eq!(st[0].to_string(), "0 100 snapshot-merge 16/1024 16");
        assert!(st[0].snapshot_status().unwrap().unwrap().merge_done());
        assert_eq!(f.status("vg-root-real").unwrap()[0].params, "");
    }

    #[test]
    fn records_calls_and_crashes_at_step_n() {
        let mut f = fake();
        f.crash_after(5);
        let mut steps = 0;
        let run = |f: &mut FakeDm, steps: &mut usize| -> Result<(), DmError> {
            for (name, uuid) in [("a", "UA"), ("b", "UB")] {
                if f.info(name)?.is_none() {
                    f.create(name, uuid)?;
                    *steps += 1;
                }
                f.load(name, &linear(num(SDA), 10))?;
                *steps += 1;
                f.resume(name, UdevRules::All)?;
                *steps += 1;
            }
            Ok(())
        };
        let err = run(&mut f, &mut steps).unwrap_err();
        assert_eq!(
            err,
            DmError::Injected {
                name: "b".into(),
                op: "resume"
            }
        );
        assert_eq!(steps, 5);
        // not applied
        assert!(f.info("b").is_err());
        f.restart();
        assert!(f.info("b").unwrap().unwrap().inactive_table);
        f.clear_calls();
        run(&mut f, &mut steps).unwrap();
        assert_eq!(
            f.mutating_calls(),
            vec![
                &Call::Load {
                    name: "a".into(),
                    table: linear(num(SDA), 10)
                },
                &Call::Resume {
                    name: "a".into(),
                    rules: UdevRules::All
                },
                &Call::Load {
                    name: "b".into(),
                    table: linear(num(SDA), 10)
                },
                &Call::Resume {
                    name: "b".into(),
                    rules: UdevRules::All
                },
            ]
        );
        assert_eq!(f.calls()[0], Call::Info { name: "a".into() });
    }

    #[test]
    fn udev_wait_is_configurable() {
        let mut f = fake();
        assert_eq!(
            f.wait_for_udev(Duration::from_secs(1)).unwrap(),
            UdevWait::NotRunning
        );
        f.set_udev(UdevWait::TimedOut);
        assert_eq!(
            f.wait_for_udev(Duration::from_secs(1)).unwrap(),
            UdevWait::TimedOut
        );
        assert_eq!(f.calls().len(), 2);
    }

    #[test]
    fn sysvipc_rows_and_cookie_filter() {
        let text = "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n\
                    223150081          3   600          1     0     0     0     0 1700000000 1700000000\n\
                    223150082          4   600          1  1000  1000  1000  1000          0 1700000000\n\
                    1234               5   600          1     0     0     0     0          0 1700000000\n\
                    garbage\n";
        let rows = parse_sysvipc_sem(text);
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[0],
            SemRow {
                key: 223150081,
                semid: 3,
                cuid: 0
            }
        );
        // 223150081 = 0x0D4D_0001
        let own: Vec<i32> = own_cookies(&rows, 0).map(|r| r.semid).collect();
        assert_eq!(own, [3]);
    }

    #[test]
    fn host_probes_do_not_block() {
        // semctl and semop in this static test binary; this host has no dm cookies.
        assert_eq!(complete_own_cookies(), 0);

        // A cookie as the crate makes it (value 1 after its own decrement, last touched by
        // us) is completed only while a thread waits for it to reach 0, and only once.
        use nix::libc;
        let key = ((DM_COOKIE_MAGIC << 16) | 0xFEED) as libc::key_t;
        // SAFETY: plain SysV IPC calls with valid arguments; results are checked.
        let semid = unsafe { libc::semget(key, 1, 0o600 | libc::IPC_CREAT | libc::IPC_EXCL) };
        if semid < 0 {
            return; // key taken or SysV IPC unavailable: nothing to test here
        }
        let mut inc = libc::sembuf {
            sem_num: 0,
            sem_op: 1,
            sem_flg: 0,
        };
        // SAFETY: one valid sembuf, count 1, on the set we just created.
        assert_eq!(unsafe { libc::semop(semid, &mut inc, 1) }, 0);
        // Nobody waits yet: left alone (the crate may still have its own decrement to do).
        let early = complete_own_cookies();
        let waiter = std::thread::spawn(move || {
            let mut wait = libc::sembuf {
                sem_num: 0,
                sem_op: 0,
                sem_flg: 0,
            };
            // SAFETY: one valid sembuf, count 1; blocks until the value is 0 or the set goes.
            unsafe { libc::semop(semid, &mut wait, 1) }
        });
        let t = Instant::now();
        // SAFETY: GETZCNT takes no fourth argument and only reads the set.
        while unsafe { libc::semctl(semid, 0, libc::GETZCNT) } < 1 {
            assert!(t.elapsed() < Duration::from_secs(5), "waiter never waited");
            std::thread::sleep(Duration::from_millis(1));
        }
        let completed = complete_own_cookies();
        let waited = waiter.join().expect("waiter thread");
        // SAFETY: GETVAL and IPC_RMID take no fourth argument; the set is ours.
        let val = unsafe { libc::semctl(semid, 0, libc::GETVAL) };
        let again = complete_own_cookies();
        // SAFETY: as above.
        unsafe { libc::semctl(semid, 0, libc::IPC_RMID) };
        assert_eq!((early, completed, waited, val, again), (0, 1, 0, 0, 0));
    }

    #[test]
    fn connect_errors_classify_udev() {
        use nix::libc;
        assert_eq!(
            presence_from_connect_errno(libc::ECONNREFUSED),
            UdevPresence::Stale
        );
        assert_eq!(
            presence_from_connect_errno(libc::ENOENT),
            UdevPresence::Absent
        );
        for e in [
            libc::EAGAIN,
            libc::EPROTOTYPE,
            libc::EACCES,
            libc::EINPROGRESS,
        ] {
            assert_eq!(
                presence_from_connect_errno(e),
                UdevPresence::Listening,
                "{e}"
            );
        }
    }

    #[test]
    fn probe_tells_listening_stale_and_absent_sockets_apart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("control");
        assert_eq!(udev_presence(&path), UdevPresence::Absent);
        let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
        // A stream listener: the seqpacket probe gets EPROTOTYPE, i.e. someone is bound.
        assert_eq!(udev_presence(&path), UdevPresence::Listening);
        drop(listener);
        // The file stays, nobody listens: what a killed udevd leaves.
        assert!(path.exists());
        assert_eq!(udev_presence(&path), UdevPresence::Stale);
        std::fs::write(dir.path().join("plain"), b"").expect("write");
        assert_eq!(
            udev_presence(&dir.path().join("plain")),
            UdevPresence::Stale,
            "a non-socket file refuses connections as a stale socket does"
        );
    }

    #[test]
    fn udev_flags_match_lvm() {
        use devicemapper::DmUdevFlags as F;
        assert_eq!(
            udev_flags(UdevRules::All),
            F::DM_UDEV_DISABLE_LIBRARY_FALLBACK
        );
        assert!(udev_flags(UdevRules::LowPriority).contains(F::DM_UDEV_LOW_PRIORITY_FLAG));
        let hidden = udev_flags(UdevRules::DmOnly);
        assert!(hidden.contains(
            F::DM_UDEV_DISABLE_SUBSYSTEM_RULES_FLAG
                | F::DM_UDEV_DISABLE_DISK_RULES_FLAG
                | F::DM_UDEV_DISABLE_OTHER_RULES_FLAG
        ));
        assert!(!hidden.contains(F::DM_UDEV_DISABLE_DM_RULES_FLAG));
    }

    #[test]
    fn real_dm_without_kernel_support_is_an_error() {
        // This host has no device-mapper: opening the control node must fail cleanly.
        if !Path::new("/dev/mapper/control").exists() {
            assert!(matches!(
                RealDm::new(Duration::from_secs(1)),
                Err(DmError::Control(_))
            ));
        }
    }
}
