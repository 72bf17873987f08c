//! Snapshot sets in LVM's metadata (docs/SETS.md sections 3 and 4): the LV tags that record a
//! set on each member's COW LV, the names rewind gives sets and their members, and the sets a
//! group of VGs holds, read back from those tags.
//!
//! LVM's tag alphabet is `A-Za-z0-9` and `_ + . - / = ! : & #` (`lib/misc/lvm-string.c`,
//! `validate_tag`; LVM sets no length limit); every tag rewind writes stays within 128
//! characters (`NAME_LEN`). Free text (a description, a mount point) is encoded into that
//! alphabet reversibly: [`encode_text`].

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use super::model::Vg;

/// Member of set NAME: `rewind_set_NAME` (the tag `rd.rewind=NAME` has always looked for).
pub const SET: &str = "rewind_set_";
/// Creation time, Unix seconds: `rewind_time_1764860000`.
pub const TIME: &str = "rewind_time_";
/// Who took it: `rewind_kind_manual` or `rewind_kind_auto`.
pub const KIND: &str = "rewind_kind_";
/// How many members the set has, across every VG: `rewind_members_3`.
pub const MEMBERS: &str = "rewind_members_";
/// The mount point the member was chosen by, encoded: `rewind_mnt_/var`.
pub const MOUNT: &str = "rewind_mnt_";
/// The description, encoded, in numbered pieces: `rewind_desc0_before_upgrade`.
pub const DESC: &str = "rewind_desc";
/// Under creation: never usable, never offered for rollback; tidied when found later.
pub const PENDING: &str = "rewind_pending";
/// Never pruned.
pub const PIN: &str = "rewind_pin";
/// Written beside the merge flag by `rewind rollback SET`: this member is flagged as part of
/// a whole set's rollback (its other members get flagged too, by a rerun or at boot).
pub const ROLLBACK: &str = "rewind_rollback";

/// On an origin, written by `rewind poll`'s finish of a set member's merge:
/// `rewind_rolled_back_TIME_SET` (the finish's Unix time, the set's name).
pub const ROLLED_BACK: &str = "rewind_rolled_back_";

/// The set an origin was last rolled back to, and when its merge finished, from its tags.
pub fn rolled_back(tags: &[String]) -> Option<(String, i64)> {
    tags.iter()
        .filter_map(|t| {
            let (time, set) = t.strip_prefix(ROLLED_BACK)?.split_once('_')?;
            Some((set.to_owned(), time.parse().ok()?))
        })
        .max_by_key(|(_, t)| *t)
}

/// The longest tag rewind writes.
pub const TAG_MAX: usize = 128;
/// The longest set name (its members' LV names are `ORIGIN.SET`).
pub const SET_NAME_MAX: usize = 64;
/// At most this many description pieces (`rewind_desc0_` .. `rewind_desc9_`).
pub const DESC_PIECES: usize = 10;

/// How big each member's COW store is (snapm's policies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizePolicy {
    /// A fixed size, in bytes.
    Fixed(u64),
    /// N% of the origin's size.
    OfSize(u32),
    /// N% of the VG's free space (before the set).
    OfFree(u32),
    /// N% of what the member's filesystem uses.
    OfUsed(u32),
}

impl fmt::Display for SizePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizePolicy::Fixed(b) => write!(f, "{b}B"),
            SizePolicy::OfSize(p) => write!(f, "{p}%SIZE"),
            SizePolicy::OfFree(p) => write!(f, "{p}%FREE"),
            SizePolicy::OfUsed(p) => write!(f, "{p}%USED"),
        }
    }
}

impl FromStr for SizePolicy {
    type Err = String;

