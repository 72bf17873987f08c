//! Device-mapper names, UUIDs and paths exactly as LVM2 builds them for its LVs.
//!
//! Facts from LVM2 (lvmteam/lvm2):
//! - `libdm/libdm-string.c` `dm_build_dm_name`: `VG-LV[-LAYER]`, every `-` inside the VG, LV and
//!   layer name doubled. `dm_split_lvm_name`/`_unquote` read it back: `--` is a literal `-`, a
//!   single `-` ends a component. LVM names cannot start with `-`, so the split is unambiguous.
//! - `libdm/libdm-string.c` `dm_build_dm_uuid` + `lib/misc/lvm-string.c` `build_dm_uuid`:
//!   `LVM-` + the LV's `lvid` (VG id then LV id, 32 characters each, no dashes), then
//!   `-LAYER` when there is a layer. `lib/activate/dev_manager.c` uses the layers `real` (origin
//!   under a snapshot) and `cow` (the COW store); the snapshot and merge tables refer to
//!   `build_dm_uuid(origin, "real")` and `build_dm_uuid(cow_lv, "cow")`.
//! - `lib/id/id.c`: an id is 32 characters of `0-9a-zA-Z!#`; `id_write_format` prints groups of
//!   6-4-4-4-4-4-6 joined by `-` (an id starting with `#` is printed as is); `id_read_format`
//!   drops every `-` wherever it is and needs exactly 32 characters left.
//! - `lib/misc/lvm-string.c` `_validate_name`: non-empty, not starting with `-`, not `.`/`..`,
//!   only `A-Za-z0-9._-+`, at most 127 characters.
//!
//! LVM names only use characters that libdm's name mangling (`libdm-common.c`) leaves alone, so
//! the dm name is the plain string here. The kernel limits names to 127 bytes and UUIDs to 128.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// The prefix of every LVM device-mapper UUID.
pub const UUID_PREFIX: &str = "LVM-";
/// Length of an LVM id without dashes.
pub const ID_LEN: usize = 32;
/// Longest VG or LV name LVM accepts (`NAME_LEN` 128 including the NUL).
pub const NAME_MAX: usize = 127;
/// Longest device-mapper name the kernel accepts (`DM_NAME_LEN` 128 including the NUL).
pub const DM_NAME_MAX: usize = 127;
/// Longest device-mapper UUID the kernel accepts (`DM_UUID_LEN` 129 including the NUL).
pub const DM_UUID_MAX: usize = 128;

const ID_GROUPS: [usize; 7] = [6, 4, 4, 4, 4, 4, 6];

/// Errors from building or reading LVM device names, UUIDs and ids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// A VG or LV name LVM itself would refuse.
    #[error("invalid lvm name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    /// An LVM id that is not 32 characters of LVM's alphabet.
    #[error("invalid lvm id {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str },
    /// A device-mapper name longer than the kernel allows.
    #[error("device-mapper name {name:?} is {len} bytes, the kernel allows {DM_NAME_MAX}")]
    DmNameTooLong { name: String, len: usize },
    /// A device-mapper name that is not `VG-LV[-LAYER]` in LVM's quoting.
    #[error("device-mapper name {name:?} is not an lvm name: {reason}")]
    NotLvmName { name: String, reason: &'static str },
    /// A device-mapper UUID that is not `LVM-` + two ids + optional layer.
    #[error("device-mapper uuid {uuid:?} is not an lvm uuid: {reason}")]
    NotLvmUuid { uuid: String, reason: &'static str },
}

/// An LVM id (PV, VG or LV), stored without dashes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LvmId([u8; ID_LEN]);

fn is_id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'!' || b == b'#'
}

impl LvmId {
    /// Reads an id the way LVM's `id_read_format` does: every `-` is dropped, wherever it is.
    pub fn parse(text: &str) -> Result<Self, LayoutError> {
        let bad = |reason| LayoutError::InvalidId {
            id: text.to_owned(),
            reason,
        };
        let mut out = [0u8; ID_LEN];
        let mut n = 0;
        for b in text.bytes().filter(|&b| b != b'-') {
            if n == ID_LEN {
                return Err(bad("more than 32 characters"));
            }
            if !is_id_char(b) {
                return Err(bad("character outside 0-9a-zA-Z!#"));
            }
            out[n] = b;
            n += 1;
        }
        if n != ID_LEN {
            return Err(bad("fewer than 32 characters"));
        }
        Ok(LvmId(out))
    }

