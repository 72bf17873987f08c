//! What stock LVM2 refuses in metadata text that parses: the checks of its reader and of its
//! validation, so that rewind refuses a VG exactly when LVM2 does, with LVM2's reason.
//!
//! From LVM2 2.03.16 (checked against stock LVM2 on loop devices by `tests/host_corpus.rs`):
//! - `lib/config/config.c` `config_file_read_fd`: the text must begin with a valid name;
//! - `lib/format_text/import_vsn1.c`: `_vsn1_check_version` (the `contents` and `version`
//!   fields), `_read_vgsummary` and `_read_vg` (required fields, status flags, physical
//!   volumes, logical volumes, segments, `_read_segments`' count), `_read_id` (`id_read_format`
//!   in `lib/uuid/uuid.c`), `lib/format_text/flags.c` `read_flags`;
//! - each segment type's `text_import` (`lib/striped`, `snapshot`, `mirror`, `thin`,
//!   `cache_segtype`, `raid`, `vdo`, `writecache`, `integrity`) and `text_import_areas`;
//! - `lib/metadata/merge.c` `check_lv_segments`, `lib/metadata/metadata.c` `vg_validate` (what
//!   `vgck` checks and every write requires): names (`lib/misc/lvm-string.c`
//!   `validate_name`), tags (`validate_tag`), duplicate LV ids, name lengths;
//! - access (`vg_read`): exported, clustered and lock-manager VGs, foreign system IDs.
//!
//! The model ([`super::model::Vg::from_tree`]) checks what rewind itself relies on (extents,
//! snapshots); the rules here add everything else LVM2 refuses. Where LVM2 would guess
//! (negative numbers read as huge unsigned ones, say) the model refuses; see README.md, "Where
//! rewind is stricter than LVM2".

use super::text::{Node, Section, Value};
use thiserror::Error;

/// Why stock LVM2 refuses a metadata text or a VG, in LVM2's words where it has them.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct Refusal(pub String);

fn refuse<T>(message: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal(message.into()))
}

/// `NAME_LEN` in LVM2.
const NAME_LEN: usize = 128;
/// `CONTENTS_VALUE`.
const CONTENTS: &str = "Text Format Volume Group";

/// `validate_name`: not empty, not starting with `-`, not `.` or `..`, only ASCII letters,
/// digits and `._+-`, fewer than 128 bytes.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && name != "."
        && name != ".."
        && name.len() < NAME_LEN
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._+-".contains(&c))
}

/// `validate_tag`: not empty, only ASCII letters, digits and `._-+/=!:&#`.
pub fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._-+/=!:&#".contains(&c))
}

/// `id_read_format`: 32 characters once the dashes are taken out, each a letter, a digit,
/// `!` or `#`.
pub fn valid_id(id: &str) -> bool {
    let mut chars = id.bytes().filter(|&c| c != b'-');
    chars
        .by_ref()
        .take(32)
        .filter(|&c| c.is_ascii_alphanumeric() || c == b'!' || c == b'#')
        .count()
        == 32
        && chars.next().is_none()
}

/// `config_file_read_fd`: the first bytes of an on-disk copy, up to white space, `{` or a
/// NUL (at most 127), must be a valid name, else LVM ignores the copy.
pub fn check_text_start(text: &[u8]) -> Result<(), Refusal> {
    let name: Vec<u8> = text
        .iter()
        .take(NAME_LEN - 1)
        .take_while(|&&c| c != 0 && c != b'{' && !c.is_ascii_whitespace() && c != 0x0b)
        .copied()
        .collect();
    match std::str::from_utf8(&name) {
        Ok(n) if valid_name(n) => Ok(()),
        _ => refuse("metadata begins with an invalid name"),
    }
}

// libdm's lookups, which the rules below are written in terms of.

/// `dm_config_has_node`.
fn has(s: &Section, key: &str) -> bool {
    s.get(key).is_some()
}

/// The first value of a value node (LVM's `n->v`).
fn first<'a>(s: &'a Section, key: &str) -> Option<&'a Value> {
    match s.get(key)? {
        Node::Value(Value::Array(a)) => a.first(),
        Node::Value(v) => Some(v),
        Node::Section(_) => None,
    }
}

/// `dm_config_get_uint32` / `_uint64`: the first value is an integer (a negative one is read
/// cast to unsigned; the model refuses those).
fn uint(s: &Section, key: &str) -> Option<i64> {
    match first(s, key)? {
        Value::Int(i) => Some(*i),
        _ => None,
    }
}

/// `dm_config_get_str`.
fn string<'a>(s: &'a Section, key: &str) -> Option<&'a str> {
    match first(s, key)? {
        Value::Str(v) => Some(v),
        _ => None,
    }
}

/// `dm_config_get_list`: the values of a value node (`Some(empty)` for `[]`).
fn list<'a>(s: &'a Section, key: &str) -> Option<Vec<&'a Value>> {
    match s.get(key)? {
        Node::Value(Value::Array(a)) => Some(a.iter().collect()),
        Node::Value(v) => Some(vec![v]),
        Node::Section(_) => None,
    }
}

/// `dm_config_get_section`.
fn section<'a>(s: &'a Section, key: &str) -> Option<&'a Section> {
    s.section(key)
}

