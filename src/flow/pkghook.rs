//! `rewind hook apt pre|post` (docs/HOOKS.md): one automatic snapshot set before each apt
//! transaction, its description the packages and versions apt is about to change; after the
//! transaction, how it ended appended to that description.
//!
//! pre (`DPkg::Pre-Install-Pkgs`, once per transaction, before dpkg runs): skipped, with a
//! message, when the transaction changes no package, when `[hooks] enabled = false`, in a
//! chroot or a container, or when `/` is not on an LVM logical volume. Otherwise the set is
//! taken (`flow::snapshot`, the configuration's members and size, kind auto); when it cannot
//! be, `[hooks] on_failure` decides: warn and let apt go on, or fail the hook, which makes apt
//! stop before dpkg runs. A set taken, the automatic sets are pruned (`[prune]`, automatic
//! sets only: a manual set is never the hook's to delete).
//!
//! post (`DPkg::Post-Invoke`): reads what pre left under `/run/rewind/`, asks dpkg where
//! each package is now, and appends `, ok` or `, failed: PKG VERSION...` to the set's
//! description (stock `lvchange --addtag` on every member, selected by the set's tag).

use std::path::PathBuf;

use super::Error;
use super::env::System;
use crate::config::OnFailure;
use crate::plan::pkghook::{self, Pending, Planned, apt, dnf, pacman};
use crate::system::lvmtool::Lvm;
use crate::system::place::{Place, place};

/// What pre leaves for post, under the root: `run/rewind/MANAGER-hook`.
pub const PENDING_DIR: &str = "run/rewind";

/// How pre ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pre {
    /// No set, on purpose: why.
    Skipped(String),
    /// The set taken, its description, the automatic sets pruned.
    Taken {
        name: String,
        description: String,
        pruned: Vec<String>,
    },
    /// No set could be taken: why, and whether apt must stop.
    Failed { error: String, stop: bool },
}

fn pending_path(sys: &System, manager: &str) -> PathBuf {
    sys.root.join(PENDING_DIR).join(format!("{manager}-hook"))
}

fn stop_on_failure(sys: &System) -> bool {
    sys.config().hooks.on_failure == OnFailure::Stop
}

/// The apt pre-transaction hook, with apt's standard input (protocol 3).
pub fn apt_pre(sys: &System, input: &str) -> Pre {
    // A file an earlier apt run left (killed before its post) is not this run's.
    let _ = crate::system::state::remove(&pending_path(sys, "apt"));
    match apt::parse(input) {
        Ok(t) => pre(sys, "apt", t.command.as_deref(), t.plan),
        Err(error) => Pre::Failed {
            error,
            stop: stop_on_failure(sys),
        },
    }
}

/// The dnf pre-transaction hook, with the plugin's lines (`plan::pkghook::dnf`).
pub fn dnf_pre(sys: &System, input: &str) -> Pre {
    let _ = crate::system::state::remove(&pending_path(sys, "dnf"));
    match dnf::parse(input) {
        Ok(t) => pre(sys, "dnf", t.command.as_deref(), t.plan),
        Err(error) => Pre::Failed {
            error,
            stop: stop_on_failure(sys),
        },
    }
}

/// The pacman PreTransaction hook, with its targets (`NeedsTargets`) and pacman's command
/// line.
pub fn pacman_pre(sys: &System, input: &str, command: Option<&str>) -> Pre {
    let _ = crate::system::state::remove(&pending_path(sys, "pacman"));
    let names = pacman::targets(input);
    let local = pacman_local(sys);
    let plan = pacman::plan(&names, &|n| local.get(n).cloned());
    pre(sys, "pacman", command, plan)
}

/// pacman's local database: each installed package's version (`var/lib/pacman/local`).
fn pacman_local(sys: &System) -> std::collections::BTreeMap<String, String> {
    crate::system::pkgdb::pacman_installed(&sys.root.join("var/lib/pacman/local"))
        .unwrap_or_default()
}

/// One set before a transaction of `manager` that changes `plan`.
fn pre(sys: &System, manager: &str, command: Option<&str>, plan: Vec<Planned>) -> Pre {
    let cfg = sys.config();
    let stop = cfg.hooks.on_failure == OnFailure::Stop;
    if plan.is_empty() {
        return Pre::Skipped("this transaction changes no package".into());
    }
    if !cfg.hooks.enabled {
        return Pre::Skipped("the hooks are off ([hooks] enabled = false)".into());
    }
    match place(&sys.root) {
        Place::Host => {}
        Place::Chroot(why) => {
            return Pre::Skipped(format!(
                "inside a chroot ({why}): its volumes are not the ones this system runs from"
            ));
        }
        Place::Container(why) => {
            return Pre::Skipped(format!(
                "inside a container ({why}): the volumes are the host's"
            ));
        }
    }
    match root_lv(sys) {
        Ok(true) => {}
        Ok(false) => {
            return Pre::Skipped("/ is not on an lvm logical volume".into());
        }
        Err(e) => {
            return Pre::Failed {
                error: e.to_string(),
                stop,
            };
        }
    }
    let description = pkghook::description(manager, command, &plan);
    let stamp = crate::system::proc::stamp();
    let name = format!("{manager}-{}", super::snapshot::default_name(stamp.time));
    let req = super::snapshot::Request {
        name: Some(name.clone()),
        description: description.clone(),
        auto: true,
        ..Default::default()
    };
    if let Err(e) = super::snapshot::run(sys, &req) {
        return Pre::Failed {
            error: e.to_string(),
            stop,
        };
    }
    let pending = Pending {
        set: name.clone(),
        pieces: crate::lvm::sets::description_tags(&description).map_or(0, |t| t.len()),
        plan,
    };
    let path = pending_path(sys, manager);
    if let Err(e) = crate::system::state::write(&path, pending.to_text().as_bytes()) {
        log::warn!(
            "{}: {e}; the set will not record how {manager} ended",
            path.display()
        );
    }
    let pruned = match prune_auto(sys) {
        Ok(p) => p,
        Err(e) => {
            log::warn!("pruning the automatic snapshot sets failed: {e}");
            Vec::new()
        }
    };
    Pre::Taken {
        name,
        description,
        pruned,
    }
}

