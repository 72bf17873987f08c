//! Files the boot loader reads (`/boot/grub/rewind.cfg`): replaced atomically (a new file beside
//! the old, synced, checked, renamed over it, the directory synced), so GRUB reads either the
//! old menu or the new one, never a half-written one, even after a power cut.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum BootFileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {checker} rejects the new menu, the old one is kept: {output}")]
    Rejected {
        path: PathBuf,
        checker: String,
        output: String,
    },
    #[error("{path}: {tool} failed: {output}")]
    Tool {
        path: PathBuf,
        tool: String,
        output: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BootFileError + '_ {
    move |source| BootFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// GRUB's own syntax checker, by the names distributions give it, if one is installed.
pub fn script_checker() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    ["grub-script-check", "grub2-script-check"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

/// Replaces `path` with `text`. With `checker` (a `grub-script-check`), the new file is checked
/// before it replaces the old one.
pub fn replace(path: &Path, text: &str, checker: Option<&Path>) -> Result<(), BootFileError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.new"));
    let result = (|| {
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(text.as_bytes()).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        drop(f);
        if let Some(c) = checker {
            let out = Command::new(c).arg(&tmp).output().map_err(io(c))?;
            if !out.status.success() {
                return Err(BootFileError::Rejected {
                    path: path.to_path_buf(),
                    checker: c.display().to_string(),
                    output: format!(
                        "{}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    )
                    .trim()
                    .to_string(),
                });
            }
        }
        fs::rename(&tmp, path).map_err(io(path))?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// GRUB's one-shot default: `next_entry=ENTRY` in the environment block `grubenv`, with GRUB's
/// own `grub-editenv` (what `grub-reboot` runs; the block must stay exactly 1024 bytes, so it is
/// never written by hand). GRUB boots ENTRY once and clears it (grub.cfg's 00_header part).
pub fn set_next_entry(grubenv: &Path, entry: &str) -> Result<(), BootFileError> {
    let out = Command::new("grub-editenv")
        .arg(grubenv)
        .arg("set")
        .arg(format!("next_entry={entry}"))
        .output()
        .map_err(io(Path::new("grub-editenv")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(BootFileError::Tool {
            path: grubenv.to_path_buf(),
            tool: "grub-editenv".into(),
            output: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// systemd-boot's one-shot entry: systemd's own `bootctl set-oneshot ID` (it writes the EFI
/// variable `LoaderEntryOneShot`; systemd-boot starts ID once and clears it).
pub fn set_oneshot(id: &str) -> Result<(), BootFileError> {
    let out = Command::new("bootctl")
        .arg("set-oneshot")
        .arg(id)
        .output()
        .map_err(io(Path::new("bootctl")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(BootFileError::Tool {
            path: PathBuf::from(id),
            tool: "bootctl set-oneshot".into(),
            output: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// GRUB's `grub-install --target=PLATFORM --boot-directory=BOOT DEVICE` (the system's own, on
/// PATH): GRUB's boot code on DEVICE made from the modules under `BOOT/grub/PLATFORM`.
pub fn grub_install(platform: &str, boot: &Path, device: &str) -> Result<(), BootFileError> {
    let out = Command::new("grub-install")
        .arg(format!("--target={platform}"))
        .arg(format!("--boot-directory={}", boot.display()))
        .arg(device)
        .output()
        .map_err(io(Path::new("grub-install")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(BootFileError::Tool {
            path: PathBuf::from(device),
            tool: "grub-install".into(),
            output: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// The listing of the initramfs `image` by the distribution's own lister (`lsinitramfs` of
/// initramfs-tools, `lsinitrd` of dracut, `lsinitcpio` of mkinitcpio: the first on PATH).
/// `None`: no lister is installed.
pub fn list_initramfs(image: &Path) -> Result<Option<String>, BootFileError> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    let Some(tool) = ["lsinitramfs", "lsinitrd", "lsinitcpio"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
    else {
        return Ok(None);
    };
    let out = Command::new(&tool).arg(image).output().map_err(io(&tool))?;
    if out.status.success() {
        Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()))
    } else {
        Err(BootFileError::Tool {
            path: image.to_path_buf(),
            tool: tool.display().to_string(),
            output: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// The text of a file the boot loader, a package or the system owns (`/etc/default/grub`,
/// a loader entry, debconf's database); `None` when it is absent or unreadable.
pub fn read(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok()
}

/// The text of a file that must be readable.
pub fn read_text(path: &Path) -> Result<String, BootFileError> {
    fs::read_to_string(path).map_err(io(path))
}

/// The bytes of a file (an EFI variable in efivarfs); `None` when it is absent or unreadable.
pub fn read_bytes(path: &Path) -> Option<Vec<u8>> {
    fs::read(path).ok()
}

/// The `.conf` files in `dir` (Boot Loader Specification entries), each name with its text;
/// none when `dir` is missing.
pub fn conf_files(dir: &Path) -> std::io::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for n in names(dir)? {
        if n.ends_with(".conf") {
            let text = fs::read_to_string(dir.join(&n))?;
            out.push((n, text));
        }
    }
    Ok(out)
}

/// [`replace`] unless `path` holds `text` already (a boot partition is not written for
/// nothing: the poller looks at every boot). Whether it wrote.
pub fn replace_if_changed(
    path: &Path,
    text: &str,
    checker: Option<&Path>,
) -> Result<bool, BootFileError> {
    if read(path).as_deref() == Some(text) {
        return Ok(false);
    }
    replace(path, text, checker).map(|()| true)
}

/// What tells whether a file changed without reading it: its size, its modification time and
/// its path; `None` when it cannot be looked at.
pub fn file_key(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(path).ok()?;
    Some(format!(
        "{} {}.{:09} {}",
        m.len(),
        m.mtime(),
        m.mtime_nsec(),
        path.display()
    ))
}

/// The file names in `dir` (none when it is missing).
pub fn names(dir: &Path) -> std::io::Result<Vec<String>> {
    match fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// A file's CRC-32 and size: the content key of a kernel copy.
pub fn checksum(path: &Path) -> Result<(u32, u64), BootFileError> {
    let mut f = File::open(path).map_err(io(path))?;
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let r = std::io::Read::read(&mut f, &mut buf).map_err(io(path))?;
        if r == 0 {
            break;
        }
        h.update(&buf[..r]);
        n += r as u64;
    }
    Ok((h.finalize(), n))
}

/// Whether two files hold the same bytes.
pub fn same_content(a: &Path, b: &Path) -> Result<bool, BootFileError> {
    let (ma, mb) = (
        fs::metadata(a).map_err(io(a))?,
        fs::metadata(b).map_err(io(b))?,
    );
    if ma.len() != mb.len() {
        return Ok(false);
    }
    Ok(fs::read(a).map_err(io(a))? == fs::read(b).map_err(io(b))?)
}

/// Copies `src` to `dst` the way [`replace`] writes: beside it, synced, renamed over it, the
/// directory synced; a copy cut short leaves only a temporary (`.NAME.new`).
pub fn copy(src: &Path, dst: &Path) -> Result<(), BootFileError> {
    let dir = dst.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io(dir))?;
    let name = dst
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.new"));
    let result = (|| {
        let mut from = File::open(src).map_err(io(src))?;
        let mut to = File::create(&tmp).map_err(io(&tmp))?;
        std::io::copy(&mut from, &mut to).map_err(io(&tmp))?;
        to.sync_all().map_err(io(&tmp))?;
        drop(to);
        fs::rename(&tmp, dst).map_err(io(dst))?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The bytes an unprivileged writer may still use in the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> Result<u64, BootFileError> {
    let st = nix::sys::statvfs::statvfs(path).map_err(|e| BootFileError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::from(e),
    })?;
    #[allow(clippy::useless_conversion)] // the field types differ between libcs
    Ok(u64::from(st.blocks_available()) * u64::from(st.fragment_size()))
}

/// Removes `path` (gone already is fine).
pub fn remove(path: &Path) -> Result<(), BootFileError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(path)(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unchanged_file_is_not_rewritten() {
        let d = tempfile::tempdir().expect("test io");
        let p = d.path().join("rewind.conf");
        assert!(replace_if_changed(&p, "a\n", None).expect("new"));
        let ino = |p: &Path| std::os::unix::fs::MetadataExt::ino(&fs::metadata(p).expect("io"));
        let first = ino(&p);
        assert!(!replace_if_changed(&p, "a\n", None).expect("same"));
        assert_eq!(ino(&p), first, "the same text is not written again");
        assert!(replace_if_changed(&p, "b\n", None).expect("changed"));
        assert_ne!(ino(&p), first, "a new text replaces the file");
        assert_eq!(read(&p).as_deref(), Some("b\n"));
    }

    #[test]
    fn conf_files_are_the_entries_only() {
        let d = tempfile::tempdir().expect("test io");
        assert!(
            conf_files(&d.path().join("missing"))
                .expect("none")
                .is_empty()
        );
        fs::write(d.path().join("b.conf"), "title B\n").expect("test io");
        fs::write(d.path().join("a.conf"), "title A\n").expect("test io");
        fs::write(d.path().join("notes.txt"), "x").expect("test io");
        let mut got = conf_files(d.path()).expect("read");
        got.sort();
        assert_eq!(
            got,
            [
                ("a.conf".to_owned(), "title A\n".to_owned()),
                ("b.conf".to_owned(), "title B\n".to_owned())
            ]
        );
    }

    #[test]
    fn replaces_whole_and_leaves_no_temporary() {
        let d = tempfile::tempdir().expect("test io");
        let p = d.path().join("rewind.cfg");
        fs::write(&p, "old").expect("test io");
        replace(&p, "new text\n", None).expect("test io");
        assert_eq!(fs::read_to_string(&p).expect("test io"), "new text\n");
        let names: Vec<_> = fs::read_dir(d.path())
            .expect("test io")
            .map(|e| e.expect("test io").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("rewind.cfg")]);
    }

    #[test]
    fn a_rejected_file_keeps_the_old_one() {
        let d = tempfile::tempdir().expect("test io");
        let p = d.path().join("rewind.cfg");
        fs::write(&p, "old").expect("test io");
        let e = replace(&p, "new", Some(Path::new("/bin/false"))).expect_err("rejected");
        assert!(matches!(e, BootFileError::Rejected { .. }), "{e}");
        assert_eq!(fs::read_to_string(&p).expect("test io"), "old");
        assert!(!d.path().join(".rewind.cfg.new").exists());
    }
}
