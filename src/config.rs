//! `/etc/rewind/rewind.toml`: every key optional, defaults pinned by tests.
//!
//! At install time `rewind check-config` turns an unknown key or a bad value into an error; at
//! boot the same problem is a logged warning and the defaults are used (never a failed boot).
//!
//! Two readers, one validation ([`Config::validate`]): the booted system reads `rewind.toml`
//! ([`Config::parse`]); the initramfs reads [`BOOT_PATH`], the same configuration as JSON,
//! which the initramfs hooks write with `rewind check-config --boot-json` from the validated
//! `rewind.toml` ([`Config::to_boot_json`], [`Config::parse_boot`]). So the initramfs build
//! needs no TOML parser (issue 17: 120 KB of it).

/// Which block devices rewind reads: the `[scan]` table is exactly what the device selection
/// (`lvm::devsel`) takes.
pub use crate::lvm::devsel::Settings as Scan;
use crate::lvm::layout::LvRef;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The configuration file of the booted system (and what the initramfs hooks read).
pub const DEFAULT_PATH: &str = "/etc/rewind/rewind.toml";

/// The configuration inside the initramfs, as `rewind early` and `rewind handoff` read it:
/// `rewind.toml` validated and written as JSON by `rewind check-config --boot-json` when the
/// image is built (a change to `rewind.toml` takes effect when the image is rebuilt).
pub const BOOT_PATH: &str = "/etc/rewind/initramfs.json";

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
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

