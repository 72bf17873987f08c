//! The corrupt-disk corpus (issue 18): generated cases of damaged and unusual LVM2 disks, each
//! judged by stock LVM2 (the oracle) and by rewind, which must agree with LVM or refuse by one
//! of the deliberate rules listed in README.md ("Where rewind is stricter than LVM2"), and must
//! never panic, hang or write a byte.

pub mod cases;
pub mod image;
pub mod run;
pub mod templates;

use image::Disk;
use templates::Tpl;

/// The categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    Label,
    PvHeader,
    MdaHeader,
    Text,
    Snapshot,
    DiskSet,
}

/// A rule by which rewind deliberately refuses a VG that stock LVM2 reads (kind 3 of the
/// issue). Each one is listed, with its reason, in README.md; `id` is the text the README
/// section must contain, `blocking` pieces of rewind's refusal (one must appear in a message
/// that names the VG). A VG LVM reads only partially (PVs missing) may be refused for any
/// reason under the missing-PV rule: invariant 7 refuses it whatever else is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub id: &'static str,
    pub blocking: &'static [&'static str],
}

pub const DUPLICATE_PV: Rule = Rule {
    id: "a PV uuid on two devices",
    blocking: &["is on several devices"],
};
pub const CONFLICTING_TEXT: Rule = Rule {
    id: "two texts with one seqno",
    blocking: &["different metadata with the same seqno"],
};
pub const MISSING_PV: Rule = Rule {
    id: "a missing PV",
    blocking: &["is missing: no action"],
};
pub const CHUNK_SIZE: Rule = Rule {
    id: "a snapshot chunk size that is not a power of two from 4 KiB to 512 KiB",
    blocking: &["not a power of two between 8 and 1024 sectors"],
};
pub const NEGATIVE: Rule = Rule {
    id: "a negative number",
    blocking: &["non-negative integer", "no valid seqno"],
};
pub const BAD_NUMBER: Rule = Rule {
    id: "a number that is not wholly a number",
    blocking: &["bad number"],
};
pub const DUPLICATE_KEY: Rule = Rule {
    id: "a repeated key or section",
    blocking: &["duplicate key"],
};
pub const SLASH_KEY: Rule = Rule {
    id: "a key with a '/'",
    blocking: &["contains '/'"],
};
pub const SHARED_COW: Rule = Rule {
    id: "one COW store for two snapshots",
    blocking: &["is the cow of both"],
};
pub const TRUNCATED_AREA: Rule = Rule {
    id: "a metadata area the PV header places past the end of the device",
    blocking: &["lies outside the usable device"],
};
pub const TEXT_OUTSIDE_AREA: Rule = Rule {
    id: "a committed text that lies outside its metadata area",
    blocking: &["lies outside the area of"],
};
pub const TWO_MERGING: Rule = Rule {
    id: "two merging snapshots of one origin",
    blocking: &["has two merging snapshots"],
};

/// What the case must show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// rewind reads exactly the VGs (and LVs) stock LVM2 reads.
    Agree,
    /// stock LVM2 reads the case's VG; rewind refuses it by this rule (every other VG agrees).
    Stricter(Rule),
}

/// The disks of one case while it is being made, and the VG it is about.
pub struct Ctx {
    pub disks: Vec<Disk>,
    pub vg: String,
}

impl Ctx {
    /// The committed text of the first metadata area of the first disk.
    pub fn text(&self) -> Vec<u8> {
        self.disks[0].first_text()
    }

    /// Writes `t` as the committed text of every in-use metadata area of every disk.
    pub fn set_text(&mut self, t: &[u8]) {
        for d in &mut self.disks {
            if !d.mdas().is_empty() {
                d.write_text(t);
            }
        }
    }

    /// Edits the committed text (of every metadata area).
    pub fn edit(&mut self, f: impl FnOnce(Vec<u8>) -> Vec<u8>) {
        let t = f(self.text());
        self.set_text(&t);
    }

    /// Replaces the first `from` in the text with `to`.
    pub fn sub(&mut self, from: &str, to: &str) {
        self.edit(|t| image::replace(&t, from.as_bytes(), to.as_bytes()));
    }

    /// Replaces the first `from` after the first `after`.
    pub fn sub_after(&mut self, after: &str, from: &str, to: &str) {
        self.edit(|t| image::replace_after(&t, after.as_bytes(), from.as_bytes(), to.as_bytes()));
    }

    /// Replaces the first `from` in the text with `to`, as bytes (for bytes that are not UTF-8).
    pub fn sub_bytes(&mut self, from: &[u8], to: &[u8]) {
        self.edit(|t| image::replace(&t, from, to));
    }

    /// Removes the first line that starts with `prefix` after the first `after`.
    pub fn drop_line(&mut self, after: &str, prefix: &str) {
        self.edit(|t| {
            let a = image::find(&t, after.as_bytes()).expect("anchor");
            let needle = format!("\n{prefix}");
            let at = a + image::find(&t[a..], needle.as_bytes()).expect("line") + 1;
            let end = at + t[at..].iter().position(|&c| c == b'\n').expect("eol") + 1;
            let mut out = t[..at].to_vec();
            out.extend_from_slice(&t[end..]);
            out
        });
    }

    /// Replaces the first line that starts with `prefix` after the first `after` by `line`.
    pub fn set_line(&mut self, after: &str, prefix: &str, line: &str) {
        self.edit(|t| {
            let a = image::find(&t, after.as_bytes()).expect("anchor");
            let needle = format!("\n{prefix}");
            let at = a + image::find(&t[a..], needle.as_bytes()).expect("line") + 1;
            let end = at + t[at..].iter().position(|&c| c == b'\n').expect("eol");
            let mut out = t[..at].to_vec();
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(&t[end..]);
            out
        });
    }

    /// Adds `lvs` (LV sections, disk layout) at the start of `logical_volumes`.
    pub fn add_lvs(&mut self, lvs: &str) {
        self.sub(
            "logical_volumes {\n",
            &format!("logical_volumes {{\n\n{lvs}\n"),
        );
    }
}

type Edit = Box<dyn Fn(&mut Ctx) + Send + Sync>;

pub struct Case {
    pub name: String,
    pub category: Category,
    pub tpl: Tpl,
    pub edit: Edit,
    pub expect: Expect,
    /// Passed as `rd.rewind=` to `rewind plan` (a snapshot of the case's VG), if any.
    pub rollback: Option<&'static str>,
}

impl Case {
    pub fn new(
        category: Category,
        name: &str,
        tpl: Tpl,
        edit: impl Fn(&mut Ctx) + Send + Sync + 'static,
    ) -> Case {
        let rollback = matches!(tpl, Tpl::Basic | Tpl::Label0 | Tpl::Label3).then_some("pre");
        Case {
            name: name.to_owned(),
            category,
            tpl,
            edit: Box::new(edit),
            expect: Expect::Agree,
            rollback,
        }
    }

    pub fn stricter(mut self, rule: Rule) -> Case {
        self.expect = Expect::Stricter(rule);
        self
    }
}
