//! Scanning a device for an LVM2 PV (label, PV header, metadata areas, committed text) and
//! committing new metadata text to every metadata area of a VG the way LVM does.
//!
//! The I/O is behind [`BlockDevice`] (any `Read + Write + Seek` that can flush to stable
//! storage), so tests run on in-memory buffers and can stop a commit after any step.

use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};

use thiserror::Error;

use super::label::{DiskLocn, Label, LabelError, PvHeader, LABEL_SCAN_BYTES, SECTOR_SIZE, find_label};
use super::mda::{
    MDA_HEADER_SIZE, MdaError, MdaHeader, RawLocn, SlotUpdate, TextWrite, parse_mda_header,
    plan_text_write, text_span, updated_header_bytes, verify_text,
};

/// A device rewind can write metadata to: `Read + Write + Seek` plus a flush to stable storage.
pub trait BlockDevice: Read + Write + Seek {
    /// Make every completed write durable (`fdatasync` for files and block devices).
    fn sync(&mut self) -> io::Result<()>;
}

impl BlockDevice for File {
    fn sync(&mut self) -> io::Result<()> {
        self.sync_data()
    }
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

/// Read exactly `len` bytes at `offset`. The buffer grows only as data arrives, so a bogus
/// length cannot allocate more than the device holds.
fn read_at<R: Read + Seek + ?Sized>(dev: &mut R, offset: u64, len: u64) -> io::Result<Vec<u8>> {
    dev.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::with_capacity(usize::try_from(len.min(1 << 20)).unwrap_or(0));
    dev.take(len).read_to_end(&mut buf)?;
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

/// Read and verify one metadata area (header, then slot 0's text).
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
    if area.offset < label_end || end > device_size || area.size < MDA_HEADER_SIZE {
        return Err(outside);
    }
    let raw = read_at(dev, area.offset, MDA_HEADER_SIZE).map_err(|e| io_err(area.offset, &e))?;
    let header = parse_mda_header(&raw, area.offset, area.size)?;
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
    let head = read_at(dev, 0, device_size.min(LABEL_SCAN_BYTES as u64)).map_err(io(0))?;
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
/// The caller is responsible for the text being a valid VG with the next seqno and for the
/// PVs being exactly the VG's PVs.
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

    let mut report = CommitReport::default();
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
            let write = plan_text_write(&content.header, &text).map_err(mda_err)?;
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

    for phase in [CommitPhase::WriteText, CommitPhase::Precommit, CommitPhase::Commit] {
        for t in &mut targets {
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
                    t.header = parse_mda_header(&raw, t.header.start, t.header.size)
                        .map_err(fail)?;
                    vec![(t.header.start, raw)]
                }
            };
            for (offset, bytes) in &writes {
                write_at(dev, *offset, bytes).map_err(|e| fail(io_err(*offset, &e)))?;
            }
            dev.sync()
                .map_err(|e| fail(io_err(writes.first().map_or(0, |w| w.0), &e)))?;
        }
    }

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
    Ok(report)
}
