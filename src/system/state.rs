//! rewind's own small state files (under `/run/rewind` and `/var/lib/rewind`): read, written
//! whole (a temporary file beside it renamed over it, its directory made when missing),
//! removed, listed. None of them decides what happens at boot (the LVM metadata does); they
//! carry notices and pending records from one run to the next.

use std::io;
use std::path::{Path, PathBuf};

/// The file's text; `None` when it is absent or unreadable.
pub fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// The file's bytes.
pub fn read_bytes(path: &Path) -> io::Result<Vec<u8>> {
    std::fs::read(path)
}

/// Writes `bytes` to `path` whole or not at all: a reader sees the old file or the new one.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// [`write`] unless `path` is there already (the first writer's content stays); whether it
/// wrote.
pub fn write_new(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    if path.exists() {
        return Ok(false);
    }
    write(path, bytes).map(|()| true)
}

/// Removes `path`; one that is already gone is no error.
pub fn remove(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The files in `dir` whose names end in `.EXT`, sorted; none when `dir` is absent.
pub fn list(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_whole_kept_by_write_new_listed_and_removed() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("a/b/one.json");
        assert_eq!(read(&p), None);
        write(&p, b"1").expect("write");
        assert!(!write_new(&p, b"2").expect("write_new"));
        assert_eq!(read(&p).as_deref(), Some("1"));
        write(&p, b"3").expect("write");
        assert_eq!(read_bytes(&p).expect("read"), b"3");
        assert!(write_new(&d.path().join("a/b/two.json"), b"x").expect("write_new"));
        std::fs::write(d.path().join("a/b/other.txt"), b"").expect("test io");
        assert_eq!(
            list(&d.path().join("a/b"), "json"),
            [d.path().join("a/b/one.json"), d.path().join("a/b/two.json")]
        );
        remove(&p).expect("remove");
        remove(&p).expect("removing a file that is gone");
        assert_eq!(list(&d.path().join("a/b"), "json").len(), 1);
        assert!(list(&d.path().join("nothing"), "json").is_empty());
    }
}
