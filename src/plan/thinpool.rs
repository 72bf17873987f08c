//! A thin pool's kernel status and the check LVM makes of it before it uses a pool
//! (libdm's `dm_get_status_thin_pool` and `_thin_pool_node_send_messages`).
//!
//! Status (`drivers/md/dm-thin.c` `pool_status`, INFO): `Fail`, or
//! `<transaction id> <used meta>/<total meta> <used data>/<total data> <held root>
//! ro|rw|out_of_data_space [no_]discard_passdown error|queue_if_no_space needs_check|-
//! [<metadata low watermark>]`.

use crate::plan::table::TableError;
use serde::Serialize;

/// What the kernel reports for a thin pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThinPoolStatus {
    pub transaction_id: u64,
    pub used_metadata_blocks: u64,
    pub total_metadata_blocks: u64,
    pub used_data_blocks: u64,
    pub total_data_blocks: u64,
    /// `ro`: the kernel put the pool's metadata in read-only mode.
    pub read_only: bool,
    pub out_of_data_space: bool,
    /// The metadata carries the `needs_check` flag: `thin_check` must run before it is used.
    pub needs_check: bool,
}

/// A pool's status line, or `None` when the kernel reports `Fail`.
pub fn parse_status(s: &str) -> Result<Option<ThinPoolStatus>, TableError> {
    let bad = || TableError::BadStatus(s.to_owned());
    let words: Vec<&str> = s.split_ascii_whitespace().collect();
    if words.first() == Some(&"Fail") {
        return Ok(None);
    }
    if words.len() < 8 {
        return Err(bad());
    }
    let num = |w: &str| -> Result<u64, TableError> {
        if w.is_empty() || !w.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        w.parse().map_err(|_| bad())
    };
    let pair = |w: &str| -> Result<(u64, u64), TableError> {
        let (a, b) = w.split_once('/').ok_or_else(bad)?;
        Ok((num(a)?, num(b)?))
    };
    let (used_metadata_blocks, total_metadata_blocks) = pair(words[1])?;
    let (used_data_blocks, total_data_blocks) = pair(words[2])?;
    let (read_only, out_of_data_space) = match words[4] {
        "rw" => (false, false),
        "ro" => (true, false),
        "out_of_data_space" => (false, true),
        _ => return Err(bad()),
    };
    let needs_check = match words[7] {
        "needs_check" => true,
        "-" => false,
        _ => return Err(bad()),
    };
    Ok(Some(ThinPoolStatus {
        transaction_id: num(words[0])?,
        used_metadata_blocks,
        total_metadata_blocks,
        used_data_blocks,
        total_data_blocks,
        read_only,
        out_of_data_space,
        needs_check,
    }))
}

/// Why a pool may not be used as the VG metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolRefusal {
    #[error("the kernel reports the pool failed")]
    Failed,
    #[error(
        "its metadata needs checking (needs_check); run thin_check or lvconvert --repair with lvm2"
    )]
    NeedsCheck,
    #[error("the kernel put its metadata in read-only mode; repair it with lvm2")]
    ReadOnly,
    #[error("its transaction id is {kernel}, the volume group metadata expects {metadata}")]
    TransactionMismatch { kernel: u64, metadata: u64 },
}

/// LVM's check before it uses an active pool with no messages to send: the kernel's
/// transaction id equals the metadata's, or is one behind it (libdm accepts that when it has
/// no message queued: LVM committed a transaction whose message never reached the kernel).
/// rewind also refuses a failed pool, one that needs checking and one in read-only mode,
/// where LVM would run `thin_check` or refuse to send messages.
pub fn check(status: Option<&ThinPoolStatus>, metadata: u64) -> Result<(), PoolRefusal> {
    let s = status.ok_or(PoolRefusal::Failed)?;
    if s.needs_check {
        return Err(PoolRefusal::NeedsCheck);
    }
    if s.read_only {
        return Err(PoolRefusal::ReadOnly);
    }
    if s.transaction_id == metadata || s.transaction_id.checked_add(1) == Some(metadata) {
        Ok(())
    } else {
        Err(PoolRefusal::TransactionMismatch {
            kernel: s.transaction_id,
            metadata,
        })
    }
}

/// Why a pool takes no new thin snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpaceRefusal {
    #[error("{0}")]
    Unusable(#[from] PoolRefusal),
    #[error("the kernel reports it out of data space")]
    OutOfData,
    #[error(
        "only {free_pct}% of its {what} is free ({used}/{total} blocks used), below thin_min_free_percent ({min}%)"
    )]
    Low {
        what: &'static str,
        used: u64,
        total: u64,
        free_pct: u64,
        min: u8,
    },
}

