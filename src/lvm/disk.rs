//! Scanning a device for an LVM2 PV (label, PV header, metadata areas, committed text) and
//! committing new metadata text to every metadata area of a VG the way LVM does.
//!
//! The I/O is behind [`BlockDevice`] (any `Read + Write + Seek` that can flush to stable
//! storage), so tests run on in-memory buffers and can stop a commit after any step.

use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};

use thiserror::Error;

use super::label::{
    DiskLocn, LVM_SCAN_BYTES, Label, LabelError, PvHeader, SECTOR_SIZE, find_label,
};
use super::mda::{
    MDA_HEADER_SIZE, MdaError, MdaHeader, RawLocn, SlotUpdate, TextWrite, parse_mda_header,
    plan_text_write, text_span, updated_header_bytes, verify_text,
};

/// A device rewind can write metadata to: `Read + Write + Seek` plus a flush to stable storage
/// (`system::scan` implements it for `File`).
pub trait BlockDevice: Read + Write + Seek {
    /// Make every completed write durable (`fdatasync` for files and block devices).
    fn sync(&mut self) -> io::Result<()>;
}

impl BlockDevice for Cursor<Vec<u8>> {
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<T: BlockDevice + ?Sized> BlockDevice for &mut T {
    fn sync(&mut self) -> io::Result<()> {
        (**self).sync()
    }
}

/// Why a device could not be scanned at all.
#[derive(Debug, Error)]
pub enum ScanError {
    /// Reading the device (its size or its first sectors) failed.
    #[error("{device}: i/o error at byte {offset}: {source}")]
    Io {
        /// The device's name.
        device: String,
        /// The offset of the failed access.
        offset: u64,
        /// The system's error.
        #[source]
        source: io::Error,
    },
    /// A `LABELONE` sector is there but invalid (LVM would ignore this device).
    #[error("{device}: {source}")]
    Label {
        /// The device's name.
        device: String,
        /// What is wrong.
        #[source]
        source: LabelError,
    },
}

/// The committed copy of the metadata text in one area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedText {
    /// Slot 0 as stored (offset relative to the area, size including the NUL, checksum).
    pub locn: RawLocn,
    /// True when the copy wraps around the end of the ring.
    pub wrapped: bool,
    /// The text, checksum verified, without its trailing NUL.
    pub text: Vec<u8>,
}

/// A metadata area that was read and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdaContent {
    /// The verified header (both slots).
    pub header: MdaHeader,
    /// The committed text; `None` when slot 0 is empty or the mda is ignored.
    pub committed: Option<CommittedText>,
}

/// One metadata area of a PV: where the PV header says it is, and what was found there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdaScan {
    /// Offset and size from the PV header.
    pub area: DiskLocn,
    /// The header and text, or what is wrong with this area (other areas are unaffected).
    pub content: Result<MdaContent, MdaError>,
}

/// What [`scan_device`] found on a PV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PvScan {
    /// The device name given to the scan (used in messages).
    pub device: String,
    /// The device's actual size in bytes.
    pub device_size: u64,
    /// The label.
    pub label: Label,
    /// The PV header.
    pub pv_header: PvHeader,
    /// The metadata areas in PV-header order (0, 1 or 2 of them).
    pub mdas: Vec<MdaScan>,
}

impl PvScan {
    /// The committed text of the first area that has one (all in-use areas of a healthy PV
    /// hold the same text).
    pub fn committed_text(&self) -> Option<&CommittedText> {
        self.mdas
            .iter()
            .filter_map(|m| m.content.as_ref().ok())
            .find_map(|c| c.committed.as_ref())
    }
}

fn io_err(offset: u64, e: &io::Error) -> MdaError {
    MdaError::Io {
        offset,
        message: e.to_string(),
    }
}

/// Most bytes [`read_at`] asks for in one `read` (and adds to its buffer before they arrived).
const READ_CHUNK: u64 = 1 << 20;

/// Read exactly `len` bytes at `offset`. The buffer grows only as data arrives (a chunk of at
/// most [`READ_CHUNK`] at a time), so a bogus length cannot allocate more than the device
/// holds. Each chunk is asked for in one `read`: `read_to_end` would probe with 8 KiB and
/// double, five system calls for LVM's 128 KiB scan, and on a block device whose page cache
/// is cold (nothing holds it open) the kernel's readahead then goes to the disk in steps
/// instead of once (BENCHMARKS.md, issue 17 session 7).
fn read_at<R: Read + Seek + ?Sized>(dev: &mut R, offset: u64, len: u64) -> io::Result<Vec<u8>> {
    dev.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    while (buf.len() as u64) < len {
        let start = buf.len();
        let chunk = usize::try_from((len - start as u64).min(READ_CHUNK))
            .map_err(|_| io::Error::other("read length does not fit in memory"))?;
        buf.resize(start + chunk, 0);
        let mut filled = 0;
        while filled < chunk {
            match dev.read(&mut buf[start + filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(start + filled);
        if filled < chunk {
            break;
        }
    }
    if (buf.len() as u64) < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("short read: {} of {len} bytes", buf.len()),
        ));
    }
    Ok(buf)
}

fn write_at<W: Write + Seek + ?Sized>(dev: &mut W, offset: u64, bytes: &[u8]) -> io::Result<()> {
    dev.seek(SeekFrom::Start(offset))?;
    dev.write_all(bytes)?;
    dev.flush()
}

