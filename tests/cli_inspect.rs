//! `rewind inspect`: the table (golden), the JSON document and the exit codes. Images built in
//! memory need no root; the `loop_*` tests compare with stock LVM2 on loop devices.

use std::path::Path;
use std::process::{Command, Output};

#[path = "support/pvimage.rs"]
mod pvimage;

mod common;

const MIB: u64 = 1 << 20;
/// The text fixture: VG `test-vg` on one PV, `my-root` with a snapshot `pre`, and `data`.
const DISK_VG: &str = include_str!("fixtures/text/disk.vg");
const DISK_VG_PV0: &str = "RHV3SF-Ikfl-naqT-uSmH-ckTD-GcVS-BiBubc";

fn rewind_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rewind"))
        .arg("inspect")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run rewind")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("json: {e}: {}", stdout(out)))
}

/// Writes the fixture VG as `pv0.img` in `dir`.
fn fixture_image(dir: &Path, text: &str) {
    let img = pvimage::pv_with_text(DISK_VG_PV0, 4 * MIB, MIB, text.as_bytes());
    std::fs::write(dir.join("pv0.img"), img).expect("write image");
}

const GOLDEN: &str = "\
VG test-vg  seqno 5  usable
  id dYzJE2-VTDY-RcNJ-3mvW-EtxK-GIsW-l52CG7
  extent size 8192 sectors (4194304 bytes)

  PV   UUID                                    DEVICE
  pv0  RHV3SF-Ikfl-naqT-uSmH-ckTD-GcVS-BiBubc  pv0.img

  LV         EXTENTS  BYTES    VISIBLE  SEGMENTS  NOTE
  my-root    2        8388608  yes      linear
  pre        1        4194304  no       linear
  data       1        4194304  yes      linear
  snapshot0  2        8388608  yes      snapshot

  SNAPSHOT  ORIGIN   INTERNAL   CHUNK      MERGING
  pre       my-root  snapshot0  8 sectors  no

";

/// The fixture VG with a second PV no image carries.
fn with_missing_pv() -> String {
    DISK_VG.replacen(
        "pe_count = 15\n}\n",
        "pe_count = 15\n}\n\npv1 {\nid = \"MISSNG-aaaa-bbbb-cccc-dddd-eeee-ffffff\"\n\
         device = \"/dev/loop9\"\nstatus = [\"ALLOCATABLE\"]\nflags = []\n\
         dev_size = 131072\npe_start = 2048\npe_count = 15\n}\n",
        1,
    )
}

const GOLDEN_MISSING: &str = "\
VG test-vg  seqno 5  NOT USABLE: vg test-vg: pv1 (uuid MISSNG-aaaa-bbbb-cccc-dddd-eeee-ffffff) is missing: no action
  id dYzJE2-VTDY-RcNJ-3mvW-EtxK-GIsW-l52CG7
  extent size 8192 sectors (4194304 bytes)

  PV   UUID                                    DEVICE
  pv0  RHV3SF-Ikfl-naqT-uSmH-ckTD-GcVS-BiBubc  pv0.img
  pv1  MISSNG-aaaa-bbbb-cccc-dddd-eeee-ffffff  MISSING

  LV         EXTENTS  BYTES    VISIBLE  SEGMENTS  NOTE
  my-root    2        8388608  yes      linear
  pre        1        4194304  no       linear
  data       1        4194304  yes      linear
  snapshot0  2        8388608  yes      snapshot

  SNAPSHOT  ORIGIN   INTERNAL   CHUNK      MERGING
  pre       my-root  snapshot0  8 sectors  no

  problems:
    BLOCKING: vg test-vg: pv1 (uuid MISSNG-aaaa-bbbb-cccc-dddd-eeee-ffffff) is missing: no action

Devices without an LVM label:
  blank.img
";

#[test]
fn table_output_is_pinned_for_the_fixture_vg() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture_image(dir.path(), DISK_VG);
    let out = rewind_in(dir.path(), &["pv0.img"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout(&out), GOLDEN);
}

#[test]
fn table_output_is_pinned_for_a_blocked_vg() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture_image(dir.path(), &with_missing_pv());
    std::fs::write(dir.path().join("blank.img"), vec![0u8; 8192]).expect("blank");
    let out = rewind_in(dir.path(), &["pv0.img", "blank.img"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), GOLDEN_MISSING);
}

