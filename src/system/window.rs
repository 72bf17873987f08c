//! The one instant of a snapshot set (DESIGN invariant 9): every origin suspended with its
//! filesystem frozen by device-mapper's lockfs, the set's new snapshot devices made live, every
//! origin resumed with its new table, in one short window that always ends.
//!
//! Everything is prepared before the window: the `-real`, `-cow` and snapshot devices exist
//! with their tables loaded (snapshots not resumed), each origin's `snapshot-origin` table sits
//! in its inactive slot, and the ioctl headers are built. Inside the window the process only
//! issues `DM_DEV_SUSPEND` ioctls on headers it already holds, reads the monotonic clock and
//! touches locked anonymous memory: no file I/O, no logging, no udev cookie (a cookie would
//! wait for udev's work on one device while the others stay suspended), no allocation that
//! could reach a file. The whole process is locked in memory (`mlockall`) before the first
//! suspend, so not even a page fault can read from a frozen root.
//!
//! # Every way out resumes every origin
//!
//! - An ioctl fails: the window is aborted. Each origin still suspended has its inactive table
//!   cleared first (so the resume cannot swap in `snapshot-origin`) and is resumed with the
//!   table it had. Origins already resumed with their new table stay so; the caller tears the
//!   half-made set down outside the window.
//! - A signal: every blockable signal is blocked for the window and delivered after it.
//! - The process is killed (SIGKILL, the OOM killer), stopped (SIGSTOP) or an ioctl hangs (a
//!   freeze that never ends): a guardian process, forked before the window and locked in
//!   memory itself, waits on a pipe with the window's deadline. When the pipe closes without
//!   the "done" byte (the parent died) or the deadline passes, it aborts the window the same
//!   way. Parent and guardian claim each origin through shared atomics, so exactly one of
//!   them restores it; the parent, when it runs again, sees the claim and reports the abort.
//!
//! Only a crash of the whole machine can end the window otherwise, and then nothing is
//! suspended after the reboot.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;

/// What the window needs: origins (suspended in this order, resumed in the same order) and the
/// new snapshot devices (resumed while every origin is suspended).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Device-mapper names of the origins. An origin with a table in its inactive slot
    /// (`snapshot-origin` over its new `-real`) swaps it in at its resume; an origin that is
    /// already a `snapshot-origin` has nothing loaded and is only suspended and resumed.
    pub origins: Vec<String>,
    /// Device-mapper names of the new snapshot devices, loaded and never resumed yet.
    pub snapshots: Vec<String>,
    /// Target messages sent after the snapshots are live and before any origin is resumed,
    /// in order, as (device, message): a thin pool's `create_snap` for a thin origin (which
    /// the kernel requires suspended) and its `set_transaction_id`.
    pub messages: Vec<(String, String)>,
    /// The guardian aborts the window when it is still open after this long.
    pub deadline: Duration,
    /// Every origin's suspend (and resume) at once, one thread each ([`run_window_parallel`]),
    /// instead of one after another ([`run_window`]).
    pub parallel: bool,
    /// Crash tests (fail point `snapshot-in-window`): the process exits as if killed once
    /// every origin is suspended, and the guardian must resume them.
    pub die_inside: bool,
}

/// Set by [`take`] from [`Request::die_inside`].
static DIE_INSIDE: AtomicBool = AtomicBool::new(false);

/// The crash test's exit, once every origin is suspended.
fn maybe_die_inside() {
    if DIE_INSIDE.load(Ordering::SeqCst) {
        // SAFETY: _exit ends the process at once, as a kill would; nothing is left to run.
        unsafe { nix::libc::_exit(137) }
    }
}

/// How long the window and its steps took (monotonic clock, read inside the window).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// From the start of the first suspend to the end of the last resume.
    pub window: Duration,
    /// The end of each origin's suspend, from the start of the window.
    pub suspended_at: Vec<Duration>,
    /// The end of the snapshots' resumes, from the start of the window.
    pub snapshots_live_at: Duration,
}

/// Why a window was aborted. Every origin was resumed either way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("cannot prepare the snapshot window: {0} (nothing was suspended)")]
    Setup(String),
    #[error(
        "suspending {name} failed: {errno}; every origin was resumed with its old table, no snapshot was taken"
    )]
    Suspend { name: String, errno: Errno },
    #[error(
        "making snapshot device {name} live failed: {errno}; every origin was resumed with its old table"
    )]
    Snapshot { name: String, errno: Errno },
    #[error(
        "message '{message}' to {name} failed: {errno}; every origin was resumed with its old table"
    )]
    Message {
        name: String,
        message: String,
        errno: Errno,
    },
    #[error(
        "resuming {name} with its snapshot-origin table failed: {errno}; the origins not yet resumed got their old tables back"
    )]
    Resume { name: String, errno: Errno },
    #[error(
        "the snapshot window was still open after {deadline_ms} ms: every origin was resumed by the guardian, the set is not usable"
    )]
    TimedOut { deadline_ms: u128 },
    #[error("restoring {name} after an aborted window failed: {errno}")]
    Restore { name: String, errno: Errno },
}

/// The three device-mapper calls of the window, by device name. The real implementation
/// issues raw ioctls on headers built beforehand; tests use a recording fake.
pub trait WindowOps: Sync {
    /// Suspends with lockfs (the filesystem on it is frozen) and flushes.
    fn suspend(&self, name: usize, kind: Kind) -> Result<(), Errno>;
    /// Resumes, swapping in the inactive table if there is one.
    fn resume(&self, name: usize, kind: Kind) -> Result<(), Errno>;
    /// Drops the inactive table.
    fn clear(&self, name: usize, kind: Kind) -> Result<(), Errno>;
    /// How many target messages the window sends ([`Request::messages`]).
    fn messages(&self) -> usize {
        0
    }
    /// Sends message `i` (to a device that is not suspended: the thin pool).
    fn message(&self, i: usize) -> Result<(), Errno> {
        let _ = i;
        Err(Errno::ENOTSUP)
    }
}

/// Which list an index of [`WindowOps`] refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Origin,
    Snapshot,
}