/// Read and verify one metadata area (header, then slot 0's text). `area` comes from the PV
/// header; it must lie inside `device_size` and start at or after `label_end` (the end of the
/// label sector), else [`MdaError::AreaOutsideDevice`]. Its size there is otherwise not
/// relied on: like LVM (`format-text.c`), the ring is as large as the header's own `size`
/// says, whatever the PV header's size (smaller than a header, even 0). [`commit`] writes
/// only areas whose header's size fits in the PV header's.
pub fn read_mda<R: Read + Seek + ?Sized>(
    dev: &mut R,
    area: DiskLocn,
    device_size: u64,
    label_end: u64,
) -> Result<MdaContent, MdaError> {
    let outside = MdaError::AreaOutsideDevice {
        start: area.offset,
        size: area.size,
        device_size,
    };
    let end = area.offset.checked_add(area.size).ok_or(outside.clone())?;
    let header_end = area
        .offset
        .checked_add(MDA_HEADER_SIZE)
        .ok_or(outside.clone())?;
    if area.offset < label_end || end > device_size || header_end > device_size {
        return Err(outside);
    }
    let raw = read_at(dev, area.offset, MDA_HEADER_SIZE).map_err(|e| io_err(area.offset, &e))?;
    let header = parse_mda_header(&raw, area.offset, u64::MAX)?;
    if header.is_ignored() {
        return Ok(MdaContent {
            header,
            committed: None,
        });
    }
    let Some(span) = text_span(&header, 0)? else {
        return Ok(MdaContent {
            header,
            committed: None,
        });
    };
    let [(off1, len1), (off2, len2)] = span.pieces(area.offset);
    let first = read_at(dev, off1, len1).map_err(|e| io_err(off1, &e))?;
    let wrapped = read_at(dev, off2, len2).map_err(|e| io_err(off2, &e))?;
    let text = verify_text(&header, &span, &first, &wrapped)?;
    Ok(MdaContent {
        committed: Some(CommittedText {
            locn: span.locn,
            wrapped: span.wrap_len > 0,
            text,
        }),
        header,
    })
}

/// Scan a device (or image file) for an LVM2 PV.
///
/// Returns `Ok(None)` when no sector 0-3 starts with `LABELONE`; an error when the device
/// cannot be read or its label is invalid. Each metadata area is read independently: a
/// damaged area shows up as an `Err` in its [`MdaScan::content`] without failing the scan.
/// Every offset and size read from disk is checked against the device size before use.
pub fn scan_device<R: Read + Seek + ?Sized>(
    dev: &mut R,
    name: &str,
) -> Result<Option<PvScan>, ScanError> {
    let io = |offset: u64| {
        move |source: io::Error| ScanError::Io {
            device: name.to_string(),
            offset,
            source,
        }
    };
    let device_size = dev.seek(SeekFrom::End(0)).map_err(io(0))?;
    let head = read_at(dev, 0, device_size.min(LVM_SCAN_BYTES as u64)).map_err(io(0))?;
    let found = find_label(&head).map_err(|source| ScanError::Label {
        device: name.to_string(),
        source,
    })?;
    let Some(found) = found else {
        return Ok(None);
    };
    let label_end = (found.label.sector + 1) * SECTOR_SIZE as u64;
    let mdas = found
        .pv_header
        .metadata_areas
        .iter()
        .map(|&area| MdaScan {
            area,
            content: read_mda(dev, area, device_size, label_end),
        })
        .collect();
    Ok(Some(PvScan {
        device: name.to_string(),
        device_size,
        label: found.label,
        pv_header: found.pv_header,
        mdas,
    }))
}

/// The three phases of a commit, in LVM's order (`vg_write`, then `vg_commit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitPhase {
    /// Write the text into the ring (`_vg_write_raw`).
    WriteText,
    /// Slot 1 = new location (`_vg_precommit_raw`).
    Precommit,
    /// Slot 0 = new location, slot 1 cleared (`_vg_commit_raw`).
    Commit,
}

/// One step of a commit: one phase on one metadata area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitStep {
    /// The phase.
    pub phase: CommitPhase,
    /// Index into the `pvs` slice.
    pub pv: usize,
    /// Index into that PV's `mdas`.
    pub mda: usize,
}

