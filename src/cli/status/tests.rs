//! Golden tests for `rewind status --json` over recorded device-mapper states (the fake):
//! flagged, merging, done, merge failed, invalid, inactive. `REWIND_BLESS=1` rewrites them.

use super::*;
use crate::flow::status::collect;
use crate::lvm::assemble::FoundVg;
use crate::lvm::testvg;
use crate::plan::dev::PV_DEV;
use crate::plan::devices::VgLayout;
use crate::plan::steps::converge;
use crate::plan::table::SnapshotStatus;
use crate::system::dm::FakeDm;
use crate::system::exec::{execute, live};
use std::collections::BTreeMap;

/// `vg0`: `root` with snapshots `pre` (merging when `merging`) and `other`.
fn found(merging: bool) -> FoundVg {
    testvg::found(testvg::vg_text(
        "vg0",
        3,
        &[
            testvg::linear("root", "Root00", true, &[], &[(0, 10, 0)]),
            testvg::linear("pre", "Pre000", false, &[], &[(0, 4, 10)]),
            testvg::linear("other", "Other0", false, &[], &[(0, 4, 14)]),
            testvg::snapshot("snapshot0", "Snap00", "root", 10, 8, "pre", merging),
            testvg::snapshot("snapshot1", "Snap01", "root", 10, 16, "other", false),
        ],
    ))
}

/// The fake with root active as the metadata `active_as` lays it out.
fn fake(active_as: &FoundVg) -> FakeDm {
    let mut dm = FakeDm::new();
    dm.add_disk("/dev/vda", PV_DEV);
    let pvs = BTreeMap::from([("pv0".to_owned(), PV_DEV)]);
    let layout = VgLayout {
        vg: active_as.model.as_ref().expect("model"),
        pv_dev: &pvs,
    };
    let devs = layout.activation("root").expect("layout");
    let steps = converge(&devs, &live(&mut dm).expect("live")).expect("steps");
    execute(&mut dm, &steps).expect("execute");
    dm
}

