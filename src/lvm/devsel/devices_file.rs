//! LVM's devices file (`ETC/devices/system.devices`): its entries, the ids sysfs gives a device,
//! and which entry names which device (`device_ids_match`).

use std::collections::HashMap;

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

/// Whether a dm uuid has `prefix`, also behind a `partN-` prefix (kpartx).
pub fn dm_uuid_has_prefix(uuid: &str, prefix: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
