//! `rewind handoff`: the initramfs's last step before `switch_root`, so that no LVM process
//! that `switch_root` can cut off is left finishing a merge; entry point [`run`].
//!
//! Why: an initramfs whose LVM2 activates volume groups from udev without `--sysinit`
//! (initramfs-tools' and mkinitcpio's `69-lvm.rules`/`69-dm-lvm.rules`; dracut's `lvm_scan`
//! uses `--sysinit` and starts none) forks a background poller for every merging origin it sees
//! active (`lv_spawn_background_polling`). A merge that rewind set up moments earlier is often
//! done at the poller's first check, and its finish (two metadata commits, suspend, reload,
//! resume) then runs while the initramfs tears itself down: seen cut between its commits, and
//! with every device of the volume left suspended. The merge's finish belongs to the booted
//! system: `rewind-poll.service`, or LVM's own poller there.
//!
//! How, by LVM's own locking rule: LVM writes metadata and changes tables only while it holds
//! the VG's lock (`flock` on `<locking_dir>/V_<vg>`, signals blocked for as long as it is
//! held). So, for every VG on the devices LVM uses:
//! 1. wait (bounded) until no LVM *command* runs: an activation forks its poller before it
//!    exits, so after this every poller there will be exists;
//! 2. take every VG's lock as LVM does: this waits out any LVM write in progress, and while
//!    rewind holds them no LVM process can be inside a write;
//! 3. stop each background poller (LVM's `(lvm2)` process) with SIGKILL: it is parked on a
//!    lock, asleep or reading, holds no lock and has half-done nothing (a catchable signal
//!    would not do: LVM blocks every signal while it waits for a lock, and would act first);
//! 4. check that no LVM device is left suspended (a leftover of an LVM process killed earlier,
//!    by anything): one suspended with no table to swap in is resumed, as it was before the
//!    suspend; one with an inactive table is reported and left alone;
//! 5. release the locks. The merges go on in the kernel; the booted system finishes them.
//!
//! With no poller running (the usual case, and always with dracut's lvm module), only step 4
//! runs. `rd.rewind=0` turns this off with the rest of rewind.

use super::early::{Inputs, scan_devices};
use crate::exit::Verdict;
use crate::plan::decide::{Level, Note};
use crate::plan::dev::UdevRules;
use crate::system::blockdev::BlockDevice;
use crate::system::dm::{DeviceMapper, RealDm};
use crate::system::lock::VgLock;
use crate::system::procs::{self, LvmProcess};
use crate::system::scan::Selector;
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where and how long.
#[derive(Debug, Clone)]
pub struct Env {
    /// LVM's `global/locking_dir`.
    pub lock_dir: PathBuf,
    /// How long to wait for one VG's lock.
    pub lock_timeout: Duration,
    /// How long to wait for LVM commands (not pollers) to end.
    pub settle_timeout: Duration,
    /// How long to wait for a killed poller to be gone.
    pub kill_timeout: Duration,
}

/// One LVM poller that was stopped.
#[derive(Debug, Clone, Serialize)]
pub struct Stopped {
    pub pid: i32,
    pub args: Vec<String>,
}

/// What the hand-off found and did.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub stopped: Vec<Stopped>,
    pub resumed: Vec<String>,
    pub notes: Vec<Note>,
}

impl Report {
    fn note(&mut self, level: Level, message: String) {
        super::note(&mut self.notes, level, message);
    }

    /// Failed when something could not be made safe.
    pub fn verdict(&self) -> Verdict {
        super::verdict_of(&self.notes)
    }

    /// 1 when something could not be made safe, else 0.
    pub fn exit_code(&self) -> u8 {
        self.verdict().code()
    }
}

fn describe(p: &LvmProcess) -> String {
    format!("{} ({})", p.pid, p.args.join(" "))
}

/// LVM processes under `root`, or a note saying why they cannot be listed.
fn lvm_processes(inputs: &Inputs, out: &mut Report) -> Option<Vec<LvmProcess>> {
    match procs::lvm_processes(&inputs.root.join("proc")) {
        Ok(p) => Some(p),
        Err(e) => {
            out.note(
                Level::Error,
                format!("cannot list processes ({e}); lvm's pollers, if any, left running"),
            );
            None
        }
    }
}

