//! The cases, by category. Each starts from a template made by stock LVM2 and edits its bytes;
//! text edits are written as a committed copy with correct checksums (valid but unusual
//! metadata), byte damage is left with its checksums wrong unless the case says otherwise.

use super::image::{Disk, SECTOR, lvm_crc, seqno, vg_section_end, with_seqno};
use super::templates::Tpl;
use super::{
    BAD_NUMBER, CHUNK_SIZE, CONFLICTING_TEXT, Case, Category::*, Ctx, DUPLICATE_KEY, DUPLICATE_PV,
    MISSING_PV, NEGATIVE, SHARED_COW, SLASH_KEY, TEXT_OUTSIDE_AREA, TRUNCATED_AREA, TWO_MERGING,
};

pub fn all() -> Vec<Case> {
    let mut v = Vec::new();
    v.extend(labels());
    v.extend(pv_headers());
    v.extend(mda_headers());
    v.extend(texts());
    v.extend(snapshots());
    v.extend(disk_sets());
    v
}

fn d0(cx: &mut Ctx) -> &mut Disk {
    &mut cx.disks[0]
}

/// Recomputes the crc of a label in `sector` (whatever the label itself says).
fn fix_label_at(d: &mut Disk, sector: usize) {
    let l = sector * SECTOR;
    let crc = lvm_crc(&d.bytes[l + 20..l + SECTOR]);
    d.put32(l + 16, crc);
}

/// Moves the label sector to `to`, with `sector_xl` and the crc made right for it.
fn move_label(d: &mut Disk, to: usize) {
    let from = d.label();
    let sec = d.bytes[from..from + SECTOR].to_vec();
    d.bytes[from..from + SECTOR].fill(0);
    d.put(to * SECTOR, &sec);
    d.put64(to * SECTOR + 8, to as u64);
    fix_label_at(d, to);
}

type Locns<'a> = &'a [(u64, u64)];

/// Rewrites the PV header's lists and extension (the rest of the label sector zeroed), crc
/// fixed.
fn rewrite_pvh(d: &mut Disk, data: Locns, mdas: Locns, ext: Option<(u32, u32, Locns)>) {
    let l = d.label();
    let mut p = d.pvh() + 40;
    d.bytes[p..l + SECTOR].fill(0);
    for list in [data, mdas] {
        for &(o, s) in list {
            d.put64(p, o);
            d.put64(p + 8, s);
            p += 16;
        }
        p += 16;
    }
    if let Some((ver, flags, bas)) = ext {
        d.put32(p, ver);
        d.put32(p + 4, flags);
        p += 8;
        for &(o, s) in bas {
            d.put64(p, o);
            d.put64(p + 8, s);
            p += 16;
        }
    }
    d.fix_label();
}

const MIB: u64 = 1 << 20;
/// pvcreate's defaults on a 16 MiB disk: data from 1 MiB, one mda at 4 KiB up to 1 MiB.
const DATA: (u64, u64) = (MIB, 0);
const MDA: (u64, u64) = (4096, MIB - 4096);

fn labels() -> Vec<Case> {
    let c = |name: &str, tpl, f: fn(&mut Ctx)| Case::new(Label, name, tpl, f);
    vec![
        c("label/as-made", Tpl::Basic, |_| {}),
        c("label/made-in-sector-0", Tpl::Label0, |_| {}),
        c("label/made-in-sector-3", Tpl::Label3, |_| {}),
        c("label/moved-to-sector-0", Tpl::Basic, |cx| {
            move_label(d0(cx), 0)
        }),
        c("label/moved-to-sector-2", Tpl::Basic, |cx| {
            move_label(d0(cx), 2)
        }),
        c("label/moved-to-sector-3", Tpl::Basic, |cx| {
            move_label(d0(cx), 3)
        }),
        c("label/moved-to-sector-4", Tpl::Basic, |cx| {
            move_label(d0(cx), 4)
        }),
        c("label/sector-xl-names-another-sector", Tpl::Basic, |cx| {
            let d = d0(cx);
            let l = d.label();
            d.put64(l + 8, 2);
            d.fix_label();
        }),
        c("label/sector-xl-huge", Tpl::Basic, |cx| {
            let d = d0(cx);
            let l = d.label();
            d.put64(l + 8, u64::MAX);
            d.fix_label();
        }),
        c("label/crc-wrong", Tpl::Basic, |cx| {
            let d = d0(cx);
            let l = d.label();
            d.bytes[l + 16] ^= 1;
        }),
        c("label/pv-header-byte-flipped", Tpl::Basic, |cx| {
            let d = d0(cx);
            let p = d.pvh();
            d.bytes[p + 3] ^= 0x20;
        }),
        c("label/type-lvm1", Tpl::Basic, |cx| {
            let d = d0(cx);
            let l = d.label();
            d.put(l + 24, b"LVM1 001");
            d.fix_label();
        }),
        c("label/type-garbage", Tpl::Basic, |cx| {
            let d = d0(cx);
            let l = d.label();
            d.put(l + 24, b"\xff\x00\x01xyz\x7f ");
            d.fix_label();
        }),
        c("label/id-lowercase", Tpl::Basic, |cx| {
            let d = d0(cx);
            let l = d.label();
            d.put(l, b"labelone");
            fix_label_at(d, l / SECTOR);
        }),
        c("label/offset-64", Tpl::Basic, |cx| {
            let d = d0(cx);
            let l = d.label();
            let hdr = d.bytes[l + 32..l + 32 + 200].to_vec();
            d.bytes[l + 32..l + SECTOR].fill(0);
            d.put(l + 64, &hdr);
            d.put32(l + 20, 64);
            d.fix_label();
        }),
        c("label/offset-0", Tpl::Basic, |cx| {
            let d = d0(cx);
            let l = d.label();
            d.put32(l + 20, 0);
            d.fix_label();
        })
        .stricter(MISSING_PV),
        c("label/offset-16", Tpl::Basic, |cx| {
            let d = d0(cx);
            let l = d.label();
            d.put32(l + 20, 16);
            d.fix_label();
        })
        .stricter(MISSING_PV),
        c("label/offset-into-next-sector", Tpl::Basic, |cx| {
            // The PV header placed in the sector after the label: outside the bytes the
            // label's crc covers.
            let d = d0(cx);
            let l = d.label();
            let hdr = d.bytes[l + 32..l + 32 + 200].to_vec();
            d.bytes[l + 32..l + SECTOR].fill(0);
            d.put(l + SECTOR + 32, &hdr);
            d.put32(l + 20, (SECTOR + 32) as u32);
            d.fix_label();
        }),
        c("label/offset-past-the-scanned-sectors", Tpl::Basic, |cx| {
            // The PV header 3000 bytes after the label: past sector 3, inside the first
            // 128 KiB LVM reads in one go when it scans.
            let d = d0(cx);
            let l = d.label();
            let hdr = d.bytes[l + 32..l + 32 + 200].to_vec();
            d.bytes[l + 32..l + SECTOR].fill(0);
            d.put(l + 3000, &hdr);
            d.put32(l + 20, 3000);
            d.fix_label();
        }),
        c("label/offset-huge", Tpl::Basic, |cx| {
            let d = d0(cx);
            let l = d.label();
            d.put32(l + 20, 0x7fff_fff0);
            d.fix_label();
        }),
        c("label/second-valid-label-in-sector-3", Tpl::Basic, |cx| {
            let d = d0(cx);
            let l = d.label();
            let sec = d.bytes[l..l + SECTOR].to_vec();
            d.put(3 * SECTOR, &sec);
            d.put64(3 * SECTOR + 8, 3);
            fix_label_at(d, 3);
        }),
        c(
            "label/damaged-label-in-sector-0-before-good",
            Tpl::Basic,
            |cx| {
                let d = d0(cx);
                let l = d.label();
                let sec = d.bytes[l..l + SECTOR].to_vec();
                d.put(0, &sec);
                d.put64(8, 0);
                d.bytes[100] ^= 0xff;
            },
        ),
        c("label/copy-in-sector-0-wrong-sector-xl", Tpl::Basic, |cx| {
            let d = d0(cx);
            let l = d.label();
            let sec = d.bytes[l..l + SECTOR].to_vec();
            d.put(0, &sec);
        }),
        c(
            "label/stale-label-of-another-pv-in-sector-0",
            Tpl::Basic,
            |cx| {
                // An older label (another PV uuid) left in sector 0: LVM takes the first valid.
                let d = d0(cx);
                let l = d.label();
                let mut sec = d.bytes[l..l + SECTOR].to_vec();
                sec[32..38].copy_from_slice(b"STALE0");
                sec[8..16].copy_from_slice(&0u64.to_le_bytes());
                d.put(0, &sec);
                fix_label_at(d, 0);
            },
        )
        .stricter(MISSING_PV),
        c("label/id-zeroed-crc-stale", Tpl::Basic, |cx| {
            // Not LABELONE: LVM then checks neither sector_xl nor the crc, only the type.
            let d = d0(cx);
            let l = d.label();
            d.bytes[l..l + 8].fill(0);
            d.bytes[l + 16] ^= 0xff;
        }),
        c("label/id-zeroed-sector-xl-wrong", Tpl::Basic, |cx| {
            let d = d0(cx);
            let l = d.label();
            d.put64(l + 8, 7);
            d.bytes[l..l + 8].fill(0);
        }),
        c(
            "label/type-only-in-sector-0-before-good",
            Tpl::Basic,
            |cx| {
                // A sector 0 holding only "LVM2 001" at byte 24 (and a PV header of zeros).
                let d = d0(cx);
                d.bytes[..SECTOR].fill(0);
                d.put(24, b"LVM2 001");
                d.put32(20, 32);
            },
        ),
        c("label/zeroed", Tpl::Basic, |cx| {
            let d = d0(cx);
            let l = d.label();
            d.bytes[l..l + SECTOR].fill(0);
        }),
        c("label/tail-bytes-set-crc-fixed", Tpl::Basic, |cx| {
            let d = d0(cx);
            let l = d.label();
            d.bytes[l + 400..l + SECTOR].fill(0xaa);
            d.fix_label();
        }),
        c("label/tail-bytes-set-crc-stale", Tpl::Basic, |cx| {
            let d = d0(cx);
            let l = d.label();
            d.bytes[l + 400..l + SECTOR].fill(0xaa);
        }),
        c("label/garbage-in-other-scan-sectors", Tpl::Basic, |cx| {
            let d = d0(cx);
            d.bytes[..SECTOR].fill(0x5a);
            d.bytes[2 * SECTOR..4 * SECTOR].fill(0xa5);
        }),
    ]
}

