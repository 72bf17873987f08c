//! Host tier: the corrupt-disk corpus (issue 18). Every case is a set of disks made by stock
//! LVM2 on loop devices and then edited or damaged byte by byte; stock LVM2 (`vgs`, `lvs -a`,
//! `pvs`, `vgck`) is the oracle. rewind's `inspect`, `inspect --json` and `plan` must not panic,
//! hang or write a byte, and must read exactly the VGs and LVs LVM reads, or refuse a VG by one
//! of the deliberate rules README.md lists under "Where rewind is stricter than LVM2". Where
//! they agree and the plan flags a snapshot, rewind's own commit of the flag
//! (`early::commit_flags`) must read back in stock LVM2, or be refused with nothing written.
//!
//! Environment: `CORPUS_FILTER=text` runs the cases whose name contains it; `CORPUS_JOBS=N`
//! runs N cases at a time (default 4; a case mostly waits
//! for processes and I/O); `CORPUS_REPORT=FILE` writes the table of verdicts.

mod common;
mod corpus;

use corpus::run::{Outcome, RoundTrip, Verdict, run_case};
use corpus::{Category, Expect};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

fn short(s: &str, n: usize) -> String {
    if s.chars().count() > n {
        let mut t: String = s.chars().take(n).collect();
        t.push('…');
        t
    } else {
        s.to_owned()
    }
}

fn row(o: &Outcome) -> String {
    let fmt = |r: &corpus::run::Reads| {
        if r.is_empty() {
            "-".to_owned()
        } else {
            r.iter()
                .map(|(k, v)| {
                    let name = k.split(' ').next().unwrap_or("");
                    let lvs: Vec<&str> = v.iter().map(String::as_str).collect();
                    format!("{name}[{}]", lvs.join(","))
                })
                .collect::<Vec<_>>()
                .join(" ")
        }
    };
    format!(
        "{} | {:?} | {:?} | lvm: {} ({}; vgck {}) | rewind: {} ({}){} | {:.1}s{}",
        o.name,
        o.verdict,
        o.expect,
        fmt(&o.lvm),
        short(&o.lvm_says, 120),
        o.vgck,
        fmt(&o.rewind),
        short(&o.rewind_says.join("; "), 160),
        match &o.round_trip {
            Some(RoundTrip::Committed) => " | flag committed, read back by LVM".to_owned(),
            Some(RoundTrip::Refused(why)) => format!(
                " | flag commit refused, nothing written: {}",
                short(why, 160)
            ),
            None => String::new(),
        },
        o.secs,
        if o.faults.is_empty() {
            String::new()
        } else {
            format!(" | FAULTS: {}", o.faults.join("; "))
        }
    )
}

#[test]
fn loop_corpus_agrees_with_stock_lvm() {
    require_host!("loop_corpus_agrees_with_stock_lvm");
    let started = Instant::now();
    let filter = std::env::var("CORPUS_FILTER").unwrap_or_default();
    let cases: Vec<corpus::Case> = corpus::cases::all()
        .into_iter()
        .filter(|c| c.name.contains(&filter))
        .collect();
    let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "case names are unique");
    let jobs: usize = std::env::var("CORPUS_JOBS")
        .ok()
        .and_then(|j| j.parse().ok())
        .unwrap_or(4)
        .max(1);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Outcome>>> = Mutex::new((0..cases.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(case) = cases.get(i) else { break };
                    // A case whose own making fails is a fault of that case, not of the run.
                    let outcome =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_case(case)))
                            .unwrap_or_else(|e| corpus::run::broken(case, &e));
                    eprintln!("{}", row(&outcome));
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(outcome);
                }
            });
        }
    });
    let results: Vec<Outcome> = results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|o| o.expect("every case ran"))
        .collect();

    // Per category: cases, agree, stricter by a listed rule, kind 1, kind 2, other.
    let mut per_category: BTreeMap<Category, [usize; 6]> = BTreeMap::new();
    for o in &results {
        let e = per_category.entry(o.category).or_default();
        e[0] += 1;
        e[match o.verdict {
            Verdict::Agree => 1,
            Verdict::Stricter => 2,
            Verdict::RewindRefuses => 3,
            Verdict::RewindReads => 4,
            Verdict::LvsDiffer => 5,
        }] += 1;
    }
    let mut summary = String::new();
    let mut total = [0usize; 6];
    for (c, n) in &per_category {
        summary.push_str(&format!(
            "{c:?}: {} cases, {} agree, {} stricter by a listed rule, {} kind 1 (rewind refuses, LVM reads), {} kind 2 (rewind reads, LVM refuses), {} read with other LVs\n",
            n[0], n[1], n[2], n[3], n[4], n[5]
        ));
        for (t, x) in total.iter_mut().zip(n) {
            *t += x;
        }
    }
    let failed: Vec<&Outcome> = results.iter().filter(|o| !o.passed()).collect();
    let committed = results
        .iter()
        .filter(|o| o.round_trip == Some(RoundTrip::Committed))
        .count();
    let refused = results
        .iter()
        .filter(|o| matches!(o.round_trip, Some(RoundTrip::Refused(_))))
        .count();
    summary.push_str(&format!(
        "round trips (agreed cases whose plan flags a snapshot): {committed} flags committed by rewind and read back by stock LVM2, {refused} commits refused with nothing written\n"
    ));
    summary.push_str(&format!(
        "all: {} cases in {:.0} s, {} agree, {} stricter by a listed rule, {} kind 1, {} kind 2, {} other; {} failed\n",
        total[0],
        started.elapsed().as_secs_f64(),
        total[1],
        total[2],
        total[3],
        total[4],
        total[5],
        failed.len()
    ));
    eprintln!("\n{summary}");
    if let Ok(path) = std::env::var("CORPUS_REPORT") {
        let mut text = String::new();
        for o in &results {
            text.push_str(&row(o));
            text.push('\n');
        }
        text.push_str(&summary);
        std::fs::write(path, text).expect("write report");
    }

    // Every deliberate refusal a case relies on is listed, with its reason, in the README.
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = readme
        .split("## Where rewind is stricter than LVM2")
        .nth(1)
        .map(|s| s.split("\n## ").next().unwrap_or(""))
        .unwrap_or("");
    for o in &results {
        if let Expect::Stricter(rule) = o.expect {
            assert!(
                section.contains(rule.id),
                "README.md \"Where rewind is stricter than LVM2\" does not list \"{}\" (case {})",
                rule.id,
                o.name
            );
        }
    }
    let report: Vec<String> = failed.iter().map(|o| row(o)).collect();
    assert!(
        failed.is_empty(),
        "{} of {} cases failed:\n{}",
        failed.len(),
        results.len(),
        report.join("\n")
    );
}

