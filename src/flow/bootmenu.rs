//! The boot-menu writer (docs/BOOTMENU.md): `/boot/grub/rewind.cfg`, one GRUB entry per snapshot
//! set, newest first, sourced by the "Roll back with rewind" submenu that
//! `/etc/grub.d/42_rewind` puts in grub.cfg. A usable set's entry calls `rewind_boot SET`
//! (defined by 42_rewind: the newest kernel, the usual command line plus `rd.rewind=SET`); any
//! other set is listed with its state and cannot be booted. Rewritten whenever the sets change,
//! so no grub-mkconfig run is needed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::Error;
use super::env::System;
use super::setkernel::{self, SetBoot};
use super::sets::{self, SetState, SetView};
use crate::lvm::layout::LvRef;
use crate::plan::bls;
use crate::system::bootfile;

/// The script grub-mkconfig runs (installed by install.sh): the sets' changes rewrite the menu
/// file only where it is installed.
pub const GRUB_SCRIPT: &str = "etc/grub.d/42_rewind";
/// The menu file, in GRUB's directory in /boot.
pub const MENU_FILE: &str = "rewind.cfg";

/// GRUB's directory under `root`: `boot/grub` (Debian, Ubuntu, Arch) or `boot/grub2` (Fedora,
/// openSUSE), whichever holds a grub.cfg.
pub fn grub_dir(root: &Path) -> Option<PathBuf> {
    ["boot/grub", "boot/grub2"]
        .iter()
        .map(|d| root.join(d))
        .find(|d| d.join("grub.cfg").is_file())
}

/// A GRUB word in single quotes (as in sh, `'` becomes `'\''`).
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// `YYYY-MM-DD HH:MM UTC`.
fn when(t: Option<i64>) -> String {
    match t {
        Some(t) => {
            let n = super::snapshot::default_name(t);
            format!(
                "{}-{}-{} {}:{} UTC",
                &n[0..4],
                &n[4..6],
                &n[6..8],
                &n[9..11],
                &n[11..13]
            )
        }
        None => "time unknown".into(),
    }
}

/// Why a set's entry does not boot, or `None` for a usable set.
fn not_bootable(v: &SetView) -> Option<&'static str> {
    match v.state {
        SetState::Ok => None,
        SetState::Lost => Some("lost: a member overflowed"),
        SetState::Incomplete => Some("incomplete: a member is missing"),
        SetState::Merging => Some("being rolled back to already"),
        SetState::Pending => Some("being made, or cut short"),
    }
}

/// GRUB's syntax checker for `text`; none for the empty menu (no set), which grub-script-check
/// refuses ("contains no commands") although GRUB sources it happily.
fn checker(text: &str) -> Option<PathBuf> {
    if text.is_empty() {
        None
    } else {
        bootfile::script_checker()
    }
}

/// Why a set's entry does not boot: its state, or `problems`' reason (an initramfs without
/// rewind: `setkernel::entry_problems`).
fn why_not(v: &SetView, problems: &BTreeMap<String, String>) -> Option<String> {
    not_bootable(v)
        .map(str::to_owned)
        .or_else(|| problems.get(&v.name).cloned())
}

/// The menu file's text for `views` (as `rewind list` gives them): empty with no set (42_rewind
/// then shows no submenu), else one entry per set, newest first.
pub fn render(views: &[SetView]) -> String {
    render_checked(views, &BTreeMap::new())
}

