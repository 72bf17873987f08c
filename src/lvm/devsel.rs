//! Which block devices rewind may read: exactly the ones LVM itself would use, from LVM's own
//! configuration (`lvm.conf`, `lvmlocal.conf`, the devices file), so rewind never acts on a
//! disk the administrator hid from LVM (a VM image, a cloned disk).
//!
//! The rules are pure functions over data ([`Rules`], [`DeviceFacts`], [`Selection::decide`]);
//! [`Selection::load`] is the one place that reads files, all under an injectable root
//! (`ROOT/etc/lvm`, `ROOT/dev`, `ROOT/sys`).
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
//! - Regex engine (`libdm/regex/parse_rx.c`, `matcher.c`): each pattern is searched anywhere in
//!   the name (`.*(P)`); the name is fed framed by two marker bytes, `^` matches the first
//!   (0x02) and `$` the last (0x03); `.` is any byte but `\n`, `\r`, NUL (so it also matches
//!   the markers, as `[^...]` does); `*`, `+`, `?`, `|`, `(...)`, `[...]` with ranges and `^`
//!   negation, `\n`, `\r`, `\t`, and `\` before any other character makes it literal. There is
//!   no `{m,n}`, no `\d`, no `[:class:]`: those characters are literal. rewind translates each
//!   pattern into the `regex` crate's byte syntax with the same meaning (markers included).
//!   Differences: rewind refuses an empty pattern, an empty group, unbalanced parentheses and
//!   non-ASCII bytes in a bracket expression, which LVM either refuses too or reads in ways
//!   that depend on the other patterns; refusing is the safe direction (see errors below).
//! - Aliases (`lib/device/dev-cache.c`, `_insert_dir`, `_insert`): every path under `/dev`
//!   (recursively; not dot files, not symlinks to directories, not other filesystems, not
//!   `bsg bus char cpu dma_heap dri input snd usb`) that `stat`s to the device: its node,
//!   `/dev/disk/by-*/*`, `/dev/mapper/*`, `/dev/block/M:m`, `/dev/VG/LV`. With
//!   `obtain_device_list_from_udev = 1` LVM takes the node and udev's links instead, which is
//!   usually the same set on a udev-managed `/dev`. rewind walks `ROOT/dev`
//!   (depth [`MAX_DEV_DEPTH`], [`MAX_DEV_ENTRIES`] entries) and matches entries by device
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

use crate::config;
use crate::lvm::text::{self, Section, Value};
use crate::system::blockdev::{self, BlockDevice};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Deepest directory level under `/dev` that is searched for aliases.
pub const MAX_DEV_DEPTH: usize = 8;
/// Most entries under `/dev` looked at when searching for aliases.
pub const MAX_DEV_ENTRIES: usize = 100_000;
/// Largest lvm.conf or devices file read.
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// Directories under `/dev` LVM never scans (`dev-cache.c`, `_no_scan`).
const NO_SCAN: [&str; 9] = [
    "bsg", "bus", "char", "cpu", "dma_heap", "dri", "input", "snd", "usb",
];

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
// LVM's regex dialect

/// Marker bytes LVM's matcher feeds before and after a name (`parse_rx.h`).
const HAT: u8 = 0x02;
const DOLLAR: u8 = 0x03;

/// Translates one LVM regex into the `regex` crate's byte syntax with the same meaning when
/// searched in a name framed by [`HAT`] and [`DOLLAR`].
fn translate(re: &[u8]) -> Result<String, String> {
    let mut p = RxParser {
        b: re,
        pos: 0,
        depth: 0,
    };
    let out = p.or()?;
    match p.peek() {
        None => Ok(format!("(?s-u){out}")),
        Some(b')') => Err("unbalanced ')'".into()),
        Some(c) => Err(format!("unexpected '{}'", c as char)),
    }
}

struct RxParser<'a> {
    b: &'a [u8],
    pos: usize,
    depth: usize,
}

/// Deepest nesting of parentheses accepted in a pattern (bounds the parser's recursion).
const MAX_GROUP_DEPTH: usize = 32;

/// A 256-bit byte set.
type ByteSet = [bool; 256];

fn class(set: &ByteSet) -> String {
    let mut out = String::from("[");
    let mut i = 0usize;
    let mut any = false;
    while i < 256 {
        if set[i] {
            let start = i;
            while i + 1 < 256 && set[i + 1] {
                i += 1;
            }
            any = true;
            let _ = write!(out, "\\x{start:02x}-\\x{i:02x}");
        }
        i += 1;
    }
    if !any {
        // An empty set matches nothing, as in LVM.
        return "[^\\x00-\\xff]".into();
    }
    out.push(']');
    out
}

impl RxParser<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn or(&mut self) -> Result<String, String> {
        let mut alternatives = vec![self.cat()?];
        while self.peek() == Some(b'|') {
            self.pos += 1;
            alternatives.push(self.cat().map_err(|e| format!("badly formed '|': {e}"))?);
        }
        Ok(format!("(?:{})", alternatives.join("|")))
    }

    fn cat(&mut self) -> Result<String, String> {
        let mut out = String::new();
        loop {
            match self.peek() {
                None | Some(b'|') | Some(b')') => break,
                _ => out.push_str(&self.closure()?),
            }
        }
        if out.is_empty() {
            return Err(match self.peek() {
                None => "empty expression".into(),
                Some(c) => format!("empty expression before '{}'", c as char),
            });
        }
        Ok(out)
    }

    fn closure(&mut self) -> Result<String, String> {
        let mut term = self.term()?;
        let mut ops = 0;
        while let Some(op @ (b'*' | b'+' | b'?')) = self.peek() {
            self.pos += 1;
            ops += 1;
            if ops > MAX_GROUP_DEPTH {
                return Err(format!(
                    "more than {MAX_GROUP_DEPTH} repetition operators in a row"
                ));
            }
            term = format!("(?:{term}){}", op as char);
        }
        Ok(term)
    }

    fn term(&mut self) -> Result<String, String> {
        let Some(c) = self.peek() else {
            return Err("unexpected end".into());
        };
        self.pos += 1;
        let mut set = [false; 256];
        match c {
            b'(' => {
                if self.depth >= MAX_GROUP_DEPTH {
                    return Err(format!("more than {MAX_GROUP_DEPTH} nested groups"));
                }
                self.depth += 1;
                let inner = self.or();
                self.depth -= 1;
                let inner = inner?;
                if self.peek() != Some(b')') {
                    return Err("missing ')'".into());
                }
                self.pos += 1;
                return Ok(format!("(?:{inner})"));
            }
            b'*' | b'+' | b'?' => return Err(format!("'{}' follows nothing", c as char)),
            b'[' => return self.bracket(),
            b'^' => set[HAT as usize] = true,
            b'$' => set[DOLLAR as usize] = true,
            b'.' => {
                set = [true; 256];
                for b in [b'\n', b'\r', 0] {
                    set[b as usize] = false;
                }
            }
            b'\\' => {
                let Some(e) = self.peek() else {
                    return Err("'\\' at the end".into());
                };
                self.pos += 1;
                set[unescape(e) as usize] = true;
            }
            other => set[other as usize] = true,
        }
        Ok(class(&set))
    }

    fn bracket(&mut self) -> Result<String, String> {
        let mut set: ByteSet = [false; 256];
        let neg = self.peek() == Some(b'^');
        if neg {
            self.pos += 1;
        }
        let mut last: Option<u8> = None;
        loop {
            let Some(mut c) = self.peek() else {
                return Err("missing ']'".into());
            };
            if c == b']' {
                self.pos += 1;
                break;
            }
            let mut range_from = None;
            if c == b'\\' {
                self.pos += 1;
                c = unescape(self.peek().ok_or("'\\' at the end")?);
            } else if c == b'-' && last.is_some() {
                self.pos += 1;
                c = self.peek().ok_or("incomplete range")?;
                range_from = last;
            }
            if !c.is_ascii() {
                return Err("non-ascii byte in a bracket expression".into());
            }
            let (lo, hi) = match range_from {
                Some(l) if l > c => (c, l),
                Some(l) => (l, c),
                None => (c, c),
            };
            for b in lo..=hi {
                set[b as usize] = true;
            }
            self.pos += 1;
            last = Some(c);
        }
        if neg {
            for b in set.iter_mut() {
                *b = !*b;
            }
            set[0] = false;
        }
        Ok(class(&set))
    }
}

