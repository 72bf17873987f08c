//! Host tier (root): the set's kernel copy in a real, small `/boot` filesystem (a tmpfs of a
//! few MiB): refused with the sizes when it has no room, before anything is written; made,
//! shared and tidied when it has. Its initramfs is a real image (cpio and zstd made by the
//! real tools, Debian's layout: an uncompressed early part, then the compressed main part),
//! listed by the distribution's own lister (lsinitramfs): an image without rewind gets no copy,
//! and the set's entry is written as not bootable, with the reason.

use std::path::Path;
use std::process::Command;

use rewind::flow::bootmenu;
use rewind::flow::env::System;
use rewind::flow::setkernel::{self, SetBoot};
use rewind::flow::sets::{MemberState, MemberView, SetState, SetView};
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

/// An initramfs image as initramfs-tools lays it out: an uncompressed cpio (the early
/// microcode part), then a zstd-compressed cpio of `files` (path, bytes), made by the real
/// `cpio` and `zstd`.
fn initramfs(microcode: &[u8], files: &[(&str, &[u8])]) -> Vec<u8> {
    let cpio = |dir: &Path| -> Vec<u8> {
        let out = Command::new("sh")
            .arg("-c")
            .arg("find . | LC_ALL=C sort | cpio -o -H newc --quiet")
            .current_dir(dir)
            .output()
            .expect("cpio");
        assert!(out.status.success(), "cpio");
        out.stdout
    };
    let early = tempfile::tempdir().expect("tempdir");
    write(
        early.path(),
        "kernel/x86/microcode/GenuineIntel.bin",
        microcode,
    );
    let main = tempfile::tempdir().expect("tempdir");
    for (path, bytes) in files {
        write(main.path(), path, bytes);
    }
    let work = tempfile::tempdir().expect("tempdir");
    let plain = work.path().join("main.cpio");
    std::fs::write(&plain, cpio(main.path())).expect("test io");
    let z = Command::new("zstd")
        .args(["-q", "-c", "-1"])
        .arg(&plain)
        .output()
        .expect("zstd");
    assert!(z.status.success(), "zstd");
    let mut img = cpio(early.path());
    img.extend(z.stdout);
    img
}

/// An initramfs with rewind (its program and its udev rule), of a little more than `size`
/// bytes (an early part that large: zstd would make any padding of the main part tiny).
fn with_rewind(size: usize) -> Vec<u8> {
    initramfs(
        &vec![7u8; size],
        &[
            ("usr/sbin/rewind", b"\x7fELF rewind"),
            ("usr/lib/udev/rules.d/63-rewind.rules", b"# rewind"),
            ("usr/sbin/lvm", b"lvm"),
        ],
    )
}

fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("test io");
    std::fs::write(p, bytes).expect("test io");
}

/// A root with rewind's GRUB script, the running kernel 1.0 (its modules in the root), a
/// separate /boot (its own mount in mountinfo) of `mib` MiB holding a 3 MiB kernel and a
/// 3 MiB initramfs with rewind.
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
    write(r, "boot/initrd.img-1.0", &with_rewind(3 << 20));
    let sys = System {
        root: r.to_path_buf(),
        config: None,
        lock_dir: r.join("run/lock/lvm"),
    };
    (d, boot, sys)
}

