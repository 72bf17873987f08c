//! Planner tests: decisions and LVM's device layout. The executor against the recording fake
//! (killed after every step and run again, invariant 8) is tested in `system::exec` with
//! these test VGs.

use crate::lvm::assemble::FoundVg;
use crate::lvm::layout::LvRef;
use crate::lvm::model::{Snapshot, Vg};
use crate::lvm::testvg;
use crate::plan::cmdline::Cmdline;
use crate::plan::decide::{Level, Reason, decide};
use crate::plan::dev::PV_DEV;
use crate::plan::dev::{DevNum, UdevRules};
use crate::plan::devices::{Role, VgLayout};
use crate::plan::table::{DevRef, Table, Target};
use std::collections::BTreeMap;

/// A VG `vg-0` on one PV: `my-root` (two segments) with snapshots `pre` (merging when
/// `merging`) and `other`, and a plain `data`.
pub(crate) fn found(merging: bool) -> FoundVg {
    testvg::found(testvg::vg_text(
        "vg-0",
        7,
        &[
            testvg::linear("my-root", "Root00", true, &[], &[(0, 10, 0), (10, 5, 40)]),
            testvg::linear(
                "pre",
                "Pre000",
                false,
                &["rewind_set_upgrade"],
                &[(0, 4, 10)],
            ),
            testvg::linear("other", "Other0", false, &[], &[(0, 4, 14)]),
            testvg::linear("data", "Data00", true, &[], &[(0, 2, 20)]),
            testvg::snapshot("snapshot0", "Snap00", "my-root", 15, 8, "pre", merging),
            testvg::snapshot("snapshot1", "Snap01", "my-root", 15, 16, "other", false),
        ],
    ))
}

pub(crate) fn pv_map() -> BTreeMap<String, DevNum> {
    BTreeMap::from([("pv0".to_owned(), PV_DEV)])
}

/// A valid COW header with the chunk size the metadata records.
fn valid_cow(_: &FoundVg, s: &Snapshot) -> Result<Vec<u8>, String> {
    let mut b = Vec::new();
    for x in [
        0x7041_6e53u32,
        1,
        1,
        u32::try_from(s.chunk_size).unwrap_or(0),
    ] {
        b.extend_from_slice(&x.to_le_bytes());
    }
    Ok(b)
}

fn invalid_cow(_: &FoundVg, _: &Snapshot) -> Result<Vec<u8>, String> {
    let mut b = Vec::new();
    for x in [0x7041_6e53u32, 0, 1, 8] {
        b.extend_from_slice(&x.to_le_bytes());
    }
    Ok(b)
}

fn assembly(vgs: Vec<FoundVg>) -> crate::lvm::assemble::Assembly {
    crate::lvm::assemble::Assembly {
        vgs,
        ..Default::default()
    }
}

pub(crate) fn merge_specs() -> Vec<crate::plan::devices::DeviceSpec> {
    let vg = found(true);
    let pvs = pv_map();
    let layout = VgLayout {
        vg: vg.model.as_ref().expect("model"),
        pv_dev: &pvs,
    };
    layout.activation("my-root").expect("layout")
}

fn mapper(name: &str) -> DevRef {
    DevRef::Path(format!("/dev/mapper/{name}"))
}

