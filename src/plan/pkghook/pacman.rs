//! What pacman hands rewind's alpm hooks (alpm-hooks(5)): with `NeedsTargets`, the names of
//! the packages the transaction matched, one a line on standard input. The hook learns the
//! versions from pacman's local database (`/var/lib/pacman/local/NAME-VERSION/desc`): before
//! the transaction, what is installed now; after it, what is installed then. A
//! PreTransaction hook is not told which targets are installed, upgraded or removed, so the
//! description names each target with the version it had, and the post hook appends the
//! version each has after.

use super::{Change, Planned, Verb};

/// The targets on a hook's standard input: names, each once, in pacman's order.
pub fn targets(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !out.iter().any(|x| x == l) {
            out.push(l.to_owned());
        }
    }
    out
}

/// A local database entry's `desc` file: its `%NAME%` and `%VERSION%`.
pub fn desc(text: &str) -> Option<(String, String)> {
    let mut name = None;
    let mut version = None;
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        match l {
            "%NAME%" => name = lines.next().map(str::to_owned),
            "%VERSION%" => version = lines.next().map(str::to_owned),
            _ => {}
        }
    }
    Some((name?, version?))
}

/// The plan before a transaction: each target with the version installed now (none: new).
pub fn plan(targets: &[String], installed: &dyn Fn(&str) -> Option<String>) -> Vec<Planned> {
    targets
        .iter()
        .map(|t| Planned {
            change: Change {
                name: t.clone(),
                old: installed(t),
                new: None,
            },
            verb: Verb::Target,
        })
        .collect()
}

/// What the post hook appends: `, ok: foo 2-1, bar removed`.
pub fn after(names: &[String], installed: &dyn Fn(&str) -> Option<String>) -> String {
    let each: Vec<String> = names
        .iter()
        .map(|n| match installed(n) {
            Some(v) => format!("{n} {v}"),
            None => format!("{n} removed"),
        })
        .collect();
    format!(", ok: {}", each.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_once_each() {
        assert_eq!(targets("foo\nbar\n\nfoo\n"), ["foo", "bar"]);
        assert!(targets("").is_empty());
    }

    // As pacman 6.0 writes /var/lib/pacman/local/rwtest-1-1/desc.
    const DESC: &str = "%NAME%\nrwtest\n\n%VERSION%\n1-1\n\n%BASE%\nrwtest\n\n\
%DESC%\nrewind pacman-hook test package\n\n%ARCH%\nany\n\n%BUILDDATE%\n1764870000\n";

    #[test]
    fn reads_the_local_desc() {
        assert_eq!(desc(DESC), Some(("rwtest".into(), "1-1".into())));
        assert_eq!(desc("%NAME%\nfoo\n"), None);
    }

    #[test]
    fn plan_and_after_name_the_versions() {
        let now = |n: &str| (n == "foo").then(|| "1-1".to_owned());
        let p = plan(&["foo".into(), "bar".into()], &now);
        let phrases: Vec<String> = p.iter().map(Planned::phrase).collect();
        assert_eq!(phrases, ["foo 1-1", "bar (new)"]);
        let later = |n: &str| (n == "foo").then(|| "2-1".to_owned());
        assert_eq!(
            after(&["foo".into(), "bar".into()], &later),
            ", ok: foo 2-1, bar removed"
        );
    }
}