fn pv_headers() -> Vec<Case> {
    let c = |name: &str, tpl, f: fn(&mut Ctx)| Case::new(PvHeader, name, tpl, f);
    vec![
        c("pv/uuid-another", Tpl::Basic, |cx| {
            let d = d0(cx);
            let p = d.pvh();
            d.put(p, b"Another0PvUuid00000000000000000X");
            d.fix_label();
        })
        .stricter(MISSING_PV),
        c("pv/uuid-non-printable", Tpl::Basic, |cx| {
            let d = d0(cx);
            let p = d.pvh();
            d.bytes[p + 5] = 0x01;
            d.fix_label();
        })
        .stricter(MISSING_PV),
        c("pv/uuid-bad-char", Tpl::Basic, |cx| {
            let d = d0(cx);
            let p = d.pvh();
            d.bytes[p + 5] = b'!';
            d.fix_label();
        })
        .stricter(MISSING_PV),
        c("pv/device-size-small", Tpl::Basic, |cx| {
            let d = d0(cx);
            let p = d.pvh();
            d.put64(p + 32, MIB);
            d.fix_label();
        }),
        c("pv/device-size-zero", Tpl::Basic, |cx| {
            let d = d0(cx);
            let p = d.pvh();
            d.put64(p + 32, 0);
            d.fix_label();
        }),
        c("pv/device-size-huge", Tpl::Basic, |cx| {
            let d = d0(cx);
            let p = d.pvh();
            d.put64(p + 32, u64::MAX / 2);
            d.fix_label();
        }),
        c("pv/data-area-offset-2m", Tpl::Basic, |cx| {
            rewrite_pvh(d0(cx), &[(2 * MIB, 0)], &[MDA], Some((2, 1, &[])));
        }),
        c("pv/data-area-none", Tpl::Basic, |cx| {
            rewrite_pvh(d0(cx), &[], &[MDA], Some((2, 1, &[])));
        }),
        c("pv/data-area-sized", Tpl::Basic, |cx| {
            rewrite_pvh(d0(cx), &[(MIB, 8 * MIB)], &[MDA], Some((2, 1, &[])));
        }),
        c("pv/data-areas-two", Tpl::Basic, |cx| {
            rewrite_pvh(
                d0(cx),
                &[(MIB, 4 * MIB), (8 * MIB, 0)],
                &[MDA],
                Some((2, 1, &[])),
            );
        }),
        c("pv/data-area-past-device", Tpl::Basic, |cx| {
            rewrite_pvh(d0(cx), &[(64 * MIB, 0)], &[MDA], Some((2, 1, &[])));
        }),
        c("pv/mda-none", Tpl::Basic, |cx| {
            rewrite_pvh(d0(cx), &[DATA], &[], Some((2, 1, &[])));
        }),
        c("pv/mda-size-smaller-than-header-says", Tpl::Basic, |cx| {
            rewrite_pvh(d0(cx), &[DATA], &[(4096, 64 << 10)], Some((2, 1, &[])));
        }),
        c("pv/mda-size-smaller-than-text-end", Tpl::Basic, |cx| {
            rewrite_pvh(d0(cx), &[DATA], &[(4096, 2048)], Some((2, 1, &[])));
        }),
        c("pv/mda-size-larger-into-data", Tpl::Basic, |cx| {
            rewrite_pvh(d0(cx), &[DATA], &[(4096, 4 * MIB)], Some((2, 1, &[])));
        }),
        c("pv/mda-size-past-device", Tpl::Basic, |cx| {
            rewrite_pvh(d0(cx), &[DATA], &[(4096, 64 * MIB)], Some((2, 1, &[])));
        })
        .stricter(TRUNCATED_AREA),
        c("pv/mda-size-zero", Tpl::Basic, |cx| {
            rewrite_pvh(d0(cx), &[DATA], &[(4096, 0)], Some((2, 1, &[])));
        }),
        c("pv/mda-size-511", Tpl::Basic, |cx| {
            rewrite_pvh(d0(cx), &[DATA], &[(4096, 511)], Some((2, 1, &[])));
        }),
        c("pv/mda-offset-to-zeros", Tpl::Basic, |cx| {
            rewrite_pvh(d0(cx), &[DATA], &[(8192, MIB - 8192)], Some((2, 1, &[])));
        }),
        c("pv/mda-offset-over-label", Tpl::Basic, |cx| {
            rewrite_pvh(d0(cx), &[DATA], &[(512, MIB - 512)], Some((2, 1, &[])));
        }),
        c("pv/mda-offset-past-device", Tpl::Basic, |cx| {
            rewrite_pvh(d0(cx), &[DATA], &[(64 * MIB, MIB)], Some((2, 1, &[])));
        }),
        c("pv/mda-second-entry-to-zeros", Tpl::Basic, |cx| {
            rewrite_pvh(d0(cx), &[DATA], &[MDA, (12 * MIB, MIB)], Some((2, 1, &[])));
        }),
        c("pv/mda-second-entry-same-area", Tpl::Basic, |cx| {
            rewrite_pvh(d0(cx), &[DATA], &[MDA, MDA], Some((2, 1, &[])));
        }),
        c("pv/extension-absent", Tpl::Basic, |cx| {
            rewrite_pvh(d0(cx), &[DATA], &[MDA], None);
        }),
        c("pv/extension-version-1", Tpl::Basic, |cx| {
            rewrite_pvh(d0(cx), &[DATA], &[MDA], Some((1, 1, &[])));
        }),
        c("pv/extension-version-9", Tpl::Basic, |cx| {
            rewrite_pvh(d0(cx), &[DATA], &[MDA], Some((9, 1, &[])));
        }),
        c("pv/extension-flags-unused", Tpl::Basic, |cx| {
            rewrite_pvh(d0(cx), &[DATA], &[MDA], Some((2, 0, &[])));
        }),
        c("pv/extension-flags-unknown", Tpl::Basic, |cx| {
            rewrite_pvh(d0(cx), &[DATA], &[MDA], Some((2, 0xff, &[])));
        }),
        c("pv/bootloader-area-as-made", Tpl::Boot, |_| {}),
        c("pv/bootloader-area-garbage", Tpl::Basic, |cx| {
            rewrite_pvh(
                d0(cx),
                &[DATA],
                &[MDA],
                Some((2, 1, &[(u64::MAX - 5, 77), (3, 0)])),
            );
        }),
        c("pv/lists-unterminated", Tpl::Basic, |cx| {
            let d = d0(cx);
            let l = d.label();
            let (_, _, ext) = d.lists();
            for p in (ext..l + SECTOR).step_by(8) {
                d.put64(p, 4096);
            }
            d.fix_label();
        }),
        c("pv/data-list-fills-sector", Tpl::Basic, |cx| {
            let d = d0(cx);
            let l = d.label();
            let p = d.pvh() + 40;
            for q in (p..l + SECTOR).step_by(16) {
                d.put64(q, MIB);
                d.put64(q + 8, 0);
            }
            d.fix_label();
        }),
        c("pv/label-in-sector-3-lists-run-off", Tpl::Label3, |cx| {
            let d = d0(cx);
            let l = d.label();
            let (_, _, ext) = d.lists();
            for p in (ext + 8..l + SECTOR).step_by(8) {
                d.put64(p, 4096);
            }
            d.fix_label();
        }),
    ]
}

