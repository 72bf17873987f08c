//! Which block devices rewind may read: exactly the ones LVM itself would use, from LVM's own
//! configuration (`lvm.conf`, `lvmlocal.conf`, the devices file), so rewind never acts on a
//! disk the administrator hid from LVM (a VM image, a cloned disk).
//!
//! The rules are pure functions over data ([`Rules`], [`DeviceFacts`], [`Selection::decide`]):
//! LVM's regex dialect and filters (`rx`, `lvmconf`), the devices file (`devices_file`), the
//! `scan.devices` globs. `system::devsel` is the one place that reads files, all under an
//! injectable root (`ROOT/etc/lvm`, `ROOT/dev`, `ROOT/sys`).
//!
//! What LVM2 does, read in its source (lvmteam/lvm2, checked against 2.03.16 and 2.03.40):
//! - Filters (`lib/filters/filter-regex.c`, `_accept_p`): a pattern is `a` or `r`, a delimiter
//!   (`(`..`)`, `[`..`]`, `{`..`}`, else the same character at both ends) and a regex. For each
//!   name (alias) of a device, the first pattern in the user's order that matches decides: an
//!   accept accepts the device at once; a reject is remembered and the next alias is tried. A
//!   device is rejected only if some alias was rejected and none accepted; a device none of
//!   whose aliases matches any pattern is accepted. So the order of the aliases never changes
//!   the result. `devices/global_filter` and `devices/filter` are two filters in one chain
//!   (`lib/commands/toolcontext.c`, `_init_filter_chain`): both must accept. A pattern that
//!   does not parse makes LVM fail the whole command.
//! - Regex engine (`libdm/regex/parse_rx.c`, `matcher.c`): each pattern is searched in the name
//!   as `.*(P)` from its first byte (so no match starts after a `\n` or `\r`); the name is fed framed by two marker bytes, `^` matches the first
//!   (0x02) and `$` the last (0x03); `.` is any byte but `\n`, `\r`, NUL (so it also matches
//!   the markers, as `[^...]` does); `*`, `+`, `?`, `|`, `(...)`, `[...]` with ranges and `^`
//!   negation, `\n`, `\r`, `\t`, and `\` before any other character makes it literal. There is
//!   no `{m,n}`, no `\d`, no `[:class:]`: those characters are literal. rewind compiles each
//!   pattern with its own matcher for exactly this dialect (`rx`, markers included), tested
//!   against the `regex` crate and against libdevmapper's engine (`tests/tools/rxcases.c`).
//!   Differences: rewind refuses an empty pattern, an empty group, unbalanced parentheses and
//!   non-ASCII bytes in a bracket expression, which LVM either refuses too or reads in ways
//!   that depend on the other patterns; refusing is the safe direction (see errors below).
//! - Aliases (`lib/device/dev-cache.c`, `_insert_dir`, `_insert`): every path under `/dev`
//!   (recursively; not dot files, not symlinks to directories, not other filesystems, not
//!   `bsg bus char cpu dma_heap dri input snd usb`) that `stat`s to the device: its node,
//!   `/dev/disk/by-*/*`, `/dev/mapper/*`, `/dev/block/M:m`, `/dev/VG/LV`. With
//!   `obtain_device_list_from_udev = 1` LVM takes the node and udev's links instead, which is
//!   usually the same set on a udev-managed `/dev`. rewind walks `ROOT/dev`
//!   (depth `system::devsel::MAX_DEV_DEPTH`, `MAX_DEV_ENTRIES` entries) and matches entries by device
//!   number, or (in test trees, where nodes are plain files) by the resolved path of
//!   `ROOT/dev/NAME`; `/dev/NAME` is always an alias.
//! - Devices file (`lib/device/dev-cache.c` `setup_devices_file`, `setup_devices`;
//!   `lib/device/device_id.c` `device_ids_read`, `device_ids_match`, `_match_du_to_dev`,
//!   `device_id_system_read`; `lib/filters/filter-deviceid.c`): with `devices/use_devicesfile`
//!   on, `ETC/devices/DEVICESFILE` (default `system.devices`) lists the devices LVM may use, one
//!   per line as `IDTYPE=.. IDNAME=.. DEVNAME=.. PVID=.. [PART=N]`; `#` lines, `VERSION=`,
//!   `SYSTEMID=`, `HOSTNAME=`, `PRODUCT_UUID=`, `REFRESH_UNTIL=` lines are headers; `.` means
//!   no value; an entry needs IDTYPE and IDNAME. A missing file means no devices file. A device
//!   is used only if an entry matches it: same partition number (sysfs `partition`, 0 for a
//!   whole device), an IDTYPE possible for its kind (loop, md, dm, other), and IDNAME equal to
//!   the id read from sysfs (`sys_wwid`: `device/wwid` or `wwid`; `sys_serial`: `device/serial`
//!   or, for virtio disks, `serial`; `loop_file`: `loop/backing_file` unless deleted; `md_uuid`:
//!   `md/uuid`; `mpath_uuid`, `crypt_uuid`, `lvmlv_uuid`: `dm/uuid` with its prefix; a
//!   partition falls back to its whole device's attribute) or, for `devname`, to the device's
//!   name. Each entry matches one device and each device one entry; entries with a real id
//!   type are matched first, trying their DEVNAME's device first. LVM 2.03.16 replaced blanks
//!   and control characters by `_`; later versions trim spaces, drop quotes and non-printable
//!   characters, and accept old entries by trimming `_`: rewind accepts either form. With the
//!   devices file in use LVM ignores `filter` and `global_filter` (it warns "Please remove the
//!   lvm.conf filter").
//!
//! Decisions:
//! - `use_devicesfile` set in lvm.conf is honoured. When it is not set, the devices file is
//!   used if it exists: distributions compile different defaults (Debian 0, RHEL 9 1) and
//!   rewind cannot know which; using the file when present can only make rewind read fewer
//!   devices than LVM, and a VG with a missing PV is then refused (the safe direction). For the
//!   same reason the filters still apply when the file's use was inferred rather than set.
//! - ID types rewind cannot read from sysfs (`wwid_naa`, `wwid_eui`, `wwid_t10`,
//!   `nvme_eui64`, `nvme_nguid`, `nvme_uuid`, and any unknown name) match by DEVNAME and need a
//!   PVID, logged at debug level (an LVM that does not know a type never matches it; the
//!   PVID check keeps this to the device the entry was written for). Every accepted device carries the entry's PVID
//!   ([`Accepted::pvid`]): the caller refuses a device whose label says otherwise (LVM trusts a
//!   stable id over the PVID and rewrites the file; rewind refuses instead).
//! - An lvm.conf or devices file that cannot be read or parsed, a bad setting, or a pattern
//!   that does not compile is an error for the whole selection: the caller then reads no
//!   device at all (fail open: never read a device LVM might hide).
//! - `scan.use_lvm_config = false` accepts every device; `scan.devices` globs, when given,
//!   restrict further (a device is kept if one of its aliases matches one glob). LVs are never
//!   read whatever the settings (`scan::not_an_lv`; LVM's `devices/scan_lvs = 1` is not
//!   followed: fewer devices).
//!
//! Left out, in the direction of reading fewer devices than LVM: LVM's search for a devname
//! entry's PV on renamed devices, extra wwids from `vpd_pg83` and libnvme, serials from
//! `vpd_pg80`, host tags (`lvm_TAG.conf`: refused when present), keys written as
//! `devices/filter` paths or repeated sections (the text parser refuses them), patterns LVM
//! reads only through its joined expression (an unbalanced `)`: refused).
//!
//! Multipath paths and md members are skipped when sysfs says a multipath (`dm/uuid`
//! `mpath-...`) or md device holds them, as LVM's component filters do.
//!
//! Left out, in the other direction: LVM's content and type filters (`devices/types` and
//! `/proc/devices`, md members found by their superblock or multipath paths by the wwids file
//! while the array or map is not assembled, partitioned whole disks, signatures) and a
//! `devices/scan` other than `/dev`. A member read beside its array shows the same PV twice,
//! which the assembler refuses (invariant 7).

