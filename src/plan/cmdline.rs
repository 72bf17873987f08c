//! The kernel command line: `rd.rewind=`, `rd.rewind.debug` and `rd.lvm.lv=`.
//!
//! Parsing never fails as a whole: a word rewind cannot use is reported in `problems` and
//! ignored, so a typo on the command line leaves the boot as if rewind were absent
//! (invariant 3), with a message saying what was ignored.

use crate::lvm::layout::{LvRef, name_reason};
use serde::Serialize;

/// What `rd.rewind=` asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum RollbackTarget {
    /// `rd.rewind=VG/SNAPSHOT`: merge this snapshot into its origin.
    Snapshot(LvRef),
    /// `rd.rewind=NAME` without a slash: every snapshot of the snapshot set NAME.
    Set(String),
}

/// What rewind takes from the kernel command line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cmdline {
    /// `rd.rewind=0` (or `no`, `off`, `false`): rewind does nothing at this boot.
    pub disabled: bool,
    /// `rd.rewind.debug`: log every step.
    pub debug: bool,
    /// Every `rd.rewind=` target, in order, without duplicates.
    pub rollbacks: Vec<RollbackTarget>,
    /// Every `rd.lvm.lv=` volume, in order, without duplicates.
    pub activate: Vec<LvRef>,
    /// Words that looked meant for rewind but could not be used; each says why.
    pub problems: Vec<String>,
}

impl Cmdline {
    /// Parses the contents of `/proc/cmdline`.
    pub fn parse(text: &str) -> Cmdline {
        let mut out = Cmdline::default();
        for word in split_words(text) {
            let (key, value) = match word.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (word.as_str(), None),
            };
            match (key, value) {
                ("rd.rewind", Some(v)) => out.add_rollbacks(v),
                ("rd.rewind", None) => out
                    .problems
                    .push("rd.rewind needs a value (VG/SNAPSHOT, a set name, or 0)".into()),
                ("rd.rewind.debug", None) => out.debug = true,
                ("rd.rewind.debug", Some(v)) => out.debug = !is_off(v),
                ("rd.lvm.lv", Some(v)) => match LvRef::parse(v) {
                    Ok(lv) if !out.activate.contains(&lv) => out.activate.push(lv),
                    Ok(_) => {}
                    Err(e) => out.problems.push(format!("rd.lvm.lv ignored: {e}")),
                },
                _ if key.starts_with("rd.rewind.") => {
                    out.problems.push(format!("unknown option '{key}' ignored"))
                }
                _ => {}
            }
        }
        out
    }

    fn add_rollbacks(&mut self, value: &str) {
        if is_off(value) {
            self.disabled = true;
            return;
        }
        for item in value.split(',').filter(|s| !s.is_empty()) {
            let target = if item.contains('/') {
                LvRef::parse(item).map(RollbackTarget::Snapshot)
            } else {
                name_reason(item)
                    .map(|()| RollbackTarget::Set(item.to_owned()))
                    .map_err(|e| format!("snapshot set name '{item}' {e}"))
            };
            match target {
                Ok(t) if !self.rollbacks.contains(&t) => self.rollbacks.push(t),
                Ok(_) => {}
                Err(e) => self.problems.push(format!("rd.rewind ignored: {e}")),
            }
        }
    }
}

fn is_off(value: &str) -> bool {
    matches!(value, "0" | "no" | "off" | "false")
}