fn mda_headers() -> Vec<Case> {
    let c = |name: &str, tpl, f: fn(&mut Ctx)| Case::new(MdaHeader, name, tpl, f);
    /// The first mda of disk 0.
    fn m0(cx: &Ctx) -> u64 {
        cx.disks[0].mdas()[0].0
    }
    vec![
        c("mda/crc-wrong", Tpl::Basic, |cx| {
            let m = m0(cx) as usize;
            d0(cx).bytes[m] ^= 1;
        }),
        c("mda/magic-wrong", Tpl::Basic, |cx| {
            let m = m0(cx);
            d0(cx).bytes[m as usize + 6] = b'X';
            d0(cx).fix_mda(m);
        }),
        c("mda/version-2", Tpl::Basic, |cx| {
            let m = m0(cx);
            d0(cx).put32(m as usize + 20, 2);
            d0(cx).fix_mda(m);
        }),
        c("mda/start-wrong", Tpl::Basic, |cx| {
            let m = m0(cx);
            d0(cx).put64(m as usize + 24, 8192);
            d0(cx).fix_mda(m);
        }),
        c("mda/size-smaller", Tpl::Basic, |cx| {
            let m = m0(cx);
            cx.edit(|t| t);
            d0(cx).put64(m as usize + 32, 64 << 10);
            d0(cx).fix_mda(m);
        }),
        c("mda/size-smaller-than-text-end", Tpl::Basic, |cx| {
            let m = m0(cx);
            cx.edit(|t| t);
            d0(cx).put64(m as usize + 32, 1024);
            d0(cx).fix_mda(m);
        }),
        c("mda/size-larger-than-area", Tpl::Basic, |cx| {
            let m = m0(cx);
            d0(cx).put64(m as usize + 32, 2 * MIB);
            d0(cx).fix_mda(m);
        }),
        c("mda/size-zero", Tpl::Basic, |cx| {
            let m = m0(cx);
            d0(cx).put64(m as usize + 32, 0);
            d0(cx).fix_mda(m);
        }),
        c("mda/size-one-tib", Tpl::Basic, |cx| {
            let m = m0(cx);
            d0(cx).put64(m as usize + 32, 1 << 40);
            d0(cx).fix_mda(m);
        }),
        c("mda/size-512", Tpl::Basic, |cx| {
            let m = m0(cx);
            cx.edit(|t| t);
            d0(cx).put64(m as usize + 32, 512);
            d0(cx).fix_mda(m);
        })
        .stricter(TEXT_OUTSIDE_AREA),
        c("mda/slot0-offset-zero", Tpl::Basic, |cx| {
            let m = m0(cx);
            let s = d0(cx).slot(m, 0);
            d0(cx).set_slot(m, 0, (0, s.1, s.2, s.3));
            d0(cx).fix_mda(m);
        }),
        c("mda/slot0-empty", Tpl::Basic, |cx| {
            let m = m0(cx);
            d0(cx).set_slot(m, 0, (0, 0, 0, 0));
            d0(cx).fix_mda(m);
        }),
        c("mda/slot0-offset-past-area", Tpl::Basic, |cx| {
            let m = m0(cx);
            let s = d0(cx).slot(m, 0);
            d0(cx).set_slot(m, 0, (4 * MIB, s.1, s.2, s.3));
            d0(cx).fix_mda(m);
        }),
        c("mda/slot0-offset-in-header", Tpl::Basic, |cx| {
            let m = m0(cx);
            let s = d0(cx).slot(m, 0);
            d0(cx).set_slot(m, 0, (100, s.1, s.2, s.3));
            d0(cx).fix_mda(m);
        }),
        c("mda/slot0-size-huge", Tpl::Basic, |cx| {
            let m = m0(cx);
            let s = d0(cx).slot(m, 0);
            d0(cx).set_slot(m, 0, (s.0, 1 << 40, s.2, s.3));
            d0(cx).fix_mda(m);
        }),
        c("mda/slot0-size-zero", Tpl::Basic, |cx| {
            let m = m0(cx);
            let s = d0(cx).slot(m, 0);
            d0(cx).set_slot(m, 0, (s.0, 0, s.2, s.3));
            d0(cx).fix_mda(m);
        }),
        c("mda/slot0-checksum-wrong", Tpl::Basic, |cx| {
            let m = m0(cx);
            let s = d0(cx).slot(m, 0);
            d0(cx).set_slot(m, 0, (s.0, s.1, s.2 ^ 1, s.3));
            d0(cx).fix_mda(m);
        }),
        c("mda/text-byte-flipped", Tpl::Basic, |cx| {
            let m = m0(cx);
            let s = d0(cx).slot(m, 0);
            d0(cx).bytes[(m + s.0) as usize + 40] ^= 0x01;
        }),
        c("mda/slot0-size-without-nul", Tpl::Basic, |cx| {
            let m = m0(cx);
            let t = cx.text();
            let s = d0(cx).slot(m, 0);
            d0(cx).set_slot(m, 0, (s.0, t.len() as u64, lvm_crc(&t), 0));
            d0(cx).fix_mda(m);
        }),
        c(
            "mda/slot0-size-covers-garbage-after-nul",
            Tpl::Basic,
            |cx| {
                let m = m0(cx);
                let mut t = cx.text();
                t.push(0);
                t.extend_from_slice(b"\xff\xfe garbage } { = [");
                let s = d0(cx).slot(m, 0);
                let at = (m + s.0) as usize;
                d0(cx).put(at, &t);
                d0(cx).set_slot(m, 0, (s.0, t.len() as u64, lvm_crc(&t), 0));
                d0(cx).fix_mda(m);
            },
        ),
        c("mda/slot0-ignored", Tpl::Basic, |cx| {
            let m = m0(cx);
            let s = d0(cx).slot(m, 0);
            d0(cx).set_slot(m, 0, (s.0, s.1, s.2, 1));
            d0(cx).fix_mda(m);
        }),
        c("mda/slot0-unknown-flag-bits", Tpl::Basic, |cx| {
            let m = m0(cx);
            let s = d0(cx).slot(m, 0);
            d0(cx).set_slot(m, 0, (s.0, s.1, s.2, 6));
            d0(cx).fix_mda(m);
        }),
        c("mda/slot1-garbage", Tpl::Basic, |cx| {
            let m = m0(cx);
            d0(cx).set_slot(m, 1, (u64::MAX, 12345, 0xdead_beef, 0xff));
            d0(cx).fix_mda(m);
        }),
        c("mda/slot1-newer-precommitted-text", Tpl::Basic, |cx| {
            // An interrupted commit: a newer text written and precommitted, never committed.
            let m = m0(cx);
            let old = d0(cx).slot(m, 0);
            let t = super::image::replace(&cx.text(), b"tags = [\"keep\"]", b"tags = [\"new\"]");
            let mut n = t.clone();
            n.push(0);
            let at = (old.0 + old.1).div_ceil(512) * 512;
            d0(cx).put((m + at) as usize, &n);
            d0(cx).set_slot(m, 1, (at, n.len() as u64, lvm_crc(&n), 0));
            d0(cx).fix_mda(m);
        }),
        c("mda/slot2-set", Tpl::Basic, |cx| {
            let m = m0(cx);
            let s = d0(cx).slot(m, 0);
            d0(cx).set_slot(m, 2, s);
            d0(cx).fix_mda(m);
        }),
        c("mda/header-tail-garbage-crc-fixed", Tpl::Basic, |cx| {
            let m = m0(cx) as usize;
            d0(cx).bytes[m + 200..m + 512].fill(0x77);
            d0(cx).fix_mda(m as u64);
        }),
        c("mda/text-unaligned-offset", Tpl::Basic, |cx| {
            let m = m0(cx);
            let t = cx.text();
            d0(cx).write_text_at(m, &t, 700);
        }),
        c("mda/text-wrapped", Tpl::SmallMda, |cx| {
            let m = m0(cx);
            let t = cx.text();
            let size = d0(cx).mda_size(m);
            d0(cx).write_text_at(m, &t, size - 1024);
        }),
        c("mda/text-wrapped-crc-not-chained", Tpl::SmallMda, |cx| {
            let m = m0(cx);
            let t = cx.text();
            let size = d0(cx).mda_size(m);
            d0(cx).write_text_at(m, &t, size - 1024);
            let mut n = t.clone();
            n.push(0);
            let s = d0(cx).slot(m, 0);
            // The checksum of the bytes in ring order, as if they did not wrap: wrong.
            let first = &n[..1024];
            let crc = lvm_crc(&[&n[1024..], first].concat());
            d0(cx).set_slot(m, 0, (s.0, s.1, crc, 0));
            d0(cx).fix_mda(m);
        }),
        c("mda/text-ends-at-area-end", Tpl::SmallMda, |cx| {
            let m = m0(cx);
            let t = cx.text();
            let size = d0(cx).mda_size(m);
            d0(cx).write_text_at(m, &t, size - t.len() as u64 - 1);
        }),
        c("mda/text-wraps-over-its-own-start", Tpl::SmallMda, |cx| {
            // slot size larger than the ring: the copy would overlap itself.
            let m = m0(cx);
            let size = d0(cx).mda_size(m);
            let s = d0(cx).slot(m, 0);
            d0(cx).set_slot(m, 0, (s.0, size, s.2, 0));
            d0(cx).fix_mda(m);
        }),
        c("mda/two-as-made", Tpl::TwoMda, |_| {}),
        c("mda/two-first-damaged", Tpl::TwoMda, |cx| {
            let m = m0(cx) as usize;
            d0(cx).bytes[m + 8] ^= 1;
        }),
        c("mda/two-second-damaged", Tpl::TwoMda, |cx| {
            let m = cx.disks[0].mdas()[1].0 as usize;
            d0(cx).bytes[m + 8] ^= 1;
        }),
        c("mda/two-both-damaged", Tpl::TwoMda, |cx| {
            for (m, _) in cx.disks[0].mdas() {
                d0(cx).bytes[m as usize + 8] ^= 1;
            }
        }),
        c("mda/two-second-newer", Tpl::TwoMda, |cx| {
            // An interrupted commit: the second area has the next seqno, the first does not.
            let t = cx.text();
            let t = with_seqno(&t, seqno(&t) + 1);
            let t = super::image::replace(&t, b"extent_count = 4", b"extent_count = 3");
            let m2 = cx.disks[0].mdas()[1].0;
            d0(cx).write_text_at(m2, &t, 512);
        }),
        c("mda/two-first-newer", Tpl::TwoMda, |cx| {
            let t = cx.text();
            let t = with_seqno(&t, seqno(&t) + 1);
            let t = super::image::replace(&t, b"extent_count = 4", b"extent_count = 3");
            let m = m0(cx);
            d0(cx).write_text_at(m, &t, 512);
        }),
        c("mda/two-same-seqno-different-text", Tpl::TwoMda, |cx| {
            let m2 = cx.disks[0].mdas()[1].0;
            let t =
                super::image::replace(&cx.text(), b"creation_host = \"", b"creation_host = \"x");
            let t = super::image::replace(&t, b"extent_count = 4", b"extent_count = 3");
            d0(cx).write_text_at(m2, &t, 512);
        })
        .stricter(CONFLICTING_TEXT),
        c("mda/two-first-ignored", Tpl::TwoMda, |cx| {
            let m = m0(cx);
            let s = d0(cx).slot(m, 0);
            d0(cx).set_slot(m, 0, (s.0, s.1, s.2, 1));
            d0(cx).fix_mda(m);
        }),
    ]
}

/// An LV section for the Basic template's free extents (pv0 8..15).
fn linear_lv(name: &str, id: &str, status: &str, extents: u64, pe: u64) -> String {
    format!(
        "{name} {{\nid = \"{id}\"\nstatus = {status}\nflags = []\nsegment_count = 1\n\n\
         segment1 {{\nstart_extent = 0\nextent_count = {extents}\n\ntype = \"striped\"\n\
         stripe_count = 1\n\nstripes = [\n\"pv0\", {pe}\n]\n}}\n}}\n"
    )
}

const HIDDEN: &str = "[\"READ\", \"WRITE\"]";
const SHOWN: &str = "[\"READ\", \"WRITE\", \"VISIBLE\"]";

fn thin(pool_seg: &str, thin_seg: &str) -> String {
    format!(
        "pool {{\nid = \"Poolaa-aaaa-bbbb-cccc-dddd-eeee-ffff00\"\nstatus = {SHOWN}\nflags = []\n\
         segment_count = 1\n\nsegment1 {{\nstart_extent = 0\nextent_count = 4\n\n{pool_seg}}}\n}}\n\n\
         {}\n{}\n\
         thin {{\nid = \"Thinaa-aaaa-bbbb-cccc-dddd-eeee-ffff00\"\nstatus = {SHOWN}\nflags = []\n\
         segment_count = 1\n\nsegment1 {{\nstart_extent = 0\nextent_count = 4\n\n{thin_seg}}}\n}}\n",
        linear_lv(
            "pool_tmeta",
            "Poolaa-aaaa-bbbb-cccc-dddd-eeee-ffff01",
            HIDDEN,
            1,
            8
        ),
        linear_lv(
            "pool_tdata",
            "Poolaa-aaaa-bbbb-cccc-dddd-eeee-ffff02",
            HIDDEN,
            4,
            9
        ),
    )
}

const POOL_SEG: &str = "type = \"thin-pool\"\nmetadata = \"pool_tmeta\"\npool = \"pool_tdata\"\n\
    transaction_id = 0\nchunk_size = 128\ndiscards = \"passdown\"\nzero_new_blocks = 0\n";
const THIN_SEG: &str = "type = \"thin\"\nthin_pool = \"pool\"\ntransaction_id = 0\ndevice_id = 1\n";

fn raid1(seg: &str) -> String {
    let mut s = format!(
        "r {{\nid = \"Raidaa-aaaa-bbbb-cccc-dddd-eeee-ffff00\"\nstatus = {SHOWN}\nflags = []\n\
         segment_count = 1\n\nsegment1 {{\nstart_extent = 0\nextent_count = 1\n\n{seg}}}\n}}\n\n"
    );
    for (i, name) in ["r_rmeta_0", "r_rimage_0", "r_rmeta_1", "r_rimage_1"]
        .iter()
        .enumerate()
    {
        s.push_str(&linear_lv(
            name,
            &format!("Raidaa-aaaa-bbbb-cccc-dddd-eeee-ffff1{i}"),
            HIDDEN,
            1,
            8 + i as u64,
        ));
        s.push('\n');
    }
    s
}

const RAID_SEG: &str = "type = \"raid1\"\ndevice_count = 2\nregion_size = 1024\n\
    raids = [\n\"r_rmeta_0\", \"r_rimage_0\",\n\"r_rmeta_1\", \"r_rimage_1\"\n]\n";

/// A mirror LV `m` (2 images and a log) on pv0 extents 8..11.
fn mirror(seg: &str) -> String {
    let mut s = format!(
        "m {{\nid = \"Mirraa-aaaa-bbbb-cccc-dddd-eeee-ffff00\"\nstatus = {SHOWN}\nflags = []\n\
         segment_count = 1\n\nsegment1 {{\nstart_extent = 0\nextent_count = 1\n\n{seg}}}\n}}\n\n"
    );
    for (i, name) in ["m_mlog", "m_mimage_0", "m_mimage_1"].iter().enumerate() {
        s.push_str(&linear_lv(
            name,
            &format!("Mirraa-aaaa-bbbb-cccc-dddd-eeee-ffff1{i}"),
            HIDDEN,
            1,
            8 + i as u64,
        ));
        s.push('\n');
    }
    s
}

const MIRROR_SEG: &str = "type = \"mirror\"\nmirror_count = 2\nmirror_log = \"m_mlog\"\n\
    region_size = 1024\n\nmirrors = [\n\"m_mimage_0\", 0,\n\"m_mimage_1\", 0\n]\n";

/// A cached LV `cached` (origin `cached_corig`) over a cache pool `cpool`, pv0 extents 8..10.
fn cache(pool_seg: &str, cache_seg: &str) -> String {
    format!(
        "cpool {{\nid = \"Cpoola-aaaa-bbbb-cccc-dddd-eeee-ffff00\"\nstatus = {HIDDEN}\nflags = []\n\
         segment_count = 1\n\nsegment1 {{\nstart_extent = 0\nextent_count = 1\n\n{pool_seg}}}\n}}\n\n\
         {}\n{}\n{}\n\
         cached {{\nid = \"Cacheb-aaaa-bbbb-cccc-dddd-eeee-ffff00\"\nstatus = {SHOWN}\nflags = []\n\
         segment_count = 1\n\nsegment1 {{\nstart_extent = 0\nextent_count = 1\n\n{cache_seg}}}\n}}\n",
        linear_lv(
            "cpool_cdata",
            "Cpoola-aaaa-bbbb-cccc-dddd-eeee-ffff01",
            HIDDEN,
            1,
            8
        ),
        linear_lv(
            "cpool_cmeta",
            "Cpoola-aaaa-bbbb-cccc-dddd-eeee-ffff02",
            HIDDEN,
            1,
            9
        ),
        linear_lv(
            "cached_corig",
            "Cacheb-aaaa-bbbb-cccc-dddd-eeee-ffff01",
            HIDDEN,
            1,
            10
        ),
    )
}

