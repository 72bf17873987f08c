//! `rewind early` (the initramfs entry point) and `rewind plan` (the same decisions, printed,
//! with nothing changed).

use crate::config::{self, Config};
use crate::early::{self, Inputs, Outcome};
use crate::plan::cmdline::Cmdline;
use crate::plan::decide::Level;
use crate::system::blockdev::BlockDevice;
use crate::system::dm::RealDm;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long one wait for udev may take before rewind gives up on it (never unbounded).
const UDEV_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, clap::Args)]
pub struct CommonArgs {
    /// The root that holds /proc, /sys, /dev, /etc and /run.
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
    /// The kernel command line (default: ROOT/proc/cmdline).
    #[arg(long)]
    pub cmdline: Option<String>,
    /// The configuration file (default: ROOT/etc/rewind/rewind.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

impl CommonArgs {
    fn cmdline(&self) -> Cmdline {
        let text = match &self.cmdline {
            Some(c) => c.clone(),
            None => std::fs::read_to_string(self.root.join("proc/cmdline")).unwrap_or_default(),
        };
        Cmdline::parse(&text)
    }

    fn config_path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| self.root.join(config::DEFAULT_PATH.trim_start_matches('/')))
    }

    fn inputs(&self) -> Inputs {
        Inputs {
            root: self.root.clone(),
            cmdline: self.cmdline(),
            config: Config::load_or_default(&self.config_path()),
        }
    }
}

/// Which block devices a run reads: `paths` when given, else all (LVs never: `system::scan`).
fn selector(paths: &[PathBuf]) -> impl Fn(&BlockDevice) -> Result<(), String> + '_ {
    move |dev: &BlockDevice| {
        if paths.is_empty() || paths.iter().any(|p| p == &dev.node) {
            Ok(())
        } else {
            Err("not named on the command line".into())
        }
    }
}

/// Loads the device-mapper modules if the control node is not there yet (modprobe from the
/// initramfs; a failure shows up when the control node cannot be opened).
fn load_modules(root: &Path) {
    if root.join("dev/mapper/control").exists() {
        return;
    }
    for module in ["dm-mod", "dm-snapshot"] {
        match std::process::Command::new("modprobe").arg(module).status() {
            Ok(s) if s.success() => {}
            Ok(s) => log::warn!("modprobe {module} exited with {s}"),
            Err(e) => log::warn!("cannot run modprobe {module}: {e}"),
        }
    }
}

/// The initramfs's log level: debug with `rd.rewind.debug`, else the configuration's.
fn boot_log_level(inputs: &Inputs) -> log::LevelFilter {
    if inputs.cmdline.debug {
        log::LevelFilter::Debug
    } else {
        match inputs.config.log.level {
            config::Level::Error => log::LevelFilter::Error,
            config::Level::Warn => log::LevelFilter::Warn,
            config::Level::Info => log::LevelFilter::Info,
            config::Level::Debug => log::LevelFilter::Debug,
            config::Level::Trace => log::LevelFilter::Trace,
        }
    }
}

/// `rewind early`. Returns the exit code.
pub fn run_early(args: &CommonArgs) -> u8 {
    let inputs = args.inputs();
    let level = boot_log_level(&inputs);
    // A second logger (already installed) is harmless: records still go somewhere.
    let _ = crate::system::kmsg::KmsgLogger::install(&args.root.join("dev/kmsg"), level);
    log::debug!("rewind early {}: started", env!("CARGO_PKG_VERSION"));
    if inputs.cmdline.disabled {
        log::info!("rd.rewind=0: doing nothing");
        return 0;
    }
    load_modules(&args.root);
    let mut dm = match RealDm::new(UDEV_TIMEOUT) {
        Ok(dm) => dm,
        Err(e) => {
            log::error!("device-mapper is not available ({e}); nothing done");
            return 1;
        }
    };
    log::debug!("device-mapper opened");
    let select = selector(&[]);
    let out = early::run(&inputs, &select, &mut dm);
    let code = out.exit_code();
    log::info!(
        "done: {} flag(s) committed, {} volume(s) set up{}",
        out.flags_committed.len(),
        out.volumes.len(),
        if code == 0 {
            ""
        } else {
            "; see the errors above"
        }
    );
    code
}

