//! Boot Loader Specification type #1 entries (`$BOOT/loader/entries/*.conf`, read by
//! systemd-boot and by the GRUB of Fedora and RHEL), pure: reading the machine's own entries,
//! which of them is the usual one (what the boot loader starts by default), and rewind's entry
//! for a set (docs/BOOTMENU.md, "Boot Loader Specification entries").

use std::cmp::Ordering;

use super::kernels::version_cmp;

/// The `sort-key` of rewind's entries: after any distribution's (kernel-install writes the
/// os-release `IMAGE_ID` or `ID`, lowercase), so that they are never the default.
pub const SORT_KEY: &str = "zzzz-rewind";

/// The file name prefix of rewind's entries (`rewind-SET.conf`).
pub const PREFIX: &str = "rewind-";

/// rewind's entry that makes the next plain boot start the rolled-back root's kernel
/// (docs/BOOTMENU.md, "The default entry after a rollback (systemd-boot)"). Not `rewind-*`:
/// no set's entry can have its name.
pub const PIN_ENTRY: &str = "rewind.conf";

/// The pin's sort-key: before any distribution's (kernel-install writes the os-release `ID`,
/// lowercase letters), so that the loader starts it by default.
pub const PIN_SORT_KEY: &str = "0-rewind";

/// Whether the entry file `name` is rewind's (a set's, or the pin).
pub fn is_rewinds(name: &str) -> bool {
    name.starts_with(PREFIX) || name == PIN_ENTRY
}

/// One entry's keys (those rewind reads or writes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub title: Option<String>,
    pub version: Option<String>,
    pub sort_key: Option<String>,
    pub linux: Option<String>,
    pub initrd: Vec<String>,
    pub options: Vec<String>,
}

impl Entry {
    /// Parses an entry file: `KEY VALUE` lines, `#` comments; `initrd` and `options` may repeat.
    pub fn parse(text: &str) -> Entry {
        let mut e = Entry::default();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line
                .split_once(char::is_whitespace)
                .map_or((line, ""), |(k, v)| (k, v.trim()));
            let value = value.to_owned();
            match key {
                "title" => e.title = Some(value),
                "version" => e.version = Some(value),
                "sort-key" => e.sort_key = Some(value),
                "linux" => e.linux = Some(value),
                "initrd" => e.initrd.push(value),
                "options" => e.options.push(value),
                _ => {}
            }
        }
        e
    }
}

/// The boot loader's order (systemd's `boot_entry_compare`): entries with a sort-key first, by
/// sort-key, then by version, newest first; then by file name, last first.
fn order(a: &(String, Entry), b: &(String, Entry)) -> Ordering {
    let (ka, kb) = (&a.1.sort_key, &b.1.sort_key);
    match (ka, kb) {
        (Some(_), None) => return Ordering::Less,
        (None, Some(_)) => return Ordering::Greater,
        (Some(x), Some(y)) if x != y => return x.cmp(y),
        _ => {}
    }
    let v = match (&a.1.version, &b.1.version) {
        (Some(x), Some(y)) => version_cmp(y, x),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    v.then_with(|| version_cmp(&b.0, &a.0))
}

/// The usual entry among the machine's own (`(file name, entry)`, rewind's left out): the first
/// in the boot loader's order that boots a kernel.
pub fn usual(entries: &[(String, Entry)]) -> Option<&(String, Entry)> {
    let mut own: Vec<&(String, Entry)> = entries
        .iter()
        .filter(|(n, e)| !is_rewinds(n) && e.linux.is_some())
        .collect();
    own.sort_by(|a, b| order(a, b));
    own.into_iter().next()
}

/// The machine's own entry whose kernel matches a root with modules for `modules` (the
/// versions in its `/lib/modules`), for the set's copy where `$BOOT` is the ESP: the entry of
/// the `running` kernel when its modules are there, else the first in the boot loader's order
/// whose version has its modules. Only entries that name their `version` and a kernel (the
/// version is what ties an entry to `/lib/modules`; it is never guessed from a path).
pub fn for_root<'e>(
    entries: &'e [(String, Entry)],
    modules: &[String],
    running: Option<&str>,
) -> Option<&'e (String, Entry)> {
    let mut own: Vec<&(String, Entry)> = entries
        .iter()
        .filter(|(n, e)| {
            !is_rewinds(n)
                && e.linux.is_some()
                && e.version.as_ref().is_some_and(|v| modules.contains(v))
        })
        .collect();
    own.sort_by(|a, b| order(a, b));
    running
        .and_then(|r| {
            own.iter()
                .find(|(_, e)| e.version.as_deref() == Some(r))
                .copied()
        })
        .or_else(|| own.first().copied())
}