fn golden(name: &str, report: &Report) {
    let json = serde_json::to_string_pretty(report).expect("json") + "\n";
    let path = format!(
        "{}/tests/fixtures/status/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    if std::env::var_os("REWIND_BLESS").is_some() {
        std::fs::create_dir_all(std::path::Path::new(&path).parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, &json).expect("write golden");
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(json, want, "{path} (REWIND_BLESS=1 rewrites it)");
}

fn usage(allocated: u64, total: u64, metadata: u64) -> SnapshotStatus {
    SnapshotStatus::Usage {
        allocated,
        total,
        metadata,
    }
}

fn run(vg: &FoundVg, dm: &mut FakeDm) -> Report {
    let l = live(dm).expect("live");
    collect(std::slice::from_ref(vg), &l, Some(dm))
}

#[test]
fn golden_flagged_for_next_boot() {
    // Active as plain snapshots (booted before the flag), the metadata now says merging.
    let mut dm = fake(&found(false));
    dm.set_snapshot_status("vg0-other", usage(2048, 32768, 32));
    dm.set_snapshot_status("vg0-pre", usage(4096, 32768, 32));
    let r = run(&found(true), &mut dm);
    assert_eq!(
        r.origins[0].snapshots[0].fill.as_ref().map(|f| f.percent),
        Some(12.5)
    );
    assert_eq!(r.origins[0].snapshots[0].state, State::Flagged);
    assert_eq!(r.exit_code(), 0);
    golden("flagged", &r);
}

#[test]
fn golden_merging_with_rate_and_done() {
    let vg = found(true);
    let mut dm = fake(&vg);
    dm.set_snapshot_status("vg0-root", usage(16400, 32768, 16));
    let before = run(&vg, &mut dm);
    dm.set_snapshot_status("vg0-root", usage(8208, 32768, 16));
    let mut r = run(&vg, &mut dm);
    add_rates(&mut r, &before, Duration::from_secs(2));
    let m = r.origins[0].snapshots[0].merge.clone().expect("merge");
    assert_eq!(m.bytes_left, 8192 * 512);
    assert_eq!(m.rate_bytes_per_s, Some(4096.0 * 512.0));
    assert_eq!(m.eta_s, Some(2.0));
    golden("merging", &r);
    dm.set_snapshot_status("vg0-root", usage(16, 32768, 16));
    let r = run(&vg, &mut dm);
    assert_eq!(r.origins[0].snapshots[0].state, State::Done);
    golden("done", &r);
}

#[test]
fn golden_failed_and_invalid_exit_3() {
    let vg = found(true);
    let mut dm = fake(&vg);
    dm.set_snapshot_status("vg0-root", SnapshotStatus::MergeFailed);
    dm.set_snapshot_status("vg0-other", SnapshotStatus::Invalid);
    let r = run(&vg, &mut dm);
    assert_eq!(r.exit_code(), EXIT_UNHEALTHY);
    golden("failed", &r);
    assert!(
        print_text(&r).contains("pre: MERGE FAILED"),
        "{}",
        print_text(&r)
    );
}

#[test]
fn golden_inactive() {
    let vg = found(true);
    let mut dm = FakeDm::new();
    let r = run(&vg, &mut dm);
    assert_eq!(r.origins[0].device, None);
    golden("inactive", &r);
    assert_eq!(
        print_text(&r),
        "vg0/root (inactive)\n  pre: flagged: merges back at the next activation of its origin (the next boot for root)\n  other: snapshot (inactive)\n"
    );
}

#[test]
fn watch_prints_each_sample_and_ends_when_the_merge_is_done() {
    let vg = found(true);
    let dm = std::cell::RefCell::new(fake(&vg));
    // The kernel's figures at each sample: copying, then done.
    let script = [
        usage(16400, 32768, 16),
        usage(8208, 32768, 16),
        usage(16, 32768, 16),
    ];
    let step = std::cell::Cell::new(0usize);
    let mut take = || {
        let mut d = dm.borrow_mut();
        d.set_snapshot_status("vg0-root", script[step.get()]);
        Ok(run(&vg, &mut d))
    };
    let mut report = take().expect("first sample");
    let mut sleeps = 0;
    let mut sleep = |d: Duration| {
        assert_eq!(d, Duration::from_secs(1));
        sleeps += 1;
        assert!(sleeps < 10, "watch does not end");
        step.set(step.get() + 1);
    };
    let t0 = std::time::Instant::now();
    let mut clock = || t0 + Duration::from_secs(step.get() as u64);
    let mut out = Vec::new();
    watch(&mut report, &mut take, &mut sleep, &mut clock, &mut out).expect("watch");
    let text = String::from_utf8(out).expect("utf8");
    assert_eq!(
        text,
        "vg0/root <- pre: merging, 49.95% merged, 8.0 MiB left\n\
         vg0/root <- pre: merging, 74.95% merged, 4.0 MiB left, 4.0 MiB/s, about 1 s to go\n\
         vg0/root <- pre: merged; rewind poll drops it from the metadata\n"
    );
    assert_eq!(sleeps, 2);
    assert_eq!(report.origins[0].snapshots[0].state, State::Done);
}

#[test]
fn watch_ends_on_a_failed_merge_a_vanished_snapshot_or_an_error() {
    let vg = found(true);
    let mut dm = fake(&vg);
    dm.set_snapshot_status("vg0-root", usage(16400, 32768, 16));
    let mut report = run(&vg, &mut dm);
    // The merge fails.
    dm.set_snapshot_status("vg0-root", SnapshotStatus::MergeFailed);
    let failed = run(&vg, &mut dm);
    let mut out = Vec::new();
    watch(
        &mut report.clone(),
        &mut || Ok(failed.clone()),
        &mut |_| {},
        &mut std::time::Instant::now,
        &mut out,
    )
    .expect("watch");
    let text = String::from_utf8(out).expect("utf8");
    assert!(text.ends_with("vg0/root <- pre: MERGE FAILED\n"), "{text}");
    // The snapshot gone from the metadata (LVM or rewind poll finished it).
    let mut out = Vec::new();
    watch(
        &mut report.clone(),
        &mut || Ok(Report::default()),
        &mut |_| {},
        &mut std::time::Instant::now,
        &mut out,
    )
    .expect("watch");
    let text = String::from_utf8(out).expect("utf8");
    assert!(
        text.ends_with("vg0/root <- pre: finished (the snapshot is gone from the metadata)\n"),
        "{text}"
    );
    // A sample that cannot be taken ends it with the error.
    let e = watch(
        &mut report,
        &mut || Err("cannot read device-mapper state: gone".into()),
        &mut |_| {},
        &mut std::time::Instant::now,
        &mut Vec::new(),
    )
    .expect_err("error");
    assert!(e.contains("gone"), "{e}");
    // Nothing merging: returns at once, prints nothing.
    let mut idle = run(&found(false), &mut FakeDm::new());
    let mut out = Vec::new();
    watch(
        &mut idle,
        &mut || panic!("no sample"),
        &mut |_| panic!("no wait"),
        &mut std::time::Instant::now,
        &mut out,
    )
    .expect("idle");
    assert!(out.is_empty());
}

/// A thin pool's fill (`tvg/pool`: 64 KiB chunks, 1280 of them), active with root as
/// `rewind early` activates it, and inactive; a full pool is unhealthy.
#[test]
fn golden_thin_pool_fill() {
    let vg = testvg::found(include_str!("../../../tests/fixtures/text/thin.vg").to_owned());
    let mut dm = FakeDm::new();
    dm.add_disk("/dev/vda", PV_DEV);
    dm.set_pool_status(
        "tvg-pool-tpool",
        "3 100/1024 640/1280 - rw discard_passdown queue_if_no_space - 256",
    );
    let pvs = BTreeMap::from([("pv0".to_owned(), PV_DEV)]);
    let layout = VgLayout {
        vg: vg.model.as_ref().expect("model"),
        pv_dev: &pvs,
    };
    let devs = layout.activation("root").expect("layout");
    let steps = converge(&devs, &live(&mut dm).expect("live")).expect("steps");
    execute(&mut dm, &steps).expect("execute");
    let r = run(&vg, &mut dm);
    golden("thin-pool", &r);
    let p = &r.pools[0];
    let k = p.kernel.as_ref().expect("kernel");
    let data = k.data.as_ref().expect("data");
    assert_eq!(
        (data.allocated_bytes, data.total_bytes, data.percent),
        (40 << 20, 80 << 20, 50.0)
    );
    let meta = k.metadata.as_ref().expect("metadata");
    assert_eq!(
        (meta.allocated_bytes, meta.total_bytes),
        (100 * 4096, 1024 * 4096)
    );
    assert_eq!(r.exit_code(), 0);
    let text = print_text(&r);
    assert!(
        text.contains(
            "thin pool tvg/pool (active as tvg-pool-tpool: data 50.00% full (40.0 MiB of 80.0 MiB), metadata 9.77% full"
        ),
        "{text}"
    );
    // Full: every thin volume in it stops taking writes.
    dm.set_pool_status(
        "tvg-pool-tpool",
        "3 100/1024 1280/1280 - out_of_data_space discard_passdown queue_if_no_space - 256",
    );
    let r = run(&vg, &mut dm);
    assert_eq!(r.exit_code(), 3);
    assert!(
        print_text(&r).contains("OUT OF DATA SPACE"),
        "{}",
        print_text(&r)
    );
    dm.set_pool_status("tvg-pool-tpool", "Fail");
    let r = run(&vg, &mut dm);
    assert_eq!(r.exit_code(), 3);
    assert!(print_text(&r).contains("FAILED"));
    // Inactive: the metadata's view.
    let r = collect(std::slice::from_ref(&vg), &[], None);
    assert_eq!(r.pools[0].device, None);
    assert_eq!(r.pools[0].transaction_id, 3);
    assert!(print_text(&r).contains("thin pool tvg/pool (inactive)"));
    assert_eq!(r.exit_code(), 0);
}