#[test]
fn json_for_the_fixture_vg() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture_image(dir.path(), DISK_VG);
    let out = rewind_in(dir.path(), &["--json", "pv0.img"]);
    assert_eq!(out.status.code(), Some(0));
    let j = json(&out);
    assert_eq!(j["schema"], 1);
    let vg = &j["vgs"][0];
    assert_eq!(vg["name"], "test-vg");
    assert_eq!(vg["id"], "dYzJE2-VTDY-RcNJ-3mvW-EtxK-GIsW-l52CG7");
    assert_eq!(vg["seqno"], 5);
    assert_eq!(vg["usable"], true);
    assert!(vg["blocking"].is_null());
    assert_eq!(vg["extent_size"], 8192);
    assert_eq!(
        vg["pvs"],
        serde_json::json!([{"key": "pv0", "uuid": DISK_VG_PV0, "device": "pv0.img"}])
    );
    assert_eq!(
        vg["lvs"][0],
        serde_json::json!({"name": "my-root", "id": "0Ku1xK-Lz8n-3l7T-kscl-E8Aa-MMFS-9kePRg",
            "extents": 2, "bytes": 8388608, "visible": true, "segment_types": ["linear"],
            "out_of_scope": false})
    );
    assert_eq!(
        vg["snapshots"],
        serde_json::json!([{"name": "pre", "internal": "snapshot0", "origin": "my-root",
            "chunk_size": 8, "merging": false}])
    );
    for k in ["problems", "orphans", "not_pvs", "skipped", "unreadable"] {
        assert_eq!(j[k], serde_json::json!([]), "{k}");
    }
}

#[test]
fn merging_and_out_of_scope_are_shown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = DISK_VG
        .replacen("cow_store = \"pre\"", "merging_store = \"pre\"", 1)
        .replacen(
            "type = \"striped\"\nstripe_count = 1\n\nstripes = [\n\"pv0\", 3\n]",
            "type = \"thin-pool\"",
            1,
        );
    fixture_image(dir.path(), &text);
    let out = rewind_in(dir.path(), &["--json", "pv0.img"]);
    let j = json(&out);
    let vg = &j["vgs"][0];
    assert_eq!(vg["snapshots"][0]["merging"], true, "{vg}");
    let data = &vg["lvs"][2];
    assert_eq!(data["name"], "data");
    assert_eq!(data["out_of_scope"], true);
    assert_eq!(data["segment_types"], serde_json::json!(["thin-pool"]));
    let table = stdout(&rewind_in(dir.path(), &["pv0.img"]));
    assert!(table.contains("out of scope"), "{table}");
    assert!(table.contains("snapshot0  8 sectors  yes"), "{table}");
}

#[test]
fn missing_pv_cloned_image_and_unreadable_paths_exit_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture_image(dir.path(), &with_missing_pv());
    let out = rewind_in(dir.path(), &["--json", "pv0.img"]);
    assert_eq!(out.status.code(), Some(1));
    let j = json(&out);
    let vg = &j["vgs"][0];
    assert_eq!(vg["usable"], false);
    assert_eq!(vg["pvs"][1]["device"], serde_json::Value::Null);
    assert_eq!(vg["problems"][0]["kind"], "missing_pv");
    assert_eq!(vg["problems"][0]["blocking"], true);

    fixture_image(dir.path(), DISK_VG);
    std::fs::copy(dir.path().join("pv0.img"), dir.path().join("clone.img")).expect("clone");
    let out = rewind_in(dir.path(), &["--json", "pv0.img", "clone.img"]);
    assert_eq!(out.status.code(), Some(1));
    let j = json(&out);
    let p = &j["vgs"][0]["problems"][0];
    assert_eq!(p["kind"], "duplicate_pv");
    assert_eq!(p["devices"], serde_json::json!(["clone.img", "pv0.img"]));
    assert!(
        p["message"]
            .as_str()
            .is_some_and(|m| m.contains("cloned disk"))
    );
    // A PV on two devices has no one device.
    assert_eq!(j["vgs"][0]["pvs"][0]["device"], serde_json::Value::Null);

    let out = rewind_in(dir.path(), &["--json", "pv0.img", "no-such.img"]);
    assert_eq!(out.status.code(), Some(1));
    let j = json(&out);
    assert_eq!(j["vgs"][0]["usable"], true);
    assert_eq!(j["unreadable"][0]["device"], "no-such.img");
}

#[test]
fn bad_checksum_is_reported_and_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture_image(dir.path(), DISK_VG);
    let path = dir.path().join("pv0.img");
    let mut img = std::fs::read(&path).expect("read");
    // The committed text starts right after the 512-byte area header.
    let at = usize::try_from(pvimage::MDA_OFFSET).expect("offset") + 512 + 10;
    img[at] ^= 0x20;
    std::fs::write(&path, img).expect("write");
    let out = rewind_in(dir.path(), &["--json", "pv0.img"]);
    assert_eq!(out.status.code(), Some(1));
    let j = json(&out);
    assert_eq!(j["vgs"], serde_json::json!([]));
    assert_eq!(j["problems"][0]["kind"], "bad_metadata_area", "{j}");
    assert_eq!(j["orphans"], serde_json::json!(["pv0.img"]));
}

#[test]
fn usage_errors_exit_two() {
    let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(["inspect", "--no-such-flag"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(["inspect", "--help"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("--json"));
}

#[test]
fn a_root_without_sysfs_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_str().expect("utf8");
    let out = rewind_in(dir.path(), &["--root", root]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot list block devices"));
}
