//! `rewind mount SET` and `rewind umount SET`: a set's snapshots mounted read-only under
//! `/run/rewind/SET/VG/ORIGIN`, to look at a set before choosing it for a rollback. Each
//! snapshot's block device is set read-only before its mount (and writable again after the
//! unmount), so looking changes nothing in the store: a read-only mount of ext4 on a
//! writable device would still clean its orphan list.

use std::path::{Path, PathBuf};

use super::Error;
use super::env::System;
use super::sets::{self, MemberState, SetState, SetView};
use crate::lvm::layout::dm_name;
use crate::system::mounts;

/// Where the sets are mounted, under the root.
pub const DIR: &str = "run/rewind";

/// One member mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mounted {
    /// `VG/SNAPSHOT`.
    pub member: String,
    /// The snapshot's device.
    pub dev: PathBuf,
    pub dir: PathBuf,
    pub fstype: String,
}

/// The snapshot device and the directory of every member of `view`; refused, naming the
/// member, when one cannot be mounted.
pub fn targets(root: &Path, view: &SetView) -> Result<Vec<(String, PathBuf, PathBuf)>, Error> {
    let name = &view.name;
    let refuse = |why: String| {
        Error::Set(format!(
            "snapshot set {name} cannot be mounted: {why}; nothing mounted"
        ))
    };
    match view.state {
        SetState::Pending => return Err(refuse("it is still being made".into())),
        SetState::Merging => return Err(refuse("it is being rolled back to".into())),
        SetState::Lost => {
            return Err(refuse(
                "a member overflowed (its store filled up): the set is lost".into(),
            ));
        }
        SetState::Ok | SetState::Incomplete => {}
    }
    let mut out = Vec::new();
    for m in &view.members {
        let member = format!("{}/{}", m.vg, m.snapshot);
        if m.state != MemberState::Active {
            return Err(refuse(format!(
                "{member} is not active (lvchange -ay {member} first)"
            )));
        }
        let dev =
            dm_name(&m.vg, &m.snapshot, None).map_err(|e| refuse(format!("{member}: {e}")))?;
        let origin = m.origin.as_deref().unwrap_or(&m.snapshot);
        out.push((
            member,
            root.join("dev/mapper").join(dev),
            root.join(DIR).join(name).join(&m.vg).join(origin),
        ));
    }
    Ok(out)
}

/// `rewind mount SET`: every member read-only under `/run/rewind/SET`; all or none.
pub fn mount(sys: &System, name: &str) -> Result<Vec<Mounted>, Error> {
    let view = sets::show(sys, name)?;
    let targets = targets(&sys.root, &view)?;
    let now = mounts::read(&sys.root).map_err(|e| Error::Set(format!("reading mountinfo: {e}")))?;
    if let Some((_, _, dir)) = targets
        .iter()
        .find(|(_, _, dir)| mounts::mounted_at(&now, &dir.to_string_lossy()).is_some())
    {
        return Err(Error::Set(format!(
            "snapshot set {name} is mounted already ({}); rewind umount {name} first",
            dir.display()
        )));
    }
    let mut done: Vec<Mounted> = Vec::new();
    for (member, dev, dir) in &targets {
        let one = || -> Result<String, String> {
            mounts::make_mount_point(dir)
                .map_err(|e| format!("creating {}: {e}", dir.display()))?;
            mounts::set_read_only(dev, true)
                .map_err(|e| format!("setting {} read-only: {e}", dev.display()))?;
            mounts::mount_read_only(dev, dir).map_err(|e| {
                let _ = mounts::set_read_only(dev, false);
                format!("mounting {} on {}: {e}", dev.display(), dir.display())
            })
        };
        match one() {
            Ok(fstype) => done.push(Mounted {
                member: member.clone(),
                dev: dev.clone(),
                dir: dir.clone(),
                fstype,
            }),
            Err(e) => {
                for m in done.iter().rev() {
                    if let Err(u) = undo(m) {
                        log::error!("snapshot set {name}: {u}");
                    }
                }
                remove_dirs(&sys.root, name);
                return Err(Error::Set(format!(
                    "snapshot set {name}: member {member}: {e}; nothing left mounted"
                )));
            }
        }
    }
    Ok(done)
}