/// Why rewind's entries (sort-key [`SORT_KEY`]) could come before one of the machine's own,
/// and so become the boot loader's default: an entry without a sort-key (those sort after the
/// ones that have one), or with one after rewind's. `None`: they always come last.
pub fn cannot_sort_last(entries: &[(String, Entry)]) -> Option<String> {
    entries
        .iter()
        .filter(|(n, _)| !is_rewinds(n))
        .find_map(|(n, e)| match &e.sort_key {
            None => Some(format!(
                "{n} has no sort-key: an entry of rewind's would sort before it and could become the default"
            )),
            Some(k) if k.as_str() >= SORT_KEY => Some(format!(
                "{n}'s sort-key {k} sorts after rewind's ({SORT_KEY})"
            )),
            Some(_) => None,
        })
}

/// What rewind's entry of a set boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boots {
    pub version: String,
    /// Paths as the entry names them (from `$BOOT`'s root).
    pub linux: String,
    pub initrd: Vec<String>,
}

/// The entry file's name for set `name`.
pub fn file_name(set: &str) -> String {
    format!("{PREFIX}{set}.conf")
}

/// rewind's entry for set `name` (`title`: what the menu shows), booting `boots` with the usual
/// entry's `options` (any `rd.rewind=` in them dropped) plus `rd.rewind=SET`.
pub fn render(set: &str, title: &str, boots: &Boots, usual_options: &[String]) -> String {
    let mut opts: Vec<&str> = usual_options
        .iter()
        .flat_map(|o| o.split_whitespace())
        .filter(|w| !w.starts_with("rd.rewind="))
        .collect();
    let rd = format!("rd.rewind={set}");
    opts.push(&rd);
    let mut out = format!(
        "# Written by rewind: rolls back to snapshot set {set}. Rewritten or removed whenever\n\
         # the sets change; edits are lost.\n\
         title {}\n\
         version {}\n\
         sort-key {SORT_KEY}\n\
         linux {}\n",
        title.replace(['\n', '\r'], " "),
        boots.version,
        boots.linux
    );
    for i in &boots.initrd {
        out.push_str(&format!("initrd {i}\n"));
    }
    out.push_str(&format!("options {}\n", opts.join(" ")));
    out
}

/// Where the pin's kernel comes from (paths from `$BOOT`'s root, no leading `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinFrom {
    /// The machine's own entry `name` (still on `$BOOT`): its files are copied into rewind's
    /// store, so that removing that kernel later never leaves the pin booting nothing.
    Entry {
        name: String,
        linux: String,
        initrd: String,
        options: Vec<String>,
    },
    /// A set's copy in rewind's store (the kernel's own entry and files left `$BOOT`), or the
    /// pin's own (`set` is then [`PIN_ENTRY`]: the set is gone, its copy kept for the pin).
    Copy {
        set: String,
        linux: String,
        initrd: String,
    },
}

/// What the next plain boot of systemd-boot starts after a rollback, and what rewind does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlsNext {
    /// The usual entry (the first of the machine's own in the loader's order) boots a kernel
    /// whose modules are in the root, or it names no version: no pin of rewind's.
    Fine,
    /// The usual entry boots kernel `without_modules`, whose modules are not in the root: the
    /// pin boots `version` from `from`.
    Pin {
        without_modules: String,
        version: String,
        from: PinFrom,
    },
    /// The administrator chose the default (loader.conf's `default`, or `LoaderEntryDefault`
    /// set by `bootctl set-default`): rewind leaves it, and says so.
    Admin {
        without_modules: String,
        default: String,
    },
    /// An entry of the machine's sorts before the pin could: no pin possible.
    CannotSortFirst {
        without_modules: String,
        why: String,
    },
    /// No entry and no set's copy boots a kernel whose modules are in the root.
    NoKernel { without_modules: String },
}

