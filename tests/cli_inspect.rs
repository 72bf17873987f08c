//! `rewind inspect`: the table (golden), the JSON document and the exit codes. Images built in
//! memory need no root; the `loop_*` tests compare with stock LVM2 on loop devices.

use std::path::Path;
use std::process::{Command, Output};

#[path = "support/jsonschema.rs"]
mod jsonschema;
#[path = "support/pvimage.rs"]
mod pvimage;

mod common;

const MIB: u64 = 1 << 20;
/// The text fixture: VG `test-vg` on one PV, `my-root` with a snapshot `pre`, and `data`.
const DISK_VG: &str = include_str!("fixtures/text/disk.vg");

/// The fixture's ids (stock LVM makes new ones whenever the fixture is regenerated).
fn fixture_vg() -> rewind::lvm::model::Vg {
    let tree = rewind::lvm::text::parse(DISK_VG.as_bytes()).expect("fixture parses");
    rewind::lvm::model::Vg::from_tree(&tree).expect("fixture model")
}

fn pv0_id() -> String {
    fixture_vg().pvs[0].id.clone()
}

/// A golden text with the fixture's VG and PV ids filled in.
fn golden(template: &str) -> String {
    let vg = fixture_vg();
    template
        .replace("{VG_ID}", &vg.id)
        .replace("{PV0_ID}", &vg.pvs[0].id)
}

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

/// The `--json` document, valid against docs/json/inspect.schema.json.
fn json(out: &Output) -> serde_json::Value {
    let j = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("json: {e}: {}", stdout(out)));
    jsonschema::assert_valid("inspect", &j);
    j
}

/// Writes the fixture VG as `pv0.img` in `dir`.
fn fixture_image(dir: &Path, text: &str) {
    let img = pvimage::pv_with_text(&pv0_id(), 4 * MIB, MIB, text.as_bytes());
    std::fs::write(dir.join("pv0.img"), img).expect("write image");
}

const GOLDEN: &str = "\
VG test-vg  seqno 5  usable
  id {VG_ID}
  extent size 8192 sectors (4194304 bytes)

  PV   UUID                                    DEVICE
  pv0  {PV0_ID}  pv0.img

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
  id {VG_ID}
  extent size 8192 sectors (4194304 bytes)

  PV   UUID                                    DEVICE
  pv0  {PV0_ID}  pv0.img
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
    assert_eq!(stdout(&out), golden(GOLDEN));
}

