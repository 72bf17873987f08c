//! The command-line front end: thin wrappers over the library, with pinned exit codes
//! (0 success, 1 failure, 2 usage).

mod early;
pub mod inspect;
pub mod poll;
pub mod rollback;
pub mod status;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code for a failure.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for a usage error (clap's own).
pub const EXIT_USAGE: u8 = 2;

/// Reboot-to-rollback for Linux systems on LVM2.
#[derive(Debug, Parser)]
#[command(name = "rewind", version, about, long_about = None)]
pub struct Cli {
    /// More log output (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Initramfs entry point: flag requested rollbacks, then set up merges and volumes.
    /// Exit 0 when the boot should go on, 1 when a flagged volume could not be set up.
    Early {
        #[command(flatten)]
        common: early::CommonArgs,
    },
    /// Initramfs entry point, run just before switch_root: under LVM's VG locks, stop the
    /// initramfs's LVM background pollers (none may be cut off while finishing a merge; the
    /// booted system finishes it) and resume LVM devices left suspended.
    /// Exit 0, or 1 when something could not be made safe.
    Handoff {
        #[command(flatten)]
        common: early::CommonArgs,
        /// LVM's locking directory (lvm.conf global/locking_dir).
        #[arg(long, default_value = crate::system::lock::DEFAULT_LOCK_DIR)]
        lock_dir: PathBuf,
    },
    /// Print what `rewind early` would do at a boot with this command line; change nothing.
    Plan {
        #[command(flatten)]
        common: early::CommonArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Only read these block devices.
        devices: Vec<PathBuf>,
    },
    /// Finish active merges (run by rewind-poll.service after switch_root): wait until the
    /// kernel has copied everything back, drop the snapshot from the metadata under LVM's VG
    /// lock, load the plain tables, remove the leftover devices.
    /// Exit 0 when every merge finished or none is active, 1 when a merge failed or is
    /// invalid (left untouched) or finishing failed.
    Poll {
        #[command(flatten)]
        system: poll::SystemArgs,
    },
    /// Show every origin and its snapshots: flagged, merging (progress, rate, time left),
    /// merged, invalid; snapshot fill.
    #[command(
        after_help = "Exit status: 0 all well, 1 the state could not be read, 2 usage error, 3 a snapshot is invalid or a merge failed."
    )]
    Status {
        #[command(flatten)]
        system: poll::SystemArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Show progress bars until the running merges end.
        #[arg(long)]
        watch: bool,
    },
    /// Roll VG/LV back to snapshot VG/SNAPSHOT: flag the merge (checked as at boot, committed
    /// under LVM's VG lock); start it now if the origin is not in use, else at the next boot.
    /// With `--mode snapshot` the result takes the snapshot's name and UUID: the origin must be
    /// unused (the snapshot may stay mounted) and the merge starts at once.
    #[command(
        after_help = "Exit status: 0 flagged (and started when possible), 1 refused or failed (nothing changed before the commit), 2 usage error."
    )]
    Rollback {
        #[command(flatten)]
        system: poll::SystemArgs,
        /// The snapshot, as VG/SNAPSHOT.
        target: String,
        /// Which name the result carries.
        #[arg(long, value_enum, default_value = "origin")]
        mode: poll::Mode,
    },
    /// Withdraw a flagged merge that has not started.
    #[command(
        after_help = "Exit status: 0 withdrawn, 1 refused (not flagged, already merging, origin inactive) or failed, 2 usage error."
    )]
    Cancel {
        #[command(flatten)]
        system: poll::SystemArgs,
        /// The snapshot, as VG/SNAPSHOT.
        target: String,
    },
    /// Validate the configuration file (run by the initramfs hooks at install time).
    CheckConfig {
        /// The file to check.
        #[arg(long, default_value = crate::config::DEFAULT_PATH)]
        config: PathBuf,
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
    let result = match cli.command {
        Command::Early { common } => return ExitCode::from(early::run_early(&common)),
        Command::Handoff { common, lock_dir } => {
            return ExitCode::from(early::run_handoff(&common, &lock_dir));
        }
        Command::Plan {
            common,
            json,
            devices,
        } => {
            init_logging(cli.verbose);
            return ExitCode::from(early::run_plan(&common, &devices, json));
        }
        Command::Poll { system } => {
            init_logging(cli.verbose.max(1));
            return ExitCode::from(poll::run_poll(&system));
        }
        Command::Status {
            system,
            json,
            watch,
        } => {
            init_logging(cli.verbose);
            return ExitCode::from(poll::run_status(&system, json, watch));
        }
        Command::Rollback {
            system,
            target,
            mode,
        } => {
            init_logging(cli.verbose);
            return ExitCode::from(poll::run_rollback(&system, &target, mode));
        }
        Command::Cancel { system, target } => {
            init_logging(cli.verbose);
            return ExitCode::from(poll::run_cancel(&system, &target));
        }
        Command::CheckConfig { config } => {
            init_logging(cli.verbose);
            check_config(&config).map(|()| true)
        }
        Command::Inspect {
            devices,
            json,
            root,
        } => {
            init_logging(cli.verbose);
            inspect::run(&devices, json, &root)
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(EXIT_FAILURE),
        Err(message) => {
            eprintln!("rewind: {message}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn check_config(path: &std::path::Path) -> Result<(), String> {
    let config = crate::config::Config::load(path).map_err(|e| e.to_string())?;
    if path.exists() {
        println!("{}: ok", path.display());
    } else {
        println!("{}: not present, the defaults apply", path.display());
    }
    log::info!("effective configuration: {config:?}");
    Ok(())
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => log::LevelFilter::Warn,
        1 => log::LevelFilter::Info,
        2 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    env_logger::Builder::new()
        .filter_level(level)
        .format_timestamp_millis()
        .parse_default_env()
        .init();
}
