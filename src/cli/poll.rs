//! The booted-system front ends: `rewind poll`, `rewind status`, `rewind rollback`,
//! `rewind cancel`. Thin: arguments, logging, device-mapper, printing; the work is in
//! `crate::poll`, `status` and `rollback`.

use super::status;
use crate::config::{self, Config};
use crate::flow::poll::{self, Env};
use crate::flow::rollback::{self, Rollback};
use crate::lvm::layout::LvRef;
use crate::system::blockdev::BlockDevice;
use crate::system::dm::{DeviceMapper, RealDm};
use crate::system::exec::live;
use crate::system::lock::DEFAULT_LOCK_DIR;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long one udev wait may take.
const UDEV_TIMEOUT: Duration = Duration::from_secs(10);
/// How long rewind waits for LVM's VG lock.
const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, clap::Args)]
pub struct SystemArgs {
    /// The root that holds /sys, /dev and /etc.
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
    /// The configuration file (default: ROOT/etc/rewind/rewind.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// LVM's locking directory (lvm.conf global/locking_dir).
    #[arg(long, default_value = DEFAULT_LOCK_DIR)]
    pub lock_dir: PathBuf,
}

impl SystemArgs {
    fn config(&self) -> Config {
        let path = self
            .config
            .clone()
            .unwrap_or_else(|| self.root.join(config::DEFAULT_PATH.trim_start_matches('/')));
        Config::load_or_default(&path)
    }
}

fn all(_: &BlockDevice) -> Result<(), String> {
    Ok(())
}

fn env(args: &SystemArgs) -> Env<'static> {
    Env {
        root: args.root.clone(),
        select: &all,
        lock_dir: args.lock_dir.clone(),
        lock_timeout: LOCK_TIMEOUT,
        commit_hook: None,
    }
}

fn real_dm() -> Option<RealDm> {
    match RealDm::new(UDEV_TIMEOUT) {
        Ok(dm) => Some(dm),
        Err(e) => {
            log::info!("device-mapper not available: {e}");
            None
        }
    }
}

/// `rewind poll`: 0 when every merge finished (or none is active), 1 otherwise.
pub fn run_poll(args: &SystemArgs) -> u8 {
    let cfg = args.config();
    let Some(mut dm) = real_dm() else {
        log::info!("no device-mapper: no merge to finish");
        return 0;
    };
    let mut env = env(args);
    let report = poll::run(&mut env, &mut dm, &cfg.poll, &mut |d, _| {
        std::thread::sleep(d)
    });
    for f in &report.finished {
        match f {
            poll::Finished::Committed {
                vg,
                origin,
                snapshot,
            } => {
                log::info!(
                    "{vg}/{origin}: rolled back to {snapshot}; snapshot dropped, plain table loaded"
                )
            }
            poll::Finished::AlreadyDropped { vg, origin } => {
                log::info!(
                    "{vg}/{origin}: merge already dropped from the metadata (by lvm or an earlier run); devices tidied"
                )
            }
        }
    }
    if report.finished.is_empty() && report.exit_code() == 0 {
        log::info!("no active merge");
    }
    report.exit_code()
}

/// `rewind status`.
pub fn run_status(args: &SystemArgs, json: bool, watch: bool) -> u8 {
    let env = env(args);
    let mut dm = match RealDm::new(UDEV_TIMEOUT) {
        Ok(dm) => Some(dm),
        Err(e) => {
            // Said, not hidden: without device-mapper the report is the metadata's alone.
            eprintln!(
                "rewind: device-mapper is not available ({e}): showing what the metadata says; no volume is active here"
            );
            None
        }
    };
    let take = |dm: &mut Option<RealDm>| -> Result<status::Report, String> {
        let s = crate::system::scan::scan(&env.root, env.select)
            .map_err(|e| format!("cannot list block devices: {e}"))?;
        match dm {
            Some(d) => {
                let l = live(d).map_err(|e| format!("cannot read device-mapper state: {e}"))?;
                Ok(status::collect(&s.assembly.vgs, &l, Some(d)))
            }
            None => Ok(status::collect(&s.assembly.vgs, &[], None)),
        }
    };
    let mut report = match take(&mut dm) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rewind: {e}");
            return 1;
        }
    };
    if report.merging().next().is_some() {
        // A second look a second later gives the rate and the time left.
        let t = Instant::now();
        std::thread::sleep(Duration::from_secs(1));
        if let Ok(mut again) = take(&mut dm) {
            status::add_rates(&mut again, &report, t.elapsed());
            report = again;
        }
    }
    if watch && report.merging().next().is_some() {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            watch_merges(&mut report, &mut |dm2| take(dm2), &mut dm);
        } else {
            // No terminal for progress bars: a line per sample on stdout.
            let mut out = std::io::stdout().lock();
            if let Err(e) = status::watch(
                &mut report,
                &mut || take(&mut dm),
                &mut std::thread::sleep,
                &mut Instant::now,
                &mut out,
            ) {
                eprintln!("rewind: {e}");
                return 1;
            }
        }
    }
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("rewind: {e}");
                return 1;
            }
        }
    } else {
        print!("{}", status::print_text(&report));
    }
    report.exit_code()
}

