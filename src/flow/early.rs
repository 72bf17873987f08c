//! The boot flow `rewind early` runs in the initramfs; entry point [`run`]: scan, decide,
//! commit the merge flags (invariant 1: before any table), lay out the devices LVM would
//! create, converge with what is live, execute. `flow::plan` runs the same steps and changes
//! nothing.

use crate::config::{self, Config};
use crate::exit::Verdict;
use crate::lvm::assemble::FoundVg;
use crate::lvm::change::{Stamp, mark_merging};
use crate::lvm::layout::LvRef;
use crate::lvm::model::{SegmentKind, Snapshot, Vg};
use crate::lvm::text::{self, Style};
use crate::plan::cmdline::Cmdline;
use crate::plan::decide::{Activate, Decision, Hold, Level, Note, Reason, decide};
use crate::plan::devices::{DeviceSpec, Role, VgLayout};
use crate::plan::steps::{Live, Step, converge};
use crate::plan::thincheck::{self, ThinCheck};
use crate::plan::thinpool;
use crate::system::blockdev::BlockDevice;
use crate::system::devsel::Selected;
use crate::system::dm::{DeviceMapper, RealDm};
use crate::system::failpoint;
use crate::system::scan::{Scan, Selector, scan_selected};
use crate::system::thincheck::{PoolCheck, ThinCheckRunner};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long one wait for udev may take before rewind gives up on it (never unbounded).
const UDEV_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything `early` and `plan` take from outside; each is injectable.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub root: PathBuf,
    pub cmdline: Cmdline,
    pub config: Config,
}

impl Inputs {
    /// The inputs under `root`: the kernel command line (`ROOT/proc/cmdline` unless given)
    /// and a configuration the caller has read: the initramfs commands the boot JSON
    /// (`config::BOOT_PATH`, `cli::early::boot_inputs`), `rewind plan` the booted system's
    /// `rewind.toml` (`cli::args::CommonArgs::inputs`).
    pub fn read(root: &Path, cmdline: Option<&str>, config: Config) -> Inputs {
        let text = match cmdline {
            Some(c) => c.to_owned(),
            None => crate::system::proc::cmdline(root),
        };
        Inputs {
            root: root.to_path_buf(),
            cmdline: Cmdline::parse(&text),
            config,
        }
    }

    /// The log level of this boot: debug with `rd.rewind.debug`, else the configuration's.
    pub fn log_level(&self) -> log::LevelFilter {
        if self.cmdline.debug {
            return log::LevelFilter::Debug;
        }
        match self.config.log.level {
            config::Level::Error => log::LevelFilter::Error,
            config::Level::Warn => log::LevelFilter::Warn,
            config::Level::Info => log::LevelFilter::Info,
            config::Level::Debug => log::LevelFilter::Debug,
            config::Level::Trace => log::LevelFilter::Trace,
        }
    }
}

/// The scan and the decision.
#[derive(Debug)]
pub struct Prepared {
    pub scan: Scan,
    pub decision: Decision,
}

/// One volume's devices and the steps that make them live.
#[derive(Debug, Serialize)]
pub struct VolumePlan {
    pub vg: String,
    pub lv: String,
    pub reason: Reason,
    pub devices: Vec<DeviceSpec>,
    pub steps: Vec<Step>,
    /// For a thin LV: the pool to check (as LVM does) before the thin LV's own device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thin_pool: Option<PoolGate>,
}

/// A thin pool's `-tpool` device and the transaction id the VG metadata records for it.
#[derive(Debug, Clone, Serialize)]
pub struct PoolGate {
    pub pool: String,
    pub device: String,
    /// The pool's `_tmeta` device, which `thin_check` reads before `-tpool` is loaded.
    pub metadata: String,
    pub transaction_id: u64,
}

/// Why a volume was not set up.
#[derive(Debug, Clone, PartialEq, Eq)]
enum VolumeError {
    /// A step failed; the next run takes it from there.
    Setup(String),
    /// Refused on purpose (its thin pool's metadata failed the check, or the pool is not in
    /// a state to use); nothing more was done.
    Refused(String),
}

