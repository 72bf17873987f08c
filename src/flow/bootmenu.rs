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

/// Whether `/etc/default/grub`'s text turns on GRUB's `blscfg` (`GRUB_ENABLE_BLSCFG=true`, as
/// Fedora and RHEL set it: grub.cfg then makes its menu from the BLS entries). The last
/// assignment counts, quoted or not; comments are skipped.
pub fn blscfg_enabled_in(default_grub: &str) -> bool {
    default_grub
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("GRUB_ENABLE_BLSCFG="))
        .next_back()
        .map(|v| {
            let v = v.split('#').next().unwrap_or("").trim();
            v.trim_matches(|c| c == '"' || c == '\'') == "true"
        })
        .unwrap_or(false)
}

/// Where the sets would be listed twice, once by rewind's GRUB submenu and once by GRUB's
/// `blscfg` reading rewind's BLS entries in the same `/boot/loader/entries`: 42_rewind
/// installed, GRUB's directory in `/boot`, `GRUB_ENABLE_BLSCFG=true`, and `bls` the
/// directory under `/boot`. rewind then writes only the submenu (docs/BOOTMENU.md).
pub fn grub_reads_bls(root: &Path, grub: Option<&Path>, bls: &Path) -> bool {
    grub.is_some_and(|g| g.starts_with(root.join("boot")))
        && root.join(GRUB_SCRIPT).is_file()
        && bls == root.join("boot/loader/entries")
        && bootfile::read(&root.join("etc/default/grub")).is_some_and(|t| blscfg_enabled_in(&t))
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
    // systemd-boot's default follows the root too (a kernel's modules back: the pin goes),
    // before the tidy of the store: the copies of a pin removed go with it.
    if bls.is_some() {
        setkernel::bls_after_rollback(&sys.root);
    }
    let views = menu_views(sys)?;
    if let Some(dir) = &bls {
        // GRUB's blscfg would list rewind's entries beside its submenu: none (those there go).
        let listed: &[SetView] = if grub_reads_bls(&sys.root, grub.as_deref(), dir) {
            log::info!(
                "boot entries {}: none of rewind's, GRUB reads them (GRUB_ENABLE_BLSCFG=true) and lists the sets in its \"Roll back with rewind\" submenu",
                dir.display()
            );
            &[]
        } else {
            &views
        };
        match write_bls_in(&sys.root, dir, listed) {
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
    if bootfile::replace_if_changed(&path, &text, checker(&text).as_deref())
        .map_err(|e| Error::Set(e.to_string()))?
    {
        log::info!("boot menu {}: {} set(s)", path.display(), views.len());
    } else {
        log::debug!("boot menu {}: unchanged", path.display());
    }
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
    write_bls(root, dir, views).map(|w| w.files)
}

/// What [`write_bls_in`] left in the entries' directory.
#[derive(Debug, Default)]
pub struct BlsWritten {
    /// rewind's entry files there are now.
    pub files: Vec<String>,
    /// Why a set has no entry, by set name.
    pub why_none: BTreeMap<String, String>,
}

/// [`write_bls_in`], saying why each set without an entry has none.
pub fn write_bls(root: &Path, dir: &Path, views: &[SetView]) -> Result<BlsWritten, Error> {
    let mut why_none: BTreeMap<String, String> = views
        .iter()
        .filter_map(|v| not_bootable(v).map(|w| (v.name.clone(), w.to_owned())))
        .collect();
    let io = |e: std::io::Error| Error::Set(format!("{}: {e}", dir.display()));
    let boot_root = dir
        .parent()
        .and_then(Path::parent)
        .unwrap_or(dir)
        .to_path_buf();
    let entries = setkernel::read_entries(dir).map_err(io)?;
    let mut wanted: BTreeMap<String, String> = BTreeMap::new();
    let mut all_none = |why: String| {
        for v in views.iter().filter(|v| not_bootable(v).is_none()) {
            why_none.insert(v.name.clone(), why.clone());
        }
    };
    if let Some(why) = bls::cannot_sort_last(&entries) {
        log::warn!("no boot entries of rewind's in {}: {why}", dir.display());
        all_none(why);
    } else if let Some((_, usual)) = bls::usual(&entries) {
        let mut cands = Vec::new();
        for v in views.iter().filter(|v| not_bootable(v).is_none()) {
            let boots = match &v.boot {
                // The set's copy, where it is on this $BOOT (/boot, or the ESP).
                SetBoot::Copy(k) if root.join(k.boot_dir.trim_start_matches('/')) == boot_root => {
                    bls::Boots {
                        version: k.kernel.version.clone(),
                        linux: format!("/{}", k.kernel.linux),
                        initrd: vec![format!("/{}", k.kernel.initrd)],
                    }
                }
                _ => match &usual.linux {
                    Some(l) => bls::Boots {
                        version: usual.version.clone().unwrap_or_default(),
                        linux: l.clone(),
                        initrd: usual.initrd.clone(),
                    },
                    None => {
                        why_none.insert(v.name.clone(), "the usual entry boots no kernel".into());
                        continue;
                    }
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
                why_none.insert(
                    v.name.clone(),
                    "the usual entry boots no initramfs (rewind runs from it)".into(),
                );
                continue;
            }
            if let Some(why) = problems.get(&v.name) {
                log::warn!("snapshot set {}: no boot entry, {why}", v.name);
                why_none.insert(v.name.clone(), why.clone());
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
        all_none("no entry of the machine's own boots a kernel".into());
    }
    let err = |e: bootfile::BootFileError| Error::Set(e.to_string());
    for (n, text) in &wanted {
        bootfile::replace_if_changed(&dir.join(n), text, None).map_err(err)?;
    }
    for (n, _) in &entries {
        if n.starts_with(bls::PREFIX) && !wanted.contains_key(n) {
            bootfile::remove(&dir.join(n)).map_err(err)?;
        }
    }
    Ok(BlsWritten {
        files: wanted.into_keys().collect(),
        why_none,
    })
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
    let cfg = bootfile::read_text(&dir.join("grub.cfg")).map_err(|e| Error::Set(e.to_string()))?;
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

/// The vendor GUID of the Boot Loader Interface's EFI variables (systemd-boot's).
pub const LOADER_GUID: &str = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f";

/// The directory of the EFI variables (efivarfs) under `root`.
pub fn efivars_dir(root: &Path) -> PathBuf {
    root.join("sys/firmware/efi/efivars")
}

/// An EFI variable file's text as efivarfs gives it: 4 bytes of attributes, then UTF-16LE up
/// to a NUL. `None`: too short or not UTF-16.
pub fn efi_text(bytes: &[u8]) -> Option<String> {
    let body = bytes.get(4..)?;
    let units: Vec<u16> = body
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16(&units).ok()
}

/// systemd-boot's variable `name` (`LoaderInfo`, `LoaderEntryOneShot`...) in the efivarfs
/// directory `efivars`, if set.
pub fn loader_var(efivars: &Path, name: &str) -> Option<String> {
    bootfile::read_bytes(&efivars.join(format!("{name}-{LOADER_GUID}"))).and_then(|b| efi_text(&b))
}

/// Whether this boot was started by systemd-boot (its `LoaderInfo` variable, which it sets at
/// every boot, says `systemd-boot VERSION`): `Ok(LoaderInfo)`, else why not.
pub fn booted_by_systemd_boot(root: &Path) -> Result<String, String> {
    if !root.join("sys/firmware/efi").is_dir() {
        return Err(
            "this machine was not booted through UEFI firmware (no /sys/firmware/efi)".into(),
        );
    }
    let vars = efivars_dir(root);
    match loader_var(&vars, "LoaderInfo") {
        Some(info) if info.starts_with("systemd-boot") => Ok(info),
        Some(info) => Err(format!(
            "the boot loader is {info}, not systemd-boot (its LoaderInfo EFI variable)"
        )),
        None if bootfile::names(&vars).map_or(true, |n| n.is_empty()) => Err(format!(
            "the EFI variables are not readable ({} is empty or missing: mount efivarfs there)",
            vars.display()
        )),
        None => Err(
            "the boot loader is not systemd-boot (no LoaderInfo EFI variable: it did not start this boot)"
                .into(),
        ),
    }
}

/// `rewind rollback SET --next-boot` on a machine booted by systemd-boot, with the sets
/// `views`, the BLS entries' directory `dir` (of the system at `root`) and the efivarfs
/// directory `efivars`: refuses a set that cannot be rolled back to and a set that gets no
/// entry (nothing changes), writes the entries, then `set_oneshot(ID)` (`bootctl set-oneshot
/// rewind-SET.conf`: systemd-boot's `LoaderEntryOneShot`, which it removes when it boots the
/// entry) and reads the variable back. Returns the entry's id.
pub fn next_boot_bls_in(
    root: &Path,
    views: &[SetView],
    dir: Option<&Path>,
    efivars: &Path,
    name: &str,
    set_oneshot: impl FnOnce(&str) -> Result<(), String>,
) -> Result<String, Error> {
    let v = views
        .iter()
        .find(|v| v.name == name)
        .ok_or_else(|| Error::Set(format!("no snapshot set {name} (rewind list shows them)")))?;
    if let Some(why) = not_bootable(v) {
        return Err(Error::Set(format!(
            "snapshot set {name} cannot be rolled back to ({why}); nothing changed"
        )));
    }
    let dir = dir.ok_or_else(|| {
        Error::Set(format!(
            "this machine boots through systemd-boot but has no Boot Loader Specification entries (boot/loader/entries, efi/..., boot/efi/... under {}; is the ESP mounted?): no entry to start; use rewind rollback {name}; nothing changed",
            root.display()
        ))
    })?;
    let written = write_bls(root, dir, views)?;
    let id = bls::file_name(name);
    if !written.files.contains(&id) {
        let why = written
            .why_none
            .get(name)
            .cloned()
            .unwrap_or_else(|| "see the journal".into());
        return Err(Error::Set(format!(
            "snapshot set {name} has no boot entry in {} ({why}): systemd-boot has nothing to start; use rewind rollback {name}; nothing flagged",
            dir.display()
        )));
    }
    set_oneshot(&id).map_err(Error::Set)?;
    match loader_var(efivars, "LoaderEntryOneShot") {
        Some(got) if got == id => Ok(id),
        got => Err(Error::Set(format!(
            "bootctl set-oneshot {id} ran, but LoaderEntryOneShot reads back as {}: the next boot may not start the set's entry",
            got.as_deref().unwrap_or("unset")
        ))),
    }
}

/// systemd's `bootctl set-oneshot ID`, its failure in words.
fn bootctl_set_oneshot(id: &str) -> Result<(), String> {
    crate::system::bootfile::set_oneshot(id).map_err(|e| e.to_string())
}

/// `rewind rollback SET --next-boot` on this system: systemd-boot's one-shot entry where
/// systemd-boot started this boot, else GRUB's `next_entry`. Returns what the next boot
/// starts, in words.
pub fn next_boot(sys: &System, name: &str) -> Result<String, Error> {
    let sdboot = booted_by_systemd_boot(&sys.root);
    if sdboot.is_ok() {
        let views = sets::list(sys)?;
        let id = next_boot_bls_in(
            &sys.root,
            &views,
            bls_dir(&sys.root).as_deref(),
            &efivars_dir(&sys.root),
            name,
            bootctl_set_oneshot,
        )?;
        return Ok(format!("systemd-boot's entry {id}"));
    }
    let dir = grub_dir(&sys.root).ok_or_else(|| {
        Error::Set(format!(
            "--next-boot needs GRUB (no GRUB directory with a grub.cfg under {}) or systemd-boot ({}); type rd.rewind={name} at the boot menu, or use rewind rollback {name}",
            sys.root.display(),
            sdboot.err().unwrap_or_default()
        ))
    })?;
    let views = sets::list(sys)?;
    let lv = setkernel::grub_dir_lv(sys).map(|(_, lv)| lv);
    let problems = setkernel::entry_problems(&sys.root, &views);
    next_boot_in(&views, &problems, &dir, lv.as_ref(), name).map(|e| format!("GRUB's entry {e}"))
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
            boot_dir: crate::plan::kernels::BOOT_DIR.into(),
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

    /// An efivarfs file: attributes, then `text` in UTF-16LE with its NUL.
    fn efivar(dir: &Path, name: &str, text: &str) {
        let mut b = vec![7, 0, 0, 0];
        for u in text.encode_utf16().chain([0]) {
            b.extend_from_slice(&u.to_le_bytes());
        }
        std::fs::create_dir_all(dir).expect("test io");
        std::fs::write(dir.join(format!("{name}-{LOADER_GUID}")), b).expect("test io");
    }

    #[test]
    fn blscfg_is_on_only_when_default_grub_says_true_last() {
        assert!(blscfg_enabled_in(
            "GRUB_TIMEOUT=5\nGRUB_ENABLE_BLSCFG=true\n"
        ));
        assert!(blscfg_enabled_in(
            "  GRUB_ENABLE_BLSCFG=\"true\" # Fedora\n"
        ));
        assert!(blscfg_enabled_in("GRUB_ENABLE_BLSCFG='true'\n"));
        assert!(!blscfg_enabled_in(
            "GRUB_ENABLE_BLSCFG=true\nGRUB_ENABLE_BLSCFG=false\n"
        ));
        assert!(!blscfg_enabled_in("#GRUB_ENABLE_BLSCFG=true\n"));
        assert!(!blscfg_enabled_in("GRUB_DEFAULT=0\n"));
    }

    #[test]
    fn rewind_writes_no_bls_entry_that_grub_s_blscfg_would_list_beside_its_submenu() {
        let d = tempfile::tempdir().expect("tempdir");
        let root = d.path();
        let grub = root.join("boot/grub2");
        let bls = root.join("boot/loader/entries");
        std::fs::create_dir_all(&grub).expect("test io");
        std::fs::create_dir_all(&bls).expect("test io");
        std::fs::create_dir_all(root.join("etc/grub.d")).expect("test io");
        // 42_rewind not installed: the BLS entries are the only menu of the sets.
        std::fs::create_dir_all(root.join("etc/default")).expect("test io");
        std::fs::write(root.join("etc/default/grub"), "GRUB_ENABLE_BLSCFG=true\n").expect("io");
        assert!(!grub_reads_bls(root, Some(&grub), &bls));
        std::fs::write(root.join(GRUB_SCRIPT), "#!/bin/sh\n").expect("test io");
        assert!(grub_reads_bls(root, Some(&grub), &bls));
        // No GRUB, GRUB without blscfg, or entries GRUB does not read (the ESP's): both.
        assert!(!grub_reads_bls(root, None, &bls));
        assert!(!grub_reads_bls(
            root,
            Some(&grub),
            &root.join("boot/efi/loader/entries")
        ));
        std::fs::write(root.join("etc/default/grub"), "GRUB_ENABLE_BLSCFG=false\n").expect("io");
        assert!(!grub_reads_bls(root, Some(&grub), &bls));
    }

    #[test]
    fn efi_variables_read_as_text() {
        let mut b = vec![6, 0, 0, 0];
        for u in "systemd-boot 252.39-1~deb12u1".encode_utf16().chain([0]) {
            b.extend_from_slice(&u.to_le_bytes());
        }
        assert_eq!(
            efi_text(&b).as_deref(),
            Some("systemd-boot 252.39-1~deb12u1")
        );
        assert_eq!(efi_text(&[6, 0, 0]), None);
        assert_eq!(efi_text(&[6, 0, 0, 0]).as_deref(), Some(""));
        // An unpaired surrogate is not text.
        assert_eq!(efi_text(&[6, 0, 0, 0, 0x00, 0xd8]), None);
    }

    #[test]
    fn systemd_boot_is_known_by_its_loader_info() {
        let d = tempfile::tempdir().expect("tempdir");
        let e = booted_by_systemd_boot(d.path()).expect_err("no EFI");
        assert!(e.contains("not booted through UEFI"), "{e}");
        let vars = efivars_dir(d.path());
        std::fs::create_dir_all(&vars).expect("test io");
        let e = booted_by_systemd_boot(d.path()).expect_err("no variables");
        assert!(e.contains("mount efivarfs"), "{e}");
        efivar(&vars, "LoaderTimeInitUSec", "1");
        std::fs::remove_file(vars.join(format!("LoaderTimeInitUSec-{LOADER_GUID}"))).expect("io");
        std::fs::write(
            vars.join("Boot0000-8be4df61-93ca-11d2-aa0d-00e098032b8c"),
            [7, 0, 0, 0],
        )
        .expect("test io");
        let e = booted_by_systemd_boot(d.path()).expect_err("another loader");
        assert!(e.contains("not systemd-boot (no LoaderInfo"), "{e}");
        efivar(&vars, "LoaderInfo", "GRUB 2.12");
        let e = booted_by_systemd_boot(d.path()).expect_err("GRUB");
        assert!(
            e.contains("the boot loader is GRUB 2.12, not systemd-boot"),
            "{e}"
        );
        efivar(&vars, "LoaderInfo", "systemd-boot 252.39-1~deb12u1");
        assert_eq!(
            booted_by_systemd_boot(d.path()).as_deref(),
            Ok("systemd-boot 252.39-1~deb12u1")
        );
    }

    /// A root with systemd-boot's variables and an ESP at /boot/efi holding the machine's own
    /// entry (its initramfs a file no lister reads, unless `entry` says otherwise).
    fn sdboot_root(entry: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
        let d = tempfile::tempdir().expect("tempdir");
        let vars = efivars_dir(d.path());
        efivar(&vars, "LoaderInfo", "systemd-boot 252");
        let dir = d.path().join("boot/efi/loader/entries");
        std::fs::create_dir_all(&dir).expect("test io");
        std::fs::write(dir.join("debian-6.1.0-9-amd64.conf"), entry).expect("test io");
        (d, dir, vars)
    }

    #[test]
    fn next_boot_with_systemd_boot_refuses_a_set_without_an_entry_and_sets_nothing() {
        let views = [
            set("pre", 1_000, SetState::Ok, ""),
            set("lost", 2_000, SetState::Lost, ""),
        ];
        let never = |id: &str| -> Result<(), String> { panic!("set-oneshot {id} must not run") };
        // An entry of the machine's without sort-key: rewind's could become the default.
        let (d, dir, vars) = sdboot_root("title x\nlinux /x/linux\ninitrd /x/initrd\n");
        let e = next_boot_bls_in(d.path(), &views, Some(&dir), &vars, "pre", never)
            .expect_err("refused")
            .to_string();
        assert!(e.contains("snapshot set pre has no boot entry in"), "{e}");
        assert!(e.contains("has no sort-key"), "{e}");
        assert!(e.contains("use rewind rollback pre"), "{e}");
        assert!(!dir.join("rewind-pre.conf").exists());
        assert_eq!(loader_var(&vars, "LoaderEntryOneShot"), None);
        // A lost set, an unknown one, no entries' directory.
        let e = next_boot_bls_in(d.path(), &views, Some(&dir), &vars, "lost", never)
            .expect_err("refused")
            .to_string();
        assert!(e.contains("cannot be rolled back to (lost"), "{e}");
        let e = next_boot_bls_in(d.path(), &views, Some(&dir), &vars, "nosuch", never)
            .expect_err("refused")
            .to_string();
        assert!(e.contains("no snapshot set nosuch"), "{e}");
        let e = next_boot_bls_in(d.path(), &views, None, &vars, "pre", never)
            .expect_err("refused")
            .to_string();
        assert!(e.contains("no Boot Loader Specification entries"), "{e}");
        // The usual entry boots no initramfs: no entry either.
        let (d, dir, vars) =
            sdboot_root("sort-key debian\nversion 6.1.0-9-amd64\nlinux /x/linux\n");
        let e = next_boot_bls_in(d.path(), &views, Some(&dir), &vars, "pre", never)
            .expect_err("refused")
            .to_string();
        assert!(e.contains("the usual entry boots no initramfs"), "{e}");
        assert_eq!(loader_var(&vars, "LoaderEntryOneShot"), None);
    }

    #[test]
    fn next_boot_with_systemd_boot_checks_the_variable_it_set() {
        // No lister can read this initramfs, or none is installed: either way the entry's
        // fate is the lister's; a bootctl that "succeeds" without writing the variable is
        // caught.
        let (d, dir, vars) = sdboot_root(
            "sort-key debian\nversion 6.1.0-9-amd64\nlinux /x/linux\ninitrd /x/initrd\noptions root=/dev/mapper/vg0-root ro\n",
        );
        std::fs::create_dir_all(d.path().join("boot/efi/x")).expect("test io");
        std::fs::write(d.path().join("boot/efi/x/initrd"), b"not an image").expect("test io");
        let views = [set("pre", 1_000, SetState::Ok, "")];
        let r = next_boot_bls_in(d.path(), &views, Some(&dir), &vars, "pre", |_| Ok(()));
        match bootfile::list_initramfs(&d.path().join("boot/efi/x/initrd")) {
            // No lister installed: the entry is written; the variable was not set.
            Ok(None) => {
                let e = r.expect_err("not read back").to_string();
                assert!(e.contains("LoaderEntryOneShot reads back as unset"), "{e}");
                assert!(dir.join("rewind-pre.conf").is_file());
            }
            // A lister that cannot read it: no entry.
            _ => {
                let e = r.expect_err("no entry").to_string();
                assert!(e.contains("snapshot set pre has no boot entry"), "{e}");
                assert!(!dir.join("rewind-pre.conf").exists());
            }
        }
    }
}
