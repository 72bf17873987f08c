//! `rewind check-config`: validates the configuration file (run by the initramfs hooks at
//! install time); entry point [`run`].

use super::Error;
use crate::config::Config;
use std::path::Path;

/// What the check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The effective configuration.
    pub config: Config,
    /// False when there is no file: the defaults apply.
    pub present: bool,
}

/// Reads and validates `path`; an unknown key or a bad value is an error naming the file.
/// With `boot_json`, then writes the configuration in force (the defaults when there is no
/// file) there as the initramfs reads it (`config::BOOT_PATH`); nothing when it is invalid.
pub fn run(path: &Path, boot_json: Option<&Path>) -> Result<Checked, Error> {
    let config = Config::load(path)?;
    if let Some(out) = boot_json {
        config.write_boot_json(out)?;
    }
    Ok(Checked {
        config,
        present: path.exists(),
    })
}
