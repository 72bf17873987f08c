//! Stock LVM2's own commands, where rewind leaves a job to LVM (docs/SETS.md section 2): its
//! allocator makes a set's COW LVs (`lvcreate -an -Zn -Wn`), and its removal takes snapshots
//! away (`lvremove`). Each is LVM's own command with its own VG lock: the caller holds none of
//! LVM's locks while one runs.

use std::path::PathBuf;
use std::process::Command;

/// How to run LVM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lvm {
    /// The `lvm` binary (found in `PATH` by default).
    pub binary: PathBuf,
    /// `--config` text given to every command (tests: metadata-only mode on loop devices).
    pub config: Option<String>,
}

/// LVM's settings when no udev daemon is listening (an initramfs-like system, the test
/// guests): LVM makes the device nodes itself and waits for nobody, no lvmpolld, no dmeventd.
pub const NO_UDEV_CONFIG: &str = "global { use_lvmpolld = 0 } activation { udev_sync = 0 udev_rules = 0 monitoring = 0 } devices { obtain_device_list_from_udev = 0 }";

/// A stock LVM command that failed.
#[derive(Debug, thiserror::Error)]
pub enum LvmError {
    #[error("cannot run {binary}: {source}")]
    Spawn {
        binary: String,
        source: std::io::Error,
    },
    #[error("`lvm {args}` failed ({status}): {stderr}")]
    Failed {
        args: String,
        status: String,
        stderr: String,
    },
}

impl Default for Lvm {
    fn default() -> Self {
        Lvm {
            binary: PathBuf::from("lvm"),
            config: None,
        }
    }
}

impl Lvm {
    /// LVM as this system needs it: its own settings with udev listening, else
    /// [`NO_UDEV_CONFIG`].
    pub fn for_system(udev_listening: bool) -> Lvm {
        Lvm {
            binary: PathBuf::from("lvm"),
            config: (!udev_listening).then(|| NO_UDEV_CONFIG.to_owned()),
        }
    }

    /// Runs `lvm ARGS...`; its standard output on success.
    pub fn run(&self, args: &[String]) -> Result<String, LvmError> {
        let mut cmd = Command::new(&self.binary);
        cmd.args(args);
        if let Some(c) = &self.config {
            cmd.arg("--config").arg(c);
        }
        // rewind holds lock files and device-mapper's control open; LVM warns about each.
        cmd.env("LVM_SUPPRESS_FD_WARNINGS", "1");
        log::debug!("running lvm {}", args.join(" "));
        let out = cmd.output().map_err(|source| LvmError::Spawn {
            binary: self.binary.display().to_string(),
            source,
        })?;
        if !out.status.success() {
            return Err(LvmError::Failed {
                args: args.join(" "),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `lvcreate -an -Zn -Wn -n NAME -l EXTENTS --addtag TAG... VG`: a plain, inactive,
    /// unzeroed LV allocated by LVM's own rules, tagged.
    pub fn create_inactive(
        &self,
        vg: &str,
        name: &str,
        extents: u64,
        tags: &[String],
    ) -> Result<(), LvmError> {
        let mut args: Vec<String> = [
            "lvcreate", "--yes", "-q", "-an", "-Zn", "-Wn", "-n", name, "-l",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.push(extents.to_string());
        for t in tags {
            args.push("--addtag".into());
            args.push(t.clone());
        }
        args.push(vg.to_owned());
        self.run(&args).map(|_| ())
    }

    /// `lvremove --yes VG/LV...`: LVM's own removal (of snapshots, live or not, too).
    pub fn remove(&self, lvs: &[String]) -> Result<(), LvmError> {
        if lvs.is_empty() {
            return Ok(());
        }
        let mut args = vec!["lvremove".to_owned(), "--yes".to_owned(), "-q".to_owned()];
        args.extend(lvs.iter().cloned());
        self.run(&args).map(|_| ())
    }
}
