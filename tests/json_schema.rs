//! The `--json` outputs' schemas (docs/json/, docs/JSON.md) pinned: each schema is a valid
//! draft 2020-12 schema of version rewind-json/1; rewind's real outputs (the status golden
//! files, `status --json` and `inspect --json` run here, and the documents of the real types
//! `list`, `show`, `watch`, `diff` print) are valid; and each output with any one field
//! removed or retyped is rejected, so a change that drops or retypes a field fails here.
//! The validator is python3-jsonschema (tests/support/jsonschema.rs).

use rewind::flow::diff::{DbDiff, SetDiff};
use rewind::flow::setkernel::SetBoot;
use rewind::flow::sets::{MemberState, MemberView, SetState, SetView};
use rewind::flow::watch::Action;
use rewind::lvm::sets::Kind;
use rewind::plan::kernels::{Kernel, SetKernel};
use rewind::plan::pkgdb::{self, Differs};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

#[path = "support/jsonschema.rs"]
mod jsonschema;
#[path = "support/pvimage.rs"]
mod pvimage;

const SCHEMAS: [&str; 7] = ["status", "list", "show", "watch", "diff", "plan", "inspect"];

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("serialize")
}

fn schema(name: &str) -> Value {
    let text = std::fs::read_to_string(jsonschema::schema_path(name)).expect("schema file");
    serde_json::from_str(&text).expect("schema is JSON")
}

/// Every variant of every field `list` and `show` print: a set with its kernel's copy, one
/// taken by a hook with members in every state, and one being made.
fn sets() -> Vec<SetView> {
    let member = |snapshot: &str, state, fill: Option<f64>| MemberView {
        vg: "vg0".into(),
        origin: Some("root".into()),
        snapshot: snapshot.into(),
        size_bytes: 8 << 20,
        mount: Some("/".into()),
        fill_percent: fill,
        pool: None,
        state,
    };
    vec![
        SetView {
            name: "pre".into(),
            time: Some(1_764_000_000),
            kind: Some(Kind::Manual),
            description: "before the upgrade".into(),
            pinned: true,
            state: SetState::Ok,
            members_declared: Some(1),
            members: vec![member("root.pre", MemberState::Active, Some(3.5))],
            boot: SetBoot::Copy(SetKernel {
                kernel: Kernel {
                    version: "6.1.0-18-amd64".into(),
                    linux: "vmlinuz-6.1.0-18-amd64".into(),
                    initrd: "initrd.img-6.1.0-18-amd64".into(),
                },
                bytes: 40 << 20,
                boot_dir: "/boot".into(),
            }),
        },
        SetView {
            name: "apt-1".into(),
            time: Some(1_764_000_100),
            kind: Some(Kind::Auto),
            description: String::new(),
            pinned: false,
            state: SetState::Lost,
            members_declared: Some(3),
            members: vec![
                member("root.apt-1", MemberState::Overflowed, None),
                member("var.apt-1", MemberState::Inactive, None),
                MemberView {
                    origin: None,
                    mount: None,
                    ..member("data.apt-1", MemberState::Merging, Some(0.0))
                },
            ],
            boot: SetBoot::Member,
        },
        SetView {
            name: "half".into(),
            time: None,
            kind: None,
            description: String::new(),
            pinned: false,
            state: SetState::Pending,
            members_declared: None,
            members: vec![
                member("root.half", MemberState::Pending, None),
                MemberView {
                    pool: Some(rewind::flow::status::PoolReport {
                        vg: "vg0".into(),
                        pool: "pool".into(),
                        transaction_id: 3,
                        device: None,
                        kernel: None,
                    }),
                    ..member("thin.half", MemberState::Inactive, None)
                },
            ],
            boot: SetBoot::Newest,
        },
    ]
}

fn watch() -> Vec<Action> {
    vec![
        Action::Fine {
            lv: "vg0/root.pre".into(),
            percent: 12.5,
        },
        Action::Warned {
            lv: "vg0/var.pre".into(),
            percent: 85.0,
            why: "no free extents in vg0".into(),
        },
        Action::Extended {
            lv: "vg0/data.pre".into(),
            percent: 81.0,
            extents: 2,
        },
        Action::Lost {
            lv: "vg0/home.pre".into(),
            set: "pre".into(),
        },
        Action::PoolFine {
            pool: "vg0/pool".into(),
            data_percent: 10.0,
            metadata_percent: 2.5,
        },
        Action::PoolWarned {
            pool: "vg0/pool".into(),
            part: "data".into(),
            percent: 85.0,
            crossed: true,
        },
    ]
}