#[test]
fn merging_origin_gets_lvms_layout() {
    let specs = merge_specs();
    let names: Vec<(&str, Role)> = specs.iter().map(|s| (s.name.as_str(), s.role)).collect();
    assert_eq!(
        names,
        [
            ("vg--0-my--root-real", Role::Real),
            ("vg--0-pre-cow", Role::Cow),
            ("vg--0-other-cow", Role::Cow),
            ("vg--0-pre", Role::MergingSnapshot),
            ("vg--0-other", Role::Snapshot),
            ("vg--0-my--root", Role::Origin),
        ]
    );
    let by = |n: &str| specs.iter().find(|s| s.name == n).expect(n);
    // -real: the origin's two segments at pe_start + pe * extent_size.
    assert_eq!(
        by("vg--0-my--root-real").table.to_string(),
        "0 81920 linear 254:0 2048\n81920 40960 linear 254:0 329728\n"
    );
    assert_eq!(
        by("vg--0-pre-cow").table.to_string(),
        "0 32768 linear 254:0 83968\n"
    );
    assert_eq!(
        by("vg--0-my--root").table.lines[0].target,
        Target::SnapshotMerge(crate::plan::table::SnapshotArgs::persistent(
            mapper("vg--0-my--root-real"),
            mapper("vg--0-pre-cow"),
            8
        ))
    );
    assert_eq!(by("vg--0-my--root").table.length(), 15 * 8192);
    assert_eq!(
        by("vg--0-pre").table,
        Table::single(15 * 8192, Target::Error)
    );
    // Hidden devices get only the /dev/mapper udev rules (no blkid on the error target).
    assert_eq!(by("vg--0-pre").rules, UdevRules::DmOnly);
    assert_eq!(by("vg--0-other").rules, UdevRules::LowPriority);
    assert_eq!(by("vg--0-my--root").rules, UdevRules::All);
    assert_eq!(
        by("vg--0-other").table.lines[0].target,
        Target::Snapshot(crate::plan::table::SnapshotArgs::persistent(
            mapper("vg--0-my--root-real"),
            mapper("vg--0-other-cow"),
            16
        ))
    );
    let uuid = &by("vg--0-my--root-real").uuid;
    assert_eq!(
        uuid,
        "LVM-Vg0000aaaabbbbccccddddeeeeffffffRoot00aaaabbbbccccddddeeeeffffff-real"
    );
    // Links: the origin and the non-merging snapshot only.
    let links: Vec<_> = specs.iter().filter_map(|s| s.link.clone()).collect();
    assert_eq!(
        links,
        [
            ("vg-0".to_owned(), "other".to_owned()),
            ("vg-0".to_owned(), "my-root".to_owned())
        ]
    );
}

#[test]
fn origin_with_snapshots_not_merging_is_snapshot_origin() {
    let vg = found(false);
    let pvs = pv_map();
    let layout = VgLayout {
        vg: vg.model.as_ref().expect("model"),
        pv_dev: &pvs,
    };
    let specs = layout.activation("my-root").expect("layout");
    let origin = specs.last().expect("origin");
    assert_eq!(
        origin.table.lines[0].target,
        Target::SnapshotOrigin {
            origin: mapper("vg--0-my--root-real")
        }
    );
    assert!(specs.iter().all(|s| s.role != Role::MergingSnapshot));
    assert_eq!(specs.iter().filter(|s| s.role == Role::Snapshot).count(), 2);
}

#[test]
fn plain_lv_is_one_device_and_snapshot_parts_are_refused() {
    let vg = found(true);
    let pvs = pv_map();
    let layout = VgLayout {
        vg: vg.model.as_ref().expect("model"),
        pv_dev: &pvs,
    };
    let specs = layout.activation("data").expect("layout");
    assert_eq!(specs.len(), 1);
    assert_eq!(specs[0].table.to_string(), "0 16384 linear 254:0 165888\n");
    let err = layout.activation("pre").expect_err("a cow");
    assert!(
        err.to_string().contains("activate its origin my-root"),
        "{err}"
    );
    let err = layout.activation("nope").expect_err("missing");
    assert!(err.to_string().contains("no logical volume nope"), "{err}");
    let empty = BTreeMap::new();
    let no_pv = VgLayout {
        vg: vg.model.as_ref().expect("model"),
        pv_dev: &empty,
    };
    assert!(no_pv.activation("data").is_err());
}

fn lv(vg: &str, lv: &str) -> LvRef {
    LvRef {
        vg: vg.into(),
        lv: lv.into(),
    }
}

