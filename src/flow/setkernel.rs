//! The set's kernel (docs/BOOTMENU.md, "The set's kernel"): when `/boot` is not a member of a
//! set, `rewind snapshot` keeps a copy of the kernel and initramfs that match the set's root in
//! `/boot/rewind/` (one copy per content, shared by the sets that need it; a record
//! `/boot/rewind/SET.kernel` per set), and the set's menu entry boots that copy. After a
//! rollback the poller makes GRUB's next plain boot start a kernel whose modules are in the
//! rolled-back root ([`after_rollback`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::Error;
use super::env::System;
use super::sets::SetView;
use crate::lvm::layout::LvRef;
use crate::plan::bls;
use crate::plan::kernels::{self, GrubReinstall, Kernel, NextBoot, SetKernel};
use crate::plan::set::Request as MemberRequest;
use crate::system::mounts;
use crate::system::{bootfile, proc};

/// Where a set's kernel comes from at its menu entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "from")]
pub enum SetBoot {
    /// `/boot` is in the set (a member, or on the root member): its kernels roll back with it.
    Member,
    /// The set's own copy in `/boot/rewind/` (its bytes are counted in the set's size).
    Copy(SetKernel),
    /// No copy (none was taken, or `/boot` was not mounted): the entry boots the newest kernel.
    Newest,
}

/// The store's directory and the root's `/lib/modules`.
fn boot(root: &Path) -> PathBuf {
    root.join("boot")
}

/// The versions whose modules are in the root: a `/lib/modules/VERSION` holding the package's
/// own `modules.order` or `kernel/` tree (a directory left behind by a removed kernel holds
/// only files depmod generated, and does not count).
fn modules(root: &Path) -> Vec<String> {
    let dir = root.join("lib/modules");
    bootfile::names(&dir)
        .unwrap_or_default()
        .into_iter()
        .filter(|v| {
            dir.join(v).join("modules.order").is_file() || dir.join(v).join("kernel").is_dir()
        })
        .collect()
}

fn err(e: bootfile::BootFileError) -> Error {
    Error::Set(e.to_string())
}

/// Whether `/boot` is in a set whose members are mounted at `member_mounts`, with the mounts
/// there are now: a member mounted at `/boot`, or `/boot` not a mount of its own and `/` a
/// member.
fn boot_is_member(all: &[mounts::Mount], member_mounts: &[&str]) -> bool {
    member_mounts.contains(&"/boot")
        || (mounts::mounted_at(all, "/boot").is_none() && member_mounts.contains(&"/"))
}

/// A copy to make: where from, where to (relative to `/boot`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub record: SetKernel,
    /// The copies still to make (source, destination): none when every file is shared.
    pub copies: Vec<(PathBuf, PathBuf)>,
    /// The `$BOOT` holding the store (`/boot`, or the ESP), under the system's root.
    pub base: PathBuf,
}

/// Whether rewind's GRUB menu is in use: 42_rewind installed and GRUB's directory in `/boot`.
fn grub_menu(root: &Path) -> bool {
    root.join(super::bootmenu::GRUB_SCRIPT).is_file() && super::bootmenu::grub_dir(root).is_some()
}

/// The ESP, when it is the `$BOOT` of the machine's Boot Loader Specification entries (`/efi`
/// or `/boot/efi` holds `loader/entries`, `/boot` does not) and rewind's GRUB menu is not in
/// use: the loader reads kernels only from there, so the set's copy goes there. `None`
/// elsewhere (GRUB machines are unchanged).
pub fn esp_boot(root: &Path) -> Option<PathBuf> {
    if grub_menu(root) {
        return None;
    }
    let dir = super::bootmenu::bls_dir(root)?;
    let base = dir.parent()?.parent()?.to_path_buf();
    (base != boot(root)).then_some(base)
}

/// `$BOOT` as the system sees it (`/boot/efi`) for `base` under `root`.
fn shown(root: &Path, base: &Path) -> String {
    format!("/{}", base.strip_prefix(root).unwrap_or(base).display())
}

/// Before a set is made: the copy it needs, refused (before any change) when `$BOOT` has no
/// room. `None`: no copy (`/boot` is a member, no boot menu of rewind's, or no kernel matches
/// the root; the latter is a warning). With rewind's GRUB menu the copy goes to `/boot/rewind`;
/// where the machine's BLS entries are on the ESP ([`esp_boot`]), to `ESP/rewind`.
pub fn prepare(sys: &System, members: &[MemberRequest]) -> Result<Option<Prepared>, Error> {
    let root = &sys.root;
    let grub = grub_menu(root);
    if !grub {
        // The machine's own BLS entries: on the ESP (never in a set), or in /boot.
        if let Some(esp) = esp_boot(root) {
            return prepare_bls(root, &esp);
        }
        if super::bootmenu::bls_dir(root).is_none() {
            return Ok(None);
        }
    }
    let all = mounts::read(root).map_err(|e| Error::Set(format!("cannot read the mounts: {e}")))?;
    let member_mounts: Vec<&str> = members.iter().filter_map(|m| m.mount.as_deref()).collect();
    if boot_is_member(&all, &member_mounts) {
        log::info!("/boot is in the set: its kernels roll back with it, no copy kept");
        return Ok(None);
    }
    if !grub {
        return prepare_bls(root, &boot(root));
    }
    let dir = boot(root);
    let names = bootfile::names(&dir).map_err(|e| Error::Set(format!("{}: {e}", dir.display())))?;
    let running = proc::os_release(root);
    let list = kernels::kernels_in(&names);
    let Some(k) = kernels::for_root(&list, &modules(root), running.as_deref()) else {
        log::warn!(
            "no kernel in {} has its modules in the root's /lib/modules: the set keeps no kernel; its menu entry boots the newest kernel",
            dir.display()
        );
        return Ok(None);
    };
    // A copy is only worth keeping when its initramfs can roll back.
    if let Some(why) = initramfs_problem(root, &k.initrd) {
        log::warn!(
            "kernel {}: {why}: the set keeps no copy of it, and its menu entry is not bootable while the newest kernel's initramfs lacks rewind too (install rewind's initramfs hook, then update-initramfs -u or dracut -f)",
            k.version
        );
        return Ok(None);
    }
    plan_copy(
        root,
        &dir,
        &k.version,
        [
            (k.linux.clone(), k.linux.clone()),
            (k.initrd.clone(), k.initrd.clone()),
        ],
        |_| 4 << 20,
        "Free space in /boot (old kernels: apt autoremove), or make /boot a member of the set",
    )
    .map(Some)
}

