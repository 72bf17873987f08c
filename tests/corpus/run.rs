//! Running one case: its disks on loop devices, rewind's three views of them (each checked for
//! a panic, a hang and any byte written), stock LVM2's verdict, and the comparison.

use super::{Case, Ctx, Expect, templates};
use crate::common::{Loop, Lvm};
use serde_json::Value as Json;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A run of rewind taking longer than this is a hang.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The VGs a tool reads: "name id" -> LV names.
pub type Reads = BTreeMap<String, BTreeSet<String>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Same VGs and LVs.
    Agree,
    /// A listed deliberate refusal.
    Stricter,
    /// Kind 1: rewind refuses (or does not see) a VG LVM reads.
    RewindRefuses,
    /// Kind 2: rewind reads a VG LVM refuses.
    RewindReads,
    /// Both read the VG with different LVs.
    LvsDiffer,
}

pub struct Outcome {
    pub name: String,
    pub category: super::Category,
    pub expect: Expect,
    pub lvm: Reads,
    /// LVM's first error or warning line (not the activation notice).
    pub lvm_says: String,
    pub vgck: String,
    pub rewind: Reads,
    /// rewind's blocking problem per VG it refuses, and problems outside any VG.
    pub rewind_says: Vec<String>,
    pub verdict: Verdict,
    /// Where both agree and rewind's plan flags a snapshot: what rewind's own commit of the
    /// flag came to (see [`round_trip`]).
    pub round_trip: Option<RoundTrip>,
    /// Panics, hangs, writes, bad exit codes, plan inconsistencies: always a failure.
    pub faults: Vec<String>,
    pub secs: f64,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.faults.is_empty()
            && match self.expect {
                Expect::Agree => self.verdict == Verdict::Agree,
                Expect::Stricter(_) => self.verdict == Verdict::Stricter,
            }
    }
}

fn rewind_bin() -> String {
    std::env::var("REWIND_RELEASE_BIN")
        .ok()
        .filter(|p| Path::new(p).exists())
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_rewind").to_owned())
}

/// A sparse image file with `bytes` (zero blocks left as holes) on a loop device.
fn attach(bytes: &[u8]) -> Loop {
    let l = Loop::new(bytes.len() as u64);
    let mut f = File::options().write(true).open(l.image()).expect("image");
    use std::io::{Seek, SeekFrom};
    for (i, chunk) in bytes.chunks(64 << 10).enumerate() {
        if chunk.iter().any(|&b| b != 0) {
            f.seek(SeekFrom::Start((i as u64) << 16)).expect("seek");
            f.write_all(chunk).expect("write");
        }
    }
    // No fsync: the loop device reads through the image's page cache.
    l
}

fn read_dev(dev: &str) -> Vec<u8> {
    std::fs::read(dev).expect("read device")
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    timed_out: bool,
}

/// Runs rewind with a deadline, its output in files (no pipe can fill up).
fn run_rewind(args: &[&str], dir: &Path) -> Run {
    let out_p = dir.join("stdout");
    let err_p = dir.join("stderr");
    let mut child = Command::new(rewind_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(&out_p).expect("stdout file"))
        .stderr(File::create(&err_p).expect("stderr file"))
        .spawn()
        .expect("spawn rewind");
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > TIMEOUT {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    use std::os::unix::process::ExitStatusExt;
    Run {
        code: status.code().or(status.signal().map(|s| 128 + s)),
        stdout: std::fs::read_to_string(&out_p).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_p).unwrap_or_default(),
        timed_out,
    }
}

fn lvm_json(lvm: &Lvm, args: &[&str], key: &str) -> (Vec<Json>, String, bool) {
    let mut a = args.to_vec();
    a.extend_from_slice(&["--reportformat", "json"]);
    let out = lvm.run(&a);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let rows = serde_json::from_slice::<Json>(&out.stdout)
        .ok()
        .and_then(|j| {
            j["report"].as_array().map(|r| {
                r.iter()
                    .filter_map(|x| x[key].as_array())
                    .flatten()
                    .cloned()
                    .collect()
            })
        })
        .unwrap_or_default();
    (rows, stderr, out.status.success())
}