fn watch_merges(
    report: &mut status::Report,
    take: &mut dyn FnMut(&mut Option<RealDm>) -> Result<status::Report, String>,
    dm: &mut Option<RealDm>,
) {
    use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
    let multi = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix} [{bar:40}] {percent:>3}% {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let mut bars: Vec<(String, ProgressBar)> = Vec::new();
    loop {
        for (o, s) in report.merging() {
            let key = format!("{}/{} <- {}", o.vg, o.origin, s.name);
            if !bars.iter().any(|(k, _)| *k == key) {
                let bar = multi.add(ProgressBar::new(10000));
                bar.set_style(style.clone());
                bar.set_prefix(key.clone());
                bars.push((key, bar));
            }
        }
        for (key, bar) in &bars {
            let m = report
                .merging()
                .find(|(o, s)| format!("{}/{} <- {}", o.vg, o.origin, s.name) == *key)
                .and_then(|(_, s)| s.merge.clone());
            match m {
                Some(m) => {
                    bar.set_position((m.percent * 100.0) as u64);
                    let eta = m
                        .eta_s
                        .map(|e| format!(", {e:.0} s left"))
                        .unwrap_or_default();
                    bar.set_message(format!("{} MiB left{eta}", m.bytes_left >> 20));
                }
                None => bar.finish_with_message("done"),
            }
        }
        if report.merging().next().is_none() {
            return;
        }
        let t = Instant::now();
        std::thread::sleep(Duration::from_secs(1));
        match take(dm) {
            Ok(mut r) => {
                status::add_rates(&mut r, report, t.elapsed());
                *report = r;
            }
            Err(e) => {
                eprintln!("rewind: {e}");
                return;
            }
        }
    }
}

/// Runs `f` on the parsed `VG/LV` with the system's environment and device-mapper (when
/// there is one); a bad name is a usage error. `f`'s error is printed and exits 1.
fn on_target(
    args: &SystemArgs,
    target: &str,
    f: impl FnOnce(&Env, Option<&mut dyn DeviceMapper>, &LvRef) -> Result<String, String>,
) -> u8 {
    let r = match LvRef::parse(target) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rewind: {e}");
            return super::EXIT_USAGE;
        }
    };
    let mut dm = real_dm();
    let dm_ref = dm.as_mut().map(|d| d as &mut dyn DeviceMapper);
    match f(&env(args), dm_ref, &r) {
        Ok(said) => {
            println!("{said}");
            0
        }
        Err(e) => {
            eprintln!("rewind: {e}");
            1
        }
    }
}

/// Which name the merged volume takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// The result keeps the origin's name and uuid.
    Origin,
    /// The result takes the snapshot's name and uuid; the origin must be unused, the
    /// snapshot may stay mounted; starts at once.
    Snapshot,
}

/// `rewind rollback`.
pub fn run_rollback(args: &SystemArgs, target: &str, mode: Mode) -> u8 {
    on_target(args, target, |env, dm, r| {
        let vg = &r.vg;
        let result = match mode {
            Mode::Origin => rollback::rollback(env, dm, vg, &r.lv),
            Mode::Snapshot => rollback::rollback_snapshot(env, dm, vg, &r.lv),
        };
        Ok(match (result.map_err(|e| e.to_string())?, mode) {
            (Rollback::Started { origin }, Mode::Snapshot) => format!(
                "{r}: merging into {vg}/{origin}'s blocks now, on {r}'s own device (it may stay mounted; {vg}/{origin} is unavailable until the end); when done the volume is called {r}; rewind poll finishes it"
            ),
            (Rollback::Started { origin }, Mode::Origin) => format!(
                "{vg}/{origin}: merging {r} back now; rewind poll finishes it (systemctl start rewind-poll.service)"
            ),
            (Rollback::AtNextBoot { origin, why }, Mode::Origin) => format!(
                "{vg}/{origin} is in use ({why}): {r} is flagged and merges back at the next boot; reboot to roll back, or rewind cancel {r} to withdraw it"
            ),
            (Rollback::AtActivation { origin }, Mode::Origin) => format!(
                "{r} is flagged: the merge starts when {vg}/{origin} is next activated (lvchange -ay {vg}/{origin}, or the next boot)"
            ),
            (other, Mode::Snapshot) => return Err(format!("{r}: unexpected outcome {other:?}")),
        })
    })
}

/// `rewind cancel`.
pub fn run_cancel(args: &SystemArgs, target: &str) -> u8 {
    on_target(args, target, |env, dm, r| {
        rollback::cancel(env, dm, &r.vg, &r.lv).map_err(|e| e.to_string())?;
        Ok(format!(
            "{r}: merge withdrawn; it is a plain snapshot again"
        ))
    })
}
