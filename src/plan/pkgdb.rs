//! Package databases as text (`rewind diff`): pacman's local database entries and rpm's query
//! output read into a name -> version map (dpkg's: `plan::pkghook::apt::installed` over
//! `dpkg-query`'s output), and what differs between two such maps.

pub mod vercmp;

use std::collections::BTreeMap;

/// pacman's local database from its entries' `desc` files.
pub fn pacman_local<'a>(descs: impl Iterator<Item = &'a str>) -> BTreeMap<String, String> {
    descs.filter_map(super::pkghook::pacman::desc).collect()
}

/// The query format [`rpm_installed`] reads: one line per installed header, name, then the
/// epoch-version-release as rpm compares it (epoch only when set), then the architecture.
pub const RPM_QUERY_FORMAT: &str =
    "%{NAME} %|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE} %{ARCH}\\n";

/// rpm's installed packages from `rpm -qa --qf RPM_QUERY_FORMAT`. A name installed more than
/// once (install-only packages such as the kernel, or one per architecture) maps to all its
/// versions, sorted and comma-separated, with the architecture where two differ only by it;
/// such a value compares as "another version" unless both sides hold one version.
pub fn rpm_installed(text: &str) -> BTreeMap<String, String> {
    let mut all: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        // gpg-pubkey entries are keys, not packages.
        let [name, evr, arch] = f[..] else { continue };
        if name == "gpg-pubkey" {
            continue;
        }
        all.entry(name.to_owned())
            .or_default()
            .push((evr.to_owned(), arch.to_owned()));
    }
    all.into_iter()
        .map(|(name, mut v)| {
            v.sort();
            v.dedup();
            let same_evr = v.windows(2).any(|w| w[0].0 == w[1].0);
            let text = v
                .iter()
                .map(|(evr, arch)| {
                    if same_evr {
                        format!("{evr}.{arch}")
                    } else {
                        evr.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            (name, text)
        })
        .collect()
}

/// How one package differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Not in the set, there now.
    Installed,
    /// In the set, gone now.
    Removed,
    /// Newer now.
    Upgraded,
    /// Older now.
    Downgraded,
    /// Another version (the order unknown).
    Changed,
}

/// One package that differs between the set and now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Differs {
    pub name: String,
    pub kind: Kind,
    /// In the set.
    pub set: Option<String>,
    /// Now.
    pub now: Option<String>,
}

/// What differs from `set` to `now`, by name; `newer(a, b)` says whether b is newer than a
/// (the package manager's own order; none: unknown).
pub fn diff(
    set: &BTreeMap<String, String>,
    now: &BTreeMap<String, String>,
    newer: &dyn Fn(&str, &str) -> Option<bool>,
) -> Vec<Differs> {
    let mut names: Vec<&String> = set.keys().chain(now.keys()).collect();
    names.sort();
    names.dedup();
    let mut out = Vec::new();
    for name in names {
        let (a, b) = (set.get(name), now.get(name));
        let kind = match (a, b) {
            (None, Some(_)) => Kind::Installed,
            (Some(_), None) => Kind::Removed,
            (Some(a), Some(b)) if a == b => continue,
            (Some(a), Some(b)) => match newer(a, b) {
                Some(true) => Kind::Upgraded,
                Some(false) => Kind::Downgraded,
                None => Kind::Changed,
            },
            (None, None) => continue,
        };
        out.push(Differs {
            name: name.clone(),
            kind,
            set: a.cloned(),
            now: b.cloned(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpm_query_output() {
        let text = "bash 5.2.15-2.fc38 x86_64\n\
                    gpg-pubkey eb10b464-6202d9c6 (none)\n\
                    kernel-core 6.5.6-300.fc39 x86_64\n\
                    kernel-core 6.4.9-200.fc38 x86_64\n\
                    glibc 2.37-4.fc38 x86_64\n\
                    glibc 2.37-4.fc38 i686\n\
                    shim 1:15.6-2 x86_64\n\
                    broken line\n";
        let m = rpm_installed(text);
        assert_eq!(m.len(), 4, "{m:?}");
        assert_eq!(m["bash"], "5.2.15-2.fc38");
        assert_eq!(m["kernel-core"], "6.4.9-200.fc38, 6.5.6-300.fc39");
        assert_eq!(m["glibc"], "2.37-4.fc38.i686, 2.37-4.fc38.x86_64");
        assert_eq!(m["shim"], "1:15.6-2");
    }

    #[test]
    fn pacman_entries() {
        let m = pacman_local(
            [
                "%NAME%\nfoo\n\n%VERSION%\n1-1\n",
                "%NAME%\nbar\n\n%VERSION%\n2:3-1\n",
            ]
            .into_iter(),
        );
        assert_eq!(m.get("foo").map(String::as_str), Some("1-1"));
        assert_eq!(m.get("bar").map(String::as_str), Some("2:3-1"));
    }

    #[test]
    fn diff_names_each_kind() {
        let m = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect()
        };
        let set = m(&[
            ("same", "1"),
            ("up", "1"),
            ("down", "2"),
            ("odd", "a"),
            ("gone", "4"),
        ]);
        let now = m(&[
            ("same", "1"),
            ("up", "2"),
            ("down", "1"),
            ("odd", "b"),
            ("new", "5"),
        ]);
        let newer = |a: &str, b: &str| match (a, b) {
            ("a", _) | (_, "a") => None,
            _ => Some(b > a),
        };
        let got: Vec<(String, Kind, Option<String>, Option<String>)> = diff(&set, &now, &newer)
            .into_iter()
            .map(|d| (d.name, d.kind, d.set, d.now))
            .collect();
        let s = |x: &str| Some(x.to_owned());
        assert_eq!(
            got,
            [
                ("down".into(), Kind::Downgraded, s("2"), s("1")),
                ("gone".into(), Kind::Removed, s("4"), None),
                ("new".into(), Kind::Installed, None, s("5")),
                ("odd".into(), Kind::Changed, s("a"), s("b")),
                ("up".into(), Kind::Upgraded, s("1"), s("2")),
            ]
        );
        assert!(diff(&set, &set, &newer).is_empty());
    }
}
