//! After a rollback, whether `/boot` holds the kernels the rolled-back root's package database
//! says are installed (issue 16): the sets' copies put back what they can
//! (`setkernel::after_rollback`); what is still missing, or a package-named kernel in `/boot`
//! that is not the root's, is said loudly by `rewind status` and, after a rollback, in the
//! journal and the login note, with the command that puts it right. rewind does not reinstall
//! packages itself (that needs the package manager and often the network, not a boot).

use std::path::Path;

use crate::plan::bootpkgs::{self, Expect, Found};
use crate::system::{bootfile, pkgdb};

/// The problems with `/boot` under `root` (the system's view), none when `/boot` is empty (a
/// separate `/boot` that is not mounted) or no database lists a kernel package.
pub fn problems(root: &Path) -> Vec<String> {
    let boot = root.join("boot");
    if bootfile::names(&boot).unwrap_or_default().is_empty() {
        return Vec::new();
    }
    let mut pkgs = pkgdb::dpkg_kernels(&root.join("var/lib/dpkg"));
    pkgs.extend(pkgdb::pacman_kernels(&root.join("var/lib/pacman/local")));
    let expect = bootpkgs::expected(&pkgs, |dir| pkgdb::pkgbase(&root.join(dir)));
    bootpkgs::problems(&expect, |e| look(root, e))
}

fn look(root: &Path, e: &Expect) -> Found {
    let inside = |p: &str| root.join(p.trim_start_matches('/'));
    let boot = inside(&e.boot);
    if !boot.is_file() {
        return Found::Missing;
    }
    match &e.image {
        None => Found::Matches,
        Some(image) => match bootfile::same_content(&boot, &inside(image)) {
            Ok(true) => Found::Matches,
            // The root's own image unreadable: nothing to compare with, nothing said.
            Err(_) => Found::Matches,
            Ok(false) => Found::Differs,
        },
    }
}

/// After a rollback finished (by rewind or noticed from stock LVM): each problem to the journal
/// and the next login's note.
pub fn after_rollback(root: &Path) {
    for p in problems(root) {
        log::error!("{p}");
        crate::system::motd::note(root, &p);
    }
}
