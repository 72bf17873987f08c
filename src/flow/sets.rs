//! What the snapshot-set flows share (docs/SETS.md): the tools a set is made and removed with
//! (device-mapper, stock LVM, the window, the mounts), `rewind snapshot`'s own lock, and the
//! tidying of sets whose creation was cut short (invariant 10).

use std::path::{Path, PathBuf};

use super::Error;
use super::env::{Env, System, live_now};
use crate::lvm::layout::{Layer, dm_name};
use crate::lvm::sets::{self, Set, State};
use crate::plan::dev::UdevRules;
use crate::plan::steps::Live;
use crate::plan::table::Target;
use crate::system::dm::{DeviceMapper, DmError};
use crate::system::lvmtool::Lvm;
use crate::system::mounts::{self, Mount};
use crate::system::nodes;
use crate::system::scan::Scan;
use crate::system::window;

/// How the window is taken: the kernel's ([`KernelWindow`]) or, in tests, a fake that goes
/// through the recording device-mapper.
pub trait Instant {
    fn take(
        &mut self,
        dm: &mut dyn DeviceMapper,
        req: &window::Request,
    ) -> Result<window::Report, window::WindowError>;
}

/// The real window: raw ioctls on `/dev/mapper/control` (`system::window::take`).
#[derive(Debug, Default)]
pub struct KernelWindow;

impl Instant for KernelWindow {
    fn take(
        &mut self,
        _dm: &mut dyn DeviceMapper,
        req: &window::Request,
    ) -> Result<window::Report, window::WindowError> {
        window::take_on_control(req)
    }
}

/// Everything a set flow acts through, injectable for the host tests.
pub struct Tools<'a> {
    pub dm: &'a mut dyn DeviceMapper,
    pub lvm: Lvm,
    pub window: Box<dyn Instant + 'a>,
    pub mounts: Vec<Mount>,
    /// Where device nodes are made when udev does not make them; `None`: udev makes them.
    pub nodes_root: Option<PathBuf>,
    /// `rewind snapshot`'s own lock file.
    pub sets_lock: PathBuf,
    /// Host tests: stop (as if killed) at the `.1`-th time the flow reaches point `.0`.
    pub stop_at: Option<(String, usize)>,
    /// Set when a test stop happened: nothing more runs, as after a kill.
    pub stopped: bool,
}

impl Tools<'_> {
    /// A crash point: `REWIND_FAILPOINT` exits the process here (VM tests); a host test's
    /// `stop_at` ends the flow here with an error and no clean-up, as a kill would.
    pub fn point(&mut self, name: &str) -> Result<(), Error> {
        crate::system::failpoint::hit(name);
        if let Some((at, n)) = &mut self.stop_at
            && at == name
        {
            if *n <= 1 {
                self.stopped = true;
                self.stop_at = None;
                return Err(Error::Set(format!("stopped at {name} (test)")));
            }
            *n -= 1;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Tools<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tools")
            .field("lvm", &self.lvm)
            .field("sets_lock", &self.sets_lock)
            .finish_non_exhaustive()
    }
}

impl<'a> Tools<'a> {
    /// This system's: the kernel's device-mapper and window, stock `lvm`, `/proc`'s mounts.
    pub fn system(sys: &System, dm: &'a mut dyn DeviceMapper) -> Result<Tools<'a>, Error> {
        let udev = nodes::udev_makes_dm_nodes(&sys.root);
        Ok(Tools {
            dm,
            lvm: Lvm::for_system(nodes::udev_running(&sys.root)),
            window: Box::new(KernelWindow),
            mounts: mounts::read(&sys.root)
                .map_err(|e| Error::Set(format!("cannot read the mounts: {e}")))?,
            nodes_root: (!udev).then(|| sys.root.clone()),
            sets_lock: sys.root.join(SETS_LOCK),
            stop_at: None,
            stopped: false,
        })
    }
}

/// `rewind snapshot`'s lock, under the root: held while a set is made, so no other command
/// tidies it as half-made meanwhile. `/run` is empty after a reboot: a crash leaves no lock.
pub const SETS_LOCK: &str = "run/lock/rewind-sets";

/// An exclusive `flock` on [`SETS_LOCK`]; released on drop (and by the kernel when the
/// process dies).
#[derive(Debug)]
pub struct SetsLock {
    _lock: crate::system::lock::FileLock,
}

impl SetsLock {
    /// Waits (up to a minute) for another `rewind snapshot` to finish.
    pub fn exclusive(path: &Path) -> Result<SetsLock, Error> {
        use crate::system::lock::{FileLock, LockError};
        match FileLock::exclusive(path, std::time::Duration::from_secs(60)) {
            Ok(lock) => Ok(SetsLock { _lock: lock }),
            Err(e @ LockError::Busy { .. }) => Err(Error::Set(format!(
                "another rewind snapshot still runs ({e})"
            ))),
            Err(e) => Err(Error::Set(e.to_string())),
        }
    }

