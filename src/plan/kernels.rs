//! Pure decisions about kernels in `/boot` (docs/BOOTMENU.md, "The set's kernel"): which kernel
//! matches a root (its modules are in the root's `/lib/modules`), the names of a set's copies
//! under `/boot/rewind/`, the record that ties a set to its copy, which copies no set needs
//! any more, and which kernel GRUB's next plain boot must start after a rollback.

use std::cmp::Ordering;
use std::collections::BTreeSet;

/// The directory of the sets' kernel copies, relative to `/boot`.
pub const STORE: &str = "rewind";

/// A kernel and its initramfs, as file names relative to `/boot`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Kernel {
    pub version: String,
    pub linux: String,
    pub initrd: String,
}

/// Compares kernel versions as GRUB's `version_find_latest` (`sort -V`) orders them: runs of
/// digits by value, everything else byte by byte.
pub fn version_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let si = i;
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let x = std::str::from_utf8(&a[si..i])
                .unwrap_or("0")
                .trim_start_matches('0');
            let y = std::str::from_utf8(&b[sj..j])
                .unwrap_or("0")
                .trim_start_matches('0');
            let o = x.len().cmp(&y.len()).then_with(|| x.cmp(y));
            if o != Ordering::Equal {
                return o;
            }
        } else {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

/// A kernel file's version part, when it names a version (`vmlinuz-6.1.0-9-amd64`): Arch's
/// `vmlinuz-linux` names a package, not the modules directory, and is left out (such a
/// kernel's version is inside the image, which rewind does not read).
fn version_of(name: &str) -> Option<&str> {
    name.strip_prefix("vmlinuz-")
        .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
        .filter(|v| !v.ends_with(".old") && !v.ends_with(".bak"))
}

/// The kernels among the file names of a directory (`/boot`): every `vmlinuz-VERSION` with an
/// initramfs of a name distributions give it (`initrd.img-VERSION` Debian and Ubuntu,
/// `initramfs-VERSION.img` Fedora and Arch, `initrd-VERSION.img`); newest first. A kernel
/// without an initramfs cannot boot a root on LVM and is left out.
pub fn kernels_in(names: &[String]) -> Vec<Kernel> {
    let have: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    let mut out: Vec<Kernel> = names
        .iter()
        .filter_map(|n| {
            let version = version_of(n)?;
            let initrd = [
                format!("initrd.img-{version}"),
                format!("initramfs-{version}.img"),
                format!("initrd-{version}.img"),
            ]
            .into_iter()
            .find(|i| have.contains(i.as_str()))?;
            Some(Kernel {
                version: version.to_owned(),
                linux: n.clone(),
                initrd,
            })
        })
        .collect();
    out.sort_by(|a, b| version_cmp(&b.version, &a.version));
    out
}

/// Every kernel file name in `/boot`, initramfs or not, newest first: what GRUB's `10_linux`
/// makes its default entry of is the first.
pub fn newest_linux(names: &[String]) -> Option<String> {
    names
        .iter()
        .filter_map(|n| version_of(n))
        .max_by(|a, b| version_cmp(a, b))
        .map(str::to_owned)
}

/// The kernel that matches a root whose `/lib/modules` holds `modules`: the running one
/// (`running`, at snapshot time) when its modules are there, else the newest whose modules
/// are. `None`: no kernel in `kernels` has its modules in the root.
pub fn for_root<'k>(
    kernels: &'k [Kernel],
    modules: &[String],
    running: Option<&str>,
) -> Option<&'k Kernel> {
    let has = |k: &&Kernel| modules.contains(&k.version);
    running
        .and_then(|r| kernels.iter().filter(has).find(|k| k.version == r))
        .or_else(|| kernels.iter().find(has))
}

/// The name of a copy of `file` (`vmlinuz-V` or `initrd.img-V`) whose content's checksum is
/// `sum`, relative to `/boot`: the same content keeps the same name, so sets share one copy.
pub fn copy_name(file: &str, sum: u32) -> String {
    format!("{STORE}/{file}.{sum:08x}")
}

/// What a set keeps in `$BOOT/rewind/SET.kernel`: its kernel's copy (file names relative to
/// `$BOOT`) and their size.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SetKernel {
    #[serde(flatten)]
    pub kernel: Kernel,
    pub bytes: u64,
    /// The `$BOOT` that holds the copy, as the system sees it: `/boot` (GRUB's, and a BLS
    /// `$BOOT` of `/boot`), or the ESP (`/efi`, `/boot/efi`) where systemd-boot reads its
    /// entries there. Not in the record (it is where the record is).
    #[serde(skip)]
    pub boot_dir: String,
}