/// Whether a pool may take new thin snapshots: usable as [`check`] says, its kernel
/// transaction id **equal** to the metadata's (one behind is what LVM accepts for using a
/// pool, not for messaging it: libdm refuses to send messages then, as the pool's
/// `set_transaction_id` would be refused), not out of data space, and at least
/// `min_free_percent` of its data and of its metadata free. The free share is rounded down, so a pool exactly at the
/// threshold passes and one a block below it does not.
pub fn check_space(
    status: Option<&ThinPoolStatus>,
    metadata: u64,
    min_free_percent: u8,
) -> Result<(), SpaceRefusal> {
    check(status, metadata)?;
    let s = status.ok_or(PoolRefusal::Failed)?;
    if s.transaction_id != metadata {
        return Err(PoolRefusal::TransactionMismatch {
            kernel: s.transaction_id,
            metadata,
        }
        .into());
    }
    if s.out_of_data_space {
        return Err(SpaceRefusal::OutOfData);
    }
    for (what, used, total) in [
        ("data", s.used_data_blocks, s.total_data_blocks),
        ("metadata", s.used_metadata_blocks, s.total_metadata_blocks),
    ] {
        let free = total.saturating_sub(used);
        // free/total >= min/100, in integers (no rounding at the edge).
        let enough = u128::from(free) * 100 >= u128::from(total) * u128::from(min_free_percent);
        if total == 0 || !enough || free == 0 {
            let free_pct = if total == 0 {
                0
            } else {
                u64::try_from(u128::from(free) * 100 / u128::from(total)).unwrap_or(0)
            };
            return Err(SpaceRefusal::Low {
                what,
                used,
                total,
                free_pct,
                min: min_free_percent,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn kernel_status_lines() {
        let s = parse_status("3 12/4096 187/1600 - rw discard_passdown queue_if_no_space - 1024")
            .unwrap()
            .unwrap();
        assert_eq!(s.transaction_id, 3);
        assert_eq!(
            (s.used_metadata_blocks, s.total_metadata_blocks),
            (12, 4096)
        );
        assert_eq!((s.used_data_blocks, s.total_data_blocks), (187, 1600));
        assert!(!s.read_only && !s.needs_check && !s.out_of_data_space);
        // Kernels before the low watermark field print one word less.
        let s =
            parse_status("0 1/4096 0/1600 - ro no_discard_passdown error_if_no_space needs_check")
                .unwrap()
                .unwrap();
        assert!(s.read_only && s.needs_check);
        assert_eq!(parse_status("Fail").unwrap(), None);
        for bad in [
            "",
            "3 12/4096",
            "x 1/2 1/2 - rw a b -",
            "3 1/2 1/2 - maybe a b -",
        ] {
            assert!(parse_status(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn transaction_ids_as_libdm_checks_them() {
        let st = |tid| ThinPoolStatus {
            transaction_id: tid,
            used_metadata_blocks: 1,
            total_metadata_blocks: 2,
            used_data_blocks: 1,
            total_data_blocks: 2,
            read_only: false,
            out_of_data_space: false,
            needs_check: false,
        };
        assert_eq!(check(Some(&st(5)), 5), Ok(()));
        assert_eq!(check(Some(&st(4)), 5), Ok(()));
        assert_eq!(
            check(Some(&st(6)), 5),
            Err(PoolRefusal::TransactionMismatch {
                kernel: 6,
                metadata: 5
            })
        );
        assert!(check(Some(&st(3)), 5).is_err());
        assert_eq!(check(None, 5), Err(PoolRefusal::Failed));
        let mut s = st(5);
        s.needs_check = true;
        assert_eq!(check(Some(&s), 5), Err(PoolRefusal::NeedsCheck));
    }

    #[test]
    fn a_pool_too_full_or_unusable_takes_no_snapshot() {
        let st = |line: &str| parse_status(line).unwrap();
        // 1600 data blocks: 320 free is exactly 20%.
        let at = st("3 12/4096 1280/1600 - rw discard_passdown queue_if_no_space - 1024");
        assert_eq!(check_space(at.as_ref(), 3, 20), Ok(()));
        // One behind: usable, but no message may go to it.
        assert_eq!(
            check_space(at.as_ref(), 4, 20),
            Err(SpaceRefusal::Unusable(PoolRefusal::TransactionMismatch {
                kernel: 3,
                metadata: 4
            }))
        );
        let below = st("3 12/4096 1281/1600 - rw discard_passdown queue_if_no_space - 1024");
        let e = check_space(below.as_ref(), 3, 20).unwrap_err();
        assert!(
            matches!(
                e,
                SpaceRefusal::Low {
                    what: "data",
                    used: 1281,
                    total: 1600,
                    free_pct: 19,
                    min: 20
                }
            ),
            "{e:?}"
        );
        assert_eq!(check_space(below.as_ref(), 3, 19), Ok(()));
        // Metadata counts as much as data.
        let meta = st("3 4000/4096 10/1600 - rw discard_passdown queue_if_no_space - 1024");
        let e = check_space(meta.as_ref(), 3, 20).unwrap_err().to_string();
        assert!(e.contains("metadata") && e.contains("4000/4096"), "{e}");
        // 0 refuses only what cannot take a snapshot at all.
        let full =
            st("3 12/4096 1600/1600 - out_of_data_space discard_passdown queue_if_no_space - 1024");
        assert_eq!(
            check_space(full.as_ref(), 3, 0),
            Err(SpaceRefusal::OutOfData)
        );
        let ro = st("3 12/4096 1/1600 - ro discard_passdown queue_if_no_space - 1024");
        assert_eq!(
            check_space(ro.as_ref(), 3, 0),
            Err(SpaceRefusal::Unusable(PoolRefusal::ReadOnly))
        );
        assert_eq!(
            check_space(None, 3, 0),
            Err(SpaceRefusal::Unusable(PoolRefusal::Failed))
        );
        assert!(matches!(
            check_space(at.as_ref(), 5, 0),
            Err(SpaceRefusal::Unusable(
                PoolRefusal::TransactionMismatch { .. }
            ))
        ));
        assert_eq!(check_space(at.as_ref(), 3, 0), Ok(()));
    }
}
