//! The contract of `rewind poll`, `status`, `rollback` and `cancel`: help texts name the exit
//! codes, usage errors exit 2, unknown names and refusals exit 1, and on a machine with no
//! merge (and no device-mapper, like the development hosts) `poll` exits 0 at once.

use std::process::Command;
use std::time::{Duration, Instant};

#[path = "support/jsonschema.rs"]
mod jsonschema;

fn rewind(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(args)
        .output()
        .expect("run rewind")
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_lists_the_commands_and_exit_codes() {
    let top = stdout(&rewind(&["--help"]));
    for c in ["poll", "status", "rollback", "cancel"] {
        assert!(top.contains(c), "{c} in {top}");
    }
    let status = stdout(&rewind(&["status", "--help"]));
    assert!(
        status.contains("--json") && status.contains("--watch"),
        "{status}"
    );
    assert!(
        status.contains("Exit status: 0 all well, 1 the state could not be read, 2 usage error, 3 a snapshot is invalid, a merge failed, or a thin pool is full, failed, read-only or needs checking."),
        "{status}"
    );
    let rb = stdout(&rewind(&["rollback", "--help"]));
    assert!(
        rb.contains("--mode") && rb.contains("origin") && rb.contains("snapshot"),
        "{rb}"
    );
    assert!(rb.contains("Exit status: 0 flagged"), "{rb}");
    let cancel = stdout(&rewind(&["cancel", "--help"]));
    assert!(cancel.contains("Exit status: 0 withdrawn"), "{cancel}");
    let poll = stdout(&rewind(&["poll", "--help"]));
    assert!(
        poll.contains("Exit 0 when every merge finished or none is active"),
        "{poll}"
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["rollback"][..],
        &["rollback", "not*a*set"],
        &["rollback", "set", "--mode", "snapshot"],
        &["rollback", "vg/lv", "--keep-current"],
        &["rollback", "vg/lv", "--mode", "sideways"],
        &["cancel"],
        &["cancel", "a/b/c"],
        &["status", "--bogus"],
    ] {
        let o = rewind(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn mode_snapshot_without_its_requirements_changes_nothing() {
    // No device-mapper here (or, where there is one, no such VG): refused, exit 1.
    let o = rewind(&["rollback", "--mode", "snapshot", "rewindnovg/pre"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("--mode snapshot needs device-mapper") && e.contains("nothing changed")
            || e.contains("no volume group rewindnovg found"),
        "{e}"
    );
}

#[test]
fn unknown_names_exit_1() {
    let locks = tempfile::tempdir().expect("tempdir");
    let dir = locks.path().to_str().expect("utf8");
    for cmd in ["rollback", "cancel"] {
        let o = rewind(&[cmd, "--lock-dir", dir, "no-such-vg-here/pre"]);
        assert_eq!(o.status.code(), Some(1), "{cmd}: {}", stderr(&o));
        assert_eq!(
            stderr(&o).trim(),
            "rewind: no volume group no-such-vg-here found",
            "{cmd}"
        );
    }
}

#[test]
fn poll_without_merges_exits_0_quickly() {
    let t = Instant::now();
    let o = rewind(&["poll", "--lock-dir", "/nonexistent-rewind-test"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn status_json_is_json() {
    let o = rewind(&["status", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(v["origins"].is_array() && v["problems"].is_array(), "{v}");
    jsonschema::assert_valid("status", &v);
}