fn first_complaint(stderr: &str) -> Option<String> {
    stderr
        .lines()
        .map(str::trim)
        .find(|l| {
            !l.is_empty()
                && !l.contains("Activation disabled")
                && !l.contains("leaked on lvm invocation")
        })
        .map(str::to_owned)
}

/// Stock LVM2's verdict: the VGs `vgs` reads, with the LVs `lvs -a` lists (brackets of hidden
/// LVs dropped), plus `vgck` of each and the first complaint of any command.
fn lvm_verdict(lvm: &Lvm) -> (Reads, BTreeSet<String>, String, String) {
    let (vgs, e1, _) = lvm_json(lvm, &["vgs", "-o", "vg_name,vg_uuid"], "vg");
    let (lvs, e2, _) = lvm_json(lvm, &["lvs", "-a", "-o", "vg_uuid,lv_name"], "lv");
    let (_, e3, _) = lvm_json(lvm, &["pvs", "-o", "pv_name,vg_name,pv_uuid"], "pv");
    let mut reads = Reads::new();
    let mut partial = BTreeSet::new();
    let mut vgck = Vec::new();
    for v in &vgs {
        let name = v["vg_name"].as_str().unwrap_or("").to_owned();
        let uuid = v["vg_uuid"].as_str().unwrap_or("").to_owned();
        let lv: BTreeSet<String> = lvs
            .iter()
            .filter(|l| l["vg_uuid"].as_str() == Some(&uuid))
            .filter_map(|l| l["lv_name"].as_str())
            .map(|n| n.trim_start_matches('[').trim_end_matches(']').to_owned())
            .collect();
        // vgck runs vg_validate, the checks vg_write makes before every write: a VG that
        // fails them is one LVM refuses to write, and so does rewind. A VG only missing PVs
        // is read by LVM (partially).
        let ck = lvm.run(&["vgck", &name]);
        let ck_err = String::from_utf8_lossy(&ck.stderr).into_owned();
        let missing = ck_err.contains("The volume group is missing");
        if ck.status.success() || missing {
            if missing {
                partial.insert(format!("{name} {uuid}"));
            }
            reads.insert(format!("{name} {uuid}"), lv);
            vgck.push(format!(
                "{name}:ok{}",
                if missing { " (missing pvs)" } else { "" }
            ));
        } else {
            vgck.push(format!(
                "{name}:fails: {}",
                first_complaint(&ck_err).unwrap_or_default()
            ));
        }
    }
    let says = [e1, e2, e3]
        .iter()
        .find_map(|e| first_complaint(e))
        .unwrap_or_default();
    (reads, partial, says, vgck.join(" "))
}

/// rewind's verdict from `inspect --json`: the usable VGs with their LVs (the internal
/// `snapshotN` LVs left out, as LVM's `lvs` does), and why every other VG is refused.
fn rewind_verdict(j: &Json) -> (Reads, Vec<String>, BTreeSet<String>) {
    let mut reads = Reads::new();
    let mut says = Vec::new();
    let mut usable = BTreeSet::new();
    for v in j["vgs"].as_array().into_iter().flatten() {
        let name = v["name"].as_str().unwrap_or("");
        let key = format!("{name} {}", v["id"].as_str().unwrap_or(""));
        if v["usable"].as_bool() == Some(true) {
            usable.insert(name.to_owned());
            let lvs = v["lvs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|l| {
                    l["segment_types"]
                        .as_array()
                        .map(|t| t.len() == 1 && t[0] == "snapshot")
                        != Some(true)
                })
                .filter_map(|l| l["name"].as_str().map(str::to_owned))
                .collect();
            reads.insert(key, lvs);
        } else {
            says.push(format!(
                "{name}: {}",
                v["blocking"].as_str().unwrap_or("(no model)")
            ));
        }
    }
    for p in j["problems"].as_array().into_iter().flatten() {
        says.push(p["message"].as_str().unwrap_or("").to_owned());
    }
    for u in j["unreadable"].as_array().into_iter().flatten() {
        says.push(format!("unreadable: {}", u["error"].as_str().unwrap_or("")));
    }
    (reads, says, usable)
}