use crate::lvm::text;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;

mod devices_file;
mod lvmconf;
mod rx;

pub use devices_file::{
    DeviceEntry, DeviceFacts, Kind, dm_uuid_has_prefix, match_entries, parse_devices_file,
};
pub use lvmconf::{Filter, LvmConf};

/// Largest lvm.conf or devices file read.
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// Why no selection could be made; the caller then reads no device.
#[derive(Debug, thiserror::Error)]
pub enum DevselError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("{path} is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge { path: String },
    #[error("{path}: {source}")]
    Syntax {
        path: String,
        source: text::TextError,
    },
    #[error("{path}: devices/{key}: {message}")]
    Setting {
        path: String,
        key: &'static str,
        message: String,
    },
    #[error("{path}: devices/{key}: pattern \"{pattern}\": {message}")]
    Pattern {
        path: String,
        key: &'static str,
        pattern: String,
        message: String,
    },
    #[error("{path}: host tags are set and {tagfile} exists; rewind does not follow tag configs")]
    HostTags { path: String, tagfile: String },
    #[error("scan.devices: glob \"{glob}\": {message}")]
    Glob { glob: String, message: String },
}

// ---------------------------------------------------------------------------------------------
// Globs (`scan.devices`)

fn glob(glob: &str) -> Result<rx::Program, DevselError> {
    rx::Program::glob(glob).map_err(|message| DevselError::Glob {
        glob: glob.to_owned(),
        message,
    })
}

