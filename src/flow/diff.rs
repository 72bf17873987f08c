//! `rewind diff SET`: which packages differ between a snapshot set and the running system,
//! read from the package databases inside the set's snapshots (mounted read-only, as
//! `rewind mount` does, and unmounted again unless they were mounted already) and from the
//! running system's: dpkg's (through `dpkg-query --admindir`), pacman's local database, rpm's
//! (through `rpm --dbpath`, at the path the running system's rpm is configured with).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::Error;
use super::env::System;
use super::{setmount, sets};
use crate::plan::pkgdb::{self, Differs};
use crate::system::mounts;

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
        ("dpkg", Cow::Borrowed(DPKG_ADMIN), read_dpkg),
        ("pacman", Cow::Borrowed(PACMAN_LOCAL), read_pacman),
    ];
    if let Some(path) = rpm_dbpath() {
        dbs.push(("rpm", Cow::Owned(path), read_rpm));
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
        let newer = |a: &str, b: &str| compare_versions(manager, a, b);
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

/// dpkg's packages, asked of `dpkg-query --admindir=DIR` (dpkg's own interface to its
/// database, pointed at the live one or the set's copy); none when there is no database.
fn read_dpkg(admin: &Path) -> Option<BTreeMap<String, String>> {
    if !admin.join("status").is_file() {
        return None;
    }
    let out = std::process::Command::new("dpkg-query")
        .arg(format!("--admindir={}", admin.display()))
        .args(["-W", "-f=${Package} ${Version} ${db:Status-Status}\n"])
        .output()
        .ok()?;
    Some(crate::plan::pkghook::apt::installed(
        &String::from_utf8_lossy(&out.stdout),
    ))
}

fn read_pacman(path: &Path) -> Option<BTreeMap<String, String>> {
    let dir = std::fs::read_dir(path).ok()?;
    let texts: Vec<String> = dir
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("desc")).ok())
        .collect();
    Some(pkgdb::pacman_local(texts.iter().map(String::as_str)))
}

/// Where the running system's rpm keeps its database (`%_dbpath`: `/var/lib/rpm` or
/// `/usr/lib/sysimage/rpm` on Fedora and RHEL, `~/.rpmdb` as Debian's rpm is built); none
/// without an rpm command, so no rpm database is looked for.
fn rpm_dbpath() -> Option<String> {
    let out = std::process::Command::new("rpm")
        .args(["--eval", "%{_dbpath}"])
        .output()
        .ok()?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && path.starts_with('/')).then_some(path)
}

/// rpm's packages, asked of `rpm --dbpath DIR -qa` (rpm's own reading of its database, the
/// live one or the set's copy); none when the directory is not there.
fn read_rpm(dir: &Path) -> Option<BTreeMap<String, String>> {
    if !dir.is_dir() {
        return None;
    }
    let out = std::process::Command::new("rpm")
        .arg("--dbpath")
        .arg(dir)
        .args(["-qa", "--qf", pkgdb::RPM_QUERY_FORMAT])
        .output()
        .ok()?;
    if !out.status.success() {
        log::warn!(
            "rpm --dbpath {} -qa: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return None;
    }
    Some(pkgdb::rpm_installed(&String::from_utf8_lossy(&out.stdout)))
}

/// Whether `b` is newer than `a` in the package manager's order (`dpkg --compare-versions`,
/// pacman's order, `plan::pkgdb::vercmp`, rpm's `rpm.vercmp`); none when the tool is missing
/// or either side is not one version.
fn compare_versions(manager: &str, a: &str, b: &str) -> Option<bool> {
    // A state suffix ("3 (half-configured)") is not part of the version.
    let (a, b) = (a.split(' ').next()?, b.split(' ').next()?);
    match manager {
        "dpkg" => {
            let lt = std::process::Command::new("dpkg")
                .args(["--compare-versions", a, "lt", b])
                .status()
                .ok()?;
            Some(lt.success())
        }
        "pacman" => Some(pkgdb::vercmp::vercmp(a, b) == std::cmp::Ordering::Less),
        "rpm" => {
            // Into rpm's macro language only what an EVR is made of (no quote can get in).
            let evr = |v: &str| {
                !v.is_empty()
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._+~^:-".contains(c))
            };
            if !evr(a) || !evr(b) {
                return None;
            }
            let out = std::process::Command::new("rpm")
                .arg("--eval")
                .arg(format!("%{{lua:print(rpm.vercmp(\"{a}\", \"{b}\"))}}"))
                .output()
                .ok()?;
            match String::from_utf8_lossy(&out.stdout).trim() {
                "-1" => Some(true),
                "1" => Some(false),
                _ => None,
            }
        }
        _ => None,
    }
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
