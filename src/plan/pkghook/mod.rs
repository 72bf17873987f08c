//! The package-manager hooks' pure part (docs/HOOKS.md): what a transaction changes, the set's
//! description, and whether the transaction ended as planned. The flow that acts on it is
//! `flow::pkghook`; where the hook runs is `system::place`.

pub mod apt;
pub mod dnf;
pub mod pacman;

/// One package a transaction changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub name: String,
    /// The version installed before (none: a new package).
    pub old: Option<String>,
    /// The version after (none: removed).
    pub new: Option<String>,
}

/// What a change does, for the description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Install,
    Upgrade,
    Downgrade,
    Reinstall,
    Remove,
    /// A target whose fate is not known before the transaction (pacman's hooks): named with
    /// the version it has.
    Target,
}

impl Change {
    /// What it does; `newer` compares the two versions (the package manager's own order,
    /// as it reported it).
    pub fn verb(&self, newer: Option<bool>) -> Verb {
        match (&self.old, &self.new) {
            (None, _) => Verb::Install,
            (Some(_), None) => Verb::Remove,
            (Some(o), Some(n)) if o == n => Verb::Reinstall,
            _ if newer == Some(false) => Verb::Downgrade,
            _ => Verb::Upgrade,
        }
    }
}

/// A change and its verb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub change: Change,
    pub verb: Verb,
}

impl Planned {
    /// `upgrade foo 1 -> 2`, `install bar 3`, `remove baz 4`.
    pub fn phrase(&self) -> String {
        let c = &self.change;
        let v = |x: &Option<String>| x.clone().unwrap_or_default();
        match self.verb {
            Verb::Install => format!("install {} {}", c.name, v(&c.new)),
            Verb::Upgrade => format!("upgrade {} {} -> {}", c.name, v(&c.old), v(&c.new)),
            Verb::Downgrade => format!("downgrade {} {} -> {}", c.name, v(&c.old), v(&c.new)),
            Verb::Reinstall => format!("reinstall {} {}", c.name, v(&c.new)),
            Verb::Remove => format!("remove {} {}", c.name, v(&c.old)),
            Verb::Target => match &c.old {
                Some(o) => format!("{} {o}", c.name),
                None => format!("{} (new)", c.name),
            },
        }
    }
}

/// How many description pieces (LV tags) the hook may use before the transaction: one is
/// left for the outcome the hook appends after it.
pub const PRE_PIECES: usize = crate::lvm::sets::DESC_PIECES - 1;

/// The set's description: `before apt (apt-get upgrade): upgrade foo 1 -> 2, install bar 3`,
/// with as many packages as fit in [`PRE_PIECES`] tags, then `and N more`.
pub fn description(manager: &str, command: Option<&str>, plan: &[Planned]) -> String {
    let head = match command {
        Some(c) if !c.is_empty() => format!("before {manager} ({c}): "),
        _ => format!("before {manager}: "),
    };
    let fits = |d: &str| crate::lvm::sets::description_tags(d).is_ok_and(|t| t.len() <= PRE_PIECES);
    let phrases: Vec<String> = plan.iter().map(Planned::phrase).collect();
    for shown in (0..=phrases.len()).rev() {
        let mut d = head.clone() + &phrases[..shown].join(", ");
        let more = phrases.len() - shown;
        if more > 0 {
            if shown > 0 {
                d.push_str(", ");
            }
            d.push_str(&format!("and {more} more"));
        }
        if fits(&d) {
            return d;
        }
    }
    // A command line too long on its own.
    format!("before {manager}: {} package(s)", plan.len())
}

/// How the transaction ended: every package at the state planned, or which are not.
pub fn outcome(plan: &[Planned], installed: &dyn Fn(&str) -> Option<String>) -> Result<(), String> {
    let mut off = Vec::new();
    for p in plan {
        let now = installed(&p.change.name);
        if now != p.change.new {
            off.push(format!(
                "{} {}",
                p.change.name,
                now.as_deref().unwrap_or("not installed")
            ));
        }
    }
    if off.is_empty() {
        Ok(())
    } else {
        Err(off.join(", "))
    }
}

/// What the pre-transaction hook leaves for the post-transaction one (a file under `/run`):
/// the set, how many description pieces it has, and each package's planned version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub set: String,
    pub pieces: usize,
    pub plan: Vec<Planned>,
}

impl Pending {
    /// `set NAME`, `pieces N`, then one `pkg NAME OLD NEW` line per package (`-`: none).
    pub fn to_text(&self) -> String {
        let v = |x: &Option<String>| x.clone().unwrap_or_else(|| "-".into());
        let mut out = format!("set {}\npieces {}\n", self.set, self.pieces);
        for p in &self.plan {
            out.push_str(&format!(
                "pkg {} {} {}\n",
                p.change.name,
                v(&p.change.old),
                v(&p.change.new)
            ));
        }
        out
    }

