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

#[test]
fn check_config_boot_json_writes_the_checked_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[log]\nlevel = \"debug\"\n[activate]\nlvs = [\"vg0/x\"]\n",
    )
    .expect("write");
    let out_json = dir.path().join("out.json");
    let out = rewind(&[
        "check-config",
        "--config",
        good.to_str().expect("utf8"),
        "--boot-json",
        out_json.to_str().expect("utf8"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("good.toml: ok"), "{stdout}");
    assert!(stdout.contains("out.json: written"), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out_json).expect("written")).expect("json");
    assert_eq!(json["log"]["level"], "debug");
    assert_eq!(json["activate"]["lvs"], serde_json::json!(["vg0/x"]));
    // Every table, the defaults filled in.
    assert_eq!(json["poll"]["interval_max_ms"], 1000);
    assert_eq!(json["scan"]["lvm_config_dir"], "/etc/lvm");
    assert_eq!(json.as_object().expect("object").len(), 8, "{json}");

    // An invalid file: exit 1 as without --boot-json, and nothing written.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[log]\nlevel = \"loud\"\n").expect("write");
    let bad_json = dir.path().join("bad.json");
    let out = rewind(&[
        "check-config",
        "--config",
        bad.to_str().expect("utf8"),
        "--boot-json",
        bad_json.to_str().expect("utf8"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown variant `loud`"), "{err}");
    assert!(
        !bad_json.exists(),
        "an invalid configuration wrote {bad_json:?}"
    );

    // No file: the defaults, written.
    let missing = dir.path().join("missing.toml");
    let out = rewind(&[
        "check-config",
        "--config",
        missing.to_str().expect("utf8"),
        "--boot-json",
        bad_json.to_str().expect("utf8"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&bad_json).expect("written")).expect("json");
    assert_eq!(json["log"]["level"], "info");

    // A file that cannot be written: exit 1, saying which.
    let out = rewind(&[
        "check-config",
        "--config",
        good.to_str().expect("utf8"),
        "--boot-json",
        dir.path().join("no/such/dir.json").to_str().expect("utf8"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot write"),
        "{out:?}"
    );
}

/// Runs `BIN early` with `rd.rewind=0` (it logs and returns) under a root whose `dev/kmsg` is a
/// file; returns what it logged there.
fn boot_log(bin: &str, root: &std::path::Path, extra: &[&str]) -> String {
    let kmsg = root.join("dev/kmsg");
    std::fs::create_dir_all(root.join("dev")).expect("mkdir");
    std::fs::write(&kmsg, "").expect("kmsg");
    let out = Command::new(bin)
        .args(["early", "--root"])
        .arg(root)
        .args(["--cmdline", "rd.rewind=0"])
        .args(extra)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    std::fs::read_to_string(&kmsg).expect("kmsg")
}

/// `rewind early` in both binaries reads the image's JSON, not `rewind.toml`; a bad JSON or a
/// TOML text in its place means the defaults and a warning in the kernel log.
#[test]
fn early_reads_the_boot_json_in_both_binaries() {
    const STARTED: &str = concat!("<7>rewind: rewind early ", env!("CARGO_PKG_VERSION"));
    const OFF: &str = "<5>rewind: rd.rewind=0: doing nothing\n";
    for bin in [
        env!("CARGO_BIN_EXE_rewind"),
        env!("CARGO_BIN_EXE_rewind-initramfs"),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let etc = root.join("etc/rewind");
        std::fs::create_dir_all(&etc).expect("mkdir");
        // rewind.toml alone is not read: the defaults (info).
        std::fs::write(etc.join("rewind.toml"), "[log]\nlevel = \"debug\"\n").expect("write");
        let log = boot_log(bin, root, &[]);
        assert_eq!(log, OFF, "{bin}");

        // The JSON is: debug.
        let json = etc.join("initramfs.json");
        std::fs::write(&json, r#"{"log": {"level": "debug"}}"#).expect("write");
        let log = boot_log(bin, root, &[]);
        assert!(
            log.starts_with(STARTED) && log.ends_with(OFF),
            "{bin}: {log}"
        );
        // warn: the info line is not logged.
        std::fs::write(&json, r#"{"log": {"level": "warn"}}"#).expect("write");
        assert_eq!(boot_log(bin, root, &[]), "", "{bin}");

        // --config names the file.
        let other = root.join("other.json");
        std::fs::write(&other, r#"{"log": {"level": "debug"}}"#).expect("write");
        let log = boot_log(bin, root, &["--config", other.to_str().expect("utf8")]);
        assert!(log.starts_with(STARTED), "{bin}: {log}");

        // A bad value: a warning, then the defaults (info).
        std::fs::write(&json, r#"{"log": {"level": "loud"}}"#).expect("write");
        let log = boot_log(bin, root, &[]);
        let warning = format!("<4>rewind: {}: unknown variant `loud`", json.display());
        assert!(log.starts_with(&warning), "{bin}: {log}");
        assert!(
            log.contains("; using the defaults\n") && log.ends_with(OFF),
            "{bin}: {log}"
        );

        // rewind.toml's text in its place: the hint, then the defaults.
        std::fs::write(&json, "[log]\nlevel = \"debug\"\n").expect("write");
        let log = boot_log(bin, root, &[]);
        assert!(
            log.starts_with(&format!(
                "<4>rewind: {}: not JSON but TOML, it seems (",
                json.display()
            )) && log.contains("the initramfs hooks write from /etc/rewind/rewind.toml")
                && log.ends_with(OFF),
            "{bin}: {log}"
        );
    }
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