fn diff() -> SetDiff {
    let d = |name: &str, kind, set: Option<&str>, now: Option<&str>| Differs {
        name: name.into(),
        kind,
        set: set.map(Into::into),
        now: now.map(Into::into),
    };
    SetDiff {
        set: "pre".into(),
        databases: vec![DbDiff {
            manager: "dpkg",
            packages: vec![
                d(
                    "curl",
                    pkgdb::Kind::Upgraded,
                    Some("7.88.1-10"),
                    Some("7.88.1-10+deb12u5"),
                ),
                d("htop", pkgdb::Kind::Installed, None, Some("3.2.2-2")),
                d("nano", pkgdb::Kind::Removed, Some("7.2-1"), None),
                d(
                    "vim",
                    pkgdb::Kind::Downgraded,
                    Some("2:9.0.1378-2"),
                    Some("2:9.0.1378-1"),
                ),
                d("odd", pkgdb::Kind::Changed, Some("a"), Some("b")),
            ],
        }],
    }
}

/// The status golden files (tests/fixtures/status/, pinned by the status unit tests).
fn status_fixtures() -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/status");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    assert!(names.len() >= 6, "{names:?}");
    names
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).expect("fixture");
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        })
        .collect()
}

/// A status report with the fields the golden files leave out: `result_name` (`--mode
/// snapshot`) and `rolled_back`.
fn status_extra() -> Value {
    use rewind::flow::status::{Merge, OriginReport, Report, RolledBack, SnapshotReport, State};
    to_json(&Report {
        origins: vec![OriginReport {
            vg: "vg0".into(),
            origin: "root".into(),
            device: Some("vg0-root".into()),
            snapshots: vec![SnapshotReport {
                name: "pre".into(),
                result_name: Some("pre".into()),
                state: State::Merging,
                chunk_sectors: 8,
                fill: None,
                merge: Some(Merge {
                    percent: 40.0,
                    bytes_left: 1 << 20,
                    rate_bytes_per_s: None,
                    eta_s: None,
                }),
            }],
        }],
        problems: vec!["vg0/old: invalid".into()],
        rolled_back: vec![RolledBack {
            vg: "vg0".into(),
            origin: "root".into(),
            set: "pre".into(),
            time: 1_764_000_000,
        }],
        pools: vec![],
    })
}