    /// Reads exactly 32 id characters with no dashes (the form inside dm UUIDs and PV headers).
    pub fn from_undashed(text: &str) -> Result<Self, LayoutError> {
        if text.contains('-') {
            return Err(LayoutError::InvalidId {
                id: text.to_owned(),
                reason: "dash in an undashed id",
            });
        }
        Self::parse(text)
    }

    /// The 32 characters without dashes.
    pub fn as_str(&self) -> &str {
        // The constructor only stores ASCII, so this cannot fail; fall back to "" rather than panic.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for LvmId {
    /// LVM's `id_write_format`: 6-4-4-4-4-4-6, or as is when the id starts with `#`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.as_str();
        if s.starts_with('#') {
            return f.write_str(s);
        }
        let mut at = 0;
        for (i, len) in ID_GROUPS.iter().enumerate() {
            if i > 0 {
                f.write_str("-")?;
            }
            f.write_str(&s[at..at + len])?;
            at += len;
        }
        Ok(())
    }
}

impl fmt::Debug for LvmId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LvmId({self})")
    }
}

impl FromStr for LvmId {
    type Err = LayoutError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A device-mapper layer below an LV's top-level device.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Layer {
    /// `-real`: the origin's own segments under `snapshot-origin` / `snapshot-merge`.
    Real,
    /// `-cow`: the COW store's segments under `snapshot` / `snapshot-merge`.
    Cow,
    /// Any other LVM layer (`tpool`, `tdata`, `cdata`, ...), recognised but not built by rewind.
    Other(String),
}

impl Layer {
    /// The layer's suffix without the dash.
    pub fn as_str(&self) -> &str {
        match self {
            Layer::Real => "real",
            Layer::Cow => "cow",
            Layer::Other(s) => s,
        }
    }

    fn from_suffix(s: &str) -> Layer {
        match s {
            "real" => Layer::Real,
            "cow" => Layer::Cow,
            other => Layer::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks a VG or LV name against LVM's `_validate_name`.
pub fn validate_name(name: &str) -> Result<(), LayoutError> {
    let bad = |reason| {
        Err(LayoutError::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.starts_with('-') {
        return bad("starts with '-'");
    }
    if name == "." || name == ".." {
        return bad("is '.' or '..'");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+'))
    {
        return bad("character outside A-Za-z0-9._-+");
    }
    if name.len() > NAME_MAX {
        return bad("longer than 127 characters");
    }
    Ok(())
}

/// A logical volume named as `VG/LV`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct LvRef {
    pub vg: String,
    pub lv: String,
}

impl std::fmt::Display for LvRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.vg, self.lv)
    }
}

impl LvRef {
    /// Parses `VG/LV` (a leading `/dev/` or `/dev/mapper`-free path form `/dev/VG/LV` is
    /// accepted too, as dracut's `rd.lvm.lv=` documentation allows).
    pub fn parse(text: &str) -> Result<LvRef, String> {
        let text = text.strip_prefix("/dev/").unwrap_or(text);
        let (vg, lv) = text
            .split_once('/')
            .ok_or_else(|| format!("'{text}' is not of the form VG/LV"))?;
        name_reason(vg).map_err(|e| format!("volume group name '{vg}' {e}"))?;
        name_reason(lv).map_err(|e| format!("logical volume name '{lv}' {e}"))?;
        Ok(LvRef {
            vg: vg.to_owned(),
            lv: lv.to_owned(),
        })
    }
}

/// LVM's rules for VG and LV names, with the reason as a short phrase.
pub fn name_reason(name: &str) -> Result<(), &'static str> {
    match validate_name(name) {
        Ok(()) => Ok(()),
        Err(LayoutError::InvalidName { reason, .. }) => Err(reason),
        Err(_) => Err("is not a valid name"),
    }
}

fn push_quoted(out: &mut String, s: &str) {
    for c in s.chars() {
        out.push(c);
        if c == '-' {
            out.push('-');
        }
    }
}

/// The device-mapper name LVM gives an LV (or one of its layers): `VG-LV[-LAYER]`, dashes doubled.
pub fn dm_name(vg: &str, lv: &str, layer: Option<&Layer>) -> Result<String, LayoutError> {
    validate_name(vg)?;
    validate_name(lv)?;
    let mut out = String::with_capacity(vg.len() + lv.len() + 8);
    push_quoted(&mut out, vg);
    out.push('-');
    push_quoted(&mut out, lv);
    if let Some(layer) = layer {
        // libdm leaves out the dash for layers starting with '_' (e.g. `_mlog`).
        if !layer.as_str().starts_with('_') {
            out.push('-');
        }
        push_quoted(&mut out, layer.as_str());
    }
    if out.len() > DM_NAME_MAX {
        let len = out.len();
        return Err(LayoutError::DmNameTooLong { name: out, len });
    }
    Ok(out)
}

/// The device-mapper UUID LVM gives an LV (or a layer): `LVM-` + VG id + LV id [+ `-LAYER`].
pub fn dm_uuid(vg_id: &LvmId, lv_id: &LvmId, layer: Option<&Layer>) -> String {
    LvmUuid {
        vg_id: *vg_id,
        lv_id: *lv_id,
        layer: layer.cloned(),
    }
    .to_string()
}

/// `/dev/mapper/NAME`, the node (or udev's symlink) of a device-mapper device.
pub fn mapper_path(dm_name: &str) -> PathBuf {
    PathBuf::from("/dev/mapper").join(dm_name)
}

/// `/dev/VG/LV`, the symlink LVM's udev rules make for a visible LV.
pub fn lv_path(vg: &str, lv: &str) -> PathBuf {
    PathBuf::from("/dev").join(vg).join(lv)
}

/// The name and UUID of one device-mapper device of an LV.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LvDevice {
    pub name: String,
    pub uuid: String,
}

