//! The real implementation: the kernel's device-mapper through the devicemapper crate. Every
//! call that may take a udev cookie (resume, remove) goes through `udev`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::udev::{PendingWait, UdevPresence, remove_call};
use super::{DeviceMapper, DeviceState, DmError, Slot, UdevWait};
use crate::plan::dev::{DevNum, UdevRules};
use crate::plan::table::{StatusLine, Table};

/// The kernel's device-mapper, through the devicemapper crate.
pub struct RealDm {
    pub(super) dm: Arc<devicemapper::DM>,
    pub(super) udev_timeout: Duration,
    /// What the probe of `/run/udev/control` found (at the first cookie call; again when the
    /// file appears or goes away).
    pub(super) udev: Option<UdevPresence>,
    /// Resumes done by the kernel whose udev wait is still running on a worker thread.
    pub(super) pending: Vec<PendingWait>,
    /// Whether udev has device-mapper's rules (`nodes::dm_rules_installed`), read at the first
    /// cookie call that finds udev listening, or before the first suspend.
    pub(super) dm_rules: Option<bool>,
    /// Whether the info line about a udev without those rules was logged.
    pub(super) told_no_rules: bool,
}

impl fmt::Debug for RealDm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RealDm")
            .field("udev_timeout", &self.udev_timeout)
            .field("udev", &self.udev)
            .field("pending", &self.pending.len())
            .field("dm_rules", &self.dm_rules)
            .finish_non_exhaustive()
    }
}

/// The errno of a failed ioctl, if that is what failed.
fn errno_of(e: &devicemapper::DmError) -> Option<nix::errno::Errno> {
    match e {
        devicemapper::DmError::Core(devicemapper::errors::Error::Ioctl(_, _, _, errno)) => {
            Some(**errno)
        }
        _ => None,
    }
}

pub(super) fn kernel_err(name: &str, op: &'static str, e: &devicemapper::DmError) -> DmError {
    match errno_of(e) {
        Some(nix::errno::Errno::ENXIO) => {
            return DmError::NoSuchDevice {
                name: name.to_owned(),
            };
        }
        Some(nix::errno::Errno::EBUSY) if op == "remove" => {
            // The open count is filled in by the caller.
            return DmError::Busy {
                name: name.to_owned(),
                open_count: 0,
            };
        }
        _ => {}
    }
    DmError::Kernel {
        name: name.to_owned(),
        op,
        message: e.to_string(),
    }
}

impl RealDm {
    /// Opens `/dev/mapper/control`. `udev_timeout` bounds each wait for udev.
    pub fn new(udev_timeout: Duration) -> Result<Self, DmError> {
        let dm = devicemapper::DM::new().map_err(|e| DmError::Control(e.to_string()))?;
        Ok(RealDm {
            dm: Arc::new(dm),
            udev_timeout,
            udev: None,
            pending: Vec::new(),
            dm_rules: None,
            told_no_rules: false,
        })
    }

    pub(super) fn id(name: &str) -> Result<&devicemapper::DmName, DmError> {
        devicemapper::DmName::new(name).map_err(|e| DmError::Kernel {
            name: name.to_owned(),
            op: "name check",
            message: e.to_string(),
        })
    }

    pub(super) fn state(info: &devicemapper::DeviceInfo, fallback: &str) -> DeviceState {
        use devicemapper::DmFlags as F;
        let flags = info.flags();
        DeviceState {
            name: info
                .name()
                .map_or_else(|| fallback.to_owned(), |n| n.to_string()),
            uuid: info.uuid().map(|u| u.to_string()),
            dev: DevNum {
                major: info.device().major,
                minor: info.device().minor,
            },
            open_count: u32::try_from(info.open_count()).unwrap_or(0),
            suspended: flags.contains(F::DM_SUSPEND),
            live_table: flags.contains(F::DM_ACTIVE_PRESENT),
            inactive_table: flags.contains(F::DM_INACTIVE_PRESENT),
        }
    }
}