    /// `2G`, `512M`, `1.5T` (LVM's binary units, `B` `K` `M` `G` `T` `P`, any case; no unit =
    /// MiB, as LVM's `-L`), or `N%SIZE`, `N%FREE`, `N%USED`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "size {s:?}: want a size (e.g. 2G, 512M) or N%SIZE, N%FREE, N%USED (e.g. 20%SIZE)"
            )
        };
        let t = s.trim();
        if let Some((n, what)) = t.split_once('%') {
            let p: u32 = n.parse().map_err(|_| bad())?;
            if p == 0 {
                return Err(format!("size {s:?}: the percentage must be above 0"));
            }
            return match what.to_ascii_uppercase().as_str() {
                "SIZE" | "ORIGIN" if p <= 100 => Ok(SizePolicy::OfSize(p)),
                "FREE" if p <= 100 => Ok(SizePolicy::OfFree(p)),
                "USED" if p <= 1000 => Ok(SizePolicy::OfUsed(p)),
                "SIZE" | "ORIGIN" | "FREE" => Err(format!("size {s:?}: at most 100%")),
                "USED" => Err(format!("size {s:?}: at most 1000%")),
                _ => Err(bad()),
            };
        }
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: f64 = num.parse().map_err(|_| bad())?;
        let shift = match unit.to_ascii_uppercase().as_str() {
            "B" => 0,
            "K" | "KB" | "KIB" => 10,
            "" | "M" | "MB" | "MIB" => 20,
            "G" | "GB" | "GIB" => 30,
            "T" | "TB" | "TIB" => 40,
            "P" | "PB" | "PIB" => 50,
            _ => return Err(bad()),
        };
        let bytes = n * f64::from(1u32 << 10).powi(shift / 10);
        if !(1.0..=9.0e18).contains(&bytes) {
            return Err(bad());
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(SizePolicy::Fixed(bytes.ceil() as u64))
    }
}

/// Who took a set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `rewind snapshot` by hand.
    Manual,
    /// A package-manager hook or a timer.
    Auto,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Manual => "manual",
            Kind::Auto => "auto",
        }
    }
}

fn keep(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b".-/=!:&+".contains(&b)
}

/// Encodes text into LVM's tag alphabet: bytes `A-Za-z0-9 . - / = ! : & +` as they are, a
/// space as `_`, every other byte as `#` and two upper-case hex digits.
pub fn encode_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if keep(b) {
            out.push(b as char);
        } else if b == b' ' {
            out.push('_');
        } else {
            out.push_str(&format!("#{b:02X}"));
        }
    }
    out
}

/// The inverse of [`encode_text`]; `None` for text it cannot have made.
pub fn decode_text(enc: &str) -> Option<String> {
    let b = enc.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'_' => out.push(b' '),
            b'#' => {
                let hex = enc.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c if keep(c) => out.push(c),
            _ => return None,
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The description's tags: the encoded text cut into pieces that keep each tag within
/// [`TAG_MAX`] (never inside a `#XX`). Fails when it needs more than [`DESC_PIECES`].
pub fn description_tags(description: &str) -> Result<Vec<String>, String> {
    let enc = encode_text(description);
    let room = TAG_MAX - DESC.len() - 2; // "rewind_desc" + digit + "_"
    let mut tags = Vec::new();
    let mut rest = enc.as_str();
    while !rest.is_empty() {
        let mut cut = rest.len().min(room);
        // Never split an escape: back up to before a '#' in the last two characters.
        if let Some(p) = rest[..cut].rfind('#').filter(|&p| p + 3 > cut) {
            cut = p;
        }
        tags.push(format!("{DESC}{}_{}", tags.len(), &rest[..cut]));
        rest = &rest[cut..];
    }
    if tags.len() > DESC_PIECES {
        return Err(format!(
            "the description is too long: {} characters once encoded, at most {} fit",
            enc.len(),
            room * DESC_PIECES
        ));
    }
    Ok(tags)
}

/// Whether `name` may name a set: LVM's LV-name alphabet, not starting with `-` or `.`, at
/// most [`SET_NAME_MAX`] characters.
pub fn check_set_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a set name cannot be empty".into());
    }
    if name.len() > SET_NAME_MAX {
        return Err(format!(
            "set name {name} is longer than {SET_NAME_MAX} characters"
        ));
    }
    if name.starts_with('-') || name.starts_with('.') {
        return Err(format!("set name {name} cannot start with '-' or '.'"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '_' | '.' | '-')))
    {
        return Err(format!(
            "set name {name} has '{c}': use A-Z, a-z, 0-9, '+', '_', '.', '-'"
        ));
    }
    Ok(())
}