/// Whether `/` is an LVM logical volume.
fn root_lv(sys: &System) -> Result<bool, Error> {
    let s = sys.env().scan()?;
    let mounts = crate::system::mounts::read(&sys.root)
        .map_err(|e| Error::Set(format!("cannot read the mounts: {e}")))?;
    Ok(super::snapshot::lv_mounted_at(&s, &mounts, "/").is_some())
}

/// `rewind prune`'s retention over the automatic sets only.
fn prune_auto(sys: &System) -> Result<Vec<String>, Error> {
    let cfg = sys.config();
    let views: Vec<_> = super::sets::list(sys)?
        .into_iter()
        .filter(|v| v.kind == Some(crate::lvm::sets::Kind::Auto))
        .collect();
    let now = crate::system::proc::stamp().time;
    let doomed = super::sets::prune_choice(&views, now, &cfg.prune);
    if doomed.is_empty() {
        return Ok(doomed);
    }
    let mut dm = sys.device_mapper().map_err(Error::dm_state)?;
    let mut tools = super::sets::Tools::system(sys, &mut dm)?;
    let env = sys.env();
    for name in &doomed {
        super::sets::delete_set(&env, &mut tools, name)?;
    }
    Ok(doomed)
}

/// How post ended: the set, and `Err` with the packages not as planned.
pub type Post = (String, Result<(), String>);

/// The apt post-transaction hook: the set's outcome recorded, or nothing to do (no set was
/// taken before this transaction).
pub fn apt_post(sys: &System) -> Result<Option<Post>, Error> {
    post(sys, "apt", &|p| {
        let names: Vec<&str> = p.plan.iter().map(|x| x.change.name.as_str()).collect();
        // dpkg-query exits 1 when a name is unknown (removed and purged): its output still
        // lists the others.
        let out = crate::system::pkgdb::dpkg_query(&names)
            .map_err(|e| Error::Set(format!("dpkg-query: {e}")))?;
        let now = apt::installed(&out);
        Ok(pkghook::outcome(&p.plan, &|n| now.get(n).cloned()))
    })
}

/// The dnf post-transaction hook (the plugin's `transaction()`, run when dnf's transaction
/// went through), with the plugin's `now NAME EVR` lines (rpm's database after it).
pub fn dnf_post(sys: &System, input: &str) -> Result<Option<Post>, Error> {
    let now = dnf::installed(input);
    post(sys, "dnf", &|p| {
        Ok(pkghook::outcome(&p.plan, &|n| now.get(n).cloned()))
    })
}

/// The pacman PostTransaction hook (pacman runs it only when the transaction went through):
/// the version each target has now.
pub fn pacman_post(sys: &System) -> Result<Option<Post>, Error> {
    post(sys, "pacman", &|p| {
        let names: Vec<String> = p.plan.iter().map(|x| x.change.name.clone()).collect();
        let local = pacman_local(sys);
        Ok(Err(pacman::after(&names, &|n| local.get(n).cloned())))
    })
    .map(|r| r.map(|(set, _)| (set, Ok(()))))
}

/// Whether the packages are as planned, asked of the package manager's database.
type Outcome<'a> = dyn Fn(&Pending) -> Result<Result<(), String>, Error> + 'a;

/// The post-transaction side: `outcome` says whether the packages are as planned
/// (`Err(text)`: what is not, or for pacman the text to append after `, `).
fn post(sys: &System, manager: &str, outcome: &Outcome) -> Result<Option<Post>, Error> {
    let path = pending_path(sys, manager);
    let Some(text) = crate::system::state::read(&path) else {
        return Ok(None);
    };
    let _ = crate::system::state::remove(&path);
    let Some(p) = Pending::parse(&text) else {
        return Err(Error::Set(format!("{}: not understood", path.display())));
    };
    let result = outcome(&p)?;
    let text = match (&result, manager) {
        (Ok(()), _) => ", ok".to_owned(),
        (Err(after), "pacman") => after.clone(),
        (Err(off), _) => format!(", failed: {off}"),
    };
    let tag = pkghook::appended_piece(p.pieces, &text);
    let lvm = Lvm::for_system(crate::system::nodes::udev_running(&sys.root));
    lvm.run(&[
        "lvchange".into(),
        "-q".into(),
        "--addtag".into(),
        tag,
        format!("@{}{}", crate::lvm::sets::SET, p.set),
    ])
    .map_err(|e| {
        Error::Set(format!(
            "snapshot set {}: recording how {manager} ended: {e}",
            p.set
        ))
    })?;
    // The set's boot-menu entry shows its description, which now ends with the outcome.
    super::bootmenu::refresh(sys);
    Ok(Some((p.set, result)))
}