/// `_read_str_list`: every value a string.
fn str_list<'a>(values: &[&'a Value]) -> Result<Vec<&'a str>, Refusal> {
    values
        .iter()
        .map(|v| match v {
            Value::Str(s) => Ok(s.as_str()),
            _ => refuse("Found an item that is not a string"),
        })
        .collect()
}

/// Optional `tags`: strings, each of the form `validate_tag` accepts (`vg_validate`).
fn tags(s: &Section, what: impl std::fmt::Display) -> Result<(), Refusal> {
    let Some(values) = list(s, "tags") else {
        return Ok(());
    };
    let tags = str_list(&values).map_err(|_| Refusal(format!("Couldn't read tags for {what}.")))?;
    if let Some(bad) = tags.iter().find(|t| !valid_tag(t)) {
        return refuse(format!("{what} tag {bad} has invalid form."));
    }
    Ok(())
}

/// Which object `read_flags` reads the flags of.
#[derive(Clone, Copy)]
enum Flags {
    Vg,
    Pv,
    Lv,
}

/// `flags.c`: the words `status` may hold (`STATUS_FLAG`, and `SEGTYPE_FLAG` for LVs).
fn status_words(kind: Flags) -> &'static [&'static str] {
    match kind {
        Flags::Vg => &[
            "EXPORTED",
            "RESIZEABLE",
            "PVMOVE",
            "READ",
            "WRITE",
            "CLUSTERED",
            "SHARED",
            // Not written any more, but read from old backups (`read_flags`).
            "PARTIAL",
        ],
        Flags::Pv => &["ALLOCATABLE", "EXPORTED", "MISSING"],
        Flags::Lv => &[
            "READ",
            "WRITE",
            "FIXED_MINOR",
            "VISIBLE",
            "PVMOVE",
            "LOCKED",
            "NOTSYNCED",
            "REBUILD",
            "RESHAPE",
            "RESHAPE_DATA_OFFSET",
            "RESHAPE_DELTA_DISKS_PLUS",
            "RESHAPE_DELTA_DISKS_MINUS",
            "REMOVE_AFTER_RESHAPE",
            "WRITEMOSTLY",
            "METADATA_FORMAT",
            "CROP_METADATA",
            "CACHE_USES_CACHEVOL",
            // Read from either list (`read_flags`).
            "CACHE_VOL",
        ],
    }
}

/// `_read_flag_config`: `status` present, every word known; `flags` (optional) strings.
/// Returns the status words.
fn flags(s: &Section, kind: Flags) -> Result<Vec<&str>, Refusal> {
    let Some(status) = list(s, "status") else {
        return refuse("Could not find status flags.");
    };
    let mut words = Vec::new();
    for v in status {
        let Value::Str(w) = v else {
            return refuse("Status value is not a string.");
        };
        if !status_words(kind).contains(&w.as_str()) {
            return refuse(format!("Unknown status flag '{w}'."));
        }
        words.push(w.as_str());
    }
    if let Some(fl) = list(s, "flags")
        && fl.iter().any(|v| !matches!(v, Value::Str(_)))
    {
        return refuse("Status value is not a string.");
    }
    Ok(words)
}

fn read_id(s: &Section, what: impl std::fmt::Display) -> Result<(), Refusal> {
    match string(s, "id") {
        None => refuse(format!("Couldn't find uuid for {what}.")),
        Some(id) if !valid_id(id) => refuse(format!("Invalid uuid for {what}: {id}.")),
        Some(_) => Ok(()),
    }
}

/// What a whole text must hold for LVM to use it at all (`_vsn1_check_version`, then
/// `_read_vgsummary` and the VG name check of `read_metadata_location_summary`); a copy
/// that fails is ignored by LVM, other copies of the VG may still be good.
pub fn check_copy(root: &Section) -> Result<(), Refusal> {
    match root.get("contents") {
        None => return refuse("Can't process text format file - missing contents field."),
        Some(Node::Value(Value::Str(c))) if c == CONTENTS => {}
        Some(_) => return refuse("Can't process text format file - unrecognised contents field."),
    }
    match root.get("version") {
        None => return refuse("Can't process text format file - missing version number."),
        Some(Node::Value(Value::Int(1))) => {}
        Some(_) => return refuse("Can't process text format file - unrecognised version number."),
    }
    let Some((name, vg)) = root.sections().next() else {
        return refuse("Couldn't find volume group in file.");
    };
    if !valid_name(name) {
        return refuse("metadata has an invalid VG name");
    }
    read_id(vg, format_args!("volume group {name}"))?;
    flags(vg, Flags::Vg)?;
    if uint(vg, "seqno").is_none() {
        return refuse(format!("Couldn't read seqno for volume group {name}."));
    }
    Ok(())
}

/// The system IDs a VG's `system_id` may name for LVM to read it on this host (LVM's
/// `cmd->system_id` and `local/extra_system_ids`, `is_system_id_allowed`). The default, no
/// local ID, is LVM's `system_id_source = "none"`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemIds {
    /// The host's system ID, when its source gave one.
    pub local: Option<String>,
    /// `local/extra_system_ids`.
    pub extra: Vec<String>,
}

impl SystemIds {
    /// Whether a VG with this `system_id` may be read here.
    pub fn allows(&self, system_id: &str) -> bool {
        system_id.is_empty()
            || self.local.as_deref() == Some(system_id)
            || self.extra.iter().any(|e| e == system_id)
    }
}

