//! The flows' one error type. Each variant names the VG, LV or device it is about and keeps
//! the lower layer's error as its source; `cli` maps every one to exit code 1 and prints it
//! after `rewind: `. The texts are the ones the tests and VM scenarios look for.

use crate::config::ConfigError;
use crate::lvm::change::ChangeError;
use crate::lvm::devsel::DevselError;
use crate::lvm::model::ModelError;
use crate::plan::decide::Refusal;
use crate::plan::devices::DevicesError;
use crate::plan::steps::StepsError;
use crate::system::dm::DmError;
use crate::system::exec::ExecError;
use crate::system::lock::LockError;
use crate::system::scan::CommitVgError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The block devices could not be listed.
    #[error("cannot list block devices: {0}")]
    ListDevices(#[source] std::io::Error),
    /// LVM's device selection could not be made: no device is read.
    #[error("cannot tell which devices lvm would use ({0}); no device read")]
    Selection(#[source] Box<DevselError>),
    /// The live device-mapper state could not be read.
    #[error("cannot read device-mapper state: {0}")]
    DmState(#[source] Box<DmError>),
    #[error("no volume group {vg} found")]
    NoVg { vg: String },
    #[error("no volume group with id {vg_id} found for device {device}")]
    NoVgWithId { device: String, vg_id: String },
    /// A VG that cannot be acted on, or a step on it that failed.
    #[error("vg {vg}: {message}")]
    Vg { vg: String, message: String },
    /// LVM's VG lock.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// Writing a VG's new metadata failed (`what`: which change).
    #[error("vg {vg}: {what} failed: {source}")]
    Commit {
        vg: String,
        what: String,
        source: Box<CommitVgError>,
    },
    /// The planner refused a rollback (nothing was changed).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// A request on one logical volume (`VG/LV`) that was refused or failed; the message says
    /// what was done and what to do.
    #[error("{lv}: {message}")]
    Lv { lv: String, message: String },
    /// `rewind cancel` of a snapshot that is not flagged.
    #[error("{lv} is not flagged to merge; nothing to cancel")]
    NotFlagged { lv: String },
    /// A device-mapper device (poll: a merge that cannot be finished now).
    #[error("{device}: {message}")]
    Device { device: String, message: String },
    /// A snapshot set that cannot be taken, used or removed; the message names the set, the
    /// member and what was done about it.
    #[error("{0}")]
    Set(String),
    /// The configuration file (`rewind check-config`).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Lower layers' errors that carry their own context.
    #[error(transparent)]
    Change(Box<ChangeError>),
    #[error(transparent)]
    Model(Box<ModelError>),
    #[error(transparent)]
    Devices(#[from] DevicesError),
    #[error(transparent)]
    Steps(#[from] StepsError),
    #[error(transparent)]
    Exec(#[from] ExecError),
}

// Large sources are boxed (the error stays small on every `Result` path).
impl Error {
    /// `DmState` from the device-mapper's error.
    pub fn dm_state(e: DmError) -> Error {
        Error::DmState(Box::new(e))
    }

    /// `Selection` from the device selection's error.
    pub fn selection(e: DevselError) -> Error {
        Error::Selection(Box::new(e))
    }

    /// `Commit` of the change `what` to `vg`.
    pub fn commit(vg: &str, what: impl Into<String>, source: CommitVgError) -> Error {
        Error::Commit {
            vg: vg.to_owned(),
            what: what.into(),
            source: Box::new(source),
        }
    }
}

impl From<ChangeError> for Error {
    fn from(e: ChangeError) -> Self {
        Error::Change(Box::new(e))
    }
}

impl From<ModelError> for Error {
    fn from(e: ModelError) -> Self {
        Error::Model(Box::new(e))
    }
}