    /// The lock if no set is being made now, else `None`.
    pub fn try_exclusive(path: &Path) -> Option<SetsLock> {
        crate::system::lock::FileLock::try_exclusive(path).map(|lock| SetsLock { _lock: lock })
    }
}

/// Every set in the usable VGs of a scan.
pub fn all_sets(s: &Scan) -> Vec<Set> {
    sets::sets(
        s.assembly
            .vgs
            .iter()
            .filter(|v| v.is_usable())
            .filter_map(|v| v.model.as_ref()),
    )
}

/// `lvremove` of `lvs` (`VG/LV`), logged.
pub fn remove_lvs(tools: &Tools<'_>, lvs: &[String]) -> Result<(), Error> {
    if lvs.is_empty() {
        return Ok(());
    }
    log::info!("removing {}", lvs.join(" "));
    tools.lvm.remove(lvs).map_err(|e| Error::Set(e.to_string()))
}

/// Removes every half-made set (a member tagged `rewind_pending`) when no `rewind snapshot`
/// runs on this machine; returns their names. `held`: the caller is `rewind snapshot` and
/// holds the lock (the sets found pending are then its own earlier, cut-short ones).
pub fn tidy(
    env: &Env<'_>,
    tools: &mut Tools<'_>,
    s: &Scan,
    held: Option<&SetsLock>,
) -> Result<Vec<String>, Error> {
    let pending: Vec<String> = all_sets(s)
        .into_iter()
        .filter(|set| set.state() == State::Pending)
        .map(|set| set.name)
        .collect();
    if pending.is_empty() {
        return Ok(pending);
    }
    let _lock = match held {
        Some(_) => None,
        None => match SetsLock::try_exclusive(&tools.sets_lock) {
            Some(l) => Some(l),
            None => {
                log::info!(
                    "snapshot set(s) {} being made now: left alone",
                    pending.join(", ")
                );
                return Ok(Vec::new());
            }
        },
    };
    for name in &pending {
        log::warn!("snapshot set {name} was cut short while being made: removing it");
        let fresh = env.scan()?;
        tidy_set(env, tools, &fresh, name)?;
    }
    Ok(pending)
}

/// Removes set `name` whole: the devices rewind prepared that never went live are undone
/// (an origin's inactive table, a snapshot device that never showed the snapshot, unused
/// `-cow` and `-real` layers), then stock `lvremove` removes every member.
pub fn tidy_set(env: &Env<'_>, tools: &mut Tools<'_>, s: &Scan, name: &str) -> Result<(), Error> {
    let Some(mut set) = all_sets(s).into_iter().find(|x| x.name == name) else {
        return Ok(());
    };
    let live = live_now(tools.dm)?;
    let handled = revert_unsent_thin(env, tools, s, &live, &set)?;
    set.members
        .retain(|m| !handled.contains(&(m.vg.clone(), m.lv.clone())));
    remove_members(tools, &live, &set)
}

/// Pending thin members whose pool never took the set's messages (the kernel's transaction id
/// one behind the metadata's: the window was aborted, or the process died before it): stock
/// `lvremove` would fail there (libdm expects the kernel in step before it sends the
/// `delete`), so rewind undoes its own commit as LVM undoes a thin snapshot whose origin could
/// not be suspended: the pool is sent `delete` of each such device (a `create_snap` may have
/// got through before a later message failed; ENODATA, the device never made, is fine), then
/// one commit under LVM's VG lock removes the thin snapshots and puts the pool's transaction id
/// back to the kernel's. A pool in step with the metadata (the messages arrived) is left to
/// `lvremove`; a pool that is not active keeps its pending members (logged) until one is.
/// Returns the members it took care of (removed, or left for later), by VG and LV.
fn revert_unsent_thin(
    env: &Env<'_>,
    tools: &mut Tools<'_>,
    s: &Scan,
    live: &[Live],
    set: &Set,
) -> Result<Vec<(String, String)>, Error> {
    use crate::lvm::text::{self, Style};
    use std::collections::BTreeMap;

    let mut by_pool: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for m in set.members.iter().filter(|m| m.pending) {
        if let Some(pool) = &m.thin_pool {
            by_pool
                .entry((m.vg.clone(), pool.clone()))
                .or_default()
                .push(m.lv.clone());
        }
    }
    let mut handled = Vec::new();
    for ((vg, pool), names) in by_pool {
        let tpool = dm_name(&vg, &pool, Some(&Layer::Other("tpool".into())))
            .map_err(|e| Error::Set(e.to_string()))?;
        if !live.iter().any(|l| l.name == tpool && l.table.is_some()) {
            log::warn!(
                "snapshot set {}: thin pool {vg}/{pool} is not active: its members {} stay until it is",
                set.name,
                names.join(", ")
            );
            handled.extend(names.into_iter().map(|n| (vg.clone(), n)));
            continue;
        }
        let lines = tools.dm.status(&tpool).map_err(dm_err)?;
        let kernel = lines
            .first()
            .filter(|l| l.target_type == "thin-pool")
            .and_then(|l| {
                crate::plan::thinpool::parse_status(&l.params)
                    .ok()
                    .flatten()
            })
            .ok_or_else(|| Error::Set(format!("{tpool}: no usable thin-pool status")))?;
        let (_, model) = super::env::usable_vg(s, &vg)?;
        let meta_tid = model.lv(&pool).and_then(|l| {
            l.segments.iter().find_map(|seg| match seg.kind {
                crate::lvm::model::SegmentKind::ThinPool { transaction_id, .. } => {
                    Some(transaction_id)
                }
                _ => None,
            })
        });
        if meta_tid == Some(kernel.transaction_id) {
            // The pool took the messages: each snapshot removed as lvremove does it.
            remove_thin_in_step(env, tools, &vg, &names, &set.name)?;
            handled.extend(names.into_iter().map(|n| (vg.clone(), n)));
            continue;
        }
        if meta_tid != kernel.transaction_id.checked_add(1) {
            log::error!(
                "snapshot set {}: thin pool {vg}/{pool} is at transaction {} in the kernel, {meta_tid:?} in the metadata: not in step as lvm keeps them; its members {} left as they are",
                set.name,
                kernel.transaction_id,
                names.join(", ")
            );
            handled.extend(names.into_iter().map(|n| (vg.clone(), n)));
            continue;
        }
        let ids: Vec<u64> = names
            .iter()
            .filter_map(|n| model.lv(n).and_then(|l| l.thin()).map(|t| t.device_id))
            .collect();
        for id in ids {
            match tools.dm.message(&tpool, &format!("delete {id}")) {
                Ok(()) | Err(DmError::NoData { .. }) => {}
                Err(e) => return Err(dm_err(e)),
            }
        }
        let _lock = crate::system::lock::VgLock::exclusive(&env.lock_dir, &vg, env.lock_timeout)?;
        let fresh = env.scan()?;
        let (found, _) = super::env::usable_vg(&fresh, &vg)?;
        let stamp = crate::system::proc::stamp();
        let tree = crate::lvm::thinchange::revert_thin_snapshots(
            &found.tree,
            &pool,
            &names,
            kernel.transaction_id,
            &format!(
                "Write from rewind: snapshot set {} cut short, its thin snapshots in {pool} undone.",
                set.name
            ),
            &stamp,
        )?;
        fresh
            .commit(found, &text::print(&tree, Style::Disk), None)
            .map_err(|e| Error::commit(&vg, "undoing a cut-short set's thin snapshots", e))?;
        log::info!(
            "snapshot set {}: thin snapshots {} undone, pool {vg}/{pool} back at transaction {}",
            set.name,
            names.join(", "),
            kernel.transaction_id
        );
        handled.extend(names.into_iter().map(|n| (vg.clone(), n)));
    }
    Ok(handled)
}

/// Thin snapshots `names` of a cut-short set whose pool took the messages, removed one at a
/// time as stock `lvremove` removes a thin LV, under LVM's VG lock: a commit that removes it,
/// raises the pool's transaction id and records the owed `delete` as a pool tag
/// (`lvm::thinchange::remove_thin_lv`); the pool's `delete` and `set_transaction_id`
/// (`flow::thinfinish::send_owed`); a commit that drops the tag. A kill in between leaves the
/// tag, which `rewind poll` settles as after a thin merge's finish.
fn remove_thin_in_step(
    env: &Env<'_>,
    tools: &mut Tools<'_>,
    vg: &str,
    names: &[String],
    set: &str,
) -> Result<(), Error> {
    use super::thinfinish::{Owed, send_owed};
    use crate::lvm::text::{self, Style};
    use crate::lvm::thinchange::{clear_pending_delete, remove_thin_lv};

    let _lock = crate::system::lock::VgLock::exclusive(&env.lock_dir, vg, env.lock_timeout)?;
    for name in names {
        let s = env.scan()?;
        let (found, _) = super::env::usable_vg(&s, vg)?;
        let stamp = crate::system::proc::stamp();
        let (tree, delete) = remove_thin_lv(
            &found.tree,
            name,
            &format!("Write from rewind: snapshot set {set} cut short, {name} removed."),
            &stamp,
        )?;
        s.commit(found, &text::print(&tree, Style::Disk), None)
            .map_err(|e| Error::commit(vg, "removing a cut-short set's thin snapshot", e))?;
        let s = env.scan()?;
        let (found, model) = super::env::usable_vg(&s, vg)?;
        match send_owed(tools.dm, &found.id, vg, model, &delete)? {
            Owed::Sent | Owed::AlreadyThere => {}
            Owed::Inactive => {
                log::warn!(
                    "{vg}/{}: thin pool not active; its delete {} is sent by rewind poll once it is",
                    delete.pool,
                    delete.device_id
                );
                continue;
            }
        }
        let tree = clear_pending_delete(&found.tree, &delete, &stamp)?;
        s.commit(found, &text::print(&tree, Style::Disk), None)
            .map_err(|e| Error::commit(vg, "committing the pool without its owed delete", e))?;
        log::info!("snapshot set {set}: thin snapshot {vg}/{name} removed");
    }
    Ok(())
}

fn dm_err(e: DmError) -> Error {
    Error::dm_state(e)
}

/// The devices of `vg/cow`, a snapshot of `vg/origin`, put back to what LVM expects when the
/// snapshot did not go live: a snapshot device that is not stacked under a live
/// `snapshot-origin` is removed, with its `-cow`; an origin's inactive table is dropped; a
/// `-real` nothing uses any more is removed after the origin is back on its own segments.
/// Every member of `set` removed: the devices rewind prepared that never went live undone,
/// then stock `lvremove` of each member.
fn remove_members(tools: &mut Tools<'_>, live: &[Live], set: &Set) -> Result<(), Error> {
    for m in set.members.iter().filter(|m| m.thin_pool.is_none()) {
        if let Some(origin) = &m.origin {
            undo_unfinished_devices(tools.dm, live, &m.vg, origin, &m.lv)?;
        }
    }
    let lvs: Vec<String> = set
        .members
        .iter()
        .map(|m| format!("{}/{}", m.vg, m.lv))
        .collect();
    remove_lvs(tools, &lvs)
}

fn undo_unfinished_devices(
    dm: &mut dyn DeviceMapper,
    live: &[Live],
    vg: &str,
    origin: &str,
    cow: &str,
) -> Result<(), Error> {
    let name = |lv: &str, layer: Option<Layer>| {
        dm_name(vg, lv, layer.as_ref()).map_err(|e| Error::Set(e.to_string()))
    };
    let (o, real, snap, cow_dev) = (
        name(origin, None)?,
        name(origin, Some(Layer::Real))?,
        name(cow, None)?,
        name(cow, Some(Layer::Cow))?,
    );
    let find = |n: &str| live.iter().find(|l| l.name == n);
    let origin_live_on_real = find(&o).is_some_and(|l| {
        l.table.as_ref().is_some_and(|t| {
            t.lines
                .iter()
                .any(|x| matches!(x.target, Target::SnapshotOrigin { .. }))
        })
    });
    // The origin: whatever is loaded and not live is the unfinished snapshot-origin.
    if let Some(info) = dm.info(&o).map_err(dm_err)?
        && info.inactive_table
    {
        dm.clear(&o).map_err(dm_err)?;
        if info.suspended {
            dm.resume(&o, UdevRules::All).map_err(dm_err)?;
        }
    }
    let snap_went_live = find(&snap).is_some_and(|l| l.table.is_some()) && origin_live_on_real;
    if !snap_went_live {
        for d in [&snap, &cow_dev] {
            if find(d).is_some() {
                dm.remove(d, UdevRules::DmOnly).map_err(dm_err)?;
            }
        }
        if !origin_live_on_real
            && let Some(r) = dm.info(&real).map_err(dm_err)?
            && r.open_count == 0
        {
            dm.remove(&real, UdevRules::DmOnly).map_err(dm_err)?;
        }
    }
    Ok(())
}

/// Device nodes for new devices when udev does not make them (`/dev/mapper/NAME` and, for a
/// visible snapshot, `/dev/VG/LV`); with udev, waits for it.
pub fn make_nodes(
    tools: &mut Tools<'_>,
    devices: &[(String, Option<(String, String)>)],
) -> Result<(), Error> {
    let Some(root) = tools.nodes_root.clone() else {
        let _ = tools.dm.wait_for_udev(std::time::Duration::from_secs(10));
        return Ok(());
    };
    for (name, link) in devices {
        let Some(d) = tools.dm.info(name).map_err(dm_err)? else {
            continue;
        };
        nodes::make(
            &root,
            name,
            d.dev.major,
            d.dev.minor,
            link.as_ref().map(|(v, l)| (v.as_str(), l.as_str())),
        )
        .map_err(|e| Error::Set(format!("device node for {name}: {e}")))?;
    }
    Ok(())
}

/// One member of a set as `rewind list` and `show` print it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MemberView {
    pub vg: String,
    pub origin: Option<String>,
    pub snapshot: String,
    pub size_bytes: u64,
    pub mount: Option<String>,
    /// How full its store is, when the kernel says (active).
    pub fill_percent: Option<f64>,
    pub state: MemberState,
    /// A thin member's pool: a thin snapshot has no store of its own, its pool's data and
    /// metadata are what fill up (docs/THIN.md). The kernel's view (`kernel`) when the pool is
    /// active, the metadata's alone otherwise. Absent for classic members.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<super::status::PoolReport>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberState {
    /// Active, its store in use.
    Active,
    /// Not active; its store's header is valid.
    Inactive,
    /// Its store overflowed (or is invalid): this rollback point is lost.
    Overflowed,
    /// Flagged to merge, or merging.
    Merging,
    /// Being made, or cut short while being made.
    Pending,
}

