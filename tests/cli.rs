//! The command-line contract: help, version and exit codes.

use std::process::Command;

fn rewind(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(args)
        .output()
        .expect("run rewind")
}

#[test]
fn help_exits_zero_and_names_the_tool() {
    let out = rewind(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Usage: rewind"), "help text: {text}");
}

#[test]
fn version_prints_the_crate_version() {
    let out = rewind(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("rewind {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn unknown_argument_is_a_usage_error() {
    let out = rewind(&["--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));
}

#[test]
fn no_subcommand_is_a_usage_error() {
    let out = rewind(&[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn check_config_accepts_good_and_rejects_bad_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[log]\nlevel = \"debug\"\n").expect("write");
    let out = rewind(&["check-config", "--config", good.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains(": ok"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[log]\nlevel = \"debug\"\ncolour = 1\n").expect("write");
    let out = rewind(&["check-config", "--config", bad.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("unknown field `colour`"),
        "{err}"
    );

    let missing = dir.path().join("missing.toml");
    let out = rewind(&["check-config", "--config", missing.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("the defaults apply"));
}
