//! Volume groups from the PVs found on many devices.
//!
//! Every metadata area's committed text is parsed (each distinct text once); per VG id the
//! highest seqno wins, as in LVM. Whatever makes a VG ambiguous (invariant 7) is recorded as a
//! blocking problem of that VG: a PV uuid on two devices, two VGs with one name, one seqno with
//! two texts, a PV the metadata lists but no device carries, metadata the model rejects. A VG
//! with a blocking problem is reported, never acted on. Older copies of the metadata and areas
//! that cannot be read are reported without blocking: LVM reads the same VG and repairs those
//! on its next write, and so does rewind's commit, which writes every area.

use crate::lvm::disk::PvScan;
use crate::lvm::lvmrules::{self, SystemIds};
use crate::lvm::model::{self, Vg};
use crate::lvm::text::{self, Section};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Something found while assembling; `blocking` ones keep rewind off that VG.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// A device with an LVM label that is damaged (LVM ignores such a device).
    BadLabel { device: String, message: String },
    /// A metadata area that cannot be read or verified.
    BadMetadataArea {
        device: String,
        offset: u64,
        message: String,
    },
    /// A metadata area whose checksum is right but whose text does not parse.
    BadText {
        device: String,
        offset: u64,
        message: String,
    },
    /// The winning metadata of a VG fails the model's checks.
    BadMetadata { vg: String, message: String },
    /// Stock LVM2 refuses the VG's metadata (`lvm::lvmrules`): its reader, its validation or
    /// its access rules (exported, clustered, lock manager, foreign system ID).
    RefusedByLvm { vg: String, message: String },
    /// One PV uuid on several devices (a cloned disk, a snapshot of a PV).
    DuplicatePv {
        pv_uuid: String,
        devices: Vec<String>,
    },
    /// Several VGs with one name.
    DuplicateVgName { vg: String, ids: Vec<String> },
    /// Two different texts with the same seqno for one VG.
    ConflictingMetadata {
        vg: String,
        seqno: u64,
        devices: Vec<String>,
    },
    /// A PV the metadata lists and no device carries.
    MissingPv {
        vg: String,
        pv: String,
        uuid: String,
    },
    /// Some metadata areas hold an older seqno (an interrupted commit); the newest wins.
    OutdatedMetadata {
        vg: String,
        seqno: u64,
        devices: Vec<String>,
    },
}

impl Problem {
    /// Whether the VG concerned must be left alone.
    pub fn is_blocking(&self) -> bool {
        matches!(
            self,
            Problem::BadMetadata { .. }
                | Problem::RefusedByLvm { .. }
                | Problem::DuplicatePv { .. }
                | Problem::DuplicateVgName { .. }
                | Problem::ConflictingMetadata { .. }
                | Problem::MissingPv { .. }
        )
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::BadLabel { device, message } => {
                write!(f, "{device}: damaged lvm label ignored: {message}")
            }
            Problem::BadMetadataArea {
                device,
                offset,
                message,
            } => write!(f, "{device}: metadata area at {offset}: {message}"),
            Problem::BadText {
                device,
                offset,
                message,
            } => write!(f, "{device}: metadata area at {offset}: {message}"),
            Problem::BadMetadata { vg, message } => {
                write!(f, "vg {vg}: metadata not usable: {message}")
            }
            Problem::RefusedByLvm { vg, message } => {
                write!(f, "vg {vg}: stock LVM2 refuses this metadata: {message}")
            }
            Problem::DuplicatePv { pv_uuid, devices } => write!(
                f,
                "pv {pv_uuid} is on several devices ({}): a cloned disk? no action on its vg",
                devices.join(", ")
            ),
            Problem::DuplicateVgName { vg, ids } => write!(
                f,
                "vg {vg}: {} volume groups have this name ({}): no action on any of them",
                ids.len(),
                ids.join(", ")
            ),
            Problem::ConflictingMetadata { vg, seqno, devices } => write!(
                f,
                "vg {vg}: different metadata with the same seqno {seqno} on {}: no action",
                devices.join(", ")
            ),
            Problem::MissingPv { vg, pv, uuid } => {
                write!(f, "vg {vg}: {pv} (uuid {uuid}) is missing: no action")
            }
            Problem::OutdatedMetadata { vg, seqno, devices } => write!(
                f,
                "vg {vg}: older metadata (seqno {seqno}) on {}; using the newest",
                devices.join(", ")
            ),
        }
    }
}

/// A PV of a VG and the device that carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// The key in the metadata (`pv0`, ...).
    pub key: String,
    /// The PV uuid, 32 characters without dashes.
    pub uuid: String,
    /// Index into the scans handed to [`assemble`]; `None` when missing.
    pub scan: Option<usize>,
    /// The device, for messages.
    pub device: Option<String>,
}

