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

/// `rewind hook apt pre` with apt's standard input, under a test root and configuration.
fn apt_pre(root: &std::path::Path, config: &str, input: &str) -> std::process::Output {
    use std::io::Write;
    let cfg = root.join("rewind.toml");
    std::fs::write(&cfg, config).expect("write config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(["hook", "apt", "pre", "--root"])
        .arg(root)
        .arg("--config")
        .arg(&cfg)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run rewind");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

const APT_UPGRADE: &str = "VERSION 3\nCommandLine::AsString=apt-get%20upgrade\n\n\
    foo 1 amd64 none < 2 amd64 none /var/cache/apt/archives/foo_2_amd64.deb\n\
    foo 1 amd64 none < 2 amd64 none **CONFIGURE**\n";

#[test]
fn apt_hook_skips_say_why_and_let_apt_go_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let cases = [
        (
            "",
            "VERSION 3\nA=b\n\nfoo 2 amd64 none = 2 amd64 none **CONFIGURE**\n",
            "this transaction changes no package",
        ),
        (
            "[hooks]\nenabled = false\n",
            APT_UPGRADE,
            "the hooks are off ([hooks] enabled = false)",
        ),
        // The test root has no proc/1/root: not the booted system.
        ("", APT_UPGRADE, "inside a chroot (cannot read /proc/1/root"),
    ];
    for (config, input, why) in cases {
        let out = apt_pre(root, config, input);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert!(
            err.contains(&format!("rewind: no snapshot set taken: {why}")),
            "{err}"
        );
    }
}

#[test]
fn apt_hook_failure_policy_warns_or_stops_apt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    // Protocol 2 (the snippet's Version line missing): no set can be described.
    let v2 = "VERSION 2\n\nfoo 1 < 2 /x/foo_2.deb\n";
    let out = apt_pre(root, "", v2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(
            "rewind: warning: no rollback point was taken: apt sent the package list in protocol 2"
        ) && err.contains("apt goes on ([hooks] on_failure = \"warn\")"),
        "{err}"
    );
    let out = apt_pre(root, "[hooks]\non_failure = \"stop\"\n", v2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("stopping apt before dpkg runs, nothing was changed"),
        "{err}"
    );
    // Post with no set taken before: nothing to say.
    let out = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(["hook", "apt", "post", "--root"])
        .arg(root)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
