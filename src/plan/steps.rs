//! Phase 2 of a plan: the device-mapper steps that take the live devices to the wanted ones.
//!
//! Devices are matched by name and UUID. A device that already shows the wanted table is
//! left alone (resumed if a crash left it suspended); one that shows another table is
//! reloaded (load, suspend, resume); a missing one is created. So running the steps, being
//! killed anywhere, and planning again from what is live converges on the same devices
//! (invariant 8). A name held by a device that is not LVM's, or an origin in use that would
//! need a new table, refuses that volume.

use crate::plan::dev::{DevNum, UdevRules};
use crate::plan::devices::{DeviceSpec, Role};
use crate::plan::table::{DevRef, Table, TableLine, Target};
use serde::Serialize;
use std::collections::HashMap;

/// One device-mapper operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Step {
    Create {
        name: String,
        uuid: String,
    },
    /// Into the inactive slot. Devices stacked on are named `/dev/mapper/NAME`.
    Load {
        name: String,
        #[serde(serialize_with = "ser_table")]
        table: Table,
    },
    Suspend {
        name: String,
    },
    Resume {
        name: String,
        #[serde(skip)]
        rules: UdevRules,
    },
}

fn ser_table<S: serde::Serializer>(t: &Table, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(t.lines.iter().map(ToString::to_string))
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Create { name, uuid } => write!(f, "create  {name} (uuid {uuid})"),
            Step::Load { name, table } => {
                write!(f, "load    {name}:")?;
                for line in &table.lines {
                    write!(f, " [{line}]")?;
                }
                Ok(())
            }
            Step::Suspend { name } => write!(f, "suspend {name}"),
            Step::Resume { name, .. } => write!(f, "resume  {name}"),
        }
    }
}

/// What is live about one device, as the planner needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    pub name: String,
    pub uuid: Option<String>,
    pub dev: DevNum,
    pub open_count: u32,
    pub suspended: bool,
    /// The live table, when the device has one.
    pub table: Option<Table>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepsError {
    #[error(
        "device-mapper device {name} exists with uuid {found:?}, not lvm's {wanted}; rewind leaves it alone"
    )]
    ForeignName {
        name: String,
        found: Option<String>,
        wanted: String,
    },
    #[error(
        "device-mapper uuid {uuid} belongs to device {found}, not {wanted}; rewind leaves it alone"
    )]
    ForeignUuid {
        uuid: String,
        found: String,
        wanted: String,
    },
    #[error("{name} is in use (open {open_count} time(s)) and would need a new table; not changed")]
    InUse { name: String, open_count: u32 },
}

/// Replaces every `/dev/mapper/NAME` in a table by that device's number, when known.
pub fn resolve(table: &Table, numbers: &HashMap<String, DevNum>) -> Option<Table> {
    let fix = |d: &DevRef| -> Option<DevRef> {
        match d {
            DevRef::Path(p) => p.strip_prefix("/dev/mapper/").map(|name| {
                numbers.get(name).map(|n| DevRef::Number {
                    major: n.major,
                    minor: n.minor,
                })
            })?,
            DevRef::Number { .. } => Some(d.clone()),
        }
    };
    let mut lines = Vec::with_capacity(table.lines.len());
    for line in &table.lines {
        let target = match &line.target {
            Target::Linear { dev, offset } => Target::Linear {
                dev: fix(dev)?,
                offset: *offset,
            },
            Target::Striped {
                chunk_sectors,
                stripes,
            } => {
                let mut s = stripes.clone();
                for stripe in &mut s {
                    stripe.dev = fix(&stripe.dev)?;
                }
                Target::Striped {
                    chunk_sectors: *chunk_sectors,
                    stripes: s,
                }
            }
            Target::SnapshotOrigin { origin } => Target::SnapshotOrigin {
                origin: fix(origin)?,
            },
            Target::Snapshot(a) | Target::SnapshotMerge(a) => {
                let mut args = a.clone();
                args.origin = fix(&a.origin)?;
                args.cow = fix(&a.cow)?;
                if matches!(line.target, Target::Snapshot(_)) {
                    Target::Snapshot(args)
                } else {
                    Target::SnapshotMerge(args)
                }
            }
            Target::ThinPool(a) => {
                let mut args = a.clone();
                args.metadata = fix(&a.metadata)?;
                args.data = fix(&a.data)?;
                Target::ThinPool(args)
            }
            Target::Thin { pool, device_id } => Target::Thin {
                pool: fix(pool)?,
                device_id: *device_id,
            },
            Target::Error => Target::Error,
        };
        lines.push(TableLine {
            start: line.start,
            length: line.length,
            target,
        });
    }
    Some(Table { lines })
}