#[test]
fn rollback_on_the_command_line_is_flagged_and_its_origin_activated() {
    let a = assembly(vec![found(false)]);
    let d = decide(
        &a,
        &Cmdline::parse("rd.rewind=vg-0/other rd.lvm.lv=vg-0/data"),
        &[],
        &mut valid_cow,
    );
    assert_eq!(d.flags.len(), 1);
    assert_eq!(
        (d.flags[0].snapshot.as_str(), d.flags[0].origin.as_str()),
        ("other", "my-root")
    );
    let acts: Vec<_> = d
        .activate
        .iter()
        .map(|a| (a.lv.as_str(), a.reason))
        .collect();
    assert_eq!(acts, [("my-root", Reason::Merge)]);
    // rd.lvm.lv is merged in by the caller as `activate`; here it was only on the cmdline.
    let d = decide(
        &a,
        &Cmdline::default(),
        &[lv("vg-0", "data")],
        &mut valid_cow,
    );
    assert!(d.flags.is_empty());
    assert_eq!(d.activate[0].reason, Reason::Requested);
}

#[test]
fn refusals_change_nothing_and_say_why() {
    let a = assembly(vec![found(false)]);
    for (cmdline, needle) in [
        ("rd.rewind=vg-0/my-root", "is an origin, not a snapshot"),
        ("rd.rewind=vg-0/data", "is not a snapshot"),
        ("rd.rewind=vg-0/nope", "no such logical volume"),
        ("rd.rewind=vg9/pre", "no volume group vg9 found"),
        (
            "rd.rewind=nightly",
            "no snapshot carries the tag rewind_set_nightly",
        ),
    ] {
        let d = decide(&a, &Cmdline::parse(cmdline), &[], &mut valid_cow);
        assert!(d.flags.is_empty() && d.activate.is_empty(), "{cmdline}");
        assert!(
            d.notes
                .iter()
                .any(|n| n.level == Level::Warn && n.message.contains(needle)),
            "{cmdline}: {:?}",
            d.notes
        );
    }
    let d = decide(
        &a,
        &Cmdline::parse("rd.rewind=vg-0/pre"),
        &[],
        &mut invalid_cow,
    );
    assert!(d.flags.is_empty() && d.activate.is_empty());
    assert!(
        d.notes
            .iter()
            .any(|n| n.message.contains("snapshot is invalid"))
    );
}

/// A snapshot whose COW is itself an origin: stock LVM reads the COW as an origin, not a
/// snapshot, and `lvconvert --merge` refuses it (checked on a loop device with stock LVM2
/// 2.03.16: "Failed to find logical volume"); so does rewind.
#[test]
fn snapshot_whose_cow_has_a_snapshot_is_not_merged() {
    let a = assembly(vec![testvg::found(testvg::vg_text(
        "vg-0",
        7,
        &[
            testvg::linear("root", "Root00", true, &[], &[(0, 8, 0)]),
            testvg::linear("pre", "Pre000", false, &[], &[(0, 4, 8)]),
            testvg::linear("data", "Data00", false, &[], &[(0, 4, 12)]),
            testvg::snapshot("snapshot0", "Snap00", "root", 8, 8, "pre", false),
            testvg::snapshot("snapshot1", "Snap01", "pre", 4, 8, "data", false),
        ],
    ))]);
    let d = decide(
        &a,
        &Cmdline::parse("rd.rewind=vg-0/pre"),
        &[],
        &mut valid_cow,
    );
    assert!(d.flags.is_empty() && d.activate.is_empty(), "{:?}", d.flags);
    assert!(
        d.notes.iter().any(|n| n.level == Level::Warn
            && n.message
                .contains("vg-0/pre is itself the origin of snapshot vg-0/data")),
        "{:?}",
        d.notes
    );
    // Its own snapshot, whose COW has none, is flagged as usual.
    let d = decide(
        &a,
        &Cmdline::parse("rd.rewind=vg-0/data"),
        &[],
        &mut valid_cow,
    );
    assert_eq!(d.flags.len(), 1, "{:?}", d.notes);
}

#[test]
fn second_merge_of_one_origin_is_refused() {
    let a = assembly(vec![found(true)]);
    let d = decide(
        &a,
        &Cmdline::parse("rd.rewind=vg-0/other"),
        &[],
        &mut valid_cow,
    );
    assert!(d.flags.is_empty());
    assert!(
        d.notes
            .iter()
            .any(|n| n.message.contains("already merging snapshot pre"))
    );
    // The flagged merge itself is still activated.
    assert_eq!(d.activate.len(), 1);
    assert_eq!(d.activate[0].reason, Reason::Merge);
}