/// The copy in the BLS `$BOOT` `base` (the ESP, or `/boot` without rewind's GRUB menu): the
/// kernel and initramfs of the machine's own entry that matches the root
/// ([`bls::for_root`]: the running kernel's entry, else the first in the loader's order whose
/// modules are in the root), as the entry names them (kernel-install's
/// `ENTRY-TOKEN/VERSION/linux`, or any other path under the ESP), copied to
/// `$BOOT/rewind/linux-VERSION.CRC` and `$BOOT/rewind/initrd-VERSION.CRC`.
fn prepare_bls(root: &Path, esp: &Path) -> Result<Option<Prepared>, Error> {
    let at = shown(root, esp);
    let dir = esp.join("loader/entries");
    let entries = read_entries(&dir).map_err(|e| Error::Set(format!("{}: {e}", dir.display())))?;
    if let Some(why) = bls::cannot_sort_last(&entries) {
        log::warn!(
            "{at}/loader/entries: {why}: rewind writes no boot entries there, so the set keeps no kernel copy"
        );
        return Ok(None);
    }
    let running = proc::os_release(root);
    let Some((name, e)) = bls::for_root(&entries, &modules(root), running.as_deref()) else {
        log::warn!(
            "no boot entry in {at}/loader/entries boots a kernel whose modules are in the root's /lib/modules: the set keeps no kernel; its boot entry boots the usual entry's kernel"
        );
        return Ok(None);
    };
    let version = e.version.clone().unwrap_or_default();
    let linux = e.linux.clone().unwrap_or_default();
    let [initrd] = e.initrd.as_slice() else {
        log::warn!(
            "{at}/loader/entries/{name} boots {} initramfs images (rewind copies an entry with exactly one): the set keeps no kernel; its boot entry boots the usual entry's kernel",
            e.initrd.len()
        );
        return Ok(None);
    };
    if version.is_empty() || version.contains('/') || version.starts_with('.') {
        log::warn!(
            "{at}/loader/entries/{name}: version {version:?} cannot name a copy: no copy kept"
        );
        return Ok(None);
    }
    let (linux, initrd) = (
        linux.trim_start_matches('/').to_owned(),
        initrd.trim_start_matches('/').to_owned(),
    );
    for f in [&linux, &initrd] {
        if f.split('/').any(|c| c == "..") || !esp.join(f).is_file() {
            log::warn!(
                "{at}/loader/entries/{name} names {at}/{f}, which is not a file there: the set keeps no kernel copy"
            );
            return Ok(None);
        }
    }
    if let Some(why) = checked(&esp.join(&initrd), &format!("{at}/{initrd}")).unwrap_or(None) {
        log::warn!(
            "kernel {version}: {why}: the set keeps no copy of it and gets no boot entry (install rewind's initramfs hook, then update-initramfs -u or dracut -f)"
        );
        return Ok(None);
    }
    // ESPs (and XBOOTLDR partitions) are small, and the next kernel update (kernel-install)
    // writes a whole kernel and initramfs there: the margin is the size of this pair (at least
    // 4 MiB), so that a kernel of the same size still fits once the copy is made.
    plan_copy(
        root,
        esp,
        &version,
        [
            (linux, format!("linux-{version}")),
            (initrd, format!("initrd-{version}")),
        ],
        |pair| pair.max(4 << 20),
        &format!("Free space on {at} (old kernels: apt autoremove; kernel-install removes their entries and files), or enlarge it"),
    )
    .map(Some)
}

/// The BLS entries (`*.conf`) in `dir`, parsed: `(file name, entry)`.
pub(super) fn read_entries(dir: &Path) -> std::io::Result<Vec<(String, bls::Entry)>> {
    Ok(bootfile::conf_files(dir)?
        .into_iter()
        .map(|(n, text)| (n, bls::Entry::parse(&text)))
        .collect())
}

/// The copies of kernel `version`'s `files` (source relative to `base`, the copy's file name)
/// into `base/rewind`: the same content reuses a copy; refused when `base` has less room than
/// the copies need plus `margin(bytes of the pair)`, with `hint`.
fn plan_copy(
    root: &Path,
    base: &Path,
    version: &str,
    files: [(String, String); 2],
    margin: impl Fn(u64) -> u64,
    hint: &str,
) -> Result<Prepared, Error> {
    let mut copies = Vec::new();
    let mut names_out = Vec::new();
    let (mut bytes, mut need) = (0u64, 0u64);
    for (file, copy_as) in &files {
        let src = base.join(file);
        let (sum, size) = bootfile::checksum(&src).map_err(err)?;
        let rel = kernels::copy_name(copy_as, sum);
        let dst = base.join(&rel);
        bytes += size;
        if dst.exists() {
            if !bootfile::same_content(&src, &dst).map_err(err)? {
                return Err(Error::Set(format!(
                    "{} exists with other content than {}: not overwritten; nothing changed",
                    dst.display(),
                    src.display()
                )));
            }
        } else {
            need += size;
            copies.push((src, dst));
        }
        names_out.push(rel);
    }
    if need > 0 {
        let free = bootfile::free_bytes(base).map_err(err)?;
        // A margin: a filesystem filled to the last block breaks the next kernel update.
        let margin = margin(bytes);
        if need + margin > free {
            return Err(Error::Set(format!(
                "{} has no room for the set's copy of kernel {version} and its initramfs: {} MiB needed (+{} MiB margin), {} MiB free; nothing changed. {hint}",
                base.display(),
                need.div_ceil(1 << 20),
                margin.div_ceil(1 << 20),
                free >> 20
            )));
        }
    }
    let [linux, initrd]: [String; 2] = names_out
        .try_into()
        .map_err(|_| Error::Set("internal: two copies".into()))?;
    Ok(Prepared {
        record: SetKernel {
            kernel: Kernel {
                version: version.to_owned(),
                linux,
                initrd,
            },
            bytes,
            boot_dir: shown(root, base),
        },
        copies,
        base: base.to_path_buf(),
    })
}

/// Why the initramfs `/boot/REL` cannot roll back (it lacks rewind: [`kernels::initramfs_lacks_rewind`]),
/// or `None` when it carries rewind, or when no lister is installed (a warning: not checked).
pub fn initramfs_problem(root: &Path, rel: &str) -> Option<String> {
    checked(&boot(root).join(rel), &format!("/boot/{rel}")).unwrap_or(None)
}

/// Why the initramfs at `path` (`shown` in messages) cannot roll back; `None` when it could
/// not be checked (no lister).
fn checked(path: &Path, shown: &str) -> Option<Option<String>> {
    match bootfile::list_initramfs(path) {
        Ok(Some(listing)) => {
            Some(kernels::initramfs_lacks_rewind(&listing).map(|w| format!("{w} ({shown})")))
        }
        Ok(None) => {
            log::warn!(
                "no initramfs lister (lsinitramfs, lsinitrd, lsinitcpio): {shown} not checked for rewind"
            );
            None
        }
        Err(e) => Some(Some(format!(
            "its initramfs {shown} cannot be listed ({e})"
        ))),
    }
}