impl DeviceMapper for RealDm {
    fn list(&mut self) -> Result<Vec<DeviceState>, DmError> {
        let names = self
            .dm
            .list_devices()
            .map_err(|e| kernel_err("(all)", "list", &e))?;
        let mut out = Vec::new();
        for (name, _, _) in names {
            // A device removed between list and info is simply skipped.
            if let Some(s) = self.info(&name.to_string())? {
                out.push(s);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn info(&mut self, name: &str) -> Result<Option<DeviceState>, DmError> {
        match self
            .dm
            .device_info(&devicemapper::DevId::Name(Self::id(name)?))
        {
            Ok(info) => Ok(Some(Self::state(&info, name))),
            Err(e) => match kernel_err(name, "info", &e) {
                DmError::NoSuchDevice { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    fn create(&mut self, name: &str, uuid: &str) -> Result<DevNum, DmError> {
        let dm_uuid = devicemapper::DmUuid::new(uuid).map_err(|e| DmError::Kernel {
            name: name.to_owned(),
            op: "uuid check",
            message: e.to_string(),
        })?;
        let info = self
            .dm
            .device_create(
                Self::id(name)?,
                Some(dm_uuid),
                devicemapper::DmOptions::default(),
            )
            .map_err(|e| {
                if errno_of(&e) == Some(nix::errno::Errno::EBUSY) {
                    DmError::Exists {
                        name: name.to_owned(),
                        uuid: uuid.to_owned(),
                    }
                } else {
                    kernel_err(name, "create", &e)
                }
            })?;
        Ok(DevNum {
            major: info.device().major,
            minor: info.device().minor,
        })
    }

    fn load(&mut self, name: &str, table: &Table) -> Result<(), DmError> {
        table.check().map_err(|source| DmError::BadTable {
            name: name.to_owned(),
            source,
        })?;
        self.dm
            .table_load(
                &devicemapper::DevId::Name(Self::id(name)?),
                &table.to_tuples(),
                devicemapper::DmOptions::default(),
            )
            .map(|_| ())
            .map_err(|e| kernel_err(name, "load", &e))
    }

    fn suspend(&mut self, name: &str) -> Result<(), DmError> {
        // udev must not be reading a device while it is suspended (its blkid would hang until
        // the resume): finish udev's part of earlier resumes first, as LVM syncs its device
        // names before suspending.
        self.sync_pending()?;
        // Decide now how the resume will treat udev: that reads udev's rules directories,
        // which may live on the very filesystem this suspend freezes (the root, in the booted
        // system). A read from a suspended device never returns: read nothing until it resumes.
        let _ = self.presence();
        self.has_dm_rules();
        // With DM_SUSPEND set the crate takes no udev cookie.
        let options =
            devicemapper::DmOptions::default().set_flags(devicemapper::DmFlags::DM_SUSPEND);
        self.dm
            .device_suspend(&devicemapper::DevId::Name(Self::id(name)?), options)
            .map(|_| ())
            .map_err(|e| kernel_err(name, "suspend", &e))
    }

    fn clear(&mut self, name: &str) -> Result<(), DmError> {
        self.dm
            .table_clear(&devicemapper::DevId::Name(Self::id(name)?))
            .map(|_| ())
            .map_err(|e| kernel_err(name, "clear", &e))
    }

    fn resume(&mut self, name: &str, rules: UdevRules) -> Result<(), DmError> {
        self.resume_deferred(name, rules)
    }

    fn remove(&mut self, name: &str, rules: UdevRules) -> Result<(), DmError> {
        // udev may still be reading a device resumed earlier: let it finish first.
        self.sync_pending()?;
        match self.cookie_call(name, "remove", rules, remove_call) {
            Err(DmError::Busy { .. }) => {
                // Still open after the crate's retries: report who holds it, as far as we know.
                let open_count = self.info(name)?.map_or(0, |s| s.open_count);
                Err(DmError::Busy {
                    name: name.to_owned(),
                    open_count,
                })
            }
            other => other,
        }
    }

    fn table(&mut self, name: &str, slot: Slot) -> Result<Table, DmError> {
        use devicemapper::DmFlags as F;
        let flags = match slot {
            Slot::Live => F::DM_STATUS_TABLE,
            Slot::Inactive => F::DM_STATUS_TABLE | F::DM_QUERY_INACTIVE_TABLE,
        };
        let (_, lines) = self
            .dm
            .table_status(
                &devicemapper::DevId::Name(Self::id(name)?),
                devicemapper::DmOptions::default().set_flags(flags),
            )
            .map_err(|e| kernel_err(name, "table", &e))?;
        Table::from_tuples(&lines).map_err(|source| DmError::ReadTable {
            name: name.to_owned(),
            source,
        })
    }

    fn status(&mut self, name: &str) -> Result<Vec<StatusLine>, DmError> {
        let (_, lines) = self
            .dm
            .table_status(
                &devicemapper::DevId::Name(Self::id(name)?),
                devicemapper::DmOptions::default().set_flags(devicemapper::DmFlags::DM_NOFLUSH),
            )
            .map_err(|e| kernel_err(name, "status", &e))?;
        Ok(lines
            .into_iter()
            .map(|(start, length, target_type, params)| StatusLine {
                start,
                length,
                target_type,
                params,
            })
            .collect())
    }

    fn message(&mut self, name: &str, message: &str) -> Result<(), DmError> {
        self.dm
            .target_msg(
                &devicemapper::DevId::Name(Self::id(name)?),
                Some(0),
                message,
            )
            .map_err(|e| {
                if errno_of(&e) == Some(nix::errno::Errno::ENODATA) {
                    DmError::NoData {
                        name: name.to_owned(),
                        message: message.to_owned(),
                    }
                } else {
                    kernel_err(name, "message", &e)
                }
            })?;
        Ok(())
    }

    fn wait_for_udev(&mut self, timeout: Duration) -> Result<UdevWait, DmError> {
        self.wait_for_queue(timeout)
    }

    fn udev_sync(&mut self) -> Result<(), DmError> {
        self.sync_pending()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn real_dm_without_kernel_support_is_an_error() {
        // This host has no device-mapper: opening the control node must fail cleanly.
        if !Path::new("/dev/mapper/control").exists() {
            assert!(matches!(
                RealDm::new(Duration::from_secs(1)),
                Err(DmError::Control(_))
            ));
        }
    }
}