/// LVM's `system_id_from_string`: leading characters that are not letters or digits
/// dropped, then only letters, digits and `._-+` kept (`copy_systemid_chars`), at most 127;
/// `None` when nothing is left or it begins with "localhost".
pub fn system_id_from_string(s: &str) -> Option<String> {
    let id: String = s
        .chars()
        .skip_while(|c| !c.is_ascii_alphanumeric())
        .filter(|c| c.is_ascii_alphanumeric() || "._-+".contains(*c))
        .take(NAME_LEN - 1)
        .collect();
    (!id.is_empty() && !id.starts_with("localhost")).then_some(id)
}

/// LVM's `_read_system_id_from_file`: the first line that is not blank or a comment, less
/// any comment at its end.
pub fn system_id_from_file(bytes: &[u8]) -> Option<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim_start)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .and_then(|l| system_id_from_string(l.split('#').next().unwrap_or("")))
}

/// Whether LVM lets a command read the VG at all (`vg_read`, `lib/metadata/metadata.c`
/// `_access_vg_*`): not exported, not clustered, not under a lock manager (none runs at
/// boot), not owned by another host.
pub fn check_access(root: &Section, ids: &SystemIds) -> Result<(), Refusal> {
    let Some((name, vg)) = root.sections().next() else {
        return refuse("Couldn't find volume group in file.");
    };
    let status = list(vg, "status").unwrap_or_default();
    let has_flag = |f: &str| status.iter().any(|v| v.as_str() == Some(f));
    if has_flag("EXPORTED") {
        return refuse(format!("Volume group {name} is exported"));
    }
    if has_flag("CLUSTERED") {
        return refuse(format!("Skipping clustered VG {name}."));
    }
    if let Some(lock) = string(vg, "lock_type")
        && matches!(lock, "sanlock" | "dlm" | "idm")
    {
        return refuse(format!(
            "Cannot access VG {name} with lock type {lock} that requires lvmlockd."
        ));
    }
    if let Some(id) = string(vg, "system_id")
        && !ids.allows(id)
    {
        return refuse(match &ids.local {
            None => {
                format!("Cannot access VG {name} with system ID {id} with unknown local system ID.")
            }
            Some(l) => {
                format!("Cannot access VG {name} with system ID {id} with local system ID {l}.")
            }
        });
    }
    Ok(())
}

/// One LV's segment as LVM imports it.
struct Seg<'a> {
    key: &'a str,
    start: i64,
    len: i64,
    segtype: String,
    body: &'a Section,
}

/// The full import (`_read_vg`) and `vg_validate` of the VG in `root` (whose text passed
/// [`check_copy`]).
pub fn check_vg(root: &Section) -> Result<(), Refusal> {
    let Some((vg_name, vg)) = root.sections().next() else {
        return refuse("Couldn't find volume group in file.");
    };
    check_copy(root)?;
    if let Some(f) = string(vg, "format")
        && !f.eq_ignore_ascii_case("lvm2")
        && !f.eq_ignore_ascii_case("text")
    {
        return refuse(format!(
            "Unrecognised format {f} for volume group {vg_name}."
        ));
    }
    for key in ["extent_size", "max_lv", "max_pv"] {
        if uint(vg, key).is_none() {
            return refuse(format!("Couldn't read '{key}' for volume group {vg_name}."));
        }
    }
    if has(vg, "metadata_copies") && uint(vg, "metadata_copies").is_none() {
        // Read with a default when it is not an integer: nothing to refuse.
    }
    let Some(pvs) = section(vg, "physical_volumes") else {
        return refuse("Couldn't find section 'physical_volumes'.");
    };
    let mut pv_keys = Vec::new();
    for e in &pvs.entries {
        let p = match &e.node {
            Node::Section(p) if !p.entries.is_empty() => p,
            _ => return refuse("Empty pv section."),
        };
        read_pv(p, vg_name)?;
        pv_keys.push(e.key.as_str());
    }
    tags(vg, format_args!("VG {vg_name}"))?;

    // The LVs: names, flags and fields first (`_read_lvnames`), then segments (`_read_lvsegs`).
    let empty = Section::default();
    let lv_sec = section(vg, "logical_volumes").unwrap_or(&empty);
    let mut lvs: Vec<(&str, &Section, Vec<&str>)> = Vec::new();
    let mut spare = false;
    for e in &lv_sec.entries {
        let l = match &e.node {
            Node::Section(l) if !l.entries.is_empty() => l,
            _ => {
                return refuse(format!(
                    "Empty logical volume section for {vg_name}/{}.",
                    e.key
                ));
            }
        };
        let what = || format!("logical volume {vg_name}/{}", e.key);
        let status = flags(l, Flags::Lv)?;
        if has(l, "creation_time") {
            if uint(l, "creation_time").is_none() {
                return refuse(format!("Invalid creation_time for {}.", what()));
            }
            if string(l, "creation_host").is_none() {
                return refuse(format!("Couldn't read creation_host for {}.", what()));
            }
        } else if has(l, "creation_host") {
            return refuse(format!("Missing creation_time for {}.", what()));
        }
        tags(l, format_args!("LV {}", e.key))?;
        let visible = status.contains(&"VISIBLE");
        if !visible && e.key.contains("_pmspare") {
            if spare {
                return refuse(format!(
                    "Couldn't use another pool metadata spare logical volume {vg_name}/{}.",
                    e.key
                ));
            }
            spare = true;
        }
        lvs.push((e.key.as_str(), l, status));
    }
    let lv_names: Vec<&str> = lvs.iter().map(|(n, _, _)| *n).collect();
    // A set: a VG may hold thousands of LVs.
    let mut ids: std::collections::HashSet<[u8; 32]> = std::collections::HashSet::new();
    for (name, l, status) in &lvs {
        read_id(l, format_args!("logical volume {vg_name}/{name}"))?;
        if let Some(id) = string(l, "id") {
            // Valid (`read_id`): 32 characters besides the dashes.
            let mut bare = [0u8; 32];
            for (b, c) in bare.iter_mut().zip(id.bytes().filter(|&c| c != b'-')) {
                *b = c;
            }
            if !ids.insert(bare) {
                return refuse(format!(
                    "Internal error: Duplicate LV id {} detected for {name} in {vg_name}.",
                    string(l, "id").unwrap_or_default()
                ));
            }
        }
        read_segments(name, l, &pv_keys, &lv_names)?;
        if status.contains(&"FIXED_MINOR") && uint(l, "minor").is_none() {
            return refuse(format!(
                "Couldn't read minor number for logical volume {vg_name}/{name}."
            ));
        }
        // vg_validate.
        if !valid_name(name) {
            return refuse(format!("Internal error: LV name {name} has invalid form."));
        }
        let full = name.len() + vg_name.len() + 3;
        if full >= NAME_LEN {
            return refuse(format!(
                "Internal error: LV name \"{vg_name}/{name}\" length {full} is not supported."
            ));
        }
    }
    historical(vg, vg_name, &lv_names)
}

