//! `rewind snapshot [--name NAME] [--description TEXT] [--size POLICY] [MEMBER...]`: one set of
//! classic snapshots taken at one instant (docs/SETS.md); entry point [`run`].
//!
//! Order (each step named by the fail point after it, for the crash tests):
//! 1. `rewind snapshot`'s own lock (one set made at a time on this machine), a scan, the
//!    half-made sets tidied, the members resolved and the set planned: every refusal here,
//!    before any change.
//! 2. Stock `lvcreate -an` makes each COW LV, tagged `rewind_pending` (`snapshot-after-lvcreate`).
//! 3. LVM's VG lock on every VG involved, in name order; a scan under them; each COW's first
//!    4 KiB zeroed; one commit per VG turns the COW LVs into snapshots (`snapshot-after-commit`).
//! 4. The devices laid out (`snapshot-before-window`), the window (section 1 of SETS.md).
//! 5. One commit per VG drops `rewind_pending` (`snapshot-after-window` before it): the set is
//!    complete.
//!
//! A failure after 2 removes what was made (the locks released first: `lvremove` takes them);
//! a crash is tidied by the next command (`flow::sets::tidy`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::Error;
use super::env::{Env, System};
use super::sets::{self, Tools};
use crate::lvm::assemble::FoundVg;
use crate::lvm::layout::{Layer, LvRef, LvmUuid, dm_name};
use crate::lvm::model::Vg;
use crate::lvm::setchange::{NewSnapshot, add_snapshots, retag};
use crate::lvm::sets::{Kind, NewSet, PENDING, SizePolicy};
use crate::lvm::text::{self, Style};
use crate::lvm::thinchange::{NewThinSnapshot, PoolCreates, add_thin_snapshots};
use crate::plan::devices::VgLayout;
use crate::plan::set::{self as setplan, Planned, Request as MemberRequest, WindowPlan};
use crate::plan::thinpool;
use crate::system::dm::DeviceMapper;
use crate::system::exec::execute;
use crate::system::lock::VgLock;
use crate::system::mounts::{self, Mount};
use crate::system::scan::Scan;
use crate::system::window;

/// What `rewind snapshot` was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    pub name: Option<String>,
    pub description: String,
    pub size: Option<SizePolicy>,
    /// `VG/LV` or mount points; empty: the configuration's.
    pub members: Vec<String>,
    pub auto: bool,
    pub pin: bool,
    /// Each member's store at least this many extents, by `VG/LV` of the origin.
    pub min_extents: BTreeMap<String, u64>,
}

/// A set taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    pub name: String,
    pub members: Vec<Planned>,
    /// The window, when some member was active (an inactive one needs none).
    pub window: Option<window::Report>,
    /// The kernel its boot menu entry boots (`flow::setkernel`; filled in by [`run`]).
    pub boot: super::setkernel::SetBoot,
}

/// `rewind snapshot` on this system.
pub fn run(sys: &System, req: &Request) -> Result<Taken, Error> {
    let cfg = sys.config();
    // /boot on a logical volume of its own is never a member (refused before any change). The
    // set's kernel copy, when /boot is not in the set: refused before any change when /boot
    // has no room, copied before the set is made (a copy no set records is tidied below).
    let (kernel, mut boot) = {
        let env = sys.env();
        let s = env.scan()?;
        let all = mounts::read(&sys.root)
            .map_err(|e| Error::Set(format!("cannot read the mounts: {e}")))?;
        let members = resolve(&s, &all, &sys.root, &req.members, &cfg.snapshot.members)?;
        super::setkernel::refuse_boot_lv(&members)?;
        let kernel = super::setkernel::prepare(sys, &members)?;
        let boot = super::setkernel::boot_of(&sys.root, &members, kernel.as_ref());
        (kernel, boot)
    };
    if let Some(k) = &kernel {
        super::setkernel::copy(k)?;
    }
    let taken = {
        let mut dm = sys.device_mapper().map_err(Error::dm_state)?;
        let mut tools = Tools::system(sys, &mut dm)?;
        let env = sys.env();
        take(&env, &mut tools, &cfg.snapshot, req)
    };
    if let (Ok(t), Some(k)) = (&taken, &kernel) {
        match super::setkernel::record(sys, &t.name, k) {
            Ok(()) => log::info!(
                "snapshot set {}: its menu entry boots its copy of kernel {}",
                t.name,
                k.record.kernel.version
            ),
            Err(e) => {
                log::warn!(
                    "snapshot set {}: its kernel copy was not recorded ({e}); its menu entry boots the newest kernel",
                    t.name
                );
                boot = super::setkernel::SetBoot::Newest;
            }
        }
    }
    super::bootmenu::refresh(sys);
    taken.map(|t| Taken { boot, ..t })
}