/// LVM's reserved LV-name prefixes and strings (`lib/misc/lvm-string.c`,
/// `_lvname_has_reserved_prefix` and `_lvname_has_reserved_string`).
const RESERVED_PREFIXES: &[&str] = &["pvmove", "snapshot"];
const RESERVED_STRINGS: &[&str] = &[
    "_cdata", "_cmeta", "_corig", "_cpool", "_cvol", "_iorig", "_mimage", "_mlog", "_pmspare",
    "_rimage", "_rmeta", "_tdata", "_tmeta", "_vdata", "_vorigin", "_wcorig",
];

/// The LV name of `origin`'s member of set `set`: `ORIGIN.SET`, checked against LVM's rules.
pub fn member_name(origin: &str, set: &str) -> Result<String, String> {
    let name = format!("{origin}.{set}");
    super::layout::validate_name(&name).map_err(|e| e.to_string())?;
    if let Some(p) = RESERVED_PREFIXES.iter().find(|p| name.starts_with(**p)) {
        return Err(format!(
            "lv name {name} starts with {p}, which lvm reserves"
        ));
    }
    if let Some(s) = RESERVED_STRINGS.iter().find(|s| name.contains(**s)) {
        return Err(format!("lv name {name} contains {s}, which lvm reserves"));
    }
    Ok(name)
}

/// What a new set records on each member's COW LV.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSet {
    pub name: String,
    pub time: i64,
    pub kind: Kind,
    pub description: String,
    pub members: usize,
    pub pinned: bool,
}

impl NewSet {
    /// The tags of one member (with [`PENDING`]: the set is under creation).
    pub fn tags(&self, mount: Option<&str>) -> Result<Vec<String>, String> {
        check_set_name(&self.name)?;
        let mut t = vec![
            format!("{SET}{}", self.name),
            format!("{TIME}{}", self.time),
            format!("{KIND}{}", self.kind.as_str()),
            format!("{MEMBERS}{}", self.members),
        ];
        if let Some(m) = mount {
            let tag = format!("{MOUNT}{}", encode_text(m));
            if tag.len() > TAG_MAX {
                return Err(format!("mount point {m} is too long to record"));
            }
            t.push(tag);
        }
        t.extend(description_tags(&self.description)?);
        if self.pinned {
            t.push(PIN.to_owned());
        }
        t.push(PENDING.to_owned());
        Ok(t)
    }
}

/// One member of a set as the metadata shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Member {
    pub vg: String,
    /// The COW LV: the snapshot's name.
    pub lv: String,
    /// The origin, when the LV is a snapshot (a pending member may still be a plain LV).
    pub origin: Option<String>,
    /// The COW LV's size in extents, and the VG's extent size in sectors.
    pub extents: u64,
    pub extent_size: u64,
    pub chunk_size: Option<u64>,
    pub pending: bool,
    pub merging: bool,
    /// Flagged by `rewind rollback SET` (the merge flag and [`ROLLBACK`]).
    pub rollback: bool,
    pub mount: Option<String>,
    /// A thin snapshot's pool (docs/THIN.md): no store of its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thin_pool: Option<String>,
}

/// A set: its members from every VG given, and what they record.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Set {
    pub name: String,
    pub time: Option<i64>,
    pub kind: Option<Kind>,
    pub description: String,
    /// The `rewind_members_N` the members record (the largest, if they disagree).
    pub declared: Option<usize>,
    pub pinned: bool,
    pub members: Vec<Member>,
}