/// The kernel reports a persistent store as `P` (or `PO` with overflow support); a table
/// loaded with `P` may read back as `PO`. Compare stores loosely.
pub fn same_table(a: &Table, b: &Table) -> bool {
    use crate::plan::table::Store;
    let norm = |t: &Table| {
        let mut t = t.clone();
        for line in &mut t.lines {
            if let Target::Snapshot(args) | Target::SnapshotMerge(args) = &mut line.target
                && args.store == Store::PersistentOverflow
            {
                args.store = Store::Persistent;
            }
        }
        t
    };
    norm(a) == norm(b)
}

/// The steps that make `wanted` (leaves first, as [`DeviceSpec`]s come from the layout) live.
pub fn converge(wanted: &[DeviceSpec], live: &[Live]) -> Result<Vec<Step>, StepsError> {
    let numbers: HashMap<String, DevNum> = live.iter().map(|l| (l.name.clone(), l.dev)).collect();
    let mut steps = Vec::new();
    for spec in wanted {
        if let Some(other) = live
            .iter()
            .find(|l| l.uuid.as_deref() == Some(spec.uuid.as_str()) && l.name != spec.name)
        {
            return Err(StepsError::ForeignUuid {
                uuid: spec.uuid.clone(),
                found: other.name.clone(),
                wanted: spec.name.clone(),
            });
        }
        let Some(current) = live.iter().find(|l| l.name == spec.name) else {
            steps.push(Step::Create {
                name: spec.name.clone(),
                uuid: spec.uuid.clone(),
            });
            steps.push(Step::Load {
                name: spec.name.clone(),
                table: spec.table.clone(),
            });
            steps.push(Step::Resume {
                name: spec.name.clone(),
                rules: spec.rules,
            });
            continue;
        };
        if current.uuid.as_deref() != Some(spec.uuid.as_str()) {
            return Err(StepsError::ForeignName {
                name: spec.name.clone(),
                found: current.uuid.clone(),
                wanted: spec.uuid.clone(),
            });
        }
        let shows_wanted = match (&current.table, resolve(&spec.table, &numbers)) {
            (Some(have), Some(want)) => same_table(have, &want),
            _ => false,
        };
        if shows_wanted {
            if current.suspended {
                steps.push(Step::Resume {
                    name: spec.name.clone(),
                    rules: spec.rules,
                });
            }
            continue;
        }
        // An open snapshot device may become the merging one (`--mode snapshot`): the kernel
        // hands its exception store over and the view stays the same. From any other table
        // the view would change under its user.
        let open_snapshot_to_merge = spec.role == Role::MergingAsSnapshot
            && current.table.as_ref().is_some_and(|t| {
                t.lines.len() == 1 && matches!(t.lines[0].target, Target::Snapshot(_))
            });
        if current.open_count > 0
            && (matches!(
                spec.role,
                Role::Origin
                    | Role::Plain
                    | Role::RetiredOrigin
                    | Role::Thin
                    | Role::ThinPool
                    | Role::PoolPart
            ) || (spec.role == Role::MergingAsSnapshot && !open_snapshot_to_merge))
        {
            return Err(StepsError::InUse {
                name: spec.name.clone(),
                open_count: current.open_count,
            });
        }
        steps.push(Step::Load {
            name: spec.name.clone(),
            table: spec.table.clone(),
        });
        if !current.suspended {
            steps.push(Step::Suspend {
                name: spec.name.clone(),
            });
        }
        steps.push(Step::Resume {
            name: spec.name.clone(),
            rules: spec.rules,
        });
    }
    Ok(steps)
}