// ---------------------------------------------------------------------------------------------
// The rules and the selection

/// Which block devices rewind reads (`rewind.toml`'s `[scan]`, `config::Scan`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Honour LVM's own device selection (its devices file and `lvm.conf` filters), so rewind
    /// never acts on a disk the administrator hid from LVM.
    pub use_lvm_config: bool,
    /// Where LVM's configuration lives (carried into the initramfs by the hooks).
    pub lvm_config_dir: String,
    /// When not empty, only devices matching these shell-style globs (e.g. `/dev/vd*`) are
    /// read; LVM's own selection still applies on top (this narrows it, never widens it).
    pub devices: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            use_lvm_config: true,
            lvm_config_dir: "/etc/lvm".into(),
            devices: Vec::new(),
        }
    }
}

/// How the devices file is used.
#[derive(Debug, Clone)]
pub struct DevicesFile {
    pub path: String,
    pub entries: Vec<DeviceEntry>,
    /// `use_devicesfile` was set in lvm.conf (LVM then ignores the filters, and so does
    /// rewind); false when its use was inferred from the file existing.
    pub explicit: bool,
}

/// Everything that decides the selection, read from the configuration.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// False when `scan.use_lvm_config = false`: no LVM rule applies.
    pub use_lvm: bool,
    pub conf: LvmConf,
    pub devices_file: Option<DevicesFile>,
    globs: Vec<(String, rx::Program)>,
}

impl Rules {
    /// Whether any rule looks at a device's other names under `/dev` (a filter, a devices file
    /// or a `scan.devices` glob). Without one, finding them (a walk of `/dev`, hundreds of
    /// system calls at boot) is skipped.
    pub fn uses_aliases(&self) -> bool {
        !self.globs.is_empty()
            || (self.use_lvm
                && (self.devices_file.is_some()
                    || self.conf.filter.is_some()
                    || self.conf.global_filter.is_some()))
    }

    /// Adds `scan.devices` globs.
    pub fn with_globs(mut self, globs: &[String]) -> Result<Rules, DevselError> {
        for g in globs {
            self.globs.push((g.clone(), glob(g)?));
        }
        Ok(self)
    }

    /// The rules when LVM's configuration is not followed (`scan.use_lvm_config = false`):
    /// every device, narrowed by the globs.
    pub fn without_lvm(globs: &[String]) -> Result<Rules, DevselError> {
        Rules::default().with_globs(globs)
    }

    /// The rules from LVM's configuration as read, narrowed by the globs.
    pub fn from_lvm(
        conf: LvmConf,
        devices_file: Option<DevicesFile>,
        globs: &[String],
    ) -> Result<Rules, DevselError> {
        Rules {
            use_lvm: true,
            conf,
            devices_file,
            globs: Vec::new(),
        }
        .with_globs(globs)
    }
}

impl DevicesFile {
    /// The devices file at `path` (for messages) with contents `bytes`; `explicit` when
    /// lvm.conf sets `use_devicesfile`.
    pub fn parse(path: String, bytes: &[u8], explicit: bool) -> DevicesFile {
        DevicesFile {
            path,
            entries: parse_devices_file(&String::from_utf8_lossy(bytes)),
            explicit,
        }
    }
}

/// A device rewind may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The PVID the devices file expects on it; a label with another PV uuid must be refused.
    pub pvid: Option<String>,
    /// `IDTYPE=IDNAME` of the matching devices-file entry.
    pub entry: Option<String>,
}

