//! `rewind diff SET`: which packages differ between a snapshot set and the running system,
//! read from the package databases inside the set's snapshots (mounted read-only, as
//! `rewind mount` does, and unmounted again unless they were mounted already) and from the
//! running system's: dpkg's (through `dpkg-query --admindir`), pacman's local database, rpm's
//! (through `rpm --dbpath`, at the path the running system's rpm is configured with), each
//! read by `system::pkgdb`; here the two sides are compared.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::Error;
use super::env::System;
use super::{setmount, sets};
use crate::plan::pkgdb::{self, Differs};
use crate::system::mounts;
use crate::system::pkgdb as pkgtools;

/// One package database's differences.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DbDiff {
    /// `dpkg`, `pacman` or `rpm`.
    pub manager: &'static str,
    pub packages: Vec<Differs>,
}

/// The set's differences from now, one entry per package database found in the set or now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SetDiff {
    pub set: String,
    pub databases: Vec<DbDiff>,
}

/// dpkg's database directory; `dpkg-query --admindir` reads the set's copy.
const DPKG_ADMIN: &str = "/var/lib/dpkg";
const PACMAN_LOCAL: &str = "/var/lib/pacman/local";

/// `rewind diff SET`.
pub fn run(sys: &System, name: &str) -> Result<SetDiff, Error> {
    let view = sets::show(sys, name)?;
    let targets = setmount::targets(&sys.root, &view)?;
    let now = mounts::read(&sys.root).map_err(|e| Error::Set(format!("reading mountinfo: {e}")))?;
    let mounted = targets
        .iter()
        .all(|(_, _, dir)| mounts::mounted_at(&now, &dir.to_string_lossy()).is_some());
    if !mounted {
        setmount::mount(sys, name)?;
    }
    // Each member's live mount point and the directory its snapshot is mounted on.
    let places: Vec<(String, PathBuf)> = view
        .members
        .iter()
        .zip(&targets)
        .filter_map(|(m, (_, _, dir))| m.mount.clone().map(|p| (p, dir.clone())))
        .collect();
    let result = compare(sys, name, &places);
    if !mounted && let Err(e) = setmount::umount(sys, name) {
        log::warn!("snapshot set {name}: unmounting after the diff: {e}");
    }
    result
}

/// Where `path` (absolute, in the running system) is inside the set: under the member whose
/// live mount point is the longest prefix of it; none when no member holds it.
fn in_set(places: &[(String, PathBuf)], path: &str) -> Option<PathBuf> {
    places
        .iter()
        .filter(|(mp, _)| {
            mp == "/" || path == mp || path.starts_with(&format!("{}/", mp.trim_end_matches('/')))
        })
        .max_by_key(|(mp, _)| mp.len())
        .map(|(mp, dir)| dir.join(path[mp.len()..].trim_start_matches('/')))
}

fn compare(sys: &System, name: &str, places: &[(String, PathBuf)]) -> Result<SetDiff, Error> {
    let live = |p: &str| mounts::under(&sys.root, p);
    let mut databases = Vec::new();
    type Reader = fn(&Path) -> Option<BTreeMap<String, String>>;
    // The fixed paths borrowed, not copied: a copied short literal is compiled into immediate
    // stores, and lintian's override for dpkg's path (packaging/deb) would then go unused.
    let mut dbs: Vec<(&'static str, Cow<'static, str>, Reader)> = vec![
        ("dpkg", Cow::Borrowed(DPKG_ADMIN), pkgtools::dpkg_installed),
        (
            "pacman",
            Cow::Borrowed(PACMAN_LOCAL),
            pkgtools::pacman_installed,
        ),
    ];
    if let Some(path) = pkgtools::rpm_dbpath() {
        dbs.push(("rpm", Cow::Owned(path), pkgtools::rpm_installed));
    }
    for (manager, path, read) in dbs {
        let path: &str = &path;
        let now = read(&live(path));
        let then = in_set(places, path).and_then(|p| read(&p));
        if now.is_none() && then.is_none() {
            continue;
        }
        if in_set(places, path).is_none() {
            return Err(Error::Set(format!(
                "snapshot set {name} holds no copy of {path}: no member is mounted where it lives"
            )));
        }
        let newer = |a: &str, b: &str| pkgtools::newer(manager, a, b);
        databases.push(DbDiff {
            manager,
            packages: pkgdb::diff(&then.unwrap_or_default(), &now.unwrap_or_default(), &newer),
        });
    }
    Ok(SetDiff {
        set: name.to_owned(),
        databases,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deepest_member_holds_the_path() {
        let places = vec![
            ("/".to_owned(), PathBuf::from("/run/rewind/s/vg0/root")),
            ("/var".to_owned(), PathBuf::from("/run/rewind/s/vg0/var")),
            ("/variant".to_owned(), PathBuf::from("/run/rewind/s/vg0/x")),
        ];
        assert_eq!(
            in_set(&places, "/var/lib/dpkg/status"),
            Some(PathBuf::from("/run/rewind/s/vg0/var/lib/dpkg/status"))
        );
        assert_eq!(
            in_set(&places, "/usr/x"),
            Some(PathBuf::from("/run/rewind/s/vg0/root/usr/x"))
        );
        assert_eq!(in_set(&places[1..], "/usr/x"), None);
    }
}