impl LvDevice {
    /// The name and UUID LVM would use for `vg/lv` (with ids) at `layer`.
    pub fn new(
        vg: &str,
        vg_id: &LvmId,
        lv: &str,
        lv_id: &LvmId,
        layer: Option<&Layer>,
    ) -> Result<Self, LayoutError> {
        Ok(LvDevice {
            name: dm_name(vg, lv, layer)?,
            uuid: dm_uuid(vg_id, lv_id, layer),
        })
    }
}

/// A device-mapper name split into LVM's parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LvmName {
    pub vg: String,
    pub lv: String,
    /// The layer suffix, if any (`real`, `cow`, ...), unquoted.
    pub layer: Option<String>,
}

/// Splits a device-mapper name the way `dm_split_lvm_name` does, but strictly: the name must
/// have a VG and an LV part, each a valid LVM name, and at most one layer after them.
pub fn split_dm_name(name: &str) -> Result<LvmName, LayoutError> {
    let bad = |reason| LayoutError::NotLvmName {
        name: name.to_owned(),
        reason,
    };
    let mut parts: Vec<String> = vec![String::new()];
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '-' {
            if chars.peek() == Some(&'-') {
                chars.next();
                parts.last_mut().ok_or_else(|| bad("empty"))?.push('-');
            } else {
                parts.push(String::new());
            }
        } else {
            parts.last_mut().ok_or_else(|| bad("empty"))?.push(c);
        }
    }
    let mut parts = parts.into_iter();
    let (vg, lv, layer) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(vg), Some(lv), layer, None) => (vg, lv, layer),
        (_, None, _, _) => return Err(bad("no unquoted '-' between vg and lv")),
        _ => return Err(bad("more than three components")),
    };
    if validate_name(&vg).is_err() {
        return Err(bad("vg part is not a valid lvm name"));
    }
    if validate_name(&lv).is_err() {
        return Err(bad("lv part is not a valid lvm name"));
    }
    if let Some(layer) = &layer
        && validate_name(layer).is_err()
    {
        return Err(bad("layer part is not a valid lvm name"));
    }
    Ok(LvmName { vg, lv, layer })
}

/// A device-mapper UUID of an LVM device, split.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LvmUuid {
    pub vg_id: LvmId,
    pub lv_id: LvmId,
    pub layer: Option<Layer>,
}

