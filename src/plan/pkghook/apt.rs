//! What apt hands a `DPkg::Pre-Install-Pkgs` hook on its standard input when the hook's
//! `DPkg::Tools::Options::CMD::Version` is 3 (apt.conf(5); apt's `pkgDPkgPM::SendPkgsInfo`):
//!
//! ```text
//! VERSION 3
//! Key::Path=value            (apt's whole configuration; bytes quoted as %XX)
//! ...
//!                            (an empty line)
//! NAME OLDVER OLDARCH OLDMA CMP NEWVER NEWARCH NEWMA ACTION
//! ```
//!
//! One line per dpkg operation, in order: OLDVER `- - none` when not installed, NEWVER
//! `- - none` when removed, CMP `<` (NEWVER is newer), `>` (older, or a removal) or `=`,
//! ACTION the `.deb` file, `**CONFIGURE**` or `**REMOVE**`. A package appears once per
//! operation (unpack, then configure).

use super::{Change, Planned};

/// The transaction apt is about to run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Transaction {
    /// apt's own command line (`CommandLine::AsString`), when it says.
    pub command: Option<String>,
    /// Each package it changes, once, in apt's order. Configuring a package already
    /// unpacked (same version) changes nothing and is not here.
    pub plan: Vec<Planned>,
}

/// Undoes apt's `QuoteString` (`%XX`).
fn unquote(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses the hook's standard input; an error names what is wrong (another protocol version
/// means the snippet's `Version "3"` line is missing).
pub fn parse(text: &str) -> Result<Transaction, String> {
    let mut lines = text.lines();
    match lines.next() {
        Some("VERSION 3") => {}
        Some(first) if first.starts_with("VERSION ") => {
            return Err(format!(
                "apt sent the package list in protocol {}; the hook needs 3 \
                 (DPkg::Tools::Options::REWIND_APT_HOOK=3::Version \"3\"; in /etc/apt/apt.conf.d/80rewind)",
                &first[8..]
            ));
        }
        _ => {
            return Err(
                "apt sent no VERSION line (DPkg::Tools::Options::REWIND_APT_HOOK=3::Version \"3\" \
                 is missing; see /etc/apt/apt.conf.d/80rewind)"
                    .into(),
            );
        }
    }
    let mut t = Transaction::default();
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        if let Some((key, value)) = line.split_once('=')
            && unquote(key) == "CommandLine::AsString"
        {
            t.command = Some(unquote(value));
        }
    }
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(' ').collect();
        let [name, old, _, _, cmp, new, _, _, action] = f[..] else {
            return Err(format!("apt's package line not understood: {line}"));
        };
        let version = |v: &str| (v != "-").then(|| v.to_owned());
        let change = Change {
            name: name.to_owned(),
            old: version(old),
            new: if action == "**REMOVE**" {
                None
            } else {
                version(new)
            },
        };
        if action == "**CONFIGURE**" && change.old == change.new {
            continue;
        }
        if t.plan.iter().any(|p| p.change.name == change.name) {
            continue;
        }
        let newer = match cmp {
            "<" => Some(true),
            ">" => Some(false),
            _ => None,
        };
        t.plan.push(Planned {
            verb: change.verb(newer),
            change,
        });
    }
    Ok(t)
}

/// `dpkg-query -W -f '${Package} ${Version} ${db:Status-Status}\n' NAME...`'s output: each
/// package's version when it is installed (`VERSION (STATE)` when it is only half there;
/// absent when not installed or only its configuration files are left).
pub fn installed(text: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        let [name, version, state] = f[..] else {
            continue;
        };
        let v = match state {
            "installed" => version.to_owned(),
            "not-installed" | "config-files" => continue,
            other => format!("{version} ({other})"),
        };
        // Multi-Arch: same: an installed instance wins.
        if state == "installed" || !out.contains_key(name) {
            out.insert(name.to_owned(), v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::pkghook::Verb;

    // As apt 2.6 (Debian 12) writes it for `apt-get install bar` with foo upgraded and baz
    // removed (the configuration cut short).
    const UPGRADE: &str = "VERSION 3\n\
APT::Architecture=amd64\n\
CommandLine::AsString=apt-get%20install%20bar\n\
DPkg::Pre-Install-Pkgs::=/usr/sbin/rewind%20hook%20apt%20pre\n\
\n\
baz 4 amd64 none > - - none **REMOVE**\n\
foo 1 amd64 none < 2 amd64 none /var/cache/apt/archives/foo_2_amd64.deb\n\
bar - - none < 3 all none /var/cache/apt/archives/bar_3_all.deb\n\
foo 1 amd64 none < 2 amd64 none **CONFIGURE**\n\
bar - - none < 3 all none **CONFIGURE**\n";

    #[test]
    fn parses_the_plan_and_the_command() {
        let t = parse(UPGRADE).expect("parses");
        assert_eq!(t.command.as_deref(), Some("apt-get install bar"));
        let got: Vec<(Verb, String)> = t.plan.iter().map(|p| (p.verb, p.phrase())).collect();
        assert_eq!(
            got,
            [
                (Verb::Remove, "remove baz 4".to_owned()),
                (Verb::Upgrade, "upgrade foo 1 -> 2".to_owned()),
                (Verb::Install, "install bar 3".to_owned()),
            ]
        );
    }

    #[test]
    fn configure_only_changes_nothing() {
        let t = parse("VERSION 3\nA=b\n\nfoo 2 amd64 none = 2 amd64 none **CONFIGURE**\n")
            .expect("parses");
        assert!(t.plan.is_empty());
        assert_eq!(t.command, None);
    }

    #[test]
    fn downgrade_and_reinstall() {
        let t = parse(
            "VERSION 3\n\nfoo 2 amd64 none > 1 amd64 none /x/foo_1.deb\n\
             qux 5 all none = 5 all none /x/qux_5.deb\n",
        )
        .expect("parses");
        assert_eq!(t.plan[0].phrase(), "downgrade foo 2 -> 1");
        assert_eq!(t.plan[1].phrase(), "reinstall qux 5");
    }

    #[test]
    fn other_versions_are_refused_with_the_fix() {
        let e = parse("VERSION 2\n\nfoo 1 < 2 /x.deb\n").expect_err("v2");
        assert!(
            e.contains("protocol 2") && e.contains("Version \"3\""),
            "{e}"
        );
        let e = parse("/var/cache/apt/archives/foo_2_amd64.deb\n").expect_err("v1");
        assert!(e.contains("no VERSION line"), "{e}");
        let e = parse("VERSION 3\n\nfoo 1 < 2\n").expect_err("short");
        assert!(e.contains("not understood"), "{e}");
    }

    #[test]
    fn unquote_undoes_apt_quoting() {
        assert_eq!(unquote("a%20b%3dc%"), "a b=c%");
        assert_eq!(unquote("%zz"), "%zz");
    }

    #[test]
    fn dpkg_query_states() {
        let m = installed(
            "foo 2 installed\nbaz 4 config-files\nqux 5 half-configured\nbar  not-installed\n",
        );
        assert_eq!(m.get("foo").map(String::as_str), Some("2"));
        assert_eq!(
            m.get("qux").map(String::as_str),
            Some("5 (half-configured)")
        );
        assert!(!m.contains_key("baz") && !m.contains_key("bar"));
    }
}