/// What was (or would be) done.
#[derive(Debug, Default, Serialize)]
pub struct Outcome {
    pub flags_committed: Vec<String>,
    /// Every volume planned (for `rewind early`: whether or not its set-up went through).
    pub volumes: Vec<VolumePlan>,
    /// `rewind early`: how many of `volumes` were set up (the others stopped or were refused,
    /// with an error in `notes`). Not in `rewind plan --json`: plan sets nothing up.
    #[serde(skip)]
    pub set_up: usize,
    pub notes: Vec<Note>,
}

impl Outcome {
    fn note(&mut self, level: Level, message: String) {
        super::note(&mut self.notes, level, message);
    }

    /// Failed when something that was asked for could not be done safely.
    pub fn verdict(&self) -> Verdict {
        super::verdict_of(&self.notes)
    }

    /// 1 when something that was asked for could not be done safely, else 0.
    pub fn exit_code(&self) -> u8 {
        self.verdict().code()
    }
}

/// Decides, from a finished scan. Nothing is written.
pub fn prepare(inputs: &Inputs, scan: Scan) -> Prepared {
    let mut activate: Vec<LvRef> = inputs.cmdline.activate.clone();
    for lv in inputs.config.activate_lvs() {
        if !activate.contains(&lv) {
            activate.push(lv);
        }
    }
    let decision = {
        let mut reader = |vg: &FoundVg, snap: &Snapshot| scan.read_cow(vg, snap);
        decide(&scan.assembly, &inputs.cmdline, &activate, &mut reader)
    };
    Prepared { scan, decision }
}

/// Scans the devices LVM itself would use (`lvm::devsel`), narrowed by `also`. When the
/// selection cannot be made (an lvm.conf or filter rewind cannot read), no device is read.
pub fn scan_devices(inputs: &Inputs, also: &Selector<'_>) -> Result<Scan, super::Error> {
    scan_with_thin_check(inputs, also).map(|(scan, _)| scan)
}

/// [`scan_devices`], and the thin pool check LVM's configuration sets.
fn scan_with_thin_check(
    inputs: &Inputs,
    also: &Selector<'_>,
) -> Result<(Scan, ThinCheck), super::Error> {
    let selection =
        Selected::load(&inputs.root, &inputs.config.scan).map_err(super::Error::selection)?;
    Ok((
        scan_selected(&selection, also),
        selection.thin_check.clone(),
    ))
}

/// Commits every flag (grouped per VG: one commit with all of a VG's flags). With `write`
/// false the new metadata is only made in memory (for `rewind plan`). A VG whose commit
/// fails gets its merge origins held: a half-done commit may already carry the flag, and a
/// flagged origin is only ever activated through its merge (invariant 2).
pub fn commit_flags(prep: &mut Prepared, out: &mut Outcome, write: bool) {
    if prep.decision.flags.is_empty() {
        return;
    }
    let stamp = crate::system::proc::stamp();
    let mut by_vg: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in &prep.decision.flags {
        by_vg
            .entry(f.vg_id.clone())
            .or_default()
            .push(f.snapshot.clone());
    }
    for (vg_id, snaps) in by_vg {
        let Some(vi) = prep.scan.assembly.vgs.iter().position(|v| v.id == vg_id) else {
            continue;
        };
        let result = flag_vg(&mut prep.scan, vi, &snaps, &stamp, write);
        let name = prep.scan.assembly.vgs[vi].name.clone();
        match result {
            Ok(()) => {
                for s in &snaps {
                    let msg = if write {
                        format!("{name}/{s}: merge flag committed to every metadata area")
                    } else {
                        format!("{name}/{s}: would commit the merge flag")
                    };
                    out.note(Level::Info, msg);
                    out.flags_committed.push(format!("{name}/{s}"));
                }
            }
            Err(e) => {
                out.note(
                    Level::Error,
                    format!("{name}: committing the merge flag failed, no merge started: {e}"),
                );
                hold_flagged(&mut prep.decision, &vg_id, &e);
            }
        }
    }
    if write && !out.flags_committed.is_empty() {
        failpoint::hit("early-after-commit");
    }
}

