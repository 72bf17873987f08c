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
use crate::plan::pkghook::{self, Pending, apt};
use crate::system::lvmtool::Lvm;
use crate::system::place::{Place, place};

/// What pre leaves for post, under the root.
pub const APT_PENDING: &str = "run/rewind/apt-hook";

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

fn pending_path(sys: &System) -> PathBuf {
    sys.root.join(APT_PENDING)
}

/// The apt pre-transaction hook, with apt's standard input (protocol 3).
pub fn apt_pre(sys: &System, input: &str) -> Pre {
    let cfg = sys.config();
    let stop = cfg.hooks.on_failure == OnFailure::Stop;
    // A file an earlier apt run left (killed before its post) is not this run's.
    let _ = std::fs::remove_file(pending_path(sys));
    let t = match apt::parse(input) {
        Ok(t) => t,
        Err(error) => return Pre::Failed { error, stop },
    };
    if t.plan.is_empty() {
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
    let description = pkghook::description("apt", t.command.as_deref(), &t.plan);
    let stamp = crate::system::proc::stamp();
    let name = format!("apt-{}", super::snapshot::default_name(stamp.time));
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
        plan: t.plan,
    };
    let path = pending_path(sys);
    if let Err(e) = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&path, pending.to_text()))
    {
        log::warn!(
            "{}: {e}; the set will not record how apt ended",
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
    let path = pending_path(sys);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let _ = std::fs::remove_file(&path);
    let Some(p) = Pending::parse(&text) else {
        return Err(Error::Set(format!("{}: not understood", path.display())));
    };
    let names: Vec<&str> = p.plan.iter().map(|x| x.change.name.as_str()).collect();
    // dpkg-query exits 1 when a name is unknown (removed and purged): its output still
    // lists the others.
    let out = std::process::Command::new("dpkg-query")
        .arg("-W")
        .arg("-f=${Package} ${Version} ${db:Status-Status}\n")
        .args(&names)
        .output()
        .map_err(|e| Error::Set(format!("dpkg-query: {e}")))?;
    let now = apt::installed(&String::from_utf8_lossy(&out.stdout));
    let result = pkghook::outcome(&p.plan, &|n| now.get(n).cloned());
    let text = match &result {
        Ok(()) => ", ok".to_owned(),
        Err(off) => format!(", failed: {off}"),
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
            "snapshot set {}: recording how apt ended: {e}",
            p.set
        ))
    })?;
    Ok(Some((p.set, result)))
}