fn undo(m: &Mounted) -> Result<(), String> {
    mounts::unmount(&m.dir).map_err(|e| format!("unmounting {}: {e}", m.dir.display()))?;
    mounts::set_read_only(&m.dev, false)
        .map_err(|e| format!("setting {} writable: {e}", m.dev.display()))
}

/// The empty directories `mount` made (`SET/VG/LV`), deepest first; what is not empty stays.
fn remove_dirs(root: &Path, name: &str) {
    mounts::remove_empty_dirs(&root.join(DIR).join(name), 2);
}

/// `rewind umount SET`: every mount under `/run/rewind/SET` unmounted (deepest first), its
/// device writable again, the directories removed. Returns the directories unmounted.
pub fn umount(sys: &System, name: &str) -> Result<Vec<PathBuf>, Error> {
    crate::lvm::sets::check_set_name(name).map_err(Error::Set)?;
    let top = sys.root.join(DIR).join(name);
    let now = mounts::read(&sys.root).map_err(|e| Error::Set(format!("reading mountinfo: {e}")))?;
    let mut under: Vec<&mounts::Mount> = now
        .iter()
        .filter(|m| Path::new(&m.mount_point).starts_with(&top))
        .collect();
    if under.is_empty() {
        return Err(Error::Set(format!(
            "snapshot set {name} is not mounted (nothing under {})",
            top.display()
        )));
    }
    under.sort_by_key(|m| std::cmp::Reverse(m.mount_point.len()));
    let mut out = Vec::new();
    for m in under {
        let dir = PathBuf::from(&m.mount_point);
        mounts::unmount(&dir)
            .map_err(|e| Error::Set(format!("unmounting {}: {e}", dir.display())))?;
        let dev = Path::new(&m.source);
        if dev.starts_with(sys.root.join("dev/mapper")) {
            mounts::set_read_only(dev, false).map_err(|e| {
                Error::Set(format!("setting {} writable again: {e}", dev.display()))
            })?;
        }
        out.push(dir);
    }
    remove_dirs(&sys.root, name);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::sets::MemberView;

    fn view(state: SetState, members: &[(&str, &str, &str, MemberState)]) -> SetView {
        SetView {
            name: "s1".into(),
            time: Some(1),
            kind: None,
            description: String::new(),
            pinned: false,
            state,
            members_declared: Some(members.len()),
            boot: crate::flow::setkernel::SetBoot::Newest,
            members: members
                .iter()
                .map(|(vg, origin, snap, st)| MemberView {
                    vg: (*vg).into(),
                    origin: Some((*origin).into()),
                    snapshot: (*snap).into(),
                    size_bytes: 1 << 20,
                    mount: None,
                    fill_percent: None,
                    state: *st,
                    pool: None,
                })
                .collect(),
        }
    }

    #[test]
    fn every_member_goes_under_run_rewind_set_vg_origin_and_bad_sets_are_refused() {
        let a = MemberState::Active;
        let v = view(
            SetState::Ok,
            &[("vg0", "root", "root.s1", a), ("my-vg", "a-b", "a-b.s1", a)],
        );
        let t = targets(Path::new("/"), &v).expect("targets");
        assert_eq!(
            t,
            [
                (
                    "vg0/root.s1".to_owned(),
                    PathBuf::from("/dev/mapper/vg0-root.s1"),
                    PathBuf::from("/run/rewind/s1/vg0/root")
                ),
                (
                    "my-vg/a-b.s1".to_owned(),
                    PathBuf::from("/dev/mapper/my--vg-a--b.s1"),
                    PathBuf::from("/run/rewind/s1/my-vg/a-b")
                ),
            ]
        );
        let e = |v: SetView| {
            targets(Path::new("/"), &v)
                .expect_err("refused")
                .to_string()
        };
        assert!(e(view(SetState::Lost, &[])).contains("the set is lost; nothing mounted"));
        assert!(e(view(SetState::Merging, &[])).contains("being rolled back to"));
        assert!(e(view(SetState::Pending, &[])).contains("still being made"));
        assert!(
            e(view(
                SetState::Ok,
                &[
                    ("vg0", "root", "root.s1", a),
                    ("vg0", "var", "var.s1", MemberState::Inactive)
                ]
            ))
            .contains("vg0/var.s1 is not active (lvchange -ay vg0/var.s1 first)")
        );
    }
}
