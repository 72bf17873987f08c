//! The command-line front end: thin wrappers over the library, with pinned exit codes.

use clap::Parser;
use std::process::ExitCode;

/// Exit code for a usage error (clap's own).
pub const EXIT_USAGE: u8 = 2;
/// Exit code for a failure.
pub const EXIT_FAILURE: u8 = 1;

/// Reboot-to-rollback for Linux systems on LVM2.
#[derive(Debug, Parser)]
#[command(name = "rewind", version, about, long_about = None)]
pub struct Cli {
    /// More log output (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

/// Entry point used by `src/main.rs`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    ExitCode::SUCCESS
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
        .parse_default_env()
        .init();
}