/// What rewind writes keeps every byte it does not change, bytes that are not UTF-8 included
/// (LVM keeps them too): the merge flag `rewind early` commits (its own commit path, through
/// `system::scan`) on such a VG reads back in stock LVM2 with the same bytes.
#[test]
fn loop_bytes_that_are_not_utf8_are_written_back_unchanged() {
    require_host!("loop_bytes_that_are_not_utf8_are_written_back_unchanged");
    use corpus::templates::{Tpl, get};
    use rewind::config::Config;
    use rewind::flow::early::{self, Inputs, Outcome};
    use rewind::plan::cmdline::Cmdline;

    let tpl = get(Tpl::Basic);
    let mut cx = corpus::Ctx {
        disks: tpl.disks.clone(),
        vg: tpl.vg.clone(),
    };
    let odd: &[&[u8]] = &[b"h\xe9te-\xff", b"caf\xe9 \xc3\x28", b"/dev/\xfeloop"];
    cx.sub_bytes(
        b"creation_host = \"vm\"",
        &[b"creation_host = \"", odd[0], b"\""].concat(),
    );
    cx.sub_bytes(
        b"\nseqno = ",
        &[b"\nnote = \"", odd[1], b"\"\nseqno = "].concat(),
    );
    cx.sub_bytes(b"device = \"/dev/", &[b"device = \"", odd[2]].concat());
    let disk = common::Loop::new(cx.disks[0].bytes.len() as u64);
    std::fs::write(disk.image(), &cx.disks[0].bytes).expect("image");
    let lvm = common::Lvm::for_devices(&[&disk.dev]);
    let seqno = lvm.seqno(&cx.vg);

    let only = |d: &rewind::system::blockdev::BlockDevice| {
        if d.node == std::path::Path::new(&disk.dev) {
            Ok(())
        } else {
            Err("not this test's".into())
        }
    };
    let inputs = Inputs {
        root: std::path::PathBuf::from("/"),
        cmdline: Cmdline::parse(&format!("rd.rewind={}/pre", cx.vg)),
        config: Config::default(),
    };
    let scan = early::scan_devices(&inputs, &only).expect("scan");
    let mut prep = early::prepare(&inputs, scan);
    let mut out = Outcome::default();
    early::commit_flags(&mut prep, &mut out, true);
    assert_eq!(
        out.flags_committed,
        [format!("{}/pre", cx.vg)],
        "{:?}",
        out.notes
    );

    lvm.clean(&["vgck", &cx.vg]);
    assert_eq!(lvm.seqno(&cx.vg), seqno + 1);
    let attr = lvm.ok(&["lvs", "-a", "--noheadings", "-o", "lv_name,lv_attr", &cx.vg]);
    assert!(
        attr.lines()
            .any(|l| l.contains("[pre]") && l.contains("Swi")),
        "pre merging: {attr}"
    );
    let out = lvm.run(&["pvck", "--dump", "metadata", &disk.dev]);
    for bytes in odd {
        assert!(
            out.stdout.windows(bytes.len()).any(|w| w == *bytes),
            "{:?} kept",
            String::from_utf8_lossy(bytes)
        );
    }
}