/// [`render`], with the sets whose entry boots an initramfs without rewind (`problems`: why)
/// listed as not bootable.
pub fn render_checked(views: &[SetView], problems: &BTreeMap<String, String>) -> String {
    if views.is_empty() {
        return String::new();
    }
    let mut sorted: Vec<&SetView> = views.iter().collect();
    sorted.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| a.name.cmp(&b.name)));
    let mut out = String::from(
        "# Written by rewind (rewind boot-menu): one entry per snapshot set, newest first.\n\
         # Rewritten whenever the sets change; edits are lost. rewind_boot is defined by\n\
         # /etc/grub.d/42_rewind in grub.cfg.\n",
    );
    for v in sorted {
        let n = v.members.len();
        let why = why_not(v, problems);
        let what = match &why {
            None => format!("complete, {n} member{}", if n == 1 { "" } else { "s" }),
            Some(why) => format!("NOT BOOTABLE, {why}"),
        };
        let mut title = format!("{}  {}", when(v.time), v.name);
        if !v.description.is_empty() {
            title.push_str(&format!("  {}", v.description.replace(['\n', '\r'], " ")));
        }
        title.push_str(&format!("  ({what})"));
        out.push_str(&format!(
            "menuentry {} --id {} {{\n",
            quote(&title),
            quote(&format!("rewind-{}", v.name))
        ));
        match &why {
            None => match &v.boot {
                // The set's own kernel, relative to /boot (42_rewind adds GRUB's path to it).
                SetBoot::Copy(k) => out.push_str(&format!(
                    "\trewind_boot {} {} {}\n",
                    quote(&v.name),
                    quote(&k.kernel.linux),
                    quote(&k.kernel.initrd)
                )),
                SetBoot::Member | SetBoot::Newest => {
                    out.push_str(&format!("\trewind_boot {}\n", quote(&v.name)))
                }
            },
            Some(why) => {
                out.push_str(&format!(
                    "\techo {}\n\tsleep 10\n",
                    quote(&format!(
                        "rewind: snapshot set {} cannot be rolled back to ({why}); see rewind list",
                        v.name
                    ))
                ));
            }
        }
        out.push_str("}\n");
    }
    out
}

/// The Boot Loader Specification entries' directory, where the machine has one:
/// `$BOOT/loader/entries` with `$BOOT` `/boot`, `/efi` or `/boot/efi` (the first there).
pub fn bls_dir(root: &Path) -> Option<PathBuf> {
    [
        "boot/loader/entries",
        "efi/loader/entries",
        "boot/efi/loader/entries",
    ]
    .iter()
    .map(|d| root.join(d))
    .find(|d| d.is_dir())
}

/// The sets as `rewind list` shows them, with the kernel each entry boots, but nothing tidied:
/// the poller writes the menu at boot, where a half-made set is only listed (not bootable)
/// until a set command tidies it. The copies of sets that are gone go first: an entry never
/// names a file that is not there.
fn menu_views(sys: &System) -> Result<Vec<SetView>, Error> {
    let mut dm = sys.device_mapper_if_any();
    let mut views = sets::views(
        &sys.env().scan()?,
        dm.as_mut()
            .map(|d| d as &mut dyn crate::system::dm::DeviceMapper),
    )?;
    setkernel::tidy(
        &sys.root,
        &views.iter().map(|v| v.name.clone()).collect::<Vec<_>>(),
    );
    setkernel::attach(&sys.root, &mut views);
    Ok(views)
}

/// `rewind boot-menu`: writes GRUB's menu file and the BLS entries (where each is used) for
/// the sets there are now; returns the menu file's path (else the BLS entries' directory).
pub fn write(sys: &System) -> Result<PathBuf, Error> {
    write_menus(sys, grub_dir(&sys.root), bls_dir(&sys.root))
}

/// [`write`] of GRUB's menu file in GRUB's directory `grub` and of the BLS entries in `bls`.
fn write_menus(
    sys: &System,
    grub: Option<PathBuf>,
    bls: Option<PathBuf>,
) -> Result<PathBuf, Error> {
    if grub.is_none() && bls.is_none() {
        return Err(Error::Set(format!(
            "no GRUB directory with a grub.cfg (boot/grub, boot/grub2) nor Boot Loader Specification entries (boot/loader/entries, efi/..., boot/efi/...) under {}: no boot menu to write",
            sys.root.display()
        )));
    }
    let views = menu_views(sys)?;
    if let Some(dir) = &bls {
        match write_bls_in(&sys.root, dir, &views) {
            Ok(n) => log::info!("boot entries {}: {} of rewind's", dir.display(), n.len()),
            Err(e) => log::warn!("the Boot Loader Specification entries were not updated: {e}"),
        }
    }
    let Some(dir) = grub else {
        return Ok(bls.unwrap_or_default());
    };
    // GRUB's default follows too (42_rewind runs this at every update-grub).
    setkernel::repin(&sys.root);
    let path = dir.join(MENU_FILE);
    let problems = setkernel::entry_problems(&sys.root, &views);
    let text = render_checked(&views, &problems);
    // /boot is not written for nothing (the poller looks at every boot).
    if std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
        log::debug!("boot menu {}: unchanged", path.display());
        return Ok(path);
    }
    bootfile::replace(&path, &text, checker(&text).as_deref())
        .map_err(|e| Error::Set(e.to_string()))?;
    log::info!("boot menu {}: {} set(s)", path.display(), views.len());
    Ok(path)
}

