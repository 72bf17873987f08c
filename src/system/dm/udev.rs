//! udev cookies: how `RealDm` takes, waits for and completes them, always bounded.
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

use std::path::Path;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use super::real::{RealDm, kernel_err};
use super::{DmError, UdevWait};
use crate::plan::dev::UdevRules;

const UDEV_CONTROL: &str = "/run/udev/control";
const UDEV_QUEUE: &str = "/run/udev/queue";
const SYSVIPC_SEM: &str = "/proc/sysvipc/sem";
/// `DM_COOKIE_MAGIC` (libdm `libdevmapper.h`): the high 16 bits of every cookie's IPC key.
const DM_COOKIE_MAGIC: u32 = 0x0D4D;

/// A crate call still waiting for udev on its worker thread.
pub(super) struct PendingWait {
    name: String,
    op: &'static str,
    rx: mpsc::Receiver<devicemapper::DmResult<()>>,
    started: Instant,
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
    /// How a cookie call treats udev: as [`Self::probe`] found it, except that a listening
    /// udev without device-mapper's rules is treated as a stale one (no rule would ever
    /// complete the cookie, so rewind completes its own at once: an initramfs built without
    /// LVM2's hook has udev but not these rules).
    pub(super) fn presence(&mut self) -> UdevPresence {
        let p = self.probe();
        if p != UdevPresence::Listening {
            return p;
        }
        if self.has_dm_rules() {
            return p;
        }
        if !self.told_no_rules {
            self.told_no_rules = true;
            log::info!(
                "udev runs without device-mapper's rules (none runs `dmsetup udevcomplete`): rewind completes its own udev cookies and makes the device nodes"
            );
        }
        UdevPresence::Stale
    }

    /// Whether udev has device-mapper's rules, read once (from the root filesystem: so
    /// `suspend` reads it before it suspends anything).
    pub(super) fn has_dm_rules(&mut self) -> bool {
        *self
            .dm_rules
            .get_or_insert_with(|| crate::system::nodes::dm_rules_installed(Path::new("/")))
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
    pub(super) fn cookie_call(
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
    pub(super) fn resume_deferred(&mut self, name: &str, rules: UdevRules) -> Result<(), DmError> {
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
    pub(super) fn sync_pending(&mut self) -> Result<(), DmError> {
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

    /// `DeviceMapper::wait_for_udev`: our own cookies first, then udev's whole queue.
    pub(super) fn wait_for_queue(&mut self, timeout: Duration) -> Result<UdevWait, DmError> {
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

pub(super) fn remove_call(
    dm: &devicemapper::DM,
    name: &devicemapper::DmName,
    options: devicemapper::DmOptions,
) -> devicemapper::DmResult<()> {
    // The crate retries EBUSY 4 more times, 200 ms apart.
    dm.device_remove(&devicemapper::DevId::Name(name), options)
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
