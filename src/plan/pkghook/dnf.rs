//! What rewind's dnf 4 plugin (`packaging/dnf/rewind.py`) hands `rewind hook dnf pre` on
//! standard input, from dnf's resolved transaction (`base.transaction`):
//!
//! ```text
//! command dnf install -y ./foo-2-1.noarch.rpm
//! in upgrade foo 2-1
//! out upgraded foo 1-1
//! in install bar 3-1
//! out remove baz 4-1
//! ```
//!
//! `in` lines are the packages the transaction puts on the system, `out` the ones it takes
//! off, each with dnf's action name and the package's EVR (`[EPOCH:]VERSION-RELEASE`). An
//! upgrade is a pair: the new package in, the old one out.

use super::{Change, Planned};

/// The transaction dnf is about to run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Transaction {
    pub command: Option<String>,
    pub plan: Vec<Planned>,
}

/// A name's version out, version in, and whether in is newer (dnf's action says).
type Seen = (Option<String>, Option<String>, Option<bool>);

/// Parses the plugin's lines; an error names the line not understood.
pub fn parse(text: &str) -> Result<Transaction, String> {
    let mut t = Transaction::default();
    // name -> (old, new, newer)
    let mut order: Vec<String> = Vec::new();
    let mut seen: std::collections::BTreeMap<String, Seen> = std::collections::BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(c) = line.strip_prefix("command ") {
            t.command = Some(c.to_owned());
            continue;
        }
        let f: Vec<&str> = line.split(' ').collect();
        let [dir, action, name, evr] = f[..] else {
            return Err(format!("dnf plugin's line not understood: {line}"));
        };
        if !seen.contains_key(name) {
            order.push(name.to_owned());
        }
        let e = seen.entry(name.to_owned()).or_default();
        match dir {
            "in" => {
                e.1 = Some(evr.to_owned());
                match action {
                    "upgrade" => e.2 = Some(true),
                    "downgrade" => e.2 = Some(false),
                    _ => {}
                }
            }
            "out" => e.0 = Some(evr.to_owned()),
            _ => return Err(format!("dnf plugin's line not understood: {line}")),
        }
    }
    for name in order {
        let (old, new, newer) = seen.remove(&name).unwrap_or_default();
        let change = Change { name, old, new };
        t.plan.push(Planned {
            verb: change.verb(newer),
            change,
        });
    }
    Ok(t)
}

/// What the plugin hands `rewind hook dnf post`: `now NAME EVR` for each package of the
/// transaction rpm has installed after it (a package removed has no line).
pub fn installed(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            match f[..] {
                ["now", name, evr] => Some((name.to_owned(), evr.to_owned())),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::pkghook::Verb;

    #[test]
    fn pairs_in_and_out() {
        let t = parse(
            "command dnf install -y ./foo-2-1.noarch.rpm\n\
             in upgrade foo 2-1\nout upgraded foo 1-1\nin install bar 3-1\n\
             out remove baz 4-1\nin downgrade qux 1:1-1\nout downgraded qux 1:2-1\n\
             in reinstall same 5-1\nout reinstalled same 5-1\n",
        )
        .expect("parses");
        assert_eq!(
            t.command.as_deref(),
            Some("dnf install -y ./foo-2-1.noarch.rpm")
        );
        let got: Vec<(Verb, String)> = t.plan.iter().map(|p| (p.verb, p.phrase())).collect();
        assert_eq!(
            got,
            [
                (Verb::Upgrade, "upgrade foo 1-1 -> 2-1".to_owned()),
                (Verb::Install, "install bar 3-1".to_owned()),
                (Verb::Remove, "remove baz 4-1".to_owned()),
                (Verb::Downgrade, "downgrade qux 1:2-1 -> 1:1-1".to_owned()),
                (Verb::Reinstall, "reinstall same 5-1".to_owned()),
            ]
        );
    }

    #[test]
    fn empty_and_garbage() {
        let t = parse("command dnf upgrade\n").expect("parses");
        assert!(t.plan.is_empty());
        assert!(parse("in foo\n").is_err());
        assert!(parse("sideways install foo 1-1\n").is_err());
    }

    #[test]
    fn post_lines() {
        let m = installed("now foo 2-1\nsomething else\n");
        assert_eq!(m.get("foo").map(String::as_str), Some("2-1"));
        assert_eq!(m.len(), 1);
    }
}