/// A set as `rewind list` and `show` print it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SetView {
    pub name: String,
    pub time: Option<i64>,
    pub kind: Option<sets::Kind>,
    pub description: String,
    pub pinned: bool,
    pub state: SetState,
    pub members_declared: Option<usize>,
    pub members: Vec<MemberView>,
    /// The kernel its menu entry boots (`flow::setkernel`).
    pub boot: super::setkernel::SetBoot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SetState {
    /// Every member there and valid: a rollback point.
    Ok,
    /// A member's store overflowed: refused for rollback; delete it.
    Lost,
    /// Fewer members than recorded: refused for rollback; delete it.
    Incomplete,
    /// Being rolled back to.
    Merging,
    /// Being made (or cut short: the next command tidies it).
    Pending,
}

impl SetView {
    /// Whether `rewind rollback` would take it.
    pub fn usable(&self) -> bool {
        self.state == SetState::Ok
    }
}

/// What `rewind list` shows: every set, with each member's state and fill.
pub fn views(s: &Scan, dm: Option<&mut dyn DeviceMapper>) -> Result<Vec<SetView>, Error> {
    let live = match dm {
        Some(d) => {
            let l = live_now(d)?;
            Some((l, d))
        }
        None => None,
    };
    let mut live = live;
    let mut out = Vec::new();
    for set in all_sets(s) {
        let mut members = Vec::new();
        for m in &set.members {
            let found = s.assembly.vgs_named(&m.vg).next();
            let model = found.and_then(|v| v.model.as_ref());
            let snap = model.and_then(|md| md.snapshot(&m.lv));
            let mut state = if m.pending || m.origin.is_none() {
                MemberState::Pending
            } else if m.merging {
                MemberState::Merging
            } else {
                MemberState::Inactive
            };
            let mut fill = None;
            if state == MemberState::Inactive
                && let (Some(v), Some(md), Some(sn)) = (found, model, snap)
            {
                let dev = live
                    .as_ref()
                    .and_then(|(l, _)| super::env::device(l, v, md, &m.lv).map(|d| d.name.clone()));
                match (dev, live.as_mut()) {
                    (Some(name), Some((_, dm))) => {
                        state = MemberState::Active;
                        let st = dm.status(&name).ok().and_then(|lines| {
                            lines
                                .iter()
                                .find(|x| x.target_type == "snapshot")
                                .and_then(|x| x.snapshot_status())
                                .and_then(Result::ok)
                        });
                        use crate::plan::table::SnapshotStatus as S;
                        match st {
                            Some(S::Invalid | S::Overflow) => state = MemberState::Overflowed,
                            Some(S::Usage {
                                allocated, total, ..
                            }) if total > 0 => {
                                fill = Some(
                                    (allocated as f64 * 10000.0 / total as f64).round() / 100.0,
                                );
                            }
                            _ => {}
                        }
                    }
                    _ => {
                        let chunk = u32::try_from(sn.chunk_size).unwrap_or(u32::MAX);
                        let valid = s
                            .read_cow(v, sn)
                            .ok()
                            .map(|b| crate::lvm::cow::check(&b, chunk).is_ok());
                        if valid == Some(false) {
                            state = MemberState::Overflowed;
                        }
                    }
                }
            }
            let pool = member_pool(found, model, &m.lv, &mut live);
            members.push(MemberView {
                vg: m.vg.clone(),
                origin: m.origin.clone(),
                snapshot: m.lv.clone(),
                size_bytes: m.extents * m.extent_size * 512,
                mount: m.mount.clone(),
                fill_percent: fill,
                state,
                pool,
            });
        }
        let state = match set.state() {
            State::Pending => SetState::Pending,
            State::Incomplete => SetState::Incomplete,
            State::Merging => SetState::Merging,
            State::Ok if members.iter().any(|m| m.state == MemberState::Overflowed) => {
                SetState::Lost
            }
            State::Ok => SetState::Ok,
        };
        out.push(SetView {
            name: set.name.clone(),
            time: set.time,
            kind: set.kind,
            description: set.description.clone(),
            pinned: set.pinned,
            state,
            members_declared: set.declared,
            members,
            boot: super::setkernel::SetBoot::Newest,
        });
    }
    Ok(out)
}

