//! The command-line front end: parses the arguments (clap), calls one flow, prints its outcome
//! (text or `--json`) and maps it to an exit code in one place ([`exit_code`], with the codes
//! of `crate::exit`: 0 success, 1 failure, 2 usage, 3 unhealthy). Nothing else.

mod args;
pub mod early;
mod hook;
pub mod inspect;
mod rollback;
mod sets;
pub mod status;

use crate::exit::{self, Verdict};
use crate::flow;
use crate::lvm::layout::LvRef;
use args::{BootArgs, CommonArgs, Manager, Mode, Phase, SystemArgs};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Why a command ended without its flow's verdict; printed after `rewind: `.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line names something that cannot be (exit 2).
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Flow(#[from] flow::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// Printing (a `--watch` sample that could not be taken, an unexpected outcome).
    #[error("{0}")]
    Message(String),
}

/// The exit code of a command: its flow's verdict, or 2 for a usage error, 1 for any other.
pub fn exit_code(result: &Result<Verdict, Error>) -> u8 {
    match result {
        Ok(v) => v.code(),
        Err(Error::Usage(_)) => exit::USAGE,
        Err(_) => exit::FAILURE,
    }
}

/// The value name of an argument that names a snapshot: the shell completions
/// (`rewind-gen-docs`) complete such an argument with the names of the snapshots LVM knows.
pub const SNAPSHOT_VALUE: &str = "VG/SNAPSHOT";