/// The file of [`image_problems`]' verdicts, in GRUB's directory (else in the BLS entries'
/// directory's parent, `$BOOT/loader`): one line per image checked, `SIZE MTIME_NS PATH`, a
/// tab, then the problem or `ok`. Listing an image takes seconds and the menu is written at
/// every boot; an image is listed again when it changes.
pub const INITRAMFS_CHECKS: &str = "rewind-initramfs.checked";

/// For each (entry name, initramfs path shown as, path) of `images`, why it cannot roll back;
/// each image listed once, and again only when it changed (the verdicts kept in `cache`).
pub fn image_problems(
    cache: Option<&Path>,
    images: &[(String, String, PathBuf)],
) -> BTreeMap<String, String> {
    let old: BTreeMap<String, String> = cache
        .and_then(bootfile::read)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let mut now: BTreeMap<String, String> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for (name, shown, path) in images {
        let Some(key) = bootfile::file_key(path) else {
            continue;
        };
        let verdict = match now.get(&key).or_else(|| old.get(&key)) {
            Some(v) => Some(v.clone()),
            None => checked(path, shown).map(|p| p.unwrap_or_else(|| "ok".into())),
        };
        let Some(verdict) = verdict else { continue };
        if verdict != "ok" {
            out.insert(name.clone(), verdict.clone());
        }
        now.insert(key, verdict);
    }
    if let Some(f) = cache
        && now != old
    {
        let text: String = now.iter().map(|(k, v)| format!("{k}\t{v}\n")).collect();
        if let Err(e) = bootfile::replace(f, &text, None) {
            log::debug!("{e}");
        }
    }
    out
}

/// The usable sets of `views` whose GRUB entry would boot an initramfs without rewind, with
/// why: their entries are written as not bootable. A set's copy is checked, else the
/// initramfs of the newest kernel in `/boot` (what 42_rewind's `rewind_boot SET` boots).
pub fn entry_problems(root: &Path, views: &[SetView]) -> BTreeMap<String, String> {
    let names = bootfile::names(&boot(root)).unwrap_or_default();
    let newest = kernels::newest_linux(&names).and_then(|v| kernels::initrd_of(&names, &v));
    let images: Vec<(String, String, PathBuf)> = views
        .iter()
        .filter_map(|v| {
            let rel = match &v.boot {
                SetBoot::Copy(k) => Some(k.kernel.initrd.clone()),
                SetBoot::Member | SetBoot::Newest => newest.clone(),
            }?;
            Some((
                v.name.clone(),
                format!("/boot/{rel}"),
                boot(root).join(&rel),
            ))
        })
        .collect();
    let cache = super::bootmenu::grub_dir(root).map(|d| d.join(INITRAMFS_CHECKS));
    image_problems(cache.as_deref(), &images)
}

/// Makes the copies `p` needs (before the set is made: a failure changes nothing in LVM).
pub fn copy(p: &Prepared) -> Result<(), Error> {
    for (src, dst) in &p.copies {
        bootfile::copy(src, dst).map_err(err)?;
        log::info!("{}: copy of {}", dst.display(), src.display());
    }
    Ok(())
}

/// Records that set `name` boots `p`'s copy (after the set is made).
pub fn record(_sys: &System, name: &str, p: &Prepared) -> Result<(), Error> {
    let path = p.base.join(SetKernel::record_name(name));
    bootfile::replace(&path, &p.record.to_text(), None).map_err(err)
}

/// Each set's kernel record in `/boot/rewind` (a record that cannot be read is `None`: the set
/// boots the newest kernel).
fn records(root: &Path) -> BTreeMap<String, Option<SetKernel>> {
    records_in(root, &boot(root))
}

/// [`records`] of the store in `base` (`/boot`, or the ESP).
fn records_in(root: &Path, base: &Path) -> BTreeMap<String, Option<SetKernel>> {
    let dir = base.join(kernels::STORE);
    bootfile::names(&dir)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|f| {
            let set = f.strip_suffix(".kernel")?.to_owned();
            let rec = bootfile::read(&dir.join(&f))
                .and_then(|t| SetKernel::parse(&t))
                .map(|r| SetKernel {
                    boot_dir: shown(root, base),
                    ..r
                })
                .filter(|r| {
                    base.join(&r.kernel.linux).is_file() && base.join(&r.kernel.initrd).is_file()
                });
            Some((set, rec))
        })
        .collect()
}

/// Fills in each view's `boot`: its copy, or whether `/boot` is a member.
/// Where the machine's BLS entries are on the ESP ([`esp_boot`]), the ESP's copies, and
/// `/boot` never counts as in the set (the ESP's kernels do not roll back with it).
pub fn attach(root: &Path, views: &mut [SetView]) {
    let esp = esp_boot(root);
    let recs = match &esp {
        Some(e) => records_in(root, e),
        None => records(root),
    };
    let all = mounts::read(root).unwrap_or_default();
    for v in views {
        v.boot = match recs.get(&v.name) {
            Some(Some(r)) => SetBoot::Copy(r.clone()),
            _ if esp.is_some() => SetBoot::Newest,
            _ => {
                let m: Vec<&str> = v
                    .members
                    .iter()
                    .filter_map(|m| m.mount.as_deref())
                    .collect();
                if boot_is_member(&all, &m) {
                    SetBoot::Member
                } else {
                    SetBoot::Newest
                }
            }
        };
    }
}

/// Removes the records of sets that are gone (`sets`: those there are) and the copies no set
/// needs any more. Only where `/boot` is mounted (a store is there); failures are warnings.
pub fn tidy(root: &Path, sets: &[String]) {
    tidy_in(root, &boot(root), sets);
    if let Some(esp) = esp_boot(root) {
        tidy_in(root, &esp, sets);
    }
}

/// [`tidy`] of the store in `base` (`/boot`, or the ESP).
fn tidy_in(root: &Path, base: &Path, sets: &[String]) {
    let at = shown(root, base);
    let dir = base.join(kernels::STORE);
    let Ok(store) = bootfile::names(&dir) else {
        return;
    };
    if store.is_empty() {
        return;
    }
    let recs: Vec<(String, Option<SetKernel>)> = records_in(root, base).into_iter().collect();
    // The files the pin of the default boots ([`bls_after_rollback`]) stay while it is there.
    let pinned: Vec<String> = bootfile::read(&base.join("loader/entries").join(bls::PIN_ENTRY))
        .map(|t| {
            let e = bls::Entry::parse(&t);
            e.linux
                .into_iter()
                .chain(e.initrd)
                .map(|p| p.trim_start_matches('/').to_owned())
                .collect()
        })
        .unwrap_or_default();
    for rel in kernels::unneeded(&store, &recs, sets) {
        if pinned.contains(&rel) {
            continue;
        }
        match bootfile::remove(&base.join(&rel)) {
            Ok(()) => log::info!("{at}/{rel}: removed (no set needs it)"),
            Err(e) => log::warn!("{e}"),
        }
    }
}