impl LvmUuid {
    /// Recognises `LVM-` + 32 + 32 [+ `-LAYER`]. Old pre-`LVM-` UUIDs (LVM2 before 2.02.x) are
    /// not recognised.
    pub fn parse(uuid: &str) -> Result<Self, LayoutError> {
        let bad = |reason| LayoutError::NotLvmUuid {
            uuid: uuid.to_owned(),
            reason,
        };
        if uuid.len() > DM_UUID_MAX {
            return Err(bad("longer than 128 bytes"));
        }
        let rest = uuid
            .strip_prefix(UUID_PREFIX)
            .ok_or_else(|| bad("no LVM- prefix"))?;
        if !rest.is_ascii() {
            return Err(bad("not ascii"));
        }
        let ids = rest
            .get(..2 * ID_LEN)
            .ok_or_else(|| bad("shorter than two ids"))?;
        let tail = &rest[ids.len()..];
        let vg_id = LvmId::from_undashed(&ids[..ID_LEN]).map_err(|_| bad("bad vg id"))?;
        let lv_id = LvmId::from_undashed(&ids[ID_LEN..]).map_err(|_| bad("bad lv id"))?;
        let layer = match tail {
            "" => None,
            t => {
                let suffix = t
                    .strip_prefix('-')
                    .ok_or_else(|| bad("no '-' before the layer"))?;
                if suffix.is_empty()
                    || !suffix
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    return Err(bad("bad layer suffix"));
                }
                Some(Layer::from_suffix(suffix))
            }
        };
        Ok(LvmUuid {
            vg_id,
            lv_id,
            layer,
        })
    }
}

impl fmt::Display for LvmUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{UUID_PREFIX}{}{}",
            self.vg_id.as_str(),
            self.lv_id.as_str()
        )?;
        if let Some(layer) = &self.layer {
            write!(f, "-{layer}")?;
        }
        Ok(())
    }
}

impl FromStr for LvmUuid {
    type Err = LayoutError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const VGID: &str = "Zq3b4G-1fQx-Aa0b-Cc1d-Ee2f-Gg3h-Hh4iJk";
    const LVID: &str = "abcdef-ghij-klmn-opqr-stuv-wxyz-012345";

    fn ids() -> (LvmId, LvmId) {
        (LvmId::parse(VGID).unwrap(), LvmId::parse(LVID).unwrap())
    }

    #[test]
    fn id_round_trip_and_undashed() {
        let (vg, lv) = ids();
        assert_eq!(vg.to_string(), VGID);
        assert_eq!(lv.as_str(), "abcdefghijklmnopqrstuvwxyz012345");
        assert_eq!(LvmId::from_undashed(lv.as_str()).unwrap(), lv);
        // LVM drops dashes wherever they are.
        assert_eq!(
            LvmId::parse("abcdefghij-klmnopqrstuvwxyz012345-").unwrap(),
            lv
        );
    }

    #[test]
    fn id_hash_prefix_prints_as_is() {
        let id = LvmId::parse("#abcdefghijklmnopqrstuvwxyz01234").unwrap();
        assert_eq!(id.to_string(), "#abcdefghijklmnopqrstuvwxyz01234");
    }

    #[test]
    fn id_errors() {
        for bad in [
            "",
            "abc",
            "abcdefghijklmnopqrstuvwxyz0123456",
            "abcdefghijklmnopqrstuvwxyz01234$",
            "abcdefghijklmnopqrstuvwxyz01234é",
        ] {
            assert!(
                matches!(LvmId::parse(bad), Err(LayoutError::InvalidId { .. })),
                "{bad}"
            );
        }
        assert!(LvmId::from_undashed(LVID).is_err());
        let e = LvmId::parse("abc").unwrap_err().to_string();
        assert_eq!(e, "invalid lvm id \"abc\": fewer than 32 characters");
    }

    #[test]
    fn names_plain_and_layers() {
        assert_eq!(dm_name("vg", "root", None).unwrap(), "vg-root");
        assert_eq!(
            dm_name("vg", "root", Some(&Layer::Real)).unwrap(),
            "vg-root-real"
        );
        assert_eq!(
            dm_name("vg", "pre", Some(&Layer::Cow)).unwrap(),
            "vg-pre-cow"
        );
        assert_eq!(
            dm_name("vg", "lv", Some(&Layer::Other("_mlog".into()))).unwrap(),
            "vg-lv_mlog"
        );
    }