/// The `$BOOT` of a record read from `/boot`.
pub const BOOT_DIR: &str = "/boot";

impl SetKernel {
    /// The record's file name in the store, relative to `/boot`.
    pub fn record_name(set: &str) -> String {
        format!("{STORE}/{set}.kernel")
    }

    /// The record's text: `key=value` lines.
    pub fn to_text(&self) -> String {
        format!(
            "version={}\nlinux={}\ninitrd={}\nbytes={}\n",
            self.kernel.version, self.kernel.linux, self.kernel.initrd, self.bytes
        )
    }

    /// Parses a record; `None` for one that is not whole or names a file outside the store.
    pub fn parse(text: &str) -> Option<SetKernel> {
        let get = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_owned)
        };
        let in_store = |p: &str| {
            p.strip_prefix(STORE)
                .and_then(|r| r.strip_prefix('/'))
                .is_some_and(|f| !f.is_empty() && !f.contains('/') && !f.starts_with('.'))
        };
        let linux = get("linux").filter(|p| in_store(p))?;
        let initrd = get("initrd").filter(|p| in_store(p))?;
        Some(SetKernel {
            kernel: Kernel {
                version: get("version")?,
                linux,
                initrd,
            },
            bytes: get("bytes")?.parse().ok()?,
            boot_dir: BOOT_DIR.into(),
        })
    }
}

/// What to remove from the store (names relative to `/boot`): the records of sets that are
/// gone (`sets`: the names there are), then every copy no remaining record names.
/// `store`: the store's file names.
pub fn unneeded(
    store: &[String],
    records: &[(String, Option<SetKernel>)],
    sets: &[String],
) -> Vec<String> {
    let mut out = Vec::new();
    let mut needed = BTreeSet::new();
    for (set, rec) in records {
        if sets.contains(set) {
            if let Some(r) = rec {
                needed.insert(r.kernel.linux.clone());
                needed.insert(r.kernel.initrd.clone());
            }
        } else {
            out.push(SetKernel::record_name(set));
        }
    }
    for f in store {
        if f.ends_with(".kernel") || f.starts_with('.') {
            continue;
        }
        let p = format!("{STORE}/{f}");
        if !needed.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// What the next plain boot starts, after a rollback (or any change to `/boot` or the root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextBoot {
    /// GRUB's default (the newest kernel in `/boot`) has its modules in the root: nothing to
    /// do, and no pin of rewind's is left.
    Fine,
    /// The newest kernel has no modules in the root (a kernel a rolled-back upgrade added):
    /// the default is pinned to this one, the newest whose modules are there.
    Pin {
        without_modules: String,
        kernel: Kernel,
    },
    /// The newest kernel has no modules in the root and no kernel that has is there to boot.
    NoKernel { without_modules: String },
}

/// The decision over `/boot`'s file names and the root's `/lib/modules`. No kernel in `/boot`
/// at all (not mounted): fine, nothing can be said.
pub fn default_after(boot: &[String], modules: &[String]) -> NextBoot {
    let Some(newest) = newest_linux(boot) else {
        return NextBoot::Fine;
    };
    if modules.contains(&newest) {
        return NextBoot::Fine;
    }
    match for_root(&kernels_in(boot), modules, None) {
        Some(k) => NextBoot::Pin {
            without_modules: newest,
            kernel: k.clone(),
        },
        None => NextBoot::NoKernel {
            without_modules: newest,
        },
    }
}

/// The GRUB script of the pin (`/boot/grub/rewind-default.cfg`, sourced by 42_rewind after
/// 10_linux's entries): an entry that boots `k` with the usual command line (42_rewind's
/// `rewind_boot` with no set), made the default unless this boot is GRUB's one-shot
/// `next_entry` (`boot_once`, set by 00_header).
pub fn pin_script(k: &Kernel, without_modules: &str) -> String {
    format!(
        "# Written by rewind after a rollback: the newest kernel in /boot ({without_modules}) has no\n\
         # modules in the root; the default entry boots {v}, whose modules are there.\n\
         # Removed by rewind when the newest kernel matches the root again.\n\
         menuentry 'Linux {v} (the root'\\''s kernel, pinned by rewind)' --id rewind-default {{\n\
         \trewind_boot '' '{l}' '{i}'\n\
         }}\n\
         if [ -z \"${{boot_once}}\" ]; then\n\
         \tset default=rewind-default\n\
         fi\n",
        v = k.version,
        l = k.linux,
        i = k.initrd,
    )
}

/// `/boot` (or a directory under it) mounted from a logical volume of its own, named as a set
/// member: refused (docs/BOOTMENU.md, "/boot on LVM"). `members`: each member's `VG/LV` and
/// mount point. Returns the refusal's text.
pub fn boot_lv_refusal(members: &[(String, Option<String>)]) -> Option<String> {
    let (lv, at) = members.iter().find_map(|(lv, m)| {
        let m = m.as_deref()?;
        (m == "/boot" || m.starts_with("/boot/")).then_some((lv, m))
    })?;
    Some(format!(
        "{lv} (mounted at {at}) cannot be a member of a set: /boot on a logical volume of its own, rolled back under GRUB, is not supported (GRUB's own files would change under it, and GRUB cannot write its environment block on LVM). Leave it out: where rewind's GRUB menu is installed, each set keeps a copy of its kernel and initramfs under /boot/rewind instead. Nothing changed"
    ))
}

/// A debconf question's value in debconf's database text (`/var/cache/debconf/config.dat`:
/// stanzas of `Field: value` lines, blank-line separated): `None` when the question or its
/// `Value:` is not there.
pub fn debconf_value(config_dat: &str, question: &str) -> Option<String> {
    config_dat.split("\n\n").find_map(|stanza| {
        let mut name = None;
        let mut value = None;
        for line in stanza.lines() {
            if let Some(n) = line.strip_prefix("Name: ") {
                name = Some(n.trim());
            } else if let Some(v) = line.strip_prefix("Value:") {
                value = Some(v.trim().to_owned());
            }
        }
        (name == Some(question)).then_some(value).flatten()
    })
}

/// After a rollback of the logical volume holding GRUB's directory: what makes GRUB's boot
/// code (outside LVM: the disk's first track, or the EFI system partition) match the rolled-back
/// modules in `/boot/grub/PLATFORM` again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrubReinstall {
    /// The rolled-back system's `grub-install --target=PLATFORM DEVICE` for each device.
    Run {
        platform: String,
        devices: Vec<String>,
    },
    /// It cannot be done safely here: why (said loudly: journal, login note, status).
    Cannot(String),
}