/// The pin's file, in GRUB's directory.
pub const PIN_FILE: &str = "rewind-default.cfg";

/// What the next plain boot starts, and what rewind did about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultReport {
    pub decision: NextBoot,
    /// Kernels put back into `/boot` from the sets' copies (modules in the root, file gone).
    pub restored: Vec<String>,
    /// A problem to say loudly (status, login note).
    pub problem: Option<String>,
}

/// The decision now, with no change: for `rewind status`. `None` where `/boot` holds no GRUB
/// directory (not mounted, or no GRUB).
pub fn default_now(root: &Path) -> Option<NextBoot> {
    super::bootmenu::grub_dir(root)?;
    let names = bootfile::names(&boot(root)).ok()?;
    Some(kernels::default_after(&names, &modules(root)))
}

/// What `rewind status` says about the next plain boot: a problem when GRUB's default kernel
/// has no modules in this root and rewind's pin does not cover it, and when GRUB's boot code
/// may not match its rolled-back modules ([`grub_after_rollback`] could not reinstall it).
pub fn boot_problem(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(BlsLook {
        dir,
        base,
        decision,
        ..
    }) = bls_decision(root)
    {
        let at = shown(root, &base);
        out.extend(bls_problem(&decision, &at));
        if let bls::BlsNext::Pin {
            without_modules,
            version,
            ..
        } = &decision
        {
            let pinned =
                bootfile::read(&dir.join(bls::PIN_ENTRY)).map(|t| bls::Entry::parse(&t).version);
            if pinned != Some(Some(version.clone())) {
                out.push(format!(
                    "kernel {without_modules}, systemd-boot's default, has no modules in this root and the default is not pinned to kernel {version} (rewind poll does it): pick kernel {version} in systemd-boot's menu at the next boot"
                ));
            }
        }
    }
    let Some(dir) = super::bootmenu::grub_dir(root) else {
        return out;
    };
    if let Some(t) = bootfile::read(&dir.join(GRUB_PROBLEM_FILE)) {
        out.push(format!(
            "{} (then remove {})",
            t.trim(),
            dir.join(GRUB_PROBLEM_FILE).display()
        ));
    }
    match default_now(root) {
        None | Some(NextBoot::Fine) => {}
        Some(NextBoot::Pin {
            without_modules,
            kernel,
        }) => {
            let pin = dir.join(PIN_FILE);
            let text = kernels::pin_script(&kernel, &without_modules);
            if bootfile::read(&pin).as_deref() != Some(text.as_str()) {
                out.push(format!(
                    "kernel {without_modules}, GRUB's default, has no modules in this root and GRUB's default is not pinned to kernel {} (rewind poll does it where rewind's GRUB script is installed): pick kernel {} in GRUB's menu at the next boot",
                    kernel.version, kernel.version
                ));
            }
        }
        Some(NextBoot::NoKernel { without_modules }) => out.push(format!(
            "kernel {without_modules}, GRUB's default, has no modules in this root and no kernel in /boot has: the next boot may fail; reinstall the root's kernel package, then update-grub"
        )),
    }
    out
}

/// After a rollback (the poller, at every boot where `/boot` is mounted): the kernels whose
/// modules are in the root but whose files left `/boot` come back from the sets' copies; when
/// the newest kernel in `/boot` has no modules in the root (one the rolled-back upgrade added),
/// GRUB's default is pinned to the newest kernel that has ([`kernels::pin_script`]); when the
/// newest matches again, the pin goes. `None`: no GRUB directory with rewind's menu.
pub fn after_rollback(root: &Path) -> Option<DefaultReport> {
    let dir = super::bootmenu::grub_dir(root)?;
    if !root.join(super::bootmenu::GRUB_SCRIPT).is_file() {
        return None;
    }
    let mods = modules(root);
    let mut restored = Vec::new();
    for rec in records(root).into_values().flatten() {
        let k = &rec.kernel;
        if !mods.contains(&k.version) {
            continue;
        }
        let linux = boot(root).join(format!("vmlinuz-{}", k.version));
        let initrd = boot(root).join(format!("initrd.img-{}", k.version));
        if linux.exists() {
            continue;
        }
        let put = bootfile::copy(&boot(root).join(&k.initrd), &initrd)
            .and_then(|()| bootfile::copy(&boot(root).join(&k.linux), &linux));
        match put {
            Ok(()) => {
                log::warn!(
                    "kernel {} (modules in the root, its files gone from /boot) put back from the sets' copy",
                    k.version
                );
                restored.push(k.version.clone());
            }
            Err(e) => log::warn!("kernel {}: not put back: {e}", k.version),
        }
    }
    let (decision, problem) = pin_default(root, &dir, &mods);
    Some(DefaultReport {
        decision,
        restored,
        problem,
    })
}

/// Whenever the menu is written (update-grub after a kernel update included): the pin follows
/// `/boot` and the root, so a kernel whose modules came back wins again at once.
pub fn repin(root: &Path) {
    let Some(dir) = super::bootmenu::grub_dir(root) else {
        return;
    };
    if root.join(super::bootmenu::GRUB_SCRIPT).is_file() {
        pin_default(root, &dir, &modules(root));
    }
}

