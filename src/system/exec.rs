//! Runs a plan's device-mapper steps through the [`DeviceMapper`] boundary.
//!
//! Tables in a plan name the devices they stack on as `/dev/mapper/NAME`; here those become
//! device numbers (from the live devices and from each create), so no device node has to exist.

use crate::plan::dev::DevNum;
use crate::plan::steps::{Step, resolve};
use crate::system::dm::{DeviceMapper, DmError};
use std::collections::HashMap;

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("step {index} ({step}): {source}")]
    Dm {
        index: usize,
        step: String,
        source: Box<DmError>,
    },
    #[error("step {index} ({step}): a device it stacks on is not there")]
    Unresolved { index: usize, step: String },
}

/// Runs `steps` in order; stops at the first failure (running the plan again, re-planned from
/// what is live, takes it from there). Returns once udev has processed the plan's devices
/// (`DeviceMapper::udev_sync`: one wait for the whole plan, as LVM waits once per tree).
pub fn execute(dm: &mut dyn DeviceMapper, steps: &[Step]) -> Result<(), ExecError> {
    let result = run_steps(dm, steps);
    let synced = dm.udev_sync();
    result?;
    synced.map_err(|source| ExecError::Dm {
        index: steps.len(),
        step: "wait for udev".into(),
        source: Box::new(source),
    })
}

/// The process's pages held in memory from a plan's first suspend to its end, as LVM locks its
/// memory around a suspend (`lib/mm/memlock.c`): a page of this binary not yet read in would
/// otherwise be read from a filesystem that may be on the device just suspended (the root, in
/// the booted system), and that read would never return. Dropping it unlocks.
struct MemLock;

impl MemLock {
    fn take() -> Option<MemLock> {
        use nix::sys::mman::{MlockAllFlags, mlockall};
        match mlockall(MlockAllFlags::MCL_CURRENT) {
            Ok(()) => Some(MemLock),
            Err(e) => {
                // Not fatal: the pages are almost always in the page cache already.
                log::warn!("could not lock memory before suspending (mlockall: {e})");
                None
            }
        }
    }
}

impl Drop for MemLock {
    fn drop(&mut self) {
        let _ = nix::sys::mman::munlockall();
    }
}

fn run_steps(dm: &mut dyn DeviceMapper, steps: &[Step]) -> Result<(), ExecError> {
    let mut memlock = None;
    let mut numbers: HashMap<String, DevNum> = dm
        .list()
        .map_err(|source| ExecError::Dm {
            index: 0,
            step: "list devices".into(),
            source: Box::new(source),
        })?
        .into_iter()
        .map(|d| (d.name, d.dev))
        .collect();
    for (index, step) in steps.iter().enumerate() {
        let fail = |source| ExecError::Dm {
            index,
            step: step.to_string(),
            source: Box::new(source),
        };
        log::debug!("step {index}: {step}");
        match step {
            Step::Create { name, uuid } => {
                let dev = dm.create(name, uuid).map_err(fail)?;
                numbers.insert(name.clone(), dev);
            }
            Step::Load { name, table } => {
                let table = resolve(table, &numbers).ok_or_else(|| ExecError::Unresolved {
                    index,
                    step: step.to_string(),
                })?;
                dm.load(name, &table).map_err(fail)?;
            }
            Step::Suspend { name } => {
                if memlock.is_none() {
                    memlock = MemLock::take();
                }
                dm.suspend(name).map_err(fail)?
            }
            Step::Resume { name, rules } => dm.resume(name, *rules).map_err(fail)?,
        }
    }
    Ok(())
}

/// What is live, with each device's live table, in the form the planner takes.
pub fn live(dm: &mut dyn DeviceMapper) -> Result<Vec<crate::plan::steps::Live>, DmError> {
    let mut out = Vec::new();
    for d in dm.list()? {
        let table = if d.live_table {
            Some(dm.table(&d.name, crate::system::dm::Slot::Live)?)
        } else {
            None
        };
        out.push(crate::plan::steps::Live {
            name: d.name,
            uuid: d.uuid,
            dev: d.dev,
            open_count: d.open_count,
            suspended: d.suspended,
            table,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
