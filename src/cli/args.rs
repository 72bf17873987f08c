//! Arguments several commands share, and how they become a flow's inputs.

use crate::flow;
use crate::flow::env::DEFAULT_LOCK_DIR;
use std::path::PathBuf;

/// `rewind plan`: the initramfs' view of the machine, from the booted system (its
/// configuration is `rewind.toml`).
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
    /// The flow's inputs: the command line and `rewind.toml`, read (a bad file is logged and
    /// the defaults are used).
    pub fn inputs(&self) -> flow::early::Inputs {
        let path = self.config.clone().unwrap_or_else(|| {
            self.root
                .join(crate::config::DEFAULT_PATH.trim_start_matches('/'))
        });
        flow::early::Inputs::read(
            &self.root,
            self.cmdline.as_deref(),
            crate::config::Config::load_or_default(&path),
        )
    }
}

/// `rewind early` and `rewind handoff`: the initramfs commands (their configuration is the
/// image's JSON, written by `rewind check-config --boot-json` when the image was built).
#[derive(Debug, clap::Args)]
pub struct BootArgs {
    /// The root that holds /proc, /sys, /dev, /etc and /run.
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
    /// The kernel command line (default: ROOT/proc/cmdline).
    #[arg(long)]
    pub cmdline: Option<String>,
    /// The configuration as JSON, as `rewind check-config --boot-json` writes it (default:
    /// ROOT/etc/rewind/initramfs.json; missing: the defaults).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// `rewind poll`, `status`, `rollback` and `cancel`: the booted system.
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
    /// The flows' view of the booted system.
    pub fn system(&self) -> flow::env::System {
        flow::env::System {
            root: self.root.clone(),
            config: self.config.clone(),
            lock_dir: self.lock_dir.clone(),
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

impl From<Mode> for flow::rollback::Mode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Origin => flow::rollback::Mode::Origin,
            Mode::Snapshot => flow::rollback::Mode::Snapshot,
        }
    }
}

/// The package manager a hook runs for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Manager {
    /// apt (`DPkg::Pre-Install-Pkgs` with protocol 3, `DPkg::Post-Invoke`).
    Apt,
    /// pacman (alpm hooks, `NeedsTargets`: the target names on standard input).
    Pacman,
    /// dnf 4 (the rewind plugin: the resolved transaction on standard input).
    Dnf,
}

impl Manager {
    /// Its name in messages and set names.
    pub fn name(self) -> &'static str {
        match self {
            Manager::Apt => "apt",
            Manager::Pacman => "pacman",
            Manager::Dnf => "dnf",
        }
    }

    /// What stopping it before the transaction means, for the message.
    pub fn stop_point(self) -> &'static str {
        match self {
            Manager::Apt => "stopping apt before dpkg runs",
            Manager::Pacman => "stopping pacman before the transaction",
            Manager::Dnf => "stopping dnf before the transaction",
        }
    }
}

/// Which side of the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Phase {
    /// Before: take the set.
    Pre,
    /// After: record how the transaction ended.
    Post,
}
