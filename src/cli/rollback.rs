//! What `rewind rollback` and `rewind cancel` say when they are done.

use super::Error;
use crate::flow::rollback::{Mode, Rollback};
use crate::lvm::layout::LvRef;

/// The line `rewind rollback` prints for how the request ended.
pub fn said(r: &LvRef, mode: Mode, outcome: Rollback) -> Result<String, Error> {
    let vg = &r.vg;
    Ok(match (outcome, mode) {
        (Rollback::Started { origin }, Mode::Snapshot) => format!(
            "{r}: merging into {vg}/{origin}'s blocks now, on {r}'s own device (it may stay mounted; {vg}/{origin} is unavailable until the end); when done the volume is called {r}; rewind poll finishes it"
        ),
        (Rollback::Started { origin }, Mode::Origin) => format!(
            "{vg}/{origin}: merging {r} back now; rewind poll finishes it (systemctl start rewind-poll.service)"
        ),
        (Rollback::AtNextBoot { origin, why }, Mode::Origin) => format!(
            "{vg}/{origin} is in use ({why}): {r} is flagged and merges back at the next boot; reboot to roll back, or rewind cancel {r} to withdraw it"
        ),
        (Rollback::AtActivation { origin }, Mode::Origin) => format!(
            "{r} is flagged: the merge starts when {vg}/{origin} is next activated (lvchange -ay {vg}/{origin}, or the next boot)"
        ),
        (other, Mode::Snapshot) => {
            return Err(Error::Message(format!("{r}: unexpected outcome {other:?}")));
        }
    })
}

/// The line `rewind cancel` prints once the flag is withdrawn.
pub fn cancelled(r: &LvRef) -> String {
    format!("{r}: merge withdrawn; it is a plain snapshot again")
}