#[test]
fn flagged_merge_with_invalid_store_holds_the_origin_inactive() {
    let a = assembly(vec![found(true)]);
    let d = decide(
        &a,
        &Cmdline::parse("rd.lvm.lv=vg-0/my-root"),
        &[lv("vg-0", "my-root"), lv("vg-0", "data")],
        &mut invalid_cow,
    );
    assert_eq!(d.hold.len(), 1);
    let acts: Vec<_> = d.activate.iter().map(|a| a.lv.as_str()).collect();
    assert_eq!(acts, ["data"], "the held origin is never activated");
    assert!(
        d.notes
            .iter()
            .any(|n| n.level == Level::Error && n.message.contains("stays inactive"))
    );
}

#[test]
fn snapshot_set_and_disable() {
    let a = assembly(vec![found(false)]);
    let d = decide(
        &a,
        &Cmdline::parse("rd.rewind=upgrade"),
        &[],
        &mut valid_cow,
    );
    assert_eq!(d.flags.len(), 1);
    assert_eq!(d.flags[0].snapshot, "pre");
    let d = decide(
        &a,
        &Cmdline::parse("rd.rewind=vg-0/pre rd.rewind=0"),
        &[lv("vg-0", "data")],
        &mut valid_cow,
    );
    assert!(d.flags.is_empty() && d.activate.is_empty());
}

#[test]
fn ambiguous_vg_is_never_touched() {
    let mut vg = found(false);
    vg.problems
        .push(crate::lvm::assemble::Problem::DuplicatePv {
            pv_uuid: "x".into(),
            devices: vec!["/dev/vda".into(), "/dev/vdb".into()],
        });
    let a = assembly(vec![vg]);
    let d = decide(
        &a,
        &Cmdline::parse("rd.rewind=vg-0/pre"),
        &[lv("vg-0", "data")],
        &mut valid_cow,
    );
    assert!(d.flags.is_empty() && d.activate.is_empty());
    assert!(
        d.notes.iter().any(|n| n.message.contains("cloned disk")),
        "{:?}",
        d.notes
    );
}

// --- `--mode snapshot` ---------------------------------------------------------------------

/// The fixture with `other` gone, so `pre` is `my-root`'s only snapshot; flagged in snapshot
/// mode when `flagged`.
pub(crate) fn solo(flagged: bool) -> FoundVg {
    let mut vg = found(false);
    let lvs = vg
        .tree
        .section_mut("vg-0")
        .and_then(|v| v.section_mut("logical_volumes"))
        .expect("lvs");
    lvs.remove("snapshot1").expect("snapshot1");
    lvs.remove("other").expect("other");
    if flagged {
        vg.tree = crate::lvm::change::mark_merging_as_snapshot(
            &vg.tree,
            "pre",
            &crate::lvm::change::Stamp::new("h", 1),
        )
        .expect("flag");
    }
    vg.model = Some(Vg::from_tree(&vg.tree).expect("model"));
    vg
}

pub(crate) fn specs_of(vg: &FoundVg) -> Vec<crate::plan::devices::DeviceSpec> {
    let pvs = pv_map();
    VgLayout {
        vg: vg.model.as_ref().expect("model"),
        pv_dev: &pvs,
    }
    .activation("my-root")
    .expect("layout")
}