/// Flags `snaps` in VG `vi` of the scan and, when `write`, commits the new metadata to every
/// metadata area of its PVs; the scan then shows the new metadata.
fn flag_vg(
    scan: &mut Scan,
    vi: usize,
    snaps: &[String],
    stamp: &Stamp,
    write: bool,
) -> Result<(), String> {
    let vg = &scan.assembly.vgs[vi];
    let mut tree = vg.tree.clone();
    for s in snaps {
        let thin = Vg::from_tree(&tree)
            .ok()
            .and_then(|m| m.lv(s).map(|l| l.thin().is_some()))
            .unwrap_or(false);
        tree = if thin {
            crate::lvm::thinchange::mark_thin_merging(&tree, s, stamp)
        } else {
            mark_merging(&tree, s, stamp)
        }
        .map_err(|e| e.to_string())?;
    }
    let new_text = text::print(&tree, Style::Disk);
    let model = Vg::from_tree(&tree).map_err(|e| e.to_string())?;
    if write {
        let pvs = scan
            .commit(vg, &new_text, None)
            .map_err(|e| e.to_string())?;
        let members: Vec<Option<usize>> = vg.members.iter().map(|m| m.scan).collect();
        for (pv, i) in pvs.into_iter().zip(members) {
            if let Some(i) = i {
                scan.pvs[i] = pv;
            }
        }
    }
    let vg = &mut scan.assembly.vgs[vi];
    vg.seqno = model.seqno;
    vg.text = text::raw_bytes(&new_text);
    vg.tree = tree;
    vg.model = Some(model);
    Ok(())
}

/// Holds the origins of every flag in VG `vg_id` (their commit failed): not activated.
fn hold_flagged(decision: &mut Decision, vg_id: &str, why: &str) {
    let flags: Vec<_> = decision
        .flags
        .iter()
        .filter(|f| f.vg_id == vg_id)
        .cloned()
        .collect();
    for f in flags {
        decision.hold.push(Hold {
            vg: f.vg,
            vg_id: f.vg_id,
            origin: f.origin,
            why: why.to_owned(),
        });
    }
    let hold = decision.hold.clone();
    decision
        .activate
        .retain(|a| !hold.iter().any(|h| h.vg_id == a.vg_id && h.origin == a.lv));
}

/// A volume that could not be laid out: an error when it is a merge (its origin stays
/// inactive), a warning otherwise.
fn not_activated(out: &mut Outcome, a: &Activate, why: &str) {
    let level = if a.reason == Reason::Merge {
        Level::Error
    } else {
        Level::Warn
    };
    out.note(level, format!("{}/{} not activated: {why}", a.vg, a.lv));
}

/// Lays out and converges every activation against `live`.
pub fn plan_devices(prep: &Prepared, live: &[Live], out: &mut Outcome) {
    for a in &prep.decision.activate {
        match plan_one(prep, a, live) {
            Ok(v) => out.volumes.push(v),
            Err(e) => {
                not_activated(out, a, &e);
            }
        }
    }
}

fn plan_one(prep: &Prepared, a: &Activate, live: &[Live]) -> Result<VolumePlan, String> {
    let vg = prep
        .scan
        .assembly
        .vgs
        .iter()
        .find(|v| v.id == a.vg_id)
        .ok_or("volume group gone")?;
    let model = vg.model.as_ref().ok_or("no usable metadata")?;
    let pvs = prep.scan.pv_numbers(vg);
    let layout = VgLayout {
        vg: model,
        pv_dev: &pvs,
    };
    let devices = layout.activation(&a.lv).map_err(|e| e.to_string())?;
    let steps = converge(&devices, live).map_err(|e| e.to_string())?;
    let thin_pool = pool_gate(model, &a.lv, &devices);
    Ok(VolumePlan {
        vg: a.vg.clone(),
        lv: a.lv.clone(),
        reason: a.reason,
        devices,
        steps,
        thin_pool,
    })
}