/// The pool of `lv` when it is a thin LV, with the kernel's fill when `live` has the pool's
/// `-tpool` device (`flow::status::pool_report`).
fn member_pool(
    found: Option<&crate::lvm::assemble::FoundVg>,
    model: Option<&crate::lvm::model::Vg>,
    lv: &str,
    live: &mut Option<(Vec<Live>, &mut dyn DeviceMapper)>,
) -> Option<super::status::PoolReport> {
    let (v, md) = (found?, model?);
    let pool = md.lv(md.lv(lv)?.thin()?.pool)?;
    match live {
        Some((l, dm)) => {
            let mut dm: Option<&mut dyn DeviceMapper> = Some(&mut **dm);
            super::status::pool_report(v, pool, l, &mut dm)
        }
        None => super::status::pool_report(v, pool, &[], &mut None),
    }
}

/// `rewind list`: tidies half-made sets, then every set.
pub fn list(sys: &System) -> Result<Vec<SetView>, Error> {
    let mut dm = sys.device_mapper_if_any();
    let env = sys.env();
    let s = env.scan()?;
    let mut tidied = false;
    if let Some(d) = dm.as_mut() {
        let mut tools = Tools::system(sys, d)?;
        tidied = !tidy(&env, &mut tools, &s, None)?.is_empty();
    }
    let s = if tidied { env.scan()? } else { s };
    let mut v = views(&s, dm.as_mut().map(|d| d as &mut dyn DeviceMapper))?;
    super::setkernel::attach(&sys.root, &mut v);
    Ok(v)
}

