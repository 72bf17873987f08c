//! `/etc/rewind/rewind.toml`: every key optional, defaults pinned by tests.
//!
//! At install time `rewind check-config` turns an unknown key or a bad value into an error; at
//! boot the same problem is a logged warning and the defaults are used (never a failed boot).

/// Which block devices rewind reads: the `[scan]` table is exactly what the device selection
/// (`lvm::devsel`) takes.
pub use crate::lvm::devsel::Settings as Scan;
use crate::lvm::layout::LvRef;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The default location, inside the initramfs and in the booted system.
pub const DEFAULT_PATH: &str = "/etc/rewind/rewind.toml";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub scan: Scan,
    pub activate: Activate,
    pub log: Log,
    pub poll: Poll,
    pub snapshot: Snapshot,
    pub prune: Prune,
    pub watch: Watch,
    pub hooks: Hooks,
}

/// The package-manager hooks (docs/HOOKS.md): one automatic snapshot set before each
/// transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Hooks {
    /// Take a set before each transaction; `false`: the hooks only say they are off.
    pub enabled: bool,
    /// When the set cannot be taken: warn and let the transaction go on, or stop it before
    /// the package manager changes anything.
    pub on_failure: OnFailure,
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks {
            enabled: true,
            on_failure: OnFailure::Warn,
        }
    }
}

/// `[hooks] on_failure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    Warn,
    Stop,
}

/// `rewind watch` (the timer's check of every active set member's store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Watch {
    /// Warn (journal and the next login) when a store, or a thin member's pool (data or
    /// metadata, once per crossing), is at least this full.
    pub warn_percent: u8,
    /// Extend such a store with stock `lvextend`, when its VG has room.
    pub extend: bool,
    /// By this share of its size (at least one extent).
    pub extend_by_percent: u8,
}

impl Default for Watch {
    fn default() -> Self {
        Watch {
            warn_percent: 80,
            extend: false,
            extend_by_percent: 20,
        }
    }
}

/// `rewind snapshot`'s defaults (docs/SETS.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Snapshot {
    /// The members of a set when none are named: mount points (the LV mounted there, when it
    /// is one; others are skipped) or `VG/LV`.
    pub members: Vec<String>,
    /// Each member's COW size: a size (`2G`), `N%SIZE`, `N%FREE` or `N%USED`.
    pub size: String,
    /// The longest the window may keep the origins suspended before it is aborted.
    pub window_timeout_ms: u64,
    /// Suspend every origin at once (one thread each) rather than one after another.
    pub parallel: bool,
    /// A thin member's pool must have at least this share (percent) of its data and of its
    /// metadata free, as the kernel reports them, or the set is refused before any change
    /// (a full pool makes every thin LV in it read-only or erroring). 0: only a full, failed,
    /// read-only or `needs_check` pool is refused.
    pub thin_min_free_percent: u8,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot {
            members: ["/", "/usr", "/var", "/opt"].map(String::from).to_vec(),
            size: "20%SIZE".into(),
            window_timeout_ms: 5000,
            parallel: true,
            thin_min_free_percent: 20,
        }
    }
}

impl Snapshot {
    /// The size policy (validated in `Config::parse`).
    pub fn size_policy(&self) -> crate::lvm::sets::SizePolicy {
        self.size
            .parse()
            .unwrap_or(crate::lvm::sets::SizePolicy::OfSize(20))
    }
}

/// `rewind prune`'s retention: a set is kept when it is one of the newest `keep_last`, or
/// younger than `keep_days`, or pinned, or merging; the others are deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Prune {
    pub keep_last: u32,
    pub keep_days: u32,
}

impl Default for Prune {
    fn default() -> Self {
        Prune {
            keep_last: 5,
            keep_days: 0,
        }
    }
}

/// Logical volumes to activate when no LVM2 is in the initramfs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Activate {
    /// `VG/LV` names, in addition to the kernel command line's `rd.lvm.lv=`.
    pub lvs: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Log {
    pub level: Level,
}