fn pool_gate(model: &Vg, lv: &str, devices: &[DeviceSpec]) -> Option<PoolGate> {
    let pool = model.lv(lv)?.thin()?.pool;
    let transaction_id = model
        .lv(pool)?
        .segments
        .iter()
        .find_map(|s| match &s.kind {
            SegmentKind::ThinPool { transaction_id, .. } => Some(*transaction_id),
            _ => None,
        })?;
    let device = devices
        .iter()
        .find(|d| d.role == Role::ThinPool)?
        .name
        .clone();
    let metadata = devices
        .iter()
        .find(|d| d.role == Role::PoolPart && d.uuid.ends_with("-tmeta"))?
        .name
        .clone();
    Some(PoolGate {
        pool: pool.to_owned(),
        device,
        metadata,
        transaction_id,
    })
}

fn step_name(step: &Step) -> &str {
    match step {
        Step::Create { name, .. }
        | Step::Load { name, .. }
        | Step::Suspend { name }
        | Step::Resume { name, .. } => name,
    }
}

/// Runs `plan`'s steps; for a thin LV: the pool's parts, LVM's `thin_check` of its
/// metadata when its `-tpool` is not live yet (a failure removes the parts this run created
/// and stops there, as LVM's `_pool_callback` and `_dm_tree_revert_activated` do), the
/// `-tpool`, LVM's check of the live pool (its transaction id against the metadata's, its
/// health), then the thin LV only if all passed.
fn execute_volume(
    root: &Path,
    dm: &mut dyn DeviceMapper,
    check: &mut dyn PoolCheck,
    plan: &VolumePlan,
) -> Result<(), VolumeError> {
    let setup = |e: crate::system::exec::ExecError| VolumeError::Setup(e.to_string());
    let dm_err = |e: crate::system::dm::DmError| VolumeError::Setup(e.to_string());
    let Some(gate) = &plan.thin_pool else {
        return crate::system::exec::execute(dm, &plan.steps).map_err(setup);
    };
    let role_of = |name: &str| plan.devices.iter().find(|d| d.name == name).map(|d| d.role);
    let (parts, rest): (Vec<Step>, Vec<Step>) = plan
        .steps
        .iter()
        .cloned()
        .partition(|s| role_of(step_name(s)) == Some(Role::PoolPart));
    let top = plan.devices.last().map(|d| d.name.as_str());
    let (own, pool): (Vec<Step>, Vec<Step>) =
        rest.into_iter().partition(|s| Some(step_name(s)) == top);
    let pool_was_live = dm.info(&gate.device).map_err(dm_err)?.is_some();
    crate::system::exec::execute(dm, &parts).map_err(setup)?;
    if !pool_was_live {
        check_pool_metadata(root, dm, check, plan, gate, &parts)?;
    }
    crate::system::exec::execute(dm, &pool).map_err(setup)?;
    let status = dm.status(&gate.device).map_err(dm_err)?;
    let line = status
        .first()
        .filter(|l| l.target_type == "thin-pool")
        .ok_or_else(|| VolumeError::Setup(format!("{} shows no thin-pool status", gate.device)))?;
    let parsed =
        thinpool::parse_status(&line.params).map_err(|e| VolumeError::Setup(e.to_string()))?;
    thinpool::check(parsed.as_ref(), gate.transaction_id).map_err(|e| {
        VolumeError::Refused(format!(
            "thin pool {}: {e}; the thin volume is not activated (the pool's own devices stay as they are)",
            gate.pool
        ))
    })?;
    crate::system::exec::execute(dm, &own).map_err(setup)
}

