//! `rewind watch`: every active snapshot-set member's store checked once (run by
//! `rewind-watch.timer`); entry point [`run`]. A set member that fills up is a rollback point
//! silently lost, so a store at least `[watch] warn_percent` full is warned about in the journal
//! and at the next login, and, with `[watch] extend = true` and room in its VG, extended by
//! `extend_by_percent` of its size with stock `lvextend` (LVM grows the store and reloads the
//! snapshot). An overflowed member is said too: its set is lost (`rewind list`).
//!
//! Thin members have no store of their own: their pool fills instead, and a full pool stops
//! every thin volume in it (read-only, or errors with `error_if_no_space`). The pool of each
//! thin member is checked against the same `warn_percent`, its data and its metadata apart,
//! from the kernel's pool status; a part is warned about once each time it crosses the
//! threshold (the parts over it are kept in [`POOLS_SEEN`] between runs; `/run` empties at
//! boot, so the first run after a boot warns again). Extending a pool is left to LVM
//! (`thin_pool_autoextend_threshold`, dmeventd).

use std::collections::BTreeSet;
use std::path::Path;

use super::Error;
use super::env::System;
use super::sets::{self, MemberState, SetView, Tools};
use super::status::PoolReport;
use crate::config::Watch;
use crate::system::state;

/// The thin pool parts (`VG/POOL data`, `VG/POOL metadata`) over the threshold at the last
/// run, one a line, under the root.
pub const POOLS_SEEN: &str = "run/rewind/watch-pools";

/// What the watch did about one member.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Action {
    /// Below the threshold.
    Fine { lv: String, percent: f64 },
    /// Over it, not extended (extending off, or no room).
    Warned {
        lv: String,
        percent: f64,
        why: String,
    },
    /// Extended by `extents`.
    Extended {
        lv: String,
        percent: f64,
        extents: u64,
    },
    /// Its store overflowed: the set is lost.
    Lost { lv: String, set: String },
    /// A thin pool holding set members, below the threshold in data and metadata.
    PoolFine {
        pool: String,
        data_percent: f64,
        metadata_percent: f64,
    },
    /// A thin pool's `part` (`data` or `metadata`) at least `warn_percent` full; `crossed`:
    /// it was not at the last run, so this run warned.
    PoolWarned {
        pool: String,
        part: String,
        percent: f64,
        crossed: bool,
    },
}

/// The pools of the sets' thin members that the kernel reports on, each once.
fn member_pools(views: &[SetView]) -> Vec<&PoolReport> {
    let mut out: Vec<&PoolReport> = Vec::new();
    for p in views
        .iter()
        .flat_map(|v| &v.members)
        .filter_map(|m| m.pool.as_ref())
    {
        if !out.iter().any(|o| o.vg == p.vg && o.pool == p.pool) {
            out.push(p);
        }
    }
    out
}

/// The pools of `views`' thin members checked against `cfg.warn_percent`: one action per
/// pool (or per part over the threshold), and the warning texts of the parts that crossed it
/// since the last run. `seen` holds the parts over it at the last run and is updated; a pool
/// that is not active (or whose status the kernel does not give) keeps what it had.
pub fn check_pools(
    views: &[SetView],
    cfg: &Watch,
    seen: &mut BTreeSet<String>,
) -> (Vec<Action>, Vec<String>) {
    let (mut actions, mut texts) = (Vec::new(), Vec::new());
    for p in member_pools(views) {
        let Some(k) = p.kernel.as_ref() else {
            continue;
        };
        let name = format!("{}/{}", p.vg, p.pool);
        let (Some(data), Some(meta)) = (&k.data, &k.metadata) else {
            // Failed: `rewind status` says so; nothing to measure.
            continue;
        };
        let mut over = false;
        for (part, percent) in [("data", data.percent), ("metadata", meta.percent)] {
            let key = format!("{name} {part}");
            if percent < f64::from(cfg.warn_percent) {
                seen.remove(&key);
                continue;
            }
            over = true;
            let crossed = seen.insert(key);
            if crossed {
                texts.push(format!(
                    "thin pool {name}: its {part} is {percent:.1}% full (warn_percent {}); when it fills, every thin volume in it stops taking writes and its snapshot sets' rollback points with them: extend it (lvextend) or delete sets",
                    cfg.warn_percent
                ));
            }
            actions.push(Action::PoolWarned {
                pool: name.clone(),
                part: part.to_owned(),
                percent,
                crossed,
            });
        }
        if !over {
            actions.push(Action::PoolFine {
                pool: name,
                data_percent: data.percent,
                metadata_percent: meta.percent,
            });
        }
    }
    (actions, texts)
}