/// The decision over the platform directories in GRUB's directory (`i386-pc`, `x86_64-efi`,
/// ...) and debconf's `grub-pc/install_devices` (the devices grub-pc's own upgrades install
/// to; `None`: not known). Only BIOS GRUB (`i386-pc`) on the devices debconf names is done.
pub fn grub_reinstall(platforms: &[String], install_devices: Option<&str>) -> GrubReinstall {
    let bios = platforms.iter().any(|p| p == "i386-pc");
    let others: Vec<&str> = platforms
        .iter()
        .filter(|p| p.as_str() != "i386-pc")
        .map(String::as_str)
        .collect();
    if !others.is_empty() {
        return GrubReinstall::Cannot(format!(
            "GRUB's modules for {} rolled back with the root, but rewind does not reinstall GRUB for that platform: if GRUB was reinstalled since the set was taken, run the rolled-back system's grub-install now, or the next boot may fail",
            others.join(", ")
        ));
    }
    if !bios {
        return GrubReinstall::Cannot(
            "GRUB's directory rolled back with the root, but it holds no platform directory (i386-pc): rewind cannot tell which boot code to reinstall; run grub-install now if GRUB was reinstalled since the set was taken".into(),
        );
    }
    let devices: Vec<String> = install_devices
        .unwrap_or_default()
        .split([',', ' '])
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
        .collect();
    if devices.is_empty() {
        return GrubReinstall::Cannot(
            "GRUB's modules (i386-pc) rolled back with the root, but debconf names no device for grub-pc/install_devices: rewind cannot reinstall GRUB's boot code to match them; run dpkg-reconfigure grub-pc (or grub-install DISK) now, or the next boot may fail if GRUB was reinstalled since the set was taken".into(),
        );
    }
    GrubReinstall::Run {
        platform: "i386-pc".into(),
        devices,
    }
}

