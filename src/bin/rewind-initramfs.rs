//! `rewind-initramfs`: the build of rewind that goes into the initramfs.
//!
//! The initramfs runs two commands only, `rewind early` and `rewind handoff` (from
//! `initramfs/rewind-early`); this binary has those two and nothing else, with the same options
//! and the same code behind them (`rewind::cli::early::boot_early`, `boot_handoff`): what the
//! full `rewind` adds (the other commands, clap's parser and help, JSON, the progress display)
//! stays out of the image, and so does the TOML parser: the configuration comes as JSON
//! (`rewind::config::BOOT_PATH`). The initramfs hooks install this binary as `/usr/sbin/rewind`
//! in the image when the system has it (`/usr/lib/rewind/rewind-initramfs`), the full binary
//! otherwise.
//! Issue 17 (BENCHMARKS.md): the binary in the initramfs at most 2 MiB.

use rewind::cli::early::{boot_early, boot_handoff};
use rewind::flow::env::DEFAULT_LOCK_DIR;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
Usage: rewind early [--root DIR] [--cmdline TEXT] [--config FILE]
       rewind handoff [--root DIR] [--cmdline TEXT] [--config FILE] [--lock-dir DIR]

The initramfs build of rewind: only the two commands the initramfs runs. Their configuration
is JSON, ROOT/etc/rewind/initramfs.json unless --config names another file (the initramfs
hooks write it with `rewind check-config --boot-json`). `rewind --help` in the booted system
describes them and every other command.
";

/// Exit status for a usage error, as the full binary's.
const USAGE_ERROR: u8 = 2;

enum Command {
    Early,
    Handoff,
}

struct Args {
    command: Command,
    root: PathBuf,
    cmdline: Option<String>,
    config: Option<PathBuf>,
    lock_dir: PathBuf,
}

fn parse() -> Result<Option<Args>, lexopt::Error> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_env();
    let command = match parser.next()? {
        Some(Value(v)) if v == "early" => Command::Early,
        Some(Value(v)) if v == "handoff" => Command::Handoff,
        Some(Long("help") | Short('h')) => return Ok(None),
        Some(Long("version") | Short('V')) => {
            println!("rewind {} (initramfs build)", env!("CARGO_PKG_VERSION"));
            std::process::exit(0);
        }
        Some(other) => return Err(other.unexpected()),
        None => return Err("a command is needed: early or handoff".into()),
    };
    let mut args = Args {
        command,
        root: PathBuf::from("/"),
        cmdline: None,
        config: None,
        lock_dir: PathBuf::from(DEFAULT_LOCK_DIR),
    };
    while let Some(arg) = parser.next()? {
        match arg {
            Long("root") => args.root = parser.value()?.into(),
            Long("cmdline") => args.cmdline = Some(parser.value()?.string()?),
            Long("config") => args.config = Some(parser.value()?.into()),
            Long("lock-dir") if matches!(args.command, Command::Handoff) => {
                args.lock_dir = parser.value()?.into();
            }
            // `-v` is accepted as the full binary accepts it; the boot commands' log level
            // comes from the configuration and `rd.rewind.debug`.
            Short('v') | Long("verbose") => {}
            Long("help") | Short('h') => return Ok(None),
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(Some(args))
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("rewind: {e}\n{USAGE}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    let verdict = match args.command {
        Command::Early => boot_early(&args.root, args.cmdline.as_deref(), args.config.as_deref()),
        Command::Handoff => boot_handoff(
            &args.root,
            args.cmdline.as_deref(),
            args.config.as_deref(),
            &args.lock_dir,
        ),
    };
    ExitCode::from(verdict.code())
}