/// Reboot-to-rollback for Linux systems on LVM2.
///
/// Before a risky change, take LVM snapshots of the system's volumes (`lvcreate -s`). To roll
/// back, flag a snapshot's merge (`rewind rollback VG/SNAPSHOT`, or stock `lvconvert --merge`)
/// and reboot; if the system no longer boots, type `rd.rewind=VG/SNAPSHOT` on the kernel command
/// line. In the initramfs, before root is mounted, `rewind early` sets up the merge, so the
/// system comes up in its old state at once while the kernel copies the old data back; after
/// switch_root, `rewind poll` (rewind-poll.service) finishes it. rewind works with LVM's own
/// metadata and merge flag: stock LVM2 and rewind can each finish what the other started.
/// The boot flow and the kernel command line are in rewind-boot(7), the configuration in
/// rewind.toml(5).
#[derive(Debug, Parser)]
#[command(name = "rewind", version, about)]
pub struct Cli {
    /// More log output (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Initramfs entry point: flag requested rollbacks, set up merges and volumes.
    ///
    /// Run by the initramfs hooks (rewind-early) when the PVs appear, before LVM2 activates
    /// anything: flags the rollbacks `rd.rewind=` asks for, sets up the merges flagged, and
    /// activates the volumes `rd.lvm.lv=` names. Exit 0 when the boot should go on, 1 when a
    /// flagged volume could not be set up.
    Early {
        #[command(flatten)]
        common: BootArgs,
    },
    /// Initramfs entry point, run just before switch_root: make the hand-off safe.
    ///
    /// Under LVM's VG locks, stop the initramfs's LVM background pollers (none may be cut off
    /// while finishing a merge; the booted system finishes it) and resume LVM devices left
    /// suspended. Exit 0, or 1 when something could not be made safe.
    Handoff {
        #[command(flatten)]
        common: BootArgs,
        /// LVM's locking directory (lvm.conf global/locking_dir).
        #[arg(long, default_value = flow::env::DEFAULT_LOCK_DIR)]
        lock_dir: PathBuf,
    },
    /// Print what `rewind early` would do at a boot with this command line; change nothing.
    Plan {
        #[command(flatten)]
        common: CommonArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Only read these block devices.
        devices: Vec<PathBuf>,
    },
    /// Finish active merges (run by rewind-poll.service after switch_root).
    ///
    /// Wait until the kernel has copied everything back, drop the snapshot from the metadata
    /// under LVM's VG lock, load the plain tables, remove the leftover devices. Exit 0 when
    /// every merge finished or none is active, 1 when a merge failed or is invalid (left
    /// untouched) or finishing failed.
    Poll {
        #[command(flatten)]
        system: SystemArgs,
    },
    /// Show every origin and its snapshots, merges and their progress.
    ///
    /// For each origin its snapshots: flagged, merging (progress, rate, time left), merged,
    /// invalid; each snapshot's fill. Each thin pool's data and metadata fill when active.
    #[command(
        after_help = "Exit status: 0 all well, 1 the state could not be read, 2 usage error, 3 a snapshot is invalid, a merge failed, or a thin pool is full, failed, read-only or needs checking."
    )]
    Status {
        #[command(flatten)]
        system: SystemArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Show progress bars until the running merges end.
        #[arg(long)]
        watch: bool,
        /// Print nothing until every running merge has finished and `rewind poll` (or LVM)
        /// has dropped it from the metadata, then the report (for scripts and fleet tools).
        #[arg(long)]
        wait: bool,
    },
    /// Roll a volume back to one of its snapshots (VG/SNAPSHOT).
    ///
    /// Flags the merge (checked as at boot, committed under LVM's VG lock); starts it now if the
    /// origin is not in use, else at the next boot. With `--mode snapshot` the result takes the
    /// snapshot's name and UUID: the origin must be unused (the snapshot may stay mounted) and
    /// the merge starts at once.
    #[command(
        after_help = "Exit status: 0 flagged (and started when possible), 1 refused or failed (nothing changed before the commit), 2 usage error."
    )]
    Rollback {
        #[command(flatten)]
        system: SystemArgs,
        /// The snapshot, as VG/SNAPSHOT, or a snapshot set's name (every member, at the next
        /// boot).
        #[arg(value_name = SNAPSHOT_VALUE)]
        target: String,
        /// Which name the result carries.
        #[arg(long, value_enum, default_value = "origin")]
        mode: Mode,
        /// With a set: first take a set of the current state of the same volumes (named NAME,
        /// default the UTC time), so a later `rewind rollback NAME` rolls forward.
        #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "")]
        keep_current: Option<String>,
        /// With a set: flag nothing on disk; make the next boot only start the set's entry,
        /// which boots with rd.rewind=SET: systemd-boot's one-shot entry rewind-SET.conf
        /// (bootctl set-oneshot) where systemd-boot started this boot, else GRUB's next_entry
        /// (as grub-reboot sets it) naming the entry in the "Roll back with rewind" menu. For a
        /// rollback that must go through the boot loader (docs/BOOTMENU.md); if that boot
        /// fails, the one after is the usual default.
        #[arg(long, conflicts_with = "keep_current")]
        next_boot: bool,
    },
    /// List the snapshot sets: time, kind, state (ok, lost, incomplete, merging, pending),
    /// members and how full each store is. Half-made sets are tidied first.
    List {
        #[command(flatten)]
        system: SystemArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one snapshot set.
    Show {
        #[command(flatten)]
        system: SystemArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        set: String,
    },
    /// Delete the snapshot sets the retention policy does not keep (`[prune]`: the newest
    /// keep_last, those younger than keep_days; never a pinned one or one being rolled back
    /// to; a lost or incomplete set always goes).
    Prune {
        #[command(flatten)]
        system: SystemArgs,
        /// Only say which sets would go.
        #[arg(long)]
        dry_run: bool,
    },
    /// Check every active snapshot-set member's store (run by rewind-watch.timer): warn when
    /// one is `[watch] warn_percent` full, extend it with stock lvextend when `[watch] extend`
    /// is on and its VG has room; say which sets are lost.
    Watch {
        #[command(flatten)]
        system: SystemArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Mount every member of a snapshot set read-only under /run/rewind/SET/VG/ORIGIN (each
    /// snapshot's device set read-only first), to look at it before a rollback.
    Mount {
        #[command(flatten)]
        system: SystemArgs,
        set: String,
    },
    /// Which packages differ between a snapshot set and now: the package databases (dpkg's
    /// status, pacman's local database, rpm's) inside the set's snapshots, mounted read-only for the
    /// look, against the running system's. Installed, removed, upgraded, downgraded.
    Diff {
        #[command(flatten)]
        system: SystemArgs,
        set: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Unmount what `rewind mount SET` mounted and make the devices writable again.
    Umount {
        #[command(flatten)]
        system: SystemArgs,
        set: String,
    },
    /// Write GRUB's rollback menu, /boot/grub/rewind.cfg (or /boot/grub2): one entry per
    /// snapshot set, newest first, each booting the newest kernel with rd.rewind=SET added; a set
    /// that cannot be rolled back to is listed but does not boot. The "Roll back with rewind"
    /// submenu that /etc/grub.d/42_rewind puts in grub.cfg sources it; snapshot, delete, prune,
    /// rollback and the poller rewrite it by themselves.
    BootMenu {
        #[command(flatten)]
        system: SystemArgs,
    },
    /// Delete a snapshot set (every member, with stock lvremove).
    Delete {
        #[command(flatten)]
        system: SystemArgs,
        set: String,
    },
    /// Take a snapshot set: one classic snapshot of each member, all at one instant (the
    /// members' filesystems frozen and their devices suspended together for a few
    /// milliseconds). Members: `VG/LV` or mount points; default: the configuration's
    /// (`[snapshot] members`, by default the LVs mounted at /, /usr, /var, /opt).
    #[command(
        after_help = "Sizes: 2G, 512M (each member), N%SIZE of the origin, N%FREE of the VG, N%USED of the filesystem.\nExit status: 0 taken, 1 refused or failed (nothing kept), 2 usage error."
    )]
    Snapshot {
        #[command(flatten)]
        system: SystemArgs,
        /// The set's name (default: the UTC time, YYYYMMDD-HHMMSS).
        #[arg(long)]
        name: Option<String>,
        /// What the set is for (kept in LVM's metadata, shown by rewind list).
        #[arg(long, default_value = "")]
        description: String,
        /// Each member's snapshot size (default: the configuration's, 20%SIZE).
        #[arg(long)]
        size: Option<String>,
        /// Taken by a hook or a timer rather than by hand.
        #[arg(long)]
        auto: bool,
        /// Never pruned.
        #[arg(long)]
        pin: bool,
        /// VG/LV or mount points.
        members: Vec<String>,
    },
    /// Withdraw a flagged merge that has not started.
    #[command(
        after_help = "Exit status: 0 withdrawn, 1 refused (not flagged, already merging, origin inactive) or failed, 2 usage error."
    )]
    Cancel {
        #[command(flatten)]
        system: SystemArgs,
        /// The snapshot, as VG/SNAPSHOT.
        #[arg(value_name = SNAPSHOT_VALUE)]
        target: String,
    },
    /// Package-manager hook (docs/HOOKS.md): `pre` takes one automatic snapshot set before
    /// the transaction (the package list on standard input: apt's protocol 3, pacman's
    /// targets, the dnf plugin's lines), `post` records how it ended. Run by
    /// /etc/apt/apt.conf.d/80rewind, rewind's alpm hooks and its dnf plugin.
    #[command(
        after_help = "Exit status: 0 the set taken, or skipped, or not taken with [hooks] on_failure = \"warn\"; 1 not taken with on_failure = \"stop\" (the package manager stops before it changes anything); 2 usage error."
    )]
    Hook {
        #[command(flatten)]
        system: SystemArgs,
        /// The package manager.
        #[arg(value_enum)]
        manager: Manager,
        /// Before or after the transaction.
        #[arg(value_enum)]
        phase: Phase,
    },
    /// Validate the configuration file (run by the initramfs hooks at install time).
    ///
    /// With --boot-json, also write the configuration in force as JSON: the initramfs hooks
    /// put that file into the image as /etc/rewind/initramfs.json, which `rewind early` and
    /// `rewind handoff` read. Nothing is written when the file is invalid.
    CheckConfig {
        /// The file to check.
        #[arg(long, default_value = crate::config::DEFAULT_PATH)]
        config: PathBuf,
        /// Write the validated configuration (every key, the defaults filled in) as JSON to
        /// this file.
        #[arg(long, value_name = "FILE")]
        boot_json: Option<PathBuf>,
    },
    /// Show the volume groups, snapshots and problems rewind finds (read-only).
    ///
    /// Exit status 0 when every volume group is usable, 1 when a problem blocks one or a
    /// device cannot be read.
    Inspect {
        /// Read only these devices or image files (default: every block device).
        devices: Vec<PathBuf>,
        /// Print a JSON document (schema in `rewind::cli::inspect`) instead of tables.
        #[arg(long)]
        json: bool,
        /// Root for /sys and /dev (for tests and chroots).
        #[arg(long, default_value = "/")]
        root: PathBuf,
    },
}

