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

fn run_steps(dm: &mut dyn DeviceMapper, steps: &[Step]) -> Result<(), ExecError> {
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
            Step::Suspend { name } => dm.suspend(name).map_err(fail)?,
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
mod tests {
    use super::*;
    use crate::plan::dev::UdevRules;
    use crate::plan::table::{StatusLine, Table};
    use crate::system::dm::{Call, DeviceState, FAKE_DM_MAJOR, FakeDm, Slot, UdevWait};
    use std::time::Duration;

    /// A FakeDm that notes, at each `udev_sync`, how many calls had been made by then.
    struct Syncing {
        fake: FakeDm,
        synced_at: Vec<usize>,
    }

    impl DeviceMapper for Syncing {
        fn list(&mut self) -> Result<Vec<DeviceState>, DmError> {
            self.fake.list()
        }
        fn info(&mut self, name: &str) -> Result<Option<DeviceState>, DmError> {
            self.fake.info(name)
        }
        fn create(&mut self, name: &str, uuid: &str) -> Result<DevNum, DmError> {
            self.fake.create(name, uuid)
        }
        fn load(&mut self, name: &str, table: &Table) -> Result<(), DmError> {
            self.fake.load(name, table)
        }
        fn suspend(&mut self, name: &str) -> Result<(), DmError> {
            self.fake.suspend(name)
        }
        fn resume(&mut self, name: &str, rules: UdevRules) -> Result<(), DmError> {
            self.fake.resume(name, rules)
        }
        fn remove(&mut self, name: &str, rules: UdevRules) -> Result<(), DmError> {
            self.fake.remove(name, rules)
        }
        fn table(&mut self, name: &str, slot: Slot) -> Result<Table, DmError> {
            self.fake.table(name, slot)
        }
        fn status(&mut self, name: &str) -> Result<Vec<StatusLine>, DmError> {
            self.fake.status(name)
        }
        fn wait_for_udev(&mut self, timeout: Duration) -> Result<UdevWait, DmError> {
            self.fake.wait_for_udev(timeout)
        }
        fn udev_sync(&mut self) -> Result<(), DmError> {
            self.synced_at.push(self.fake.calls().len());
            Ok(())
        }
    }

    /// A recording fake with the disk `linear_on_disk` maps (`/dev/sdb`, 8:16).
    fn syncing_with_disk() -> Syncing {
        let mut dm = Syncing {
            fake: FakeDm::new(),
            synced_at: Vec::new(),
        };
        dm.fake.add_disk(
            "/dev/sdb",
            DevNum {
                major: 8,
                minor: 16,
            },
        );
        dm
    }

    fn linear_on_disk() -> Table {
        Table::from_tuples(&[(0, 2048, "linear".into(), "8:16 2048".into())]).expect("table")
    }

    #[test]
    fn udev_is_waited_for_once_after_the_last_step_also_when_a_step_fails() {
        let mut dm = syncing_with_disk();
        let steps = vec![
            Step::Create {
                name: "vg-a".into(),
                uuid: "LVM-a".into(),
            },
            Step::Load {
                name: "vg-a".into(),
                table: linear_on_disk(),
            },
            Step::Resume {
                name: "vg-a".into(),
                rules: UdevRules::All,
            },
            Step::Create {
                name: "vg-b".into(),
                uuid: "LVM-b".into(),
            },
            Step::Load {
                name: "vg-b".into(),
                table: linear_on_disk(),
            },
            Step::Resume {
                name: "vg-b".into(),
                rules: UdevRules::All,
            },
        ];
        execute(&mut dm, &steps).expect("plan runs");
        let calls = dm.fake.calls().len();
        assert_eq!(
            dm.synced_at,
            [calls],
            "one wait, after every call of the plan"
        );
        assert!(matches!(
            dm.fake.calls().last(),
            Some(Call::Resume { name, .. }) if name == "vg-b"
        ));
        assert_eq!(
            dm.fake.info("vg-b").expect("info").map(|s| s.dev.major),
            Some(FAKE_DM_MAJOR)
        );

        // A plan that fails half-way still waits for udev's part of what it did resume.
        let mut dm = syncing_with_disk();
        let failing = vec![
            steps[0].clone(),
            steps[1].clone(),
            steps[2].clone(),
            Step::Resume {
                name: "vg-missing".into(),
                rules: UdevRules::All,
            },
            steps[3].clone(),
        ];
        let err = execute(&mut dm, &failing).expect_err("resume of a missing device fails");
        assert!(matches!(err, ExecError::Dm { index: 3, .. }), "{err}");
        let calls = dm.fake.calls().len();
        assert_eq!(dm.synced_at, [calls]);
        assert!(
            !dm.fake
                .calls()
                .iter()
                .any(|c| matches!(c, Call::Create { name, .. } if name == "vg-b")),
            "no step after the failed one ran"
        );
    }
}
