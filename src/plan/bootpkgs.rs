//! Whether `/boot` holds the kernels the root's package database says are installed (issue 16:
//! after a rollback, `/boot`, outside the set, may have lost a kernel the rolled-back root still
//! lists, or hold a newer build under a package-named file). Pure: the packages' file lists and
//! what `/boot` holds come in, the problems to say loudly come out, each with its fix.

/// One installed kernel package as its database lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelPackage {
    /// The package manager: `dpkg` or `pacman`.
    pub manager: &'static str,
    pub name: String,
    /// dpkg: the files it owns under `/boot` (absolute, as `dpkg-query -L` prints them).
    /// pacman: the kernel images it owns under `usr/lib/modules/VERSION/vmlinuz`.
    pub files: Vec<String>,
}

/// What `/boot` shows for one expected file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// There, and (for a package-named kernel) byte for byte the root's image.
    Matches,
    Missing,
    /// A package-named kernel (`/boot/vmlinuz-linux`) that is not the root's image.
    Differs,
}

/// One expectation: `boot` (absolute path in `/boot`) should hold the package's kernel;
/// `image` is the root's own copy to compare it with (package-named kernels only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    pub package: String,
    pub manager: &'static str,
    pub boot: String,
    pub image: Option<String>,
}

/// The files `/boot` must hold for `pkgs`: dpkg's kernel images (`/boot/vmlinuz-*`) as the
/// package lists them; for pacman the image named by the module directory's `pkgbase`
/// (`pkgbase(dir)` reads `usr/lib/modules/VERSION/pkgbase`), which mkinitcpio's hook copies to
/// `/boot/vmlinuz-PKGBASE` and no package owns.
pub fn expected(pkgs: &[KernelPackage], pkgbase: impl Fn(&str) -> Option<String>) -> Vec<Expect> {
    let mut out = Vec::new();
    for p in pkgs {
        for f in &p.files {
            match p.manager {
                "dpkg" if f.starts_with("/boot/vmlinuz-") || f.starts_with("/boot/vmlinux-") => out
                    .push(Expect {
                        package: p.name.clone(),
                        manager: p.manager,
                        boot: f.clone(),
                        image: None,
                    }),
                "pacman" => {
                    let Some(dir) = f.strip_suffix("/vmlinuz") else {
                        continue;
                    };
                    if !dir.starts_with("usr/lib/modules/") || dir.matches('/').count() != 3 {
                        continue;
                    }
                    if let Some(base) = pkgbase(dir) {
                        let base = base.trim();
                        if !base.is_empty() && !base.contains('/') {
                            out.push(Expect {
                                package: p.name.clone(),
                                manager: p.manager,
                                boot: format!("/boot/vmlinuz-{base}"),
                                image: Some(format!("/{f}")),
                            });
                        }
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// The problems to say for the expectations `/boot` does not meet (`look` tells what `/boot`
/// shows for one), each naming the package and the command that puts it right.
pub fn problems(expect: &[Expect], look: impl Fn(&Expect) -> Found) -> Vec<String> {
    let mut out = Vec::new();
    for e in expect {
        let (pkg, boot) = (&e.package, &e.boot);
        match (look(e), e.manager) {
            (Found::Matches, _) => {}
            (Found::Missing, "dpkg") => out.push(format!(
                "kernel package {pkg} is installed in this root but {boot} is missing (a rolled-back upgrade removed it from /boot, which is not in the set): the boot menu cannot start it; reinstall it: apt install --reinstall {pkg}"
            )),
            (Found::Missing, _) => out.push(format!(
                "kernel package {pkg} is installed in this root but {boot} is missing: reinstall it: pacman -S {pkg}"
            )),
            (Found::Differs, _) => out.push(format!(
                "{boot} is not the kernel of package {pkg} installed in this root ({}; a rolled-back upgrade left its own in /boot, which is not in the set, and its modules are gone): reinstall it: pacman -S {pkg}",
                e.image.as_deref().unwrap_or("?")
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deb(name: &str, files: &[&str]) -> KernelPackage {
        KernelPackage {
            manager: "dpkg",
            name: name.into(),
            files: files.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_debian_kernel_is_expected_by_its_image_only() {
        let pkgs = [
            deb(
                "linux-image-6.1.0-57-cloud-amd64",
                &[
                    "/boot",
                    "/boot/System.map-6.1.0-57-cloud-amd64",
                    "/boot/config-6.1.0-57-cloud-amd64",
                    "/boot/vmlinuz-6.1.0-57-cloud-amd64",
                    "/lib/modules/6.1.0-57-cloud-amd64/kernel",
                ],
            ),
            deb(
                "linux-image-cloud-amd64",
                &["/usr/share/doc/linux-image-cloud-amd64"],
            ),
        ];
        let e = expected(&pkgs, |_| None);
        assert_eq!(
            e,
            [Expect {
                package: "linux-image-6.1.0-57-cloud-amd64".into(),
                manager: "dpkg",
                boot: "/boot/vmlinuz-6.1.0-57-cloud-amd64".into(),
                image: None,
            }]
        );
        let p = problems(&e, |_| Found::Missing);
        assert_eq!(p.len(), 1);
        assert!(
            p[0].contains("/boot/vmlinuz-6.1.0-57-cloud-amd64 is missing")
                && p[0].ends_with("apt install --reinstall linux-image-6.1.0-57-cloud-amd64"),
            "{p:?}"
        );
        assert!(problems(&e, |_| Found::Matches).is_empty());
    }

    #[test]
    fn an_arch_kernel_is_expected_under_its_pkgbase_and_compared_with_the_roots_image() {
        let pkgs = [KernelPackage {
            manager: "pacman",
            name: "linux-lts".into(),
            files: vec![
                "usr/lib/modules/6.6.1-1-lts/pkgbase".into(),
                "usr/lib/modules/6.6.1-1-lts/vmlinuz".into(),
                "usr/lib/modules/6.6.1-1-lts/kernel/fs/ext4/ext4.ko.zst".into(),
                // Not a kernel image: deeper in the tree.
                "usr/lib/modules/6.6.1-1-lts/build/arch/x86/boot/vmlinuz".into(),
            ],
        }];
        let e = expected(&pkgs, |dir| {
            assert_eq!(dir, "usr/lib/modules/6.6.1-1-lts");
            Some("linux-lts\n".into())
        });
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].boot, "/boot/vmlinuz-linux-lts");
        assert_eq!(
            e[0].image.as_deref(),
            Some("/usr/lib/modules/6.6.1-1-lts/vmlinuz")
        );
        let p = problems(&e, |_| Found::Differs);
        assert!(
            p[0].starts_with("/boot/vmlinuz-linux-lts is not the kernel of package linux-lts")
                && p[0].ends_with("pacman -S linux-lts"),
            "{p:?}"
        );
        // No pkgbase file, or one naming a path: nothing expected (never guessed).
        assert!(expected(&pkgs, |_| None).is_empty());
        assert!(expected(&pkgs, |_| Some("../etc".into())).is_empty());
    }
}