/// [`POOLS_SEEN`] under `root` (empty when absent).
fn read_seen(root: &Path) -> BTreeSet<String> {
    state::read(&root.join(POOLS_SEEN))
        .map(|t| t.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Writes [`POOLS_SEEN`] (a failure is only logged: the next run warns again).
fn write_seen(root: &Path, seen: &BTreeSet<String>) {
    let path = root.join(POOLS_SEEN);
    let text: String = seen.iter().map(|k| format!("{k}\n")).collect();
    if let Err(e) = state::write(&path, text.as_bytes()) {
        log::warn!("{}: {e}", path.display());
    }
}

/// How many extents to add to a store of `extents` at `percent` full: `None` when it stays.
pub fn extension(
    percent: f64,
    extents: u64,
    free: u64,
    cfg: &Watch,
) -> Result<Option<u64>, String> {
    if percent < f64::from(cfg.warn_percent) {
        return Ok(None);
    }
    if !cfg.extend {
        return Err("extending is off ([watch] extend = false)".into());
    }
    let add = (extents * u64::from(cfg.extend_by_percent))
        .div_ceil(100)
        .max(1);
    if add > free {
        return Err(format!(
            "its volume group has {free} free extents, {add} needed"
        ));
    }
    Ok(Some(add))
}

/// `rewind watch` on this system.
pub fn run(sys: &System) -> Result<Vec<Action>, Error> {
    let cfg = sys.config();
    let mut dm = sys.device_mapper().map_err(Error::dm_state)?;
    let tools = Tools::system(sys, &mut dm)?;
    let env = sys.env();
    let s = env.scan()?;
    let lvm = tools.lvm.clone();
    drop(tools);
    let views = sets::views(&s, Some(&mut dm))?;
    let mut out = Vec::new();
    let mut seen = read_seen(&sys.root);
    let (pools, texts) = check_pools(&views, &cfg.watch, &mut seen);
    for text in &texts {
        log::warn!("{text}");
        crate::system::motd::note(&sys.root, text);
    }
    write_seen(&sys.root, &seen);
    out.extend(pools);
    for v in &views {
        for m in &v.members {
            let lv = format!("{}/{}", m.vg, m.snapshot);
            if m.state == MemberState::Overflowed {
                let text = format!(
                    "snapshot set {}: {lv} overflowed; the set is lost as a rollback point (rewind delete {} frees its space)",
                    v.name, v.name
                );
                log::warn!("{text}");
                crate::system::motd::note(&sys.root, &text);
                out.push(Action::Lost {
                    lv,
                    set: v.name.clone(),
                });
                continue;
            }
            let (MemberState::Active, Some(percent)) = (m.state, m.fill_percent) else {
                continue;
            };
            let free = s
                .assembly
                .vgs_named(&m.vg)
                .next()
                .and_then(|f| f.model.as_ref())
                .map_or(0, crate::plan::set::free_extents);
            let extent_bytes = s
                .assembly
                .vgs_named(&m.vg)
                .next()
                .and_then(|f| f.model.as_ref())
                .map_or(1, |md| md.extent_size * 512);
            let extents = m.size_bytes / extent_bytes.max(1);
            match extension(percent, extents, free, &cfg.watch) {
                Ok(None) => out.push(Action::Fine { lv, percent }),
                Ok(Some(add)) => {
                    let args = vec![
                        "lvextend".to_owned(),
                        "-q".to_owned(),
                        "-l".to_owned(),
                        format!("+{add}"),
                        lv.clone(),
                    ];
                    lvm.run(&args).map_err(|e| Error::Set(e.to_string()))?;
                    log::warn!(
                        "snapshot set {}: {lv} was {percent:.1}% full; extended by {add} extents",
                        v.name
                    );
                    out.push(Action::Extended {
                        lv,
                        percent,
                        extents: add,
                    });
                }
                Err(why) => {
                    let text = format!(
                        "snapshot set {}: {lv} is {percent:.1}% full and will overflow (the set would be lost): {why}",
                        v.name
                    );
                    log::warn!("{text}");
                    crate::system::motd::note(&sys.root, &text);
                    out.push(Action::Warned { lv, percent, why });
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::sets::tests::{pool_active, thin_scan};
    use crate::system::dm::FakeDm;

    fn status(data: u64, meta: u64) -> String {
        format!("3 {meta}/1024 {data}/1280 - rw discard_passdown queue_if_no_space - 256")
    }

    /// The pool's data and metadata from the kernel's `thin-pool` status, each warned about
    /// once per crossing of `warn_percent` (80): not again while it stays over, again after
    /// it went below and back; an inactive pool changes nothing.
    #[test]
    fn a_filling_thin_pool_is_warned_about_once_per_crossing() {
        let s = thin_scan();
        let cfg = Watch::default();
        let mut seen = BTreeSet::new();
        let run = |data: u64, meta: u64, seen: &mut BTreeSet<String>| {
            let mut dm = pool_active(&s, &status(data, meta));
            let views = sets::views(&s, Some(&mut dm)).expect("views");
            check_pools(&views, &cfg, seen)
        };
        // 640/1280 data, 100/1024 metadata: fine.
        let (a, t) = run(640, 100, &mut seen);
        assert_eq!(
            a,
            [Action::PoolFine {
                pool: "tvg/pool".into(),
                data_percent: 50.0,
                metadata_percent: 9.77
            }]
        );
        assert!(t.is_empty() && seen.is_empty());
        // 1100/1280 = 85.94%: crosses, warned.
        let (a, t) = run(1100, 100, &mut seen);
        assert_eq!(
            a,
            [Action::PoolWarned {
                pool: "tvg/pool".into(),
                part: "data".into(),
                percent: 85.94,
                crossed: true
            }]
        );
        assert_eq!(t.len(), 1);
        assert!(
            t[0].starts_with("thin pool tvg/pool: its data is 85.9% full (warn_percent 80)"),
            "{}",
            t[0]
        );
        // Still over: no second warning. Metadata crosses now: warned, alone.
        let (a, t) = run(1200, 900, &mut seen);
        assert!(matches!(&a[0], Action::PoolWarned { crossed: false, part, .. } if part == "data"));
        assert!(
            matches!(&a[1], Action::PoolWarned { crossed: true, part, .. } if part == "metadata")
        );
        assert_eq!(t.len(), 1);
        assert!(t[0].contains("its metadata is 87.9% full"), "{}", t[0]);
        // Not active: nothing checked, nothing forgotten.
        let views = sets::views(&s, Some(&mut FakeDm::new())).expect("views");
        assert_eq!(check_pools(&views, &cfg, &mut seen), (vec![], vec![]));
        assert_eq!(seen.len(), 2);
        // Data below, then over again: a new crossing, warned again.
        let (_, t) = run(640, 900, &mut seen);
        assert!(t.is_empty());
        let (_, t) = run(1024, 900, &mut seen);
        assert_eq!(t.len(), 1);
        assert!(t[0].contains("its data is 80.0% full"), "{}", t[0]);
        // The state file keeps it between runs.
        let root = tempfile::tempdir().expect("tempdir");
        write_seen(root.path(), &seen);
        assert_eq!(read_seen(root.path()), seen);
        assert_eq!(
            std::fs::read_to_string(root.path().join(POOLS_SEEN)).expect("read"),
            "tvg/pool data\ntvg/pool metadata\n"
        );
    }

    #[test]
    fn a_full_store_is_extended_when_allowed_and_there_is_room() {
        let mut cfg = Watch::default();
        assert_eq!(extension(50.0, 10, 100, &cfg), Ok(None));
        assert!(
            extension(85.0, 10, 100, &cfg)
                .expect_err("off")
                .contains("extend = false")
        );
        cfg.extend = true;
        assert_eq!(extension(85.0, 10, 100, &cfg), Ok(Some(2)));
        assert_eq!(extension(85.0, 1, 100, &cfg), Ok(Some(1)));
        assert!(
            extension(85.0, 10, 1, &cfg)
                .expect_err("room")
                .contains("1 free extents, 2 needed")
        );
    }
}