/// `historical_logical_volumes` (LVs removed from a thin snapshot chain, kept for `lvs -H`):
/// `_read_historical_lvnames`, `_read_historical_lvnames_interconnections` and what
/// `vg_validate` checks of them.
fn historical(vg: &Section, vg_name: &str, lv_names: &[&str]) -> Result<(), Refusal> {
    let Some(h) = section(vg, "historical_logical_volumes") else {
        return Ok(());
    };
    let lv_sections: Vec<(&str, &Section)> = section(vg, "logical_volumes")
        .map(|s| s.sections().collect())
        .unwrap_or_default();
    // (name, id) of each, in order.
    let mut hist: Vec<(String, String)> = Vec::new();
    for e in &h.entries {
        let Node::Section(l) = &e.node else {
            return refuse("Empty removed logical volume section.");
        };
        if l.entries.is_empty() {
            return refuse("Empty removed logical volume section.");
        }
        read_id(
            l,
            format_args!("removed logical volume {} in vg {vg_name}", e.key),
        )?;
        for k in ["creation_time", "removal_time"] {
            if has(l, k) && uint(l, k).is_none() {
                return refuse(format!("Invalid {k} for removed logical volume {}.", e.key));
            }
        }
        let name = string(l, "name").unwrap_or(&e.key).to_owned();
        let id: String = string(l, "id")
            .unwrap_or_default()
            .chars()
            .filter(|&c| c != '-')
            .collect();
        if hist.iter().any(|(_, i)| *i == id) {
            return refuse(format!(
                "Internal error: Duplicate historical LV id {id} detected for {name} in {vg_name}"
            ));
        }
        if hist.iter().any(|(n, _)| *n == name) {
            return refuse(format!(
                "Internal error: Duplicate historical LV name {name} detected in {vg_name}"
            ));
        }
        if lv_names.contains(&name.as_str()) {
            return refuse(format!(
                "Internal error: Name {name} appears as live and historical LV at the same time in VG {vg_name}"
            ));
        }
        hist.push((name, id));
    }
    // In a chain: an origin, descendants, or another historical LV's origin.
    let mut chained = vec![false; hist.len()];
    for (i, e) in h.entries.iter().enumerate() {
        let Node::Section(l) = &e.node else {
            continue;
        };
        let key = &e.key;
        if has(l, "origin") {
            let Some(origin) = string(l, "origin") else {
                return refuse(format!(
                    "Couldn't read origin for historical logical volume {vg_name}/-{key}"
                ));
            };
            if let Some(hname) = origin.strip_prefix('-') {
                let Some(j) = hist.iter().position(|(n, _)| n == hname) else {
                    return refuse(format!(
                        "Unknown origin {origin} for historical logical volume {vg_name}/-{key}"
                    ));
                };
                chained[j] = true;
            } else if !lv_names.contains(&origin) {
                return refuse(format!(
                    "Unknown origin {origin} for historical logical volume {vg_name}/-{key}"
                ));
            }
            chained[i] = true;
        }
        if has(l, "descendants") {
            let Some(d) = list(l, "descendants") else {
                return refuse(format!(
                    "Couldn't get descendants list for historical logical volume {vg_name}/-{key}"
                ));
            };
            if d.is_empty() {
                return refuse(format!(
                    "Found empty descendants list for historical logical volume {vg_name}/-{key}"
                ));
            }
            for v in d {
                match v {
                    // `check_lv_segments`: only a thin volume may have an indirect origin.
                    Value::Str(n) if lv_names.contains(&n.as_str()) => {
                        if let Some(seg) = lv_sections
                            .iter()
                            .find(|(name, _)| name == n)
                            .and_then(|(_, l)| l.sections().next())
                            .map(|(_, seg)| seg)
                            && string(seg, "type").map(base_type) != Some("thin")
                        {
                            return refuse(format!(
                                "LV {vg_name}/{n}, segment 1 invalid: sets indirect_origin LV for {} segment.",
                                string(seg, "type").unwrap_or("unknown")
                            ));
                        }
                    }
                    Value::Str(n) => {
                        return refuse(format!(
                            "Failed to find descendant {n} for historical LV {key}."
                        ));
                    }
                    _ => {
                        return refuse(format!(
                            "Descendant value for historical logical volume {vg_name}/-{key} is not a string."
                        ));
                    }
                }
            }
            chained[i] = true;
        }
    }
    if let Some(i) = chained.iter().position(|c| !c) {
        return refuse(format!(
            "Internal error: Historical LV {} is not part of any LV chain in VG {vg_name}",
            hist[i].0
        ));
    }
    Ok(())
}