/// The pin of GRUB's default (`dir`: GRUB's directory), written, kept or removed; the decision
/// and a problem to say loudly.
fn pin_default(root: &Path, dir: &Path, mods: &[String]) -> (NextBoot, Option<String>) {
    let mut problem = None;
    let names = bootfile::names(&boot(root)).unwrap_or_default();
    let decision = kernels::default_after(&names, mods);
    let pin = dir.join(PIN_FILE);
    match &decision {
        NextBoot::Fine => {
            if pin.exists() {
                match bootfile::remove(&pin) {
                    Ok(()) => log::info!(
                        "{}: removed (the newest kernel has its modules in the root again)",
                        pin.display()
                    ),
                    Err(e) => log::warn!("{e}"),
                }
            }
        }
        NextBoot::Pin {
            without_modules,
            kernel,
        } => {
            let text = kernels::pin_script(kernel, without_modules);
            let checker = bootfile::script_checker();
            match bootfile::replace_if_changed(&pin, &text, checker.as_deref()) {
                Ok(false) => {}
                Ok(true) => {
                    let t = format!(
                        "kernel {without_modules} has no modules in this root (the rollback removed them): GRUB's default entry now boots kernel {} ({})",
                        kernel.version,
                        pin.display()
                    );
                    log::warn!("{t}");
                    crate::system::motd::note(root, &t);
                }
                Err(e) => {
                    problem = Some(format!(
                        "kernel {without_modules}, GRUB's default, has no modules in this root, and the default could not be changed ({e}): pick kernel {} in GRUB's menu, or remove kernel {without_modules} and run update-grub",
                        kernel.version
                    ))
                }
            }
        }
        NextBoot::NoKernel { without_modules } => {
            problem = Some(format!(
                "kernel {without_modules}, GRUB's default, has no modules in this root and no kernel in /boot has: the next boot may fail; reinstall the root's kernel package (apt install --reinstall linux-image-$(ls /lib/modules | tail -1) or your distribution's), then update-grub"
            ));
        }
    }
    if let Some(p) = &problem {
        log::error!("{p}");
        crate::system::motd::note(root, p);
    }
    (decision, problem)
}

/// The BLS entries' directory and its `$BOOT` where the poller looks after systemd-boot's
/// default: systemd-boot started this boot (its `LoaderInfo`), the machine's entries are there
/// and rewind's GRUB menu is not in use.
fn sdboot_boot(root: &Path) -> Option<(PathBuf, PathBuf)> {
    if grub_menu(root) {
        return None;
    }
    super::bootmenu::booted_by_systemd_boot(root).ok()?;
    let dir = super::bootmenu::bls_dir(root)?;
    let base = dir.parent()?.parent()?.to_path_buf();
    Some((dir, base))
}

/// The default the administrator set for systemd-boot, in words: `default` in `$BOOT`'s
/// `loader/loader.conf`, or the EFI variable `LoaderEntryDefault` (`bootctl set-default`),
/// which wins over it.
fn admin_default(root: &Path, base: &Path) -> Option<String> {
    let vars = super::bootmenu::efivars_dir(root);
    if let Some(v) = super::bootmenu::loader_var(&vars, "LoaderEntryDefault") {
        return Some(format!(
            "LoaderEntryDefault {v}, set by bootctl set-default"
        ));
    }
    let conf = bootfile::read(&base.join("loader/loader.conf")).unwrap_or_default();
    conf.lines().find_map(|l| {
        let (k, v) = l.trim().split_once(char::is_whitespace)?;
        (k == "default" && !v.trim().is_empty()).then(|| {
            format!(
                "default {} in {}/loader/loader.conf",
                v.trim(),
                shown(root, base)
            )
        })
    })
}

/// systemd-boot's next plain boot, with no change: the entries' directory, `$BOOT`, the
/// machine's entries and the decision ([`bls::default_after`]). `None` where systemd-boot did
/// not start this boot, or rewind's GRUB menu is in use.
fn bls_decision(root: &Path) -> Option<BlsLook> {
    let (dir, base) = sdboot_boot(root)?;
    let entries = read_entries(&dir).ok()?;
    let mut copies: Vec<(String, String, String, String)> = records_in(root, &base)
        .into_iter()
        .filter_map(|(set, r)| {
            let k = r?.kernel;
            Some((set, k.version, k.linux, k.initrd))
        })
        .collect();
    // The pin's own copy in the store counts too: the set it came from is gone once its
    // merge finished and the menu write tidied its record.
    if let Some((_, e)) = entries.iter().find(|(n, _)| n == bls::PIN_ENTRY)
        && let (Some(v), Some(l), [i]) = (&e.version, &e.linux, e.initrd.as_slice())
    {
        let (l, i) = (l.trim_start_matches('/'), i.trim_start_matches('/'));
        let store = format!("{}/", kernels::STORE);
        if l.starts_with(&store)
            && i.starts_with(&store)
            && !l.contains("..")
            && !i.contains("..")
            && base.join(l).is_file()
            && base.join(i).is_file()
        {
            copies.push((
                bls::PIN_ENTRY.to_owned(),
                v.clone(),
                l.to_owned(),
                i.to_owned(),
            ));
        }
    }
    let admin = admin_default(root, &base);
    let decision = bls::default_after(&entries, &modules(root), &copies, admin.as_deref());
    Some(BlsLook {
        dir,
        base,
        entries,
        decision,
    })
}

/// What [`bls_decision`] looked at, and its decision.
struct BlsLook {
    /// The entries' directory.
    dir: PathBuf,
    /// Its `$BOOT`.
    base: PathBuf,
    /// The entries there (`(file name, entry)`).
    entries: Vec<(String, bls::Entry)>,
    decision: bls::BlsNext,
}

/// What to say loudly about systemd-boot's next plain boot (`at`: `$BOOT` as the system sees
/// it), if anything: every decision but a pin rewind can write.
fn bls_problem(decision: &bls::BlsNext, at: &str) -> Option<String> {
    match decision {
        bls::BlsNext::Fine | bls::BlsNext::Pin { .. } => None,
        bls::BlsNext::Admin {
            without_modules,
            default,
        } => Some(format!(
            "kernel {without_modules}, systemd-boot's newest entry, has no modules in this root; the default entry is the administrator's ({default}): rewind does not change it; make sure it boots a kernel whose modules are in /lib/modules"
        )),
        bls::BlsNext::CannotSortFirst {
            without_modules,
            why,
        } => Some(format!(
            "kernel {without_modules}, systemd-boot's default, has no modules in this root, and rewind cannot make the root's kernel the default ({why}): pick it in systemd-boot's menu at the next boot, or bootctl set-default its entry"
        )),
        bls::BlsNext::NoKernel { without_modules } => Some(format!(
            "kernel {without_modules}, systemd-boot's default, has no modules in this root and no entry or set's copy on {at} boots a kernel that has: the next boot may fail; reinstall the root's kernel package (apt install --reinstall linux-image-$(ls /lib/modules | tail -1) or your distribution's)"
        )),
    }
}