/// The decision over the BLS entries (`(file name, entry)`), the versions whose modules are in
/// the root, the sets' copies on this `$BOOT` (`(set, version, linux, initrd)`) and the
/// administrator's default, if any. The pin boots the first of the machine's entries in the
/// loader's order whose modules are in the root (exactly one initrd), else the newest copy
/// whose are.
pub fn default_after(
    entries: &[(String, Entry)],
    modules: &[String],
    copies: &[(String, String, String, String)],
    admin: Option<&str>,
) -> BlsNext {
    let Some((_, u)) = usual(entries) else {
        return BlsNext::Fine;
    };
    let Some(without) = u.version.clone() else {
        return BlsNext::Fine;
    };
    if modules.contains(&without) {
        return BlsNext::Fine;
    }
    if let Some(d) = admin {
        return BlsNext::Admin {
            without_modules: without,
            default: d.to_owned(),
        };
    }
    if let Some(why) = entries
        .iter()
        .filter(|(n, _)| !is_rewinds(n))
        .find_map(|(n, e)| match &e.sort_key {
            Some(k) if k.as_str() <= PIN_SORT_KEY => Some(format!(
                "{n}'s sort-key {k} sorts before rewind's pin ({PIN_SORT_KEY})"
            )),
            _ => None,
        })
    {
        return BlsNext::CannotSortFirst {
            without_modules: without,
            why,
        };
    }
    let mut own: Vec<&(String, Entry)> = entries
        .iter()
        .filter(|(n, e)| {
            !is_rewinds(n)
                && e.linux.is_some()
                && e.initrd.len() == 1
                && e.version.as_ref().is_some_and(|v| modules.contains(v))
        })
        .collect();
    own.sort_by(|a, b| order(a, b));
    if let Some((name, e)) = own.first() {
        return BlsNext::Pin {
            without_modules: without,
            version: e.version.clone().unwrap_or_default(),
            from: PinFrom::Entry {
                name: name.clone(),
                linux: e
                    .linux
                    .clone()
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_owned(),
                initrd: e.initrd[0].trim_start_matches('/').to_owned(),
                options: e.options.clone(),
            },
        };
    }
    let best = copies
        .iter()
        .filter(|(_, v, _, _)| modules.contains(v))
        .max_by(|a, b| version_cmp(&a.1, &b.1).then_with(|| b.0.cmp(&a.0)));
    match best {
        Some((set, v, linux, initrd)) => BlsNext::Pin {
            without_modules: without,
            version: v.clone(),
            from: PinFrom::Copy {
                set: set.clone(),
                linux: linux.trim_start_matches('/').to_owned(),
                initrd: initrd.trim_start_matches('/').to_owned(),
            },
        },
        None => BlsNext::NoKernel {
            without_modules: without,
        },
    }
}