#[test]
fn snapshot_mode_swaps_the_roles_of_origin_and_snapshot_devices() {
    let specs = specs_of(&solo(true));
    let names: Vec<(&str, Role)> = specs.iter().map(|s| (s.name.as_str(), s.role)).collect();
    // The origin's error table comes before the merge, so -real has no writer once it runs.
    assert_eq!(
        names,
        [
            ("vg--0-my--root-real", Role::Real),
            ("vg--0-pre-cow", Role::Cow),
            ("vg--0-my--root", Role::RetiredOrigin),
            ("vg--0-pre", Role::MergingAsSnapshot),
        ]
    );
    let by = |n: &str| specs.iter().find(|s| s.name == n).expect(n);
    assert_eq!(
        by("vg--0-my--root").table,
        Table::single(15 * 8192, Target::Error)
    );
    assert_eq!(
        by("vg--0-pre").table,
        Table::single(
            15 * 8192,
            Target::SnapshotMerge(crate::plan::table::SnapshotArgs::persistent(
                mapper("vg--0-my--root-real"),
                mapper("vg--0-pre-cow"),
                8
            ))
        )
    );
    // LVM's names and UUIDs: the merging device is the snapshot's (its COW LV's id).
    assert_eq!(
        by("vg--0-pre").uuid,
        "LVM-Vg0000aaaabbbbccccddddeeeeffffffPre000aaaabbbbccccddddeeeeffffff"
    );
    assert_eq!(
        by("vg--0-my--root").uuid,
        "LVM-Vg0000aaaabbbbccccddddeeeeffffffRoot00aaaabbbbccccddddeeeeffffff"
    );
    let links: Vec<_> = specs.iter().filter_map(|s| s.link.clone()).collect();
    assert_eq!(links, [("vg-0".to_owned(), "pre".to_owned())]);
    assert_eq!(by("vg--0-my--root").rules, UdevRules::DmOnly);
}

#[test]
fn snapshot_mode_needs_the_only_snapshot() {
    let stamp = crate::lvm::change::Stamp::new("h", 1);
    let vg = found(false);
    let e = crate::lvm::change::mark_merging_as_snapshot(&vg.tree, "pre", &stamp)
        .expect_err("two snapshots");
    assert!(e.to_string().contains("not the only snapshot"), "{e}");
    // A hand-made flag with another snapshot present: the origin is not laid out (held).
    let mut tree = crate::lvm::change::mark_merging(&vg.tree, "pre", &stamp).expect("flag");
    if let Some(crate::lvm::text::Node::Value(crate::lvm::text::Value::Array(t))) = tree
        .section_mut("vg-0")
        .and_then(|v| v.section_mut("logical_volumes"))
        .and_then(|l| l.section_mut("pre"))
        .and_then(|p| p.get_mut("tags"))
    {
        t.push(crate::lvm::text::Value::Str(
            crate::lvm::model::MERGE_AS_SNAPSHOT_TAG.into(),
        ));
    }
    let model = Vg::from_tree(&tree).expect("model");
    assert!(model.merges_as_snapshot(model.snapshot("pre").expect("pre")));
    let pvs = pv_map();
    let e = VgLayout {
        vg: &model,
        pv_dev: &pvs,
    }
    .activation("my-root")
    .expect_err("refused");
    assert!(e.to_string().contains("other snapshots"), "{e}");
}

#[test]
fn snapshot_mode_metadata_flag_finish_and_cancel() {
    let stamp = crate::lvm::change::Stamp::new("h", 1);
    let flagged = solo(true);
    let m = flagged.model.as_ref().expect("model");
    let pre = m.snapshot("pre").expect("pre");
    assert!(pre.merging && m.merges_as_snapshot(pre));
    assert_eq!(m.seqno, 8);
    // The set tag stays; the mode tag is added beside it.
    assert_eq!(
        m.lv("pre").expect("pre").tags,
        [
            "rewind_set_upgrade",
            crate::lvm::model::MERGE_AS_SNAPSHOT_TAG
        ]
    );
    // Finish: my-root's LV (its segments) carries pre's name and id; snapshot0 and the COW go.
    let done =
        crate::lvm::change::finish_merge_as_snapshot(&flagged.tree, "pre", &stamp).expect("finish");
    let d = Vg::from_tree(&done).expect("model");
    assert_eq!(d.seqno, 9);
    assert!(d.lv("my-root").is_none() && d.lv("snapshot0").is_none());
    assert!(d.snapshots.is_empty());
    let result = d.lv("pre").expect("result");
    assert_eq!(result.id, "Pre000-aaaa-bbbb-cccc-dddd-eeee-ffffff");
    assert_eq!(result.segments, m.lv("my-root").expect("root").segments);
    assert!(result.visible);
    // A merge flagged in origin mode is not finished this way.
    let origin_mode =
        crate::lvm::change::mark_merging(&solo(false).tree, "pre", &stamp).expect("flag");
    assert!(crate::lvm::change::finish_merge_as_snapshot(&origin_mode, "pre", &stamp).is_err());
    // Cancel: the flag and the mode tag go, the set tag stays.
    let back = crate::lvm::change::unmark_merging(&flagged.tree, "pre", &stamp).expect("cancel");
    let b = Vg::from_tree(&back).expect("model");
    assert!(!b.snapshot("pre").expect("pre").merging);
    assert_eq!(b.lv("pre").expect("pre").tags, ["rewind_set_upgrade"]);
}

