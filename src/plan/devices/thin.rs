//! Thin LVs as LVM lays them out (`lib/activate/dev_manager.c` `_add_new_lv_to_dtree`,
//! `lib/thin/thin.c` `_thin_pool_add_target_line` / `_thin_add_target_line`,
//! `lib/misc/lvm-string.c` `build_dm_uuid`, libdm's `_thin_pool_emit_segment_line`), as
//! LVM2 2.03.16 does it:
//!
//! - `VG-POOL_tmeta` (uuid suffix `-tmeta`) and `VG-POOL_tdata` (`-tdata`): the hidden LVs'
//!   own segments;
//! - `VG-POOL-tpool` (`-tpool`): `thin-pool <tmeta> <tdata> <chunk> <low water mark>
//!   <features>`;
//! - `VG-LV`: `thin <tpool> <device id>`.
//!
//! That is what activating one thin LV creates (an initramfs activates root only). The pool
//! LV's own read-only `VG-POOL` device (`linear` over `-tpool`, uuid suffix `-pool`) is made
//! by LVM when the pool LV itself is activated; rewind does not make it.
//!
//! A thin merge (`lvconvert --merge` of a thin snapshot while its origin is open) only writes
//! `merge = "<origin>"` into the snapshot's segment and hides it. At the origin's next
//! activation its `thin` table uses the snapshot's device id: the origin shows the snapshot's
//! content at once, no data moves. The snapshot itself cannot be activated while so flagged
//! (LVM: "Failed to add merged segment").

use super::{DeviceSpec, DevicesError, Role, VgLayout, mapper};
use crate::lvm::layout::Layer;
use crate::lvm::model::{Lv, SegmentKind};
use crate::plan::dev::UdevRules;
use crate::plan::table::{DevRef, Table, Target, ThinPoolArgs, ThinPoolFeature};

/// LVM's `activation/thin_pool_autoextend_threshold` default (100: no autoextend), for which
/// `_thin_pool_add_target_line` loads a low water mark of 0. A host whose lvm.conf sets a
/// lower threshold gets another low water mark from LVM; rewind always loads this one.
const AUTOEXTEND_THRESHOLD: u64 = 100;

/// `DM_THIN_MAX_METADATA_SIZE` in sectors: LVM crops larger metadata LVs when the pool has
/// `crop_metadata`; rewind does not lay those out.
const MAX_METADATA_SECTORS: u64 = 255 * ((1 << 14) - 64) * (4096 / 512);

/// The pool as its `thin-pool` segment describes it.
struct Pool<'a> {
    lv: &'a Lv,
    meta: &'a Lv,
    data: &'a Lv,
    chunk_size: u64,
    discards: Option<&'a str>,
    zero_new_blocks: bool,
}