/// The members named (or the configuration's), resolved to LVs: a mount point through the
/// device mounted there, `VG/LV` by name. Of the configuration's mount points, those that are
/// not mounted or not on an LV are left out; a named one is refused.
pub fn resolve(
    s: &Scan,
    mounts: &[Mount],
    root: &Path,
    named: &[String],
    defaults: &[String],
) -> Result<Vec<MemberRequest>, Error> {
    let (specs, explicit) = if named.is_empty() {
        (defaults, false)
    } else {
        (named, true)
    };
    let mut out = Vec::new();
    for spec in specs {
        let refuse = |message: String| Error::Lv {
            lv: spec.clone(),
            message,
        };
        if spec.starts_with('/') {
            let Some(m) = mounts::mounted_at(mounts, spec) else {
                if explicit {
                    return Err(refuse("nothing is mounted there".into()));
                }
                continue;
            };
            let Some(lv) = lv_of_device(s, m.dev) else {
                if explicit {
                    return Err(refuse(format!(
                        "mounted from {} ({}:{}), which is not an lvm logical volume",
                        m.source, m.dev.0, m.dev.1
                    )));
                }
                log::info!("{spec} is not on an lvm logical volume: not in the set");
                continue;
            };
            let used = mounts::used_bytes(&mounts::under(root, spec)).ok();
            out.push(MemberRequest {
                named: spec.clone(),
                vg: lv.vg,
                lv: lv.lv,
                mount: Some(m.mount_point.clone()),
                fs_used: used,
                min_extents: 0,
            });
        } else {
            let r = LvRef::parse(spec).map_err(|e| {
                refuse(format!(
                    "not a mount point (/...) nor a logical volume: {e}"
                ))
            })?;
            // Its filesystem, when it is mounted (for N%USED and the member's record).
            let mount = device_of_lv(s, &r.vg, &r.lv)
                .and_then(|dev| mounts.iter().rev().find(|m| m.dev == dev));
            let used =
                mount.and_then(|m| mounts::used_bytes(&mounts::under(root, &m.mount_point)).ok());
            out.push(MemberRequest {
                named: spec.clone(),
                vg: r.vg,
                lv: r.lv,
                mount: mount.map(|m| m.mount_point.clone()),
                fs_used: used,
                min_extents: 0,
            });
        }
    }
    Ok(out)
}

/// The LV mounted at `point`, when it is one (the hooks' "is the root on LVM").
pub fn lv_mounted_at(s: &Scan, mounts: &[Mount], point: &str) -> Option<LvRef> {
    lv_of_device(s, mounts::mounted_at(mounts, point)?.dev)
}

/// The LV whose device-mapper device is `dev` (a top-level LV, not a layer).
fn lv_of_device(s: &Scan, dev: (u32, u32)) -> Option<LvRef> {
    let d = s
        .devices
        .iter()
        .find(|d| (d.major, d.minor) == dev)?
        .dm
        .as_ref()?;
    let u = LvmUuid::parse(&d.uuid).ok()?;
    if u.layer.is_some() {
        return None;
    }
    for vg in &s.assembly.vgs {
        let Some(model) = &vg.model else { continue };
        if crate::lvm::layout::LvmId::parse(&vg.id).ok()? != u.vg_id {
            continue;
        }
        for lv in &model.lvs {
            if crate::lvm::layout::LvmId::parse(&lv.id).ok().as_ref() == Some(&u.lv_id) {
                return Some(LvRef {
                    vg: vg.name.clone(),
                    lv: lv.name.clone(),
                });
            }
        }
    }
    None
}