/// `thin_check` on the pool's `_tmeta`, live now. On a failure, the parts `parts` created are
/// removed (the newest first) and the volume refused.
fn check_pool_metadata(
    root: &Path,
    dm: &mut dyn DeviceMapper,
    check: &mut dyn PoolCheck,
    plan: &VolumePlan,
    gate: &PoolGate,
    parts: &[Step],
) -> Result<(), VolumeError> {
    let state = dm
        .info(&gate.metadata)
        .map_err(|e| VolumeError::Setup(e.to_string()))?
        .ok_or_else(|| {
            VolumeError::Setup(format!("{} is not there after its setup", gate.metadata))
        })?;
    let why = match check.check_metadata(&gate.metadata, state.dev) {
        thincheck::Verdict::Passed => {
            log::info!(
                "thin pool {}/{}: metadata checked by thin_check: fine",
                plan.vg,
                gate.pool
            );
            return Ok(());
        }
        thincheck::Verdict::Skipped(why) => {
            log::info!("thin pool {}/{}: {why}", plan.vg, gate.pool);
            return Ok(());
        }
        thincheck::Verdict::NeedsRepair(why) => why,
    };
    let mut left = Vec::new();
    for step in parts.iter().rev() {
        let Step::Create { name, .. } = step else {
            continue;
        };
        let rules = plan
            .devices
            .iter()
            .find(|d| &d.name == name)
            .map_or(crate::plan::dev::UdevRules::DmOnly, |d| d.rules);
        match dm.remove(name, rules) {
            Ok(()) => crate::system::nodes::remove(root, name, &plan.vg),
            Err(e) => left.push(format!("{name} ({e})")),
        }
    }
    let removed = if left.is_empty() {
        "its metadata and data devices set up for the check were removed".to_owned()
    } else {
        format!("could not remove {}", left.join(", "))
    };
    Err(VolumeError::Refused(format!(
        "thin pool {vg}/{pool}: metadata check failed: {why}. The pool needs repair: it and its thin volumes are not activated ({removed}); nothing was written to it. Repair it with lvm2 (lvconvert --repair {vg}/{pool}) from a rescue system",
        vg = plan.vg,
        pool = gate.pool
    )))
}

fn all(_: &BlockDevice) -> Result<(), String> {
    Ok(())
}

/// `rewind early`: loads device-mapper's modules when needed, opens it and sets up this boot
/// ([`boot`]); what it did and why is in the outcome's notes (logged as they are made).
pub fn run(inputs: &Inputs) -> Outcome {
    log::debug!("rewind early {}: started", env!("CARGO_PKG_VERSION"));
    if inputs.cmdline.disabled {
        log::info!("rd.rewind=0: doing nothing");
        return Outcome::default();
    }
    crate::system::modules::load_device_mapper(&inputs.root);
    let mut dm = match RealDm::new(UDEV_TIMEOUT) {
        Ok(dm) => dm,
        Err(e) => {
            let mut out = Outcome::default();
            out.note(
                Level::Error,
                format!("device-mapper is not available ({e}); nothing done"),
            );
            return out;
        }
    };
    log::debug!("device-mapper opened");
    let out = boot(inputs, &all, &mut dm);
    log::info!("{}", summary(&out));
    out
}

/// `rewind early`'s last line: what was committed and set up, and what was not.
fn summary(out: &Outcome) -> String {
    let not = out.volumes.len().saturating_sub(out.set_up);
    format!(
        "done: {} flag(s) committed, {} volume(s) set up{}{}",
        out.flags_committed.len(),
        out.set_up,
        if not > 0 {
            format!(", {not} not")
        } else {
            String::new()
        },
        if out.verdict() == Verdict::Ok {
            ""
        } else {
            "; see the errors above"
        }
    )
}