/// A set `s` over two VGs (`va/root.s`, `vb/data.s`) recording `declared` members; `pending`
/// and `flagged` say which members are still being made and which are already flagged by
/// `rewind rollback SET` (merge flag and `rewind_rollback`).
fn two_vg_set(
    declared: usize,
    pending: &[&str],
    flagged: &[&str],
) -> crate::lvm::assemble::Assembly {
    let tags = |lv: &str| -> Vec<String> {
        let mut t = vec![
            "rewind_set_s".to_owned(),
            format!("rewind_members_{declared}"),
        ];
        if pending.contains(&lv) {
            t.push("rewind_pending".into());
        }
        if flagged.contains(&lv) {
            t.push("rewind_rollback".into());
        }
        t
    };
    let vg = |name: &str, origin: &str, cow: &str| {
        let t = tags(cow);
        let t: Vec<&str> = t.iter().map(String::as_str).collect();
        let mut f = testvg::found(testvg::vg_text(
            name,
            3,
            &[
                testvg::linear(origin, "Orig00", true, &[], &[(0, 10, 0)]),
                testvg::linear(cow, "Cow000", false, &t, &[(0, 2, 10)]),
                testvg::snapshot(
                    "snapshot0",
                    "Snap00",
                    origin,
                    10,
                    8,
                    cow,
                    flagged.contains(&cow),
                ),
            ],
        ));
        f.id = format!("{}{}", &name[..2], "0000-aaaa-bbbb-cccc-dddd-eeee-ffffff");
        f
    };
    assembly(vec![vg("va", "root", "root.s"), vg("vb", "data", "data.s")])
}

#[test]
fn a_set_at_boot_is_flagged_whole_or_not_at_all() {
    let cmd = Cmdline::parse("rd.rewind=s");
    let whole = decide(&two_vg_set(2, &[], &[]), &cmd, &[], &mut valid_cow);
    let flagged: Vec<_> = whole.flags.iter().map(|f| f.snapshot.as_str()).collect();
    assert_eq!(flagged, ["root.s", "data.s"]);

    for (a, why) in [
        (two_vg_set(3, &[], &[]), "has 2 of its 3 members"),
        (
            two_vg_set(2, &["data.s"], &[]),
            "cut short while it was being made",
        ),
    ] {
        let d = decide(&a, &cmd, &[], &mut valid_cow);
        assert!(d.flags.is_empty(), "{why}");
        assert!(
            d.notes
                .iter()
                .any(|n| n.message.contains(why) && n.message.contains("nothing changed")),
            "{why}: {:?}",
            d.notes
        );
    }
    // One member overflowed: none is flagged, the note names it.
    let mut bad_data = |vg: &FoundVg, s: &Snapshot| {
        if vg.name == "vb" {
            invalid_cow(vg, s)
        } else {
            valid_cow(vg, s)
        }
    };
    let d = decide(&two_vg_set(2, &[], &[]), &cmd, &[], &mut bad_data);
    assert!(d.flags.is_empty());
    assert!(
        d.notes.iter().any(|n| n.message.contains("vb/data.s")),
        "{:?}",
        d.notes
    );
}

#[test]
fn a_set_rollback_cut_between_its_commits_is_completed_at_boot() {
    // `rewind rollback s` committed va's flag, not vb's: the next boot flags vb's member too.
    let d = decide(
        &two_vg_set(2, &[], &["root.s"]),
        &Cmdline::parse(""),
        &[],
        &mut valid_cow,
    );
    let flagged: Vec<_> = d.flags.iter().map(|f| f.snapshot.as_str()).collect();
    assert_eq!(flagged, ["data.s"]);
    assert!(
        d.activate.iter().any(|a| a.lv == "root"),
        "the flagged one merges too"
    );
}
