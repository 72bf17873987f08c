//! Runs LVM's thin pool metadata check (`thin_check`) on a live `_tmeta` device; what the
//! result means is `plan::thincheck`'s.

use crate::plan::dev::DevNum;
use crate::plan::thincheck::{self, HEADER_BYTES, Ran, ThinCheck, Verdict};
use std::io::{self, Read};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Most bytes of the checker's output kept for the console.
const OUTPUT_KEPT: usize = 600;

/// Checks a pool's metadata device before the pool is loaded.
pub trait PoolCheck {
    /// Checks the live device `name` (`dev`), the metadata LV of a pool about to be loaded.
    fn check_metadata(&mut self, name: &str, dev: DevNum) -> Verdict;
}

/// The real check: the node `ROOT/dev/mapper/NAME` (made when udev has not), LVM's
/// `skip_zero` read, then the configured command.
#[derive(Debug, Clone)]
pub struct ThinCheckRunner {
    pub root: PathBuf,
    pub check: ThinCheck,
}

impl PoolCheck for ThinCheckRunner {
    fn check_metadata(&mut self, name: &str, dev: DevNum) -> Verdict {
        if self.check.executable.is_none() {
            return Verdict::Skipped(
                "thin_check_executable is \"\" in lvm.conf: the pool's metadata is not checked"
                    .into(),
            );
        }
        // The executable under ROOT (`/` at boot; tests never run the host's). An absolute
        // path that is not there: skipped before any node is made or read.
        let mut check = self.check.clone();
        if let Some(exe) = &mut check.executable
            && exe.starts_with('/')
        {
            *exe = self
                .root
                .join(exe.trim_start_matches('/'))
                .to_string_lossy()
                .into_owned();
            if std::fs::symlink_metadata(&*exe).is_err() {
                return thincheck::verdict(std::slice::from_ref(exe), &Ran::NotFound);
            }
        }
        let path = match node(&self.root, name, dev) {
            Ok(p) => p,
            Err(e) => {
                return Verdict::NeedsRepair(format!(
                    "cannot make the node of {name} to check it: {e}"
                ));
            }
        };
        match read_header(&path) {
            Ok(h) if thincheck::never_written(&h) => {
                return Verdict::Skipped(format!(
                    "{} starts with zeros (a pool never used): not checked, as lvm does",
                    path.display()
                ));
            }
            Ok(_) => {}
            Err(e) => {
                return Verdict::NeedsRepair(format!("cannot read {}: {e}", path.display()));
            }
        }
        let Some(argv) = check.argv(&path.to_string_lossy()) else {
            return Verdict::Skipped("switched off".into());
        };
        let (ran, output) = run(&argv);
        log::debug!("{}: {ran:?}", argv.join(" "));
        match thincheck::verdict(&argv, &ran) {
            Verdict::NeedsRepair(why) if !output.is_empty() => {
                Verdict::NeedsRepair(format!("{why}: {output}"))
            }
            v => v,
        }
    }
}

/// `ROOT/dev/mapper/NAME`, made for `dev` when it is not a block device already.
fn node(root: &Path, name: &str, dev: DevNum) -> io::Result<PathBuf> {
    let path = root.join("dev/mapper").join(name);
    if std::fs::metadata(&path).is_ok_and(|m| m.file_type().is_block_device()) {
        return Ok(path);
    }
    super::nodes::make(root, name, dev.major, dev.minor, None)?;
    Ok(path)
}

/// The device's first [`HEADER_BYTES`] bytes (fewer when it is shorter).
fn read_header(path: &Path) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(HEADER_BYTES);
    std::fs::File::open(path)?
        .take(HEADER_BYTES as u64)
        .read_to_end(&mut buf)?;
    Ok(buf)
}