/// The pin entry ([`PIN_ENTRY`]): kernel `version` at `linux`/`initrd` (rewind's store, from
/// `$BOOT`'s root) with `options` (any `rd.rewind=` dropped), sorting first.
pub fn render_pin(
    version: &str,
    linux: &str,
    initrd: &str,
    options: &[String],
    without_modules: &str,
) -> String {
    let opts: Vec<&str> = options
        .iter()
        .flat_map(|o| o.split_whitespace())
        .filter(|w| !w.starts_with("rd.rewind="))
        .collect();
    format!(
        "# Written by rewind after a rollback: the usual entry's kernel ({without_modules}) has no\n\
         # modules in the root; this entry, first in the loader's order, boots {version}, whose\n\
         # modules are there. Removed by rewind when the usual entry matches the root again.\n\
         title Linux {version} (the root's kernel, pinned by rewind)\n\
         version {version}\n\
         sort-key {PIN_SORT_KEY}\n\
         linux /{linux}\n\
         initrd /{initrd}\n\
         options {}\n",
        opts.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(text: &str) -> Entry {
        Entry::parse(text)
    }

    #[test]
    fn entries_parse_with_repeated_keys_and_comments() {
        let x = e(
            "# a comment\ntitle Debian GNU/Linux 12\nversion 6.1.0-9-amd64\nsort-key debian\nlinux /abc/6.1.0-9-amd64/linux\ninitrd /abc/6.1.0-9-amd64/ucode\ninitrd /abc/6.1.0-9-amd64/initrd.img\noptions root=/dev/mapper/vg0-root ro\noptions quiet\n",
        );
        assert_eq!(x.title.as_deref(), Some("Debian GNU/Linux 12"));
        assert_eq!(x.sort_key.as_deref(), Some("debian"));
        assert_eq!(x.initrd.len(), 2);
        assert_eq!(x.options, vec!["root=/dev/mapper/vg0-root ro", "quiet"]);
    }

    #[test]
    fn the_usual_entry_is_the_boot_loader_s_first_and_never_rewind_s() {
        let list = vec![
            (
                "abc-6.1.0-9-amd64.conf".to_owned(),
                e("version 6.1.0-9-amd64\nsort-key debian\nlinux /a"),
            ),
            (
                "abc-6.1.0-10-amd64.conf".to_owned(),
                e("version 6.1.0-10-amd64\nsort-key debian\nlinux /b"),
            ),
            (
                "rewind-pre.conf".to_owned(),
                e("version 9\nsort-key aaa\nlinux /c"),
            ),
            ("memtest.conf".to_owned(), e("title memtest\nlinux /m")),
        ];
        let u = usual(&list).expect("usual");
        assert_eq!(u.0, "abc-6.1.0-10-amd64.conf");
        assert_eq!(
            cannot_sort_last(&list).as_deref(),
            Some(
                "memtest.conf has no sort-key: an entry of rewind's would sort before it and could become the default"
            )
        );
        assert_eq!(cannot_sort_last(&list[..3]), None);
        let late = vec![("x.conf".to_owned(), e("sort-key zzzzz\nlinux /x"))];
        assert!(cannot_sort_last(&late).is_some());
    }

    #[test]
    fn the_set_s_kernel_is_the_entry_of_the_running_kernel_else_the_first_with_modules() {
        let list = vec![
            (
                "abc-2.0.conf".to_owned(),
                e(
                    "version 2.0\nsort-key debian\nlinux /abc/2.0/linux\ninitrd /abc/2.0/initrd.img-2.0",
                ),
            ),
            (
                "abc-1.0.conf".to_owned(),
                e(
                    "version 1.0\nsort-key debian\nlinux /abc/1.0/linux\ninitrd /abc/1.0/initrd.img-1.0",
                ),
            ),
            (
                "rewind-pre.conf".to_owned(),
                e("version 1.0\nsort-key aaa\nlinux /rewind/linux-1.0.1"),
            ),
            ("memtest.conf".to_owned(), e("sort-key debian\nlinux /m")),
        ];
        let m = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let pick = |mods: &[&str], running: Option<&str>| {
            for_root(&list, &m(mods), running).map(|(n, _)| n.as_str())
        };
        // Running 1.0 with both kernels' modules: the running one, not the usual (newest).
        assert_eq!(pick(&["1.0", "2.0"], Some("1.0")), Some("abc-1.0.conf"));
        // Running a kernel without an entry: the first in the loader's order with modules.
        assert_eq!(pick(&["1.0", "2.0"], Some("3.0")), Some("abc-2.0.conf"));
        // 2.0's modules are not in the root: 1.0, never rewind's own entry.
        assert_eq!(pick(&["1.0"], Some("2.0")), Some("abc-1.0.conf"));
        assert_eq!(pick(&["9"], None), None);
    }

    #[test]
    fn an_entry_boots_with_the_usual_options_and_rd_rewind() {
        let b = Boots {
            version: "6.1.0-9-amd64".into(),
            linux: "/rewind/vmlinuz-6.1.0-9-amd64.0000abcd".into(),
            initrd: vec!["/rewind/initrd.img-6.1.0-9-amd64.00001234".into()],
        };
        let text = render(
            "pre",
            "Roll back with rewind: pre",
            &b,
            &[
                "root=/dev/mapper/vg0-root ro rd.rewind=old".into(),
                "quiet".into(),
            ],
        );
        let back = Entry::parse(&text);
        assert_eq!(back.sort_key.as_deref(), Some(SORT_KEY));
        assert_eq!(back.linux.as_deref(), Some(b.linux.as_str()));
        assert_eq!(back.initrd, b.initrd);
        assert_eq!(
            back.options,
            vec!["root=/dev/mapper/vg0-root ro quiet rd.rewind=pre"]
        );
        assert_eq!(file_name("pre"), "rewind-pre.conf");
    }

    #[test]
    fn after_a_rollback_the_pin_boots_the_root_s_kernel_and_goes_when_the_usual_matches() {
        let entry = |v: &str| {
            (
                format!("debian-{v}.conf"),
                e(&format!(
                    "version {v}\nsort-key debian\nlinux /debian/{v}/linux\ninitrd /debian/{v}/initrd.img-{v}\noptions root=/dev/x ro"
                )),
            )
        };
        let m = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let pin = (
            PIN_ENTRY.to_owned(),
            e("version 1.0\nsort-key 0-rewind\nlinux /rewind/linux-1.0.1\ninitrd /rewind/i"),
        );
        let copy = (
            "pre".to_owned(),
            "1.0".to_owned(),
            "rewind/linux-1.0.1".to_owned(),
            "rewind/initrd-1.0.2".to_owned(),
        );
        // The usual entry (2.0, the upgrade's) has its modules: nothing to do.
        let both = vec![entry("2.0"), entry("1.0"), pin.clone()];
        assert_eq!(
            default_after(&both, &m(&["1.0", "2.0"]), &[], None),
            BlsNext::Fine
        );
        // Rolled back: 2.0's modules are gone; the pin boots 1.0 from its entry (never the
        // pin itself, never a copy while the entry is there).
        let BlsNext::Pin {
            without_modules,
            version,
            from,
        } = default_after(&both, &m(&["1.0"]), std::slice::from_ref(&copy), None)
        else {
            panic!("a pin");
        };
        assert_eq!((without_modules.as_str(), version.as_str()), ("2.0", "1.0"));
        assert!(
            matches!(&from, PinFrom::Entry { name, linux, .. } if name == "debian-1.0.conf" && linux == "debian/1.0/linux"),
            "{from:?}"
        );
        // 1.0's entry and files left the ESP: the set's copy.
        let gone = vec![entry("2.0"), pin.clone()];
        assert!(matches!(
            default_after(&gone, &m(&["1.0"]), std::slice::from_ref(&copy), None),
            BlsNext::Pin { from: PinFrom::Copy { ref set, .. }, .. } if set == "pre"
        ));
        // No copy either: said loudly.
        assert_eq!(
            default_after(&gone, &m(&["1.0"]), &[], None),
            BlsNext::NoKernel {
                without_modules: "2.0".into()
            }
        );
        // The administrator's default stays.
        assert!(matches!(
            default_after(&gone, &m(&["1.0"]), std::slice::from_ref(&copy), Some("debian-2.0.conf")),
            BlsNext::Admin { ref default, .. } if default == "debian-2.0.conf"
        ));
        // An entry of the machine's sorting before the pin: no pin possible.
        let mut early = gone.clone();
        early.push((
            "a.conf".into(),
            e("version 3.0\nsort-key 0-rewind\nlinux /a"),
        ));
        assert!(matches!(
            default_after(&early, &m(&["1.0"]), &[copy], None),
            BlsNext::CannotSortFirst { .. }
        ));
        // The pin is rewind's: never the usual entry, never a reason to refuse set entries.
        assert_eq!(usual(&gone).map(|u| u.0.as_str()), Some("debian-2.0.conf"));
        assert_eq!(cannot_sort_last(&gone), None);
        let text = render_pin(
            "1.0",
            "rewind/linux-1.0.1",
            "rewind/initrd-1.0.2",
            &["root=/dev/x ro rd.rewind=pre".into()],
            "2.0",
        );
        let back = Entry::parse(&text);
        assert_eq!(back.sort_key.as_deref(), Some(PIN_SORT_KEY));
        assert_eq!(back.linux.as_deref(), Some("/rewind/linux-1.0.1"));
        assert_eq!(back.initrd, vec!["/rewind/initrd-1.0.2"]);
        assert_eq!(back.options, vec!["root=/dev/x ro"]);
        // It sorts first in the loader's order.
        let mut all = [entry("2.0"), (PIN_ENTRY.to_owned(), back)];
        all.sort_by(order);
        assert_eq!(all[0].0, PIN_ENTRY);
    }
}