/// Entry point used by `src/main.rs`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = run(cli.command, cli.verbose);
    if let Err(e) = &result {
        eprintln!("rewind: {e}");
    }
    ExitCode::from(exit_code(&result))
}

/// A `VG/SNAPSHOT` argument; a bad one is a usage error.
fn target(text: &str) -> Result<LvRef, Error> {
    LvRef::parse(text).map_err(Error::Usage)
}

/// Runs one command: its flow, then its printing.
fn run(command: Command, verbose: u8) -> Result<Verdict, Error> {
    match command {
        Command::Early { common } => Ok(early::early(&common)),
        Command::Handoff { common, lock_dir } => Ok(early::handoff(&common, &lock_dir)),
        Command::Plan {
            common,
            json,
            devices,
        } => {
            init_logging(verbose);
            early::plan(&common, &devices, json)
        }
        Command::Poll { system } => {
            init_logging(verbose.max(1));
            Ok(flow::poll::run(&system.system()).verdict())
        }
        Command::Status {
            system,
            json,
            watch,
            wait,
        } => {
            init_logging(verbose);
            let (mut report, mut sampler) = flow::status::run(&system.system())?;
            if wait {
                report = flow::status::wait_until_merged(&mut sampler, report)?;
            }
            status::show(&mut report, &mut sampler, json, watch)?;
            Ok(report.verdict())
        }
        Command::Rollback {
            system,
            target: t,
            next_boot: true,
            ..
        } => {
            init_logging(verbose);
            crate::lvm::sets::check_set_name(&t).map_err(|e| {
                Error::Usage(format!("--next-boot takes a snapshot set's name: {e}"))
            })?;
            let entry = flow::bootmenu::next_boot(&system.system(), &t)?;
            println!(
                "snapshot set {t}: the next boot (only that one) starts {entry} (rd.rewind={t}); nothing flagged"
            );
            Ok(Verdict::Ok)
        }
        Command::Rollback {
            system,
            target: t,
            mode,
            keep_current,
            ..
        } if !t.contains('/') => {
            init_logging(verbose);
            if mode != Mode::Origin {
                return Err(Error::Usage(
                    "--mode snapshot takes one VG/SNAPSHOT, not a set".into(),
                ));
            }
            crate::lvm::sets::check_set_name(&t).map_err(Error::Usage)?;
            let keep = keep_current.map(|n| Some(n).filter(|n| !n.is_empty()));
            if let Some(Some(k)) = &keep {
                crate::lvm::sets::check_set_name(k).map_err(Error::Usage)?;
            }
            let r = flow::set_rollback::run(&system.system(), &t, keep)?;
            println!("{}", sets::rolled_back(&r));
            Ok(Verdict::Ok)
        }
        Command::Rollback {
            system,
            target: t,
            mode,
            keep_current,
            ..
        } => {
            init_logging(verbose);
            if keep_current.is_some() {
                return Err(Error::Usage(
                    "--keep-current is for a snapshot set (rewind rollback SET)".into(),
                ));
            }
            let r = target(&t)?;
            let outcome = flow::rollback::run(&system.system(), &r, mode.into())?;
            println!("{}", rollback::said(&r, mode.into(), outcome)?);
            Ok(Verdict::Ok)
        }
        Command::Snapshot {
            system,
            name,
            description,
            size,
            auto,
            pin,
            members,
        } => {
            init_logging(verbose);
            let size = size.map(|s| s.parse().map_err(Error::Usage)).transpose()?;
            let req = flow::snapshot::Request {
                name,
                description,
                size,
                members,
                auto,
                pin,
                min_extents: Default::default(),
            };
            let taken = flow::snapshot::run(&system.system(), &req)?;
            println!("{}", sets::taken(&taken));
            Ok(Verdict::Ok)
        }
        Command::List { system, json } => {
            init_logging(verbose);
            let v = flow::sets::list(&system.system())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", sets::table(&v));
            }
            Ok(Verdict::Ok)
        }
        Command::Show { system, json, set } => {
            init_logging(verbose);
            let v = flow::sets::show(&system.system(), &set)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", sets::details(&v));
            }
            Ok(Verdict::Ok)
        }
        Command::Prune { system, dry_run } => {
            init_logging(verbose);
            let gone = flow::sets::prune(&system.system(), dry_run)?;
            let verb = if dry_run { "would delete" } else { "deleted" };
            if gone.is_empty() {
                println!("prune: nothing to delete");
            } else {
                println!("prune: {verb} {}", gone.join(", "));
            }
            Ok(Verdict::Ok)
        }
        Command::Watch { system, json } => {
            init_logging(verbose.max(1));
            let actions = flow::watch::run(&system.system())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&actions)?);
            }
            Ok(Verdict::Ok)
        }
        Command::Mount { system, set } => {
            init_logging(verbose);
            for m in flow::setmount::mount(&system.system(), &set)? {
                println!(
                    "{} ({}) read-only on {}",
                    m.member,
                    m.fstype,
                    m.dir.display()
                );
            }
            Ok(Verdict::Ok)
        }
        Command::Diff { system, set, json } => {
            init_logging(verbose);
            let d = flow::diff::run(&system.system(), &set)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&d)?);
            } else {
                print!("{}", sets::diff_text(&d));
            }
            Ok(Verdict::Ok)
        }
        Command::Umount { system, set } => {
            init_logging(verbose);
            let dirs = flow::setmount::umount(&system.system(), &set)?;
            println!("snapshot set {set}: {} member(s) unmounted", dirs.len());
            Ok(Verdict::Ok)
        }
        Command::BootMenu { system } => {
            init_logging(verbose);
            let path = flow::bootmenu::write(&system.system())?;
            println!("boot menu written: {}", path.display());
            Ok(Verdict::Ok)
        }
        Command::Delete { system, set } => {
            init_logging(verbose);
            let n = flow::sets::delete(&system.system(), &set)?;
            println!("snapshot set {set}: {n} member(s) removed");
            Ok(Verdict::Ok)
        }
        Command::Cancel { system, target: t } => {
            init_logging(verbose);
            let r = target(&t)?;
            flow::cancel::run(&system.system(), &r)?;
            println!("{}", rollback::cancelled(&r));
            Ok(Verdict::Ok)
        }
        Command::Hook {
            system,
            manager,
            phase,
        } => {
            init_logging(verbose);
            Ok(hook::run(&system.system(), manager, phase))
        }
        Command::CheckConfig { config, boot_json } => {
            init_logging(verbose);
            let checked = flow::check_config::run(&config, boot_json.as_deref())?;
            if checked.present {
                println!("{}: ok", config.display());
            } else {
                println!("{}: not present, the defaults apply", config.display());
            }
            if let Some(out) = &boot_json {
                println!("{}: written (the boot configuration, JSON)", out.display());
            }
            log::info!("effective configuration: {:?}", checked.config);
            Ok(Verdict::Ok)
        }
        Command::Inspect {
            devices,
            json,
            root,
        } => {
            init_logging(verbose);
            let report = flow::inspect::run(&devices, &root)?;
            inspect::show(&report, json)?;
            Ok(report.verdict())
        }
    }
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => log::LevelFilter::Warn,
        1 => log::LevelFilter::Info,
        2 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    let mut builder = env_logger::Builder::new();
    builder.filter_level(level).format_timestamp_millis();
    if let Ok(spec) = std::env::var("RUST_LOG") {
        for (module, level) in log_directives(&spec) {
            builder.filter(module, level);
        }
    }
    builder.init();
}

