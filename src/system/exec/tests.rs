//! The executor: one udev wait per plan, and plans run against the recording fake, killed
//! after every step and run again (invariant 8), with the planner's test VGs.

use super::*;
use crate::plan::dev::PV_DEV;
use crate::plan::dev::UdevRules;
use crate::plan::devices::VgLayout;
use crate::plan::steps::{StepsError, converge};
use crate::plan::table::Target;
use crate::plan::table::{StatusLine, Table};
use crate::plan::tests::{found, merge_specs, pv_map, solo, specs_of};
use crate::system::dm::{Call, DeviceState, FAKE_DM_MAJOR, FakeDm, Slot, UdevWait};
use std::collections::BTreeMap;
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
    fn clear(&mut self, name: &str) -> Result<(), DmError> {
        self.fake.clear(name)
    }
    fn message(&mut self, name: &str, message: &str) -> Result<(), DmError> {
        self.fake.message(name, message)
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

fn fake() -> FakeDm {
    let mut dm = FakeDm::new();
    dm.add_disk("/dev/vda", PV_DEV);
    dm
}

/// Every live table, resolved, by name.
fn snapshot_of(dm: &mut FakeDm) -> BTreeMap<String, (Option<String>, String)> {
    live(dm)
        .expect("live")
        .into_iter()
        .map(|l| {
            (
                l.name,
                (l.uuid, l.table.map(|t| t.to_string()).unwrap_or_default()),
            )
        })
        .collect()
}

#[test]
fn executor_builds_the_merge_and_a_second_plan_is_empty() {
    let specs = merge_specs();
    let mut dm = fake();
    let steps = converge(&specs, &live(&mut dm).expect("live")).expect("converge");
    assert_eq!(steps.len(), 3 * specs.len());
    execute(&mut dm, &steps).expect("execute");
    let state = snapshot_of(&mut dm);
    assert_eq!(state.len(), 6);
    let root = &state["vg--0-my--root"].1;
    assert!(root.starts_with("0 122880 snapshot-merge 253:"), "{root}");
    assert_eq!(state["vg--0-pre"].1, "0 122880 error\n");
    let again = converge(&specs, &live(&mut dm).expect("live")).expect("converge");
    assert_eq!(again, Vec::<Step>::new(), "nothing left to do");
}

#[test]
fn killed_after_every_step_and_rerun_converges() {
    let specs = merge_specs();
    let mut reference = fake();
    let steps = converge(&specs, &live(&mut reference).expect("live")).expect("converge");
    execute(&mut reference, &steps).expect("execute");
    let want = snapshot_of(&mut reference);
    for n in 0..steps.len() {
        let mut dm = fake();
        dm.crash_after(n);
        let first = converge(&specs, &live(&mut dm).expect("live")).expect("converge");
        assert!(execute(&mut dm, &first).is_err(), "crash after {n} steps");
        dm.restart();
        let rest = converge(&specs, &live(&mut dm).expect("live")).expect("replan");
        execute(&mut dm, &rest).unwrap_or_else(|e| panic!("rerun after {n}: {e}"));
        assert_eq!(
            snapshot_of(&mut dm),
            want,
            "state after a crash at step {n}"
        );
        let none = converge(&specs, &live(&mut dm).expect("live")).expect("converge");
        assert!(none.is_empty(), "after a crash at step {n}: {none:?}");
    }
}

#[test]
fn plain_origin_left_by_lvm_is_reloaded_into_the_merge() {
    // As if something had activated the origin plain (no merge) before rewind ran.
    let vg = found(false);
    let pvs = pv_map();
    let plain = VgLayout {
        vg: vg.model.as_ref().expect("model"),
        pv_dev: &pvs,
    };
    let before = plain.activation("my-root").expect("layout");
    let mut dm = fake();
    let first = converge(&before, &live(&mut dm).expect("live")).expect("converge");
    execute(&mut dm, &first).expect("execute");
    let specs = merge_specs();
    let steps = converge(&specs, &live(&mut dm).expect("live")).expect("converge");
    let on_root: Vec<_> = steps
        .iter()
        .filter(|s| matches!(s, Step::Load { name, .. } | Step::Suspend { name } | Step::Resume { name, .. } if name == "vg--0-my--root"))
        .collect();
    assert_eq!(on_root.len(), 3, "load, suspend, resume: {steps:?}");
    execute(&mut dm, &steps).expect("execute");
    assert!(
        snapshot_of(&mut dm)["vg--0-my--root"]
            .1
            .contains("snapshot-merge")
    );
}

#[test]
fn foreign_device_name_and_origin_in_use_refuse() {
    let specs = merge_specs();
    let mut dm = fake();
    dm.create("vg--0-my--root-real", "CRYPT-not-lvm")
        .expect("create");
    let err = converge(&specs, &live(&mut dm).expect("live")).expect_err("foreign");
    assert!(matches!(err, StepsError::ForeignName { .. }), "{err}");

    let vg = found(false);
    let pvs = pv_map();
    let plain = VgLayout {
        vg: vg.model.as_ref().expect("model"),
        pv_dev: &pvs,
    };
    let mut dm = fake();
    let before = plain.activation("my-root").expect("layout");
    let first = converge(&before, &live(&mut dm).expect("live")).expect("converge");
    execute(&mut dm, &first).expect("execute");
    dm.set_holders("vg--0-my--root", 1);
    let err = converge(&specs, &live(&mut dm).expect("live")).expect_err("in use");
    assert!(err.to_string().contains("in use"), "{err}");
}

#[test]
fn snapshot_mode_reloads_the_open_snapshot_and_refuses_an_open_origin() {
    let plain = specs_of(&solo(false));
    let merge = specs_of(&solo(true));
    let setup = |dm: &mut FakeDm| {
        let s = converge(&plain, &live(dm).expect("live")).expect("converge");
        execute(dm, &s).expect("execute");
    };
    // The snapshot mounted, the origin unused: allowed.
    let mut dm = fake();
    setup(&mut dm);
    dm.set_holders("vg--0-pre", 1);
    let steps = converge(&merge, &live(&mut dm).expect("live")).expect("open snapshot is fine");
    let loads: Vec<&str> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Load { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        loads,
        ["vg--0-my--root", "vg--0-pre"],
        "error first, then the merge"
    );
    execute(&mut dm, &steps).expect("execute");
    let st = snapshot_of(&mut dm);
    assert_eq!(st["vg--0-my--root"].1, "0 122880 error\n");
    assert!(
        st["vg--0-pre"]
            .1
            .starts_with("0 122880 snapshot-merge 253:"),
        "{}",
        st["vg--0-pre"].1
    );
    assert!(
        converge(&merge, &live(&mut dm).expect("live"))
            .expect("again")
            .is_empty()
    );

    // The origin open: refused, nothing planned.
    let mut dm = fake();
    setup(&mut dm);
    dm.set_holders("vg--0-my--root", 1);
    let err = converge(&merge, &live(&mut dm).expect("live")).expect_err("origin in use");
    assert!(err.to_string().contains("in use"), "{err}");

    // An open snapshot device showing something other than its snapshot: refused.
    let mut dm = fake();
    setup(&mut dm);
    let err_table = Table::single(15 * 8192, Target::Error);
    dm.load("vg--0-pre", &err_table).expect("load");
    dm.suspend("vg--0-pre").expect("suspend");
    dm.resume("vg--0-pre", UdevRules::DmOnly).expect("resume");
    dm.set_holders("vg--0-pre", 1);
    let err = converge(&merge, &live(&mut dm).expect("live")).expect_err("not a snapshot");
    assert!(err.to_string().contains("in use"), "{err}");
}

#[test]
fn snapshot_mode_killed_after_every_step_converges() {
    let plain = specs_of(&solo(false));
    let merge = specs_of(&solo(true));
    let setup = |dm: &mut FakeDm| {
        let s = converge(&plain, &live(dm).expect("live")).expect("converge");
        execute(dm, &s).expect("execute");
        dm.set_holders("vg--0-pre", 1);
        dm.clear_calls();
    };
    let mut reference = fake();
    setup(&mut reference);
    let steps = converge(&merge, &live(&mut reference).expect("live")).expect("converge");
    execute(&mut reference, &steps).expect("execute");
    let want = snapshot_of(&mut reference);
    for n in 0..steps.len() {
        let mut dm = fake();
        setup(&mut dm);
        dm.crash_after(n);
        let first = converge(&merge, &live(&mut dm).expect("live")).expect("converge");
        assert!(execute(&mut dm, &first).is_err(), "crash after {n}");
        dm.restart();
        let rest = converge(&merge, &live(&mut dm).expect("live")).expect("replan");
        execute(&mut dm, &rest).unwrap_or_else(|e| panic!("rerun after {n}: {e}"));
        assert_eq!(snapshot_of(&mut dm), want, "after a crash at step {n}");
    }
    // From nothing (the next boot's rewind early): the same devices.
    let mut dm = fake();
    let s = converge(&merge, &live(&mut dm).expect("live")).expect("converge");
    execute(&mut dm, &s).expect("execute");
    let fresh = snapshot_of(&mut dm);
    assert_eq!(
        fresh.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    assert_eq!(fresh["vg--0-my--root"], want["vg--0-my--root"]);
}