/// What a set is good for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Under creation, or cut short by a crash: never offered; tidied.
    Pending,
    /// Fewer members than the set records (one removed by hand, or a VG not found):
    /// refused for rollback.
    Incomplete,
    /// Some member is merging: a rollback to this set is under way.
    Merging,
    /// Every member present.
    Ok,
}

impl Set {
    /// The set's state from the metadata alone (an overflowed member is found on the COW's
    /// header or the kernel's status, by the caller).
    pub fn state(&self) -> State {
        if self.members.iter().any(|m| m.pending || m.origin.is_none()) {
            State::Pending
        } else if self.declared.is_some_and(|n| n != self.members.len()) {
            // A set tagged by hand (`lvchange --addtag rewind_set_NAME`) records no count:
            // it is what is found.
            State::Incomplete
        } else if self.members.iter().any(|m| m.merging) {
            State::Merging
        } else {
            State::Ok
        }
    }
}

fn tag_value<'a>(tags: &'a [String], prefix: &str) -> Option<&'a str> {
    tags.iter().find_map(|t| t.strip_prefix(prefix))
}

/// Every set with a member in `vgs`, by name (sorted by time, then name).
pub fn sets<'a>(vgs: impl IntoIterator<Item = &'a Vg>) -> Vec<Set> {
    let mut by_name: BTreeMap<String, Set> = BTreeMap::new();
    for vg in vgs {
        for lv in &vg.lvs {
            let Some(name) = tag_value(&lv.tags, SET) else {
                continue;
            };
            let snap = vg.snapshot(&lv.name);
            let chunk_size = snap.map(|s| s.chunk_size);
            let set = by_name.entry(name.to_owned()).or_insert_with(|| Set {
                name: name.to_owned(),
                time: None,
                kind: None,
                description: String::new(),
                declared: None,
                pinned: false,
                members: Vec::new(),
            });
            let time = tag_value(&lv.tags, TIME).and_then(|t| t.parse().ok());
            set.time = set.time.max(time);
            set.kind = set.kind.or(match tag_value(&lv.tags, KIND) {
                Some("manual") => Some(Kind::Manual),
                Some("auto") => Some(Kind::Auto),
                _ => None,
            });
            let declared = tag_value(&lv.tags, MEMBERS).and_then(|t| t.parse().ok());
            set.declared = set.declared.max(declared);
            set.pinned |= lv.tags.iter().any(|t| t == PIN);
            if set.description.is_empty() {
                set.description = description_of(&lv.tags);
            }
            let thin = lv.thin();
            set.members.push(Member {
                vg: vg.name.clone(),
                lv: lv.name.clone(),
                origin: snap
                    .map(|s| s.origin.clone())
                    .or_else(|| thin.and_then(|t| t.origin).map(str::to_owned)),
                extents: lv.extent_count(),
                extent_size: vg.extent_size,
                chunk_size,
                pending: lv.tags.iter().any(|t| t == PENDING),
                merging: snap.is_some_and(|s| s.merging) || thin.is_some_and(|t| t.merge.is_some()),
                rollback: lv.tags.iter().any(|t| t == ROLLBACK),
                mount: tag_value(&lv.tags, MOUNT).and_then(decode_text),
                thin_pool: thin.map(|t| t.pool.to_owned()),
            });
        }
    }
    let mut out: Vec<Set> = by_name.into_values().collect();
    out.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.name.cmp(&b.name)));
    out
}

/// The description recorded in `tags` (pieces in order; an undecodable piece as it is).
pub fn description_of(tags: &[String]) -> String {
    let mut pieces: Vec<(usize, &str)> = tags
        .iter()
        .filter_map(|t| {
            let rest = t.strip_prefix(DESC)?;
            let (n, text) = rest.split_once('_')?;
            Some((n.parse().ok()?, text))
        })
        .collect();
    pieces.sort_by_key(|p| p.0);
    let enc: String = pieces.iter().map(|p| p.1).collect();
    decode_text(&enc).unwrap_or(enc)
}

