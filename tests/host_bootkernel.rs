//! Host tier (root): the set's kernel copy in a real, small `/boot` filesystem (a tmpfs of a
//! few MiB): refused with the sizes when it has no room, before anything is written; made,
//! shared and tidied when it has.

use std::path::Path;
use std::process::Command;

use rewind::flow::env::System;
use rewind::flow::setkernel;
use rewind::plan::set::Request;

/// A tmpfs of `mib` MiB mounted at `dir` for the guard's life.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, mib: u32) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("test io");
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount");
        assert!(st.success(), "mount -t tmpfs (the host tier runs as root)");
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("test io");
    std::fs::write(p, bytes).expect("test io");
}

/// A root with rewind's GRUB script, the running kernel 1.0 (its modules in the root), a
/// separate /boot (its own mount in mountinfo) of `mib` MiB holding a 3 MiB kernel and a
/// 3 MiB initramfs.
fn root(mib: u32) -> (tempfile::TempDir, Tmpfs, System) {
    let d = tempfile::tempdir().expect("tempdir");
    let r = d.path();
    let boot = Tmpfs::mount(&r.join("boot"), mib);
    write(r, "etc/grub.d/42_rewind", b"#! /bin/sh\n");
    write(r, "boot/grub/grub.cfg", b"set default=0\n");
    write(r, "lib/modules/1.0/modules.order", b"");
    write(r, "proc/sys/kernel/osrelease", b"1.0\n");
    write(
        r,
        "proc/self/mountinfo",
        b"22 1 254:0 / / rw - ext4 /dev/mapper/vg0-root rw\n23 22 8:1 / /boot rw - ext4 /dev/vda1 rw\n",
    );
    write(r, "boot/vmlinuz-1.0", &vec![1u8; 3 << 20]);
    write(r, "boot/initrd.img-1.0", &vec![2u8; 3 << 20]);
    let sys = System {
        root: r.to_path_buf(),
        config: None,
        lock_dir: r.join("run/lock/lvm"),
    };
    (d, boot, sys)
}

fn root_member() -> Vec<Request> {
    vec![Request {
        named: "/".into(),
        vg: "vg0".into(),
        lv: "root".into(),
        mount: Some("/".into()),
        fs_used: None,
        min_extents: 0,
    }]
}

#[test]
fn loop_a_boot_without_room_refuses_the_copy_before_any_change() {
    // 8 MiB: 6 MiB of kernel and initramfs leave ~2 MiB, short of 6 MiB + the margin.
    let (_d, _boot, sys) = root(8);
    let e = setkernel::prepare(&sys, &root_member()).expect_err("no room");
    let m = e.to_string();
    assert!(
        m.contains("has no room for the set's copy of kernel 1.0"),
        "{m}"
    );
    assert!(m.contains("6 MiB needed"), "{m}");
    assert!(m.contains("nothing changed"), "{m}");
    assert!(!sys.root.join("boot/rewind").exists(), "nothing written");
}

#[test]
fn loop_copies_are_made_shared_between_sets_and_tidied_with_them() {
    let (_d, _boot, sys) = root(32);
    let p = setkernel::prepare(&sys, &root_member())
        .expect("room")
        .expect("a copy: /boot is not a member");
    assert_eq!(p.copies.len(), 2);
    assert_eq!(p.record.bytes, 6 << 20);
    setkernel::copy(&p).expect("copy");
    setkernel::record(&sys, "a", &p).expect("record");
    let linux = sys.root.join("boot").join(&p.record.kernel.linux);
    assert_eq!(
        std::fs::read(&linux).expect("copy"),
        std::fs::read(sys.root.join("boot/vmlinuz-1.0")).expect("kernel")
    );
    // A second set of the same kernel shares the copy: nothing more to copy.
    let q = setkernel::prepare(&sys, &root_member())
        .expect("room")
        .expect("a copy");
    assert!(q.copies.is_empty(), "{:?}", q.copies);
    assert_eq!(q.record, p.record);
    setkernel::record(&sys, "b", &q).expect("record");
    // Set a goes: b still needs the copy.
    setkernel::tidy(&sys.root, &["b".to_owned()]);
    assert!(linux.exists());
    assert!(!sys.root.join("boot/rewind/a.kernel").exists());
    // b goes too: the copies go.
    setkernel::tidy(&sys.root, &[]);
    let left: Vec<_> = std::fs::read_dir(sys.root.join("boot/rewind"))
        .expect("ls")
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // /boot on the root member (no mount of its own): no copy.
    write(
        &sys.root,
        "proc/self/mountinfo",
        b"22 1 254:0 / / rw - ext4 /dev/mapper/vg0-root rw\n",
    );
    assert_eq!(setkernel::prepare(&sys, &root_member()).expect("ok"), None);
}