    #[test]
    fn names_with_dashes_are_doubled() {
        assert_eq!(
            dm_name("my-vg", "my-root", None).unwrap(),
            "my--vg-my--root"
        );
        assert_eq!(
            dm_name("a-", "b--c", Some(&Layer::Cow)).unwrap(),
            "a---b----c-cow"
        );
    }

    /// Golden values printed by stock LVM 2.03.16 (`lvs -o vg_name,lv_name,lv_dm_path,lv_path,
    /// vg_uuid,lv_uuid`) for a VG made on a loop device with activation disabled.
    #[test]
    fn matches_stock_lvm() {
        for (vg, lv, dm_path, path) in [
            (
                "my-vg-",
                "a--b-c",
                "/dev/mapper/my--vg---a----b--c",
                "/dev/my-vg-/a--b-c",
            ),
            (
                "my-vg-",
                "root",
                "/dev/mapper/my--vg---root",
                "/dev/my-vg-/root",
            ),
        ] {
            assert_eq!(
                mapper_path(&dm_name(vg, lv, None).unwrap()),
                PathBuf::from(dm_path)
            );
            assert_eq!(lv_path(vg, lv), PathBuf::from(path));
            let parts = split_dm_name(dm_path.trim_start_matches("/dev/mapper/")).unwrap();
            assert_eq!((parts.vg.as_str(), parts.lv.as_str()), (vg, lv));
        }
        for id in [
            "95mWER-7NtP-vwEE-38fG-8iaZ-aabH-uEm0Ct",
            "5weu2p-FdGC-H2i5-GjnG-IDOx-dq1W-3sHtk6",
        ] {
            assert_eq!(LvmId::parse(id).unwrap().to_string(), id);
        }
    }

    #[test]
    fn name_errors() {
        assert!(matches!(
            dm_name("", "lv", None),
            Err(LayoutError::InvalidName { .. })
        ));
        assert!(dm_name("vg", "-lv", None).is_err());
        assert!(dm_name("vg", "..", None).is_err());
        assert!(dm_name("vg", "a b", None).is_err());
        assert!(dm_name("vg", "a/b", None).is_err());
        let long = "x".repeat(100);
        assert!(matches!(
            dm_name(&long, &long, None),
            Err(LayoutError::DmNameTooLong { len: 201, .. })
        ));
        assert!(validate_name(&"x".repeat(127)).is_ok());
        assert!(validate_name(&"x".repeat(128)).is_err());
    }

    #[test]
    fn split_inverts_build() {
        for (vg, lv, layer) in [
            ("vg", "root", None),
            ("my-vg", "my-root", Some(Layer::Real)),
            ("a-", "b--c", Some(Layer::Cow)),
            ("vg-", "-x-".trim_start_matches('-'), None),
            ("v.g+_", "l_v.+", None),
        ] {
            let name = dm_name(vg, lv, layer.as_ref()).unwrap();
            let parts = split_dm_name(&name).unwrap();
            assert_eq!(parts.vg, vg, "{name}");
            assert_eq!(parts.lv, lv, "{name}");
            assert_eq!(parts.layer.as_deref(), layer.as_ref().map(Layer::as_str));
        }
    }

    #[test]
    fn split_errors() {
        for bad in [
            "", "novg", "vg-", "-lv", "vg--lv", "a-b-c-d", "vg-lv-", "vg- lv",
        ] {
            assert!(
                matches!(split_dm_name(bad), Err(LayoutError::NotLvmName { .. })),
                "{bad:?}"
            );
        }
        // a name ending in a doubled dash is a valid LV name ending in '-'
        assert_eq!(split_dm_name("vg-lv---real").unwrap().lv, "lv-");
        assert_eq!(split_dm_name("vg-lv--").unwrap().lv, "lv-");
    }

