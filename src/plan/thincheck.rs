//! LVM's check of a thin pool's metadata before the pool is loaded: `thin_check` on the
//! pool's `_tmeta` device (lvm2 `lib/activate/dev_manager.c` `_pool_callback`, registered for
//! the `-tpool` node by `_pool_register_callback`, called by libdm's `dm_tree_preload_children`
//! with `DM_NODE_CALLBACK_PRELOADED` once the pool's parts are loaded and resumed and only when
//! the `-tpool` device does not exist yet).
//!
//! What LVM does, and rewind with it:
//! - the command is `global/thin_check_executable` (LVM's build default `/usr/sbin/thin_check`)
//!   followed by `global/thin_check_options` (default `-q --clear-needs-check-flag`,
//!   `lib/config/defaults.h` when built with `THIN_CHECK_NEEDS_CHECK`, as distributions build
//!   it) and the metadata device's path; an empty executable (`""`) turns the check off;
//! - when the first 64 bytes of the metadata device are all zero (a pool never written), the
//!   check is skipped (`skip_zero`);
//! - the executable not found (`ENOENT`): a warning, the check skipped, activation goes on;
//! - any other failure (a non-zero exit, killed): "Check of pool VG/POOL failed (status:N).
//!   Manual repair required!", the `-tpool` is not loaded and the parts the activation created
//!   are removed again (`_dm_tree_revert_activated`).

use serde::Serialize;

/// LVM's `THIN_CHECK_CMD` as distributions configure it.
pub const DEFAULT_EXECUTABLE: &str = "/usr/sbin/thin_check";
/// LVM's `DEFAULT_THIN_CHECK_OPTION1` and `..._OPTION2`.
pub const DEFAULT_OPTIONS: [&str; 2] = ["-q", "--clear-needs-check-flag"];
/// The bytes of the metadata device's start LVM reads for `skip_zero`.
pub const HEADER_BYTES: usize = 64;
/// `DEFAULT_MAX_EXEC_ARGS`: LVM takes at most this many options.
const MAX_OPTIONS: usize = 15;

/// The check as lvm.conf configures it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThinCheck {
    /// `None`: switched off (`thin_check_executable = ""`).
    pub executable: Option<String>,
    pub options: Vec<String>,
}

impl Default for ThinCheck {
    fn default() -> Self {
        ThinCheck::from_settings(None, None)
    }
}

impl ThinCheck {
    /// From `global/thin_check_executable` and `global/thin_check_options` (`None`: not set,
    /// LVM's defaults). Empty options are dropped, as LVM's `prepare_exec_args` drops them.
    pub fn from_settings(executable: Option<&str>, options: Option<&[String]>) -> ThinCheck {
        let executable = match executable {
            None => Some(DEFAULT_EXECUTABLE.to_owned()),
            Some("") => None,
            Some(e) => Some(e.to_owned()),
        };
        let options = match options {
            None => DEFAULT_OPTIONS.iter().map(|s| (*s).to_owned()).collect(),
            Some(o) => o
                .iter()
                .filter(|s| !s.is_empty())
                .take(MAX_OPTIONS)
                .cloned()
                .collect(),
        };
        ThinCheck {
            executable,
            options,
        }
    }

    /// The command line for the metadata device `meta` (`None` when switched off).
    pub fn argv(&self, meta: &str) -> Option<Vec<String>> {
        let exe = self.executable.as_ref()?;
        let mut argv = Vec::with_capacity(self.options.len() + 2);
        argv.push(exe.clone());
        argv.extend(self.options.iter().cloned());
        argv.push(meta.to_owned());
        Some(argv)
    }
}

/// LVM's `skip_zero`: a metadata device whose first 64 bytes are zero was never written.
pub fn never_written(header: &[u8]) -> bool {
    header.len() >= HEADER_BYTES && header[..HEADER_BYTES].iter().all(|b| *b == 0)
}