/// `rewind show SET`.
pub fn show(sys: &System, name: &str) -> Result<SetView, Error> {
    list(sys)?
        .into_iter()
        .find(|v| v.name == name)
        .ok_or_else(|| Error::Set(format!("no snapshot set {name} (rewind list shows them)")))
}

/// Removes set `name`'s members with stock `lvremove`; refused while it is being rolled back
/// to.
pub fn delete_set(env: &Env<'_>, tools: &mut Tools<'_>, name: &str) -> Result<usize, Error> {
    let s = env.scan()?;
    tidy(env, tools, &s, None)?;
    let s = env.scan()?;
    let set = all_sets(&s)
        .into_iter()
        .find(|x| x.name == name)
        .ok_or_else(|| Error::Set(format!("no snapshot set {name} (rewind list shows them)")))?;
    if let Some(m) = set.members.iter().find(|m| m.merging) {
        return Err(Error::Set(format!(
            "snapshot set {name} is being rolled back to ({}/{} is flagged or merging): not deleted; rewind cancel {}/{} withdraws a flag that has not started",
            m.vg, m.lv, m.vg, m.lv
        )));
    }
    // A member in use (mounted by `rewind mount`, open by anyone): stock lvremove would
    // refuse it after the set is marked for deletion; refused first, nothing changed.
    let live = live_now(tools.dm)?;
    for m in &set.members {
        let open = s
            .assembly
            .vgs_named(&m.vg)
            .next()
            .and_then(|v| v.model.as_ref().map(|md| (v, md)))
            .and_then(|(v, md)| super::env::device(&live, v, md, &m.lv))
            .filter(|d| d.open_count > 0);
        if let Some(d) = open {
            return Err(Error::Set(format!(
                "snapshot set {name}: {}/{} is in use ({} open; mounted? rewind umount {name}): not deleted",
                m.vg, m.lv, d.name
            )));
        }
    }
    // First every member marked as not usable (one commit per VG): a delete cut short
    // between two `lvremove`s leaves a set the next command tidies, never one offered for
    // rollback with a member missing.
    mark_pending(env, &set)?;
    remove_members(tools, &live, &set)?;
    Ok(set.members.len())
}

