//! Host tier (root): GRUB's boot code after a rollback of the logical volume holding GRUB's
//! directory (docs/BOOTMENU.md, "/boot on LVM"). Real `grub-install` (grub-pc-bin) on loop
//! disks: GRUB's directory on one (an ext4 filesystem, as the root member would hold it), the
//! disk debconf's `grub-pc/install_devices` names on another (an MBR with the usual gap). The
//! boot code a "bad upgrade" embedded (a core image of other modules) is replaced by one that
//! matches GRUB's directory, read back from the disk's sectors; without a device, or with
//! one grub-install refuses, the problem is said and the disk is not touched.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

mod common;
use common::Loop;
use rewind::flow::setkernel;
use rewind::lvm::layout::LvRef;

const MIB: u64 = 1 << 20;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The ext4 filesystem of GRUB's directory, mounted at `root/boot` for the guard's life.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

struct Lab {
    /// The disk GRUB's boot code goes to (debconf's install device).
    disk: Loop,
    _fs: Loop,
    _mounted: Mounted,
    root: tempfile::TempDir,
}

fn lab() -> Option<Lab> {
    if Command::new("sh")
        .args([
            "-c",
            "command -v grub-install && test -d /usr/lib/grub/i386-pc",
        ])
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        eprintln!("SKIPPED: grub-install for i386-pc not installed (grub-pc-bin, tests/deps.sh)");
        return None;
    }
    let disk = Loop::new(32 * MIB);
    // An MBR with one partition at 1 MiB: the gap GRUB embeds its core image in.
    let mut sfdisk = Command::new("sfdisk")
        .arg("-q")
        .arg(disk.image())
        .stdin(Stdio::piped())
        .spawn()
        .expect("sfdisk");
    sfdisk
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"label: dos\nstart=2048, type=83\n")
        .expect("io");
    assert!(sfdisk.wait().expect("sfdisk").success());
    let fs = Loop::new(32 * MIB);
    run(Command::new("mkfs.ext4").args(["-q", &fs.dev]));
    let root = tempfile::tempdir().expect("tempdir");
    let boot = root.path().join("boot");
    std::fs::create_dir_all(&boot).expect("io");
    run(Command::new("mount").arg(&fs.dev).arg(&boot));
    Some(Lab {
        disk,
        _fs: fs,
        _mounted: Mounted(boot),
        root,
    })
}

impl Lab {
    fn grub_dir(&self) -> PathBuf {
        self.root.path().join("boot/grub")
    }

    fn debconf(&self, devices: &str) {
        let p = self.root.path().join("var/cache/debconf/config.dat");
        std::fs::create_dir_all(p.parent().expect("parent")).expect("io");
        std::fs::write(
            p,
            format!(
                "Name: grub-pc/install_devices\nTemplate: grub-pc/install_devices\nValue: {devices}\nOwners: grub-pc\nFlags: seen\n\nName: grub-pc/timeout\nTemplate: grub-pc/timeout\nValue: 5\nOwners: grub-pc\n"
            ),
        )
        .expect("io");
    }

    /// The core image embedded after the disk's MBR, from its third sector on (grub-install
    /// patches a block list in the first and the partition fields in the second), `len` bytes.
    fn embedded_tail(&self, len: usize) -> Vec<u8> {
        let bytes = std::fs::read(self.disk.image()).expect("io");
        bytes[512 + 1024..512 + len].to_vec()
    }

    fn core_img(&self) -> Vec<u8> {
        std::fs::read(self.grub_dir().join("i386-pc/core.img")).expect("core.img")
    }
}

fn lv() -> LvRef {
    LvRef {
        vg: "vg0".into(),
        lv: "root".into(),
    }
}

#[test]
fn loop_grub_s_boot_code_is_reinstalled_to_match_the_rolled_back_modules() {
    require_host!("loop_grub_s_boot_code_is_reinstalled_to_match_the_rolled_back_modules");
    let Some(lab) = lab() else { return };
    // The bad upgrade's GRUB: a core image with other modules embedded on the disk.
    run(Command::new("grub-install")
        .args(["--target=i386-pc", "--modules=lvm part_gpt xfs"])
        .arg(format!(
            "--boot-directory={}",
            lab.root.path().join("boot").display()
        ))
        .arg(&lab.disk.dev));
    let bad = lab.core_img();
    assert_eq!(
        lab.embedded_tail(bad.len()),
        bad[1024..],
        "the bad core is embedded"
    );
    // The rollback puts the old GRUB's directory back (here: the core image file of the
    // rolled-back GRUB is not the embedded one any more).
    std::fs::remove_file(lab.grub_dir().join("i386-pc/core.img")).expect("io");
    lab.debconf(&lab.disk.dev);
    let problem = setkernel::grub_reinstall_in(lab.root.path(), &lab.grub_dir(), &lv());
    assert_eq!(problem, None);
    let good = lab.core_img();
    assert_ne!(good, bad, "a core image of the directory's own modules");
    assert_eq!(
        lab.embedded_tail(good.len()),
        good[1024..],
        "the disk boots the core image that matches GRUB's directory"
    );
    let mbr = std::fs::read(lab.disk.image()).expect("io");
    assert!(
        mbr[..512].windows(4).any(|w| w == b"GRUB"),
        "GRUB's boot sector"
    );
}

#[test]
fn loop_without_a_device_or_with_a_bad_one_the_problem_is_said_and_nothing_written() {
    require_host!(
        "loop_without_a_device_or_with_a_bad_one_the_problem_is_said_and_nothing_written"
    );
    let Some(lab) = lab() else { return };
    run(Command::new("grub-install")
        .arg("--target=i386-pc")
        .arg(format!(
            "--boot-directory={}",
            lab.root.path().join("boot").display()
        ))
        .arg(&lab.disk.dev));
    let before = std::fs::read(lab.disk.image()).expect("io");
    // No install device known.
    lab.debconf("");
    let p =
        setkernel::grub_reinstall_in(lab.root.path(), &lab.grub_dir(), &lv()).expect("a problem");
    assert!(p.contains("debconf names no device"), "{p}");
    // A device that is not there: grub-install fails, the problem names it.
    lab.debconf("/dev/disk/by-id/rewind-no-such-disk");
    let p =
        setkernel::grub_reinstall_in(lab.root.path(), &lab.grub_dir(), &lv()).expect("a problem");
    assert!(
        p.contains("could not be reinstalled") && p.contains("rewind-no-such-disk"),
        "{p}"
    );
    assert!(
        std::fs::read(lab.disk.image()).expect("io") == before,
        "the disk untouched"
    );
    // An EFI platform beside it: not done by rewind, said.
    std::fs::create_dir_all(lab.grub_dir().join("x86_64-efi")).expect("io");
    std::fs::write(lab.grub_dir().join("x86_64-efi/normal.mod"), b"").expect("io");
    lab.debconf(&lab.disk.dev);
    let p =
        setkernel::grub_reinstall_in(lab.root.path(), &lab.grub_dir(), &lv()).expect("a problem");
    assert!(p.contains("x86_64-efi"), "{p}");
    assert!(
        std::fs::read(lab.disk.image()).expect("io") == before,
        "the disk untouched"
    );
}