    pub fn parse(text: &str) -> Option<Pending> {
        let mut lines = text.lines();
        let set = lines.next()?.strip_prefix("set ")?.to_owned();
        let pieces = lines.next()?.strip_prefix("pieces ")?.parse().ok()?;
        let mut plan = Vec::new();
        for l in lines {
            let mut f = l.strip_prefix("pkg ")?.split(' ');
            let (name, old, new) = (f.next()?, f.next()?, f.next()?);
            let v = |x: &str| (x != "-").then(|| x.to_owned());
            let change = Change {
                name: name.to_owned(),
                old: v(old),
                new: v(new),
            };
            plan.push(Planned {
                verb: change.verb(None),
                change,
            });
        }
        Some(Pending { set, pieces, plan })
    }
}

/// The tag that appends `text` to a set's description as piece `index` (cut to one tag).
pub fn appended_piece(index: usize, text: &str) -> String {
    let mut cut = text.to_owned();
    loop {
        if let Ok(t) = crate::lvm::sets::description_tags(&cut)
            && t.len() == 1
        {
            let enc = t[0].split_once('_').map_or("", |x| x.1);
            let enc = enc.split_once('_').map_or("", |x| x.1);
            return format!("{}{index}_{enc}", crate::lvm::sets::DESC);
        }
        cut.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, old: Option<&str>, new: Option<&str>, newer: Option<bool>) -> Planned {
        let change = Change {
            name: name.into(),
            old: old.map(Into::into),
            new: new.map(Into::into),
        };
        Planned {
            verb: change.verb(newer),
            change,
        }
    }

    #[test]
    fn phrases_name_the_versions() {
        assert_eq!(
            p("foo", Some("1"), Some("2"), Some(true)).phrase(),
            "upgrade foo 1 -> 2"
        );
        assert_eq!(
            p("foo", Some("2"), Some("1"), Some(false)).phrase(),
            "downgrade foo 2 -> 1"
        );
        assert_eq!(p("bar", None, Some("3"), None).phrase(), "install bar 3");
        assert_eq!(p("baz", Some("4"), None, None).phrase(), "remove baz 4");
        assert_eq!(
            p("qux", Some("5"), Some("5"), None).phrase(),
            "reinstall qux 5"
        );
    }

    #[test]
    fn description_fits_and_counts_the_rest() {
        let one = [p("foo", Some("1"), Some("2"), Some(true))];
        assert_eq!(
            description("apt", Some("apt-get upgrade"), &one),
            "before apt (apt-get upgrade): upgrade foo 1 -> 2"
        );
        assert_eq!(
            description("apt", None, &one),
            "before apt: upgrade foo 1 -> 2"
        );
        let many: Vec<Planned> = (0..200)
            .map(|i| {
                p(
                    &format!("package-number-{i}"),
                    Some("1.0-1"),
                    Some("1.0-2"),
                    Some(true),
                )
            })
            .collect();
        let d = description("apt", Some("apt upgrade"), &many);
        assert!(
            d.starts_with("before apt (apt upgrade): upgrade package-number-0 1.0-1 -> 1.0-2, ")
        );
        assert!(d.ends_with(" more"), "{d}");
        let tags = crate::lvm::sets::description_tags(&d).expect("fits");
        assert!(tags.len() <= PRE_PIECES);
        // One more package would not have fit.
        let shown = d.matches("upgrade package").count();
        let more: usize = d
            .rsplit("and ")
            .next()
            .and_then(|x| x.trim_end_matches(" more").parse().ok())
            .expect("count");
        assert_eq!(shown + more, 200);
    }

    #[test]
    fn outcome_names_the_packages_not_as_planned() {
        let plan = [
            p("foo", Some("1"), Some("2"), Some(true)),
            p("baz", Some("4"), None, None),
        ];
        let done = |n: &str| (n == "foo").then(|| "2".to_owned());
        assert_eq!(outcome(&plan, &done), Ok(()));
        let half = |n: &str| Some(if n == "foo" { "1" } else { "4" }.to_owned());
        assert_eq!(outcome(&plan, &half), Err("foo 1, baz 4".into()));
    }

    #[test]
    fn pending_round_trips_and_the_outcome_piece_fits() {
        let p = Pending {
            set: "apt-20261204-190000".into(),
            pieces: 2,
            plan: vec![
                p("foo", Some("1"), Some("2"), Some(true)),
                p("baz", Some("4"), None, None),
                p("bar", None, Some("3"), None),
            ],
        };
        let back = Pending::parse(&p.to_text()).expect("parses");
        assert_eq!(back.set, p.set);
        assert_eq!(back.pieces, 2);
        let names: Vec<String> = back.plan.iter().map(Planned::phrase).collect();
        assert_eq!(
            names,
            ["upgrade foo 1 -> 2", "remove baz 4", "install bar 3"]
        );
        assert_eq!(Pending::parse("garbage"), None);

        assert_eq!(appended_piece(2, "; ok"), "rewind_desc2_#3B_ok");
        let long = appended_piece(9, &format!("; failed: {}", "x".repeat(500)));
        assert!(long.len() <= crate::lvm::sets::TAG_MAX, "{long}");
        assert!(long.starts_with("rewind_desc9_#3B_failed:_xxx"));
        let tags = [
            "rewind_desc0_before_apt:_upgrade".to_owned(),
            appended_piece(1, ", ok"),
        ];
        assert_eq!(
            crate::lvm::sets::description_of(&tags),
            "before apt: upgrade, ok"
        );
    }
}