/// The initramfs file name of kernel `version` among `/boot`'s `names` (42_rewind's order:
/// `initrd.img-V`, `initrd-V.img`, `initramfs-V.img`).
pub fn initrd_of(names: &[String], version: &str) -> Option<String> {
    [
        format!("initrd.img-{version}"),
        format!("initrd-{version}.img"),
        format!("initramfs-{version}.img"),
    ]
    .into_iter()
    .find(|n| names.contains(n))
}

/// What an initramfs lacks of rewind, from its listing (one path per line, as `lsinitramfs`
/// and `lsinitcpio` print them, or `ls -l` lines with the path last, as `lsinitrd` does):
/// `None` when it carries both the program (`usr/sbin/rewind` or `sbin/rewind`) and the udev
/// rule that runs it first (`63-rewind.rules`), which every initramfs hook of rewind's installs.
pub fn initramfs_lacks_rewind(listing: &str) -> Option<&'static str> {
    let paths: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .map(|p| p.trim_start_matches("./").trim_start_matches('/'))
        .collect();
    if !paths
        .iter()
        .any(|p| *p == "usr/sbin/rewind" || *p == "sbin/rewind")
    {
        Some("its initramfs has no /usr/sbin/rewind")
    } else if !paths
        .iter()
        .any(|p| p.ends_with("/rules.d/63-rewind.rules"))
    {
        Some("its initramfs has no 63-rewind.rules")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn versions_sort_as_sort_v() {
        assert_eq!(
            version_cmp("6.1.0-10-amd64", "6.1.0-9-amd64"),
            Ordering::Greater
        );
        assert_eq!(
            version_cmp("6.1.999-1-cloud-amd64", "6.1.0-41-cloud-amd64"),
            Ordering::Greater
        );
        assert_eq!(version_cmp("5.10.0", "5.10.0"), Ordering::Equal);
        assert_eq!(version_cmp("5.10", "5.10.0"), Ordering::Less);
    }

    #[test]
    fn kernels_need_an_initramfs_and_come_newest_first() {
        let boot = names(&[
            "vmlinuz-6.1.0-9-amd64",
            "initrd.img-6.1.0-9-amd64",
            "vmlinuz-6.1.0-10-amd64",
            "initramfs-6.1.0-10-amd64.img",
            "vmlinuz-6.2.0-1-amd64",
            "System.map-6.2.0-1-amd64",
            "grub",
        ]);
        let k = kernels_in(&boot);
        let v: Vec<&str> = k.iter().map(|k| k.version.as_str()).collect();
        assert_eq!(v, vec!["6.1.0-10-amd64", "6.1.0-9-amd64"]);
        assert_eq!(k[0].initrd, "initramfs-6.1.0-10-amd64.img");
        assert_eq!(newest_linux(&boot).as_deref(), Some("6.2.0-1-amd64"));
    }

    #[test]
    fn the_root_s_kernel_is_the_running_one_else_the_newest_with_modules() {
        let k = kernels_in(&names(&[
            "vmlinuz-1.0",
            "initrd.img-1.0",
            "vmlinuz-2.0",
            "initrd.img-2.0",
            "vmlinuz-3.0",
            "initrd.img-3.0",
        ]));
        let m = names(&["1.0", "2.0"]);
        assert_eq!(
            for_root(&k, &m, Some("1.0")).map(|k| k.version.as_str()),
            Some("1.0")
        );
        // Running 3.0, whose modules the root lacks: the newest with modules.
        assert_eq!(
            for_root(&k, &m, Some("3.0")).map(|k| k.version.as_str()),
            Some("2.0")
        );
        assert_eq!(
            for_root(&k, &m, None).map(|k| k.version.as_str()),
            Some("2.0")
        );
        assert_eq!(for_root(&k, &names(&["9"]), None), None);
    }

    #[test]
    fn a_record_round_trips_and_never_names_a_file_outside_the_store() {
        let r = SetKernel {
            kernel: Kernel {
                version: "6.1.0-9-amd64".into(),
                linux: copy_name("vmlinuz-6.1.0-9-amd64", 0xab),
                initrd: copy_name("initrd.img-6.1.0-9-amd64", 0x1234_5678),
            },
            bytes: 42,
            boot_dir: BOOT_DIR.into(),
        };
        assert_eq!(r.kernel.linux, "rewind/vmlinuz-6.1.0-9-amd64.000000ab");
        assert_eq!(SetKernel::parse(&r.to_text()), Some(r.clone()));
        let bad = r.to_text().replace("rewind/vmlinuz", "rewind/../vmlinuz");
        assert_eq!(SetKernel::parse(&bad), None);
        assert_eq!(SetKernel::parse("version=1\n"), None);
    }

    #[test]
    fn copies_go_when_no_set_needs_them() {
        let rec = |v: &str| {
            Some(SetKernel {
                kernel: Kernel {
                    version: v.into(),
                    linux: format!("rewind/vmlinuz-{v}.1"),
                    initrd: format!("rewind/initrd.img-{v}.1"),
                },
                bytes: 1,
                boot_dir: BOOT_DIR.into(),
            })
        };
        let store = names(&[
            "a.kernel",
            "b.kernel",
            "vmlinuz-1.1",
            "initrd.img-1.1",
            "vmlinuz-2.1",
            "initrd.img-2.1",
            ".vmlinuz-3.1.new",
        ]);
        let records = vec![("a".to_owned(), rec("1")), ("b".to_owned(), rec("2"))];
        // Set b is gone: its record and its copies go; a's stay; a temporary is not touched.
        assert_eq!(
            unneeded(&store, &records, &names(&["a"])),
            names(&[
                "rewind/b.kernel",
                "rewind/vmlinuz-2.1",
                "rewind/initrd.img-2.1"
            ])
        );
        // Both sets share one copy: nothing goes while either remains.
        let shared = vec![("a".to_owned(), rec("1")), ("b".to_owned(), rec("1"))];
        let store = names(&["a.kernel", "b.kernel", "vmlinuz-1.1", "initrd.img-1.1"]);
        assert_eq!(
            unneeded(&store, &shared, &names(&["b"])),
            names(&["rewind/a.kernel"])
        );
    }

    #[test]
    fn a_kernel_the_rolled_back_upgrade_added_does_not_win_the_next_boot() {
        let boot = names(&[
            "vmlinuz-6.1.0-9-amd64",
            "initrd.img-6.1.0-9-amd64",
            "vmlinuz-6.1.999-1-amd64",
            "initrd.img-6.1.999-1-amd64",
        ]);
        let old_root = names(&["6.1.0-9-amd64"]);
        let NextBoot::Pin {
            without_modules,
            kernel,
        } = default_after(&boot, &old_root)
        else {
            panic!("not pinned");
        };
        assert_eq!(without_modules, "6.1.999-1-amd64");
        assert_eq!(kernel.linux, "vmlinuz-6.1.0-9-amd64");
        let script = pin_script(&kernel, &without_modules);
        assert!(
            script
                .contains("\trewind_boot '' 'vmlinuz-6.1.0-9-amd64' 'initrd.img-6.1.0-9-amd64'\n")
        );
        assert!(script.contains("set default=rewind-default"));
        // The new root has the new kernel's modules: nothing pinned.
        assert_eq!(
            default_after(&boot, &names(&["6.1.0-9-amd64", "6.1.999-1-amd64"])),
            NextBoot::Fine
        );
        assert_eq!(
            default_after(&boot, &names(&["5.0"])),
            NextBoot::NoKernel {
                without_modules: "6.1.999-1-amd64".into()
            }
        );
        assert_eq!(default_after(&[], &old_root), NextBoot::Fine);
        // Arch names its kernels by package: nothing can be said, nothing is pinned.
        let arch = names(&["vmlinuz-linux", "initramfs-linux.img"]);
        assert_eq!(
            default_after(&arch, &names(&["6.6.1-arch1-1"])),
            NextBoot::Fine
        );
    }
    #[test]
    fn boot_on_its_own_lv_is_refused_a_root_member_is_not() {
        let m = |lv: &str, at: Option<&str>| (lv.to_owned(), at.map(str::to_owned));
        assert_eq!(
            boot_lv_refusal(&[m("vg0/root", Some("/")), m("vg0/data", None)]),
            None
        );
        assert_eq!(boot_lv_refusal(&[m("vg0/bootish", Some("/bootish"))]), None);
        let e = boot_lv_refusal(&[m("vg0/root", Some("/")), m("vg0/boot", Some("/boot"))])
            .expect("refused");
        assert!(
            e.starts_with("vg0/boot (mounted at /boot) cannot be a member"),
            "{e}"
        );
        assert!(
            e.contains("/boot/rewind") && e.ends_with("Nothing changed"),
            "{e}"
        );
        assert!(boot_lv_refusal(&[m("vg0/efi", Some("/boot/efi"))]).is_some());
    }

    #[test]
    fn debconf_values_are_read_from_config_dat() {
        let dat = "Name: grub-pc/install_devices\nTemplate: grub-pc/install_devices\nValue: /dev/disk/by-id/ata-QEMU_HARDDISK_QM00001, /dev/sdb\nOwners: grub-pc\nFlags: seen\n\nName: grub-pc/install_devices_empty\nTemplate: grub-pc/install_devices_empty\nValue: false\nOwners: grub-pc\n\nName: grub-pc/timeout\nOwners: grub-pc\n";
        assert_eq!(
            debconf_value(dat, "grub-pc/install_devices").as_deref(),
            Some("/dev/disk/by-id/ata-QEMU_HARDDISK_QM00001, /dev/sdb")
        );
        assert_eq!(
            debconf_value(dat, "grub-pc/install_devices_empty").as_deref(),
            Some("false")
        );
        assert_eq!(debconf_value(dat, "grub-pc/timeout"), None, "no Value line");
        assert_eq!(debconf_value(dat, "grub-pc/nothing"), None);
    }

    #[test]
    fn grub_is_reinstalled_only_for_bios_on_debconf_s_devices() {
        let p = |v: &[&str]| names(v);
        assert_eq!(
            grub_reinstall(&p(&["i386-pc"]), Some("/dev/vda, /dev/vdb")),
            GrubReinstall::Run {
                platform: "i386-pc".into(),
                devices: names(&["/dev/vda", "/dev/vdb"]),
            }
        );
        assert!(matches!(
            grub_reinstall(&p(&["i386-pc"]), Some("")),
            GrubReinstall::Cannot(ref w) if w.contains("debconf names no device")
        ));
        assert!(matches!(
            grub_reinstall(&p(&["i386-pc"]), None),
            GrubReinstall::Cannot(_)
        ));
        assert!(matches!(
            grub_reinstall(&p(&["i386-pc", "x86_64-efi"]), Some("/dev/vda")),
            GrubReinstall::Cannot(ref w) if w.contains("x86_64-efi")
        ));
        assert!(matches!(
            grub_reinstall(&[], Some("/dev/vda")),
            GrubReinstall::Cannot(_)
        ));
    }
    #[test]
    fn an_initramfs_carries_rewind_with_its_program_and_its_rule() {
        let debian = "usr\nusr/sbin\nusr/sbin/rewind\nusr/lib/udev/rules.d/63-rewind.rules\n";
        assert_eq!(initramfs_lacks_rewind(debian), None);
        // dracut's lsinitrd: ls -l lines, the path last.
        let dracut = "-rwxr-xr-x   1 root     root      3000000 Jan  1 00:00 usr/sbin/rewind\n-rw-r--r--   1 root     root          800 Jan  1 00:00 usr/lib/udev/rules.d/63-rewind.rules\nlrwxrwxrwx   1 root     root            8 Jan  1 00:00 sbin -> usr/sbin\n";
        assert_eq!(initramfs_lacks_rewind(dracut), None);
        assert_eq!(
            initramfs_lacks_rewind("usr/sbin/lvm\nusr/lib/udev/rules.d/69-lvm.rules\n"),
            Some("its initramfs has no /usr/sbin/rewind")
        );
        assert_eq!(
            initramfs_lacks_rewind("usr/sbin/rewind\nusr/sbin/rewind-early\n"),
            Some("its initramfs has no 63-rewind.rules")
        );
        assert!(initramfs_lacks_rewind("usr/sbin/rewinder\n").is_some());
        assert_eq!(
            initramfs_lacks_rewind(""),
            Some("its initramfs has no /usr/sbin/rewind")
        );
    }

    #[test]
    fn a_kernel_s_initramfs_is_found_by_its_names() {
        let boot = names(&["vmlinuz-1.0", "initramfs-1.0.img", "vmlinuz-2.0"]);
        assert_eq!(
            initrd_of(&boot, "1.0").as_deref(),
            Some("initramfs-1.0.img")
        );
        assert_eq!(initrd_of(&boot, "2.0"), None);
    }
}