    #[test]
    fn uuid_build_and_parse() {
        let (vg, lv) = ids();
        let top = dm_uuid(&vg, &lv, None);
        assert_eq!(
            top,
            "LVM-Zq3b4G1fQxAa0bCc1dEe2fGg3hHh4iJkabcdefghijklmnopqrstuvwxyz012345"
        );
        assert_eq!(top.len(), 68);
        assert_eq!(dm_uuid(&vg, &lv, Some(&Layer::Real)), format!("{top}-real"));
        let parsed = LvmUuid::parse(&format!("{top}-cow")).unwrap();
        assert_eq!(parsed.vg_id, vg);
        assert_eq!(parsed.lv_id, lv);
        assert_eq!(parsed.layer, Some(Layer::Cow));
        assert_eq!(parsed.to_string(), format!("{top}-cow"));
        let other = LvmUuid::parse(&format!("{top}-tdata")).unwrap();
        assert_eq!(other.layer, Some(Layer::Other("tdata".into())));
        let dev = LvDevice::new("vg", &vg, "root", &lv, Some(&Layer::Real)).unwrap();
        assert_eq!(dev.name, "vg-root-real");
        assert_eq!(dev.uuid, format!("{top}-real"));
    }

    #[test]
    fn uuid_errors() {
        let (vg, lv) = ids();
        let top = dm_uuid(&vg, &lv, None);
        for bad in [
            String::new(),
            "CRYPT-LUKS2-abc".into(),
            "LVM-short".into(),
            format!("{top}x"),
            format!("{top}-"),
            format!("{top}-re al"),
            top.replacen('Z', "-", 1),
            format!("lvm-{}", &top[4..]),
            format!("{top}-{}", "x".repeat(100)),
        ] {
            assert!(
                matches!(LvmUuid::parse(&bad), Err(LayoutError::NotLvmUuid { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn paths() {
        assert_eq!(
            mapper_path("my--vg-root"),
            PathBuf::from("/dev/mapper/my--vg-root")
        );
        assert_eq!(lv_path("my-vg", "root"), PathBuf::from("/dev/my-vg/root"));
    }

    #[test]
    fn no_panic_on_odd_input() {
        // 64 bytes after the prefix, with a two-byte character across the id boundary
        let multibyte = format!("LVM-{}é{}", "a".repeat(31), "b".repeat(31));
        assert_eq!(multibyte.len(), 4 + 64);
        for s in [
            "-",
            "--",
            "---",
            "\u{0}",
            "é-é",
            "LVM-",
            "LVM-é",
            "a-\u{FEFF}",
            &multibyte,
        ] {
            let _ = split_dm_name(s);
            let _ = LvmUuid::parse(s);
            let _ = LvmId::parse(s);
        }
    }

    /// Deterministic xorshift, so the property tests need no extra crate.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn property_generated_names_split_back() {
        let alphabet: Vec<char> = "ab-_.+-9Z-".chars().collect();
        let mut st = 0x1234_5678_9abc_def0u64;
        let word = |st: &mut u64| -> String {
            let len = 1 + next(st) % 20;
            (0..len)
                .map(|_| alphabet[(next(st) % alphabet.len() as u64) as usize])
                .collect()
        };
        let mut checked = 0;
        for _ in 0..20000 {
            let (vg, lv) = (word(&mut st), word(&mut st));
            let layer = match next(&mut st) % 3 {
                0 => None,
                1 => Some(Layer::Real),
                _ => Some(Layer::Cow),
            };
            let Ok(name) = dm_name(&vg, &lv, layer.as_ref()) else {
                assert!(validate_name(&vg).is_err() || validate_name(&lv).is_err());
                continue;
            };
            let parts = split_dm_name(&name).unwrap();
            assert_eq!(
                (parts.vg.as_str(), parts.lv.as_str()),
                (vg.as_str(), lv.as_str())
            );
            assert_eq!(parts.layer.as_deref(), layer.as_ref().map(Layer::as_str));
            checked += 1;
        }
        assert!(checked > 1000);
    }

    #[test]
    fn property_no_panic_on_generated_garbage() {
        let alphabet: Vec<char> = "LVM-ab#!é0\u{0}".chars().collect();
        let mut st = 99u64;
        for _ in 0..20000 {
            let len = next(&mut st) % 90;
            let s: String = (0..len)
                .map(|_| alphabet[(next(&mut st) % alphabet.len() as u64) as usize])
                .collect();
            let _ = split_dm_name(&s);
            let _ = LvmUuid::parse(&s);
            let _ = LvmId::parse(&s);
            if let Ok(u) = LvmUuid::parse(&s) {
                assert_eq!(u.to_string(), s);
            }
        }
    }
}
