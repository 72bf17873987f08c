//! `rewind early` and `rewind handoff` (the initramfs entry points: they log to `/dev/kmsg`) and
//! `rewind plan` (early's decisions, printed, with nothing changed).

use super::Error;
use super::args::{BootArgs, CommonArgs};
use crate::config::{self, Config};
use crate::exit::Verdict;
use crate::flow::early::{Inputs, Outcome};
use crate::plan::decide::Level;
use std::path::{Path, PathBuf};

/// `rewind early`: everything it does is logged to the kernel log; its verdict is the exit
/// code (1 when a flagged volume could not be set up).
pub fn early(args: &BootArgs) -> Verdict {
    boot_early(&args.root, args.cmdline.as_deref(), args.config.as_deref())
}

/// `rewind early` with its arguments as values: what both binaries run (`rewind early`, and
/// `rewind-initramfs early`, the initramfs build in `src/bin/rewind-initramfs.rs`).
pub fn boot_early(root: &Path, cmdline: Option<&str>, config: Option<&Path>) -> Verdict {
    let inputs = boot_inputs(root, cmdline, config);
    crate::flow::early::run(&inputs).verdict()
}

/// `rewind handoff`: logged to the kernel log like `rewind early`; its verdict is the exit code
/// (1 when something could not be made safe).
pub fn handoff(args: &BootArgs, lock_dir: &Path) -> Verdict {
    boot_handoff(
        &args.root,
        args.cmdline.as_deref(),
        args.config.as_deref(),
        lock_dir,
    )
}

/// `rewind handoff` with its arguments as values (both binaries, as [`boot_early`]).
pub fn boot_handoff(
    root: &Path,
    cmdline: Option<&str>,
    config: Option<&Path>,
    lock_dir: &Path,
) -> Verdict {
    let inputs = boot_inputs(root, cmdline, config);
    crate::flow::handoff::run(&inputs, lock_dir).verdict()
}

/// The initramfs commands' inputs, their configuration read from the boot JSON
/// (`ROOT/etc/rewind/initramfs.json` unless given: no TOML parser in the initramfs build), and
/// their kernel-log logger installed at the level it sets. A bad file means the defaults; its
/// warning is logged once the logger is there to take it.
fn boot_inputs(root: &Path, cmdline: Option<&str>, config: Option<&Path>) -> Inputs {
    let path = config.map_or_else(
        || root.join(config::BOOT_PATH.trim_start_matches('/')),
        Path::to_path_buf,
    );
    let loaded = Config::load_boot(&path);
    let inputs = Inputs::read(root, cmdline, loaded.as_ref().cloned().unwrap_or_default());
    // A second logger (already installed) is harmless: records still go somewhere.
    let _ = crate::system::kmsg::KmsgLogger::install(&root.join("dev/kmsg"), inputs.log_level());
    if let Err(e) = &loaded {
        config::warn_using_defaults(e);
    }
    inputs
}

/// `rewind plan`: prints the plan (text, or JSON with `json`).
pub fn plan(args: &CommonArgs, devices: &[PathBuf], json: bool) -> Result<Verdict, Error> {
    let out = crate::flow::plan::run(&args.inputs(), devices)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_plan(&out);
    }
    Ok(out.verdict())
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