/// The store's files the pin boots (`$BOOT` `base`), from the machine's entry (copied into
/// the store, the copy reused when the pin already boots this version) or a set's copy.
fn pin_files(
    root: &Path,
    base: &Path,
    old_pin: Option<&bls::Entry>,
    version: &str,
    from: &bls::PinFrom,
) -> Result<(String, String), Error> {
    match from {
        bls::PinFrom::Copy { linux, initrd, .. } => Ok((linux.clone(), initrd.clone())),
        bls::PinFrom::Entry { linux, initrd, .. } => {
            for f in [linux, initrd] {
                if f.split('/').any(|c| c == "..") || !base.join(f).is_file() {
                    return Err(Error::Set(format!(
                        "{}/{f}, named by the entry, is not a file there",
                        shown(root, base)
                    )));
                }
            }
            if let Some(e) = old_pin
                && e.version.as_deref() == Some(version)
                && let (Some(l), [i]) = (&e.linux, e.initrd.as_slice())
            {
                let (l, i) = (l.trim_start_matches('/'), i.trim_start_matches('/'));
                if l.starts_with(kernels::STORE)
                    && i.starts_with(kernels::STORE)
                    && base.join(l).is_file()
                    && base.join(i).is_file()
                {
                    return Ok((l.to_owned(), i.to_owned()));
                }
            }
            let p = plan_copy(
                root,
                base,
                version,
                [
                    (linux.clone(), format!("linux-{version}")),
                    (initrd.clone(), format!("initrd-{version}")),
                ],
                |_| 0,
                "Free space on it",
            )?;
            copy(&p)?;
            Ok((p.record.kernel.linux, p.record.kernel.initrd))
        }
    }
}

/// After a rollback on a systemd-boot machine (the poller at every boot, and every menu
/// write): when the usual entry (systemd-boot's default by its order) boots a kernel whose
/// modules are not in the root (one the rolled-back upgrade added), rewind's pin entry
/// [`bls::PIN_ENTRY`], sorting first, boots the first of the machine's entries whose modules
/// are there (its files copied into rewind's store), else a set's copy of such a kernel (its
/// entry and files left `$BOOT`); when the usual entry matches the root again, the pin goes.
/// The administrator's default (loader.conf, `LoaderEntryDefault`) is never changed. What
/// cannot be done is said loudly (journal, login note, `rewind status`). `None`: not a
/// systemd-boot machine of this kind.
pub fn bls_after_rollback(root: &Path) -> Option<(bls::BlsNext, Option<String>)> {
    let BlsLook {
        dir,
        base,
        entries,
        decision,
    } = bls_decision(root)?;
    let at = shown(root, &base);
    let pin = dir.join(bls::PIN_ENTRY);
    let old_text = bootfile::read(&pin);
    let old_pin = old_text.as_deref().map(bls::Entry::parse);
    let mut problem = bls_problem(&decision, &at);
    let wanted = match &decision {
        bls::BlsNext::Pin {
            without_modules,
            version,
            from,
        } => match pin_files(root, &base, old_pin.as_ref(), version, from) {
            Ok((linux, initrd)) => {
                let options = match from {
                    bls::PinFrom::Entry { options, .. } => options.clone(),
                    bls::PinFrom::Copy { .. } => bls::usual(&entries)
                        .map(|(_, u)| u.options.clone())
                        .unwrap_or_default(),
                };
                Some(bls::render_pin(
                    version,
                    &linux,
                    &initrd,
                    &options,
                    without_modules,
                ))
            }
            Err(e) => {
                problem = Some(format!(
                    "kernel {without_modules}, systemd-boot's default, has no modules in this root, and rewind could not pin kernel {version} ({e}): pick kernel {version} in systemd-boot's menu at the next boot"
                ));
                old_text.clone()
            }
        },
        _ => None,
    };
    match (&wanted, &decision) {
        (
            Some(text),
            bls::BlsNext::Pin {
                without_modules,
                version,
                ..
            },
        ) if old_text.as_deref() != Some(text.as_str()) => {
            match bootfile::replace(&pin, text, None) {
                Ok(()) => {
                    let t = format!(
                        "kernel {without_modules} has no modules in this root (the rollback removed them): systemd-boot's default entry now boots kernel {version} ({})",
                        shown(root, &pin)
                    );
                    log::warn!("{t}");
                    crate::system::motd::note(root, &t);
                }
                Err(e) => {
                    problem = Some(format!(
                        "kernel {without_modules}, systemd-boot's default, has no modules in this root, and the default could not be changed ({e}): pick kernel {version} in systemd-boot's menu at the next boot"
                    ))
                }
            }
        }
        (None, _) if old_text.is_some() => match bootfile::remove(&pin) {
            Ok(()) => log::info!(
                "{}: removed (systemd-boot's usual entry has its modules in the root, or rewind cannot pin)",
                shown(root, &pin)
            ),
            Err(e) => log::warn!("{e}"),
        },
        _ => {}
    }
    if let Some(p) = &problem {
        log::error!("{p}");
        crate::system::motd::note(root, p);
    }
    Some((decision, problem))
}

/// A member of its own mounted at `/boot` (or under it): refused before any change
/// ([`kernels::boot_lv_refusal`]).
pub fn refuse_boot_lv(members: &[MemberRequest]) -> Result<(), Error> {
    let m: Vec<(String, Option<String>)> = members
        .iter()
        .map(|m| (format!("{}/{}", m.vg, m.lv), m.mount.clone()))
        .collect();
    match kernels::boot_lv_refusal(&m) {
        Some(e) => Err(Error::Set(e)),
        None => Ok(()),
    }
}

/// Where the kernel of a set of `members` comes from, before it is taken: `/boot` in the set
/// (a directory of the root member), its copy, or the newest kernel.
pub fn boot_of(root: &Path, members: &[MemberRequest], copy: Option<&Prepared>) -> SetBoot {
    let all = mounts::read(root).unwrap_or_default();
    let m: Vec<&str> = members.iter().filter_map(|m| m.mount.as_deref()).collect();
    match copy {
        Some(p) => SetBoot::Copy(p.record.clone()),
        None if esp_boot(root).is_none() && boot_is_member(&all, &m) => SetBoot::Member,
        None => SetBoot::Newest,
    }
}

/// The mount holding `path` (absolute, in the system's view): the longest mount point that is
/// `path` or one of its parents (the last mounted among equals).
fn mount_holding<'m>(all: &'m [mounts::Mount], path: &str) -> Option<&'m mounts::Mount> {
    all.iter()
        .rev()
        .filter(|m| {
            let p = m.mount_point.trim_end_matches('/');
            path == m.mount_point
                || path
                    .strip_prefix(p)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
        .max_by_key(|m| m.mount_point.len())
}

/// GRUB's directory and the logical volume holding it, when it is on one.
pub fn grub_dir_lv(sys: &System) -> Option<(PathBuf, LvRef)> {
    let dir = super::bootmenu::grub_dir(&sys.root)?;
    let abs = format!("/{}", dir.strip_prefix(&sys.root).ok()?.display());
    let all = mounts::read(&sys.root).ok()?;
    let m = mount_holding(&all, &abs)?;
    let s = sys.env().scan().ok()?;
    let lv = super::snapshot::lv_mounted_at(&s, &all, &m.mount_point)?;
    Some((dir, lv))
}

/// The file that keeps a GRUB reinstall problem for `rewind status`, in GRUB's directory.
pub const GRUB_PROBLEM_FILE: &str = "rewind-grub-install.problem";

/// GRUB's platform directories in `dir` (`i386-pc`, `x86_64-efi`, ...: those holding modules).
fn grub_platforms(dir: &Path) -> Vec<String> {
    bootfile::names(dir)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| dir.join(p).join("normal.mod").is_file())
        .collect()
}