/// Splits a command line into words the way the kernel does (`lib/cmdline.c`, `next_arg`):
/// whitespace separates words, and double quotes group, wherever they appear in a word.
fn split_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    let mut has_word = false;
    for c in text.chars() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                has_word = true;
            }
            c if c.is_whitespace() && !in_quotes => {
                if has_word {
                    words.push(std::mem::take(&mut current));
                    has_word = false;
                }
            }
            c => {
                current.push(c);
                has_word = true;
            }
        }
    }
    if has_word {
        words.push(current);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lv(vg: &str, lv: &str) -> LvRef {
        LvRef {
            vg: vg.into(),
            lv: lv.into(),
        }
    }

    #[test]
    fn empty_cmdline_asks_for_nothing() {
        let c = Cmdline::parse("BOOT_IMAGE=/vmlinuz root=/dev/vg0/root ro quiet\n");
        assert_eq!(c, Cmdline::default());
    }

    #[test]
    fn rollback_of_one_snapshot() {
        let c = Cmdline::parse("root=/dev/vg0/root rd.rewind=vg0/pre quiet");
        assert_eq!(
            c.rollbacks,
            vec![RollbackTarget::Snapshot(lv("vg0", "pre"))]
        );
        assert!(!c.disabled && !c.debug && c.problems.is_empty());
    }

    #[test]
    fn several_rollbacks_by_repetition_and_comma_without_duplicates() {
        let c = Cmdline::parse("rd.rewind=vg0/pre,data/pre-up rd.rewind=vg0/pre rd.rewind=nightly");
        assert_eq!(
            c.rollbacks,
            vec![
                RollbackTarget::Snapshot(lv("vg0", "pre")),
                RollbackTarget::Snapshot(lv("data", "pre-up")),
                RollbackTarget::Set("nightly".into()),
            ]
        );
    }

    #[test]
    fn zero_disables_whatever_else_is_there() {
        for off in ["0", "no", "off", "false"] {
            let c = Cmdline::parse(&format!("rd.rewind=vg0/pre rd.rewind={off}"));
            assert!(c.disabled, "rd.rewind={off}");
        }
    }

    #[test]
    fn debug_flag_with_and_without_value() {
        assert!(Cmdline::parse("rd.rewind.debug").debug);
        assert!(Cmdline::parse("rd.rewind.debug=1").debug);
        assert!(!Cmdline::parse("rd.rewind.debug=0").debug);
    }

    #[test]
    fn lvm_volumes_to_activate() {
        let c = Cmdline::parse("rd.lvm.lv=vg0/root rd.lvm.lv=/dev/vg0/usr rd.lvm.lv=vg0/root");
        assert_eq!(c.activate, vec![lv("vg0", "root"), lv("vg0", "usr")]);
    }

    #[test]
    fn bad_words_are_reported_and_ignored() {
        let c = Cmdline::parse(
            "rd.rewind=vg0/ rd.rewind=-x rd.rewind=vg0/a/b rd.rewind rd.rewind.bogus=1 rd.lvm.lv=root",
        );
        assert!(c.rollbacks.is_empty() && c.activate.is_empty() && !c.disabled);
        assert_eq!(c.problems.len(), 6, "{:?}", c.problems);
        assert!(c.problems[0].contains("logical volume name '' empty"));
        assert!(c.problems[1].contains("'-x' starts with '-'"));
        assert!(c.problems[2].contains("'a/b' character outside"));
        assert!(c.problems[3].contains("needs a value"));
        assert!(c.problems[4].contains("rd.rewind.bogus"));
        assert!(c.problems[5].contains("not of the form VG/LV"));
    }

    #[test]
    fn quotes_group_words_like_the_kernel() {
        assert_eq!(
            split_words("a \"b c\" d=\"e f\" \"\"  g"),
            vec!["a", "b c", "d=e f", "", "g"]
        );
        let c = Cmdline::parse("foo=\"x rd.rewind=vg0/pre\" rd.rewind=\"vg0/root-snap\"");
        assert_eq!(
            c.rollbacks,
            vec![RollbackTarget::Snapshot(lv("vg0", "root-snap"))]
        );
    }

    #[test]
    fn lvm_name_rules() {
        assert!(name_reason("a.b+c_d-e9").is_ok());
        assert!(name_reason(&"x".repeat(127)).is_ok());
        assert!(name_reason(&"x".repeat(128)).is_err());
        for bad in ["", ".", "..", "-a", "a b", "ä"] {
            assert!(name_reason(bad).is_err(), "{bad:?}");
        }
    }
}
