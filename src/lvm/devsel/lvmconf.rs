//! What lvm.conf (and lvmlocal.conf) say about devices: the filters (`devices/filter`,
//! `devices/global_filter`) in LVM's regex dialect, and the devices file's settings.

use super::DevselError;
use super::rx::{DOLLAR, HAT, Program};
use crate::lvm::lvmrules::{SystemIds, system_id_from_file, system_id_from_string};
use crate::lvm::text::{self, Section, Value};

// ---------------------------------------------------------------------------------------------
// Filters

/// One `a|regex|` or `r|regex|` pattern.
#[derive(Debug, Clone)]
struct Pattern {
    accept: bool,
    text: String,
    re: Program,
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
    let re = Program::lvm(&b[2..b.len() - 1])?;
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

    /// `filter` or `global_filter`.
    pub fn key(&self) -> &'static str {
        self.key
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
    /// `global/system_id_source` (`None`: not set, LVM's default "none").
    pub system_id_source: Option<String>,
    /// `global/system_id_file` (for the source "file").
    pub system_id_file: Option<String>,
    /// `local/system_id` (lvmlocal.conf, for the source "lvmlocal").
    pub local_system_id: Option<String>,
    /// `local/extra_system_ids`.
    pub extra_system_ids: Vec<String>,
    /// `global/thin_check_executable` (`None`: not set; `""` switches the check off).
    pub thin_check_executable: Option<String>,
    /// `global/thin_check_options` (`None`: not set, LVM's defaults).
    pub thin_check_options: Option<Vec<String>>,
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
        self.apply_system_id(root);
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