/// Rewrites rewind's entries in the BLS entries' directory `dir` (of the system at `root`) for
/// `views`: one `rewind-SET.conf` per usable set ([`bls::render`]) booting the set's copy
/// (where `$BOOT` is `/boot`, which holds it) or the usual entry's kernel, with the usual
/// entry's options and `rd.rewind=SET`; a set whose initramfs lacks rewind, or that cannot be
/// rolled back to, gets none. rewind's other entries are removed. Nothing is written where
/// rewind's entries could sort first (and become the default) or no usual entry is there:
/// then every entry of rewind's goes. Returns the entry files there are now.
pub fn write_bls_in(root: &Path, dir: &Path, views: &[SetView]) -> Result<Vec<String>, Error> {
    let io = |e: std::io::Error| Error::Set(format!("{}: {e}", dir.display()));
    let boot_root = dir
        .parent()
        .and_then(Path::parent)
        .unwrap_or(dir)
        .to_path_buf();
    let mut entries = Vec::new();
    for n in bootfile::names(dir).map_err(io)? {
        if n.ends_with(".conf") {
            let text = std::fs::read_to_string(dir.join(&n)).map_err(io)?;
            entries.push((n, bls::Entry::parse(&text)));
        }
    }
    let mut wanted: BTreeMap<String, String> = BTreeMap::new();
    if let Some(why) = bls::cannot_sort_last(&entries) {
        log::warn!("no boot entries of rewind's in {}: {why}", dir.display());
    } else if let Some((_, usual)) = bls::usual(&entries) {
        let mut cands = Vec::new();
        for v in views.iter().filter(|v| not_bootable(v).is_none()) {
            let boots = match &v.boot {
                SetBoot::Copy(k) if boot_root == root.join("boot") => bls::Boots {
                    version: k.kernel.version.clone(),
                    linux: format!("/{}", k.kernel.linux),
                    initrd: vec![format!("/{}", k.kernel.initrd)],
                },
                _ => match &usual.linux {
                    Some(l) => bls::Boots {
                        version: usual.version.clone().unwrap_or_default(),
                        linux: l.clone(),
                        initrd: usual.initrd.clone(),
                    },
                    None => continue,
                },
            };
            cands.push((v, boots));
        }
        // The main image is the last initrd (those before it are microcode, as a rule).
        let images: Vec<(String, String, PathBuf)> = cands
            .iter()
            .filter_map(|(v, b)| {
                let i = b.initrd.last()?;
                Some((
                    v.name.clone(),
                    i.clone(),
                    boot_root.join(i.trim_start_matches('/')),
                ))
            })
            .collect();
        let cache = boot_root.join("loader").join(setkernel::INITRAMFS_CHECKS);
        let problems = setkernel::image_problems(Some(&cache), &images);
        for (v, b) in cands {
            if b.initrd.is_empty() {
                log::warn!(
                    "snapshot set {}: no boot entry, the usual entry boots no initramfs (rewind runs from it)",
                    v.name
                );
                continue;
            }
            if let Some(why) = problems.get(&v.name) {
                log::warn!("snapshot set {}: no boot entry, {why}", v.name);
                continue;
            }
            let mut title = format!("Roll back with rewind: {} ({}", v.name, when(v.time));
            if !v.description.is_empty() {
                title.push_str(&format!(", {}", v.description));
            }
            title.push(')');
            wanted.insert(
                bls::file_name(&v.name),
                bls::render(&v.name, &title, &b, &usual.options),
            );
        }
    } else {
        log::warn!(
            "no boot entries of rewind's in {}: no entry of the machine's own boots a kernel",
            dir.display()
        );
    }
    let err = |e: bootfile::BootFileError| Error::Set(e.to_string());
    for (n, text) in &wanted {
        let p = dir.join(n);
        if std::fs::read_to_string(&p).ok().as_deref() != Some(text.as_str()) {
            bootfile::replace(&p, text, None).map_err(err)?;
        }
    }
    for (n, _) in &entries {
        if n.starts_with(bls::PREFIX) && !wanted.contains_key(n) {
            bootfile::remove(&dir.join(n)).map_err(err)?;
        }
    }
    Ok(wanted.into_keys().collect())
}