#[test]
fn table_output_is_pinned_for_a_blocked_vg() {
    let dir = tempfile::tempdir().expect("tempdir");
    fixture_image(dir.path(), &with_missing_pv());
    std::fs::write(dir.path().join("blank.img"), vec![0u8; 8192]).expect("blank");
    let out = rewind_in(dir.path(), &["pv0.img", "blank.img"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), golden(GOLDEN_MISSING));
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
    assert_eq!(vg["id"], fixture_vg().id);
    assert_eq!(vg["seqno"], 5);
    assert_eq!(vg["usable"], true);
    assert!(vg["blocking"].is_null());
    assert_eq!(vg["extent_size"], 8192);
    assert_eq!(
        vg["pvs"],
        serde_json::json!([{"key": "pv0", "uuid": pv0_id(), "device": "pv0.img"}])
    );
    assert_eq!(
        vg["lvs"][0],
        serde_json::json!({"name": "my-root", "id": fixture_vg().lv("my-root").expect("root").id,
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
            "type = \"raid1\"",
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
    assert_eq!(data["segment_types"], serde_json::json!(["raid1"]));
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
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sys/class/block: No such file"), "{err}");
}

// ---- host tier: stock LVM2 on loop devices ----

use common::{Loop, Lvm};
use rewind::lvm::model::{Vg, vg_section};
use rewind::lvm::text::{Node, Section, Style, Value, parse, print};

fn rewind(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rewind"))
        .arg("inspect")
        .args(args)
        .output()
        .expect("run rewind")
}

/// `lvm CMD --reportformat json` rows under `key`.
fn report(lvm: &Lvm, cmd: &str, key: &str, args: &[&str]) -> Vec<serde_json::Value> {
    let mut a = vec![cmd, "--reportformat", "json", "--units", "b", "--nosuffix"];
    a.extend_from_slice(args);
    let j: serde_json::Value = serde_json::from_str(&lvm.ok(&a)).expect("lvm json");
    j["report"][0][key].as_array().cloned().unwrap_or_default()
}

fn field(j: &serde_json::Value, k: &str) -> String {
    j[k].as_str().unwrap_or_default().to_owned()
}

/// Makes `cow` a snapshot of `origin` in the tree as `lvcreate -s` (or, merging,
/// `lvconvert --merge`) would: the COW loses VISIBLE and a `snapshotN` LV ties them.
fn add_snapshot(t: &mut Section, origin: &str, cow: &str, n: usize, merging: bool) {
    let vg = Vg::from_tree(t).expect("vg");
    let extents = vg.lv(origin).expect("origin").extent_count();
    let name = vg_section(t).expect("vg").0.to_owned();
    let lvs = t
        .section_mut(&name)
        .and_then(|v| v.section_mut("logical_volumes"))
        .expect("logical_volumes");
    if let Some(Node::Value(Value::Array(st))) =
        lvs.section_mut(cow).expect("cow").get_mut("status")
    {
        st.retain(|v| v.as_str() != Some("VISIBLE"));
    }
    let (store, status) = if merging {
        ("merging_store", "[\"READ\", \"WRITE\"]")
    } else {
        ("cow_store", "[\"READ\", \"WRITE\", \"VISIBLE\"]")
    };
    let text = format!(
        "snapshot{n} {{\nid = \"Snap{n:02}-aaaa-bbbb-cccc-dddd-eeee-ffff{n:02}\"\nstatus = {status}\n\
         flags = []\ncreation_time = 1700000000\ncreation_host = \"host\"\nsegment_count = 1\n\
         segment1 {{\nstart_extent = 0\nextent_count = {extents}\ntype = \"snapshot\"\n\
         chunk_size = 16\norigin = \"{origin}\"\n{store} = \"{cow}\"\n}}\n}}\n"
    );
    lvs.entries
        .extend(parse(text.as_bytes()).expect("snapshot text").entries);
}

/// VG `name` on two PVs: `root` with snapshot `pre`, `var` with merging snapshot `back`,
/// and a plain `data` striped over both PVs.
fn snapshot_vg(name: &str) -> (Loop, Loop, Lvm) {
    let (a, b) = (Loop::new(32 * MIB), Loop::new(32 * MIB));
    let lvm = Lvm::for_devices(&[&a.dev, &b.dev]);
    lvm.ok(&["vgcreate", "-qq", "-s", "1m", name, &a.dev, &b.dev]);
    for (lv, size, extra) in [
        ("root", "8m", None),
        ("pre", "4m", None),
        ("var", "4m", None),
        ("back", "4m", None),
        ("data", "8m", Some("-i2")),
    ] {
        let mut args = vec!["lvcreate", "-qq", "-an", "-Zn", "-Wn", "-L", size, "-n", lv];
        args.extend(extra);
        args.push(name);
        lvm.ok(&args);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("vg.txt");
    let file = file.to_str().expect("utf8");
    lvm.ok(&["vgcfgbackup", "-q", "-f", file, name]);
    let mut t = parse(&std::fs::read(file).expect("backup")).expect("parse");
    add_snapshot(&mut t, "root", "pre", 0, false);
    add_snapshot(&mut t, "var", "back", 1, true);
    std::fs::write(file, print(&t, Style::Backup)).expect("write");
    lvm.ok(&["vgcfgrestore", "-q", "-f", file, name]);
    (a, b, lvm)
}

#[test]
fn loop_json_matches_stock_lvm() {
    require_host!("loop_json_matches_stock_lvm");
    let (a, b, lvm) = snapshot_vg("insp1");
    let out = rewind(&["--json", &a.dev, &b.dev]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let j = json(&out);
    assert_eq!(j["vgs"].as_array().map(Vec::len), Some(1));
    let vg = &j["vgs"][0];

    let vgs = report(
        &lvm,
        "vgs",
        "vg",
        &["-o", "vg_name,vg_uuid,vg_seqno,vg_extent_size", "insp1"],
    );
    assert_eq!(vg["name"], field(&vgs[0], "vg_name"));
    assert_eq!(vg["id"], field(&vgs[0], "vg_uuid"));
    assert_eq!(vg["seqno"].to_string(), field(&vgs[0], "vg_seqno"));
    assert_eq!(
        (vg["extent_size"].as_u64().expect("extent size") * 512).to_string(),
        field(&vgs[0], "vg_extent_size")
    );
    assert_eq!(vg["usable"], true);

    let pvs = report(&lvm, "pvs", "pv", &["-o", "pv_name,pv_uuid,vg_name"]);
    assert_eq!(pvs.len(), 2);
    for p in &pvs {
        let mine = vg["pvs"]
            .as_array()
            .expect("pvs")
            .iter()
            .find(|x| x["uuid"] == field(p, "pv_uuid"))
            .unwrap_or_else(|| panic!("no pv {p}"));
        assert_eq!(mine["device"], field(p, "pv_name"));
    }

    let lvs = report(
        &lvm,
        "lvs",
        "lv",
        &[
            "-a",
            "-o",
            "lv_name,lv_uuid,lv_size,origin,lv_attr,segtype",
            "insp1",
        ],
    );
    let mine = vg["lvs"].as_array().expect("lvs");
    for r in &lvs {
        let name = field(r, "lv_name").trim_matches(['[', ']']).to_owned();
        let lv = mine
            .iter()
            .find(|x| x["name"] == name)
            .unwrap_or_else(|| panic!("lvs shows {name}, inspect does not"));
        assert_eq!(lv["id"], field(r, "lv_uuid"), "{name}");
        assert_eq!(lv["bytes"].to_string(), field(r, "lv_size"), "{name}");
        let segtype = field(r, "segtype");
        if segtype != "snapshot" {
            // lvs reports a snapshot's COW with the snapshot segment type.
            assert_eq!(lv["segment_types"], serde_json::json!([segtype]), "{name}");
        }
    }
    assert_eq!(mine.len(), 7, "five LVs and two snapshotN");

    let snaps = vg["snapshots"].as_array().expect("snapshots");
    assert_eq!(snaps.len(), 2);
    for r in &lvs {
        let attr = field(r, "lv_attr");
        let name = field(r, "lv_name").trim_matches(['[', ']']).to_owned();
        let kind = attr.chars().next();
        if kind == Some('s') || kind == Some('S') {
            let s = snaps
                .iter()
                .find(|s| s["name"] == name)
                .unwrap_or_else(|| panic!("snapshot {name} not shown"));
            assert_eq!(s["origin"], field(r, "origin"));
            assert_eq!(s["merging"], kind == Some('S'), "{name} {attr}");
            assert_eq!(s["chunk_size"], 16);
        }
    }
    assert!(
        snaps
            .iter()
            .any(|s| s["name"] == "back" && s["merging"] == true)
    );
    assert!(
        snaps
            .iter()
            .any(|s| s["name"] == "pre" && s["merging"] == false)
    );
    lvm.clean(&["vgck", "insp1"]);
}

#[test]
fn loop_cloned_disk_and_missing_pv_exit_one() {
    require_host!("loop_cloned_disk_and_missing_pv_exit_one");
    let (a, b, lvm) = snapshot_vg("insp2");
    let clone = a.clone_disk();
    let out = rewind(&["--json", &a.dev, &b.dev, &clone.dev]);
    assert_eq!(out.status.code(), Some(1));
    let j = json(&out);
    let vg = &j["vgs"][0];
    assert_eq!(vg["usable"], false);
    let p = &vg["problems"][0];
    assert_eq!(p["kind"], "duplicate_pv");
    let mut devs = vec![a.dev.clone(), clone.dev.clone()];
    devs.sort();
    assert_eq!(p["devices"], serde_json::json!(devs));

    let out = rewind(&["--json", &a.dev]);
    assert_eq!(out.status.code(), Some(1));
    let j = json(&out);
    let vg = &j["vgs"][0];
    assert_eq!(vg["usable"], false);
    let p = &vg["problems"][0];
    assert_eq!(p["kind"], "missing_pv");
    let b_uuid = lvm.ok(&["pvs", "--noheadings", "-o", "pv_uuid", &b.dev]);
    assert_eq!(p["uuid"], b_uuid.trim());
    let missing: Vec<_> = vg["pvs"]
        .as_array()
        .expect("pvs")
        .iter()
        .filter(|p| p["device"].is_null())
        .collect();
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0]["uuid"], b_uuid.trim());
    let table = stdout(&rewind(&[&a.dev]));
    assert!(
        table.contains("MISSING") && table.contains("NOT USABLE"),
        "{table}"
    );
}

/// One text in two areas, stored with a different number of NULs after it (so the areas'
/// checksums differ), is one copy of one text to `assemble`, not two texts with one seqno.
#[test]
fn one_text_stored_with_different_trailing_nuls_is_one_text() {
    use rewind::lvm::assemble::{Problem, assemble};
    use rewind::lvm::disk::scan_device;
    let scan = |img: &[u8], device: &str| {
        scan_device(&mut std::io::Cursor::new(img), device)
            .expect("scan")
            .expect("a pv")
    };
    let one = pvimage::pv_with_text(&pv0_id(), 4 * MIB, MIB, DISK_VG.as_bytes());
    // The same image, its slot 0 then taking one more NUL (the ring is zeroed after the text):
    // size + 1, the text's checksum and the header's checksum made anew.
    let mut two = one.clone();
    let at = usize::try_from(pvimage::MDA_OFFSET).expect("offset");
    let word = |b: &[u8], i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
    let (offset, size) = (word(&two, at + 40), word(&two, at + 48));
    let start = at + usize::try_from(offset).expect("offset");
    let end = start + usize::try_from(size).expect("size");
    assert_eq!(
        &two[end - 1..=end],
        b"\0\0",
        "the text's NUL, then the zeroed ring"
    );
    let text_crc = rewind::lvm::crc::lvm_crc(&two[start..=end]);
    two[at + 48..at + 56].copy_from_slice(&(size + 1).to_le_bytes());
    two[at + 56..at + 60].copy_from_slice(&text_crc.to_le_bytes());
    let header_crc = rewind::lvm::crc::lvm_crc(&two[at + 4..at + 512]);
    two[at..at + 4].copy_from_slice(&header_crc.to_le_bytes());
    let (a, b) = (scan(&one, "a"), scan(&two, "b"));
    let committed =
        |s: &rewind::lvm::disk::PvScan| s.committed_text().expect("committed text").clone();
    let (ta, tb) = (committed(&a), committed(&b));
    assert_eq!(ta.text, tb.text, "the same text once the NULs are cut");
    assert_ne!(
        ta.locn.checksum, tb.locn.checksum,
        "areas with different checksums"
    );
    let found = assemble(&[a, b], &[]);
    assert_eq!(found.vgs.len(), 1);
    let problems = &found.vgs[0].problems;
    // One PV uuid on two devices is a problem of its own; a conflict of texts is not.
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, Problem::DuplicatePv { .. })),
        "{problems:?}"
    );
    assert!(
        !problems
            .iter()
            .any(|p| matches!(p, Problem::ConflictingMetadata { .. })),
        "{problems:?}"
    );
}