const CPOOL_SEG: &str = "type = \"cache-pool\"\ndata = \"cpool_cdata\"\nmetadata = \"cpool_cmeta\"\n\
    metadata_format = 2\nchunk_size = 128\ncache_mode = \"writethrough\"\npolicy = \"smq\"\n";
const CACHE_SEG: &str = "type = \"cache\"\ncache_pool = \"cpool\"\norigin = \"cached_corig\"\n";

fn without(seg: &str, key: &str) -> String {
    seg.lines()
        .filter(|l| !l.starts_with(key))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn texts() -> Vec<Case> {
    let c = |name: &str, f: fn(&mut Ctx)| Case::new(Text, name, Tpl::Basic, f);
    fn after_vg(cx: &mut Ctx, tail: &[u8]) {
        cx.edit(|t| {
            let end = vg_section_end(&t);
            let mut out = t[..end].to_vec();
            out.extend_from_slice(tail);
            out
        });
    }
    let mut v = vec![
        c("text/rewritten-unchanged", |cx| cx.edit(|t| t)),
        // Bytes that are not UTF-8.
        c("text/non-utf8-creation-host", |cx| {
            cx.edit(|t| {
                super::image::replace_after(
                    &t,
                    b"contents = ",
                    b"creation_host = \"",
                    b"creation_host = \"h\xe9te-\xff",
                )
            })
        }),
        c("text/non-utf8-description", |cx| {
            cx.sub_bytes(b"description = \"", b"description = \"caf\xe9 \xc3\x28 ")
        }),
        c("text/non-utf8-lv-creation-host", |cx| {
            cx.sub_bytes(b"creation_host = \"vm\"", b"creation_host = \"v\xfem\"")
        }),
        c("text/non-utf8-comment", |cx| {
            cx.sub_bytes(b"\ncontents = ", b"\n# \xff\xfe latin-1: \xe9\ncontents = ")
        }),
        c("text/non-utf8-comment-in-vg", |cx| {
            cx.sub_bytes(b"\nseqno = ", b"\n# \xff\xfe\nseqno = ")
        }),
        c("text/non-utf8-unknown-key-in-vg", |cx| {
            cx.sub_bytes(b"\nseqno = ", b"\nnote = \"\xff\"\nseqno = ")
        }),
        c("text/non-utf8-unknown-key-top-level", |cx| {
            cx.sub_bytes(b"\ncontents = ", b"\nnote = \"\xff\xfe\"\ncontents = ")
        }),
        c("text/non-utf8-device-hint", |cx| {
            cx.sub_bytes(b"device = \"/dev/", b"device = \"/dev/\xff")
        }),
        c("text/non-utf8-lv-tag", |cx| {
            cx.sub_bytes(b"tags = [\"keep\"]", b"tags = [\"k\xffep\"]")
        }),
        c("text/non-utf8-lv-name", |cx| {
            cx.sub_bytes(b"\ndata {", b"\nd\xe9ta {")
        }),
        c("text/non-utf8-key-name", |cx| {
            cx.sub_bytes(b"\nseqno = ", b"\nn\xffte = 1\nseqno = ")
        }),
        // What follows the VG's own section.
        c("text/after-vg-nothing", |cx| after_vg(cx, b"\n")),
        c("text/after-vg-binary-junk", |cx| {
            after_vg(cx, b"\n\x01\x02\xff\xfe}}{{\"\x7f junk = [ \n")
        }),
        c("text/after-vg-extra-close-brace", |cx| {
            after_vg(
                cx,
                b"\n}\ncontents = \"Text Format Volume Group\"\nversion = 1\n",
            )
        }),
        c("text/after-vg-unterminated-string", |cx| {
            after_vg(
                cx,
                b"\ncontents = \"Text Format Volume Group\"\nversion = 1\ndescription = \"cut off",
            )
        }),
        c("text/after-vg-missing-value", |cx| {
            after_vg(cx, b"\ncontents = \nversion = 1\n")
        }),
        c("text/after-vg-second-section", |cx| {
            after_vg(cx, b"\nother {\na = 1\n}\n")
        }),
        c("text/after-vg-unclosed-section", |cx| {
            after_vg(cx, b"\nother {\na = 1\n")
        }),
        c("text/header-keys-before-vg", |cx| {
            cx.edit(|t| {
                let end = vg_section_end(&t);
                let mut out = b"contents = \"Text Format Volume Group\"\nversion = 1\n\n".to_vec();
                out.extend_from_slice(&t[..end]);
                out.push(b'\n');
                out
            })
        }),
        c("text/empty", |cx| cx.set_text(b"")),
        c("text/not-metadata", |cx| cx.set_text(b"hello world\n")),
        c("text/only-header-keys", |cx| {
            cx.set_text(b"contents = \"Text Format Volume Group\"\nversion = 1\n")
        }),
        c("text/two-vg-sections", |cx| {
            cx.edit(|t| {
                let end = vg_section_end(&t);
                let mut out = t[..end].to_vec();
                out.extend_from_slice(
                    b"\nsecond {\nid = \"abcdef-ABCD-EF01-2345-6789-abcd-efABCD\"\nseqno = 1\n}\n",
                );
                out.extend_from_slice(&t[end..]);
                out
            })
        }),
        c("text/nul-inside", |cx| {
            // A NUL in the middle of the text (checksum over all of it): the text ends there.
            cx.sub_bytes(b"\ncontents = ", b"\n\0contents = ")
        }),
        // Grammar.
        c("text/crlf-line-ends", |cx| {
            cx.edit(|t| {
                let mut out = Vec::new();
                for &b in &t {
                    if b == b'\n' {
                        out.push(b'\r');
                    }
                    out.push(b);
                }
                out
            })
        }),
        c("text/tabs-and-indents", |cx| {
            cx.edit(|t| {
                let s = String::from_utf8(t).expect("utf8");
                s.lines()
                    .map(|l| format!("\t \t{l}\t \n"))
                    .collect::<String>()
                    .into_bytes()
            })
        }),
        c("text/no-final-newline", |cx| {
            cx.edit(|t| {
                let end = vg_section_end(&t);
                t[..end].to_vec()
            })
        }),
        c("text/comments-everywhere", |cx| {
            cx.edit(|t| {
                let s = String::from_utf8(t).expect("utf8");
                s.lines()
                    .map(|l| format!("{l} # comment {{ [ \" \n"))
                    .collect::<String>()
                    .into_bytes()
            })
        }),
        c("text/single-quoted-strings", |cx| {
            cx.sub(
                "status = [\"RESIZEABLE\", \"READ\", \"WRITE\"]",
                "status = ['RESIZEABLE', 'READ', 'WRITE']",
            )
        }),
        c("text/array-without-commas", |cx| {
            cx.sub(
                "status = [\"RESIZEABLE\", \"READ\", \"WRITE\"]",
                "status = [\"RESIZEABLE\" \"READ\" \"WRITE\"]",
            )
        }),
        c("text/array-trailing-comma", |cx| {
            cx.sub(
                "status = [\"RESIZEABLE\", \"READ\", \"WRITE\"]",
                "status = [\"RESIZEABLE\", \"READ\", \"WRITE\",]",
            )
        }),
        c("text/bare-word-strings", |cx| {
            cx.sub("format = \"lvm2\"", "format = lvm2")
        }),
        c("text/octal-number", |cx| {
            cx.sub("extent_size = 2048", "extent_size = 04000")
        }),
        c("text/hex-number", |cx| {
            cx.sub("extent_size = 2048", "extent_size = 0x800")
        }),
        c("text/float-for-integer", |cx| {
            cx.sub("max_lv = 0", "max_lv = 0.0")
        }),
        c("text/plus-sign", |cx| cx.sub("max_lv = 0", "max_lv = +0")),
        c("text/integer-overflow", |cx| {
            cx.sub("max_lv = 0", "max_lv = 99999999999999999999999")
        }),
        c("text/string-for-integer", |cx| {
            cx.sub("max_lv = 0", "max_lv = \"0\"")
        }),
        c("text/integer-for-string", |cx| {
            cx.sub("format = \"lvm2\"", "format = 2")
        }),
        c("text/escaped-quote-in-description", |cx| {
            cx.sub(
                "description = \"",
                "description = \"a \\\"quoted\\\" word \\\\ and \\n ",
            )
        }),
        c("text/quoted-key", |cx| {
            cx.sub("\nmax_lv = 0", "\n\"max_lv\" = 0")
        }),
        c("text/key-with-slash", |cx| {
            cx.sub("\nmax_lv = 0", "\nmax/lv = 0")
        }),
        c("text/duplicate-key-in-vg", |cx| {
            cx.sub("\nmax_lv = 0", "\nmax_lv = 0\nmax_lv = 0")
        })
        .stricter(DUPLICATE_KEY),
        c("text/duplicate-key-conflicting", |cx| {
            cx.sub("\nmax_lv = 0", "\nmax_lv = 7\nmax_lv = 0")
        })
        .stricter(DUPLICATE_KEY),
        c("text/duplicate-lv-section", |cx| {
            let lv = linear_lv(
                "data",
                "Dupaaa-aaaa-bbbb-cccc-dddd-eeee-ffff00",
                SHOWN,
                1,
                10,
            );
            cx.add_lvs(&lv)
        }),
        c("text/deep-unknown-nesting", |cx| {
            cx.sub(
                "\nmax_lv = 0",
                "\nx { y { z { w { v { u = 1 } } } } }\nmax_lv = 0",
            )
        }),
        c("text/very-long-line", |cx| {
            let long = format!("\nnote = \"{}\"\nmax_lv = 0", "x".repeat(100_000));
            cx.sub("\nmax_lv = 0", &long)
        }),
        c("text/empty-arrays", |cx| {
            cx.sub("tags = [\"keep\"]", "tags = []")
        }),
        c("text/array-of-numbers-for-status", |cx| {
            cx.sub("status = [\"ALLOCATABLE\"]", "status = [1, 2]")
        }),
        // Keys LVM does not know.
        c("text/unknown-key-top-level", |cx| {
            cx.sub("\ncontents = ", "\nfuture_key = \"x\"\ncontents = ")
        }),
        c("text/unknown-key-vg", |cx| {
            cx.sub("\nmax_lv = 0", "\nfuture_key = 1\nmax_lv = 0")
        }),
        c("text/unknown-key-pv", |cx| {
            cx.sub("\npe_start = ", "\nfuture_key = 1\npe_start = ")
        }),
        c("text/unknown-key-lv", |cx| {
            cx.sub(
                "\nsegment_count = 1",
                "\nfuture_key = [1, \"a\"]\nsegment_count = 1",
            )
        }),
        c("text/unknown-key-segment", |cx| {
            cx.sub("\nstripe_count = 1", "\nfuture_key = 1\nstripe_count = 1")
        }),
        c("text/unknown-section-vg", |cx| {
            cx.sub("\nmax_lv = 0", "\nfuture_section {\na = 1\n}\nmax_lv = 0")
        }),
        // Status flags and flags.
        c("text/unknown-vg-status", |cx| {
            cx.sub(
                "\"RESIZEABLE\", \"READ\", \"WRITE\"]",
                "\"RESIZEABLE\", \"READ\", \"WRITE\", \"FUTURE\"]",
            )
        }),
        c("text/unknown-pv-status", |cx| {
            cx.sub("[\"ALLOCATABLE\"]", "[\"ALLOCATABLE\", \"FUTURE\"]")
        }),
        c("text/unknown-lv-status", |cx| {
            cx.sub(
                "[\"READ\", \"WRITE\", \"VISIBLE\"]",
                "[\"READ\", \"WRITE\", \"VISIBLE\", \"FUTURE\"]",
            )
        }),
        c("text/vg-status-without-write", |cx| {
            cx.sub(
                "\"RESIZEABLE\", \"READ\", \"WRITE\"]",
                "\"RESIZEABLE\", \"READ\"]",
            )
        }),
        c("text/vg-exported", |cx| {
            cx.sub(
                "\"RESIZEABLE\", \"READ\", \"WRITE\"]",
                "\"RESIZEABLE\", \"READ\", \"WRITE\", \"EXPORTED\"]",
            )
        }),
        c("text/vg-status-empty", |cx| {
            cx.sub("[\"RESIZEABLE\", \"READ\", \"WRITE\"]", "[]")
        }),
        c("text/unknown-vg-flag", |cx| {
            cx.sub("\nflags = []", "\nflags = [\"FUTURE\"]")
        }),
        c("text/unknown-pv-flag", |cx| {
            cx.sub_after("physical_volumes", "\nflags = []", "\nflags = [\"FUTURE\"]")
        }),
        c("text/unknown-lv-flag", |cx| {
            cx.sub_after("logical_volumes", "\nflags = []", "\nflags = [\"FUTURE\"]")
        }),
        c("text/vg-lock-type-unknown", |cx| {
            cx.sub("\nmax_lv = 0", "\nlock_type = \"future\"\nmax_lv = 0")
        }),
        c("text/vg-system-id-foreign", |cx| {
            cx.sub("\nmax_lv = 0", "\nsystem_id = \"another-host\"\nmax_lv = 0")
        }),
        // Required keys missing.
        c("text/missing-vg-id", |cx| cx.drop_line("", "id = ")),
        c("text/missing-vg-seqno", |cx| cx.drop_line("", "seqno = ")),
        c("text/missing-vg-status", |cx| cx.drop_line("", "status = ")),
        c("text/missing-vg-extent-size", |cx| {
            cx.drop_line("", "extent_size = ")
        }),
        c("text/missing-vg-format", |cx| cx.drop_line("", "format = ")),
        c("text/missing-vg-max-lv", |cx| cx.drop_line("", "max_lv = ")),
        c("text/missing-physical-volumes", |cx| {
            cx.edit(|t| {
                let s = String::from_utf8(t).expect("utf8");
                let a = s.find("physical_volumes {").expect("pvs");
                let b = s.find("logical_volumes {").expect("lvs");
                format!("{}{}", &s[..a], &s[b..]).into_bytes()
            })
        }),
        c("text/missing-logical-volumes", |cx| {
            cx.edit(|t| {
                let s = String::from_utf8(t).expect("utf8");
                let a = s.find("logical_volumes {").expect("lvs");
                let end = vg_section_end(s.as_bytes());
                format!("{}}}{}", &s[..a], &s[end..]).into_bytes()
            })
        }),
        c("text/missing-pv-id", |cx| cx.drop_line("pv0 {", "id = ")),
        c("text/missing-pv-pe-start", |cx| {
            cx.drop_line("pv0 {", "pe_start = ")
        }),
        c("text/missing-pv-pe-count", |cx| {
            cx.drop_line("pv0 {", "pe_count = ")
        }),
        c("text/missing-pv-dev-size", |cx| {
            cx.drop_line("pv0 {", "dev_size = ")
        }),
        c("text/missing-pv-status", |cx| {
            cx.drop_line("pv0 {", "status = ")
        }),
        c("text/missing-lv-id", |cx| cx.drop_line("\ndata {", "id = ")),
        c("text/missing-lv-status", |cx| {
            cx.drop_line("\ndata {", "status = ")
        }),
        c("text/missing-lv-segment-count", |cx| {
            cx.drop_line("\ndata {", "segment_count = ")
        }),
        c("text/missing-seg-start-extent", |cx| {
            cx.drop_line("\ndata {", "start_extent = ")
        }),
        c("text/missing-seg-extent-count", |cx| {
            cx.drop_line("\ndata {", "extent_count = ")
        }),
        c("text/missing-seg-type", |cx| {
            cx.drop_line("\ndata {", "type = ")
        }),
        c("text/missing-seg-stripe-count", |cx| {
            cx.drop_line("\ndata {", "stripe_count = ")
        }),
        c("text/missing-seg-stripes", |cx| {
            cx.sub_after("\ndata {", "stripes = [\n\"pv0\", 6\n]", "")
        }),
        // LVs and extents.
        c("text/lv-no-segments", |cx| {
            let lv = "empty {\nid = \"Emptya-aaaa-bbbb-cccc-dddd-eeee-ffff00\"\n\
                      status = [\"READ\", \"WRITE\", \"VISIBLE\"]\nflags = []\nsegment_count = 0\n}\n";
            cx.add_lvs(lv)
        }),
        c("text/lv-segment-extent-count-zero", |cx| {
            let lv = linear_lv(
                "zero",
                "Zeroaa-aaaa-bbbb-cccc-dddd-eeee-ffff00",
                SHOWN,
                0,
                10,
            );
            cx.add_lvs(&lv)
        }),
        c("text/lv-segment-count-too-high", |cx| {
            cx.sub_after("\ndata {", "segment_count = 1", "segment_count = 2")
        }),
        c("text/lv-two-segments-out-of-text-order", |cx| {
            let lv = "two {\nid = \"Twoaaa-aaaa-bbbb-cccc-dddd-eeee-ffff00\"\n\
                      status = [\"READ\", \"WRITE\", \"VISIBLE\"]\nflags = []\nsegment_count = 2\n\n\
                      segment2 {\nstart_extent = 1\nextent_count = 1\n\ntype = \"striped\"\nstripe_count = 1\n\nstripes = [\n\"pv0\", 12\n]\n}\n\
                      segment1 {\nstart_extent = 0\nextent_count = 1\n\ntype = \"striped\"\nstripe_count = 1\n\nstripes = [\n\"pv0\", 10\n]\n}\n}\n";
            cx.add_lvs(lv)
        }),
        c("text/lv-segment-gap", |cx| {
            cx.sub_after("\ndata {", "start_extent = 0", "start_extent = 1")
        }),
        c("text/extents-beyond-pv", |cx| {
            cx.sub_after("\ndata {", "\"pv0\", 6", "\"pv0\", 14")
        }),
        c("text/extents-far-beyond-pv", |cx| {
            cx.sub_after("\ndata {", "\"pv0\", 6", "\"pv0\", 4000000000")
        }),
        c("text/extents-overlap", |cx| {
            cx.sub_after("\ndata {", "\"pv0\", 6", "\"pv0\", 3")
        }),
        c("text/stripes-unknown-pv", |cx| {
            cx.sub_after("\ndata {", "\"pv0\", 6", "\"pv7\", 6")
        }),
        c("text/stripe-count-mismatch", |cx| {
            cx.sub_after("\ndata {", "stripe_count = 1", "stripe_count = 2")
        }),
        c("text/pe-count-past-device", |cx| {
            cx.sub("pe_count = 15", "pe_count = 100")
        }),
        c("text/lv-past-device-end", |cx| {
            cx.sub("pe_count = 15", "pe_count = 100");
            cx.sub_after("\ndata {", "\"pv0\", 6", "\"pv0\", 60")
        }),
        c("text/dev-size-smaller-than-extents", |cx| {
            cx.sub("dev_size = 32768", "dev_size = 8192")
        }),
        c("text/dev-size-larger-than-device", |cx| {
            cx.sub("dev_size = 32768", "dev_size = 3276800")
        }),
        c("text/pe-start-past-device", |cx| {
            cx.sub("pe_start = 2048", "pe_start = 2048000")
        }),
        c("text/extent-size-zero", |cx| {
            cx.sub("extent_size = 2048", "extent_size = 0")
        }),
        c("text/extent-size-odd", |cx| {
            cx.sub("extent_size = 2048", "extent_size = 2047")
        }),
        c("text/extent-size-not-power-of-two", |cx| {
            cx.sub("extent_size = 2048", "extent_size = 1536")
        }),
        c("text/max-lv-exceeded", |cx| {
            cx.sub("max_lv = 0", "max_lv = 1")
        }),
        c("text/max-pv-exceeded", |cx| {
            cx.sub("max_pv = 0", "max_pv = 1");
        }),
        c("text/duplicate-lv-id", |cx| {
            let lv = linear_lv(
                "copy",
                "Dupaaa-aaaa-bbbb-cccc-dddd-eeee-ffff00",
                SHOWN,
                1,
                10,
            );
            let lv2 = linear_lv(
                "copy2",
                "Dupaaa-aaaa-bbbb-cccc-dddd-eeee-ffff00",
                SHOWN,
                1,
                11,
            );
            cx.add_lvs(&format!("{lv}\n{lv2}"))
        }),
        c("text/lv-id-malformed", |cx| {
            let lv = linear_lv("badid", "not-an-id", SHOWN, 1, 10);
            cx.add_lvs(&lv)
        }),
        c("text/vg-id-malformed", |cx| {
            cx.set_line("", "id = ", "id = \"short\"")
        }),
        c("text/pv-id-malformed", |cx| {
            cx.set_line(
                "pv0 {",
                "id = ",
                "id = \"!!!!!!-!!!!-!!!!-!!!!-!!!!-!!!!-!!!!!!\"",
            )
        })
        .stricter(MISSING_PV),
        c("text/status-a-string", |cx| {
            cx.sub_after(
                "\ndata {",
                "status = [\"READ\", \"WRITE\", \"VISIBLE\"]",
                "status = \"READ\"",
            )
        }),
        c("text/tag-invalid-chars", |cx| {
            cx.sub("tags = [\"keep\"]", "tags = [\"ke ep!\"]")
        }),
        c("text/vg-tag", |cx| {
            cx.sub("\nmax_lv = 0", "\ntags = [\"vgtag\"]\nmax_lv = 0")
        }),
        // Names.
        c("text/lv-name-leading-hyphen", |cx| {
            cx.sub("\ndata {", "\n-data {")
        }),
        c("text/lv-name-dot", |cx| cx.sub("\ndata {", "\n. {")),
        c("text/lv-name-dotdot", |cx| cx.sub("\ndata {", "\n.. {")),
        c("text/lv-name-bad-char", |cx| {
            cx.sub("\ndata {", "\nda!ta {")
        }),
        c("text/lv-name-plus-and-underscore", |cx| {
            cx.sub("\ndata {", "\nd+a_t.a {")
        }),
        c("text/lv-name-too-long", |cx| {
            let n = format!("\n{} {{", "d".repeat(130));
            cx.sub("\ndata {", &n)
        }),
        c("text/lv-name-reserved-snapshot-prefix", |cx| {
            cx.sub("\ndata {", "\nsnapshotdata {")
        }),
        c("text/lv-name-reserved-suffix", |cx| {
            cx.sub("\ndata {", "\ndata_rimage_0 {")
        }),
        c("text/lv-name-pvmove-prefix", |cx| {
            cx.sub("\ndata {", "\npvmove9 {")
        }),
        c("text/vg-name-bad-char", |cx| {
            let vg = cx.vg.clone();
            cx.sub(&format!("{vg} {{"), &format!("{vg}! {{"))
        }),
        c("text/vg-name-leading-hyphen", |cx| {
            let vg = cx.vg.clone();
            cx.sub(&format!("{vg} {{"), &format!("-{vg} {{"))
        }),
        // Negative numbers.
        c("text/negative-seqno", |cx| cx.sub("seqno = ", "seqno = -")).stricter(NEGATIVE),
        c("text/negative-max-lv", |cx| {
            cx.sub("max_lv = 0", "max_lv = -1")
        })
        .stricter(NEGATIVE),
        c("text/negative-extent-size", |cx| {
            cx.sub("extent_size = 2048", "extent_size = -2048")
        })
        .stricter(NEGATIVE),
        c("text/negative-pe-count", |cx| {
            cx.sub("pe_count = 15", "pe_count = -15")
        })
        .stricter(NEGATIVE),
        c("text/negative-pe-start", |cx| {
            cx.sub("pe_start = 2048", "pe_start = -2048")
        })
        .stricter(NEGATIVE),
        c("text/negative-dev-size", |cx| {
            cx.sub("dev_size = 32768", "dev_size = -32768")
        })
        .stricter(NEGATIVE),
        c("text/negative-start-extent", |cx| {
            cx.sub_after("\ndata {", "start_extent = 0", "start_extent = -1")
        }),
        c("text/negative-extent-count", |cx| {
            cx.sub_after("\ndata {", "extent_count = 2", "extent_count = -2")
        }),
        c("text/negative-stripe-start", |cx| {
            cx.sub_after("\ndata {", "\"pv0\", 6", "\"pv0\", -6")
        }),
        c("text/negative-segment-count", |cx| {
            cx.sub_after("\ndata {", "segment_count = 1", "segment_count = -1")
        }),
        c("text/negative-creation-time", |cx| {
            cx.sub_after("\ndata {", "creation_time = ", "creation_time = -")
        }),
        // Segment types rewind leaves to LVM.
        c("text/unknown-segment-type", |cx| {
            cx.sub_after("\ndata {", "type = \"striped\"", "type = \"future\"")
        }),
        c("text/thin-valid", |cx| {
            cx.add_lvs(&thin(POOL_SEG, THIN_SEG))
        }),
        c("text/thin-pool-missing-metadata", |cx| {
            cx.add_lvs(&thin(&without(POOL_SEG, "metadata"), THIN_SEG))
        }),
        c("text/thin-pool-missing-pool", |cx| {
            cx.add_lvs(&thin(&without(POOL_SEG, "pool ="), THIN_SEG))
        }),
        c("text/thin-pool-missing-transaction-id", |cx| {
            cx.add_lvs(&thin(&without(POOL_SEG, "transaction_id"), THIN_SEG))
        }),
        c("text/thin-pool-missing-chunk-size", |cx| {
            cx.add_lvs(&thin(&without(POOL_SEG, "chunk_size"), THIN_SEG))
        }),
        c("text/thin-missing-thin-pool", |cx| {
            cx.add_lvs(&thin(POOL_SEG, &without(THIN_SEG, "thin_pool")))
        }),
        c("text/thin-missing-device-id", |cx| {
            cx.add_lvs(&thin(POOL_SEG, &without(THIN_SEG, "device_id")))
        }),
        c("text/thin-missing-transaction-id", |cx| {
            cx.add_lvs(&thin(POOL_SEG, &without(THIN_SEG, "transaction_id")))
        }),
        c("text/thin-pool-names-missing-lv", |cx| {
            let seg = POOL_SEG.replace("pool_tmeta", "nosuchlv");
            cx.add_lvs(&thin(&seg, THIN_SEG))
        }),
        c("text/raid1-valid", |cx| cx.add_lvs(&raid1(RAID_SEG))),
        c("text/raid1-missing-device-count", |cx| {
            cx.add_lvs(&raid1(&without(RAID_SEG, "device_count")))
        }),
        c("text/raid1-missing-raids", |cx| {
            let seg: String = RAID_SEG.split("raids").next().unwrap_or("").to_owned();
            cx.add_lvs(&raid1(&seg))
        }),
        c("text/raid1-raids-name-missing-lv", |cx| {
            cx.add_lvs(&raid1(&RAID_SEG.replace("\"r_rimage_1\"", "\"nosuchlv\"")))
        }),
        c("text/raid1-bad-region-size", |cx| {
            cx.add_lvs(&raid1(
                &RAID_SEG.replace("region_size = 1024", "region_size = \"big\""),
            ))
        }),
        c("text/mirror-valid", |cx| cx.add_lvs(&mirror(MIRROR_SEG))),
        c("text/mirror-missing-mirror-count", |cx| {
            cx.add_lvs(&mirror(&without(MIRROR_SEG, "mirror_count")))
        }),
        c("text/mirror-missing-mirrors", |cx| {
            let seg: String = MIRROR_SEG
                .split("\nmirrors")
                .next()
                .unwrap_or("")
                .to_owned()
                + "\n";
            cx.add_lvs(&mirror(&seg))
        }),
        c("text/mirror-log-names-missing-lv", |cx| {
            cx.add_lvs(&mirror(&MIRROR_SEG.replace("\"m_mlog\"", "\"nosuchlv\"")))
        }),
        c("text/mirror-log-without-region-size", |cx| {
            cx.add_lvs(&mirror(&without(MIRROR_SEG, "region_size")))
        }),
        c("text/cache-valid", |cx| {
            cx.add_lvs(&cache(CPOOL_SEG, CACHE_SEG))
        }),
        c("text/cache-pool-missing-data", |cx| {
            cx.add_lvs(&cache(&without(CPOOL_SEG, "data ="), CACHE_SEG))
        }),
        c("text/cache-pool-missing-metadata", |cx| {
            cx.add_lvs(&cache(&without(CPOOL_SEG, "metadata ="), CACHE_SEG))
        }),
        c("text/cache-pool-metadata-format-3", |cx| {
            cx.add_lvs(&cache(
                &CPOOL_SEG.replace("metadata_format = 2", "metadata_format = 3"),
                CACHE_SEG,
            ))
        }),
        c("text/cache-missing-cache-pool", |cx| {
            cx.add_lvs(&cache(CPOOL_SEG, &without(CACHE_SEG, "cache_pool")))
        }),
        c("text/cache-missing-origin", |cx| {
            cx.add_lvs(&cache(CPOOL_SEG, &without(CACHE_SEG, "origin")))
        }),
        c("text/raid1-device-and-stripe-count", |cx| {
            cx.add_lvs(&raid1(
                &RAID_SEG.replace("device_count = 2", "device_count = 2\nstripe_count = 2"),
            ))
        }),
        c("text/raid1-raids-odd", |cx| {
            cx.add_lvs(&raid1(
                &RAID_SEG.replace(",\n\"r_rmeta_1\", \"r_rimage_1\"", ",\n\"r_rmeta_1\""),
            ))
        }),
        c("text/striped-two-stripes-without-stripe-size", |cx| {
            let lv = "two {\nid = \"Twoaaa-aaaa-bbbb-cccc-dddd-eeee-ffff00\"\n\
                      status = [\"READ\", \"WRITE\", \"VISIBLE\"]\nflags = []\nsegment_count = 1\n\n\
                      segment1 {\nstart_extent = 0\nextent_count = 2\n\ntype = \"striped\"\nstripe_count = 2\n\n\
                      stripes = [\n\"pv0\", 10,\n\"pv0\", 12\n]\n}\n}\n";
            cx.add_lvs(lv)
        }),
        c("text/stripes-odd-length", |cx| {
            cx.sub_after("\ndata {", "\"pv0\", 6", "\"pv0\"")
        }),
        c("text/stripe-start-a-string", |cx| {
            cx.sub_after("\ndata {", "\"pv0\", 6", "\"pv0\", \"6\"")
        }),
        c("text/segment-type-with-flag", |cx| {
            cx.sub_after(
                "\ndata {",
                "type = \"striped\"",
                "type = \"striped+FUTURE\"",
            )
        }),
        c("text/vg-tag-invalid-chars", |cx| {
            cx.sub("\nmax_lv = 0", "\ntags = [\"bad tag\"]\nmax_lv = 0")
        }),
        c("text/pv-tag-invalid-chars", |cx| {
            cx.sub("\npe_start = ", "\ntags = [\"a,b\"]\npe_start = ")
        }),
        c("text/format-lvm1", |cx| {
            cx.sub("format = \"lvm2\"", "format = \"lvm1\"")
        }),
        c("text/format-text-alias", |cx| {
            cx.sub("format = \"lvm2\"", "format = \"TEXT\"")
        }),
        c("text/two-pmspare-lvs", |cx| {
            let a = linear_lv(
                "lvol0_pmspare",
                "Sparea-aaaa-bbbb-cccc-dddd-eeee-ffff00",
                HIDDEN,
                1,
                10,
            );
            let b = linear_lv(
                "lvol1_pmspare",
                "Sparea-aaaa-bbbb-cccc-dddd-eeee-ffff01",
                HIDDEN,
                1,
                11,
            );
            cx.add_lvs(&format!("{a}\n{b}"))
        }),
        c("text/lv-and-vg-name-too-long-together", |cx| {
            let n = format!("\n{} {{", "d".repeat(127 - 3 - cx.vg.len()));
            cx.sub("\ndata {", &n)
        }),
        c("text/lv-and-vg-name-just-short-enough", |cx| {
            let n = format!("\n{} {{", "d".repeat(127 - 4 - cx.vg.len()));
            cx.sub("\ndata {", &n)
        }),
        c("text/thin-pool-discards-unknown", |cx| {
            cx.add_lvs(&thin(
                &POOL_SEG.replace("\"passdown\"", "\"sometimes\""),
                THIN_SEG,
            ))
        }),
        c("text/raid0-valid", |cx| {
            let seg = "type = \"raid0\"\nstripe_count = 2\nstripe_size = 128\n\
                       raid0_lvs = [\n\"r_rimage_0\", \"r_rimage_1\"\n]\n";
            cx.add_lvs(&raid1(seg).replace(
                "extent_count = 1\n\ntype = \"raid0\"",
                "extent_count = 2\n\ntype = \"raid0\"",
            ))
        }),
        c("text/raid0-with-raids-key", |cx| {
            let seg = "type = \"raid0\"\nstripe_count = 2\nstripe_size = 128\n\
                       raids = [\n\"r_rimage_0\", \"r_rimage_1\"\n]\n";
            cx.add_lvs(&raid1(seg).replace(
                "extent_count = 1\n\ntype = \"raid0\"",
                "extent_count = 2\n\ntype = \"raid0\"",
            ))
        }),
        c("text/snapshot-merging-store-a-number", |cx| {
            cx.sub("cow_store = \"pre\"", "merging_store = 5")
        }),
        c("text/vdo-missing-vdo-offset", |cx| {
            let lv = "v {\nid = \"Vdoaaa-aaaa-bbbb-cccc-dddd-eeee-ffff00\"\nstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\n\
                      flags = []\nsegment_count = 1\n\nsegment1 {\nstart_extent = 0\nextent_count = 1\n\n\
                      type = \"vdo\"\nvdo_pool = \"data\"\n}\n}\n";
            cx.add_lvs(lv)
        }),
        c("text/writecache-missing-block-size", |cx| {
            let lv = "w {\nid = \"Wcacha-aaaa-bbbb-cccc-dddd-eeee-ffff00\"\nstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\n\
                      flags = []\nsegment_count = 1\n\nsegment1 {\nstart_extent = 0\nextent_count = 1\n\n\
                      type = \"writecache\"\norigin = \"data\"\nwritecache = \"pre\"\n}\n}\n";
            cx.add_lvs(lv)
        }),
        c("text/integrity-missing-mode", |cx| {
            let lv = "i {\nid = \"Intega-aaaa-bbbb-cccc-dddd-eeee-ffff00\"\nstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\n\
                      flags = []\nsegment_count = 1\n\nsegment1 {\nstart_extent = 0\nextent_count = 1\n\n\
                      type = \"integrity\"\norigin = \"data\"\ndata_sectors = 2048\ntag_size = 4\n\
                      block_size = 512\ninternal_hash = \"crc32c\"\n}\n}\n";
            cx.add_lvs(lv)
        }),
        c("text/error-segment", |cx| {
            let lv = "e {\nid = \"Erroraa-aaa-bbbb-cccc-dddd-eeee-ffff00\"\nstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\n\
                      flags = []\nsegment_count = 1\n\nsegment1 {\nstart_extent = 0\nextent_count = 4\n\n\
                      type = \"error\"\n}\n}\n";
            cx.add_lvs(lv)
        }),
        c("text/linear-segment-type", |cx| {
            cx.sub_after("\ndata {", "type = \"striped\"", "type = \"linear\"")
        }),
        c("text/historical-lv-with-thin-descendant", |cx| {
            cx.add_lvs(&thin(POOL_SEG, THIN_SEG));
            cx.sub("\nlogical_volumes {", "\nhistorical_logical_volumes {\n\nold {\nid = \"Histaa-aaaa-bbbb-cccc-dddd-eeee-ffff00\"\ncreation_time = 1700000000\nremoval_time = 1700000001\ndescendants = [\"thin\"]\n}\n}\n\nlogical_volumes {")
        }),
        c("text/historical-lv-with-linear-descendant", |cx| {
            cx.sub("\nlogical_volumes {", "\nhistorical_logical_volumes {\n\nold {\nid = \"Histaa-aaaa-bbbb-cccc-dddd-eeee-ffff00\"\ncreation_time = 1700000000\nremoval_time = 1700000001\ndescendants = [\"data\"]\n}\n}\n\nlogical_volumes {")
        }),
        c("text/historical-lv-descendant-unknown", |cx| {
            cx.sub("\nlogical_volumes {", "\nhistorical_logical_volumes {\n\nold {\nid = \"Histaa-aaaa-bbbb-cccc-dddd-eeee-ffff00\"\ncreation_time = 1700000000\nremoval_time = 1700000001\ndescendants = [\"nosuchlv\"]\n}\n}\n\nlogical_volumes {")
        }),
        c("text/historical-lv", |cx| {
            cx.sub("\nlogical_volumes {", "\nhistorical_logical_volumes {\n\nold {\nid = \"Histaa-aaaa-bbbb-cccc-dddd-eeee-ffff00\"\ncreation_time = 1700000000\nremoval_time = 1700000001\n}\n}\n\nlogical_volumes {")
        }),
        // LVM's tokenizer, exactly.
        c("text/bare-words-in-array", |cx| {
            cx.sub_after(
                "\ndata {",
                "status = [\"READ\", \"WRITE\", \"VISIBLE\"]",
                "status = [READ, WRITE, VISIBLE]",
            )
        }),
        c("text/bare-word-last-in-array", |cx| {
            cx.sub("tags = [\"keep\"]", "tags = [keep]")
        }),
        c("text/array-number-without-comma", |cx| {
            cx.sub_after("\ndata {", "\"pv0\", 6", "\"pv0\" 6")
        }),
        c("text/unknown-key-with-slash", |cx| {
            cx.sub("\nmax_lv = 0", "\nfuture/key = 1\nmax_lv = 0")
        })
        .stricter(SLASH_KEY),
        c("text/number-lone-sign", |cx| {
            cx.sub("max_lv = 0", "max_lv = -")
        })
        .stricter(BAD_NUMBER),
        c("text/number-bad-octal", |cx| {
            cx.sub("max_lv = 0", "max_lv = 09")
        })
        .stricter(BAD_NUMBER),
        c("text/creation-time-overflow", |cx| {
            cx.sub_after(
                "\ndata {",
                "creation_time = ",
                "creation_time = 99999999999999999999",
            )
        }),
        c("text/unterminated-string-at-very-end", |cx| {
            cx.edit(|t| {
                let mut t = t;
                while t.last() == Some(&b'\n') {
                    t.pop();
                }
                t.extend_from_slice(b"\nnote = \"unterminated");
                t
            })
        }),
        c("text/unterminated-single-quote-at-end", |cx| {
            cx.edit(|t| {
                let mut t = t;
                t.extend_from_slice(b"note = 'x");
                t
            })
        }),
        c("text/vg-lock-type-sanlock", |cx| {
            cx.sub(
                "\nmax_lv = 0",
                "\nlock_type = \"sanlock\"\nlock_args = \"1.0.0:lvmlock\"\nmax_lv = 0",
            )
        }),
        c("text/vg-lock-type-dlm", |cx| {
            cx.sub(
                "\nmax_lv = 0",
                "\nlock_type = \"dlm\"\nlock_args = \"1.0.0:cluster\"\nmax_lv = 0",
            )
        }),
        c("text/vg-clustered", |cx| {
            cx.sub(
                "\"RESIZEABLE\", \"READ\", \"WRITE\"]",
                "\"RESIZEABLE\", \"READ\", \"WRITE\", \"CLUSTERED\"]",
            )
        }),
        c("text/lv-status-compatible-flag", |cx| {
            cx.sub_after(
                "\ndata {",
                "[\"READ\", \"WRITE\", \"VISIBLE\"]",
                "[\"READ\", \"WRITE\", \"VISIBLE\", \"ACTIVATION_SKIP\"]",
            )
        }),
        c("text/lv-flags-activation-skip", |cx| {
            cx.sub_after("\ndata {", "flags = []", "flags = [\"ACTIVATION_SKIP\"]")
        }),
        c("text/vg-status-write-locked", |cx| {
            cx.sub(
                "\"RESIZEABLE\", \"READ\", \"WRITE\"]",
                "\"RESIZEABLE\", \"READ\", \"WRITE_LOCKED\"]",
            )
        }),
        c("text/lv-creation-host-without-time", |cx| {
            cx.drop_line("\ndata {", "creation_time = ")
        }),
        c("text/lv-creation-time-without-host", |cx| {
            cx.drop_line("\ndata {", "creation_host = ")
        }),
        c("text/lv-fixed-minor-without-minor", |cx| {
            cx.sub_after(
                "\ndata {",
                "[\"READ\", \"WRITE\", \"VISIBLE\"]",
                "[\"READ\", \"WRITE\", \"VISIBLE\", \"FIXED_MINOR\"]",
            )
        }),
        c("text/contents-wrong", |cx| {
            cx.sub(
                "contents = \"Text Format Volume Group\"",
                "contents = \"Text Format Volume Grou\"",
            )
        }),
        c("text/version-2", |cx| {
            cx.sub("\nversion = 1", "\nversion = 2")
        }),
        c("text/version-missing", |cx| cx.sub("\nversion = 1", "")),
        c("text/version-a-string", |cx| {
            cx.sub("\nversion = 1", "\nversion = \"1\"")
        }),
        c("text/contents-inside-vg-only", |cx| {
            cx.edit(|t| {
                let end = vg_section_end(&t);
                let s = String::from_utf8(t[..end].to_vec()).expect("utf8");
                s.replacen(
                    "\nseqno = ",
                    "\ncontents = \"Text Format Volume Group\"\nversion = 1\nseqno = ",
                    1,
                )
                .into_bytes()
            })
        }),
        c("text/first-section-not-the-vg", |cx| {
            cx.edit(|t| {
                let mut out = b"aaa {\nx = 1\n}\n".to_vec();
                out.extend_from_slice(&t);
                out
            })
        }),
        c("text/ba-start-without-size", |cx| {
            cx.sub("\npe_start = ", "\nba_start = 2048\npe_start = ")
        }),
        c("text/pv-section-empty", |cx| {
            cx.sub("physical_volumes {\n", "physical_volumes {\n\npv9 {\n}\n")
        }),
        c("text/lv-section-empty", |cx| cx.add_lvs("empty {\n}\n")),
        c("text/segment-section-empty", |cx| {
            cx.sub_after("\ndata {", "\nsegment1 {", "\nsegment0 {\n}\nsegment1 {")
        }),
        c("text/non-segment-subsection-in-lv", |cx| {
            cx.sub_after(
                "\ndata {",
                "\nsegment1 {",
                "\nextra {\na = 1\n}\nsegment1 {",
            )
        }),
    ];
    v.push(
        Case::new(Text, "text/negative-chunk-size", Tpl::Basic, |cx| {
            cx.sub("chunk_size = 8", "chunk_size = -8")
        })
        .stricter(NEGATIVE),
    );
    v
}

fn snapshots() -> Vec<Case> {
    let c = |name: &str, tpl, f: fn(&mut Ctx)| Case::new(Snapshot, name, tpl, f);
    let second_snapshot = |cx: &mut Ctx, store: &str, cow: &str, status: &str| {
        let lv = format!(
            "snapshot1 {{\nid = \"Snap01-aaaa-bbbb-cccc-dddd-eeee-ffff01\"\nstatus = {status}\nflags = []\n\
             segment_count = 1\n\nsegment1 {{\nstart_extent = 0\nextent_count = 4\n\n\
             type = \"snapshot\"\nchunk_size = 8\norigin = \"root\"\n{store} = \"{cow}\"\n}}\n}}\n"
        );
        cx.add_lvs(&lv);
    };
    let _ = second_snapshot;
    vec![
        c("snap/as-made", Tpl::Basic, |_| {}),
        c("snap/merging-as-made", Tpl::Merging, |_| {}),
        c("snap/chunk-size-12", Tpl::Basic, |cx| cx.sub("chunk_size = 8", "chunk_size = 12"))
            .stricter(CHUNK_SIZE),
        c("snap/chunk-size-0", Tpl::Basic, |cx| cx.sub("chunk_size = 8", "chunk_size = 0"))
        .stricter(CHUNK_SIZE),
        c("snap/chunk-size-4", Tpl::Basic, |cx| cx.sub("chunk_size = 8", "chunk_size = 4"))
        .stricter(CHUNK_SIZE),
        c("snap/chunk-size-2048", Tpl::Basic, |cx| {
            cx.sub("chunk_size = 8", "chunk_size = 2048")
        })
        .stricter(CHUNK_SIZE),
        c("snap/chunk-size-1024", Tpl::Basic, |cx| {
            cx.sub("chunk_size = 8", "chunk_size = 1024")
        }),
        c("snap/missing-chunk-size", Tpl::Basic, |cx| cx.drop_line("snapshot0 {", "chunk_size")),
        c("snap/missing-origin", Tpl::Basic, |cx| cx.drop_line("snapshot0 {", "origin = ")),
        c("snap/missing-cow-store", Tpl::Basic, |cx| cx.drop_line("snapshot0 {", "cow_store")),
        c("snap/origin-unknown", Tpl::Basic, |cx| {
            cx.sub("origin = \"root\"", "origin = \"nosuchlv\"")
        }),
        c("snap/cow-unknown", Tpl::Basic, |cx| {
            cx.sub("cow_store = \"pre\"", "cow_store = \"nosuchlv\"")
        }),
        c("snap/cow-is-origin", Tpl::Basic, |cx| {
            cx.sub("cow_store = \"pre\"", "cow_store = \"root\"")
        }),
        c("snap/cow-and-merging-store", Tpl::Basic, |cx| {
            cx.sub("cow_store = \"pre\"", "cow_store = \"pre\"\nmerging_store = \"pre\"")
        }),
        c("snap/merging-store-names-other-lv", Tpl::Merging, |cx| {
            cx.sub("merging_store = \"pre\"", "merging_store = \"data\"")
        }),
        c("snap/cow-visible", Tpl::Basic, |cx| {
            cx.sub_after("\npre {", "status = [\"READ\", \"WRITE\"]", "status = [\"READ\", \"WRITE\", \"VISIBLE\"]")
        }),
        c("snap/internal-lv-hidden", Tpl::Basic, |cx| {
            cx.sub_after("snapshot0 {", "status = [\"READ\", \"WRITE\", \"VISIBLE\"]", "status = [\"READ\", \"WRITE\"]")
        }),
        c("snap/merging-internal-visible", Tpl::Merging, |cx| {
            cx.sub_after("snapshot0 {", "status = [\"READ\", \"WRITE\"]", "status = [\"READ\", \"WRITE\", \"VISIBLE\"]")
        }),
        c("snap/extent-count-differs-from-origin", Tpl::Basic, |cx| {
            cx.sub_after("snapshot0 {", "extent_count = 4", "extent_count = 3")
        }),
        c("snap/internal-lv-two-segments", Tpl::Basic, |cx| {
            cx.sub_after("snapshot0 {", "segment_count = 1", "segment_count = 2");
            cx.sub_after(
                "snapshot0 {",
                "cow_store = \"pre\"\n}",
                "cow_store = \"pre\"\n}\nsegment2 {\nstart_extent = 4\nextent_count = 1\ntype = \"snapshot\"\nchunk_size = 8\norigin = \"root\"\ncow_store = \"data\"\n}",
            )
        }),
        c("snap/snapshot-of-a-cow", Tpl::Basic, |cx| {
            let lv = "snapshot1 {\nid = \"Snap01-aaaa-bbbb-cccc-dddd-eeee-ffff01\"\nstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\nflags = []\n\
                      segment_count = 1\n\nsegment1 {\nstart_extent = 0\nextent_count = 2\n\n\
                      type = \"snapshot\"\nchunk_size = 8\norigin = \"pre\"\ncow_store = \"data\"\n}\n}\n";
            cx.add_lvs(lv)
        }),
        c("snap/two-snapshots-of-one-origin", Tpl::Basic, |cx| {
            cx.sub_after("\ndata {", "[\"READ\", \"WRITE\", \"VISIBLE\"]", "[\"READ\", \"WRITE\"]");
            let lv = "snapshot1 {\nid = \"Snap01-aaaa-bbbb-cccc-dddd-eeee-ffff01\"\nstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\nflags = []\n\
                      segment_count = 1\n\nsegment1 {\nstart_extent = 0\nextent_count = 4\n\n\
                      type = \"snapshot\"\nchunk_size = 8\norigin = \"root\"\ncow_store = \"data\"\n}\n}\n";
            cx.add_lvs(lv)
        }),
        c("snap/two-snapshots-share-a-cow", Tpl::Basic, |cx| {
            let lv = "snapshot1 {\nid = \"Snap01-aaaa-bbbb-cccc-dddd-eeee-ffff01\"\nstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\nflags = []\n\
                      segment_count = 1\n\nsegment1 {\nstart_extent = 0\nextent_count = 4\n\n\
                      type = \"snapshot\"\nchunk_size = 8\norigin = \"root\"\ncow_store = \"pre\"\n}\n}\n";
            cx.add_lvs(lv)
        })
        .stricter(SHARED_COW),
        c("snap/two-merging-of-one-origin", Tpl::Merging, |cx| {
            cx.sub_after("\ndata {", "[\"READ\", \"WRITE\", \"VISIBLE\"]", "[\"READ\", \"WRITE\"]");
            let lv = "snapshot1 {\nid = \"Snap01-aaaa-bbbb-cccc-dddd-eeee-ffff01\"\nstatus = [\"READ\", \"WRITE\"]\nflags = []\n\
                      segment_count = 1\n\nsegment1 {\nstart_extent = 0\nextent_count = 4\n\n\
                      type = \"snapshot\"\nchunk_size = 8\norigin = \"root\"\nmerging_store = \"data\"\n}\n}\n";
            cx.add_lvs(lv)
        })
        .stricter(TWO_MERGING),
        c("snap/origin-is-thin", Tpl::Basic, |cx| {
            cx.add_lvs(&thin(POOL_SEG, THIN_SEG));
            cx.sub("origin = \"root\"", "origin = \"thin\"")
        }),
        c("snap/cow-is-internal-lv", Tpl::Basic, |cx| {
            cx.sub("cow_store = \"pre\"", "cow_store = \"snapshot0\"")
        }),
        c("snap/chunk-size-string", Tpl::Basic, |cx| {
            cx.sub("chunk_size = 8", "chunk_size = \"8\"")
        }),
        c("snap/merging-chunk-size-12", Tpl::Merging, |cx| {
            cx.sub("chunk_size = 8", "chunk_size = 12")
        })
        .stricter(CHUNK_SIZE),
    ]
}

fn disk_sets() -> Vec<Case> {
    let c = |name: &str, tpl, f: fn(&mut Ctx)| Case::new(DiskSet, name, tpl, f);
    /// Makes disk `i` a PV of no VG: another uuid and an empty metadata area.
    fn orphan(d: &mut Disk) {
        let p = d.pvh();
        d.put(p, b"Orphan0PvUuid000000000000000000X");
        d.fix_label();
        for (m, _) in d.mdas() {
            d.set_slot(m, 0, (0, 0, 0, 0));
            d.fix_mda(m);
        }
    }
    vec![
        c("set/clone-of-the-pv", Tpl::Basic, |cx| {
            let d = cx.disks[0].clone();
            cx.disks.push(d);
        })
        .stricter(DUPLICATE_PV),
        c("set/clone-of-one-of-two-pvs", Tpl::TwoPv, |cx| {
            let d = cx.disks[1].clone();
            cx.disks.push(d);
        })
        .stricter(DUPLICATE_PV),
        c("set/clone-with-older-metadata", Tpl::Basic, |cx| {
            let mut d = cx.disks[0].clone();
            let t = d.first_text();
            let t = super::image::replace(&t, b"tags = [\"keep\"]", b"tags = [\"old\"]");
            let t = with_seqno(&t, seqno(&t) - 1);
            d.write_text(&t);
            cx.disks.push(d);
        })
        .stricter(DUPLICATE_PV),
        c("set/two-pvs-as-made", Tpl::TwoPv, |_| {}),
        c("set/missing-pv", Tpl::TwoPv, |cx| {
            cx.disks.pop();
        })
        .stricter(MISSING_PV),
        c("set/missing-pv-without-mda", Tpl::NoMda, |cx| {
            cx.disks.pop();
        })
        .stricter(MISSING_PV),
        c("set/only-the-pv-without-mda", Tpl::NoMda, |cx| {
            cx.disks.remove(0);
        }),
        c("set/pv-without-mda-as-made", Tpl::NoMda, |_| {}),
        c("set/ignored-mda-as-made", Tpl::Ignored, |_| {}),
        c("set/ignored-mda-pv-missing", Tpl::Ignored, |cx| {
            cx.disks.pop();
        })
        .stricter(MISSING_PV),
        c("set/same-seqno-different-text", Tpl::TwoPv, |cx| {
            let t = cx.disks[1].first_text();
            let t = super::image::replace(&t, b"stripe_size = 128", b"stripe_size = 256");
            cx.disks[1].write_text(&t);
        })
        .stricter(CONFLICTING_TEXT),
        c("set/same-seqno-different-host-only", Tpl::TwoPv, |cx| {
            let t = cx.disks[1].first_text();
            let t = super::image::replace(&t, b"creation_host = \"", b"creation_host = \"other-");
            cx.disks[1].write_text(&t);
        })
        .stricter(CONFLICTING_TEXT),
        c("set/older-seqno-on-one-pv", Tpl::TwoPv, |cx| {
            let t = cx.disks[0].first_text();
            let s = String::from_utf8_lossy(&t).into_owned();
            let n: u64 = s
                .split("seqno = ")
                .nth(1)
                .and_then(|r| r.split('\n').next())
                .and_then(|n| n.parse().ok())
                .expect("seqno");
            let newer = s.replacen(&format!("seqno = {n}"), &format!("seqno = {}", n + 1), 1);
            let newer = newer.replacen("\nst {", "\nst2 {", 1);
            cx.disks[0].write_text(newer.as_bytes());
        }),
        c("set/newest-metadata-drops-a-pv", Tpl::TwoPv, |cx| {
            // pv1 left the VG in the newest metadata; its own area still holds the old copy
            // (an "outdated PV").
            let t = cx.disks[0].first_text();
            let s = String::from_utf8_lossy(&t).into_owned();
            let n: u64 = s
                .split("seqno = ")
                .nth(1)
                .and_then(|r| r.split('\n').next())
                .and_then(|n| n.parse().ok())
                .expect("seqno");
            let a = s.find("\npv1 {").expect("pv1");
            let b = a + s[a..].find("\n}\n").expect("end") + 3;
            let l = s.find("logical_volumes {").expect("lvs");
            let end = vg_section_end(s.as_bytes());
            let newer = format!(
                "{}{}logical_volumes {{\n}}\n{}",
                &s[..a],
                &s[b..l],
                &s[end - 1..]
            )
            .replacen(&format!("seqno = {n}"), &format!("seqno = {}", n + 1), 1);
            cx.disks[0].write_text(newer.as_bytes());
        }),
        c("set/pv-label-uuid-changed", Tpl::TwoPv, |cx| {
            let d = &mut cx.disks[1];
            let p = d.pvh();
            d.put(p, b"Changed0PvUuid00000000000000000X");
            d.fix_label();
        })
        .stricter(MISSING_PV),
        c("set/orphan-pv-beside", Tpl::Basic, |cx| {
            let mut d = cx.disks[0].clone();
            orphan(&mut d);
            cx.disks.push(d);
        }),
        c("set/two-orphans-same-uuid", Tpl::Basic, |cx| {
            let mut d = cx.disks[0].clone();
            orphan(&mut d);
            cx.disks.push(d.clone());
            cx.disks.push(d);
        }),
        c("set/twin-vg-names", Tpl::Twin, |_| {}),
        c("set/two-vgs", Tpl::TwoVgs, |_| {}),
        c("set/two-vgs-one-damaged", Tpl::TwoVgs, |cx| {
            let m = cx.disks[1].mdas()[0].0 as usize;
            cx.disks[1].bytes[m + 8] ^= 1;
        }),
        c("set/pv-of-one-vg-cloned-into-other", Tpl::TwoVgs, |cx| {
            let d = cx.disks[0].clone();
            cx.disks.push(d);
        })
        .stricter(DUPLICATE_PV),
        c("set/same-pv-uuid-in-two-vgs", Tpl::TwoVgs, |cx| {
            let uuid = {
                let d = &cx.disks[0];
                let p = d.pvh();
                d.bytes[p..p + 32].to_vec()
            };
            let d = &mut cx.disks[1];
            let p = d.pvh();
            d.put(p, &uuid);
            d.fix_label();
        })
        .stricter(DUPLICATE_PV),
        c("set/two-pvs-one-label-damaged", Tpl::TwoPv, |cx| {
            let l = cx.disks[1].label();
            cx.disks[1].bytes[l + 16] ^= 1;
        })
        .stricter(MISSING_PV),
        c("set/two-pvs-one-mda-damaged", Tpl::TwoPv, |cx| {
            let m = cx.disks[1].mdas()[0].0 as usize;
            cx.disks[1].bytes[m + 8] ^= 1;
        }),
        c("set/two-pvs-metadata-lists-pv-twice", Tpl::TwoPv, |cx| {
            let t = cx.disks[0].first_text();
            let s = String::from_utf8_lossy(&t).into_owned();
            let id0 = s
                .split("pv0 {\nid = \"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .expect("pv0 id")
                .to_owned();
            let a = s.find("\npv1 {\nid = \"").expect("pv1") + "\npv1 {\nid = \"".len();
            let b = a + s[a..].find('"').expect("quote");
            let out = format!("{}{}{}", &s[..a], id0, &s[b..]);
            for d in &mut cx.disks {
                d.write_text(out.as_bytes());
            }
        }),
    ]
}