fn unescape(c: u8) -> u8 {
    match c {
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// Filters

/// One `a|regex|` or `r|regex|` pattern.
#[derive(Debug, Clone)]
struct Pattern {
    accept: bool,
    text: String,
    re: regex::bytes::Regex,
}

/// An LVM filter (`devices/filter` or `devices/global_filter`).
#[derive(Debug, Clone)]
pub struct Filter {
    key: &'static str,
    patterns: Vec<Pattern>,
}

fn pattern(text: &str) -> Result<Pattern, String> {
    let b = text.as_bytes();
    let accept = match b.first() {
        Some(b'a') => true,
        Some(b'r') => false,
        _ => return Err("must begin with 'a' or 'r'".into()),
    };
    let Some(&open) = b.get(1) else {
        return Err("no delimiter".into());
    };
    let close = match open {
        b'(' => b')',
        b'[' => b']',
        b'{' => b'}',
        c => c,
    };
    if b.len() < 3 || b[b.len() - 1] != close {
        return Err(format!("does not end with '{}'", close as char));
    }
    let translated = translate(&b[2..b.len() - 1])?;
    let re = regex::bytes::RegexBuilder::new(&translated)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("does not compile: {e}"))?;
    Ok(Pattern {
        accept,
        text: text.to_owned(),
        re,
    })
}

impl Filter {
    /// Compiles the patterns of `devices/KEY`; the error names the bad pattern.
    pub fn new(key: &'static str, patterns: &[&str]) -> Result<Filter, (String, String)> {
        let patterns = patterns
            .iter()
            .map(|p| pattern(p).map_err(|e| ((*p).to_owned(), e)))
            .collect::<Result<_, _>>()?;
        Ok(Filter { key, patterns })
    }

    /// The first pattern (in the user's order) that matches `name`.
    fn first_match(&self, name: &str) -> Option<&Pattern> {
        let mut framed = Vec::with_capacity(name.len() + 2);
        framed.push(HAT);
        framed.extend_from_slice(name.as_bytes());
        framed.push(DOLLAR);
        self.patterns.iter().find(|p| p.re.is_match(&framed))
    }

    /// LVM's decision over all names of one device; `Err` says which name and pattern
    /// rejected it.
    pub fn check(&self, aliases: &[String]) -> Result<(), String> {
        let mut rejected = None;
        for alias in aliases {
            match self.first_match(alias) {
                Some(p) if p.accept => return Ok(()),
                Some(p) => {
                    rejected.get_or_insert((alias, p));
                }
                None => {}
            }
        }
        match rejected {
            None => Ok(()),
            Some((alias, p)) => Err(format!(
                "rejected by lvm.conf devices/{} pattern \"{}\" ({alias})",
                self.key, p.text
            )),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// lvm.conf

/// The `devices` settings of lvm.conf (and lvmlocal.conf) that decide which devices LVM uses.
#[derive(Debug, Clone, Default)]
pub struct LvmConf {
    pub global_filter: Option<Filter>,
    pub filter: Option<Filter>,
    /// `None`: not set (the compiled default applies).
    pub use_devicesfile: Option<bool>,
    /// The devices file's name inside `ETC/devices/`.
    pub devicesfile: Option<String>,
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Int(i) => Some(*i != 0),
        Value::Str(s) => match s.to_ascii_lowercase().as_str() {
            "y" | "yes" | "on" | "true" => Some(true),
            "n" | "no" | "off" | "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// LVM's `validate_name` (`lib/misc/lvm-string.c`).
fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && !n.starts_with('-')
        && n != "."
        && n != ".."
        && n.len() < 128
        && n.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._-+".contains(&c))
}

impl LvmConf {
    /// Reads the `devices` section of one parsed config file over `self` (a later file's key
    /// replaces an earlier one's, as LVM merges lvmlocal.conf over lvm.conf).
    pub fn apply(&mut self, root: &Section, path: &str) -> Result<(), DevselError> {
        let Some(devices) = root.section("devices") else {
            return Ok(());
        };
        let setting = |key: &'static str, message: String| DevselError::Setting {
            path: path.to_owned(),
            key,
            message,
        };
        for key in ["global_filter", "filter"] {
            let Some(v) = devices.value(key) else {
                continue;
            };
            let patterns: Vec<&str> = match v {
                Value::Str(s) => vec![s.as_str()],
                Value::Array(_) => v.as_str_array().ok_or_else(|| {
                    setting(key, "filter patterns must be enclosed in quotes".into())
                })?,
                _ => return Err(setting(key, "filter patterns must be strings".into())),
            };
            if patterns.is_empty() {
                return Err(setting(key, "empty list (lvm refuses it too)".into()));
            }
            let filter =
                Filter::new(key, &patterns).map_err(|(pattern, message)| DevselError::Pattern {
                    path: path.to_owned(),
                    key,
                    pattern,
                    message,
                })?;
            if key == "filter" {
                self.filter = Some(filter);
            } else {
                self.global_filter = Some(filter);
            }
        }
        if let Some(v) = devices.value("use_devicesfile") {
            let b = as_bool(v)
                .ok_or_else(|| setting("use_devicesfile", format!("not a boolean: {v:?}")))?;
            self.use_devicesfile = Some(b);
        }
        if let Some(v) = devices.value("devicesfile") {
            let name = v
                .as_str()
                .filter(|n| valid_name(n))
                .ok_or_else(|| setting("devicesfile", format!("invalid file name {v:?}")))?;
            self.devicesfile = Some(name.to_owned());
        }
        Ok(())
    }

    /// Whether host tags may pull in `lvm_TAG.conf` files (`tags { hosttags = 1 }` or a tag
    /// section).
    fn has_tags(root: &Section) -> bool {
        root.section("tags").is_some_and(|t| {
            t.int("hosttags").is_some_and(|v| v != 0) || t.sections().next().is_some()
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The devices file

/// One entry of the devices file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEntry {
    pub idtype: String,
    pub idname: Option<String>,
    pub devname: Option<String>,
    /// The PV uuid as LVM stores it (32 characters, no dashes).
    pub pvid: Option<String>,
    /// Partition number; 0 for a whole device.
    pub part: u32,
    /// 1-based line number, for messages.
    pub line: usize,
}

/// Parses the devices file the way `device_ids_read` does: `#` lines and header lines are
/// skipped, an entry needs IDTYPE and IDNAME, `.` means no value. Fields are whitespace
/// separated `KEY=VALUE` (LVM looks each key up with `strstr`; the two agree on what LVM
/// writes).
pub fn parse_devices_file(text: &str) -> Vec<DeviceEntry> {
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#')
            || [
                "SYSTEMID",
                "VERSION",
                "HOSTNAME",
                "PRODUCT_UUID",
                "REFRESH_UNTIL",
            ]
            .iter()
            .any(|h| line.starts_with(h))
        {
            continue;
        }
        let mut fields: HashMap<&str, &str> = HashMap::new();
        for tok in line.split_whitespace() {
            if let Some((k, v)) = tok.split_once('=') {
                fields.entry(k).or_insert(v);
            }
        }
        let value = |k: &str| {
            fields
                .get(k)
                .filter(|v| !v.is_empty() && !v.starts_with('.'))
                .map(|v| (*v).to_owned())
        };
        let (Some(idtype), Some(_)) = (fields.get("IDTYPE"), fields.get("IDNAME")) else {
            continue;
        };
        let part = fields
            .get("PART")
            .map(|p| {
                let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().unwrap_or(0)
            })
            .unwrap_or(0);
        entries.push(DeviceEntry {
            idtype: (*idtype).to_owned(),
            idname: value("IDNAME"),
            devname: value("DEVNAME"),
            pvid: value("PVID"),
            part,
            line: i + 1,
        });
    }
    entries
}

/// What kind of device, for which ID types can name it (`_idtype_compatible_with_major_number`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dm,
    Md,
    Loop,
    Other,
}

/// What is known about one device: its names and the ids sysfs gives for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceFacts {
    /// The kernel name.
    pub name: String,
    /// Major and minor number, when known.
    pub devno: Option<(u32, u32)>,
    /// Every path under `/dev` naming it, `/dev/NAME` first.
    pub aliases: Vec<String>,
    pub kind: Option<Kind>,
    /// Partition number (sysfs `partition`), 0 for a whole device.
    pub part: u32,
    /// The dm name, for dm devices (`/dev/mapper/NAME` is a devname).
    pub dm_name: Option<String>,
    /// The multipath or md device that holds this one (sysfs `holders/`): LVM's mpath and md
    /// component filters skip such a device, and so does rewind.
    pub component_of: Option<String>,
    /// Raw sysfs values (trailing newline removed), read only when a devices file is used.
    pub wwid: Option<String>,
    pub serial: Option<String>,
    pub loop_file: Option<String>,
    pub md_uuid: Option<String>,
    pub dm_uuid: Option<String>,
}

/// LVM 2.03.16's cleanup of a sysfs id: blanks and control characters become `_`.
fn id_old(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if c.is_ascii_whitespace() || c.is_ascii_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// Later LVM's `format_general_id` / `format_t10_id` followed by the underscore trimming of
/// `device_id_system_read`, for sys_wwid and sys_serial.
fn id_new(raw: &str, wwid: bool) -> String {
    let t10 = wwid && raw.trim_start_matches(' ').starts_with("t10");
    let mut out = String::new();
    let mut pending_space = false;
    for c in raw.trim_matches(' ').chars() {
        if !c.is_ascii() || (!c.is_ascii_graphic() && c != ' ') || c == '"' {
            continue;
        }
        if c == ' ' {
            if t10 {
                pending_space = true;
            } else {
                out.push('_');
            }
            continue;
        }
        if pending_space {
            out.push('_');
            pending_space = false;
        }
        out.push(c);
    }
    normalize_idname(&out, wwid)
}

/// Later LVM's reading of an old IDNAME: leading and trailing `_` dropped, and for t10 wwids
/// runs of `_` reduced to one.
fn normalize_idname(s: &str, wwid: bool) -> String {
    let t = s.trim_matches('_');
    if wwid && t.starts_with("t10") && t.contains("__") {
        let mut out = String::new();
        for c in t.chars() {
            if !(c == '_' && out.ends_with('_')) {
                out.push(c);
            }
        }
        out
    } else {
        t.to_owned()
    }
}

/// Later LVM's cleanup for the other types: quotes, blanks, control characters become `_`.
fn id_other(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if c == '"' || c.is_ascii_whitespace() || c.is_ascii_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

fn dm_uuid_has_prefix(uuid: &str, prefix: &str) -> bool {
    uuid.starts_with(prefix)
        || (uuid.starts_with("part")
            && uuid
                .split_once('-')
                .is_some_and(|(_, rest)| rest.starts_with(prefix)))
}

/// How an entry is matched.
enum IdCheck {
    Devname,
    Sysfs,
    /// Not readable from sysfs by rewind: DEVNAME + PVID.
    Fallback,
}

fn id_check(idtype: &str) -> IdCheck {
    match idtype {
        "devname" => IdCheck::Devname,
        "sys_wwid" | "sys_serial" | "loop_file" | "md_uuid" | "mpath_uuid" | "crypt_uuid"
        | "lvmlv_uuid" => IdCheck::Sysfs,
        _ => IdCheck::Fallback,
    }
}

fn kind_allows(kind: Kind, idtype: &str) -> bool {
    let dm_types = ["mpath_uuid", "crypt_uuid", "lvmlv_uuid"];
    match idtype {
        "devname" => true,
        t if dm_types.contains(&t) => kind == Kind::Dm,
        "md_uuid" => kind == Kind::Md,
        "loop_file" => kind == Kind::Loop,
        t => match kind {
            Kind::Dm | Kind::Md | Kind::Loop => false,
            Kind::Other => !t.is_empty(),
        },
    }
}

impl DeviceFacts {
    fn is_named(&self, name: &str) -> bool {
        self.aliases.iter().any(|a| a == name)
    }

    /// Whether `e` names this device by its id (`_match_du_to_dev`).
    fn matches(&self, e: &DeviceEntry) -> bool {
        let Some(idname) = e.idname.as_deref() else {
            return false;
        };
        if e.part != self.part || !kind_allows(self.kind.unwrap_or(Kind::Other), &e.idtype) {
            return false;
        }
        let sysfs = |raw: &Option<String>, new: &dyn Fn(&str) -> String| {
            raw.as_deref().is_some_and(|r| {
                !r.is_empty()
                    && (idname == id_old(r) || idname == new(r) || {
                        let n = new(r);
                        !n.is_empty() && n == normalize_idname(idname, e.idtype == "sys_wwid")
                    })
            })
        };
        match e.idtype.as_str() {
            "devname" => {
                idname == format!("/dev/{}", self.name)
                    || self
                        .dm_name
                        .as_ref()
                        .is_some_and(|n| idname == format!("/dev/mapper/{n}"))
            }
            "sys_wwid" => sysfs(&self.wwid, &|r| id_new(r, true)),
            "sys_serial" => sysfs(&self.serial, &|r| id_new(r, false)),
            "loop_file" => {
                let live = self.loop_file.clone().filter(|f| !f.contains("(deleted)"));
                sysfs(&live, &id_other)
            }
            "md_uuid" => sysfs(&self.md_uuid, &id_other),
            t @ ("mpath_uuid" | "crypt_uuid" | "lvmlv_uuid") => {
                let prefix = match t {
                    "mpath_uuid" => "mpath-",
                    "crypt_uuid" => "CRYPT-",
                    _ => "LVM-",
                };
                let uuid = self
                    .dm_uuid
                    .clone()
                    .filter(|u| dm_uuid_has_prefix(u, prefix));
                sysfs(&uuid, &id_other)
            }
            _ => false,
        }
    }
}

/// For each device, the index of the devices-file entry that matches it (`device_ids_match`):
/// entries with a real id type first, each trying its DEVNAME's device first; then devname
/// entries; one device per entry, one entry per device.
pub fn match_entries(entries: &[DeviceEntry], devices: &[DeviceFacts]) -> Vec<Option<usize>> {
    let mut owner: Vec<Option<usize>> = vec![None; devices.len()];
    let order = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.idtype != "devname")
        .chain(
            entries
                .iter()
                .enumerate()
                .filter(|(_, e)| e.idtype == "devname"),
        );
    for (ei, e) in order {
        let candidates: Vec<usize> = match id_check(&e.idtype) {
            IdCheck::Devname => {
                let Some(name) = e.idname.as_deref() else {
                    continue;
                };
                devices
                    .iter()
                    .position(|d| d.is_named(name))
                    .into_iter()
                    .collect()
            }
            IdCheck::Sysfs => {
                let first = e
                    .devname
                    .as_deref()
                    .and_then(|n| devices.iter().position(|d| d.is_named(n)));
                first.into_iter().chain(0..devices.len()).collect()
            }
            IdCheck::Fallback => {
                let (Some(name), Some(_)) = (e.devname.as_deref(), e.pvid.as_deref()) else {
                    log::debug!(
                        "devices file line {}: IDTYPE={} is not read by rewind and the entry \
                         has no DEVNAME and PVID to match instead",
                        e.line,
                        e.idtype
                    );
                    continue;
                };
                log::debug!(
                    "devices file line {}: IDTYPE={} is not read by rewind; matching DEVNAME={name} \
                     and the PVID instead",
                    e.line,
                    e.idtype
                );
                devices
                    .iter()
                    .position(|d| d.is_named(name) && d.part == e.part)
                    .into_iter()
                    .collect()
            }
        };
        let fallback = matches!(id_check(&e.idtype), IdCheck::Fallback);
        if let Some(i) = candidates
            .into_iter()
            .find(|&i| owner[i].is_none() && (fallback || devices[i].matches(e)))
        {
            owner[i] = Some(ei);
        }
    }
    owner
}

// ---------------------------------------------------------------------------------------------
// Globs (`scan.devices`)

fn glob_regex(glob: &str) -> Result<regex::bytes::Regex, DevselError> {
    let err = |message: &str| DevselError::Glob {
        glob: glob.to_owned(),
        message: message.to_owned(),
    };
    let mut out = String::from("(?s-u)^");
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str("[^/]*"),
            '?' => out.push_str("[^/]"),
            '[' => {
                out.push('[');
                if matches!(chars.peek(), Some('!' | '^')) {
                    chars.next();
                    out.push('^');
                }
                let mut closed = false;
                let mut first = true;
                for c in chars.by_ref() {
                    if c == ']' && !first {
                        closed = true;
                        break;
                    }
                    first = false;
                    if c == '-' {
                        out.push('-');
                    } else if c.is_ascii() {
                        let _ = write!(out, "\\x{:02x}", c as u32);
                    } else {
                        return Err(err("non-ascii character in a bracket expression"));
                    }
                }
                if !closed {
                    return Err(err("missing ']'"));
                }
                out.push(']');
            }
            c => out.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
        }
    }
    out.push('$');
    regex::bytes::Regex::new(&out).map_err(|e| err(&e.to_string()))
}

// ---------------------------------------------------------------------------------------------
// The rules and the selection

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
    globs: Vec<(String, regex::bytes::Regex)>,
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
            self.globs.push((g.clone(), glob_regex(g)?));
        }
        Ok(self)
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
    /// The block devices listed when the selection was made (by [`Selection::load`]), so a
    /// scan reads the same list instead of listing sysfs again.
    pub devices: Vec<BlockDevice>,
}

impl Selection {
    /// The pure decision over the facts of every device.
    pub fn decide(rules: &Rules, devices: &[DeviceFacts]) -> Selection {
        let owners = rules
            .devices_file
            .as_ref()
            .filter(|_| rules.use_lvm)
            .map(|df| match_entries(&df.entries, devices));
        let filters_apply =
            rules.use_lvm && !rules.devices_file.as_ref().is_some_and(|df| df.explicit);
        let mut decisions = BTreeMap::new();
        for (i, d) in devices.iter().enumerate() {
            let decision = (|| {
                if !rules.globs.is_empty()
                    && !rules
                        .globs
                        .iter()
                        .any(|(_, re)| d.aliases.iter().any(|a| re.is_match(a.as_bytes())))
                {
                    return Err("not matched by rewind.toml scan.devices".to_owned());
                }
                if rules.use_lvm
                    && let Some(holder) = &d.component_of
                {
                    return Err(format!("a component of {holder}, which lvm uses instead"));
                }
                if filters_apply {
                    for f in [&rules.conf.global_filter, &rules.conf.filter]
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
                if let (Some(owners), Some(df)) = (&owners, &rules.devices_file) {
                    let Some(ei) = owners[i] else {
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
            })();
            decisions.insert(d.name.clone(), (d.devno, decision));
        }
        let mut summary = if !rules.use_lvm {
            "every device (scan.use_lvm_config = false)".to_owned()
        } else {
            let mut parts = Vec::new();
            if let Some(df) = &rules.devices_file {
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
            if filters_apply {
                for f in [&rules.conf.global_filter, &rules.conf.filter]
                    .into_iter()
                    .flatten()
                {
                    parts.push(format!("devices/{}", f.key));
                }
            }
            if parts.is_empty() {
                "every device (lvm defaults)".to_owned()
            } else {
                parts.join(" and ")
            }
        };
        if !rules.globs.is_empty() {
            let globs: Vec<&str> = rules.globs.iter().map(|(g, _)| g.as_str()).collect();
            let _ = write!(summary, ", only {}", globs.join(" "));
        }
        Selection {
            decisions,
            summary,
            devices: Vec::new(),
        }
    }

    /// The decision for `dev`, with the reason when it may not be read.
    pub fn decision(&self, dev: &BlockDevice) -> Result<&Accepted, String> {
        match self.decisions.get(&dev.name) {
            Some((devno, _)) if devno.is_some_and(|n| n != (dev.major, dev.minor)) => {
                Err("changed after the device selection was made".into())
            }
            Some((_, Ok(a))) => Ok(a),
            Some((_, Err(why))) => Err(why.clone()),
            None => Err("appeared after the device selection was made".into()),
        }
    }

    /// Usable as a `scan::Selector`.
    pub fn check(&self, dev: &BlockDevice) -> Result<(), String> {
        self.decision(dev).map(|_| ())
    }

    /// The PV uuid the devices file expects on `dev`, if any.
    pub fn expected_pvid(&self, dev: &BlockDevice) -> Option<&str> {
        self.decision(dev).ok()?.pvid.as_deref()
    }

    /// Reads the configuration under `root` and the facts of every block device, and
    /// decides.
    pub fn load(root: &Path, config: &config::Scan) -> Result<Selection, DevselError> {
        let rules = load_rules(root, config)?;
        let listed = blockdev::list(root).map_err(|source| DevselError::Read {
            path: root.join("sys/class/block").display().to_string(),
            source,
        })?;
        let facts = gather_facts(
            root,
            &listed,
            rules.devices_file.is_some() && rules.use_lvm,
            rules.uses_aliases(),
        );
        let mut selection = Selection::decide(&rules, &facts);
        selection.devices = listed;
        log::info!("devices read: {}", selection.summary);
        Ok(selection)
    }
}

// ---------------------------------------------------------------------------------------------
// Reading (the only part that touches files)

fn read_bounded(path: &Path) -> Result<Option<Vec<u8>>, DevselError> {
    let shown = path.display().to_string();
    let read_err = |source| DevselError::Read {
        path: shown.clone(),
        source,
    };
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_err(e)),
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(DevselError::TooLarge { path: shown });
    }
    fs::read(path).map(Some).map_err(read_err)
}

/// Reads lvm.conf, lvmlocal.conf and the devices file under `root`.
pub fn load_rules(root: &Path, config: &config::Scan) -> Result<Rules, DevselError> {
    let rules = Rules {
        use_lvm: config.use_lvm_config,
        ..Rules::default()
    };
    if !config.use_lvm_config {
        return rules.with_globs(&config.devices);
    }
    let etc = root.join(config.lvm_config_dir.trim_start_matches('/'));
    let mut conf = LvmConf::default();
    for file in ["lvm.conf", "lvmlocal.conf"] {
        let path = etc.join(file);
        let shown = path.display().to_string();
        let Some(bytes) = read_bounded(&path)? else {
            continue;
        };
        let tree = text::parse(&bytes).map_err(|source| DevselError::Syntax {
            path: shown.clone(),
            source,
        })?;
        let tagfile = || {
            fs::read_dir(&etc).ok().and_then(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .find(|n| n.starts_with("lvm_") && n.ends_with(".conf"))
            })
        };
        if LvmConf::has_tags(&tree)
            && let Some(tagfile) = tagfile()
        {
            return Err(DevselError::HostTags {
                path: shown,
                tagfile,
            });
        }
        conf.apply(&tree, &shown)?;
    }
    let devices_file = if conf.use_devicesfile == Some(false) {
        None
    } else {
        let name = conf.devicesfile.as_deref().unwrap_or("system.devices");
        let path = etc.join("devices").join(name);
        read_bounded(&path)?.map(|bytes| DevicesFile {
            path: path.display().to_string(),
            entries: parse_devices_file(&String::from_utf8_lossy(&bytes)),
            explicit: conf.use_devicesfile == Some(true),
        })
    };
    Rules {
        use_lvm: true,
        conf,
        devices_file,
        globs: Vec::new(),
    }
    .with_globs(&config.devices)
}

/// One sysfs attribute, trailing newline removed; `None` when absent or empty.
fn sys_attr(dir: &Path, attr: &str) -> Option<String> {
    let mut s = blockdev::read_sysfs(&dir.join(attr)).ok()?;
    while s.ends_with('\n') {
        s.pop();
    }
    (!s.is_empty()).then_some(s)
}

/// An attribute of the device or, failing that, of its whole device (`read_sys_block`).
fn sys_attr_or_primary(dir: &Path, primary: Option<&Path>, attr: &str) -> Option<String> {
    sys_attr(dir, attr).or_else(|| primary.and_then(|p| sys_attr(p, attr)))
}

/// The facts of every listed device; sysfs ids only when `ids` (a devices file is in use),
/// other names under `/dev` only when `aliases` (else just `/dev/NAME`).
pub fn gather_facts(
    root: &Path,
    devices: &[BlockDevice],
    ids: bool,
    aliases: bool,
) -> Vec<DeviceFacts> {
    let aliases = if aliases {
        find_aliases(root, devices)
    } else {
        devices
            .iter()
            .map(|d| vec![format!("/dev/{}", d.name)])
            .collect()
    };
    devices
        .iter()
        .zip(aliases)
        .map(|(d, aliases)| {
            let dir = root.join("sys/class/block").join(&d.name);
            let part = sys_attr(&dir, "partition")
                .and_then(|p| p.trim().parse().ok())
                .unwrap_or(0);
            let primary = (part != 0)
                .then(|| fs::canonicalize(&dir).ok())
                .flatten()
                .and_then(|p| p.parent().map(Path::to_path_buf));
            let kind = if d.dm.is_some() {
                Kind::Dm
            } else if d.major == 9 {
                Kind::Md
            } else if d.major == 7 {
                Kind::Loop
            } else {
                Kind::Other
            };
            let mut f = DeviceFacts {
                name: d.name.clone(),
                devno: Some((d.major, d.minor)),
                aliases,
                kind: Some(kind),
                part,
                dm_name: d.dm.as_ref().map(|dm| dm.name.clone()),
                dm_uuid: d.dm.as_ref().map(|dm| dm.uuid.clone()),
                ..DeviceFacts::default()
            };
            // LVM looks at a partition's whole device (`_dev_is_mpath_component_sysfs`).
            f.component_of = component_of(root, &dir)
                .or_else(|| primary.as_deref().and_then(|p| component_of(root, p)));
            if ids {
                let p = primary.as_deref();
                f.wwid = sys_attr_or_primary(&dir, p, "device/wwid")
                    .or_else(|| sys_attr_or_primary(&dir, p, "wwid"));
                f.serial = sys_attr_or_primary(&dir, p, "device/serial").or_else(|| {
                    // Virtio disks (`/dev/vdX`) have `serial` on the block device itself.
                    let base: String = d
                        .name
                        .strip_prefix("vd")
                        .map(|_| d.name.chars().take_while(|c| !c.is_ascii_digit()).collect())?;
                    sys_attr(&root.join("sys/class/block").join(base), "serial")
                });
                f.loop_file = sys_attr_or_primary(&dir, p, "loop/backing_file");
                f.md_uuid = sys_attr_or_primary(&dir, p, "md/uuid");
            }
            f
        })
        .collect()
}

/// The multipath or md device holding the device whose sysfs directory is `dir`
/// (`filter-mpath.c` looks at the same `holders/`).
fn component_of(root: &Path, dir: &Path) -> Option<String> {
    let holders = fs::read_dir(dir.join("holders")).ok()?;
    holders.flatten().take(64).find_map(|h| {
        let name = h.file_name().to_string_lossy().into_owned();
        let class = root.join("sys/class/block").join(&name);
        if sys_attr(&class, "dm/uuid").is_some_and(|u| dm_uuid_has_prefix(&u, "mpath-")) {
            let dm = sys_attr(&class, "dm/name").unwrap_or_default();
            Some(format!("multipath device {name} ({dm})"))
        } else if name.starts_with("md") {
            Some(format!("md device {name}"))
        } else {
            None
        }
    })
}

/// For each device, `/dev/NAME` and every other path under `ROOT/dev` that resolves to it.
fn find_aliases(root: &Path, devices: &[BlockDevice]) -> Vec<Vec<String>> {
    let dev_dir = root.join("dev");
    let by_devno: HashMap<(u32, u32), usize> = devices
        .iter()
        .enumerate()
        .map(|(i, d)| ((d.major, d.minor), i))
        .collect();
    let by_path: HashMap<PathBuf, usize> = devices
        .iter()
        .enumerate()
        .filter_map(|(i, d)| Some((fs::canonicalize(&d.node).ok()?, i)))
        .collect();
    let mut out: Vec<Vec<String>> = devices
        .iter()
        .map(|d| vec![format!("/dev/{}", d.name)])
        .collect();
    let Ok(top) = fs::metadata(&dev_dir) else {
        return out;
    };
    let mut budget = MAX_DEV_ENTRIES;
    let mut stack = vec![(dev_dir.clone(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(rd) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in rd.flatten() {
            if budget == 0 {
                log::warn!(
                    "more than {MAX_DEV_ENTRIES} entries under {}; aliases may be missing",
                    dev_dir.display()
                );
                return out;
            }
            budget -= 1;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || (depth == 0 && NO_SCAN.contains(&name.as_ref())) {
                continue;
            }
            let path = entry.path();
            let Ok(meta) = fs::metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
                if !is_link && meta.dev() == top.dev() && depth + 1 < MAX_DEV_DEPTH {
                    stack.push((path, depth + 1));
                }
                continue;
            }
            let owner = if meta.file_type().is_block_device() {
                let rdev = meta.rdev();
                by_devno.get(&(libc_major(rdev), libc_minor(rdev))).copied()
            } else {
                fs::canonicalize(&path)
                    .ok()
                    .and_then(|p| by_path.get(&p).copied())
            };
            let Some(i) = owner else {
                continue;
            };
            let Ok(rel) = path.strip_prefix(&dev_dir) else {
                continue;
            };
            let alias = format!("/dev/{}", rel.to_string_lossy());
            if !out[i].contains(&alias) {
                out[i].push(alias);
            }
        }
    }
    for a in &mut out {
        a[1..].sort();
    }
    out
}

/// `major(3)` and `minor(3)` of a Linux `dev_t`.
fn libc_major(dev: u64) -> u32 {
    (((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0xfff)) as u32
}

fn libc_minor(dev: u64) -> u32 {
    (((dev >> 12) & 0xffff_ff00) | (dev & 0xff)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn filter(patterns: &[&str]) -> Filter {
        Filter::new("filter", patterns).expect("valid patterns")
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn accepts(patterns: &[&str], aliases: &[&str]) -> bool {
        filter(patterns).check(&names(aliases)).is_ok()
    }

    #[test]
    fn every_delimiter_form() {
        for p in ["a|sdb|", "a(sdb)", "a[sdb]", "a{sdb}", "a#sdb#", "a/sdb/"] {
            assert!(accepts(&[p, "r|.*|"], &["/dev/sdb"]), "{p}");
            assert!(!accepts(&[p, "r|.*|"], &["/dev/sda"]), "{p}");
        }
        // The delimiter may occur inside; only the last character must close.
        assert!(accepts(&["a|/dev/sd(a|b)|", "r|.*|"], &["/dev/sdb"]));
        assert!(!accepts(&["a|/dev/sd(a|b)|", "r|.*|"], &["/dev/sdc"]));
    }

    #[test]
    fn lvm_regex_dialect() {
        // Searched anywhere in the name; anchors anchor.
        assert!(!accepts(&["r|sda|"], &["/dev/sda1"]));
        assert!(accepts(&["r|^sda|"], &["/dev/sda1"]));
        assert!(accepts(&["r|/dev/sda$|"], &["/dev/sda1"]));
        assert!(!accepts(&["r|^/dev/sda1$|"], &["/dev/sda1"]));
        // `.` also matches the end marker, as in LVM: "sda." rejects /dev/sda.
        assert!(!accepts(&["r|/dev/sda.|"], &["/dev/sda"]));
        assert!(!accepts(&["r|/dev/sd[^b]|"], &["/dev/sd"]));
        // No repetition counts, no \d: those characters are literal.
        assert!(accepts(&["r|sd{2}|"], &["/dev/sdd"]));
        assert!(!accepts(&["r|sd{2}|"], &["/dev/sd{2}"]));
        assert!(!accepts(&["r|loop\\d|"], &["/dev/loopd"]));
        assert!(accepts(&["r|loop\\d|"], &["/dev/loop1"]));
        // Ranges, negation, closures, escapes, a literal '-' first in a bracket.
        assert!(!accepts(&["r|^/dev/vd[a-c]+$|"], &["/dev/vdab"]));
        assert!(accepts(&["r|^/dev/vd[a-c]+$|"], &["/dev/vdd"]));
        assert!(!accepts(&["r|^/dev/vd[c-a]$|"], &["/dev/vdb"]));
        assert!(!accepts(&["r|a[-x]b|"], &["/dev/a-b"]));
        assert!(!accepts(&["r|^/dev/(sd|vd)x?a*$|"], &["/dev/vd"]));
        assert!(!accepts(&["r|\\.img|"], &["/dev/disk/x.img"]));
        assert!(accepts(&["r|\\.img|"], &["/dev/disk/ximg"]));
        // `[]` is an empty set: it matches nothing.
        assert!(accepts(&["r|[]x|"], &["/dev/x"]));
    }

    #[test]
    fn bad_patterns_are_named() {
        for (p, needle) in [
            ("x|a|", "'a' or 'r'"),
            ("a", "no delimiter"),
            ("a|", "does not end"),
            ("a|b", "does not end"),
            ("a(b]", "does not end with ')'"),
            ("a||", "empty expression"),
            ("a|(b|", "missing ')'"),
            ("a|b)|", "unbalanced"),
            ("a|*b|", "follows nothing"),
            ("a|[ab|", "missing ']'"),
            ("a|b\\|", "at the end"),
            ("a|()|", "empty expression"),
            ("a|b||", "badly formed"),
        ] {
            let (pattern, msg) = Filter::new("filter", &["a|ok|", p]).expect_err(p);
            assert_eq!(pattern, p);
            assert!(msg.contains(needle), "{p}: {msg}");
        }
    }

    #[test]
    fn any_pattern_bytes_never_panic() {
        // Every string of up to 3 characters over the special characters, and long chains.
        let alphabet = [
            "a", "|", "(", ")", "[", "]", "^", "$", ".", "*", "+", "?", "\\", "-", "é",
        ];
        let mut stack = vec![String::new()];
        while let Some(s) = stack.pop() {
            let _ = Filter::new("filter", &[&format!("a|{s}|")]);
            if s.chars().count() < 3 {
                stack.extend(alphabet.iter().map(|c| format!("{s}{c}")));
            }
        }
        for long in [
            "(".repeat(100_000),
            "a|".repeat(50_000),
            "a*".repeat(10_000),
        ] {
            let _ = Filter::new("filter", &[&format!("a|{long}|")]);
        }
        let e = Filter::new(
            "filter",
            &[&format!("a|{}x{}|", "(".repeat(40), ")".repeat(40))],
        )
        .expect_err("deep");
        assert!(e.1.contains("nested"), "{}", e.1);
        for junk in [
            "",
            "=",
            "IDTYPE=",
            "IDTYPE IDNAME",
            "PART=99999999999999 IDTYPE=a IDNAME=b",
        ] {
            let _ = parse_devices_file(junk);
        }
    }

    #[test]
    fn first_pattern_in_user_order_decides_per_alias() {
        assert!(accepts(&["a|sda|", "r|.*|"], &["/dev/sda"]));
        assert!(!accepts(&["r|.*|", "a|sda|"], &["/dev/sda"]));
        // No pattern matches any alias: accepted.
        assert!(accepts(&["r|sdb|"], &["/dev/sda", "/dev/disk/by-id/x"]));
        // One alias accepted is enough, whatever the order of the aliases.
        let p = ["a|by-id|", "r|/dev/sd|"];
        assert!(accepts(&p, &["/dev/sda", "/dev/disk/by-id/x"]));
        assert!(accepts(&p, &["/dev/disk/by-id/x", "/dev/sda"]));
        // Rejected if any alias is rejected and none accepted, in either order.
        let p = ["r|by-id|"];
        assert!(!accepts(&p, &["/dev/sda", "/dev/disk/by-id/x"]));
        assert!(!accepts(&p, &["/dev/disk/by-id/x", "/dev/sda"]));
        let why = filter(&p)
            .check(&names(&["/dev/sda", "/dev/disk/by-id/x"]))
            .expect_err("rejected");
        assert!(why.contains("devices/filter pattern \"r|by-id|\""), "{why}");
        assert!(why.contains("/dev/disk/by-id/x"), "{why}");
    }

    #[test]
    fn devices_file_lines() {
        let text = "# LVM uses devices listed in this file.\n\
                    # Created by LVM command lvmdevices\n\
                    VERSION=1.1.2\n\
                    SYSTEMID=host\n\
                    HOSTNAME=h\n\
                    \n\
                    IDTYPE=devname IDNAME=/dev/sdb DEVNAME=/dev/sdb PVID=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n\
                    IDTYPE=sys_wwid IDNAME=naa.5000 DEVNAME=/dev/sdc1 PVID=. PART=1\n\
                    IDTYPE=sys_serial DEVNAME=/dev/sdd PVID=x\n\
                    \tIDTYPE=loop_file   IDNAME=/tmp/a.img DEVNAME=. PVID=bbbb\n";
        let e = parse_devices_file(text);
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].idtype, "devname");
        assert_eq!(e[0].idname.as_deref(), Some("/dev/sdb"));
        assert_eq!(
            e[0].pvid.as_deref(),
            Some("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
        );
        assert_eq!(e[0].line, 7);
        assert_eq!((e[1].part, e[1].pvid.as_deref()), (1, None));
        assert_eq!(e[2].devname, None);
        assert_eq!(e[2].idname.as_deref(), Some("/tmp/a.img"));
        assert_eq!(e[2].part, 0);
    }

    #[test]
    fn id_forms_of_old_and_new_lvm() {
        let raw = "  t10.ATA     QEMU HARDDISK   QM00001  ";
        assert_eq!(id_new(raw, true), "t10.ATA_QEMU_HARDDISK_QM00001");
        assert_eq!(id_old(raw), "__t10.ATA_____QEMU_HARDDISK___QM00001__");
        assert_eq!(
            normalize_idname("__t10.ATA_____QEMU_HARDDISK___QM00001__", true),
            "t10.ATA_QEMU_HARDDISK_QM00001"
        );
        assert_eq!(id_new(" naa.50 00\"x ", true), "naa.50_00x");
        assert_eq!(id_new("S3 Z\u{1}9 ", false), "S3_Z9");
        assert_eq!(id_other("/tmp/a b\".img"), "/tmp/a_b_.img");
    }

    // --- fake roots -------------------------------------------------------------------------

    struct Root(tempfile::TempDir);

    impl Root {
        fn new() -> Root {
            Root(tempfile::tempdir().expect("tempdir"))
        }
        fn p(&self) -> &Path {
            self.0.path()
        }
        fn write(&self, rel: &str, text: &str) {
            let path = self.p().join(rel);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(path, text).expect("write");
        }
        /// A whole device in sysfs (`sys/block/NAME`, linked from `sys/class/block`) with a
        /// stand-in node `dev/NAME`.
        fn disk(&self, name: &str, devno: &str, attrs: &[(&str, &str)]) {
            self.sysfs(&format!("sys/block/{name}"), name, devno, attrs);
        }
        /// A partition of `disk`, nested under it like the kernel does.
        fn part(&self, disk: &str, name: &str, devno: &str, n: u32) {
            let partition = n.to_string();
            self.sysfs(
                &format!("sys/block/{disk}/{name}"),
                name,
                devno,
                &[("partition", &partition)],
            );
        }
        fn sysfs(&self, rel: &str, name: &str, devno: &str, attrs: &[(&str, &str)]) {
            self.write(&format!("{rel}/dev"), &format!("{devno}\n"));
            self.write(&format!("{rel}/size"), "2048\n");
            for (k, v) in attrs {
                self.write(&format!("{rel}/{k}"), &format!("{v}\n"));
            }
            let class = self.p().join("sys/class/block");
            fs::create_dir_all(&class).expect("mkdir class");
            symlink(format!("../../{rel}").replace("sys/", ""), class.join(name))
                .expect("class link");
            self.write(&format!("dev/{name}"), "");
        }
        fn link(&self, rel: &str, target: &str) {
            let path = self.p().join(rel);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            symlink(target, path).expect("symlink");
        }
        fn select(&self, scan: &config::Scan) -> Result<Selection, DevselError> {
            Selection::load(self.p(), scan)
        }
        fn accepted(&self) -> Vec<String> {
            self.accepted_with(&config::Scan::default())
        }
        fn accepted_with(&self, scan: &config::Scan) -> Vec<String> {
            let sel = self.select(scan).expect("selection");
            blockdev::list(self.p())
                .expect("list")
                .iter()
                .filter(|d| sel.check(d).is_ok())
                .map(|d| d.name.clone())
                .collect()
        }
    }

    fn three_disks() -> Root {
        let r = Root::new();
        r.disk("sda", "8:0", &[]);
        r.disk("sdb", "8:16", &[]);
        r.disk("vda", "254:0", &[]);
        r
    }

    #[test]
    fn sysfs_fixture_resolves_like_the_kernel() {
        let r = three_disks();
        r.part("sda", "sda1", "8:1", 1);
        let listed = blockdev::list(r.p()).expect("list");
        assert_eq!(listed.len(), 4);
        let facts = gather_facts(r.p(), &listed, true, true);
        assert_eq!(facts[1].name, "sda1");
        assert_eq!(facts[1].part, 1);
    }

    #[test]
    fn no_lvm_conf_means_every_device() {
        let r = three_disks();
        assert_eq!(r.accepted(), ["sda", "sdb", "vda"]);
        let sel = r.select(&config::Scan::default()).expect("sel");
        assert_eq!(sel.summary, "every device (lvm defaults)");
    }

    #[test]
    fn global_filter_and_filter_both_apply() {
        let r = three_disks();
        r.write(
            "etc/lvm/lvm.conf",
            "devices {\n global_filter = [ \"r|/dev/sda|\" ]\n filter = [ \"a|/dev/sd|\", \"r|.*|\" ]\n}\n",
        );
        assert_eq!(r.accepted(), ["sdb"]);
        let sel = r.select(&config::Scan::default()).expect("sel");
        let sda = &blockdev::list(r.p()).expect("list")[0];
        let why = sel.check(sda).expect_err("sda rejected");
        assert!(why.contains("devices/global_filter"), "{why}");
    }

    #[test]
    fn a_single_string_filter_and_lvmlocal_override() {
        let r = three_disks();
        r.write("etc/lvm/lvm.conf", "devices { filter = \"r|/dev/sd|\" }\n");
        assert_eq!(r.accepted(), ["vda"]);
        r.write(
            "etc/lvm/lvmlocal.conf",
            "devices { filter = [ \"r|vda|\" ] }\n",
        );
        assert_eq!(r.accepted(), ["sda", "sdb"]);
    }

    #[test]
    fn aliases_under_dev_count() {
        let r = three_disks();
        r.link("dev/disk/by-id/wwn-0x5000", "../../sdb");
        r.link("dev/disk/by-id/virtio-abc", "../../vda");
        r.link("dev/block/8:0", "../sda");
        r.link("dev/.hidden/x", "../sda");
        r.link("dev/snd/by-id/x", "../../sda");
        let listed = blockdev::list(r.p()).expect("list");
        let facts = gather_facts(r.p(), &listed, false, true);
        assert_eq!(facts[0].aliases, ["/dev/sda", "/dev/block/8:0"]);
        assert_eq!(facts[1].aliases, ["/dev/sdb", "/dev/disk/by-id/wwn-0x5000"]);
        assert_eq!(facts[2].aliases, ["/dev/vda", "/dev/disk/by-id/virtio-abc"]);
        // Accept by a link name although the node name is rejected later in the list.
        r.write(
            "etc/lvm/lvm.conf",
            "devices { filter = [ \"a|/dev/disk/by-id/wwn-|\", \"r|.*|\" ] }\n",
        );
        assert_eq!(r.accepted(), ["sdb"]);
        // Rejected through one alias, none accepted.
        r.write(
            "etc/lvm/lvm.conf",
            "devices { filter = [ \"r|virtio-|\" ] }\n",
        );
        assert_eq!(r.accepted(), ["sda", "sdb"]);
    }

    #[test]
    fn aliases_are_looked_for_only_when_a_rule_uses_them() {
        let r = three_disks();
        r.link("dev/disk/by-id/virtio-abc", "../../vda");
        let uses =
            |r: &Root, scan: &config::Scan| load_rules(r.p(), scan).expect("rules").uses_aliases();
        assert!(!uses(&r, &config::Scan::default()));
        let listed = blockdev::list(r.p()).expect("list");
        let facts = gather_facts(r.p(), &listed, false, false);
        assert_eq!(facts[2].aliases, ["/dev/vda"]);
        // A filter, a devices file or a scan.devices glob each make the walk happen.
        r.write("etc/lvm/lvm.conf", "devices { filter = [ \"a|.*|\" ] }\n");
        assert!(uses(&r, &config::Scan::default()));
        r.write(
            "etc/lvm/lvm.conf",
            "devices { global_filter = [ \"a|.*|\" ] }\n",
        );
        assert!(uses(&r, &config::Scan::default()));
        r.write("etc/lvm/lvm.conf", "devices { }\n");
        r.write("etc/lvm/devices/system.devices", "VERSION=1.1.1\n");
        assert!(uses(&r, &config::Scan::default()));
        std::fs::remove_file(r.p().join("etc/lvm/devices/system.devices")).expect("rm");
        assert!(!uses(&r, &config::Scan::default()));
        let globs = config::Scan {
            devices: vec!["/dev/disk/by-id/virtio-*".into()],
            ..config::Scan::default()
        };
        assert!(uses(&r, &globs));
        // And the glob still sees the alias through Selection::load.
        assert_eq!(r.select(&globs).expect("sel").check(&listed[2]), Ok(()));
    }

    #[test]
    fn alias_walk_is_bounded_in_depth() {
        let r = three_disks();
        let deep = (0..MAX_DEV_DEPTH + 2)
            .map(|i| format!("d{i}"))
            .collect::<Vec<_>>();
        r.link(&format!("dev/{}/x", deep.join("/")), "/nonexistent");
        r.link(&format!("dev/{}/sda", deep[..2].join("/")), "../../sda");
        let listed = blockdev::list(r.p()).expect("list");
        let facts = gather_facts(r.p(), &listed, false, true);
        assert_eq!(facts[0].aliases, ["/dev/sda", "/dev/d0/d1/sda"]);
    }

    #[test]
    fn use_lvm_config_false_and_globs() {
        let r = three_disks();
        r.write("etc/lvm/lvm.conf", "devices { filter = [ \"r|.*|\" ] }\n");
        assert!(r.accepted().is_empty());
        let mut scan = config::Scan {
            use_lvm_config: false,
            ..config::Scan::default()
        };
        assert_eq!(r.accepted_with(&scan), ["sda", "sdb", "vda"]);
        scan.devices = vec!["/dev/sd[!a]".into(), "/dev/v?a".into()];
        assert_eq!(r.accepted_with(&scan), ["sdb", "vda"]);
        // Globs add to LVM's rules, never replace them.
        r.write("etc/lvm/lvm.conf", "devices { filter = [ \"r|vda|\" ] }\n");
        scan.use_lvm_config = true;
        assert_eq!(r.accepted_with(&scan), ["sdb"]);
        scan.devices = vec!["/dev/sd[a".into()];
        let e = r.select(&scan).expect_err("bad glob").to_string();
        assert!(e.contains("/dev/sd[a"), "{e}");
    }

    #[test]
    fn lvs_are_never_selected_by_scan() {
        // The selection itself may accept a dm device; scan::not_an_lv refuses LVs first.
        let r = three_disks();
        let lv = BlockDevice {
            name: "dm-0".into(),
            node: r.p().join("dev/dm-0"),
            major: 253,
            minor: 0,
            sectors: 8,
            read_only: false,
            dm: Some(blockdev::DmInfo {
                name: "vg-lv".into(),
                uuid: "LVM-x".into(),
            }),
        };
        assert!(crate::system::scan::not_an_lv(&lv).is_err());
    }

    #[test]
    fn bad_lvm_conf_is_an_error_naming_file_and_line() {
        let r = three_disks();
        r.write("etc/lvm/lvm.conf", "devices {\n filter = [ \"a|x|\" \n");
        let e = r
            .select(&config::Scan::default())
            .expect_err("bad")
            .to_string();
        assert!(e.contains("etc/lvm/lvm.conf"), "{e}");
        assert!(e.contains("line"), "{e}");
        r.write(
            "etc/lvm/lvm.conf",
            "devices {\n filter = [ \"a|ok|\", \"a|(|\" ]\n}\n",
        );
        let e = r
            .select(&config::Scan::default())
            .expect_err("bad")
            .to_string();
        assert!(e.contains("devices/filter: pattern \"a|(|\""), "{e}");
        for (text, needle) in [
            ("devices { use_devicesfile = \"maybe\" }", "use_devicesfile"),
            ("devices { devicesfile = \"../x\" }", "devicesfile"),
            ("devices { filter = [ 1 ] }", "quotes"),
            ("devices { global_filter = [ ] }", "empty"),
        ] {
            r.write("etc/lvm/lvm.conf", text);
            let e = r
                .select(&config::Scan::default())
                .expect_err(text)
                .to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn host_tag_configs_are_refused() {
        let r = three_disks();
        r.write("etc/lvm/lvm.conf", "tags { hosttags = 1 }\n");
        assert_eq!(r.accepted().len(), 3);
        r.write(
            "etc/lvm/lvm_myhost.conf",
            "devices { filter = [ \"r|.*|\" ] }\n",
        );
        let e = r
            .select(&config::Scan::default())
            .expect_err("tags")
            .to_string();
        assert!(e.contains("lvm_myhost.conf"), "{e}");
    }

    const PV_A: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    const PV_B: &str = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";

    fn devices_file(r: &Root, lines: &[&str]) {
        let mut text = "# LVM uses devices listed in this file.\nVERSION=1.1.1\n".to_owned();
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        r.write("etc/lvm/devices/system.devices", &text);
    }

    #[test]
    fn devices_file_when_present_and_its_pvid() {
        let r = three_disks();
        devices_file(
            &r,
            &[&format!(
                "IDTYPE=devname IDNAME=/dev/sdb DEVNAME=/dev/sdb PVID={PV_A}"
            )],
        );
        assert_eq!(r.accepted(), ["sdb"]);
        let sel = r.select(&config::Scan::default()).expect("sel");
        let listed = blockdev::list(r.p()).expect("list");
        assert_eq!(sel.expected_pvid(&listed[1]), Some(PV_A));
        assert_eq!(sel.expected_pvid(&listed[0]), None);
        assert!(
            sel.check(&listed[0])
                .expect_err("sda")
                .contains("devices file")
        );
        assert!(sel.summary.contains("not set"), "{}", sel.summary);
        // Inferred use: the filters still apply.
        r.write("etc/lvm/lvm.conf", "devices { filter = [ \"r|sdb|\" ] }\n");
        assert!(r.accepted().is_empty());
        // Explicit use: LVM ignores the filters, so does rewind.
        r.write(
            "etc/lvm/lvm.conf",
            "devices { use_devicesfile = 1 filter = [ \"r|sdb|\" ] }\n",
        );
        assert_eq!(r.accepted(), ["sdb"]);
        // Explicitly off: the file is not used.
        r.write("etc/lvm/lvm.conf", "devices { use_devicesfile = 0 }\n");
        assert_eq!(r.accepted(), ["sda", "sdb", "vda"]);
        // Another file name.
        r.write(
            "etc/lvm/lvm.conf",
            "devices { use_devicesfile = 1 devicesfile = \"other.devices\" }\n",
        );
        assert_eq!(r.accepted(), ["sda", "sdb", "vda"], "named file missing");
        r.write(
            "etc/lvm/devices/other.devices",
            "IDTYPE=devname IDNAME=/dev/vda DEVNAME=/dev/vda PVID=.\n",
        );
        assert_eq!(r.accepted(), ["vda"]);
    }

    #[test]
    fn devices_file_sysfs_id_types() {
        let r = Root::new();
        r.disk("sda", "8:0", &[("device/wwid", "naa.5000c500a1b2c3d4")]);
        r.part("sda", "sda1", "8:1", 1);
        r.disk(
            "sdb",
            "8:16",
            &[("device/wwid", "t10.ATA     VBOX HARDDISK   VB01  ")],
        );
        r.disk("sdc", "8:32", &[("device/serial", "  S3Z9NB0K ")]);
        r.disk("vda", "254:0", &[("serial", "virt-1")]);
        r.part("vda", "vda2", "254:2", 2);
        r.disk("loop0", "7:0", &[("loop/backing_file", "/var/img/a b.img")]);
        r.disk(
            "loop1",
            "7:1",
            &[("loop/backing_file", "/var/img/gone.img (deleted)")],
        );
        r.disk(
            "md0",
            "9:0",
            &[("md/uuid", "1a2b3c4d:5e6f7a8b:9c0d1e2f:3a4b5c6d")],
        );
        r.disk(
            "dm-3",
            "253:3",
            &[
                ("dm/name", "luks-1"),
                ("dm/uuid", "CRYPT-LUKS2-0123-luks-1"),
            ],
        );
        r.disk("nvme0n1", "259:0", &[("wwid", "eui.0025388b")]);
        r.disk("sdz", "65:144", &[]);
        devices_file(
            &r,
            &[
                // Partition 1 of the disk with this wwid (read from the whole disk).
                &format!(
                    "IDTYPE=sys_wwid IDNAME=naa.5000c500a1b2c3d4 DEVNAME=/dev/sda1 PVID={PV_A} PART=1"
                ),
                // Written by LVM 2.03.16: spaces replaced one by one.
                "IDTYPE=sys_wwid IDNAME=t10.ATA_____VBOX_HARDDISK___VB01__ DEVNAME=/dev/sdb PVID=.",
                "IDTYPE=sys_serial IDNAME=S3Z9NB0K DEVNAME=/dev/sdx PVID=.",
                "IDTYPE=sys_serial IDNAME=virt-1 DEVNAME=/dev/vda2 PVID=. PART=2",
                "IDTYPE=loop_file IDNAME=/var/img/a_b.img DEVNAME=/dev/loop0 PVID=.",
                "IDTYPE=loop_file IDNAME=/var/img/gone.img_(deleted) DEVNAME=/dev/loop1 PVID=.",
                "IDTYPE=md_uuid IDNAME=1a2b3c4d:5e6f7a8b:9c0d1e2f:3a4b5c6d DEVNAME=/dev/md0 PVID=.",
                "IDTYPE=crypt_uuid IDNAME=CRYPT-LUKS2-0123-luks-1 DEVNAME=/dev/dm-3 PVID=.",
                // Not read by rewind: DEVNAME and PVID.
                &format!("IDTYPE=nvme_eui64 IDNAME=eui.0025388b DEVNAME=/dev/nvme0n1 PVID={PV_B}"),
                // Same, but without a PVID: not accepted.
                "IDTYPE=wwid_naa IDNAME=naa.1 DEVNAME=/dev/sdz PVID=.",
                // A wwid cannot name a loop device.
                "IDTYPE=sys_wwid IDNAME=/var/img/a_b.img DEVNAME=/dev/loop0 PVID=.",
            ],
        );
        assert_eq!(
            r.accepted(),
            [
                "dm-3", "loop0", "md0", "nvme0n1", "sda1", "sdb", "sdc", "vda2"
            ]
        );
        let sel = r.select(&config::Scan::default()).expect("sel");
        let listed = blockdev::list(r.p()).expect("list");
        let by = |n: &str| listed.iter().find(|d| d.name == n).expect(n);
        assert_eq!(sel.expected_pvid(by("sda1")), Some(PV_A));
        assert_eq!(sel.expected_pvid(by("nvme0n1")), Some(PV_B));
        assert_eq!(
            sel.decision(by("sdc")).expect("sdc").entry.as_deref(),
            Some("sys_serial=S3Z9NB0K")
        );
    }

    #[test]
    fn one_entry_one_device() {
        let r = Root::new();
        r.disk("sda", "8:0", &[("device/serial", "SAME")]);
        r.disk("sdb", "8:16", &[("device/serial", "SAME")]);
        devices_file(
            &r,
            &["IDTYPE=sys_serial IDNAME=SAME DEVNAME=/dev/sdb PVID=."],
        );
        // The DEVNAME's device is tried first.
        assert_eq!(r.accepted(), ["sdb"]);
        devices_file(
            &r,
            &[
                "IDTYPE=sys_serial IDNAME=SAME DEVNAME=/dev/sdb PVID=.",
                "IDTYPE=sys_serial IDNAME=SAME DEVNAME=/dev/sdb PVID=.",
            ],
        );
        assert_eq!(r.accepted(), ["sda", "sdb"]);
        // A devname entry does not take a device a real id already took.
        devices_file(
            &r,
            &[
                "IDTYPE=devname IDNAME=/dev/sdb DEVNAME=/dev/sdb PVID=.",
                "IDTYPE=sys_serial IDNAME=SAME DEVNAME=/dev/sdb PVID=.",
            ],
        );
        assert_eq!(r.accepted(), ["sdb"]);
    }

    #[test]
    fn devname_of_a_dm_device_by_mapper_name_and_partitions() {
        let r = Root::new();
        r.disk(
            "dm-1",
            "253:1",
            &[("dm/name", "mpatha"), ("dm/uuid", "mpath-3600")],
        );
        r.disk("sda", "8:0", &[]);
        r.part("sda", "sda1", "8:1", 1);
        r.link("dev/mapper/mpatha", "../dm-1");
        devices_file(
            &r,
            &[
                "IDTYPE=devname IDNAME=/dev/mapper/mpatha DEVNAME=/dev/mapper/mpatha PVID=.",
                // A devname entry without PART=1 cannot name a partition.
                "IDTYPE=devname IDNAME=/dev/sda1 DEVNAME=/dev/sda1 PVID=.",
            ],
        );
        assert_eq!(r.accepted(), ["dm-1"]);
        devices_file(
            &r,
            &[
                "IDTYPE=mpath_uuid IDNAME=mpath-3600 DEVNAME=/dev/dm-1 PVID=.",
                "IDTYPE=devname IDNAME=/dev/sda1 DEVNAME=/dev/sda1 PVID=. PART=1",
            ],
        );
        assert_eq!(r.accepted(), ["dm-1", "sda1"]);
    }

    #[test]
    fn multipath_paths_and_md_members_are_skipped() {
        let r = Root::new();
        r.disk("sda", "8:0", &[]);
        r.disk("sdb", "8:16", &[]);
        r.disk("sdc", "8:32", &[]);
        r.disk("sdd", "8:48", &[]);
        r.disk(
            "dm-0",
            "253:0",
            &[("dm/name", "mpatha"), ("dm/uuid", "mpath-3600a")],
        );
        r.disk(
            "dm-1",
            "253:1",
            &[("dm/name", "vg-lv"), ("dm/uuid", "LVM-xyz")],
        );
        r.disk("md0", "9:0", &[]);
        r.link("sys/block/sda/holders/dm-0", "../../dm-0");
        r.link("sys/block/sdb/holders/dm-0", "../../dm-0");
        r.link("sys/block/sdc/holders/md0", "../../md0");
        r.part("sda", "sda1", "8:1", 1);
        // A PV with an active LV is held by the LV: still read.
        r.link("sys/block/sdd/holders/dm-1", "../../dm-1");
        assert_eq!(r.accepted(), ["dm-0", "dm-1", "md0", "sdd"]);
        let sel = r.select(&config::Scan::default()).expect("sel");
        let listed = blockdev::list(r.p()).expect("list");
        let sda = listed.iter().find(|d| d.name == "sda").expect("sda");
        let why = sel.check(sda).expect_err("component");
        assert!(why.contains("multipath device dm-0 (mpatha)"), "{why}");
        let scan = config::Scan {
            use_lvm_config: false,
            ..config::Scan::default()
        };
        assert_eq!(r.accepted_with(&scan).len(), 8);
    }

    #[test]
    fn an_empty_devices_file_admits_nothing() {
        let r = three_disks();
        devices_file(&r, &[]);
        assert!(r.accepted().is_empty());
        r.write("etc/lvm/lvm.conf", "devices { use_devicesfile = \"no\" }\n");
        assert_eq!(r.accepted().len(), 3);
    }

    #[test]
    fn unreadable_devices_file_is_an_error() {
        let r = three_disks();
        fs::create_dir_all(r.p().join("etc/lvm/devices/system.devices")).expect("dir");
        let e = r
            .select(&config::Scan::default())
            .expect_err("dir")
            .to_string();
        assert!(e.contains("system.devices"), "{e}");
    }

    #[test]
    fn a_device_that_appears_later_is_not_read() {
        let r = three_disks();
        let sel = r.select(&config::Scan::default()).expect("sel");
        r.disk("sdq", "65:0", &[]);
        let listed = blockdev::list(r.p()).expect("list");
        let sdq = listed.iter().find(|d| d.name == "sdq").expect("sdq");
        assert!(sel.check(sdq).expect_err("late").contains("appeared after"));
        let mut sda = listed[0].clone();
        assert!(sel.check(&sda).is_ok());
        sda.minor = 99;
        assert!(
            sel.check(&sda)
                .expect_err("other")
                .contains("changed after")
        );
    }
}
