//! Validates rewind's `--json` outputs against their schemas in `docs/json/` (docs/JSON.md),
//! with the jsonschema module of the system's Python (Debian's python3-jsonschema, installed
//! by tests/deps.sh) through `tests/tools/jsonschema-check.py`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// `docs/json/NAME.schema.json`.
pub fn schema_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("docs/json/{name}.schema.json"))
}

/// Ok when `doc` is valid against schema `name` (`status`, `list`, ...); the validator's
/// errors otherwise. Panics when the validator cannot run or the schema is not a schema.
pub fn check(name: &str, doc: &serde_json::Value) -> Result<(), String> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tools/jsonschema-check.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .arg(schema_path(name))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3 (tests/deps.sh installs it with python3-jsonschema)");
    let text = serde_json::to_vec(doc).expect("serialize");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&text)
        .expect("write the document");
    let out = child.wait_with_output().expect("validator");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    match out.status.code() {
        Some(0) => Ok(()),
        Some(1) => Err(err),
        _ => panic!("jsonschema-check.py {name}: {:?}: {err}", out.status),
    }
}

/// Panics unless `doc` is valid against schema `name`.
#[allow(dead_code)]
pub fn assert_valid(name: &str, doc: &serde_json::Value) {
    if let Err(e) = check(name, doc) {
        panic!("{name}.schema.json rejects rewind's output:\n{e}\n{doc:#}");
    }
}

/// For each of `docs`: Ok when valid against schema `name`, else the first error (one run of
/// the validator for all of them).
#[allow(dead_code)]
pub fn check_each(name: &str, docs: &[serde_json::Value]) -> Vec<Result<(), String>> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tools/jsonschema-check.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .arg(schema_path(name))
        .arg("--each")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3 (tests/deps.sh installs it with python3-jsonschema)");
    let text = serde_json::to_vec(docs).expect("serialize");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&text)
        .expect("write the documents");
    let out = child.wait_with_output().expect("validator");
    assert!(
        out.status.success(),
        "jsonschema-check.py {name} --each: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Result<(), String>> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| if l == "ok" { Ok(()) } else { Err(l.to_owned()) })
        .collect();
    assert_eq!(lines.len(), docs.len(), "one result per document");
    lines
}