/// What makes GRUB's boot code match the modules in GRUB's directory `dir` of the system at
/// `root` again, from debconf's `grub-pc/install_devices`.
pub fn grub_reinstall_plan(root: &Path, dir: &Path) -> GrubReinstall {
    let dat = bootfile::read(&root.join("var/cache/debconf/config.dat")).unwrap_or_default();
    let devices = kernels::debconf_value(&dat, "grub-pc/install_devices");
    kernels::grub_reinstall(&grub_platforms(dir), devices.as_deref())
}

/// After the poller saw the merges of `rolled_back` finish: when GRUB's directory is on one of
/// them, GRUB's modules rolled back with it while its boot code (outside LVM) may be a newer
/// GRUB's, installed by the upgrade that was rolled back. The rolled-back system's own
/// `grub-install` rewrites the boot code on the devices debconf names ([`grub_reinstall_plan`]);
/// where it cannot, or fails, the journal, the login note and `rewind status` say so
/// ([`GRUB_PROBLEM_FILE`]). Returns the problem.
pub fn grub_after_rollback(sys: &System, rolled_back: &[LvRef]) -> Option<String> {
    if rolled_back.is_empty() {
        return None;
    }
    let (dir, lv) = grub_dir_lv(sys)?;
    if !rolled_back.contains(&lv) {
        return None;
    }
    let problem = grub_reinstall_in(&sys.root, &dir, &lv);
    let marker = dir.join(GRUB_PROBLEM_FILE);
    match &problem {
        Some(p) => {
            log::error!("{p}");
            crate::system::motd::note(&sys.root, p);
            if let Err(e) = bootfile::replace(&marker, &format!("{p}\n"), None) {
                log::warn!("{e}");
            }
        }
        None => {
            if let Err(e) = bootfile::remove(&marker) {
                log::warn!("{e}");
            }
        }
    }
    problem
}