/// Why a commit was refused or did not finish.
#[derive(Debug, Error)]
pub enum CommitError {
    /// The new text is empty or contains a NUL byte before its end.
    #[error("new metadata text is empty or contains a nul byte")]
    BadText,
    /// The same PV uuid appears twice in the list (a cloned disk, or the same disk twice).
    #[error("pv uuid {uuid} appears on both {first} and {second}")]
    DuplicatePv {
        /// The uuid, formatted.
        uuid: String,
        /// The first device.
        first: String,
        /// The second device.
        second: String,
    },
    /// None of the PVs has an in-use metadata area.
    #[error("no in-use metadata area on any pv of the vg")]
    NoMetadataAreas,
    /// A metadata area could not be read when scanned; LVM would leave it out, rewind refuses.
    #[error("{device}: metadata area at byte {offset} is unusable: {source}")]
    BadMda {
        /// The device.
        device: String,
        /// The area's start.
        offset: u64,
        /// What is wrong.
        #[source]
        source: MdaError,
    },
    /// The area's header says it is larger than the PV header does: LVM would write its ring
    /// as far as the header says, over whatever lies there; rewind writes neither.
    #[error(
        "{device}: metadata area at byte {offset} is {header_size} bytes by its header but {area_size} by the pv header; rewind writes only where both agree"
    )]
    AreaSizeMismatch {
        /// The device.
        device: String,
        /// The area's start.
        offset: u64,
        /// The size in the area's header.
        header_size: u64,
        /// The size in the PV header.
        area_size: u64,
    },
    /// The header on disk differs from the scanned one (someone else wrote in between).
    #[error("{device}: metadata area header at byte {offset} changed since the scan")]
    Changed {
        /// The device.
        device: String,
        /// The area's start.
        offset: u64,
    },
    /// The new text does not fit, or reading/writing failed, on one area.
    #[error("{device}: {source}")]
    Mda {
        /// The device.
        device: String,
        /// What is wrong.
        #[source]
        source: MdaError,
    },
    /// The step hook asked to stop before this step (crash-injection in tests).
    #[error("commit stopped before {step:?}")]
    Stopped {
        /// The step that was not done.
        step: CommitStep,
    },
}

/// Where the new text went on one metadata area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdaCommit {
    /// The device.
    pub device: String,
    /// The area's start.
    pub area_offset: u64,
    /// The new slot 0.
    pub locn: RawLocn,
    /// True when the new copy wraps around the ring's end.
    pub wrapped: bool,
}

/// What [`commit`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommitReport {
    /// One entry per written area, in write order.
    pub mdas: Vec<MdaCommit>,
    /// Ignored areas left alone: (device, area start).
    pub ignored: Vec<(String, u64)>,
}

struct Target {
    pv: usize,
    mda: usize,
    header: MdaHeader,
    write: TextWrite,
}

/// Commit `new_text` (the whole metadata text, seqno already bumped by the caller; a trailing
/// NUL is optional and added if missing) to every in-use metadata area of every PV.
///
/// Order, as LVM's `vg_write` + `vg_commit` (`lib/metadata/metadata.c`,
/// `lib/format_text/format-text.c`): (1) the text into each area's ring, (2) each header's
/// slot 1 = the new location (precommit), (3) each header's slot 0 = the new location and
/// slot 1 cleared (commit). Each write is synced before the next. Ignored areas are not
/// touched. Before anything is written, every area is re-read and must match the scan,
/// every area must be readable, and the text must fit every area, so a refusal writes
/// nothing. On success each `PvScan` is updated to the new state.
///
/// Refused before any write: an empty text or one with a NUL inside, the same PV uuid twice,
/// an unreadable area, a header changed since the scan, a text too large for an area, or no
/// in-use area at all. The caller is responsible for the text being a valid VG with the next
/// seqno and for the PVs being exactly the VG's PVs.
pub fn commit<D: BlockDevice>(
    pvs: &mut [(PvScan, D)],
    new_text: &[u8],
) -> Result<CommitReport, CommitError> {
    commit_with_hook(pvs, new_text, &mut |_| true)
}

/// [`commit`] with a hook called before each step; when it returns `false`, the commit stops
/// there with [`CommitError::Stopped`], leaving the disks as a crash at that point would.
pub fn commit_with_hook<D: BlockDevice>(
    pvs: &mut [(PvScan, D)],
    new_text: &[u8],
    hook: &mut dyn FnMut(CommitStep) -> bool,
) -> Result<CommitReport, CommitError> {
    let body = new_text.strip_suffix(b"\0").unwrap_or(new_text);
    if body.is_empty() || body.contains(&0) {
        return Err(CommitError::BadText);
    }
    let mut text = body.to_vec();
    text.push(0);
    check_distinct_pvs(pvs)?;
    let mut report = CommitReport::default();
    let mut targets = plan_targets(pvs, &text, &mut report)?;
    for phase in [
        CommitPhase::WriteText,
        CommitPhase::Precommit,
        CommitPhase::Commit,
    ] {
        write_phase(pvs, &mut targets, phase, hook)?;
    }
    record(pvs, targets, body, &mut report);
    Ok(report)
}

/// The same PV uuid on two devices refuses the commit (which copy would be the VG's?).
fn check_distinct_pvs<D>(pvs: &[(PvScan, D)]) -> Result<(), CommitError> {
    for (i, (a, _)) in pvs.iter().enumerate() {
        if let Some((b, _)) = pvs
            .iter()
            .skip(i + 1)
            .find(|(b, _)| b.pv_header.uuid == a.pv_header.uuid)
        {
            return Err(CommitError::DuplicatePv {
                uuid: a.pv_header.uuid_formatted(),
                first: a.device.clone(),
                second: b.device.clone(),
            });
        }
    }
    Ok(())
}