/// The GRUB entry path of set `name`'s entry (`grub-reboot`'s and `GRUB_DEFAULT`'s syntax):
/// the submenu's id, `>`, the entry's id.
pub fn entry_path(name: &str) -> String {
    format!("rewind>rewind-{name}")
}

/// `rewind rollback SET --next-boot` with the sets `views` and GRUB's directory `dir` (on the
/// logical volume `dir_lv`, if on one): refuses a set that cannot be rolled back to and GRUB's
/// directory on LVM (nothing changes), writes the menu, checks that grub.cfg has 42_rewind's
/// submenu, then sets GRUB's one-shot `next_entry` in `dir/grubenv` (what grub-reboot does;
/// GRUB clears it when it boots it). Returns the entry path.
pub fn next_boot_in(
    views: &[SetView],
    problems: &BTreeMap<String, String>,
    dir: &Path,
    dir_lv: Option<&LvRef>,
    name: &str,
) -> Result<String, Error> {
    let v = views
        .iter()
        .find(|v| v.name == name)
        .ok_or_else(|| Error::Set(format!("no snapshot set {name} (rewind list shows them)")))?;
    if let Some(why) = why_not(v, problems) {
        return Err(Error::Set(format!(
            "snapshot set {name} cannot be rolled back to ({why}); nothing changed"
        )));
    }
    if let Some(lv) = dir_lv {
        return Err(Error::Set(format!(
            "--next-boot needs GRUB to clear its one-shot entry, but GRUB's directory {} is on the logical volume {lv} and GRUB cannot write its environment block on LVM: the entry would never clear. Use rewind rollback {name} (the rollback is flagged in LVM's metadata; any entry of the boot menu then rolls back), or type rd.rewind={name} at the boot menu; nothing changed",
            dir.display()
        )));
    }
    let cfg = std::fs::read_to_string(dir.join("grub.cfg"))
        .map_err(|e| Error::Set(format!("{}: {e}", dir.join("grub.cfg").display())))?;
    if !cfg.contains("--id rewind {") {
        return Err(Error::Set(format!(
            "{} has no \"Roll back with rewind\" submenu: run update-grub (or grub-mkconfig) with /etc/grub.d/42_rewind installed first; nothing changed",
            dir.join("grub.cfg").display()
        )));
    }
    let text = render_checked(views, problems);
    bootfile::replace(&dir.join(MENU_FILE), &text, checker(&text).as_deref())
        .map_err(|e| Error::Set(e.to_string()))?;
    let entry = entry_path(name);
    bootfile::set_next_entry(&dir.join("grubenv"), &entry)
        .map_err(|e| Error::Set(e.to_string()))?;
    Ok(entry)
}

/// `rewind rollback SET --next-boot` on this system.
pub fn next_boot(sys: &System, name: &str) -> Result<String, Error> {
    let dir = grub_dir(&sys.root).ok_or_else(|| {
        Error::Set(format!(
            "no GRUB directory with a grub.cfg under {}: --next-boot needs GRUB; type rd.rewind={name} at the boot menu, or use rewind rollback {name}",
            sys.root.display()
        ))
    })?;
    let views = sets::list(sys)?;
    let lv = setkernel::grub_dir_lv(sys).map(|(_, lv)| lv);
    let problems = setkernel::entry_problems(&sys.root, &views);
    next_boot_in(&views, &problems, &dir, lv.as_ref(), name)
}