impl Config {
    /// Parses and validates the text of `rewind.toml`; `path` only names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        config.validate(path)
    }

    /// Parses and validates the boot configuration ([`BOOT_PATH`], JSON); `path` only names it
    /// in errors. A text that looks like TOML (a `rewind.toml` given where the JSON belongs) is
    /// an error that says which file the initramfs reads and how it is made; it is not parsed.
    pub fn parse_boot(text: &str, path: &str) -> Result<Config, ConfigError> {
        let config: Config = serde_json::from_str(text).map_err(|e| ConfigError::Invalid {
            path: path.to_owned(),
            message: if looks_like_toml(text) {
                format!(
                    "not JSON but TOML, it seems ({e}): rewind early and handoff read {BOOT_PATH}, \
                     the configuration as JSON, which the initramfs hooks write from \
                     {DEFAULT_PATH} with `rewind check-config --boot-json FILE`"
                )
            } else {
                e.to_string()
            },
        })?;
        config.validate(path)
    }

    /// The boot configuration's text: every key with the value in force, pretty-printed, so
    /// whoever reads the image sees the whole configuration. Of a validated `Config` only
    /// ([`parse`](Config::parse), [`parse_boot`](Config::parse_boot)).
    pub fn to_boot_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self)
            .unwrap_or_else(|_| unreachable!("a Config has string keys only"));
        text.push('\n');
        text
    }

    /// Writes [`to_boot_json`](Config::to_boot_json) to `path` (the initramfs hooks' temporary
    /// file, which they put into the image as [`BOOT_PATH`]).
    pub fn write_boot_json(&self, path: &Path) -> Result<(), ConfigError> {
        std::fs::write(path, self.to_boot_json()).map_err(|source| ConfigError::Write {
            path: path.display().to_string(),
            source,
        })
    }

    /// What both readers check after deserialising: the values serde's types do not rule out.
    fn validate(self, path: &str) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        for lv in &self.activate.lvs {
            LvRef::parse(lv).map_err(|e| invalid(format!("activate.lvs: {e}")))?;
        }
        if self.poll.interval_min_ms == 0 || self.poll.interval_min_ms > self.poll.interval_max_ms {
            return Err(invalid(format!(
                "poll: interval_min_ms ({}) must be at least 1 and at most interval_max_ms ({})",
                self.poll.interval_min_ms, self.poll.interval_max_ms
            )));
        }
        self.snapshot
            .size
            .parse::<crate::lvm::sets::SizePolicy>()
            .map_err(|e| invalid(format!("snapshot.{e}")))?;
        for m in &self.snapshot.members {
            if !m.starts_with('/') {
                LvRef::parse(m).map_err(|e| {
                    invalid(format!("snapshot.members: {m}: not a mount point nor {e}"))
                })?;
            }
        }
        if !(1..=99).contains(&self.watch.warn_percent)
            || !(1..=100).contains(&self.watch.extend_by_percent)
        {
            return Err(invalid(format!(
                "watch: warn_percent ({}) must be 1-99 and extend_by_percent ({}) 1-100",
                self.watch.warn_percent, self.watch.extend_by_percent
            )));
        }
        if self.snapshot.window_timeout_ms < 100 {
            return Err(invalid(format!(
                "snapshot: window_timeout_ms ({}) must be at least 100",
                self.snapshot.window_timeout_ms
            )));
        }
        if self.snapshot.thin_min_free_percent > 99 {
            return Err(invalid(format!(
                "snapshot: thin_min_free_percent ({}) must be 0-99",
                self.snapshot.thin_min_free_percent
            )));
        }
        if !self.scan.lvm_config_dir.starts_with('/') {
            return Err(invalid(format!(
                "scan.lvm_config_dir '{}' is not an absolute path",
                self.scan.lvm_config_dir
            )));
        }
        Ok(self)
    }

    /// Reads `rewind.toml`; a missing file means the defaults.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        load_with(path, Config::parse)
    }

    /// The booted system's lenient variant of [`load`](Config::load): a bad file is logged
    /// and the defaults are used.
    pub fn load_or_default(path: &Path) -> Config {
        or_default(Config::load(path))
    }

    /// Reads the boot configuration ([`BOOT_PATH`], JSON) as `rewind early` and `rewind
    /// handoff` do: a missing file means the defaults (there was no `rewind.toml` when the
    /// image was built). At boot an error is not fatal: see [`or_default`].
    pub fn load_boot(path: &Path) -> Result<Config, ConfigError> {
        load_with(path, Config::parse_boot)
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

/// Reads `path` with `parse`; a missing file means the defaults.
fn load_with(
    path: &Path,
    parse: fn(&str, &str) -> Result<Config, ConfigError>,
) -> Result<Config, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &path.display().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
        Err(source) => Err(ConfigError::Read {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// The boot-time rule: a bad file is logged ([`warn_using_defaults`]) and the defaults are
/// used, never a failed boot.
pub fn or_default(loaded: Result<Config, ConfigError>) -> Config {
    loaded.unwrap_or_else(|e| {
        warn_using_defaults(&e);
        Config::default()
    })
}

/// The warning of [`or_default`], for a caller that can only log it later (the initramfs
/// commands' logger needs the configuration's log level first).
pub fn warn_using_defaults(e: &ConfigError) {
    log::warn!("{e}; using the defaults");
}

/// Whether a text that is not JSON reads like TOML: its first line that is not blank is a
/// comment, a `[table]` header or a `key = value` line. (A JSON configuration is an object.)
fn looks_like_toml(text: &str) -> bool {
    let Some(line) = text.lines().map(str::trim).find(|l| !l.is_empty()) else {
        return false;
    };
    if line.starts_with('#') {
        return true;
    }
    if let Some(rest) = line.strip_prefix('[') {
        let name = rest.trim_start_matches('[');
        return name.starts_with(|c: char| c.is_ascii_alphabetic()) && line.ends_with(']');
    }
    line.split_once('=').is_some_and(|(key, _)| {
        let key = key.trim();
        !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    })
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

#[cfg(test)]
mod boot_tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Every table and key, none at its default.
    const EVERY_KEY: &str = r#"
        [scan]
        use_lvm_config = false
        lvm_config_dir = "/run/lvm-conf"
        devices = ["/dev/vd*", "/dev/nvme0n1p3"]
        [activate]
        lvs = ["vg0/root", "vg0/usr"]
        [log]
        level = "trace"
        [poll]
        interval_min_ms = 10
        interval_max_ms = 500
        [snapshot]
        members = ["/", "vg1/data"]
        size = "50%USED"
        window_timeout_ms = 2000
        parallel = false
        thin_min_free_percent = 5
        [prune]
        keep_last = 3
        keep_days = 14
        [watch]
        warn_percent = 90
        extend = true
        extend_by_percent = 50
        [hooks]
        enabled = false
        on_failure = "stop"
        "#;

    /// `table.key` for every key of a TOML text's tables.
    fn toml_keys(text: &str) -> BTreeSet<String> {
        let mut table = String::new();
        let mut keys = BTreeSet::new();
        for line in text.lines().map(str::trim) {
            if let Some(t) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                table = t.to_owned();
            } else if let Some((k, _)) = line.split_once('=') {
                keys.insert(format!("{table}.{}", k.trim()));
            }
        }
        keys
    }

    /// `table.key` for every key of a JSON configuration.
    fn json_keys(text: &str) -> BTreeSet<String> {
        let v: serde_json::Value = serde_json::from_str(text).expect("json");
        let mut keys = BTreeSet::new();
        for (table, t) in v.as_object().expect("object") {
            for k in t.as_object().expect("table").keys() {
                keys.insert(format!("{table}.{k}"));
            }
        }
        keys
    }

    #[test]
    fn every_key_goes_through_the_boot_json_unchanged() {
        let toml = Config::parse(EVERY_KEY, "rewind.toml").expect("valid");
        // Each table differs from its default, so a key lost on the way would show.
        let d = Config::default();
        assert_ne!(toml.scan, d.scan);
        assert_ne!(toml.activate, d.activate);
        assert_ne!(toml.log, d.log);
        assert_ne!(toml.poll, d.poll);
        assert_ne!(toml.snapshot, d.snapshot);
        assert_ne!(toml.prune, d.prune);
        assert_ne!(toml.watch, d.watch);
        assert_ne!(toml.hooks, d.hooks);
        let json = toml.to_boot_json();
        let boot = Config::parse_boot(&json, BOOT_PATH).expect("the boot reader takes it");
        assert_eq!(boot, toml);
        // Every key is written, with the TOML's names; the defaults' JSON names them all too.
        assert_eq!(json_keys(&json), toml_keys(EVERY_KEY));
        assert_eq!(json_keys(&d.to_boot_json()), toml_keys(EVERY_KEY));
        assert!(
            json.contains("\n  \"log\": {\n    \"level\": \"trace\"\n  },"),
            "{json}"
        );
        assert!(json.ends_with("}\n"), "{json}");
    }

    #[test]
    fn the_defaults_go_through_the_boot_json_unchanged() {
        let d = Config::default();
        assert_eq!(Config::parse_boot(&d.to_boot_json(), "x").expect("ok"), d);
    }

    #[test]
    fn the_boot_reader_validates_as_the_toml_reader() {
        for (toml, json) in [
            (
                "[poll]\ninterval_min_ms = 0\n",
                r#"{"poll": {"interval_min_ms": 0}}"#,
            ),
            (
                "[activate]\nlvs = [\"root\"]\n",
                r#"{"activate": {"lvs": ["root"]}}"#,
            ),
            (
                "[watch]\nwarn_percent = 100\n",
                r#"{"watch": {"warn_percent": 100}}"#,
            ),
            (
                "[scan]\nlvm_config_dir = \"etc\"\n",
                r#"{"scan": {"lvm_config_dir": "etc"}}"#,
            ),
            (
                "[snapshot]\nsize = \"lots\"\n",
                r#"{"snapshot": {"size": "lots"}}"#,
            ),
        ] {
            let t = Config::parse(toml, "f").expect_err(toml).to_string();
            let j = Config::parse_boot(json, "f").expect_err(json).to_string();
            assert_eq!(t, j);
        }
        for (json, needle) in [
            (r#"{"log": {"level": "loud"}}"#, "unknown variant `loud`"),
            (r#"{"scan": {"filter": 1}}"#, "unknown field `filter`"),
            (r#"{"logs": {}}"#, "unknown field `logs`"),
            (r#"{"poll": {"interval_min_ms": -1}}"#, "invalid value"),
            ("{\"log\": ", "EOF while parsing"),
        ] {
            let msg = Config::parse_boot(json, BOOT_PATH)
                .expect_err(json)
                .to_string();
            assert!(msg.starts_with("/etc/rewind/initramfs.json: "), "{msg}");
            assert!(msg.contains(needle), "{json}: {msg}");
            assert!(!msg.contains("TOML"), "{json}: {msg}");
        }
    }

    #[test]
    fn toml_given_to_the_boot_reader_says_what_the_initramfs_reads() {
        for text in [
            "[log]\nlevel = \"debug\"\n",
            "# rewind's configuration\n[log]\n",
            "\n  [[x]]\n",
            "[scan.x]\n",
            "key = 1\n",
        ] {
            let msg = Config::parse_boot(text, "/etc/rewind/initramfs.json")
                .expect_err(text)
                .to_string();
            assert!(
                msg.starts_with("/etc/rewind/initramfs.json: not JSON but TOML, it seems ("),
                "{text:?}: {msg}"
            );
            assert!(
                msg.contains(
                    "rewind early and handoff read /etc/rewind/initramfs.json, the configuration \
                     as JSON, which the initramfs hooks write from /etc/rewind/rewind.toml with \
                     `rewind check-config --boot-json FILE`"
                ),
                "{text:?}: {msg}"
            );
        }
        for text in ["", "[1, 2]", "[\"a\"]", "{", "null", "\"x = 1\""] {
            let msg = Config::parse_boot(text, "f").expect_err(text).to_string();
            assert!(!msg.contains("TOML"), "{text:?}: {msg}");
        }
    }

    #[test]
    fn a_bad_boot_file_means_the_defaults_and_a_missing_one_too() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("initramfs.json");
        assert_eq!(or_default(Config::load_boot(&path)), Config::default());
        for bad in [
            r#"{"log": {"level": "loud"}}"#,
            r#"{"poll": {"interval_min_ms": 0}}"#,
            "[log]\nlevel = \"debug\"\n",
        ] {
            std::fs::write(&path, bad).expect("write");
            assert_eq!(
                or_default(Config::load_boot(&path)),
                Config::default(),
                "{bad}"
            );
        }
        std::fs::write(&path, r#"{"log": {"level": "debug"}}"#).expect("write");
        assert_eq!(or_default(Config::load_boot(&path)).log.level, Level::Debug);
        // A directory cannot be read: the defaults as well.
        assert_eq!(or_default(Config::load_boot(dir.path())), Config::default());
    }
}