/// Every in-use area the text goes to, checked before anything is written (a refusal writes
/// nothing): each area readable, its header on disk still the one the scan read, the text
/// fits. Ignored areas are noted in `report` and left alone.
fn plan_targets<D: BlockDevice>(
    pvs: &mut [(PvScan, D)],
    text: &[u8],
    report: &mut CommitReport,
) -> Result<Vec<Target>, CommitError> {
    let mut targets = Vec::new();
    for (pv_index, (pv, dev)) in pvs.iter_mut().enumerate() {
        for (mda_index, mda) in pv.mdas.iter().enumerate() {
            let content = mda.content.as_ref().map_err(|e| CommitError::BadMda {
                device: pv.device.clone(),
                offset: mda.area.offset,
                source: e.clone(),
            })?;
            if content.header.is_ignored() {
                report.ignored.push((pv.device.clone(), mda.area.offset));
                continue;
            }
            if content.header.size > mda.area.size {
                return Err(CommitError::AreaSizeMismatch {
                    device: pv.device.clone(),
                    offset: mda.area.offset,
                    header_size: content.header.size,
                    area_size: mda.area.size,
                });
            }
            let mda_err = |source| CommitError::Mda {
                device: pv.device.clone(),
                source,
            };
            let now = read_at(dev, mda.area.offset, MDA_HEADER_SIZE)
                .map_err(|e| mda_err(io_err(mda.area.offset, &e)))?;
            if now != content.header.raw {
                return Err(CommitError::Changed {
                    device: pv.device.clone(),
                    offset: mda.area.offset,
                });
            }
            let write = plan_text_write(&content.header, text).map_err(mda_err)?;
            targets.push(Target {
                pv: pv_index,
                mda: mda_index,
                header: content.header.clone(),
                write,
            });
        }
    }
    if targets.is_empty() {
        return Err(CommitError::NoMetadataAreas);
    }
    Ok(targets)
}

/// One phase of the commit on every target, in order; each write is synced before the next,
/// and `hook` may stop the commit before any step.
fn write_phase<D: BlockDevice>(
    pvs: &mut [(PvScan, D)],
    targets: &mut [Target],
    phase: CommitPhase,
    hook: &mut dyn FnMut(CommitStep) -> bool,
) -> Result<(), CommitError> {
    for t in targets {
        let step = CommitStep {
            phase,
            pv: t.pv,
            mda: t.mda,
        };
        if !hook(step) {
            return Err(CommitError::Stopped { step });
        }
        let Some((pv, dev)) = pvs.get_mut(t.pv) else {
            continue;
        };
        let fail = |source| CommitError::Mda {
            device: pv.device.clone(),
            source,
        };
        let writes: Vec<(u64, Vec<u8>)> = match phase {
            CommitPhase::WriteText => t.write.writes.clone(),
            CommitPhase::Precommit | CommitPhase::Commit => {
                let update = if phase == CommitPhase::Precommit {
                    SlotUpdate::Precommit
                } else {
                    SlotUpdate::Commit
                };
                let raw = updated_header_bytes(&t.header, &t.write.locn, update);
                t.header = parse_mda_header(&raw, t.header.start, t.header.size).map_err(fail)?;
                vec![(t.header.start, raw)]
            }
        };
        for (offset, bytes) in &writes {
            write_at(dev, *offset, bytes).map_err(|e| fail(io_err(*offset, &e)))?;
        }
        dev.sync()
            .map_err(|e| fail(io_err(writes.first().map_or(0, |w| w.0), &e)))?;
    }
    Ok(())
}