/// How one run of the checker ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    /// Exited with this status (0: the metadata is fine).
    Exited(i32),
    /// Killed by this signal.
    Signalled(i32),
    /// The executable is not there.
    NotFound,
    /// It could not be started for another reason.
    CannotStart(String),
}

/// What the check decides for the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Load the pool.
    Passed,
    /// Load the pool; the check did not run (the reason is logged, once per pool).
    Skipped(String),
    /// Do not load the pool: its metadata needs repair (the reason for the console).
    NeedsRepair(String),
}

/// LVM's reading of a run: only a missing executable lets activation go on unchecked.
pub fn verdict(argv: &[String], ran: &Ran) -> Verdict {
    let exe = argv.first().map_or("thin_check", String::as_str);
    match ran {
        Ran::Exited(0) => Verdict::Passed,
        Ran::NotFound => Verdict::Skipped(format!(
            "{exe} is not installed (in the initramfs: install thin-provisioning-tools and rebuild it); the pool's metadata is not checked"
        )),
        Ran::Exited(n) => {
            Verdict::NeedsRepair(format!("`{}` failed (exit status {n})", argv.join(" ")))
        }
        Ran::Signalled(s) => {
            Verdict::NeedsRepair(format!("`{}` was killed (signal {s})", argv.join(" ")))
        }
        Ran::CannotStart(e) => {
            Verdict::NeedsRepair(format!("`{}` could not be run: {e}", argv.join(" ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn settings_as_lvm_reads_them() {
        let d = ThinCheck::default();
        assert_eq!(
            d.argv("/dev/mapper/vg-pool_tmeta"),
            Some(strings(&[
                "/usr/sbin/thin_check",
                "-q",
                "--clear-needs-check-flag",
                "/dev/mapper/vg-pool_tmeta"
            ]))
        );
        // "" switches the check off.
        assert_eq!(ThinCheck::from_settings(Some(""), None).argv("m"), None);
        // Options replace the defaults; empty ones are dropped.
        let opts = strings(&["-q", "", "--skip-mappings"]);
        let c = ThinCheck::from_settings(Some("/opt/tc"), Some(&opts));
        assert_eq!(
            c.argv("m"),
            Some(strings(&["/opt/tc", "-q", "--skip-mappings", "m"]))
        );
        // An empty list: no option at all.
        assert_eq!(
            ThinCheck::from_settings(None, Some(&[])).argv("m"),
            Some(strings(&["/usr/sbin/thin_check", "m"]))
        );
        let many: Vec<String> = (0..20).map(|i| format!("-o{i}")).collect();
        let c = ThinCheck::from_settings(None, Some(&many));
        assert_eq!(c.options.len(), 15);
    }

    #[test]
    fn zero_header_is_a_pool_never_written() {
        assert!(never_written(&[0; 64]));
        assert!(never_written(&[0; 4096]));
        let mut h = [0u8; 64];
        h[63] = 1;
        assert!(!never_written(&h));
        // A short read is not "never written".
        assert!(!never_written(&[0; 63]));
    }

    #[test]
    fn only_a_missing_checker_lets_the_pool_through_unchecked() {
        let argv = strings(&["/usr/sbin/thin_check", "-q", "m"]);
        assert_eq!(verdict(&argv, &Ran::Exited(0)), Verdict::Passed);
        assert!(
            matches!(verdict(&argv, &Ran::NotFound), Verdict::Skipped(m) if m.contains("/usr/sbin/thin_check is not installed"))
        );
        match verdict(&argv, &Ran::Exited(1)) {
            Verdict::NeedsRepair(m) => {
                assert!(
                    m.contains("`/usr/sbin/thin_check -q m` failed (exit status 1)"),
                    "{m}"
                );
            }
            v => panic!("{v:?}"),
        }
        assert!(matches!(
            verdict(&argv, &Ran::Signalled(9)),
            Verdict::NeedsRepair(_)
        ));
        assert!(matches!(
            verdict(&argv, &Ran::CannotStart("permission denied".into())),
            Verdict::NeedsRepair(_)
        ));
    }
}