fn run(args: &[&str], dir: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run rewind");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "rewind {args:?}: {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `rewind inspect --json` of the text fixture's VG on an image file (no root needed).
fn inspect_outputs() -> Vec<Value> {
    const DISK_VG: &str = include_str!("fixtures/text/disk.vg");
    let tree = rewind::lvm::text::parse(DISK_VG.as_bytes()).expect("fixture parses");
    let vg = rewind::lvm::model::Vg::from_tree(&tree).expect("fixture model");
    let dir = tempfile::tempdir().expect("tempdir");
    let img = pvimage::pv_with_text(&vg.pvs[0].id, 4 << 20, 1 << 20, DISK_VG.as_bytes());
    std::fs::write(dir.path().join("pv0.img"), img).expect("write image");
    std::fs::write(dir.path().join("zero.img"), vec![0u8; 1 << 20]).expect("write image");
    let good = run(&["inspect", "--json", "pv0.img"], dir.path());
    assert_eq!(
        good["vgs"][0]["lvs"].as_array().map(Vec::len),
        Some(4),
        "{good}"
    );
    let mixed = run(
        &["inspect", "--json", "pv0.img", "zero.img", "missing.img"],
        dir.path(),
    );
    vec![good, mixed]
}

/// The documents each schema must accept.
fn outputs(name: &str) -> Vec<Value> {
    match name {
        "status" => {
            let mut v = status_fixtures();
            v.push(status_extra());
            let dir = tempfile::tempdir().expect("tempdir");
            v.push(run(&["status", "--json"], dir.path()));
            v
        }
        "list" => vec![to_json(&sets()), json!([])],
        "show" => sets().iter().map(to_json).collect(),
        "watch" => vec![to_json(&watch()), json!([])],
        "diff" => vec![to_json(&diff())],
        "plan" => plan_outputs(),
        "inspect" => inspect_outputs(),
        _ => unreachable!("{name}"),
    }
}

/// The plan documents: `rewind plan --json` run here (no device-mapper and no VG on an image
/// file: notes only), and an Outcome with the volumes `rewind early` lays out for the text
/// fixture's VG (my-root with its snapshot, data) by the real layout and convergence, with
/// a thin pool's gate.
fn plan_outputs() -> Vec<Value> {
    use rewind::flow::early::{Outcome, PoolGate, VolumePlan};
    use rewind::plan::decide::{Level, Note, Reason};
    use rewind::plan::dev::DevNum;
    use rewind::plan::devices::VgLayout;
    use rewind::plan::steps::converge;
    const DISK_VG: &str = include_str!("fixtures/text/disk.vg");
    let tree = rewind::lvm::text::parse(DISK_VG.as_bytes()).expect("fixture parses");
    let vg = rewind::lvm::model::Vg::from_tree(&tree).expect("fixture model");
    let dir = tempfile::tempdir().expect("tempdir");
    let img = pvimage::pv_with_text(&vg.pvs[0].id, 4 << 20, 1 << 20, DISK_VG.as_bytes());
    std::fs::write(dir.path().join("pv0.img"), img).expect("write image");
    let run_here = run(
        &[
            "plan",
            "--json",
            "--cmdline",
            "rd.lvm.lv=test-vg/my-root",
            "pv0.img",
        ],
        dir.path(),
    );
    assert!(
        !run_here["notes"].as_array().expect("notes").is_empty(),
        "{run_here}"
    );
    let pv_dev = [("pv0".to_owned(), DevNum { major: 7, minor: 0 })].into();
    let layout = VgLayout {
        vg: &vg,
        pv_dev: &pv_dev,
    };
    let volume = |lv: &str, reason| {
        let devices = layout.activation(lv).expect("layout");
        let steps = converge(&devices, &[]).expect("steps");
        VolumePlan {
            vg: vg.name.clone(),
            lv: lv.into(),
            reason,
            devices,
            steps,
            thin_pool: None,
        }
    };
    let mut thin = volume("data", Reason::Requested);
    thin.thin_pool = Some(PoolGate {
        pool: "pool".into(),
        device: "test--vg-pool-tpool".into(),
        metadata: "test--vg-pool_tmeta".into(),
        transaction_id: 3,
    });
    let laid_out = to_json(&Outcome {
        flags_committed: vec!["test-vg/pre".into()],
        volumes: vec![volume("my-root", Reason::Merge), thin],
        set_up: 0,
        notes: vec![Note {
            level: Level::Info,
            message: "a note".into(),
        }],
    });
    let v = &laid_out["volumes"][0];
    let ops: Vec<&str> = v["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["op"].as_str())
        .collect();
    assert!(
        ops.contains(&"create") && ops.contains(&"load") && ops.contains(&"resume"),
        "{v}"
    );
    assert!(v["devices"].as_array().expect("devices").len() >= 3, "{v}");
    vec![run_here, laid_out]
}

/// Paths (JSON pointers) of every member of every object in `v`.
fn fields(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                fields(x, &p, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                fields(x, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn remove(v: &Value, path: &str) -> Value {
    let mut v = v.clone();
    let (parent, key) = path.rsplit_once('/').expect("a field");
    let key = key.replace("~1", "/").replace("~0", "~");
    v.pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .expect("parent")
        .remove(&key);
    v
}

/// The field at `path` with a value of another type: a string becomes a number, a null an
/// object, anything else a string.
fn retype(v: &Value, path: &str) -> Value {
    let mut v = v.clone();
    let x = v.pointer_mut(path).expect("field");
    *x = match x {
        Value::String(_) => json!(42),
        Value::Null => json!({"retyped": true}),
        _ => json!("retyped"),
    };
    v
}

/// Fields a schema leaves out when empty or not applying (documented as optional in
/// docs/JSON.md), and the open parts (an inspect problem's own fields, by kind).
fn optional(name: &str, path: &str) -> bool {
    let last = path.rsplit('/').next().unwrap_or_default();
    match name {
        "status" => ["rolled_back", "pools", "result_name"].contains(&last),
        "plan" => last == "thin_pool",
        "list" | "show" => last == "pool" && path.contains("/members/"),
        "inspect" => {
            path.contains("/problems/")
                && !["blocking", "message", "kind"].contains(&last)
                && path
                    .split('/')
                    .rev()
                    .nth(1)
                    .is_some_and(|p| p.parse::<usize>().is_ok())
        }
        _ => false,
    }
}

/// Every name under a `properties` in the schema.
fn property_names(v: &Value, out: &mut std::collections::BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Object(p)) = m.get("properties") {
                out.extend(p.keys().cloned());
            }
            m.values().for_each(|x| property_names(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| property_names(x, out)),
        _ => {}
    }
}

#[test]
fn schemas_are_draft_2020_12_of_version_1() {
    for name in SCHEMAS {
        let s = schema(name);
        assert_eq!(
            s["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
        assert_eq!(
            s["$id"],
            format!("rewind-json/1/{name}.schema.json"),
            "{name}"
        );
        let desc = s["description"].as_str().unwrap_or_default();
        assert!(desc.starts_with("rewind-json/1"), "{name}: {desc}");
        // A bare valid document of another shape is rejected: the schema constrains.
        assert!(jsonschema::check(name, &json!("text")).is_err(), "{name}");
    }
    // list and show share the definitions of a set.
    assert_eq!(schema("list")["$defs"], schema("show")["$defs"]);
    for part in ["pool", "fill"] {
        assert_eq!(
            schema("list")["$defs"][part],
            schema("status")["$defs"][part]
        );
    }
    // inspect's own version field moves with rewind-json's.
    assert_eq!(
        schema("inspect")["properties"]["schema"]["const"],
        json!(rewind::flow::inspect::SCHEMA_VERSION)
    );
}

#[test]
fn real_outputs_are_valid() {
    for name in SCHEMAS {
        let docs = outputs(name);
        for (doc, r) in docs.iter().zip(jsonschema::check_each(name, &docs)) {
            if let Err(e) = r {
                panic!("{name}.schema.json rejects rewind's output: {e}\n{doc:#}");
            }
        }
    }
}

#[test]
fn added_fields_are_accepted() {
    for name in SCHEMAS {
        let docs: Vec<Value> = outputs(name)
            .into_iter()
            .map(|mut d| {
                let mut paths = vec![];
                fields(&d, "", &mut paths);
                for p in paths.iter().rev() {
                    if let Some(Value::Object(m)) = d.pointer_mut(p) {
                        m.insert("added_later".into(), json!({"any": [1, "x"]}));
                    }
                }
                if let Value::Object(m) = &mut d {
                    m.insert("added_later".into(), json!(true));
                }
                d
            })
            .collect();
        for (doc, r) in docs.iter().zip(jsonschema::check_each(name, &docs)) {
            assert!(r.is_ok(), "{name}: {r:?}\n{doc:#}");
        }
    }
}

#[test]
fn a_removed_or_retyped_field_is_rejected() {
    let mut total = 0;
    for name in SCHEMAS {
        let mut documented = std::collections::BTreeSet::new();
        property_names(&schema(name), &mut documented);
        let mut cases = vec![];
        for doc in outputs(name) {
            let mut paths = vec![];
            fields(&doc, "", &mut paths);
            for p in paths {
                let last = p.rsplit('/').next().unwrap_or_default();
                if !documented.contains(last) {
                    // Added in this version and not in the schema yet: allowed (the version
                    // rule), but it belongs in the schema.
                    eprintln!("{name}: {p} is not in {name}.schema.json yet");
                    continue;
                }
                if !optional(name, &p) {
                    cases.push((format!("{p} removed"), remove(&doc, &p)));
                }
                cases.push((format!("{p} retyped"), retype(&doc, &p)));
            }
        }
        assert!(cases.len() >= 8, "{name}: {} cases", cases.len());
        let docs: Vec<Value> = cases.iter().map(|c| c.1.clone()).collect();
        let accepted: Vec<&str> = cases
            .iter()
            .zip(jsonschema::check_each(name, &docs))
            .filter(|(_, r)| r.is_ok())
            .map(|(c, _)| c.0.as_str())
            .collect();
        assert!(
            accepted.is_empty(),
            "{name}.schema.json accepts {accepted:?}"
        );
        total += cases.len();
    }
    eprintln!("{total} mutated documents rejected");
}

#[test]
fn the_exit_codes_are_the_documented_ones() {
    use rewind::exit;
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/JSON.md"))
        .expect("docs/JSON.md");
    for (code, word) in [
        (exit::SUCCESS, "success"),
        (exit::FAILURE, "failure"),
        (exit::USAGE, "usage"),
        (exit::UNHEALTHY, "unhealthy"),
    ] {
        assert!(
            doc.contains(&format!("| {code} | {word}")),
            "docs/JSON.md: exit code {code} ({word})"
        );
    }
    for name in SCHEMAS {
        assert!(
            doc.contains(&format!("json/{name}.schema.json")),
            "docs/JSON.md names {name}.schema.json"
        );
    }
}
