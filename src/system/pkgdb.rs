//! The package managers' own tools, run for their databases and version orders (`rewind diff`,
//! the package-manager hooks): `dpkg-query`, `dpkg --compare-versions`, `rpm --dbpath`,
//! `rpm --eval`, and pacman's local database read as files. The text they print is parsed in
//! `plan::pkgdb` and `plan::pkghook`; what differs is decided in the flows.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::plan::pkgdb;

/// dpkg-query's format: name, version, and dpkg's state of the package.
const DPKG_FORMAT: &str = "-f=${Package} ${Version} ${db:Status-Status}\n";

/// dpkg's packages, asked of `dpkg-query --admindir=DIR` (dpkg's own interface to its
/// database, pointed at the live one or a set's copy); none when there is no database.
pub fn dpkg_installed(admin: &Path) -> Option<BTreeMap<String, String>> {
    if !admin.join("status").is_file() {
        return None;
    }
    let out = Command::new("dpkg-query")
        .arg(format!("--admindir={}", admin.display()))
        .args(["-W", DPKG_FORMAT])
        .output()
        .ok()?;
    Some(crate::plan::pkghook::apt::installed(
        &String::from_utf8_lossy(&out.stdout),
    ))
}

/// `dpkg-query -W` of `names` in the running system's database, its standard output as dpkg
/// prints it (its exit status ignored: dpkg-query exits 1 when a name is unknown, removed and
/// purged, and its output still lists the others).
pub fn dpkg_query(names: &[&str]) -> std::io::Result<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", DPKG_FORMAT])
        .args(names)
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// pacman's local database (`DIR/NAME-VERSION/desc` files); none when the directory is not
/// there.
pub fn pacman_installed(dir: &Path) -> Option<BTreeMap<String, String>> {
    let dir = std::fs::read_dir(dir).ok()?;
    let texts: Vec<String> = dir
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("desc")).ok())
        .collect();
    Some(pkgdb::pacman_local(texts.iter().map(String::as_str)))
}

/// Where the running system's rpm keeps its database (`%_dbpath`: `/var/lib/rpm` or
/// `/usr/lib/sysimage/rpm` on Fedora and RHEL, `~/.rpmdb` as Debian's rpm is built); none
/// without an rpm command, so no rpm database is looked for.
pub fn rpm_dbpath() -> Option<String> {
    let out = Command::new("rpm")
        .args(["--eval", "%{_dbpath}"])
        .output()
        .ok()?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && path.starts_with('/')).then_some(path)
}

/// rpm's packages, asked of `rpm --dbpath DIR -qa` (rpm's own reading of its database, the
/// live one or a set's copy); none when the directory is not there.
pub fn rpm_installed(dir: &Path) -> Option<BTreeMap<String, String>> {
    if !dir.is_dir() {
        return None;
    }
    let out = Command::new("rpm")
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

/// Whether version `b` is newer than `a` in `manager`'s order (`dpkg --compare-versions`,
/// pacman's order as `plan::pkgdb::vercmp` has it, rpm's `rpm.vercmp`); none when the tool is
/// missing or either side is not one version.
pub fn newer(manager: &str, a: &str, b: &str) -> Option<bool> {
    // A state suffix ("3 (half-configured)") is not part of the version.
    let (a, b) = (a.split(' ').next()?, b.split(' ').next()?);
    match manager {
        "dpkg" => {
            let lt = Command::new("dpkg")
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
            let out = Command::new("rpm")
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

/// The kernel packages (`linux-image-*`) dpkg has installed in the database `admin`, each with
/// the files it owns under `/boot` (`dpkg-query -L`, dpkg's own list); none without a database.
pub fn dpkg_kernels(admin: &Path) -> Vec<crate::plan::bootpkgs::KernelPackage> {
    if !admin.join("status").is_file() {
        return Vec::new();
    }
    let query = |args: &[&str]| {
        Command::new("dpkg-query")
            .arg(format!("--admindir={}", admin.display()))
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let listed = query(&["-W", DPKG_FORMAT, "linux-image-*"]);
    crate::plan::pkghook::apt::installed(&listed)
        .into_iter()
        // Only fully installed packages: a half-removed one's files are not expected.
        .filter(|(_, v)| !v.contains(" ("))
        .map(|(name, _)| {
            let files = query(&["-L", &name])
                .lines()
                .filter(|l| l.starts_with("/boot/"))
                .map(str::to_owned)
                .collect();
            crate::plan::bootpkgs::KernelPackage {
                manager: "dpkg",
                name,
                files,
            }
        })
        .collect()
}

/// The packages of pacman's local database (`DIR/NAME-VERSION/{desc,files}`) that own a kernel
/// image `usr/lib/modules/VERSION/vmlinuz`, with those images.
pub fn pacman_kernels(dir: &Path) -> Vec<crate::plan::bootpkgs::KernelPackage> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let Ok(files) = std::fs::read_to_string(e.path().join("files")) else {
            continue;
        };
        let images: Vec<String> = files
            .lines()
            .filter(|l| l.starts_with("usr/lib/modules/") && l.ends_with("/vmlinuz"))
            .map(str::to_owned)
            .collect();
        if images.is_empty() {
            continue;
        }
        let desc = std::fs::read_to_string(e.path().join("desc")).unwrap_or_default();
        if let Some((name, _)) = crate::plan::pkghook::pacman::desc(&desc) {
            out.push(crate::plan::bootpkgs::KernelPackage {
                manager: "pacman",
                name,
                files: images,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The `pkgbase` file of a module directory (`usr/lib/modules/VERSION`): the name under which
/// mkinitcpio's hook copies that kernel to `/boot` (`vmlinuz-PKGBASE`).
pub fn pkgbase(moddir: &Path) -> Option<String> {
    std::fs::read_to_string(moddir.join("pkgbase")).ok()
}
