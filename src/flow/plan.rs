//! `rewind plan`: what `rewind early` would do at a boot with this command line, with
//! nothing changed; entry point [`run`].

use super::Error;
use super::early::{self, Inputs, Outcome, commit_flags, plan_devices, prepare};
use crate::plan::decide::{Level, Note};
use crate::system::blockdev::BlockDevice;
use crate::system::dm::RealDm;
use crate::system::exec::live;
use std::path::PathBuf;
use std::time::Duration;

/// How long one wait for udev may take (a plan only reads, it never waits).
const UDEV_TIMEOUT: Duration = Duration::from_secs(10);

/// Which block devices a plan reads: `paths` when given, else all (LVs never: `system::scan`).
fn selector(paths: &[PathBuf]) -> impl Fn(&BlockDevice) -> Result<(), String> + '_ {
    move |dev: &BlockDevice| {
        if paths.is_empty() || paths.iter().any(|p| p == &dev.node) {
            Ok(())
        } else {
            Err("not named on the command line".into())
        }
    }
}

/// The decisions, the metadata that would be committed (made in memory only) and the
/// device-mapper steps against what is live now (as if nothing were active when there is no
/// device-mapper). Reads only `devices` when given.
pub fn run(inputs: &Inputs, devices: &[PathBuf]) -> Result<Outcome, Error> {
    let mut out = Outcome::default();
    let select = selector(devices);
    let mut prep = prepare(inputs, early::scan_devices(inputs, &select)?);
    out.notes.append(&mut prep.decision.notes);
    commit_flags(&mut prep, &mut out, false);
    let live = match RealDm::new(UDEV_TIMEOUT).and_then(|mut dm| live(&mut dm)) {
        Ok(live) => live,
        Err(e) => {
            out.notes.push(Note {
                level: Level::Info,
                message: format!(
                    "no device-mapper here ({e}): planned as if no device were active"
                ),
            });
            Vec::new()
        }
    };
    plan_devices(&prep, &live, &mut out);
    Ok(out)
}