    /// The system ID settings (`global/system_id_source`, `global/system_id_file`,
    /// `local/system_id`, `local/extra_system_ids`) and the thin pool check's
    /// (`global/thin_check_executable`, `global/thin_check_options`); a value that is not a string is ignored,
    /// as LVM's `find_config_tree_str` does.
    fn apply_system_id(&mut self, root: &Section) {
        if let Some(g) = root.section("global") {
            if let Some(v) = g.str("system_id_source") {
                self.system_id_source = Some(v.to_owned());
            }
            if let Some(v) = g.str("system_id_file") {
                self.system_id_file = Some(v.to_owned());
            }
            if let Some(v) = g.str("thin_check_executable") {
                self.thin_check_executable = Some(v.to_owned());
            }
            match g.value("thin_check_options") {
                Some(Value::Str(s)) => self.thin_check_options = Some(vec![s.clone()]),
                Some(Value::Array(a)) => {
                    self.thin_check_options = Some(
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect(),
                    );
                }
                _ => {}
            }
        }
        if let Some(l) = root.section("local") {
            if let Some(v) = l.str("system_id") {
                self.local_system_id = Some(v.to_owned());
            }
            if let Some(v) = l.value("extra_system_ids") {
                self.extra_system_ids = match v {
                    Value::Str(s) => vec![s.clone()],
                    Value::Array(a) => a
                        .iter()
                        .filter_map(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    _ => Vec::new(),
                };
            }
        }
    }

    /// This host's system IDs as LVM works them out (`lib/commands/toolcontext.c`,
    /// `_init_system_id`, `_system_id_from_source`): from the host name (`uname`), lvmlocal.conf
    /// (`lvmlocal`), `ETC/machine-id` (`machineid`) or a file (`file`). `nodename` is the
    /// host name; `read` reads a file (an absolute path, or `machine-id` under LVM's `etc`).
    /// A source that gives nothing (or one rewind cannot compute, `appmachineid`) leaves the
    /// local ID unknown: LVM then reads only VGs without a system ID, and so does rewind.
    pub fn system_ids(
        &self,
        nodename: Option<&str>,
        read: &dyn Fn(&str) -> Option<Vec<u8>>,
    ) -> SystemIds {
        let source = self
            .system_id_source
            .as_deref()
            .unwrap_or("none")
            .to_ascii_lowercase();
        let local = match source.as_str() {
            "none" => None,
            "uname" => nodename.and_then(system_id_from_string),
            "lvmlocal" => self
                .local_system_id
                .as_deref()
                .and_then(system_id_from_string),
            "machineid" | "machine-id" => {
                read("/etc/machine-id").and_then(|b| system_id_from_file(&b))
            }
            "file" => self
                .system_id_file
                .as_deref()
                .and_then(read)
                .and_then(|b| system_id_from_file(&b)),
            _ => None,
        };
        SystemIds {
            local,
            extra: self.extra_system_ids.clone(),
        }
    }

    /// Reads one config file's text over `self` ([`LvmConf::apply`]). Host tags are refused
    /// when `tagfile` finds an `lvm_TAG.conf` beside it (rewind does not follow tag configs).
    pub fn read(
        &mut self,
        bytes: &[u8],
        path: &str,
        tagfile: impl FnOnce() -> Option<String>,
    ) -> Result<(), DevselError> {
        let tree = text::parse_config(bytes).map_err(|source| DevselError::Syntax {
            path: path.to_owned(),
            source,
        })?;
        if Self::has_tags(&tree)
            && let Some(tagfile) = tagfile()
        {
            return Err(DevselError::HostTags {
                path: path.to_owned(),
                tagfile,
            });
        }
        self.apply(&tree, path)
    }

    /// The devices file's name inside `ETC/devices/`, unless its use is switched off
    /// (`use_devicesfile = 0`).
    pub fn devices_file_name(&self) -> Option<&str> {
        (self.use_devicesfile != Some(false))
            .then(|| self.devicesfile.as_deref().unwrap_or("system.devices"))
    }

    /// Whether host tags may pull in `lvm_TAG.conf` files (`tags { hosttags = 1 }` or a tag
    /// section).
    fn has_tags(root: &Section) -> bool {
        root.section("tags").is_some_and(|t| {
            t.int("hosttags").is_some_and(|v| v != 0) || t.sections().next().is_some()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lvm::devsel::parse_devices_file;

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
    fn thin_check_settings() {
        let conf = |text: &str| {
            let mut c = LvmConf::default();
            c.read(text.as_bytes(), "lvm.conf", || None).expect("reads");
            c
        };
        let c = conf("global {\n}\n");
        assert_eq!(
            (c.thin_check_executable, c.thin_check_options),
            (None, None)
        );
        let c = conf(
            "global {\n\tthin_check_executable = \"\"\n\tthin_check_options = [ \"-q\", \"--skip-mappings\" ]\n}\n",
        );
        assert_eq!(c.thin_check_executable.as_deref(), Some(""));
        assert_eq!(
            c.thin_check_options,
            Some(vec!["-q".to_owned(), "--skip-mappings".to_owned()])
        );
        // lvmlocal.conf read after lvm.conf replaces a key.
        let mut c = conf("global { thin_check_executable = \"/usr/sbin/thin_check\" }\n");
        c.read(
            b"global { thin_check_executable = \"/opt/thin_check\" thin_check_options = \"-q\" }\n",
            "lvmlocal.conf",
            || None,
        )
        .expect("reads");
        assert_eq!(c.thin_check_executable.as_deref(), Some("/opt/thin_check"));
        assert_eq!(c.thin_check_options, Some(vec!["-q".to_owned()]));
    }

    #[test]
    fn system_ids_from_each_source() {
        let conf = |text: &str| {
            let mut c = LvmConf::default();
            c.read(text.as_bytes(), "lvm.conf", || None).expect("reads");
            c
        };
        let read = |p: &str| match p {
            "/etc/machine-id" => Some(b"0123abcd\n".to_vec()),
            "/etc/lvm/sysid" => Some(b"# mine\nhost-b # this one\n".to_vec()),
            _ => None,
        };
        let ids = |c: &LvmConf| c.system_ids(Some("web1.example"), &read);
        assert_eq!(ids(&LvmConf::default()), SystemIds::default());
        assert_eq!(
            ids(&conf("global { system_id_source = \"none\" }")),
            SystemIds::default()
        );
        assert_eq!(
            ids(&conf("global { system_id_source = \"uname\" }")).local,
            Some("web1.example".into())
        );
        assert_eq!(
            ids(&conf("global { system_id_source = \"machineid\" }")).local,
            Some("0123abcd".into())
        );
        assert_eq!(
            ids(&conf(
                "global { system_id_source = \"file\" system_id_file = \"/etc/lvm/sysid\" }"
            ))
            .local,
            Some("host-b".into())
        );
        let c = conf(
            "global { system_id_source = \"lvmlocal\" }\nlocal { system_id = \"x9\" extra_system_ids = [\"old\", \"\"] }",
        );
        assert_eq!(
            ids(&c),
            SystemIds {
                local: Some("x9".into()),
                extra: vec!["old".into()]
            }
        );
        // A source rewind cannot compute leaves the local ID unknown, as a failed one does.
        assert_eq!(
            ids(&conf("global { system_id_source = \"appmachineid\" }")).local,
            None
        );
        assert_eq!(
            conf("global { system_id_source = \"uname\" }")
                .system_ids(Some("localhost"), &read)
                .local,
            None
        );
    }
}