/// The device number of `vg/lv`'s active device, by its dm uuid.
fn device_of_lv(s: &Scan, vg: &str, lv: &str) -> Option<(u32, u32)> {
    let found = s.assembly.vgs_named(vg).next()?;
    let model = found.model.as_ref()?;
    let vg_id = crate::lvm::layout::LvmId::parse(&found.id).ok()?;
    let lv_id = crate::lvm::layout::LvmId::parse(&model.lv(lv)?.id).ok()?;
    let uuid = crate::lvm::layout::dm_uuid(&vg_id, &lv_id, None);
    s.devices
        .iter()
        .find(|d| d.dm.as_ref().is_some_and(|i| i.uuid == uuid))
        .map(|d| (d.major, d.minor))
}

/// The default name: the UTC time, `YYYYMMDD-HHMMSS`.
pub fn default_name(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// The usable VGs of a scan, by name.
fn usable(s: &Scan) -> BTreeMap<String, &Vg> {
    s.assembly
        .vgs
        .iter()
        .filter(|v| v.is_usable())
        .filter_map(|v| v.model.as_ref().map(|m| (v.name.clone(), m)))
        .collect()
}

/// Takes a set with `tools` (the host tests' fakes, or the system's).
pub fn take(
    env: &Env<'_>,
    tools: &mut Tools<'_>,
    settings: &crate::config::Snapshot,
    req: &Request,
) -> Result<Taken, Error> {
    let lock = sets::SetsLock::exclusive(&tools.sets_lock)?;
    let s = env.scan()?;
    if !sets::tidy(env, tools, &s, Some(&lock))?.is_empty() {
        return take_scanned(env, tools, settings, req, &env.scan()?);
    }
    take_scanned(env, tools, settings, req, &s)
}

fn take_scanned(
    env: &Env<'_>,
    tools: &mut Tools<'_>,
    settings: &crate::config::Snapshot,
    req: &Request,
    s: &Scan,
) -> Result<Taken, Error> {
    let stamp = crate::system::proc::stamp();
    let name = req.name.clone().unwrap_or_else(|| default_name(stamp.time));
    let mut requests = resolve(s, &tools.mounts, &env.root, &req.members, &settings.members)?;
    for r in &mut requests {
        r.min_extents = req
            .min_extents
            .get(&format!("{}/{}", r.vg, r.lv))
            .copied()
            .unwrap_or(0);
    }
    let vgs = usable(s);
    // A member in a VG that cannot be used: say why.
    for r in &requests {
        if !vgs.contains_key(&r.vg) {
            super::env::usable_vg(s, &r.vg)?;
        }
    }
    let existing = crate::lvm::sets::sets(vgs.values().copied());
    let policy = req.size.unwrap_or_else(|| settings.size_policy());
    let mut planned = setplan::plan(&vgs, &existing, &name, &requests, policy)
        .map_err(|e| Error::Set(e.to_string()))?;
    planned.sort_by(|a, b| a.vg.cmp(&b.vg));
    let new_set = NewSet {
        name: name.clone(),
        time: stamp.time,
        kind: if req.auto { Kind::Auto } else { Kind::Manual },
        description: req.description.clone(),
        members: planned.len(),
        pinned: req.pin,
    };

    // Thin members: their origins and pools active, each pool with room (before any change).
    check_thin_members(tools.dm, s, &planned, settings.thin_min_free_percent)?;

    // 2. Stock LVM allocates the stores (a thin member has none).
    let mut made = Vec::new();
    for p in planned.iter().filter(|p| p.thin_pool.is_none()) {
        let tags = new_set.tags(p.mount.as_deref()).map_err(Error::Set)?;
        if let Err(e) = tools.lvm.create_inactive(&p.vg, &p.cow, p.extents, &tags) {
            let _ = sets::remove_lvs(tools, &made);
            return Err(Error::Set(format!(
                "{}: lvm could not allocate the snapshot store {}: {e}; nothing kept",
                p.named, p.cow
            )));
        }
        made.push(format!("{}/{}", p.vg, p.cow));
        log::info!(
            "snapshot set {name}: lvm made the store {}/{} (pending)",
            p.vg,
            p.cow
        );
        tools.point("snapshot-after-lvcreate")?;
    }

    // 3-5 under LVM's VG locks; on failure, undone after the locks are released.
    match locked_part(env, tools, settings, &new_set, &planned) {
        Ok(report) => Ok(Taken {
            name,
            members: planned,
            window: report,
            boot: super::setkernel::SetBoot::Newest,
        }),
        Err(e) if tools.stopped => Err(e),
        Err(e) => {
            log::error!("snapshot set {name}: {e}; removing what was made");
            let again = env.scan()?;
            if let Err(t) = sets::tidy_set(env, tools, &again, &name) {
                log::error!("snapshot set {name}: could not remove it: {t}");
            }
            Err(e)
        }
    }
}

/// The tpool device of a thin pool (`VG-POOL-tpool`), where its messages go.
pub(super) fn tpool_name(vg: &str, pool: &str) -> Result<String, Error> {
    dm_name(vg, pool, Some(&Layer::Other("tpool".into()))).map_err(|e| Error::Set(e.to_string()))
}

/// The kernel's status of a pool's `-tpool`, `Ok(None)` when it reports `Fail`.
pub(super) fn pool_status(
    dm: &mut dyn DeviceMapper,
    device: &str,
) -> Result<Option<thinpool::ThinPoolStatus>, Error> {
    let lines = dm.status(device).map_err(Error::dm_state)?;
    let line = lines
        .first()
        .filter(|l| l.target_type == "thin-pool")
        .ok_or_else(|| Error::Set(format!("{device}: no thin-pool status")))?;
    thinpool::parse_status(&line.params).map_err(|e| Error::Set(format!("{device}: {e}")))
}

/// Every thin member's origin active (its snapshot is taken while it is suspended; an
/// inactive thin LV is left to `lvcreate -s`, which activates the pool to message it), and
/// each pool active, usable (its kernel transaction id in step with the metadata's) and with
/// at least `min_free` percent of its data and metadata free. A refusal names the member.
fn check_thin_members(
    dm: &mut dyn DeviceMapper,
    s: &Scan,
    planned: &[Planned],
    min_free: u8,
) -> Result<(), Error> {
    if planned.iter().all(|p| p.thin_pool.is_none()) {
        return Ok(());
    }
    let live = super::env::live_now(dm)?;
    for p in planned {
        let Some(pool) = &p.thin_pool else { continue };
        let refuse = |message: String| Error::Lv {
            lv: p.named.clone(),
            message,
        };
        let origin_dev = dm_name(&p.vg, &p.origin, None).map_err(|e| Error::Set(e.to_string()))?;
        if !live
            .iter()
            .any(|l| l.name == origin_dev && l.table.is_some())
        {
            return Err(refuse(format!(
                "the thin volume {}/{} is not active: rewind takes a thin snapshot of an active one only (lvcreate -s takes it inactive)",
                p.vg, p.origin
            )));
        }
        let tpool = tpool_name(&p.vg, pool)?;
        if !live.iter().any(|l| l.name == tpool && l.table.is_some()) {
            return Err(refuse(format!(
                "its thin pool {}/{pool} is not active ({tpool})",
                p.vg
            )));
        }
        let (_, model) = super::env::usable_vg(s, &p.vg)?;
        let tid = model
            .lv(pool)
            .and_then(|l| {
                l.segments.iter().find_map(|seg| match seg.kind {
                    crate::lvm::model::SegmentKind::ThinPool { transaction_id, .. } => {
                        Some(transaction_id)
                    }
                    _ => None,
                })
            })
            .ok_or_else(|| refuse(format!("{}/{pool} is not a thin pool", p.vg)))?;
        let status = pool_status(dm, &tpool)?;
        thinpool::check_space(status.as_ref(), tid, min_free).map_err(|e| {
            refuse(format!(
                "thin pool {}/{pool}: {e}; no snapshot set taken, nothing changed",
                p.vg
            ))
        })?;
    }
    Ok(())
}

fn locked_part(
    env: &Env<'_>,
    tools: &mut Tools<'_>,
    settings: &crate::config::Snapshot,
    new_set: &NewSet,
    planned: &[Planned],
) -> Result<Option<window::Report>, Error> {
    let name = new_set.name.as_str();
    let vg_names: std::collections::BTreeSet<&str> =
        planned.iter().map(|p| p.vg.as_str()).collect();
    let mut _locks = Vec::new();
    for vg in &vg_names {
        _locks.push(VgLock::exclusive(&env.lock_dir, vg, env.lock_timeout)?);
    }
    let s = env.scan()?;
    let stamp = crate::system::proc::stamp();

    // Every store is there as asked, nothing changed under the members meanwhile; the thin
    // pools checked again under the locks.
    check_thin_members(tools.dm, &s, planned, settings.thin_min_free_percent)?;
    for p in planned {
        let (vg, model) = super::env::usable_vg(&s, &p.vg)?;
        if p.thin_pool.is_some() {
            if model.lv(&p.cow).is_some() {
                return Err(Error::Set(format!(
                    "{}/{}: a logical volume of that name appeared meanwhile",
                    p.vg, p.cow
                )));
            }
            continue;
        }
        let cow = model.lv(&p.cow).ok_or_else(|| {
            Error::Set(format!(
                "{}/{}: the snapshot store lvm made is gone; nothing kept",
                p.vg, p.cow
            ))
        })?;
        if !cow.tags.iter().any(|t| t == PENDING) || !cow.is_plain() {
            return Err(Error::Set(format!(
                "{}/{}: the snapshot store is not as rewind asked lvm to make it",
                p.vg, p.cow
            )));
        }
        if let Some(m) = model.merging_snapshot_of(&p.origin) {
            return Err(Error::Set(format!(
                "{}/{}: started merging {} meanwhile",
                p.vg, p.origin, m.cow
            )));
        }
        // A new, empty store: the kernel starts one when the header is zero (lvcreate wipes
        // the first 4 KiB the same way).
        s.zero_lv_head(vg, &p.cow, 4096).map_err(|e| {
            Error::Set(format!(
                "{}/{}: cannot zero the store's header: {e}",
                p.vg, p.cow
            ))
        })?;
    }

    // One commit per VG: the stores become snapshots, the thin snapshots are added with
    // their pools' transaction ids raised (still pending).
    let mut pool_creates: Vec<(String, PoolCreates)> = Vec::new();
    for vg_name in &vg_names {
        let (vg, _) = super::env::usable_vg(&s, vg_name)?;
        let news: Vec<NewSnapshot> = planned
            .iter()
            .filter(|p| p.vg == *vg_name && p.thin_pool.is_none())
            .map(|p| NewSnapshot {
                cow: p.cow.clone(),
                origin: p.origin.clone(),
                chunk_size: p.chunk_sectors,
                internal_id: crate::system::random::new_lvm_id(),
            })
            .collect();
        let mut thin_news = Vec::new();
        for p in planned
            .iter()
            .filter(|p| p.vg == *vg_name && p.thin_pool.is_some())
        {
            thin_news.push(NewThinSnapshot {
                name: p.cow.clone(),
                id: crate::system::random::new_lvm_id(),
                origin: p.origin.clone(),
                tags: new_set.tags(p.mount.as_deref()).map_err(Error::Set)?,
            });
        }
        let description = format!("Write from rewind: snapshot set {name}.");
        let mut tree = if news.is_empty() {
            vg.tree.clone()
        } else {
            add_snapshots(&vg.tree, &news, &description, &stamp)?
        };
        if !thin_news.is_empty() {
            let (t, creates) = add_thin_snapshots(&tree, &thin_news, &description, &stamp)?;
            tree = t;
            for c in creates {
                pool_creates.push((vg_name.to_string(), c));
            }
        }
        s.commit(vg, &text::print(&tree, Style::Disk), None)
            .map_err(|e| Error::commit(vg_name, "adding the snapshot set's snapshots", e))?;
        log::info!("snapshot set {name}: {vg_name}'s stores are snapshots (pending)");
        tools.point("snapshot-after-commit")?;
    }

    // The devices, and the window.
    let s = env.scan()?;
    let live = super::env::live_now(tools.dm)?;
    let mut wp = WindowPlan {
        before: Vec::new(),
        origins: Vec::new(),
        snapshots: Vec::new(),
    };
    let mut links = Vec::new();
    for vg_name in &vg_names {
        let (vg, model) = super::env::usable_vg(&s, vg_name)?;
        let pv_dev = s.pv_numbers(vg);
        let layout = VgLayout {
            vg: model,
            pv_dev: &pv_dev,
        };
        for p in planned.iter().filter(|p| p.vg == *vg_name) {
            let origin_dev =
                dm_name(&p.vg, &p.origin, None).map_err(|e| Error::Set(e.to_string()))?;
            if !live.iter().any(|l| l.name == origin_dev) {
                log::info!(
                    "{}/{}: not active, snapshot in the metadata only",
                    p.vg,
                    p.origin
                );
                continue;
            }
            if p.thin_pool.is_some() {
                // Suspended for the pool's create_snap, nothing loaded (the thin snapshot is
                // not activated: ACTIVATION_SKIP, as lvcreate -s leaves it).
                wp.origins.push(origin_dev);
                continue;
            }
            let snap_dev = dm_name(&p.vg, &p.cow, None).map_err(|e| Error::Set(e.to_string()))?;
            let cow_dev =
                dm_name(&p.vg, &p.cow, Some(&Layer::Cow)).map_err(|e| Error::Set(e.to_string()))?;
            let wanted = layout.activation(&p.origin)?;
            setplan::window_plan(&wanted, &live, std::slice::from_ref(&snap_dev), &mut wp)
                .map_err(|e| Error::Set(format!("{}/{}: {e}", p.vg, p.origin)))?;
            links.push((snap_dev, Some((p.vg.clone(), p.cow.clone()))));
            links.push((cow_dev, None));
            let real = dm_name(&p.vg, &p.origin, Some(&Layer::Real))
                .map_err(|e| Error::Set(e.to_string()))?;
            links.push((real, None));
        }
    }
    // An origin with several new members (never: one per origin) is suspended once.
    wp.origins.dedup();
    let mut messages = Vec::new();
    for (vg_name, c) in &pool_creates {
        let tpool = tpool_name(vg_name, &c.pool)?;
        for m in c.messages() {
            messages.push((tpool.clone(), m));
        }
    }
    execute(tools.dm, &wp.before)?;
    tools.point("snapshot-before-window")?;

    let mut report = None;
    if !wp.origins.is_empty() {
        for p in planned {
            if let Some(m) = &p.mount
                && let Err(e) = mounts::sync_fs(&mounts::under(&env.root, m))
            {
                log::warn!("{m}: syncfs: {e}");
            }
        }
        let wreq = window::Request {
            origins: wp.origins.clone(),
            snapshots: wp.snapshots.clone(),
            messages,
            deadline: Duration::from_millis(settings.window_timeout_ms),
            parallel: settings.parallel,
            die_inside: crate::system::failpoint::armed("snapshot-in-window"),
        };
        let r = tools
            .window
            .take(tools.dm, &wreq)
            .map_err(|e| Error::Set(format!("snapshot set {name}: {e}")))?;
        log::info!(
            "snapshot set {name}: {} origin(s) suspended for {} ms",
            wp.origins.len(),
            r.window.as_millis()
        );
        report = Some(r);
        sets::make_nodes(tools, &links)?;
    }
    // Each pool took its messages: its transaction id read back, as libdm reads it.
    for (vg_name, c) in &pool_creates {
        let tpool = tpool_name(vg_name, &c.pool)?;
        let got = pool_status(tools.dm, &tpool)?.map(|st| st.transaction_id);
        if got != Some(c.to) {
            return Err(Error::Set(format!(
                "snapshot set {name}: thin pool {vg_name}/{} reports transaction id {} after the window, {} expected",
                c.pool,
                got.map_or_else(|| "none (failed)".to_owned(), |t| t.to_string()),
                c.to
            )));
        }
    }
    tools.point("snapshot-after-window")?;

    // Complete: one commit per VG drops the pending tag.
    let s = env.scan()?;
    for vg_name in &vg_names {
        let (vg, _): (&FoundVg, &Vg) = super::env::usable_vg(&s, vg_name)?;
        let remove: Vec<(&str, &str)> = planned
            .iter()
            .filter(|p| p.vg == *vg_name)
            .map(|p| (p.cow.as_str(), PENDING))
            .collect();
        let description = format!("Write from rewind: snapshot set {name} complete.");
        let tree = retag(&vg.tree, &[], &remove, &description, &stamp)?;
        s.commit(vg, &text::print(&tree, Style::Disk), None)
            .map_err(|e| Error::commit(vg_name, "completing the snapshot set", e))?;
        log::info!("snapshot set {name}: {vg_name}'s members complete");
        tools.point("snapshot-after-complete")?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_are_the_utc_time() {
        assert_eq!(default_name(0), "19700101-000000");
        assert_eq!(default_name(1_764_862_212), "20251204-153012");
        assert_eq!(default_name(951_825_600), "20000229-120000");
    }
}
