//! Host tier (root): after a rollback, `rewind status`'s check that `/boot` holds the kernels
//! the root's package database lists, against databases the real package managers wrote and
//! read: a kernel package built by `dpkg-deb` and installed by `dpkg --root` into a scratch
//! root; an Arch-style local database read back by the real `pacman`.

use std::path::Path;
use std::process::Command;

use rewind::flow::bootpkgs;

fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("test io");
    std::fs::write(p, bytes).expect("test io");
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A kernel package as Debian's: its image, config and modules, built by dpkg-deb.
fn kernel_deb(dir: &Path, version: &str) -> std::path::PathBuf {
    let pkg = dir.join(format!("pkg-{version}"));
    let name = format!("linux-image-{version}");
    write(
        &pkg,
        "DEBIAN/control",
        format!(
            "Package: {name}\nVersion: 1\nArchitecture: all\nMaintainer: rewind tests <tests@localhost>\nDescription: a test kernel\n"
        )
        .as_bytes(),
    );
    write(&pkg, &format!("boot/vmlinuz-{version}"), b"kernel image");
    write(&pkg, &format!("boot/config-{version}"), b"CONFIG_X=y\n");
    write(
        &pkg,
        &format!("lib/modules/{version}/modules.order"),
        b"kernel/fs/ext4/ext4.ko\n",
    );
    let deb = dir.join(format!("{name}.deb"));
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&pkg)
        .arg(&deb));
    deb
}

fn dpkg(root: &Path, args: &[&str]) {
    run(Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(["--force-script-chrootless", "--force-depends"])
        .args(args));
}

#[test]
fn loop_status_names_a_kernel_package_whose_image_left_boot() {
    let d = tempfile::tempdir().expect("tempdir");
    let root = d.path().join("root");
    for dir in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "boot"] {
        std::fs::create_dir_all(root.join(dir)).expect("test io");
    }
    write(&root, "var/lib/dpkg/status", b"");
    // An empty /boot (a separate /boot that is not mounted): nothing is said.
    assert!(bootpkgs::problems(&root).is_empty());
    let old = kernel_deb(d.path(), "9.9.1-test");
    let new = kernel_deb(d.path(), "9.9.2-test");
    dpkg(
        &root,
        &[
            "-i",
            old.to_str().expect("utf-8"),
            new.to_str().expect("utf-8"),
        ],
    );
    // dpkg's own view: both installed, the images in /boot.
    let listed = run(Command::new("dpkg-query")
        .arg(format!(
            "--admindir={}",
            root.join("var/lib/dpkg").display()
        ))
        .args(["-W", "-f=${Package} ${db:Status-Status}\n", "linux-image-*"]));
    assert_eq!(
        listed,
        "linux-image-9.9.1-test installed\nlinux-image-9.9.2-test installed\n"
    );
    assert_eq!(bootpkgs::problems(&root), Vec::<String>::new());
    // What a rolled-back root sees when the bad upgrade removed the old kernel from a /boot
    // that is not in the set: the database (rolled back) lists it, /boot lacks its image.
    std::fs::remove_file(root.join("boot/vmlinuz-9.9.1-test")).expect("test io");
    let p = bootpkgs::problems(&root);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("kernel package linux-image-9.9.1-test is installed in this root but /boot/vmlinuz-9.9.1-test is missing")
            && p[0].ends_with("apt install --reinstall linux-image-9.9.1-test"),
        "{p:?}"
    );
    // Removed by dpkg (the package database no longer lists it): nothing to say.
    dpkg(&root, &["-r", "linux-image-9.9.1-test"]);
    assert_eq!(bootpkgs::problems(&root), Vec::<String>::new());
    // The other kernel's image gone too: named.
    std::fs::remove_file(root.join("boot/vmlinuz-9.9.2-test")).expect("test io");
    let p = bootpkgs::problems(&root);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("linux-image-9.9.2-test"), "{p:?}");
}

#[test]
fn loop_status_names_an_arch_kernel_in_boot_that_is_not_the_roots() {
    let have = Command::new("sh")
        .args(["-c", "command -v pacman"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        eprintln!("SKIPPED: pacman (Debian's package) not installed (tests/deps.sh)");
        return;
    }
    let d = tempfile::tempdir().expect("tempdir");
    let root = d.path();
    // Arch's package version 6.6.1.arch1-1 installs its modules as 6.6.1-arch1-1.
    let (pkgver, v) = ("6.6.1.arch1-1", "6.6.1-arch1-1");
    // pacman's local database entry for `linux` as pacman writes it (desc, files).
    let entry = format!("var/lib/pacman/local/linux-{pkgver}");
    write(
        root,
        &format!("{entry}/desc"),
        format!("%NAME%\nlinux\n\n%VERSION%\n{pkgver}\n\n%ARCH%\nx86_64\n\n").as_bytes(),
    );
    write(
        root,
        &format!("{entry}/files"),
        format!(
            "%FILES%\nusr/\nusr/lib/\nusr/lib/modules/\nusr/lib/modules/{v}/\nusr/lib/modules/{v}/pkgbase\nusr/lib/modules/{v}/vmlinuz\n\n"
        )
        .as_bytes(),
    );
    write(root, "var/lib/pacman/local/ALPM_DB_VERSION", b"9\n");
    // The real pacman reads the entry back: the kernel image is the package's.
    let owner = run(Command::new("pacman")
        .arg("--dbpath")
        .arg(root.join("var/lib/pacman"))
        .args(["-Ql", "linux"]));
    assert!(
        owner.contains(&format!("linux /usr/lib/modules/{v}/vmlinuz")),
        "{owner}"
    );
    write(root, &format!("usr/lib/modules/{v}/pkgbase"), b"linux\n");
    write(
        root,
        &format!("usr/lib/modules/{v}/vmlinuz"),
        b"the root's kernel",
    );
    write(root, "boot/vmlinuz-linux", b"the root's kernel");
    assert_eq!(bootpkgs::problems(root), Vec::<String>::new());
    // /boot (not in the set) kept the rolled-back upgrade's kernel under the same name.
    write(root, "boot/vmlinuz-linux", b"a newer kernel");
    let p = bootpkgs::problems(root);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with(
            "/boot/vmlinuz-linux is not the kernel of package linux installed in this root"
        ) && p[0].ends_with("pacman -S linux"),
        "{p:?}"
    );
    std::fs::remove_file(root.join("boot/vmlinuz-linux")).expect("test io");
    write(root, "boot/initramfs-linux.img", b"x");
    let p = bootpkgs::problems(root);
    assert!(
        p.len() == 1 && p[0].contains("/boot/vmlinuz-linux is missing"),
        "{p:?}"
    );
}