/// Runs `argv` to its end (as LVM's `exec_cmd`, no time limit: a large pool's check takes as
/// long as it takes), stdin closed; its output, joined into one line and cut to its last
/// [`OUTPUT_KEPT`] bytes.
pub fn run(argv: &[String]) -> (Ran, String) {
    let Some((exe, args)) = argv.split_first() else {
        return (Ran::CannotStart("no command".into()), String::new());
    };
    let out = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return (Ran::NotFound, String::new()),
        Err(e) => return (Ran::CannotStart(e.to_string()), String::new()),
    };
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    let mut one: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.len() > OUTPUT_KEPT {
        let mut cut = one.len() - OUTPUT_KEPT;
        while !one.is_char_boundary(cut) {
            cut += 1;
        }
        one = format!("...{}", &one[cut..]);
    }
    let ran = match (out.status.code(), out.status.signal()) {
        (Some(c), _) => Ran::Exited(c),
        (None, Some(s)) => Ran::Signalled(s),
        (None, None) => Ran::CannotStart("no exit status".into()),
    };
    (ran, one)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) -> String {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.display().to_string()
    }

    #[test]
    fn runs_the_command_and_reads_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("args");
        let ok = script(
            dir.path(),
            "ok",
            &format!("printf '%s\\n' \"$@\" > {}", log.display()),
        );
        let argv: Vec<String> = [ok.as_str(), "-q", "--clear-needs-check-flag", "/dev/x"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(run(&argv), (Ran::Exited(0), String::new()));
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "-q\n--clear-needs-check-flag\n/dev/x\n"
        );
        let bad = script(
            dir.path(),
            "bad",
            "echo 'examining superblock' ; echo 'bad checksum in btree node' >&2; exit 1",
        );
        assert_eq!(
            run(&[bad]),
            (
                Ran::Exited(1),
                "examining superblock bad checksum in btree node".into()
            )
        );
        let killed = script(dir.path(), "killed", "kill -9 $$");
        assert_eq!(run(&[killed]).0, Ran::Signalled(9));
        assert_eq!(
            run(&[dir.path().join("absent").display().to_string()]).0,
            Ran::NotFound
        );
        let noexec = dir.path().join("noexec");
        std::fs::write(&noexec, "x").unwrap();
        assert!(matches!(
            run(&[noexec.display().to_string()]).0,
            Ran::CannotStart(_)
        ));
        let long = script(
            dir.path(),
            "long",
            "i=0; while [ $i -lt 300 ]; do printf 'word%d ' $i; i=$((i+1)); done; exit 2",
        );
        let (ran, out) = run(&[long]);
        assert_eq!(ran, Ran::Exited(2));
        assert!(out.starts_with("...") && out.ends_with("word299"), "{out}");
        assert!(out.len() <= OUTPUT_KEPT + 3);
    }

    /// The runner on a file standing in for `_tmeta` (the node exists: a regular file is not
    /// a block device, so `ROOT/dev/mapper/NAME` is a real node here only as root; the header
    /// read and the command are what is tested, through a block device when one can be made).
    #[test]
    fn header_and_verdicts() {
        let dir = tempfile::tempdir().unwrap();
        let tc = script(
            dir.path(),
            "tc",
            "last=; for a; do last=$a; done; head -c 4 \"$last\" | grep -q BAD && { echo damaged >&2; exit 7; }; exit 0",
        );
        let data = dir.path().join("meta");
        // Header checks (LVM's skip_zero) on plain files.
        std::fs::write(&data, vec![0u8; 4096]).unwrap();
        assert!(thincheck::never_written(&read_header(&data).unwrap()));
        std::fs::write(&data, b"BAD!").unwrap();
        assert_eq!(read_header(&data).unwrap(), b"BAD!");
        // The verdicts the command gives.
        let check = ThinCheck::from_settings(Some(&tc), Some(&["-q".to_owned()]));
        let argv = check.argv(&data.to_string_lossy()).unwrap();
        let (ran, out) = run(&argv);
        assert_eq!(ran, Ran::Exited(7));
        assert_eq!(out, "damaged");
        std::fs::write(&data, b"GOOD").unwrap();
        assert_eq!(thincheck::verdict(&argv, &run(&argv).0), Verdict::Passed);
        // The executable is looked for under ROOT: absent there, skipped, whatever the host has.
        let mut absent = ThinCheckRunner {
            root: dir.path().to_path_buf(),
            check: ThinCheck::from_settings(Some("/bin/sh"), None),
        };
        assert!(matches!(
            absent.check_metadata("vg-pool_tmeta", DevNum { major: 7, minor: 0 }),
            Verdict::Skipped(m) if m.contains(&format!("{}/bin/sh is not installed", dir.path().display()))
        ));
        // Switched off: nothing runs.
        let mut off = ThinCheckRunner {
            root: dir.path().to_path_buf(),
            check: ThinCheck::from_settings(Some(""), None),
        };
        assert!(matches!(
            off.check_metadata("vg-pool_tmeta", DevNum { major: 7, minor: 0 }),
            Verdict::Skipped(m) if m.contains("thin_check_executable is \"\"")
        ));
    }
}