/// The poller's timing: it starts polling fast and backs off while a merge has far to go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Poll {
    pub interval_min_ms: u64,
    pub interval_max_ms: u64,
}

impl Default for Log {
    fn default() -> Self {
        Log { level: Level::Info }
    }
}

impl Default for Poll {
    fn default() -> Self {
        Poll {
            interval_min_ms: 100,
            interval_max_ms: 1000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

impl Config {
    /// Parses and validates the text of a config file; `path` only names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        let config: Config = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        for lv in &config.activate.lvs {
            LvRef::parse(lv).map_err(|e| invalid(format!("activate.lvs: {e}")))?;
        }
        if config.poll.interval_min_ms == 0
            || config.poll.interval_min_ms > config.poll.interval_max_ms
        {
            return Err(invalid(format!(
                "poll: interval_min_ms ({}) must be at least 1 and at most interval_max_ms ({})",
                config.poll.interval_min_ms, config.poll.interval_max_ms
            )));
        }
        config
            .snapshot
            .size
            .parse::<crate::lvm::sets::SizePolicy>()
            .map_err(|e| invalid(format!("snapshot.{e}")))?;
        for m in &config.snapshot.members {
            if !m.starts_with('/') {
                LvRef::parse(m).map_err(|e| {
                    invalid(format!("snapshot.members: {m}: not a mount point nor {e}"))
                })?;
            }
        }
        if !(1..=99).contains(&config.watch.warn_percent)
            || !(1..=100).contains(&config.watch.extend_by_percent)
        {
            return Err(invalid(format!(
                "watch: warn_percent ({}) must be 1-99 and extend_by_percent ({}) 1-100",
                config.watch.warn_percent, config.watch.extend_by_percent
            )));
        }
        if config.snapshot.window_timeout_ms < 100 {
            return Err(invalid(format!(
                "snapshot: window_timeout_ms ({}) must be at least 100",
                config.snapshot.window_timeout_ms
            )));
        }
        if config.snapshot.thin_min_free_percent > 99 {
            return Err(invalid(format!(
                "snapshot: thin_min_free_percent ({}) must be 0-99",
                config.snapshot.thin_min_free_percent
            )));
        }
        if !config.scan.lvm_config_dir.starts_with('/') {
            return Err(invalid(format!(
                "scan.lvm_config_dir '{}' is not an absolute path",
                config.scan.lvm_config_dir
            )));
        }
        Ok(config)
    }

    /// Reads the file; a missing file means the defaults.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(source) => Err(ConfigError::Read {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// The boot-time variant: a bad file is logged and the defaults are used.
    pub fn load_or_default(path: &Path) -> Config {
        Config::load(path).unwrap_or_else(|e| {
            log::warn!("{e}; using the defaults");
            Config::default()
        })
    }

    /// The volumes to activate, parsed (validated in `parse`).
    pub fn activate_lvs(&self) -> Vec<LvRef> {
        self.activate
            .lvs
            .iter()
            .filter_map(|s| LvRef::parse(s).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_pinned() {
        let c = Config::default();
        assert!(c.scan.use_lvm_config);
        assert_eq!(c.scan.lvm_config_dir, "/etc/lvm");
        assert!(c.scan.devices.is_empty());
        assert!(c.activate.lvs.is_empty());
        assert_eq!(c.log.level, Level::Info);
        assert_eq!(c.poll.interval_min_ms, 100);
        assert_eq!(c.poll.interval_max_ms, 1000);
        assert_eq!(c.snapshot.members, ["/", "/usr", "/var", "/opt"]);
        assert_eq!(c.snapshot.size, "20%SIZE");
        assert_eq!(
            c.snapshot.size_policy(),
            crate::lvm::sets::SizePolicy::OfSize(20)
        );
        assert_eq!(c.snapshot.window_timeout_ms, 5000);
        assert_eq!(c.snapshot.thin_min_free_percent, 20);
        assert!(c.snapshot.parallel);
        assert_eq!((c.prune.keep_last, c.prune.keep_days), (5, 0));
        assert!(c.hooks.enabled);
        assert_eq!(c.hooks.on_failure, OnFailure::Warn);
        assert_eq!(
            (
                c.watch.warn_percent,
                c.watch.extend,
                c.watch.extend_by_percent
            ),
            (80, false, 20)
        );
    }

    #[test]
    fn empty_file_means_defaults() {
        assert_eq!(Config::parse("", "x").expect("empty"), Config::default());
    }

    #[test]
    fn every_key_set() {
        let c = Config::parse(
            r#"
            [scan]
            use_lvm_config = false
            lvm_config_dir = "/run/lvm-conf"
            devices = ["/dev/vd*", "/dev/nvme0n1p3"]
            [activate]
            lvs = ["vg0/root", "vg0/usr"]
            [log]
            level = "debug"
            [poll]
            interval_min_ms = 10
            interval_max_ms = 500
            [snapshot]
            members = ["/", "vg1/data"]
            size = "50%USED"
            window_timeout_ms = 2000
            parallel = false
            [prune]
            keep_last = 3
            keep_days = 14
            [hooks]
            enabled = false
            on_failure = "stop"
            "#,
            "x",
        )
        .expect("valid");
        assert!(!c.scan.use_lvm_config);
        assert_eq!(c.scan.devices, vec!["/dev/vd*", "/dev/nvme0n1p3"]);
        assert_eq!(c.activate_lvs().len(), 2);
        assert_eq!(c.log.level, Level::Debug);
        assert_eq!((c.poll.interval_min_ms, c.poll.interval_max_ms), (10, 500));
        assert_eq!(c.snapshot.members, ["/", "vg1/data"]);
        assert_eq!(
            c.snapshot.size_policy(),
            crate::lvm::sets::SizePolicy::OfUsed(50)
        );
        assert_eq!(c.snapshot.window_timeout_ms, 2000);
        assert!(!c.snapshot.parallel);
        assert_eq!((c.prune.keep_last, c.prune.keep_days), (3, 14));
        assert!(!c.hooks.enabled);
        assert_eq!(c.hooks.on_failure, OnFailure::Stop);
    }

    #[test]
    fn unknown_key_names_the_key_and_file() {
        let e = Config::parse("[scan]\nfilter = 1\n", "/etc/rewind/rewind.toml")
            .expect_err("unknown key");
        let msg = e.to_string();
        assert!(msg.starts_with("/etc/rewind/rewind.toml:"), "{msg}");
        assert!(msg.contains("unknown field `filter`"), "{msg}");
    }

    #[test]
    fn bad_values_are_errors() {
        for (text, needle) in [
            ("[log]\nlevel = \"loud\"\n", "unknown variant `loud`"),
            ("[activate]\nlvs = [\"root\"]\n", "not of the form VG/LV"),
            ("[poll]\ninterval_min_ms = 0\n", "at least 1"),
            (
                "[poll]\ninterval_min_ms = 2000\n",
                "at most interval_max_ms",
            ),
            ("[scan]\nlvm_config_dir = \"etc\"\n", "not an absolute path"),
            ("[poll]\ninterval_min_ms = -1\n", "interval_min_ms"),
            ("[snapshot]\nsize = \"lots\"\n", "snapshot.size \"lots\""),
            ("[snapshot]\nmembers = [\"root\"]\n", "not a mount point"),
            ("[snapshot]\nwindow_timeout_ms = 5\n", "at least 100"),
            ("[snapshot]\nthin_min_free_percent = 100\n", "must be 0-99"),
            ("[watch]\nwarn_percent = 100\n", "must be 1-99"),
        ] {
            let msg = Config::parse(text, "x").expect_err(text).to_string();
            assert!(msg.contains(needle), "{text:?}: {msg}");
        }
    }

    #[test]
    fn missing_file_is_defaults_and_unreadable_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            Config::load(&dir.path().join("none.toml")).expect("missing"),
            Config::default()
        );
        // A directory cannot be read as a file.
        assert!(matches!(
            Config::load(dir.path()),
            Err(ConfigError::Read { .. })
        ));
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "[nope]\n").expect("write");
        assert_eq!(Config::load_or_default(&bad), Config::default());
    }
}