fn read_pv(p: &Section, vg_name: &str) -> Result<(), Refusal> {
    read_id(p, "physical volume")?;
    flags(p, Flags::Pv)?;
    if has(p, "dev_size") && uint(p, "dev_size").is_none() {
        return refuse("Couldn't read dev size for physical volume.");
    }
    if uint(p, "pe_start").is_none() {
        return refuse("Couldn't read extent start value (pe_start) for physical volume.");
    }
    if uint(p, "pe_count").is_none() {
        return refuse("Couldn't find extent count (pe_count) for physical volume.");
    }
    let ba_start = uint(p, "ba_start").unwrap_or(0);
    let ba_size = uint(p, "ba_size").unwrap_or(0);
    if (ba_start == 0) != (ba_size == 0) {
        return refuse("Found incomplete bootloader area specification for PV in metadata.");
    }
    tags(p, format_args!("PV in VG {vg_name}"))?;
    Ok(())
}

/// `_read_segments`, `_read_segment`, the segment type's import, `check_lv_segments`.
fn read_segments(
    lv: &str,
    l: &Section,
    pv_keys: &[&str],
    lv_names: &[&str],
) -> Result<(), Refusal> {
    // Every sub-section is a segment, in the order of the text.
    let mut segs: Vec<Seg<'_>> = Vec::new();
    for (key, s) in l.sections() {
        if s.entries.is_empty() {
            return refuse("Empty segment section.");
        }
        let Some(start) = uint(s, "start_extent") else {
            return refuse(format!(
                "Couldn't read 'start_extent' for segment '{key}' of logical volume {lv}."
            ));
        };
        let Some(len) = uint(s, "extent_count") else {
            return refuse(format!(
                "Couldn't read 'extent_count' for segment '{key}' of logical volume {lv}."
            ));
        };
        let Some(segtype) = string(s, "type") else {
            return refuse("Segment type must be a string.");
        };
        let segtype = segtype.to_owned();
        if let Some(values) = list(s, "tags") {
            str_list(&values)
                .map_err(|_| Refusal(format!("Couldn't read tags for a segment of {lv}.")))?;
        }
        let seg = Seg {
            key,
            start: start as u32 as i64,
            len: len as u32 as i64,
            segtype,
            body: s,
        };
        import_segment(lv, &seg, pv_keys, lv_names)?;
        segs.push(seg);
        let snapshots = segs.iter().filter(|s| base_type(&s.segtype) == "snapshot");
        if snapshots.count() > 0 && segs.len() > 1 {
            return refuse("Only one segment permitted for snapshot");
        }
    }
    let Some(count) = uint(l, "segment_count") else {
        return refuse(format!(
            "Couldn't read segment count for logical volume {lv}."
        ));
    };
    if count as u32 as usize != segs.len() {
        return refuse(format!(
            "segment_count and actual number of segments disagree for logical volume {lv}."
        ));
    }
    // `_insert_segment` keeps the list in LE order but counts an LV's length only for a
    // segment appended at its end; `check_lv_segments` then wants the segments to follow
    // each other from LE 0 and the lengths to add up.
    let mut order: Vec<(i64, i64)> = Vec::new();
    let mut le_count = 0i64;
    for s in &segs {
        match order.iter().position(|&(le, _)| le > s.start) {
            Some(i) => order.insert(i, (s.start, s.len)),
            None => {
                le_count += s.len;
                order.push((s.start, s.len));
            }
        }
    }
    let mut le = 0i64;
    for (i, &(start, len)) in order.iter().enumerate() {
        if start != le {
            return refuse(format!(
                "LV {lv} invalid: segment {} should begin at LE {le} (found {start}).",
                i + 1
            ));
        }
        le += len;
    }
    if le != le_count {
        return refuse(format!("LV {lv}: inconsistent LE count {le} != {le_count}"));
    }
    if le == 0 {
        return refuse(format!("LV {lv}: has no segment."));
    }
    Ok(())
}

/// The segment type without its `+FLAG` suffixes (`read_segtype_lvflags`).
fn base_type(segtype: &str) -> &str {
    segtype.split('+').next().unwrap_or(segtype)
}