/// Tags every member of `set` `rewind_pending`, one commit per VG under its lock.
fn mark_pending(env: &Env<'_>, set: &Set) -> Result<(), Error> {
    let mut by_vg: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for m in set.members.iter().filter(|m| !m.pending) {
        by_vg.entry(m.vg.as_str()).or_default().push(m.lv.as_str());
    }
    let stamp = crate::system::proc::stamp();
    for (vg_name, lvs) in by_vg {
        env.locked(vg_name, |s| {
            let (vg, _) = super::env::usable_vg(s, vg_name)?;
            let add: Vec<(&str, &str)> = lvs.iter().map(|lv| (*lv, sets::PENDING)).collect();
            let description = format!("Write from rewind: delete snapshot set {}.", set.name);
            let tree = crate::lvm::setchange::retag(&vg.tree, &add, &[], &description, &stamp)?;
            s.commit(
                vg,
                &crate::lvm::text::print(&tree, crate::lvm::text::Style::Disk),
                None,
            )
            .map_err(|e| Error::commit(vg_name, "marking the set for deletion", e))?;
            Ok(())
        })?;
    }
    Ok(())
}

/// `rewind delete SET`.
pub fn delete(sys: &System, name: &str) -> Result<usize, Error> {
    let n = {
        let mut dm = sys.device_mapper().map_err(Error::dm_state)?;
        let mut tools = Tools::system(sys, &mut dm)?;
        delete_set(&sys.env(), &mut tools, name)
    };
    super::bootmenu::refresh(sys);
    n
}