/// LVM's largest useful COW for an origin of `origin_sectors` with `chunk` sectors per chunk,
/// in extents of `extent_size` sectors (`snapshot_manip.c`, `cow_max_extents`): the header
/// chunk, one chunk per origin chunk, and the metadata chunks that index them (one per
/// `chunk * 512 / 16` data chunks, plus a terminator).
pub fn cow_max_extents(origin_sectors: u64, chunk: u64, extent_size: u64) -> u64 {
    let origin_chunks = origin_sectors.div_ceil(chunk);
    let per_metadata_chunk = chunk << (9 - 4);
    let metadata_chunks = (origin_chunks + per_metadata_chunk) / per_metadata_chunk;
    let sectors = (1 + origin_chunks + metadata_chunks) * chunk;
    sectors.div_ceil(extent_size)
}

/// LVM's smallest COW: 3 chunks (`SNAPSHOT_MIN_CHUNKS`), in extents.
pub fn cow_min_extents(chunk: u64, extent_size: u64) -> u64 {
    (3 * chunk).div_ceil(extent_size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lvm::testvg::{found, linear, snapshot, vg_text};

    #[test]
    fn policies_parse_like_lvm_sizes() {
        let p = |s: &str| s.parse::<SizePolicy>();
        assert_eq!(p("2G"), Ok(SizePolicy::Fixed(2 << 30)));
        assert_eq!(p("512"), Ok(SizePolicy::Fixed(512 << 20)));
        assert_eq!(p("1.5m"), Ok(SizePolicy::Fixed(3 << 19)));
        assert_eq!(p("20%SIZE"), Ok(SizePolicy::OfSize(20)));
        assert_eq!(p("20%origin"), Ok(SizePolicy::OfSize(20)));
        assert_eq!(p("10%FREE"), Ok(SizePolicy::OfFree(10)));
        assert_eq!(p("200%USED"), Ok(SizePolicy::OfUsed(200)));
        for bad in ["", "x", "0%SIZE", "101%FREE", "5%WHAT", "2Q", "-1G"] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn text_round_trips_through_the_tag_alphabet() {
        for s in [
            "before apt upgrade",
            "linux-image-6.1.0-58 (6.1.153-1) / libc6_2.36",
            "100% #1 über ☃",
            "",
            "_#",
        ] {
            let e = encode_text(s);
            assert!(
                e.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_+.-/=!:&#".contains(&b)),
                "{e}"
            );
            assert_eq!(decode_text(&e).as_deref(), Some(s));
        }
        assert_eq!(encode_text("before apt upgrade"), "before_apt_upgrade");
        assert_eq!(encode_text("a_b#c"), "a#5Fb#23c");
        assert_eq!(decode_text("#4"), None);
        assert_eq!(decode_text("a b"), None);
    }

    #[test]
    fn a_long_description_is_cut_into_pieces_that_read_back_whole() {
        let d = "é".repeat(100) + &" x".repeat(200);
        let tags = description_tags(&d).expect("fits");
        assert!(tags.len() > 1);
        assert!(tags.iter().all(|t| t.len() <= TAG_MAX), "{tags:?}");
        assert!(tags[1].starts_with("rewind_desc1_"));
        let mut shuffled = tags.clone();
        shuffled.reverse();
        assert_eq!(description_of(&shuffled), d);
        assert!(description_tags(&"x".repeat(2000)).is_err());
    }

    #[test]
    fn set_and_member_names_follow_lvm_rules() {
        assert!(check_set_name("20261204-153012").is_ok());
        assert!(check_set_name("pre-upgrade_2.1+x").is_ok());
        for bad in ["", "-x", ".x", "a/b", "a b", &"x".repeat(65)] {
            assert!(check_set_name(bad).is_err(), "{bad}");
        }
        assert_eq!(member_name("root", "pre").as_deref(), Ok("root.pre"));
        assert!(
            member_name("root", "x_tdata")
                .expect_err("reserved")
                .contains("_tdata")
        );
        assert!(
            member_name("snapshotx", "y")
                .expect_err("reserved")
                .contains("snapshot")
        );
        assert!(member_name(&"r".repeat(100), &"s".repeat(40)).is_err());
    }

    #[test]
    fn new_set_tags_are_lvm_tags() {
        let s = NewSet {
            name: "pre".into(),
            time: 1_764_860_000,
            kind: Kind::Auto,
            description: "apt: upgrade 3 packages".into(),
            members: 3,
            pinned: true,
        };
        let t = s.tags(Some("/var")).expect("tags");
        assert_eq!(
            t,
            [
                "rewind_set_pre",
                "rewind_time_1764860000",
                "rewind_kind_auto",
                "rewind_members_3",
                "rewind_mnt_/var",
                "rewind_desc0_apt:_upgrade_3_packages",
                "rewind_pin",
                "rewind_pending",
            ]
        );
    }

    fn set_vg(pending: &[&str]) -> Vg {
        let tags = |lv: &str, mnt: &str| -> Vec<String> {
            let mut t = vec![
                "rewind_set_pre".to_owned(),
                "rewind_time_100".to_owned(),
                "rewind_kind_manual".to_owned(),
                "rewind_members_3".to_owned(),
                format!("rewind_mnt_{mnt}"),
                "rewind_desc0_before_upgrade".to_owned(),
            ];
            if pending.contains(&lv) {
                t.push(PENDING.to_owned());
            }
            t
        };
        let rt = tags("root.pre", "/");
        let vt = tags("var.pre", "/var");
        let rt: Vec<&str> = rt.iter().map(String::as_str).collect();
        let vt: Vec<&str> = vt.iter().map(String::as_str).collect();
        let text = vg_text(
            "vg0",
            3,
            &[
                linear("root", "Root00", true, &[], &[(0, 50, 0)]),
                linear("var", "Var000", true, &[], &[(0, 20, 50)]),
                linear("root.pre", "Rpre00", false, &rt, &[(0, 5, 70)]),
                linear("var.pre", "Vpre00", false, &vt, &[(0, 5, 75)]),
                snapshot("snapshot0", "Snap00", "root", 50, 8, "root.pre", false),
                snapshot("snapshot1", "Snap01", "var", 20, 8, "var.pre", false),
            ],
        );
        found(text).model.expect("model")
    }

    #[test]
    fn sets_are_read_back_from_the_tags_and_their_state_follows() {
        let vg = set_vg(&[]);
        let s = sets([&vg]);
        assert_eq!(s.len(), 1);
        let set = &s[0];
        assert_eq!(set.name, "pre");
        assert_eq!(set.time, Some(100));
        assert_eq!(set.kind, Some(Kind::Manual));
        assert_eq!(set.description, "before upgrade");
        assert_eq!(set.declared, Some(3));
        assert_eq!(set.members.len(), 2);
        assert_eq!(set.members[0].origin.as_deref(), Some("root"));
        assert_eq!(set.members[1].mount.as_deref(), Some("/var"));
        // Two of three members: a third was removed, or its VG is missing.
        assert_eq!(set.state(), State::Incomplete);
        let pending = sets([&set_vg(&["var.pre"])]);
        assert_eq!(pending[0].state(), State::Pending);
    }

    #[test]
    fn cow_sizes_match_lvm() {
        // A 1 GiB origin, 4 KiB chunks, 4 MiB extents: 262144 data chunks, 1025 metadata chunks
        // (256 exceptions each, plus the terminator), the header: 263170 chunks, 257.0 extents.
        assert_eq!(cow_max_extents(2 * 1024 * 1024, 8, 8192), 258);
        assert_eq!(cow_min_extents(8, 8192), 1);
    }
}