/// After a commit: each `PvScan` shows the new state, and the report lists every area.
fn record<D>(
    pvs: &mut [(PvScan, D)],
    targets: Vec<Target>,
    body: &[u8],
    report: &mut CommitReport,
) {
    for t in targets {
        let Some((pv, _)) = pvs.get_mut(t.pv) else {
            continue;
        };
        report.mdas.push(MdaCommit {
            device: pv.device.clone(),
            area_offset: t.header.start,
            locn: t.write.locn,
            wrapped: t.write.writes.len() > 1,
        });
        if let Some(mda) = pv.mdas.get_mut(t.mda) {
            mda.content = Ok(MdaContent {
                committed: Some(CommittedText {
                    locn: t.write.locn,
                    wrapped: t.write.writes.len() > 1,
                    text: body.to_vec(),
                }),
                header: t.header,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes per `read`, as a pipe or a slow device may.
    struct Trickle {
        inner: Cursor<Vec<u8>>,
        step: usize,
        reads: usize,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.reads += 1;
            let n = buf.len().min(self.step);
            self.inner.read(&mut buf[..n])
        }
    }

    impl Seek for Trickle {
        fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
            self.inner.seek(pos)
        }
    }

    #[test]
    fn read_at_returns_exactly_the_range_in_one_read_per_chunk() {
        let data: Vec<u8> = (0..(5 * READ_CHUNK as usize / 2))
            .map(|i| (i % 251) as u8)
            .collect();
        let mut whole = Trickle {
            inner: Cursor::new(data.clone()),
            step: usize::MAX,
            reads: 0,
        };
        // LVM's 128 KiB at the start: one read.
        let head = read_at(&mut whole, 0, LVM_SCAN_BYTES as u64).expect("head");
        assert_eq!(head, data[..LVM_SCAN_BYTES]);
        assert_eq!(whole.reads, 1);
        // A range over three chunks, from an odd offset: one read per chunk.
        whole.reads = 0;
        let len = data.len() as u64 - 7;
        let got = read_at(&mut whole, 7, len).expect("range");
        assert_eq!(got, data[7..]);
        assert_eq!(whole.reads, 3);
        // Past the end: a short read is an error, not a shorter buffer.
        let e = read_at(&mut whole, 10, data.len() as u64).expect_err("past the end");
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        // A reader that gives little at a time still yields the whole range.
        let mut slow = Trickle {
            inner: Cursor::new(data.clone()),
            step: 1000,
            reads: 0,
        };
        let got = read_at(&mut slow, 3, 70_000).expect("trickle");
        assert_eq!(got, data[3..70_003]);
        // A bogus length from disk does not allocate ahead of the data.
        let e = read_at(&mut slow, 0, u64::MAX).expect_err("bogus length");
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
    use crate::lvm::crc::lvm_crc;
    use crate::lvm::label::format_id;

    const ONE: &[u8] = include_bytes!("../../tests/fixtures/lvm/one-mda.sectors");
    const TWO: &[u8] = include_bytes!("../../tests/fixtures/lvm/two-mda.sectors");
    const WRAPPED: &[u8] = include_bytes!("../../tests/fixtures/lvm/wrapped.sectors");

    /// Rebuild an image from the sparse format written by `tests/fixtures/lvm/sectors.py`.
    fn image(sparse: &[u8]) -> Vec<u8> {
        let size = u64::from_le_bytes(sparse[..8].try_into().expect("8 bytes")) as usize;
        let mut img = vec![0u8; size];
        for rec in sparse[8..].chunks(520) {
            let sector = u64::from_le_bytes(rec[..8].try_into().expect("8 bytes")) as usize;
            img[sector * 512..sector * 512 + 512].copy_from_slice(&rec[8..]);
        }
        img
    }

    fn scan(img: &[u8]) -> PvScan {
        scan_device(&mut Cursor::new(img.to_vec()), "img")
            .expect("scan")
            .expect("a pv")
    }

    fn fixture_text(name: &str) -> (Vec<String>, String) {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/lvm/");
        let pvs = std::fs::read_to_string(format!("{dir}{name}.pvs.txt")).expect("pvs");
        let pvck = std::fs::read_to_string(format!("{dir}{name}.pvck.txt")).expect("pvck");
        let body = pvck.split_once("  ---\n").expect("pvck header").1;
        let body = body.rsplit_once("\n  ---").expect("pvck trailer").0;
        (
            pvs.split_whitespace().map(String::from).collect(),
            body.to_string(),
        )
    }

    pub(crate) fn seqno(text: &[u8]) -> u64 {
        let text = String::from_utf8_lossy(text);
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("seqno = "))
            .expect("seqno line");
        line.trim_start()["seqno = ".len()..]
            .trim()
            .parse()
            .expect("number")
    }

    pub(crate) fn bump(text: &[u8]) -> Vec<u8> {
        let n = seqno(text);
        String::from_utf8_lossy(text)
            .replacen(
                &format!("seqno = {n}\n"),
                &format!("seqno = {}\n", n + 1),
                1,
            )
            .into_bytes()
    }

    #[test]
    fn fixtures_read_like_stock_lvm_says() {
        for (name, sparse, mdas) in [
            ("one-mda", ONE, 1),
            ("two-mda", TWO, 2),
            ("wrapped", WRAPPED, 1),
        ] {
            let pv = scan(&image(sparse));
            let (pvs, pvck) = fixture_text(name);
            // pvs: pv_uuid dev_size pv_mda_count pv_mda_size pe_start
            assert_eq!(pv.pv_header.uuid_formatted(), pvs[0], "{name}");
            assert_eq!(format_id(&pv.pv_header.uuid), pvs[0]);
            assert_eq!(pv.pv_header.device_size.to_string(), pvs[1], "{name}");
            assert_eq!(pv.device_size.to_string(), pvs[1], "{name}");
            assert_eq!(pv.mdas.len(), mdas, "{name}");
            assert_eq!(pvs[2], mdas.to_string());
            let min_mda = pv.mdas.iter().map(|m| m.area.size).min().expect("mda");
            assert_eq!(min_mda.to_string(), pvs[3], "{name}");
            assert_eq!(
                pv.pv_header.data_areas[0].offset.to_string(),
                pvs[4],
                "{name}"
            );
            assert_eq!(pv.label.sector, 1);
            let ext = pv.pv_header.extension.as_ref().expect("extension");
            assert_eq!((ext.version, ext.flags), (2, 1), "{name}: v2, PV_EXT_USED");
            for m in &pv.mdas {
                let c = m.content.as_ref().expect("mda ok");
                let text = &c.committed.as_ref().expect("committed").text;
                assert_eq!(
                    String::from_utf8_lossy(text).trim_end(),
                    pvck.trim_end(),
                    "{name}"
                );
                assert_eq!(c.header.precommitted(), &RawLocn::default());
            }
            assert_eq!(
                pv.committed_text().expect("text").wrapped,
                name == "wrapped",
                "{name}"
            );
        }
    }

    #[test]
    fn text_size_includes_the_nul_lvm_writes() {
        let img = image(ONE);
        let pv = scan(&img);
        let c = pv.committed_text().expect("text");
        assert_eq!(c.locn.size, c.text.len() as u64 + 1);
        let start = (4096 + c.locn.offset) as usize;
        let on_disk = &img[start..start + c.locn.size as usize];
        assert_eq!(on_disk.last(), Some(&0));
        assert_eq!(lvm_crc(on_disk), c.locn.checksum);
    }

    #[test]
    fn no_label_is_none() {
        for img in [vec![], vec![0u8; 100], vec![0u8; 1 << 20]] {
            let got = scan_device(&mut Cursor::new(img), "zero").expect("scan");
            assert!(got.is_none());
        }
    }

    #[test]
    fn damaged_label_is_an_error_naming_the_device() {
        let mut img = image(ONE);
        img[512 + 100] ^= 1;
        let err = scan_device(&mut Cursor::new(img), "/dev/loop7").expect_err("bad label");
        assert!(
            err.to_string()
                .starts_with("/dev/loop7: label in sector 1 has checksum"),
            "{err}"
        );
    }

    #[test]
    fn one_bad_mda_does_not_hide_the_other() {
        let img = image(TWO);
        let pv = scan(&img);
        let second = pv.mdas[1].area.offset as usize;
        let text_at = |m: &MdaScan| {
            let c = m.content.as_ref().expect("ok");
            (m.area.offset + c.committed.as_ref().expect("text").locn.offset) as usize
        };
        // A flipped byte in the first area's text.
        let mut bad = img.clone();
        bad[text_at(&pv.mdas[0]) + 10] ^= 4;
        let p = scan(&bad);
        assert!(matches!(
            p.mdas[0].content,
            Err(MdaError::TextChecksum { start: 4096, .. })
        ));
        assert!(p.mdas[1].content.is_ok());
        assert_eq!(
            p.committed_text(),
            pv.mdas[1].content.as_ref().expect("ok").committed.as_ref()
        );
        // A flipped byte in the second area's header.
        let mut bad = img.clone();
        bad[second + 200] ^= 1;
        let p = scan(&bad);
        assert!(p.mdas[0].content.is_ok());
        let err = p.mdas[1].content.clone().expect_err("bad header");
        assert!(matches!(err, MdaError::BadChecksum { .. }), "{err}");
    }

    #[test]
    fn areas_outside_a_truncated_device_are_refused() {
        let img = image(TWO);
        let pv = scan(&img);
        let cut = &img[..pv.mdas[1].area.offset as usize + 1000];
        let p = scan(cut);
        assert!(p.mdas[0].content.is_ok());
        let err = p.mdas[1].content.clone().expect_err("outside");
        assert!(matches!(err, MdaError::AreaOutsideDevice { .. }), "{err}");
        // Cut inside the first area's text.
        let p = scan(&img[..6000]);
        assert!(matches!(
            p.mdas[0].content,
            Err(MdaError::AreaOutsideDevice { .. })
        ));
    }

    #[test]
    fn huge_sizes_in_a_slot_are_refused_without_allocating() {
        let mut img = image(ONE);
        let h = 4096;
        img[h + 48..h + 56].copy_from_slice(&u64::MAX.to_le_bytes());
        let crc = lvm_crc(&img[h + 4..h + 512]);
        img[h..h + 4].copy_from_slice(&crc.to_le_bytes());
        let p = scan(&img);
        let err = p.mdas[0].content.clone().expect_err("huge");
        assert!(
            matches!(err, MdaError::LocationOutOfBounds { slot: 0, .. }),
            "{err}"
        );
        // A huge area in the PV header.
        let mut img = image(ONE);
        let l = 512;
        // mda list: after uuid(32)+size(8)+data area(16)+terminator(16) at label+32.
        let mda_size_at = l + 32 + 40 + 32 + 8;
        img[mda_size_at..mda_size_at + 8].copy_from_slice(&(u64::MAX - 10).to_le_bytes());
        let crc = lvm_crc(&img[l + 20..l + 512]);
        img[l + 16..l + 20].copy_from_slice(&crc.to_le_bytes());
        let p = scan(&img);
        assert!(matches!(
            p.mdas[0].content,
            Err(MdaError::AreaOutsideDevice { .. })
        ));
    }

    #[test]
    fn the_pv_headers_area_size_is_not_relied_on_for_reading_only() {
        // pvcreate writes the same size in the PV header and the area's header; LVM reads the
        // ring by the header's alone. rewind reads the same, and writes only where they agree.
        let l = 512;
        let mda_size_at = l + 32 + 40 + 32 + 8;
        let whole = scan(&image(ONE)).mdas[0].area.size;
        for size in [0u64, 511, whole - 512] {
            let mut img = image(ONE);
            img[mda_size_at..mda_size_at + 8].copy_from_slice(&size.to_le_bytes());
            let crc = lvm_crc(&img[l + 20..l + 512]);
            img[l + 16..l + 20].copy_from_slice(&crc.to_le_bytes());
            let p = scan(&img);
            let c = p.mdas[0]
                .content
                .as_ref()
                .expect("read by the header's size");
            assert!(c.committed.is_some(), "size {size}");
            let text = bump(&c.committed.as_ref().expect("text").text);
            let before = img.clone();
            let mut pvs = devices(&[img]);
            let err = commit(&mut pvs, &text).expect_err("not written");
            assert!(
                matches!(err, CommitError::AreaSizeMismatch { area_size, .. } if area_size == size),
                "{err}"
            );
            assert_eq!(pvs[0].1.get_ref(), &before, "nothing written");
        }
    }

    fn rescan_texts(imgs: &[Vec<u8>]) -> Vec<Vec<u8>> {
        imgs.iter()
            .flat_map(|img| {
                scan(img)
                    .mdas
                    .into_iter()
                    .map(|m| m.content.expect("mda ok").committed.expect("text").text)
            })
            .collect()
    }

    fn devices(imgs: &[Vec<u8>]) -> Vec<(PvScan, Cursor<Vec<u8>>)> {
        imgs.iter()
            .map(|i| (scan(i), Cursor::new(i.clone())))
            .collect()
    }

    #[test]
    fn commit_round_trips_and_wraps() {
        let mut pvs = devices(&[image(TWO), image(WRAPPED), image(ONE)]);
        let mut text = pvs[0].0.committed_text().expect("text").text.clone();
        let mut wrapped = 0;
        for i in 0..300 {
            text = bump(&text);
            // Vary the size so placements and wraps move around the ring.
            let mut t = String::from_utf8_lossy(&text).into_owned();
            t.push_str(&"# pad\n".repeat(i % 37));
            let report = commit(&mut pvs, t.as_bytes()).expect("commit");
            assert_eq!(report.mdas.len(), 4);
            wrapped += report.mdas.iter().filter(|m| m.wrapped).count();
            let imgs: Vec<Vec<u8>> = pvs.iter().map(|(_, d)| d.get_ref().clone()).collect();
            for got in rescan_texts(&imgs) {
                assert_eq!(got, t.as_bytes(), "round {i}");
            }
            for (pv, dev) in &pvs {
                assert_eq!(&scan(dev.get_ref()), pv, "scan state kept in step");
            }
        }
        assert!(wrapped > 10, "the ring wrapped {wrapped} times");
    }

    #[test]
    fn a_crash_at_any_step_leaves_old_or_new() {
        // Two PVs of different VGs: the writer does not care, and each area's text must end
        // up as either its own old text or the new one.
        let imgs = vec![image(TWO), image(WRAPPED)];
        let olds = rescan_texts(&imgs);
        let new = bump(&olds[0]);
        let mut total = 0;
        for stop in 0.. {
            let mut pvs = devices(&imgs);
            let mut n = 0;
            let r = commit_with_hook(&mut pvs, &new, &mut |_| {
                n += 1;
                n <= stop
            });
            let after: Vec<Vec<u8>> = pvs.iter().map(|(_, d)| d.get_ref().clone()).collect();
            let texts = rescan_texts(&after);
            for (t, old) in texts.iter().zip(&olds) {
                assert!(t == old || *t == new, "stop {stop}");
            }
            if r.is_ok() {
                assert!(texts.iter().all(|t| *t == new));
                total = stop;
                break;
            }
            assert!(matches!(r, Err(CommitError::Stopped { .. })));
            // Recovery: a fresh scan and commit of the same text finishes the job.
            let mut again = devices(&after);
            commit(&mut again, &new).expect("rerun");
            let fin: Vec<Vec<u8>> = again.iter().map(|(_, d)| d.get_ref().clone()).collect();
            assert!(rescan_texts(&fin).iter().all(|t| *t == new));
        }
        assert_eq!(total, 9, "3 mdas x 3 phases");
    }

    /// A device that fails (like a power cut) once `budget` sectors were written. Disks write
    /// a 512-byte sector atomically, which LVM's header update relies on too.
    struct Torn {
        inner: Cursor<Vec<u8>>,
        budget: usize,
    }

    impl Read for Torn {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.inner.read(buf)
        }
    }
    impl Seek for Torn {
        fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
            self.inner.seek(pos)
        }
    }
    impl Write for Torn {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.budget == 0 {
                return Err(io::Error::other("power cut"));
            }
            let sectors = buf.len().div_ceil(512).min(self.budget);
            self.budget -= sectors;
            let n = buf.len().min(sectors * 512);
            self.inner.write(&buf[..n])
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    impl BlockDevice for Torn {
        fn sync(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_torn_text_write_never_shows_garbage() {
        let img = image(WRAPPED);
        let old = rescan_texts(std::slice::from_ref(&img))[0].clone();
        let new = bump(&old);
        for budget in 0..12 {
            let mut pvs = vec![(
                scan(&img),
                Torn {
                    inner: Cursor::new(img.clone()),
                    budget,
                },
            )];
            let r = commit(&mut pvs, &new);
            let after = pvs[0].1.inner.get_ref().clone();
            let t = &rescan_texts(&[after])[0];
            assert!(*t == old || *t == new, "budget {budget}");
            if r.is_err() {
                assert!(matches!(
                    r,
                    Err(CommitError::Mda {
                        source: MdaError::Io { .. },
                        ..
                    })
                ));
            }
        }
    }

    #[test]
    fn refusals_write_nothing() {
        let img = image(ONE);
        let old = rescan_texts(std::slice::from_ref(&img))[0].clone();
        // Too large for the area.
        let mut pvs = devices(std::slice::from_ref(&img));
        let mut big = old.clone();
        big.extend(std::iter::repeat_n(b'#', 40_000));
        let err = commit(&mut pvs, &big).expect_err("too large");
        assert!(
            err.to_string().contains("exceeds the maximum 29952 bytes"),
            "{err}"
        );
        assert_eq!(pvs[0].1.get_ref(), &img);
        // Interior NUL.
        let err = commit(&mut pvs, b"a\0b").expect_err("nul");
        assert!(matches!(err, CommitError::BadText));
        // Changed on disk since the scan.
        let mut pvs = devices(std::slice::from_ref(&img));
        commit(&mut devices(std::slice::from_ref(&img)), &bump(&old)).expect("other");
        let mut other = devices(std::slice::from_ref(&img));
        commit(&mut other, &bump(&old)).expect("other writer");
        pvs[0].1 = Cursor::new(other[0].1.get_ref().clone());
        let err = commit(&mut pvs, &bump(&old)).expect_err("changed");
        assert_eq!(
            err.to_string(),
            "img: metadata area header at byte 4096 changed since the scan"
        );
        // The same PV twice.
        let mut pvs = devices(&[img.clone(), img.clone()]);
        let err = commit(&mut pvs, &bump(&old)).expect_err("duplicate");
        assert!(matches!(err, CommitError::DuplicatePv { .. }), "{err}");
        assert_eq!(pvs[0].1.get_ref(), &img);
        // A bad mda refuses the whole commit.
        let mut bad = img.clone();
        bad[4096 + 300] ^= 1;
        let mut pvs = devices(&[bad.clone()]);
        let err = commit(&mut pvs, &bump(&old)).expect_err("bad mda");
        assert!(
            matches!(err, CommitError::BadMda { offset: 4096, .. }),
            "{err}"
        );
        assert_eq!(pvs[0].1.get_ref(), &bad);
    }

    #[test]
    fn ignored_mdas_are_left_alone() {
        let img = image(TWO);
        let pv = scan(&img);
        let second = pv.mdas[1].area.offset as usize;
        let mut ign = img.clone();
        ign[second + 60] |= 1; // slot 0 flags
        let crc = lvm_crc(&ign[second + 4..second + 512]);
        ign[second..second + 4].copy_from_slice(&crc.to_le_bytes());
        let mut pvs = devices(&[ign.clone()]);
        assert!(
            pvs[0].0.mdas[1]
                .content
                .as_ref()
                .expect("ok")
                .committed
                .is_none()
        );
        let old = pvs[0].0.committed_text().expect("text").text.clone();
        let report = commit(&mut pvs, &bump(&old)).expect("commit");
        assert_eq!(report.mdas.len(), 1);
        assert_eq!(report.ignored, vec![("img".to_string(), second as u64)]);
        assert_eq!(pvs[0].1.get_ref()[second..], ign[second..]);
    }

    /// A small deterministic generator (xorshift) so the mutation test needs no extra crate.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Recompute the label and mda-header checksums so mutations reach the deeper checks.
    fn refresh_checksums(img: &mut [u8], mda_starts: &[usize]) {
        let crc = lvm_crc(&img[512 + 20..1024]);
        img[512 + 16..512 + 20].copy_from_slice(&crc.to_le_bytes());
        for &m in mda_starts {
            if m + 512 <= img.len() {
                let crc = lvm_crc(&img[m + 4..m + 512]);
                img[m..m + 4].copy_from_slice(&crc.to_le_bytes());
            }
        }
    }

    #[test]
    fn mutated_images_never_panic_and_never_write_outside_areas() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let (mut committed, mut bad_mdas) = (0, 0);
        for base in [image(ONE), image(TWO), image(WRAPPED)] {
            let pv = scan(&base);
            let starts: Vec<usize> = pv.mdas.iter().map(|m| m.area.offset as usize).collect();
            // Bytes worth mutating: the PV header and the mda headers' fixed part and slots.
            let mut spots: Vec<usize> = (512 + 20..512 + 200).collect();
            for &m in &starts {
                spots.extend(m + 20..m + 88);
            }
            for round in 0..1500 {
                let mut img = base.clone();
                for _ in 0..1 + rng.below(4) {
                    let at = spots[rng.below(spots.len())];
                    img[at] = match rng.below(4) {
                        0 => 0,
                        1 => 0xff,
                        2 => img[at] ^ (1 << rng.below(8)),
                        _ => rng.next() as u8,
                    };
                }
                if round % 4 != 0 {
                    refresh_checksums(&mut img, &starts);
                }
                let Ok(Some(scanned)) = scan_device(&mut Cursor::new(img.clone()), "fuzz") else {
                    continue;
                };
                // Whatever was scanned, a commit either refuses or writes only inside the
                // areas it found, and what it leaves is readable.
                let areas: Vec<(u64, u64)> = scanned
                    .mdas
                    .iter()
                    .map(|m| (m.area.offset, m.area.offset + m.area.size))
                    .collect();
                bad_mdas += scanned.mdas.iter().filter(|m| m.content.is_err()).count();
                let mut pvs = vec![(scanned, Cursor::new(img.clone()))];
                if commit(&mut pvs, b"fuzz {\nseqno = 1\n}\n").is_ok() {
                    committed += 1;
                    let after = pvs[0].1.get_ref();
                    let sectors = img.chunks(512).zip(after.chunks(512));
                    for (n, (a, b)) in sectors.enumerate() {
                        let i = n as u64 * 512;
                        assert!(
                            a == b || areas.iter().any(|&(s, e)| s <= i && i + 512 <= e),
                            "round {round}: sector at byte {i} written outside every area"
                        );
                    }
                    let again = scan(after);
                    for m in &again.mdas {
                        let text = m.content.as_ref().ok().and_then(|c| c.committed.as_ref());
                        if let Some(t) = text {
                            assert_eq!(t.text, b"fuzz {\nseqno = 1\n}\n");
                        }
                    }
                }
            }
        }
        assert!(
            committed > 100 && bad_mdas > 100,
            "{committed} commits, {bad_mdas} bad areas"
        );
    }
}