/// Accepted, or why not.
type Decision = Result<Accepted, String>;

/// The decision for every block device present when the selection was made.
#[derive(Debug, Clone)]
pub struct Selection {
    /// By kernel name: the device number seen, and the decision.
    decisions: BTreeMap<String, (Option<(u32, u32)>, Decision)>,
    /// How the devices were chosen, for logs.
    pub summary: String,
}

impl Selection {
    /// The pure decision over the facts of every device.
    pub fn decide(rules: &Rules, devices: &[DeviceFacts]) -> Selection {
        let owners = rules
            .devices_file
            .as_ref()
            .filter(|_| rules.use_lvm)
            .map(|df| match_entries(&df.entries, devices));
        let decisions = devices
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let owner = owners.as_ref().map(|o| o[i]);
                (d.name.clone(), (d.devno, rules.decide_one(d, owner)))
            })
            .collect();
        Selection {
            decisions,
            summary: rules.summary(),
        }
    }

    /// The decision for the device with kernel name `name` and number `devno`, with the
    /// reason when it may not be read: a device that appeared or changed since the selection
    /// was made is never read.
    pub fn decision(&self, name: &str, devno: (u32, u32)) -> Result<&Accepted, String> {
        match self.decisions.get(name) {
            Some((seen, _)) if seen.is_some_and(|n| n != devno) => {
                Err("changed after the device selection was made".into())
            }
            Some((_, Ok(a))) => Ok(a),
            Some((_, Err(why))) => Err(why.clone()),
            None => Err("appeared after the device selection was made".into()),
        }
    }
}

impl Rules {
    /// Whether the filters apply: LVM ignores them when `use_devicesfile` is set.
    fn filters_apply(&self) -> bool {
        self.use_lvm && !self.devices_file.as_ref().is_some_and(|df| df.explicit)
    }

    /// One device's decision; `owner` is the devices-file entry that names it, when a devices
    /// file is used.
    fn decide_one(&self, d: &DeviceFacts, owner: Option<Option<usize>>) -> Decision {
        if !self.globs.is_empty()
            && !self
                .globs
                .iter()
                .any(|(_, re)| d.aliases.iter().any(|a| re.is_match(a.as_bytes())))
        {
            return Err("not matched by rewind.toml scan.devices".to_owned());
        }
        if self.use_lvm
            && let Some(holder) = &d.component_of
        {
            return Err(format!("a component of {holder}, which lvm uses instead"));
        }
        if self.filters_apply() {
            for f in [&self.conf.global_filter, &self.conf.filter]
                .into_iter()
                .flatten()
            {
                f.check(&d.aliases)?;
            }
        }
        let mut accepted = Accepted {
            pvid: None,
            entry: None,
        };
        if let (Some(owner), Some(df)) = (owner, &self.devices_file) {
            let Some(ei) = owner else {
                return Err(format!("not listed in the lvm devices file {}", df.path));
            };
            let e = &df.entries[ei];
            accepted.pvid = e.pvid.clone();
            accepted.entry = Some(format!(
                "{}={}",
                e.idtype,
                e.idname.as_deref().unwrap_or(".")
            ));
        }
        Ok(accepted)
    }

    /// How the devices are chosen, for logs.
    fn summary(&self) -> String {
        let mut summary = if !self.use_lvm {
            "every device (scan.use_lvm_config = false)".to_owned()
        } else {
            let mut parts = Vec::new();
            if let Some(df) = &self.devices_file {
                parts.push(format!(
                    "the devices file {} ({})",
                    df.path,
                    if df.explicit {
                        "use_devicesfile = 1"
                    } else {
                        "use_devicesfile not set, file present"
                    }
                ));
            }
            if self.filters_apply() {
                for f in [&self.conf.global_filter, &self.conf.filter]
                    .into_iter()
                    .flatten()
                {
                    parts.push(format!("devices/{}", f.key()));
                }
            }
            if parts.is_empty() {
                "every device (lvm defaults)".to_owned()
            } else {
                parts.join(" and ")
            }
        };
        if !self.globs.is_empty() {
            let globs: Vec<&str> = self.globs.iter().map(|(g, _)| g.as_str()).collect();
            let _ = write!(summary, ", only {}", globs.join(" "));
        }
        summary
    }
}
