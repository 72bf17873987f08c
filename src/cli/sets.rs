//! What the snapshot-set commands print.

use crate::flow::snapshot::Taken;

/// The lines `rewind snapshot` prints: the set, then one line per member.
pub fn taken(t: &Taken) -> String {
    let mut out = match &t.window {
        Some(w) => format!(
            "snapshot set {}: {} member(s), taken at one instant (writes held for {:.1} ms)",
            t.name,
            t.members.len(),
            w.window.as_secs_f64() * 1000.0
        ),
        None => format!(
            "snapshot set {}: {} member(s), none active (metadata only)",
            t.name,
            t.members.len()
        ),
    };
    for m in &t.members {
        out.push_str(&format!(
            "\n  {}/{} <- {}/{} ({} extents){}",
            m.vg,
            m.origin,
            m.vg,
            m.cow,
            m.extents,
            m.mount
                .as_deref()
                .map(|p| format!(", {p}"))
                .unwrap_or_default()
        ));
    }
    // Which kernel its boot entry boots, when that is not just the newest in /boot.
    if t.boot != SetBoot::Newest {
        out.push('\n');
        out.push_str(boot_line(&t.boot).trim_end());
    }
    out
}

use crate::flow::set_rollback::SetRollback;
use crate::flow::setkernel::SetBoot;
use crate::flow::sets::{MemberView, SetView};

/// `YYYY-MM-DD HH:MM:SS` (UTC) of a Unix time.
pub fn when(t: Option<i64>) -> String {
    match t {
        Some(t) => {
            let n = crate::flow::snapshot::default_name(t);
            format!(
                "{}-{}-{} {}:{}:{}",
                &n[0..4],
                &n[4..6],
                &n[6..8],
                &n[9..11],
                &n[11..13],
                &n[13..15]
            )
        }
        None => "?".into(),
    }
}