/// `RUST_LOG`'s directives, as env_logger reads them: `LEVEL`, `MODULE` (all of its output)
/// or `MODULE=LEVEL`, separated by commas; later ones win. env_logger's own parser is not
/// used: with the `regex` feature a dependency turns on, it links a whole regex engine (about
/// half a megabyte) for the `/REGEX` message filter, which rewind does not offer; a `/...`
/// part and a directive that does not parse are reported on stderr and ignored.
fn log_directives(spec: &str) -> Vec<(Option<&str>, log::LevelFilter)> {
    let (spec, message_filter) = match spec.split_once('/') {
        Some((s, f)) => (s, Some(f)),
        None => (spec, None),
    };
    if let Some(f) = message_filter {
        eprintln!("rewind: RUST_LOG: message filter '/{f}' not supported, ignored");
    }
    let mut out = Vec::new();
    for d in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let parsed = match d.split_once('=') {
            Some((m, l)) => l
                .trim()
                .parse()
                .ok()
                .filter(|_| !m.trim().is_empty())
                .map(|l| (Some(m.trim()), l)),
            None => Some(match d.parse() {
                Ok(l) => (None, l),
                Err(_) => (Some(d), log::LevelFilter::Trace),
            }),
        };
        match parsed {
            Some(p) => out.push(p),
            None => eprintln!("rewind: RUST_LOG: '{d}' is not a logging directive, ignored"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::log_directives;
    use log::LevelFilter as L;

    #[test]
    fn rust_log_directives() {
        assert_eq!(log_directives("debug"), [(None, L::Debug)]);
        assert_eq!(log_directives("TRACE"), [(None, L::Trace)]);
        assert_eq!(
            log_directives("warn, rewind::lvm=trace ,rewind::system"),
            [
                (None, L::Warn),
                (Some("rewind::lvm"), L::Trace),
                (Some("rewind::system"), L::Trace)
            ]
        );
        assert_eq!(log_directives("off"), [(None, L::Off)]);
        // Bad ones are left out; the message filter is dropped.
        assert_eq!(
            log_directives("rewind=loud,=info,info/sda"),
            [(None, L::Info)]
        );
        assert_eq!(log_directives(""), []);
    }
}