/// One volume group as found on the devices.
#[derive(Debug, Clone, Serialize)]
pub struct FoundVg {
    pub name: String,
    /// The VG id as in the metadata (with dashes).
    pub id: String,
    pub seqno: u64,
    /// The winning metadata text (without the trailing NUL).
    #[serde(skip)]
    pub text: Vec<u8>,
    /// The parsed winning text: the tree every change is made on.
    #[serde(skip)]
    pub tree: Section,
    /// The typed model, when the metadata passed the model's checks.
    pub model: Option<Vg>,
    pub members: Vec<Member>,
    pub problems: Vec<Problem>,
}

impl FoundVg {
    /// Safe to act on: the model is valid and nothing makes the VG ambiguous.
    pub fn is_usable(&self) -> bool {
        self.model.is_some() && !self.problems.iter().any(Problem::is_blocking)
    }

    /// The first blocking problem, for a one-line refusal.
    pub fn blocking_problem(&self) -> Option<&Problem> {
        self.problems.iter().find(|p| p.is_blocking())
    }

    /// Indices of the scans of every PV of this VG (present ones).
    pub fn member_scans(&self) -> impl Iterator<Item = usize> + '_ {
        self.members.iter().filter_map(|m| m.scan)
    }
}

/// Everything found on a set of devices.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Assembly {
    /// Sorted by name, then id.
    pub vgs: Vec<FoundVg>,
    /// Problems that belong to no VG (damaged labels, unreadable areas, unparseable text).
    pub problems: Vec<Problem>,
    /// PVs that belong to no VG found here (devices).
    pub orphans: Vec<String>,
}

impl Assembly {
    /// Every VG with this name (more than one is itself a blocking problem of each).
    pub fn vgs_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a FoundVg> + 'a {
        self.vgs.iter().filter(move |v| v.name == name)
    }
}

/// One copy of VG metadata found in one metadata area.
struct Copy {
    scan: usize,
    text: usize,
}

/// A distinct metadata text and what parsing it gave.
struct ParsedText {
    bytes: Vec<u8>,
    parsed: Result<(String, String, u64, Section), String>,
}

fn vg_identity(tree: &Section) -> Result<(String, String, u64), String> {
    let (name, section) = model::vg_section(tree).map_err(|e| e.to_string())?;
    let id = section
        .str("id")
        .ok_or_else(|| format!("vg {name}: no id"))?
        .to_owned();
    let seqno = section
        .int("seqno")
        .and_then(|s| u64::try_from(s).ok())
        .ok_or_else(|| format!("vg {name}: no valid seqno"))?;
    Ok((name.to_owned(), id, seqno))
}

/// One on-disk copy of metadata text, read as LVM reads it: LVM's grammar
/// ([`text::parse_lvm`]), a copy LVM would ignore refused ([`lvmrules::check_text_start`],
/// [`lvmrules::check_copy`]), and only the first top-level section kept (LVM takes the first
/// as the VG and ignores any other).
fn read_text(bytes: &[u8]) -> Result<(String, String, u64, Section), String> {
    lvmrules::check_text_start(bytes).map_err(|e| e.to_string())?;
    let mut tree = text::parse_lvm(bytes).map_err(|e| e.to_string())?;
    lvmrules::check_copy(&tree).map_err(|e| e.to_string())?;
    let mut seen = false;
    tree.entries.retain(|e| match e.node {
        text::Node::Section(_) => !std::mem::replace(&mut seen, true),
        text::Node::Value(_) => true,
    });
    let (name, id, seqno) = vg_identity(&tree)?;
    Ok((name, id, seqno, tree))
}

/// Assembles VGs from scanned PVs. `bad_labels` are devices whose label could not be read
/// (reported, otherwise ignored as LVM does). VGs with a system ID are read as on a host
/// without one ([`assemble_with`] for this host's).
pub fn assemble(scans: &[PvScan], bad_labels: &[(String, String)]) -> Assembly {
    assemble_with(scans, bad_labels, &SystemIds::default())
}