/// How long the hand-off waits for one VG's lock (an LVM write takes about a second).
const HANDOFF_LOCK_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the hand-off waits for LVM commands (activations) to end.
const HANDOFF_SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// `rewind handoff`. Returns the exit code.
pub fn run_handoff(args: &CommonArgs, lock_dir: &Path) -> u8 {
    let inputs = args.inputs();
    let level = boot_log_level(&inputs);
    let _ = crate::system::kmsg::KmsgLogger::install(&args.root.join("dev/kmsg"), level);
    if inputs.cmdline.disabled {
        return 0;
    }
    let mut dm = match RealDm::new(UDEV_TIMEOUT) {
        Ok(dm) => dm,
        Err(e) => {
            log::debug!("handoff: no device-mapper ({e}): nothing to hand over");
            return 0;
        }
    };
    let env = crate::handoff::Env {
        lock_dir: lock_dir.to_path_buf(),
        lock_timeout: HANDOFF_LOCK_TIMEOUT,
        settle_timeout: HANDOFF_SETTLE_TIMEOUT,
        kill_timeout: Duration::from_secs(5),
    };
    let select = selector(&[]);
    let report = crate::handoff::run(&inputs, &env, &select, &mut dm);
    if !report.stopped.is_empty() || !report.resumed.is_empty() {
        log::info!(
            "handoff: stopped {} lvm poller(s), resumed {} device(s); merges are finished after switch_root",
            report.stopped.len(),
            report.resumed.len()
        );
    } else {
        log::debug!("handoff: nothing to do");
    }
    report.exit_code()
}

/// `rewind plan`. Returns the exit code.
pub fn run_plan(args: &CommonArgs, devices: &[PathBuf], json: bool) -> u8 {
    let inputs = args.inputs();
    let mut out = Outcome::default();
    let select = selector(devices);
    let mut prep = match early::scan_devices(&inputs, &select) {
        Ok(scan) => early::prepare(&inputs, scan),
        Err(e) => {
            eprintln!("rewind: {e}");
            return 1;
        }
    };
    out.notes.append(&mut prep.decision.notes);
    early::commit_flags(&mut prep, &mut out, false);
    let live = match RealDm::new(UDEV_TIMEOUT).and_then(|mut dm| crate::system::exec::live(&mut dm))
    {
        Ok(live) => live,
        Err(e) => {
            out.notes.push(crate::plan::decide::Note {
                level: Level::Info,
                message: format!(
                    "no device-mapper here ({e}): planned as if no device were active"
                ),
            });
            Vec::new()
        }
    };
    early::plan_devices(&prep, &live, &mut out);
    if json {
        match serde_json::to_string_pretty(&out) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("rewind: {e}");
                return 1;
            }
        }
    } else {
        print_plan(&out);
    }
    out.exit_code()
}

fn print_plan(out: &Outcome) {
    for n in &out.notes {
        let tag = match n.level {
            Level::Info => "note",
            Level::Warn => "warning",
            Level::Error => "error",
        };
        println!("{tag}: {}", n.message);
    }
    if out.flags_committed.is_empty() {
        println!("metadata: no change");
    }
    for f in &out.flags_committed {
        println!("metadata: flag {f} to merge (committed to every metadata area, seqno + 1)");
    }
    if out.volumes.is_empty() {
        println!("devices: nothing to activate");
    }
    for v in &out.volumes {
        println!("volume {}/{} ({:?}):", v.vg, v.lv, v.reason);
        if v.steps.is_empty() {
            println!("  already as wanted");
        }
        for s in &v.steps {
            println!("  {s}");
        }
    }
}