/// Step 1: waits until only pollers run LVM's binary, at most `env.settle_timeout`.
fn wait_for_commands(inputs: &Inputs, env: &Env, out: &mut Report) -> Option<Vec<LvmProcess>> {
    let deadline = Instant::now() + env.settle_timeout;
    loop {
        let all = lvm_processes(inputs, out)?;
        let commands: Vec<_> = all.iter().filter(|p| !p.poller).collect();
        if commands.is_empty() || Instant::now() >= deadline {
            if !commands.is_empty() {
                let list: Vec<_> = commands.iter().map(|p| describe(p)).collect();
                out.note(
                    Level::Warn,
                    format!(
                        "lvm command(s) still running after {} s: {}; going on",
                        env.settle_timeout.as_secs(),
                        list.join(", ")
                    ),
                );
            }
            return Some(all);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Step 2: LVM's lock on every VG found on the devices LVM uses, or `None` (with a note) when
/// one cannot be had: then no poller may be stopped.
fn lock_every_vg(
    inputs: &Inputs,
    env: &Env,
    select: &Selector<'_>,
    out: &mut Report,
) -> Option<Vec<VgLock>> {
    let scan = match scan_devices(inputs, select) {
        Ok(s) => s,
        Err(e) => {
            out.note(
                Level::Error,
                format!("{e}; lvm's pollers left running: one may be cut off at switch_root"),
            );
            return None;
        }
    };
    let names: BTreeSet<String> = scan.assembly.vgs.iter().map(|v| v.name.clone()).collect();
    let mut locks = Vec::new();
    for name in names {
        match VgLock::exclusive(&env.lock_dir, &name, env.lock_timeout) {
            Ok(l) => locks.push(l),
            Err(e) => {
                out.note(
                    Level::Error,
                    format!("{e}; lvm's pollers left running: one may be cut off at switch_root"),
                );
                return None;
            }
        }
    }
    Some(locks)
}

/// LVM devices that are suspended now.
fn suspended_lvm_devices(
    dm: &mut dyn DeviceMapper,
    out: &mut Report,
) -> Vec<crate::system::dm::DeviceState> {
    match dm.list() {
        Ok(d) => d
            .into_iter()
            .filter(|d| d.suspended && d.uuid.as_deref().is_some_and(|u| u.starts_with("LVM-")))
            .collect(),
        Err(e) => {
            out.note(
                Level::Warn,
                format!("cannot list device-mapper devices: {e}"),
            );
            Vec::new()
        }
    }
}

/// Step 4, under every VG's lock (no LVM write is in progress): resumes LVM devices left
/// suspended with nothing to swap in; reports the others.
fn resume_leftovers(dm: &mut dyn DeviceMapper, out: &mut Report) {
    for d in suspended_lvm_devices(dm, out) {
        if d.inactive_table {
            out.note(
                Level::Error,
                format!(
                    "{} is suspended with a table waiting to be swapped in (an lvm command was stopped in the middle); left as it is: `lvchange --refresh` of its lv once the system is up",
                    d.name
                ),
            );
            continue;
        }
        // LVM's uuids: `LVM-` + 32 + 32 characters for an LV; a layer adds `-real`, `-cow`...
        let rules = if d.uuid.as_deref().is_some_and(|u| u.len() > 68) {
            UdevRules::DmOnly
        } else {
            UdevRules::All
        };
        match dm.resume(&d.name, rules) {
            Ok(()) => {
                out.note(
                    Level::Warn,
                    format!(
                        "{} was left suspended by an lvm command that was stopped; resumed it with its own table",
                        d.name
                    ),
                );
                out.resumed.push(d.name);
            }
            Err(e) => out.note(
                Level::Error,
                format!("{} is suspended and resuming it failed: {e}", d.name),
            ),
        }
    }
}

/// Stops every LVM poller (listed again under the locks: each is parked, asleep or reading).
fn stop_pollers(inputs: &Inputs, env: &Env, out: &mut Report) {
    for p in lvm_processes(inputs, out).unwrap_or_default() {
        if !p.poller {
            continue;
        }
        if procs::kill_and_wait(&inputs.root.join("proc"), p.pid, env.kill_timeout) {
            out.note(
                Level::Info,
                format!(
                    "stopped lvm's background poller {} while it held no lock: a merge it watched goes on in the kernel and is finished after switch_root",
                    describe(&p)
                ),
            );
            out.stopped.push(Stopped {
                pid: p.pid,
                args: p.args,
            });
        } else {
            out.note(
                Level::Error,
                format!("lvm poller {} did not end after SIGKILL", describe(&p)),
            );
        }
    }
}

/// How long the hand-off waits for one VG's lock (an LVM write takes about a second).
const LOCK_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the hand-off waits for LVM commands (activations) to end.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one wait for udev may take.
const UDEV_TIMEOUT: Duration = Duration::from_secs(10);

fn all(_: &BlockDevice) -> Result<(), String> {
    Ok(())
}

/// `rewind handoff` on the system's device-mapper, LVM's locks in `lock_dir`; logs what it
/// did. Without device-mapper there is nothing to hand over.
pub fn run(inputs: &Inputs, lock_dir: &Path) -> Report {
    if inputs.cmdline.disabled {
        return Report::default();
    }
    let mut dm = match RealDm::new(UDEV_TIMEOUT) {
        Ok(dm) => dm,
        Err(e) => {
            log::debug!("handoff: no device-mapper ({e}): nothing to hand over");
            return Report::default();
        }
    };
    let env = Env {
        lock_dir: lock_dir.to_path_buf(),
        lock_timeout: LOCK_TIMEOUT,
        settle_timeout: SETTLE_TIMEOUT,
        kill_timeout: Duration::from_secs(5),
    };
    let report = hand_off(inputs, &env, &all, &mut dm);
    if !report.stopped.is_empty() || !report.resumed.is_empty() {
        log::info!(
            "handoff: stopped {} lvm poller(s), resumed {} device(s); merges are finished after switch_root",
            report.stopped.len(),
            report.resumed.len()
        );
    } else {
        log::debug!("handoff: nothing to do");
    }
    report
}

/// The whole hand-off on `dm` (see the module documentation).
pub fn hand_off(
    inputs: &Inputs,
    env: &Env,
    select: &Selector<'_>,
    dm: &mut dyn DeviceMapper,
) -> Report {
    let mut out = Report::default();
    if inputs.cmdline.disabled {
        return out;
    }
    let Some(first) = lvm_processes(inputs, &mut out) else {
        return out;
    };
    let pollers = first.iter().any(|p| p.poller);
    // Nothing to stop and nothing suspended: the usual boot ends here, without a scan.
    if !pollers && suspended_lvm_devices(dm, &mut out).is_empty() {
        return out;
    }
    if pollers && wait_for_commands(inputs, env, &mut out).is_none() {
        return out;
    }
    let Some(locks) = lock_every_vg(inputs, env, select, &mut out) else {
        for d in suspended_lvm_devices(dm, &mut out) {
            out.note(
                Level::Error,
                format!("{} is suspended; left as it is (no lock on its vg)", d.name),
            );
        }
        return out;
    };
    stop_pollers(inputs, env, &mut out);
    resume_leftovers(dm, &mut out);
    drop(locks);
    out
}