// The claim on an origin, shared with the guardian.
const IDLE: u32 = 0;
const SUSPENDING: u32 = 1;
const SUSPENDED: u32 = 2;
const RESUMING: u32 = 3;
const DONE: u32 = 4;
/// Restored (cleared and resumed with its old table) by the window's own process.
const RESTORED: u32 = 5;
/// Claimed by the guardian, which restores it.
const GUARDED: u32 = 6;

/// The state shared by the window's process and its guardian: cell 0 is the abort flag, cell
/// `1 + i` origin `i`'s claim. In the real window the cells live in an anonymous shared
/// mapping (both processes see them); tests lend plain memory.
#[derive(Clone, Copy, Debug)]
pub struct Shared<'a> {
    cells: &'a [AtomicU32],
}

impl<'a> Shared<'a> {
    /// A view over `cells` (one more than the number of origins), all zero.
    pub fn new(cells: &'a [AtomicU32]) -> Shared<'a> {
        Shared { cells }
    }

    fn claim(&self, i: usize, from: u32, to: u32) -> bool {
        self.cells[1 + i]
            .compare_exchange(from, to, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    fn set(&self, i: usize, to: u32) {
        self.cells[1 + i].store(to, Ordering::SeqCst);
    }

    fn state(&self, i: usize) -> u32 {
        self.cells[1 + i].load(Ordering::SeqCst)
    }

    fn abort(&self) {
        self.cells[0].store(1, Ordering::SeqCst);
    }

    fn aborted(&self) -> bool {
        self.cells[0].load(Ordering::SeqCst) != 0
    }

    /// Whether the guardian restored any origin.
    pub fn guardian_acted(&self, n_origins: usize) -> bool {
        (0..n_origins).any(|i| self.state(i) == GUARDED)
    }
}

/// Why the window's own steps stopped, by index (no allocation inside the window).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abort {
    Suspend(usize, Errno),
    Snapshot(usize, Errno),
    Message(usize, Errno),
    Resume(usize, Errno),
    /// The guardian claimed an origin first (deadline passed, or this process was stopped).
    Guardian,
    /// Restoring origin `.0` failed after one of the above.
    Restore(usize, Errno),
    /// The window's threads could not all be started; nothing was suspended.
    Setup,
}

/// The window's steps, run by the process that takes the set: every origin suspended in
/// order, every snapshot resumed, every origin resumed in order. On a failure (or when the
/// guardian took over) it restores every origin it can still claim and says why it stopped.
/// Allocates nothing until the window is closed.
pub fn run_window(
    ops: &dyn WindowOps,
    shared: Shared<'_>,
    n_origins: usize,
    n_snapshots: usize,
) -> Result<Report, Abort> {
    let start = Instant::now();
    let mut suspended_at = [Duration::ZERO; MAX_ORIGINS];
    let mut failure: Option<Abort> = None;

    for (i, at) in suspended_at.iter_mut().enumerate().take(n_origins) {
        if shared.aborted() {
            break;
        }
        shared.set(i, SUSPENDING);
        let r = ops.suspend(i, Kind::Origin);
        *at = start.elapsed();
        match r {
            Ok(()) => {
                if !shared.claim(i, SUSPENDING, SUSPENDED) {
                    // The guardian claimed it while this process was stopped or inside the
                    // ioctl, and may have restored it before the suspend happened: restore it
                    // again (clearing twice and resuming twice is harmless).
                    let _ = ops.clear(i, Kind::Origin);
                    let _ = ops.resume(i, Kind::Origin);
                    break;
                }
            }
            Err(e) => {
                // A failed suspend leaves the device running with its tables.
                shared.claim(i, SUSPENDING, IDLE);
                failure = Some(Abort::Suspend(i, e));
                break;
            }
        }
    }
    let mut snapshots_live_at = Duration::ZERO;
    if failure.is_none() && !shared.aborted() {
        maybe_die_inside();
        for s in 0..n_snapshots {
            if let Err(e) = ops.resume(s, Kind::Snapshot) {
                failure = Some(Abort::Snapshot(s, e));
                break;
            }
        }
        if failure.is_none() {
            failure = send_messages(ops, shared);
        }
        snapshots_live_at = start.elapsed();
    }
    if failure.is_none() && !shared.aborted() {
        for i in 0..n_origins {
            if !shared.claim(i, SUSPENDED, RESUMING) {
                break;
            }
            match ops.resume(i, Kind::Origin) {
                Ok(()) => {
                    if !shared.claim(i, RESUMING, DONE) {
                        break;
                    }
                }
                Err(e) => {
                    // Still suspended, the new table still inactive: restored below.
                    shared.claim(i, RESUMING, SUSPENDED);
                    failure = Some(Abort::Resume(i, e));
                    break;
                }
            }
        }
    }
    let window = start.elapsed();
    if failure.is_none() && (0..n_origins).all(|i| shared.state(i) == DONE) {
        return Ok(Report {
            window,
            suspended_at: suspended_at[..n_origins].to_vec(),
            snapshots_live_at,
        });
    }
    shared.abort();
    let restored = restore(ops, shared, n_origins, false);
    match restored {
        Err((i, errno)) => Err(Abort::Restore(i, errno)),
        Ok(()) => Err(failure.unwrap_or(Abort::Guardian)),
    }
}

/// The window with every origin's suspend (and later its resume) issued at the same time,
/// one thread per origin, started before the window and released together: the window lasts
/// about as long as the slowest freeze instead of the sum of them (each freeze writes the
/// filesystem's journal and superblock). Still one instant: no origin is resumed before every
/// origin is suspended. The threads' stacks are small and exist before the window; waiting on
/// a barrier allocates nothing.
pub fn run_window_parallel(
    ops: &dyn WindowOps,
    shared: Shared<'_>,
    n_origins: usize,
    n_snapshots: usize,
) -> Result<Report, Abort> {
    use std::sync::atomic::AtomicU64;

    let n = n_origins.min(MAX_ORIGINS);
    // Phases: 0 before the window, 1 suspend, 2 resume, 3 stop (workers that have not
    // started leave). Workers park until the phase moves; each tells this thread when it is
    // through a phase.
    let phase = AtomicU32::new(0);
    let proceed = AtomicU32::new(0);
    let suspended_count = AtomicU32::new(0);
    let resumed_count = AtomicU32::new(0);
    let errors: Vec<AtomicU32> = (0..n).map(|_| AtomicU32::new(0)).collect();
    let resume_errors: Vec<AtomicU32> = (0..n).map(|_| AtomicU32::new(0)).collect();
    let at: Vec<AtomicU64> = (0..n).map(|_| AtomicU64::new(0)).collect();
    let start = std::sync::OnceLock::<Instant>::new();
    let main = std::thread::current();
    let mut snapshots_live_at = Duration::ZERO;
    let mut failure = None;
    let mut window = Duration::ZERO;

    let wait_for = |p: u32| {
        while phase.load(Ordering::SeqCst) < p {
            std::thread::park();
        }
        phase.load(Ordering::SeqCst)
    };
    let wait_count = |c: &AtomicU32, want: u32| {
        while c.load(Ordering::SeqCst) < want {
            std::thread::park_timeout(Duration::from_millis(1));
        }
    };

    std::thread::scope(|scope| {
        let mut workers = Vec::with_capacity(n);
        for i in 0..n {
            let (errors, resume_errors, at, start, main) =
                (&errors, &resume_errors, &at, &start, &main);
            let (proceed, suspended_count, resumed_count, wait_for) =
                (&proceed, &suspended_count, &resumed_count, &wait_for);
            let spawned = std::thread::Builder::new()
                .stack_size(WORKER_STACK)
                .spawn_scoped(scope, move || {
                    if wait_for(1) != 1 {
                        return;
                    }
                    if !shared.aborted() {
                        shared.set(i, SUSPENDING);
                        let r = ops.suspend(i, Kind::Origin);
                        if let Some(t0) = start.get() {
                            let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
                            at[i].store(ns, Ordering::SeqCst);
                        }
                        match r {
                            Ok(()) => {
                                if !shared.claim(i, SUSPENDING, SUSPENDED) {
                                    // Claimed by the guardian meanwhile: restore it again.
                                    let _ = ops.clear(i, Kind::Origin);
                                    let _ = ops.resume(i, Kind::Origin);
                                }
                            }
                            Err(e) => {
                                shared.claim(i, SUSPENDING, IDLE);
                                errors[i].store(e as i32 as u32, Ordering::SeqCst);
                            }
                        }
                    }
                    suspended_count.fetch_add(1, Ordering::SeqCst);
                    main.unpark();
                    wait_for(2);
                    if proceed.load(Ordering::SeqCst) == 1 && shared.claim(i, SUSPENDED, RESUMING) {
                        match ops.resume(i, Kind::Origin) {
                            Ok(()) => {
                                shared.claim(i, RESUMING, DONE);
                            }
                            Err(e) => {
                                shared.claim(i, RESUMING, SUSPENDED);
                                resume_errors[i].store(e as i32 as u32, Ordering::SeqCst);
                            }
                        }
                    }
                    resumed_count.fetch_add(1, Ordering::SeqCst);
                    main.unpark();
                });
            match spawned {
                Ok(h) => workers.push(h),
                Err(_) => break,
            }
        }
        let advance = |p: u32| {
            phase.store(p, Ordering::SeqCst);
            for w in &workers {
                w.thread().unpark();
            }
        };
        if workers.len() < n {
            // Not every worker could start: nothing is suspended; the others leave.
            failure = Some(Abort::Setup);
            advance(3);
            return;
        }
        let t0 = *start.get_or_init(Instant::now);
        advance(1);
        wait_count(&suspended_count, n as u32);
        let all_suspended = (0..n).all(|i| shared.state(i) == SUSPENDED);
        if all_suspended && !shared.aborted() {
            maybe_die_inside();
            for s in 0..n_snapshots {
                if let Err(e) = ops.resume(s, Kind::Snapshot) {
                    failure = Some(Abort::Snapshot(s, e));
                    break;
                }
            }
            if failure.is_none() {
                failure = send_messages(ops, shared);
            }
            snapshots_live_at = t0.elapsed();
            if failure.is_none() && !shared.aborted() {
                proceed.store(1, Ordering::SeqCst);
            }
        }
        advance(2);
        wait_count(&resumed_count, n as u32);
        window = t0.elapsed();
    });
    for (i, e) in errors.iter().enumerate() {
        let e = e.load(Ordering::SeqCst);
        if e != 0 && failure.is_none() {
            failure = Some(Abort::Suspend(i, Errno::from_raw(e as i32)));
        }
    }
    for (i, e) in resume_errors.iter().enumerate() {
        let e = e.load(Ordering::SeqCst);
        if e != 0 && failure.is_none() {
            failure = Some(Abort::Resume(i, Errno::from_raw(e as i32)));
        }
    }
    if failure.is_none() && (0..n).all(|i| shared.state(i) == DONE) {
        return Ok(Report {
            window,
            suspended_at: at
                .iter()
                .map(|a| Duration::from_nanos(a.load(Ordering::SeqCst)))
                .collect(),
            snapshots_live_at,
        });
    }
    if failure == Some(Abort::Setup) {
        return Err(Abort::Setup);
    }
    shared.abort();
    match restore(ops, shared, n, false) {
        Err((i, errno)) => Err(Abort::Restore(i, errno)),
        Ok(()) => Err(failure.unwrap_or(Abort::Guardian)),
    }
}

/// The window's messages, in order, while every origin is suspended; the first failure (or
/// an abort by the guardian) stops them. A thin pool that took some `create_snap` and not its
/// `set_transaction_id` stays one transaction behind the metadata: what the flow's tidy of a
/// half-made set is for.
fn send_messages(ops: &dyn WindowOps, shared: Shared<'_>) -> Option<Abort> {
    for m in 0..ops.messages() {
        if shared.aborted() {
            return None;
        }
        if let Err(e) = ops.message(m) {
            return Some(Abort::Message(m, e));
        }
    }
    None
}

/// A window worker's stack: it only makes one ioctl at a time.
const WORKER_STACK: usize = 64 * 1024;

/// Restores every origin this side can claim: inactive table cleared, then resumed with the
/// table it had.
fn restore(
    ops: &dyn WindowOps,
    shared: Shared<'_>,
    n_origins: usize,
    guardian: bool,
) -> Result<(), (usize, Errno)> {
    let mine = if guardian { GUARDED } else { RESTORED };
    let mut first_err = None;
    for i in 0..n_origins {
        // The guardian also takes an origin whose owner is inside (or stopped around) its
        // suspend or resume ioctl. If that suspend is still in flight, the resume below finds
        // nothing suspended and does nothing; the owner then sees it lost the claim and
        // restores the origin itself (clear and resume again are harmless).
        let claimed = shared.claim(i, SUSPENDED, mine)
            || (guardian && (shared.claim(i, SUSPENDING, mine) || shared.claim(i, RESUMING, mine)));
        if !claimed {
            continue;
        }
        if let Err(e) = ops.clear(i, Kind::Origin) {
            first_err.get_or_insert((i, e));
        }
        if let Err(e) = ops.resume(i, Kind::Origin) {
            first_err.get_or_insert((i, e));
        }
    }
    match first_err {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

/// The most origins one window takes (the shared page and the stack's step times).
pub const MAX_ORIGINS: usize = 64;

/// The guardian's rescue: marks the window aborted and restores every origin the owner has
/// not finished. Safe while the owner is stopped, dead or inside an ioctl.
pub fn guardian_rescue(
    ops: &dyn WindowOps,
    shared: Shared<'_>,
    n_origins: usize,
) -> Result<(), (usize, Errno)> {
    shared.abort();
    restore(ops, shared, n_origins, true)
}

impl Abort {
    /// The error for the caller, with device names.
    pub fn into_error(self, req: &Request) -> WindowError {
        let origin = |i: usize| req.origins.get(i).cloned().unwrap_or_default();
        match self {
            Abort::Suspend(i, errno) => WindowError::Suspend {
                name: origin(i),
                errno,
            },
            Abort::Snapshot(i, errno) => WindowError::Snapshot {
                name: req.snapshots.get(i).cloned().unwrap_or_default(),
                errno,
            },
            Abort::Message(i, errno) => {
                let (name, message) = req.messages.get(i).cloned().unwrap_or_default();
                WindowError::Message {
                    name,
                    message,
                    errno,
                }
            }
            Abort::Resume(i, errno) => WindowError::Resume {
                name: origin(i),
                errno,
            },
            Abort::Guardian => WindowError::TimedOut {
                deadline_ms: req.deadline.as_millis(),
            },
            Abort::Restore(i, errno) => WindowError::Restore {
                name: origin(i),
                errno,
            },
            Abort::Setup => WindowError::Setup("cannot start the window's threads".into()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The real window: raw ioctls, a locked process, a forked guardian.

mod raw {
    use super::{Kind, WindowOps};
    use devicemapper_sys as sys;
    use nix::errno::Errno;
    use nix::libc;
    use std::os::fd::RawFd;

    /// Headers built before the window, one per device; each call copies one to the stack.
    #[derive(Debug)]
    pub struct RawOps {
        fd: RawFd,
        origins: Vec<sys::dm_ioctl>,
        snapshots: Vec<sys::dm_ioctl>,
        /// Each message's whole ioctl buffer (header, `dm_target_msg`, the text and its NUL),
        /// in u64 words for the header's alignment; copied to the stack is not possible (its
        /// size varies), so the window passes a copy made before it: `scratch`.
        messages: Vec<Vec<u64>>,
        scratch: std::sync::Mutex<Vec<u64>>,
    }

    /// A `DM_TARGET_MSG` buffer for `message` to device `name` (sector 0: the pool's one
    /// target).
    pub(super) fn message_buffer(name: &str, message: &str) -> Result<Vec<u64>, String> {
        let head = std::mem::size_of::<sys::dm_ioctl>();
        let msg = std::mem::size_of::<sys::dm_target_msg>();
        let total = head + msg + message.len() + 1;
        if message.as_bytes().contains(&0) {
            return Err(format!("bad message {message:?}"));
        }
        let mut words = vec![0u64; total.div_ceil(8)];
        let mut h = header(name)?;
        h.data_size = (words.len() * 8) as u32;
        h.data_start = head as u32;
        // SAFETY: `words` holds at least `total` bytes, 8-byte aligned (dm_ioctl's alignment
        // is at most 8); the header, the target message (sector 0, already zero) and the
        // text are written inside it, the rest stays zero (the text's NUL).
        unsafe {
            let base = words.as_mut_ptr().cast::<u8>();
            std::ptr::write(base.cast::<sys::dm_ioctl>(), h);
            std::ptr::copy_nonoverlapping(message.as_ptr(), base.add(head + msg), message.len());
        }
        Ok(words)
    }

    fn header(name: &str) -> Result<sys::dm_ioctl, String> {
        let mut h = sys::dm_ioctl {
            version: [sys::DM_VERSION_MAJOR, 0, 0],
            data_size: std::mem::size_of::<sys::dm_ioctl>() as u32,
            data_start: std::mem::size_of::<sys::dm_ioctl>() as u32,
            ..Default::default()
        };
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() >= h.name.len() || bytes.contains(&0) {
            return Err(format!("bad device-mapper name {name:?}"));
        }
        for (d, s) in h.name.iter_mut().zip(bytes) {
            *d = *s as libc::c_char;
        }
        Ok(h)
    }

    impl RawOps {
        pub fn new(
            fd: RawFd,
            origins: &[String],
            snapshots: &[String],
            messages: &[(String, String)],
        ) -> Result<RawOps, String> {
            let messages = messages
                .iter()
                .map(|(n, m)| message_buffer(n, m))
                .collect::<Result<Vec<_>, _>>()?;
            let longest = messages.iter().map(Vec::len).max().unwrap_or(0);
            Ok(RawOps {
                messages,
                scratch: std::sync::Mutex::new(vec![0u64; longest]),
                fd,
                origins: origins
                    .iter()
                    .map(|n| header(n))
                    .collect::<Result<_, _>>()?,
                snapshots: snapshots
                    .iter()
                    .map(|n| header(n))
                    .collect::<Result<_, _>>()?,
            })
        }

        fn call(
            &self,
            i: usize,
            kind: Kind,
            cmd: u32,
            flags: u32,
            event_nr: u32,
        ) -> Result<sys::dm_ioctl, Errno> {
            let mut h = match kind {
                Kind::Origin => self.origins[i],
                Kind::Snapshot => self.snapshots[i],
            };
            h.flags = flags;
            h.event_nr = event_nr;
            let op = nix::request_code_readwrite!(
                sys::DM_IOCTL,
                cmd,
                std::mem::size_of::<sys::dm_ioctl>()
            );
            // SAFETY: `h` is a complete dm_ioctl header whose data_size is its own size; the
            // kernel reads and writes at most data_size bytes of it.
            let r = unsafe { libc::ioctl(self.fd, op as _, &mut h as *mut sys::dm_ioctl) };
            if r < 0 { Err(Errno::last()) } else { Ok(h) }
        }
    }

    /// The uevent cookie of a resume: LVM's udev flags for the device (what `RealDm` sends for
    /// a top-level LV and for a visible snapshot) and no semaphore (base 0), as libdm sends
    /// them when it does not wait: udev takes the event as genuine and sets up the device's
    /// links, `dmsetup udevcomplete` finds nothing to complete, and nobody waits.
    pub fn resume_event(kind: Kind) -> u32 {
        let mut flags = sys::DM_UDEV_DISABLE_LIBRARY_FALLBACK | sys::DM_UDEV_PRIMARY_SOURCE_FLAG;
        if kind == Kind::Snapshot {
            flags |= sys::DM_UDEV_LOW_PRIORITY_FLAG;
        }
        flags << 16
    }

    impl WindowOps for RawOps {
        fn suspend(&self, i: usize, kind: Kind) -> Result<(), Errno> {
            // No DM_SKIP_LOCKFS: the kernel freezes the filesystem on the device; no
            // DM_NOFLUSH: in-flight I/O completes first.
            self.call(i, kind, sys::DM_DEV_SUSPEND_CMD, sys::DM_SUSPEND_FLAG, 0)
                .map(|_| ())
        }
        fn resume(&self, i: usize, kind: Kind) -> Result<(), Errno> {
            self.call(i, kind, sys::DM_DEV_SUSPEND_CMD, 0, resume_event(kind))
                .map(|_| ())
        }
        fn clear(&self, i: usize, kind: Kind) -> Result<(), Errno> {
            self.call(i, kind, sys::DM_TABLE_CLEAR_CMD, 0, 0)
                .map(|_| ())
        }
        fn messages(&self) -> usize {
            self.messages.len()
        }
        fn message(&self, i: usize) -> Result<(), Errno> {
            // Only the window's main thread sends messages: the lock is never contended, and
            // its memory (made before the window) is only copied into.
            let mut buf = self.scratch.lock().map_err(|_| Errno::EDEADLK)?;
            let src = &self.messages[i];
            buf[..src.len()].copy_from_slice(src);
            let op = nix::request_code_readwrite!(
                sys::DM_IOCTL,
                sys::DM_TARGET_MSG_CMD,
                std::mem::size_of::<sys::dm_ioctl>()
            );
            // SAFETY: `buf` starts with a dm_ioctl header whose data_size is no more than the
            // buffer's length in bytes; the kernel reads and writes at most that much.
            let r = unsafe { libc::ioctl(self.fd, op as _, buf.as_mut_ptr()) };
            if r < 0 { Err(Errno::last()) } else { Ok(()) }
        }
    }
}

/// [`take`] on the system's `/dev/mapper/control`.
pub fn take_on_control(req: &Request) -> Result<Report, WindowError> {
    use std::os::fd::AsRawFd;
    let control = std::fs::File::open("/dev/mapper/control")
        .map_err(|e| WindowError::Setup(format!("/dev/mapper/control: {e}")))?;
    take(control.as_raw_fd(), req)
}

/// Takes the window for real: locks the process in memory, forks the guardian, blocks
/// signals, runs the window on `control_fd` (an open `/dev/mapper/control`), then undoes all
/// three. The caller has prepared every table.
pub fn take(control_fd: std::os::fd::RawFd, req: &Request) -> Result<Report, WindowError> {
    use nix::sys::mman::{MapFlags, MlockAllFlags, ProtFlags, mlockall, munlockall};
    use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};

    let n = req.origins.len();
    if n == 0 || n > MAX_ORIGINS {
        return Err(WindowError::Setup(format!(
            "{n} origins (1 to {MAX_ORIGINS} are possible)"
        )));
    }
    let ops = raw::RawOps::new(control_fd, &req.origins, &req.snapshots, &req.messages)
        .map_err(WindowError::Setup)?;
    DIE_INSIDE.store(req.die_inside, Ordering::SeqCst);
    let size = std::num::NonZeroUsize::new(4096).expect("non-zero");
    // SAFETY: a fresh anonymous shared mapping, used only through `cells` below and unmapped
    // at the end of this function, after the last use of `cells`.
    let map = unsafe {
        nix::sys::mman::mmap_anonymous(
            None,
            size,
            ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
            MapFlags::MAP_SHARED,
        )
    }
    .map_err(|e| WindowError::Setup(format!("shared mapping: {e}")))?;
    // SAFETY: the mapping is 4096 bytes, zero-filled (zero is a valid AtomicU32) and page
    // aligned; 1 + MAX_ORIGINS cells of 4 bytes fit. Both processes see the same pages.
    let cells: &[AtomicU32] =
        unsafe { std::slice::from_raw_parts(map.as_ptr().cast::<AtomicU32>(), 1 + n) };
    let shared = Shared::new(cells);

    let undo = |map| {
        let _ = munlockall();
        // SAFETY: nothing refers to the mapping any more when this runs.
        let _ = unsafe { nix::sys::mman::munmap(map, 4096) };
    };
    if let Err(e) = mlockall(MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE) {
        undo(map);
        return Err(WindowError::Setup(format!("mlockall: {e}")));
    }
    let (rd, wr) = match nix::unistd::pipe() {
        Ok(p) => p,
        Err(e) => {
            undo(map);
            return Err(WindowError::Setup(format!("pipe: {e}")));
        }
    };
    let deadline_ms = i32::try_from(req.deadline.as_millis()).unwrap_or(i32::MAX);
    let mut old = SigSet::empty();
    let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), Some(&mut old));
    // SAFETY: the child makes only raw system calls (mlockall, poll, read, ioctl, nanosleep,
    // _exit) on memory that existed before the fork; it allocates nothing and takes no lock
    // another thread of the parent could have held at the fork.
    let child = match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            drop(wr);
            let _ = mlockall(MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE);
            guardian_main(&ops, shared, n, rd, deadline_ms);
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => child,
        Err(e) => {
            let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
            undo(map);
            return Err(WindowError::Setup(format!("fork: {e}")));
        }
    };
    drop(rd);
    let result = if req.parallel {
        run_window_parallel(&ops, shared, n, req.snapshots.len())
    } else {
        run_window(&ops, shared, n, req.snapshots.len())
    };
    // Closed (or aborted and restored by this process): the guardian may go.
    let _ = nix::unistd::write(&wr, b"c");
    drop(wr);
    let _ = nix::sys::wait::waitpid(child, None);
    let guardian_acted = shared.guardian_acted(n);
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    undo(map);
    match result {
        Ok(r) if !guardian_acted => Ok(r),
        Ok(_) => Err(Abort::Guardian.into_error(req)),
        Err(a) => Err(a.into_error(req)),
    }
}

/// The guardian process: waits for the "closed" byte until the deadline; when the parent
/// died (end of file) or the deadline passed, restores every origin the parent has not.
fn guardian_main(
    ops: &raw::RawOps,
    shared: Shared<'_>,
    n: usize,
    rd: std::os::fd::OwnedFd,
    deadline_ms: i32,
) -> ! {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let timeout = PollTimeout::try_from(deadline_ms).unwrap_or(PollTimeout::MAX);
    let ready = {
        let mut fds = [PollFd::new(rd.as_fd(), PollFlags::POLLIN)];
        poll(&mut fds, timeout)
    };
    let mut buf = [0u8; 1];
    let rescue = match ready {
        Ok(0) => true,
        Ok(_) => !matches!(nix::unistd::read(&rd, &mut buf), Ok(1) if buf[0] == b'c'),
        Err(_) => true,
    };
    if rescue {
        let _ = guardian_rescue(ops, shared, n);
    }
    // SAFETY: _exit ends the child without running the parent's destructors or exit hooks.
    unsafe { nix::libc::_exit(0) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicBool;

    /// A device: suspended or not, an inactive table or not, which table is live.
    #[derive(Clone, Debug, Default, PartialEq)]
    struct Dev {
        suspended: bool,
        inactive: bool,
        new_table_live: bool,
    }

    /// The kernel's side of the window, recorded; fails or blocks where a test says.
    struct Fake {
        devs: Mutex<(Vec<Dev>, Vec<Dev>)>,
        calls: Mutex<Vec<String>>,
        fail: Option<String>,
        failed: AtomicBool,
        block_on: Option<String>,
        released: AtomicBool,
        entered: AtomicBool,
        n_messages: usize,
    }

    impl Fake {
        fn new(origins: usize, snapshots: usize) -> Fake {
            let loaded = Dev {
                inactive: true,
                ..Dev::default()
            };
            let snap = Dev {
                suspended: true,
                inactive: true,
                ..Dev::default()
            };
            Fake {
                devs: Mutex::new((vec![loaded; origins], vec![snap; snapshots])),
                calls: Mutex::new(Vec::new()),
                fail: None,
                failed: AtomicBool::new(false),
                block_on: None,
                released: AtomicBool::new(false),
                entered: AtomicBool::new(false),
                n_messages: 0,
            }
        }

        fn op(
            &self,
            what: &str,
            i: usize,
            kind: Kind,
            f: impl FnOnce(&mut Dev),
        ) -> Result<(), Errno> {
            let k = match kind {
                Kind::Origin => 'o',
                Kind::Snapshot => 's',
            };
            let call = format!("{what} {k}{i}");
            self.calls.lock().expect("calls").push(call.clone());
            if self.block_on.as_deref() == Some(call.as_str()) {
                self.entered.store(true, Ordering::SeqCst);
                while !self.released.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            // Fails once: the restore's retry of the same call succeeds.
            if self.fail.as_deref() == Some(call.as_str())
                && !self.failed.swap(true, Ordering::SeqCst)
            {
                return Err(Errno::EBUSY);
            }
            let mut d = self.devs.lock().expect("devs");
            let dev = match kind {
                Kind::Origin => &mut d.0[i],
                Kind::Snapshot => &mut d.1[i],
            };
            f(dev);
            Ok(())
        }

        fn calls(&self) -> Vec<String> {
            self.calls.lock().expect("calls").clone()
        }

        fn origins(&self) -> Vec<Dev> {
            self.devs.lock().expect("devs").0.clone()
        }
    }

    impl WindowOps for Fake {
        fn suspend(&self, i: usize, kind: Kind) -> Result<(), Errno> {
            self.op("suspend", i, kind, |d| d.suspended = true)
        }
        fn resume(&self, i: usize, kind: Kind) -> Result<(), Errno> {
            self.op("resume", i, kind, |d| {
                if d.inactive {
                    d.inactive = false;
                    d.new_table_live = true;
                }
                d.suspended = false;
            })
        }
        fn clear(&self, i: usize, kind: Kind) -> Result<(), Errno> {
            self.op("clear", i, kind, |d| d.inactive = false)
        }
        fn messages(&self) -> usize {
            self.n_messages
        }
        fn message(&self, i: usize) -> Result<(), Errno> {
            let call = format!("message m{i}");
            self.calls.lock().expect("calls").push(call.clone());
            // A message is sent while every origin is suspended (create_snap needs its
            // origin suspended).
            if self.origins().iter().any(|d| !d.suspended) {
                return Err(Errno::EINVAL);
            }
            if self.fail.as_deref() == Some(call.as_str()) {
                return Err(Errno::EEXIST);
            }
            Ok(())
        }
    }

    fn cells(n: usize) -> Vec<AtomicU32> {
        (0..=n).map(|_| AtomicU32::new(0)).collect()
    }

    fn none_suspended(f: &Fake) -> bool {
        f.origins().iter().all(|d| !d.suspended)
    }

    #[test]
    fn every_origin_suspended_then_snapshots_then_origins_resumed() {
        let f = Fake::new(2, 2);
        let c = cells(2);
        let r = run_window(&f, Shared::new(&c), 2, 2).expect("window");
        assert_eq!(
            f.calls(),
            [
                "suspend o0",
                "suspend o1",
                "resume s0",
                "resume s1",
                "resume o0",
                "resume o1"
            ]
        );
        assert_eq!(r.suspended_at.len(), 2);
        assert!(r.window >= r.snapshots_live_at);
        assert!(f.origins().iter().all(|d| d.new_table_live && !d.suspended));
    }

    #[test]
    fn a_failed_suspend_restores_the_origins_already_suspended_with_their_old_tables() {
        let mut f = Fake::new(3, 3);
        f.fail = Some("suspend o1".into());
        let c = cells(3);
        let e = run_window(&f, Shared::new(&c), 3, 3).expect_err("aborted");
        assert_eq!(e, Abort::Suspend(1, Errno::EBUSY));
        assert_eq!(
            f.calls(),
            ["suspend o0", "suspend o1", "clear o0", "resume o0"]
        );
        assert!(none_suspended(&f));
        assert!(f.origins().iter().all(|d| !d.new_table_live));
        let req = Request {
            origins: vec!["vg0-root".into(), "vg1-var".into(), "vg1-usr".into()],
            snapshots: vec![],
            deadline: Duration::from_secs(1),
            parallel: false,
            messages: Vec::new(),
            die_inside: false,
        };
        assert_eq!(
            e.into_error(&req).to_string(),
            "suspending vg1-var failed: EBUSY: Device or resource busy; every origin was resumed \
             with its old table, no snapshot was taken"
        );
    }

    #[test]
    fn a_snapshot_that_cannot_go_live_restores_every_origin() {
        let mut f = Fake::new(2, 2);
        f.fail = Some("resume s1".into());
        let c = cells(2);
        let e = run_window(&f, Shared::new(&c), 2, 2).expect_err("aborted");
        assert_eq!(e, Abort::Snapshot(1, Errno::EBUSY));
        assert!(none_suspended(&f));
        assert!(f.origins().iter().all(|d| !d.new_table_live && !d.inactive));
    }

    #[test]
    fn a_failed_origin_resume_restores_the_rest_and_keeps_the_resumed_ones() {
        let mut f = Fake::new(3, 3);
        f.fail = Some("resume o1".into());
        let c = cells(3);
        let e = run_window(&f, Shared::new(&c), 3, 3).expect_err("aborted");
        assert_eq!(e, Abort::Resume(1, Errno::EBUSY));
        assert!(none_suspended(&f));
        let live: Vec<bool> = f.origins().iter().map(|d| d.new_table_live).collect();
        assert_eq!(live, [true, false, false]);
    }

    #[test]
    fn the_guardian_restores_while_the_owner_hangs_in_a_suspend() {
        let mut f = Fake::new(3, 3);
        f.block_on = Some("suspend o1".into());
        let c = cells(3);
        let shared = Shared::new(&c);
        std::thread::scope(|s| {
            let owner = s.spawn(|| run_window(&f, shared, 3, 3));
            while !f.entered.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            // The deadline passes: the guardian restores o0 while o1's suspend hangs; the
            // owner, back from it, finds o1 claimed and restores it itself.
            assert_eq!(guardian_rescue(&f, shared, 3), Ok(()));
            assert!(!f.origins()[0].suspended, "o0 restored while o1 hangs");
            f.released.store(true, Ordering::SeqCst);
            assert_eq!(owner.join().expect("owner"), Err(Abort::Guardian));
        });
        assert!(none_suspended(&f));
        assert!(f.origins().iter().all(|d| !d.new_table_live));
        assert!(!f.calls().contains(&"suspend o2".to_owned()));
        assert!(shared.guardian_acted(3));
    }

    type Runner = fn(&dyn WindowOps, Shared<'_>, usize, usize) -> Result<Report, Abort>;
    const RUNNERS: [Runner; 2] = [run_window, run_window_parallel];

    fn position(calls: &[String], call: &str) -> usize {
        calls
            .iter()
            .position(|c| c == call)
            .unwrap_or_else(|| panic!("no {call} in {calls:?}"))
    }

    #[test]
    fn both_windows_suspend_every_origin_before_any_resume() {
        for run in RUNNERS {
            let f = Fake::new(4, 4);
            let c = cells(4);
            let r = run(&f, Shared::new(&c), 4, 4).expect("window");
            let calls = f.calls();
            assert_eq!(calls.len(), 12, "{calls:?}");
            let last_suspend = (0..4)
                .map(|i| position(&calls, &format!("suspend o{i}")))
                .max();
            let first_snap = (0..4)
                .map(|i| position(&calls, &format!("resume s{i}")))
                .min();
            let last_snap = (0..4)
                .map(|i| position(&calls, &format!("resume s{i}")))
                .max();
            let first_origin = (0..4)
                .map(|i| position(&calls, &format!("resume o{i}")))
                .min();
            assert!(
                last_suspend < first_snap && last_snap < first_origin,
                "{calls:?}"
            );
            assert!(f.origins().iter().all(|d| d.new_table_live && !d.suspended));
            assert_eq!(r.suspended_at.len(), 4);
        }
    }

    #[test]
    fn both_windows_restore_every_origin_on_any_failure() {
        for run in RUNNERS {
            for fail in ["suspend o2", "resume s1", "resume o1"] {
                let mut f = Fake::new(3, 3);
                f.fail = Some(fail.into());
                let c = cells(3);
                let e = run(&f, Shared::new(&c), 3, 3).expect_err("aborted");
                assert!(
                    matches!(
                        (fail, e),
                        ("suspend o2", Abort::Suspend(2, _))
                            | ("resume s1", Abort::Snapshot(1, _))
                            | ("resume o1", Abort::Resume(1, _))
                    ),
                    "{fail}: {e:?}"
                );
                assert!(none_suspended(&f), "{fail}: {:?}", f.origins());
                // Only an origin resumed before the failure keeps its new table.
                if fail != "resume o1" {
                    assert!(f.origins().iter().all(|d| !d.new_table_live), "{fail}");
                }
            }
        }
    }

    #[test]
    fn the_guardian_restores_while_a_parallel_suspend_hangs() {
        let mut f = Fake::new(3, 3);
        f.block_on = Some("suspend o1".into());
        let c = cells(3);
        let shared = Shared::new(&c);
        std::thread::scope(|s| {
            let owner = s.spawn(|| run_window_parallel(&f, shared, 3, 3));
            while !f.entered.load(Ordering::SeqCst)
                || (0..3)
                    .filter(|&i| i != 1)
                    .any(|i| shared.state(i) != SUSPENDED)
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            assert_eq!(guardian_rescue(&f, shared, 3), Ok(()));
            assert!(!f.origins()[0].suspended && !f.origins()[2].suspended);
            f.released.store(true, Ordering::SeqCst);
            assert_eq!(owner.join().expect("owner"), Err(Abort::Guardian));
        });
        assert!(none_suspended(&f));
        assert!(f.origins().iter().all(|d| !d.new_table_live));
    }

    #[test]
    fn the_resume_events_carry_lvm_udev_flags_and_no_semaphore() {
        use devicemapper::DmUdevFlags as F;
        let origin = raw::resume_event(Kind::Origin);
        let snap = raw::resume_event(Kind::Snapshot);
        assert_eq!(origin & 0xffff, 0);
        let flags = |e: u32| F::from_bits_truncate(e >> 16);
        assert_eq!(
            flags(origin),
            F::DM_UDEV_DISABLE_LIBRARY_FALLBACK | F::DM_UDEV_PRIMARY_SOURCE_FLAG
        );
        assert!(flags(snap).contains(F::DM_UDEV_LOW_PRIORITY_FLAG));
    }

    #[test]
    fn the_guardian_after_a_finished_window_does_nothing() {
        let f = Fake::new(2, 2);
        let c = cells(2);
        let shared = Shared::new(&c);
        run_window(&f, shared, 2, 2).expect("window");
        let before = f.calls().len();
        guardian_rescue(&f, shared, 2).expect("rescue");
        assert_eq!(f.calls().len(), before);
        assert!(!shared.guardian_acted(2));
    }
    #[test]
    fn messages_go_while_every_origin_is_suspended_and_a_failed_one_restores_them() {
        for run in RUNNERS {
            let mut f = Fake::new(3, 1);
            f.n_messages = 3;
            let c = cells(3);
            run(&f, Shared::new(&c), 3, 1).expect("window");
            let calls = f.calls();
            let last_suspend = (0..3)
                .map(|i| position(&calls, &format!("suspend o{i}")))
                .max()
                .unwrap_or(0);
            let first_resume = (0..3)
                .map(|i| position(&calls, &format!("resume o{i}")))
                .min()
                .unwrap_or(0);
            let m: Vec<usize> = (0..3)
                .map(|i| position(&calls, &format!("message m{i}")))
                .collect();
            assert!(m.windows(2).all(|w| w[0] < w[1]), "in order: {calls:?}");
            assert!(
                position(&calls, "resume s0") < m[0] && last_suspend < m[0] && m[2] < first_resume,
                "{calls:?}"
            );
            assert!(f.origins().iter().all(|d| d.new_table_live && !d.suspended));

            // The second message fails: the third is not sent, every origin is back on its
            // old table.
            let mut f = Fake::new(3, 0);
            f.n_messages = 3;
            f.fail = Some("message m1".into());
            let c = cells(3);
            let e = run(&f, Shared::new(&c), 3, 0).expect_err("aborted");
            assert_eq!(e, Abort::Message(1, Errno::EEXIST));
            assert!(!f.calls().contains(&"message m2".to_owned()));
            assert!(none_suspended(&f));
            assert!(f.origins().iter().all(|d| !d.new_table_live));
            let req = Request {
                origins: vec!["vg-a".into(), "vg-b".into(), "vg-c".into()],
                snapshots: Vec::new(),
                messages: vec![
                    ("vg-pool-tpool".into(), "create_snap 4 1".into()),
                    ("vg-pool-tpool".into(), "create_snap 5 2".into()),
                    ("vg-pool-tpool".into(), "set_transaction_id 3 4".into()),
                ],
                deadline: Duration::from_secs(1),
                parallel: true,
                die_inside: false,
            };
            let msg = e.into_error(&req).to_string();
            assert!(
                msg.contains("create_snap 5 2") && msg.contains("vg-pool-tpool"),
                "{msg}"
            );
        }
    }

    #[test]
    fn a_target_message_buffer_is_header_sector_and_text() {
        let b = raw::message_buffer("vg-pool-tpool", "create_snap 4 1").expect("buffer");
        let bytes: Vec<u8> = b.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let head = std::mem::size_of::<devicemapper_sys::dm_ioctl>();
        let msg = std::mem::size_of::<devicemapper_sys::dm_target_msg>();
        // SAFETY: the buffer starts with the header message_buffer wrote.
        let h: devicemapper_sys::dm_ioctl =
            unsafe { std::ptr::read(b.as_ptr().cast::<devicemapper_sys::dm_ioctl>()) };
        assert_eq!(h.data_start as usize, head);
        assert_eq!(h.data_size as usize, bytes.len());
        assert!(bytes.len() > head + msg + "create_snap 4 1".len());
        assert_eq!(&bytes[head..head + msg], &[0u8; 8][..msg], "sector 0");
        let text = &bytes[head + msg..];
        assert_eq!(&text[..16], b"create_snap 4 1\0");
        assert!(raw::message_buffer("vg-pool-tpool", "a\0b").is_err());
    }
}