/// [`assemble`], VGs owned by another host (`system_id`, as LVM's configuration on this host
/// names its own in `system_ids`) refused as LVM refuses them.
pub fn assemble_with(
    scans: &[PvScan],
    bad_labels: &[(String, String)],
    system_ids: &SystemIds,
) -> Assembly {
    let mut out = Assembly::default();
    for (device, message) in bad_labels {
        out.problems.push(Problem::BadLabel {
            device: device.clone(),
            message: message.clone(),
        });
    }

    // Which devices carry each PV uuid.
    let mut by_uuid: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, scan) in scans.iter().enumerate() {
        by_uuid.entry(&scan.pv_header.uuid).or_default().push(i);
    }

    let (mut texts, copies) = read_copies(scans, &mut out.problems);
    // Group the copies by VG id.
    let mut by_vg: BTreeMap<String, Vec<&Copy>> = BTreeMap::new();
    for copy in &copies {
        if let Ok((_, id, _, _)) = &texts[copy.text].parsed {
            by_vg.entry(id.clone()).or_default().push(copy);
        }
    }
    let mut in_some_vg = vec![false; scans.len()];
    for (id, copies) in &by_vg {
        let found = Copies {
            scans,
            texts: &texts,
            copies,
            system_ids,
        };
        if let Some((mut vg, winner)) = found.vg(id, &by_uuid, &mut in_some_vg) {
            // The winning text and its tree move into the VG: a text names one VG id, so no
            // other VG reads this one (each reads only its own copies' seqnos, kept).
            let won = &mut texts[winner];
            vg.text = std::mem::take(&mut won.bytes);
            if let Ok((_, _, _, tree)) = &mut won.parsed {
                vg.tree = std::mem::take(tree);
            }
            out.vgs.push(vg);
        }
    }
    mark_duplicate_names(&mut out.vgs);
    out.vgs
        .sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));

    // A PV listed by no VG. A duplicate of an orphan is worth a note too.
    for (uuid, carriers) in &by_uuid {
        if carriers.iter().all(|&s| !in_some_vg[s]) {
            out.orphans
                .extend(carriers.iter().map(|&s| scans[s].device.clone()));
            if carriers.len() > 1 {
                out.problems.push(Problem::DuplicatePv {
                    pv_uuid: (*uuid).to_owned(),
                    devices: device_list(scans, carriers.iter().copied()),
                });
            }
        }
    }
    out
}

/// Every committed metadata text of every area, each distinct text parsed once, and every
/// copy of it; an unreadable area or text is a problem of no VG.
fn read_copies(scans: &[PvScan], problems: &mut Vec<Problem>) -> (Vec<ParsedText>, Vec<Copy>) {
    let mut texts: Vec<ParsedText> = Vec::new();
    // Distinct texts by length and CRC-32 of the text itself (not the area's checksum, which
    // also covers the NULs after it); texts that share both are told apart by their bytes.
    let mut text_index: HashMap<(usize, u32), Vec<usize>> = HashMap::new();
    let mut copies: Vec<Copy> = Vec::new();
    for (i, scan) in scans.iter().enumerate() {
        for mda in &scan.mdas {
            let content = match &mda.content {
                Ok(c) => c,
                Err(e) => {
                    problems.push(Problem::BadMetadataArea {
                        device: scan.device.clone(),
                        offset: mda.area.offset,
                        message: e.to_string(),
                    });
                    continue;
                }
            };
            let Some(committed) = &content.committed else {
                continue;
            };
            let same = text_index
                .entry((committed.text.len(), crc32fast::hash(&committed.text)))
                .or_default();
            let t = match same.iter().find(|&&t| texts[t].bytes == committed.text) {
                Some(&t) => t,
                None => {
                    texts.push(ParsedText::parse(&committed.text));
                    same.push(texts.len() - 1);
                    texts.len() - 1
                }
            };
            if let Err(message) = &texts[t].parsed {
                problems.push(Problem::BadText {
                    device: scan.device.clone(),
                    offset: mda.area.offset,
                    message: message.clone(),
                });
                continue;
            }
            copies.push(Copy { scan: i, text: t });
        }
    }
    (texts, copies)
}

impl ParsedText {
    fn parse(bytes: &[u8]) -> ParsedText {
        let parsed = read_text(bytes);
        ParsedText {
            bytes: bytes.to_vec(),
            parsed,
        }
    }
}

/// The copies of one VG's metadata found on the scanned devices.
struct Copies<'a> {
    scans: &'a [PvScan],
    texts: &'a [ParsedText],
    copies: &'a [&'a Copy],
    system_ids: &'a SystemIds,
}

