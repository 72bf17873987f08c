//! `rewind watch`: every active snapshot-set member's store checked once (run by
//! `rewind-watch.timer`); entry point [`run`]. A set member that fills up is a rollback point
//! silently lost, so a store at least `[watch] warn_percent` full is warned about in the journal
//! and at the next login, and, with `[watch] extend = true` and room in its VG, extended by
//! `extend_by_percent` of its size with stock `lvextend` (LVM grows the store and reloads the
//! snapshot). An overflowed member is said too: its set is lost (`rewind list`).

use super::Error;
use super::env::System;
use super::sets::{self, MemberState, Tools};
use crate::config::Watch;

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
