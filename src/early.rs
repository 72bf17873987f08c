//! The boot flow `rewind early` runs in the initramfs, and `rewind plan` runs without changing
//! anything: scan, decide, commit the merge flags (invariant 1: before any table), lay out the
//! devices LVM would create, converge with what is live, execute.

use crate::config::Config;
use crate::lvm::assemble::FoundVg;
use crate::lvm::change::{Stamp, mark_merging};
use crate::lvm::disk::{PvScan, commit};
use crate::lvm::model::{Snapshot, Vg};
use crate::lvm::text::{self, Style};
use crate::plan::cmdline::{Cmdline, LvRef};
use crate::plan::decide::{Activate, Decision, Hold, Level, Note, Reason, decide};
use crate::plan::devices::{DeviceSpec, VgLayout, first_sector};
use crate::plan::steps::{Live, Step, converge};
use crate::system::dm::DeviceMapper;
use crate::system::scan::{Scan, Selector};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Everything `early` and `plan` take from outside; each is injectable.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub root: PathBuf,
    pub cmdline: Cmdline,
    pub config: Config,
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
}

/// What was (or would be) done.
#[derive(Debug, Default, Serialize)]
pub struct Outcome {
    pub flags_committed: Vec<String>,
    pub volumes: Vec<VolumePlan>,
    pub notes: Vec<Note>,
}

impl Outcome {
    fn note(&mut self, level: Level, message: String) {
        match level {
            Level::Error => log::error!("{message}"),
            Level::Warn => log::warn!("{message}"),
            Level::Info => log::info!("{message}"),
        }
        self.notes.push(Note { level, message });
    }

    /// 1 when something that was asked for could not be done safely, else 0.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.notes.iter().any(|n| n.level == Level::Error))
    }
}

fn pv_of<'a>(s: &'a Scan, vg: &FoundVg, key: &str) -> Option<(&'a PvScan, usize)> {
    let m = vg.members.iter().find(|m| m.key == key)?;
    let i = m.scan?;
    Some((s.pvs.get(i)?, *s.pv_device.get(i)?))
}

/// Reads the first 512 bytes of a snapshot's COW store from its PV.
pub fn read_cow(s: &Scan, vg: &FoundVg, snap: &Snapshot) -> Result<Vec<u8>, String> {
    let model = vg.model.as_ref().ok_or("no model")?;
    let cow = model.lv(&snap.cow).ok_or("the store is missing")?;
    let (key, offset) = first_sector(model, cow).ok_or("the store has no linear start")?;
    let (_, dev) = pv_of(s, vg, &key).ok_or_else(|| format!("{key} has no device"))?;
    let node = &s.devices[dev].node;
    let mut f = File::open(node).map_err(|e| format!("{}: {e}", node.display()))?;
    let mut buf = vec![0u8; 512];
    f.seek(SeekFrom::Start(offset))
        .and_then(|_| f.read_exact(&mut buf))
        .map_err(|e| format!("{} at byte {offset}: {e}", node.display()))?;
    Ok(buf)
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
        let mut reader = |vg: &FoundVg, snap: &Snapshot| read_cow(&scan, vg, snap);
        decide(&scan.assembly, &inputs.cmdline, &activate, &mut reader)
    };
    Prepared { scan, decision }
}

/// Scans the devices LVM itself would use (`lvm::devsel`), narrowed by `also`. When the
/// selection cannot be made (an lvm.conf or filter rewind cannot read), no device is read.
pub fn scan_devices(inputs: &Inputs, also: &Selector<'_>) -> Result<Scan, String> {
    let selection = crate::lvm::devsel::Selection::load(&inputs.root, &inputs.config.scan)
        .map_err(|e| format!("cannot tell which devices lvm would use ({e}); no device read"))?;
    Ok(crate::system::scan::scan_selected(&selection, also))
}

/// Commits every flag (grouped per VG: one commit with all of a VG's flags). With `write`
/// false the new metadata is only made in memory (for `rewind plan`). A VG whose commit
/// fails gets its merge origins held: a half-done commit may already carry the flag, and a
/// flagged origin is only ever activated through its merge (invariant 2).
pub fn commit_flags(prep: &mut Prepared, out: &mut Outcome, write: bool) {
    let stamp = Stamp::from_system();
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
        let result = (|| -> Result<(), String> {
            let vg = &prep.scan.assembly.vgs[vi];
            let mut tree = vg.tree.clone();
            for s in &snaps {
                tree = mark_merging(&tree, s, &stamp).map_err(|e| e.to_string())?;
            }
            let new_text = text::print(&tree, Style::Disk);
            let model = Vg::from_tree(&tree).map_err(|e| e.to_string())?;
            if write {
                let mut pvs = Vec::new();
                for m in &vg.members {
                    let i = m.scan.ok_or_else(|| format!("{} has no device", m.key))?;
                    let node = &prep.scan.devices[prep.scan.pv_device[i]].node;
                    let f = File::options()
                        .read(true)
                        .write(true)
                        .open(node)
                        .map_err(|e| format!("{}: {e}", node.display()))?;
                    pvs.push((prep.scan.pvs[i].clone(), f));
                }
                commit(&mut pvs, new_text.as_bytes()).map_err(|e| e.to_string())?;
                for ((pv, _), m) in pvs.into_iter().zip(&vg.members) {
                    if let Some(i) = m.scan {
                        prep.scan.pvs[i] = pv;
                    }
                }
            }
            let vg = &mut prep.scan.assembly.vgs[vi];
            vg.seqno = model.seqno;
            vg.text = new_text.into_bytes();
            vg.tree = tree;
            vg.model = Some(model);
            Ok(())
        })();
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
                let flags: Vec<_> = prep
                    .decision
                    .flags
                    .iter()
                    .filter(|f| f.vg_id == vg_id)
                    .cloned()
                    .collect();
                for f in flags {
                    prep.decision.hold.push(Hold {
                        vg: f.vg,
                        vg_id: f.vg_id,
                        origin: f.origin,
                        why: e.clone(),
                    });
                }
                let hold = prep.decision.hold.clone();
                prep.decision
                    .activate
                    .retain(|a| !hold.iter().any(|h| h.vg_id == a.vg_id && h.origin == a.lv));
            }
        }
    }
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
    Ok(VolumePlan {
        vg: a.vg.clone(),
        lv: a.lv.clone(),
        reason: a.reason,
        devices,
        steps,
    })
}

/// The whole of `rewind early`: every refusal before the commit leaves the disks as they were;
/// every step after it can run again (invariant 8).
pub fn run(inputs: &Inputs, select: &Selector<'_>, dm: &mut dyn DeviceMapper) -> Outcome {
    let mut out = Outcome::default();
    let mut prep = match scan_devices(inputs, select) {
        Ok(scan) => {
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
        match crate::system::exec::execute(dm, &plan.steps) {
            Ok(()) => {
                let what = match a.reason {
                    Reason::Merge => "merging: its snapshot's content is shown now, the kernel copies it back",
                    Reason::Requested => "active",
                };
                out.note(Level::Info, format!("{}/{} {what}", a.vg, a.lv));
                make_nodes(&inputs.root, dm, &plan, &mut out);
            }
            Err(e) => out.note(
                Level::Error,
                format!(
                    "{}/{}: device-mapper setup stopped: {e}; the next run of rewind early takes it from there",
                    a.vg, a.lv
                ),
            ),
        }
        out.volumes.push(plan);
    }
    out
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