fn size(sys: &System, rel: &str) -> u64 {
    std::fs::metadata(sys.root.join(rel)).expect("stat").len()
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
    let need = size(&sys, "boot/vmlinuz-1.0") + size(&sys, "boot/initrd.img-1.0");
    assert!(
        m.contains(&format!("{} MiB needed", need.div_ceil(1 << 20))),
        "{m}"
    );
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
    assert_eq!(
        p.record.bytes,
        size(&sys, "boot/vmlinuz-1.0") + size(&sys, "boot/initrd.img-1.0")
    );
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

fn lister_installed() -> bool {
    Command::new("sh")
        .args([
            "-c",
            "command -v lsinitramfs || command -v lsinitrd || command -v lsinitcpio",
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn view(name: &str, boot: SetBoot) -> SetView {
    SetView {
        name: name.into(),
        time: Some(1_000),
        kind: None,
        description: String::new(),
        pinned: false,
        state: SetState::Ok,
        members_declared: Some(1),
        members: vec![MemberView {
            vg: "vg0".into(),
            origin: Some("root".into()),
            snapshot: format!("root.{name}"),
            size_bytes: 1 << 20,
            mount: Some("/".into()),
            fill_percent: None,
            state: MemberState::Inactive,
            pool: None,
        }],
        boot,
    }
}

#[test]
fn loop_an_initramfs_without_rewind_gets_no_copy_and_its_entry_does_not_boot() {
    if !lister_installed() {
        eprintln!(
            "SKIPPED: no initramfs lister (lsinitramfs: initramfs-tools-core, tests/deps.sh)"
        );
        return;
    }
    let (_d, _boot, sys) = root(32);
    // The real image with rewind: the copy is offered, the entry boots it.
    let p = setkernel::prepare(&sys, &root_member())
        .expect("room")
        .expect("a copy");
    setkernel::copy(&p).expect("copy");
    let with = view("with", SetBoot::Copy(p.record.clone()));
    // Kernel 2.0, the newest, whose initramfs was built without rewind (its hook missing).
    write(&sys.root, "lib/modules/2.0/modules.order", b"");
    write(&sys.root, "proc/sys/kernel/osrelease", b"2.0\n");
    write(&sys.root, "boot/vmlinuz-2.0", &[1u8; 4096]);
    write(
        &sys.root,
        "boot/initrd.img-2.0",
        &initramfs(
            b"microcode",
            &[
                ("usr/sbin/lvm", b"lvm"),
                ("usr/lib/udev/rules.d/69-lvm.rules", b""),
            ],
        ),
    );
    assert_eq!(
        setkernel::prepare(&sys, &root_member()).expect("no refusal"),
        None,
        "no copy of a kernel whose initramfs lacks rewind"
    );
    let newest = view("newest", SetBoot::Newest);
    let problems = setkernel::entry_problems(&sys.root, &[with.clone(), newest.clone()]);
    assert_eq!(
        problems.keys().collect::<Vec<_>>(),
        vec!["newest"],
        "{problems:?}"
    );
    assert_eq!(
        problems["newest"],
        "its initramfs has no /usr/sbin/rewind (/boot/initrd.img-2.0)"
    );
    // The verdicts are kept beside the menu, by image (listing takes seconds; the menu is
    // written at every boot): the same image is not listed again.
    let kept =
        std::fs::read_to_string(sys.root.join("boot/grub").join(setkernel::INITRAMFS_CHECKS))
            .expect("verdicts kept");
    assert!(
        kept.contains("/boot/initrd.img-2.0\tits initramfs has no /usr/sbin/rewind"),
        "{kept}"
    );
    assert!(
        kept.contains(&format!("/boot/{}\tok\n", p.record.kernel.initrd)),
        "{kept}"
    );
    let menu = bootmenu::render_checked(&[with, newest], &problems);
    assert!(menu.contains("\trewind_boot 'with' "), "{menu}");
    assert!(!menu.contains("rewind_boot 'newest'"), "{menu}");
    assert!(
        menu.contains(
            "newest  (NOT BOOTABLE, its initramfs has no /usr/sbin/rewind (/boot/initrd.img-2.0))"
        ),
        "{menu}"
    );
    // An image the lister cannot read is not bootable either.
    write(&sys.root, "boot/initrd.img-2.0", b"not an initramfs");
    let problems = setkernel::entry_problems(&sys.root, &[view("newest", SetBoot::Newest)]);
    assert!(
        problems["newest"].starts_with("its initramfs /boot/initrd.img-2.0 cannot be listed"),
        "{problems:?}"
    );
}

/// `bootctl list` (systemd-boot's own reader of BLS entries) over `boot` as ESP and $BOOT:
/// (id, title as shown, options) in the boot loader's order.
fn bootctl_list(boot: &Path) -> Vec<(String, String, String)> {
    let out = Command::new("bootctl")
        .env("SYSTEMD_RELAX_ESP_CHECKS", "1")
        .arg(format!("--esp-path={}", boot.display()))
        .arg(format!("--boot-path={}", boot.display()))
        .args(["list", "--no-pager"])
        .output()
        .expect("bootctl");
    assert!(
        out.status.success(),
        "bootctl list: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut list = Vec::new();
    for block in text.split("\n\n") {
        let field = |k: &str| {
            block
                .lines()
                .find_map(|l| l.trim().strip_prefix(&format!("{k}: ")))
                .unwrap_or_default()
                .to_owned()
        };
        if !field("id").is_empty() {
            list.push((field("id"), field("title"), field("options")));
        }
    }
    list
}

#[test]
fn loop_bls_entries_are_read_by_bootctl_after_the_usual_entry_and_follow_the_sets() {
    let have = |t: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !have("bootctl") || !lister_installed() {
        eprintln!(
            "SKIPPED: bootctl (systemd-boot) or an initramfs lister (initramfs-tools-core) not installed (tests/deps.sh)"
        );
        return;
    }
    let (_d, _boot, sys) = root(32);
    let boot = sys.root.join("boot");
    // The machine's own entry, as kernel-install lays it out, with rewind in its initramfs.
    write(&sys.root, "boot/abc/1.0/linux", &[1u8; 4096]);
    write(&sys.root, "boot/abc/1.0/initrd.img-1.0", &with_rewind(1024));
    let usual = "title Debian GNU/Linux 12 (bookworm)\nversion 1.0\nmachine-id abc\nsort-key debian\noptions root=/dev/mapper/vg0-root ro quiet\nlinux /abc/1.0/linux\ninitrd /abc/1.0/initrd.img-1.0\n";
    write(
        &sys.root,
        "boot/loader/entries/abc-1.0.conf",
        usual.as_bytes(),
    );
    let dir = bootmenu::bls_dir(&sys.root).expect("the BLS directory");
    // Set "copy" boots its copy (in /boot/rewind, $BOOT is /boot); "pre" the usual kernel;
    // "lost" cannot be rolled back to; "norw" has a copy whose initramfs lacks rewind.
    let p = setkernel::prepare(&sys, &root_member())
        .expect("room")
        .expect("a copy");
    setkernel::copy(&p).expect("copy");
    write(
        &sys.root,
        "boot/rewind/initrd.img-0.9.1",
        &initramfs(b"microcode", &[("usr/sbin/lvm", b"lvm")]),
    );
    write(&sys.root, "boot/rewind/vmlinuz-0.9.1", &[1u8; 4096]);
    let norw = rewind::plan::kernels::SetKernel {
        kernel: rewind::plan::kernels::Kernel {
            version: "0.9".into(),
            linux: "rewind/vmlinuz-0.9.1".into(),
            initrd: "rewind/initrd.img-0.9.1".into(),
        },
        bytes: 1,
        boot_dir: "/boot".into(),
    };
    let mut lost = view("lost", SetBoot::Newest);
    lost.state = SetState::Lost;
    let views = vec![
        view("copy", SetBoot::Copy(p.record.clone())),
        view("pre", SetBoot::Newest),
        lost,
        view("norw", SetBoot::Copy(norw)),
    ];
    let written = bootmenu::write_bls_in(&sys.root, &dir, &views).expect("written");
    assert_eq!(written, vec!["rewind-copy.conf", "rewind-pre.conf"]);
    let list = bootctl_list(&boot);
    let ids: Vec<&str> = list.iter().map(|(i, _, _)| i.as_str()).collect();
    assert_eq!(
        ids,
        vec!["abc-1.0.conf", "rewind-pre.conf", "rewind-copy.conf"],
        "{list:?}"
    );
    assert!(
        list[0].1.contains("(default)"),
        "the usual entry stays the default: {list:?}"
    );
    assert!(!list[1].1.contains("(default)") && !list[2].1.contains("(default)"));
    // Among rewind's, by name, last first (the default names are times: newest first).
    assert_eq!(
        list[1].2,
        "root=/dev/mapper/vg0-root ro quiet rd.rewind=pre"
    );
    assert_eq!(
        list[2].2,
        "root=/dev/mapper/vg0-root ro quiet rd.rewind=copy"
    );
    let copy = std::fs::read_to_string(dir.join("rewind-copy.conf")).expect("entry");
    assert!(
        copy.contains(&format!("linux /{}\n", p.record.kernel.linux)),
        "{copy}"
    );
    let pre = std::fs::read_to_string(dir.join("rewind-pre.conf")).expect("entry");
    assert!(pre.contains("linux /abc/1.0/linux\n"), "{pre}");
    // Set "copy" is deleted: its entry goes, the others stay as they are.
    let written = bootmenu::write_bls_in(&sys.root, &dir, &views[1..]).expect("written");
    assert_eq!(written, vec!["rewind-pre.conf"]);
    let ids: Vec<String> = bootctl_list(&boot).into_iter().map(|x| x.0).collect();
    assert_eq!(ids, vec!["abc-1.0.conf", "rewind-pre.conf"]);
    // An entry of the machine's without a sort-key: rewind's would sort first and become
    // the default, so there are none.
    write(
        &sys.root,
        "boot/loader/entries/memtest.conf",
        b"title memtest86+\nlinux /abc/1.0/linux\n",
    );
    let written = bootmenu::write_bls_in(&sys.root, &dir, &views).expect("written");
    assert!(written.is_empty());
    let ids: Vec<String> = bootctl_list(&boot).into_iter().map(|x| x.0).collect();
    assert_eq!(ids, vec!["abc-1.0.conf", "memtest.conf"]);
}

/// A machine whose `$BOOT` is the ESP: no GRUB, `/boot` a directory of the root, the ESP a
/// tmpfs of `mib` MiB at `/boot/efi` holding kernel 1.0 (running, its modules in the root) as
/// kernel-install lays it out (`debian/1.0/linux`, a 3 MiB kernel and a 3 MiB initramfs with
/// rewind) and its entry.
fn esp_root(mib: u32) -> (tempfile::TempDir, Tmpfs, System) {
    bls_root(mib, "boot/efi")
}

/// [`esp_root`] with `$BOOT` (the tmpfs, its own mount) at `at`: `boot/efi`, or `boot` (an
/// XBOOTLDR-style `/boot` read by systemd-boot, no GRUB).
fn bls_root(mib: u32, at: &str) -> (tempfile::TempDir, Tmpfs, System) {
    let d = tempfile::tempdir().expect("tempdir");
    let r = d.path();
    std::fs::create_dir_all(r.join("boot")).expect("test io");
    let esp = Tmpfs::mount(&r.join(at), mib);
    write(r, "lib/modules/1.0/modules.order", b"");
    write(r, "proc/sys/kernel/osrelease", b"1.0\n");
    write(
        r,
        "proc/self/mountinfo",
        format!("22 1 254:0 / / rw - ext4 /dev/mapper/vg0-root rw\n23 22 0:40 / /{at} rw - vfat /dev/vda1 rw\n").as_bytes(),
    );
    kernel_install(r, at, "1.0", &vec![1u8; 3 << 20], &with_rewind(3 << 20));
    let sys = System {
        root: r.to_path_buf(),
        config: None,
        lock_dir: r.join("run/lock/lvm"),
    };
    (d, esp, sys)
}

/// What kernel-install (90-loaderentry.install) leaves on the ESP for kernel `v`.
fn kernel_install(r: &Path, at: &str, v: &str, linux: &[u8], initrd: &[u8]) {
    write(r, &format!("{at}/debian/{v}/linux"), linux);
    write(r, &format!("{at}/debian/{v}/initrd.img-{v}"), initrd);
    write(
        r,
        &format!("{at}/loader/entries/debian-{v}.conf"),
        format!(
            "title Debian GNU/Linux 12 (bookworm)\nversion {v}\nmachine-id debian\nsort-key debian\noptions root=/dev/mapper/vg0-root ro quiet\nlinux /debian/{v}/linux\ninitrd /debian/{v}/initrd.img-{v}\n"
        )
        .as_bytes(),
    );
}

/// `bootctl list` over `esp` (as ESP and $BOOT): each entry's fields, in the loader's order.
fn bootctl_entries(esp: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let out = Command::new("bootctl")
        .env("SYSTEMD_RELAX_ESP_CHECKS", "1")
        .arg(format!("--esp-path={}", esp.display()))
        .arg(format!("--boot-path={}", esp.display()))
        .args(["list", "--no-pager"])
        .output()
        .expect("bootctl");
    assert!(
        out.status.success(),
        "bootctl list: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split("\n\n")
        .map(|block| {
            block
                .lines()
                .filter_map(|l| l.trim().split_once(": "))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect::<std::collections::BTreeMap<_, _>>()
        })
        .filter(|m| m.contains_key("id"))
        .collect()
}

#[test]
fn loop_esp_a_set_keeps_its_kernel_on_the_esp_and_its_entry_boots_it_after_a_kernel_update() {
    kernel_update_after_a_set("boot/efi");
}

#[test]
fn loop_bls_boot_without_grub_a_set_keeps_its_kernel_in_boot_and_its_entry_boots_it() {
    kernel_update_after_a_set("boot");
}

/// A set taken on kernel 1.0, then a kernel update by kernel-install to 2.0 (1.0 removed),
/// with `$BOOT` at `at`: the set's entry, read by bootctl, boots its copy of 1.0.
fn kernel_update_after_a_set(at: &str) {
    let have = Command::new("sh")
        .args(["-c", "command -v bootctl"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have || !lister_installed() {
        eprintln!(
            "SKIPPED: bootctl (systemd-boot) or an initramfs lister (initramfs-tools-core) not installed (tests/deps.sh)"
        );
        return;
    }
    let (_d, _esp, sys) = bls_root(32, at);
    let esp = sys.root.join(at);
    assert_eq!(
        setkernel::esp_boot(&sys.root),
        (at != "boot").then(|| esp.clone())
    );
    // Set pre, taken on kernel 1.0: its copy goes to the ESP, read from the machine's entry.
    let p = setkernel::prepare(&sys, &root_member())
        .expect("room")
        .expect("a copy: the ESP is never in the set");
    assert_eq!(p.copies.len(), 2);
    assert_eq!(p.record.kernel.version, "1.0");
    assert_eq!(p.record.boot_dir, format!("/{at}"));
    assert!(
        p.record.kernel.linux.starts_with("rewind/linux-1.0."),
        "{:?}",
        p.record
    );
    assert!(
        p.record.kernel.initrd.starts_with("rewind/initrd-1.0."),
        "{:?}",
        p.record
    );
    let src_linux = std::fs::read(esp.join("debian/1.0/linux")).expect("kernel");
    let src_initrd = std::fs::read(esp.join("debian/1.0/initrd.img-1.0")).expect("initrd");
    assert_eq!(p.record.bytes, (src_linux.len() + src_initrd.len()) as u64);
    setkernel::copy(&p).expect("copy");
    setkernel::record(&sys, "pre", &p).expect("record");
    if at != "boot" {
        assert!(
            !sys.root.join("boot/rewind").exists(),
            "nothing in /boot, which the ESP's loader cannot read"
        );
    }
    // A second set of the same kernel shares the copy.
    let q = setkernel::prepare(&sys, &root_member())
        .expect("room")
        .expect("a copy");
    assert!(q.copies.is_empty(), "{:?}", q.copies);
    setkernel::record(&sys, "pre2", &q).expect("record");
    // The upgrade: kernel-install puts kernel 2.0 on the ESP (its modules in the root), which
    // becomes the usual entry, and removes kernel 1.0 (its entry and files).
    write(&sys.root, "lib/modules/2.0/modules.order", b"");
    kernel_install(&sys.root, at, "2.0", &[2u8; 4096], &with_rewind(1024));
    std::fs::remove_dir_all(esp.join("debian/1.0")).expect("test io");
    std::fs::remove_file(esp.join("loader/entries/debian-1.0.conf")).expect("test io");
    // The sets as `rewind list` gives them, their kernel read back from the ESP's records.
    let mut views = vec![view("pre", SetBoot::Newest), view("pre2", SetBoot::Newest)];
    setkernel::attach(&sys.root, &mut views);
    assert_eq!(views[0].boot, SetBoot::Copy(p.record.clone()));
    let dir = bootmenu::bls_dir(&sys.root).expect("entries");
    let written = bootmenu::write_bls_in(&sys.root, &dir, &views).expect("written");
    assert_eq!(written, vec!["rewind-pre.conf", "rewind-pre2.conf"]);
    let list = bootctl_entries(&esp);
    let ids: Vec<&str> = list.iter().map(|m| m["id"].as_str()).collect();
    assert_eq!(
        ids,
        vec!["debian-2.0.conf", "rewind-pre2.conf", "rewind-pre.conf"],
        "{list:?}"
    );
    assert!(list[0]["title"].contains("(default)"), "{list:?}");
    assert_eq!(list[0]["linux"], "/debian/2.0/linux");
    // The set's entry boots kernel 1.0's copy, which the loader finds on the ESP (bootctl
    // marks a missing file "(No such file or directory)"), with the usual options.
    let pre = &list[2];
    assert_eq!(
        pre["linux"],
        format!("/{}", p.record.kernel.linux),
        "{pre:?}"
    );
    assert_eq!(
        pre["initrd"],
        format!("/{}", p.record.kernel.initrd),
        "{pre:?}"
    );
    assert_eq!(pre["version"], "1.0");
    assert_eq!(
        pre["options"],
        "root=/dev/mapper/vg0-root ro quiet rd.rewind=pre"
    );
    assert_eq!(
        std::fs::read(esp.join(&p.record.kernel.linux)).expect("copy"),
        src_linux
    );
    assert_eq!(
        std::fs::read(esp.join(&p.record.kernel.initrd)).expect("copy"),
        src_initrd
    );
    // A set taken now (running 2.0) copies 2.0, from its entry.
    write(&sys.root, "proc/sys/kernel/osrelease", b"2.0\n");
    let n = setkernel::prepare(&sys, &root_member())
        .expect("room")
        .expect("a copy");
    assert_eq!(n.record.kernel.version, "2.0");
    // The sets go: their records and copies go with them (kept while one set needs them).
    setkernel::tidy(&sys.root, &["pre2".to_owned()]);
    assert!(esp.join(&p.record.kernel.linux).exists());
    assert!(!esp.join("rewind/pre.kernel").exists());
    setkernel::tidy(&sys.root, &[]);
    let left: Vec<_> = std::fs::read_dir(esp.join("rewind")).expect("ls").collect();
    assert!(left.is_empty(), "{left:?}");
    let written = bootmenu::write_bls_in(&sys.root, &dir, &[]).expect("written");
    assert!(written.is_empty());
    let ids: Vec<String> = bootctl_entries(&esp)
        .into_iter()
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(ids, vec!["debian-2.0.conf"]);
}

#[test]
fn loop_esp_without_room_for_the_copy_and_the_next_kernel_refuses_before_any_change() {
    // 18 MiB with 6 MiB of kernel and initramfs: 12 MiB free. The copy (6 MiB) fits with
    // /boot's 4 MiB margin, but not with the ESP's: the pair's size again (6 MiB), room for
    // the next kernel update.
    let (_d, _esp, sys) = esp_root(18);
    let esp = sys.root.join("boot/efi");
    let pair =
        size(&sys, "boot/efi/debian/1.0/linux") + size(&sys, "boot/efi/debian/1.0/initrd.img-1.0");
    let free = rewind::system::bootfile::free_bytes(&esp).expect("statvfs");
    assert!(
        pair + (4 << 20) <= free && 2 * pair > free,
        "the test's sizes: {pair} {free}"
    );
    let e = setkernel::prepare(&sys, &root_member()).expect_err("no room");
    let m = e.to_string();
    assert!(
        m.contains("has no room for the set's copy of kernel 1.0"),
        "{m}"
    );
    let mib = pair.div_ceil(1 << 20);
    assert!(
        m.contains(&format!("{mib} MiB needed (+{mib} MiB margin)")),
        "{m}"
    );
    assert!(m.contains("Free space on /boot/efi"), "{m}");
    assert!(
        !sys.root.join("boot/efi/rewind").exists(),
        "nothing written"
    );
    // With room: the copy.
    let (_d, _esp, sys) = esp_root(24);
    assert!(
        setkernel::prepare(&sys, &root_member())
            .expect("room")
            .is_some()
    );
}

#[test]
fn loop_esp_an_initramfs_without_rewind_an_entry_without_modules_or_with_two_images_gets_no_copy() {
    if !lister_installed() {
        eprintln!("SKIPPED: no initramfs lister (tests/deps.sh)");
        return;
    }
    let (_d, _esp, sys) = esp_root(32);
    // The entry's kernel has no modules in the root: nothing matches, no copy, no refusal.
    std::fs::remove_dir_all(sys.root.join("lib/modules/1.0")).expect("test io");
    assert_eq!(setkernel::prepare(&sys, &root_member()).expect("ok"), None);
    write(&sys.root, "lib/modules/1.0/modules.order", b"");
    assert!(
        setkernel::prepare(&sys, &root_member())
            .expect("ok")
            .is_some()
    );
    // An entry with a microcode image before the main one: one record holds one initramfs, so
    // no copy (the set's entry boots the usual kernel).
    let entry = sys.root.join("boot/efi/loader/entries/debian-1.0.conf");
    let text = std::fs::read_to_string(&entry).expect("entry");
    write(&sys.root, "boot/efi/debian/1.0/ucode.img", b"ucode");
    write(
        &sys.root,
        "boot/efi/loader/entries/debian-1.0.conf",
        text.replace("initrd ", "initrd /debian/1.0/ucode.img\ninitrd ")
            .as_bytes(),
    );
    assert_eq!(setkernel::prepare(&sys, &root_member()).expect("ok"), None);
    write(
        &sys.root,
        "boot/efi/loader/entries/debian-1.0.conf",
        text.as_bytes(),
    );
    // Its initramfs lacks rewind: no copy.
    write(
        &sys.root,
        "boot/efi/debian/1.0/initrd.img-1.0",
        &initramfs(b"microcode", &[("usr/sbin/lvm", b"lvm")]),
    );
    assert_eq!(setkernel::prepare(&sys, &root_member()).expect("ok"), None);
    assert!(!sys.root.join("boot/efi/rewind").exists());
}

/// An efivarfs file under the root: attributes, then `text` in UTF-16LE with its NUL (the
/// host's own variables cannot be written; the poller reads the root's efivarfs).
fn efivar(r: &Path, name: &str, text: &str) {
    let mut b = vec![7, 0, 0, 0];
    for u in text.encode_utf16().chain([0]) {
        b.extend_from_slice(&u.to_le_bytes());
    }
    write(
        r,
        &format!("sys/firmware/efi/efivars/{name}-{}", bootmenu::LOADER_GUID),
        &b,
    );
}

#[test]
fn loop_esp_after_a_rollback_the_default_boots_the_root_s_kernel_and_the_pin_goes_with_the_upgrade()
{
    use rewind::plan::bls::{self, BlsNext};
    let have = Command::new("sh")
        .args(["-c", "command -v bootctl"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have || !lister_installed() {
        eprintln!(
            "SKIPPED: bootctl (systemd-boot) or an initramfs lister (initramfs-tools-core) not installed (tests/deps.sh)"
        );
        return;
    }
    let (_d, _esp, sys) = esp_root(40);
    let r = sys.root.clone();
    let esp = r.join("boot/efi");
    let dir = bootmenu::bls_dir(&r).expect("entries");
    // Not started by systemd-boot (no LoaderInfo): the poller leaves the entries alone.
    assert_eq!(setkernel::bls_after_rollback(&r), None);
    efivar(&r, "LoaderInfo", "systemd-boot 252.39-1~deb12u1");
    // Set pre on kernel 1.0: its copy on the ESP.
    let p = setkernel::prepare(&sys, &root_member())
        .expect("room")
        .expect("a copy");
    setkernel::copy(&p).expect("copy");
    setkernel::record(&sys, "pre", &p).expect("record");
    let old_linux = std::fs::read(esp.join("debian/1.0/linux")).expect("kernel");
    let old_initrd = std::fs::read(esp.join("debian/1.0/initrd.img-1.0")).expect("initrd");
    // The nothing-to-do case: 1.0 is the usual entry and has its modules.
    assert_eq!(
        setkernel::bls_after_rollback(&r).map(|x| x.0),
        Some(BlsNext::Fine)
    );
    assert!(!dir.join(bls::PIN_ENTRY).exists());
    // The upgrade: kernel-install adds 2.0 (its modules in the root), removes 1.0 (entry and
    // files); then the rollback: the root has 1.0's modules again, not 2.0's.
    kernel_install(&r, "boot/efi", "2.0", &[2u8; 4096], &with_rewind(1024));
    std::fs::remove_dir_all(esp.join("debian/1.0")).expect("test io");
    std::fs::remove_file(esp.join("loader/entries/debian-1.0.conf")).expect("test io");
    assert!(!r.join("lib/modules/2.0").exists());
    // The poller: the set is gone by now (its merge finished), its record still there.
    let (decision, problem) = setkernel::bls_after_rollback(&r).expect("systemd-boot");
    assert_eq!(problem, None);
    assert!(
        matches!(&decision, BlsNext::Pin { version, from: bls::PinFrom::Copy { set, .. }, .. } if version == "1.0" && set == "pre"),
        "{decision:?}"
    );
    assert_eq!(setkernel::boot_problem(&r), Vec::<String>::new());
    // The menu write tidies the set's record, but not the copy the pin boots.
    bootmenu::write_bls_in(&r, &dir, &[]).expect("written");
    setkernel::tidy(&r, &[]);
    assert!(!esp.join("rewind/pre.kernel").exists());
    let list = bootctl_entries(&esp);
    let ids: Vec<&str> = list.iter().map(|m| m["id"].as_str()).collect();
    assert_eq!(ids, vec![bls::PIN_ENTRY, "debian-2.0.conf"], "{list:?}");
    assert!(list[0]["title"].contains("(default)"), "{list:?}");
    assert_eq!(list[0]["version"], "1.0");
    assert_eq!(list[0]["options"], "root=/dev/mapper/vg0-root ro quiet");
    let linux = list[0]["linux"].trim_start_matches('/').to_owned();
    let initrd = list[0]["initrd"].trim_start_matches('/').to_owned();
    assert_eq!(linux, p.record.kernel.linux);
    assert_eq!(std::fs::read(esp.join(&linux)).expect("pinned"), old_linux);
    assert_eq!(
        std::fs::read(esp.join(&initrd)).expect("pinned"),
        old_initrd
    );
    let motd = std::fs::read_to_string(r.join(rewind::system::motd::MOTD)).expect("motd");
    assert!(
        motd.contains("systemd-boot's default entry now boots kernel 1.0"),
        "{motd}"
    );
    // Every later run keeps it unchanged.
    let before = std::fs::metadata(dir.join(bls::PIN_ENTRY))
        .and_then(|m| m.modified())
        .expect("pin");
    setkernel::bls_after_rollback(&r).expect("systemd-boot");
    assert_eq!(
        std::fs::metadata(dir.join(bls::PIN_ENTRY))
            .and_then(|m| m.modified())
            .expect("pin"),
        before
    );
    // The administrator's own default is never overridden: the pin goes, status says why.
    write(
        &r,
        "boot/efi/loader/loader.conf",
        b"timeout 3\ndefault debian-*\n",
    );
    let (decision, problem) = setkernel::bls_after_rollback(&r).expect("systemd-boot");
    assert!(matches!(decision, BlsNext::Admin { .. }), "{decision:?}");
    assert!(
        problem
            .as_deref()
            .is_some_and(|p| p.contains("default debian-* in /boot/efi/loader/loader.conf")),
        "{problem:?}"
    );
    assert!(!dir.join(bls::PIN_ENTRY).exists());
    assert_eq!(setkernel::boot_problem(&r).len(), 1);
    std::fs::remove_file(esp.join("loader/loader.conf")).expect("test io");
    setkernel::tidy(&r, &[]);
    assert!(!esp.join(&linux).exists(), "no pin, no set: the copy goes");
    // The upgrade done again, kernel 1.0 installed too (its entry back): the pin boots 1.0's
    // entry's files, copied into rewind's store, while 2.0 has no modules...
    kernel_install(&r, "boot/efi", "1.0", &old_linux, &old_initrd);
    let (decision, _) = setkernel::bls_after_rollback(&r).expect("systemd-boot");
    assert!(
        matches!(&decision, BlsNext::Pin { from: bls::PinFrom::Entry { name, .. }, .. } if name == "debian-1.0.conf"),
        "{decision:?}"
    );
    let list = bootctl_entries(&esp);
    assert_eq!(list[0]["id"], bls::PIN_ENTRY);
    let pinned = list[0]["linux"].trim_start_matches('/').to_owned();
    assert!(pinned.starts_with("rewind/linux-1.0."), "{pinned}");
    assert_eq!(std::fs::read(esp.join(&pinned)).expect("pinned"), old_linux);
    // ... and with 2.0's modules back, the pin goes and 2.0 is the default again.
    write(&r, "lib/modules/2.0/modules.order", b"");
    assert_eq!(
        setkernel::bls_after_rollback(&r).map(|x| x.0),
        Some(BlsNext::Fine)
    );
    setkernel::tidy(&r, &[]);
    let list = bootctl_entries(&esp);
    let ids: Vec<&str> = list.iter().map(|m| m["id"].as_str()).collect();
    assert_eq!(ids, vec!["debian-2.0.conf", "debian-1.0.conf"], "{list:?}");
    assert!(list[0]["title"].contains("(default)"), "{list:?}");
    let left: Vec<_> = std::fs::read_dir(esp.join("rewind")).expect("ls").collect();
    assert!(left.is_empty(), "{left:?}");
    // No kernel with modules anywhere: said loudly.
    std::fs::remove_dir_all(r.join("lib/modules")).expect("test io");
    write(&r, "lib/modules/3.0/modules.order", b"");
    let (decision, problem) = setkernel::bls_after_rollback(&r).expect("systemd-boot");
    assert!(matches!(decision, BlsNext::NoKernel { .. }), "{decision:?}");
    assert!(
        problem
            .as_deref()
            .is_some_and(|p| p.contains("the next boot may fail")),
        "{problem:?}"
    );
}