/// The whole of `rewind early` on `dm`: every refusal before the commit leaves the disks as
/// they were; every step after it can run again (invariant 8).
pub fn boot(inputs: &Inputs, select: &Selector<'_>, dm: &mut dyn DeviceMapper) -> Outcome {
    let mut out = Outcome::default();
    let mut checker = ThinCheckRunner {
        root: inputs.root.clone(),
        check: ThinCheck::default(),
    };
    let mut prep = match scan_with_thin_check(inputs, select) {
        Ok((scan, check)) => {
            checker.check = check;
            log::debug!(
                "scanned: {} pv(s), {} vg(s), {} device(s) skipped",
                scan.pvs.len(),
                scan.assembly.vgs.len(),
                scan.skipped.len()
            );
            let prep = prepare(inputs, scan);
            log::debug!(
                "decided: {} flag(s) to commit, {} volume(s) to activate, {} held",
                prep.decision.flags.len(),
                prep.decision.activate.len(),
                prep.decision.hold.len()
            );
            prep
        }
        Err(e) => {
            out.note(Level::Warn, format!("{e}; nothing done"));
            return out;
        }
    };
    for n in std::mem::take(&mut prep.decision.notes) {
        out.note(n.level, n.message);
    }
    if inputs.cmdline.disabled {
        return out;
    }
    commit_flags(&mut prep, &mut out, true);
    for a in &prep.decision.activate {
        // Each volume is planned against what is live now (earlier volumes included).
        let live = match crate::system::exec::live(dm) {
            Ok(l) => l,
            Err(e) => {
                out.note(
                    Level::Error,
                    format!("cannot read device-mapper state: {e}"),
                );
                return out;
            }
        };
        let plan = match plan_one(&prep, a, &live) {
            Ok(p) => p,
            Err(e) => {
                not_activated(&mut out, a, &e);
                continue;
            }
        };
        match execute_volume(&inputs.root, dm, &mut checker, &plan) {
            Ok(()) => {
                let what = match (a.reason, &plan.thin_pool) {
                    (Reason::Merge, None) => "merging: its snapshot's content is shown now, the kernel copies it back",
                    (Reason::Merge, Some(_)) => "merged: it shows its thin snapshot's device now (no copy); rewind poll (or lvm2's, lvchange --poll y) finishes the metadata",
                    (Reason::Requested, _) => "active",
                };
                out.note(Level::Info, format!("{}/{} {what}", a.vg, a.lv));
                if a.reason == Reason::Merge {
                    record_merge(&inputs.root, &prep, a, &mut out);
                }
                failpoint::hit("early-after-tables");
                make_nodes(&inputs.root, dm, &plan, &mut out);
                out.set_up += 1;
            }
            Err(VolumeError::Setup(e)) => out.note(
                Level::Error,
                format!(
                    "{}/{}: device-mapper setup stopped: {e}; the next run of rewind early takes it from there",
                    a.vg, a.lv
                ),
            ),
            Err(VolumeError::Refused(e)) => out.note(
                Level::Error,
                format!("{}/{} is not activated: {e}", a.vg, a.lv),
            ),
        }
        out.volumes.push(plan);
    }
    out
}

/// Leaves the record of `a`'s merge for the poller (`flow::notice`): if stock LVM finishes
/// the merge first, the poller still gives the "rollback complete" notice. A failure only
/// warns: the merge itself does not depend on it.
fn record_merge(root: &Path, prep: &Prepared, a: &Activate, out: &mut Outcome) {
    let Some(vg) = prep.scan.assembly.vgs.iter().find(|v| v.id == a.vg_id) else {
        return;
    };
    let Some(model) = vg.model.as_ref() else {
        return;
    };
    let since = crate::system::proc::stamp().time;
    let Some(rec) = super::notice::MergeRecord::of(vg, model, &a.lv, since) else {
        return;
    };
    if let Err(e) = super::notice::write(root, &rec) {
        out.note(
            Level::Warn,
            format!(
                "{}/{}: cannot record the merge for the poller ({e}); if lvm finishes it, no notice is given",
                a.vg, a.lv
            ),
        );
    }
}