/// Makes, runs and judges one case.
pub fn run_case(case: &Case) -> Outcome {
    let start = Instant::now();
    let tpl = templates::get(case.tpl);
    let mut cx = Ctx {
        disks: tpl.disks.clone(),
        vg: tpl.vg.clone(),
    };
    (case.edit)(&mut cx);
    let loops: Vec<Loop> = cx.disks.iter().map(|d| attach(&d.bytes)).collect();
    let devs: Vec<&str> = loops.iter().map(|l| l.dev.as_str()).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut faults = Vec::new();

    // rewind first, so that nothing LVM might do to the disks hides a write of rewind's.
    let before: Vec<Vec<u8>> = devs.iter().map(|d| read_dev(d)).collect();
    let cmdline = case
        .rollback
        .map(|s| format!("rd.rewind={}/{s}", cx.vg))
        .unwrap_or_default();
    let config = dir.path().join("rewind.toml");
    std::fs::write(&config, "").expect("config");
    let config = config.to_str().expect("utf8").to_owned();
    let mut runs: Vec<(String, Run)> = Vec::new();
    let views: [Vec<&str>; 4] = [
        vec!["inspect"],
        vec!["inspect", "--json"],
        vec!["plan", "--cmdline", &cmdline, "--config", &config],
        vec!["plan", "--json", "--cmdline", &cmdline, "--config", &config],
    ];
    for view in views {
        let mut args = view.clone();
        args.extend(devs.iter().copied());
        let r = run_rewind(&args, dir.path());
        let what = view[..view.len().min(2)].join(" ");
        if r.timed_out {
            faults.push(format!("rewind {what}: no answer in {TIMEOUT:?} (hang)"));
        }
        if r.stderr.contains("panicked") || matches!(r.code, Some(101) | Some(134)) {
            faults.push(format!("rewind {what}: panic: {}", r.stderr.trim()));
        }
        if !matches!(r.code, Some(0 | 1)) && !r.timed_out {
            faults.push(format!("rewind {what}: exit status {:?}", r.code));
        }
        runs.push((what, r));
    }
    for (d, b) in devs.iter().zip(&before) {
        if read_dev(d) != *b {
            faults.push(format!(
                "rewind wrote to {d} (inspect, inspect --json, plan)"
            ));
        }
    }
    let inspect: Json = serde_json::from_str(&runs[1].1.stdout).unwrap_or_else(|e| {
        faults.push(format!("inspect --json: not json: {e}"));
        Json::Null
    });
    let (rewind, rewind_says, usable) = rewind_verdict(&inspect);
    // The text view and the exit status say the same as the JSON.
    let clean = inspect["vgs"]
        .as_array()
        .is_some_and(|v| v.iter().all(|v| v["usable"] == true))
        && inspect["problems"].as_array().is_some_and(Vec::is_empty)
        && inspect["unreadable"].as_array().is_some_and(Vec::is_empty);
    for (i, what) in [(0, "inspect"), (1, "inspect --json")] {
        if runs[i].1.code != Some(if clean { 0 } else { 1 }) {
            faults.push(format!(
                "rewind {what}: exit status {:?} for a report that is {}clean",
                runs[i].1.code,
                if clean { "" } else { "not " }
            ));
        }
    }
    // The plan never flags or activates anything in a VG inspect calls unusable.
    let plan: Json = serde_json::from_str(&runs[3].1.stdout).unwrap_or_else(|e| {
        faults.push(format!("plan --json: not json: {e}"));
        Json::Null
    });
    let planned = plan["flags_committed"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().and_then(|f| f.split('/').next()))
        .chain(
            plan["volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v["vg"].as_str()),
        )
        .map(str::to_owned)
        .collect::<Vec<_>>();
    for vg in planned {
        if !usable.contains(&vg) {
            faults.push(format!(
                "plan acts on vg {vg}, which inspect calls unusable"
            ));
        }
    }

    let lvm = Lvm::for_devices(&devs);
    let (lvm_reads, partial, lvm_says, vgck) = lvm_verdict(&lvm);

    let verdict = compare(&lvm_reads, &partial, &rewind, case.expect, &rewind_says);
    let flagged: Vec<String> = plan["flags_committed"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str().map(str::to_owned))
        .collect();
    let round_trip = (verdict == Verdict::Agree && faults.is_empty() && !flagged.is_empty())
        .then(|| round_trip(&cx.vg, &devs, &cmdline, &flagged, &lvm, &mut faults));
    Outcome {
        name: case.name.clone(),
        category: case.category,
        expect: case.expect,
        lvm: lvm_reads,
        lvm_says,
        vgck,
        rewind,
        rewind_says,
        verdict,
        round_trip,
        faults,
        secs: start.elapsed().as_secs_f64(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoundTrip {
    /// The flag committed; stock LVM2 reads it back.
    Committed,
    /// rewind refused to commit (why), and wrote nothing.
    Refused(String),
}

/// The `vgs` complaints about the disks, with the numbers taken out (a seqno that moved on is
/// not a new complaint).
fn complaints(lvm: &Lvm) -> BTreeSet<String> {
    let out = lvm.run(&["vgs", "-o", "vg_name"]);
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty()
                && !l.contains("Activation disabled")
                && !l.contains("leaked on lvm invocation")
        })
        .map(|l| l.replace(|c: char| c.is_ascii_digit(), "#"))
        .collect()
}

/// Why rewind may refuse to write a VG it reads (README.md, after "Where rewind is stricter
/// than LVM2").
const WRITE_RULES: &[&str] = &["by its header but", "is unusable: metadata area header"];

/// rewind's own commit of the merge flags its plan showed (`early::commit_flags`, what `rewind
/// early` writes at boot) on the case's disks, read back by stock LVM2: `vgck` passes, the
/// seqno is one more, each flagged snapshot is merging (`lvs` field `lv_merging`), the LVs are the same
/// and no new complaint appears. A commit rewind refuses must leave every byte as it was.
fn round_trip(
    vg: &str,
    devs: &[&str],
    cmdline: &str,
    flagged: &[String],
    lvm: &Lvm,
    faults: &mut Vec<String>,
) -> RoundTrip {
    use rewind::config::Config;
    use rewind::flow::early::{self, Inputs};
    use rewind::plan::cmdline::Cmdline;

    let lvs = |lvm: &Lvm| {
        lvm.run(&[
            "lvs",
            "-a",
            "--noheadings",
            "--binary",
            "-o",
            "lv_name,lv_merging",
            vg,
        ])
    };
    let seqno = lvm.seqno(vg);
    let lvs_before = String::from_utf8_lossy(&lvs(lvm).stdout).into_owned();
    let names = |text: &str| -> BTreeSet<String> {
        text.lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(|n| n.trim_matches(|c| c == '[' || c == ']').to_owned())
            .collect()
    };
    let complained = complaints(lvm);
    let before: Vec<Vec<u8>> = devs.iter().map(|d| read_dev(d)).collect();

    let only = |d: &rewind::system::blockdev::BlockDevice| {
        if devs.iter().any(|p| d.node == Path::new(p)) {
            Ok(())
        } else {
            Err("not this case's".into())
        }
    };
    let inputs = Inputs {
        root: std::path::PathBuf::from("/"),
        cmdline: Cmdline::parse(cmdline),
        config: Config::default(),
    };
    let scan = match early::scan_devices(&inputs, &only) {
        Ok(s) => s,
        Err(e) => {
            faults.push(format!("round trip: scan: {e}"));
            return RoundTrip::Refused(e.to_string());
        }
    };
    let mut prep = early::prepare(&inputs, scan);
    let mut out = early::Outcome::default();
    early::commit_flags(&mut prep, &mut out, true);

    if out.flags_committed.is_empty() {
        for (d, b) in devs.iter().zip(&before) {
            if read_dev(d) != *b {
                faults.push(format!("round trip: the commit failed and wrote to {d}"));
            }
        }
        let why = out
            .notes
            .iter()
            .map(|n| n.message.as_str())
            .find(|m| m.contains("committing the merge flag failed"))
            .unwrap_or("");
        // The rules on writing README.md lists: a metadata area whose header's size does not
        // fit in the PV header's, or whose header cannot be read, is never written.
        if !WRITE_RULES.iter().any(|r| why.contains(r)) {
            faults.push(format!(
                "round trip: the plan flagged {flagged:?}, rewind's commit did not: {}",
                if why.is_empty() {
                    format!("{:?}", out.notes)
                } else {
                    why.to_owned()
                }
            ));
        }
        return RoundTrip::Refused(why.to_owned());
    }
    if out.flags_committed != flagged {
        faults.push(format!(
            "round trip: committed {:?}, the plan showed {flagged:?}",
            out.flags_committed
        ));
    }
    let ck = lvm.run(&["vgck", vg]);
    if !ck.status.success() {
        faults.push(format!(
            "round trip: stock vgck fails after rewind's commit: {}",
            String::from_utf8_lossy(&ck.stderr).trim()
        ));
    }
    let after = lvm.seqno(vg);
    if after != seqno + 1 {
        faults.push(format!(
            "round trip: seqno {after} after rewind's commit on {seqno}"
        ));
    }
    let lvs_after = String::from_utf8_lossy(&lvs(lvm).stdout).into_owned();
    if names(&lvs_after) != names(&lvs_before) {
        faults.push(format!(
            "round trip: LVs before {:?}, after {:?}",
            names(&lvs_before),
            names(&lvs_after)
        ));
    }
    for f in flagged {
        let snap = f.split_once('/').map_or(f.as_str(), |(_, s)| s);
        let merging = lvs_after.lines().any(|l| {
            let mut w = l.split_whitespace();
            w.next().map(|n| n.trim_matches(|c| c == '[' || c == ']')) == Some(snap)
                && w.next() == Some("1")
        });
        if !merging {
            faults.push(format!(
                "round trip: stock lvs does not show {f} merging: {lvs_after:?}"
            ));
        }
    }
    let new: Vec<String> = complaints(lvm).difference(&complained).cloned().collect();
    if !new.is_empty() {
        faults.push(format!(
            "round trip: stock vgs complains after rewind's commit: {}",
            new.join("; ")
        ));
    }
    RoundTrip::Committed
}

fn compare(
    lvm: &Reads,
    partial: &BTreeSet<String>,
    rewind: &Reads,
    expect: Expect,
    says: &[String],
) -> Verdict {
    if lvm == rewind {
        return Verdict::Agree;
    }
    let lvm_only: Vec<&String> = lvm.keys().filter(|k| !rewind.contains_key(*k)).collect();
    let rewind_only = rewind.keys().any(|k| !lvm.contains_key(k));
    let differ = lvm
        .iter()
        .any(|(k, v)| rewind.get(k).is_some_and(|w| w != v));
    if rewind_only {
        return Verdict::RewindReads;
    }
    if differ {
        return Verdict::LvsDiffer;
    }
    // Only VGs LVM reads and rewind refuses are left.
    if let Expect::Stricter(rule) = expect {
        let by_rule = |k: &String| {
            if rule == super::MISSING_PV && partial.contains(k) {
                return true;
            }
            let name = k.split(' ').next().unwrap_or("");
            // A message is about this VG when it names it, or names no VG LVM read (a text
            // that does not parse is reported by device, not by VG).
            let about = |s: &str| {
                mentions(s, name)
                    || !lvm
                        .keys()
                        .any(|o| mentions(s, o.split(' ').next().unwrap_or("")))
            };
            says.iter()
                .any(|s| about(s) && rule.blocking.iter().any(|b| s.contains(b)))
        };
        if lvm_only.iter().all(|k| by_rule(k)) {
            return Verdict::Stricter;
        }
    }
    Verdict::RewindRefuses
}

/// `s` names the VG `name` (not merely a longer name that starts with it).
fn mentions(s: &str, name: &str) -> bool {
    s.match_indices(name).any(|(i, _)| {
        !s[i + name.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || "._+-".contains(c))
    })
}

/// The outcome of a case that could not be made or run (a bug in the case or the harness).
pub fn broken(case: &Case, e: &(dyn std::any::Any + Send)) -> Outcome {
    let why = e
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default();
    Outcome {
        name: case.name.clone(),
        category: case.category,
        expect: case.expect,
        lvm: Reads::new(),
        lvm_says: String::new(),
        vgck: String::new(),
        rewind: Reads::new(),
        rewind_says: Vec::new(),
        verdict: Verdict::Agree,
        round_trip: None,
        faults: vec![format!("the case itself failed: {why}")],
        secs: 0.0,
    }
}
