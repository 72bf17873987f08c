//! The note shown at the next login (`/run/motd.d/`, read by pam_motd): what rewind wants an
//! administrator to see without asking, such as the end of a rollback. Lost at the next boot,
//! as `/run` is.

use std::io::Write;
use std::path::Path;

/// The file rewind's notes go to, under the root.
pub const MOTD: &str = "run/motd.d/rewind";

/// Appends `line` to the login note; a failure is only logged (the journal has it too).
pub fn note(root: &Path, line: &str) {
    let path = root.join(MOTD);
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
        })
        .and_then(|mut f| writeln!(f, "rewind: {line}"));
    if let Err(e) = written {
        log::warn!("{}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn notes_accumulate_under_the_root() {
        let root = tempfile::tempdir().expect("tempdir");
        super::note(root.path(), "one");
        super::note(root.path(), "two");
        let text = std::fs::read_to_string(root.path().join(super::MOTD)).expect("motd");
        assert_eq!(text, "rewind: one\nrewind: two\n");
    }
}