fn make_nodes(root: &Path, dm: &mut dyn DeviceMapper, plan: &VolumePlan, out: &mut Outcome) {
    if crate::system::nodes::udev_makes_dm_nodes(root) {
        return;
    }
    for d in &plan.devices {
        let Ok(Some(state)) = dm.info(&d.name) else {
            continue;
        };
        let link = d.link.as_ref().map(|(v, l)| (v.as_str(), l.as_str()));
        if let Err(e) =
            crate::system::nodes::make(root, &d.name, state.dev.major, state.dev.minor, link)
        {
            out.note(
                Level::Warn,
                format!("{}: cannot make the device node: {e}", d.name),
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod thin_tests {
    use super::*;
    use crate::plan::dev::DevNum;
    use crate::plan::steps::converge;
    use crate::plan::table::Target;
    use crate::system::dm::FakeDm;
    use crate::system::thincheck::PoolCheck;

    /// A checker that answers `verdict` and records what it was asked to check.
    struct FakeCheck {
        verdict: thincheck::Verdict,
        asked: Vec<(String, DevNum)>,
    }

    impl PoolCheck for FakeCheck {
        fn check_metadata(&mut self, name: &str, dev: DevNum) -> thincheck::Verdict {
            self.asked.push((name.to_owned(), dev));
            self.verdict.clone()
        }
    }

    fn passes() -> FakeCheck {
        FakeCheck {
            verdict: thincheck::Verdict::Passed,
            asked: Vec::new(),
        }
    }

    fn exec(dm: &mut FakeDm, check: &mut FakeCheck, p: &VolumePlan) -> Result<(), VolumeError> {
        let dir = tempfile::tempdir().unwrap();
        execute_volume(dir.path(), dm, check, p)
    }

    const THIN: &str = include_str!("../../tests/fixtures/text/thin.vg");

    fn plan(dm: &mut FakeDm) -> VolumePlan {
        let model = Vg::from_tree(&text::parse(THIN.as_bytes()).unwrap()).unwrap();
        let pvs = BTreeMap::from([("pv0".to_owned(), DevNum { major: 7, minor: 0 })]);
        let devices = VgLayout {
            vg: &model,
            pv_dev: &pvs,
        }
        .activation("root")
        .unwrap();
        let live = crate::system::exec::live(dm).unwrap();
        let steps = converge(&devices, &live).unwrap();
        let thin_pool = pool_gate(&model, "root", &devices);
        VolumePlan {
            vg: "tvg".into(),
            lv: "root".into(),
            reason: Reason::Merge,
            devices,
            steps,
            thin_pool,
        }
    }

    fn fake() -> FakeDm {
        let mut dm = FakeDm::new();
        dm.add_disk("/dev/loop0", DevNum { major: 7, minor: 0 });
        dm
    }

    const OK: &str = "3 12/1024 10/1280 - rw discard_passdown queue_if_no_space - 256";

    #[test]
    fn pool_whose_transaction_id_matches_gets_the_merged_root() {
        let mut dm = fake();
        dm.set_pool_status("tvg-pool-tpool", OK);
        let p = plan(&mut dm);
        let mut check = passes();
        exec(&mut dm, &mut check, &p).unwrap();
        // thin_check ran once, on the live _tmeta, before -tpool existed.
        assert_eq!(check.asked.len(), 1);
        assert_eq!(check.asked[0].0, "tvg-pool_tmeta");
        let meta = dm
            .list()
            .unwrap()
            .into_iter()
            .find(|d| d.name == "tvg-pool_tmeta")
            .unwrap();
        assert_eq!(check.asked[0].1, meta.dev);
        let root = dm.live_table("tvg-root").unwrap();
        assert!(
            matches!(root.lines[0].target, Target::Thin { device_id: 2, .. }),
            "{root}"
        );
        // Run again: nothing changes, nothing fails (invariant 8).
        let again = plan(&mut dm);
        assert!(again.steps.is_empty(), "{:?}", again.steps);
        exec(&mut dm, &mut check, &again).unwrap();
        // The pool was live: no second check (LVM checks only a pool it is about to load).
        assert_eq!(check.asked.len(), 1);
    }

    #[test]
    fn pool_out_of_step_or_unhealthy_keeps_the_thin_lv_inactive() {
        for (status, why) in [
            (
                "5 12/1024 10/1280 - rw discard_passdown queue_if_no_space - 256",
                "its transaction id is 5, the volume group metadata expects 3",
            ),
            (
                "3 12/1024 10/1280 - rw discard_passdown queue_if_no_space needs_check 256",
                "needs_check",
            ),
            (
                "3 12/1024 10/1280 - ro discard_passdown queue_if_no_space - 256",
                "read-only",
            ),
            ("Fail", "failed"),
        ] {
            let mut dm = fake();
            dm.set_pool_status("tvg-pool-tpool", status);
            let p = plan(&mut dm);
            let Err(VolumeError::Refused(e)) = exec(&mut dm, &mut passes(), &p) else {
                panic!("{status}: not refused");
            };
            assert!(e.contains(why) && e.contains("thin pool pool"), "{e}");
            assert!(dm.live_table("tvg-root").is_none(), "{status}");
            assert!(dm.live_table("tvg-pool-tpool").is_some());
        }
        // LVM accepts a kernel one transaction behind (a message lost before it was sent).
        let mut dm = fake();
        dm.set_pool_status(
            "tvg-pool-tpool",
            "2 12/1024 10/1280 - rw discard_passdown queue_if_no_space - 256",
        );
        let p = plan(&mut dm);
        exec(&mut dm, &mut passes(), &p).unwrap();
        assert!(dm.live_table("tvg-root").is_some());
    }

    #[test]
    fn metadata_that_fails_thin_check_keeps_the_pool_and_its_thin_lv_down() {
        let mut dm = fake();
        dm.set_pool_status("tvg-pool-tpool", OK);
        let p = plan(&mut dm);
        let mut check = FakeCheck {
            verdict: thincheck::Verdict::NeedsRepair(
                "`/usr/sbin/thin_check -q --clear-needs-check-flag /dev/mapper/tvg-pool_tmeta` failed (exit status 1)".into(),
            ),
            asked: Vec::new(),
        };
        let Err(VolumeError::Refused(e)) = exec(&mut dm, &mut check, &p) else {
            panic!("not refused");
        };
        assert_eq!(check.asked.len(), 1);
        for want in [
            "thin pool tvg/pool: metadata check failed",
            "exit status 1",
            "not activated",
            "lvconvert --repair tvg/pool",
            "were removed",
        ] {
            assert!(e.contains(want), "{want:?} in {e}");
        }
        // Nothing of the pool is left: its parts were removed, -tpool and root never made,
        // and no table or message ever went to a thin-pool target.
        let names: Vec<String> = dm.list().unwrap().into_iter().map(|d| d.name).collect();
        assert!(names.iter().all(|n| !n.starts_with("tvg-")), "{names:?}");
        assert!(
            dm.mutating_calls()
                .iter()
                .all(|c| !format!("{c:?}").contains("tpool")),
            "{:?}",
            dm.calls()
        );
        // The next run checks again (and with good metadata, goes on).
        let p = plan(&mut dm);
        let mut check = passes();
        exec(&mut dm, &mut check, &p).unwrap();
        assert_eq!(check.asked.len(), 1);
        assert!(dm.live_table("tvg-root").is_some());
    }

    #[test]
    fn the_summary_counts_only_the_volumes_set_up() {
        let mut dm = fake();
        dm.set_pool_status("tvg-pool-tpool", OK);
        let p = plan(&mut dm);
        let mut out = Outcome {
            volumes: vec![p, plan(&mut dm)],
            set_up: 2,
            ..Outcome::default()
        };
        assert_eq!(
            summary(&out),
            "done: 0 flag(s) committed, 2 volume(s) set up"
        );
        // One refused (thin_check failed its pool): not counted as set up, and said so.
        out.set_up = 1;
        out.note(
            Level::Error,
            "thin pool tvg/pool: metadata check failed".into(),
        );
        assert_eq!(
            summary(&out),
            "done: 0 flag(s) committed, 1 volume(s) set up, 1 not; see the errors above"
        );
    }

    #[test]
    fn a_check_that_did_not_run_lets_the_pool_up() {
        let mut dm = fake();
        dm.set_pool_status("tvg-pool-tpool", OK);
        let p = plan(&mut dm);
        let mut check = FakeCheck {
            verdict: thincheck::Verdict::Skipped("/usr/sbin/thin_check is not installed".into()),
            asked: Vec::new(),
        };
        exec(&mut dm, &mut check, &p).unwrap();
        assert_eq!(check.asked.len(), 1);
        assert!(dm.live_table("tvg-root").is_some());
    }
}