impl VgLayout<'_> {
    fn layout_err(&self, message: String) -> DevicesError {
        DevicesError::Layout {
            vg: self.vg.name.clone(),
            message,
        }
    }

    fn pool(&self, name: &str) -> Result<Pool<'_>, DevicesError> {
        let lv = self.lv(name)?;
        let [seg] = lv.segments.as_slice() else {
            return Err(self.out_of_scope(lv));
        };
        let SegmentKind::ThinPool {
            metadata,
            data,
            chunk_size,
            discards,
            zero_new_blocks,
            ..
        } = &seg.kind
        else {
            return Err(self.layout_err(format!("lv {name} is not a thin pool")));
        };
        let meta = self.lv(metadata)?;
        let data = self.lv(data)?;
        for part in [meta, data] {
            if !part.is_plain() {
                return Err(self.out_of_scope(part));
            }
        }
        if *chunk_size == 0 {
            return Err(self.layout_err(format!("thin pool {name} has chunk_size 0")));
        }
        Ok(Pool {
            lv,
            meta,
            data,
            chunk_size: *chunk_size,
            discards: discards.as_deref(),
            zero_new_blocks: *zero_new_blocks,
        })
    }

    /// LVM's name (no layer) and uuid (with the suffix `build_dm_uuid` adds) of a pool part.
    fn part_device(&self, lv: &Lv, suffix: &str) -> Result<(String, String), DevicesError> {
        let (name, _) = self.device(lv, None)?;
        let (_, uuid) = self.device(lv, Some(&Layer::Other(suffix.to_owned())))?;
        Ok((name, uuid))
    }

    /// The `thin-pool` target LVM loads for `pool`.
    fn thin_pool_target(&self, pool: &Pool<'_>, meta: DevRef, data: DevRef) -> Target {
        let len = pool.lv.extent_count() * self.vg.extent_size;
        let low_water_mark = if AUTOEXTEND_THRESHOLD < 100 {
            len / pool.chunk_size * (100 - AUTOEXTEND_THRESHOLD.max(50)) / 100
        } else {
            0
        };
        // In the kernel's order (`emit_flags`), which is also libdm's for these.
        let mut features = Vec::new();
        if !pool.zero_new_blocks {
            features.push(ThinPoolFeature::SkipBlockZeroing);
        }
        match pool.discards {
            Some("passdown") => {}
            Some("nopassdown") => features.push(ThinPoolFeature::NoDiscardPassdown),
            // `_thin_pool_text_import`: no `discards` means ignore.
            _ => features.push(ThinPoolFeature::IgnoreDiscard),
        }
        if pool.lv.flags.iter().any(|f| f == "ERROR_WHEN_FULL") {
            features.push(ThinPoolFeature::ErrorIfNoSpace);
        }
        Target::ThinPool(ThinPoolArgs {
            metadata: meta,
            data,
            block_sectors: pool.chunk_size,
            low_water_mark,
            features,
        })
    }

    /// The devices that activate the thin LV `lv`, leaves first.
    pub(super) fn thin_activation(&self, lv: &Lv) -> Result<Vec<DeviceSpec>, DevicesError> {
        let Some(seg) = lv.thin() else {
            return Err(self.out_of_scope(lv));
        };
        if seg.external_origin.is_some() {
            return Err(self.layout_err(format!(
                "lv {} has an external origin, which rewind does not activate; leave it to lvm2",
                lv.name
            )));
        }
        if let Some(origin) = seg.merge {
            return Err(self.layout_err(format!(
                "lv {} is a thin snapshot flagged to merge into {origin}; activate {origin} instead",
                lv.name
            )));
        }
        let pool = self.pool(seg.pool)?;
        if pool
            .discards
            .is_some_and(|d| !matches!(d, "passdown" | "nopassdown" | "ignore"))
        {
            return Err(self.layout_err(format!(
                "thin pool {} has discards {:?}, which lvm2 does not write",
                pool.lv.name, pool.discards
            )));
        }
        let meta_table = self.segment_table(pool.meta)?;
        if meta_table.length() > MAX_METADATA_SECTORS {
            return Err(self.layout_err(format!(
                "thin pool {}: metadata lv {} is larger than the kernel reads (lvm2 crops it); leave it to lvm2",
                pool.lv.name, pool.meta.name
            )));
        }
        // LVM's `_thin_add_target_line`: a merging origin uses its snapshot's device id.
        let device_id = match self.vg.thin_merge_into(&lv.name).and_then(Lv::thin) {
            Some(snap) if snap.pool == seg.pool => snap.device_id,
            Some(_) => {
                return Err(self.layout_err(format!(
                    "the thin snapshot flagged to merge into {} is in another pool",
                    lv.name
                )));
            }
            None => seg.device_id,
        };
        let (meta_name, meta_uuid) = self.part_device(pool.meta, "tmeta")?;
        let (data_name, data_uuid) = self.part_device(pool.data, "tdata")?;
        let (tpool_name, tpool_uuid) =
            self.device(pool.lv, Some(&Layer::Other("tpool".to_owned())))?;
        let pool_len = pool.lv.extent_count() * self.vg.extent_size;
        let target = self.thin_pool_target(
            &pool,
            DevRef::Path(mapper(&meta_name)),
            DevRef::Path(mapper(&data_name)),
        );
        let data_table = self.segment_table(pool.data)?;
        let (name, uuid) = self.device(lv, None)?;
        Ok(vec![
            DeviceSpec {
                name: meta_name,
                uuid: meta_uuid,
                table: meta_table,
                role: Role::PoolPart,
                link: None,
                rules: UdevRules::DmOnly,
            },
            DeviceSpec {
                name: data_name,
                uuid: data_uuid,
                table: data_table,
                role: Role::PoolPart,
                link: None,
                rules: UdevRules::DmOnly,
            },
            DeviceSpec {
                name: tpool_name.clone(),
                uuid: tpool_uuid,
                table: Table::single(pool_len, target),
                role: Role::ThinPool,
                link: None,
                rules: UdevRules::DmOnly,
            },
            DeviceSpec {
                name,
                uuid,
                table: Table::single(
                    seg.extent_count * self.vg.extent_size,
                    Target::Thin {
                        pool: DevRef::Path(mapper(&tpool_name)),
                        device_id,
                    },
                ),
                role: Role::Thin,
                link: lv.visible.then(|| (self.vg.name.clone(), lv.name.clone())),
                rules: if lv.visible {
                    UdevRules::All
                } else {
                    UdevRules::DmOnly
                },
            },
        ])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::lvm::model::Vg;
    use crate::lvm::text::parse;
    use crate::plan::dev::DevNum;
    use crate::plan::devices::{Role, VgLayout};
    use std::collections::BTreeMap;

    /// Stock LVM2 2.03.16's `vgcfgbackup` of a thin root `root` in pool `pool` (data LV in
    /// two segments), with thin snapshots `snap1` (flagged to merge into root, as
    /// `lvconvert --merge` leaves it while root is open) and `snap2`.
    const THIN: &str = include_str!("../../../tests/fixtures/text/thin.vg");
    const VG_ID: &str = "9CSukjTx2sm3SBkOqP98iff1P44tN55d";

    fn vg(text: &str) -> Vg {
        Vg::from_tree(&parse(text.as_bytes()).unwrap()).unwrap()
    }

    fn lines(vg: &Vg, lv: &str) -> Result<Vec<String>, String> {
        let pvs = BTreeMap::from([("pv0".to_owned(), DevNum { major: 7, minor: 0 })]);
        let layout = VgLayout { vg, pv_dev: &pvs };
        let devs = layout.activation(lv).map_err(|e| e.to_string())?;
        Ok(devs
            .iter()
            .map(|d| {
                format!(
                    "{} {} {:?} {:?} | {}",
                    d.name,
                    d.uuid,
                    d.role,
                    d.link,
                    d.table.to_string().trim_end().replace('\n', " / ")
                )
            })
            .collect())
    }

    #[test]
    fn merging_thin_origin_takes_the_snapshots_device_id() {
        let got = lines(&vg(THIN), "root").unwrap();
        let want = [
            format!(
                "tvg-pool_tmeta LVM-{VG_ID}wwQKSAN1yQSz7wpQ6Iv3TeaOvAx9oOXS-tmeta PoolPart None | 0 8192 linear 7:0 2048"
            ),
            format!(
                "tvg-pool_tdata LVM-{VG_ID}6FjGPxCTRYt3dPQfvyp8xF7j6xsTUBtB-tdata PoolPart None | 0 8192 linear 7:0 10240 / 8192 155648 linear 7:0 26624"
            ),
            format!(
                "tvg-pool-tpool LVM-{VG_ID}P00lAAaaaabbbbccccddddeeeeffff00-tpool ThinPool None | 0 163840 thin-pool /dev/mapper/tvg-pool_tmeta /dev/mapper/tvg-pool_tdata 128 0 0"
            ),
            format!(
                "tvg-root LVM-{VG_ID}R00tAAaaaabbbbccccddddeeeeffff00 Thin Some((\"tvg\", \"root\")) | 0 81920 thin /dev/mapper/tvg-pool-tpool 2"
            ),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn without_the_flag_each_thin_lv_keeps_its_own_id() {
        let plain = THIN.replace("merge = \"root\"", "");
        let root = lines(&vg(&plain), "root").unwrap();
        assert!(
            root[3].ends_with("thin /dev/mapper/tvg-pool-tpool 1"),
            "{root:?}"
        );
        // The sibling snapshot is untouched by the merge: its own id, its own device.
        let snap2 = lines(&vg(THIN), "snap2").unwrap();
        assert_eq!(snap2.len(), 4);
        assert!(snap2[3].starts_with("tvg-snap2 "), "{snap2:?}");
        assert!(
            snap2[3].ends_with("thin /dev/mapper/tvg-pool-tpool 3"),
            "{snap2:?}"
        );
    }

    #[test]
    fn the_flagged_snapshot_itself_is_refused() {
        let e = lines(&vg(THIN), "snap1").unwrap_err();
        assert!(
            e.contains("snap1 is a thin snapshot flagged to merge into root"),
            "{e}"
        );
    }

    #[test]
    fn pool_features_follow_the_metadata() {
        let t = THIN
            .replace("discards = \"passdown\"", "discards = \"nopassdown\"")
            .replace("zero_new_blocks = 1", "zero_new_blocks = 0");
        let got = lines(&vg(&t), "root").unwrap();
        assert!(
            got[2].ends_with("128 0 2 skip_block_zeroing no_discard_passdown"),
            "{got:?}"
        );
        let t = THIN.replace("discards = \"passdown\"", "");
        let got = lines(&vg(&t), "root").unwrap();
        assert!(got[2].ends_with("128 0 1 ignore_discard"), "{got:?}");
        // error_when_full lives in the pool LV's flags.
        let t = THIN.replacen(
            "ffff00\"\n\t\t\tstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\n\t\t\tflags = []",
            "ffff00\"\n\t\t\tstatus = [\"READ\", \"WRITE\", \"VISIBLE\"]\n\t\t\tflags = [\"ERROR_WHEN_FULL\"]",
            1,
        );
        assert_ne!(t, THIN);
        let got = lines(&vg(&t), "root").unwrap();
        assert!(got[2].ends_with("128 0 1 error_if_no_space"), "{got:?}");
    }

    #[test]
    fn the_pool_lv_itself_is_left_to_lvm() {
        let e = lines(&vg(THIN), "pool").unwrap_err();
        assert!(e.contains("thin-pool"), "{e}");
        let roles: Vec<Role> = {
            let v = vg(THIN);
            let pvs = BTreeMap::from([("pv0".to_owned(), DevNum { major: 7, minor: 0 })]);
            VgLayout {
                vg: &v,
                pv_dev: &pvs,
            }
            .activation("root")
            .unwrap()
            .iter()
            .map(|d| d.role)
            .collect()
        };
        assert_eq!(
            roles,
            [Role::PoolPart, Role::PoolPart, Role::ThinPool, Role::Thin]
        );
    }
}