impl Copies<'_> {
    fn seqno(&self, c: &Copy) -> u64 {
        match &self.texts[c.text].parsed {
            Ok((_, _, seqno, _)) => *seqno,
            Err(_) => 0,
        }
    }

    /// The VG as its newest copy says (as LVM reads it): two different texts at the newest
    /// seqno conflict; each PV it lists must be on exactly one device (invariant 7); older
    /// copies on its PVs are an interrupted commit.
    fn vg(
        &self,
        id: &str,
        by_uuid: &BTreeMap<&str, Vec<usize>>,
        in_some_vg: &mut [bool],
    ) -> Option<(FoundVg, usize)> {
        let best = self.copies.iter().map(|c| self.seqno(c)).max()?;
        let newest: Vec<&&Copy> = self
            .copies
            .iter()
            .filter(|c| self.seqno(c) == best)
            .collect();
        let winner = newest.first()?;
        let Ok((name, _, _, tree)) = &self.texts[winner.text].parsed else {
            return None;
        };
        let mut vg = FoundVg {
            name: name.clone(),
            id: id.to_owned(),
            seqno: best,
            // Moved in by the caller (`assemble_with`) once this borrow of the texts ends.
            text: Vec::new(),
            tree: Section::default(),
            model: None,
            members: Vec::new(),
            problems: Vec::new(),
        };
        if newest.iter().any(|c| c.text != winner.text) {
            vg.problems.push(Problem::ConflictingMetadata {
                vg: name.clone(),
                seqno: best,
                devices: device_list(self.scans, newest.iter().map(|c| c.scan)),
            });
        }
        if let Err(e) =
            lvmrules::check_vg(tree).and_then(|()| lvmrules::check_access(tree, self.system_ids))
        {
            vg.problems.push(Problem::RefusedByLvm {
                vg: name.clone(),
                message: e.to_string(),
            });
        }
        match Vg::from_tree(tree) {
            Ok(model) => {
                add_members(&mut vg, &model, self.scans, by_uuid, in_some_vg);
                vg.model = Some(model);
            }
            Err(e) => vg.problems.push(Problem::BadMetadata {
                vg: name.clone(),
                message: e.to_string(),
            }),
        }
        self.note_outdated(&mut vg, best);
        Some((vg, winner.text))
    }

    /// Older copies on member PVs: an interrupted commit, repaired by the next write. Older
    /// copies on PVs the newest metadata no longer lists are left alone (LVM wipes those
    /// "outdated PVs" on its next write).
    fn note_outdated(&self, vg: &mut FoundVg, best: u64) {
        let member_scans: Vec<usize> = vg.member_scans().collect();
        let stale: Vec<usize> = self
            .copies
            .iter()
            .filter(|c| self.seqno(c) < best && member_scans.contains(&c.scan))
            .map(|c| c.scan)
            .collect();
        if !stale.is_empty() {
            let oldest = self
                .copies
                .iter()
                .map(|c| self.seqno(c))
                .min()
                .unwrap_or(best);
            vg.problems.push(Problem::OutdatedMetadata {
                vg: vg.name.clone(),
                seqno: oldest,
                devices: device_list(self.scans, stale.into_iter()),
            });
        }
    }
}

/// Each PV `model` lists, with the one device that carries it; none (missing) or several (a
/// cloned disk) is a blocking problem (invariant 7).
fn add_members(
    vg: &mut FoundVg,
    model: &Vg,
    scans: &[PvScan],
    by_uuid: &BTreeMap<&str, Vec<usize>>,
    in_some_vg: &mut [bool],
) {
    for pv in &model.pvs {
        let uuid: String = pv.id.chars().filter(|&c| c != '-').collect();
        let carriers = by_uuid.get(uuid.as_str()).cloned().unwrap_or_default();
        for &s in &carriers {
            in_some_vg[s] = true;
        }
        if carriers.len() > 1 {
            vg.problems.push(Problem::DuplicatePv {
                pv_uuid: pv.id.clone(),
                devices: device_list(scans, carriers.iter().copied()),
            });
        }
        if carriers.is_empty() {
            vg.problems.push(Problem::MissingPv {
                vg: vg.name.clone(),
                pv: pv.key.clone(),
                uuid: pv.id.clone(),
            });
        }
        let scan = (carriers.len() == 1).then(|| carriers[0]);
        vg.members.push(Member {
            key: pv.key.clone(),
            uuid,
            scan,
            device: scan.map(|s| scans[s].device.clone()),
        });
    }
}

/// One name, several VG ids: every one of them is ambiguous (invariant 7).
fn mark_duplicate_names(vgs: &mut [FoundVg]) {
    let mut ids_by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for vg in vgs.iter() {
        ids_by_name
            .entry(vg.name.clone())
            .or_default()
            .push(vg.id.clone());
    }
    for vg in vgs {
        if let Some(ids) = ids_by_name.get(&vg.name).filter(|ids| ids.len() > 1) {
            vg.problems.push(Problem::DuplicateVgName {
                vg: vg.name.clone(),
                ids: ids.clone(),
            });
        }
    }
}

fn device_list(scans: &[PvScan], indices: impl Iterator<Item = usize>) -> Vec<String> {
    let mut v: Vec<String> = indices.map(|i| scans[i].device.clone()).collect();
    v.sort();
    v.dedup();
    v
}