/// What a key of a segment must be, for the segment types that only need their keys read.
#[derive(Clone, Copy)]
enum Need {
    /// An integer.
    Uint(&'static str),
    /// An integer if present.
    OptUint(&'static str),
    /// A string if present.
    OptStr(&'static str),
    /// A string.
    Str(&'static str),
    /// The name of an LV of the VG.
    Lv(&'static str),
    /// The name of an LV of the VG, if present.
    OptLv(&'static str),
}

/// The keys of the segment types whose import only reads keys (`text_import` of each).
fn needs(segtype: &str) -> Option<&'static [Need]> {
    use Need::*;
    Some(match segtype {
        "thin-pool" => &[
            Lv("metadata"),
            Lv("pool"),
            Uint("transaction_id"),
            Uint("chunk_size"),
            OptStr("discards"),
            OptUint("zero_new_blocks"),
            OptUint("crop_metadata"),
        ],
        "thin" => &[
            Lv("thin_pool"),
            Uint("transaction_id"),
            OptLv("origin"),
            OptLv("merge"),
            Uint("device_id"),
            OptLv("external_origin"),
        ],
        "cache-pool" => &[Lv("data"), Lv("metadata"), OptUint("metadata_format")],
        "cache" => &[
            Lv("cache_pool"),
            Lv("origin"),
            OptUint("cleaner"),
            OptUint("metadata_format"),
        ],
        "vdo" => &[Lv("vdo_pool"), Uint("vdo_offset")],
        "vdo-pool" => &[
            Lv("data"),
            Uint("header_size"),
            Uint("virtual_extents"),
            OptUint("use_compression"),
            OptUint("use_deduplication"),
            OptUint("use_metadata_hints"),
            Uint("minimum_io_size"),
            Uint("block_map_cache_size_mb"),
            Uint("block_map_era_length"),
            OptUint("use_sparse_index"),
            Uint("index_memory_size_mb"),
            Uint("max_discard"),
            Uint("slab_size_mb"),
            Uint("ack_threads"),
            Uint("bio_threads"),
            Uint("bio_rotation"),
            Uint("cpu_threads"),
            Uint("hash_zone_threads"),
            Uint("logical_threads"),
            Uint("physical_threads"),
        ],
        "writecache" => &[
            Lv("origin"),
            Lv("writecache"),
            Uint("writecache_block_size"),
            OptUint("high_watermark"),
            OptUint("low_watermark"),
            OptUint("writeback_jobs"),
            OptUint("autocommit_blocks"),
            OptUint("autocommit_time"),
            OptUint("fua"),
            OptUint("nofua"),
            OptUint("cleaner"),
            OptUint("max_age"),
        ],
        "integrity" => &[
            Lv("origin"),
            Uint("data_sectors"),
            Str("mode"),
            Uint("tag_size"),
            Uint("block_size"),
            Str("internal_hash"),
            OptLv("meta_dev"),
            OptUint("recalculate"),
            OptUint("journal_sectors"),
            OptUint("interleave_sectors"),
        ],
        _ => return None,
    })
}

fn import_segment(
    lv: &str,
    seg: &Seg<'_>,
    pv_keys: &[&str],
    lv_names: &[&str],
) -> Result<(), Refusal> {
    let s = seg.body;
    let key = seg.key;
    let in_seg = format!("segment {key} of logical volume {lv}");
    let is_lv = |n: &str| lv_names.contains(&n);
    let segtype = base_type(&seg.segtype);
    if let Some(needs) = needs(segtype) {
        for need in needs {
            let ok = match *need {
                Need::Uint(k) => uint(s, k).is_some(),
                Need::OptUint(k) => !has(s, k) || uint(s, k).is_some(),
                Need::Str(k) => string(s, k).is_some(),
                Need::OptStr(k) => !has(s, k) || string(s, k).is_some(),
                Need::Lv(k) => string(s, k).is_some_and(is_lv),
                Need::OptLv(k) => !has(s, k) || string(s, k).is_some_and(is_lv),
            };
            if !ok {
                let k = match *need {
                    Need::Uint(k)
                    | Need::OptUint(k)
                    | Need::Str(k)
                    | Need::OptStr(k)
                    | Need::Lv(k)
                    | Need::OptLv(k) => k,
                };
                return refuse(match string(s, k) {
                    Some(name) if matches!(need, Need::Lv(_) | Need::OptLv(_)) => {
                        format!("Unknown logical volume {name} specified for {k} in {in_seg}.")
                    }
                    _ => format!("Couldn't read '{k}' for {in_seg}."),
                });
            }
        }
        match segtype {
            "thin-pool" => {
                if let Some(d) = string(s, "discards")
                    && !matches!(d, "ignore" | "nopassdown" | "passdown")
                {
                    return refuse(format!(
                        "Discards option {d} is not recognised in {in_seg}."
                    ));
                }
            }
            "cache-pool" => {
                if let Some(f) = uint(s, "metadata_format")
                    && !matches!(f, 1 | 2)
                {
                    return refuse(format!(
                        "Unknown cache metadata format {f} number in {in_seg}."
                    ));
                }
            }
            "cache" => {
                if let Some(f) = uint(s, "metadata_format")
                    && f != 2
                {
                    return refuse(format!(
                        "Unknown cache metadata format {f} number in {in_seg}."
                    ));
                }
            }
            _ => {}
        }
        return Ok(());
    }
    match segtype {
        "striped" | "linear" => {
            let Some(count) = uint(s, "stripe_count") else {
                return refuse(format!("Couldn't read 'stripe_count' for segment '{key}'."));
            };
            let count = count as u32;
            if count != 1 && uint(s, "stripe_size").is_none() {
                return refuse(format!("Couldn't read stripe_size for {in_seg}."));
            }
            let Some(areas) = list(s, "stripes") else {
                return refuse(format!("Couldn't find stripes array for {in_seg}."));
            };
            import_areas(key, count, &areas, pv_keys, lv_names)?;
            if seg.len % i64::from(count.max(1)) != 0 {
                return refuse(format!(
                    "LV {lv}: segment {key} with len={} has inconsistent area_len",
                    seg.len
                ));
            }
        }
        "mirror" => {
            let Some(count) = uint(s, "mirror_count") else {
                return refuse(format!("Couldn't read 'mirror_count' for segment '{key}'."));
            };
            for k in ["extents_moved", "region_size"] {
                if has(s, k) && uint(s, k).is_none() {
                    return refuse(format!("Couldn't read '{k}' for {in_seg}."));
                }
            }
            if let Some(log) = string(s, "mirror_log") {
                if !is_lv(log) {
                    return refuse(format!("Unrecognised mirror log in {in_seg}."));
                }
                if uint(s, "region_size").unwrap_or(0) == 0 {
                    return refuse(format!("Missing region size for mirror log for {in_seg}."));
                }
            }
            let Some(areas) = list(s, "mirrors") else {
                return refuse(format!("Couldn't find mirrors array for {in_seg}."));
            };
            import_areas(key, count as u32, &areas, pv_keys, lv_names)?;
        }
        "snapshot" => {
            if uint(s, "chunk_size").is_none() {
                return refuse("Couldn't read chunk size for snapshot.");
            }
            let merging = if has(s, "merging_store") {
                if string(s, "merging_store").is_none() {
                    return refuse(format!("Merging store must be a string in {in_seg}."));
                }
                true
            } else {
                false
            };
            if has(s, "cow_store") {
                if merging {
                    return refuse(format!(
                        "Both snapshot cow and merging storage were specified in {in_seg}."
                    ));
                }
                if string(s, "cow_store").is_none() {
                    return refuse(format!("Cow store must be a string in {in_seg}."));
                }
            }
            let Some(cow) = string(s, "merging_store").or(string(s, "cow_store")) else {
                return refuse(format!("Snapshot cow storage not specified in {in_seg}."));
            };
            if !has(s, "origin") {
                return refuse(format!("Snapshot origin not specified in {in_seg}."));
            }
            let Some(origin) = string(s, "origin") else {
                return refuse(format!("Snapshot origin must be a string in {in_seg}."));
            };
            if !is_lv(cow) {
                return refuse(format!(
                    "Unknown logical volume {cow} specified for snapshot cow store in {in_seg}."
                ));
            }
            if !is_lv(origin) {
                return refuse(format!(
                    "Unknown logical volume {origin} specified for snapshot origin in {in_seg}."
                ));
            }
            if cow == origin {
                return refuse(format!(
                    "LV {lv}: segment 1 has same LV {cow} for both origin and snapshot"
                ));
            }
        }
        t if t.starts_with("raid") => {
            let device = uint(s, "device_count");
            let stripe = uint(s, "stripe_count");
            let count = match (device, stripe) {
                (None, None) => {
                    return refuse(format!(
                        "Couldn't read 'device_count' or 'stripe_count' for segment '{key}'."
                    ));
                }
                (Some(_), Some(_)) => {
                    return refuse(format!(
                        "Only one of 'device_count' and 'stripe_count' allowed for segment '{key}'."
                    ));
                }
                (Some(c), None) | (None, Some(c)) => c as u32,
            };
            for k in [
                "region_size",
                "stripe_size",
                "writebehind",
                "min_recovery_rate",
                "max_recovery_rate",
            ] {
                if has(s, k) && uint(s, k).is_none() {
                    return refuse(format!("Couldn't read '{k}' for {in_seg}."));
                }
            }
            let array = if t.starts_with("raid0") {
                "raid0_lvs"
            } else {
                "raids"
            };
            let Some(areas) = list(s, array) else {
                return refuse(format!("Couldn't find RAID array for {in_seg}."));
            };
            import_raid_areas(key, count, &areas, lv_names)?;
        }
        // error, zero, free and types LVM does not know (it reads those as "unknown").
        _ => {}
    }
    Ok(())
}

/// `text_import_areas`: `count` pairs of a PV key or LV name and an extent number.
fn import_areas(
    key: &str,
    count: u32,
    areas: &[&Value],
    pv_keys: &[&str],
    lv_names: &[&str],
) -> Result<(), Refusal> {
    if count == 0 {
        return refuse(format!("Zero areas not allowed for segment {key}"));
    }
    let mut i = 0;
    let mut n = 0;
    while n < count && i < areas.len() {
        let Value::Str(name) = areas[i] else {
            return refuse(format!("Bad volume name in areas array for segment {key}."));
        };
        let Some(offset) = areas.get(i + 1) else {
            return refuse(format!("Missing offset in areas array for segment {key}."));
        };
        if !matches!(offset, Value::Int(_)) {
            return refuse(format!("Bad offset in areas array for segment {key}."));
        }
        if !pv_keys.contains(&name.as_str()) && !lv_names.contains(&name.as_str()) {
            return refuse(format!(
                "Couldn't find volume '{name}' for segment '{key}'."
            ));
        }
        i += 2;
        n += 1;
    }
    if i < areas.len() || n < count {
        return refuse(format!(
            "Incorrect number of areas in area array for segment '{key}'."
        ));
    }
    Ok(())
}

/// `_raid_text_import_areas`: `count` areas, each an LV name, preceded by its `_rmeta_`
/// LV when there is one.
fn import_raid_areas(
    key: &str,
    count: u32,
    areas: &[&Value],
    lv_names: &[&str],
) -> Result<(), Refusal> {
    if count == 0 {
        return refuse(format!("No areas found for segment {key}"));
    }
    let name_of = |v: &Value| -> Result<String, Refusal> {
        match v {
            Value::Str(n) if lv_names.contains(&n.as_str()) => Ok(n.clone()),
            Value::Str(n) => refuse(format!("Couldn't find volume '{n}' for segment '{key}'.")),
            _ => refuse(format!("Bad volume name in areas array for segment {key}.")),
        }
    };
    let mut i = 0;
    let mut n = 0;
    while n < count && i < areas.len() {
        let name = name_of(areas[i])?;
        if name.contains("_rmeta_") {
            i += 1;
            let Some(data) = areas.get(i) else {
                return refuse(format!(
                    "Missing data device in areas array for segment {key}."
                ));
            };
            name_of(data)?;
        }
        i += 1;
        n += 1;
    }
    if i < areas.len() || n < count {
        return refuse(format!(
            "Incorrect number of areas in area array for segment '{key}'."
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lvm::text::parse_lvm;

    const DISK: &str = include_str!("../../tests/fixtures/text/disk.vg");
    const BACKUP: &str = include_str!("../../tests/fixtures/text/backup.vg");

    fn check(text: &str) -> Result<(), Refusal> {
        let tree = parse_lvm(text.as_bytes()).expect("parses");
        check_copy(&tree)?;
        check_vg(&tree)?;
        check_access(&tree, &SystemIds::default())
    }

    fn edit(from: &str, to: &str) -> String {
        assert!(DISK.contains(from), "{from}");
        DISK.replacen(from, to, 1)
    }

    #[test]
    fn lvms_own_texts_pass() {
        assert_eq!(check_text_start(DISK.as_bytes()), Ok(()));
        assert_eq!(check(DISK), Ok(()));
        // Backup files begin with a comment, which is not what an on-disk copy may begin with.
        assert!(check_text_start(BACKUP.as_bytes()).is_err());
        assert_eq!(check(BACKUP), Ok(()));
    }

    #[test]
    fn names_tags_and_ids_by_lvms_rules() {
        for good in ["a", "root", "d+a_t.a", "x1-y"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "-a", ".", "..", "a b", "da!ta", "caf\u{e9}"] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(valid_name(&"d".repeat(127)));
        assert!(!valid_name(&"d".repeat(128)));
        assert!(valid_tag("a/b=c!d:e&f#g+h-i_j.k"));
        assert!(!valid_tag("ke ep!") && !valid_tag(""));
        assert!(valid_id("Snap00-aaaa-bbbb-cccc-dddd-eeee-ffff00"));
        assert!(valid_id("!!!!!!-!!!!-!!!!-!!!!-!!!!-!!!!-!!!!!!"));
        assert!(!valid_id("not-an-id"));
        assert!(!valid_id("Snap00-aaaa-bbbb-cccc-dddd-eeee-ffff0?"));
    }

    #[test]
    fn what_lvm_refuses() {
        let cases = [
            (
                "contents = \"Text Format Volume Group\"",
                "",
                "missing contents field",
            ),
            ("version = 1", "version = 2", "unrecognised version number"),
            (
                "\"READ\", \"WRITE\"]",
                "\"READ\", \"WRITE\", \"FUTURE\"]",
                "Unknown status flag 'FUTURE'",
            ),
            ("max_lv = 0\n", "", "Couldn't read 'max_lv'"),
            (
                "status = [\"ALLOCATABLE\"]\n",
                "",
                "Could not find status flags",
            ),
            ("segment_count = 1\n", "", "Couldn't read segment count"),
            (
                "type = \"striped\"",
                "type = \"thin\"",
                "Couldn't read 'thin_pool'",
            ),
        ];
        for (from, to, want) in cases {
            let e = check(&edit(from, to)).expect_err(want);
            assert!(e.to_string().contains(want), "{from:?} -> {to:?}: {e}");
        }
        let with_id = |id: &str| {
            parse_lvm(edit("max_lv = 0", &format!("system_id = \"{id}\"\nmax_lv = 0")).as_bytes())
                .expect("parses")
        };
        let here = SystemIds {
            local: Some("this".into()),
            extra: vec!["also".into()],
        };
        let e = check_access(&with_id("other"), &here).expect_err("foreign");
        assert!(
            e.to_string()
                .contains("system ID other with local system ID this")
        );
        assert_eq!(check_access(&with_id("this"), &here), Ok(()));
        assert_eq!(check_access(&with_id("also"), &here), Ok(()));
        assert_eq!(check_access(&with_id(""), &SystemIds::default()), Ok(()));
        let e = check_access(&with_id("this"), &SystemIds::default()).expect_err("unknown");
        assert!(e.to_string().contains("with unknown local system ID"));
        assert_eq!(
            system_id_from_string("--my host.lan!"),
            Some("myhost.lan".into())
        );
        assert_eq!(system_id_from_string("localhost.localdomain"), None);
        assert_eq!(system_id_from_string("!!"), None);
        assert_eq!(
            system_id_from_file(b"# comment\n\n  abc123 # trailing\nnext\n"),
            Some("abc123".into())
        );
        assert!(check_text_start(b"\tvg {").is_err());
        assert!(check_text_start(b"-vg {").is_err());
        assert!(check_text_start(b"vg{").is_ok());
    }
}