/// After a set changed: rewrites GRUB's menu where 42_rewind is installed and GRUB's directory
/// is there, and the BLS entries where the machine has their directory. Never fails the
/// command that changed the set; a failure is a warning.
pub fn refresh(sys: &System) {
    let grub = grub_dir(&sys.root).filter(|_| sys.root.join(GRUB_SCRIPT).is_file());
    let bls = bls_dir(&sys.root);
    if grub.is_none() && bls.is_none() {
        return;
    }
    if let Err(e) = write_menus(sys, grub, bls) {
        log::warn!("the boot menu was not updated: {e} (run rewind boot-menu)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::sets::{MemberState, MemberView};

    fn set(name: &str, time: i64, state: SetState, description: &str) -> SetView {
        SetView {
            name: name.into(),
            time: Some(time),
            kind: None,
            description: description.into(),
            pinned: false,
            state,
            members_declared: Some(1),
            boot: crate::flow::setkernel::SetBoot::Newest,
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
        }
    }

    #[test]
    fn no_set_no_menu() {
        assert_eq!(render(&[]), "");
        // grub-script-check refuses an empty file: the empty menu is not checked.
        assert_eq!(checker(""), None);
    }

    #[test]
    fn newest_first_only_usable_sets_boot() {
        let text = render(&[
            set("old", 1_000, SetState::Ok, "before it's upgraded"),
            set("lost", 3_000, SetState::Lost, ""),
            set("new", 2_000, SetState::Ok, ""),
        ]);
        let titles: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("menuentry"))
            .collect();
        assert_eq!(
            titles,
            vec![
                "menuentry '1970-01-01 00:50 UTC  lost  (NOT BOOTABLE, lost: a member overflowed)' --id 'rewind-lost' {",
                "menuentry '1970-01-01 00:33 UTC  new  (complete, 1 member)' --id 'rewind-new' {",
                "menuentry '1970-01-01 00:16 UTC  old  before it'\\''s upgraded  (complete, 1 member)' --id 'rewind-old' {",
            ]
        );
        assert_eq!(
            text.matches("rewind_boot").count() - 1,
            2,
            "one rewind_boot per usable set (plus the header's mention)"
        );
        assert!(text.contains("\trewind_boot 'new'\n"));
        assert!(text.contains("\trewind_boot 'old'\n"));
        assert!(!text.contains("rewind_boot 'lost'"));
    }

    #[test]
    fn a_set_with_its_own_kernel_boots_it() {
        let mut v = set("pre", 1_000, SetState::Ok, "");
        v.boot = SetBoot::Copy(crate::plan::kernels::SetKernel {
            kernel: crate::plan::kernels::Kernel {
                version: "6.1.0-9-amd64".into(),
                linux: "rewind/vmlinuz-6.1.0-9-amd64.0000abcd".into(),
                initrd: "rewind/initrd.img-6.1.0-9-amd64.00001234".into(),
            },
            bytes: 1,
        });
        let text = render(&[v]);
        assert!(text.contains(
            "\trewind_boot 'pre' 'rewind/vmlinuz-6.1.0-9-amd64.0000abcd' 'rewind/initrd.img-6.1.0-9-amd64.00001234'\n"
        ), "{text}");
    }
    #[test]
    fn next_boot_is_refused_when_grub_s_directory_is_on_lvm() {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::write(d.path().join("grub.cfg"), "submenu 'x' --id rewind {\n}\n")
            .expect("test io");
        let views = [set("pre", 1_000, SetState::Ok, "")];
        let lv = LvRef {
            vg: "vg0".into(),
            lv: "root".into(),
        };
        let e = next_boot_in(&views, &BTreeMap::new(), d.path(), Some(&lv), "pre")
            .expect_err("refused");
        let m = e.to_string();
        assert!(m.contains("is on the logical volume vg0/root"), "{m}");
        assert!(
            m.contains("GRUB cannot write its environment block on LVM"),
            "{m}"
        );
        assert!(m.contains("rewind rollback pre"), "{m}");
        // Nothing written: no menu, no environment block.
        assert!(!d.path().join(MENU_FILE).exists());
        assert!(!d.path().join("grubenv").exists());
    }
}