/// [`grub_after_rollback`]'s reinstall, GRUB's directory `dir` on `lv` rolled back: the problem,
/// if any.
pub fn grub_reinstall_in(root: &Path, dir: &Path, lv: &LvRef) -> Option<String> {
    match grub_reinstall_plan(root, dir) {
        GrubReinstall::Cannot(why) => {
            Some(format!("{lv} rolled back with GRUB's directory: {why}"))
        }
        GrubReinstall::Run { platform, devices } => {
            let boot_dir = dir.parent().unwrap_or(dir);
            let failed: Vec<String> = devices
                .iter()
                .filter_map(|d| match bootfile::grub_install(&platform, boot_dir, d) {
                    Ok(()) => {
                        log::warn!(
                            "{lv} rolled back with GRUB's directory: GRUB's boot code reinstalled on {d} (grub-install --target={platform}) to match its rolled-back modules"
                        );
                        None
                    }
                    Err(e) => Some(format!("{d}: {e}")),
                })
                .collect();
            (!failed.is_empty()).then(|| {
                format!(
                    "{lv} rolled back with GRUB's directory, and GRUB's boot code could not be reinstalled to match its rolled-back modules ({}): run grub-install --target={platform} on those devices (or dpkg-reconfigure grub-pc) now, or the next boot may fail",
                    failed.join("; ")
                )
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("test io");
        std::fs::write(p, text).expect("test io");
    }

    /// A root whose /boot has the old kernel 1.0 and the new 2.0 (added by an upgrade that was
    /// rolled back: only 1.0's modules are in the root), with rewind's GRUB script installed.
    fn rolled_back_root() -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("tempdir");
        let r = d.path();
        write(r, "etc/grub.d/42_rewind", "#! /bin/sh\n");
        write(r, "boot/grub/grub.cfg", "set default=0\n");
        write(r, "lib/modules/1.0/modules.order", "");
        for f in [
            "vmlinuz-1.0",
            "initrd.img-1.0",
            "vmlinuz-2.0",
            "initrd.img-2.0",
        ] {
            write(r, &format!("boot/{f}"), f);
        }
        d
    }

    #[test]
    fn the_default_is_pinned_to_the_root_s_kernel_then_unpinned() {
        let d = rolled_back_root();
        let r = d.path();
        let rep = after_rollback(r).expect("grub there");
        assert_eq!(rep.problem, None);
        let pin = std::fs::read_to_string(r.join("boot/grub").join(PIN_FILE)).expect("pin");
        assert!(
            pin.contains("rewind_boot '' 'vmlinuz-1.0' 'initrd.img-1.0'"),
            "{pin}"
        );
        assert_eq!(
            boot_problem(r),
            Vec::<String>::new(),
            "pinned: status has nothing to say"
        );
        // What a removed kernel leaves behind (files depmod made) is no modules.
        write(r, "lib/modules/2.0/modules.dep", "");
        assert!(matches!(
            after_rollback(r).expect("grub").decision,
            NextBoot::Pin { .. }
        ));
        // The new kernel's modules arrive (the upgrade done again): the pin goes.
        write(r, "lib/modules/2.0/modules.order", "");
        assert_eq!(after_rollback(r).expect("grub").decision, NextBoot::Fine);
        assert!(!r.join("boot/grub").join(PIN_FILE).exists());
    }

    #[test]
    fn a_kernel_gone_from_boot_comes_back_from_a_set_s_copy() {
        let d = rolled_back_root();
        let r = d.path();
        // The upgrade removed kernel 1.0's files; set s kept a copy.
        write(r, "boot/rewind/vmlinuz-1.0.1", "vmlinuz-1.0");
        write(r, "boot/rewind/initrd.img-1.0.2", "initrd.img-1.0");
        write(
            r,
            "boot/rewind/s.kernel",
            "version=1.0\nlinux=rewind/vmlinuz-1.0.1\ninitrd=rewind/initrd.img-1.0.2\nbytes=25\n",
        );
        std::fs::remove_file(r.join("boot/vmlinuz-1.0")).expect("test io");
        std::fs::remove_file(r.join("boot/initrd.img-1.0")).expect("test io");
        let rep = after_rollback(r).expect("grub there");
        assert_eq!(rep.restored, vec!["1.0".to_owned()]);
        assert_eq!(
            std::fs::read_to_string(r.join("boot/vmlinuz-1.0")).expect("restored"),
            "vmlinuz-1.0"
        );
        assert!(
            matches!(rep.decision, NextBoot::Pin { ref kernel, .. } if kernel.linux == "vmlinuz-1.0")
        );
        // The set is gone: its record and copies go, the restored kernel stays.
        tidy(r, &[]);
        assert_eq!(
            bootfile::names(&r.join("boot/rewind")).expect("ls"),
            Vec::<String>::new()
        );
        assert!(r.join("boot/vmlinuz-1.0").exists());
    }

    #[test]
    fn the_esp_holds_the_copy_only_where_it_is_the_bls_boot_and_grub_s_menu_is_not_in_use() {
        let d = tempfile::tempdir().expect("tempdir");
        let r = d.path();
        assert_eq!(esp_boot(r), None, "no entries anywhere");
        std::fs::create_dir_all(r.join("efi/loader/entries")).expect("test io");
        assert_eq!(esp_boot(r), Some(r.join("efi")));
        // /boot itself is $BOOT (it has the entries): the copy stays in /boot/rewind.
        std::fs::create_dir_all(r.join("boot/loader/entries")).expect("test io");
        assert_eq!(esp_boot(r), None);
        std::fs::remove_dir_all(r.join("boot/loader")).expect("test io");
        // rewind's GRUB menu in use: GRUB machines are unchanged (/boot/rewind).
        write(r, "etc/grub.d/42_rewind", "#! /bin/sh\n");
        write(r, "boot/grub/grub.cfg", "set default=0\n");
        assert_eq!(esp_boot(r), None);
        std::fs::remove_file(r.join("etc/grub.d/42_rewind")).expect("test io");
        assert_eq!(esp_boot(r), Some(r.join("efi")));
        // On such a machine /boot never counts as in the set: the ESP's kernel does not roll
        // back with the root.
        write(
            r,
            "proc/self/mountinfo",
            "22 1 254:0 / / rw - ext4 /dev/mapper/vg0-root rw\n",
        );
        assert_eq!(
            boot_of(r, &[member("root", Some("/"))], None),
            SetBoot::Newest
        );
    }

    #[test]
    fn boot_is_a_member_on_its_own_lv_or_inside_the_root_member() {
        let with_boot = mounts::parse_mountinfo(
            "22 1 254:0 / / rw - ext4 /dev/mapper/vg0-root rw\n23 22 8:1 / /boot rw - ext4 /dev/vda1 rw\n",
        );
        let without = mounts::parse_mountinfo("22 1 254:0 / / rw - ext4 /dev/mapper/vg0-root rw\n");
        assert!(
            !boot_is_member(&with_boot, &["/", "/var"]),
            "a partition of its own"
        );
        assert!(
            boot_is_member(&with_boot, &["/", "/boot"]),
            "an lv in the set"
        );
        assert!(
            boot_is_member(&without, &["/"]),
            "a directory of the root member"
        );
        assert!(
            !boot_is_member(&without, &["/var"]),
            "a directory of a root not in the set"
        );
    }

    #[test]
    fn no_kernel_with_modules_is_said_loudly() {
        let d = rolled_back_root();
        let r = d.path();
        std::fs::remove_dir_all(r.join("lib/modules/1.0")).expect("test io");
        let rep = after_rollback(r).expect("grub there");
        assert!(
            rep.problem
                .as_deref()
                .is_some_and(|p| p.contains("no kernel in /boot has"))
        );
        assert_eq!(boot_problem(r).len(), 1);
        let motd = std::fs::read_to_string(r.join(crate::system::motd::MOTD)).expect("motd");
        assert!(
            motd.contains("kernel 2.0, GRUB's default, has no modules"),
            "{motd}"
        );
    }
    fn member(lv: &str, mount: Option<&str>) -> MemberRequest {
        MemberRequest {
            named: mount.unwrap_or(lv).into(),
            vg: "vg0".into(),
            lv: lv.into(),
            mount: mount.map(str::to_owned),
            fs_used: None,
            min_extents: 0,
        }
    }

    #[test]
    fn a_boot_lv_member_is_refused_and_boot_in_the_root_member_rolls_back_with_it() {
        let e = refuse_boot_lv(&[member("root", Some("/")), member("boot", Some("/boot"))])
            .expect_err("refused");
        assert!(e.to_string().contains("vg0/boot (mounted at /boot)"), "{e}");
        refuse_boot_lv(&[member("root", Some("/")), member("var", Some("/var"))]).expect("ok");
        // /boot a directory of the root member: the set's kernels roll back with it.
        let d = tempfile::tempdir().expect("tempdir");
        write(
            d.path(),
            "proc/self/mountinfo",
            "22 1 254:0 / / rw - ext4 /dev/mapper/vg0-root rw\n",
        );
        assert_eq!(
            boot_of(d.path(), &[member("root", Some("/"))], None),
            SetBoot::Member
        );
        assert_eq!(
            boot_of(d.path(), &[member("var", Some("/var"))], None),
            SetBoot::Newest
        );
    }

    #[test]
    fn the_mount_holding_grub_s_directory_is_the_longest_prefix() {
        let all = mounts::parse_mountinfo(
            "22 1 254:0 / / rw - ext4 /dev/mapper/vg0-root rw\n23 22 8:1 / /boot rw - ext4 /dev/vda1 rw\n24 22 8:2 / /bootx rw - ext4 /dev/vda2 rw\n",
        );
        assert_eq!(
            mount_holding(&all, "/boot/grub").map(|m| m.dev),
            Some((8, 1))
        );
        assert_eq!(
            mount_holding(&all[..1], "/boot/grub").map(|m| m.dev),
            Some((254, 0))
        );
        assert_eq!(
            mount_holding(&all, "/bootxy/grub").map(|m| m.dev),
            Some((254, 0))
        );
    }

    #[test]
    fn a_grub_reinstall_problem_is_listed_by_status_until_removed() {
        let d = tempfile::tempdir().expect("tempdir");
        let r = d.path();
        write(r, "boot/grub/grub.cfg", "set default=0\n");
        assert_eq!(boot_problem(r), Vec::<String>::new());
        // GRUB's directory without a platform directory: rewind cannot tell what to install.
        let p = grub_reinstall_in(
            r,
            &r.join("boot/grub"),
            &LvRef {
                vg: "vg0".into(),
                lv: "root".into(),
            },
        )
        .expect("a problem");
        assert!(
            p.starts_with("vg0/root rolled back with GRUB's directory"),
            "{p}"
        );
        write(
            r,
            &format!("boot/grub/{GRUB_PROBLEM_FILE}"),
            &format!("{p}\n"),
        );
        let st = boot_problem(r);
        assert_eq!(st.len(), 1, "{st:?}");
        assert!(
            st[0].starts_with(&p) && st[0].contains("then remove"),
            "{st:?}"
        );
    }
}
