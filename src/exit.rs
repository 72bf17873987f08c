//! The pinned exit codes, in one place (tests and the initramfs hooks rely on them). A flow's
//! report says how it came out ([`Verdict`]); `cli` adds the codes of errors and usage.

/// Everything asked for was done (or there was nothing to do).
pub const SUCCESS: u8 = 0;
/// Something failed or was refused; the message says what.
pub const FAILURE: u8 = 1;
/// The command line is wrong (clap's own code too).
pub const USAGE: u8 = 2;
/// `rewind status`: a snapshot is invalid or a merge failed.
pub const UNHEALTHY: u8 = 3;

/// How a flow that ran to its end came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Done, nothing wrong.
    Ok,
    /// Something asked for could not be done safely.
    Failed,
    /// Done, but what it found is unhealthy (`rewind status`).
    Unhealthy,
}

impl Verdict {
    /// The exit code.
    pub fn code(self) -> u8 {
        match self {
            Verdict::Ok => SUCCESS,
            Verdict::Failed => FAILURE,
            Verdict::Unhealthy => UNHEALTHY,
        }
    }

    /// `Failed` when `failed`, else `Ok`.
    pub fn failed_if(failed: bool) -> Verdict {
        if failed { Verdict::Failed } else { Verdict::Ok }
    }
}