/// The sets `rewind prune` deletes, newest first: every set that is not pinned, not being
/// rolled back to nor being made, and neither one of the newest `keep_last` usable sets nor
/// younger than `keep_days` days (0: no age rule). A lost or incomplete set is no rollback
/// point: it goes whatever its age.
pub fn prune_choice(views: &[SetView], now: i64, keep: &crate::config::Prune) -> Vec<String> {
    let mut candidates: Vec<&SetView> = views
        .iter()
        .filter(|v| !v.pinned && !matches!(v.state, SetState::Merging | SetState::Pending))
        .collect();
    candidates.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.name.cmp(&a.name)));
    let mut kept = 0u32;
    let mut out = Vec::new();
    for v in candidates {
        if v.state == SetState::Ok {
            let young = keep.keep_days > 0
                && v.time
                    .is_some_and(|t| now - t < i64::from(keep.keep_days) * 86_400);
            if kept < keep.keep_last || young {
                kept += 1;
                continue;
            }
        }
        out.push(v.name.clone());
    }
    out
}

/// `rewind prune`: deletes what [`prune_choice`] picks (`dry_run`: only says so).
pub fn prune(sys: &System, dry_run: bool) -> Result<Vec<String>, Error> {
    let cfg = sys.config();
    let views = list(sys)?;
    let now = crate::system::proc::stamp().time;
    let doomed = prune_choice(&views, now, &cfg.prune);
    if dry_run {
        return Ok(doomed);
    }
    let deleted = (|| {
        let mut dm = sys.device_mapper().map_err(Error::dm_state)?;
        let mut tools = Tools::system(sys, &mut dm)?;
        let env = sys.env();
        for name in &doomed {
            delete_set(&env, &mut tools, name)?;
        }
        Ok(())
    })();
    super::bootmenu::refresh(sys);
    deleted.map(|()| doomed)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::lvm::assemble::Assembly;
    use crate::plan::dev::PV_DEV;
    use crate::plan::devices::VgLayout;
    use crate::plan::steps::converge;
    use crate::system::dm::FakeDm;
    use crate::system::exec::{execute, live};

    /// `tvg` (tests/fixtures/text/thin.vg) with its thin snapshot `snap2` tagged as the one
    /// member of set `t1`, as the scan finds it.
    pub(crate) fn thin_scan() -> Scan {
        let text = include_str!("../../tests/fixtures/text/thin.vg").replacen(
            "flags = [\"ACTIVATION_SKIP\"]\n",
            "flags = [\"ACTIVATION_SKIP\"]\n\t\t\ttags = [\"rewind_set_t1\"]\n",
            1,
        );
        assert!(text.contains("rewind_set_t1"));
        Scan {
            devices: Vec::new(),
            pvs: Vec::new(),
            pv_device: Vec::new(),
            assembly: Assembly {
                vgs: vec![crate::lvm::testvg::found(text)],
                problems: Vec::new(),
                orphans: Vec::new(),
            },
            skipped: Vec::new(),
        }
    }

    /// The fake with the pool (and root) active as `rewind early` activates them.
    pub(crate) fn pool_active(s: &Scan, status: &str) -> FakeDm {
        let mut dm = FakeDm::new();
        dm.add_disk("/dev/vda", PV_DEV);
        dm.set_pool_status("tvg-pool-tpool", status);
        let pvs = std::collections::BTreeMap::from([("pv0".to_owned(), PV_DEV)]);
        let layout = VgLayout {
            vg: s.assembly.vgs[0].model.as_ref().expect("model"),
            pv_dev: &pvs,
        };
        let devs = layout.activation("root").expect("layout");
        let steps = converge(&devs, &live(&mut dm).expect("live")).expect("steps");
        execute(&mut dm, &steps).expect("execute");
        dm
    }

    fn view(name: &str, days_ago: i64, state: SetState, pinned: bool) -> SetView {
        SetView {
            name: name.into(),
            time: Some(100 * 86_400 - days_ago * 86_400),
            kind: Some(sets::Kind::Auto),
            description: String::new(),
            pinned,
            state,
            members_declared: Some(1),
            boot: crate::flow::setkernel::SetBoot::Newest,
            members: Vec::new(),
        }
    }

    #[test]
    fn prune_keeps_the_newest_the_young_the_pinned_and_the_busy() {
        let views = [
            view("d1", 1, SetState::Ok, false),
            view("d2", 2, SetState::Ok, false),
            view("d3", 3, SetState::Ok, false),
            view("d10", 10, SetState::Ok, false),
            view("d20", 20, SetState::Ok, true),
            view("d30", 30, SetState::Merging, false),
            view("d40", 40, SetState::Ok, false),
            view("lost", 0, SetState::Lost, false),
            view("cut", 0, SetState::Pending, false),
        ];
        let now = 100 * 86_400;
        let keep = |last, days| crate::config::Prune {
            keep_last: last,
            keep_days: days,
        };
        assert_eq!(
            prune_choice(&views, now, &keep(2, 0)),
            ["lost", "d3", "d10", "d40"]
        );
        assert_eq!(
            prune_choice(&views, now, &keep(1, 5)),
            ["lost", "d10", "d40"]
        );
        assert_eq!(
            prune_choice(&views, now, &keep(0, 0)),
            ["lost", "d1", "d2", "d3", "d10", "d40"]
        );
    }
}