fn state(v: &SetView) -> String {
    serde_json::to_value(v.state)
        .ok()
        .and_then(|x| x.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// `rewind list`'s table.
pub fn table(views: &[SetView]) -> String {
    if views.is_empty() {
        return "no snapshot sets\n".into();
    }
    let mut out = format!(
        "{:<24} {:<19} {:<6} {:<10} {:>7}  {}\n",
        "SET", "TIME (UTC)", "KIND", "STATE", "MEMBERS", "DESCRIPTION"
    );
    for v in views {
        let kind = v.kind.map_or("?", |k| k.as_str());
        let pin = if v.pinned { " (pinned)" } else { "" };
        out.push_str(&format!(
            "{:<24} {:<19} {:<6} {:<10} {:>7}  {}{pin}\n",
            v.name,
            when(v.time),
            kind,
            state(v),
            v.members.len(),
            v.description
        ));
        for p in pools(v) {
            out.push_str("  ");
            out.push_str(&crate::cli::status::pool_line(p));
        }
    }
    out
}

/// The thin pools a set's members are in, each once (in member order).
fn pools(v: &SetView) -> Vec<&crate::flow::status::PoolReport> {
    let mut out: Vec<&crate::flow::status::PoolReport> = Vec::new();
    for p in v.members.iter().filter_map(|m| m.pool.as_ref()) {
        if !out.iter().any(|o| o.vg == p.vg && o.pool == p.pool) {
            out.push(p);
        }
    }
    out
}

fn member_line(m: &MemberView) -> String {
    let mib = m.size_bytes as f64 / (1 << 20) as f64;
    let fill = m
        .fill_percent
        .map(|p| format!(", {p:.1}% used"))
        .unwrap_or_default();
    let st = serde_json::to_value(m.state)
        .ok()
        .and_then(|x| x.as_str().map(str::to_owned))
        .unwrap_or_default();
    let pool = m
        .pool
        .as_ref()
        .map(|p| format!(", in thin pool {}/{}", p.vg, p.pool))
        .unwrap_or_default();
    format!(
        "  {}/{} <- {}/{}  {mib:.0} MiB, {st}{fill}{pool}{}\n",
        m.vg,
        m.origin.as_deref().unwrap_or("?"),
        m.vg,
        m.snapshot,
        m.mount
            .as_deref()
            .map(|p| format!(", {p}"))
            .unwrap_or_default()
    )
}

/// `rewind show SET`.
pub fn details(v: &SetView) -> String {
    let mut out = format!(
        "snapshot set {}: {}, taken {} UTC ({}){}\n",
        v.name,
        state(v),
        when(v.time),
        v.kind.map_or("?", |k| k.as_str()),
        if v.pinned { ", pinned" } else { "" }
    );
    if !v.description.is_empty() {
        out.push_str(&format!("description: {}\n", v.description));
    }
    if let Some(n) = v.members_declared
        && n != v.members.len()
    {
        out.push_str(&format!("members: {} of {n} found\n", v.members.len()));
    }
    for m in &v.members {
        out.push_str(&member_line(m));
    }
    for p in pools(v) {
        out.push_str(&crate::cli::status::pool_line(p));
    }
    out.push_str(&boot_line(&v.boot));
    out
}

/// The line that says which kernel a set's boot menu entry boots (`rewind show`, `snapshot`).
pub fn boot_line(b: &SetBoot) -> String {
    match b {
        SetBoot::Member => {
            "boot: /boot is in the set: its kernels and initramfs roll back with it (no copy kept)\n".to_owned()
        }
        SetBoot::Copy(k) => format!(
            "boot: its entry in the boot menu boots its copy of kernel {} ({d}/{}, {d}/{}: {:.0} MiB, shared with the sets of the same kernel)\n",
            k.kernel.version,
            k.kernel.linux,
            k.kernel.initrd,
            k.bytes as f64 / (1 << 20) as f64,
            d = if k.boot_dir.is_empty() { "/boot" } else { k.boot_dir.as_str() }
        ),
        SetBoot::Newest => {
            "boot: no kernel of its own; its entry in the boot menu boots the newest kernel in /boot\n"
                .to_owned()
        }
    }
}

/// What `rewind rollback SET` prints.
pub fn rolled_back(r: &SetRollback) -> String {
    let mut out = String::new();
    if let Some(k) = &r.kept {
        out.push_str(&taken(k));
        out.push('\n');
    }
    if let Some(k) = &r.kept_earlier {
        out.push_str(&format!(
            "snapshot set {k} (taken by the earlier run that was cut short) keeps the current state\n"
        ));
    }
    if r.flagged.is_empty() {
        out.push_str(&format!(
            "snapshot set {}: every member was flagged already ({}); reboot to roll back",
            r.set,
            r.already.join(", ")
        ));
    } else {
        out.push_str(&format!(
            "snapshot set {}: {} flagged; the whole set rolls back at the next boot (reboot now){}",
            r.set,
            r.flagged.join(", "),
            r.kept
                .as_ref()
                .map(|k| &k.name)
                .or(r.kept_earlier.as_ref())
                .map(|k| format!("; rewind rollback {k} rolls forward to the current state"))
                .unwrap_or_default()
        ));
    }
    out
}

/// `rewind diff SET`: per package database, one line per package that differs, the set's
/// version first.
pub fn diff_text(d: &crate::flow::diff::SetDiff) -> String {
    use crate::plan::pkgdb::Kind;
    let mut out = String::new();
    if d.databases.is_empty() {
        out.push_str(&format!(
            "snapshot set {}: no package database (dpkg, pacman, rpm) found\n",
            d.set
        ));
    }
    for db in &d.databases {
        out.push_str(&format!(
            "{} (snapshot set {} -> now): {} package(s) differ\n",
            db.manager,
            d.set,
            db.packages.len()
        ));
        let width = db.packages.iter().map(|p| p.name.len()).max().unwrap_or(0);
        for p in &db.packages {
            let v = |x: &Option<String>| x.clone().unwrap_or_default();
            let (word, versions) = match p.kind {
                Kind::Installed => ("installed", v(&p.now)),
                Kind::Removed => ("removed", v(&p.set)),
                Kind::Upgraded => ("upgraded", format!("{} -> {}", v(&p.set), v(&p.now))),
                Kind::Downgraded => ("downgraded", format!("{} -> {}", v(&p.set), v(&p.now))),
                Kind::Changed => ("changed", format!("{} -> {}", v(&p.set), v(&p.now))),
            };
            out.push_str(&format!("  {word:<10} {:<width$}  {versions}\n", p.name));
        }
    }
    out
}

#[cfg(test)]
mod diff_tests {
    use crate::flow::diff::{DbDiff, SetDiff};
    use crate::plan::pkgdb::{Differs, Kind};

    #[test]
    fn one_line_per_package() {
        let d = SetDiff {
            set: "apt-20261204-100200".into(),
            databases: vec![DbDiff {
                manager: "dpkg",
                packages: vec![
                    Differs {
                        name: "rwtest".into(),
                        kind: Kind::Upgraded,
                        set: Some("1".into()),
                        now: Some("2".into()),
                    },
                    Differs {
                        name: "rwother".into(),
                        kind: Kind::Installed,
                        set: None,
                        now: Some("1".into()),
                    },
                ],
            }],
        };
        assert_eq!(
            super::diff_text(&d),
            "dpkg (snapshot set apt-20261204-100200 -> now): 2 package(s) differ\n  \
             upgraded   rwtest   1 -> 2\n  installed  rwother  1\n"
        );
    }
}

#[cfg(test)]
mod pool_tests {
    use super::{details, table};
    use crate::flow::sets::tests::{pool_active, thin_scan};
    use crate::flow::sets::views;

    /// A thin member's pool beside it, in text and JSON: the metadata's view alone when the
    /// pool is not active (or there is no device-mapper), the kernel's fill when it is.
    #[test]
    fn thin_members_show_their_pools_fill() {
        let s = thin_scan();
        let v = views(&s, None).expect("views");
        let p = v[0].members[0]
            .pool
            .as_ref()
            .expect("a thin member has a pool");
        assert_eq!(
            (p.vg.as_str(), p.pool.as_str(), p.transaction_id),
            ("tvg", "pool", 3)
        );
        assert_eq!((&p.device, &p.kernel), (&None, &None));
        let j = serde_json::to_value(&v).expect("json");
        assert_eq!(j[0]["members"][0]["pool"]["pool"], "pool");
        assert!(j[0]["members"][0]["pool"]["kernel"].is_null());
        let t = table(&v);
        assert!(t.contains("\n  thin pool tvg/pool (inactive)\n"), "{t}");
        let d = details(&v[0]);
        assert!(
            d.contains(", in thin pool tvg/pool\n")
                && d.contains("\nthin pool tvg/pool (inactive)\n"),
            "{d}"
        );

        let mut dm = pool_active(
            &s,
            "3 100/1024 640/1280 - rw discard_passdown queue_if_no_space - 256",
        );
        let v = views(&s, Some(&mut dm)).expect("views");
        let j = serde_json::to_value(&v).expect("json");
        let pool = &j[0]["members"][0]["pool"];
        assert_eq!(pool["device"], "tvg-pool-tpool");
        assert_eq!(pool["kernel"]["data"]["percent"], 50.0);
        assert_eq!(pool["kernel"]["metadata"]["percent"], 9.77);
        assert_eq!(pool["kernel"]["transaction_id"], 3);
        let line = "thin pool tvg/pool (active as tvg-pool-tpool: data 50.00% full (40.0 MiB of 80.0 MiB), metadata 9.77% full";
        assert!(table(&v).contains(&format!("\n  {line}")), "{}", table(&v));
        assert!(details(&v[0]).contains(&format!("\n{line}")));

        // A classic member has no `pool` key (the schema only grows).
        let mut classic = v[0].members[0].clone();
        classic.pool = None;
        let j = serde_json::to_value(&classic).expect("json");
        assert!(j.get("pool").is_none() && j.get("fill_percent").is_some());
    }
}
